"""Encrypted model weights with real workers: `slimline models encrypt` turns the transactions risk
model (ONNX + LightGBM) into an encrypted folder; a worker with the right key decrypts it into sealed
memory files and decides transactions; with a wrong key it stops at start with one clear line."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from schemas import Kind
from tests.conftest import Deployment
from tests.support.services import REPO_ROOT
from tests.test_security_e2e_signing import slimline, transactions
from workers.security.model_crypto import generate_key
from workers.transactions.risk import DEFAULT_MODEL_DIR


def test_an_encrypted_model_loads_with_the_right_key_only(sqlite_deployment: Deployment, tmp_path: Path) -> None:
    deployment = sqlite_deployment
    encrypted = tmp_path / "risk-model.enc"
    made = slimline(deployment.env(), "models", "encrypt", str(DEFAULT_MODEL_DIR), str(encrypted), "--new-key")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    plain_onnx = (DEFAULT_MODEL_DIR / "model.onnx").read_bytes()
    assert (encrypted / "model.onnx.enc").is_file() and not (encrypted / "model.onnx").exists()
    assert plain_onnx[:4096] not in (encrypted / "model.onnx.enc").read_bytes()

    deployment.extra_env |= {"SLIMLINE_TRANSACTIONS__MODEL_DIR": str(encrypted), "SLIMLINE_MODEL_KEY": generate_key()}
    run = subprocess.run([sys.executable, "-m", "workers.cli", "worker", "--queues", "transactions"],
                         env=deployment.env() | {"COLUMNS": "300"}, cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    [line] = [line for line in run.stderr.splitlines() if "error" in line]
    assert "the model key does not decrypt" in line and "wrong key" in line

    deployment.extra_env["SLIMLINE_MODEL_KEY"] = key
    worker = deployment.start_worker(queues="transactions")
    items = transactions(5, "enc")
    assert deployment.enqueue(items, kind=Kind.transactions).accepted == len(items)
    deployment.drain()
    decisions = deployment.store.current_results(Kind.transactions)
    assert {row["item_id"] for row in decisions} == {item["id"] for item in items}
    assert all(0 <= row["result"]["score"] <= 1 for row in decisions)
    # The plaintext model is nowhere on disk: the worker's view links to its own sealed memory files.
    loads = [row for row in deployment.store.audit_rows() if row["action"] == "model.load"]
    assert loads and loads[0]["detail"]["decrypted_files"]["transactions.model_dir/model.onnx"] == \
        hashlib.sha256(plain_onnx).hexdigest()
    assert "decrypted 3 model file(s) into sealed memory files" in worker.log_path.read_text()
