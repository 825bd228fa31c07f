"""Security commands (`redis-acl`, `models encrypt`, `audit verify`, `purge`, `erase`, `hold`, `release`). The
checks a worker makes before it starts are in workers/security/worker_start.py (run by its bootsteps).

Exit codes: 0 done; 1 `audit verify` found a broken chain, or `erase` could not finish everything it
names; 2 bad arguments or configuration (keys, model key); 6 Redis or the database unreachable;
8 an item is under a legal hold (nothing was erased).
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import redis
import typer

from schemas import Kind
from workers.cli.common import CliError, ExitCode, console, out, settings

ON_HOLD = 8
UNSIGNED_MARKER_PREFIX = "slimline:unsigned:"
UNSIGNED_MARKER_SECONDS = 120


# --- what `status` and `health` say about signing ---------------------------------------------------

def signing_warnings(client: Any) -> list[str]:
    """For `status` and `health`: live workers, or this configuration, accepting unsigned work."""
    from workers.security.worker_start import unsigned_workers

    warnings = []
    count = unsigned_workers(client)
    if count:
        warnings.append(f"{count} live worker(s) accept unsigned messages (SLIMLINE_ALLOW_UNSIGNED=true)")
    elif settings().allow_unsigned:  # said once: the live workers' warning already names the setting
        warnings.append("this configuration has SLIMLINE_ALLOW_UNSIGNED=true: its workers would accept unsigned "
                        "messages")
    return warnings


# --- erasure in Redis -------------------------------------------------------------------------------

@dataclass
class RedisErasure:
    messages: int = 0
    problems: list[str] = field(default_factory=list)


def message_item_id(raw: bytes | str) -> str | None:
    """The item id of a kombu message as the Redis transport stores it (base64 body of [args, kwargs, embed])."""
    try:
        message = json.loads(raw)
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        item = args[0] if isinstance(args, list) and args else None
        return item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None
    except (ValueError, KeyError, TypeError, IndexError):
        return None


def erase_from_redis(client: Any, kind: Kind, item_ids: set[str]) -> RedisErasure:
    """Remove the items' messages from their queues, from workers' fetching lists and from kombu's
    unacknowledged hash (prefetched messages and scheduled retries); then rewrite the append-only file
    so no copy stays on disk. A copy a worker already holds in memory is refused by the tombstone."""
    from workers.runtime.names import ESCALATION_QUEUES, QUEUES, lane_queues
    from workers.runtime.broker import FETCHING_LISTS, UNPARSEABLE
    from workers.runtime.queues import UNACKED_KEY

    queues = {QUEUES[kind], ESCALATION_QUEUES[kind], *lane_queues([kind])}
    lists = [*queues, UNPARSEABLE] + [key.decode() if isinstance(key, bytes) else key
                                      for key in client.smembers(FETCHING_LISTS)
                                      if (key.decode() if isinstance(key, bytes) else key).rsplit(":", 1)[-1] in queues]
    report = RedisErasure()
    for key in lists:
        for raw in set(client.lrange(key, 0, -1)):
            if message_item_id(raw) in item_ids:
                report.messages += int(client.lrem(key, 0, raw))
    for tag, value in client.hscan_iter(UNACKED_KEY, count=500):
        try:
            raw = json.dumps(json.loads(value)[0])
        except (ValueError, IndexError, TypeError):
            continue
        if message_item_id(raw) in item_ids:
            report.messages += int(client.hdel(UNACKED_KEY, tag))
            client.zrem(f"{UNACKED_KEY}_index", tag)
    try:
        client.bgrewriteaof()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            persistence = client.info("persistence")
            if not persistence.get("aof_rewrite_in_progress") and not persistence.get("aof_rewrite_scheduled"):
                break
            time.sleep(0.1)
    except redis.exceptions.NoPermissionError:
        report.problems.append("Redis refused BGREWRITEAOF to this user: run `redis-cli BGREWRITEAOF` as an "
                               "administrator, or the append-only file keeps the erased messages until its next rewrite")
    except redis.exceptions.ResponseError as error:  # no AOF configured, or a rewrite already running
        if "in progress" in str(error).lower():
            report.problems.append("an append-only file rewrite was already running: run `redis-cli BGREWRITEAOF` "
                                   "again once it finished")
    return report


# --- commands ---------------------------------------------------------------------------------------

def redis_acl(
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the ACL file (Redis `aclfile`).")],
    server_version: Annotated[str, typer.Option(help="The Redis server's major.minor, e.g. 6.2 or 7.4.")] = "7.0",
    db: Annotated[int, typer.Option(help="The Redis database number Slimline uses.")] = 0,
) -> None:
    """Write the Redis ACL file from the producer keys file: one user per producer (push to its queues
    only), the workers' user, the operator's (counts, never a message); the default user is off."""
    from workers.security.producers import KeyConfigError, load_config
    from workers.security.redis_acl import write_acl_file

    config = settings()
    try:
        major, minor = (int(part) for part in server_version.split(".")[:2])
        security = load_config(config.producer_keys_file, config.producer_keys)
        if not security.producers:
            raise KeyConfigError("no producers configured: set SLIMLINE_PRODUCER_KEYS_FILE")
        write_acl_file(security, out_file, db=db, server_version=(major, minor))
    except ValueError as error:  # KeyConfigError is one
        raise CliError(str(error), ExitCode.USAGE) from None
    console.print(f"wrote {out_file} ({len(security.producers)} producer(s), the workers, the operator); "
                  f"load it with `redis-server --aclfile {out_file}` or ACL LOAD")


def models_encrypt(
    model_dir: Annotated[Path, typer.Argument(help="The model folder (plain files).")],
    out_dir: Annotated[Path, typer.Argument(help="Where to write the encrypted folder (files get .enc).")],
    new_key: Annotated[bool, typer.Option("--new-key", help="Generate a key and print it on stdout.")] = False,
) -> None:
    """Encrypt a model folder with AES-256-GCM (in chunks: files over 2 GB work), with SLIMLINE_MODEL_KEY
    (or SLIMLINE_MODEL_KEY_FILE), or a new key. Point the model's setting at the encrypted folder; keep
    its manifest: workers check the decrypted files against it."""
    from workers.security.model_crypto import EnvironmentOrFileKey, ModelKeyError, encrypt_model_dir, generate_key, parse_key

    if not model_dir.is_dir():
        raise CliError(f"no such folder: {model_dir}", ExitCode.USAGE)
    config = settings()
    try:
        if new_key:
            text = generate_key()
            key = parse_key(text, "the new key")
        else:
            key = EnvironmentOrFileKey(config.model_key, config.model_key_file).model_key()
        written = encrypt_model_dir(model_dir, out_dir, key)
    except (ModelKeyError, ValueError) as error:
        raise CliError(str(error), ExitCode.USAGE) from None
    console.print(f"encrypted {len(written)} file(s) into {out_dir}")
    if new_key:
        out.print(text)


def audit_verify() -> None:
    """Check every audit row's HMAC chain and that it still reaches the recorded head (the head file).
    Exit 0 intact; 1 an edited, inserted or deleted row (each is named); 2 no audit key."""
    from workers.cli.common import store
    from workers.db.store import audit_signing_from_settings
    from workers.security.audit_chain import AuditKeyError, read_head

    try:
        signing = audit_signing_from_settings()
    except AuditKeyError as error:
        raise CliError(str(error), ExitCode.USAGE) from None
    if signing is None:
        raise CliError("no audit key: set SLIMLINE_AUDIT_KEY or SLIMLINE_AUDIT_KEY_FILE", ExitCode.USAGE)
    head = read_head(signing.head_file)
    report = store().verify_audit(signing.key, head)
    if head is None:
        console.print(f"[yellow]warning[/]: no head file at {signing.head_file}: deleting the newest rows "
                      f"would go unnoticed")
    for problem in report.problems:
        console.print(f"[red]broken[/]: {problem}")
    if not report.ok:
        raise CliError(f"the audit log was altered ({len(report.problems)} problem(s) in "
                       f"{report.rows_checked} chained rows)", ExitCode.FAILED)
    console.print(f"[green]intact[/]: {report.rows_checked} chained audit row(s)")


def purge(
    every: Annotated[float | None, typer.Option(help="Run again every this many seconds (a scheduler "
                                                     "loop; Ctrl-C stops it).")] = None,
) -> None:
    """Delete results, rejections and dead letters older than each kind's retention
    (SLIMLINE_RETENTION_DAYS), except items under a legal hold; audited."""
    from workers.cli.common import store

    retention = settings().retention_days
    if not retention:
        raise CliError("no retention configured: set SLIMLINE_RETENTION_DAYS, e.g. '{\"documents\": 90}'",
                       ExitCode.USAGE)
    outcome_store = store()
    while True:
        removed = outcome_store.purge(retention, actor=settings().producer_id)
        outcome_store.wipe_freed_pages()
        for kind, counts in removed.items():
            console.print(f"purged {kind}: " + ", ".join(f"{count} {table}" for table, count in counts.as_dict().items()))
        if every is None:
            return
        time.sleep(every)


def erase(
    kind: Annotated[Kind, typer.Argument(help="documents, transactions or products")],
    item_ids: Annotated[list[str], typer.Argument(help="The ids of the items to erase.")],
) -> None:
    """GDPR Art. 17: remove every copy of these items: every version of their results, rejection
    excerpts, dead letters, and messages still queued, fetched, unacknowledged or scheduled for retry
    in Redis; zero the freed bytes; tombstone the ids so a late copy is refused. Audited without the data.
    Exit 8 (nothing erased) if an item is under a legal hold."""
    from workers.cli.common import broker, store
    from workers.db.store import ItemsOnHold

    outcome_store = store()
    client = broker()
    try:
        removed = outcome_store.erase(kind, item_ids, actor=settings().producer_id)
    except ItemsOnHold as error:
        raise CliError(str(error), ON_HOLD) from None
    queued = erase_from_redis(client, kind, set(item_ids))
    removed = removed + outcome_store.erase_again(kind, item_ids)
    wiped = outcome_store.wipe_freed_pages()
    console.print(f"erased {len(set(item_ids))} {kind.value} item(s): " +
                  ", ".join(f"{count} {table}" for table, count in removed.as_dict().items()) +
                  f", {queued.messages} message(s) in Redis")
    problems = ([] if wiped else ["the SQLite WAL could not be checkpointed (a reader held it): run `slimline "
                                  "erase` again later"]) + queued.problems
    if problems:
        raise CliError("; ".join(problems), ExitCode.FAILED)


def hold(
    kind: Annotated[Kind, typer.Argument(help="documents, transactions or products")],
    item_id: Annotated[str, typer.Argument(help="The item to keep.")],
    reason: Annotated[str, typer.Option(help="Why it must be kept (shown when purge or erase skip it).")],
) -> None:
    """Put an item under a legal hold: purge and erasure leave it alone and say why."""
    from workers.cli.common import store

    store().hold(kind, item_id, reason=reason, actor=settings().producer_id)
    console.print(f"{kind.value} {item_id} is on hold: {reason}")


def release(
    kind: Annotated[Kind, typer.Argument(help="documents, transactions or products")],
    item_id: Annotated[str, typer.Argument(help="The item to release.")],
) -> None:
    """Lift a legal hold."""
    from workers.cli.common import store

    if not store().release(kind, item_id, actor=settings().producer_id):
        raise CliError(f"{kind.value} {item_id} is not on hold", ExitCode.USAGE)
    console.print(f"{kind.value} {item_id} is no longer on hold")


models_app = typer.Typer(help="Model files at rest.", no_args_is_help=True)
models_app.command("encrypt")(models_encrypt)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
audit_app.command("verify")(audit_verify)
