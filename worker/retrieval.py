"""file_search (v1 `retrieval`): hybrid search over the chunk index, the tool as the model sees it, and the
citations in its answer.

Search fuses two rankings with reciprocal rank fusion: vector similarity (pgvector, cosine) and Postgres full
text (`ts_rank_cd` over an OR of the query's terms). Each finds what the other misses — paraphrases for the
vectors, exact names, codes and rare words for the text index — and RRF needs no score calibration between them.
Scope: only `completed` files of the vector stores the run may read, in the run's project.

The model calls `file_search` with a query; it gets excerpts headed by markers like 【3:0†notes.md】 and is asked to
cite with them. Markers in the reply become `file_citation` annotations (file id, quoted chunk, indices), as
OpenAI's file_search produced them.
"""

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, text

from shared import embeddings

NAME = "file_search"
DEFINITION = {"type": "function", "function": {
    "name": NAME,
    "description": "Search the files the user gave you (documents, notes, code) for passages relevant to a query. "
                   "Returns excerpts, each headed by a citation marker such as 【3:0†report.pdf】. Base answers on "
                   "the excerpts and cite each fact by copying its marker exactly into your answer.",
    "parameters": {"type": "object", "properties": {"query": {
        "type": "string", "description": "What to look for, in your own words; include key names and terms."}},
        "required": ["query"]}}}
DEFAULT_RESULTS = 20
CANDIDATES = 60  # per ranking, before fusion
RRF_K = 60
EXACT_SCAN_LIMIT = 20000  # below this many chunks in scope an exact scan beats the HNSW index (and is exact)
MARKER = re.compile(r"【(\d+):(\d+)†([^】]*)】")

Mode = Literal["hybrid", "vector", "keyword"]


@dataclass
class Hit:
    chunk_id: int
    file_id: str
    filename: str
    text: str
    score: float  # cosine similarity of chunk and query, 0..1 for these models


_SCOPE = """FROM chunk c
    JOIN vector_store_file vsf ON vsf.vector_store_id = c.vector_store_id AND vsf.file_id = c.file_id
                              AND vsf.status = 'completed'
    JOIN vector_store vs ON vs.id = c.vector_store_id AND vs.project_id = :project_id
                         AND (vs.expires_at IS NULL OR vs.expires_at > extract(epoch FROM now()))
    WHERE c.vector_store_id = ANY(:stores)"""


@dataclass(frozen=True)
class Where:
    """An extra condition on the files searched (a SQL fragment over `vsf`, the vector_store_file row, with its own
    bound parameters): the search endpoint's attribute filters (worker/store_search.py)."""

    sql: str
    params: dict[str, Any]


def _embed(texts: list[str]) -> embeddings.Vector:
    """The queries' vectors. In a gevent worker the forward pass (and the first call's model load) runs in a real
    thread: numpy lets go of the GIL, so the process's other steps go on streaming meanwhile instead of waiting
    for the hub."""
    from gevent import monkey

    if monkey.is_module_patched("threading"):
        import gevent

        vectors: embeddings.Vector = gevent.get_hub().threadpool.apply(embeddings.get().embed, (texts,))
        return vectors
    return embeddings.get().embed(texts)


def search(conn: Connection, project_id: str, store_ids: list[str], query: str | list[str], *,
           limit: int = DEFAULT_RESULTS, mode: Mode = "hybrid", score_threshold: float = 0.0,
           where: Where | None = None) -> list[Hit]:
    """Several queries are searched together: every query's rankings are fused into one, and a chunk's score is
    its best similarity to any of them."""
    queries = [q for q in ([query] if isinstance(query, str) else query) if q.strip()]
    if not store_ids or not queries:
        return []
    qvecs = [embeddings.vector_literal(v) for v in _embed(queries)]
    scope = _SCOPE + (f" AND ({where.sql})" if where else "")
    base = {"project_id": project_id, "stores": list(store_ids), "n": CANDIDATES, **(where.params if where else {})}
    # How big is the scope? Counted only up to a cap (an index-only scan), so huge stores cost no more.
    counted = f"SELECT 1 {scope}" if where else "SELECT 1 FROM chunk WHERE vector_store_id = ANY(:stores)"
    size = conn.execute(text(f"SELECT count(*) FROM ({counted} LIMIT :cap) s"),
                        {**base, "cap": SCOPE_COUNT_CAP}).scalar() or 0
    ranked: list[list[int]] = []
    for qvec, q in zip(qvecs, queries, strict=True):
        params = {**base, "q": qvec, "text": q}
        if mode in ("hybrid", "vector"):
            ranked.append(_vector_ids(conn, params, size, scope, where))
        if mode in ("hybrid", "keyword"):
            ranked.append(_keyword_ids(conn, params, size, scope))
    fused: dict[int, float] = {}
    for ids in ranked:
        for rank, cid in enumerate(ids):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank + 1)
    best = sorted(fused, key=lambda cid: (-fused[cid], cid))[:limit * 3]
    if not best:
        return []
    similarity = ", ".join(f"1 - (c.embedding <=> CAST(:q{i} AS vector))" for i in range(len(qvecs)))
    rows = conn.execute(text(f"""
        SELECT c.id, c.file_id, f.filename, c.text, GREATEST({similarity}) AS score
        FROM chunk c JOIN file f ON f.id = c.file_id WHERE c.id = ANY(:ids)"""),
        {"ids": best, **{f"q{i}": v for i, v in enumerate(qvecs)}}).all()
    by_id = {r.id: Hit(r.id, r.file_id, r.filename, r.text, max(0.0, float(r.score))) for r in rows}
    hits = [by_id[cid] for cid in best if cid in by_id and by_id[cid].score >= score_threshold]
    return hits[:limit]


