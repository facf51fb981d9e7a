"""`make up-local` / `make down-local`: Postgres, Redis, the API, a Celery worker per queue, beat and Flower as
local processes on this machine, their state under one directory (default `.stack/`). Tests use the same code
with `--ephemeral`; `make up` runs the same services in Docker Compose (deploy/compose/).

    python -m deploy.local.stack up [--state-dir DIR] [--api-port N] [--json]
    python -m deploy.local.stack down [--state-dir DIR] [--purge]
"""

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from deploy.local import postgres

DB_NAME = "assistants"
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _supervised(name: str, args: list[str], state: Path) -> list[str]:
    """A worker or the beat may exit (see deploy/local/supervise.py): it is started again, as Compose would."""
    (state / "pids").mkdir(exist_ok=True)
    return [sys.executable, "-m", "deploy.local.supervise", "--pidfile", str(state / "pids" / f"{name}.pid"),
            "--", *args]


def _spawn(name: str, args: list[str], state: Path, env: dict[str, str]) -> int:
    log = open(state / "logs" / f"{name}.log", "ab")  # noqa: SIM115  (handed to the child)
    env = {"DB_APPLICATION_NAME": f"assistants-{name}", **env}
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, start_new_session=True, cwd=Path(__file__).resolve().parents[2])
    # Kept, so that one service can be started again alone (`respawn`: tests kill workers on purpose).
    services = state / "services.json"
    known = json.loads(services.read_text()) if services.exists() else {}
    known[name] = {"args": args, "env": env}
    services.write_text(json.dumps(known))
    services.chmod(0o600)
    return proc.pid


def _wait_http(url: str, what: str, pid: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            raise SystemExit(f"{what} exited during start-up; see its log")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} not healthy after {timeout}s ({url})")


def _wait_worker(env: dict[str, str], pid: int, timeout: float = 60, node: str | None = None) -> None:
    os.environ.update(env)
    from worker.celery_app import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            raise SystemExit("worker exited during start-up; see its log")
        if app.control.ping(timeout=1.0, destination=[node] if node else None):
            return
    raise SystemExit(f"worker did not answer a ping within {timeout}s")


def _dev_key(state: Path, env: dict[str, str]) -> str:
    key_file = state / "dev_key"
    if key_file.exists():
        return key_file.read_text().strip()
    out = subprocess.run([sys.executable, "-m", "api.admin", "create-key", "--project", "default",
                          "--name", "dev"], env=env, check=True, capture_output=True, text=True)
    key = out.stdout.strip().splitlines()[-1]
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    return key


def runs_concurrency(args: argparse.Namespace) -> int:
    """Steps the runs worker holds at once: a gevent worker waits on hundreds of model calls in one process."""
    if args.concurrency:
        return int(args.concurrency)
    if os.environ.get("RUNS_CONCURRENCY"):
        return int(os.environ["RUNS_CONCURRENCY"])
    return 500 if args.pool == "gevent" else 4


def runs_workers(args: argparse.Namespace) -> int:
    """Runs worker processes: one by default (the suites kill and respawn "worker"), one per core for speed."""
    return int(args.runs_workers or os.environ.get("RUNS_WORKERS") or 1)


