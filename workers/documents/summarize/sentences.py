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
# What a boundary sentencex put after an abbreviation looks like: the next segment goes on in lower case or
# with an ordinal sign ("Pedido n.º 118", "la page 3 de l'art. suivant"), or a number follows a short
# abbreviation ("Fattura n. 12", "Nr. 5"). Such a boundary is no sentence end.
_CONTINUES = re.compile(r"[^\S\n]*(?:[a-zß-ÿ]|[º°ª])")
_NUMBER_AFTER_ABBREVIATION = re.compile(r"(?<!\w)\w{1,3}\.[^\S\n]*$")
_ABBREVIATION_WINDOW = 12  # characters before a boundary in which to look for the abbreviation
_NUMBER = re.compile(r"[^\S\n]*\d")


def sentence_spans(text: str, language: str | None) -> list[tuple[int, int]]:
    """(start, end) character offsets of each sentence, in order; spans without a word character
    (separators, bullets) are dropped."""
    spans = []
    for segment_start, segment_end in _segments(text, language):
        segment = text[segment_start:segment_end]
        for line in _NON_EMPTY_LINE.finditer(segment):
            start = segment_start + line.start() + (len(line.group()) - len(line.group().lstrip()))
            end = segment_start + line.start() + len(line.group().rstrip())
            if _WORD.search(text, start, end):
                spans.append((start, end))
    return spans


def _segments(text: str, language: str | None) -> list[tuple[int, int]]:
    """sentencex's segments, with those that only follow an abbreviation joined to the one before."""
    segments: list[tuple[int, int]] = []
    for boundary in sentencex.get_sentence_boundaries(language or _UNKNOWN_LANGUAGE, text):
        start, end = boundary["start_index"], boundary["end_index"]
        if segments and _continues(text, segments[-1], start):
            segments[-1] = (segments[-1][0], end)
        else:
            segments.append((start, end))
    return segments


def _continues(text: str, previous: tuple[int, int], start: int) -> bool:
    window = max(previous[0], previous[1] - _ABBREVIATION_WINDOW)
    return bool(_CONTINUES.match(text, start)) or (
        bool(_NUMBER_AFTER_ABBREVIATION.search(text, window, previous[1])) and bool(_NUMBER.match(text, start)))
