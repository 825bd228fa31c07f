"""What the review console stores: its users and sessions, case locks, saved views, analysts' labels and the
rule versions; and the reads its pages need. Every change a person makes is audited in the same transaction
(``console.*``, ``user.*``, ``flag.*``, ``rules.*`` actions)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from schemas import Kind
from workers.db.models import AuditEvent, DeadLetter, Rejection, Result, utcnow
from workers.db.models_console import (AnalystLabel, CaseLock, ConsoleSession, ConsoleUser, RuleVersion,
                                       SavedView)
from workers.db.store.base import StoreBase, _as_dict

# An analyst's decision on a flag: the review status it sets on the decision (the statuses `slimline flags`
# uses) and the label the risk model learns from (none for an escalation).
FLAG_DECISIONS: dict[str, tuple[str, int | None]] = {
    "fraud": ("confirmed_fraud", 1),
    "legitimate": ("dismissed", 0),
    "escalate": ("escalated", None),
}
FLAG_STATUSES = ("open", "escalated", "confirmed_fraud", "dismissed")


class ConflictError(Exception):
    """The change cannot be made as asked (a case locked by someone else, a stale draft); says why."""


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back (they were stored in UTC)."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment


class ConsoleStore(StoreBase):
    # --- users ---------------------------------------------------------------------------------

    def add_user(self, username: str, password_hash: str, roles: Sequence[str], *, actor: str) -> dict[str, Any]:
        """Raises ConflictError if the name is taken."""
        try:
            with self.sessions.begin() as session:
                user = ConsoleUser(username=username, password_hash=password_hash, roles=sorted(set(roles)),
                                   active=True, failed_logins=0, created_by=actor, created_at=utcnow())
                session.add(user)
                session.flush()
                head = self._append_audit(session, actor, "user.add", None, {"user": username, "roles": user.roles})
                row = _as_dict(user)
        except IntegrityError:
            raise ConflictError(f"there is already a user named {username!r}") from None
        self._publish_head(head)
        return row

    def users(self) -> list[dict[str, Any]]:
        with self.sessions() as session:
            return [_as_dict(user) for user in session.scalars(select(ConsoleUser).order_by(ConsoleUser.username))]

    def user(self, username: str) -> dict[str, Any] | None:
        with self.sessions() as session:
            user = session.scalars(select(ConsoleUser).where(ConsoleUser.username == username)).first()
            return _as_dict(user) if user else None

    def update_user(self, username: str, *, actor: str, active: bool | None = None,
                    roles: Sequence[str] | None = None, password_hash: str | None = None) -> dict[str, Any]:
        """Enable or disable a user, set their roles or their password; audited. Disabling a user or
        changing their password ends their sessions. Raises LookupError for an unknown user."""
        with self.sessions.begin() as session:
            user = session.scalars(select(ConsoleUser).where(ConsoleUser.username == username)
                                   .with_for_update()).first()
            if user is None:
                raise LookupError(f"no user named {username!r}")
            heads = []
            if active is not None and (active != user.active or (active and user.locked_until is not None)):
                user.active = active
                user.failed_logins, user.locked_until = 0, None  # enabling also lifts a lockout
                heads.append(self._append_audit(session, actor, "user.enable" if active else "user.disable", None,
                                                {"user": username}))
            if roles is not None and sorted(set(roles)) != sorted(user.roles):
                previous, user.roles = user.roles, sorted(set(roles))
                heads.append(self._append_audit(session, actor, "user.roles", None,
                                                {"user": username, "from": previous, "to": user.roles}))
            if password_hash is not None:
                user.password_hash = password_hash
                user.failed_logins, user.locked_until = 0, None
                heads.append(self._append_audit(session, actor, "user.password", None, {"user": username}))
            if active is False or password_hash is not None:
                session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user.id))
            row = _as_dict(user)
        for head in heads:
            self._publish_head(head)
        return row

    def record_login(self, username: str, *, succeeded: bool, attempts: int, lockout: timedelta,
                     password_hash: str | None = None, client: str | None = None) -> None:
        """Count wrong passwords (locking the user out after ``attempts`` in a row) and audit the attempt.
        ``password_hash``: a rehash with newer parameters, stored on success."""
        now = utcnow()
        with self.sessions.begin() as session:
            user = session.scalars(select(ConsoleUser).where(ConsoleUser.username == username)
                                   .with_for_update()).first()
            detail: dict[str, Any] = {"user": username, "client": client}
            if user is not None:
                if succeeded:
                    user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
                    if password_hash:
                        user.password_hash = password_hash
                else:
                    if user.locked_until is not None and _aware(user.locked_until) <= now:
                        user.failed_logins, user.locked_until = 0, None  # a lockout that ended starts a new count
                    user.failed_logins += 1
                    if user.failed_logins >= attempts:
                        user.locked_until = now + lockout
                        detail["locked_until"] = user.locked_until.isoformat()
            head = self._append_audit(session, username, "console.login" if succeeded else "console.login_failed",
                                      None, detail)
        self._publish_head(head)

    # --- sessions -------------------------------------------------------------------------------

    def create_session(self, user_id: int, token_hash: str, csrf_token: str, expires_at: datetime) -> None:
        with self.sessions.begin() as session:
            session.add(ConsoleSession(token_hash=token_hash, user_id=user_id, csrf_token=csrf_token,
                                       created_at=utcnow(), last_seen_at=utcnow(), expires_at=expires_at))

    def session_user(self, token_hash: str, idle: timedelta) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The session and its user, if the session is live (not expired, not idle too long, user active);
        marks it seen. An ended session is deleted."""
        now = utcnow()
        with self.sessions.begin() as session:
            found = session.execute(select(ConsoleSession, ConsoleUser).join(
                ConsoleUser, ConsoleUser.id == ConsoleSession.user_id).where(
                ConsoleSession.token_hash == token_hash)).first()
            if found is None:
                return None
            console_session, user = found
            if (_aware(console_session.expires_at) <= now or _aware(console_session.last_seen_at) + idle <= now
                    or not user.active):
                session.delete(console_session)
                return None
            if now - _aware(console_session.last_seen_at) > timedelta(seconds=30):  # not a write per request
                console_session.last_seen_at = now
            return _as_dict(console_session), _as_dict(user)

    def end_session(self, token_hash: str, *, actor: str) -> None:
        with self.sessions.begin() as session:
            session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == token_hash))
            head = self._append_audit(session, actor, "console.logout", None, {})
        self._publish_head(head)

    # --- flags ----------------------------------------------------------------------------------

    def flags(self, *, status: str | None = "open", action: str | None = None, min_score: float | None = None,
              account: str | None = None, limit: int = 5000) -> list[dict[str, Any]]:
        """Current decisions with a review status (flagged), highest score first; ``status`` None: any.
        The filters here are the ones the database can apply; the console filters the rest."""
        score = Result.result["score"].as_float()
        query = select(Result).where(Result.kind == Kind.transactions.value, Result.is_current,
                                     Result.review_status.is_not(None))
        if status:
            query = query.where(Result.review_status == status)
        if action:
            query = query.where(Result.result["action"].as_string() == action)
        if min_score is not None:
            query = query.where(score >= min_score)
        if account:
            query = query.where(Result.result["account_id"].as_string() == account)
        query = query.order_by(score.desc().nulls_last(), Result.id).limit(limit)
        with self.sessions() as session:
            return [_as_dict(row) for row in session.scalars(query)]

    def account_decisions(self, account_id: str, *, limit: int = 20,
                          flagged_only: bool = False) -> list[dict[str, Any]]:
        """The account's newest decisions (current versions), newest first."""
        query = select(Result).where(Result.kind == Kind.transactions.value, Result.is_current,
                                     Result.result["account_id"].as_string() == account_id)
        if flagged_only:
            query = query.where(Result.review_status.is_not(None))
        with self.sessions() as session:
            return [_as_dict(row) for row in session.scalars(query.order_by(Result.id.desc()).limit(limit))]

    def locks(self, kind: Kind, item_ids: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """Live locks of this kind (all, or of these items), by item id."""
        query = select(CaseLock).where(CaseLock.kind == kind.value, CaseLock.expires_at > utcnow())
        if item_ids is not None:
            query = query.where(CaseLock.item_id.in_(list(item_ids)))
        with self.sessions() as session:
            return {lock.item_id: _as_dict(lock) for lock in session.scalars(query)}

    def lock_case(self, kind: Kind, item_id: str, username: str, duration: timedelta) -> bool:
        """Take a case for ``username`` if nobody else holds a live lock on it; audited. True if taken."""
        now = utcnow()
        with self.sessions.begin() as session:
            taken = self._take(session, kind, item_id, username, now, duration)
            head = self._append_audit(session, username, "flag.lock", kind, {"item_id": item_id}) if taken else None
        self._publish_head(head)
        return taken

    def _take(self, session: Session, kind: Kind, item_id: str, username: str, now: datetime,
              duration: timedelta) -> bool:
        """One statement decides who gets the case, so two analysts asking at once never both get it:
        an insert if there is no lock, else an update of a lock that is ours or expired."""
        inserted = session.execute(self._insert(CaseLock).values(
            kind=kind.value, item_id=item_id, username=username, locked_at=now, expires_at=now + duration)
            .on_conflict_do_nothing().returning(CaseLock.item_id)).first()  # (rowcount is -1 on PostgreSQL)
        if inserted is not None:
            return True
        return bool(session.execute(update(CaseLock).where(
            CaseLock.kind == kind.value, CaseLock.item_id == item_id,
            or_(CaseLock.username == username, CaseLock.expires_at <= now),
        ).values(username=username, locked_at=now, expires_at=now + duration)).rowcount)

    def take_next_flag(self, username: str, duration: timedelta, candidates: Sequence[str]) -> str | None:
        """Lock the first of ``candidates`` (open flags in the analyst's order) that nobody else holds."""
        now = utcnow()
        for item_id in candidates:
            with self.sessions.begin() as session:
                still_open = session.scalar(select(func.count()).select_from(Result).where(
                    Result.kind == Kind.transactions.value, Result.item_id == item_id, Result.is_current,
                    Result.review_status == "open"))
                if not still_open or not self._take(session, Kind.transactions, item_id, username, now, duration):
                    continue
                head = self._append_audit(session, username, "flag.lock", Kind.transactions,
                                          {"item_id": item_id, "next_unassigned": True})
            self._publish_head(head)
            return item_id
        return None

    def decide_flag(self, transaction_id: str, decision: str, comment: str, *, analyst: str,
                    seen_version: int | None = None) -> dict[str, Any]:
        """An analyst's decision on a flag, in one transaction: the decision's review status (as `slimline flags
        review` sets it), a label row, the case lock released, an audit row. Raises LookupError (no such
        decision), ConflictError (someone else holds the case, or the decision changed since it was read)."""
        status, label = FLAG_DECISIONS[decision]
        now = utcnow()
        with self.sessions.begin() as session:
            current = session.scalars(select(Result).where(
                Result.kind == Kind.transactions.value, Result.item_id == transaction_id, Result.is_current)
                .with_for_update()).first()
            if current is None or current.review_status is None:
                raise LookupError(f"no flagged transaction {transaction_id!r}")
            if seen_version is not None and current.version != seen_version:
                raise ConflictError(f"the decision on {transaction_id} changed (version {seen_version} → "
                                    f"{current.version}) while you read it: reload the page")
            lock = session.get(CaseLock, (Kind.transactions.value, transaction_id))
            if lock is not None and lock.username != analyst and _aware(lock.expires_at) > now:
                raise ConflictError(f"{lock.username} has this case until {_aware(lock.expires_at):%H:%M} UTC")
            previous = current.review_status
            current.review_status, current.note = status, comment
            session.add(AnalystLabel(transaction_id=transaction_id, decision=decision, label=label, comment=comment,
                                     analyst=analyst, result_version=current.version, decided_at=now))
            if lock is not None:
                session.delete(lock)
            head = self._append_audit(session, analyst, "flag.decide", Kind.transactions, {
                "item_id": transaction_id, "version": current.version, "decision": decision, "label": label,
                "from": previous, "to": status})
            row = _as_dict(current)
        self._publish_head(head)
        return row

    def analyst_labels(self, transaction_ids: Sequence[str] | None = None,
                       newest_only: bool = True) -> list[dict[str, Any]]:
        """Analysts' decisions, oldest first; ``newest_only``: one per transaction, its newest."""
        query = select(AnalystLabel).order_by(AnalystLabel.decided_at, AnalystLabel.id)
        if transaction_ids is not None:
            query = query.where(AnalystLabel.transaction_id.in_(list(transaction_ids)))
        with self.sessions() as session:
            rows = [_as_dict(row) for row in session.scalars(query)]
        if not newest_only:
            return rows
        newest = {row["transaction_id"]: row for row in rows}
        return sorted(newest.values(), key=lambda row: (row["decided_at"], row["id"]))

    def transaction_decisions(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` current decisions, oldest first (what a rule backtest decides again)."""
        query = select(Result).where(Result.kind == Kind.transactions.value, Result.is_current) \
            .order_by(Result.id.desc()).limit(limit)
        with self.sessions() as session:
            return [_as_dict(row) for row in reversed(list(session.scalars(query)))]

    # --- saved views ----------------------------------------------------------------------------

    def save_view(self, owner: str, page: str, name: str, filters: dict[str, Any]) -> None:
        """Save (or replace) a named view; audited."""
        with self.sessions.begin() as session:
            existing = session.scalars(select(SavedView).where(
                SavedView.owner == owner, SavedView.page == page, SavedView.name == name)).first()
            if existing is None:
                session.add(SavedView(owner=owner, page=page, name=name, filters=filters, created_at=utcnow()))
            else:
                existing.filters = filters
            head = self._append_audit(session, owner, "view.save", None, {"page": page, "name": name,
                                                                          "filters": filters})
        self._publish_head(head)

    def views(self, owner: str, page: str) -> list[dict[str, Any]]:
        with self.sessions() as session:
            return [_as_dict(view) for view in session.scalars(select(SavedView).where(
                SavedView.owner == owner, SavedView.page == page).order_by(SavedView.name))]

    def delete_view(self, owner: str, view_id: int) -> bool:
        with self.sessions.begin() as session:
            view = session.get(SavedView, view_id)
            if view is None or view.owner != owner:
                return False
            session.delete(view)
            head = self._append_audit(session, owner, "view.delete", None, {"page": view.page, "name": view.name})
        self._publish_head(head)
        return True

    # --- rule versions --------------------------------------------------------------------------

    def promoted_rule_version(self) -> dict[str, Any] | None:
        """The id and digest of the newest promoted version (what workers use), or None."""
        with self.sessions() as session:
            row = session.execute(select(RuleVersion.id, RuleVersion.sha256).where(RuleVersion.status == "promoted")
                                  .order_by(RuleVersion.id.desc()).limit(1)).first()
            return {"id": row.id, "sha256": row.sha256} if row else None

    def rule_version(self, version_id: int) -> dict[str, Any] | None:
        with self.sessions() as session:
            row = session.get(RuleVersion, version_id)
            return _as_dict(row) if row else None

    def rule_versions(self, statuses: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Versions, newest first."""
        query = select(RuleVersion).order_by(RuleVersion.id.desc())
        if statuses:
            query = query.where(RuleVersion.status.in_(list(statuses)))
        with self.sessions() as session:
            return [_as_dict(row) for row in session.scalars(query)]

    def add_rule_draft(self, document: str, sha256: str, base_version: int | None, summary: str, *,
                       author: str) -> dict[str, Any]:
        with self.sessions.begin() as session:
            draft = RuleVersion(status="draft", document=document, sha256=sha256, base_version=base_version,
                                summary=summary, author=author, created_at=utcnow())
            session.add(draft)
            session.flush()
            head = self._append_audit(session, author, "rules.draft", Kind.transactions, {
                "version": draft.id, "base_version": base_version, "sha256": sha256, "summary": summary})
            row = _as_dict(draft)
        self._publish_head(head)
        return row

    def record_backtest(self, version_id: int, backtest: dict[str, Any], *, actor: str) -> None:
        with self.sessions.begin() as session:
            draft = session.get(RuleVersion, version_id, with_for_update=True)
            if draft is None:
                raise LookupError(f"no rule version {version_id}")
            draft.backtest, draft.backtested_by, draft.backtested_at = backtest, actor, utcnow()
            head = self._append_audit(session, actor, "rules.backtest", Kind.transactions, {
                "version": version_id, "decisions": backtest.get("decisions"), "changed": backtest.get("changed"),
                "labelled": backtest.get("labelled")})
        self._publish_head(head)

    def decide_rule_draft(self, version_id: int, *, approver: str, promote: bool, note: str | None) -> dict[str, Any]:
        """Promote a draft (the promoted version before it is retired) or reject it; audited. The approver
        must not be its author, the draft must have been backtested and be based on the version in use.
        Raises LookupError, PermissionError (the author), ConflictError (not a draft, no backtest, stale)."""
        with self.sessions.begin() as session:
            draft = session.get(RuleVersion, version_id, with_for_update=True)
            if draft is None:
                raise LookupError(f"no rule version {version_id}")
            if draft.status != "draft":
                raise ConflictError(f"version {version_id} is {draft.status}, not a draft")
            if draft.author == approver:
                raise PermissionError(f"{approver} wrote version {version_id}: another approver must decide it")
            live = session.scalars(select(RuleVersion).where(RuleVersion.status == "promoted")
                                   .order_by(RuleVersion.id.desc()).with_for_update()).all()
            if promote:
                if draft.backtest is None:
                    raise ConflictError(f"version {version_id} has not been backtested yet")
                live_id = live[0].id if live else None
                if draft.base_version != live_id:
                    raise ConflictError(f"version {version_id} was drafted from "
                                        f"{'the rule file' if draft.base_version is None else f'v{draft.base_version}'}"
                                        f", but {'the rule file' if live_id is None else f'v{live_id}'} is in use "
                                        f"now: draft the change again on top of it")
                for row in live:
                    row.status = "retired"
            draft.status = "promoted" if promote else "rejected"
            draft.decided_by, draft.decided_at, draft.decision_note = approver, utcnow(), note
            head = self._append_audit(session, approver, "rules.promote" if promote else "rules.reject",
                                      Kind.transactions, {"version": version_id, "author": draft.author,
                                                          "sha256": draft.sha256, "note": note,
                                                          "retired": [row.id for row in live] if promote else []})
            row = _as_dict(draft)
        self._publish_head(head)
        return row

    def withdraw_rule_draft(self, version_id: int, *, author: str) -> None:
        """The author takes back a draft nobody decided yet."""
        with self.sessions.begin() as session:
            draft = session.get(RuleVersion, version_id, with_for_update=True)
            if draft is None:
                raise LookupError(f"no rule version {version_id}")
            if draft.author != author:
                raise PermissionError("only the author can withdraw a draft")
            if draft.status != "draft":
                raise ConflictError(f"version {version_id} is {draft.status}, not a draft")
            draft.status = "withdrawn"
            head = self._append_audit(session, author, "rules.withdraw", Kind.transactions, {"version": version_id})
        self._publish_head(head)

    def _delete_items(self, session: Session, kind: Kind, item_ids: list[str]) -> Any:
        """Erasing an item (`slimline erase`) also erases what the console keeps of it: labels and locks."""
        removed = super()._delete_items(session, kind, item_ids)  # type: ignore[misc]
        if item_ids:
            session.execute(delete(CaseLock).where(CaseLock.kind == kind.value, CaseLock.item_id.in_(item_ids)))
            if kind is Kind.transactions:
                session.execute(delete(AnalystLabel).where(AnalystLabel.transaction_id.in_(item_ids)))
        return removed

    # --- the overview ---------------------------------------------------------------------------

    def activity(self, since: datetime) -> dict[str, dict[str, int]]:
        """Per kind since ``since``: results stored, rejections, dead letters."""
        with self.sessions() as session:
            stored = dict(session.execute(select(Result.kind, func.count()).where(
                Result.processed_at >= since, Result.tier != "human").group_by(Result.kind)).tuples().all())
            rejected = dict(session.execute(select(Rejection.kind, func.count()).where(
                Rejection.rejected_at >= since).group_by(Rejection.kind)).tuples().all())
            failed = dict(session.execute(select(DeadLetter.kind, func.count()).where(
                DeadLetter.failed_at >= since).group_by(DeadLetter.kind)).tuples().all())
        return {kind.value: {"stored": stored.get(kind.value, 0), "rejected": rejected.get(kind.value, 0),
                             "dead_lettered": failed.get(kind.value, 0)} for kind in Kind}

    def review_counts(self) -> dict[str, dict[str, int]]:
        """Current results per kind and review status (what waits for a person)."""
        with self.sessions() as session:
            rows = session.execute(select(Result.kind, Result.review_status, func.count()).where(
                Result.is_current, Result.review_status.is_not(None)).group_by(Result.kind, Result.review_status))
            counts: dict[str, dict[str, int]] = {}
            for kind, status, count in rows.tuples():
                counts.setdefault(kind, {})[status] = count
            return counts

    def item_audit(self, kind: Kind, item_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The audit rows about one item (reviews, locks, decisions), oldest first."""
        query = select(AuditEvent).where(AuditEvent.kind == kind.value,
                                         AuditEvent.detail["item_id"].as_string() == item_id) \
            .order_by(AuditEvent.id).limit(limit)
        with self.sessions() as session:
            return [_as_dict(row) for row in session.scalars(query)]

    def recent_audit(self, limit: int = 100, actions_prefix: str | None = None) -> list[dict[str, Any]]:
        query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
        if actions_prefix:
            query = query.where(AuditEvent.action.startswith(actions_prefix))
        with self.sessions() as session:
            return [_as_dict(row) for row in session.scalars(query)]

