"""file_search: ingestion throughput and search latency. A private stack (real Postgres + pgvector, Redis, API,
ingest worker) is started and removed.

- ingestion: text files (and a PDF) uploaded through the API and indexed by the ingest worker (extract, chunk
  800/400 tokens, embed with the local all-MiniLM-L6-v2, write to pgvector); MB/s of source text, wall clock;
- search: hybrid, vector-only and keyword-only search (query embedding included) over one vector store of
  `--chunks` chunks. Reaching 100k chunks by embedding 100k real 800-token chunks would take hours on 2 cores,
  so the store is filled with generated chunk texts whose vectors are real embeddings of 1,000 of them, jittered
  (COPY, then the HNSW index grows as it would).

    .venv/bin/python -m bench.retrieval [--megabytes 2] [--chunks 100000] [--queries 200]
"""

import argparse
import io
import random
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import openai
import psycopg
from sqlalchemy import create_engine, text

from shared import embeddings
from tests import stack as stack_mod
from tests.model_server import ScriptedModel

warnings.filterwarnings("ignore", category=DeprecationWarning)
WORDS = """
reactor coolant pressure valve station crew shift schedule greenhouse tomato basil pump filter
oxygen battery solar panel orbit docking cargo capsule hatch drone hull inspection radio beacon
signal medical console vitals treadmill exercise bone printer titanium powder humidifier moisture
furnace comet ice water vault backup encryption arm capture extinguisher fire gas compartment
engineer officer deck maintenance report fault log weekly daily procedure checklist warning alarm
temperature sensor
""".split()  # noqa: SIM905  (a word list reads better as text)


# A long tail of rarer words (Zipf-distributed, as in real text), so full-text search has terms to tell chunks apart.
_SYLLABLES = ["ka", "lo", "mi", "ren", "tor", "vel", "zu", "pra", "dis", "ne", "ox", "qui", "sa", "tem", "ul"]
TAIL = sorted({a + b + c for a in _SYLLABLES for b in _SYLLABLES for c in _SYLLABLES})[:3000]
VOCAB = WORDS + TAIL
WEIGHTS = [1.0 / (rank + 1) for rank in range(len(VOCAB))]


def prose(rng: random.Random, words: int) -> str:
    out = []
    picks = rng.choices(VOCAB, weights=WEIGHTS, k=words)
    for i in range(words):
        w = picks[i]
        out.append(w.capitalize() if i % 12 == 0 else w)
        if i % 12 == 11:
            out[-1] += "."
    return " ".join(out)


def ms(xs: list[float]) -> str:
    xs = sorted(xs)
    return f"p50 {statistics.median(xs) * 1000:6.1f} ms  p99 {xs[int(len(xs) * 0.99) - 1] * 1000:6.1f} ms"


def ingestion(client: openai.OpenAI, megabytes: float, rng: random.Random) -> None:
    size = int(megabytes * 1_000_000)
    body = prose(rng, size // 7)[:size].encode()
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    pdf = io.BytesIO()
    with PdfPages(pdf) as pages:  # 20 pages of text
        for _ in range(20):
            fig = Figure(figsize=(8.5, 11))
            for line in range(40):
                fig.text(0.05, 0.97 - line * 0.024, prose(rng, 14), fontsize=8)
            pages.savefig(fig)
    for name, data, source_bytes in (("corpus.txt", body, len(body)), ("report.pdf", pdf.getvalue(), None)):
        vs = client.vector_stores.create(name=f"bench-{name}")
        start = time.perf_counter()
        f = client.vector_stores.files.upload_and_poll(vector_store_id=vs.id, file=(name, data),
                                                       poll_interval_ms=100)
        took = time.perf_counter() - start
        assert f.status == "completed", f
        n = client.vector_stores.retrieve(vs.id).usage_bytes
        label = f"{len(data) / 1e6:.2f} MB {name}"
        extra = f"{source_bytes / 1e6 / took:.3f} MB/s of text" if source_bytes else f"{20 / took:.1f} pages/s"
        print(f"ingest {label:24s} {took:7.1f} s   {extra}   (index {n / 1e6:.1f} MB)")


def fill(stack: stack_mod.Stack, client: openai.OpenAI, chunks: int, rng: random.Random) -> tuple[str, str]:
    seed_file = client.files.create(file=("seed.md", io.BytesIO(b"Seed document for the search benchmark.\n")),
                                    purpose="assistants")
    vs = client.vector_stores.create(name="bench-search", file_ids=[seed_file.id])
    client.vector_stores.files.poll(seed_file.id, vector_store_id=vs.id, poll_interval_ms=100)
    texts = [prose(rng, 120) for _ in range(1000)]
    base = embeddings.get().embed(texts)
    url = stack.env["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    jitter = np.random.default_rng(7)
    start = time.perf_counter()
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy("COPY chunk (vector_store_id, file_id, position, text, embedding) FROM STDIN") as copy:
            for i in range(chunks):
                v = base[i % len(base)] + jitter.normal(0, 0.02, base.shape[1])
                v /= np.linalg.norm(v)
                words = texts[i % len(texts)].split()
                rng.shuffle(words)
                copy.write_row((vs.id, seed_file.id, i + 1, " ".join(words),
                                embeddings.vector_literal(v)))
        conn.commit()
    print(f"filled {chunks} chunks (COPY + HNSW inserts) in {time.perf_counter() - start:.0f} s")
    return vs.id, seed_file.id


def searches(stack: stack_mod.Stack, store: str, queries: int, rng: random.Random) -> None:
    from worker import retrieval

    engine = create_engine(stack.env["DATABASE_URL"])
    with engine.connect() as conn:
        project = str(conn.execute(text("SELECT project_id FROM vector_store WHERE id = :id"), {"id": store})
                      .scalar())
        embeddings.get().embed(["warm up"])
        for mode in ("hybrid", "vector", "keyword"):
            lat, found = [], 0
            for _ in range(queries):
                q = " ".join(rng.choices(VOCAB, weights=WEIGHTS, k=6))
                start = time.perf_counter()
                hits = retrieval.search(conn, project, [store], q, limit=20, mode=mode)  # type: ignore[arg-type]
                lat.append(time.perf_counter() - start)
                conn.rollback()
                found += bool(hits)
            print(f"search {mode:8s} over {store_size(conn, store)} chunks   {ms(lat)}   "
                  f"({found}/{queries} queries with results)")
    engine.dispose()


def store_size(conn: object, store: str) -> int:
    return int(conn.execute(text("SELECT count(*) FROM chunk WHERE vector_store_id = :s"),  # type: ignore[attr-defined]
                            {"s": store}).scalar())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=float, default=1.0)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--skip-ingest", action="store_true")
    args = parser.parse_args()
    rng = random.Random(7)
    model = ScriptedModel().start()
    with tempfile.TemporaryDirectory() as tmp:
        stack = stack_mod.start(Path(tmp) / "stack", {"LLM_BASE_URL": model.base_url})
        try:
            client = openai.OpenAI(base_url=stack.base_url, api_key=stack.api_key)
            if not args.skip_ingest:
                ingestion(client, args.megabytes, rng)
            store, _ = fill(stack, client, args.chunks, rng)
            searches(stack, store, args.queries, rng)
        finally:
            stack_mod.stop(stack)
            model.stop()


if __name__ == "__main__":
    main()
