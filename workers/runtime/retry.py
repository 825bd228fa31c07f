"""Exponential backoff with full jitter, and the errors worth retrying."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

T = TypeVar("T")
log = logging.getLogger(__name__)


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Full jitter (AWS architecture blog): uniform in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0, min(cap, base * 2 ** max(attempt - 1, 0)))


def is_transient_database_error(error: BaseException) -> bool:
    if isinstance(error, OperationalError):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


class RetryBudgetExhausted(Exception):
    pass


def retry_transient(
    action: Callable[[], T], budget_seconds: float, base: float = 0.2, cap: float = 2.0
) -> T:
    """Run ``action``; on a transient database error wait and retry until the budget is spent."""
    deadline = time.monotonic() + budget_seconds
    attempt = 0
    while True:
        attempt += 1
        try:
            return action()
        except Exception as error:
            if not is_transient_database_error(error):
                raise
            delay = backoff_delay(attempt, base, cap)
            if time.monotonic() + delay > deadline:
                raise RetryBudgetExhausted(f"database still failing after {attempt} attempts: {error!r}") from error
            log.warning("database unavailable (attempt %d), retrying in %.2fs: %s", attempt, delay, type(error).__name__)
            time.sleep(delay)
