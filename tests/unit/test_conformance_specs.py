"""Where the conformance suite gets OpenAI's specs (tests/conformance/specs.py): the trimmed folder first, then the
verified cache, then a verified download; the message when none works, and how the suite reports it; the
trimmer, on a small document here and on OpenAI's real documents when they are cached."""

import hashlib
import http.server
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conformance import specs, trim, upstream, yaml_load
from tests.conformance.upstream import Pin

ROOT = Path(__file__).resolve().parents[2]

DOCUMENT = """\
openapi: 3.0.0
info: {title: OpenAI API, version: 2.0.0}
servers: [{url: https://api.openai.com/v1}]
tags: [{name: Assistants}]
security: [{ApiKeyAuth: []}]
paths:
  /assistants:
    get:
      operationId: listAssistants
      parameters: &paging
        - {name: limit, in: query, schema: {type: integer}}
      responses: {'200': {content: {application/json: {schema: {$ref: '#/components/schemas/ListAssistantsResponse'}}}}}
    post:
      operationId: createAssistant
      responses: {'200': {$ref: '#/components/responses/Assistant'}}
  /threads/{thread_id}/messages:
    get:
      operationId: listMessages
      parameters: *paging
      responses: {'200': {description: OK}}
  /files:
    get:
      operationId: listFiles
      parameters: [{name: purpose, in: query, schema: {type: string}}]
      responses: {'200': {content: {application/json: {schema: {$ref: '#/components/schemas/OpenAIFile'}}}}}
  /filesystem:
    get: {operationId: notOurs, responses: {'200': {description: OK}}}
  /chat/completions:
    post:
      operationId: createChatCompletion
      responses: {'200': {content: {application/json: {schema: {$ref: '#/components/schemas/ChatCompletion'}}}}}
webhooks:
  batch.completed: {post: {responses: {'200': {description: OK}}}}
components:
  securitySchemes:
    ApiKeyAuth: {type: http, scheme: bearer}
    AdminApiKeyAuth: {type: http, scheme: bearer}
  schemas:
    ListAssistantsResponse:
      type: object
      properties: {data: {type: array, items: {$ref: '#/components/schemas/AssistantObject'}}}
    AssistantObject:
      type: object
      properties:
        temperature: {description: &temperature first, type: number}
        tools: {type: array, items: {$ref: '#/components/schemas/Tool~1Code'}}
    Tool/Code: {type: object}
    OpenAIFile: {type: object}
    ChatCompletion: {type: object, properties: {usage: {$ref: '#/components/schemas/Usage'}}}
    Usage: {type: object}
    RunObject:
      type: object
      properties:
        temperature: {description: &temperature second, type: number}
        top_p: {description: *temperature}
  responses:
    Assistant: {description: OK, content: {application/json: {schema: {$ref: '#/components/schemas/AssistantObject'}}}}
x-oaiMeta:
  navigationGroups: [{id: assistants}]
"""


def _pin(document: bytes) -> Pin:
    return Pin("assistants-only_test_0123abc.yaml", "assistants=v2", "0123abc" + "0" * 33, "openapi.yaml",
               hashlib.sha256(document).hexdigest())


