"""The HTTP gateway as a real process for tests and benchmarks, producer keys to sign with, and API keys."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from schemas import Kind
from tests.support.services import REPO_ROOT
from workers.runtime.redis_server import free_port


class GatewayProcess:
    """``slimline serve`` on a free loopback port, in its own process group."""

    def __init__(self, env: dict[str, str], log_path: Path, port: int | None = None) -> None:
        self.env = env
        self.log_path = log_path
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> GatewayProcess:
        """Start and wait until it answers /health (ready or not: Redis may be down on purpose)."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "workers.cli", "serve", "--port", str(self.port)],
                                        env=self.env, cwd=REPO_ROOT, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                httpx.get(f"{self.url}/health", timeout=2)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"gateway not answering after {timeout}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def write_producer_keys(path: Path, producers: dict[str, list[str]], redis_users: bool = False) -> Path:
    """A producer keys file (docs/signing.md): each producer with its kinds and a fresh secret, and the workers' own
    identity ``slimline``. With ``redis_users``, a Redis password for every producer and for the workers', the
    operator's and the gateway's users (:func:`redis_password`), so that ``slimline redis-acl`` can write the ACLs."""
    import secrets

    from workers.security.redis_acl import password_sha256

    config: dict[str, object] = {"producers": {
        producer: {"kinds": kinds, "keys": {f"{producer}-1": secrets.token_hex(24)}}
        | ({"redis_password_sha256": password_sha256(redis_password(producer))} if redis_users else {})
        for producer, kinds in {**producers, "slimline": ["*"]}.items()}}
    if redis_users:
        config["redis"] = {role: {"password_sha256": password_sha256(redis_password(role))}
                           for role in ("worker", "operator", "gateway")}
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def redis_password(user: str) -> str:
    """Test passwords, derived from the producer id or role."""
    return f"{user}-password-for-tests"


def create_api_key(database_url: str, producer: str, kinds: list[Kind], rate_limit: str | None = None,
                   name: str = "test") -> str:
    """What `slimline api-keys create` does, in process."""
    from workers.db.store import OutcomeStore
    from workers.gateway.keys import new_key

    created = new_key(producer, kinds, name, rate_limit)
    store = OutcomeStore.from_url(database_url)
    try:
        store.add_api_key(created.row, actor="test")
    finally:
        store.engine.dispose()
    return created.key
