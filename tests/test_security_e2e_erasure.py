"""Retention and erasure with real Redis, real workers and a real SQLite database: `slimline erase`
leaves no copy of the item's text in the database files or in Redis (its append-only file included),
a late copy of the item is refused; legal holds block erasure and purge with their reason; a purge
removes exactly what is past retention. Also: `slimline redis-acl` writes an ACL file under which a
producer cannot read a queue or push to another."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis
from redis.backoff import ConstantBackoff
from redis.retry import Retry
from sqlalchemy import update

from schemas import Kind
from tests.conftest import Deployment
from tests.test_security_e2e_signing import slimline
from workers.db.models import DeadLetter, Rejection, Result
from workers.db.store import Outcomes, item_hash
from workers.runtime.publish import send_item
from workers.runtime.redis_server import RedisServer, free_port, redis_server_binary
from workers.security.redis_acl import password_sha256

SECRET_TEXT = "Quokkaberg Zyxwvut signed the lease for flat 7 at Vexmoor Lane"


def document(item_id: str, text: str) -> dict:
    return {"id": item_id, "text": text, "language": "en"}


def database_bytes(deployment: Deployment) -> bytes:
    """Every byte of the SQLite files. The test's own connections are closed first: closing another file
    descriptor of the database drops this process's POSIX locks on it, which SQLite relies on."""
    deployment.store.engine.dispose()
    path = Path(deployment.database_url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def redis_bytes(server: RedisServer) -> bytes:
    return b"".join(p.read_bytes() for p in server.data_dir.rglob("*.aof*") if p.is_file())


def test_erase_leaves_no_copy_and_refuses_a_late_one(sqlite_deployment: Deployment) -> None:
    deployment = sqlite_deployment
    env = deployment.env()
    target, other = document("subject-1", SECRET_TEXT + ". Invoice 42 is due."), document("keep-1", "Invoice 7 from Acme Corp.")
    deployment.enqueue([target, other])
    send_item(deployment.app, Kind.documents, target, {"unexpected": 1}, signer=None)  # a rejection with an excerpt
    deployment.store.save(Kind.documents, Outcomes(dead_letters=[{
        "message_id": "dead-1", "kind": "documents", "item_id": target["id"], "producer": "p", "payload": target,
        "content_hash": "x", "error": "boom", "attempts": 3}]))
    worker = deployment.start_worker()
    deployment.drain()
    worker.stop()
    assert deployment.store.current_results(Kind.documents, item_ids=[target["id"]])
    # A newer version of the item is still queued (no worker runs), and will come back later.
    deployment.enqueue([document(target["id"], SECRET_TEXT + ". Corrected.")])
    [late_copy] = deployment.broker.lrange("documents", 0, -1)
    late_body = json.loads(late_copy)["body"].encode()
    deployment.broker.bgrewriteaof()
    assert SECRET_TEXT.encode() in database_bytes(deployment)

    erased = slimline(env, "erase", "documents", target["id"])
    assert erased.returncode == 0, erased.stderr
    assert "1 message(s) in Redis" in erased.stderr

    store = deployment.store
    assert store.history(Kind.documents, target["id"]) == []
    assert not [row for row in store.rejections() if row.item_id == target["id"]]
    assert store.dead_letters(include_replayed=True) == []
    assert store.current_results(Kind.documents, item_ids=[other["id"]])  # the other item is untouched
    assert SECRET_TEXT.encode() not in database_bytes(deployment)
    assert SECRET_TEXT[:20].encode() not in database_bytes(deployment)
    assert deployment.broker.llen("documents") == 0
    assert late_body not in redis_bytes(deployment.redis_server)
    [audit] = [row for row in store.audit_rows() if row["action"] == "erase"]
    assert audit["detail"]["item_hashes"] == [item_hash(Kind.documents, target["id"])]
    assert target["id"] not in json.dumps(audit["detail"]) and "Quokkaberg" not in json.dumps(audit["detail"])

    # An old copy comes back (a restored backup of the queue): refused, nothing stored.
    deployment.broker.lpush("documents", late_copy)
    deployment.start_worker()
    deployment.drain()
    assert store.history(Kind.documents, target["id"]) == []
    [refused] = [row for row in store.rejections() if row.reason.startswith("the item was erased")]
    assert refused.item_id is None and refused.payload_excerpt == ""
    assert SECRET_TEXT.encode() not in database_bytes(deployment)


def test_legal_holds_and_retention(sqlite_deployment: Deployment) -> None:
    deployment = sqlite_deployment
    env = deployment.env() | {"SLIMLINE_RETENTION_DAYS": json.dumps({"transactions": 30})}
    store = deployment.store
    now = datetime.now(timezone.utc)
    rows = {"old": 40, "held": 40, "recent": 10}
    store.save_versions(Kind.transactions, [
        {"item_id": item_id, "content_hash": item_id, "result": {"action": "allow"}, "sent_at": now}
        for item_id in rows])
    store.save(Kind.documents, Outcomes(results=[
        {"item_id": "old-document", "content_hash": "d", "result": {}, "sent_at": now}]))
    store.save(Kind.transactions, Outcomes(
        rejections=[{"message_id": "r-old", "kind": "transactions", "item_id": "x", "producer": None, "field": "f",
                     "reason": "r", "errors": [], "payload_excerpt": ""}],
        dead_letters=[{"message_id": "d-new", "kind": "transactions", "item_id": "y", "producer": None,
                       "payload": {}, "content_hash": "y", "error": "e", "attempts": 3}]))
    with store.sessions.begin() as session:
        for item_id, days in rows.items():
            session.execute(update(Result).where(Result.item_id == item_id)
                            .values(processed_at=now - timedelta(days=days)))
        session.execute(update(Result).where(Result.item_id == "old-document")
                        .values(processed_at=now - timedelta(days=400)))
        session.execute(update(Rejection).values(rejected_at=now - timedelta(days=31)))
        session.execute(update(DeadLetter).values(failed_at=now - timedelta(days=29)))

    held = slimline(env, "hold", "transactions", "held", "--reason", "AML record, keep until 2031")
    assert held.returncode == 0, held.stderr
    refused = slimline(env, "erase", "transactions", "held", "old")
    assert refused.returncode == 8 and "held is under a legal hold: AML record, keep until 2031" in refused.stderr
    assert store.history(Kind.transactions, "old")  # nothing was erased

    purged = slimline(env, "purge")
    assert purged.returncode == 0, purged.stderr
    left = {row["item_id"] for row in store.history(Kind.transactions)}
    assert left == {"held", "recent"}  # exactly what is past retention is gone, and not what is held
    assert store.current_results(Kind.documents)  # documents have no retention configured
    assert store.rejections() == [] and [letter.message_id for letter in store.dead_letters()] == ["d-new"]
    [audit] = [row for row in store.audit_rows() if row["action"] == "purge"]
    assert audit["detail"]["removed"] == {"results": 1, "rejections": 1, "dead_letters": 0, "batch_stats": 0}

    assert slimline(env, "release", "transactions", "held").returncode == 0
    assert slimline(env, "erase", "transactions", "held").returncode == 0
    assert store.history(Kind.transactions, "held") == []


def test_the_generated_acl_file_confines_a_producer(tmp_path: Path) -> None:
    passwords = {"erp": "erp-" + "p" * 20, "worker": "w-" + "r" * 20, "operator": "o-" + "s" * 20}
    keys = tmp_path / "producers.toml"
    keys.write_text(f"""
[producers.erp]
kinds = ["documents"]
keys = {{ "erp-1" = "{'e' * 40}" }}
redis_password_sha256 = "{password_sha256(passwords['erp'])}"
[producers.slimline]
kinds = ["*"]
keys = {{ "w-1" = "{'w' * 40}" }}
redis_password_sha256 = "{password_sha256('unused-' + 'u' * 20)}"
[redis.worker]
password_sha256 = "{password_sha256(passwords['worker'])}"
[redis.operator]
password_sha256 = "{password_sha256(passwords['operator'])}"
""")
    acl = tmp_path / "users.acl"
    env = {key: value for key, value in os.environ.items() if not key.startswith("SLIMLINE_")}
    made = slimline(env | {"SLIMLINE_PRODUCER_KEYS_FILE": str(keys)}, "redis-acl", "--out", str(acl),
                    "--server-version", "6.2")
    assert made.returncode == 0, made.stderr
    assert "e" * 40 not in acl.read_text() and passwords["erp"] not in acl.read_text()
    with acl.open("a") as handle:  # a test-only admin, to stop the server
        handle.write("user test-admin on >admin-pass-123456 ~* &* +@all\n")
    port = free_port()
    process = subprocess.Popen([redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--aclfile",
                                str(acl), "--save", "", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        erp = redis.Redis(port=port, username="producer-erp", password=passwords["erp"],
                          retry=Retry(ConstantBackoff(0.1), 100), retry_on_error=[redis.ConnectionError])
        erp.lpush("documents", "m")
        for command in (("LRANGE", "documents", 0, -1), ("RPOP", "documents"), ("LPUSH", "transactions", "m"),
                        ("KEYS", "*"), ("HGETALL", "unacked")):
            with pytest.raises(redis.exceptions.NoPermissionError):
                erp.execute_command(*command)
        with pytest.raises((redis.exceptions.AuthenticationError, redis.exceptions.ResponseError)):
            redis.Redis(port=port).ping()  # the default user is off
    finally:
        process.terminate()
        process.wait(timeout=10)
