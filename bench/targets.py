"""What a benchmark runs against, and what it can read off it while it runs.

`LocalTarget` starts a private stack (the test suites' code: real Postgres, Redis, API and Celery workers as local
processes); `ClusterTarget` is `make up`'s Docker Compose cluster, found by its Compose project. Both report the
runs workers' resident memory, Postgres's connections and Redis's memory, so a benchmark prints the same
figures for either.
"""

import subprocess
from pathlib import Path
from typing import Protocol

import psycopg
import redis

from bench.cpu import descendants
from deploy.compose.cluster import Cluster
from tests import stack as stack_mod

_SQL_CONNECTIONS = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"


class Target(Protocol):
    base_url: str
    api_key: str

    def runs_worker_rss(self) -> int: ...
    def pg_connections(self) -> int: ...
    def redis_memory(self) -> int: ...
    def close(self) -> None: ...


def rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class LocalTarget:
    def __init__(self, state_dir: Path, model_url: str, extra_env: dict[str, str] | None = None) -> None:
        self.stack = stack_mod.start(state_dir, {"LLM_BASE_URL": model_url, **(extra_env or {})})
        self.base_url, self.api_key = self.stack.base_url, self.stack.api_key
        self._redis = redis.Redis.from_url(self.stack.env["REDIS_URL"])

    def runs_worker_rss(self) -> int:
        return sum(rss(self.stack.pid(name)) + sum(rss(p) for p in self.stack.children(name))
                   for name in self.stack.services() if name == "worker" or name.startswith("worker-"))

    def pg_connections(self) -> int:
        dsn = self.stack.env["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, autocommit=True) as conn:
            return int(conn.execute(_SQL_CONNECTIONS).fetchone()[0]) - 1  # type: ignore[index]

    def redis_memory(self) -> int:
        return int(self._redis.info("memory")["used_memory"])

    def close(self) -> None:
        stack_mod.stop(self.stack)


class ClusterTarget:
    """`make up`'s cluster (project `assistants` unless told otherwise), driven through its proxy.

    Its figures are read cheaply, because they are sampled every second while the benchmark runs on the same
    cores: containers are looked up once (`docker-compose ps` is a Python program, ~0.4 s of CPU a call), memory
    is read from /proc (`docker stats` takes 1.5 s a call and costs the engine CPU), commands go through
    `docker exec`."""

    def __init__(self, project: str = "assistants", api_port: int = 8000, api_host: str = "127.0.0.1") -> None:
        self.cluster = Cluster(project, api_port=api_port)
        # At 127.0.0.1 the published port is served by Docker's userland docker-proxy, a process copying every
        # byte (~5% of this box at 20 runs/s); at the host's own address the kernel forwards it, as it does for
        # clients on other machines.
        self.base_url = f"http://{api_host}:{api_port}/v1"
        self.api_key = self.cluster.dev_key()
        self._containers: dict[str, list[str]] = {}
        self._pids: dict[str, int] = {}

    def containers(self, service: str) -> list[str]:
        if service not in self._containers:
            self._containers[service] = self.cluster.containers(service)
        return self._containers[service]

    def _pid(self, container: str) -> int:
        """The container's first process, as the host sees it (looked up again if the container restarted);
        0 while it is stopped. A container gone (recreated) is looked up again at the next sample."""
        pid = self._pids.get(container)
        if pid is None or not Path(f"/proc/{pid}").exists():
            try:
                out = subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", container], capture_output=True,
                                     text=True, check=True).stdout
            except subprocess.CalledProcessError:
                self._containers.clear()
                raise
            pid = int(out)
            if pid:
                self._pids[container] = pid
        return pid

    def _exec(self, service: str, *cmd: str) -> str:
        return subprocess.run(["docker", "exec", self.containers(service)[0], *cmd], capture_output=True,
                              text=True, check=True).stdout

    def runs_worker_rss(self) -> int:
        """Resident memory of every process in the runs workers' containers."""
        pids = [self._pid(container) for container in self.containers("worker-runs")]
        return sum(rss(p) for pid in pids if pid for p in descendants(pid))

    def pg_connections(self) -> int:
        # Over the container's Unix socket (trusted); its TCP port asks for the password.
        psql = "$(python -c 'from deploy.local.postgres import bin_dir; print(bin_dir())')/psql"
        out = self._exec("postgres", "sh", "-c", f'{psql} -h /tmp -U postgres -d assistants -tAc '
                                                 f'"{_SQL_CONNECTIONS}"')
        return int(out.strip()) - 1

    def redis_memory(self) -> int:
        out = self._exec("redis", "redis-cli", "info", "memory")
        return int(next(line.split(":")[1] for line in out.splitlines() if line.startswith("used_memory:")))

    def close(self) -> None:
        pass

