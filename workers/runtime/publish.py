"""Publishing one item as a Celery task message: the producer's and the runtime's (retries) one path.
Messages are signed (docs/signing.md) whenever a key is configured."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celery import Celery
from kombu import Queue

from schemas import Kind
from workers.runtime.names import QUEUES, TASK_NAMES
from workers.security.producers import KeyConfigError, Keyring, SigningKey, load_keyring, own_signing_key
from workers.security.signing import now_ms, sign, signed_value
from workers.settings import Settings, get_settings


def keyring_from_settings(settings: Settings) -> Keyring:
    return load_keyring(settings.producer_keys_file, settings.producer_keys)


@dataclass(frozen=True)
class Signer:
    """Who signs: a producer (its signature covers the item), or the workers' own identity (retries,
    escalations, ``dlq replay``: the signature also covers kwargs, which carry the original producer,
    its send time and the attempt)."""

    producer_id: str
    key: SigningKey
    workers_id: str

    @classmethod
    def for_producer(cls, settings: Settings) -> Signer | None:
        """SLIMLINE_SIGNING_KEY(_ID), or the producer's entry in the keys; None: unsigned."""
        keyring = keyring_from_settings(settings)
        key = own_signing_key(settings.producer_id, settings.signing_key_id, settings.signing_key, keyring)
        return cls(settings.producer_id, key, settings.worker_producer_id) if key else None

    @classmethod
    def for_workers(cls, settings: Settings, keyring: Keyring | None = None) -> Signer | None:
        """None when no keys are configured (signing is off); KeyConfigError when keys are configured
        but not the workers' own."""
        keyring = keyring if keyring is not None else keyring_from_settings(settings)
        if not keyring:
            return None
        if keyring.get(settings.worker_producer_id) is None:
            raise KeyConfigError(f"the producer keys have no entry for the workers' own id "
                                 f"{settings.worker_producer_id!r} (SLIMLINE_WORKER_PRODUCER_ID): retries and "
                                 f"replays could not be signed")
        return cls(settings.worker_producer_id, keyring.signing_key(settings.worker_producer_id),
                   settings.worker_producer_id)

    def headers(self, kind: Kind, payload: Any, kwargs: dict[str, Any], timestamp_ms: int) -> dict[str, Any]:
        value = signed_value([payload], kwargs, self.producer_id, self.workers_id)
        return sign(TASK_NAMES[kind], self.producer_id, timestamp_ms, value, self.key)


_UNSET: Any = object()


def send_item(app: Celery, kind: Kind, payload: Any, kwargs: dict[str, Any], queue: str | None = None, *,
              signer: Signer | None = _UNSET, **options: Any) -> str:
    """Publish one item. Celery copies arguments into a readable header (``argsrepr``) that monitoring
    tools display; it is replaced by the item's id so documents never leak into dashboards or logs.
    ``sent_at`` (epoch seconds) is the signature's timestamp unless the caller keeps the original one
    (a retry). ``signer`` defaults to the workers' own identity (retries, escalations, ``dlq replay``);
    a producer passes its own (:meth:`Signer.for_producer`)."""
    if signer is _UNSET:
        signer = Signer.for_workers(app.conf.get("slimline_settings") or get_settings())
    item_id = payload.get("id") if isinstance(payload, dict) else None
    timestamp_ms = now_ms()
    kwargs = {"sent_at": timestamp_ms / 1000} | kwargs
    headers = {"slimline_sent_at": kwargs["sent_at"]}
    if signer is not None:
        headers |= signer.headers(kind, payload, kwargs, timestamp_ms)
    destination: str | Queue = queue or QUEUES[kind]
    if destination not in app.amqp.queues:  # a lane's queue (workers/runtime/names.py): straight to its list
        destination = Queue(destination)
    result = app.send_task(TASK_NAMES[kind], args=[payload], kwargs=kwargs, queue=destination,
                           argsrepr=f"[<{kind.value[:-1]} {item_id!r}>]", kwargsrepr=repr(kwargs),
                           headers=headers, **options)
    return str(result.id)
