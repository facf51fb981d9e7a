"""Request bodies for runs, create-thread-and-run and tool outputs."""

from typing import Annotated, Literal

from pydantic import Field, StrictInt, model_validator

from api.schemas.common import Metadata, Request, ResponseFormat, Temperature, ToolParam, ToolResources, TopP
from api.schemas.threads import MessageCreate, ThreadCreate

Instructions = Annotated[str, Field(max_length=256_000)] | None
TokenLimit = Annotated[StrictInt, Field(ge=256)] | None


class TruncationStrategy(Request):
    type: Literal["auto", "last_messages"]
    last_messages: Annotated[StrictInt, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _count_for_last_messages(self) -> "TruncationStrategy":
        if self.type == "last_messages" and self.last_messages is None:
            raise ValueError("Missing required parameter: 'truncation_strategy.last_messages'.")
        return self


class NamedFunction(Request):
    name: str


class NamedToolChoice(Request):
    type: Literal["function", "code_interpreter", "file_search"]
    function: NamedFunction | None = None

    @model_validator(mode="after")
    def _function_needs_name(self) -> "NamedToolChoice":
        if self.type == "function" and self.function is None:
            raise ValueError("Missing required parameter: 'tool_choice.function'.")
        return self


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice | None


class _RunOptions(Request):
    assistant_id: str
    model: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    instructions: Instructions = None
    tools: Annotated[list[ToolParam], Field(max_length=128)] | None = None
    metadata: Metadata = None
    temperature: Temperature = None
    top_p: TopP = None
    stream: bool | None = None
    max_prompt_tokens: TokenLimit = None
    max_completion_tokens: TokenLimit = None
    truncation_strategy: TruncationStrategy | None = None
    tool_choice: ToolChoice = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat = None


class RunCreate(_RunOptions):
    additional_instructions: Instructions = None
    additional_messages: list[MessageCreate] | None = None


class ThreadAndRunCreate(_RunOptions):
    thread: ThreadCreate | None = None
    tool_resources: ToolResources | None = None


class RunUpdate(Request):
    metadata: Metadata = None


class ToolOutput(Request):
    tool_call_id: str
    output: Annotated[str, Field(max_length=512_000)] = ""


class SubmitToolOutputs(Request):
    tool_outputs: list[ToolOutput]
    stream: bool | None = None
