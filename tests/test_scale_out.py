"""Scale-out under faults: three worker hosts (each its own Celery node name, process group and network path to
Redis: tests/support/hosts.py) share one Redis and one PostgreSQL while a producer keeps sending. One host is
cut from Redis for 30 s, or frozen past the visibility timeout, or killed; every accepted item still ends with
exactly one stored result, and a host that comes back takes work again.

The pipeline is the documents pipeline with model-free components (tests/support/model_free.py) whose batches
take 0.2 s, so that a host always holds work in flight when the fault hits it; a processed log counts how often
each item went through the pipeline (a redelivered item is processed again, and stored once)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from schemas import Kind
from tasks.app import create_app
from tests.conftest import TEST_ENV
from tests.support.hosts import Host, start_hosts, stop_hosts
from tests.support.model_free import MODEL_FREE_ENV, processed_counts
from tests.support.outcomes import Ledger, SteadyProducer, ledger, model_free_documents, wait_for
from tests.support.services import PostgresCluster
from workers.client import enqueue
from workers.db.engine import migrate
from workers.db.models import Result
from workers.db.store import OutcomeStore
from workers.runtime.queues import outstanding
from workers.runtime.redis_server import RedisServer
from workers.settings import Settings

pytestmark = [pytest.mark.chaos, pytest.mark.postgres]

VISIBILITY_TIMEOUT = 10
FLEET_ENV = {
    **TEST_ENV, **MODEL_FREE_ENV,
    "SLIMLINE_VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY_TIMEOUT),
    "SLIMLINE_TEST_BATCH_SECONDS": "0.2",
    "SLIMLINE_DOCUMENTS__MAX_WAIT_SECONDS": "0.05",
    "SLIMLINE_ALLOW_UNSIGNED": "true",
    "SLIMLINE_WORKER_NICE": "0",
}


@dataclass
class Fleet:
    """One Redis, one PostgreSQL database, worker hosts, a producer that talks to Redis directly."""

    redis_server: RedisServer
    database_url: str
    tmp_path: Path
    hosts: list[Host] = field(default_factory=list)

    @property
    def processed_log(self) -> Path:
        return self.tmp_path / "processed.log"

    @property
    def settings(self) -> Settings:
        return Settings(redis_url=self.redis_server.url, database_url=self.database_url)

    def start_hosts(self, count: int) -> list[Host]:
        env = {**os.environ, **FLEET_ENV, "SLIMLINE_DATABASE_URL": self.database_url,
               "SLIMLINE_TEST_PROCESSED_LOG": str(self.processed_log)}
        self.hosts = start_hosts([f"host{index}" for index in range(1, count + 1)], env, self.tmp_path,
                                 self.redis_server.port)
        self.app = create_app(self.settings)
        self.store = OutcomeStore.from_url(self.database_url)
        self.broker = redis.Redis.from_url(self.redis_server.url)
        return self.hosts

    def enqueue(self, documents: list[dict[str, str]]) -> None:
        enqueue(Kind.documents, documents, app=self.app, settings=self.settings)

    def processed_by(self, host: Host) -> int:
        return sum(per_host.get(host.name, 0) for per_host in processed_counts(self.processed_log).values())

    def stored(self) -> int:
        return self.store.count(Result)

    def settle(self, producer: SteadyProducer, timeout: float = 90) -> Ledger:
        """Wait for the producer, then for every accepted item to be stored and nothing to be left in Redis."""
        producer.join()
        assert not producer.uncertain, producer.errors[:3]
        try:
            wait_for(lambda: outstanding(self.broker) == 0 and self.stored() >= len(producer.accepted), timeout,
                     "drained and stored")
        except AssertionError:
            print("\n".join(host.log_tail() for host in self.hosts))
            raise
        time.sleep(3)  # a late duplicate would show up now
        return ledger(self.store, producer.accepted, self.processed_log)

    def close(self) -> None:
        stop_hosts(self.hosts)
        if hasattr(self, "store"):
            self.store.engine.dispose()


@pytest.fixture
def fleet(redis_server: RedisServer, postgres: PostgresCluster, tmp_path: Path) -> Iterator[Fleet]:
    url = postgres.create_database(f"slimline_{uuid.uuid4().hex[:10]}")
    migrate(url)
    fleet = Fleet(redis_server, url, tmp_path)
    yield fleet
    fleet.close()


def _assert_nothing_lost_or_doubled(result: Ledger, fault: str) -> None:
    print(f"\n{fault}: {result.line()}")
    assert result.lost == []
    assert result.doubled == {}
    assert result.other_outcomes == 0
    assert result.stored == result.accepted


def test_a_host_cut_from_redis_for_30_s_then_reconnected(fleet: Fleet) -> None:
    cut = fleet.start_hosts(3)[0]
    producer = SteadyProducer(fleet.enqueue, model_free_documents(1900, "cut"), rate=50).start()
    wait_for(lambda: fleet.processed_by(cut) >= 20, 30, "the host to be cut took work")

    cut.proxy.cut()
    stored_at_cut = fleet.stored()
    time.sleep(30)
    stored_during_cut = fleet.stored() - stored_at_cut
    processed_before_heal = fleet.processed_by(cut)
    cut.proxy.heal()
    reconnected_after = wait_for(lambda: fleet.processed_by(cut) > processed_before_heal, 60,
                                 "the healed host to take work again")

    result = fleet.settle(producer)
    print(f"\nstored by the other hosts during the cut: {stored_during_cut}; the healed host took work again "
          f"{reconnected_after:.1f}s after the heal")
    assert stored_during_cut > 0 and cut.alive()
    assert result.processed_again > 0  # the cut host held work, which the others took over
    _assert_nothing_lost_or_doubled(result, "host cut from Redis for 30 s")


def test_a_host_frozen_past_the_visibility_timeout_then_resumed(fleet: Fleet) -> None:
    frozen = fleet.start_hosts(3)[0]
    producer = SteadyProducer(fleet.enqueue, model_free_documents(1100, "frozen"), rate=50).start()
    wait_for(lambda: fleet.processed_by(frozen) >= 20, 30, "the host to be frozen took work")

    frozen.freeze()
    time.sleep(VISIBILITY_TIMEOUT + 5)
    processed_before_resume = fleet.processed_by(frozen)
    frozen.resume()
    resumed_after = wait_for(lambda: fleet.processed_by(frozen) > processed_before_resume, 60,
                             "the resumed host to take work again")

    result = fleet.settle(producer)
    print(f"\nthe resumed host took work again {resumed_after:.1f}s after SIGCONT")
    assert result.processed_again > 0  # what the frozen host held was taken over after the visibility timeout
    _assert_nothing_lost_or_doubled(result, f"host frozen {VISIBILITY_TIMEOUT + 5} s")


def test_a_host_killed_mid_batch(fleet: Fleet) -> None:
    killed = fleet.start_hosts(3)[0]
    producer = SteadyProducer(fleet.enqueue, model_free_documents(500, "killed"), rate=50).start()
    wait_for(lambda: fleet.processed_by(killed) >= 20, 30, "the host to be killed took work")

    killed.kill()
    result = fleet.settle(producer)
    assert result.processed_again > 0  # it died holding work, which the others took over
    _assert_nothing_lost_or_doubled(result, "host killed (SIGKILL)")
