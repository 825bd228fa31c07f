"""Transactions: one decision (allow / review / block) per transaction, from rules and a risk score.

Per batch: one Redis round trip for the account features (a pipeline of EVALSHA calls, see
features.py), rules evaluated in Python (rules.py), one ONNX Runtime call for the scores, and tree SHAP
reason codes for the flagged transactions only. If the features do not arrive within
``SLIMLINE_TRANSACTIONS__FEATURES_TIMEOUT_SECONDS`` (or Redis fails), or the model fails, the decision falls back
to the rules that need no account features and says so in ``degraded``.

Decision: an ``allow`` rule wins; else a ``block`` rule or a score at or above the block threshold
blocks; else a ``review`` rule or a score at or above the review threshold sends it to review.
Flagged decisions carry ``review_status: "open"`` for analysts (``slimline flags``).

Rules: the newest version promoted in the review console (the database), else the rule file; a promoted
version reaches every worker within ``SLIMLINE_TRANSACTIONS__RULES_REFRESH_SECONDS``, and each decision
stores the version that made it (``rule_set_version``). ``transaction`` keeps what an analyst reads and a
rule backtest needs of the transaction itself (time, merchant, counterparty, the bank's metadata).

``runtime`` holds what differs between two deliveries of one transaction (latency, whether the features
were a replayed snapshot); everything else is a function of the transaction, the rules and the model.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from schemas import ItemError, Kind, Transaction
from workers.pipelines.base import ItemOutcome, Rejected
from workers.runtime.connection import redis_url
from workers.settings import Settings
from workers.transactions.features import AccountFeatures, FeaturesUnavailable, FeatureStore, Limits
from workers.transactions.risk import DEFAULT_MANIFEST_DIR, DEFAULT_MODEL_DIR, RiskModel, Thresholds
from workers.transactions.rules import Evaluation, PromotedRules, RuleSet
from workers.transactions.signals import featurize, model_row, numeric_metadata, transaction_signals

log = logging.getLogger(__name__)

# A timestamp further ahead than this is refused: it would push the account's windows into the future.
MAX_CLOCK_SKEW = timedelta(minutes=10)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # the feature state counts time from the epoch, in positive numbers
FLAGGED = ("review", "block")


def features_client_options(settings: Settings) -> dict[str, Any]:
    """Where the feature state lives: its own URL, or the broker's server (keys are prefixed and expire)."""
    url = (settings.transactions.features_redis_url.get_secret_value() if settings.transactions.features_redis_url
           else redis_url(settings))
    options: dict[str, Any] = {"url": url}
    if url.startswith("rediss://"):
        options["ssl_cert_reqs"] = "required"
        for key, path in (("ssl_ca_certs", settings.redis_tls_ca_file), ("ssl_certfile", settings.redis_tls_cert_file),
                          ("ssl_keyfile", settings.redis_tls_key_file)):
            if path is not None:
                options[key] = str(path)
    return options


def limits_from(settings: Settings) -> Limits:
    return Limits(state_ttl_seconds=settings.transactions.state_ttl_seconds,
                  seen_ttl_seconds=settings.transactions.seen_ttl_seconds,
                  snapshot_ttl_seconds=settings.transactions.snapshot_ttl_seconds)


def decide(evaluation: Evaluation, score: float | None, thresholds: Thresholds) -> str:
    if evaluation.action == "allow":
        return "allow"
    if evaluation.action == "block" or (score is not None and score >= thresholds.block):
        return "block"
    if evaluation.action == "review" or (score is not None and score >= thresholds.review):
        return "review"
    return "allow"


