"""Fixtures: every test of the pipeline runs on a real Redis server, real worker processes and a
real database (SQLite, and PostgreSQL where it is parametrized)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from schemas import Kind
from tasks.app import create_app
from tests.support.services import REPO_ROOT, PostgresCluster, WorkerProcess, postgres_binaries_missing
from workers.client import EnqueueReport, enqueue
from workers.db.engine import migrate
from workers.db.store import OutcomeStore
from workers.runtime.queues import inspection_client, wait_until_drained
from workers.runtime.redis_server import RedisServer
from workers.settings import Settings

# Existing tests run workers without producer keys on a private Redis: they opt out of signing explicitly
# (tests/test_security_e2e_*.py configure keys and turn this off).
os.environ.setdefault("SLIMLINE_ALLOW_UNSIGNED", "true")
# The CLI's consoles take their width from COLUMNS when first imported; pytest-xdist gives its workers
# COLUMNS=80. Tests that read a table set the width they need (CliRunner's env), so the runner's must not stick.
os.environ.pop("COLUMNS", None)

# Short timeouts so that redelivery after a crash takes seconds in tests (see README for production values).
TEST_ENV = {
    "SLIMLINE_VISIBILITY_TIMEOUT_SECONDS": "20",
    "SLIMLINE_RESTORE_INTERVAL_SECONDS": "1",
    "SLIMLINE_RETRY_BACKOFF_SECONDS": "0.2",
    "SLIMLINE_RETRY_BACKOFF_MAX_SECONDS": "1",
    "SLIMLINE_PERSIST_RETRY_SECONDS": "3",
    "SLIMLINE_METRICS_PORT": "0",  # tests that scrape a worker choose a port themselves
    # No escalation unless a test asks for it (tests of escalation start a worker of the escalated tier).
    "SLIMLINE_DOCUMENTS__REVIEW_SCORE": "0",
    "SLIMLINE_DOCUMENTS__REVIEW_MARGIN": "0",
    # Workers at the same priority as the test that waits for them: a niced worker loading its models on a
    # busy CI machine can take minutes (tests/test_cpu_priority.py checks the production default).
    "SLIMLINE_WORKER_NICE": "0",
    "SLIMLINE_LATENCY_WORKER_NICE": "0",
}


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    reason = postgres_binaries_missing()
    if reason:
        pytest.skip(reason)
    cluster = PostgresCluster().init()
    yield cluster
    cluster.destroy()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@dataclass
class Deployment:
    """One Slimline installation under test: Redis, a database, workers, and a producer."""

    redis_server: RedisServer
    database_url: str
    tmp_path: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    workers: list[WorkerProcess] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **TEST_ENV,
            "SLIMLINE_REDIS_URL": self.redis_server.url,
            "SLIMLINE_DATABASE_URL": self.database_url,
            "PYTHONPATH": str(REPO_ROOT),
            **self.extra_env,
        }

    @property
    def settings(self) -> Settings:
        return Settings(redis_url=self.redis_server.url, database_url=self.database_url)

    @property
    def app(self) -> Celery:
        if not hasattr(self, "_app"):
            self._app = create_app(self.settings)
        return self._app

    @property
    def store(self) -> OutcomeStore:
        if not hasattr(self, "_store"):
            self._store = OutcomeStore.from_url(self.database_url)
        return self._store

    @property
    def broker(self) -> redis.Redis:
        if not hasattr(self, "_broker"):
            self._broker = inspection_client(self.settings)
        return self._broker

    def start_worker(self, concurrency: int = 1, queues: str = "documents", tier: str = "compact") -> WorkerProcess:
        worker = WorkerProcess(self.env(), self.tmp_path / f"worker-{len(self.workers)}.log", queues=queues,
                               concurrency=concurrency, tier=tier).start()
        self.workers.append(worker)
        return worker

    def enqueue(self, items: list[Any], kind: Kind = Kind.documents) -> EnqueueReport:
        return enqueue(kind, items, app=self.app, settings=self.settings)

    def drain(self, timeout: float = 240.0) -> None:
        if not wait_until_drained(self.broker, timeout):
            logs = "\n".join(worker.log_tail() for worker in self.workers)
            raise AssertionError(f"queues did not drain in {timeout}s\n{logs}")

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        if hasattr(self, "_store"):
            self._store.engine.dispose()


def _deployment(redis_server: RedisServer, url: str, tmp_path: Path) -> Iterator[Deployment]:
    migrate(url)
    deployment = Deployment(redis_server, url, tmp_path)
    yield deployment
    deployment.close()


@pytest.fixture
def sqlite_deployment(redis_server: RedisServer, tmp_path: Path) -> Iterator[Deployment]:
    yield from _deployment(redis_server, f"sqlite:///{tmp_path / 'slimline.db'}", tmp_path)


@pytest.fixture
def postgres_deployment(redis_server: RedisServer, postgres: PostgresCluster, tmp_path: Path) -> Iterator[Deployment]:
    url = postgres.create_database(f"slimline_{uuid.uuid4().hex[:10]}")
    yield from _deployment(redis_server, url, tmp_path)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def deployment(request: pytest.FixtureRequest) -> Deployment:
    return request.getfixturevalue(f"{request.param}_deployment")


@pytest.fixture(scope="module")
def generator() -> Iterator[Any]:
    """The shipped small generator, loaded once per test module (products and abstractive summaries).
    One thread: deterministic on a shared CI machine."""
    from workers.shared.generator.llama_cpp import make_llama_cpp_generator

    generator = make_llama_cpp_generator(threads=1, context_tokens=4096, max_sequences=8,
                                         runtime_type=Settings().generator.runtime_type)
    yield generator
    generator.close()
