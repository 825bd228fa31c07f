"""What users run is the installed wheel (or the image built from it), not this checkout: the wheel holds every
file of the product, and installed on its own — no editable install, no checkout on the path — it runs a
document, a transaction and a product through real workers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.services import REPO_ROOT, WorkerProcess
from workers.runtime.redis_server import RedisServer

PACKAGED_TREES = ("schemas", "tasks", "workers")


def tracked_files() -> list[str]:
    """What a clean clone holds (files git tracks, and new ones it does not ignore)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    return [path for path in listed if (REPO_ROOT / path).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of what git tracks, as from a clean clone (an in-tree build/ folder of an earlier
    build would otherwise slip stale files into the wheel)."""
    if not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    source = tmp_path_factory.mktemp("clone")
    for path in tracked_files():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / path, source / path)
    out = tmp_path_factory.mktemp("dist")
    # No isolated build environment: the test extra brings the setuptools pyproject.toml asks for.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "--wheel-dir", str(out), str(source)], check=True, capture_output=True, timeout=600)
    [built] = out.glob("slimline-*.whl")
    return built


def test_the_wheel_holds_every_file_of_the_product_that_git_tracks(wheel: Path) -> None:
    tracked = [path for path in tracked_files() if path.split("/")[0] in PACKAGED_TREES]
    with zipfile.ZipFile(wheel) as archive:
        packaged = set(archive.namelist())
    missing = [path for path in tracked if path not in packaged]
    assert missing == []
    entry_points = zipfile.ZipFile(wheel).read(next(name for name in packaged if name.endswith("entry_points.txt")))
    assert b"[slimline_pipelines]" in entry_points and b"[slimline_components]" in entry_points


def slimline_outside_the_checkout(venv: Path, env: dict[str, str], cwd: Path, *args: str,
                                  stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / "slimline"), *args], env=env, cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.install
def test_the_installed_wheel_runs_a_document_a_transaction_and_a_product(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    installed = subprocess.run([str(REPO_ROOT / "scripts" / "install.sh"), str(venv), str(wheel)],
                               capture_output=True, text=True, timeout=1800)
    assert installed.returncode == 0, installed.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SLIMLINE_", "PYTHON"))}
    located = subprocess.run([str(venv / "bin" / "python"), "-c", "import workers, tasks; print(workers.__file__)"],
                             env=env, cwd=elsewhere, capture_output=True, text=True, check=True)
    assert Path(located.stdout.strip()).is_relative_to(venv), located.stdout

    redis_server = RedisServer(tmp_path / "redis").start()
    env |= {"SLIMLINE_REDIS_URL": redis_server.url, "SLIMLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'wheel.db'}",
            "SLIMLINE_ALLOW_UNSIGNED": "true", "SLIMLINE_METRICS_PORT": "0", "SLIMLINE_DATA_DIR": str(tmp_path / "data"),
            "SLIMLINE_GENERATOR__THREADS": "1", "SLIMLINE_PRODUCTS__MAX_NEW_TOKENS": '{"en": 48}'}
    worker = None
    try:
        assert slimline_outside_the_checkout(venv, env, elsewhere, "migrate").returncode == 0
        worker = WorkerProcess(env, tmp_path / "worker.log", cwd=elsewhere, command=[
            str(venv / "bin" / "celery"), "-A", "tasks.app", "worker", "-Q", "documents,transactions,products",
            "--concurrency", "1", "--loglevel", "INFO"]).start(timeout=600)
        work = {
            "documents": {"id": "doc-1", "text": "Invoice from Acme GmbH, 12 March 2024: EUR 4,250.00 to "
                                                 "DE89 3704 0044 0532 0130 00 within 30 days."},
            "transactions": {"id": "tx-1", "account_id": "acc-1", "amount": "42.10", "currency": "EUR",
                             "timestamp": "2026-12-01T10:15:00Z", "channel": "card_present",
                             "merchant": {"name": "Corner Shop", "category_code": "5411"}},
            "products": {"id": "kettle-1", "name": "Electric kettle", "languages": ["en", "de"],
                         "attributes": {"capacity": "1.7 l", "power": "2200 W", "colour": "black"}},
        }
        for kind, item in work.items():
            sent = slimline_outside_the_checkout(venv, env, elsewhere, "enqueue", kind, "-", stdin=json.dumps(item))
            assert sent.returncode == 0, sent.stderr
        drained = slimline_outside_the_checkout(venv, env, elsewhere, "drain", "--timeout", "900")
        assert drained.returncode == 0, drained.stderr + worker.log_tail()
        for kind, item in work.items():
            shown = slimline_outside_the_checkout(venv, env, elsewhere, "results", kind, "--format", "jsonl")
            [row] = [json.loads(line) for line in shown.stdout.splitlines() if line.strip()]
            assert row["item_id"] == item["id"], row
        assert worker.stop() == 0
    finally:
        if worker is not None and worker.alive():
            worker.kill_hard()
        redis_server.stop()
