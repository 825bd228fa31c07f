"""The review console's tables: its users and their sessions, case locks, saved views, analysts' labels,
and the versions of the transaction rules (drafted, backtested and promoted in the console; the workers
use the newest promoted one)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from workers.db.models import Base, JsonColumn, utcnow


class ConsoleUser(Base):
    """A person who uses the console. Users are disabled, never deleted: the audit log names them."""

    __tablename__ = "console_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))  # argon2id, with its parameters and salt
    roles: Mapped[list[str]] = mapped_column(JsonColumn)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ConsoleSession(Base):
    """A logged-in browser. The cookie holds a random token; only its SHA-256 is stored."""

    __tablename__ = "console_sessions"
    __table_args__ = (Index("ix_console_sessions_user", "user_id"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("console_users.id"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CaseLock(Base):
    """A case an analyst took ("next unassigned"): nobody else takes it until it is decided or expires."""

    __tablename__ = "case_locks"

    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    username: Mapped[str] = mapped_column(String(100))
    locked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SavedView(Base):
    """A named set of filters of one list page, kept per user."""

    __tablename__ = "saved_views"
    __table_args__ = (UniqueConstraint("owner", "page", "name", name="uq_saved_views_owner_page_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(100))
    page: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(100))
    filters: Mapped[dict[str, Any]] = mapped_column(JsonColumn)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AnalystLabel(Base):
    """An analyst's decision on a flagged transaction: fraud (label 1), legitimate (0) or escalate (no label).
    Every decision is kept; the newest one per transaction is its label (`slimline train risk
    --labels-from-database`, `slimline flags labels`)."""

    __tablename__ = "analyst_labels"
    __table_args__ = (Index("ix_analyst_labels_transaction", "transaction_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    transaction_id: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(20))  # fraud | legitimate | escalate
    label: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text)
    analyst: Mapped[str] = mapped_column(String(100))
    result_version: Mapped[int] = mapped_column(Integer)  # the decision's version the analyst saw
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RuleVersion(Base):
    """One version of the transaction rules (the whole YAML document). A draft is written by a rule author,
    backtested on stored decisions, and promoted by an approver who is not its author; the newest promoted
    version is the one workers use (the previous one is then retired)."""

    __tablename__ = "rule_versions"
    __table_args__ = (Index("ix_rule_versions_status", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(String(20))  # draft | promoted | retired | rejected | withdrawn
    document: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    # What the draft was made from: a promoted version's id, or None for the rule file (no version promoted yet).
    base_version: Mapped[int | None] = mapped_column(Integer)
    summary: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    backtest: Mapped[dict[str, Any] | None] = mapped_column(JsonColumn)
    backtested_by: Mapped[str | None] = mapped_column(String(100))
    backtested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(100))  # who promoted or rejected it
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_note: Mapped[str | None] = mapped_column(Text)
