"""Transactions get the CPU first: the gateway at full priority, a transactions worker a little below it, a worker
without the transactions queue well below."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import Deployment
from tests.support.services import WorkerProcess


def _priority(worker: WorkerProcess) -> tuple[int, str]:
    assert worker.process is not None
    pid = worker.process.pid
    autogroup = Path(f"/proc/{pid}/autogroup")
    return os.getpriority(os.PRIO_PROCESS, pid), autogroup.read_text() if autogroup.exists() else ""


def test_document_workers_yield_the_cpu_to_transaction_workers(sqlite_deployment: Deployment) -> None:
    sqlite_deployment.extra_env["SLIMLINE_WORKER_NICE"] = "10"  # the defaults (other tests turn them off)
    sqlite_deployment.extra_env["SLIMLINE_LATENCY_WORKER_NICE"] = "5"
    documents = sqlite_deployment.start_worker(queues="documents")
    transactions = sqlite_deployment.start_worker(queues="transactions")

    documents_nice, documents_group = _priority(documents)
    transactions_nice, transactions_group = _priority(transactions)
    assert (documents_nice, transactions_nice) == (10, 5)
    if documents_group:  # the kernel groups by session: each worker's group is niced too
        assert documents_group.strip().endswith("nice 10") and transactions_group.strip().endswith("nice 5")
