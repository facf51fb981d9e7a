"""Chunking by tokens with overlap, streaming: text arrives in segments (pages, blocks) and chunks leave as soon
as they are full, so memory stays bounded by a chunk or two whatever the file's size.

Tokens are the embedding model's WordPiece tokens (no tokenizer for OpenAI's models can be loaded offline).
OpenAI's v2 default: 800 tokens per chunk, 400 of them shared with the previous chunk.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from shared import embeddings

DEFAULT_SIZE = 800
DEFAULT_OVERLAP = 400


@dataclass
class Chunk:
    position: int
    start_token: int  # where the chunk starts in the file's token stream
    text: str
    ids: list[int]  # its tokens


def strategy_of(chunking_strategy: dict[str, object] | None) -> tuple[int, int]:
    static = (chunking_strategy or {}).get("static") if (chunking_strategy or {}).get("type") == "static" else None
    if isinstance(static, dict):
        return int(static["max_chunk_size_tokens"]), int(static["chunk_overlap_tokens"])
    return DEFAULT_SIZE, DEFAULT_OVERLAP


def chunks(segments: Iterable[str], size: int = DEFAULT_SIZE, overlap: int = DEFAULT_OVERLAP) -> Iterator[Chunk]:
    tok = embeddings.tokenizer()
    stride = size - overlap
    buf = ""  # text from the first pending token on
    ids: list[int] = []
    spans: list[tuple[int, int]] = []  # each pending token's characters in buf
    position = consumed = 0
    for segment in segments:
        if not segment.strip():
            continue
        base = len(buf) + 1 if buf else 0
        buf = f"{buf}\n{segment}" if buf else segment
        enc = tok.encode(segment, add_special_tokens=False)
        ids.extend(enc.ids)
        spans.extend((base + a, base + b) for a, b in enc.offsets)
        while len(ids) >= size:
            yield Chunk(position, consumed, buf[spans[0][0]:spans[size - 1][1]], ids[:size])
            position += 1
            consumed += stride
            del ids[:stride]
            del spans[:stride]
            cut = spans[0][0] if spans else len(buf)
            buf = buf[cut:]
            spans = [(a - cut, b - cut) for a, b in spans]
    # The tail: whatever the last full chunk did not cover (or the whole text, if it was short).
    if ids and (position == 0 or len(ids) > overlap):
        yield Chunk(position, consumed, buf[spans[0][0]:spans[-1][1]], ids)
