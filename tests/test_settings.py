"""Settings come from SLIMLINE_* environment variables, one typed object."""

from __future__ import annotations

import pytest

from schemas import Kind
from workers.settings import Settings


def test_one_batching_field_can_be_overridden_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIMLINE_DOCUMENTS__MAX_BATCH_SIZE", "128")
    monkeypatch.setenv("SLIMLINE_TRANSACTIONS__MAX_WAIT_SECONDS", "0.01")
    settings = Settings()
    assert settings.batch_policy(Kind.documents).max_batch_size == 128
    assert settings.batch_policy(Kind.documents).max_wait_seconds == 0.5
    assert settings.batch_policy(Kind.transactions).max_wait_seconds == 0.01
    assert settings.batch_policy(Kind.transactions).max_batch_size == 32


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIMLINE_DOCUMENTS__MAX_BATCH_SIZE", "0")
    with pytest.raises(ValueError, match="max_batch_size"):
        Settings()
