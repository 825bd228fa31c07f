"""Numbers and units: read them from attribute values (source convention), write them per locale
(babel/CLDR: decimal commas, grouping, unit symbols), and find them in generated text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from babel.numbers import format_decimal, format_percent, get_decimal_symbol, get_group_symbol
from babel.units import format_unit

from workers.shared.vocabulary import Unit, Vocabulary

SPACES = " \u00a0\u202f"
# A number as written anywhere: digits with ".", "," or (thin/no-break) spaces between digit groups.
_NUMBER = r"\d+(?:[.,\u00a0\u202f]\d+)*"
_SPACE_GROUPED_NUMBER = r"\d{1,3}(?: \d{3}(?!\d))+"  # French "2 200" with an ordinary space
_JOINERS = {"x": "×", "×": "×", "X": "×", "-": "–", "–": "–", "to": "–"}


@dataclass(frozen=True)
class Quantity:
    """A whole attribute value that is a number, a range or dimensions, with an optional unit."""

    numbers: tuple[Decimal, ...]
    joiner: str | None  # "×" for dimensions, "–" for ranges, None for a single number
    unit: Unit | None


@dataclass(frozen=True)
class NumberMention:
    """A number found in a text, how it reads in the text's language and in the other convention."""

    raw: str
    start: int
    end: int
    value: Decimal | None  # read with the language's decimal and group symbols
    other_value: Decimal | None  # read with the other convention (a wrong decimal separator)
    unit: str | None  # unit id right after the number, if any


def _read(raw: str, decimal: str, groups: str) -> Decimal | None:
    """Read ``raw`` with one convention; None unless it is well formed in it."""
    integer, _, fraction = raw.partition(decimal) if decimal in raw else (raw, "", "")
    if fraction and not fraction.isdigit():
        return None
    chunks = re.split(f"[{re.escape(groups)}]", integer)
    if not all(chunk.isdigit() for chunk in chunks):
        return None
    if len(chunks) > 1 and (len(chunks[0]) > 3 or any(len(chunk) != 3 for chunk in chunks[1:])):
        return None
    try:
        return Decimal("".join(chunks) + ("." + fraction if fraction else ""))
    except InvalidOperation:
        return None


def read_source_number(raw: str) -> Decimal | None:
    """Attribute values: "." is decimal and "," groups thousands ("2,200"); any other comma is decimal ("1,5")."""
    value = _read(raw, ".", "," + SPACES)
    return value if value is not None else _read(raw, ",", "." + SPACES)


def _separators(language: str, locale: str) -> tuple[str, str]:
    decimal, group = get_decimal_symbol(locale), get_group_symbol(locale)
    groups = group + (SPACES if group in SPACES else "")
    return decimal, groups


class UnitMatcher:
    """Recognises the unit written right after a number, in any of the five languages' spellings.

    Spellings of one or two characters ("l", "W", "A", "h") match with their exact case, so that the
    Spanish/Italian preposition "a" is not read as amperes. In running text (``strict``) "in" is not read
    as inches: "2 in 1" and "SPF 50 in a bottle" are far more common there; an attribute value such as
    "6 in" is read with it.
    """

    _AMBIGUOUS_IN_TEXT = frozenset({"in"})

    def __init__(self, vocabulary: Vocabulary) -> None:
        exact: dict[str, str] = {}
        folded: dict[str, str] = {}
        for unit in vocabulary.units.values():
            for name in set(unit.aliases) | set(_cldr_spellings(unit, tuple(vocabulary.languages.values()))):
                if len(name) <= 2:
                    exact.setdefault(name, unit.id)
                else:
                    folded.setdefault(name.lower(), unit.id)
        self._exact, self._folded = exact, folded
        self._lenient = self._compile(folded, exact)
        self._strict = self._compile(folded, {k: v for k, v in exact.items() if k not in self._AMBIGUOUS_IN_TEXT})

    @staticmethod
    def _compile(folded: dict[str, str], exact: dict[str, str]) -> re.Pattern[str]:
        longer = "|".join(re.escape(name) for name in sorted(folded, key=len, reverse=True))
        shorter = "|".join(re.escape(name) for name in sorted(exact, key=len, reverse=True))
        return re.compile(rf"[ \u00a0\u202f-]?((?i:{longer})|{shorter})(?![^\W\d_])")

    def unit_at(self, text: str, position: int, strict: bool = False) -> tuple[str, int] | None:
        """The unit id starting at ``position`` (after an optional space or hyphen) and where it ends."""
        match = (self._strict if strict else self._lenient).match(text, position)
        if not match:
            return None
        spelling = match.group(1)
        return self._exact.get(spelling) or self._folded[spelling.lower()], match.end()


def _cldr_spellings(unit: Unit, languages: tuple[dict[str, str], ...]) -> list[str]:
    if unit.cldr is None:
        return []
    spellings = []
    for language in languages:
        for length in ("short", "long", "narrow"):
            for amount in (1, 5):
                formatted = format_unit(amount, unit.cldr, length=length, locale=language["locale"])
                spellings.append(formatted.replace(str(amount), "", 1).strip(SPACES))
    return [spelling for spelling in spellings if spelling]


