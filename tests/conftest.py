"""Session fixtures shared by every suite: one real stack per test session, and SDK clients pointed at it as a
user would point them (only base_url changes). The v2 suites run with the current `openai`, the v1 suite with
openai==1.20.0 in its own environment: the same fixtures serve both."""

import json
import uuid
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests import stack as stack_mod
from tests.model_server import ScriptedModel


@pytest.fixture(scope="session")
def model() -> Iterator[ScriptedModel]:
    """The scripted model the stack's workers call (the only stand-in in these tests)."""
    m = ScriptedModel().start()
    yield m
    m.stop()


@pytest.fixture(scope="session")
def quirky_models() -> Iterator[dict[str, ScriptedModel]]:
    """Scripted models that answer as llama-cpp-python's and llama.cpp's servers were measured to (see
    tests/model_server.py QUIRKS), each behind its own route: models "scripted-llama-cpp-python" and
    "scripted-llama-server"."""
    models = {name: ScriptedModel(quirks=name).start() for name in ("llama-cpp-python", "llama-server")}
    yield models
    for m in models.values():
        m.stop()


def backends(model: ScriptedModel, quirky: dict[str, ScriptedModel]) -> str:
    """LLM_BACKENDS for the test stack: a few routes besides the default backend (the plain scripted model)."""
    return json.dumps({
        "scripted-llama-cpp-python": {"base_url": quirky["llama-cpp-python"].base_url, "server": "llama-cpp-python",
                                      "model": "smollm2"},
        "scripted-llama-server": {"base_url": quirky["llama-server"].base_url, "server": "llama.cpp"},
        "scripted-openai": {"base_url": model.base_url, "server": "openai", "model": "gpt-4o-2024-08-06",
                            "api_key": "test", "owned_by": "openai"},
        "scripted-text-only": {"context_window": 2048, "tools": False, "vision": False},
    })


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, model: ScriptedModel,
          quirky_models: dict[str, ScriptedModel]) -> Iterator[stack_mod.Stack]:
    s = stack_mod.start(tmp_path_factory.mktemp("stack"), {
        "LLM_BASE_URL": model.base_url, "LLM_API_KEY": "test", "LLM_BACKENDS": backends(model, quirky_models),
        # A brisk beat, so that expiry and lost-step recovery are observed in seconds rather than minutes.
        "RUN_SWEEP_SECONDS": "1", "RUN_STALE_WAITING_SECONDS": "3", "RUN_STALE_RUNNING_SECONDS": "15",
        "INGEST_STALE_SECONDS": "5",
        # Webhook receivers in the tests listen on loopback, which is allowed; every other private address is
        # refused as in production. Endpoints failing for 4 s are disabled (the default is 3 days).
        "WEBHOOK_ALLOW_PRIVATE_URLS": "false", "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "WEBHOOK_DISABLE_AFTER_SECONDS": "4", "WEBHOOK_SWEEP_SECONDS": "2",
        # Runs wait for files still being indexed (60 s by default): on a loaded machine the local embedder can
        # need longer than that for the tests' files. The bound itself is tested on a stack of its own.
        "FILE_SEARCH_WAIT_SECONDS": "300"})
    yield s
    stack_mod.stop(s)


@pytest.fixture(scope="session")
def other_key(stack: stack_mod.Stack) -> str:
    """A key of a second project, for tenancy tests."""
    return stack.new_key(f"other-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="session")
def client(stack: stack_mod.Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key=stack.api_key)


@pytest.fixture(scope="session")
def other_client(stack: stack_mod.Stack, other_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key=other_key)


@pytest.fixture
def http(stack: stack_mod.Stack) -> Iterator[httpx.Client]:
    """Raw HTTP with the dev key and the v2 header, for what the SDK cannot send (bad input)."""
    headers = {"Authorization": f"Bearer {stack.api_key}", "OpenAI-Beta": "assistants=v2"}
    with httpx.Client(base_url=stack.base_url, headers=headers, timeout=30) as client:
        yield client
