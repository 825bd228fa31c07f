"""``slimline``: run workers, enqueue work, watch it drain, read results.

The command is assembled in :mod:`workers.cli.main`; this package's modules are the command groups
and what they share (:mod:`workers.cli.common`), importable without assembling the whole command."""


def main() -> None:
    from workers.cli.main import main as run

    run()
