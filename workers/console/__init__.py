"""The review console: analysts, document reviewers, product editors and rule authors work in a browser.
`slimline serve` (workers/gateway/app.py) includes ``router``, built on first use by
:func:`workers.console.router.console_router`; pages use the serving app's settings and store. Its settings
are SLIMLINE_CONSOLE__*. Importing this package stays cheap: the settings import it."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "router":
        from workers.console.router import console_router

        router = console_router()
        globals()["router"] = router
        return router
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
