"""Mask personal data in stored excerpts and log lines: IBANs, card numbers (Luhn-valid, 13–19
digits), e-mail addresses and phone numbers (Google's libphonenumber rules, via ``phonenumbers``).

Masking replaces the whole value with a marker (``[IBAN]``, ``[CARD]``, ``[EMAIL]``, ``[PHONE]``):
an excerpt still shows what kind of value was there, never the value.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

import phonenumbers

# Country code, check digits, then 11–30 letters/digits, optionally grouped by single spaces.
_IBAN = re.compile(r"\b[A-Z]{2}[0-9]{2}(?:[ ]?[A-Z0-9]){11,30}\b")
# A run of 13 or more digits, optionally grouped by single spaces or hyphens; the card number is
# looked for inside it (a run may start with another number: "ref 12 4111 1111 1111 1111").
_DIGIT_RUN = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){12,}(?![0-9])")
_DIGIT_GROUP = re.compile(r"[0-9]+")
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,63}\b")  # a TLD, not an IP
# Regions whose national formats are recognised without a leading +CC (international ones always are).
DEFAULT_PHONE_REGIONS = ("DE", "FR", "GB", "US", "NL", "BE", "ES", "IT", "CH", "AT")


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _mask_run(run: str) -> str:
    """Mask the card numbers in a digit run: the longest Luhn-valid 13–19 digits made of whole groups."""
    groups = list(_DIGIT_GROUP.finditer(run))
    pieces, last_end, first = [], 0, 0
    while first < len(groups):
        for last in range(len(groups) - 1, first - 1, -1):
            digits = "".join(group.group(0) for group in groups[first:last + 1])
            if 13 <= len(digits) <= 19 and luhn_valid(digits):
                pieces += [run[last_end:groups[first].start()], "[CARD]"]
                last_end, first = groups[last].end(), last + 1
                break
        else:
            first += 1
    return "".join(pieces) + run[last_end:]


def _mask_cards(text: str) -> str:
    return _DIGIT_RUN.sub(lambda match: _mask_run(match.group(0)), text)


def _mask_phones(text: str, regions: Iterable[str]) -> str:
    spans: set[tuple[int, int]] = set()
    for region in regions:
        for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            spans.add((match.start, match.end))
    for start, end in sorted(spans, reverse=True):  # right to left, so earlier offsets stay valid
        if "[" not in text[start:end]:
            text = text[:start] + "[PHONE]" + text[end:]
    return text


def mask(text: str, phone_regions: Iterable[str] = DEFAULT_PHONE_REGIONS) -> str:
    """``text`` with IBANs, card numbers, e-mail addresses and phone numbers replaced by markers."""
    text = _IBAN.sub("[IBAN]", text)
    text = _mask_cards(text)
    text = _EMAIL.sub("[EMAIL]", text)
    return _mask_phones(text, phone_regions)


# Cheap pre-check: only lines with an @ or a run of 7+ digits (possibly grouped) can hold what mask() hides.
_MAYBE_PERSONAL = re.compile(r"@|[0-9](?:[ ()./+-]?[0-9]){6,}")


class MaskingFilter(logging.Filter):
    """Masks a log record's final message. A worker installs it on every log handler at start
    (:func:`install_masking_filter`, called by its bootsteps), whatever command started it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _MAYBE_PERSONAL.search(message):
            masked = mask(message)
            if masked != message:
                record.msg, record.args = masked, None
        return True


def install_masking_filter(loggers: Iterable[logging.Logger] = ()) -> int:
    """Add the filter to every handler of the root logger and of ``loggers`` that lacks one; returns how
    many handlers now carry it."""
    covered = 0
    for logger in (logging.getLogger(), *loggers):
        for handler in logger.handlers:
            if not any(isinstance(existing, MaskingFilter) for existing in handler.filters):
                handler.addFilter(MaskingFilter())
            covered += 1
    return covered
