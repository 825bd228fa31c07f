"""Malformed messages each end as a stored rejection (field + reason); the good ones around them
are processed and the worker stays up."""

from __future__ import annotations

import random
import uuid
from typing import Any, Callable

from kombu import Exchange, Producer

from tests.conftest import Deployment
from tests.support.corpus import synthetic_documents
from workers.db.models import Result, Rejection
from workers.runtime.broker import UNPARSEABLE
from workers.runtime.queues import in_flight

TASK = "slimline.documents.process"
MAX_CHARS = 5000


def _send(deployment: Deployment, args: Any, kwargs: Any | None = None, **options: Any) -> str:
    return deployment.app.send_task(TASK, args=args, kwargs=kwargs or {}, queue="documents", **options).id


def _send_raw_body(deployment: Deployment, body: bytes) -> str:
    """A protocol-2 task message whose body is not valid UTF-8 (a producer bug in another language)."""
    task_id = str(uuid.uuid4())
    with deployment.app.connection_for_write() as connection:
        Producer(connection.default_channel).publish(
            body, exchange=Exchange("documents"), routing_key="documents", serializer=None,
            content_type="application/json", content_encoding="utf-8",
            headers={"task": TASK, "id": task_id, "lang": "py"},
        )
    return task_id


# Each maker sends one bad message and returns (message id, expected field).
BAD_MESSAGES: list[Callable[[Deployment, int], tuple[str, str]]] = [
    lambda d, i: (_send(d, [{"id": f"bad-{i}"}]), "text"),
    lambda d, i: (_send(d, [{"text": "no id here"}]), "id"),
    lambda d, i: (_send(d, [{"id": f"bad-{i}", "text": 12345}]), "text"),
    lambda d, i: (_send(d, [{"id": f"bad-{i}", "text": " \n\t "}]), "text"),
    lambda d, i: (_send(d, [{"id": f"bad-{i}", "text": "broken \ud800 surrogate"}]), "text"),
    lambda d, i: (_send(d, [{"id": f"bad-{i}", "text": "x" * (MAX_CHARS + 1)}]), "text"),
    lambda d, i: (_send(d, [{"id": f"bad-{i}", "text": "fine", "colour": "red"}]), "colour"),
    lambda d, i: (_send(d, [{"id": f"bad-{i}", "text": "a"}, {"id": "b", "text": "b"}]), "args"),
    lambda d, i: (_send(d, ["just a string"]), "payload"),
    lambda d, i: (_send(d, [{"id": f"bad {i}!", "text": "id has spaces"}]), "id"),
    lambda d, i: (_send_raw_body(d, b'{"args": [\xff\xfe\xfa]}'), "body"),
    lambda d, i: (_send(d, [{"id": f"bad-{i}", "text": "pickled"}], serializer="pickle"), "content_type"),
    lambda d, i: (d.app.send_task("slimline.invoices.process", args=[{}], queue="documents").id, "task"),
]


def test_fifty_malformed_among_five_hundred_good(sqlite_deployment: Deployment) -> None:
    deployment = sqlite_deployment
    deployment.extra_env["SLIMLINE_MAX_DOCUMENT_CHARS"] = str(MAX_CHARS)
    worker = deployment.start_worker()
    good = synthetic_documents(500, seed=3)
    rng = random.Random(3)
    expected: dict[str, str] = {}
    bad_positions = set(rng.sample(range(550), 50))
    good_iter = iter(good)
    for position in range(550):
        if position in bad_positions:
            message_id, field = BAD_MESSAGES[len(expected) % len(BAD_MESSAGES)](deployment, position)
            expected[message_id] = field
        else:
            _send(deployment, [next(good_iter)])
    deployment.drain()

    assert worker.alive()
    assert deployment.store.count(Result) == 500
    rejections = {row["message_id"]: row for row in deployment.store.iter_rows(Rejection)}
    assert len(rejections) == 50
    for message_id, field in expected.items():
        rejection = rejections[message_id]
        assert rejection["field"].split(".")[0] == field, rejection
        assert rejection["reason"], rejection
    assert any("too long" in row["reason"] for row in rejections.values())
    assert any("JSON is accepted" in row["reason"] for row in rejections.values())


def test_items_in_a_queue_that_are_no_kombu_messages_are_set_aside_and_the_rest_is_processed(
        sqlite_deployment: Deployment) -> None:
    """Whatever another program pushes into a queue (not JSON, JSON of another shape) is kept aside in
    ``slimline:unparseable``, and neither crashes the worker nor holds up the messages around it."""
    deployment = sqlite_deployment
    junk = [b"not json at all", b'{"a": 1}', b"[1, 2]", b'{"properties": {"delivery_tag": 7}}',
            # kombu's shape, with a hexadecimal number: Redis's Lua JSON decoder takes it, Python's does not
            b'{"body": 0x10, "properties": {"delivery_tag": "bad-1", "delivery_info": '
            b'{"exchange": "documents", "routing_key": "documents"}}}']
    deployment.enqueue(synthetic_documents(5, seed=3))
    deployment.broker.lpush("documents", *junk)
    deployment.enqueue(synthetic_documents(5, seed=4))
    worker = deployment.start_worker()
    deployment.drain(timeout=120)

    assert deployment.store.count(Result) == 10
    assert sorted(deployment.broker.lrange(UNPARSEABLE, 0, -1)) == sorted(junk)
    assert in_flight(deployment.broker) == 0  # none of them stays recorded as delivered
    assert "Unrecoverable" not in worker.log_tail(200) and "Traceback" not in worker.log_tail(200)
