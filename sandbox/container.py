"""One code_interpreter session: a throwaway, locked-down Docker container running sandbox/repl.py, driven
through the Docker API (so the engine can be remote: DOCKER_HOST). Files go in and out with put_archive /
get_archive — never host bind mounts — and /mnt/data is a size-limited tmpfs volume of its own.

Isolation: no network, every capability dropped, no-new-privileges, non-root user, read-only root
filesystem, memory without swap, CPU quota, pids limit (nproc ulimit under gVisor, where --pids-limit
fails), per-file size ulimit, an init process to reap orphans. The Docker socket is never mounted.
"""

import contextlib
import io
import json
import socket
import struct
import tarfile
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import docker
from docker.models.containers import Container
from docker.types import Mount, Ulimit

from shared.config import Settings, get_settings

LABEL = "assistants.sandbox"
NAMESPACE_LABEL = "assistants.namespace"
CREATED_LABEL = "assistants.created"
SANDBOX_UID = 10001
HARD_DEADLINE_GRACE = 5.0  # seconds past the soft timeout before the container is killed


@dataclass
class Result:
    status: str  # ok | error | timeout | oom | crashed
    logs: str = ""
    truncated: bool = False
    error: dict[str, Any] | None = None
    images: list[str] = field(default_factory=list)  # base64 PNG
    files: list[str] = field(default_factory=list)  # paths under /mnt/data the call created or changed
    reset: bool = False  # the session died: variables and files are gone


class SandboxError(Exception):
    pass


def client() -> docker.DockerClient:
    return docker.from_env(timeout=30)