class TransactionPipeline:
    kind = Kind.transactions

    def __init__(self, settings: Settings, tier: str = "compact", *, features: FeatureStore | None = None,
                 rules: RuleSet | None = None, rule_source: PromotedRules | None = None,
                 risk: RiskModel | None = None) -> None:
        """``rules``: these rules only (backtests); ``rule_source``: promoted rules shared with another pipeline."""
        self.tier = tier
        if features is None:
            options = features_client_options(settings)
            features = FeatureStore.from_url(options.pop("url"), settings.transactions.features_timeout_seconds,
                                             limits_from(settings), **options)
        self.features = features
        # Given rules (backtests) stay; otherwise the promoted version in the database, else the file.
        self.rule_source = rule_source or PromotedRules(
            rules or RuleSet.load(settings.transactions.rules_file),
            None if rules else settings.database_url.get_secret_value(),
            settings.transactions.rules_refresh_seconds)
        self.risk = risk or RiskModel(settings.transactions.model_dir or DEFAULT_MODEL_DIR,
                                      settings.transactions.model_manifest_dir or DEFAULT_MANIFEST_DIR,
                                      threads=settings.threads_per_process)
        self.thresholds = Thresholds(
            review=settings.transactions.review_score if settings.transactions.review_score is not None
            else self.risk.thresholds.review,
            block=settings.transactions.block_score if settings.transactions.block_score is not None
            else self.risk.thresholds.block,
        )
        self.zone = ZoneInfo(settings.transactions.timezone)
        self.reason_count = settings.transactions.reason_codes
        self.model = self.risk.name
        self.model_version = self.risk.version

    @property
    def rules(self) -> RuleSet:
        return self.rule_source.current()

    def __call__(self, items: list[Transaction]) -> list[ItemOutcome]:
        started = time.perf_counter()
        outcomes: list[ItemOutcome | None] = [self._refusal(item) for item in items]
        accepted = [(index, item) for index, item in enumerate(items) if outcomes[index] is None]
        decisions = self.decide([item for _, item in accepted], started)
        for (index, _), decision in zip(accepted, decisions, strict=True):
            outcomes[index] = decision
        return [outcome for outcome in outcomes if outcome is not None]

    @staticmethod
    def _refusal(item: Transaction) -> Rejected | None:
        """A valid contract the pipeline still cannot decide: a timestamp out of range."""
        if item.timestamp > datetime.now(UTC) + MAX_CLOCK_SKEW:
            return Rejected([ItemError(field="timestamp", reason="is in the future (more than 10 minutes ahead of "
                                                                 "the worker's clock)")])
        if item.timestamp < EARLIEST:
            return Rejected([ItemError(field="timestamp", reason="is before 2000-01-01")])
        return None

    def decide(self, items: list[Transaction], started: float | None = None) -> list[dict[str, Any]]:
        """Decisions for valid transactions, in order (also used by backtests, to replay a history)."""
        started = time.perf_counter() if started is None else started
        degraded: dict[str, str] = {}
        accounts: list[AccountFeatures] | None
        try:
            accounts, signals, metadata = featurize(self.features, items, self.zone)
        except FeaturesUnavailable as error:
            log.warning("deciding %d transactions on rules alone: %s", len(items), error)
            degraded["features"] = str(error)
            accounts = None
            signals = [transaction_signals(item, None, self.zone) for item in items]
            metadata = [numeric_metadata(item) for item in items]
        rules = self.rules  # one version for the whole batch
        evaluations = [rules.evaluate(signal, item.metadata) for signal, item in zip(signals, items, strict=True)]
        rows = np.empty((0, 0), dtype=np.float32)
        scores: list[float | None] = [None] * len(items)
        if accounts is not None and items:
            try:
                rows = np.array([model_row(s, m, self.risk.metadata_features)
                                 for s, m in zip(signals, metadata, strict=True)], dtype=np.float32)
                scores = [float(score) for score in self.risk.score(rows)]
            except Exception as error:  # noqa: BLE001 - any model failure: decide on rules alone
                log.warning("risk model failed, deciding on rules alone: %s", type(error).__name__)
                degraded["model"] = f"risk model failed: {type(error).__name__}"
        actions = [decide(e, s, self.thresholds) for e, s in zip(evaluations, scores, strict=True)]
        reasons = self._reasons(rows, actions, scores, degraded)
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        return [
            self._result(item, actions[i], scores[i], evaluations[i], reasons[i], signals[i], degraded,
                         replayed=bool(accounts and accounts[i].replayed), latency_ms=latency_ms,
                         rule_set_version=rules.version)
            for i, item in enumerate(items)
        ]

    def _reasons(self, rows: np.ndarray, actions: list[str], scores: list[float | None],
                 degraded: dict[str, str]) -> list[list[dict[str, Any]]]:
        """Tree SHAP for flagged transactions only: the allowed ones never pay for it."""
        reasons: list[list[dict[str, Any]]] = [[] for _ in actions]
        flagged = [i for i, action in enumerate(actions) if action in FLAGGED and scores[i] is not None]
        if not flagged:
            return reasons
        try:
            for i, explained in zip(flagged, self.risk.reasons(rows[flagged], self.reason_count), strict=True):
                reasons[i] = explained
        except Exception as error:  # noqa: BLE001 - the decision stands without its model reasons
            degraded["model_reasons"] = f"reason codes failed: {type(error).__name__}"
        return reasons

    def _result(self, item: Transaction, action: str, score: float | None, evaluation: Evaluation,
                reasons: list[dict[str, Any]], signals: dict[str, Any], degraded: dict[str, str], *,
                replayed: bool, latency_ms: float, rule_set_version: str) -> dict[str, Any]:
        result: dict[str, Any] = {
            "transaction_id": item.id,
            "account_id": item.account_id,
            "transaction": {
                "timestamp": item.timestamp.isoformat(),
                "merchant": item.merchant.name if item.merchant else None,
                "counterparty": item.counterparty,
                "metadata": item.metadata,
            },
            "action": action,
            "score": None if score is None else round(score, 6),
            "decided_by": "rules+model" if score is not None else "rules",
            # The rule that set the action; None when the score did (or nothing flagged it).
            "deciding_rule": evaluation.deciding.code if evaluation.action == action else None,
            "rules_fired": [{"code": rule.code, "action": rule.action, "description": rule.description}
                            for rule in evaluation.fired],
            "rules_skipped": evaluation.skipped,
            "model_reasons": reasons,
            "features": signals,
            "thresholds": {"review": self.thresholds.review, "block": self.thresholds.block},
            "rule_set_version": rule_set_version,
            "model_version": self.risk.version if score is not None else None,
            "degraded": dict(degraded) or None,
            "runtime": {"latency_ms": latency_ms, "features_replayed": replayed},
        }
        if action in FLAGGED:
            result["review_status"] = "open"
        return result

    def warm_up(self) -> dict[str, float]:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        try:
            self.features.load()
        except Exception as error:  # noqa: BLE001 - Redis may come up later; batches fall back meanwhile
            log.warning("could not load the feature script at warm-up: %s", type(error).__name__)
        timings["features_seconds"] = time.perf_counter() - started
        started = time.perf_counter()
        row = np.zeros((1, len(self.risk.features)), dtype=np.float32)
        self.risk.score(row)
        self.risk.reasons(row, self.reason_count)
        timings["model_seconds"] = time.perf_counter() - started
        return timings


def build_pipeline(settings: Settings, tier: str = "compact") -> TransactionPipeline:
    return TransactionPipeline(settings, tier)
