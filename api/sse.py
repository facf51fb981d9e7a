"""Server-Sent Events for runs, read from the run's Redis stream, in OpenAI's event names and order.

Each event carries an `id:` (its stream entry id): a client that lost its connection resumes with
`GET …/runs/{run_id}/events` and `Last-Event-ID`, and gets everything it missed.
"""

import json
from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse

from api.dispatch import redis_client
from shared import events, wire
from shared.wire import Version


def _payload(event: str, data: str, version: Version) -> str:
    if event == events.DONE:
        return data
    # Only run objects carry private fields, and only v1 needs reshaping: everything else passes through.
    if version == "v2" and not (event.startswith("thread.run.") and not event.startswith("thread.run.step")):
        return data
    return json.dumps(wire.event_data(event, json.loads(data), version), separators=(",", ":"))


async def _frames(run_id: str, version: Version, start: str | None, after: str | None) -> AsyncIterator[bytes]:
    async for entry_id, event, data in events.read(redis_client(), run_id, start=start, after=after):
        yield f"id: {entry_id}\nevent: {event}\ndata: {_payload(event, data, version)}\n\n".encode()


def stream(run_id: str, version: Version, *, start: str | None = None, after: str | None = None) -> StreamingResponse:
    return StreamingResponse(_frames(run_id, version, start, after), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
