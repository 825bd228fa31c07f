"""IBANs and BICs, validated by ``schwifty`` (ISO 13616 checksum, country length and BBAN format;
ISO 9362 structure and country). A candidate that fails validation is not an entity."""

from __future__ import annotations

import re
from collections.abc import Iterator

from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException

from workers.documents.entities.entity import EntityDict, make_entity

# Compact (DE89370400440532013000) or printed in groups (DE89 3704 0044 0532 0130 00).
_IBAN_CANDIDATE = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}[A-Z0-9]{0,30}(?:[ \u00a0][A-Z0-9]{1,4})*")
_GROUP_SEPARATOR = re.compile(r"[ \u00a0]")
_MIN_IBAN_CHARS = 15  # Norway

_BIC_CANDIDATE = re.compile(r"(?<![A-Za-z0-9])[A-Z]{6}[A-Z0-9]{2}(?:[A-Z0-9]{3})?(?![A-Za-z0-9])")
# An unknown (but well-formed) BIC counts only right after a keyword that announces one.
_BIC_KEYWORD = re.compile(r"(?i)\b(?:BIC|SWIFT)(?:[- ]?code)?\b[\s:.()/-]{0,6}$")


def _valid_iban(candidate: str) -> IBAN | None:
    try:
        return IBAN(candidate)
    except SchwiftyException:
        return None


def find_ibans(text: str) -> Iterator[EntityDict]:
    """Valid IBANs; a printed candidate that runs into following groups is shortened group by group."""
    for match in _IBAN_CANDIDATE.finditer(text):
        candidate = match.group()
        while len(candidate.replace(" ", "").replace("\u00a0", "")) >= _MIN_IBAN_CHARS:
            iban = _valid_iban(candidate)
            if iban is not None:
                start = match.start()
                yield make_entity(text, start, start + len(candidate), "IBAN", "rules", iban.compact)
                break
            parts = _GROUP_SEPARATOR.split(candidate)
            if len(parts) == 1:
                break
            candidate = candidate[: len(candidate) - len(parts[-1]) - 1]


def find_bics(text: str) -> Iterator[EntityDict]:
    """Structurally valid BICs of a registered bank, or of any bank right after "BIC"/"SWIFT"."""
    for match in _BIC_CANDIDATE.finditer(text):
        try:
            bic = BIC(match.group())
        except SchwiftyException:
            continue
        if bic.exists or _BIC_KEYWORD.search(text, max(0, match.start() - 20), match.start()):
            yield make_entity(text, match.start(), match.end(), "BIC", "rules", str(bic.compact))
