"""`make up` / `make down`: the local cluster in Docker Compose (deploy/compose/docker-compose.yml).

    python -m deploy.compose.cluster up [--project NAME] [--api-replicas 2] [--json]
    python -m deploy.compose.cluster scale SERVICE N
    python -m deploy.compose.cluster down [--purge]

`up` expects the images built (the Makefile runs deploy/docker/build.sh and sandbox/image/build.sh first), starts
everything, waits until the API answers through the proxy and Flower answers, makes a dev API key once, and
prints where things are. `down` stops the containers and keeps the volumes (data survives); --purge drops them.
Works with the `docker compose` plugin or the standalone docker-compose.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "deploy" / "compose" / "docker-compose.yml"


def compose_command() -> list[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise SystemExit("neither `docker compose` nor docker-compose is installed (make installs Debian's docker-compose)")


class Cluster:
    def __init__(self, project: str, api_port: int = 8000, flower_port: int = 5555,
                 extra_env: dict[str, str] | None = None) -> None:
        self.project, self.api_port, self.flower_port = project, api_port, flower_port
        self.state = ROOT / ".cluster" / project
        self.env = {**os.environ, **(extra_env or {}), "API_PORT": str(api_port), "FLOWER_PORT": str(flower_port),
                    "SANDBOX_NAMESPACE": project, "DOCKER_GID": str(_docker_gid())}
        self.command = compose_command()
        self.base = [*self.command, "-p", project, "-f", str(COMPOSE_FILE)]
        self.info: dict[str, str] = {}

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def flower_url(self) -> str:
        return f"http://127.0.0.1:{self.flower_port}"

    def compose(self, *args: str, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.base, *args], env=self.env, check=check, text=True,
                              capture_output=capture, cwd=ROOT)

    def up(self, api_replicas: int = 2, runs_workers: int = 2, wait: float = 300) -> dict[str, str]:
        """Start the cluster. A runs worker is one gevent process, which runs on one core however many model
        calls it holds: two of them use both cores of a small box (measured: 19 runs/s with one, 25 with two)."""
        self.state.mkdir(parents=True, exist_ok=True)
        self.compose("up", "-d", "--remove-orphans", "--scale", f"api={api_replicas}",
                     "--scale", f"worker-runs={runs_workers}")
        _wait_http(f"{self.api_url}/readyz", "the API (through the proxy)", wait)
        _wait_http(f"{self.flower_url}/healthcheck", "Flower", wait)
        self.info = {"base_url": f"{self.api_url}/v1", "api_key": self.dev_key(), "flower_url": self.flower_url,
                     "metrics_url": f"{self.api_url}/metrics", "project": self.project}
        return self.info

    def dev_key(self) -> str:
        """A key of the `default` project, made once per database (the file is checked against the API)."""
        key_file = self.state / "dev_key"
        if key_file.exists():
            key = key_file.read_text().strip()
            if _key_works(self.api_url, key):
                return key
        out = self.compose("exec", "-T", "api", "python", "-m", "api.admin", "create-key", "--project", "default",
                           "--name", "dev", capture=True)
        key = out.stdout.strip().splitlines()[-1]
        key_file.write_text(key + "\n")
        key_file.chmod(0o600)
        return key

    def scale(self, service: str, n: int) -> None:
        self.compose("up", "-d", "--no-recreate", "--no-deps", "--scale", f"{service}={n}", service)

    def containers(self, service: str) -> list[str]:
        out = self.compose("ps", "-q", service, capture=True)
        return [c for c in out.stdout.split() if c]

    def down(self, purge: bool = False) -> None:
        self.compose("down", "--remove-orphans", *(["-v"] if purge else []), check=False)
        _remove_sandboxes(self.project)
        if purge:
            shutil.rmtree(self.state, ignore_errors=True)


def _docker_gid() -> int:
    try:
        return os.stat("/var/run/docker.sock").st_gid
    except OSError:
        return 0


def _wait_http(url: str, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=3) as r:
                if r.status == 200:
                    return
        except (OSError, urllib.error.URLError) as exc:
            last = str(exc)
        time.sleep(1)
    raise SystemExit(f"{what} did not answer at {url} within {timeout:.0f}s ({last}); see `docker compose logs`")


def _key_works(api_url: str, key: str) -> bool:
    req = urllib.request.Request(f"{api_url}/v1/assistants?limit=1",
                                 headers={"Authorization": f"Bearer {key}", "OpenAI-Beta": "assistants=v2"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return bool(r.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _remove_sandboxes(namespace: str) -> None:
    """code_interpreter sessions are started by the workers, outside Compose: they end with the cluster."""
    try:
        from sandbox.container import remove_namespace

        remove_namespace(namespace)
    except Exception as exc:  # no Docker SDK or engine here: nothing of ours can be running
        print(f"note: sandboxes not checked ({exc.__class__.__name__})", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.compose.cluster")
    parser.add_argument("--project", default=os.environ.get("COMPOSE_PROJECT_NAME", "assistants"))
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("API_PORT", "8000")))
    parser.add_argument("--flower-port", type=int, default=int(os.environ.get("FLOWER_PORT", "5555")))
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="start the cluster and wait until it is healthy")
    p_up.add_argument("--api-replicas", type=int, default=2)
    p_up.add_argument("--runs-workers", type=int, default=int(os.environ.get("RUNS_WORKERS") or 2),
                      help="runs worker containers, one process each (default: RUNS_WORKERS or 2)")
    p_up.add_argument("--json", action="store_true")
    p_scale = sub.add_parser("scale", help="run N containers of a service (e.g. worker-runs 3)")
    p_scale.add_argument("service")
    p_scale.add_argument("n", type=int)
    p_down = sub.add_parser("down", help="stop the cluster, keeping its volumes")
    p_down.add_argument("--purge", action="store_true", help="also delete the volumes (all data)")
    args = parser.parse_args()
    cluster = Cluster(args.project, args.api_port, args.flower_port)
    if args.cmd == "down":
        cluster.down(purge=args.purge)
        return
    if args.cmd == "scale":
        cluster.scale(args.service, args.n)
        return
    info = cluster.up(api_replicas=args.api_replicas, runs_workers=args.runs_workers)
    if args.json:
        print(json.dumps(info))
        return
    print(f"Assistants API: {info['base_url']}")
    print(f"API key:        {info['api_key']}")
    print(f"Playground:     {info['base_url'].removesuffix('/v1')}/playground/   (sign in with the key above)")
    print(f"Flower:         {info['flower_url']}")
    print(f"Metrics:        {info['metrics_url']}")
    print(f"Logs:           {' '.join(cluster.command)} -p {args.project} logs -f   (stop with: make down)")


if __name__ == "__main__":
    main()
