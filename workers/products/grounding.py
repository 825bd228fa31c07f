"""Checks a generated description against the product's own facts before it may be stored.

Every failure carries a stable reason code (``REASON_CODES``) so that results can be counted and
compared across releases; the detail says what exactly was found.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from schemas import Product
from workers.shared.quantities import find_numbers, parse_quantity, source_facts
from workers.products.templates import brand_of
from workers.shared.language import LanguageDetector
from workers.shared.vocabulary import Vocabulary, default_vocabulary

CLAIMS_PATH = Path(__file__).parent / "data" / "claims.json"

REASON_CODES = frozenset({
    "empty",               # nothing was generated
    "too_short",           # fewer characters than the lower bound
    "too_long",            # more characters than the upper bound
    "wrong_language",      # the detected language is not the requested one
    "invented_number",     # a number that no attribute (nor the name) states
    "invented_unit",       # a stated number with a unit the attributes do not give it
    "number_format",       # a stated quantity written with the other decimal convention ("1.7 l" in German)
    "unsupported_claim",   # waterproof, organic, warranty… that the attributes do not support
    "unsupported_attribute",  # a colour or material (from the vocabulary) that the attributes do not give
    "name_missing",        # the product's name does not appear verbatim
    "name_altered",        # the name appears with other spelling or case
    "brand_altered",       # the brand appears misspelt or with other case
    "repetition",          # a loop: repeated phrases or sentences
    "markup",              # chat tokens, braces, Markdown, links or e-mail addresses
})
# The codes the check had before the labelled set (workers/products/data/grounding/) existed.
LEGACY_CODES = frozenset(REASON_CODES)

# Which kind of error of the labelled set each reason code reports (benchmarks/products_grounding.py).
KIND_OF_CODE = {
    "invented_number": "unbound_number", "invented_unit": "unbound_number", "number_format": "unbound_number",
    "unsupported_claim": "invented_feature", "unsupported_attribute": "invented_feature",
    "brand_altered": "invented_name", "wrong_language": "wrong_language",
}



@dataclass(frozen=True)
class Finding:
    code: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "detail": self.detail}


@dataclass(frozen=True)
class Verdict:
    reasons: tuple[Finding, ...]
    detected_language: str | None = None
    language_score: float | None = None

    @property
    def passed(self) -> bool:
        return not self.reasons

    @property
    def codes(self) -> list[str]:
        return sorted({finding.code for finding in self.reasons})

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": "pass" if self.passed else "fail",
            "reasons": [finding.to_dict() for finding in self.reasons],
            "detected_language": self.detected_language,
            "language_score": self.language_score,
        }


@dataclass(frozen=True)
class LengthBounds:
    min_chars: int = 60
    max_chars: int = 1200


@dataclass
class ProductFacts:
    """What a description of this product may state, computed once per product."""

    name: str
    brand: str | None
    quantities: set[tuple[Decimal, str | None]]
    values: set[Decimal]
    verbatim: list[str]  # name, brand, non-quantity values: masked before numbers and language are read
    attribute_text: str  # keys and values in every language, for claim support
    supported_claims: set[str] = field(default_factory=set)


class GroundingChecker:
    def __init__(self, detect_language: LanguageDetector, vocabulary: Vocabulary | None = None,
                 bounds: LengthBounds | None = None, claims_path: Path = CLAIMS_PATH) -> None:
        self.detect_language = detect_language
        self.vocabulary = vocabulary or default_vocabulary()
        self.bounds = bounds or LengthBounds()
        self.claims = _compile_claims(json.loads(claims_path.read_text(encoding="utf-8")))
        self.attribute_words = _attribute_words(self.vocabulary)

    def facts(self, product: Product) -> ProductFacts:
        brand = brand_of(product, self.vocabulary)[1]
        quantities = source_facts(product.name, self.vocabulary)
        verbatim = [product.name] + ([brand] if brand else [])
        texts = [product.name]
        for key, value in product.attributes.items():
            quantities |= source_facts(value, self.vocabulary)
            texts += [key, value]
            if parse_quantity(value, self.vocabulary) is None and re.search(r"\d", value):
                verbatim.append(value)
        for language, values in product.localized_attributes.items():
            for key, value in values.items():
                quantities |= source_facts(value, self.vocabulary, language=language)
                texts.append(value)
        attribute_text = "\n".join(texts)
        facts = ProductFacts(
            name=product.name, brand=brand, quantities=quantities, values={value for value, _ in quantities},
            verbatim=sorted(set(verbatim), key=len, reverse=True), attribute_text=attribute_text,
        )
        facts.supported_claims = {concept for concept, claim in self.claims.items() if claim.supported(attribute_text)}
        return facts

    def check(self, text: str, product: Product, language: str, facts: ProductFacts | None = None) -> Verdict:
        facts = facts or self.facts(product)
        if not text.strip():
            return Verdict(reasons=(Finding("empty", "no text"),))
        findings: list[Finding] = []
        findings += self._length(text)
        findings += _markup(text)
        findings += _name_and_brand(text, facts)
        masked = _mask(text, facts.verbatim)
        findings += self._numbers(masked, language, facts)
        findings += self._claims(masked, language, facts)
        findings += self._attribute_words(masked, language, facts)
        findings += _repetition(text)
        detected, score = self.detect_language([" ".join(masked.split())])[0]
        if detected != language:
            findings.append(Finding("wrong_language", f"detected {detected} ({score}), expected {language}"))
        return Verdict(reasons=tuple(findings), detected_language=detected, language_score=score)

    def _length(self, text: str) -> list[Finding]:
        if len(text) < self.bounds.min_chars:
            return [Finding("too_short", f"{len(text)} characters < {self.bounds.min_chars}")]
        if len(text) > self.bounds.max_chars:
            return [Finding("too_long", f"{len(text)} characters > {self.bounds.max_chars}")]
        return []

    def _numbers(self, text: str, language: str, facts: ProductFacts) -> list[Finding]:
        findings = []
        for mention in find_numbers(text, language, self.vocabulary):
            readings = [value for value in (mention.value, mention.other_value) if value is not None]
            shown = f"{mention.raw}{' ' + mention.unit if mention.unit else ''}"
            if mention.unit is None:
                if not any(value in facts.values for value in readings):
                    findings.append(Finding("invented_number", shown))
            elif mention.value is not None and (mention.value, mention.unit) in facts.quantities:
                continue
            elif mention.other_value is not None and (mention.other_value, mention.unit) in facts.quantities:
                findings.append(Finding("number_format", shown))
            elif any(value in facts.values for value in readings):
                findings.append(Finding("invented_unit", shown))
            else:
                findings.append(Finding("invented_number", shown))
        return findings

    def _claims(self, text: str, language: str, facts: ProductFacts) -> list[Finding]:
        findings = []
        for concept, claim in self.claims.items():
            if concept in facts.supported_claims:
                continue
            match = claim.search(text, language)
            if match:
                findings.append(Finding("unsupported_claim", f"{concept}: {match!r}"))
        return findings

    def _attribute_words(self, text: str, language: str, facts: ProductFacts) -> list[Finding]:
        """Colours and materials the text names but the attributes (in any language) do not."""
        findings = []
        for concept, patterns in self.attribute_words.items():
            match = patterns.get(language) and patterns[language].search(text)
            if match and not any(p.search(facts.attribute_text) for p in patterns.values()):
                findings.append(Finding("unsupported_attribute", f"{concept}: {match.group(0)!r}"))
        return findings


def _attribute_words(vocabulary: Vocabulary) -> dict[str, dict[str, re.Pattern[str]]]:
    """Per colour and material of the vocabulary, a pattern of its forms in each language."""
    words: dict[str, dict[str, re.Pattern[str]]] = {}
    for section in ("colours", "materials"):
        for concept, entry in getattr(vocabulary, section).items():
            per_language: dict[str, re.Pattern[str]] = {}
            for language in vocabulary.languages:
                forms = entry[language]
                if isinstance(forms, str):  # the source language: the word and its aliases
                    alternatives = [re.escape(form) for form in (forms, concept, *entry.get("aliases", ()))]
                elif "word" in forms:
                    alternatives = [re.escape(forms["word"])]
                elif "stem" in forms:  # German adjective: declined endings only, so "rot" does not match "Rotation"
                    alternatives = [re.escape(forms["stem"]) + "(?:e|er|em|en|es)?", re.escape(forms["noun"])]
                else:
                    alternatives = [re.escape(form) + "s?" for key, form in forms.items() if key in ("m", "f")]
                    alternatives += [re.escape(forms[key]) for key in ("invariable", "noun") if key in forms]
                per_language[language] = re.compile(rf"\b(?:{'|'.join(sorted(set(alternatives)))})\b", re.IGNORECASE)
            words[f"{section[:-1]} {concept}"] = per_language
    return words


@dataclass(frozen=True)
class _Claim:
    patterns: dict[str, re.Pattern[str]]
    support: re.Pattern[str] | None

    def search(self, text: str, language: str) -> str | None:
        for lang in dict.fromkeys((language, "en")):
            pattern = self.patterns.get(lang)
            match = pattern.search(text) if pattern else None
            if match:
                return match.group(0)
        return None

    def supported(self, attribute_text: str) -> bool:
        if self.support and self.support.search(attribute_text):
            return True
        return any(pattern.search(attribute_text) for pattern in self.patterns.values())


def _compile_claims(raw: dict[str, Any]) -> dict[str, _Claim]:
    claims = {}
    for concept, entry in raw.items():
        if concept.startswith("_"):
            continue
        patterns = {lang: re.compile("|".join(f"(?:{p})" for p in regexes), re.IGNORECASE)
                    for lang, regexes in entry.items() if lang != "supported_by"}
        support = entry.get("supported_by")
        claims[concept] = _Claim(patterns=patterns,
                                 support=re.compile("|".join(support), re.IGNORECASE) if support else None)
    return claims


def _mask(text: str, verbatim: Sequence[str]) -> str:
    """Blank out the name, the brand and coded values ("X50CrMoV15"), which are allowed as they are."""
    for value in verbatim:
        text = text.replace(value, " " * len(value))
    return text


def _markup(text: str) -> list[Finding]:
    found = re.search(r"<\|?\w*\|?>|[{}]|```|\*\*|^#+\s|\[\w+\]|https?://|www\.|\b[\w.+-]+@[\w-]+\.\w+",
                      text, re.MULTILINE)
    return [Finding("markup", found.group(0))] if found else []


def _name_and_brand(text: str, facts: ProductFacts) -> list[Finding]:
    findings = []
    if facts.name not in text:
        if facts.name.lower() in text.lower():
            findings.append(Finding("name_altered", "the name appears with other case"))
        else:
            findings.append(Finding("name_missing", facts.name))
    brand = facts.brand
    if brand and brand not in text:
        lowered = text.lower()
        if brand.lower() in lowered:
            findings.append(Finding("brand_altered", "the brand appears with other case"))
        else:
            words = text.split()
            size = len(brand.split())
            for start in range(len(words) - size + 1):
                candidate = " ".join(words[start:start + size]).strip(".,;:!?()\"'")
                if len(brand) >= 4 and difflib.SequenceMatcher(None, candidate.lower(), brand.lower()).ratio() >= 0.8:
                    findings.append(Finding("brand_altered", candidate))
                    break
    return findings


def _repetition(text: str) -> list[Finding]:
    words = re.findall(r"\w+", text.lower())
    trigrams = Counter(zip(words, words[1:], words[2:]))
    looped = [" ".join(gram) for gram, count in trigrams.items() if count >= 3]
    if looped:
        return [Finding("repetition", f"{looped[0]!r} ×{trigrams[tuple(looped[0].split())]}")]
    sentences = [" ".join(re.findall(r"\w+", s.lower())) for s in re.split(r"(?<=[.!?])\s+", text)]
    repeated = [s for s, count in Counter(s for s in sentences if len(s.split()) >= 3).items() if count > 1]
    if repeated:
        return [Finding("repetition", f"sentence repeated: {repeated[0][:60]!r}")]
    for first, second, third, fourth in zip(words, words[1:], words[2:], words[3:]):
        if first == second == third == fourth:
            return [Finding("repetition", f"{first!r} ×4")]
    return []
