"""The Redis Sentinel section of the settings: ``SLIMLINE_SENTINEL__<FIELD>``, used when ``SLIMLINE_REDIS_URL``
names Sentinels (``sentinel://host:26379;sentinel://host2:26379;…/0``), and the producers' replication
confirmation, which works with any URL (README, "Redis failover")."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class SentinelSettings(BaseModel):
    # The name the Sentinels monitor the master under (`sentinel monitor <name> …`).
    master_name: str = "slimline"
    # The Sentinels' own password, if they require one (the master's goes in the URL: sentinel://:pw@host:26379).
    password: SecretStr | None = None
    # A producer counts messages as enqueued once this many replicas hold them (WAIT after a fence write), and
    # sends them again if the master changed before that. None: 1 with a sentinel:// URL, 0 (off) otherwise.
    confirm_replicas: int | None = Field(default=None, ge=0)
    # How long a producer waits for that confirmation (through a failover) before it raises NotReplicated.
    confirm_timeout_seconds: float = Field(default=30.0, gt=0)
