"""Detection on a later period of the simulator: rules alone, the model alone, both (the live decision),
and the model without the account-history features, with 95 % intervals; then Redis memory per account
after a simulated month.

Run from the repository root: ``python -m benchmarks.transactions_detection`` (options: ``--help``).

Detection, per difficulty level (``--difficulty``, default 0.5 and 1.0). A history is simulated with a
seed the shipped model was not trained on and replayed in time order through the live feature path
(``signals.featurize``: features at each transaction's point in time on a private Redis). A model is
trained on the first 80 % of the period by the same procedure as ``slimline train risk`` (time-ordered
cross-validation over the same search, refit, thresholds from the default policy), and everything is
measured on the last 20 %, which nothing was trained or tuned on:
- rules alone: the shipped rules (``RuleSet.evaluate``, as live); score 2 if the deciding rule blocks, 1 if
  it sends to review, 0 otherwise (ranking metrics of rules alone are those of a coarse score);
- model alone: the model's probability;
- rules + model: the model's probability lifted to the review (block) threshold when a review (block)
  rule decided, capped below the review threshold when an allow rule did: the live decision's order;
- model without account history (the ablation): the same procedure on the transaction's own fields and
  the bank's metadata only, without the features computed from the account's history in Redis
  (``account_features.lua``: counts, sums, novelty, time since the previous payment, amount against the
  7-day mean). What the model loses without them is their share of its gain.
Decisions: flagged by the deciding rule / by a score at or above the review threshold / by the live
action (``pipeline.decide``). Intervals: bootstrap over accounts, the same resamples for every scorer, so
differences have intervals too. The shipped model and rules are also measured on the same later period
at the shipped difficulty (0.5).

Memory. A month of a simulated population (without fraud) goes through the feature store on a fresh
Redis with the default limits. Account state: ``used_memory`` growth without the snapshots, divided by
the accounts, and the ``MEMORY USAGE`` of each kind of key (median, max). Snapshots (one per
transaction id, kept for the snapshot TTL) are measured apart, since a replay does not expire them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from workers.runtime.threads import pin_native_threads

pin_native_threads(1)  # before numpy/onnxruntime load: one native thread, as in a worker process

import numpy as np  # noqa: E402
import redis  # noqa: E402

from schemas import Transaction  # noqa: E402
from workers.runtime.redis_server import RedisServer  # noqa: E402
from workers.settings import Settings  # noqa: E402
from workers.transactions.features import FeatureStore  # noqa: E402
from workers.transactions.intervals import Bootstrap  # noqa: E402
from workers.transactions.metrics import flag_metrics  # noqa: E402
from workers.transactions.pipeline import decide  # noqa: E402
from workers.transactions.risk import RiskModel, Thresholds  # noqa: E402
from workers.transactions.rules import RuleSet  # noqa: E402
from workers.transactions.simulator import SimulationConfig, simulate  # noqa: E402
from workers.transactions.train import HISTORY_FEATURES, TrainingPlan, build_history, fit, importance  # noqa: E402

LEVEL = {"block": 2, "review": 1}
SCORERS = ("rules alone", "model alone", "rules + model", "model, no account history")


def _contract(items: list[dict[str, Any]]) -> tuple[list[Transaction], np.ndarray]:
    transactions = [Transaction.model_validate({k: v for k, v in item.items() if k not in ("label", "scenario")})
                    for item in items]
    return transactions, np.array([item["label"] for item in items], dtype=np.int8)


def _combined(action: str | None, score: float, thresholds: Thresholds) -> float:
    """A score that orders transactions as the live decision does: a rule's action lifts the score to
    that action's threshold at least (an allow rule caps it below the review threshold)."""
    if action == "allow":
        return min(score, thresholds.review * 0.999)
    return max(score, getattr(thresholds, action)) if action else score


def _decisions(evaluations: list[Any], scores: np.ndarray, thresholds: Thresholds) -> tuple[np.ndarray, np.ndarray]:
    combined = np.array([_combined(e.action, float(s), thresholds) for e, s in zip(evaluations, scores, strict=True)])
    flagged = np.array([decide(e, float(s), thresholds) != "allow" for e, s in zip(evaluations, scores, strict=True)])
    return combined, flagged


