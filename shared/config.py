"""One settings object for every process, read from the environment (12-factor)."""

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5433/assistants"
    redis_url: str = "redis://127.0.0.1:6380/0"

    # Blob store for file bytes: "local" (a directory, e.g. a shared volume) or "s3".
    blob_store: str = "local"
    blob_dir: str = ".stack/blobs"
    s3_bucket: str = ""
    s3_endpoint_url: str | None = None
    s3_prefix: str = "files/"

    # OpenAI's limit for one uploaded file.
    max_file_bytes: int = 512 * 1024 * 1024

    # Serve the playground (a web page to try assistants) at /playground. Its files are public; using it takes a key.
    playground_enabled: bool = True

    # Apply Alembic migrations when the API starts (guarded by an advisory lock, so replicas can race).
    migrate_on_start: bool = True
    # Seconds an API key lookup is cached in-process; revocation takes effect within this window.
    auth_cache_seconds: float = 30.0

    # The model: any OpenAI-compatible Chat Completions endpoint.
    llm_base_url: str = "http://127.0.0.1:11434/v1"
    llm_api_key: str = "none"
    # Assistant model names -> upstream model names, e.g. {"gpt-4-1106-preview": "llama3.1"} (JSON in the env).
    llm_model_map: dict[str, str] = {}
    # Used for names the map does not know; empty: pass the assistant's model name through unchanged.
    llm_default_model: str = ""
    # Context window (tokens) per upstream model; prompts are fitted into it. JSON in the env.
    llm_context_windows: dict[str, int] = {}
    llm_default_context_window: int = 8192
    # The default backend's kind of server ("openai", "vllm", "ollama", "llama.cpp", "llama-cpp-python",
    # "generic"), which decides the quirks worked around; empty: "openai" for api.openai.com, else "generic".
    llm_server: str = ""
    # Routes of model names to their own upstreams (JSON, or a JSON file): see shared/backends.py.
    llm_backends: str = ""
    llm_backends_file: str = ""
    llm_timeout_seconds: float = 120.0
    # The beat's sweep: how often it runs, and after how long a queued/cancelling run with no worker activity
    # (or an in-progress run whose worker stopped heartbeating: live steps beat every 5 s, whether or not the
    # model is sending anything) counts as lost and is enqueued again.
    run_sweep_seconds: float = 15.0
    run_stale_waiting_seconds: float = 30.0
    run_stale_running_seconds: float = 30.0
    # A vector store file still in progress this long after it was added is enqueued again (its task may be lost).
    ingest_stale_seconds: float = 600.0
    # What one file may cost ingestion (worker/ingest_limits.py); a file over a bound ends `failed` with
    # `invalid_file` and the reason. Tokens are the chunker's (OpenAI capped file_search files at 5M tokens).
    ingest_max_file_tokens: int = 5_000_000
    # The most a document may expand to when decompressed: the parts read from a .docx/.pptx in all, and any one
    # stream of a PDF; and the most any part read may expand per compressed byte (zip bombs: 1000x and more).
    ingest_max_expanded_mb: int = 128
    ingest_max_compression_ratio: float = 100.0
    ingest_max_archive_members: int = 10_000
    ingest_max_pdf_pages: int = 10_000
    ingest_max_pdf_objects: int = 2_000_000
    # Reading a file (parsing and tokenizing, before any embedding) happens in a child process with this much
    # memory, within this many seconds; all the work on one file (reading and embedding) within INGEST_FILE_SECONDS.
    ingest_read_seconds: float = 120.0
    ingest_read_memory_mb: int = 1024
    ingest_file_seconds: float = 3600.0
    # Embedding is done in slices of about this long, each its own task: other files pass between two slices.
    ingest_slice_seconds: float = 5.0

    # code_interpreter sandboxes (Docker; DOCKER_HOST points the workers at the engine, which may be remote).
    sandbox_image: str = "assistants-sandbox:latest"
    sandbox_runtime: str = ""  # e.g. "runsc" (gVisor) when registered with the engine; empty: Docker's default
    sandbox_memory_mb: int = 512
    sandbox_cpus: float = 1.0
    sandbox_pids: int = 128
    sandbox_data_mb: int = 256  # /mnt/data is a size-limited tmpfs volume
    sandbox_file_mb: int = 100  # largest single file the code may write
    sandbox_timeout_seconds: float = 60.0  # per call, soft (inside) and hard (the container is killed)
    sandbox_max_output_bytes: int = 64 * 1024
    # A thread's session ends after this long without a call, or this long after it started (OpenAI's sessions
    # lasted an hour); the reaper (beat, every minute) removes it, and the next call starts a fresh one.
    sandbox_idle_seconds: float = 1200.0
    sandbox_max_age_seconds: float = 3600.0
    # At most this many thread sessions live at once (across all workers); a call that needs a new one waits
    # up to SANDBOX_QUEUE_SECONDS for a slot, then the model is told code_interpreter is busy.
    sandbox_max_sessions: int = 64
    sandbox_queue_seconds: float = 60.0
    # Containers kept started and warm (imports done) for threads' first calls.
    sandbox_pool_size: int = 2
    # Labels this deployment's sandboxes, so that stopping one stack never touches another's on a shared engine.
    sandbox_namespace: str = "default"

    # Embeddings for file_search: the local all-MiniLM-L6-v2 (offline, 384 dimensions) unless an
    # OpenAI-compatible /embeddings endpoint is configured. The vector column's size follows EMBEDDINGS_DIM, so
    # changing embedder means re-ingesting.
    embeddings_base_url: str = ""
    embeddings_api_key: str = ""
    embeddings_model: str = "all-MiniLM-L6-v2"
    embeddings_dim: int = 384

    # Operations: LOG_FORMAT "json" (one object per line, with run_id/thread_id) or "text"; ACCESS_LOG: a line per
    # HTTP request; METRICS_PORT: a worker serves Prometheus metrics there (0: not served; the API always has
    # /metrics on its own port).
    log_format: str = "text"
    log_level: str = "INFO"
    access_log: bool = False
    metrics_port: int = 0

    # Transient upstream errors (429, 5xx, timeouts, dropped connections) are retried this often, backing off.
    llm_max_retries: int = 3

    # A run whose file_search scope has files still being indexed waits for them (without holding a worker) up
    # to this long before its model call; then it searches what is indexed.
    file_search_wait_seconds: float = 60.0

    # Connection pools per process, sized well below a gevent worker's concurrency: a step holds a database
    # connection only for its short reads and writes, never while the model answers. All kept, none overflow:
    # an overflow connection is closed when given back, and under load bursts the 10 + 10 this was opened and
    # closed ~4 connections a second (a Postgres backend started, its caches warmed, each time).
    db_pool_size: int = 20
    db_max_overflow: int = 0
    db_pool_timeout_seconds: float = 30.0
    # Names this process's connections in pg_stat_activity (e.g. assistants-worker-runs), for operators.
    db_application_name: str = "assistants"
    redis_max_connections: int = 32
    redis_pool_timeout_seconds: float = 20.0
    redis_socket_timeout_seconds: float = 10.0

    # Streams: a finished run's events stay readable this long (for clients that reconnect), and a silent stream
    # sends an SSE comment this often (proxies cut idle connections).
    run_events_retention_seconds: int = 300
    sse_keepalive_seconds: float = 15.0
    # Text streams as one delta per this many seconds at most (the first token at once); 0: a delta per token.
    stream_flush_seconds: float = 0.1

    # Images in user messages reach the model inlined as data: URLs; larger image files are refused at message
    # creation (and shown to the model as a note, should one get past).
    image_max_bytes: int = 20 * 1024 * 1024

    # Webhooks. Receivers at loopback, private, link-local (cloud metadata) and other non-public addresses are
    # refused unless WEBHOOK_ALLOW_PRIVATE_URLS is set (the local cluster sets it) or the address is in
    # WEBHOOK_ALLOWED_NETWORKS (comma-separated CIDRs, e.g. "10.1.2.0/24"). Checked when an endpoint is saved and
    # again on every connection (DNS rebinding).
    webhook_allow_private_urls: bool = False
    webhook_allowed_networks: str = ""
    # Seconds between attempts of a failing delivery (comma-separated; then it gives up): about a day in all.
    webhook_retry_schedule: str = "5,30,120,600,1800,3600,7200,14400,28800,28800"
    # An endpoint whose deliveries have all failed for this long is disabled (and says why).
    webhook_disable_after_seconds: float = 3 * 86400.0
    webhook_timeout_seconds: float = 10.0
    # The beat looks for deliveries that are due (retries, lost tasks) this often.
    webhook_sweep_seconds: float = 5.0
    # Delivered and abandoned events are deleted after this many days.
    webhook_retention_days: int = 30


@lru_cache
def get_settings() -> Settings:
    return Settings()
