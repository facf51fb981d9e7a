"""The v2 suite runs with the current `openai` SDK (3.x)."""

import uuid

import openai
import pytest

from tests.stack import Stack


@pytest.fixture(scope="module")
def fresh_client(stack: Stack) -> openai.OpenAI:
    """A client of a brand-new, empty project: lists hold exactly what the test module created."""
    return openai.OpenAI(base_url=stack.base_url, api_key=stack.new_key(f"fresh-{uuid.uuid4().hex[:8]}"))
