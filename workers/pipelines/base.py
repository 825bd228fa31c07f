"""What every batch pipeline offers the batch runner."""

from __future__ import annotations

from typing import Any, Protocol

from schemas import Kind


class Pipeline(Protocol):
    kind: Kind
    model: str
    model_version: str

    def __call__(self, items: list[Any]) -> list[dict[str, Any]]:
        """Turn validated items into result rows (one per item, same order). May raise: the
        batch runner then isolates the item(s) responsible."""
        ...

    def warm_up(self) -> dict[str, float]:
        """Run once on a tiny input so the first real batch pays no start-up cost; returns timings."""
        ...

