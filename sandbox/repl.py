"""The REPL server that runs inside a code_interpreter container: Python's standard library only.

Protocol: JSON lines. The server prints {"ready": true, ...} once its preloads are imported, then answers each
request line {"id", "code", "timeout", "max_output"} with one line:

    {"id", "status": "ok" | "error" | "timeout", "logs", "truncated", "error": {"type", "message",
     "traceback"} | null, "images": [base64 PNG, ...], "duration_ms"}

State (variables, imports) persists between requests. `logs` is everything the code wrote to stdout or stderr —
its own prints, a subprocess's output, the value of a final expression — in order, capped at `max_output` bytes.
The protocol has a descriptor of its own, so nothing the code writes (even to fd 1 directly) can corrupt it.
Matplotlib figures left open by the code (shown or merely created) come back as PNG images and are closed.
The per-call timeout here is the soft one (the code gets a TimeoutError and the session survives); the
worker enforces a hard deadline by killing the container.
"""

import ast
import base64
import io
import json
import os
import signal
import sys
import tempfile
import time
import traceback
from types import FrameType
from typing import Any

DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_OUTPUT = 64 * 1024


class ExecutionTimeout(BaseException):
    """BaseException, so that a bare `except Exception` in the user's code does not swallow it."""


def _on_alarm(_signum: int, _frame: FrameType | None) -> None:
    raise ExecutionTimeout()


class Session:
    def __init__(self, workdir: str | None = None) -> None:
        self.namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
        # The protocol keeps its own copy of stdout; fds 1 and 2 then point at a capture file, so prints,
        # subprocesses and C extensions all land in the logs, in order.
        self.proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
        self.requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)  # input() in the user's code must not eat protocol lines
        os.close(devnull)
        sys.stdin = open(os.devnull)  # noqa: SIM115
        # The capture file lives apart from the user's /tmp (REPL_LOG_DIR, a small tmpfs of its own in the
        # container), so code that fills /tmp does not also silence the session's output.
        tmp_fd, self.capture_path = tempfile.mkstemp(prefix="repl-logs-", dir=os.environ.get("REPL_LOG_DIR"))
        os.close(tmp_fd)
        # O_APPEND: every writer appends, so the file can be emptied under them (see _read_logs).
        capture_fd = os.open(self.capture_path, os.O_WRONLY | os.O_APPEND)
        os.dup2(capture_fd, 1)
        os.dup2(capture_fd, 2)
        os.close(capture_fd)
        sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", buffering=0), encoding="utf-8", line_buffering=True,
                                      write_through=True)
        sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", buffering=0), encoding="utf-8", line_buffering=True,
                                      write_through=True)
        if workdir and os.path.isdir(workdir):
            os.chdir(workdir)
        signal.signal(signal.SIGALRM, _on_alarm)

    def preload(self, modules: list[str]) -> list[str]:
        loaded = []
        for name in modules:
            try:
                if name == "matplotlib":
                    import matplotlib

                    matplotlib.use("Agg")
                    import matplotlib.pyplot as plt

                    self.namespace.setdefault("plt", plt)
                else:
                    __import__(name)
                loaded.append(name)
            except Exception:
                continue
        return loaded

    def _snapshot(self) -> dict[str, tuple[int, int]]:
        """Files under the working directory (/mnt/data) with size and mtime, to tell what a call wrote."""
        out: dict[str, tuple[int, int]] = {}
        for root, _dirs, names in os.walk("."):
            for name in names:
                path = os.path.join(root, name)[2:]
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                out[path] = (st.st_size, st.st_mtime_ns)
        return out

    def run(self, code: str, timeout: float, max_output: int) -> dict[str, Any]:
        started = time.monotonic()
        before = self._snapshot()
        status, error = "ok", None
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            self._execute(code)
        except ExecutionTimeout:
            status = "timeout"
            error = {"type": "TimeoutError", "message": f"execution timed out after {timeout:g} s",
                     "traceback": ""}
        except BaseException as exc:  # the user's error, reported as theirs; SystemExit included
            status = "error"
            tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
            # Drop our own frames: the traceback starts at the user's code.
            tb = [tb[0], *[line for line in tb[1:] if "repl.py" not in line.split("\n", 1)[0]]]
            error = {"type": type(exc).__name__, "message": str(exc), "traceback": "".join(tb)}
            if isinstance(exc, KeyboardInterrupt):
                error["message"] = "interrupted"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        images = self._figures()
        sys.stdout.flush()
        sys.stderr.flush()
        logs, truncated = self._read_logs(max_output)
        if error is not None and error["traceback"]:
            logs += error["traceback"]
        after = self._snapshot()
        files = sorted(p for p, meta in after.items() if before.get(p) != meta)
        return {"status": status, "logs": logs, "truncated": truncated, "error": error, "images": images,
                "files": files, "duration_ms": round((time.monotonic() - started) * 1000, 1)}

    def _execute(self, code: str) -> None:
        tree = ast.parse(code, mode="exec")
        last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        if last is not None:
            tree.body.pop()
        exec(compile(tree, "<code>", "exec"), self.namespace)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), "<code>", "eval"), self.namespace)
            if value is not None and not _is_figure_like(value):
                print(repr(value))

    def skip_logs(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.truncate(self.capture_path, 0)

    def _read_logs(self, max_output: int) -> tuple[str, bool]:
        with open(self.capture_path, "rb") as f:
            data = f.read(max_output + 1)
        # What was read is not needed again: empty the file so one chatty call cannot fill the disk for the next.
        # Writers hold it with O_APPEND, so they carry on at the new end.
        os.truncate(self.capture_path, 0)
        truncated = len(data) > max_output
        text = data[:max_output].decode("utf-8", "replace")
        if len(data) > max_output:
            text += f"\n[output truncated: more than {max_output} bytes]\n"
        return text, truncated

    def _figures(self) -> list[str]:
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is None:
            return []
        out = []
        for num in plt.get_fignums():
            fig = plt.figure(num)
            buf = io.BytesIO()
            fig.savefig(buf, format="png", bbox_inches="tight")
            out.append(base64.b64encode(buf.getvalue()).decode())
        plt.close("all")
        return out

    def reply(self, message: dict[str, Any]) -> None:
        self.proto.write(json.dumps(message) + "\n")
        self.proto.flush()


def _is_figure_like(value: Any) -> bool:
    """A final expression like `plt.plot(...)` is shown as the figure, not as the repr of its artists."""
    name = type(value).__module__ or ""
    if name.startswith("matplotlib"):
        return True
    return isinstance(value, list) and bool(value) and (type(value[0]).__module__ or "").startswith("matplotlib")


def main(argv: list[str]) -> int:
    preload = argv[argv.index("--preload") + 1].split(",") if "--preload" in argv else []
    workdir = argv[argv.index("--workdir") + 1] if "--workdir" in argv else None
    session = Session(workdir)
    loaded = session.preload([m for m in preload if m])
    session.skip_logs()  # what the imports printed (warnings) is not the first call's output
    session.reply({"ready": True, "pid": os.getpid(), "preloaded": loaded,
                   "python": sys.version.split()[0]})
    for line in session.requests:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            code = str(req["code"])
        except (ValueError, KeyError, TypeError) as exc:
            session.reply({"id": None, "status": "error", "logs": "", "truncated": False, "images": [],
                           "error": {"type": "ProtocolError", "message": str(exc), "traceback": ""}})
            continue
        result = session.run(code, float(req.get("timeout") or DEFAULT_TIMEOUT),
                             int(req.get("max_output") or DEFAULT_MAX_OUTPUT))
        session.reply({"id": req.get("id"), **result})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
