"""One Celery queue per kind of work, so each can be scaled on its own."""

from enum import StrEnum


class Queue(StrEnum):
    RUNS = "runs"  # run state machine steps: one model call or one tool execution per task
    CODE = "code"  # code_interpreter executions in sandboxes
    INGEST = "ingest"  # file parsing, chunking and embedding for retrieval
    WEBHOOKS = "webhooks"  # webhook deliveries: one attempt (one signed POST) per task
