"""The outcome store on a real SQLite database: idempotent writes, one outcome per item."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
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


def _result(document_id: str, message_id: str, content: str = "c1", tier: str = "compact",
            sent_at: datetime | None = None) -> dict:
    return {"item_id": document_id, "content_hash": content, "tier": tier, "review_status": None,
            "result": {"language": "en", "entities": []}, "model": "m", "model_version": "1", "batch_size": 1,
            "batch_seconds": 0.1, "attempt": 1, "message_id": message_id, "producer": None, "worker": "w",
            "sent_at": sent_at}


def _dead_letter(document_id: str, message_id: str, error: str = "boom", content: str = "c1") -> dict:
    return {"message_id": message_id, "kind": "documents", "item_id": document_id, "producer": None,
            "payload": {"id": document_id}, "error": error, "attempts": 3, "content_hash": content}


def _counts(store: OutcomeStore) -> dict[str, int]:
    counts = store.counts()
    return {"results": counts.get("documents results", 0), "dead_letters": counts["dead letters"],
            "versions": len(store.history(Kind.documents))}


def test_a_result_resolves_the_items_dead_letter(store: OutcomeStore) -> None:
    store.save(Kind.documents, Outcomes(dead_letters=[_dead_letter("d1", "m1")]))
    store.save(Kind.documents, Outcomes(results=[_result("d1", "m1")]))
    assert _counts(store) == {"results": 1, "dead_letters": 0, "versions": 1}


def test_no_dead_letter_for_an_item_that_already_has_a_result(store: OutcomeStore) -> None:
    store.save(Kind.documents, Outcomes(results=[_result("d1", "m1")]))
    store.save(Kind.documents, Outcomes(dead_letters=[_dead_letter("d1", "m1")]))
    assert _counts(store) == {"results": 1, "dead_letters": 0, "versions": 1}


def test_writes_are_idempotent_and_a_failing_replay_reopens_its_dead_letter(store: OutcomeStore) -> None:
    for _ in range(2):
        store.save(Kind.documents, Outcomes(results=[_result("d1", "m1"), _result("d1", "m1b")],
                                            dead_letters=[_dead_letter("d2", "m2")]))
    assert _counts(store) == {"results": 1, "dead_letters": 1, "versions": 1}
    store.mark_replayed(["m2"])
    assert store.dead_letters() == []
    store.save(Kind.documents, Outcomes(dead_letters=[_dead_letter("d2", "m2", error="again")]))
    [letter] = store.dead_letters()
    assert letter.error == "again" and letter.replayed_at is None


def test_a_resend_with_the_same_content_adds_nothing(store: OutcomeStore) -> None:
    store.save(Kind.documents, Outcomes(results=[_result("d1", "m1")]))
    store.save(Kind.documents, Outcomes(results=[_result("d1", "m2")]))  # a resend: new message, same content
    assert _counts(store) == {"results": 1, "dead_letters": 0, "versions": 1}


def test_changed_content_becomes_the_current_version_and_keeps_the_first(store: OutcomeStore) -> None:
    now = datetime.now(timezone.utc)
    store.save(Kind.documents, Outcomes(results=[_result("inv-7781", "m1", "first", sent_at=now)]))
    store.save(Kind.documents, Outcomes(results=[_result("inv-7781", "m2", "corrected", sent_at=now + timedelta(1))]))
    [current] = store.current_results(Kind.documents)
    assert (current["version"], current["content_hash"], current["message_id"]) == (2, "corrected", "m2")
    assert [(row["version"], row["is_current"]) for row in store.history(Kind.documents, "inv-7781")] == [
        (1, False), (2, True)]


def test_an_older_edit_arriving_late_is_kept_but_not_current(store: OutcomeStore) -> None:
    now = datetime.now(timezone.utc)
    store.save(Kind.documents, Outcomes(results=[_result("d1", "m2", "newer", sent_at=now)]))
    store.save(Kind.documents, Outcomes(results=[_result("d1", "m1", "older", sent_at=now - timedelta(1))]))
    [current] = store.current_results(Kind.documents)
    assert current["content_hash"] == "newer" and len(store.history(Kind.documents, "d1")) == 2


def test_an_escalated_result_supersedes_the_compact_one_without_erasing_it(store: OutcomeStore) -> None:
    store.save(Kind.documents, Outcomes(results=[_result("d1", "m1")]))
    store.save(Kind.documents, Outcomes(results=[_result("d1", "m1e", tier="escalated")]))
    store.save(Kind.documents, Outcomes(results=[_result("d1", "m1")]))  # a late redelivery of the compact one
    [current] = store.current_results(Kind.documents)
    assert current["tier"] == "escalated"
    assert [row["tier"] for row in store.history(Kind.documents, "d1")] == ["compact", "escalated"]


def test_an_escalated_rewrite_does_not_supersede_what_a_person_approved(store: OutcomeStore) -> None:
    store.save(Kind.products, Outcomes(results=[_result("p1", "m1") | {"review_status": "draft"}]))
    store.review(Kind.products, "p1", actor="editor", review_status="approved")
    store.save(Kind.products, Outcomes(results=[_result("p1", "m1e", tier="escalated") | {"review_status": "draft"}]))
    [current] = store.current_results(Kind.products)
    assert (current["tier"], current["review_status"]) == ("compact", "approved")
    assert [row["tier"] for row in store.history(Kind.products, "p1")] == ["compact", "escalated"]
    # New facts from the producer still make a new current draft.
    later = datetime.now(timezone.utc) + timedelta(minutes=1)
    store.save(Kind.products, Outcomes(results=[_result("p1", "m2", content="c2", sent_at=later)]))
    assert store.current_results(Kind.products)[0]["content_hash"] == "c2"


def test_a_review_by_a_person_is_a_new_current_version_and_is_audited(store: OutcomeStore) -> None:
    store.save(Kind.documents, Outcomes(results=[_result("d1", "m1")]))
    reviewed = store.review(Kind.documents, "d1", actor="ana", review_status="resolved",
                            result={"classification": {"label": "invoice"}}, note="checked the letterhead")
    assert (reviewed["tier"], reviewed["version"], reviewed["is_current"]) == ("human", 2, True)
    status_only = store.review(Kind.documents, "d1", actor="ben", review_status="closed")
    assert status_only["version"] == 2 and status_only["review_status"] == "closed"
    with pytest.raises(LookupError):
        store.review(Kind.documents, "unknown", actor="ana", review_status="resolved")
