"""Request bodies of /v1/vector_stores and its files and file batches, with OpenAI's limits."""

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StrictBool, StrictFloat, StrictInt, StrictStr, model_validator

from api.schemas.common import Metadata, Request


class StaticSizes(Request):
    max_chunk_size_tokens: Annotated[StrictInt, Field(ge=100, le=4096)]
    chunk_overlap_tokens: Annotated[StrictInt, Field(ge=0)]

    @model_validator(mode="after")
    def _overlap_at_most_half(self) -> "StaticSizes":
        if self.chunk_overlap_tokens > self.max_chunk_size_tokens // 2:
            raise ValueError("Invalid 'chunking_strategy.static.chunk_overlap_tokens': the overlap must not exceed "
                             "half of 'max_chunk_size_tokens'.")
        return self


class ChunkingStrategy(Request):
    type: Literal["auto", "static"]
    static: StaticSizes | None = None

    @model_validator(mode="after")
    def _static_needs_sizes(self) -> "ChunkingStrategy":
        if self.type == "static" and self.static is None:
            raise ValueError("Missing required parameter: 'chunking_strategy.static'.")
        if self.type == "auto" and self.static is not None:
            raise ValueError("'chunking_strategy.static' is only allowed with type 'static'.")
        return self


class ExpiresAfter(Request):
    anchor: Literal["last_active_at"]
    days: Annotated[StrictInt, Field(ge=1, le=365)]


def _check_attributes(value: dict[str, Any] | None) -> dict[str, Any] | None:
    for k, v in (value or {}).items():
        if len(k) > 64:
            raise ValueError(f"Invalid 'attributes': key too long. Expected a key with maximum length 64, but got "
                             f"a key with length {len(k)} instead.")
        if isinstance(v, str) and len(v) > 512:
            raise ValueError(f"Invalid 'attributes.{k}': string too long. Expected a string with maximum length "
                             f"512, but got a string with length {len(v)} instead.")
    return value


Attributes = Annotated[Annotated[dict[str, StrictStr | StrictBool | StrictInt | StrictFloat], Field(max_length=16)]
                       | None, AfterValidator(_check_attributes)]


class VectorStoreCreate(Request):
    file_ids: Annotated[list[str], Field(max_length=500)] = Field(default_factory=list)
    name: str | None = None
    description: str | None = None  # sent by recent SDKs; not part of the vector store object, so not kept
    expires_after: ExpiresAfter | None = None
    chunking_strategy: ChunkingStrategy | None = None
    metadata: Metadata = None


class VectorStoreUpdate(Request):
    name: str | None = None
    expires_after: ExpiresAfter | None = None
    metadata: Metadata = None


class VectorStoreFileCreate(Request):
    file_id: str
    chunking_strategy: ChunkingStrategy | None = None
    attributes: Attributes = None


class VectorStoreFileUpdate(Request):
    attributes: Attributes


class FileBatchCreate(Request):
    file_ids: Annotated[list[str], Field(min_length=1, max_length=2000)] | None = None
    files: Annotated[list[VectorStoreFileCreate], Field(min_length=1, max_length=2000)] | None = None
    chunking_strategy: ChunkingStrategy | None = None
    attributes: Attributes = None

    @model_validator(mode="after")
    def _one_of(self) -> "FileBatchCreate":
        if (self.file_ids is None) == (self.files is None):
            raise ValueError("Provide exactly one of 'file_ids' or 'files'.")
        return self


def dump(strategy: ChunkingStrategy | None) -> dict[str, Any] | None:
    return strategy.model_dump(exclude_none=True) if strategy else None


class SearchRankingOptions(Request):
    # One ranker here (hybrid: vectors and full text fused by reciprocal rank); the spec's names are accepted.
    ranker: Literal["none", "auto", "default-2024-11-15"] | None = None
    score_threshold: Annotated[StrictFloat | StrictInt, Field(ge=0, le=1)] | None = None


SearchQuery = Annotated[str, Field(max_length=4096)]


class VectorStoreSearch(Request):
    query: SearchQuery | Annotated[list[SearchQuery], Field(max_length=20)]
    # Comparison and compound filters, validated (with precise params) where they are compiled to SQL.
    filters: dict[str, Any] | None = None
    max_num_results: Annotated[StrictInt, Field(ge=1, le=50)] = 10
    ranking_options: SearchRankingOptions | None = None
    rewrite_query: StrictBool = False
