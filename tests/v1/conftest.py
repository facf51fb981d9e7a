"""Clients of openai==1.20.0, the last SDK of the v1 Assistants API (`OpenAI-Beta: assistants=v1`)."""

import openai
import pytest

from tests.stack import Stack

assert openai.__version__ == "1.20.0", f"the v1 suite needs openai==1.20.0, not {openai.__version__}"


@pytest.fixture(scope="session")
def client(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key=stack.api_key)


@pytest.fixture(scope="session")
def other_client(stack: Stack, other_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key=other_key)
