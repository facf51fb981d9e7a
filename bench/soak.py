"""Cost must not grow with what a deployment has done.

`threads`: a run on a thread holding 5,000 earlier messages against one whose messages just fill the context
window (200) and one on a fresh thread (the instant model; medians over alternating runs): the prompt is capped
by the context window, and so must be the work.

`soak`: the instant-model streaming benchmark for --minutes, printing every minute Redis's memory and the
resident memory of the API and the runs worker: they must stay flat (a finished run's events are kept minutes,
not hours).

    .venv/bin/python -m bench.soak threads [--sizes 0 200 5000]
    .venv/bin/python -m bench.soak soak [--minutes 60] [--clients 20]
"""

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import httpx

from bench.run_latency import measure_lean
from bench.targets import LocalTarget, rss
from tests.model_server import ScriptedModel

warnings.filterwarnings("ignore", category=DeprecationWarning)


def _run_once(http: httpx.Client, thread_id: str, assistant_id: str) -> float:
    began = time.perf_counter()
    with http.stream("POST", f"/threads/{thread_id}/runs", json={"assistant_id": assistant_id, "stream": True}) as r:
        for line in r.iter_lines():
            if line == "event: thread.run.completed":
                break
    return time.perf_counter() - began


def threads(target: LocalTarget, sizes: list[int], rounds: int) -> None:
    """Median run latency on threads of each size. Past about 150 of these messages the prompt is capped by the
    context window (8,192 tokens by default), so every larger thread should cost the same."""
    headers = {"Authorization": f"Bearer {target.api_key}", "OpenAI-Beta": "assistants=v2"}
    with httpx.Client(base_url=target.base_url, headers=headers, timeout=120) as http:
        assistant = http.post("/assistants", json={"model": "gpt-4o"}).json()["id"]
        made = {}
        for size in sizes:
            thread = http.post("/threads").json()["id"]
            for i in range(size):
                http.post(f"/threads/{thread}/messages",
                          json={"role": "user", "content": f"message {i}: " + "lorem ipsum dolor sit amet " * 8})
            made[size] = thread
        took: dict[int, list[float]] = {size: [] for size in sizes}
        for _ in range(rounds):  # alternating, so that drifts in the machine's load hit every size alike
            for size, thread in made.items():
                http.post(f"/threads/{thread}/messages", json={"role": "user", "content": "and now?"})
                took[size].append(_run_once(http, thread, assistant))
    for size in sizes:
        print(f"thread of {size:>5}+ messages: run latency median {statistics.median(took[size]) * 1000:7.1f} ms "
              f"(of {rounds})")


def soak(target: LocalTarget, minutes: float, clients: int) -> None:
    headers = {"Authorization": f"Bearer {target.api_key}", "OpenAI-Beta": "assistants=v2"}
    assistant = httpx.post(f"{target.base_url}/assistants", json={"model": "gpt-4o"}, headers=headers).json()["id"]
    print(f"{'minute':>6} {'runs':>7} {'runs/s':>7} {'Redis MiB':>10} {'API MiB':>8} {'worker MiB':>11}")
    total = 0
    for minute in range(1, int(minutes) + 1):
        runs = measure_lean(target.base_url, target.api_key, assistant, clients, time.monotonic() + 60)
        done = sum(1 for _, _, ok in runs if ok)
        total += done
        print(f"{minute:>6} {total:>7} {done / 60:>7.1f} {target.redis_memory() / 2**20:>10.1f} "
              f"{rss(target.stack.pid('api')) / 2**20:>8.0f} {target.runs_worker_rss() / 2**20:>11.0f}",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_threads = sub.add_parser("threads")
    p_threads.add_argument("--sizes", type=int, nargs="+", default=[0, 200, 5000])
    p_threads.add_argument("--rounds", type=int, default=30)
    p_soak = sub.add_parser("soak")
    p_soak.add_argument("--minutes", type=float, default=60)
    p_soak.add_argument("--clients", type=int, default=20)
    args = parser.parse_args()
    model = ScriptedModel().start()
    with tempfile.TemporaryDirectory() as tmp:
        target = LocalTarget(Path(tmp) / "stack", model.base_url)
        try:
            if args.cmd == "threads":
                threads(target, args.sizes, args.rounds)
            else:
                soak(target, args.minutes, args.clients)
        finally:
            target.close()
            model.stop()


if __name__ == "__main__":
    main()