COMMON_TERM_SHARE = 0.5  # a term in more than half of the chunks in scope says nothing about which one is meant
DF_SAMPLE = 2000  # document frequencies are estimated on this many chunks of the scope: bounded cost per search
KEYWORD_ROWS = 5000  # about this many matching chunks are ranked at most (ts_rank_cd reads every one)
SCOPE_COUNT_CAP = 200_001


def _keyword_ids(conn: Connection, params: dict[str, Any], size: int, scope: str = _SCOPE) -> list[int]:
    """Full-text candidates: chunks matching any of the query's distinctive terms, best ts_rank_cd first.

    Postgres ranks without document frequencies, so a term that is everywhere in these files ("station", "part
    number") would rank every chunk and drown the one rare term that matters (a name, a code). Terms found in
    more than half of the chunks in scope (estimated on a sample of them) are left out of the query, as an IDF
    weighting would discount them. In large scopes the rarest terms come first, and terms are added while the
    chunks they match stay within KEYWORD_ROWS, which bounds the ranking's cost."""
    terms = conn.execute(text(f"""
        WITH scope AS MATERIALIZED (SELECT c.tsv {scope} LIMIT :sample),
             terms AS (SELECT DISTINCT unnest(tsvector_to_array(to_tsvector('english', :text))) AS lexeme)
        SELECT t.lexeme, (SELECT count(*) FROM scope s WHERE s.tsv @@ to_tsquery('simple', quote_literal(t.lexeme))),
               (SELECT count(*) FROM scope)
        FROM terms t"""), {**params, "sample": DF_SAMPLE}).all()
    if not terms:
        return []
    total = terms[0][2]
    # A term absent from the sample is rare, not missing (the sample may just not reach its chunks): kept.
    useful = sorted((df, lexeme) for lexeme, df, _ in terms if total < 4 or df <= COMMON_TERM_SHARE * total)
    keep: list[str] = []
    expected = 0.0
    for df, lexeme in useful:
        rows = max(df, 1) / max(total, 1) * max(size, total)
        if expected + rows > KEYWORD_ROWS:
            break  # in a large scope a term matching more chunks than this tells too little to be worth ranking
        keep.append(lexeme)
        expected += rows
    if not keep:
        return []
    query = " | ".join("'" + lexeme.replace("'", "''") + "'" for lexeme in keep)
    return [r[0] for r in conn.execute(text(f"""
        SELECT c.id {scope} AND c.tsv @@ to_tsquery('simple', :query)
        ORDER BY ts_rank_cd(c.tsv, to_tsquery('simple', :query)) DESC, c.id LIMIT :n"""),
        {**params, "query": query})]


def _vector_ids(conn: Connection, params: dict[str, Any], size: int, scope: str = _SCOPE,
                where: Where | None = None) -> list[int]:
    if size <= EXACT_SCAN_LIMIT:
        # Materialised first, so the planner cannot take the HNSW index and filter its (few) results afterwards.
        sql = f"""WITH s AS MATERIALIZED (SELECT c.id, c.embedding {scope})
                  SELECT id FROM s ORDER BY embedding <=> CAST(:q AS vector), id LIMIT :n"""
        return [r[0] for r in conn.execute(text(sql), params)]
    # Large scopes: the HNSW index, on the chunk table alone (a join would keep the planner from using it), with
    # iterative scans continuing until enough rows of these stores (and files passing the filter) are found; the
    # scope is checked afterwards.
    conn.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
    conn.execute(text("SET LOCAL hnsw.ef_search = 100"))
    filtered = "" if where is None else f"""AND EXISTS (SELECT 1 FROM vector_store_file vsf
        WHERE vsf.vector_store_id = chunk.vector_store_id AND vsf.file_id = chunk.file_id AND ({where.sql}))"""
    nearest = [r[0] for r in conn.execute(text(f"""
        SELECT id FROM chunk WHERE vector_store_id = ANY(:stores) {filtered}
        ORDER BY embedding <=> CAST(:q AS vector) LIMIT :n"""), params)]
    allowed = {r[0] for r in conn.execute(text(f"SELECT c.id {scope} AND c.id = ANY(:ids)"),
                                          {**params, "ids": nearest})}
    return [cid for cid in nearest if cid in allowed]


# ---- the run's scope -----------------------------------------------------------------------------------------
_STORES = text("""SELECT a.vector_store_ids AS assistant_stores, t.vector_store_ids AS thread_stores
                  FROM thread t LEFT JOIN assistant a ON a.id = :assistant_id WHERE t.id = :thread_id""")