@lru_cache(maxsize=4)
def unit_matcher(vocabulary: Vocabulary) -> UnitMatcher:
    return UnitMatcher(vocabulary)


def find_numbers(text: str, language: str, vocabulary: Vocabulary) -> list[NumberMention]:
    """Every number in ``text`` read with the language's convention (and the other one), with its unit."""
    locale = vocabulary.locale(language)
    decimal, groups = _separators(language, locale)
    other_decimal, other_groups = (",", "." + SPACES) if decimal == "." else (".", "," + SPACES)
    pattern = f"{_SPACE_GROUPED_NUMBER}|{_NUMBER}" if " " in groups else _NUMBER
    matcher = unit_matcher(vocabulary)
    mentions = []
    for match in re.finditer(pattern, text):
        raw = match.group(0)
        unit = matcher.unit_at(text, match.end(), strict=True)
        mentions.append(NumberMention(
            raw=raw, start=match.start(), end=match.end(), value=_read(raw, decimal, groups),
            other_value=_read(raw, other_decimal, other_groups), unit=unit[0] if unit else None,
        ))
    return mentions


def source_facts(text: str, vocabulary: Vocabulary, language: str | None = None) -> set[tuple[Decimal, str | None]]:
    """(value, unit) pairs stated by a source text; a unit after the last of "30 x 20 x 10 cm" or
    "42–52 cm" applies to every number of the group. ``language`` reads a producer's localized value."""
    matcher = unit_matcher(vocabulary)
    facts: set[tuple[Decimal, str | None]] = set()
    pending: list[Decimal] = []
    position = 0
    for match in re.finditer(_NUMBER, text):
        between = text[position:match.start()].strip(SPACES)
        if pending and between.lower() not in _JOINERS:
            facts.update((value, None) for value in pending)
            pending = []
        raw = match.group(0)
        if language and language != vocabulary.source_language:
            decimal, groups = _separators(language, vocabulary.locale(language))
            value = _read(raw, decimal, groups) or read_source_number(raw)
        else:
            value = read_source_number(raw)
        position = match.end()
        if value is None:
            continue
        pending.append(value)
        unit = matcher.unit_at(text, match.end())
        if unit:
            facts.update((number, unit[0]) for number in pending)
            facts.update((number, None) for number in pending)
            pending = []
            position = unit[1]
    facts.update((value, None) for value in pending)
    return facts


def parse_quantity(value: str, vocabulary: Vocabulary) -> Quantity | None:
    """``value`` as a quantity if the whole of it is one ("1.7 L", "30 x 20 cm", "42–52 cm", "3 pairs")."""
    matcher = unit_matcher(vocabulary)
    numbers: list[Decimal] = []
    joiner: str | None = None
    position = 0
    text = value.strip()
    number_pattern = re.compile(_NUMBER)
    while True:
        match = number_pattern.match(text, position)
        if not match or (number := read_source_number(match.group(0))) is None:
            return None
        numbers.append(number)
        position = match.end()
        rest = text[position:]
        joined = re.match(r"\s*(x|×|X|-|–|to)\s*(?=\d)", rest)
        if joined and (joiner is None or _JOINERS[joined.group(1)] == joiner):
            joiner = _JOINERS[joined.group(1)]
            position += joined.end()
            continue
        break
    if joiner == "–" and len(numbers) != 2:
        return None
    unit = None
    if position < len(text):
        found = matcher.unit_at(text, position)
        if not found or text[found[1]:].strip(SPACES + "."):
            return None
        unit = vocabulary.units[found[0]]
    return Quantity(numbers=tuple(numbers), joiner=joiner, unit=unit)


def format_number(number: Decimal, language: str, vocabulary: Vocabulary) -> str:
    return format_decimal(number, locale=vocabulary.locale(language), decimal_quantization=False)


def format_quantity(quantity: Quantity, language: str, vocabulary: Vocabulary) -> str:
    """The quantity as written in ``language``: babel's CLDR unit patterns, or the unit's own symbol/word."""
    locale = vocabulary.locale(language)
    *head, last = quantity.numbers
    prefix = "".join(f"{format_number(n, language, vocabulary)}{_joined(quantity.joiner)}" for n in head)
    unit = quantity.unit
    if unit is None:
        return prefix + format_number(last, language, vocabulary)
    if unit.id == "%":  # CLDR percent patterns: "95%" in English and Italian, "95 %" in German, French, Spanish
        return prefix + format_percent(last / 100, locale=locale, decimal_quantization=False)
    if unit.cldr:
        return prefix + format_unit(last, unit.cldr, length="short", locale=locale)
    if unit.count_words:
        singular, plural = unit.count_words[language]
        return f"{prefix}{format_number(last, language, vocabulary)} {singular if last == 1 else plural}"
    space = _unit_space(locale)
    return f"{prefix}{format_number(last, language, vocabulary)}{space}{unit.symbol}"


def _joined(joiner: str | None) -> str:
    return " × " if joiner == "×" else "–"


@lru_cache(maxsize=16)
def _unit_space(locale: str) -> str:
    """The space CLDR puts between a number and a unit symbol in this locale (e.g. U+202F in French)."""
    return format_unit(5, "mass-gram", length="short", locale=locale)[1:-1] or " "
