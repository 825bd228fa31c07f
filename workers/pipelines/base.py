"""What every batch pipeline offers the batch runner.

A pipeline turns validated items into one outcome each, in order: a result (a JSON-able dict,
stored as a new version of the item's outcome) or :class:`Rejected` (the item can never be
processed, e.g. a language no template covers; stored as a rejection with its reasons).
A result may carry ``review_status`` (``needs_review``, ``open``, ``draft``…): the store keeps it
in a column of its own so people can list what waits for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel

from schemas import ItemError, Kind


# Review statuses a pipeline gives its results; any other status was set by a person (approved, resolved,
# confirmed_fraud…), and a machine tier's later version of the same content does not supersede it.
MACHINE_REVIEW_STATUSES: frozenset[str | None] = frozenset({None, "needs_review", "draft", "open"})


@dataclass(frozen=True)
class Rejected:
    """In place of a result: why this item can never be processed (which field, why)."""

    errors: list[ItemError]


ItemOutcome = dict[str, Any] | Rejected


class Pipeline(Protocol):
    kind: Kind
    tier: str  # which configuration produced the results: "compact", "escalated"…
    model: str
    model_version: str

    def __call__(self, items: list[BaseModel]) -> list[ItemOutcome]:
        """One outcome per item, same order. May raise: the batch runner then isolates the item(s)
        responsible and retries them."""
        ...

    def warm_up(self) -> dict[str, float]:
        """Run once on a tiny input so the first real batch pays no start-up cost; returns timings."""
        ...
