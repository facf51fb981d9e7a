"""Run latency and throughput, client included (it runs on the same machine).

Each client loops: create a thread with one message, then stream a run until `thread.run.completed`. The model
is the scripted instant model (tests/model_server.py), so the figures measure this system, not a model. A
private stack (real Postgres, Redis, API, Celery workers) is started and removed.

Two clients: `lean` (default; bench/lean_client.py, asyncio keep-alive connections, almost no CPU) shows what
the server sustains; `sdk` (the official openai SDK in threads) shows what an SDK user sees on this machine,
where the SDK itself spends ~15 ms of CPU per run.

    .venv/bin/python -m bench.run_latency [--client lean|sdk] [--clients 1 20] [--seconds 20]
"""

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
import warnings
from pathlib import Path

import openai

from bench import cpu
from bench.lean_client import Conn
from tests import stack as stack_mod
from tests.model_server import ScriptedModel

warnings.filterwarnings("ignore", category=DeprecationWarning)


def one_run(client: openai.OpenAI, assistant_id: str) -> float:
    start = time.perf_counter()
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant_id) as stream:
        for event in stream:
            if event.event == "thread.run.completed":
                break
            if event.event in ("thread.run.failed", "thread.run.expired", "thread.run.cancelled"):
                raise RuntimeError(f"run ended {event.event}")
    return time.perf_counter() - start


def measure(base_url: str, key: str, assistant_id: str, clients: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def loop() -> None:
        client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0)
        while time.monotonic() < stop:
            try:
                took = one_run(client, assistant_id)
            except Exception:
                with lock:
                    errors[0] += 1
                continue
            with lock:
                latencies.append(took)

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {"clients": clients, "runs": len(latencies), "errors": errors[0], "runs_per_s": len(latencies) / elapsed,
            "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000}


def measure_lean(base_url: str, key: str, assistant_id: str, clients: int, seconds: float) -> dict[str, float]:
    host_port = base_url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    headers = {"Authorization": f"Bearer {key}", "OpenAI-Beta": "assistants=v2"}
    latencies: list[float] = []
    errors = 0

    async def loop(stop: float) -> None:
        nonlocal errors
        conn = Conn(host, int(port), headers)
        while time.monotonic() < stop:
            start = time.perf_counter()
            try:
                thread = await conn.post_json("/v1/threads", {"messages": [{"role": "user", "content": "hello"}]})
                ok = await conn.post_stream_until(f"/v1/threads/{thread['id']}/runs",
                                                  {"assistant_id": assistant_id, "stream": True},
                                                  b"event: thread.run.completed")
            except Exception:
                errors += 1
                conn = Conn(host, int(port), headers)
                continue
            if ok:
                latencies.append(time.perf_counter() - start)
            else:
                errors += 1

    async def run_all() -> float:
        began = time.monotonic()
        await asyncio.gather(*(loop(began + seconds) for _ in range(clients)))
        return time.monotonic() - began

    elapsed = asyncio.run(run_all())
    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {"clients": clients, "runs": len(latencies), "errors": errors, "runs_per_s": len(latencies) / elapsed,
            "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--client", choices=["lean", "sdk"], default="lean")
    args = parser.parse_args()
    model = ScriptedModel().start()
    with tempfile.TemporaryDirectory() as tmp:
        stack = stack_mod.start(Path(tmp) / "stack", {"LLM_BASE_URL": model.base_url})
        try:
            client = openai.OpenAI(base_url=stack.base_url, api_key=stack.api_key)
            assistant = client.beta.assistants.create(model="gpt-4o", instructions="Be brief.")
            bench = measure_lean if args.client == "lean" else measure
            bench(stack.base_url, stack.api_key, assistant.id, 4, args.warmup)
            print(f"client: {args.client}")
            print(f"{'clients':>7} {'runs':>6} {'errors':>6} {'runs/s':>8} {'p50 ms':>8} {'p99 ms':>8}   "
                  "server CPU ms per run")
            for n in args.clients:
                before = cpu.sample(stack.state_dir)
                r = bench(stack.base_url, stack.api_key, assistant.id, n, args.seconds)
                after = cpu.sample(stack.state_dir)
                spent = "  ".join(f"{k} {1000 * (after[k] - before[k]) / max(r['runs'], 1):.1f}"
                                  for k in after if after[k] - before[k] > 0)
                print(f"{r['clients']:>7} {r['runs']:>6} {r['errors']:>6} {r['runs_per_s']:>8.1f} "
                      f"{r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f}   {spent}", flush=True)
        finally:
            stack_mod.stop(stack)
            model.stop()


if __name__ == "__main__":
    main()
