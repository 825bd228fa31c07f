"""Make producer-controlled values safe to store: every database Slimline supports accepts the result
(no NUL characters, no unpaired surrogates, bounded length)."""

from __future__ import annotations

from typing import Any


def storable_text(text: str, limit: int | None = None) -> str:
    cleaned = text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
    return cleaned if limit is None else cleaned[:limit]


def storable_json(value: Any) -> Any:
    """The same JSON value with every string (keys included) made storable."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable_text(str(key)): storable_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [storable_json(item) for item in value]
    return value