class Sandbox:
    def __init__(self, container: Container, volume: str, sock: Any, settings: Settings) -> None:
        self.container, self.volume, self._sock, self.settings = container, volume, sock, settings
        self._buf = b""
        self.alive = True
        self.ready: dict[str, Any] = {}

    # ---- lifecycle ---------------------------------------------------------------------------------------
    @classmethod
    def start(cls, *, labels: dict[str, str] | None = None, settings: Settings | None = None,
              docker_client: docker.DockerClient | None = None, name: str | None = None) -> "Sandbox":
        s = settings or get_settings()
        dc = docker_client or client()
        name = name or f"sandbox-{uuid.uuid4().hex[:16]}"
        tags = {LABEL: "1", NAMESPACE_LABEL: s.sandbox_namespace, CREATED_LABEL: str(int(time.time())),
                **(labels or {})}
        volume = dc.volumes.create(name=name, driver="local", labels=tags, driver_opts={
            "type": "tmpfs", "device": "tmpfs",
            "o": f"size={s.sandbox_data_mb}m,uid={SANDBOX_UID},gid={SANDBOX_UID},mode=0700"})
        limits = [Ulimit(name="fsize", soft=s.sandbox_file_mb << 20, hard=s.sandbox_file_mb << 20),
                  Ulimit(name="nofile", soft=512, hard=512)]
        kwargs: dict[str, Any] = {}
        if s.sandbox_runtime:
            kwargs["runtime"] = s.sandbox_runtime
            limits.append(Ulimit(name="nproc", soft=s.sandbox_pids, hard=s.sandbox_pids))
        else:
            kwargs["pids_limit"] = s.sandbox_pids
        container = dc.containers.create(
            # detach=True keeps StdinOnce off: the REPL's stdin must outlive each worker's attach.
            s.sandbox_image, name=name, stdin_open=True, detach=True, tty=False, network_mode="none",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"], read_only=True, user=f"{SANDBOX_UID}:{SANDBOX_UID}",
            mem_limit=f"{s.sandbox_memory_mb}m", memswap_limit=f"{s.sandbox_memory_mb}m",
            nano_cpus=int(s.sandbox_cpus * 1e9), ulimits=limits, init=True, labels=tags,
            tmpfs={"/tmp": "size=64m,mode=1777", "/run/repl": "size=16m,mode=1777"},
            mounts=[Mount(target="/mnt/data", source=volume.name, type="volume")], **kwargs)
        try:
            sock = container.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1, "logs": 1})
            container.start()
            box = cls(container, volume.name, sock, s)
            box.ready = box._read_message(deadline=time.monotonic() + 60)
        except BaseException:
            _remove(dc, container, volume.name)
            raise
        return box

    @classmethod
    def attach(cls, container: Container, *, settings: Settings | None = None) -> "Sandbox":
        """Take over a running session (another worker may have started it): attach to its REPL afresh."""
        container.reload()
        if container.status != "running":
            raise SandboxError(f"sandbox {container.name} is {container.status}")
        volume = next(m["Name"] for m in container.attrs["Mounts"] if m.get("Destination") == "/mnt/data")
        sock = container.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
        return cls(container, volume, sock, settings or get_settings())

    def detach(self) -> None:
        """Let go of the session, leaving it running for the next call (of this worker or another)."""
        with contextlib.suppress(OSError):
            self._sock.close()

    def destroy(self) -> None:
        self.alive = False
        with contextlib.suppress(OSError):
            self._sock.close()
        _remove(self.container.client, self.container, self.volume)

    # ---- running code ------------------------------------------------------------------------------------
    def run(self, code: str, timeout: float | None = None) -> Result:
        if not self.alive:
            raise SandboxError("the sandbox is gone")
        timeout = timeout or self.settings.sandbox_timeout_seconds
        request = {"id": uuid.uuid4().hex, "code": code, "timeout": timeout,
                   "max_output": self.settings.sandbox_max_output_bytes}
        try:
            _raw(self._sock).sendall((json.dumps(request) + "\n").encode())
            deadline = time.monotonic() + timeout + HARD_DEADLINE_GRACE
            reply = self._read_message(deadline)
            while reply.get("id") != request["id"]:  # a reply meant for a worker that died mid-call
                reply = self._read_message(deadline)
        except TimeoutError:
            self._kill()
            return Result(status="timeout", reset=True, error={
                "type": "TimeoutError", "message": f"execution timed out after {timeout:g} s", "traceback": ""})
        except (ConnectionError, OSError, EOFError):
            return self._died()
        return Result(status=reply["status"], logs=reply.get("logs", ""), truncated=bool(reply.get("truncated")),
                      error=reply.get("error"), images=list(reply.get("images") or []),
                      files=list(reply.get("files") or []))

    def _died(self) -> Result:
        """The REPL went away mid-call: find out why (the kernel's OOM killer, usually)."""
        self.alive = False
        try:
            self.container.reload()
            state = self.container.attrs.get("State", {})
        except docker.errors.APIError:
            state = {}
        self._kill()
        if state.get("OOMKilled") or state.get("ExitCode") == 137:
            limit = self.settings.sandbox_memory_mb
            return Result(status="oom", reset=True, error={
                "type": "MemoryError", "traceback": "",
                "message": f"the code ran out of memory (limit {limit} MB) and the session was restarted"})
        return Result(status="crashed", reset=True, error={
            "type": "SandboxCrash", "message": f"the Python process exited (code {state.get('ExitCode')}) and the "
            "session was restarted", "traceback": ""})

    def _kill(self) -> None:
        self.alive = False
        with contextlib.suppress(docker.errors.APIError):
            self.container.kill()

    def _read_message(self, deadline: float) -> dict[str, Any]:
        """Read one JSON line from the container's stdout (Docker multiplexes it in 8-byte-header frames)."""
        raw = _raw(self._sock)
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError()
            raw.settimeout(left)
            try:
                header = _recv_exact(raw, 8)
                (size,) = struct.unpack(">I", header[4:])
                payload = _recv_exact(raw, size)
            except TimeoutError as exc:
                raise TimeoutError() from exc
            if header[0] == 1:  # stdout; stderr (2) carries nothing of the protocol
                self._buf += payload
        line, _, self._buf = self._buf.partition(b"\n")
        return json.loads(line)  # type: ignore[no-any-return]

    # ---- files -------------------------------------------------------------------------------------------
    def put_files(self, files: dict[str, bytes]) -> None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name=_safe_name(name))
                info.size, info.mode, info.uid, info.gid = len(data), 0o644, SANDBOX_UID, SANDBOX_UID
                info.mtime = int(time.time())
                tar.addfile(info, io.BytesIO(data))
        if not self.container.put_archive("/mnt/data", buf.getvalue()):
            raise SandboxError("could not copy files into the sandbox")

    def get_file(self, path: str) -> bytes:
        """One file under /mnt/data (relative path)."""
        stream, _ = self.container.get_archive(f"/mnt/data/{path}")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream)), mode="r") as tar:
            member = next(m for m in tar.getmembers() if m.isfile())
            f = tar.extractfile(member)
            if f is None:
                raise SandboxError(f"{path} is not a regular file")
            return f.read()

    def get_files(self) -> dict[str, bytes]:
        """Everything under /mnt/data (regular files, relative names)."""
        stream, _ = self.container.get_archive("/mnt/data/.")
        out: dict[str, bytes] = {}
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream)), mode="r") as tar:
            for member in tar.getmembers():
                if member.isfile():
                    f = tar.extractfile(member)
                    if f is not None:
                        out[member.name.removeprefix("./")] = f.read()
        return out


def _safe_name(name: str) -> str:
    base = name.replace("\\", "/").split("/")[-1].strip() or "file"
    return base if base not in (".", "..") else "file"


def _raw(sock: Any) -> socket.socket:
    return sock._sock if hasattr(sock, "_sock") else sock  # type: ignore[no-any-return]


def _recv_exact(raw: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = raw.recv(n - len(data))
        if not chunk:
            raise EOFError()
        data += chunk
    return data


def _remove(dc: docker.DockerClient, container: Container, volume: str) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        container.remove(force=True)
    with contextlib.suppress(docker.errors.NotFound):
        dc.volumes.get(volume).remove(force=True)


def remove_namespace(namespace: str, docker_client: docker.DockerClient | None = None) -> int:
    """Remove every sandbox (container and volume) of a deployment; returns how many containers went."""
    dc = docker_client or client()
    selector = {"label": [LABEL, f"{NAMESPACE_LABEL}={namespace}"]}
    containers = dc.containers.list(all=True, filters=selector)
    for c in containers:
        with contextlib.suppress(docker.errors.NotFound):
            c.remove(force=True)
    for v in dc.volumes.list(filters=selector):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            v.remove(force=True)
    return len(containers)
