"""Many runs in flight at once: N runs (default 1,000) started together against a model that takes 60 s per turn
(57 s before its first token, then 150 words), their clients polling every few seconds. Every run must complete,
once; the benchmark prints how long they took, the runs workers' peak resident memory and Postgres's peak
connection count while they were in flight.

    .venv/bin/python -m bench.inflight [--runs 1000] [--ttft 57]
    LLM_BASE_URL=http://host.docker.internal:18080/v1 make up  &&  .venv/bin/python -m bench.inflight --cluster
"""

import argparse
import asyncio
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from bench.lean_client import Conn
from bench.run_latency import PeakSampler
from bench.targets import ClusterTarget, LocalTarget, Target
from tests.model_server import ScriptedModel

warnings.filterwarnings("ignore", category=DeprecationWarning)

CONNECTIONS = 50  # client connections shared by the runs' polling loops
TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete"}


async def drive(target: Target, runs: int, poll: float) -> tuple[list[float], dict[str, int], int]:
    host, port = target.base_url.split("//", 1)[1].split("/", 1)[0].split(":")
    headers = {"Authorization": f"Bearer {target.api_key}", "OpenAI-Beta": "assistants=v2"}
    pool: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(CONNECTIONS):
        pool.put_nowait(Conn(host, int(port), headers))

    async def call(method: str, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
        conn = await pool.get()
        try:
            return await (conn.get_json(path) if method == "GET" else conn.post_json(path, body or {}))
        except Exception:
            conn = Conn(host, int(port), headers)  # a broken connection is replaced
            raise
        finally:
            pool.put_nowait(conn)

    assistant = await call("POST", "/v1/assistants", {"model": "gpt-4o", "instructions": "Be brief."})
    threads = await asyncio.gather(*(call("POST", "/v1/threads", {"messages": [
        {"role": "user", "content": f"question {i}"}]}) for i in range(runs)))
    outcomes: dict[str, int] = {}
    took: list[float] = []

    async def one(thread_id: str) -> None:
        began = time.monotonic()
        run = await call("POST", f"/v1/threads/{thread_id}/runs", {"assistant_id": assistant["id"]})
        while run["status"] not in TERMINAL:
            await asyncio.sleep(poll)
            try:
                run = await call("GET", f"/v1/threads/{thread_id}/runs/{run['id']}")
            except Exception:
                continue  # polled again next time
        outcomes[str(run["status"])] = outcomes.get(str(run["status"]), 0) + 1
        took.append(time.monotonic() - began)

    await asyncio.gather(*(one(str(t["id"])) for t in threads))
    # Exactly once: every thread holds its question and one answer.
    counts = await asyncio.gather(*(call("GET", f"/v1/threads/{t['id']}/messages?limit=10") for t in threads))
    doubled = sum(1 for c in counts if len(c["data"]) != 2)  # type: ignore[arg-type]
    return took, outcomes, doubled


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--ttft", type=float, default=57.0, help="seconds before the model's first token")
    parser.add_argument("--poll", type=float, default=3.0, help="seconds between a client's polls")
    parser.add_argument("--cluster", nargs="?", const="assistants", default=None, metavar="PROJECT")
    parser.add_argument("--api-port", type=int, default=8000)
    parser.add_argument("--model-port", type=int, default=18080)
    args = parser.parse_args()
    model = ScriptedModel("0.0.0.0", port=args.model_port if args.cluster else 0, ttft=args.ttft,
                          tokens_per_second=50, words=150).start()
    with tempfile.TemporaryDirectory() as tmp:
        target: Target = (ClusterTarget(args.cluster, args.api_port) if args.cluster
                          else LocalTarget(Path(tmp) / "stack", model.base_url, {"RUNS_CONCURRENCY": "1000"}))
        try:
            rss, pg = PeakSampler(target.runs_worker_rss), PeakSampler(target.pg_connections)
            began = time.monotonic()
            took, outcomes, doubled = asyncio.run(drive(target, args.runs, args.poll))
            wall = time.monotonic() - began
            print(f"runs: {args.runs} started at once, model {args.ttft + 3:.0f} s per turn, polled every "
                  f"{args.poll:.0f} s ({'cluster ' + args.cluster if args.cluster else 'private stack'})")
            print(f"outcomes: {outcomes}; threads without exactly one answer: {doubled}")
            print(f"run latency: p50 {statistics.median(took):.1f} s, max {max(took):.1f} s; all done in {wall:.1f} s")
            print(f"model calls in flight at once (peak): {model.max_in_flight}")
            print(f"runs workers' peak RSS: {rss.stop() / 2**20:.0f} MiB; Postgres connections (peak): {pg.stop()}")
        finally:
            target.close()
            model.stop()


if __name__ == "__main__":
    main()
