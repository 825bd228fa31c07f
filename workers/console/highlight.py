"""A document's text cut at its entities' offsets, for a template to mark them up (each piece is escaped
like any other text: nothing from the document becomes markup)."""

from __future__ import annotations

from typing import Any


def aligned(text: str, entity: dict[str, Any]) -> bool:
    """Whether the entity's offsets point at its text in this document."""
    start, end = entity.get("start"), entity.get("end")
    return (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)
            and text[start:end] == entity.get("text"))


def segments(text: str, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive pieces of ``text``: ``{"text", "entity", "index"}`` with ``entity`` None between entities.
    Entities whose offsets do not match the text, or that overlap an earlier one, are not marked."""
    pieces: list[dict[str, Any]] = []
    position = 0
    for index, entity in sorted(enumerate(entities), key=lambda pair: (pair[1].get("start", 0), -pair[1].get("end", 0))):
        if not aligned(text, entity) or entity["start"] < position:
            continue
        if entity["start"] > position:
            pieces.append({"text": text[position:entity["start"]], "entity": None, "index": None})
        pieces.append({"text": text[entity["start"]:entity["end"]], "entity": entity, "index": index})
        position = entity["end"]
    if position < len(text):
        pieces.append({"text": text[position:], "entity": None, "index": None})
    return pieces


def find_free(text: str, needle: str, taken: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The first occurrence of ``needle`` in ``text`` that overlaps none of the ``taken`` spans."""
    start = text.find(needle) if needle else -1
    while start >= 0:
        end = start + len(needle)
        if all(end <= left or start >= right for left, right in taken):
            return start, end
        start = text.find(needle, start + 1)
    return None
