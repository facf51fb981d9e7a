"""Clients of the current `openai` SDK (3.x), pointed at the test stack as a user would: only base_url changes."""

import uuid
import warnings

import openai
import pytest

from tests.stack import Stack

warnings.filterwarnings("ignore", category=DeprecationWarning)


@pytest.fixture(scope="session")
def client(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key=stack.api_key)


@pytest.fixture(scope="session")
def other_client(stack: Stack, other_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key=other_key)


@pytest.fixture(scope="module")
def fresh_client(stack: Stack) -> openai.OpenAI:
    """A client of a brand-new, empty project: lists hold exactly what the test module created."""
    return openai.OpenAI(base_url=stack.base_url, api_key=stack.new_key(f"fresh-{uuid.uuid4().hex[:8]}"))
