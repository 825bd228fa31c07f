"""Numbers bound to their unit and attribute.

A number in a description must be one of the facts *as that fact states it*:
- with a unit: the same quantity, in any unit of its dimension ("2.2 kW" for "2200 W"), written with the
  language's decimal convention ("1,7 l" in German; "1.7 l" there is ``number_format``);
- a unit carried over a range or dimensions ("between 72 and 120 cm", "80 x 30 x 180 cm");
- without a unit: a fact that has no unit either ("seats: 6", "Bluetooth 5.3", "SPF 50"), and the words
  around the number must name what that fact counts (its key, its label in any language, or the words next to
  the number in the fact). "140+ countries" fails although 140 cm is the desk's width.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

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
# Words between two numbers that make one group with one unit ("72 to 120 cm", "80 x 30 x 180 cm").
_JOINERS = frozenset({"x", "×", "-", "–", "—", "/", "to", "and", "bis", "und", "à", "et", "a", "y", "e", "al", "au",
                      "bis zu", "to about"})
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
        items = list(product.attributes.items())
        items += [item for values in product.localized_attributes.values() for item in values.items()]
        for key, value in items:
            stated = source_facts(value, self.vocabulary)
            with_unit = {number for number, unit in stated if unit}
            for number in {number for number, unit in stated if unit is None} - with_unit:
                found.append(UnitlessFact(number.normalize(), key, frozenset(self._stems(key, value))))
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
        return {_stem(word) for word in words if len(word) >= 2}

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
                                                   f"{mention.raw} only with a unit"))
            elif not any({_stem(w) for w in context[0] + context[1]} & fact.stems for fact in candidates):
                attributes = ", ".join(sorted({fact.attribute for fact in candidates}))
                findings.append(("unbound_number", f"{shown} {' '.join(context[1])}: the facts' {mention.raw} "
                                                   f"is the {attributes}"))
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
    """Each mention's unit, a group's last unit carried back over joiners ("72 and 120 cm")."""
    units = [mention.unit for mention in mentions]
    for index in range(len(mentions) - 2, -1, -1):
        if units[index] is None and units[index + 1] is not None:
            between = normalize_key(text[mentions[index].end:mentions[index + 1].start])
            if between in _JOINERS:
                units[index] = units[index + 1]
    return units


def _context(text: str, mention: NumberMention) -> tuple[list[str], list[str]]:
    """The words just before and just after a number."""
    before = _WORD.findall(text[max(0, mention.start - _CONTEXT_CHARS):mention.start])[-_CONTEXT_WORDS:]
    after = _WORD.findall(text[mention.end:mention.end + _CONTEXT_CHARS])[:_CONTEXT_WORDS]
    return before, after
