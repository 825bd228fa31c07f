"""Operating Slimline as a product (issue 6): inspections that touch nothing, nothing left behind by a
finished run, an orderly Ctrl-C, versioned outcomes, errors a person can act on, exit codes a script
can trust, and leases for work that takes long. Real Redis, real workers, real databases."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Deployment
from tests.support.corpus import synthetic_documents
from tests.support.services import REPO_ROOT
from tests.test_cli import slimline
from workers.db.models import Result
from workers.db.store import OutcomeStore
from workers.runtime.broker import FETCHING_LISTS
from workers.runtime.queues import in_flight
from workers.runtime.redis_server import RedisServer

SAMPLE = REPO_ROOT / "workers" / "documents" / "data" / "sample_documents.jsonl"


def _embedded_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SLIMLINE_")}
    return env | {"PYTHONPATH": str(REPO_ROOT)}


def _sample_ids() -> list[str]:
    ids = []
    for line in SAMPLE.read_text().splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        if item["text"].strip():
            ids.append(item["id"])
    return ids


def _keys_left_in(data_dir: Path) -> set[str]:
    """Start the run's Redis again on its files and list what a finished run left there."""
    with RedisServer(data_dir) as server:
        import redis

        client = redis.Redis.from_url(server.url)
        return {key.decode() for key in client.keys("*")}


def test_inspections_never_fetch_move_or_hold_a_message(sqlite_deployment: Deployment) -> None:
    deployment = sqlite_deployment
    deployment.start_worker()
    deployment.enqueue(synthetic_documents(5, seed=60))
    deployment.drain()
    for _ in range(3):
        assert slimline(deployment, "status").returncode == 0
        assert slimline(deployment, "health").returncode == 0
        assert slimline(deployment, "results", "documents").returncode == 0
    # Nothing held on behalf of a command that has exited, and no control reply left lying around.
    assert in_flight(deployment.broker) == 0
    assert not [key for key in deployment.broker.keys("*") if b"reply" in key]
    owners = {key.split(b":")[2] for key in deployment.broker.smembers(FETCHING_LISTS)}
    assert len(owners) <= 1  # the worker's own fetching list, nobody else's
    started = time.monotonic()
    drained = slimline(deployment, "drain", "--timeout", "8")
    assert drained.returncode == 0, drained.stderr
    assert time.monotonic() - started < 8
    assert "returned" not in deployment.workers[0].log_tail(200)  # the worker swept nothing back


def test_inspections_of_a_waiting_queue_leave_it_as_it_was(sqlite_deployment: Deployment) -> None:
    deployment = sqlite_deployment
    deployment.enqueue(synthetic_documents(7, seed=61))  # and no worker
    before = deployment.broker.lrange("documents", 0, -1)
    for command in (["status"], ["health"], ["drain", "--timeout", "1", "--worker-grace", "0.5"]):
        slimline(deployment, *command)
    assert deployment.broker.lrange("documents", 0, -1) == before
    assert in_flight(deployment.broker) == 0


def test_run_twice_prints_each_runs_results_and_leaves_nothing_behind(tmp_path: Path) -> None:
    """The README's run command, on a file and then on the bundled sample, in one data directory."""
    first = tmp_path / "first.jsonl"
    first.write_text("\n".join(json.dumps(d) for d in synthetic_documents(4, seed=62)) + "\n")
    runs = [subprocess.run([sys.executable, "-m", "workers.cli", "run", *args], cwd=tmp_path, env=_embedded_env(),
                           capture_output=True, text=True, timeout=300) for args in ([str(first)], [])]
    assert all(run.returncode == 0 for run in runs), runs[0].stderr[-2000:] + runs[-1].stderr[-2000:]
    sample = runs[1]
    assert "started a private Redis server" in sample.stderr
    assert "12 enqueued" in sample.stderr and "2 rejected" in sample.stderr
    assert "en-inv-2024-1093" in sample.stdout and "Hollybrook" in sample.stdout
    assert all(item_id in sample.stdout for item_id in _sample_ids())
    assert not any(document["id"] in sample.stdout for document in synthetic_documents(4, seed=62))
    # The workers' warm stop returned everything (the run's own safety net had nothing to do)...
    assert not any("still held" in run.stderr for run in runs)
    # ...and only kombu's queue bindings stay: no fetching list, no unacked entry, no presence, no reply queue.
    left = _keys_left_in(tmp_path / ".slimline" / "redis")
    assert {key for key in left if not key.startswith("_kombu.binding")} == set()


