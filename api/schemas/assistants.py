"""Request bodies for /assistants (both shapes; `api.shapes` rejects what one shape does not know)."""

from typing import Annotated

from pydantic import Field

from api.schemas.common import (
    Metadata,
    Request,
    ResponseFormat,
    Temperature,
    ToolParam,
    ToolResources,
    TopP,
)

Name = Annotated[str, Field(max_length=256)] | None
Description = Annotated[str, Field(max_length=512)] | None
Instructions = Annotated[str, Field(max_length=256_000)] | None
Tools = Annotated[list[ToolParam], Field(max_length=128)]


class AssistantCreate(Request):
    model: Annotated[str, Field(min_length=1, max_length=256)]
    name: Name = None
    description: Description = None
    instructions: Instructions = None
    tools: Tools = Field(default_factory=list)
    file_ids: Annotated[list[str], Field(max_length=20)] | None = None  # v1
    tool_resources: ToolResources | None = None  # v2
    metadata: Metadata = None
    temperature: Temperature = None
    top_p: TopP = None
    response_format: ResponseFormat = None
    reasoning_effort: str | None = None


class AssistantUpdate(Request):
    model: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    name: Name = None
    description: Description = None
    instructions: Instructions = None
    tools: Tools | None = None
    file_ids: Annotated[list[str], Field(max_length=20)] | None = None
    tool_resources: ToolResources | None = None
    metadata: Metadata = None
    temperature: Temperature = None
    top_p: TopP = None
    response_format: ResponseFormat = None
    reasoning_effort: str | None = None


class AssistantFileCreate(Request):
    file_id: str
