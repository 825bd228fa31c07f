"""The input contracts: what is accepted, what is rejected and why; the checked-in JSON Schemas."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas import Document, Kind, Product, Transaction
from schemas.export import schema_path, schema_text
from workers.runtime.envelope import Envelope, errors_from_validation, validate
from workers.settings import Settings


@pytest.mark.parametrize("kind", list(Kind))
def test_checked_in_json_schemas_match_the_models(kind: Kind) -> None:
    assert schema_path(kind).read_text() == schema_text(kind), "run: python -m schemas.export"


def test_a_document_needs_an_id_and_non_empty_text() -> None:
    assert Document.model_validate({"id": "a-1", "text": "Hello"}).text == "Hello"
    for payload, field in [({"text": "x"}, "id"), ({"id": "a"}, "text"), ({"id": "a", "text": " \n"}, "text"),
                           ({"id": "a", "text": 3}, "text"), ({"id": "has space", "text": "x"}, "id"),
                           ({"id": "a", "text": "x", "unknown": 1}, "unknown")]:
        with pytest.raises(ValidationError) as caught:
            Document.model_validate(payload)
        assert errors_from_validation(caught.value)[0].field == field


def test_document_size_limit_comes_from_the_validation_context() -> None:
    Document.model_validate({"id": "a", "text": "x" * 10})
    with pytest.raises(ValidationError, match="too long: 11 characters, the limit is 10"):
        Document.model_validate({"id": "a", "text": "x" * 11}, context={"max_document_chars": 10})


@pytest.mark.parametrize("text", ["bad \ud800 surrogate", "nul \x00 byte"])
def test_text_that_cannot_be_stored_as_utf8_is_rejected(text: str) -> None:
    with pytest.raises(ValidationError):
        Document.model_validate({"id": "a", "text": text})


def test_transaction_and_product_contracts() -> None:
    transaction = Transaction.model_validate({"id": "t1", "account_id": "acc", "amount": "12.50", "currency": "EUR",
                                              "timestamp": "2024-05-01T10:00:00Z",
                                              "counterparty_iban": "DE89370400440532013000"})
    assert str(transaction.amount) == "12.50"
    with pytest.raises(ValidationError):
        Transaction.model_validate({"id": "t1", "account_id": "acc", "amount": "x", "currency": "euro",
                                    "timestamp": "yesterday"})
    assert Product.model_validate({"id": "p1", "name": "Mug", "languages": ["en", "fr"]}).languages == ["en", "fr"]
    with pytest.raises(ValidationError):
        Product.model_validate({"id": "p1", "name": "Mug", "languages": []})


def test_the_envelope_must_carry_exactly_one_object() -> None:
    settings = Settings()
    good = {"id": "d1", "text": "fine"}
    assert isinstance(validate(Kind.documents, Envelope("m", [good], {}), settings), Document)
    cases = [([], {}, "args"), ([good, good], {}, "args"), (["text"], {}, "payload"),
             ([good], {"priority": 9}, "kwargs"), ("not a list", {}, "args")]
    for args, kwargs, field in cases:
        errors = validate(Kind.documents, Envelope("m", args, kwargs), settings)
        assert isinstance(errors, list) and errors[0].field == field


def test_retry_metadata_is_read_defensively() -> None:
    assert Envelope("m", [{}], {"attempt": 3}).attempt == 3
    assert Envelope("m", [{}], {"attempt": "3"}).attempt == 1
    assert Envelope("m", [{}], {"attempt": -1}).attempt == 1


def test_the_message_guard_refuses_what_would_crash_the_consumer() -> None:
    from datetime import datetime, timedelta, timezone

    from celery.exceptions import InvalidTaskError

    from workers.runtime.batch_task import check_task_message

    body = [[{"id": "d", "text": "t"}], {}, {}]
    soon = (datetime.now(timezone.utc) + timedelta(seconds=5)).isoformat()
    check_task_message({"task": "slimline.documents.process", "id": "abc-1", "eta": soon}, body, 30)
    bad = [
        ({"task": "slimline.documents.process"}, body, "id"),
        ({"task": "slimline.documents.process", "id": ["a"]}, body, "id"),
        ({"task": "slimline.documents.process", "id": "x" * 65}, body, "id"),
        ({"id": "abc"}, body, "task header"),
        ({"task": "t", "id": "abc", "eta": "tomorrow"}, body, "eta"),
        ({"task": "t", "id": "abc", "eta": "2999-01-01T00:00:00"}, body, "eta"),
        ({"task": "t", "id": "abc"}, "text", "body"),
        ({"task": "t", "id": "abc"}, [1, 2, 3], "body"),
        ({"task": "t", "id": "abc"}, {"args": []}, "body"),
    ]
    for headers, message_body, mentioned in bad:
        with pytest.raises(InvalidTaskError, match=mentioned):
            check_task_message(headers, message_body, 30)
