"""The gateway's table: API keys, stored hashed, each mapping to a producer and the kinds it may send."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from workers.db.models import Base, JsonColumn, utcnow


class ApiKey(Base):
    """An API key of the HTTP gateway. The key itself is shown once, at creation; only the SHA-256 of its
    secret part is kept (a key is 256 random bits: a fast hash is enough, as for other API tokens).
    ``key_id`` is the key's public part, shown in lists and logs."""

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    producer: Mapped[str] = mapped_column(String(100))  # the producer identity the gateway signs as
    kinds: Mapped[list[str]] = mapped_column(JsonColumn)  # kinds this key may send and read
    name: Mapped[str] = mapped_column(String(200), default="")
    rate_limit: Mapped[str | None] = mapped_column(String(100))  # None: SLIMLINE_GATEWAY__RATE_LIMIT
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[str | None] = mapped_column(String(200))

    def as_dict(self) -> dict[str, Any]:
        """Everything but the hash."""
        return {column.key: getattr(self, column.key) for column in self.__table__.columns
                if column.key != "secret_sha256"}
