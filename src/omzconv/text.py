"""Small wording helpers shared by the library's reports and the CLI."""

from __future__ import annotations


def plural(count: int, word: str, words: str | None = None) -> str:
    """`1 image`, `2 images`, `1,000 near-ties` (irregular plurals: pass `words`)."""
    return f"{count:,} {word if count == 1 else words or word + 's'}"