def detection(accounts: int, days: int, seed: int, difficulty: float, plan: TrainingPlan,
              log: Any) -> dict[str, Any]:
    items = simulate(SimulationConfig(accounts=accounts, days=days, seed=seed, difficulty=difficulty))
    transactions, labels = _contract(items)
    started = time.perf_counter()
    history = build_history(transactions, labels)
    replay_seconds = time.perf_counter() - started
    log(f"difficulty {difficulty}: {len(items)} transactions replayed in {replay_seconds:.0f} s")
    cut = int(len(labels) * (1 - plan.holdout))
    earlier, later = slice(0, cut), slice(cut, None)
    model = fit(history, earlier, plan, progress=log)
    log("the same procedure without the account-history features")
    ablated = fit(history, earlier, plan, progress=log,
                  columns=[i for i, name in enumerate(history.features) if name not in HISTORY_FEATURES])
    rules = RuleSet.load()
    evaluations = [rules.evaluate(s, item.metadata) for s, item in zip(history.signals[later], history.items[later],
                                                                       strict=True)]
    rule_level = np.array([LEVEL.get(e.action or "", 0) for e in evaluations], dtype=np.float64)
    matrix, held_labels = history.matrix[later], history.labels[later]
    thresholds = Thresholds(**model.thresholds)
    scores = model.score(matrix)
    combined, flagged = _decisions(evaluations, scores, thresholds)
    ranked = {"rules alone": rule_level, "model alone": scores, "rules + model": combined,
              "model, no account history": ablated.score(matrix)}
    decided = {"rules alone": rule_level > 0, "model alone": scores >= thresholds.review, "rules + model": flagged,
               "model, no account history": ranked["model, no account history"] >= ablated.thresholds["review"]}
    if difficulty == SimulationConfig().difficulty:  # the shipped model is trained at the default difficulty
        shipped = RiskModel()
        shipped_scores = shipped.score(matrix[:, [history.features.index(name) for name in shipped.features]])
        ranked["shipped rules + model"], decided["shipped rules + model"] = _decisions(
            evaluations, shipped_scores, shipped.thresholds)
        ranked["shipped model alone"] = shipped_scores
        decided["shipped model alone"] = shipped_scores >= shipped.thresholds.review
    log("bootstrap")
    result = Bootstrap(held_labels, ranked, history.accounts[later], resamples=plan.resamples)
    gain = importance(model, history.features)
    return {
        "difficulty": difficulty, "transactions": len(labels), "replay_tx_per_second": len(labels) / replay_seconds,
        "trained_on": history.period(model.rows), "measured_on": history.period(later),
        "base_rate": result.base_rate, "chosen": {k: model.params[k] for k in plan.search}, "rounds": model.rounds,
        "ranked": {name: result.summary(name) for name in ranked},
        "versus_rules": {name: result.difference(name, "rules alone").as_dict() for name in ranked
                         if name != "rules alone"},
        "decided": {name: flag_metrics(held_labels, flags) for name, flags in decided.items()},
        "account_history": {
            "gain_share": gain["gain_share_by_group"]["account_history"],
            "ap_without": result.interval("model, no account history").as_dict(),
            "ap_lost": result.difference("model alone", "model, no account history").as_dict(),
            "share_of_lift": result.share_of_lift("model alone", "model, no account history").as_dict(),
        },
        "top_features": dict(gain["gain_share"][:8]),
        "rule_set_version": rules.version,
    }


def memory_after_a_month(accounts: int, seed: int) -> dict[str, Any]:
    items = [item for item in simulate(SimulationConfig(accounts=accounts, days=30, seed=seed,
                                                        fraud_episodes_per_account_day=0.0))]
    transactions, _ = _contract(items)
    with tempfile.TemporaryDirectory() as directory:
        server = RedisServer(Path(directory), max_memory="1gb").start()
        try:
            client = redis.Redis.from_url(server.url)
            store = FeatureStore(client)
            store.load()
            before = client.info("memory")["used_memory"]
            for start in range(0, len(transactions), 256):
                store.update(transactions[start:start + 256])
            after = client.info("memory")["used_memory"]
            per_kind: dict[str, list[int]] = {"counters": [], "recent": [], "seen": []}
            for account in sorted({t.account_id for t in transactions}):
                for name, key in zip(per_kind, store.account_keys(account), strict=True):
                    per_kind[name].append(client.memory_usage(key) or 0)
            snapshot_keys = list(client.scan_iter("txf:*:x:*", count=1000))
            snapshot_sizes = [client.memory_usage(key) or 0 for key in snapshot_keys]
            for start in range(0, len(snapshot_keys), 1000):
                client.delete(*snapshot_keys[start:start + 1000])
            without_snapshots = client.info("memory")["used_memory"]
        finally:
            server.stop()
    # Replayed history is not expired during the run: keep every snapshot apart, and state the live
    # figure, i.e. the snapshots of the last transactions.snapshot_ttl_seconds (2 days by default).
    snapshot_days = Settings().transactions.snapshot_ttl_seconds / 86_400
    per_day = len(transactions) / accounts / 30
    snapshot_bytes = (after - without_snapshots) / len(snapshot_keys)  # with the keyspace's own overhead
    return {
        "accounts": accounts, "transactions": len(transactions), "transactions_per_account_per_day": per_day,
        "state_bytes_per_account": (without_snapshots - before) / accounts,
        "median_bytes": {name: statistics.median(values) for name, values in per_kind.items()},
        "max_bytes": {name: max(values) for name, values in per_kind.items()},
        "snapshot_bytes": snapshot_bytes, "snapshot_memory_usage_median": statistics.median(snapshot_sizes),
        "live_snapshot_bytes_per_account": per_day * snapshot_days * snapshot_bytes,
    }


