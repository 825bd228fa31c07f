"""`slimline serve` (the HTTP gateway, and the review console when installed) and `slimline api-keys`."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.table import Column, Table

from schemas import Kind
from workers.cli.common import CliError, ExitCode, console, out, settings, store

api_keys_app = typer.Typer(help="API keys of the HTTP gateway: each maps to a producer and the kinds it may send.",
                           no_args_is_help=True)


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default SLIMLINE_GATEWAY__HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default SLIMLINE_GATEWAY__PORT).")] = None,
) -> None:
    """Serve the HTTP gateway: ingest, synchronous decisions, urgent documents and results behind API keys,
    /openapi.json and /docs, /health and /metrics. Exit 2 (one line) without producer keys unless
    SLIMLINE_ALLOW_UNSIGNED=true, or when the database is not migrated; 6 when it is unreachable."""
    import uvicorn

    from workers.gateway.app import create_app
    from workers.runtime.connection import uses_sentinel
    from workers.security.masking import install_masking_filter

    config = settings()
    gateway = config.gateway
    if uses_sentinel(config):
        raise CliError("the gateway does not follow Redis Sentinel yet: point its SLIMLINE_REDIS_URL at the master "
                       "(redis://…; workers keep sentinel://)", ExitCode.USAGE)
    signed = _check_signing()
    store().engine.dispose()  # reachable and migrated, or one clear line
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for warning in _key_warnings():
        console.print(f"[yellow]warning[/]: {warning}")
    if not signed:
        console.print("[yellow]warning[/]: signing is off (SLIMLINE_ALLOW_UNSIGNED=true): the gateway enqueues "
                      "unsigned messages, which only workers without producer keys accept")
    app = create_app(config)
    server = uvicorn.Server(uvicorn.Config(
        app, host=host or gateway.host, port=gateway.port if port is None else port, loop="uvloop",
        http="httptools", lifespan="on", access_log=gateway.access_log, log_level="info", server_header=False,
        timeout_graceful_shutdown=10))
    # After uvicorn configured its loggers: personal data is masked in every line, ours and uvicorn's.
    install_masking_filter([logging.getLogger(name) for name in ("uvicorn", "uvicorn.error", "uvicorn.access")])
    server.run()
    if not server.started:
        raise CliError(f"the gateway could not start on {host or gateway.host}:{gateway.port if port is None else port} "
                       f"(address in use?)", ExitCode.FAILED)


def _check_signing() -> bool:
    """True when the gateway signs. It signs as each key's producer, with that producer's key from the
    producer keys (docs/signing.md); without keys it refuses to start unless unsigned work is allowed."""
    from workers.runtime.publish import keyring_from_settings
    from workers.security.producers import KeyConfigError

    try:
        keyring = keyring_from_settings(settings())
    except KeyConfigError as error:
        raise CliError(str(error), ExitCode.USAGE) from None
    if keyring:
        return True
    if not settings().allow_unsigned:
        raise CliError("refusing to start: no producer keys (SLIMLINE_PRODUCER_KEYS_FILE or SLIMLINE_PRODUCER_KEYS) "
                       "to sign with; configure them (docs/signing.md) or set SLIMLINE_ALLOW_UNSIGNED=true for a "
                       "trusted, private Redis", ExitCode.USAGE)
    return False


def _key_warnings() -> list[str]:
    """Active keys the gateway cannot serve: their producer has no signing key, or may not send their kinds."""
    from workers.runtime.publish import keyring_from_settings

    keyring = keyring_from_settings(settings())
    if not keyring:
        return []
    warnings = []
    for key in store().api_keys():
        producer = keyring.get(key["producer"])
        if producer is None:
            warnings.append(f"API key {key['key_id']} maps to producer {key['producer']!r}, which has no key in the "
                            f"producer keys: its requests get 500 until it has one")
        elif denied := [kind for kind in key["kinds"] if not producer.may_send(Kind(kind))]:
            warnings.append(f"API key {key['key_id']}: producer {key['producer']!r} may not send {', '.join(denied)} "
                            f"(producer keys): those requests get 403")
    return warnings


@api_keys_app.command("create")
def create(
    producer: Annotated[str, typer.Argument(help="The producer identity the gateway signs this key's items as.")],
    kinds: Annotated[str, typer.Option(help="Comma-separated kinds the key may send and read.")],
    name: Annotated[str, typer.Option(help="What the key is for (shown in lists).")] = "",
    rate_limit: Annotated[str | None, typer.Option(
        help="This key's limit, e.g. '300/second' or '1000/minute;20/second' (default SLIMLINE_GATEWAY__RATE_LIMIT).")
    ] = None,
) -> None:
    """Create a key and print it once: only its hash is stored. Exit 2 if the producer has no key in the
    producer keys (when they are configured) or may not send one of the kinds."""
    from workers.gateway.keys import InvalidRateLimit, new_key
    from workers.runtime.publish import keyring_from_settings
    from workers.security.producers import IDENTIFIER

    if not IDENTIFIER.match(producer):
        raise CliError(f"producer id must match {IDENTIFIER.pattern}", ExitCode.USAGE)
    try:
        chosen = [Kind(kind.strip()) for kind in kinds.split(",") if kind.strip()]
    except ValueError as error:
        raise CliError(f"{error}; kinds are: {', '.join(kind.value for kind in Kind)}", ExitCode.USAGE) from None
    if not chosen:
        raise CliError("give at least one kind (--kinds documents,transactions)", ExitCode.USAGE)
    keyring = keyring_from_settings(settings())
    if keyring:
        entry = keyring.get(producer)
        if entry is None:
            raise CliError(f"producer {producer!r} has no key in the producer keys: add it there first "
                           f"(docs/signing.md), the gateway signs with it", ExitCode.USAGE)
        if denied := [kind.value for kind in chosen if not entry.may_send(kind)]:
            raise CliError(f"producer {producer!r} may not send {', '.join(denied)} (producer keys)", ExitCode.USAGE)
    try:
        created = new_key(producer, chosen, name, rate_limit)
    except InvalidRateLimit as error:
        raise CliError(str(error), ExitCode.USAGE) from None
    store().add_api_key(created.row, actor=settings().producer_id)
    out.print(created.key, soft_wrap=True, highlight=False)
    console.print(f"[green]created[/] key {created.row['key_id']} for producer {producer} ({', '.join(created.row['kinds'])}); "
                  "it is shown only this once: store it now (clients send `Authorization: Bearer <key>`)")


@api_keys_app.command("list")
def list_keys(
    revoked: Annotated[bool, typer.Option("--revoked", help="Include revoked keys.")] = False,
) -> None:
    """The keys (never their secrets): id, producer, kinds, name, rate limit, when created and revoked."""
    table = Table(Column("key id", no_wrap=True), "producer", "kinds", "name", "rate limit", "created", "revoked")
    for key in store().api_keys(include_revoked=revoked):
        table.add_row(key["key_id"], key["producer"], ",".join(key["kinds"]), key["name"], key["rate_limit"] or
                      f"default ({settings().gateway.rate_limit})", f"{key['created_at']:%Y-%m-%d %H:%M} by "
                      f"{key['created_by']}", f"{key['revoked_at']:%Y-%m-%d %H:%M}" if key["revoked_at"] else "")
    out.print(table)


@api_keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The key id (`slimline api-keys list`).")]) -> None:
    """Revoke a key: the gateway refuses it within SLIMLINE_GATEWAY__KEY_CACHE_SECONDS. Exit 1 if there is no
    such active key."""
    if not store().revoke_api_key(key_id, actor=settings().producer_id):
        raise CliError(f"no active API key {key_id!r} (`slimline api-keys list --revoked`)", ExitCode.FAILED)
    console.print(f"[green]revoked[/] key {key_id}")