def scope(conn: Connection, assistant_id: str, thread_id: str) -> list[str]:
    """The vector stores a run may search: its assistant's (v1 files live in its automatic store) and its
    thread's (message attachments), read when the search runs."""
    row = conn.execute(_STORES, {"assistant_id": assistant_id, "thread_id": thread_id}).first()
    if row is None:
        return []
    return list(dict.fromkeys([*(row.assistant_stores or []), *(row.thread_stores or [])]))


def indexing(conn: Connection, store_ids: list[str]) -> int:
    """How many files of these stores are still being indexed. Failed and cancelled files are done (they will
    never be searchable); an expired store is out of the search's scope, so its files are not waited for."""
    if not store_ids:
        return 0
    return int(conn.execute(text("""
        SELECT count(*) FROM vector_store_file vsf JOIN vector_store vs ON vs.id = vsf.vector_store_id
        WHERE vsf.vector_store_id = ANY(:stores) AND vsf.status = 'in_progress'
          AND (vs.expires_at IS NULL OR vs.expires_at > extract(epoch FROM now()))"""),
        {"stores": store_ids}).scalar() or 0)


def has_search(tools: list[dict[str, Any]]) -> bool:
    return any(t.get("type") in ("file_search", "retrieval") for t in tools)


def touch(conn: Connection, project_id: str, store_ids: list[str]) -> None:
    """Use keeps a store alive: its expiry (anchored at last_active_at) moves on."""
    conn.execute(text("""
        UPDATE vector_store SET last_active_at = CAST(extract(epoch FROM now()) AS integer),
            expires_at = CASE WHEN expires_after IS NULL THEN NULL
                              ELSE CAST(extract(epoch FROM now()) AS integer) + (expires_after->>'days')::int * 86400
                         END
        WHERE id = ANY(:stores) AND project_id = :project_id
          AND (expires_at IS NULL OR expires_at > extract(epoch FROM now()))"""),
                 {"stores": store_ids, "project_id": project_id})


# ---- the tool ------------------------------------------------------------------------------------------------
def is_search_call(name: str, tools: list[dict[str, Any]]) -> bool:
    return name == NAME and has_search(tools)


def query_of(arguments: str) -> str:
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return arguments
    if isinstance(parsed, dict):
        q = parsed.get("query") or parsed.get("queries") or ""
        return " ".join(map(str, q)) if isinstance(q, list) else str(q)
    return str(parsed)


def step_entry(call_id: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "file_search", "file_search": {}, "_arguments": arguments}


def options(tools: list[dict[str, Any]]) -> tuple[int, float]:
    """max_num_results and ranking_options.score_threshold of the run's file_search tool."""
    for t in tools:
        if t.get("type") == "file_search":
            fs = t.get("file_search") or {}
            ranking = fs.get("ranking_options") or {}
            return int(fs.get("max_num_results") or DEFAULT_RESULTS), float(ranking.get("score_threshold") or 0.0)
    return DEFAULT_RESULTS, 0.0


def run_call(conn: Connection, call: dict[str, Any], *, project_id: str, store_ids: list[str], turn: int,
             tools: list[dict[str, Any]]) -> dict[str, Any]:
    """Search for the call's query; the call comes back with its results (public) and what the model reads and
    the reply's citations resolve against (private)."""
    limit, threshold = options(tools)
    touch(conn, project_id, store_ids)
    hits = search(conn, project_id, store_ids, query_of(call.get("_arguments", "")), limit=limit,
                  score_threshold=threshold)
    sources = []
    parts = []
    for i, h in enumerate(hits):
        marker = f"【{turn}:{i}†{h.filename}】"
        sources.append({"marker": marker, "file_id": h.file_id, "quote": h.text})
        parts.append(f"{marker}\n{h.text}")
    output = "\n\n".join(parts) if parts else "No results found in the files."
    return {**call, "file_search": {
        "ranking_options": {"ranker": "default_2024_08_21", "score_threshold": threshold},
        "results": [{"file_id": h.file_id, "file_name": h.filename, "score": round(h.score, 6)} for h in hits]},
        "_output": output, "_sources": sources}


def sources_of(steps: list[Any]) -> dict[str, dict[str, str]]:
    """marker -> {file_id, quote}, for every search this run made."""
    return {s["marker"]: s for step in steps if step.kind == "tool_calls"
            for c in step.step_details.get("tool_calls", []) if c.get("type") == "file_search"
            for s in c.get("_sources") or []}


def annotate(text_value: str, sources: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """file_citation annotations for the markers in the reply that name a result of this run's searches."""
    out = []
    for m in MARKER.finditer(text_value):
        source = sources.get(m.group(0))
        if source is None:
            continue  # a marker the model made up: left as text, not cited
        out.append({"type": "file_citation", "text": m.group(0), "start_index": m.start(), "end_index": m.end(),
                    "file_citation": {"file_id": source["file_id"], "quote": source["quote"]}})
    return out
