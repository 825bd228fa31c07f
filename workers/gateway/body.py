"""Reading a request's items: one JSON object (or a JSON array), or NDJSON; the body is held to a size limit
while it is read, and a document over SLIMLINE_MAX_DOCUMENT_CHARS is refused as too large."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from schemas import ItemError, Kind
from workers.client import RejectedItem
from workers.settings import Settings

NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/json-lines")


@dataclass
class TooLarge(RejectedItem):
    """A document refused for its size (413 when nothing else was sent)."""


class BodyTooLarge(Exception):
    """The body is over SLIMLINE_GATEWAY__MAX_BODY_BYTES."""


class BodyNotJson(ValueError):
    """A JSON body that does not parse."""


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused as soon as it is known to exceed ``limit`` bytes (by its declared length, or
    while it streams in)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def is_ndjson(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() in NDJSON_TYPES


def parse_items(body: bytes, ndjson: bool) -> list[Any]:
    """Items in order (positions count items, not lines: blank lines are skipped); an NDJSON line that is not
    UTF-8 or not JSON becomes a :class:`RejectedItem` (the other lines still count). Raises :class:`BodyNotJson` for a JSON body that does not parse."""
    if not ndjson:
        try:
            value = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise BodyNotJson(f"the body is not valid JSON ({error}); send one JSON object, or NDJSON with "
                              f"Content-Type: application/x-ndjson") from None
        return value if isinstance(value, list) else [value]
    items: list[Any] = []
    for number, raw in enumerate(body.split(b"\n"), start=1):
        if not raw.strip():
            continue
        position = len(items) + 1
        try:
            items.append(json.loads(raw.decode("utf-8")))
        except UnicodeDecodeError as failure:
            items.append(RejectedItem(position, None, [ItemError(
                field="line", reason=f"line {number} is not valid UTF-8 (byte {failure.start})")]))
        except json.JSONDecodeError as failure:
            items.append(RejectedItem(position, None, [ItemError(
                field="line", reason=f"line {number} is not valid JSON: {failure.msg} (column {failure.colno})")]))
    return items


def too_large(kind: Kind, item: Any, position: int, settings: Settings) -> TooLarge | None:
    """A document whose text is over SLIMLINE_MAX_DOCUMENT_CHARS (answered 413 when nothing else was sent)."""
    if kind is not Kind.documents or not isinstance(item, dict) or not isinstance(item.get("text"), str):
        return None
    length, limit = len(item["text"]), settings.max_document_chars
    if length <= limit:
        return None
    item_id = item.get("id") if isinstance(item.get("id"), str) else None
    return TooLarge(position, item_id, [ItemError(
        field="text", reason=f"is too long: {length} characters, the limit is {limit} (SLIMLINE_MAX_DOCUMENT_CHARS)")])
