"""The `slimline` command line, run as a user runs it: a subprocess with settings in the environment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import Deployment
from tests.support.corpus import synthetic_documents
from tests.support.poison import MARKER
from tests.support.services import REPO_ROOT
from workers.db.models import AuditEvent, Result


def slimline(deployment: Deployment, *args: str, stdin: bytes | None = None,
             timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workers.cli", *args], env=deployment.env(), cwd=REPO_ROOT,
                          input=stdin.decode() if stdin else None, capture_output=True, text=True, timeout=timeout)


def _write_jsonl(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_enqueue_sends_good_lines_and_reports_bad_ones_by_line_number(sqlite_deployment: Deployment) -> None:
    deployment = sqlite_deployment
    good = synthetic_documents(30, seed=40)
    lines = [json.dumps(document).encode() for document in good]
    lines.insert(3, b'{"id": "broken", "text": "caf\xe9"}')  # Latin-1, not UTF-8
    lines.insert(7, b'{"id": "half", ')
    lines.insert(11, b'{"id": "no-text"}')
    source = _write_jsonl(deployment.tmp_path / "in.jsonl", lines)

    enqueued = slimline(deployment, "enqueue", "documents", str(source))

    assert enqueued.returncode == 4, enqueued.stderr  # some rejected
    assert "30 enqueued" in enqueued.stderr and "3 rejected" in enqueued.stderr
    assert "line 4: line: not valid UTF-8" in enqueued.stderr
    assert "line 8: line: not valid JSON" in enqueued.stderr
    assert "line 12 (id no-text): text: Field required" in enqueued.stderr

    deployment.start_worker()
    assert slimline(deployment, "drain", "--timeout", "120").returncode == 0
    listed = slimline(deployment, "results", "documents", "--format", "jsonl")
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(row["item_id"] for row in rows) == sorted(document["id"] for document in good)
    status = slimline(deployment, "status")
    counts = {cells[0]: cells[1] for line in status.stdout.splitlines()
              if len(cells := [cell.strip() for cell in line.strip("│ ").split("│")]) == 2}
    assert counts["documents results"] == "30" and counts["queue documents"] == "0"
    assert counts["rejections (by producers)"] == "3"
    assert counts["workers"] == "1" and counts["workers on documents"] == "1"


def test_enqueue_reads_standard_input(sqlite_deployment: Deployment) -> None:
    documents = synthetic_documents(5, seed=41)
    stdin = b"\n".join(json.dumps(document).encode() for document in documents)
    result = slimline(sqlite_deployment, "enqueue", "documents", "-", stdin=stdin)
    assert result.returncode == 0 and "5 enqueued" in result.stderr
    assert sqlite_deployment.broker.llen("documents") == 5


def test_drain_fails_when_work_is_not_done_in_time(sqlite_deployment: Deployment) -> None:
    sqlite_deployment.enqueue(synthetic_documents(3, seed=42))  # and no worker
    result = slimline(sqlite_deployment, "drain", "--timeout", "1")
    assert result.returncode == 1
    assert "timed out" in result.stderr


def test_a_full_queue_refuses_more_work_with_a_clear_error(sqlite_deployment: Deployment) -> None:
    deployment = sqlite_deployment
    deployment.extra_env["SLIMLINE_MAX_QUEUE_LENGTH"] = "100"
    source = _write_jsonl(deployment.tmp_path / "many.jsonl",
                          [json.dumps(document).encode() for document in synthetic_documents(700, seed=43)])
    result = slimline(deployment, "enqueue", "documents", str(source))
    assert result.returncode == 3
    assert "holds 500 messages" in result.stderr and "SLIMLINE_MAX_QUEUE_LENGTH=100" in result.stderr
    assert deployment.broker.llen("documents") == 500


def test_dead_letters_can_be_listed_and_replayed(sqlite_deployment: Deployment) -> None:
    deployment = sqlite_deployment
    deployment.extra_env |= {"SLIMLINE_PLUGINS": '["tests.support.poison"]',
                             "SLIMLINE_DOCUMENTS__ENTITIES": "entities.poisoned_for_tests",
                             "SLIMLINE_PRODUCER_ID": "ops-team"}
    documents = synthetic_documents(10, seed=44)
    documents[4]["text"] += f" {MARKER}"
    deployment.enqueue(documents)
    deployment.start_worker()
    deployment.drain()

    listed = slimline(deployment, "dlq", "list")
    assert documents[4]["id"] in listed.stdout
    [letter] = deployment.store.dead_letters()

    replayed = slimline(deployment, "dlq", "replay", letter.message_id)
    assert replayed.returncode == 0 and "replayed 1" in replayed.stderr
    deployment.drain()
    # Still poisonous: the same dead letter is reopened, with a fresh attempt count; nothing is doubled.
    [again] = deployment.store.dead_letters()
    assert again.message_id == letter.message_id and again.attempts == 3 and again.replayed_at is None
    assert deployment.store.count(Result) == 9
    with deployment.store.sessions() as session:
        actions = [(event.actor, event.action) for event in session.scalars(select(AuditEvent))]
    assert ("ops-team", "dlq.replay") in actions



def test_an_error_message_is_printed_verbatim_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Brackets in a message are not rich markup (they were swallowed, and '[/x]' crashed) and a long path
    is not broken by a newline."""
    from workers.cli.common import print_error

    message = "field items[0].tags must be one of [a, b]; see [/x] in " + "/very/long/path" * 10 + "/bad.jsonl:2"
    print_error(message)
    assert capsys.readouterr().err == f"error: {message}\n"
