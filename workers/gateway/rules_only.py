"""The decision the gateway gives when no decision comes within the deadline: the transactions
pipeline's own rules-only path (the one a worker takes when the account features time out), run in the gateway
on the same rule file and model card, without account features. Rules that need them are skipped and listed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from schemas import Transaction
from workers.pipelines.base import Rejected
from workers.settings import Settings
from workers.transactions.features import AccountFeatures, FeaturesUnavailable, FeatureStore
from workers.transactions.pipeline import TransactionPipeline
from workers.transactions.risk import RiskModel
from workers.transactions.rules import PromotedRules

REASON = "the gateway's rules-only decision: no decision within the deadline"


class _NoAccountFeatures(FeatureStore):
    """The gateway does not read or update the account state: that is the worker's, once per transaction."""

    def __init__(self) -> None:  # no Redis client
        pass

    def update(self, transactions: Sequence[Transaction]) -> list[AccountFeatures]:
        raise FeaturesUnavailable(REASON)

    def load(self) -> None:
        pass


class RulesOnly:
    def __init__(self, settings: Settings, rule_source: PromotedRules, risk: RiskModel | None = None) -> None:
        """``risk``: the model the gateway already holds (for its own decisions), so it is not loaded twice."""
        self.pipeline = TransactionPipeline(settings, features=_NoAccountFeatures(), rule_source=rule_source,
                                            risk=risk)
        # The pipeline warns at every decision without features; here that is the expected path (counted in
        # slimline_gateway_decisions_total{source="rules_only"}), not worth a log line per request.
        logging.getLogger(TransactionPipeline.__module__).setLevel(logging.ERROR)

    def decide(self, transaction: Transaction) -> dict[str, Any] | Rejected:
        """The rules-only decision (a result as the pipeline stores it), or why the pipeline refuses it."""
        return self.pipeline([transaction])[0]
