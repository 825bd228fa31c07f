"""The outcome store on a real SQLite database: idempotent writes, one outcome per item."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas import Kind
from workers.db.engine import migrate
from workers.db.store import Outcomes, OutcomeStore


@pytest.fixture
def store(tmp_path: Path) -> OutcomeStore:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate(url)
    return OutcomeStore.from_url(url)


def _result(document_id: str, message_id: str) -> dict:
    return {"document_id": document_id, "language": "en", "language_score": 0.9, "language_model": "x",
            "entities": [], "text_chars": 1, "model": "m", "model_version": "1", "batch_size": 1,
            "batch_seconds": 0.1, "attempt": 1, "message_id": message_id, "producer": None, "worker": "w"}


def _dead_letter(document_id: str, message_id: str, error: str = "boom") -> dict:
    return {"message_id": message_id, "kind": "documents", "item_id": document_id, "producer": None,
            "payload": {"id": document_id}, "error": error, "attempts": 3}


def test_a_result_resolves_the_items_dead_letter(store: OutcomeStore) -> None:
    store.save(Kind.documents, Outcomes(dead_letters=[_dead_letter("d1", "m1")]))
    store.save(Kind.documents, Outcomes(results=[_result("d1", "m1")]))
    assert store.counts() == {"document_results": 1, "rejections": 0, "dead_letters": 0}


def test_no_dead_letter_for_an_item_that_already_has_a_result(store: OutcomeStore) -> None:
    store.save(Kind.documents, Outcomes(results=[_result("d1", "m1")]))
    store.save(Kind.documents, Outcomes(dead_letters=[_dead_letter("d1", "m1")]))
    assert store.counts() == {"document_results": 1, "rejections": 0, "dead_letters": 0}


def test_writes_are_idempotent_and_a_failing_replay_reopens_its_dead_letter(store: OutcomeStore) -> None:
    for _ in range(2):
        store.save(Kind.documents, Outcomes(results=[_result("d1", "m1"), _result("d1", "m1b")],
                                            dead_letters=[_dead_letter("d2", "m2")]))
    assert store.counts() == {"document_results": 1, "rejections": 0, "dead_letters": 1}
    store.mark_replayed(["m2"])
    assert store.dead_letters() == []
    store.save(Kind.documents, Outcomes(dead_letters=[_dead_letter("d2", "m2", error="again")]))
    [letter] = store.dead_letters()
    assert letter.error == "again" and letter.replayed_at is None
