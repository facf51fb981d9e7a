"""Run latency and throughput, client included (it runs on the same machine).

Each of C clients loops: create a thread with one message, then stream a run until `thread.run.completed`. The
model is the scripted server (tests/model_server.py), either instant or realistic: a first token after 0.5 s,
then 150 words at 50 a second (3.5 s a run), as a real model streams. It prints runs/s, p50/p99 latency, errors,
the runs workers' peak resident memory and, on a private stack, the server CPU each run cost per process group.
The clients run `--warmup` seconds (10) before the measured `--seconds`: they start all at once, and their first
runs move in lockstep, a burst no steady load has; the figures are those of the window after it.

Against a private stack (started and removed; default) or `make up`'s cluster. The cluster must call the
benchmark's model, which listens on --model-port on every interface:

    .venv/bin/python -m bench.run_latency [--model instant|realistic] [--clients 1 20 100] [--seconds 30]
    LLM_BASE_URL=http://host.docker.internal:18080/v1 make up
    .venv/bin/python -m bench.run_latency --cluster --model realistic --clients 100

Two clients: `lean` (default; bench/lean_client.py, asyncio keep-alive connections, almost no CPU) shows what
the server sustains; `sdk` (the official openai SDK in threads) shows what an SDK user sees on this machine,
where the SDK itself spends ~15 ms of CPU per run.
"""

import argparse
import asyncio
import os
import statistics
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import openai

from bench import cpu
from bench.lean_client import Conn
from bench.targets import ClusterTarget, LocalTarget, Target
from tests.model_server import ScriptedModel

warnings.filterwarnings("ignore", category=DeprecationWarning)

REALISTIC = {"ttft": 0.5, "tokens_per_second": 50.0, "words": 150}


def one_run(client: openai.OpenAI, assistant_id: str) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant_id) as stream:
        for event in stream:
            if event.event == "thread.run.completed":
                return
            if event.event in ("thread.run.failed", "thread.run.expired", "thread.run.cancelled"):
                raise RuntimeError(f"run ended {event.event}")
    raise RuntimeError("the stream ended without thread.run.completed")


# Every run a client made: when it started and ended (time.monotonic()), and whether it completed.
Runs = list[tuple[float, float, bool]]


def measure_sdk(base_url: str, key: str, assistant_id: str, clients: int, until: float) -> Runs:
    runs: Runs = []
    lock = threading.Lock()

    def loop() -> None:
        client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0)
        while time.monotonic() < until:
            start = time.monotonic()
            try:
                one_run(client, assistant_id)
                ok = True
            except Exception:
                ok = False
            with lock:
                runs.append((start, time.monotonic(), ok))

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return runs


def measure_lean(base_url: str, key: str, assistant_id: str, clients: int, until: float) -> Runs:
    host, port = base_url.split("//", 1)[1].split("/", 1)[0].split(":")
    headers = {"Authorization": f"Bearer {key}", "OpenAI-Beta": "assistants=v2"}
    runs: Runs = []

    async def loop() -> None:
        conn = Conn(host, int(port), headers)
        while time.monotonic() < until:
            start = time.monotonic()
            try:
                thread = await conn.post_json("/v1/threads", {"messages": [{"role": "user", "content": "hello"}]})
                ok = await conn.post_stream_until(f"/v1/threads/{thread['id']}/runs",
                                                  {"assistant_id": assistant_id, "stream": True},
                                                  b"event: thread.run.completed")
            except Exception:
                ok = False
                conn = Conn(host, int(port), headers)
            runs.append((start, time.monotonic(), ok))

    async def run_all() -> None:
        await asyncio.gather(*(loop() for _ in range(clients)))

    asyncio.run(run_all())
    return runs


