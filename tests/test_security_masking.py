"""Masking of IBANs, card numbers, e-mail addresses and phone numbers in excerpts and log lines,
without eating dates, amounts, invoice numbers or non-Luhn digit runs."""

from __future__ import annotations

import logging

import pytest

from workers.security.masking import MaskingFilter, luhn_valid, mask


@pytest.mark.parametrize("text, expected", [
    ("Pay to DE89 3704 0044 0532 0130 00 today", "Pay to [IBAN] today"),
    ("IBAN:GB29NWBK60161331926819.", "IBAN:[IBAN]."),
    ("FR1420041010050500013M02606 and NL91ABNA0417164300", "[IBAN] and [IBAN]"),
    ("card 4111 1111 1111 1111 exp 12/27", "card [CARD] exp 12/27"),
    ("card 5500-0000-0000-0004", "card [CARD]"),
    ("amex 378282246310005, visa13 4222222222222", "amex [CARD], visa13 [CARD]"),
    ("ref 12 4111 1111 1111 1111 and 2024 5500 0000 0000 0004", "ref 12 [CARD] and 2024 [CARD]"),
    ("mail alice.smith+invoices@example.co.uk now", "mail [EMAIL] now"),
    ("Tel. +49 30 1234567 or (415) 555-2671", "Tel. [PHONE] or [PHONE]"),
    ("appelez le 06 12 34 56 78", "appelez le [PHONE]"),
])
def test_personal_data_is_masked(text: str, expected: str) -> None:
    assert mask(text) == expected


@pytest.mark.parametrize("text", [
    "Invoice 2024-0042 dated 12.03.2024 for EUR 4,250.00 (order 98765432)",
    "account 4111 1111 1111 1112 is not a card (Luhn fails)",
    "tracking 1234567890123",
    "ISO 8601: 2024-03-12T10:15:00Z, version 3.8.0",
    "connected to redis://worker@10.0.0.12/0",
])
def test_ordinary_numbers_are_left_alone(text: str) -> None:
    assert mask(text) == text


def test_luhn() -> None:
    assert luhn_valid("4111111111111111") and luhn_valid("79927398713")
    assert not luhn_valid("4111111111111112") and not luhn_valid("79927398710")


def test_a_masked_excerpt_keeps_its_shape_but_no_value() -> None:
    excerpt = ('{"id": "t-1", "iban": "DE89370400440532013000", "card": "4111111111111111", '
               '"email": "bob@bank.example", "phone": "+33 6 12 34 56 78", "amount": "12.50"}')
    masked = mask(excerpt)
    for secret in ("DE89370400440532013000", "4111111111111111", "bob@bank.example", "6 12 34 56 78"):
        assert secret not in masked
    assert '"amount": "12.50"' in masked and '"id": "t-1"' in masked


def test_the_logging_filter_masks_formatted_messages(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("slimline.test.masking")
    logger.addFilter(MaskingFilter())
    with caplog.at_level(logging.INFO, logger="slimline.test.masking"):
        logger.info("rejected item %s from %s", "DE89370400440532013000", "alice@example.com")
    assert caplog.messages == ["rejected item [IBAN] from [EMAIL]"]
