"""The code_interpreter REPL server (sandbox/repl.py), run here as a plain subprocess: the protocol, state,
logs, errors, timeouts, output caps and figures. Container isolation is tested with the sandbox itself."""

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPL = Path(__file__).resolve().parents[2] / "sandbox" / "repl.py"


class Repl:
    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(REPL), *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.ready = self._read()
        self.n = 0

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "the REPL died"
        return json.loads(line)  # type: ignore[no-any-return]

    def run(self, code: str, **opts: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.n += 1
        self.proc.stdin.write(json.dumps({"id": self.n, "code": code, **opts}) + "\n")
        self.proc.stdin.flush()
        reply = self._read()
        assert reply["id"] == self.n
        return reply

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def repl(tmp_path: Path) -> Iterator[Repl]:
    r = Repl("--workdir", str(tmp_path))
    yield r
    r.close()


def test_ready_and_state_persists(repl: Repl) -> None:
    assert repl.ready["ready"] is True
    assert repl.run("x = 41\nimport math")["status"] == "ok"
    out = repl.run("x + 1")
    assert out["status"] == "ok" and out["logs"] == "42\n" and out["error"] is None
    assert repl.run("print(math.sqrt(16))")["logs"] == "4.0\n"


def test_logs_keep_order_across_python_and_subprocesses(repl: Repl) -> None:
    out = repl.run("import os, subprocess, sys\nprint('a')\nos.system('echo b')\nprint('c', file=sys.stderr)\n"
                   "subprocess.run(['echo', 'd'])\n_ = os.write(1, b'e\\n')")
    assert out["logs"] == "a\nb\nc\nd\ne\n"


def test_errors_carry_the_users_traceback_and_the_session_survives(repl: Repl) -> None:
    out = repl.run("def f():\n    return 1 / 0\nf()")
    assert out["status"] == "error" and out["error"]["type"] == "ZeroDivisionError"
    assert 'File "<code>", line 2, in f' in out["error"]["traceback"] and "repl.py" not in out["error"]["traceback"]
    assert "ZeroDivisionError" in out["logs"]
    assert repl.run("f.__name__")["logs"] == "'f'\n"
    assert repl.run("def broken(:")["error"]["type"] == "SyntaxError"
    assert repl.run("raise SystemExit(3)")["error"]["type"] == "SystemExit"
    assert repl.run("1 + 1")["logs"] == "2\n"


def test_timeout_is_reported_and_state_kept(repl: Repl) -> None:
    repl.run("kept = 'yes'")
    out = repl.run("try:\n    while True: pass\nexcept Exception:\n    pass", timeout=0.5)
    assert out["status"] == "timeout" and out["error"]["message"] == "execution timed out after 0.5 s"
    assert repl.run("kept")["logs"] == "'yes'\n"


def test_output_is_capped(repl: Repl) -> None:
    out = repl.run("for i in range(100000): print(i)", max_output=1000)
    assert out["truncated"] is True and out["logs"].startswith("0\n1\n")
    assert "[output truncated: more than 1000 bytes]" in out["logs"] and len(out["logs"]) < 1100
    assert repl.run("print('next')")["logs"] == "next\n"  # the rest was dropped, not carried over


def test_user_io_cannot_corrupt_the_protocol(repl: Repl) -> None:
    out = repl.run("import os\nos.write(1, b'{\"id\": 999}\\n')\nprint(input.__name__)\ntry:\n    input()\n"
                   "except EOFError:\n    print('no stdin')")
    assert out["status"] == "ok" and out["logs"] == '{"id": 999}\ninput\nno stdin\n'
    assert repl.run("'still fine'")["logs"] == "'still fine'\n"


def test_bad_requests_get_protocol_errors(repl: Repl) -> None:
    assert repl.proc.stdin is not None
    repl.proc.stdin.write("not json\n")
    repl.proc.stdin.flush()
    assert repl._read()["error"]["type"] == "ProtocolError"
    assert repl.run("1")["logs"] == "1\n"


def test_figures_come_back_as_png(tmp_path: Path) -> None:
    r = Repl("--preload", "matplotlib,json")
    try:
        assert r.ready["preloaded"] == ["matplotlib", "json"]
        out = r.run("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.title('squares')")
        assert out["status"] == "ok" and out["logs"] == ""  # the figure, not the repr of a Text artist
        [png] = out["images"]
        assert base64.b64decode(png)[:8] == b"\x89PNG\r\n\x1a\n"
        assert r.run("plt.figure(); plt.show()")["images"]  # shown figures too
        assert r.run("1")["images"] == []  # figures are closed once returned
    finally:
        r.close()
