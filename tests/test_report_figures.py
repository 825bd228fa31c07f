"""The report's arithmetic on hand-made rows: how a batch's CPU is shared among languages, what a hosted LLM
would cost, which versions are compared with a person's, and how periods are read."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from workers.cli.common import CliError
from workers.cli.report import parse_moment
from workers.report import figures
from workers.report.settings import ReportSettings

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)
PRICES = ReportSettings(core_hour_price=3.6, llm_price_per_1k_tokens=0.002, llm_output_price_per_1k_tokens=0.004,
                        chars_per_token=4, llm_prompt_tokens={"documents": 100}, llm_output_tokens={"documents": 50})


def _batch(kind: str = "documents", size: int = 4, cpu: float = 2.0, languages: dict | None = None,
           input_chars: int = 4000) -> dict:
    return {"kind": kind, "tier": "compact", "model": "m", "model_version": "1", "started_at": T0, "size": size,
            "input_chars": input_chars, "cpu_seconds": cpu, "total_seconds": 2 * cpu, "languages": languages,
            **{f"{stage}_seconds": cpu / 3 for stage in figures.STAGES},
            **{f"{stage}_cpu_seconds": cpu / 3 for stage in figures.STAGES}}


def test_a_batch_cpu_is_shared_among_its_languages_and_what_has_none_was_rejected() -> None:
    batch = _batch(languages={"en": {"items": 2, "input_chars": 3000}, "fr": {"items": 1, "input_chars": 800}})
    groups = {g["language"]: g for g in figures.cost_groups([batch], [], PRICES)}
    assert set(groups) == {"all", "en", "fr", None}
    assert (groups["en"]["items"], groups["fr"]["items"], groups[None]["items"]) == (2, 1, 1)
    assert groups["en"]["cpu_seconds"] == pytest.approx(1.0) and groups[None]["cpu_seconds"] == pytest.approx(0.5)
    assert groups["all"]["cpu_seconds_per_1k"] == pytest.approx(500.0)  # 2 s for 4 items
    assert groups["all"]["cost_per_1k"] == pytest.approx(500.0 / 3600 * 3.6)
    # en: 1,500 characters a document = 375 tokens + 100 of instructions in, 50 out
    assert groups["en"]["llm_input_tokens_per_item"] == pytest.approx(475)
    assert groups["en"]["llm_cost_per_1k"] == pytest.approx(475 * 0.002 + 50 * 0.004)


def test_a_kind_without_languages_has_one_row_and_latency_percentiles() -> None:
    latencies = [{"kind": "transactions", "tier": "compact", "model": "m", "model_version": "1", "language": None,
                  "seconds": s, "stored_at": T0} for s in (0.1, 0.2, 0.3, 0.4, 10.0)]
    [group] = figures.cost_groups([_batch("transactions", size=5)], latencies, PRICES)
    assert group["language"] == "all" and group["items"] == 5
    assert group["latency_p50_seconds"] == pytest.approx(0.3) and group["latency_p95_seconds"] > 5


def _version(tier: str, label: str, content: str = "h1", language: str = "en", **result) -> dict:
    return {"tier": tier, "content_hash": content, "model_version": None if tier == "human" else "2",
            "result": {"language": language, "classification": {"label": label}, **result}}


def test_each_machine_version_of_the_reviewed_content_is_compared_with_the_person() -> None:
    reviewed = {
        "a": [_version("compact", "invoice"), _version("escalated", "order"), _version("human", "order")],
        "b": [_version("compact", "hr", language="fr"), _version("human", "hr", language="fr")],
        "c": [_version("compact", "hr", content="old"), _version("human", "order", content="new")],  # other content
    }
    accuracy = figures.class_accuracy(reviewed)
    rows = {(r["tier"], r["language"]): (r["reviewed"], r["correct"]) for r in accuracy["rows"]}
    assert rows == {("compact", "all"): (2, 1), ("compact", "en"): (1, 0), ("compact", "fr"): (1, 1),
                    ("escalated", "all"): (1, 1), ("escalated", "en"): (1, 1)}
    # The confusion matrix counts what was served: the escalated class for "a".
    assert accuracy["confusion"]["en"] == {"labels": ["order"], "matrix": [[1]]}


def test_entities_count_only_where_a_person_reviewed_them() -> None:
    served = [{"label": "ORG", "start": 0, "end": 4, "text": "Acme"}, {"label": "ORG", "start": 9, "end": 12,
                                                                        "text": "Bob"}]
    kept = [served[0], {"label": "PERSON", "start": 9, "end": 12, "text": "Bob"}]
    reviewed = {"a": [_version("compact", "x", entities=served), _version("human", "x", entities=kept,
                                                                            entities_reviewed=True)],
                "b": [_version("compact", "x", entities=served), _version("human", "x", entities=[])]}
    precision = figures.entity_precision(reviewed)
    assert precision["documents"] == 1
    rows = {row["label"]: row for row in precision["rows"]}
    assert rows["ORG"]["precision"] == 0.5 and rows["PERSON"]["recall"] == 0.0


def test_flag_precision_and_recall_from_analysts_labels() -> None:
    labelled = [{"review_status": "confirmed_fraud", "action": "block", "score": 0.9, "model_version": "1"},
                {"review_status": "dismissed", "action": "review", "score": 0.6, "model_version": "1"},
                {"review_status": "dismissed", "action": "review", "score": 0.5, "model_version": "1"},
                {"review_status": "confirmed_fraud", "action": "allow", "score": 0.2, "model_version": "1"}]
    flags = figures.flag_accuracy(labelled)
    assert flags["precision"] == pytest.approx(1 / 3) and flags["recall"] == pytest.approx(0.5)
    assert flags["average_precision"] == pytest.approx((1 + 0.5) / 2)


def test_the_timeline_takes_a_round_bucket_with_at_most_sixty_points() -> None:
    batches = [_batch() | {"started_at": T0 + timedelta(minutes=minute)} for minute in range(0, 120, 10)]
    timeline = figures.timeline(batches, [])
    assert timeline["bucket_seconds"] == 300
    assert sum(p["items"] for p in timeline["points"]) == 4 * len(batches)
    assert timeline["points"][0]["items_per_second"] == pytest.approx(4 / 300)


def test_periods_are_relative_or_iso_and_bad_ones_are_refused() -> None:
    assert parse_moment("24h", T0) == T0 - timedelta(hours=24)
    assert parse_moment("2024-04-01", T0) == datetime(2024, 4, 1, tzinfo=timezone.utc)
    with pytest.raises(CliError):
        parse_moment("yesterday", T0)
