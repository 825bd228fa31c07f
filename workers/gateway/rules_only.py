"""The decision the gateway gives when no worker's decision comes within the deadline: the transactions
pipeline's own rules-only path (the one a worker takes when the account features time out), run in the gateway
on the same rule file and model card, without account features. Rules that need them are skipped and listed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from schemas import Transaction
from workers.pipelines.base import Rejected
from workers.settings import Settings
from workers.transactions.features import AccountFeatures, FeaturesUnavailable, FeatureStore
from workers.transactions.pipeline import TransactionPipeline

REASON = "the gateway's rules-only decision: no worker's decision within the deadline"


class _NoAccountFeatures(FeatureStore):
    """The gateway does not read or update the account state: that is the worker's, once per transaction."""

    def __init__(self) -> None:  # no Redis client
        pass

    def update(self, transactions: Sequence[Transaction]) -> list[AccountFeatures]:
        raise FeaturesUnavailable(REASON)

    def load(self) -> None:
        pass


class RulesOnly:
    def __init__(self, settings: Settings) -> None:
        self.pipeline = TransactionPipeline(settings, features=_NoAccountFeatures())

    def decide(self, transaction: Transaction) -> dict[str, Any] | Rejected:
        """The rules-only decision (a result as the pipeline stores it), or why the pipeline refuses it."""
        return self.pipeline([transaction])[0]
