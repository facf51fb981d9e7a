"""Server-Sent Events for runs, read from the run's Redis stream (through the process's relay), in OpenAI's event
names and order.

Each event carries an `id:` (its stream entry id): a client that lost its connection resumes with
`GET …/runs/{run_id}/events` and `Last-Event-ID`, and gets everything it missed.

A stream may be silent for long: a model thinking before its first token, a run waiting in the queue, a
code_interpreter call. Proxies and load balancers cut connections idle for a while (often 60 s), so a silence
is filled with SSE comment lines (`: keep-alive`), which every SSE client skips. A stream gives up only after
a silence longer than a run can last.
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse
from sqlalchemy.exc import DBAPIError

from api.relay import before, relay
from api.services import runs as runs_svc
from shared import events, wire
from shared.config import get_settings
from shared.models import Run
from shared.wire import Version

# A comment line alone, with no blank line after it: the blank line would end an event, and the openai SDKs'
# decoders (which keep the last `id:` seen, as the SSE spec says) then dispatch an empty event and fail to parse
# its data. Without it the comment is simply skipped, by them and by every other SSE reader.
KEEPALIVE = b": keep-alive\n"
STREAM_ENDS = {f"{e.removeprefix('thread.run.')}" for e in events.CLOSING if e.startswith("thread.run.")}
DB_ERRORS = (OSError, DBAPIError)
# Longer than a run lives (its expiry ends it with events): a stream silent this long follows a lost run.
MAX_SILENCE_SECONDS = 660.0


def _payload(event: str, data: str, version: Version) -> str:
    if event == events.DONE:
        return data
    # Only run objects carry private fields, and only v1 needs reshaping: everything else passes through.
    if version == "v2" and not (event.startswith("thread.run.") and not event.startswith("thread.run.step")):
        return data
    return json.dumps(wire.event_data(event, json.loads(data), version), separators=(",", ":"))


def _frame(entry_id: str, event: str, data: str, version: Version) -> bytes:
    return f"id: {entry_id}\nevent: {event}\ndata: {_payload(event, data, version)}\n\n".encode()


async def _frames(run_id: str, version: Version, cursor: str) -> AsyncIterator[bytes]:
    every = get_settings().sse_keepalive_seconds
    silent = 0.0
    async with relay().follow(run_id, cursor) as follower:
        while True:
            try:
                entry_id, event, data = await asyncio.wait_for(follower.queue.get(), timeout=every)
            except TimeoutError:
                silent += every
                if silent > MAX_SILENCE_SECONDS:
                    return  # the run is stuck or gone; the client may reconnect with Last-Event-ID
                ended = await _ended_quietly(run_id)
                if ended is not None:
                    yield _frame("0-0", f"thread.run.{ended.status}", json.dumps(wire.run(ended)), version)
                    yield _frame("0-0", events.DONE, "[DONE]", version)
                    return
                yield KEEPALIVE
                continue
            silent = 0.0
            # Whatever else has arrived goes out in the same write: one send per batch, not per event.
            frames = [_frame(entry_id, event, data, version)]
            while event != events.DONE and not follower.queue.empty():
                entry_id, event, data = follower.queue.get_nowait()
                frames.append(_frame(entry_id, event, data, version))
            yield b"".join(frames)
            if event == events.DONE:
                return


# A run whose state changed this long ago without its stream saying so lost its events (Redis was away when they
# were to be written, or the stream expired): the database has the last word.
QUIET_SECONDS = 5.0


async def _ended_quietly(run_id: str) -> Run | None:
    """The run, if it has reached a status that ends a stream (terminal, or waiting for the client) unannounced."""
    try:
        run = await runs_svc.load(run_id)
    except DB_ERRORS:  # the database is away too: keep waiting
        return None
    if run is None or run.status not in STREAM_ENDS:
        return None
    return run if time.time() - (run.heartbeat_at or 0) > QUIET_SECONDS else None


def stream(run_id: str, version: Version, *, start: str | None = None, after: str | None = None) -> StreamingResponse:
    """The run's events from entry `start` (inclusive) or after `after`, until the stream's end marker."""
    cursor = before(start) if start else (after or "0-0")
    return StreamingResponse(_frames(run_id, version, cursor), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
