"""Amounts with a currency, in European and English formats, normalized to ``"<decimal> <ISO 4217>"``.

``1.234,56 €``, ``EUR 4,250.00``, ``CHF 1'200.50``, ``£300``, ``1 200 euros``, ``3.500 Euro``,
``50,- EUR``, ``$2.3 billion``, ``1,5 millones de euros``. A number alone is never an amount.

The number is read from its shape, not from the document's language, because letters mix formats
(an English invoice quoted in a German letter): a separator followed by exactly three digits groups
thousands, one followed by one or two digits (or ``-``) is the decimal separator. Currency symbols and
names come from the CLDR data in ``babel`` for the supported locales, plus the colloquial plurals
CLDR does not list (``dollars``, ``Franken``...).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from functools import lru_cache

from babel import Locale
from babel.numbers import get_currency_name

from workers.documents.entities.entity import EntityDict, make_entity
from workers.documents.entities.trie import trie_pattern

# ISO 4217 codes accepted when written as a code (a list, so that "TOP 10" or "ALL 500" stay words).
CODES = ("EUR", "USD", "GBP", "CHF", "JPY", "CNY", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK", "ISK", "PLN",
         "CZK", "HUF", "RON", "BGN", "TRY", "RUB", "UAH", "INR", "BRL", "MXN", "ZAR", "HKD", "SGD")
_LOCALES = ("en", "en_GB", "de", "de_CH", "de_AT", "fr", "fr_CH", "es", "it", "it_CH")
# Symbols CLDR gives to several currencies across locales, fixed to the one a European office means.
_SYMBOLS = {"€": "EUR", "£": "GBP", "$": "USD", "US$": "USD", "$US": "USD", "¥": "JPY",
            "Fr.": "CHF", "SFr.": "CHF", "sFr.": "CHF"}
# Colloquial names (CLDR names are formal: "dollars des États-Unis", "US-Dollar").
_WORDS = {"euro": "EUR", "euros": "EUR", "dollar": "USD", "dollars": "USD", "dólar": "USD", "dólares": "USD",
          "dollaro": "USD", "dollari": "USD", "pound": "GBP", "pounds": "GBP", "sterling": "GBP",
          "pfund": "GBP", "livre sterling": "GBP", "livres sterling": "GBP", "libra": "GBP", "libras": "GBP",
          "sterline": "GBP", "franken": "CHF", "franc suisse": "CHF", "francs suisses": "CHF",
          "franco suizo": "CHF", "francos suizos": "CHF", "franchi svizzeri": "CHF", "franco svizzero": "CHF"}
_SCALES = {"thousand": 3, "million": 6, "millions": 6, "millionen": 6, "mio.": 6, "mio": 6, "mln": 6,
           "millón": 6, "millones": 6, "milione": 6, "milioni": 6, "billion": 9, "billions": 9, "bn": 9,
           "milliarde": 9, "milliarden": 9, "mrd.": 9, "mrd": 9, "milliard": 9, "milliards": 9,
           "mil millones": 9, "miliardo": 9, "miliardi": 9}

_NUMBER = r"(?<![\d.,'’])(?:\d{1,3}(?:([.,'’ \u00a0\u202f])\d{3})(?:\1\d{3})*|\d+)(?:[.,](?:\d{1,2}|[-–—]))?(?![\d'’]|[.,]\d)"
_SPACE = r"[ \u00a0\u202f]?"


@lru_cache(maxsize=1)
def _currency_table() -> dict[str, str]:
    """Every written form of a currency (lower case for names) to its ISO code."""
    table = {code: code for code in CODES}
    for name in _LOCALES:
        locale = Locale.parse(name)
        for code in CODES:
            symbol = locale.currency_symbols.get(code)
            if symbol and not symbol.isalpha():
                table.setdefault(symbol, code)
            for count in (1, 2):
                table.setdefault(get_currency_name(code, count=count, locale=locale).lower(), code)
    table.update(_SYMBOLS)
    table.update(_WORDS)
    return table


@lru_cache(maxsize=1)
def _pattern() -> re.Pattern[str]:
    table = _currency_table()
    codes = [form for form in table if re.fullmatch(r"[A-Z]{3}", form)]
    names = [form for form in table if form not in codes and re.fullmatch(r"[^\W\d_]+(?:[ -][^\W\d_]+)*", form)]
    symbols = [form for form in table if form not in codes and form not in names]
    currency = (rf"(?:(?<![^\W\d_]){trie_pattern(symbols)}|\b{trie_pattern(codes)}\b"
                rf"|\b(?i:{trie_pattern(names)})\b)")
    scale = rf"(?i:{trie_pattern(_SCALES)})(?![\w])"
    connector = r"(?:[ \u00a0](?:de|di|d[’'])[ \u00a0]?)?"
    before = rf"(?P<cur1>{currency}){_SPACE}(?P<num1>{_NUMBER})(?:[ \u00a0](?P<scale1>{scale}))?"
    after = rf"(?P<num2>{_NUMBER})(?:[ \u00a0](?P<scale2>{scale}){connector})?{_SPACE}(?P<cur2>{currency})"
    return re.compile(f"{before}|{after}")


def parse_number(number: str) -> Decimal:
    """A number written with thousands groups and/or a decimal separator, read from its shape."""
    number = re.sub(r"[.,][-–—]$", "", number)
    decimal_part = ""
    tail = re.search(r"[.,](\d{1,2})$", number)
    if tail:
        decimal_part, number = tail.group(1), number[: tail.start()]
    integer_part = re.sub(r"\D", "", number)
    return Decimal(f"{integer_part}.{decimal_part}" if decimal_part else integer_part)


def _currency_code(written: str) -> str:
    table = _currency_table()
    return table.get(written) or table[written.lower()]


def find_amounts(text: str) -> Iterator[EntityDict]:
    for match in _pattern().finditer(text):
        side = "1" if match.group("num1") else "2"
        value = parse_number(match.group(f"num{side}"))
        scale = match.group(f"scale{side}")
        if scale:
            value = (value * Decimal(10) ** _SCALES[scale.lower()]).normalize()
        normalized = f"{value:f} {_currency_code(match.group(f'cur{side}'))}"
        yield make_entity(text, match.start(), match.end(), "MONEY", "rules", normalized)
