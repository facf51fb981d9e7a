"""Object ids in OpenAI's shapes: `asst_…`, `thread_…`, `msg_…`, `file-…` and so on."""

import secrets
import string
import time

_ALPHABET = string.ascii_letters + string.digits

PREFIXES = {
    "assistant": "asst_",
    "thread": "thread_",
    "message": "msg_",
    "run": "run_",
    "step": "step_",
    "call": "call_",
    "vector_store": "vs_",
    "vector_store_file_batch": "vsfb_",
    "file": "file-",
    "project": "proj_",
    "api_key": "key_",
    "webhook": "wh_",
    "event": "evt_",
}


def new_id(kind: str, length: int = 24) -> str:
    """A random id with the prefix OpenAI uses for `kind` (~143 bits of entropy)."""
    return PREFIXES[kind] + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def now() -> int:
    """Unix seconds, the unit of every `*_at` field on the wire."""
    return int(time.time())
