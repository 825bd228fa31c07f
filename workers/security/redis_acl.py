"""A Redis ACL file from the producer configuration: least privilege for every client of the broker.

- one user per producer (``producer-<id>``): LPUSH/RPUSH to the queues of the kinds it may send and
  LLEN (back-pressure) — it can neither read a message nor touch another queue, key or channel;
- the workers' user: the queues, kombu's bookkeeping (``unacked*``, ``_kombu.*``), Slimline's own
  keys (``slimline:*``), Celery's control (pidbox) and event channels;
- the operator's user (``status``, ``drain``, ``health``, inspection): counts and presence only;
- the HTTP gateway's user, when ``[redis.gateway]`` is configured: push to every queue (it signs as the producers
  its API keys map to), wait for the workers' replies (``slimline:reply:*``) and count rate limits
  (``slimline:ratelimit:*``, with the ``limits`` library's Lua script);
- the default user is off, so nobody else gets in.

The command lists were taken from kombu 5.7's Redis transport, ``workers/runtime/broker.py`` and
``workers/runtime/queues.py``, and checked with ``MONITOR`` against a running worker. Only commands
and the ``cmd|subcommand`` syntax known to Redis 6.2 are used, so that one file loads on 6.2 and 7.x;
channels are always listed explicitly (Redis 7 denies all channels by default, 6.2 allowed all).
Passwords are written as SHA-256 hashes (``#<hex>``): the file holds no secret.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from schemas import Kind
from workers.runtime.names import ESCALATION_QUEUES, QUEUES, lane_queues
from workers.pipelines import ESCALATING_KINDS
from workers.security.producers import KeyConfigError, Keyring, SecurityConfig

# Every client: authenticate, negotiate the protocol (redis-py sends HELLO 3), health checks.
# (QUIT is no command in 6.2's table, and redis-py closes the socket instead.)
CONNECTION_COMMANDS = ("auth", "hello", "ping", "select", "client|setname", "client|getname", "client|id")

# A producer: kombu's publish to a direct queue is one LPUSH (Celery with ``declare=[]``; without it,
# Celery also SADDs kombu's binding sets on every new connection, which a producer must not do).
PRODUCER_COMMANDS = ("lpush", "rpush", "llen")

# A worker: BLMOVE/LMOVE/LREM/LTRIM on queues and fetching lists (broker.py), kombu's unacked hash,
# index and mutex (ZADD/ZRANGE BYSCORE/HSET/HGET/HDEL, SET NX PX + a Lua release), binding sets and
# their Lua refresh/sweep scripts (which call TIME, ZRANGEBYSCORE, EXISTS, DEL, ZREM inside), the
# pidbox (PSUBSCRIBE) and events (PUBLISH), retries it publishes itself (LPUSH), presence keys (SET EX)
# and the health checks that read them (SCAN, GET). LRANGE/HSCAN serve restores and erasure. HGETALL, HMGET,
# ZCOUNT and ZREMRANGEBYRANK: the transactions' account features script (workers/transactions/account_features.lua);
# LINDEX: the age of a queue's oldest message (workers/runtime/metrics.py).
WORKER_COMMANDS = (
    "lpush", "rpush", "llen", "lrange", "lindex", "lrem", "ltrim", "lmove", "blmove", "rpop", "brpop",
    "hset", "hget", "hdel", "hlen", "hscan", "hgetall", "hmget",
    "zadd", "zrem", "zrange", "zrangebyscore", "zrevrangebyscore", "zcard", "zcount", "zremrangebyrank",
    "sadd", "srem", "smembers", "scard",
    "set", "get", "del", "unlink", "exists", "expire", "pexpire", "ttl", "scan", "type",
    "multi", "exec", "discard", "watch", "unwatch",
    "eval", "evalsha", "script|load", "script|exists", "time",
    "publish", "subscribe", "unsubscribe", "psubscribe", "punsubscribe",
)
# kombu: unacked, unacked_index, unacked_mutex, _kombu.binding.*, _kombu.binding_permanent.*,
# _kombu.binding_deadlines; Celery control: <host>.celery.pidbox, <uuid>.reply.celery.pidbox.
# Transactions' per-account feature state ("txf:*") lives on the broker's server unless it has its own.
WORKER_KEYS = ("unacked", "unacked_index", "unacked_mutex", "_kombu.*", "*.pidbox", "slimline:*", "txf:*")

# The operator: queue depths, in-flight counts, live workers. No command that returns a message.
OPERATOR_COMMANDS = ("llen", "hlen", "scard", "smembers", "zcard", "exists", "type", "ttl", "scan", "get")
OPERATOR_KEYS = ("unacked", "unacked_index", "slimline:*")

# The gateway: a producer's LPUSH/LLEN on every queue; BLPOP on the reply lists the workers push to
# (workers/runtime/replies.py) and DEL; the rate limiter's counters (limits' incr_expire script: EVALSHA, or
# SCRIPT LOAD then EVALSHA, running INCRBY and EXPIRE; its window stats: GET and TTL). Deciding in the request
# (workers/gateway/decider.py), it runs the account features script as a worker does, on "txf:*".
GATEWAY_COMMANDS = ("lpush", "rpush", "llen", "blpop", "del", "get", "ttl", "incrby", "expire",
                    "evalsha", "eval", "script|load",
                    "set", "hgetall", "hmget", "hset", "hdel", "pexpire",
                    "zadd", "zcard", "zcount", "zrangebyscore", "zremrangebyrank")
GATEWAY_KEYS = ("slimline:reply:*", "slimline:ratelimit:*", "txf:*")
DEFAULT_GATEWAY_USER = "slimline-gateway"

PRODUCER_USER_PREFIX = "producer-"
DEFAULT_WORKER_USER = "slimline-worker"
DEFAULT_OPERATOR_USER = "slimline-operator"


def connection_commands(server_version: tuple[int, int]) -> tuple[str, ...]:
    """redis-py sends CLIENT SETINFO on connect and ignores a refusal; only Redis >= 7.2 knows the
    subcommand (an older server refuses to load an ACL file that names it)."""
    return CONNECTION_COMMANDS + (("client|setinfo",) if server_version >= (7, 2) else ())


def worker_channels(db: int) -> tuple[str, ...]:
    """kombu names fanout channels ``/<db>.<exchange>``: the pidbox is PSUBSCRIBEd by that literal
    pattern (ACLs compare patterns literally), events are published under ``celeryev/``."""
    return (f"/{db}.celery.pidbox", f"/{db}.celeryev/*")


@dataclass(frozen=True)
class AclUser:
    name: str
    password_sha256: str
    keys: tuple[str, ...]
    channels: tuple[str, ...]
    commands: tuple[str, ...]

    def line(self, server_version: tuple[int, int] = (6, 2)) -> str:
        parts = ["user", self.name, "on", f"#{self.password_sha256}", "resetkeys", "resetchannels"]
        parts += [f"~{key}" for key in self.keys] + [f"&{channel}" for channel in self.channels]
        parts += ["-@all"] + [f"+{command}" for command in (*connection_commands(server_version), *self.commands)]
        return " ".join(parts)


def password_sha256(password: str) -> str:
    """What goes into the keys file as ``redis_password_sha256`` / ``password_sha256``."""
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def producer_user(producer_id: str) -> str:
    return PRODUCER_USER_PREFIX + producer_id


def acl_users(config: SecurityConfig, db: int = 0) -> list[AclUser]:
    """Every user of the deployment; raises KeyConfigError naming the users without a password."""
    keyring = Keyring.from_config(config)
    missing = [producer_id for producer_id, entry in config.producers.items() if entry.redis_password_sha256 is None]
    missing += [role for role in ("worker", "operator") if getattr(config.redis, role).password_sha256 is None]
    if config.redis.gateway is not None and config.redis.gateway.password_sha256 is None:
        missing.append("gateway")
    if missing:
        raise KeyConfigError(f"no Redis password hash for {', '.join(missing)}: set redis_password_sha256 "
                             f"(producers) or [redis.worker]/[redis.operator]/[redis.gateway] password_sha256")
    users = []
    for producer_id, entry in config.producers.items():
        producer = keyring.producers[producer_id]
        kinds = [kind for kind in Kind if producer.may_send(kind)]
        queues = tuple(QUEUES[kind] for kind in kinds) + tuple(lane_queues(kinds))
        users.append(AclUser(producer_user(producer_id), str(entry.redis_password_sha256), queues, (),
                             PRODUCER_COMMANDS))
    all_queues = (tuple(QUEUES[kind] for kind in Kind) + tuple(ESCALATION_QUEUES[kind] for kind in ESCALATING_KINDS)
                  + tuple(lane_queues()))
    worker, operator = config.redis.worker, config.redis.operator
    users.append(AclUser(worker.user or DEFAULT_WORKER_USER, str(worker.password_sha256),
                         all_queues + WORKER_KEYS + tuple(worker.extra_keys), worker_channels(db),
                         WORKER_COMMANDS + tuple(worker.extra_commands)))
    users.append(AclUser(operator.user or DEFAULT_OPERATOR_USER, str(operator.password_sha256),
                         all_queues + OPERATOR_KEYS, (), OPERATOR_COMMANDS))
    if (gateway := config.redis.gateway) is not None:
        work_queues = tuple(QUEUES[kind] for kind in Kind) + tuple(lane_queues())
        users.append(AclUser(gateway.user or DEFAULT_GATEWAY_USER, str(gateway.password_sha256),
                             work_queues + GATEWAY_KEYS + tuple(gateway.extra_keys), (),
                             GATEWAY_COMMANDS + tuple(gateway.extra_commands)))
    names = [user.name for user in users]
    if len(set(names)) != len(names) or "default" in names:
        raise KeyConfigError(f"Redis user names must be unique and not 'default': {sorted(names)}")
    return users


def render_acl_file(config: SecurityConfig, db: int = 0, server_version: tuple[int, int] = (6, 2)) -> str:
    """An ACL file has no comments: every line is a user. The default user is off."""
    lines = ["user default off resetpass resetkeys resetchannels -@all"]
    return "\n".join(lines + [user.line(server_version) for user in acl_users(config, db)]) + "\n"


def write_acl_file(config: SecurityConfig, path: Path, db: int = 0, server_version: tuple[int, int] = (6, 2)) -> Path:
    """Write atomically, readable by its owner only (Redis reads it at start and on ACL LOAD)."""
    text = render_acl_file(config, db, server_version)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)
    return path
