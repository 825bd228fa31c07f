"""Per-batch cost of the transactions pipeline (in process, no queue): what a worker spends on one batch,
split into its parts, beside a baseline measured in the same run.

Run from the repository root: ``python -m benchmarks.transactions_pipeline`` (options: ``--help``).

A private Redis is filled with a week of simulated history (accounts' state as in production), then
later transactions are decided in batches of 1, 8 and 32 with the shipped rules and model. Reported
per batch size, as medians and 99th percentiles over the batches:
- pipeline: the whole ``TransactionPipeline.__call__`` (features, rules, ONNX, reason codes, results);
- features: one ``FeatureStore.update`` (one pipeline of EVALSHA calls, one round trip);
- rules: evaluating the rule set on every transaction of the batch;
- model: one ONNX Runtime call for the batch;
- reasons: tree SHAP for a single flagged transaction (paid only by batches with a flag);
- baseline: a Redis PING round trip, the floor of any call to Redis;
and the Redis server's own time per feature script call (INFO commandstats).
The queue's own latency (enqueue to commit) is measured by the lead's end-to-end benchmark.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workers.runtime.threads import pin_native_threads

pin_native_threads(1)  # before numpy/onnxruntime load: one native thread, as in a worker process

import numpy as np  # noqa: E402
import redis  # noqa: E402

from schemas import Transaction  # noqa: E402
from workers.runtime.redis_server import RedisServer  # noqa: E402
from workers.settings import Settings  # noqa: E402
from workers.transactions.pipeline import build_pipeline  # noqa: E402
from workers.transactions.signals import model_row, numeric_metadata, transaction_signals  # noqa: E402
from workers.transactions.simulator import SimulationConfig, simulate  # noqa: E402


def _timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values):8.2f} {float(np.percentile(values, 99)):8.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=300)
    parser.add_argument("--batches", type=int, default=200, help="batches measured per batch size")
    options = parser.parse_args()
    items = simulate(SimulationConfig(accounts=options.accounts, days=10, seed=31))
    transactions = [Transaction.model_validate({k: v for k, v in i.items() if k not in ("label", "scenario")})
                    for i in items]
    warm, later = transactions[: int(len(transactions) * 0.7)], transactions[int(len(transactions) * 0.7):]
    with tempfile.TemporaryDirectory() as directory:
        server = RedisServer(Path(directory)).start()
        try:
            pipeline = build_pipeline(Settings(redis_url=server.url))
            pipeline.warm_up()
            for start in range(0, len(warm), 256):
                pipeline.features.update(warm[start:start + 256])
            client = redis.Redis.from_url(server.url)
            print(f"{len(warm)} transactions of history, then batches from {len(later)} later ones; "
                  f"{options.batches} batches per size; machine shared: compare within this run only")
            print(f"{'batch':>5} {'part':<10} {'median ms':>9} {'p99 ms':>8} {'per tx µs':>10} {'vs PING':>8}")
            position = 0
            for size in (1, 8, 32):
                timings: dict[str, list[float]] = {name: [] for name in ("pipeline", "features", "rules", "model",
                                                                         "reasons", "baseline")}
                for _ in range(options.batches):
                    if position + 2 * size > len(later):
                        position = 0
                    batch, probe = later[position:position + size], later[position + size:position + 2 * size]
                    position += 2 * size
                    timings["pipeline"].append(_timed(lambda: pipeline(batch)))
                    accounts: list[Any] = []
                    timings["features"].append(_timed(lambda: accounts.extend(pipeline.features.update(probe))))
                    signals = [transaction_signals(t, a.values, pipeline.zone)
                               for t, a in zip(probe, accounts, strict=True)]
                    timings["rules"].append(_timed(lambda: [pipeline.rules.evaluate(s, t.metadata)
                                                            for s, t in zip(signals, probe, strict=True)]))
                    rows = np.array([model_row(s, numeric_metadata(t), pipeline.risk.metadata_features)
                                     for s, t in zip(signals, probe, strict=True)], dtype=np.float32)
                    timings["model"].append(_timed(lambda: pipeline.risk.score(rows)))
                    timings["reasons"].append(_timed(lambda: pipeline.risk.reasons(rows[:1], 3)))
                    timings["baseline"].append(_timed(client.ping))
                base = statistics.median(timings["baseline"])
                for name, values in timings.items():
                    per_tx = statistics.median(values) * 1000 / (1 if name in ("reasons", "baseline") else size)
                    print(f"{size:>5} {name:<10} {_summary(values)} {per_tx:>10.0f} "
                          f"{statistics.median(values) / base:>8.1f}")
            script = client.info("commandstats").get("cmdstat_evalsha", {})
            print(f"Redis server time per feature script call: {script.get('usec_per_call', 0):.1f} µs "
                  f"over {script.get('calls', 0)} calls (INFO commandstats)")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
