"""The HTTP gateway, against a real `slimline serve` process, a real Redis with the generated ACLs (the gateway, the
workers and the operator each under their own Redis user), signed messages, real workers (transactions, and the
documents urgent lane) and SQLite: every status code, idempotent resends, synchronous decisions (made in the gateway
and stored by a worker; or, in a second gateway, awaited from the worker, with the rules-only fallback), urgent
documents ahead of a bulk backlog, the API keys' CLI, health and metrics."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas import Kind
from typer.testing import CliRunner

from tests.conftest import TEST_ENV
from tests.support.acl_redis import AclRedisServer
from tests.support.gateway import (GatewayProcess, create_api_key, redis_password,
                                   write_producer_keys)
from tests.support.services import REPO_ROOT, WorkerProcess
from workers.db.engine import migrate
from workers.db.store import OutcomeStore
from workers.security.producers import load_config_file
from workers.security.redis_acl import DEFAULT_GATEWAY_USER, DEFAULT_OPERATOR_USER, DEFAULT_WORKER_USER

DEADLINE_MS = 3000  # long enough for a loaded CI machine: the worker's decision comes well within it
RULES_REFRESH_SECONDS = 1
MAX_QUEUE_LENGTH = 20
MAX_BODY_BYTES = 64 * 1024
MAX_DOCUMENT_CHARS = 20_000


@dataclass
class Stack:
    root: Path
    redis: AclRedisServer
    database_url: str
    env: dict[str, str]  # what the CLI needs (as the operator)
    gateway: GatewayProcess
    worker_gateway: GatewayProcess  # SLIMLINE_GATEWAY__DECIDE_IN=worker
    transactions: WorkerProcess
    urgent: WorkerProcess
    keys: dict[str, str]

    @cached_property
    def store(self) -> OutcomeStore:
        return OutcomeStore.from_url(self.database_url)

    def client(self, key: str | None = "all", gateway: GatewayProcess | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[key]}"} if key else {}
        return httpx.Client(base_url=(gateway or self.gateway).url, headers=headers, timeout=60)

    def queue_length(self, queue: str) -> int:
        return int(self.redis.admin().llen(queue))


def _start_all(*processes: Any) -> None:
    """Start processes side by side (model loading dominates), raising the first failure."""
    failures: list[BaseException] = []

    def start(process: Any) -> None:
        try:
            process.start(timeout=240)
        except BaseException as failure:  # noqa: BLE001 - re-raised below
            failures.append(failure)

    threads = [threading.Thread(target=start, args=(process,)) for process in processes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("gateway")
    keys_file = write_producer_keys(root / "producer-keys.json", {
        "erp": ["documents", "transactions", "products"], "shop": ["products"]}, redis_users=True)
    redis = AclRedisServer(load_config_file(keys_file), root / "redis").start()
    database_url = f"sqlite:///{root / 'slimline.db'}"
    migrate(database_url)
    common = {**os.environ, **TEST_ENV, "SLIMLINE_DATABASE_URL": database_url, "SLIMLINE_ALLOW_UNSIGNED": "false",
              "SLIMLINE_PRODUCER_KEYS_FILE": str(keys_file), "SLIMLINE_MAX_QUEUE_LENGTH": str(MAX_QUEUE_LENGTH),
              "SLIMLINE_MAX_DOCUMENT_CHARS": str(MAX_DOCUMENT_CHARS), "PYTHONPATH": str(REPO_ROOT),
              "SLIMLINE_TRANSACTIONS__RULES_REFRESH_SECONDS": str(RULES_REFRESH_SECONDS)}
    worker_env = common | {"SLIMLINE_REDIS_URL": redis.user_url(DEFAULT_WORKER_USER, redis_password("worker"))}
    gateway_env = common | {
        "SLIMLINE_REDIS_URL": redis.user_url(DEFAULT_GATEWAY_USER, redis_password("gateway")),
        "SLIMLINE_GATEWAY__DEADLINE_MS": str(DEADLINE_MS), "SLIMLINE_GATEWAY__WAIT_MS": "60000",
        "SLIMLINE_GATEWAY__KEY_CACHE_SECONDS": "0", "SLIMLINE_GATEWAY__MAX_BODY_BYTES": str(MAX_BODY_BYTES)}
    gateway = GatewayProcess(gateway_env, root / "gateway.log")
    worker_gateway = GatewayProcess(gateway_env | {"SLIMLINE_GATEWAY__DECIDE_IN": "worker"},
                                    root / "worker-gateway.log")
    transactions = WorkerProcess(worker_env, root / "transactions.log", queues="transactions")
    # The urgent lane's worker: its own process, not niced, a short batch wait (README, "HTTP gateway").
    urgent = WorkerProcess(worker_env, root / "urgent.log", command=[
        sys.executable, "-m", "workers.cli", "worker", "--queues", "documents", "--lane", "urgent",
        "--concurrency", "1", "--loglevel", "INFO"])
    keys = {
        "all": create_api_key(database_url, "erp", [Kind.documents, Kind.transactions, Kind.products]),
        "documents": create_api_key(database_url, "erp", [Kind.documents]),
        "limited": create_api_key(database_url, "erp", [Kind.documents], rate_limit="3/minute"),
        "shop-transactions": create_api_key(database_url, "shop", [Kind.transactions]),
    }
    try:
        _start_all(gateway, worker_gateway, transactions, urgent)
        yield Stack(root, redis, database_url,
                    common | {"SLIMLINE_REDIS_URL": redis.user_url(DEFAULT_OPERATOR_USER, redis_password("operator"))},
                    gateway, worker_gateway, transactions, urgent, keys)
    finally:
        stopping = [threading.Thread(target=process.stop) for process in (gateway, worker_gateway, transactions, urgent)]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()
        redis.stop()


def transaction(item_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": item_id, "account_id": "acct-1", "amount": "42.50", "currency": "EUR",
            "timestamp": "2026-03-02T10:15:00Z", "channel": "online", "country": "FR"} | fields


def ndjson(*items: Any) -> bytes:
    return b"".join((item if isinstance(item, bytes) else json.dumps(item).encode()) + b"\n" for item in items)


def cli(stack: Stack, monkeypatch: pytest.MonkeyPatch, *arguments: str) -> tuple[int, str]:
    """The `slimline` command in process (as the operator), with its exit code as `slimline` would exit."""
    from workers.cli.common import CliError
    from workers.cli.main import app
    from workers.settings import get_settings

    for name, value in stack.env.items():
        if name.startswith("SLIMLINE_"):
            monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, list(arguments), standalone_mode=False)
    finally:
        get_settings.cache_clear()
    if isinstance(result.exception, CliError):
        return result.exception.code, result.output
    assert result.exception is None, result.output
    return 0, result.output


def wait_for(condition: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_the_openapi_document_and_the_docs_need_no_network(stack: Stack) -> None:
    with stack.client(None) as client:
        document = client.get("/openapi.json").json()
        docs = client.get("/docs").text
        assert client.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
    assert {"Document", "Transaction", "Product", "Decision", "IngestResponse"} <= set(document["components"]["schemas"])
    ingest = document["paths"]["/v1/documents"]["post"]
    assert ingest["requestBody"]["content"]["application/x-ndjson"]["schema"]["$ref"].endswith("/Document")
    assert {"202", "401", "403", "413", "422", "429", "503"} <= set(ingest["responses"])
    assert "/v1/transactions/decide" in document["paths"] and "/v1/transactions/{item_id}" in document["paths"]
    assert "swagger-ui-bundle.js" in docs and "http://" not in docs and "https://" not in docs


def test_a_request_without_a_valid_key_is_refused(stack: Stack) -> None:
    with stack.client(None) as client:
        for headers in ({}, {"Authorization": "Bearer not-a-key"},
                        {"Authorization": "Bearer slk_0123456789abcdef_" + "A" * 43}):
            response = client.post("/v1/documents", json={"id": "d", "text": "x"}, headers=headers)
            assert response.status_code == 401, response.text
            assert response.headers["www-authenticate"] == "Bearer"
        assert client.get("/v1/documents/d").status_code == 401


def test_a_key_uses_only_its_kinds_and_its_producers(stack: Stack) -> None:
    with stack.client("documents") as client:
        assert client.post("/v1/transactions/decide", json=transaction("t-403")).status_code == 403
        assert client.get("/v1/transactions/t-403").status_code == 403
    with stack.client("shop-transactions") as client:  # the key allows it; producer shop may send products only
        response = client.post("/v1/transactions", json=transaction("t-403"))
        assert response.status_code == 403 and "shop" in response.json()["detail"]


def test_ingest_answers_an_id_and_a_status_per_item(stack: Stack) -> None:
    with stack.client() as client:
        one = client.post("/v1/documents", json={"id": "ingest-1", "text": "Invoice from Acme Corp."})
        assert one.status_code == 202, one.text
        assert one.json()["accepted"] == 1 and one.json()["rejected"] == 0
        assert [(item["position"], item["id"], item["status"], item["errors"]) for item in one.json()["items"]] == [
            (1, "ingest-1", "accepted", [])]
        assert len(one.json()["items"][0]["message_id"]) == 36
        several = client.post("/v1/documents", content=ndjson(
            {"id": "ingest-2", "text": "Dear Alice, your order shipped."}, b"{not json",
            {"id": "ingest-3", "text": "   "}, {"id": "ingest-4", "text": "ok", "colour": "red"}),
            headers={"Content-Type": "application/x-ndjson"})
        assert several.status_code == 202, several.text
        items = several.json()["items"]
        assert [(item["id"], item["status"]) for item in items] == [
            ("ingest-2", "accepted"), (None, "rejected"), ("ingest-3", "rejected"), ("ingest-4", "rejected")]
        assert items[1]["errors"][0]["reason"].startswith("line 2 is not valid JSON")
        assert items[2]["errors"] == [{"field": "text", "reason": "is empty"}]
        assert items[3]["errors"][0]["field"] == "colour"
        invalid = client.post("/v1/transactions", json=transaction("bad-1", amount="lots", currency="euro"))
        assert invalid.status_code == 422
        assert {error["field"] for error in invalid.json()["items"][0]["errors"]} == {"amount", "currency"}
        assert client.post("/v1/documents", content=b"{oops").status_code == 422
    rejected = wait_for(lambda: [row for row in stack.store.rejections(kind="documents") if row.item_id == "ingest-3"])
    assert rejected[0].source == "producer" and rejected[0].producer == "erp" and rejected[0].field == "text"


def test_too_large_is_413(stack: Stack) -> None:
    with stack.client() as client:
        body = ndjson(*({"id": f"big-{n}", "text": "x" * 1000} for n in range(80)))
        assert len(body) > MAX_BODY_BYTES
        response = client.post("/v1/documents", content=body, headers={"Content-Type": "application/x-ndjson"})
        assert response.status_code == 413 and "MAX_BODY_BYTES" in response.json()["detail"]
        response = client.post("/v1/documents", json={"id": "long-1", "text": "y" * (MAX_DOCUMENT_CHARS + 1)})
        assert response.status_code == 413
        assert response.json()["items"][0]["status"] == "too_large"
        assert "SLIMLINE_MAX_DOCUMENT_CHARS" in response.json()["items"][0]["errors"][0]["reason"]


def test_a_key_over_its_rate_limit_gets_429_with_retry_after(stack: Stack) -> None:
    with stack.client("limited") as client:
        statuses = [client.post("/v1/documents", json={"id": f"rate-{n}", "text": "hello"}) for n in range(4)]
    assert [response.status_code for response in statuses] == [202, 202, 202, 429]
    assert 1 <= int(statuses[-1].headers["retry-after"]) <= 60


def test_a_full_queue_gets_429_with_retry_after(stack: Stack) -> None:
    """Nothing consumes products here: the queue fills up to SLIMLINE_MAX_QUEUE_LENGTH."""
    products = [{"id": f"p-{n}", "name": f"Kettle {n}", "languages": ["en"]} for n in range(MAX_QUEUE_LENGTH)]
    with stack.client() as client:
        first = client.post("/v1/products", content=ndjson(*products), headers={"Content-Type": "application/x-ndjson"})
        assert first.status_code == 202 and first.json()["accepted"] == MAX_QUEUE_LENGTH
        full = client.post("/v1/products", json={"id": "p-extra", "name": "Toaster", "languages": ["en"]})
    assert full.status_code == 429 and int(full.headers["retry-after"]) >= 1
    assert [(item["id"], item["status"]) for item in full.json()["items"]] == [("p-extra", "not_sent")]
    assert stack.queue_length("products") == MAX_QUEUE_LENGTH


def _stored(stack: Stack, item_id: str) -> dict[str, Any]:
    return wait_for(lambda: stack.store.current_results(Kind.transactions, item_ids=[item_id]))[0]


def _same_decision(stored: dict[str, Any], decision: dict[str, Any]) -> None:
    assert stored["message_id"] == decision["message_id"]
    assert (stored["result"]["action"], stored["result"]["score"]) == (decision["outcome"], decision["score"])
    assert stored["result"]["rule_set_version"] == decision["rule_set_version"]
    assert [rule["code"] for rule in stored["result"]["rules_fired"]] == [rule["code"] for rule in decision["rules_fired"]]


def test_a_decision_is_made_in_the_request_and_a_worker_stores_the_same_one(stack: Stack) -> None:
    with stack.client() as client:
        response = client.post("/v1/transactions/decide", json=transaction("decide-1"))
        assert response.status_code == 200, response.text
        decision = response.json()
        assert decision["decided_in"] == "gateway" and decision["stored"] is False and decision["rules_only"] is False
        assert decision["outcome"] in ("allow", "review", "block") and decision["decided_by"] == "rules+model"
        assert isinstance(decision["score"], float)
        assert decision["reason_codes"] == [rule["code"] for rule in decision["rules_fired"]] + [
            reason["code"] for reason in decision["model_reasons"]]
        stored = _stored(stack, "decide-1")
        _same_decision(stored, decision)
        assert stored["producer"] == "erp"  # signed by the gateway as the key's producer, verified by the worker
        # The account features count a transaction once: a resend gets the same decision, and stores nothing new.
        again = client.post("/v1/transactions/decide", json=transaction("decide-1"))
        assert again.status_code == 200 and (again.json()["outcome"], again.json()["score"]) == (
            decision["outcome"], decision["score"])
        # The next payment of the account sees the first one in its features.
        later = client.post("/v1/transactions/decide", json=transaction("decide-3", timestamp="2026-03-02T10:16:00Z"))
        assert later.status_code == 200 and later.json()["outcome"] in ("allow", "review", "block")
        _same_decision(_stored(stack, "decide-3"), later.json())
        assert _stored(stack, "decide-3")["result"]["features"]["count_10m"] == 1
        result = client.get("/v1/transactions/decide-1").json()
        # Valid by the contract, refused by the pipeline: 422 with the reason, and the worker stores the refusal.
        future = client.post("/v1/transactions/decide", json=transaction("decide-2", timestamp="2099-01-01T00:00:00Z"))
        assert future.status_code == 422 and future.json()["items"][0]["errors"][0]["field"] == "timestamp"
        assert client.get("/v1/transactions/no-such-id").status_code == 404
    assert [version["version"] for version in result["versions"]] == [1]  # the resend added nothing
    assert result["current"]["result"]["action"] == decision["outcome"]


def test_decisions_go_on_while_no_transactions_worker_runs_and_are_stored_once_one_does(stack: Stack) -> None:
    os.killpg(stack.transactions.process.pid, signal.SIGSTOP)  # type: ignore[union-attr]
    try:
        with stack.client() as client:
            response = client.post("/v1/transactions/decide", json=transaction("no-worker-1", country="KP"))
    finally:
        os.killpg(stack.transactions.process.pid, signal.SIGCONT)  # type: ignore[union-attr]
    assert response.status_code == 200, response.text
    decision = response.json()
    assert decision["decided_in"] == "gateway" and decision["decided_by"] == "rules+model"
    assert decision["outcome"] == "block" and "BLOCKED_COUNTRY" in decision["reason_codes"]
    _same_decision(_stored(stack, "no-worker-1"), decision)


def test_a_promoted_rule_version_reaches_the_gateways_decisions(stack: Stack) -> None:
    from workers.console import rule_drafts
    from workers.transactions.rules import DEFAULT_RULES_FILE, database_version

    document = rule_drafts.edit_rule(DEFAULT_RULES_FILE.read_text(), code="LARGE_AMOUNT", action="block",
                                     description="large", when="amount >= 40", original_code="LARGE_AMOUNT")
    draft = stack.store.add_rule_draft(document, rule_drafts.sha256(document), None, "LARGE_AMOUNT at 40",
                                       author="rita")
    stack.store.record_backtest(draft["id"], {"decisions": 0}, actor="rita")
    stack.store.decide_rule_draft(draft["id"], approver="abe", promote=True, note=None)
    version = database_version(draft["id"], draft["sha256"])
    time.sleep(RULES_REFRESH_SECONDS * 2.5)
    with stack.client() as client:
        decision = client.post("/v1/transactions/decide", json=transaction("promoted-1", account_id="acct-p")).json()
    assert decision["rule_set_version"] == version and decision["outcome"] == "block"
    assert "LARGE_AMOUNT" in decision["reason_codes"]
    _same_decision(_stored(stack, "promoted-1"), decision)


def test_deciding_in_the_worker_answers_with_the_stored_decision_or_rules_only_at_the_deadline(stack: Stack) -> None:
    with stack.client(gateway=stack.worker_gateway) as client:
        response = client.post("/v1/transactions/decide", json=transaction("in-worker-1", account_id="acct-w"))
    assert response.status_code == 200, response.text
    decision = response.json()
    assert decision["decided_in"] == "worker" and decision["stored"] is True and decision["rules_only"] is False
    stored = stack.store.current_results(Kind.transactions, item_ids=["in-worker-1"])  # committed before the answer
    _same_decision(stored[0], decision)

    os.killpg(stack.transactions.process.pid, signal.SIGSTOP)  # type: ignore[union-attr]
    try:
        with stack.client(gateway=stack.worker_gateway) as client:
            started = time.monotonic()
            response = client.post("/v1/transactions/decide", json=transaction("fallback-1", country="KP"))
            seconds = time.monotonic() - started
            metrics = client.get("/metrics").text
    finally:
        os.killpg(stack.transactions.process.pid, signal.SIGCONT)  # type: ignore[union-attr]
    assert response.status_code == 200, response.text
    decision = response.json()
    assert decision["rules_only"] is True and decision["stored"] is False and decision["score"] is None
    assert decision["decided_in"] == "rules_only"
    assert decision["outcome"] == "block" and "BLOCKED_COUNTRY" in decision["reason_codes"]
    assert str(DEADLINE_MS) in decision["fallback_reason"]
    assert DEADLINE_MS / 1000 <= seconds < DEADLINE_MS / 1000 + 2
    assert 'slimline_gateway_decisions_total{source="rules_only"} 1.0' in metrics
    # The message stayed queued: once the worker runs again, its decision is stored as usual.
    stored = _stored(stack, "fallback-1")
    assert stored["result"]["action"] == "block" and stored["result"]["decided_by"] == "rules+model"


def test_health_and_metrics(stack: Stack) -> None:
    with stack.client(None) as client:
        health = client.get("/health")
        metrics = client.get("/metrics").text
    assert health.status_code == 200 and health.json() == {"ready": True, "problems": []}
    assert 'slimline_gateway_requests_total{route="/v1/documents",status="202"}' in metrics
    assert 'slimline_queue_depth{queue="documents.urgent"}' in metrics
    assert 'slimline_gateway_decisions_total{source="gateway"}' in metrics


def test_api_keys_are_created_shown_once_listed_and_revoked_with_the_cli(stack: Stack,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    code, output = cli(stack, monkeypatch, "api-keys", "create", "erp", "--kinds", "documents", "--name", "back office")
    assert code == 0, output
    key = next(line for line in output.splitlines() if line.startswith("slk_"))
    _, key_id, secret = key.split("_", 2)
    assert cli(stack, monkeypatch, "api-keys", "create", "erp", "--kinds", "documents", "--rate-limit", "often")[0] == 2
    assert cli(stack, monkeypatch, "api-keys", "create", "nobody", "--kinds", "documents")[0] == 2  # no signing key
    assert cli(stack, monkeypatch, "api-keys", "create", "shop", "--kinds", "documents")[0] == 2  # shop: products only
    code, listed = cli(stack, monkeypatch, "api-keys", "list")
    assert key_id in listed and secret not in listed
    stored = stack.store.api_key(key_id)
    assert stored is not None and secret not in json.dumps(stored, default=str)
    with httpx.Client(base_url=stack.gateway.url, headers={"Authorization": f"Bearer {key}"}) as client:
        assert client.post("/v1/documents", json={"id": "cli-1", "text": "hello"}).status_code == 202
        assert cli(stack, monkeypatch, "api-keys", "revoke", key_id)[0] == 0
        assert client.post("/v1/documents", json={"id": "cli-2", "text": "hello"}).status_code == 401
    assert cli(stack, monkeypatch, "api-keys", "revoke", key_id)[0] == 1
    actions = [row["action"] for row in stack.store.audit_rows() if row["detail"].get("key_id") == key_id]
    assert actions == ["api_key.create", "api_key.revoke"]


def test_an_urgent_document_goes_ahead_of_the_bulk_backlog(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """No worker consumes the bulk documents queue here: an urgent document still gets its result at once."""
    with stack.client() as client:
        backlog = [{"id": f"bulk-{n}", "text": f"Routine letter number {n}."} for n in range(10)]
        assert client.post("/v1/documents", content=ndjson(*backlog),
                           headers={"Content-Type": "application/x-ndjson"}).status_code == 202
        waiting = stack.queue_length("documents")
        text = "Patient reports chest pain and shortness of breath since this morning; call Dr Alice Martin."
        response = client.post("/v1/documents?priority=urgent&wait=true", json={"id": "urgent-1", "text": text})
        assert response.status_code == 200, response.text
        item = response.json()["items"][0]
        assert item["status"] == "stored" and item["tier"] == "compact"
        assert item["result"]["language"] == "en"
        assert {"SYMPTOM", "PERSON"} <= {entity["label"] for entity in item["result"]["entities"]}
        assert stack.queue_length("documents") == waiting  # the backlog is still there, untouched
        resent = client.post("/v1/documents?priority=urgent&wait=true", json={"id": "urgent-1", "text": text})
        changed = client.post("/v1/documents?priority=urgent&wait=true", json={"id": "urgent-1", "text": text + " Urgent."})
        assert resent.status_code == 200 and changed.status_code == 200
        result = client.get("/v1/documents/urgent-1").json()
    assert [version["version"] for version in result["versions"]] == [1, 2]  # same content: nothing new
    assert result["current"]["version"] == 2 and result["current"]["result"]["text_chars"] == len(text) + 8
    code, output = cli(stack, monkeypatch, "status")
    assert code == 0, output
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in output.splitlines()
            if line.count("│") == 3}
    assert rows["queue documents.urgent"] == "0" and rows["workers on documents.urgent"] == "1"
    assert rows["workers on documents"] == "0"


def test_every_process_stayed_within_its_redis_acl(stack: Stack) -> None:
    assert stack.redis.denials() == []


def test_with_redis_down_the_gateway_answers_503_and_says_why(stack: Stack) -> None:
    stack.redis.stop()
    try:
        with stack.client() as client:
            started = time.monotonic()
            assert client.post("/v1/documents", json={"id": "down-1", "text": "hello"}).status_code == 503
            assert client.post("/v1/transactions/decide", json=transaction("down-2")).status_code == 503
            assert time.monotonic() - started < 10
            health = client.get("/health")
        assert health.status_code == 503 and any("broker" in problem for problem in health.json()["problems"])
    finally:
        stack.redis.start()
    with stack.client() as client:
        assert wait_for(lambda: client.post("/v1/documents", json={"id": "down-1", "text": "hello"}).status_code == 202,
                        timeout=30)
