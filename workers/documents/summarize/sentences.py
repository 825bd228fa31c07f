"""Sentence spans in any language with ``sentencex`` (Wikimedia's rule-based segmenter, ~300 languages,
no models). Letters and forms put one unit per line (headers, item lines, sign-offs), so a line break
also ends a span. Spans are stripped of surrounding whitespace and always slice back to their text."""

from __future__ import annotations

import re

import sentencex

_NON_EMPTY_LINE = re.compile(r"[^\n]*\S[^\n]*")
_WORD = re.compile(r"\w", re.UNICODE)
# sentencex falls back to generic rules for a code it does not know.
_UNKNOWN_LANGUAGE = "xx"


def sentence_spans(text: str, language: str | None) -> list[tuple[int, int]]:
    """(start, end) character offsets of each sentence, in order; spans without a word character
    (separators, bullets) are dropped."""
    spans = []
    for boundary in sentencex.get_sentence_boundaries(language or _UNKNOWN_LANGUAGE, text):
        segment_start = boundary["start_index"]
        segment = text[segment_start : boundary["end_index"]]
        for line in _NON_EMPTY_LINE.finditer(segment):
            start = segment_start + line.start() + (len(line.group()) - len(line.group().lstrip()))
            end = segment_start + line.start() + len(line.group().rstrip())
            if _WORD.search(text, start, end):
                spans.append((start, end))
    return spans
