"""One Redis failover under load, run and measured: the scenario of tests/test_sentinel_failover.py, also run by
``python -m benchmarks.scale_out --failover`` (with and without the producers' replication confirmation).

Two worker hosts and a steady producer on a ``sentinel://`` URL (tests/support/sentinel.py), one PostgreSQL.
Mid-run the replica's replication stream is held for ``lag_seconds`` (a stalled network) while another
producer sends a burst (a file of documents: more than the workers can finish before the master dies), then the
master is killed and what the replica had not received is gone with it; its supervisor restarts it 3 s after the
promotion. Measured: how long until the Sentinels promote the replica, until work resumes (a probe item sent
every 100 ms without confirmation is stored), until the old master is a replica again; then, once everything
has drained, what was lost, stored twice and processed more than once, and which enqueues raised."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from schemas import Kind
from tasks.app import create_app
from tests.conftest import TEST_ENV
from tests.support.hosts import start_hosts, stop_hosts
from tests.support.model_free import MODEL_FREE_ENV
from tests.support.outcomes import Ledger, SteadyProducer, ledger, model_free_documents, wait_for
from tests.support.sentinel import SentinelCluster
from workers.client import enqueue
from workers.db.engine import migrate
from workers.db.models import Result
from workers.db.store import OutcomeStore
from workers.runtime.broker import FETCHING_LISTS, heartbeat_key
from workers.runtime.connection import redis_client
from workers.runtime.queues import outstanding
from workers.settings import Settings

VISIBILITY_TIMEOUT = 10


@dataclass
class FailoverReport:
    confirmed: bool  # the producer confirmed its messages on a replica
    partition: bool  # the master was cut off (alive) rather than killed
    behind_bytes: int  # replication stream the replica lacked when the master died
    promoted_seconds: float  # kill → the Sentinels name the replica master
    resumed_seconds: float  # kill → a probe sent after the kill is stored
    rejoined_seconds: float  # kill → the old master, restarted, is a replica of the new master
    drained_seconds: float  # kill → every queue empty and nothing in flight (the producers done)
    resent: int  # messages the producer sent again after the promotion
    refused: int  # documents whose enqueue raised (not accepted: the producer was told)
    refusals: list[str]  # what it raised
    unacked_mutex_ttl: int  # kombu's restore mutex on the new master at the end (-2: none)
    hosts_alive: bool
    ledger: Ledger

    def line(self) -> str:
        return (f"{'confirmed' if self.confirmed else 'unconfirmed'}: replica {self.behind_bytes} bytes behind at the "
                f"kill; promoted {self.promoted_seconds:.1f} s, work resumed {self.resumed_seconds:.1f} s after it; "
                f"old master a replica again {self.rejoined_seconds:.1f} s after it; drained {self.drained_seconds:.1f} s "
                f"after the kill; resent {self.resent}; refused {self.refused} {self.refusals[:2]}\n"
                f"{self.ledger.line()}")


def run_failover(cluster: SentinelCluster, database_url: str, work_dir: Path, confirm: bool = True,
                 documents: int = 1000, rate: float = 60, burst: int = 600, lag_seconds: float = 1.5,
                 restart_after_seconds: float = 3.0, partition: bool = False) -> FailoverReport:
    """``partition``: instead of killing the master, cut it off from everyone (celery/celery#6348: failover worked
    after a crash, not after a network loss) and heal the network ``restart_after_seconds`` after the promotion."""
    migrate(database_url)
    processed_log = work_dir / "processed.log"
    env = {**os.environ, **TEST_ENV, **MODEL_FREE_ENV, "SLIMLINE_DATABASE_URL": database_url,
           "SLIMLINE_ALLOW_UNSIGNED": "true", "SLIMLINE_WORKER_NICE": "0", "SLIMLINE_TEST_BATCH_SECONDS": "0.5",
           "SLIMLINE_VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY_TIMEOUT),
           "SLIMLINE_TEST_PROCESSED_LOG": str(processed_log)}
    confirmed = Settings(redis_url=cluster.url, database_url=database_url)
    unconfirmed = confirmed.model_copy(
        update={"sentinel": confirmed.sentinel.model_copy(update={"confirm_replicas": 0})})
    settings = confirmed if confirm else unconfirmed
    app, probe_app, store = create_app(settings), create_app(unconfirmed), OutcomeStore.from_url(database_url)
    hosts = start_hosts(["host1", "host2"], env, work_dir, redis_url=cluster.url)
    try:
        producer = SteadyProducer(lambda batch: enqueue(Kind.documents, batch, app=app, settings=settings),
                                  model_free_documents(documents, "failover"), rate=rate).start()
        wait_for(lambda: store.count(Result) >= 200, 60, "work under way")

        cluster.master_proxy.cut(replication_only=True)  # the replica stops receiving; the master goes on
        bulk = SteadyProducer(lambda batch: enqueue(Kind.documents, batch, app=app, settings=settings),
                              model_free_documents(burst, "burst"), rate=100_000, chunk=burst).start()
        time.sleep(lag_seconds)
        behind = cluster.unreplicated_bytes()
        if partition:
            cluster.master_proxy.cut()  # alive, unreachable: no connection is reset, replies just stop
        else:
            cluster.master.kill()
        killed_at = time.monotonic()
        if not partition:
            cluster.master_proxy.drop()  # what the replica had not received died with the master

        probes: list[str] = []

        def stored_any(ids: list[str]) -> bool:
            with store.sessions() as session:
                return bool(ids) and session.query(Result).filter(Result.item_id.in_(list(ids))).count() > 0

        def send_probes() -> None:
            while not stored_any(probes) and time.monotonic() - killed_at < 60:
                probe = model_free_documents(len(probes) + 1, "probe")[-1]
                try:
                    enqueue(Kind.documents, [probe], app=probe_app, settings=unconfirmed)
                    probes.append(probe["id"])
                except Exception:  # noqa: BLE001 - no master yet
                    pass
                time.sleep(0.1)

        prober = threading.Thread(target=send_probes, daemon=True)
        prober.start()
        promoted = wait_for(lambda: cluster.master_port() == cluster.replica.port, 30, "a promotion")
        time.sleep(restart_after_seconds)
        if partition:
            cluster.master_proxy.heal()  # the Sentinels make the old master a replica of the new one
        else:
            cluster.master.start()  # its supervisor restarts it; the Sentinels make it a replica of the new master
        restarted_at = time.monotonic()
        prober.join(90)
        resumed = time.monotonic() - killed_at
        if not stored_any(probes):
            raise AssertionError("no probe stored within 60 s of the failover:\n"
                                 + "\n".join(host.log_tail() for host in hosts))
        rejoined = restarted_at - killed_at + wait_for(
            lambda: cluster.master.client().info("replication")["role"] == "slave", 30, "the old master to rejoin")
        producer.join()
        bulk.join()
        broker = redis_client(settings, socket_timeout=5)
        accepted = producer.accepted + bulk.accepted + probes

        def settled() -> bool:  # unconfirmed, some accepted items may never be stored: drained is enough
            return outstanding(broker) == 0 and (store.count(Result) >= len(accepted) or not confirm)

        try:
            wait_for(settled, 120, "drained and stored")
        except AssertionError:
            print("\n".join(host.log_tail() for host in hosts))
            print(broker_state(broker))
            raise
        drained = time.monotonic() - killed_at
        time.sleep(3)  # a late redelivery would show up now
        return FailoverReport(
            confirmed=confirm, partition=partition, behind_bytes=behind, promoted_seconds=promoted, resumed_seconds=resumed,
            rejoined_seconds=rejoined, drained_seconds=drained, resent=producer.resent + bulk.resent,
            refused=len(producer.uncertain + bulk.uncertain), refusals=sorted(set(producer.errors + bulk.errors)),
            unacked_mutex_ttl=int(broker.ttl("unacked_mutex")), hosts_alive=all(host.alive() for host in hosts),
            ledger=ledger(store, accepted, processed_log))
    finally:
        stop_hosts(hosts)
        store.engine.dispose()


def broker_state(client: redis.Redis) -> str:
    """What is left in Redis, for a failure message."""
    now = time.time()
    lists = {key.decode(): client.llen(key) for key in client.smembers(FETCHING_LISTS)}
    alive = {key: bool(client.exists(heartbeat_key(key.split(":")[2]))) for key in lists}
    scores = [now - score for _, score in client.zrange("unacked_index", 0, -1, withscores=True)]
    return (f"queue {client.llen('documents')}, unacked {client.hlen('unacked')} (ages {sorted(scores)[:3]}…"
            f"{sorted(scores)[-3:]}), fetching lists {lists} (owner alive {alive}), "
            f"mutex ttl {client.ttl('unacked_mutex')}")
