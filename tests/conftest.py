"""Session fixtures shared by every suite: one real stack per test session."""

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests import stack as stack_mod


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack_mod.Stack]:
    s = stack_mod.start(tmp_path_factory.mktemp("stack"))
    yield s
    stack_mod.stop(s)


@pytest.fixture(scope="session")
def other_key(stack: stack_mod.Stack) -> str:
    """A key of a second project, for tenancy tests."""
    return stack.new_key(f"other-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def http(stack: stack_mod.Stack) -> Iterator[httpx.Client]:
    """Raw HTTP with the dev key and the v2 header, for what the SDK cannot send (bad input)."""
    headers = {"Authorization": f"Bearer {stack.api_key}", "OpenAI-Beta": "assistants=v2"}
    with httpx.Client(base_url=stack.base_url, headers=headers, timeout=30) as client:
        yield client