class PeakSampler:
    """Samples a figure every second in the background and keeps the highest."""

    def __init__(self, read: Any) -> None:
        self.read, self.peak, self._stop = read, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.peak = max(self.peak, int(self.read()))
            except Exception:  # a sample missed (e.g. a container restarting) is not a failed benchmark
                continue

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def report(target: Target, bench: Any, assistant_id: str, clients: int, warmup: float, seconds: float,
           state_dir: Path | None) -> str:
    """Run `clients` clients for `warmup` + `seconds`; figures from the last `seconds` only. The clients all
    start at once, a burst no steady load has (their first runs move in lockstep); by the window they have
    spread out. Latency: the runs started in the window; runs/s: those that ended in it."""
    begin = time.monotonic() + warmup
    end = begin + seconds
    cpu_at: dict[str, dict[str, float]] = {}

    def sample_cpu() -> None:  # at the window's start and end
        if state_dir:
            for name, at in (("begin", begin), ("end", end)):
                time.sleep(max(0.0, at - time.monotonic()))
                cpu_at[name] = cpu.sample(state_dir)

    sampler = threading.Thread(target=sample_cpu, daemon=True)
    sampler.start()
    rss = PeakSampler(target.runs_worker_rss)
    runs = bench(target.base_url, target.api_key, assistant_id, clients, end)
    peak = rss.stop()
    sampler.join()
    latencies = sorted(e - s for s, e, ok in runs if ok and begin <= s < end)
    errors = sum(1 for s, _, ok in runs if not ok and begin <= s < end)
    done = sum(1 for _, e, ok in runs if ok and begin <= e <= end)
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else (latencies or [0.0]) * 99
    spent = ""
    if cpu_at.keys() == {"begin", "end"}:
        before, after = cpu_at["begin"], cpu_at["end"]
        spent = "  ".join(f"{k} {1000 * (after[k] - before[k]) / max(done, 1):.1f}"
                          for k in after if after[k] - before[k] > 0)
    worst = latencies[-1] if latencies else 0.0
    return (f"{clients:>7} {len(latencies):>6} {errors:>6} {done / seconds:>8.1f} {q[49] * 1000:>8.0f} "
            f"{q[98] * 1000:>8.0f} {worst * 1000:>8.0f} {peak / 2**20:>8.0f}   {spent}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=10,
                        help="seconds the clients run before the measured window (their lockstep start settles)")
    parser.add_argument("--client", choices=["lean", "sdk"], default="lean")
    parser.add_argument("--model", choices=["instant", "realistic"], default="instant")
    parser.add_argument("--cluster", nargs="?", const="assistants", default=None, metavar="PROJECT",
                        help="measure make up's cluster (Compose project, default `assistants`)")
    parser.add_argument("--api-port", type=int, default=8000, help="the cluster's API port")
    parser.add_argument("--api-host", default="127.0.0.1",
                        help="the cluster's address: 127.0.0.1 goes through Docker's docker-proxy; the host's own "
                             "address (hostname -I) is forwarded by the kernel, as remote clients are")
    parser.add_argument("--model-port", type=int, default=18080, help="where the model listens for the cluster")
    parser.add_argument("--runs-workers", type=int, default=os.cpu_count() or 1,
                        help="runs worker processes of the private stack (default: one per core)")
    args = parser.parse_args()
    pace = REALISTIC if args.model == "realistic" else {}
    model = ScriptedModel("0.0.0.0", port=args.model_port if args.cluster else 0, **pace).start()  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as tmp:
        target: Target
        state_dir = None
        if args.cluster:
            target = ClusterTarget(args.cluster, args.api_port, args.api_host)
        else:
            state_dir = Path(tmp) / "stack"
            target = LocalTarget(state_dir, model.base_url, {"RUNS_WORKERS": str(args.runs_workers)})
        try:
            client = openai.OpenAI(base_url=target.base_url, api_key=target.api_key)
            assistant = client.beta.assistants.create(model="gpt-4o", instructions="Be brief.")
            bench = measure_lean if args.client == "lean" else measure_sdk
            where = f"cluster {args.cluster}" if args.cluster else f"private stack, {args.runs_workers} runs workers"
            print(f"client: {args.client}, model: {args.model}, target: {where}")
            print(f"{'clients':>7} {'runs':>6} {'errors':>6} {'runs/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
                  f"{'RSS MiB':>8}   server CPU ms per run")
            for n in args.clients:
                print(report(target, bench, assistant.id, n, args.warmup, args.seconds, state_dir), flush=True)
        finally:
            target.close()
            model.stop()


if __name__ == "__main__":
    main()
