"""Signed producers with real Redis and real workers: forged, unsigned and wrong-kind messages end as
rejections and no pipeline runs on them; the recorded producer and send time are the signed ones; a
redelivered message is processed once; a rotated key works while the old one is still allowed and
stops once it is removed; the audit chain records it all and `slimline audit verify` catches an
edited and a deleted row."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from schemas import Kind
from tests.conftest import Deployment
from tests.support.services import REPO_ROOT
from workers.client import enqueue
from workers.db.models import Rejection
from workers.runtime.publish import Signer, send_item
from workers.security.producers import SigningKey
from workers.settings import Settings
from workers.transactions.simulator import SimulationConfig, simulate

SECRETS = {"bank-old": "o" * 40, "bank-new": "n" * 40, "shop-1": "s" * 40, "workers-1": "w" * 40}
AUDIT_KEY = "audit-" + "k" * 40



def slimline(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Its stderr with rich's line wrapping undone."""
    run = subprocess.run([sys.executable, "-m", "workers.cli", *args], env=env | {"COLUMNS": "200"}, cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=timeout)
    run.stderr = " ".join(run.stderr.split())
    return run


def keys_config(bank_keys: tuple[str, ...] = ("bank-old", "bank-new")) -> dict[str, Any]:
    return {"producers": {
        "bank": {"kinds": ["transactions"], "keys": {key: SECRETS[key] for key in bank_keys}, "signing_key": "bank-new"},
        "shop": {"kinds": ["products"], "keys": {"shop-1": SECRETS["shop-1"]}},
        "slimline": {"kinds": ["*"], "keys": {"workers-1": SECRETS["workers-1"]}},
    }}


def secure(deployment: Deployment, tmp_path: Path, config: dict[str, Any] | None = None) -> Path:
    """Turn signing on for the deployment's workers and CLI: keys file, no opt-out, an audit key."""
    keys = tmp_path / "producers.json"
    keys.write_text(json.dumps(config or keys_config()))
    deployment.extra_env |= {"SLIMLINE_PRODUCER_KEYS_FILE": str(keys), "SLIMLINE_ALLOW_UNSIGNED": "false",
                             "SLIMLINE_AUDIT_KEY": AUDIT_KEY, "SLIMLINE_AUDIT_HEAD_FILE": str(tmp_path / "head.json"),
                             "SLIMLINE_AUDIT_RECEIPTS_SECONDS": "0", "SLIMLINE_DATA_DIR": str(tmp_path / "data")}
    return keys


def producer_settings(deployment: Deployment, keys: Path, producer_id: str = "bank") -> Settings:
    return Settings(redis_url=deployment.redis_server.url, database_url=deployment.database_url,
                    producer_keys_file=keys, producer_id=producer_id, allow_unsigned=False)


def transactions(count: int, prefix: str) -> list[dict[str, Any]]:
    items = simulate(SimulationConfig(accounts=3, days=3, seed=7))[:count]
    return [{key: value for key, value in item.items() if key not in ("label", "scenario")} | {"id": f"{prefix}-{n}"}
            for n, item in enumerate(items)]


def feature_snapshots(deployment: Deployment, item_id: str) -> list[bytes]:
    """The transactions pipeline keeps a feature snapshot per transaction it ran on."""
    return list(deployment.broker.scan_iter(match=f"txf:*:x:{item_id}"))


def signature_rejection(deployment: Deployment, item_id: str) -> Rejection:
    [row] = [row for row in deployment.store.rejections(kind="transactions") if row.item_id == item_id]
    assert row.field == "signature" and row.producer is None
    return row


