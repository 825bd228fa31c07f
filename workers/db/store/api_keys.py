"""The HTTP gateway's API keys: created and revoked by an operator (audited), looked up by the gateway."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from workers.db.models import utcnow
from workers.db.models_gateway import ApiKey
from workers.db.store.base import StoreBase


class ApiKeyStore(StoreBase):
    def add_api_key(self, row: dict[str, Any], *, actor: str) -> None:
        """``row``: the columns of :class:`ApiKey` (the secret's hash, never the secret)."""
        with self.sessions.begin() as session:
            session.add(ApiKey(**row, created_by=actor[:200]))
            head = self._append_audit(session, actor, "api_key.create", None, {
                "key_id": row["key_id"], "producer": row["producer"], "kinds": row["kinds"],
                "name": row.get("name", ""), "rate_limit": row.get("rate_limit")})
        self._publish_head(head)

    def api_key(self, key_id: str) -> dict[str, Any] | None:
        """The key's row with its secret's hash (for verification), revoked or not; None if unknown."""
        with self.sessions() as session:
            key = session.get(ApiKey, key_id)
            return None if key is None else key.as_dict() | {"secret_sha256": key.secret_sha256}

    def api_keys(self, include_revoked: bool = False) -> list[dict[str, Any]]:
        """Every key, oldest first, without hashes."""
        query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.key_id)
        if not include_revoked:
            query = query.where(ApiKey.revoked_at.is_(None))
        with self.sessions() as session:
            return [key.as_dict() for key in session.scalars(query)]

    def revoke_api_key(self, key_id: str, *, actor: str) -> bool:
        """False if there is no such key or it was already revoked."""
        with self.sessions.begin() as session:
            revoked = session.execute(update(ApiKey).where(ApiKey.key_id == key_id, ApiKey.revoked_at.is_(None))
                                      .values(revoked_at=utcnow(), revoked_by=actor[:200])).rowcount
            head = self._append_audit(session, actor, "api_key.revoke", None, {"key_id": key_id}) if revoked else None
        self._publish_head(head)
        return bool(revoked)
