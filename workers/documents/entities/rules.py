"""The rule layer: what back offices need and statistical NER does not find (IBAN, BIC, amounts,
dates, e-mails, phones, invoice/order/reference numbers, domain lexicon terms), in any language.

Where two rules claim overlapping text, the more trustworthy wins (``RULE_PRIORITY``: checksum-validated
first, lexicon last; then the longer span), so the layer's own output never overlaps.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from workers.documents.entities.amounts import find_amounts
from workers.documents.entities.banking import find_bics, find_ibans
from workers.documents.entities.contacts import find_emails, find_phones
from workers.documents.entities.dates import find_dates
from workers.documents.entities.entity import EntityDict
from workers.documents.entities.lexicon import Lexicon
from workers.documents.entities.references import find_references
from workers.registry import register

RULE_PRIORITY = {
    "IBAN": 0, "EMAIL": 1, "BIC": 2, "MONEY": 3, "DATE": 4,
    "INVOICE_NUMBER": 5, "ORDER_NUMBER": 5, "REFERENCE_NUMBER": 5, "PHONE": 6,
}
_LEXICON_PRIORITY = 7

DEFAULT_PHONE_REGIONS = {"en": "GB", "de": "DE", "fr": "FR", "es": "ES", "it": "IT"}


def non_overlapping(candidates: Iterable[EntityDict], rank: Mapping[str, int], default_rank: int) -> list[EntityDict]:
    """Keep the best-ranked (then longest, then first) of overlapping entities; result sorted by offset.
    O(n log n): a 1.5 MB document has tens of thousands of candidates."""
    kept: list[EntityDict] = []  # sorted by start and non-overlapping, hence also sorted by end
    starts: list[int] = []
    ordered = sorted(candidates, key=lambda e: (rank.get(e["label"], default_rank), e["start"] - e["end"], e["start"]))
    for entity in ordered:
        position = bisect.bisect_right(starts, entity["start"])
        clear_before = position == 0 or kept[position - 1]["end"] <= entity["start"]
        clear_after = position == len(kept) or entity["end"] <= kept[position]["start"]
        if clear_before and clear_after:
            kept.insert(position, entity)
            starts.insert(position, entity["start"])
    return kept


class RuleEntityExtractor:
    def __init__(self, lexicon_path: Path | None = None, phone_regions: Mapping[str, str] | None = None,
                 date_order: str = "DMY") -> None:
        self.lexicon = Lexicon(lexicon_path) if lexicon_path is not None else None
        self.phone_regions = dict(DEFAULT_PHONE_REGIONS if phone_regions is None else phone_regions)
        self.date_order = date_order

    def _candidates(self, text: str, language: str | None) -> Iterator[EntityDict]:
        yield from find_ibans(text)
        yield from find_emails(text)
        yield from find_bics(text)
        yield from find_amounts(text)
        yield from find_dates(text, language, self.date_order)
        yield from find_references(text)
        yield from find_phones(text, self.phone_regions.get(language or ""))
        if self.lexicon is not None:
            yield from self.lexicon.find(text, language)

    def extract(self, text: str, language: str | None) -> list[EntityDict]:
        """Rule entities of one text, non-overlapping, sorted by offset."""
        return non_overlapping(self._candidates(text, language), RULE_PRIORITY, _LEXICON_PRIORITY)

    def __call__(self, texts: list[str], languages: list[str | None]) -> list[list[EntityDict]]:
        return [self.extract(text, language) for text, language in zip(texts, languages, strict=True)]


@register("entities.rules")
def make_rule_entities(lexicon_path: Path | None = None, phone_regions: Mapping[str, str] | None = None,
                       date_order: str = "DMY") -> RuleEntityExtractor:
    return RuleEntityExtractor(lexicon_path, phone_regions, date_order)
