"""Decisions made inside the request (``SLIMLINE_GATEWAY__DECIDE_IN=gateway``, the default): the transactions
pipeline a worker runs, on the same rules, model and per-account features in Redis, run in the gateway.

The transaction is enqueued as usual before it is decided, so a worker stores its decision through the one
path (producer → queue → batch runner → pipeline → store) and nothing answered is lost. The account features
record each transaction id once and keep a snapshot of what it got (features.py), so the worker decides on the same features
as the gateway did, whichever of the two comes first: the stored decision is the answered one unless a rule version
was promoted in between (each side picks it up within ``SLIMLINE_TRANSACTIONS__RULES_REFRESH_SECONDS``) or the
gateway and the workers run different models. Each stored row names its rule and model versions.

The worker is not asked to trust the gateway's decision: it decides again from the signed transaction."""

from __future__ import annotations

from typing import Any

from schemas import Transaction
from workers.pipelines.base import Rejected
from workers.settings import Settings
from workers.transactions.pipeline import TransactionPipeline
from workers.transactions.rules import PromotedRules


class GatewayDecider:
    def __init__(self, settings: Settings, rule_source: PromotedRules) -> None:
        self.pipeline = TransactionPipeline(settings, rule_source=rule_source)

    def decide(self, transaction: Transaction) -> dict[str, Any] | Rejected:
        """The decision (a result as the pipeline stores it), or why the pipeline refuses the transaction.

        Called on the event loop: it costs about a millisecond (one Redis round trip, bounded by
        SLIMLINE_TRANSACTIONS__FEATURES_TIMEOUT_SECONDS, then rules and the model), less than the two thread
        switches that would move it off the loop on a busy machine (benchmarks/gateway_latency.py). The rules are
        looked up in the database off the loop (Services.keep_rules_fresh)."""
        return self.pipeline([transaction])[0]

    def warm_up(self) -> dict[str, float]:
        return self.pipeline.warm_up()