def up(args: argparse.Namespace) -> dict[str, object]:
    state: Path = args.state_dir.resolve()
    info_file = state / "stack.json"
    if info_file.exists():
        info = json.loads(info_file.read_text())
        if all(_alive(p) for p in info["pids"].values()):
            return dict(info)
        down_dir(state, purge=False)
    (state / "logs").mkdir(parents=True, exist_ok=True)
    shutil.rmtree(state / "pids", ignore_errors=True)  # a supervised service writes its pid there when it starts
    ports = {
        "postgres": args.pg_port or free_port(),
        "redis": args.redis_port or free_port(),
        "api": args.api_port or free_port(),
        "flower": args.flower_port or free_port(),
        # Prometheus metrics of the runs worker (the other workers serve none here: one port per host each).
        "worker_metrics": args.worker_metrics_port or free_port(),
    }
    if not shutil.which("redis-server"):
        raise SystemExit("redis-server is not installed (make installs it: apt-get install redis-server)")
    postgres.start(state / "pg", ports["postgres"], state / "logs" / "postgres.log", fast_unsafe=args.ephemeral)
    postgres.ensure_database(ports["postgres"], DB_NAME)
    pids: dict[str, int] = {}
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:{ports['postgres']}/{DB_NAME}",
        REDIS_URL=f"redis://127.0.0.1:{ports['redis']}/0",
        BLOB_DIR=str(state / "blobs"),
        SANDBOX_NAMESPACE=_namespace(state),
        PYTHONUNBUFFERED="1",
    )
    env.setdefault("WEBHOOK_ALLOW_PRIVATE_URLS", "true")  # a local stack's receivers are local too
    (state / "redis").mkdir(exist_ok=True)
    pids["redis"] = _spawn("redis", ["redis-server", "--port", str(ports["redis"]), "--bind", "127.0.0.1",
                                     "--dir", str(state / "redis"), "--save", "",
                                     "--appendonly", "no" if args.ephemeral else "yes"], state, env)
    pids["api"] = _spawn("api", [str(VENV_BIN / "uvicorn"), "api.main:app", "--host", "127.0.0.1",
                                 "--port", str(ports["api"]), "--no-access-log"], state, env)
    # A runs worker is one process, on one core (gevent); more processes use more cores. The first, "worker",
    # serves its metrics on the stack's worker_metrics port; the others ("worker-2", …) serve none.
    runs_nodes = []
    for i in range(1, runs_workers(args) + 1):
        name, node, worker_env = "worker", "runs", {**env, "METRICS_PORT": str(ports["worker_metrics"])}
        if i > 1:
            name, node, worker_env = f"worker-{i}", f"runs{i}", {**env, "METRICS_PORT": "0"}
        runs_nodes.append((name, node))
        pids[name] = _spawn(name, _supervised(name, [
            str(VENV_BIN / "celery"), "-A", "worker.celery_app", "worker", "-E", "-Q", "runs",
            "-c", str(runs_concurrency(args)), "-P", args.pool, "-n", f"{node}@{socket.gethostname()}",
            "--loglevel", "INFO"], state), state, worker_env)
    # code_interpreter calls run on their own queue (and need the Docker engine).
    pids["code-worker"] = _spawn("code-worker", _supervised("code-worker", [
        str(VENV_BIN / "celery"), "-A", "worker.celery_app", "worker", "-E", "-Q", "code", "-c", "2",
        "-n", f"code@{socket.gethostname()}", "--loglevel", "INFO"], state), state, env)
    # file_search ingestion (parse, chunk, embed) on its own queue: one process, whose numpy uses every core.
    pids["ingest-worker"] = _spawn("ingest-worker", _supervised("ingest-worker", [
        str(VENV_BIN / "celery"), "-A", "worker.celery_app", "worker", "-E", "-Q", "ingest", "-c", "1",
        "-n", f"ingest@{socket.gethostname()}", "--loglevel", "INFO"], state), state, env)
    # Webhook deliveries on their own queue.
    pids["webhook-worker"] = _spawn("webhook-worker", _supervised("webhook-worker", [
        str(VENV_BIN / "celery"), "-A", "worker.celery_app", "worker", "-E", "-Q", "webhooks", "-c", "2",
        "-n", f"webhooks@{socket.gethostname()}", "--loglevel", "INFO"], state), state, env)
    # Exactly one beat: it expires overdue runs and re-enqueues lost steps.
    pids["beat"] = _spawn("beat", _supervised("beat", [
        str(VENV_BIN / "celery"), "-A", "worker.celery_app", "beat", "-s", str(state / "celerybeat-schedule"),
        "--loglevel", "INFO"], state), state, env)
    if not args.no_flower:
        pids["flower"] = _spawn("flower", [str(VENV_BIN / "celery"), "-A", "worker.celery_app", "flower",
                                           "--address=127.0.0.1", f"--port={ports['flower']}"], state, env)
    info = {"pids": pids, "ports": ports, "state_dir": str(state), "sandbox_namespace": env["SANDBOX_NAMESPACE"],
            "ephemeral": args.ephemeral,
            "base_url": f"http://127.0.0.1:{ports['api']}/v1",
            "flower_url": None if args.no_flower else f"http://127.0.0.1:{ports['flower']}",
            "worker_metrics_url": f"http://127.0.0.1:{ports['worker_metrics']}/metrics",
            "env": {k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "BLOB_DIR")}}
    info_file.write_text(json.dumps(info, indent=2))
    try:
        _wait_http(f"http://127.0.0.1:{ports['api']}/readyz", "api", pids["api"])
        for name, node in runs_nodes:
            _wait_worker(env, pids[name], node=f"{node}@{socket.gethostname()}")
        info["api_key"] = _dev_key(state, env)
    except BaseException:
        down_dir(state, purge=False)
        raise
    info_file.write_text(json.dumps(info, indent=2))
    return info


