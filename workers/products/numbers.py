"""Numbers bound to their unit and attribute.

A number in a description must be one of the facts *as that fact states it*:
- with a unit: the same quantity, in any unit of its dimension ("2.2 kW" for "2200 W"), written with the
  language's decimal convention ("1,7 l" in German; "1.7 l" there is ``number_format``);
- a unit carried over a range or dimensions ("between 72 and 120 cm", "80 x 30 x 180 cm");
- without a unit: a fact that has no unit either ("seats: 6", "Bluetooth 5.3", "SPF 50"), and the words
  around the number must not name another attribute of the product ("6 speeds" when 6 is the number of
  blades and the speeds are 5). "140+ countries" fails although 140 cm is the desk's width.

Digits inside a code ("IPX7", "SpO2", "X50CrMoV15") are no number of the facts: "7 brush heads" is not
supported by a water resistance of IPX7. A bare degree ("90°", "90 Grad") is an angle or a temperature.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from wordfreq import zipf_frequency

from schemas import Product
from workers.shared.quantities import NumberMention, find_numbers, source_facts, unit_matcher
from workers.shared.vocabulary import Vocabulary, normalize_key

# Units of one dimension, as multiples of a base unit: a quantity may be stated in any of them.
_SCALE: dict[str, tuple[str, Decimal]] = {
    "mm": ("mm", Decimal(1)), "cm": ("mm", Decimal(10)), "m": ("mm", Decimal(1000)), "in": ("mm", Decimal("25.4")),
    "fl oz": ("ml", Decimal("29.5735")),
    "mg": ("mg", Decimal(1)), "g": ("mg", Decimal(1000)), "kg": ("mg", Decimal(1000000)),
    "ml": ("ml", Decimal(1)), "cl": ("ml", Decimal(10)), "l": ("ml", Decimal(1000)),
    "W": ("W", Decimal(1)), "kW": ("W", Decimal(1000)),
    "s": ("s", Decimal(1)), "min": ("s", Decimal(60)), "h": ("s", Decimal(3600)),
    "MB": ("MB", Decimal(1)), "GB": ("MB", Decimal(1000)), "TB": ("MB", Decimal(1000000)),
}
# Units of another system (inches, fluid ounces): a conversion is rounded, so it matches within this share.
_IMPERIAL = frozenset({"in", "fl oz"})
_CONVERSION_TOLERANCE = Decimal("0.02")
# Words between two numbers that make one group with one unit: dimensions ("80 x 30 x 180 cm"), in any
# order, and ranges ("72 to 120 cm"), which go up ("1440 à 75 Hz" is a resolution at a refresh rate).
_DIMENSION_JOINERS = frozenset({"x", "×", "/"})
_JOINERS = _DIMENSION_JOINERS | frozenset({"-", "–", "—", "to", "and", "bis", "und", "à", "et", "a", "y", "e",
                                           "al", "au", "bis zu", "to about"})
# A code: letters, then digits ("IPX7", "SpO2", "X50CrMoV15"); "2x", "1080p" or "65W" are numbers.
CODE = re.compile(r"(?<![\w-])[^\W\d_]+\d[\w]*")
# Degrees with no scale: an angle ("90°", "a 90-degree view") or a temperature.
_BARE_DEGREES = frozenset({"degrees", "grad", "degrés", "grados", "gradi", "°"})
_FUNCTION_ZIPF = 6.0  # a word this frequent in one of the languages says nothing about what is counted
_WORD = re.compile(r"[^\W\d_][\w-]*")
_CONTEXT_CHARS, _CONTEXT_WORDS = 50, 3


def normalized(value: Decimal, unit: str | None) -> tuple[Decimal, str | None]:
    if unit in _SCALE:
        base, factor = _SCALE[unit]
        return (value * factor).normalize(), base
    return value.normalize(), unit


def _stem(word: str) -> str:
    word = word.lower()
    return word[:5] if len(word) >= 5 else word


@lru_cache(maxsize=8192)
def _telling(word: str) -> bool:
    """A word that can say what a number counts: three letters or more, not a function word ("of", "und")."""
    return len(word) >= 3 and max(zipf_frequency(word, language) for language in ("en", "de", "fr", "es", "it")) \
        < _FUNCTION_ZIPF


def stems(words: list[str]) -> set[str]:
    """The telling words' stems, hyphenated words also by their parts ("2er-Set": "set")."""
    found = set()
    for word in words:
        for part in {word, *word.split("-")}:
            if _telling(part.lower()):
                found.add(_stem(part))
    return found