def test_ctrl_c_stops_run_in_order_with_one_calm_line_and_loses_nothing(tmp_path: Path) -> None:
    source = tmp_path / "many.jsonl"
    documents = synthetic_documents(3000, seed=63)
    source.write_text("\n".join(json.dumps(d) for d in documents) + "\n")
    stderr_path = tmp_path / "stderr.txt"
    with stderr_path.open("wb") as stderr_file:
        run = subprocess.Popen([sys.executable, "-m", "workers.cli", "run", str(source)], cwd=tmp_path,
                               env=_embedded_env(), stdout=subprocess.DEVNULL, stderr=stderr_file,
                               start_new_session=True)
    db = tmp_path / "slimline.db"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:  # interrupt mid-drain: everything accepted, some results stored
        time.sleep(0.5)
        if "3000 enqueued" not in stderr_path.read_text(errors="replace"):
            continue
        try:
            if OutcomeStore.from_url(f"sqlite:///{db}").count(Result) > 100:
                break
        except Exception:  # noqa: BLE001 - not migrated yet
            pass
    os.killpg(run.pid, signal.SIGINT)  # what a terminal does on Ctrl-C: the whole foreground group
    run.wait(timeout=120)
    text = stderr_path.read_text(errors="replace")
    assert run.returncode == 130, text[-2000:]
    assert "Traceback" not in text and "interrupted" in text
    assert len([line for line in text.splitlines() if "interrupted" in line or "Error" in line]) == 1
    worker_log = "".join(path.read_text() for path in (tmp_path / ".slimline").glob("worker-*.log"))
    assert "Couldn't ack" not in worker_log and "Traceback" not in worker_log
    # Nothing accepted is lost: every item is stored or back in the queue, none held in flight.
    stored = {row["item_id"] for row in OutcomeStore.from_url(f"sqlite:///{db}").iter_rows(Result)}
    with RedisServer(tmp_path / ".slimline" / "redis") as server:
        import redis

        client = redis.Redis.from_url(server.url)
        queued = {json.loads(__import__("base64").b64decode(json.loads(raw)["body"]))[0][0]["id"]
                  for raw in client.lrange("documents", 0, -1)}
        assert in_flight(client) == 0, worker_log[-4000:]
    assert stored | queued == {document["id"] for document in documents}


def test_a_corrected_document_becomes_a_new_current_version(deployment: Deployment) -> None:
    deployment.start_worker()
    first = {"id": "inv-7781", "text": "Invoice 7781 from Acme Corporation: EUR 1,200.00 due 3 May 2024."}
    corrected = first | {"text": "Invoice 7781 from Acme Corporation: EUR 1,250.00 due 3 May 2024."}
    deployment.enqueue([first])
    deployment.drain()
    deployment.enqueue([first])  # the same content again: a duplicate
    deployment.drain()
    deployment.enqueue([corrected])
    deployment.drain()
    current = json.loads(slimline(deployment, "results", "documents", "--format", "jsonl").stdout)
    assert current["version"] == 2 and "1,250.00" in [e["text"] for e in current["result"]["entities"]][0] + \
        json.dumps(current["result"])
    history = slimline(deployment, "results", "documents", "--history", "--format", "jsonl").stdout.splitlines()
    assert [(row["version"], row["is_current"]) for row in map(json.loads, history)] == [(1, False), (2, True)]


