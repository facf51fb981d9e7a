"""Chunking by tokens with overlap, streaming: text arrives in segments (pages, blocks) and chunks leave as soon
as they are full, so memory stays bounded by a chunk or two whatever the file's size. Segments are concatenated
as they are (they carry their own separators), so a chunk's text is verbatim from the file's text.

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
    buf, buf_start = "", 0  # the text from absolute character buf_start on
    ids: list[int] = []
    spans: list[tuple[int, int]] = []  # each token's absolute characters
    head = 0  # first token not yet behind us
    position = consumed = 0
    end = 0  # absolute length of the text so far
    for segment in segments:
        if not segment:
            continue
        base = end
        buf += segment
        end += len(segment)
        enc = tok.encode(segment, add_special_tokens=False)
        ids.extend(enc.ids)
        spans.extend((base + a, base + b) for a, b in enc.offsets)
        while len(ids) - head >= size:
            yield Chunk(position, consumed, buf[spans[head][0] - buf_start:spans[head + size - 1][1] - buf_start],
                        ids[head:head + size])
            position += 1
            consumed += stride
            head += stride
        # Drop what is behind us (amortised: once per segment, not per chunk).
        if head:
            cut = spans[head][0] if head < len(spans) else end
            buf, buf_start = buf[cut - buf_start:], cut
            del ids[:head], spans[:head]
            head = 0
    # The tail: whatever the last full chunk did not cover (or the whole text, if it was short).
    if len(ids) - head and (position == 0 or len(ids) - head > overlap):
        yield Chunk(position, consumed, buf[spans[head][0] - buf_start:spans[-1][1] - buf_start], ids[head:])
