"""Dates written in en, de, fr, es or it, normalized to ISO 8601 by ``dateparser`` (restricted to the
document's language, so that "mar" is read as the month of the language the letter is in).

Found: numeric dates (``12.03.2024``, ``12/03/24``, ``2024-03-12``), day-month-year with a month name
(``12 March 2024``, ``20. März 2024``, ``1er juillet 2024``, ``3 de enero de 2023``, ``5 maggio 2024``),
English month-day-year (``March 12, 2024``) and month-year (``März 2024`` → ``2024-03``). Month names
come from CLDR (``babel``). A date without a year ("since Monday", "12 March") is left to spaCy: its value
depends on when the letter was written, which the text alone does not say. Numeric dates are read
day-first unless configured otherwise (``date_order``); a date that does not exist is not an entity.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from functools import lru_cache

import dateparser
from babel import Locale

from workers.documents.entities.entity import EntityDict, make_entity
from workers.documents.entities.trie import trie_pattern

SUPPORTED_LANGUAGES = ("en", "de", "fr", "es", "it")


@lru_cache(maxsize=1)
def _month_names() -> list[str]:
    names: set[str] = {"sept"}
    for language in SUPPORTED_LANGUAGES:
        months = Locale.parse(language).months
        for context in ("format", "stand-alone"):
            for width in ("wide", "abbreviated"):
                names.update(name.lower().rstrip(".") for name in months[context][width].values())
    return sorted(names)


@lru_cache(maxsize=1)
def _pattern() -> re.Pattern[str]:
    month = rf"{trie_pattern(_month_names())}\.?"
    day = r"(?:0?[1-9]|[12]\d|3[01])"
    year = r"(?:1[89]\d\d|2[01]\d\d)"
    space = r"[ \u00a0]+"
    numeric = rf"{day}([./-]){day}\1(?:{year}|\d\d)|{year}-[01]\d-[0-3]\d"
    day_month_year = (rf"{day}(?:\.|er|°|º|st|nd|rd|th)?{space}(?:(?:of|de){space})?{month}"
                      rf",?{space}(?:(?:de|del){space})?{year}")
    month_day_year = rf"{month}{space}{day}(?:st|nd|rd|th)?,?{space}{year}"
    month_year = rf"(?P<month_year>{month}{space}(?:(?:de|del){space})?{year})"
    return re.compile(
        rf"(?<![\w./-])(?:{numeric}|{day_month_year}|{month_day_year}|{month_year})(?![\w/]|[.-]\d)",
        re.IGNORECASE,
    )


@lru_cache(maxsize=4096)
def _parse(written: str, languages: tuple[str, ...], date_order: str, month_only: bool) -> datetime | None:
    settings = {
        "DATE_ORDER": date_order,
        "PREFER_DAY_OF_MONTH": "first",
        "REQUIRE_PARTS": ["month", "year"] if month_only else ["day", "month", "year"],
    }
    return dateparser.parse(written, languages=list(languages), settings=settings)


def find_dates(text: str, language: str | None, date_order: str = "DMY") -> Iterator[EntityDict]:
    """Dates with a year; ``language`` restricts how month names are read (any of the five if unknown)."""
    own = (language,) if language in SUPPORTED_LANGUAGES else ()
    for match in _pattern().finditer(text):
        month_only = match.group("month_year") is not None
        written = match.group()
        # A month name from another of the five languages (an English date quoted in a German letter).
        parsed = (own and _parse(written, own, date_order, month_only)) or _parse(
            written, SUPPORTED_LANGUAGES, date_order, month_only)
        if parsed is None:
            continue
        normalized = f"{parsed:%Y-%m}" if month_only else parsed.date().isoformat()
        yield make_entity(text, match.start(), match.end(), "DATE", "rules", normalized)
