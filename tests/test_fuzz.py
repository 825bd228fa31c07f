"""Property-based fuzzing of the document contract through a live worker: whatever arrives, every
message ends as a stored result or a stored rejection, and the worker stays up."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Deployment
from tests.test_bad_input import TASK, _send_raw_body
from workers.db.models import DocumentResult, Rejection

pytestmark = pytest.mark.chaos

any_text = st.text(alphabet=st.characters(codec=None, categories=None), max_size=300)
huge_text = st.builds(lambda chunk, times: chunk * times, st.text(min_size=1, max_size=5), st.integers(1000, 60_000))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=12,
)
documentish = st.fixed_dictionaries(
    {"text": st.one_of(any_text, huge_text, json_values)},
    optional={"language": json_values, "metadata": json_values, "extra": json_values},
)


def test_every_fuzzed_message_ends_with_one_stored_outcome(sqlite_deployment: Deployment) -> None:
    deployment = sqlite_deployment
    deployment.extra_env["SLIMLINE_MAX_DOCUMENT_CHARS"] = "50000"
    worker = deployment.start_worker()
    sent: list[str] = []

    @settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(payload=documentish, args_shape=st.sampled_from(["one", "raw", "many"]))
    def send(payload: dict, args_shape: str) -> None:
        payload = {"id": f"fz-{uuid.uuid4().hex}", **payload}
        args = {"one": [payload], "raw": [payload["text"]], "many": [payload, payload]}[args_shape]
        sent.append(deployment.app.send_task(TASK, args=args, queue="documents").id)

    @settings(max_examples=60, deadline=None, database=None)
    @given(body=st.binary(max_size=200))
    def send_bytes(body: bytes) -> None:
        sent.append(_send_raw_body(deployment, body))

    send()
    send_bytes()
    deployment.drain()

    assert worker.alive()
    results = {row["message_id"] for row in deployment.store.iter_rows(DocumentResult)}
    rejections = {row["message_id"] for row in deployment.store.iter_rows(Rejection)}
    assert not results & rejections
    assert results | rejections == set(sent)
    print(f"\nfuzz: sent {len(sent)}, results {len(results)}, rejections {len(rejections)}")
