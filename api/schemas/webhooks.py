"""Request bodies of /v1/webhooks (an extension: OpenAI managed its webhooks in a dashboard)."""

from typing import Annotated, Literal

from pydantic import Field

from api.schemas.common import Metadata, Request
from shared.webhooks import events

EventType = Literal[events.ALL]  # type: ignore[valid-type]
Url = Annotated[str, Field(min_length=1, max_length=2048)]
Events = Annotated[list[EventType], Field(min_length=1, max_length=len(events.ALL))]
Description = Annotated[str, Field(max_length=512)]


class WebhookCreate(Request):
    url: Url
    events: Events | None = None  # omitted: every event type
    description: Description | None = None
    metadata: Metadata = None


class WebhookUpdate(Request):
    url: Url | None = None
    events: Events | None = None  # null: every event type
    description: Description | None = None
    metadata: Metadata = None
    status: Literal["enabled", "disabled"] | None = None


DeliveryStatus = Literal["pending", "delivered", "failed"]
