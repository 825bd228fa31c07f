"""E-mail addresses, and phone numbers found and validated by ``phonenumbers`` (Google's libphonenumber
metadata), normalized to E.164. A number written without a country code is read in the region the
document's language points to (configurable: ``SLIMLINE_DOCUMENTS__PHONE_REGIONS``)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import phonenumbers

from workers.documents.entities.entity import EntityDict, make_entity

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b"
)
_DEFAULT_REGION = "GB"


def find_emails(text: str) -> Iterator[EntityDict]:
    for match in _EMAIL.finditer(text):
        local, domain = match.group().rsplit("@", 1)
        yield make_entity(text, match.start(), match.end(), "EMAIL", "rules", f"{local}@{domain.lower()}")


def find_phones(text: str, region: str | None) -> Iterator[EntityDict]:
    """Numbers libphonenumber considers valid (right length and prefix for their country)."""
    matcher = phonenumbers.PhoneNumberMatcher(text, region or _DEFAULT_REGION, leniency=phonenumbers.Leniency.VALID)
    for match in matcher:
        e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        yield make_entity(text, match.start, match.end, "PHONE", "rules", e164)
