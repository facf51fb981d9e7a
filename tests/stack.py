"""Start and stop a private stack (Postgres, Redis, API, worker) for a test session.

Standard library only, so the v1 test environment (openai 1.20.0, no project install) can use it too: the
stack runs under the project's own interpreter, `STACK_PYTHON` (default: this one).
"""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STACK_PYTHON = os.environ.get("STACK_PYTHON", sys.executable)


def child_pids(pid: int) -> list[int]:
    """A process's children, from the kernel's per-thread lists. Not a scan of every process in /proc: the
    benchmark samples memory every second, and those scans cost it ~3% of the machine it measures."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []  # gone
    if tasks and not (tasks[0] / "children").exists():
        return _scan_for_children(pid)  # a kernel built without CONFIG_PROC_CHILDREN
    out: list[int] = []
    for task in tasks:
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue  # the thread ended meanwhile
    return out


def _scan_for_children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return out


@dataclass
class Stack:
    state_dir: Path
    base_url: str
    api_key: str
    env: dict[str, str]
    worker_metrics_url: str = ""

    @property
    def root_url(self) -> str:
        return self.base_url.removesuffix("/v1")

    def admin(self, *args: str) -> str:
        """Run the operator CLI (`python -m api.admin …`) against this stack; returns its stdout."""
        out = subprocess.run([STACK_PYTHON, "-m", "api.admin", *args], cwd=ROOT, env={**os.environ, **self.env},
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"api.admin {args} failed:\n{out.stderr}")
        return out.stdout

    def new_key(self, project: str) -> str:
        return self.admin("create-key", "--project", project, "--name", "test").strip().splitlines()[-1]

    def pid(self, name: str) -> int:
        """The main process of one of the stack's services ("api", "worker", "code-worker", "ingest-worker", …);
        for a supervised one (the Celery workers and beat), the service itself, not its supervisor."""
        pidfile = self.state_dir / "pids" / f"{name}.pid"
        if pidfile.exists():
            return int(pidfile.read_text())
        return int(json.loads((self.state_dir / "stack.json").read_text())["pids"][name])

    def services(self) -> list[str]:
        return list(json.loads((self.state_dir / "stack.json").read_text())["pids"])

    def children(self, name: str) -> list[int]:
        """A service's child processes: for a Celery worker, the pool processes that execute tasks."""
        return child_pids(self.pid(name))

    def respawn(self, name: str) -> int:
        """Start service `name` again (after a test killed it); waits for a Celery worker to answer pings."""
        out = subprocess.run([STACK_PYTHON, "-m", "deploy.local.stack", "respawn", "--state-dir",
                              str(self.state_dir), name], cwd=ROOT, capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"respawn {name} failed:\n{out.stdout}\n{out.stderr}")
        return int(out.stdout.strip().splitlines()[-1])

    def log(self, name: str) -> str:
        path = self.state_dir / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def peak_rss(pid: int) -> int:
    """A process's peak resident memory so far (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for {pid}")


def start(state_dir: Path, extra_env: dict[str, str] | None = None) -> Stack:
    cmd = [STACK_PYTHON, "-m", "deploy.local.stack", "up", "--state-dir", str(state_dir), "--ephemeral",
           "--no-flower", "--json", "--api-port", "0", "--pg-port", "0", "--redis-port", "0",
           "--worker-metrics-port", "0",
           # One runs worker unless a test asks for more (the suites kill and respawn "worker", read its metrics).
           "--runs-workers", (extra_env or {}).get("RUNS_WORKERS", "1")]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={**os.environ, **(extra_env or {})})
    if out.returncode != 0:
        logs = "".join(f"\n--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                       for p in sorted((state_dir / "logs").glob("*.log")))
        raise RuntimeError(f"stack did not start:\n{out.stdout}\n{out.stderr}{logs}")
    info = json.loads(out.stdout.strip().splitlines()[-1])
    return Stack(state_dir=state_dir, base_url=info["base_url"], api_key=info["api_key"], env=info["env"],
                 worker_metrics_url=info["worker_metrics_url"])


def stop(stack: Stack) -> None:
    subprocess.run([STACK_PYTHON, "-m", "deploy.local.stack", "down", "--state-dir", str(stack.state_dir)],
                   cwd=ROOT, timeout=120, check=False)
