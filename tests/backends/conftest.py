"""The seed's flows against real model servers instead of the scripted one: llama.cpp's `llama-server` and
llama-cpp-python's server, both running SmolLM2-135M-Instruct on the CPU. `make llama-server` builds them into
LLAMA_CACHE (tests/backends/build_llama_server.sh); this suite fails, rather than skips, when they are missing.

The private stack's default backend is llama-server, as a user would configure it (LLM_BASE_URL only, no
LLM_SERVER: the generic quirks); model "smollm2-llama-cpp-python" routes to llama-cpp-python's server."""

import json
import os
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from deploy.local.stack import free_port
from tests import stack as stack_mod

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("LLAMA_CACHE") or Path.home() / ".cache" / "assistants")
ALIAS = "smollm2-135m-instruct"
SLOT_CONTEXT = 4096  # llama-server's -c is divided among its -np slots


def _version(name: str) -> str:
    """A version pinned in the build script, the one place that names it."""
    m = re.search(rf"^{name}=(\S+)$", (HERE / "build_llama_server.sh").read_text(), re.M)
    assert m, name
    return m.group(1)


SERVER_DIR = CACHE / f"llama-server-{_version('LLAMA_CPP_PYTHON')}"
PY_SERVER_DIR = CACHE / f"llama-cpp-python-{_version('LLAMA_CPP_PYTHON')}"
GGUF = CACHE / f"smollm2-{_version('SMOLLM2')}" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer in {timeout} s:\n{log.read_text()[-3000:]}")


@contextmanager
def _serve(cmd: list[str], url: str, log: Path) -> Iterator[None]:
    missing = [p for p in (Path(cmd[0]), GGUF) if not p.exists()]
    if missing:
        pytest.fail(f"missing {', '.join(map(str, missing))}: run `make llama-server` (LLAMA_CACHE={CACHE})")
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait(url, proc, log)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama.cpp's server, started as the backends doc says: --jinja with a ChatML template that has tools
    (SmolLM2's own has none, and llama-server then silently ignores `tools`), 4 slots of 4,096 tokens."""
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "llama-server.log"
    cmd = [str(SERVER_DIR / "llama-server"), "-m", str(GGUF), "--alias", ALIAS, "--host", "127.0.0.1",
           "--port", str(port), "--jinja", "--chat-template-file", str(SERVER_DIR / "tools.jinja"),
           "-c", str(4 * SLOT_CONTEXT), "-np", "4", "-t", "1", "--no-ui"]
    with _serve(cmd, f"http://127.0.0.1:{port}/health", log):
        yield f"http://127.0.0.1:{port}/v1"


@pytest.fixture(scope="session")
def llama_cpp_python_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's own server; with its default `interrupt_requests true`, any request arriving during a
    stream would end that stream early."""
    port = free_port()
    log = tmp_path_factory.mktemp("llama-cpp-python") / "server.log"
    cmd = [str(PY_SERVER_DIR / "venv" / "bin" / "python"), "-m", "llama_cpp.server", "--model", str(GGUF),
           "--model_alias", "smollm2", "--chat_format", "chatml-function-calling", "--interrupt_requests", "false",
           "--n_ctx", str(SLOT_CONTEXT), "--n_threads", "1", "--host", "127.0.0.1", "--port", str(port)]
    with _serve(cmd, f"http://127.0.0.1:{port}/v1/models", log):
        yield f"http://127.0.0.1:{port}/v1"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, llama_server: str,
          llama_cpp_python_server: str) -> Iterator[stack_mod.Stack]:
    s = stack_mod.start(tmp_path_factory.mktemp("stack"), {
        "LLM_BASE_URL": llama_server, "LLM_API_KEY": "none", "LLM_DEFAULT_CONTEXT_WINDOW": str(SLOT_CONTEXT),
        "LLM_BACKENDS": json.dumps({"smollm2-llama-cpp-python": {
            "base_url": llama_cpp_python_server, "server": "llama-cpp-python", "model": "smollm2",
            "context_window": SLOT_CONTEXT}}),
        "RUN_SWEEP_SECONDS": "1"})
    yield s
    stack_mod.stop(s)
