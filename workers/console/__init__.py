"""The review console: analysts, document reviewers, product editors and rule authors work in a browser.
Its router (workers/console/router.py) is served by `slimline serve`; its settings are SLIMLINE_CONSOLE__*."""