def test_only_signed_messages_of_allowed_producers_run(sqlite_deployment: Deployment, tmp_path: Path) -> None:
    deployment = sqlite_deployment
    keys = secure(deployment, tmp_path)
    bank = producer_settings(deployment, keys)
    app = deployment.app
    good = transactions(6, "good")
    report = enqueue(Kind.transactions, good, app=app, settings=bank)
    assert report.accepted == len(good)

    bank_signer = Signer.for_producer(bank)
    assert bank_signer is not None and bank_signer.key.key_id == "bank-new"
    old_key = Signer("bank", SigningKey("bank-old", SECRETS["bank-old"].encode()), "slimline")
    forged_key = Signer("bank", SigningKey("bank-new", b"guessed-" + b"g" * 40), "slimline")
    shop = Signer("shop", SigningKey("shop-1", SECRETS["shop-1"].encode()), "slimline")
    [claimed, old, forged, unsigned, wrong_kind] = transactions(5, "special")
    # A signed message whose kwargs claim another producer and another send time: the signed ones count.
    send_item(app, Kind.transactions, claimed, {"producer": "mallory", "sent_at": 1.0}, signer=bank_signer)
    send_item(app, Kind.transactions, old, {}, signer=old_key)  # rotation: the old key is still allowed
    send_item(app, Kind.transactions, forged, {}, signer=forged_key)
    send_item(app, Kind.transactions, unsigned, {"producer": "bank"}, signer=None)
    send_item(app, Kind.transactions, wrong_kind, {"producer": "shop"}, signer=shop)
    queued = deployment.broker.lrange("transactions", 0, -1)

    deployment.start_worker(queues="transactions")
    deployment.drain()

    stored = {row["item_id"]: row for row in deployment.store.current_results(Kind.transactions)}
    assert set(stored) == {item["id"] for item in good} | {claimed["id"], old["id"]}
    assert {row["producer"] for row in stored.values()} == {"bank"}
    assert stored[claimed["id"]]["sent_at"].year >= 2025  # the signed timestamp, not the claimed 1970 one
    for item, code in ((forged, "bad_signature"), (unsigned, "unsigned"), (wrong_kind, "kind_not_allowed")):
        assert signature_rejection(deployment, item["id"]).reason.startswith(code)
        assert feature_snapshots(deployment, item["id"]) == []  # no pipeline ran on it
    assert feature_snapshots(deployment, good[0]["id"])  # ...while it ran on the signed ones

    # Redelivery is not replay: the same message again (restored, requeued) is stored once.
    first_good = next(raw for raw in queued if good[0]["id"].encode() in base64.b64decode(json.loads(raw)["body"]))
    deployment.broker.lpush("transactions", first_good)
    deployment.drain()
    assert len(deployment.store.history(Kind.transactions, good[0]["id"])) == 1
    assert not [row for row in deployment.store.rejections(kind="transactions") if row.item_id == good[0]["id"]]

    # The audit log: verified enqueues per producer, one authentication rejection row, model loads.
    rows = deployment.store.audit_rows()
    assert {row["actor"] for row in rows if row["action"] == "enqueue" and "verified_by" in row["detail"]} == {"bank"}
    refusals = [row for row in rows if row["action"] == "auth.rejected"]
    assert sum(row["detail"]["messages"] for row in refusals) == 3
    assert any(row["action"] == "model.load" for row in rows)
    assert all(row["hmac"] for row in rows)

    # Rotation, end: the old key is removed from the workers' keys; its messages are refused now.
    deployment.workers[0].stop()
    keys.write_text(json.dumps(keys_config(bank_keys=("bank-new",))))
    [late_old, late_new] = transactions(2, "rotated")
    send_item(app, Kind.transactions, late_old, {}, signer=old_key)
    send_item(app, Kind.transactions, late_new, {}, signer=bank_signer)
    deployment.start_worker(queues="transactions")
    deployment.drain()
    assert signature_rejection(deployment, late_old["id"]).reason.startswith("unknown_key")
    assert deployment.store.current_results(Kind.transactions, item_ids=[late_new["id"]])

    check_audit_verify(deployment)


def check_audit_verify(deployment: Deployment) -> None:
    env = deployment.env()
    for worker in deployment.workers:
        worker.stop()
    intact = slimline(env, "audit", "verify")
    assert intact.returncode == 0, intact.stderr
    assert "intact" in intact.stderr

    engine = deployment.store.engine
    with engine.begin() as connection:
        target, detail = connection.execute(text("SELECT id, detail FROM audit_log ORDER BY id LIMIT 1 OFFSET 2")).one()
        connection.execute(text("UPDATE audit_log SET detail = :detail WHERE id = :id"),
                           {"detail": json.dumps({"messages": 999}), "id": target})
    edited = slimline(env, "audit", "verify")
    assert edited.returncode == 1 and f"row id {target}" in edited.stderr, edited.stderr

    with engine.begin() as connection:  # put it back: intact again
        connection.execute(text("UPDATE audit_log SET detail = :detail WHERE id = :id"),
                           {"detail": detail if isinstance(detail, str) else json.dumps(detail), "id": target})
    assert slimline(env, "audit", "verify").returncode == 0

    with engine.begin() as connection:  # the newest row: only the head file outside the database knows it
        connection.execute(text("DELETE FROM audit_log WHERE id = (SELECT max(id) FROM audit_log)"))
    deleted = slimline(env, "audit", "verify")
    assert deleted.returncode == 1 and "newest rows were deleted" in deleted.stderr, deleted.stderr


@pytest.mark.parametrize("allow_unsigned", ["false", "true"])
def test_a_worker_without_keys_starts_only_when_unsigned_work_is_allowed(
        sqlite_deployment: Deployment, allow_unsigned: str) -> None:
    deployment = sqlite_deployment
    deployment.extra_env |= {"SLIMLINE_ALLOW_UNSIGNED": allow_unsigned}
    env = deployment.env()
    env.pop("SLIMLINE_PRODUCER_KEYS_FILE", None)
    env.pop("SLIMLINE_PRODUCER_KEYS", None)
    if allow_unsigned == "false":
        run = subprocess.run([sys.executable, "-m", "workers.cli", "worker", "--queues", "transactions"], env=env,
                             cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
        assert run.returncode == 2
        assert "refusing to start: no producer keys" in run.stderr and "Traceback" not in run.stderr
        return
    worker = deployment.start_worker(queues="transactions")
    assert "signing is off" in worker.log_path.read_text()
    for command in ("status", "health"):
        shown = slimline(env, command)
        assert shown.returncode == 0, shown.stderr
        assert "1 live worker(s) accept unsigned messages" in shown.stderr, shown.stderr
