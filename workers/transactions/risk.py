"""The risk model at scoring time: LightGBM trees exported to ONNX, scored by ONNX Runtime in batches;
reason codes from the native model's tree SHAP (``pred_contrib``), computed only for flagged rows.

A model directory holds ``model.onnx`` (scoring), ``model.lgb.txt`` (LightGBM's own text format, for
contributions; no pickle) and ``card.json`` (features, metrics, thresholds, file hashes). Every file is
checked against a SHA-256 manifest (``workers.models.integrity``) before anything is loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import onnxruntime

from workers.models.integrity import ModelIntegrityError, verify

MODEL_NAME = "transactions-risk"
DATA_DIR = Path(__file__).parent / "data"
DEFAULT_MODEL_DIR = DATA_DIR / "risk-model"
DEFAULT_MANIFEST_DIR = DATA_DIR / "manifests"
ONNX_FILE, NATIVE_FILE, CARD_FILE = "model.onnx", "model.lgb.txt", "card.json"

# Stable reason codes: features that mean the same thing to an analyst share a code.
REASONS: dict[str, tuple[str, str]] = {
    "amount": ("RISK_AMOUNT", "the amount"),
    "amount_to_mean_7d": ("RISK_AMOUNT_VS_HISTORY", "the amount compared with the account's 7-day average"),
    "hour": ("RISK_TIME_OF_DAY", "the time of day"),
    "night": ("RISK_TIME_OF_DAY", "the time of day"),
    "weekday": ("RISK_DAY_OF_WEEK", "the day of the week"),
    "channel_card_present": ("RISK_CHANNEL", "the payment channel"),
    "channel_online": ("RISK_CHANNEL", "the payment channel"),
    "channel_transfer": ("RISK_CHANNEL", "the payment channel"),
    "channel_atm": ("RISK_CHANNEL", "the payment channel"),
    "mcc_code": ("RISK_MERCHANT_CATEGORY", "the merchant category"),
    "has_iban": ("RISK_COUNTERPARTY", "the counterparty account"),
    "foreign_iban": ("RISK_COUNTERPARTY", "the counterparty account"),
    "count_10m": ("RISK_VELOCITY_10M", "payments in the last 10 minutes"),
    "sum_10m": ("RISK_VELOCITY_10M", "payments in the last 10 minutes"),
    "distinct_merchants_10m": ("RISK_VELOCITY_10M", "payments in the last 10 minutes"),
    "count_1h": ("RISK_VELOCITY_1H", "payments in the last hour"),
    "sum_1h": ("RISK_VELOCITY_1H", "payments in the last hour"),
    "count_24h": ("RISK_VELOCITY_24H", "payments in the last 24 hours"),
    "sum_24h": ("RISK_VELOCITY_24H", "payments in the last 24 hours"),
    "count_7d": ("RISK_ACTIVITY_7D", "the account's activity over 7 days"),
    "sum_7d": ("RISK_ACTIVITY_7D", "the account's activity over 7 days"),
    "seconds_since_previous": ("RISK_RAPID_SUCCESSION", "the time since the previous payment"),
    "new_merchant": ("RISK_NEW_MERCHANT", "a merchant or payee the account never used"),
    "new_mcc": ("RISK_NEW_CATEGORY", "a merchant category the account never used"),
    "new_country": ("RISK_NEW_COUNTRY", "a country the account never paid in"),
    "account_age_days": ("RISK_ACCOUNT_AGE", "how long the account has been seen"),
}


def reason_for(feature: str) -> tuple[str, str]:
    """Metadata features ("meta.<name>") get a code of their own: RISK_META_<NAME>."""
    if feature.startswith("meta."):
        name = feature.removeprefix("meta.")
        code = "RISK_META_" + "".join(ch if ch.isalnum() else "_" for ch in name).upper()
        return code, f"the bank's signal {name!r}"
    return REASONS[feature]


class RiskModelError(RuntimeError):
    """The model cannot be loaded; the message says which file and why."""


@dataclass(frozen=True)
class Thresholds:
    review: float
    block: float


class RiskModel:
    """Loaded from a verified directory; scores batches; explains flagged rows."""

    def __init__(self, model_dir: Path = DEFAULT_MODEL_DIR, manifest_dir: Path = DEFAULT_MANIFEST_DIR,
                 threads: int = 1) -> None:
        model_dir, manifest_dir = Path(model_dir), Path(manifest_dir)
        try:
            card = json.loads((model_dir / CARD_FILE).read_text())
            self.version = str(card["version"])
            verify(MODEL_NAME, self.version, model_dir, manifest_dir)
        except (OSError, ValueError, KeyError, ModelIntegrityError) as error:
            raise RiskModelError(f"cannot load the risk model from {model_dir}: {error}") from None
        self.card: dict[str, Any] = card
        self.features: tuple[str, ...] = tuple(card["features"])
        self.metadata_features: tuple[str, ...] = tuple(card["metadata_features"])
        self.thresholds = Thresholds(**card["thresholds"]["scores"])
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(str(model_dir / ONNX_FILE), options,
                                                     providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._booster = lightgbm.Booster(model_file=str(model_dir / NATIVE_FILE))
        self._threads = threads

    @property
    def name(self) -> str:
        return MODEL_NAME

    def score(self, rows: np.ndarray) -> np.ndarray:
        """Probability of fraud for each row (ONNX Runtime, one call per batch)."""
        if len(rows) == 0:
            return np.zeros(0, dtype=np.float32)
        (probabilities,) = self._session.run(["probabilities"], {self._input: rows.astype(np.float32, copy=False)})
        return probabilities[:, 1]

    def native_score(self, rows: np.ndarray) -> np.ndarray:
        """LightGBM's own prediction (for checking the ONNX export)."""
        return self._booster.predict(rows.astype(np.float32, copy=False), num_threads=self._threads)

    def reasons(self, rows: np.ndarray, top: int) -> list[list[dict[str, Any]]]:
        """The ``top`` reason codes pushing each row's score up most (tree SHAP, log-odds), strongest first."""
        if len(rows) == 0 or top == 0:
            return [[] for _ in rows]
        contributions = self._booster.predict(rows.astype(np.float32, copy=False), pred_contrib=True,
                                              num_threads=self._threads)
        explained = []
        for row, contribution in zip(rows, contributions, strict=True):
            by_code: dict[str, dict[str, Any]] = {}
            for feature, value, weight in zip(self.features, row, contribution[:-1], strict=True):
                code, description = reason_for(feature)
                reason = by_code.setdefault(code, {"code": code, "description": description, "contribution": 0.0,
                                                   "features": {}})
                reason["contribution"] += float(weight)
                reason["features"][feature] = None if np.isnan(value) else float(value)
            strongest = sorted((r for r in by_code.values() if r["contribution"] > 0),
                               key=lambda r: r["contribution"], reverse=True)[:top]
            for reason in strongest:
                reason["contribution"] = round(reason["contribution"], 4)
            explained.append(strongest)
        return explained
