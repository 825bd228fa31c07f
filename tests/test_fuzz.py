"""Property-based fuzzing of everything a producer controls, through a live worker: payloads, keyword
arguments, task ids and headers, raw bodies. Whatever arrives, every message ends with one stored
outcome (a result or a rejection) and the worker stays up."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Deployment
from tests.test_bad_input import TASK, _send_raw_body
from workers.db.models import Result, Rejection

pytestmark = pytest.mark.chaos

any_text = st.text(alphabet=st.characters(codec=None, categories=None), max_size=300)
huge_text = st.builds(lambda chunk, times: chunk * times, st.text(min_size=1, max_size=5), st.integers(1000, 60_000))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=12,
)
plausible_text = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ABCDEFGHIJ.,0123456789€", min_size=1, max_size=300)
documentish = st.fixed_dictionaries(
    {"text": st.one_of(plausible_text, any_text, huge_text, json_values)},
    optional={"language": json_values, "metadata": json_values, "extra": json_values},
)
kwargs = st.one_of(st.just({}), st.just({}), st.fixed_dictionaries({}, optional={"producer": json_values, "attempt": json_values}),
                   st.dictionaries(any_text, json_values, max_size=3))
settings_ = settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))


def _publish(deployment: Deployment, headers: dict, body: bytes) -> None:
    """LPUSH a hand-built message, as a producer without a Celery library would."""
    message = {"body": base64.b64encode(body).decode(), "content-encoding": "utf-8",
               "content-type": "application/json", "headers": headers,
               "properties": {"delivery_mode": 2, "priority": 0, "body_encoding": "base64",
                              "delivery_tag": str(uuid.uuid4()),
                              "delivery_info": {"exchange": "", "routing_key": "documents"}}}
    deployment.broker.lpush("documents", json.dumps(message))


def test_every_fuzzed_message_ends_with_one_stored_outcome(sqlite_deployment: Deployment) -> None:
    deployment = sqlite_deployment
    deployment.extra_env["SLIMLINE_MAX_DOCUMENT_CHARS"] = "50000"
    worker = deployment.start_worker()
    sent: list[str] = []  # message ids that must each have an outcome
    anonymous = 0  # messages without a usable id: each must leave one more rejection

    @settings_
    @given(payload=documentish, extra=kwargs, args_shape=st.sampled_from(["one", "raw", "many"]))
    def send(payload: dict, extra: dict, args_shape: str) -> None:
        payload = {"id": f"fz-{uuid.uuid4().hex}", **payload}
        args = {"one": [payload], "raw": [payload["text"]], "many": [payload, payload]}[args_shape]
        sent.append(deployment.app.send_task(TASK, args=args, kwargs=extra, queue="documents").id)

    @settings_
    @given(body=st.binary(max_size=200))
    def send_bytes(body: bytes) -> None:
        sent.append(_send_raw_body(deployment, body))

    @settings_
    @given(task_id=json_values, headers=st.dictionaries(st.sampled_from(["eta", "retries", "lang", "expires"]),
                                                        json_values, max_size=3), body=json_values)
    def send_odd_headers(task_id: object, headers: dict, body: object) -> None:
        nonlocal anonymous
        _publish(deployment, {**headers, "task": TASK, "id": task_id}, json.dumps(body).encode())
        anonymous += 1

    send()
    send_bytes()
    send_odd_headers()
    deployment.drain()

    assert worker.alive()
    results = {row["message_id"] for row in deployment.store.iter_rows(Result)}
    rejections = [row["message_id"] for row in deployment.store.iter_rows(Rejection)]
    assert not results & set(rejections)
    assert set(sent) <= results | set(rejections)
    assert len(results) + len(rejections) == len(sent) + anonymous
    print(f"\nfuzz: sent {len(sent) + anonymous}, results {len(results)}, rejections {len(rejections)}")
