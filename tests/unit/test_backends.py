"""Routes from model names to backends (shared/backends.py): the default backend as configured before, and
LLM_BACKENDS / LLM_BACKENDS_FILE entries, checked strictly."""

import json
from pathlib import Path

import pytest

from shared.backends import QUIRKS, BackendsError, build
from shared.config import Settings


def settings(**kw: object) -> Settings:
    return Settings(llm_base_url="http://ollama:11434/v1", llm_api_key="k-default", **kw)  # type: ignore[arg-type]


def test_the_default_backend_keeps_todays_settings() -> None:
    s = settings(llm_model_map={"gpt-4": "llama3.1"}, llm_context_windows={"llama3.1": 32768})
    routes = build(s)
    r = routes["gpt-4"]
    assert (r.base_url, r.api_key, r.upstream, r.context_window, r.server) == \
        ("http://ollama:11434/v1", "k-default", "llama3.1", 32768, "generic")
    assert list(routes) == ["gpt-4"]  # only names configured by name are listed


def test_routes_to_several_upstreams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_KEY_FOR_TEST", "sk-real")
    s = settings(llm_backends=json.dumps({
        "gpt-4o": {"base_url": "https://api.openai.com/v1", "api_key_env": "OPENAI_KEY_FOR_TEST",
                   "context_window": 128000},
        "llama3.1": {"base_url": "http://box:11434/v1", "server": "ollama", "model": "llama3.1:8b", "vision": False},
        "local": {"context_window": 4096}}))
    routes = build(s)
    gpt, llama, local = routes["gpt-4o"], routes["llama3.1"], routes["local"]
    assert (gpt.api_key, gpt.upstream, gpt.context_window, gpt.server) == ("sk-real", "gpt-4o", 128000, "openai")
    assert gpt.quirks.named_choice == "native" and gpt.quirks.max_tokens_field == "max_completion_tokens"
    # Another host does not get the default backend's key.
    assert (llama.api_key, llama.upstream, llama.vision, llama.server) == ("none", "llama3.1:8b", False, "ollama")
    assert llama.context_window == 8192
    # No base_url: the default backend's URL, key and kind of server.
    assert (local.base_url, local.api_key, local.server, local.context_window) == \
        ("http://ollama:11434/v1", "k-default", "generic", 4096)


def test_a_file_works_like_the_variable(tmp_path: Path) -> None:
    path = tmp_path / "backends.json"
    path.write_text(json.dumps({"m": {"base_url": "http://x/v1", "server": "llama.cpp"}}))
    assert build(settings(llm_backends_file=str(path)))["m"].server == "llama.cpp"


@pytest.mark.parametrize(("config", "says"), [
    ("{not json", "not valid JSON"),
    ('["a"]', "JSON object"),
    ('{"m": {"base_ur": "http://x"}}', "model 'm': base_ur: Extra inputs are not permitted"),
    ('{"m": {"server": "tgi"}}', "model 'm': server: Input should be"),
    ('{"m": {"context_window": 0}}', "model 'm': context_window"),
    ('{"m": {"api_key_env": "SURELY_NOT_SET_ANYWHERE"}}', "SURELY_NOT_SET_ANYWHERE, which is not set"),
])
def test_mistakes_are_reported_readably(config: str, says: str) -> None:
    with pytest.raises(BackendsError, match=None) as err:
        build(settings(llm_backends=config))
    assert says in str(err.value)


def test_llm_server_picks_the_default_backends_quirks() -> None:
    assert build(settings(llm_server="llama.cpp", llm_model_map={"a": "b"}))["a"].server == "llama.cpp"
    with pytest.raises(BackendsError, match="LLM_SERVER"):
        build(settings(llm_server="tgi"))
    assert set(QUIRKS) >= {"openai", "vllm", "ollama", "llama.cpp", "llama-cpp-python", "generic"}