def _no_download(pin: Pin) -> Path:
    raise AssertionError(f"{pin.trimmed_name} was downloaded although it was at hand")


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """An empty OPENAPI_DIR and an empty cache; downloads go to a closed port unless a test serves them."""
    trimmed, cache = tmp_path / "openapi", tmp_path / "cache"
    trimmed.mkdir()
    monkeypatch.setenv("OPENAPI_DIR", str(trimmed))
    monkeypatch.setenv("OPENAPI_CACHE_DIR", str(cache))
    monkeypatch.setenv("OPENAPI_UPSTREAM_URL", f"http://127.0.0.1:{_closed_port()}")
    return trimmed, cache


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Upstream:
    """A stand-in for raw.githubusercontent.com on loopback: serves `files` by path, counts requests."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files, self.requests = files, 0
        upstream_self = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                upstream_self.requests += 1
                body = upstream_self.files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    started: list[_Upstream] = []

    def start(files: dict[str, bytes]) -> _Upstream:
        up = _Upstream(files)
        started.append(up)
        monkeypatch.setenv("OPENAPI_UPSTREAM_URL", up.url)
        return up

    yield start
    for up in started:
        up.close()


# -- the trimmer -----------------------------------------------------------------------------------------------

def test_trim_keeps_this_apis_paths_with_the_beta_header_and_what_they_reference(tmp_path: Path) -> None:
    (tmp_path / "doc.yaml").write_text(DOCUMENT)
    document = yaml_load.load(tmp_path / "doc.yaml")
    before = yaml.safe_dump(document)
    out = trim.trim(document, "assistants=v1")

    assert list(out) == ["openapi", "info", "servers", "tags", "security", "paths", "components"]
    assert list(out["paths"]) == ["/assistants", "/threads/{thread_id}/messages", "/files"]
    header = trim.beta_header("assistants=v1")
    assert out["paths"]["/assistants"]["get"]["parameters"] == [
        {"name": "limit", "in": "query", "schema": {"type": "integer"}}, header]
    assert out["paths"]["/assistants"]["post"]["parameters"] == [header]
    # The two operations shared one parameter list (an alias): each got the header once.
    assert out["paths"]["/threads/{thread_id}/messages"]["get"]["parameters"] == [
        {"name": "limit", "in": "query", "schema": {"type": "integer"}}, header]
    assert out["paths"]["/files"] == document["paths"]["/files"]  # no header: the Files API is not in beta
    assert set(out["components"]["schemas"]) == {"ListAssistantsResponse", "AssistantObject", "Tool/Code",
                                                 "OpenAIFile"}
    assert set(out["components"]["responses"]) == {"Assistant"}
    assert set(out["components"]["securitySchemes"]) == {"ApiKeyAuth", "AdminApiKeyAuth"}
    assert yaml.safe_dump(document) == before  # the input document is left as it was


def test_trim_refuses_a_reference_it_cannot_follow() -> None:
    document: dict[str, Any] = {"openapi": "3.0.0", "paths": {"/assistants": {"get": {"responses": {"200": {
        "$ref": "#/components/schemas/Missing"}}}}}, "components": {"schemas": {}}}
    with pytest.raises(ValueError, match="Missing"):
        trim.trim(document, "assistants=v2")
    document["paths"]["/assistants"]["get"]["responses"]["200"]["$ref"] = "other.yaml#/Thing"
    with pytest.raises(ValueError, match="only local components"):
        trim.trim(document, "assistants=v2")


@pytest.mark.parametrize("loader", ["LibyamlLoader", "PureLoader"])
def test_a_redefined_anchor_means_its_latest_definition(tmp_path: Path, loader: str) -> None:
    (tmp_path / "doc.yaml").write_text(DOCUMENT)
    with pytest.raises(yaml.composer.ComposerError, match="duplicate anchor"):
        yaml.safe_load(DOCUMENT)  # why yaml_load exists
    if not hasattr(yaml_load, loader):
        pytest.skip(f"PyYAML here is built without libyaml: no {loader}")
    document = yaml_load.load(tmp_path / "doc.yaml", getattr(yaml_load, loader))
    run = document["components"]["schemas"]["RunObject"]["properties"]
    assert run["top_p"]["description"] == "second"
    assert document["paths"]["/threads/{thread_id}/messages"]["get"]["parameters"] == [
        {"name": "limit", "in": "query", "schema": {"type": "integer"}}]


# -- where a spec comes from -----------------------------------------------------------------------------------

def test_the_trimmed_folder_comes_first(places: tuple[Path, Path]) -> None:
    trimmed, _ = places
    pin = _pin(DOCUMENT.encode())
    (trimmed / pin.trimmed_name).write_text("openapi: 3.1.0\npaths: {}\n")
    assert specs.load_spec(pin, fetch=_no_download) == {"openapi": "3.1.0", "paths": {}}


def test_the_default_trimmed_folder_is_shared_openapi_beside_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAPI_DIR", raising=False)
    assert specs.trimmed_dir()[0] == ROOT.parent / "shared" / "openapi"


def test_a_cached_document_is_verified_then_trimmed(places: tuple[Path, Path]) -> None:
    pin = _pin(DOCUMENT.encode())
    cached = upstream.cache_path(pin)
    cached.parent.mkdir(parents=True)
    cached.write_text(DOCUMENT)
    out = specs.load_spec(pin, fetch=_no_download)
    assert list(out["paths"]) == ["/assistants", "/threads/{thread_id}/messages", "/files"]


def test_a_missing_document_is_downloaded_verified_and_cached(places: tuple[Path, Path], serve: Any) -> None:
    pin = _pin(DOCUMENT.encode())
    up = serve({f"/{pin.commit}/openapi.yaml": DOCUMENT.encode()})
    out = specs.load_spec(pin)
    assert up.requests == 1
    assert "/assistants" in out["paths"]
    assert upstream.cache_path(pin).read_bytes() == DOCUMENT.encode()
    up.close()
    assert specs.load_spec(pin, fetch=_no_download) == out  # from the cache now


def test_a_download_that_is_not_the_pinned_document_is_refused(places: tuple[Path, Path], serve: Any) -> None:
    pin = _pin(DOCUMENT.encode())
    serve({f"/{pin.commit}/openapi.yaml": DOCUMENT.encode().replace(b"2.0.0", b"2.0.1")})
    with pytest.raises(specs.SpecUnavailable) as caught:
        specs.load_spec(pin)
    assert f"is not the pinned {pin.sha256}" in str(caught.value)
    assert not any(p.is_file() for p in upstream.cache_dir().rglob("*"))  # neither cached nor left half-written
    serve({})
    with pytest.raises(specs.SpecUnavailable, match=f"HTTP 404 from {upstream.url_of(pin)}"):
        specs.load_spec(pin)


def test_a_corrupt_cached_document_is_downloaded_again(places: tuple[Path, Path], serve: Any) -> None:
    pin = _pin(DOCUMENT.encode())
    cached = upstream.cache_path(pin)
    cached.parent.mkdir(parents=True)
    cached.write_text(DOCUMENT[:100])
    up = serve({f"/{pin.commit}/openapi.yaml": DOCUMENT.encode()})
    assert "/assistants" in specs.load_spec(pin)["paths"]
    assert up.requests == 1 and cached.read_bytes() == DOCUMENT.encode()


def test_offline_without_specs_the_message_says_what_is_missing_and_how_to_provide_it(
        places: tuple[Path, Path]) -> None:
    trimmed, cache = places
    pin = upstream.PINS[0]
    with pytest.raises(specs.SpecUnavailable) as caught:
        specs.load_spec(pin)
    message = str(caught.value)
    cached = cache / pin.commit / "openapi.yaml"
    url = f"{upstream.upstream_url()}/{pin.commit}/openapi.yaml"
    assert message.splitlines()[0] == (
        "conformance against assistants-only_v1-era_af97d0a.yaml could not run: OpenAI's spec is not available "
        "(openai/openai-openapi openapi.yaml at af97d0a).")
    assert f"1. the trimmed spec {trimmed / pin.trimmed_name} (OPENAPI_DIR): not there" in message
    assert f"2. the cached document {cached}: not there" in message
    assert f"3. a download of {url}: ConnectError" in message
    assert f"curl -fL --create-dirs -o {cached} \\\n        {url}" in message
    assert pin.sha256 in message and f"set OPENAPI_DIR to a folder holding {pin.trimmed_name}" in message
    assert not cache.exists()  # a failed attempt leaves nothing behind


def test_the_pins_point_at_openais_repository() -> None:
    assert upstream.UPSTREAM_URL == "https://raw.githubusercontent.com/openai/openai-openapi"
    assert [(p.commit[:7], p.beta) for p in upstream.PINS] == [
        ("af97d0a", "assistants=v1"), ("d3f8430", "assistants=v2"), ("f85dbe2", "assistants=v2")]
    for pin in upstream.PINS:
        assert len(pin.commit) == 40 and len(pin.sha256) == 64 and pin.commit[:7] in pin.trimmed_name


# -- what the suite prints without specs -------------------------------------------------------------------------

def test_the_conformance_suite_reports_why_it_could_not_run(tmp_path: Path) -> None:
    """As on a fresh clone, offline: no ../shared (OPENAPI_DIR empty), nothing cached, no way to download."""
    (tmp_path / "empty").mkdir()
    env = {**os.environ, "OPENAPI_DIR": str(tmp_path / "empty"), "OPENAPI_CACHE_DIR": str(tmp_path / "cache"),
           "OPENAPI_UPSTREAM_URL": f"http://127.0.0.1:{_closed_port()}"}
    out = subprocess.run([sys.executable, "-m", "pytest", "tests/conformance/test_schemathesis.py", "-q",
                          "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "pytest")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    report = out.stdout + out.stderr
    assert out.returncode == 1, report  # failed: conformance was not checked, so it did not pass
    assert "3 failed" in report, report
    for pin in upstream.PINS:
        assert f"conformance against {pin.trimmed_name} could not run: OpenAI's spec is not available" in report
        assert str(tmp_path / "empty" / pin.trimmed_name) in report
        assert f"curl -fL --create-dirs -o {tmp_path / 'cache' / pin.commit / pin.path}" in report
    assert "Traceback" not in report and "During handling" not in report  # the reason alone
    # No stack was started for specs that are not there (the stack fixture makes its state dir first).
    assert not list((tmp_path / "pytest").glob("stack*")), report


# -- the trimmer against OpenAI's documents ----------------------------------------------------------------------

@pytest.mark.parametrize("pin", upstream.PINS, ids=[p.trimmed_name for p in upstream.PINS])
def test_trimming_openais_document_gives_the_kept_trimmed_spec(pin: Pin) -> None:
    """Runs where both are at hand (the upstream document cached, the trimmed one in OPENAPI_DIR or ../shared):
    the trimmer must reproduce, as data, the trimmed file the suite used before it could trim."""
    cached, kept = upstream.cache_path(pin), specs.trimmed_dir()[0] / pin.trimmed_name
    if not (cached.is_file() and kept.is_file()):
        pytest.skip(f"needs both {cached} and {kept}")
    assert upstream.sha256_of(cached) == pin.sha256
    assert trim.trim(yaml_load.load(cached), pin.beta) == yaml_load.load(kept)