def without_codes(text: str) -> str:
    return CODE.sub(lambda match: " " * len(match.group(0)), text)


@dataclass(frozen=True)
class UnitlessFact:
    """A number a fact states without a unit, and the word stems that say what it counts."""

    value: Decimal
    attribute: str
    stems: frozenset[str]


class NumberBinder:
    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary
        self.units = unit_matcher(vocabulary)

    def unitless_facts(self, product: Product) -> list[UnitlessFact]:
        found = []
        for key, value in _items(product):
            stated = source_facts(without_codes(value), self.vocabulary)
            with_unit = {number for number, unit in stated if unit}
            for number in {number for number, unit in stated if unit is None} - with_unit:
                found.append(UnitlessFact(number.normalize(), key, frozenset(self._stems(key, value))))
        return found

    def attribute_stems(self, product: Product) -> dict[str, frozenset[str]]:
        """Per attribute, the stems of the words that name it (key, value, labels and counted nouns)."""
        return {key: frozenset(self._stems(key, value)) for key, value in _items(product)}

    @staticmethod
    def angles(product: Product) -> set[Decimal]:
        """Numbers the facts give in degrees with no scale ("field of view: 90°")."""
        found = set()
        for _, value in _items(product):
            for match in re.finditer(r"(\d+(?:[.,]\d+)?)\s?°(?![CF])", value):
                found.add(Decimal(match.group(1).replace(",", ".")).normalize())
        return found

    def _stems(self, key: str, value: str) -> set[str]:
        words = [*_WORD.findall(key), *_WORD.findall(value)]
        entry = self.vocabulary.lookup("attributes", key)
        if entry:
            canonical, labels = entry
            words += _WORD.findall(canonical)
            for language in self.vocabulary.languages:
                words += _WORD.findall(labels.get(language, ""))
                words += [w for noun in labels.get("counts", {}).get(language, ()) for w in _WORD.findall(noun)]
            words += [w for alias in labels.get("aliases", ()) for w in _WORD.findall(alias)]
        return stems(words)

    def check(self, masked: str, language: str, facts) -> list[tuple[str, str]]:  # facts: ProductFacts
        """(reason code, detail) per number that is not bound to a fact as the fact states it."""
        stated = {(value, unit) for value, unit in facts.quantities if unit}
        mentions = find_numbers(masked, language, self.vocabulary)
        units = _carried_units(masked, mentions)
        findings = []
        for mention, unit in zip(mentions, units):
            readings = [value for value in (mention.value, mention.other_value) if value is not None]
            if unit is None and mention.value is not None:
                # "a 6 in screen": "in" is read as inches only where the facts give this number in inches
                lenient = self.units.unit_at(masked, mention.end)
                if lenient and _states(mention.value, lenient[0], stated):
                    continue
            if unit == "°C" and mention.value is not None and mention.value.normalize() in facts.angles:
                found = self.units.unit_at(masked, mention.end, strict=True)
                if found and masked[mention.end:found[1]].strip(" -").lower() in _BARE_DEGREES:
                    continue  # "90 Grad" for a 90° field of view
            shown = f"{mention.raw}{' ' + unit if unit else ''}"
            if unit is not None:
                if mention.value is not None and _states(mention.value, unit, stated):
                    continue
                if mention.other_value is not None and _states(mention.other_value, unit, stated):
                    findings.append(("number_format", shown))
                elif any(value in facts.values for value in readings):
                    findings.append(("invented_unit", f"{shown}: the facts give {mention.raw} another unit"))
                else:
                    findings.append(("invented_number", shown))
                continue
            if not any(value in facts.values for value in readings):
                findings.append(("invented_number", shown))
                continue
            candidates = [fact for fact in facts.unitless if fact.value in {r.normalize() for r in readings}]
            context = _context(masked, mention)
            if not candidates:
                findings.append(("unbound_number", f"{shown} {' '.join(context[1])}: the facts give "
                                                   f"{mention.raw} only with a unit or inside a code"))
                continue
            around = stems(context[0] + context[1])
            own = frozenset().union(*(fact.stems for fact in candidates))
            if around & own:
                continue
            # Not named by its own fact's words: a count in words the facts do not use ("7 Bräunungsstufen") is
            # accepted; a count of another attribute ("6 speeds" when 6 is the blades) is not. What a number
            # counts is the word right after it.
            counted = stems(_counted(masked, mention))
            named = sorted(attribute for attribute, words in facts.attribute_stems.items()
                           if attribute not in {fact.attribute for fact in candidates} and (counted & words) - own)
            if named:
                attributes = ", ".join(sorted({fact.attribute for fact in candidates}))
                findings.append(("unbound_number", f"{shown} {' '.join(context[1])}: the facts' {mention.raw} "
                                                   f"is the {attributes}, not the {named[0]}"))
        return findings