def test_expected_failures_print_one_line_and_a_documented_exit_code(sqlite_deployment: Deployment,
                                                                     tmp_path: Path) -> None:
    deployment = sqlite_deployment
    unreachable = dict(deployment.extra_env)
    deployment.extra_env["SLIMLINE_REDIS_URL"] = "redis://127.0.0.1:1/0"
    for command in (["status"], ["health"], ["drain"], ["enqueue", "documents", str(SAMPLE)]):
        result = slimline(deployment, *command)
        assert result.returncode == 6 and "cannot reach Redis at 127.0.0.1:1" in result.stderr, command
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) <= 3
    deployment.extra_env = unreachable

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    deployment.extra_env["SLIMLINE_DATABASE_URL"] = f"sqlite:///{elsewhere / 'slimline.db'}"
    for command in (["status"], ["results", "documents"], ["health"]):
        result = slimline(deployment, *command)
        assert result.returncode == 2 and "slimline migrate" in result.stderr, command
    assert not (elsewhere / "slimline.db").exists()  # no empty database left behind
    deployment.extra_env = unreachable

    missing = slimline(deployment, "run", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert "started a private Redis" not in missing.stderr


def test_enqueue_exit_codes_and_input_formats(sqlite_deployment: Deployment, tmp_path: Path) -> None:
    deployment = sqlite_deployment
    good = synthetic_documents(3, seed=64)
    array = tmp_path / "array.json"
    array.write_text(json.dumps(good))
    assert slimline(deployment, "enqueue", "documents", str(array)).returncode == 0
    csv = tmp_path / "docs.csv"
    csv.write_text("id,text\nd-1,Hello Alice\n")
    result = slimline(deployment, "enqueue", "documents", str(csv))
    assert result.returncode == 5 and "expected JSON Lines" in result.stderr
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(json.dumps(good[0] | {"id": "other"}) + "\n" + '{"id": "x"}\n')
    assert slimline(deployment, "enqueue", "documents", str(mixed)).returncode == 4
    listed = slimline(deployment, "rejections", "list")
    assert listed.returncode == 0 and "producer" in listed.stdout and "text" in listed.stdout


def test_drain_says_at_once_when_no_worker_consumes_waiting_work(sqlite_deployment: Deployment) -> None:
    sqlite_deployment.enqueue(synthetic_documents(3, seed=65))
    started = time.monotonic()
    result = slimline(sqlite_deployment, "drain", "--timeout", "600", "--worker-grace", "1")
    assert result.returncode == 7 and "no live worker consumes documents" in result.stderr
    assert time.monotonic() - started < 60


def test_workers_log_one_line_per_batch(sqlite_deployment: Deployment) -> None:
    worker = sqlite_deployment.start_worker()
    sqlite_deployment.enqueue(synthetic_documents(10, seed=66))
    sqlite_deployment.drain()
    lines = [line for line in worker.log_tail(400).splitlines() if "batch documents:" in line]
    assert lines and all("stored" in line and "rejected" in line and "retried" in line for line in lines)
    assert sum(int(line.split("batch documents: ")[1].split(" ")[0]) for line in lines) == 10


@pytest.mark.chaos
def test_a_batch_running_past_the_visibility_timeout_is_not_delivered_again(sqlite_deployment: Deployment) -> None:
    from tests.support.slow import MARKER, STARTED

    deployment = sqlite_deployment
    deployment.extra_env |= {"SLIMLINE_VISIBILITY_TIMEOUT_SECONDS": "4", "SLIMLINE_RESTORE_INTERVAL_SECONDS": "1",
                             "SLIMLINE_PLUGINS": '["tests.support.slow"]',
                             "SLIMLINE_DOCUMENTS__ENTITIES": "entities.slow_for_tests",
                             "SLIMLINE_TEST_SLOW_SECONDS": "14"}
    slow_worker = deployment.start_worker()
    sweeper = deployment.start_worker()  # another worker on the same Redis runs the restore sweep too
    documents = synthetic_documents(3, seed=67)
    documents[1]["text"] += f" {MARKER}"
    deployment.enqueue(documents)
    deployment.drain(timeout=120)
    logs = slow_worker.log_tail(1000) + sweeper.log_tail(1000)
    assert logs.count(STARTED) == 1  # processed once: never redelivered while it ran
    assert deployment.store.count(Result) == 3