def _cell(m: dict[str, float]) -> str:
    return f"{m['value']:.3f} [{m['low']:.3f}, {m['high']:.3f}]"


def _print_detection(d: dict[str, Any]) -> None:
    measured = d["measured_on"]
    print(f"\ndifficulty {d['difficulty']}: {d['transactions']} simulated transactions (replay "
          f"{d['replay_tx_per_second']:.0f} tx/s); trained on {d['trained_on']['transactions']} "
          f"({d['trained_on']['fraud']} fraudulent), measured on the later {measured['transactions']} "
          f"({measured['fraud']} fraudulent, base rate {d['base_rate']:.2%}); model {d['chosen']}, "
          f"{d['rounds']} rounds")
    print(f"{'ranked by':<28}{'avg precision [95 %]':>24}{'vs rules':>9}{'AP - rules [95 %]':>26}"
          f"{'recall@0.1%FPR':>24}{'recall@1%FPR':>24}")
    base = d["ranked"]["rules alone"]["average_precision"]["value"] or 1e-9
    for name, m in d["ranked"].items():
        ap = m["average_precision"]
        delta = _cell(d["versus_rules"][name]) if name in d["versus_rules"] else ""
        print(f"{name:<28}{_cell(ap):>24}{ap['value'] / base:>9.2f}{delta:>26}"
              f"{_cell(m['recall_at_0.1pct_fpr']):>24}{_cell(m['recall_at_1pct_fpr']):>24}")
    print(f"{'decisions':<28}{'flagged':>10}{'precision':>11}{'recall':>9}")
    for name, m in d["decided"].items():
        print(f"{name:<28}{m['flagged']:>10}{m['precision'] or 0:>11.3f}{m['recall'] or 0:>9.3f}")
    h = d["account_history"]
    print(f"account-history (Redis) features: {h['gain_share']:.0%} of the model's gain; without them AP "
          f"{_cell(h['ap_without'])}, a loss of {_cell(h['ap_lost'])}, i.e. {_cell(h['share_of_lift'])} of the "
          f"model's AP above the base rate")
    print("top features by gain: " + ", ".join(f"{name} {share:.0%}" for name, share in d["top_features"].items()))


def _print(result: dict[str, Any]) -> None:
    for d in result["detection"]:
        _print_detection(d)
    m = result["memory"]
    print(f"\nmemory after a simulated month: {m['accounts']} accounts, {m['transactions']} transactions "
          f"({m['transactions_per_account_per_day']:.1f} per account a day)")
    print(f"  state (used_memory, snapshots excluded): {m['state_bytes_per_account']:.0f} B/account; "
          + ", ".join(f"{name} median {m['median_bytes'][name]:.0f} B (max {m['max_bytes'][name]})"
                      for name in m["median_bytes"]))
    print(f"  feature snapshots: {m['snapshot_bytes']:.0f} B each in used_memory (MEMORY USAGE "
          f"{m['snapshot_memory_usage_median']:.0f}), {m['live_snapshot_bytes_per_account']:.0f} B/account live "
          f"(the snapshot TTL's worth of transactions)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=21, help="the shipped model was trained on seed 7")
    parser.add_argument("--difficulty", type=float, nargs="+", default=[0.5, 1.0])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--memory-accounts", type=int, default=300)
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()
    started = time.perf_counter()
    log = (lambda message: None) if options.quiet else (
        lambda message: print(f"[{time.perf_counter() - started:5.0f} s] {message}", flush=True))
    plan = TrainingPlan(resamples=options.resamples)
    result = {"detection": [detection(options.accounts, options.days, options.seed, difficulty, plan, log)
                            for difficulty in options.difficulty],
              "memory": memory_after_a_month(options.memory_accounts, options.seed + 1)}
    _print(result)
    if options.json:
        options.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