def _states(value: Decimal, unit: str, stated: set[tuple[Decimal, str | None]]) -> bool:
    """The facts state this quantity: the same amount in a unit of the same dimension ("2.2 kW" for 2200 W,
    "0,85 kg" for 850 g), or, across unit systems ("39.6 cm" for 15.6 in), rounded within 2 %."""
    amount, base = normalized(value, unit)
    for fact_value, fact_unit in stated:
        fact_amount, fact_base = normalized(fact_value, fact_unit)
        if fact_base != base:
            continue
        if fact_amount == amount:
            return True
        if (unit in _IMPERIAL) != (fact_unit in _IMPERIAL) and fact_amount and \
                abs(amount - fact_amount) <= _CONVERSION_TOLERANCE * fact_amount:
            return True
    return False


def _carried_units(text: str, mentions: list[NumberMention]) -> list[str | None]:
    """Each mention's unit, a group's last unit carried back over joiners ("72 and 120 cm", "80 x 30 cm")."""
    units = [mention.unit for mention in mentions]
    for index in range(len(mentions) - 2, -1, -1):
        if units[index] is None and units[index + 1] is not None:
            between = normalize_key(text[mentions[index].end:mentions[index + 1].start])
            first, second = mentions[index].value, mentions[index + 1].value
            ascending = first is not None and second is not None and first < second
            if between in _DIMENSION_JOINERS or (between in _JOINERS and ascending):
                units[index] = units[index + 1]
    return units


def _items(product: Product) -> list[tuple[str, str]]:
    items = list(product.attributes.items())
    return items + [item for values in product.localized_attributes.values() for item in values.items()]


def _counted(text: str, mention: NumberMention) -> list[str]:
    """The word right after a number, with nothing but a space or hyphen between ("6 speeds", "2er-Set")."""
    match = re.match(r"[ \u00a0\u202f-]?(?:\w*-)?([^\W\d_][\w-]*)", text[mention.end:])
    return [match.group(0).strip(" \u00a0\u202f-")] if match else []


def _context(text: str, mention: NumberMention) -> tuple[list[str], list[str]]:
    """The words just before and just after a number."""
    before = _WORD.findall(text[max(0, mention.start - _CONTEXT_CHARS):mention.start])[-_CONTEXT_WORDS:]
    after = _WORD.findall(text[mention.end:mention.end + _CONTEXT_CHARS])[:_CONTEXT_WORDS]
    return before, after
