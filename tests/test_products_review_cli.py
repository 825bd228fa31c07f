"""`slimline products review`: a person lists drafts, reads one, approves it or corrects a language;
every decision is stored as audited versions in a real SQLite database."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from schemas import Kind, Product
from workers.db.engine import migrate
from workers.db.models import AuditEvent
from workers.db.store import OutcomeStore
from workers.products.cli import app
from workers.products.pipeline import build_pipeline
from workers.settings import Settings, get_settings

SAMPLES = Path(__file__).parents[1] / "workers" / "products" / "data" / "sample_products.jsonl"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OutcomeStore]:
    url = f"sqlite:///{tmp_path / 'products.db'}"
    migrate(url)
    monkeypatch.setenv("SLIMLINE_DATABASE_URL", url)
    monkeypatch.setenv("SLIMLINE_PRODUCER_ID", "reviewer@test")
    get_settings.cache_clear()
    outcome_store = OutcomeStore.from_url(url)
    products = [Product.model_validate_json(line) for line in SAMPLES.read_text().splitlines()[:3]]
    pipeline = build_pipeline(Settings(generator={"languages": []}))  # templates: no model needed here
    rows = [{"item_id": product.id, "content_hash": hashlib.sha256(product.model_dump_json().encode()).hexdigest(),
             "tier": "compact", "review_status": result["review_status"], "result": result,
             "model": pipeline.model, "model_version": pipeline.model_version}
            for product, result in zip(products, pipeline(products), strict=True)]
    outcome_store.save_versions(Kind.products, rows)
    yield outcome_store
    get_settings.cache_clear()


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["review", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_list_shows_drafts_and_show_prints_every_language_with_its_path(store: OutcomeStore) -> None:
    code, output = _run("list")
    assert code == 0 and "ap-merino-crew" in output and "ap-trail-shorts" in output
    code, output = _run("show", "ap-merino-crew")
    assert code == 0
    assert "Gefertigt aus 100" in output and "template" in output and "untranslated: heather grey" in output


def test_approve_marks_the_current_version_approved_and_audits_it(store: OutcomeStore) -> None:
    code, _ = _run("approve", "ap-merino-crew", "--note", "checked")
    assert code == 0
    [row] = store.current_results(Kind.products, item_ids=["ap-merino-crew"])
    assert (row["review_status"], row["version"], row["note"]) == ("approved", 1, "checked")
    assert "ap-merino-crew" not in _run("list")[1]
    assert "ap-merino-crew" in _run("list", "--status", "approved")[1]


def test_an_edit_is_a_new_approved_human_version_that_keeps_the_draft(store: OutcomeStore) -> None:
    text = "Harbour Merino Crew Sweater von Nordvik: ein weicher Pullover aus 100 % Merinowolle in Grau."
    code, output = _run("edit", "ap-merino-crew", "--language", "de", "--text", text, "--actor", "ana")
    assert code == 0, output
    [current] = store.current_results(Kind.products, item_ids=["ap-merino-crew"])
    assert (current["version"], current["tier"], current["review_status"]) == (2, "human", "approved")
    german = current["result"]["descriptions"]["de"]
    assert (german["text"], german["path"], german["edited_by"]) == (text, "human", "ana")
    assert german["replaced"]["path"] == "template"
    assert current["result"]["descriptions"]["en"]["path"] == "template"  # other languages untouched
    assert [row["version"] for row in store.history(Kind.products, "ap-merino-crew")] == [1, 2]
    with store.sessions() as session:
        [event] = [e for e in session.query(AuditEvent).filter_by(action="review")]
    assert event.actor == "ana" and json.loads(json.dumps(event.detail))["edited"] is True


@pytest.mark.parametrize(("args", "code", "message"), [
    (("show", "no-such-product"), 1, "no stored description"),
    (("edit", "ap-merino-crew", "--language", "pl", "--text", "x"), 2, "has no 'pl' description"),
    (("edit", "ap-merino-crew", "--language", "de"), 2, "--text or with --file"),
])
def test_expected_failures_are_one_line_and_an_exit_code(store: OutcomeStore, args: tuple[str, ...], code: int,
                                                         message: str) -> None:
    exit_code, output = _run(*args)
    assert exit_code == code and message in output and "Traceback" not in output
