"""Products end to end through Redis and real workers: a description per language (model or template,
with its verdict), drafts for a person, a language no template covers rejected, and the delivery
guarantees on this queue: a worker killed mid-batch, a warm stop, a Redis restart and a database
outage lose and double nothing."""

from __future__ import annotations

import json
import time

import pytest

from schemas import Kind
from tests.conftest import Deployment
from tests.test_cli import slimline
from tests.support.services import REPO_ROOT, PostgresCluster

pytest.importorskip("llama_cpp", reason="the generator's llama.cpp build is installed by scripts/install-models.sh")

SAMPLE = REPO_ROOT / "workers" / "products" / "data" / "sample_products.jsonl"


def _products(count: int) -> list[dict]:
    products = [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]
    return [product for product in products if set(product["languages"]) <= {"en", "de", "fr", "es", "it"}][:count]


def test_each_product_gets_a_checked_description_per_language(sqlite_deployment: Deployment) -> None:
    deployment = sqlite_deployment
    deployment.start_worker(queues="products")
    products = _products(3)
    polish = products[0] | {"id": "needs-polish", "languages": ["en", "pl"]}
    deployment.enqueue([*products, polish], kind=Kind.products)
    deployment.drain(timeout=600)
    rows = {row["item_id"]: row for row in deployment.store.current_results(Kind.products)}
    assert set(rows) == {product["id"] for product in products}
    for product in products:
        row = rows[product["id"]]
        assert row["review_status"] == "draft"
        descriptions = row["result"]["descriptions"]
        assert set(descriptions) == set(product["languages"])
        for language, description in descriptions.items():
            assert description["text"].strip() and "{" not in description["text"]
            assert description["path"] in ("model", "template")
            if language != "en":  # the default model writes English only: the others are templates
                assert description["path"] == "template"
            if description["path"] == "model":
                assert description["verdict"] == "pass" and description["model_sha256"]
    [rejection] = deployment.store.rejections(kind="products")
    assert rejection.item_id == "needs-polish" and "pl" in rejection.reason
    listed = slimline(deployment, "results", "products")
    assert listed.returncode == 0 and products[0]["id"] in listed.stdout


def test_the_escalated_tier_rewrites_what_the_templates_wrote_as_a_new_version(sqlite_deployment: Deployment) -> None:
    """The compact tier writes templates only here and escalates; a `--tier escalated` worker writes the product
    again with its model and its result supersedes the compact one. The small shipped model stands in for the
    bigger escalated one (benchmarks/products_generation.py measures that one): this tests the path."""
    deployment = sqlite_deployment
    deployment.extra_env |= {
        "SLIMLINE_GENERATOR__LANGUAGES": "[]",  # compact: templates only, so every language is escalated
        "SLIMLINE_PRODUCTS__ESCALATE": "true",
        "SLIMLINE_PRODUCTS__ESCALATED_MODEL": "smollm2-135m",
        "SLIMLINE_PRODUCTS__ESCALATED_RUNTIME_TYPE": "q8_0",
        "SLIMLINE_PRODUCTS__ESCALATED_LANGUAGES": '["en", "de"]',
        "SLIMLINE_PRODUCTS__ESCALATED_MAX_NEW_TOKENS": '{"en": 40, "de": 40}',
        "SLIMLINE_GENERATOR__CONTEXT_TOKENS": "4096",
        "SLIMLINE_GENERATOR__THREADS": "1",
    }
    deployment.start_worker(queues="products")
    deployment.start_worker(queues="products", tier="escalated")
    [product] = [p | {"languages": ["en", "de", "fr"]} for p in _products(1)]
    deployment.enqueue([product], kind=Kind.products)
    deployment.drain(timeout=300)
    compact, escalated = deployment.store.history(Kind.products, product["id"])
    assert (compact["tier"], compact["review_status"], compact["is_current"]) == ("compact", "needs_review", False)
    assert compact["result"]["escalation"]["languages"] == ["en", "de"]  # fr: the escalated tier does not write it
    assert {d["path"] for d in compact["result"]["descriptions"].values()} == {"template"}
    assert (escalated["tier"], escalated["review_status"], escalated["is_current"]) == ("escalated", "draft", True)
    assert escalated["model"].startswith("SmolLM2-135M-Instruct") and "escalation" not in escalated["result"]
    descriptions = escalated["result"]["descriptions"]
    for language in ("en", "de"):  # the model tried; what failed the check fell back to the template
        assert descriptions[language]["attempts"] and descriptions[language]["path"] in ("model", "template")
    assert descriptions["fr"]["reasons"][0]["code"] == "language_not_supported_by_model"
    assert deployment.store.dead_letters() == []


def _wait_for_first_result(deployment: Deployment) -> None:
    deadline = time.monotonic() + 300
    while not deployment.store.current_results(Kind.products):
        assert time.monotonic() < deadline, "no product was stored"
        time.sleep(0.2)


def _assert_each_product_stored_once(deployment: Deployment, products: list[dict]) -> None:
    assert sorted(row["item_id"] for row in deployment.store.current_results(Kind.products)) == sorted(
        product["id"] for product in products)
    assert len(deployment.store.history(Kind.products)) == len(products)  # no item stored twice
    assert deployment.store.dead_letters() == []


@pytest.mark.chaos
def test_sigterm_and_a_redis_restart_on_the_products_queue_lose_and_double_nothing(
        sqlite_deployment: Deployment) -> None:
    deployment = sqlite_deployment
    products = _products(8)
    deployment.enqueue(products, kind=Kind.products)
    worker = deployment.start_worker(queues="products")
    _wait_for_first_result(deployment)
    assert worker.stop(timeout=300) == 0  # warm: the running batch finishes, the rest goes back at once
    deployment.start_worker(queues="products")
    deployment.redis_server.restart()
    deployment.drain(timeout=600)
    _assert_each_product_stored_once(deployment, products)


@pytest.mark.chaos
def test_killing_a_products_worker_mid_batch_loses_and_doubles_nothing(sqlite_deployment: Deployment) -> None:
    deployment = sqlite_deployment
    products = _products(8)
    deployment.enqueue(products, kind=Kind.products)
    worker = deployment.start_worker(queues="products")
    _wait_for_first_result(deployment)
    worker.kill_hard()
    deployment.start_worker(queues="products")
    deployment.drain(timeout=600)
    _assert_each_product_stored_once(deployment, products)


@pytest.mark.chaos
@pytest.mark.postgres
def test_a_database_outage_on_the_products_queue_delays_but_loses_nothing(postgres_deployment: Deployment,
                                                                         postgres: PostgresCluster) -> None:
    deployment = postgres_deployment
    products = _products(6)
    deployment.start_worker(queues="products")
    deployment.enqueue(products, kind=Kind.products)
    _wait_for_first_result(deployment)
    postgres.stop()
    time.sleep(10)
    postgres.start()
    deployment.drain(timeout=600)
    _assert_each_product_stored_once(deployment, products)
