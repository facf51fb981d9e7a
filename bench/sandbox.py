"""code_interpreter sandbox latency, measured where the code worker sees it (sandbox/pool.py over the Docker
API). Needs the Docker engine and the sandbox image (`make sandbox-image`); starts a private redis-server.

- warm call: `print(1)` in a thread's live session — the REPL round trip on an attached session, and the whole
  per-task path of a code worker (find the thread's container, attach, run, detach);
- first call of a new thread: a session taken from the warm pool (claim, rename, attach) plus `print(1)`, and
  for comparison a cold start (`docker run` of a hardened container, then the heavy imports);
- concurrency: 8 sessions at once, each running small numpy/pandas calls in a loop.

    .venv/bin/python -m bench.sandbox [--calls 200] [--sessions 8] [--seconds 15] [--runtime runsc]
"""

import argparse
import os
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import uuid

import docker
import redis

NAMESPACE = f"bench-{uuid.uuid4().hex[:8]}"
os.environ["SANDBOX_NAMESPACE"] = NAMESPACE

from sandbox.container import Sandbox, remove_namespace  # noqa: E402  (reads the namespace set above)
from sandbox.pool import Pool  # noqa: E402
from shared.config import Settings, get_settings  # noqa: E402


def ms(xs: list[float]) -> str:
    xs = sorted(xs)
    p99 = xs[min(len(xs) - 1, int(len(xs) * 0.99))]
    return f"p50 {statistics.median(xs) * 1000:7.1f} ms   p99 {p99 * 1000:7.1f} ms   (n={len(xs)})"


def redis_server() -> tuple[subprocess.Popen[bytes], redis.Redis]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
                             "--dir", tempfile.mkdtemp()], stdout=subprocess.DEVNULL)
    r = redis.Redis(port=port)
    for _ in range(100):
        try:
            r.ping()
            return proc, r
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def thread_id() -> str:
    return f"thread_bench{uuid.uuid4().hex[:12]}"


def warm_calls(pool: Pool, calls: int) -> None:
    t = thread_id()
    box, _ = pool.session(t)
    box.run("print(1)")
    rtt = []
    for _ in range(calls):
        start = time.perf_counter()
        assert box.run("print(1)").logs == "1\n"
        rtt.append(time.perf_counter() - start)
    box.detach()
    task = []
    for _ in range(calls):
        start = time.perf_counter()
        box, new = pool.session(t)
        assert not new and box.run("print(1)").logs == "1\n"
        box.detach()
        task.append(time.perf_counter() - start)
    pool.end(t)
    print(f"warm call, REPL round trip      {ms(rtt)}")
    print(f"warm call, whole worker task    {ms(task)}")


def first_calls(pool: Pool, dc: docker.DockerClient, settings: Settings, n: int) -> None:
    pooled, cold = [], []
    for _ in range(n):
        pool.warm(1)
        t = thread_id()
        start = time.perf_counter()
        box, new = pool.session(t)
        assert new and box.run("print(1)").logs == "1\n"
        pooled.append(time.perf_counter() - start)
        box.detach()
        pool.end(t)
    for _ in range(max(3, n // 4)):
        start = time.perf_counter()
        box = Sandbox.start(settings=settings, docker_client=dc, labels={"assistants.thread": thread_id()})
        assert box.run("print(1)").logs == "1\n"
        cold.append(time.perf_counter() - start)
        box.destroy()
    print(f"first call, from the warm pool  {ms(pooled)}")
    print(f"first call, cold start          {ms(cold)}")


def concurrent(pool: Pool, sessions: int, seconds: float) -> None:
    work = ("import numpy as np, pandas as pd\n"
            "df = pd.DataFrame(np.random.rand(1000, 4))\nprint(df.mean().round(2).sum())")
    threads = [thread_id() for _ in range(sessions)]
    boxes = [pool.session(t)[0] for t in threads]  # started before the clock: this measures steady state
    for b in boxes:
        b.run(work)
    lat: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def loop(box: Sandbox) -> None:
        while time.monotonic() < stop:
            start = time.perf_counter()
            out = box.run(work)
            assert out.status == "ok", out
            with lock:
                lat.append(time.perf_counter() - start)

    workers = [threading.Thread(target=loop, args=(b,)) for b in boxes]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stats = pool.dc.api.containers(filters={"label": f"assistants.namespace={NAMESPACE}"})
    mem = sum(pool.dc.containers.get(c["Id"]).stats(stream=False)["memory_stats"].get("usage", 0) for c in stats)
    for b, t in zip(boxes, threads, strict=True):
        b.detach()
        pool.end(t)
    print(f"{sessions} concurrent sessions       {ms(lat)}   {len(lat) / seconds:6.1f} calls/s   "
          f"containers' memory {mem / 2**20:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--first", type=int, default=20)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--runtime", default="", help="a Docker runtime registered with the engine, e.g. runsc")
    args = parser.parse_args()
    settings = get_settings().model_copy(update={"sandbox_runtime": args.runtime, "sandbox_namespace": NAMESPACE,
                                                 "sandbox_max_sessions": 1000})
    dc = docker.from_env()
    proc, r = redis_server()
    pool = Pool(dc, r, settings)
    print(f"runtime: {args.runtime or 'runc (default)'}, {os.cpu_count()} CPUs")
    try:
        warm_calls(pool, args.calls)
        first_calls(pool, dc, settings, args.first)
        concurrent(pool, args.sessions, args.seconds)
    finally:
        remove_namespace(NAMESPACE, dc)
        proc.terminate()


if __name__ == "__main__":
    main()
