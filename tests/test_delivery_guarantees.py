"""Nothing lost, nothing doubled: every accepted item ends with exactly one stored outcome,
whatever fails around it. These tests inject real faults into real processes."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select

from tests.conftest import Deployment
from tests.support.corpus import synthetic_documents
from tests.support.poison import MARKER
from tests.support.services import PostgresCluster
from workers.db.models import DeadLetter, Result, Rejection
from workers.runtime.queues import in_flight

pytestmark = pytest.mark.chaos


def _outcome_counts(deployment: Deployment) -> dict[str, int]:
    with deployment.store.sessions() as session:
        return {
            "results": session.scalar(select(func.count()).select_from(Result)) or 0,
            "rejections": session.scalar(select(func.count()).select_from(Rejection)) or 0,
            "dead_letters": session.scalar(select(func.count()).select_from(DeadLetter)) or 0,
        }


def _assert_exactly_one_outcome_each(deployment: Deployment, sent_ids: set[str]) -> dict[str, int]:
    """Every sent item has its result, and no message left a second outcome of any kind."""
    counts = _outcome_counts(deployment)
    stored = {row["item_id"] for row in deployment.store.iter_rows(Result)}
    assert stored == sent_ids
    assert counts == {"results": len(sent_ids), "rejections": 0, "dead_letters": 0}
    assert deployment.broker.hlen("unacked") == 0
    return counts


def _wait_for_results(deployment: Deployment, at_least: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while deployment.store.count(Result) < at_least:
        assert time.monotonic() < deadline, "worker made no progress"
        time.sleep(0.05)


def test_killing_workers_mid_batch_loses_and_doubles_nothing(sqlite_deployment: Deployment) -> None:
    deployment = sqlite_deployment
    documents = synthetic_documents(2000, seed=10)
    deployment.enqueue(documents)
    kills = 0
    for _ in range(3):
        worker = deployment.start_worker(concurrency=2)
        _wait_for_results(deployment, at_least=deployment.store.count(Result) + 100)
        worker.kill_hard()
        kills += 1
    deployment.start_worker(concurrency=2)
    deployment.drain()

    counts = _assert_exactly_one_outcome_each(deployment, {document["id"] for document in documents})
    print(f"\nkill -9 x{kills}: sent 2000, outcomes {counts}")


def test_restarting_redis_loses_no_accepted_item(sqlite_deployment: Deployment) -> None:
    deployment = sqlite_deployment
    documents = synthetic_documents(2000, seed=11)
    deployment.start_worker(concurrency=2)
    accepted: list[str] = []

    def produce() -> None:
        for start in range(0, len(documents), 100):
            chunk = documents[start:start + 100]
            deployment.enqueue(chunk)  # raises if a message could not be handed to Redis
            accepted.extend(document["id"] for document in chunk)

    producer = threading.Thread(target=produce)
    producer.start()
    _wait_for_results(deployment, at_least=300)
    deployment.redis_server.restart()
    producer.join(timeout=120)
    assert not producer.is_alive()
    deployment.drain()

    assert len(accepted) == 2000
    counts = _assert_exactly_one_outcome_each(deployment, set(accepted))
    print(f"\nredis restart: accepted {len(accepted)}, outcomes {counts}")


@pytest.mark.postgres
def test_a_database_outage_delays_but_loses_nothing(postgres_deployment: Deployment, postgres: PostgresCluster) -> None:
    deployment = postgres_deployment
    documents = synthetic_documents(1500, seed=12)
    deployment.start_worker(concurrency=2)
    deployment.enqueue(documents)
    _wait_for_results(deployment, at_least=200)
    postgres.stop()
    time.sleep(10)
    postgres.start()
    deployment.drain()

    counts = _assert_exactly_one_outcome_each(deployment, {document["id"] for document in documents})
    print(f"\ndatabase outage 10 s: sent 1500, outcomes {counts}")


def test_a_poison_item_is_dead_lettered_and_its_batch_mates_succeed(sqlite_deployment: Deployment) -> None:
    deployment = sqlite_deployment
    deployment.extra_env |= {"SLIMLINE_PLUGINS": '["tests.support.poison"]',
                             "SLIMLINE_DOCUMENTS__ENTITIES": "entities.poisoned_for_tests"}
    documents = synthetic_documents(64, seed=13)
    documents[17]["text"] += f" {MARKER}"
    deployment.enqueue(documents)  # all 64 wait in the queue, so they form one batch
    deployment.start_worker()
    deployment.drain()

    results = list(deployment.store.iter_rows(Result))
    assert len(results) == 63
    assert {row["batch_size"] for row in results} == {64}
    letters = deployment.store.dead_letters()
    assert [(letter.item_id, letter.attempts) for letter in letters] == [(documents[17]["id"], 3)]
    assert "pathological input" in letters[0].error
    assert letters[0].payload == documents[17]


def test_sigterm_returns_buffered_work_to_the_queue(sqlite_deployment: Deployment) -> None:
    deployment = sqlite_deployment
    documents = synthetic_documents(1500, seed=14)
    deployment.enqueue(documents)
    worker = deployment.start_worker(concurrency=2)
    _wait_for_results(deployment, at_least=200)
    assert worker.stop(timeout=180) == 0  # warm shutdown (running batches finish), not a crash
    stored_at_shutdown = deployment.store.count(Result)
    # Everything not stored is back in the queue at once, not waiting for the visibility timeout. A batch
    # that finished during the shutdown may be stored and back in the queue too (its acks came after the
    # restore): it is processed again and stored once.
    assert in_flight(deployment.broker) == 0
    queued = deployment.broker.llen("documents")
    assert 0 < 1500 - stored_at_shutdown <= queued <= 1500 - stored_at_shutdown + 2 * 64
    deployment.start_worker(concurrency=2)
    deployment.drain()

    counts = _assert_exactly_one_outcome_each(deployment, {document["id"] for document in documents})
    print(f"\nSIGTERM at {stored_at_shutdown} stored: sent 1500, outcomes {counts}")
