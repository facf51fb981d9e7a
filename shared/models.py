"""The database schema: one storage model that both API shapes (v1 and v2) render.

Every object row carries `project_id` (tenancy) and `seq`, a database-assigned identity that orders
lists: cursor pagination on `seq` stays correct when many rows share a `created_at` second.
"""

from typing import Any

from sqlalchemy import BigInteger, Column, ForeignKey, Identity, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


def _seq() -> Any:
    return Field(default=None, sa_column=Column(BigInteger, Identity(), nullable=False, unique=True))


def _project_fk() -> Any:
    return Field(
        sa_column=Column(String, ForeignKey("project.id", ondelete="CASCADE"), nullable=False, index=True)
    )


def _json(nullable: bool = True, default: Any = None) -> Any:
    factory = (lambda: type(default)(default)) if isinstance(default, list | dict) else (lambda: default)
    return Field(default_factory=factory, sa_column=Column(JSONB, nullable=nullable))


def _metadata() -> Any:
    # "metadata" is reserved on SQLAlchemy models, so the attribute is `meta` and the column "metadata".
    return Field(default=None, sa_column=Column("metadata", JSONB, nullable=True))


class Project(SQLModel, table=True):
    id: str = Field(primary_key=True)
    name: str = Field(sa_column=Column(String, nullable=False, unique=True))
    created_at: int


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"
    id: str = Field(primary_key=True)
    project_id: str = _project_fk()
    name: str
    # sha256 of the secret; the secret itself is shown once, at creation, and never stored.
    key_hash: str = Field(sa_column=Column(String, nullable=False, unique=True))
    hint: str  # "sk-…abcd", to recognise a key in listings
    created_at: int
    revoked_at: int | None = None


class File(SQLModel, table=True):
    id: str = Field(primary_key=True)
    seq: int | None = _seq()
    project_id: str = _project_fk()
    created_at: int
    filename: str
    purpose: str = Field(index=True)
    bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    status: str = "processed"
    blob_key: str


class Assistant(SQLModel, table=True):
    id: str = Field(primary_key=True)
    seq: int | None = _seq()
    project_id: str = _project_fk()
    created_at: int
    model: str
    name: str | None = None
    description: str | None = None
    instructions: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # Tools in v2 form; v1's `retrieval` is stored as `file_search` and rendered back per shape.
    tools: list[dict[str, Any]] = _json(nullable=False, default=[])
    meta: dict[str, str] | None = _metadata()
    temperature: float | None = None
    top_p: float | None = None
    response_format: Any = _json()
    # v2 tool_resources.file_search.vector_store_ids.
    vector_store_ids: list[str] = _json(nullable=False, default=[])
    # The vector store that mirrors the assistant's own files for v1 `retrieval` (see api/services/assistants).
    auto_vector_store_id: str | None = None


