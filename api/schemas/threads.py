"""Request bodies for /threads and /threads/{id}/messages."""

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from api.schemas.common import Metadata, Request, ToolResources

MAX_CONTENT = 256_000


class AttachmentTool(Request):
    type: Literal["code_interpreter", "file_search"]


class Attachment(Request):
    file_id: str
    tools: list[AttachmentTool] = Field(default_factory=list)


class ImageFile(Request):
    file_id: str
    detail: Literal["auto", "low", "high"] | None = None


class ImageUrl(Request):
    url: Annotated[str, Field(min_length=1)]
    detail: Literal["auto", "low", "high"] | None = None


class ContentPart(Request):
    """One part of a v2 message's content array (flat model: see ToolParam for why)."""

    type: Literal["text", "image_file", "image_url"]
    text: Annotated[str, Field(max_length=MAX_CONTENT)] | None = None
    image_file: ImageFile | None = None
    image_url: ImageUrl | None = None

    @model_validator(mode="after")
    def _payload_matches_type(self) -> "ContentPart":
        if getattr(self, self.type) is None:
            raise ValueError(f"Missing required parameter: '{self.type}'.")
        return self


class MessageCreate(Request):
    role: Literal["user", "assistant"]
    content: Annotated[str, Field(min_length=1, max_length=MAX_CONTENT)] | Annotated[
        list[ContentPart], Field(min_length=1)
    ]
    file_ids: Annotated[list[str], Field(max_length=10)] | None = None  # v1
    attachments: list[Attachment] | None = None  # v2
    metadata: Metadata = None


class MessageUpdate(Request):
    metadata: Metadata = None


class ThreadCreate(Request):
    messages: list[MessageCreate] | None = None
    tool_resources: ToolResources | None = None  # v2
    metadata: Metadata = None


class ThreadUpdate(Request):
    tool_resources: ToolResources | None = None  # v2
    metadata: Metadata = None


def unset(model: Request) -> dict[str, Any]:
    """Only the fields the client sent (null included), for PATCH-like modify semantics."""
    return {name: getattr(model, name) for name in model.model_fields_set}
