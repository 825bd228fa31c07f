"""Real services for tests: a throwaway PostgreSQL cluster and Slimline worker processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from workers.runtime.redis_server import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


def postgres_binaries_missing() -> str | None:
    missing = [name for name in ("initdb", "pg_ctl") if shutil.which(name) is None]
    return f"PostgreSQL server binaries not found: {', '.join(missing)}" if missing else None


class PostgresCluster:
    """``initdb`` + ``pg_ctl`` on a free loopback port; as user postgres when running as root."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="slimline-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            os.chmod(self.root, 0o755)
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        subprocess.run([*prefix, *command], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def init(self) -> PostgresCluster:
        self._run("initdb", "-N", "-A", "trust", "-U", "postgres", "-D", str(self.data))
        return self.start()

    def start(self) -> PostgresCluster:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")
        return self

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


class WorkerProcess:
    """A worker in its own process group, so a test can kill it like a machine dies: ``slimline worker`` by
    default, or any ``command`` (plain ``celery -A tasks.app worker``, an installed wheel's commands)."""

    def __init__(self, env: dict[str, str], log_path: Path, queues: str = "documents", concurrency: int = 1,
                 tier: str = "compact", command: list[str] | None = None, cwd: Path = REPO_ROOT) -> None:
        self.env = env
        self.log_path = log_path
        self.command = command or [sys.executable, "-m", "workers.cli", "worker", "--queues", queues,
                                   "--concurrency", str(concurrency), "--loglevel", "INFO", "--tier", tier]
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180.0) -> WorkerProcess:
        log = self.log_path.open("ab")
        start_offset = self.log_path.stat().st_size
        self.process = subprocess.Popen(self.command, env=self.env, cwd=self.cwd, stdout=log, stderr=log,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}:\n{self.log_tail()}")
            if b" ready." in self.log_path.read_bytes()[start_offset:]:
                return self
            time.sleep(0.1)
        raise RuntimeError(f"worker not ready after {timeout}s:\n{self.log_tail()}")

    def kill_hard(self) -> None:
        """SIGKILL the whole process group: main process and pool children, mid-batch."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (warm shutdown) and wait."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
