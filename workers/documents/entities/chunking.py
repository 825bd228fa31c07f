"""Cut a long text into pieces spaCy accepts (its ``max_length`` is 1,000,000 characters, and its memory
grows with the piece), at the best boundary available: a blank line, else a sentence end, else a space,
else anywhere. Pieces are contiguous, so an entity's offset in the text is its offset in the piece plus
the piece's start."""

from __future__ import annotations

import re

_BOUNDARIES = (re.compile(r"\n\s*\n"), re.compile(r"[.!?…][\"'»”)]*\s+"), re.compile(r"\s+"))


def chunk_spans(text: str, max_chars: int) -> list[tuple[int, int]]:
    """``(start, end)`` of consecutive pieces of at most ``max_chars`` covering ``text``."""
    spans: list[tuple[int, int]] = []
    start = 0
    while len(text) - start > max_chars:
        limit = start + max_chars
        end = limit
        # Look for a boundary in the second half of the window, so pieces stay reasonably large.
        for boundary in _BOUNDARIES:
            last = None
            for last in boundary.finditer(text, start + max_chars // 2, limit):
                pass
            if last is not None:
                end = last.end()
                break
        spans.append((start, end))
        start = end
    spans.append((start, len(text)))
    return spans
