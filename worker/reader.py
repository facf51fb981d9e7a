"""Reading a file's text out of process: parsers of hostile input (pypdf, lxml, our own) run in a child process
that has a memory limit (RLIMIT_AS, INGEST_READ_MEMORY_MB) and is killed at a deadline (INGEST_READ_SECONDS), so
whatever a file makes them do, the ingest worker's memory and time stay bounded and the file ends `invalid_file`
with the reason. The child streams the text back through a pipe as it reads (a frame per segment), so neither
process holds the whole text; the parent stops it as soon as it has seen enough (e.g. the token cap).

Protocol (child -> parent, on the child's stdout): frames of a kind byte and a 4-byte length, then the payload:
`S` a segment (UTF-8), `E` an ExtractError (JSON code/message), `D` done. A child that ends without `E` or `D`
crashed or was killed.
"""

import contextlib
import json
import logging
import os
import resource
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import IO

from worker.ingest_limits import MB, ExtractError, Limits, read_out_of_memory, read_overtime

log = logging.getLogger("worker.reader")

_HEADER = struct.Struct(">cI")
SEGMENT, ERROR, DONE = b"S", b"E", b"D"
_OUT_OF_MEMORY = 3  # the child's exit status when a MemoryError left it unable to say so itself


def segments(filename: str, path: Path, limits: Limits, deadline: float) -> Generator[str, None, None]:
    """The file's text segments (worker/extract.py's), read by a child process; ExtractError for a file that
    is unreadable or over a bound, including reading past `deadline` (time.monotonic()). Closing the generator
    early kills the child."""
    stderr = tempfile.TemporaryFile()  # noqa: SIM115  (closed below; read if the child dies)
    proc = subprocess.Popen([sys.executable, "-m", "worker.reader", filename, str(path), limits.to_json()],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, close_fds=True)
    assert proc.stdout is not None
    overtime = threading.Event()

    def stop() -> None:
        overtime.set()
        with contextlib.suppress(OSError):
            proc.kill()

    timer = threading.Timer(max(0.0, deadline - time.monotonic()), stop)
    timer.daemon = True
    timer.start()
    try:
        while (head := _read_exact(proc.stdout, _HEADER.size)) is not None:
            kind, length = _HEADER.unpack(head)
            payload = _read_exact(proc.stdout, length)
            if payload is None:
                break
            if kind == SEGMENT:
                yield payload.decode()
            elif kind == ERROR:
                error = json.loads(payload)
                raise ExtractError(error["code"], error["message"])
            elif kind == DONE:
                return
        status = proc.wait()
        if overtime.is_set() or time.monotonic() >= deadline:
            raise read_overtime(limits)
        if status == _OUT_OF_MEMORY:
            raise read_out_of_memory(limits)
        stderr.seek(0, os.SEEK_END)
        stderr.seek(max(0, stderr.tell() - 2000))
        log.warning("the reader of %s stopped with status %s: %s", filename, status,
                    stderr.read().decode(errors="replace"))
        raise ExtractError("invalid_file", f"The file could not be read (its reader stopped: {_status(status)}).")
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
        stderr.close()


def _read_exact(stream: IO[bytes], n: int) -> bytes | None:
    data = stream.read(n)
    return data if len(data) == n else None


def _status(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return f"exit status {code}"


# ---- the child ---------------------------------------------------------------------------------------------------
def _limit_self(limits: Limits) -> None:
    memory = limits.read_memory_mb * MB
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = int(limits.read_seconds) + 5  # a backstop: the parent kills the child at the deadline
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    # Die with the worker process (SIGKILLed mid-file, say) rather than read on for nobody.
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # a damaged PDF may warn about every object


def _frame(out: IO[bytes], kind: bytes, payload: bytes) -> None:
    out.write(_HEADER.pack(kind, len(payload)))
    out.write(payload)


def _error(out: IO[bytes], e: ExtractError) -> None:
    _frame(out, ERROR, json.dumps({"code": e.code, "message": e.message}).encode())
    out.flush()


def main() -> None:
    filename, path, raw = sys.argv[1:4]
    limits = Limits.from_json(raw)
    _limit_self(limits)
    from worker import extract

    out = sys.stdout.buffer
    try:
        for segment in extract.segments(filename, Path(path), limits):
            _frame(out, SEGMENT, segment.encode("utf-8", "replace"))
        _frame(out, DONE, b"")
        out.flush()
    except BrokenPipeError:
        os._exit(0)  # the parent stopped reading: it has what it needs
    except ExtractError as e:
        _error(out, e)
    except MemoryError:
        try:
            _error(out, read_out_of_memory(limits))
        finally:
            os._exit(_OUT_OF_MEMORY)
    except RecursionError:
        _error(out, ExtractError("invalid_file", "The file's structure is nested too deeply to be read."))
    except Exception as e:  # a parser's failure on a damaged file: the file's problem, told to the user
        import traceback

        traceback.print_exc()
        _error(out, ExtractError("invalid_file", f"The file could not be read: {e.__class__.__name__}: {e}"))


if __name__ == "__main__":
    main()
