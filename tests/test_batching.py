"""Pure parts of batch processing: isolating poison items, backoff, retrying transient errors."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from workers.runtime.batching import run_isolated
from workers.runtime.retry import RetryBudgetExhausted, backoff_delay, retry_transient


def test_isolation_finds_every_failing_item_and_keeps_the_rest() -> None:
    calls: list[int] = []

    def pipeline(items: list[int]) -> list[int]:
        calls.append(len(items))
        if any(item in (5, 41) for item in items):
            raise ValueError("poison")
        return [item * 2 for item in items]

    succeeded, failed = run_isolated(pipeline, list(range(64)))

    assert [item for item, _ in failed] == [5, 41]
    assert sorted(item for item, _ in succeeded) == [i for i in range(64) if i not in (5, 41)]
    assert all(output == item * 2 for item, output in succeeded)
    assert len(calls) <= 1 + 2 * 2 * 6  # bisection, not one call per item


def test_isolation_treats_a_wrong_number_of_outputs_as_failure() -> None:
    succeeded, failed = run_isolated(lambda items: items[:-1] if len(items) > 1 else items, [1, 2, 3, 4])
    assert not failed and len(succeeded) == 4


@pytest.mark.parametrize("attempt", [1, 2, 5, 20])
def test_backoff_is_jittered_and_capped(attempt: int) -> None:
    delays = [backoff_delay(attempt, base=0.5, cap=4.0) for _ in range(200)]
    assert all(0 <= delay <= min(4.0, 0.5 * 2 ** (attempt - 1)) for delay in delays)
    assert len(set(delays)) > 100


def _operational_error() -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception("connection refused"))


def test_transient_errors_are_retried_until_success() -> None:
    outcomes = iter([_operational_error(), _operational_error(), "stored"])

    def action() -> str:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert retry_transient(action, budget_seconds=5, base=0.01, cap=0.02) == "stored"


def test_retrying_stops_when_the_budget_is_spent() -> None:
    def action() -> None:
        raise _operational_error()

    with pytest.raises(RetryBudgetExhausted):
        retry_transient(action, budget_seconds=0.05, base=0.01, cap=0.02)


def test_errors_that_are_not_transient_are_raised_at_once() -> None:
    calls = []

    def action() -> None:
        calls.append(1)
        raise IntegrityError("INSERT", {}, Exception("duplicate"))

    with pytest.raises(IntegrityError):
        retry_transient(action, budget_seconds=5)
    assert calls == [1]
