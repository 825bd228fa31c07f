"""The outcome store: every write and read of outcomes, split by concern (writes and versioning, reviews
and holds, retention and erasure, queries) and assembled here. Redelivered messages and resent items are
harmless: results are versioned per item and de-duplicated by content, rejections and dead letters are
keyed by message id."""

from __future__ import annotations

from workers.db.store.api_keys import ApiKeyStore
from workers.db.store.base import AuditSigning, audit_signing_from_settings, item_hash
from workers.db.store.console import ConsoleStore
from workers.db.store.queries import QueryStore
from workers.db.store.report import ReportStore
from workers.db.store.retention import ItemsOnHold, Removed, RetentionStore
from workers.db.store.reviews import ReviewStore
from workers.db.store.writes import TIER_RANK, Outcomes

__all__ = ["TIER_RANK", "AuditSigning", "ItemsOnHold", "OutcomeStore", "Outcomes", "Removed", "audit_signing_from_settings",
           "item_hash"]


class OutcomeStore(ConsoleStore, ReviewStore, RetentionStore, QueryStore, ReportStore, ApiKeyStore):
    """One object for the runtime, the CLI and the tests; each concern lives in its own module."""
