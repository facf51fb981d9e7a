"""Streaming token chunking: sizes, overlap, and the same chunks however the text arrives."""

import random

from shared import embeddings
from worker.chunking import chunks


def text_of(n: int) -> str:
    rng = random.Random(5)
    return " ".join(rng.choice(["alpha", "beta", "gamma", "delta", "zorblax", "x42", "über"]) for _ in range(n))


def test_sizes_overlap_and_coverage() -> None:
    text = text_of(3000)
    out = list(chunks([text], 100, 40))
    tokens = embeddings.tokenizer().encode(text, add_special_tokens=False).ids
    assert all(len(c.ids) == 100 for c in out[:-1]) and 0 < len(out[-1].ids) <= 100
    assert [c.start_token for c in out] == [i * 60 for i in range(len(out))]
    for c in out:
        assert c.ids == tokens[c.start_token:c.start_token + len(c.ids)]
        assert c.text in text  # verbatim from the source
    assert out[-1].start_token + len(out[-1].ids) == len(tokens)  # nothing at the end is lost


def test_segments_make_the_same_chunks_as_the_whole_text() -> None:
    text = text_of(4000)
    words = text.split(" ")
    segments = [" ".join(words[i:i + 333]) + "\n" for i in range(0, len(words), 333)]
    whole = list(chunks(["".join(segments)], 120, 60))
    streamed = list(chunks(segments, 120, 60))
    assert [(c.ids, c.text) for c in streamed] == [(c.ids, c.text) for c in whole]


def test_a_short_text_is_one_chunk() -> None:
    [only] = chunks(["just a few words"])
    assert only.text == "just a few words" and only.position == 0
