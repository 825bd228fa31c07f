"""A private redis-server started with the ACL file ``slimline redis-acl`` writes, plus a test-only admin that can
read the ACL log (which records every refused command); append-only, so a restart keeps the data."""

from __future__ import annotations

from pathlib import Path

import redis

from workers.runtime.redis_server import RedisServer
from workers.security.producers import SecurityConfig
from workers.security.redis_acl import write_acl_file


class AclRedisServer(RedisServer):
    ADMIN_PASSWORD = "admin-" + "t" * 24

    def __init__(self, config: SecurityConfig, data_dir: Path, binary: str | None = None) -> None:
        super().__init__(data_dir, binary=binary)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.acl = write_acl_file(config, self.data_dir / "users.acl")
        with self.acl.open("a") as handle:
            handle.write(f"user test-admin on >{self.ADMIN_PASSWORD} ~* &* +@all\n")

    def user_url(self, user: str, password: str) -> str:
        return f"redis://{user}:{password}@127.0.0.1:{self.port}/0"

    def admin(self) -> redis.Redis:
        return self._client(socket_timeout=5)

    def denials(self) -> list[dict[str, object]]:
        """Commands the ACLs refused (less redis-py's CLIENT SETINFO, unknown before Redis 7.2)."""
        return [entry for entry in self.admin().acl_log(count=1000)
                if entry.get("username") != "test-admin" and entry.get("object") != "client"]

    def _server_options(self) -> list[str]:
        return ["--aclfile", str(self.acl.resolve())]

    def _client(self, **options: float) -> redis.Redis:
        return redis.Redis(port=self.port, username="test-admin", password=self.ADMIN_PASSWORD, **options)
