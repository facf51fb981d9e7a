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
    # (or an in-progress run whose worker stopped heartbeating) counts as lost and is enqueued again.
    run_sweep_seconds: float = 15.0
    run_stale_waiting_seconds: float = 30.0
    run_stale_running_seconds: float = 120.0
    # A vector store file still in progress this long after it was added is enqueued again (its task may be lost).
    ingest_stale_seconds: float = 600.0

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


@lru_cache
def get_settings() -> Settings:
    return Settings()