class AssistantFile(SQLModel, table=True):
    """The assistant's own files: v1 `file_ids` / assistant files, v2 tool_resources.code_interpreter.file_ids."""

    __tablename__ = "assistant_file"
    __table_args__ = (UniqueConstraint("assistant_id", "file_id"),)
    seq: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    assistant_id: str = Field(
        sa_column=Column(String, ForeignKey("assistant.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    file_id: str = Field(
        sa_column=Column(String, ForeignKey("file.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    created_at: int


class Thread(SQLModel, table=True):
    id: str = Field(primary_key=True)
    seq: int | None = _seq()
    project_id: str = _project_fk()
    created_at: int
    meta: dict[str, str] | None = _metadata()
    code_interpreter_file_ids: list[str] = _json(nullable=False, default=[])
    vector_store_ids: list[str] = _json(nullable=False, default=[])


class Message(SQLModel, table=True):
    __table_args__ = (Index("ix_message_thread_seq", "thread_id", "seq"),)
    id: str = Field(primary_key=True)
    seq: int | None = _seq()
    project_id: str = _project_fk()
    thread_id: str = Field(
        sa_column=Column(String, ForeignKey("thread.id", ondelete="CASCADE"), nullable=False)
    )
    created_at: int
    role: str
    # Content parts in wire form: [{"type": "text", "text": {"value", "annotations"}}, {"type": "image_file"…}].
    content: list[dict[str, Any]] = _json(nullable=False, default=[])
    # v2 attachments [{"file_id", "tools": [{"type"}]}]; v1 `file_ids` are their file ids.
    attachments: list[dict[str, Any]] = _json(nullable=False, default=[])
    assistant_id: str | None = None
    run_id: str | None = None
    status: str = "completed"
    incomplete_details: Any = _json()
    completed_at: int | None = None
    incomplete_at: int | None = None
    meta: dict[str, str] | None = _metadata()


class VectorStore(SQLModel, table=True):
    """A searchable set of files (file_search). v1 `retrieval` files live in an automatic one per assistant, and
    files attached to a thread's messages for file_search in the thread's."""

    __tablename__ = "vector_store"
    id: str = Field(primary_key=True)
    seq: int | None = _seq()
    project_id: str = _project_fk()
    created_at: int
    name: str | None = None
    meta: dict[str, str] | None = _metadata()
    status: str = "completed"
    usage_bytes: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    last_active_at: int | None = None
    expires_after: Any = _json()
    expires_at: int | None = None


class VectorStoreFile(SQLModel, table=True):
    __tablename__ = "vector_store_file"
    __table_args__ = (UniqueConstraint("vector_store_id", "file_id"),)
    seq: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    vector_store_id: str = Field(
        sa_column=Column(String, ForeignKey("vector_store.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    file_id: str = Field(
        sa_column=Column(String, ForeignKey("file.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    created_at: int
    status: str = "in_progress"
    last_error: Any = _json()
    usage_bytes: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    chunking_strategy: Any = _json()  # {"type": "static", "static": {max_chunk_size_tokens, chunk_overlap_tokens}}
    attributes: Any = _json()
    batch_id: str | None = Field(default=None, index=True)
    # Bumped on every (re-)enqueue of its ingestion: a task carrying an older value is stale.
    attempt: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))


class VectorStoreFileBatch(SQLModel, table=True):
    __tablename__ = "vector_store_file_batch"
    id: str = Field(primary_key=True)
    seq: int | None = _seq()
    project_id: str = _project_fk()
    vector_store_id: str = Field(
        sa_column=Column(String, ForeignKey("vector_store.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    created_at: int
    cancelled: bool = False


# Statuses in which a run holds its thread's lock (see the partial unique index in migration 0002).
ACTIVE_RUN_STATUSES = ("queued", "in_progress", "requires_action", "cancelling")


class Run(SQLModel, table=True):
    __table_args__ = (Index("ix_run_thread_seq", "thread_id", "seq"),)
    id: str = Field(primary_key=True)
    seq: int | None = _seq()
    project_id: str = _project_fk()
    thread_id: str = Field(
        sa_column=Column(String, ForeignKey("thread.id", ondelete="CASCADE"), nullable=False)
    )
    assistant_id: str
    created_at: int
    status: str = Field(default="queued", index=True)
    # Compare-and-set counter: every state change increments it; a task carries the value it expects, so a
    # redelivered or overtaken task is a no-op.
    step_seq: int = 0
    # Last time a worker showed life on this run; the beat re-enqueues runs whose worker went quiet.
    heartbeat_at: float | None = None
    model: str
    instructions: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    additional_instructions: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    tools: list[dict[str, Any]] = _json(nullable=False, default=[])
    file_ids: list[str] = _json(nullable=False, default=[])  # v1: the assistant's files at creation
    meta: dict[str, str] | None = _metadata()
    temperature: float | None = None
    top_p: float | None = None
    response_format: Any = _json()
    tool_choice: Any = _json()
    parallel_tool_calls: bool = True
    max_prompt_tokens: int | None = None
    max_completion_tokens: int | None = None
    truncation_strategy: Any = _json()
    required_action: Any = _json()
    last_error: Any = _json()
    incomplete_details: Any = _json()
    usage: Any = _json()
    started_at: int | None = None
    expires_at: int | None = None
    cancelled_at: int | None = None
    failed_at: int | None = None
    completed_at: int | None = None
    # sha256 of the creating request (thread, body, API shape): a client retrying it (the SDKs retry POSTs after
    # timeouts and 5xx) gets this run back rather than "thread already has an active run".
    request_hash: str | None = None


class RunStep(SQLModel, table=True):
    __tablename__ = "run_step"
    # One step per (run, engine step): a redone step cannot be recorded twice.
    __table_args__ = (UniqueConstraint("run_id", "engine_seq", "kind"), Index("ix_run_step_run_seq", "run_id", "seq"))
    id: str = Field(primary_key=True)
    seq: int | None = _seq()
    project_id: str = _project_fk()
    run_id: str = Field(sa_column=Column(String, ForeignKey("run.id", ondelete="CASCADE"), nullable=False))
    thread_id: str
    assistant_id: str
    engine_seq: int  # the run's step_seq when this step was taken
    kind: str  # message_creation | tool_calls
    created_at: int
    status: str = "in_progress"
    step_details: dict[str, Any] = _json(nullable=False, default={})
    last_error: Any = _json()
    usage: Any = _json()
    expired_at: int | None = None
    cancelled_at: int | None = None
    failed_at: int | None = None
    completed_at: int | None = None


class WebhookEndpoint(SQLModel, table=True):
    """Where a project's events are POSTed (an extension: OpenAI managed its webhooks in a dashboard)."""

    __tablename__ = "webhook_endpoint"
    id: str = Field(primary_key=True)
    seq: int | None = _seq()
    project_id: str = _project_fk()
    created_at: int
    url: str = Field(sa_column=Column(Text, nullable=False))
    events: list[str] | None = _json()  # None: every event type, present and future
    description: str | None = None
    meta: dict[str, str] | None = _metadata()
    status: str = "enabled"  # enabled | disabled
    disabled_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # The Standard Webhooks signing secret, "whsec_<base64>"; kept as is, because every delivery is signed with it.
    secret: str
    # Since when every attempt failed (None after a success): an endpoint failing for long is disabled.
    failing_since: float | None = None


class WebhookEvent(SQLModel, table=True):
    """One thing that happened, written in the transaction that made it happen (the outbox)."""

    __tablename__ = "webhook_event"
    id: str = Field(primary_key=True)
    project_id: str = _project_fk()
    type: str
    created_at: int = Field(index=True)
    # The exact body every delivery of this event sends: retries carry the same bytes.
    payload: str = Field(sa_column=Column(Text, nullable=False))


class WebhookDelivery(SQLModel, table=True):
    """One event for one endpoint: its id is the `webhook-id` every attempt carries."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (Index("ix_webhook_delivery_endpoint_seq", "endpoint_id", "seq"),
                      # The beat's question — which deliveries are due? — reads only the pending ones.
                      Index("ix_webhook_delivery_due", "next_attempt_at", postgresql_where=text("status = 'pending'")))
    id: str = Field(primary_key=True)
    seq: int | None = _seq()
    project_id: str = _project_fk()
    endpoint_id: str = Field(
        sa_column=Column(String, ForeignKey("webhook_endpoint.id", ondelete="CASCADE"), nullable=False)
    )
    event_id: str = Field(
        sa_column=Column(String, ForeignKey("webhook_event.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    created_at: int
    status: str = "pending"  # pending | delivered | failed
    attempts: int = 0  # also the lease's token: an attempt records its outcome only if no later one started
    next_attempt_at: float
    lease_until: float | None = None  # an attempt in flight holds the delivery until then
    task_due_at: float | None = None  # when the task last sent for it is due: the beat leaves it alone until then
    last_attempt_at: int | None = None
    last_response_status: int | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    delivered_at: int | None = None
