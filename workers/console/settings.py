"""The review console's section of the settings: ``SLIMLINE_CONSOLE__<FIELD>``, e.g. ``SLIMLINE_CONSOLE__IDLE_MINUTES``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ConsoleSettings(BaseModel):
    # A session ends after this long in any case, and after this long without a request.
    session_hours: float = Field(default=8, gt=0, le=24 * 7)
    idle_minutes: float = Field(default=30, gt=0)
    # The session cookie's Secure flag. None: set when the request came over HTTPS (behind a TLS-terminating
    # proxy, set it to true).
    cookie_secure: bool | None = None
    # After this many wrong passwords in a row, a user cannot log in for lockout_minutes.
    login_attempts: int = Field(default=5, ge=1)
    lockout_minutes: float = Field(default=15, gt=0)
    min_password_chars: int = Field(default=12, ge=8)
    # A case taken with "next unassigned" stays with its analyst this long without a decision.
    lock_minutes: float = Field(default=30, gt=0)
    # Rows per list page, and the newest stored decisions a rule backtest decides again.
    page_size: int = Field(default=50, ge=1, le=1000)
    backtest_decisions: int = Field(default=20_000, ge=1)
