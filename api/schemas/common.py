"""Request-side building blocks shared by several resources, with OpenAI's limits."""

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictFloat, StrictInt, model_validator

MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512


class Request(BaseModel):
    """Unknown fields are an error, as on OpenAI ("Unrecognized request argument supplied")."""

    model_config = ConfigDict(extra="forbid")


def _check_metadata(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    if len(value) > MAX_METADATA_PAIRS:
        raise ValueError(f"Invalid 'metadata': too many properties. Expected an object with at most "
                         f"{MAX_METADATA_PAIRS} properties, but got an object with {len(value)} properties instead.")
    for k, v in value.items():
        if len(k) > MAX_METADATA_KEY:
            raise ValueError(f"Invalid 'metadata': key too long. Expected a key with maximum length "
                             f"{MAX_METADATA_KEY}, but got a key with length {len(k)} instead.")
        if len(v) > MAX_METADATA_VALUE:
            raise ValueError(f"Invalid 'metadata.{k}': string too long. Expected a string with maximum length "
                             f"{MAX_METADATA_VALUE}, but got a string with length {len(v)} instead.")
    return value


Metadata = Annotated[dict[str, str] | None, AfterValidator(_check_metadata)]
Temperature = Annotated[StrictFloat | StrictInt | None, Field(ge=0, le=2)]
TopP = Annotated[StrictFloat | StrictInt | None, Field(ge=0, le=1)]


class FunctionDef(Request):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class RankingOptions(Request):
    score_threshold: Annotated[StrictFloat | StrictInt, Field(ge=0, le=1)]
    ranker: Literal["auto", "default_2024_08_21"] | None = None


class FileSearchOptions(Request):
    max_num_results: Annotated[StrictInt, Field(ge=1, le=50)] | None = None
    ranking_options: RankingOptions | None = None


class ToolParam(Request):
    """One tool. A flat model rather than a discriminated union keeps error params as `tools[0].function`."""

    type: Literal["code_interpreter", "file_search", "retrieval", "function"]
    function: FunctionDef | None = None
    file_search: FileSearchOptions | None = None

    @model_validator(mode="after")
    def _function_needs_definition(self) -> "ToolParam":
        if self.type == "function" and self.function is None:
            raise ValueError("Missing required parameter: 'function'.")
        return self


class JsonSchemaFormat(Request):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")]
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormatObject(Request):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_iff_json_schema(self) -> "ResponseFormatObject":
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("Missing required parameter: 'response_format.json_schema'.")
        if self.type != "json_schema" and self.json_schema is not None:
            raise ValueError("'response_format.json_schema' is only allowed with type 'json_schema'.")
        return self

    def wire(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True, by_alias=True)


# "none" was listed by the first v2 spec (and SDKs 1.21 to 1.3x) and dropped later; it asks for no particular
# format, which is what "auto" means, so it is stored and shown as "auto".
ResponseFormat = Literal["auto", "none"] | ResponseFormatObject | None
FileIdList = Annotated[list[str], Field(max_length=20)]


class CodeInterpreterResources(Request):
    file_ids: FileIdList = Field(default_factory=list)


class VectorStoreHelper(Request):
    """tool_resources.file_search.vector_stores: create a vector store inline."""

    file_ids: Annotated[list[str], Field(max_length=10000)] = Field(default_factory=list)
    metadata: Metadata = None
    chunking_strategy: dict[str, Any] | None = None


class FileSearchResources(Request):
    vector_store_ids: Annotated[list[str], Field(max_length=1)] | None = None
    vector_stores: Annotated[list[VectorStoreHelper], Field(max_length=1)] | None = None

    @property
    def names_stores(self) -> bool:
        """An update changes only what it names: `file_search: {}` names no stores and leaves them as they are
        (the spec's `vector_store_ids` "overrides" and has no default); `vector_store_ids: []` detaches them."""
        return self.vector_store_ids is not None or self.vector_stores is not None

    @model_validator(mode="after")
    def _one_of(self) -> "FileSearchResources":
        if self.vector_store_ids and self.vector_stores:
            raise ValueError("Invalid 'tool_resources.file_search': provide either 'vector_store_ids' or "
                             "'vector_stores', not both.")
        return self


class ToolResources(Request):
    code_interpreter: CodeInterpreterResources | None = None
    file_search: FileSearchResources | None = None

    def over(self, base: "ToolResources | None") -> "ToolResources":
        """These resources on top of `base`, tool by tool: what this names replaces `base`'s, the rest stays
        (create-thread-and-run's own tool_resources beside its thread's)."""
        if base is None:
            return self
        named: dict[str, Any] = {}
        if self.code_interpreter is not None:
            named["code_interpreter"] = self.code_interpreter
        if self.file_search is not None and self.file_search.names_stores:
            named["file_search"] = self.file_search
        return base.model_copy(update=named)
