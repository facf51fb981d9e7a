"""Documents for file_search tests that take the local embedder a while: English-like filler (common words,
so keyword search passes it over) with one distinctive fact in the middle. Standard library only (the v1 suite
uses it too)."""

import random

WORDS = [
    "the", "of", "and", "to", "in", "is", "was", "for", "on", "that", "with", "as", "by", "at", "from", "it",
    "his", "an", "were", "are", "which", "this", "be", "or", "had", "not", "but", "they", "have", "one", "all",
    "their", "there", "been", "has", "her", "when", "who", "more", "will", "would", "into", "if", "no", "out",
    "so", "said", "what", "up", "its", "about", "than", "them", "can", "only", "other", "time", "new", "some",
    "could", "these", "two", "may", "first", "then", "do", "any", "like", "my", "now", "over", "such", "our",
    "man", "me", "even", "most", "made", "after", "also", "did", "many", "before", "must", "through", "back",
    "years", "where", "much", "your", "way", "well", "down", "should", "because", "each", "just", "those",
    "people", "how", "too", "little", "state", "good", "very", "make", "world", "still", "own", "see", "men",
    "work", "long", "get", "here", "between", "both", "life", "being", "under", "never", "day", "same", "another",
    "know", "while", "last", "might", "us", "great", "old", "year", "off", "come", "since", "against", "go",
    "came", "right", "used", "take", "three"]


def document(kilobytes: int, fact: str, seed: int = 0) -> bytes:
    """About `kilobytes` KB of filler sentences with `fact` as a paragraph of its own halfway through."""
    rng = random.Random(seed)
    half, size, out = kilobytes * 512, 0, []
    while size < kilobytes * 1024:
        sentence = " ".join(rng.choices(WORDS, k=rng.randint(8, 16))).capitalize() + ".\n"
        if size < half <= size + len(sentence):
            sentence += f"\n{fact}\n\n"
        out.append(sentence)
        size += len(sentence)
    return "".join(out).encode()
