"""What rules and the risk model see about one transaction: its own fields, its time of day and the
account's features at its point in time, as one flat dict of named values."""

from __future__ import annotations

import math
from typing import Any
from zoneinfo import ZoneInfo

from schemas import Transaction
from workers.transactions.features import FEATURE_NAMES, AccountFeatures, FeatureStore

CHANNELS = ("card_present", "online", "transfer", "atm")
NIGHT_HOURS = range(0, 6)

# Names rules and the model can use that come from the account's state (absent when it is unavailable).
ACCOUNT_SIGNALS = (
    *(name for name in FEATURE_NAMES if not name.endswith("_ms")),
    "seconds_since_previous", "account_age_days", "amount_to_mean_7d",
)

# The model's input columns, before the numeric metadata fields listed in its card ("meta.<name>").
BASE_MODEL_FEATURES = (
    "amount", "hour", "night", "weekday",
    *(f"channel_{channel}" for channel in CHANNELS), "mcc_code", "has_iban", "foreign_iban",
    "count_10m", "sum_10m", "count_1h", "sum_1h", "count_24h", "sum_24h", "count_7d", "sum_7d",
    "seconds_since_previous", "new_merchant", "new_mcc", "new_country", "distinct_merchants_10m",
    "account_age_days", "amount_to_mean_7d",
)  # fmt: skip


def numeric_metadata(transaction: Transaction) -> dict[str, float]:
    """The bank's own numeric signals (a yes/no signal counts as 1/0); text fields are left out."""
    return {
        name: float(value)
        for name, value in transaction.metadata.items()
        if isinstance(value, int | float) and math.isfinite(value)
    }


def transaction_signals(transaction: Transaction, account: dict[str, Any] | None, zone: ZoneInfo) -> dict[str, Any]:
    """Named values for one transaction; ``account`` is None when the account features are unavailable
    (rules that need them are then skipped, and the model is not used)."""
    local = transaction.timestamp.astimezone(zone)
    amount = float(transaction.amount)
    iban_country = transaction.counterparty_iban[:2] if transaction.counterparty_iban else None
    signals: dict[str, Any] = {
        "amount": amount,
        "currency": transaction.currency,
        "country": transaction.country,
        "channel": transaction.channel,
        "mcc": transaction.merchant.category_code if transaction.merchant else None,
        "iban_country": iban_country,
        "foreign_iban": iban_country is not None and transaction.country is not None
        and iban_country != transaction.country,
        "hour": local.hour,
        "night": local.hour in NIGHT_HOURS,
        "weekday": local.weekday(),
    }
    if account is not None:
        signals.update({name: account[name] for name in FEATURE_NAMES if not name.endswith("_ms")})
        previous = account["ms_since_previous"]
        signals["seconds_since_previous"] = None if previous is None else previous / 1000
        signals["account_age_days"] = round(account["account_age_ms"] / 86_400_000, 6)
        count, total = account["count_7d"], account["sum_7d"]
        signals["amount_to_mean_7d"] = amount / (total / count) if count and total > 0 else None
    return signals


def model_row(signals: dict[str, Any], metadata: dict[str, float], metadata_features: tuple[str, ...]) -> list[float]:
    """One row of the model's input, in the card's column order; absent values are NaN."""
    encoded = {
        **{f"channel_{channel}": float(signals["channel"] == channel) for channel in CHANNELS},
        "mcc_code": float(signals["mcc"]) if signals["mcc"] else math.nan,
        "has_iban": float(signals["iban_country"] is not None),
    }
    row = [encoded[name] if name in encoded else _number(signals[name]) for name in BASE_MODEL_FEATURES]
    row.extend(metadata.get(name, math.nan) for name in metadata_features)
    return row


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def featurize(store: FeatureStore, items: list[Transaction], zone: ZoneInfo
              ) -> tuple[list[AccountFeatures], list[dict[str, Any]], list[dict[str, float]]]:
    """Account features (recording the transactions), signals and numeric metadata of a batch: the one
    path shared by live scoring, backtests and training. Raises FeaturesUnavailable."""
    accounts = store.update(items)
    signals = [transaction_signals(item, account.values, zone) for item, account in zip(items, accounts, strict=True)]
    return accounts, signals, [numeric_metadata(item) for item in items]
