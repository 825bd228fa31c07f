"""What one gateway process holds: the Celery app it publishes with, one producer per producer identity its keys
map to (signing with that producer's key), the API keys, the rate limiter, the Redis client replies are awaited
on, and the decisions: its own (decider.py) and the rules-only fallback."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from functools import cached_property, lru_cache
from typing import Any

import anyio
import anyio.to_thread
import redis.asyncio
from celery import Celery
from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter

from schemas import Kind
from workers.client import Producer
from workers.db.store import OutcomeStore
from workers.gateway.decider import GatewayDecider
from workers.gateway.keys import Caller, KeyCache, presented_digest
from workers.gateway.rules_only import RulesOnly
from workers.runtime.connection import broker_tls, broker_transport_options, redis_url
from workers.runtime.heap import freeze_after_warm_up
from workers.runtime.publish import Signer, keyring_from_settings
from workers.security.producers import Keyring
from workers.settings import Settings
from workers.transactions.rules import PromotedRules, RuleSet

log = logging.getLogger(__name__)

# Publishing fails fast when Redis is down (the caller gets 503 at once and retries), where the workers'
# own publishing keeps retrying for a minute.
PUBLISH_OPTIONS = {"retry": False}
CONNECT_RETRIES = {"max_retries": 1, "interval_start": 0, "interval_step": 0.1, "interval_max": 0.1,
                   "socket_timeout": 2, "socket_connect_timeout": 2}
RATE_LIMIT_PREFIX = "slimline:ratelimit"


class ProducerMissing(RuntimeError):
    """An API key maps to a producer that has no signing key in the producer keys."""


class Services:
    def __init__(self, settings: Settings, store: OutcomeStore | None = None, app: Celery | None = None) -> None:
        self.settings = settings
        self.store = store or OutcomeStore.from_url(settings.database_url.get_secret_value())
        if app is None:
            from tasks.app import create_app

            app = create_app(settings)
        app.conf.broker_transport_options = broker_transport_options(settings) | CONNECT_RETRIES
        self.app = app
        self.keyring: Keyring = keyring_from_settings(settings)
        self.keys = KeyCache(self.store.api_key, settings.gateway.key_cache_seconds)
        self._producers: dict[str, Producer] = {}
        # Checks of cached keys running in the background (KeyCache.refresh_due), by the key's digest.
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        tls = broker_tls(settings) or {}
        # Replies are awaited with BLPOP, whose own timeout is the deadline: the socket's must outlast it.
        longest_wait = max(settings.gateway.deadline_ms, settings.gateway.wait_ms) / 1000
        self.redis = redis.asyncio.Redis.from_url(redis_url(settings), socket_connect_timeout=2,
                                                  socket_timeout=longest_wait + 5, **tls)
        self.depths = QueueDepths(self.redis, settings.max_queue_length)
        self.limiter = FixedWindowRateLimiter(RedisStorage(
            "async+" + redis_url(settings), implementation="redispy", key_prefix=RATE_LIMIT_PREFIX,
            socket_connect_timeout=2, socket_timeout=2, **tls))

    @property
    def signed(self) -> bool:
        return bool(self.keyring)

    def producer(self, producer_id: str) -> Producer:
        """The producer a key maps to, signing with its key from the producer keys (unsigned without keys)."""
        if producer_id not in self._producers:
            signer = None
            if self.keyring:
                entry = self.keyring.get(producer_id)
                if entry is None:
                    raise ProducerMissing(f"API keys map to producer {producer_id!r}, which has no key in the "
                                          f"producer keys (SLIMLINE_PRODUCER_KEYS_FILE)")
                signer = Signer(producer_id, entry.signing_key, self.settings.worker_producer_id)
            self._producers[producer_id] = Producer(self.app, self.settings, producer_id, signer, store=self.store,
                                                    publish_options=PUBLISH_OPTIONS, check_back_pressure=False)
        return self._producers[producer_id]

    def producer_may_send(self, producer_id: str, kind: Kind) -> bool:
        """Unsigned (no producer keys), the API key alone decides."""
        if not self.keyring:
            return True
        entry = self.keyring.get(producer_id)
        return entry is not None and entry.may_send(kind)

    async def caller(self, presented: str) -> Caller | None:
        known, caller = self.keys.cached(presented)
        if not known:
            return await anyio.to_thread.run_sync(self.keys.verify, presented)
        digest = presented_digest(presented)
        if self.keys.refresh_due(presented) and digest not in self._refreshing:
            self._refreshing[digest] = asyncio.get_running_loop().create_task(self._refresh_key(presented))
            self._refreshing[digest].add_done_callback(lambda _: self._refreshing.pop(digest, None))
        return caller

    async def _refresh_key(self, presented: str) -> None:
        try:
            await anyio.to_thread.run_sync(self.keys.verify, presented)
        except Exception as failure:  # noqa: BLE001 - the database is down: the answer expires, requests then get 503
            log.warning("could not check an API key again: %s", type(failure).__name__)

    async def over_limit(self, caller: Caller) -> int | None:
        """None if the request is within the key's limits, else the seconds to wait before retrying."""
        for limit in _parsed(caller.rate_limit or self.settings.gateway.rate_limit):
            if not await self.limiter.hit(limit, "key", caller.key_id):
                stats = await self.limiter.get_window_stats(limit, "key", caller.key_id)
                return max(1, math.ceil(stats.reset_time - time.time()))
        return None

    @cached_property
    def rule_source(self) -> PromotedRules:
        """The rules both decision paths use: the promoted version, looked up off the event loop (keep_rules_fresh)."""
        transactions = self.settings.transactions
        return PromotedRules(RuleSet.load(transactions.rules_file), self.settings.database_url.get_secret_value(),
                             transactions.rules_refresh_seconds, refresh_on_read=False)

    @cached_property
    def decider(self) -> GatewayDecider | None:
        """None when workers decide (``SLIMLINE_GATEWAY__DECIDE_IN=worker``)."""
        if self.settings.gateway.decide_in != "gateway":
            return None
        return GatewayDecider(self.settings, self.rule_source)

    @cached_property
    def rules_only(self) -> RulesOnly:
        return RulesOnly(self.settings, self.rule_source, risk=self.decider.pipeline.risk if self.decider else None)

    async def keep_rules_fresh(self) -> None:
        """Runs while the gateway serves: a promoted rule version is in use within the refresh interval."""
        if self.rule_source.database_url is None:
            return
        while True:
            await anyio.to_thread.run_sync(self.rule_source.refresh)
            await anyio.sleep(self.rule_source.refresh_seconds)

    def warm_up(self) -> None:
        """Rules, model and the features script loaded before serving, so a first decision is not slow."""
        started = time.perf_counter()
        timings = self.decider.warm_up() if self.decider else {}
        self.rules_only.pipeline.warm_up()
        freeze_after_warm_up()
        log.info("decisions in the %s, warmed up in %.2f s (%s)", self.settings.gateway.decide_in,
                 time.perf_counter() - started, ", ".join(f"{name} {seconds:.3f}" for name, seconds in timings.items()))

    async def close(self) -> None:
        await self.redis.aclose()
        self.store.engine.dispose()

    def status(self) -> dict[str, Any]:
        return {"signed": self.signed, "producers": sorted(self._producers)}


@lru_cache(maxsize=256)
def _parsed(rate_limit: str) -> list[RateLimitItem]:
    return parse_many(rate_limit)


class QueueDepths:
    """Back-pressure without a Redis round trip per request: a queue's depth read less than ``fresh`` seconds ago,
    plus what this gateway has sent since, is trusted unless it comes within a tenth of the limit (or the items
    would cross it); then the depth is read again. Workers only ever shorten a queue, so the estimate errs high."""

    def __init__(self, client: redis.asyncio.Redis, limit: int, fresh: float = 0.25) -> None:
        self.client, self.limit, self.fresh = client, limit, fresh
        self._known: dict[str, tuple[float, int]] = {}  # queue -> (when read, depth read + sent since)

    async def full(self, queue: str, adding: int) -> int | None:
        """The depth if the queue is at its limit (nothing may be sent), else None; counts ``adding`` as sent."""
        read_at, depth = self._known.get(queue, (0.0, 0))
        if time.monotonic() - read_at > self.fresh or depth + adding >= self.limit * 0.9:
            read_at, depth = time.monotonic(), int(await self.client.llen(queue))
        if depth >= self.limit:
            self._known[queue] = (read_at, depth)
            return depth
        self._known[queue] = (read_at, depth + adding)
        return None
