"""A document longer than spaCy's one-million-character limit, admitted by a raised
SLIMLINE_MAX_DOCUMENT_CHARS, is processed whole: entities found far into it carry global offsets,
nothing is dead-lettered, and the producer and the worker apply the same limit."""

from __future__ import annotations

import pytest

from schemas import Kind
from tests.conftest import Deployment
from workers.client import enqueue
from workers.settings import Settings

pytestmark = pytest.mark.chaos

PARAGRAPH = ("Customer services received a letter from Alice Martin in Paris about order 4471. "
             "She asks for a refund of EUR 120.00 to IBAN DE89370400440532013000 by 3 May 2024.\n\n")


def test_a_document_past_spacys_limit_is_processed_with_global_offsets(sqlite_deployment: Deployment) -> None:
    deployment = sqlite_deployment
    text = PARAGRAPH * (1_200_000 // len(PARAGRAPH))
    assert len(text) > 1_000_000
    deployment.extra_env |= {"SLIMLINE_MAX_DOCUMENT_CHARS": "2000000", "SLIMLINE_VISIBILITY_TIMEOUT_SECONDS": "20"}
    deployment.start_worker()
    settings = Settings(redis_url=deployment.redis_server.url, database_url=deployment.database_url,
                        max_document_chars=2_000_000)  # the producer's limit: the same setting as the worker's
    report = enqueue(Kind.documents, [{"id": "long-1", "text": text}], app=deployment.app, settings=settings)
    assert report.accepted == 1
    refused = enqueue(Kind.documents, [{"id": "too-long", "text": text + "x" * 900_000}], app=deployment.app,
                      settings=settings)
    assert refused.accepted == 0 and "is too long" in refused.rejected[0].errors[0].reason
    deployment.drain(timeout=600)

    [row] = deployment.store.current_results(Kind.documents)
    assert deployment.store.dead_letters() == []
    entities = row["result"]["entities"]
    ibans = [entity for entity in entities if entity["label"] == "IBAN"]
    assert len(ibans) == len(text) // len(PARAGRAPH)  # one per paragraph, to the very end
    assert max(entity["start"] for entity in entities) > 1_000_000
    assert all(text[entity["start"]:entity["end"]] == entity["text"] for entity in entities)
