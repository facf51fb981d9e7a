"""Run latency and throughput, client included.

Each client loops: create a thread with one message, then stream a run until `thread.run.completed`, through
the official SDK. The model is the scripted instant model (tests/model_server.py), so the figures measure this
system, not a model. A private stack (real Postgres, Redis, API, Celery workers) is started and removed.

    .venv/bin/python -m bench.run_latency [--clients 1 20] [--seconds 20] [--concurrency 4] [--api-workers 1]
"""

import argparse
import statistics
import tempfile
import threading
import time
import warnings
from pathlib import Path

import openai

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=3)
    args = parser.parse_args()
    model = ScriptedModel().start()
    with tempfile.TemporaryDirectory() as tmp:
        stack = stack_mod.start(Path(tmp) / "stack", {"LLM_BASE_URL": model.base_url})
        try:
            client = openai.OpenAI(base_url=stack.base_url, api_key=stack.api_key)
            assistant = client.beta.assistants.create(model="gpt-4o", instructions="Be brief.")
            measure(stack.base_url, stack.api_key, assistant.id, 4, args.warmup)
            print(f"{'clients':>7} {'runs':>6} {'errors':>6} {'runs/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
            for n in args.clients:
                r = measure(stack.base_url, stack.api_key, assistant.id, n, args.seconds)
                print(f"{r['clients']:>7} {r['runs']:>6} {r['errors']:>6} {r['runs_per_s']:>8.1f} "
                      f"{r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f}", flush=True)
        finally:
            stack_mod.stop(stack)
            model.stop()


if __name__ == "__main__":
    main()