def respawn(state: Path, name: str) -> int:
    """Start service `name` again as it was started (after it was killed); returns its new pid. `postgres` is
    restarted (a fast shutdown, as `docker restart` does, then a start on the same port)."""
    info_file = state / "stack.json"
    info = json.loads(info_file.read_text())
    if name == "postgres":
        postgres.stop(state / "pg")
        postgres.start(state / "pg", info["ports"]["postgres"], state / "logs" / "postgres.log",
                       fast_unsafe=info.get("ephemeral", False))
        return int((state / "pg" / "postmaster.pid").read_text().split()[0])
    service = json.loads((state / "services.json").read_text())[name]
    pidfile = state / "pids" / f"{name}.pid"
    if pidfile.exists():  # supervised: kill the service, its supervisor starts it again
        old = int(pidfile.read_text())
        with contextlib.suppress(OSError):
            os.kill(old, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while int(pidfile.read_text() or old) == old:
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} was not started again by its supervisor")
            time.sleep(0.1)
    else:
        with contextlib.suppress(OSError):
            os.killpg(info["pids"][name], signal.SIGKILL)
        info["pids"][name] = _spawn(name, service["args"], state, service["env"])
        info_file.write_text(json.dumps(info, indent=2))
    if "-n" in service["args"]:  # a Celery worker: wait until it answers as itself
        _wait_worker(service["env"], info["pids"][name], node=service["args"][service["args"].index("-n") + 1])
    return int(pidfile.read_text()) if pidfile.exists() else int(info["pids"][name])


def down_dir(state: Path, purge: bool) -> None:
    info_file = state / "stack.json"
    if info_file.exists():
        pids = json.loads(info_file.read_text())["pids"]
        for pid in pids.values():
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in pids.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in pids.values():
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        info_file.unlink()
    postgres.stop(state / "pg")
    _remove_sandboxes(state)
    if purge:
        shutil.rmtree(state, ignore_errors=True)


def _namespace(state: Path) -> str:
    return "stack-" + hashlib.sha256(str(state).encode()).hexdigest()[:12]


def _remove_sandboxes(state: Path) -> None:
    """code_interpreter sessions end with the stack (their threads' state lives on in Postgres and the files)."""
    try:
        from sandbox.container import remove_namespace

        remove_namespace(_namespace(state))
    except Exception as exc:  # no Docker engine, or it is unreachable: nothing of ours can be running there
        print(f"note: sandboxes not checked ({exc.__class__.__name__})", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.local.stack")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="start the stack in the background and wait until it is healthy")
    p_up.add_argument("--state-dir", type=Path, default=Path(".stack"))
    p_up.add_argument("--api-port", type=int, default=8000, help="0: any free port")
    p_up.add_argument("--pg-port", type=int, default=5433, help="0: any free port")
    p_up.add_argument("--redis-port", type=int, default=6380, help="0: any free port")
    p_up.add_argument("--flower-port", type=int, default=5555, help="0: any free port")
    p_up.add_argument("--worker-metrics-port", type=int, default=9100, help="0: any free port")
    p_up.add_argument("--no-flower", action="store_true")
    p_up.add_argument("--concurrency", type=int, default=None,
                      help="runs in flight in the runs worker (default: 500 with gevent, 4 with prefork)")
    p_up.add_argument("--runs-workers", type=int, default=None,
                      help="runs worker processes (default: RUNS_WORKERS or 1; one per core uses every core)")
    p_up.add_argument("--pool", default=os.environ.get("WORKER_POOL", "gevent"),
                      choices=["gevent", "prefork", "threads"], help="Celery pool of the runs worker")
    p_up.add_argument("--ephemeral", action="store_true", help="test mode: no durability (fsync off)")
    p_up.add_argument("--json", action="store_true")
    p_respawn = sub.add_parser("respawn", help="start one service again (e.g. a worker that was killed)")
    p_respawn.add_argument("--state-dir", type=Path, default=Path(".stack"))
    p_respawn.add_argument("service")
    p_down = sub.add_parser("down", help="stop the stack, keeping its data")
    p_down.add_argument("--state-dir", type=Path, default=Path(".stack"))
    p_down.add_argument("--purge", action="store_true", help="also delete the data")
    args = parser.parse_args()
    if args.cmd == "down":
        down_dir(args.state_dir.resolve(), purge=args.purge)
        return
    if args.cmd == "respawn":
        print(respawn(args.state_dir.resolve(), args.service))
        return
    info = up(args)
    if args.json:
        print(json.dumps(info))
        return
    print(f"Assistants API: {info['base_url']}")
    print(f"API key:        {info['api_key']}")
    print(f"Playground:     {str(info['base_url']).removesuffix('/v1')}/playground/   (sign in with the key above)")
    if info.get("flower_url"):
        print(f"Flower:         {info['flower_url']}")
    print(f"Logs:           {info['state_dir']}/logs/   (stop with: make down)")


if __name__ == "__main__":
    main()
