"""Checks a generated description against the product's own facts before it may be stored.

Every failure carries a stable reason code (``REASON_CODES``) so that results can be counted and
compared across releases; the detail says what exactly was found. What the check reads:

- names and brands the facts lack (``names.py``: the maker slot, attributions, capitalised words, spaCy NER);
- claims by class (``data/claims.json``): health, environmental or origin, guarantees; superlatives and
  fluff (``data/fluff.json``, one list per shop);
- features, components, ingredients (``data/features.json``), colours and materials (the vocabulary) that the
  facts do not give, and a material bound to a part the facts give another material for ("mesh armrests");
- numbers bound to their unit and attribute (``numbers.py``): "140+ countries" fails although 140 cm is a
  width;
- the language, of the whole text and of each sentence, and source-language (English) words left in it.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from wordfreq import zipf_frequency

from schemas import Product
from workers.products.lexicon import (
    CLAIM_CODES, CLAIMS_PATH, FEATURES_PATH, FLUFF_PATH, NAMES_PATH, Concept, FeatureLexicon, Fluff, NameLexicon,
    load_claims, whole_words,
)
from workers.products.names import NameCheck, country_codes, country_names, fact_words
from workers.products.numbers import CODE, NumberBinder, UnitlessFact
from workers.products.templates import brand_of
from workers.shared.language import LanguageDetector
from workers.shared.quantities import parse_quantity, source_facts
from workers.shared.vocabulary import Vocabulary, default_vocabulary

REASON_CODES = frozenset({
    "empty",               # nothing was generated
    "too_short",           # fewer characters than the lower bound
    "too_long",            # more characters than the upper bound
    "wrong_language",      # the detected language is not the requested one
    "mixed_language",      # a sentence in another language, or source-language (English) words left in the text
    "invented_number",     # a number that no fact (nor the name) states
    "invented_unit",       # a stated number with a unit the facts do not give it
    "unbound_number",      # a number of the facts bound to something else ("140+ countries" when 140 cm is a width)
    "number_format",       # a stated quantity written with the other decimal convention ("1.7 l" in German)
    "invented_name",       # a name or brand the facts do not contain ("by Terra Nova", "designed with Studio X")
    "claim_health",        # a health or medical claim the facts do not support
    "claim_environment",   # an environmental or origin claim ("eco-friendly", "made in Germany", "in 140 countries")
    "claim_guarantee",     # a warranty, certification or promise ("lifetime warranty", "will never crack")
    "claim_superlative",   # superlatives and fluff ("the best", "majestic", a "delicious" soap): per shop
    "unsupported_claim",   # a feature-like claim (waterproof, dishwasher-safe) the facts do not support
    "unsupported_feature",  # a feature, component or ingredient the facts do not give ("fast charging")
    "unsupported_attribute",  # a colour or material the facts do not give, or given for another part
    "name_missing",        # the product's name does not appear verbatim
    "name_altered",        # the name appears with other spelling or case
    "brand_altered",       # the brand appears misspelt or with other case
    "repetition",          # a loop: repeated phrases or sentences
    "markup",              # chat tokens, braces, Markdown, links or e-mail addresses
})
# The codes the check had before the labelled set (workers/products/data/grounding/) existed.
LEGACY_CODES = frozenset({
    "empty", "too_short", "too_long", "wrong_language", "invented_number", "invented_unit", "number_format",
    "unsupported_claim", "unsupported_attribute", "name_missing", "name_altered", "brand_altered", "repetition",
    "markup",
})
# Which kind of error of the labelled set each reason code reports (benchmarks/products_grounding.py).
KIND_OF_CODE = {
    "invented_name": "invented_name", "brand_altered": "invented_name",
    "claim_health": "health_claim", "claim_environment": "environment_origin_claim",
    "claim_guarantee": "guarantee_claim", "claim_superlative": "superlative_fluff",
    "unsupported_claim": "invented_feature", "unsupported_feature": "invented_feature",
    "unsupported_attribute": "invented_feature",
    "invented_number": "unbound_number", "invented_unit": "unbound_number", "unbound_number": "unbound_number",
    "number_format": "unbound_number",
    "wrong_language": "wrong_language", "mixed_language": "wrong_language",
}
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_LETTERS = re.compile(r"[^\W\d_]{3,}")
# A source-language word: this common in English (Zipf scale), and this much rarer in the text's language.
_ENGLISH_ZIPF, _ENGLISH_MARGIN, _ENGLISH_WORDS = 3.0, 1.0, 2
_SENTENCE_WORDS, _SENTENCE_SCORE = 5, 0.6
SentenceLanguage = tuple[range, str | None, float | None]  # a sentence's span, its detected language and score


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
    names: dict[str, str] = field(default_factory=dict)  # the product's name per language, where the shop gave one
    words: set[str] = field(default_factory=set)  # every word of the facts, lower-cased
    unitless: list[UnitlessFact] = field(default_factory=list)
    category: str | None = None
    attribute_concepts: set[str] = field(default_factory=set)  # colours and materials the facts give
    # The materials the facts give each part ("upholstery: mesh back" → back: mesh); None: the whole product's.
    part_materials: dict[str | None, set[str]] = field(default_factory=dict)
    own_phrases: dict[str, list[str]] = field(default_factory=dict)  # per language: the facts' labels and values
    attribute_stems: dict[str, frozenset[str]] = field(default_factory=dict)  # what names each attribute
    angles: set[Decimal] = field(default_factory=set)  # numbers the facts give in bare degrees ("90°")
    countries: set[str] = field(default_factory=set)  # CLDR codes of the places the facts name, in any language


class GroundingChecker:
    def __init__(self, detect_language: LanguageDetector, vocabulary: Vocabulary | None = None,
                 bounds: LengthBounds | None = None, claims_path: Path = CLAIMS_PATH,
                 fluff_path: Path | None = None, features_path: Path = FEATURES_PATH,
                 names_path: Path = NAMES_PATH, use_ner: bool = True) -> None:
        """``fluff_path``: a shop's own list of superlatives and fluff (default: ``data/fluff.json``)."""
        self.detect_language = detect_language
        self.vocabulary = vocabulary or default_vocabulary()
        self.bounds = bounds or LengthBounds()
        self.claims = load_claims(claims_path)
        self.fluff = Fluff.from_file(fluff_path or FLUFF_PATH)
        self.features = FeatureLexicon.from_file(features_path)
        self.names = NameCheck(NameLexicon.from_file(names_path), use_ner=use_ner)
        self.numbers = NumberBinder(self.vocabulary)
        self.attribute_words = _attribute_words(self.vocabulary)
        self._countries: dict[str, re.Pattern[str]] = {}

    def facts(self, product: Product) -> ProductFacts:
        brand = brand_of(product, self.vocabulary)[1]
        names = {lang: name for lang, name in product.localized_names.items()}
        quantities = source_facts(product.name, self.vocabulary)
        verbatim = [product.name, *names.values()] + ([brand] if brand else [])
        texts = [product.name, *names.values()]
        for key, value in product.attributes.items():
            quantities |= source_facts(value, self.vocabulary)
            texts += [key, value]
            if parse_quantity(value, self.vocabulary) is None and re.search(r"\d", value):
                verbatim.append(value)
            verbatim += CODE.findall(value)  # "IPX7", "SpO2": allowed as they are, their digits count nothing
        for language, values in product.localized_attributes.items():
            for key, value in values.items():
                quantities |= source_facts(value, self.vocabulary, language=language)
                texts.append(value)
        attribute_text = "\n".join(texts)
        facts = ProductFacts(
            name=product.name, brand=brand, quantities=quantities, values={value for value, _ in quantities},
            verbatim=sorted(set(verbatim), key=len, reverse=True), attribute_text=attribute_text,
            names=names, words=fact_words(texts), category=product.category,
            unitless=self.numbers.unitless_facts(product),
            attribute_stems=self.numbers.attribute_stems(product), angles=self.numbers.angles(product),
        )
        facts.supported_claims = {claim.name for claim in self.claims if claim.supported(attribute_text)}
        facts.attribute_concepts = {concept for concept, patterns in self.attribute_words.items()
                                    if any(p.search(attribute_text) for p in patterns.values())}
        facts.part_materials = self._part_materials(product)
        aliases = self.names.lexicon.countries
        facts.countries = {country_codes(language, aliases)[found.group(0).lower()]
                           for language in self.vocabulary.languages
                           for found in self._country_pattern(language).finditer(attribute_text)}
        facts.own_phrases = self._own_phrases(product)
        return facts

    def _part_materials(self, product: Product) -> dict[str | None, set[str]]:
        """Which material the facts give which part: a part named next to the material in the value ("mesh
        back", "aluminium with ceramic coating"), else the part the key names ("handle: stainless steel",
        "jug material: borosilicate glass"), else the whole product ("material: walnut veneer on MDF")."""
        facts = [(key, value, self.vocabulary.source_language) for key, value in product.attributes.items()]
        facts += [(key, value, language) for language, values in product.localized_attributes.items()
                  for key, value in values.items()]
        bound: dict[str | None, set[str]] = {}
        for key, value, language in facts:
            key_part = self._part_named(key)
            for concept, patterns in self.attribute_words.items():
                if not concept.startswith("material"):
                    continue
                for pattern in patterns.values():
                    for match in pattern.finditer(value):
                        parts = self._bound_parts(value, match, language) or [key_part.name if key_part else None]
                        for part in parts:
                            bound.setdefault(part, set()).add(concept)
        return bound

    def _part_named(self, key: str) -> Concept | None:
        for part in self.features.parts:
            pattern = part.patterns.get(self.vocabulary.source_language)
            if pattern and pattern.search(key):
                return part
        return None

    def _own_phrases(self, product: Product) -> dict[str, list[str]]:
        """The facts' own attribute labels and values, in each language of the vocabulary ("Tipo de piel",
        "todo tipo de piel"): a text that uses them states a fact, whatever words they contain."""
        phrases: dict[str, list[str]] = {language: [] for language in self.vocabulary.languages}
        for key, value in product.attributes.items():
            for section, text in (("attributes", key), ("values", value)):
                entry = self.vocabulary.lookup(section, text)
                for language in phrases if entry else ():
                    phrase = entry[1].get(language)
                    if isinstance(phrase, str) and phrase:
                        phrases[language].append(phrase)
        return {language: sorted(set(found), key=len, reverse=True) for language, found in phrases.items()}

    def check(self, text: str, product: Product, language: str, facts: ProductFacts | None = None) -> Verdict:
        facts = facts or self.facts(product)
        if not text.strip():
            return Verdict(reasons=(Finding("empty", "no text"),))
        findings: list[Finding] = []
        findings += self._length(text)
        findings += _markup(text)
        findings += _name_and_brand(text, facts, language)
        masked = _mask(text, facts.verbatim)
        detected, score = self.detect_language([" ".join(masked.split())])[0]
        sentences = self._sentence_languages(masked)
        written_in = detected if detected != language and detected in self.vocabulary.languages else language
        by_language = _by_language(masked, written_in, sentences, self.vocabulary.languages)
        findings += self._names(text, masked, language, facts, by_language)
        findings += [Finding(code, detail) for written, part in by_language.items()
                     for code, detail in self.numbers.check(part, written, facts)]
        claims, claimed = self._claims(masked, language, facts)
        findings += claims
        findings += self._features(masked, language, facts, claimed)
        findings += self._attribute_words(masked, language, facts)
        findings += _repetition(text)
        if detected != language:
            findings.append(Finding("wrong_language", f"detected {detected} ({score}), expected {language}"))
        else:
            findings += self._mixed_language(masked, language, sentences)
        return Verdict(reasons=tuple(findings), detected_language=detected, language_score=score)

    def _length(self, text: str) -> list[Finding]:
        if len(text) < self.bounds.min_chars:
            return [Finding("too_short", f"{len(text)} characters < {self.bounds.min_chars}")]
        if len(text) > self.bounds.max_chars:
            return [Finding("too_long", f"{len(text)} characters > {self.bounds.max_chars}")]
        return []

    def _names(self, text: str, masked: str, language: str, facts: ProductFacts,
               by_language: dict[str, str]) -> list[Finding]:
        """``by_language``: the masked text split by the language each sentence is written in, so that a
        German sentence left in an English text is read by German rules (its nouns are capitalised)."""
        name_ends = [match.end() for name in {facts.name, facts.names.get(language, facts.name)}
                     for match in re.finditer(re.escape(name), text)]
        found = self.names.find(text, masked, language, facts.words, facts.brand, name_ends, by_language)
        return [Finding("invented_name", f"{finding.name!r} ({finding.signal})") for finding in found]

    def _claims(self, text: str, language: str, facts: ProductFacts) -> tuple[list[Finding], list[range]]:
        """The claims found, and where they are (a phrase found as a claim is not also a feature)."""
        findings, spans = [], []
        for claim in self.claims:
            if claim.name in facts.supported_claims:
                continue
            match = claim.search(text, language)
            if match:
                findings.append(Finding(CLAIM_CODES[claim.kind], f"{claim.name}: {match.group(0)!r}"))
                spans.append(range(*match.span()))
        country = self._country_pattern(language).search(text)
        if country and country_codes(language, self.names.lexicon.countries).get(country.group(0).lower()) \
                not in facts.countries:
            findings.append(Finding("claim_environment", f"origin: {country.group(0)!r}"))
        for concept, found in self.fluff.search(text, language, facts.category):
            findings.append(Finding("claim_superlative", f"{concept}: {found!r}"))
        return findings, spans

    def _features(self, text: str, language: str, facts: ProductFacts,
                  claimed: Sequence[range] = ()) -> list[Finding]:
        support = f"{facts.name}\n" + "\n".join(facts.names.values()) + "\n" + facts.attribute_text
        findings = []
        for concept in self.features.features + self.features.ingredients:
            match = None if concept.supported(support) else self._claimed(concept, text, language, claimed)
            if match:
                findings.append(Finding("unsupported_feature", f"{concept.name}: {match.group(0)!r}"))
        return findings

    def _claimed(self, concept: Concept, text: str, language: str, claimed: Sequence[range]) -> re.Match[str] | None:
        """The first mention of a feature that claims it: not said to be absent ("câble non fourni"), nor part
        of a phrase already reported as a claim ("boosts collagen production")."""
        for lang in dict.fromkeys((language, "en")):
            pattern = concept.patterns.get(lang)
            for match in pattern.finditer(text) if pattern else ():
                if self.features.negated(text, match, language):
                    continue
                if any(match.start() in span or match.end() - 1 in span for span in claimed):
                    continue
                return match
        return None

    def _attribute_words(self, text: str, language: str, facts: ProductFacts) -> list[Finding]:
        """Colours and materials the text names but the facts (in any language) do not, and materials bound
        to a part for which the facts give another material (or which the facts give only to other parts)."""
        own = [range(*m.span()) for phrase in facts.own_phrases.get(language, ())
               for m in re.finditer(rf"(?<!\w){re.escape(phrase)}(?!\w)", text, re.IGNORECASE)]
        found = [(match, concept) for concept, patterns in self.attribute_words.items()
                 if (pattern := patterns.get(language)) for match in pattern.finditer(text)
                 # a word of the facts' own label or value ("Tipo de piel") states that fact
                 if not any(match.start() in span and match.end() - 1 in span for span in own)]
        # A word inside a longer colour or material is that one: "verde" in "verde oliva", "steel" in
        # "stainless steel".
        found = [(match, concept) for match, concept in found
                 if not any(other.start() <= match.start() and match.end() <= other.end()
                            and other.end() - other.start() > match.end() - match.start() for other, _ in found)]
        findings: list[Finding] = []
        reported: set[str] = set()
        for match, concept in sorted(found, key=lambda item: item[0].start()):
            if concept in reported:
                continue
            is_material = concept.startswith("material")
            parts = self._bound_parts(text, match, language) if is_material else []
            if is_material and not parts and not self._material_sense(text, match, language):
                continue  # "todo tipo de piel" is skin, not leather
            if concept not in facts.attribute_concepts:
                findings.append(Finding("unsupported_attribute", f"{concept}: {match.group(0)!r}"))
                reported.add(concept)
            elif parts and not any(_part_has_material(part, concept, facts.part_materials) for part in parts):
                findings.append(Finding("unsupported_attribute",
                                        f"{concept} for the {parts[0]}: {match.group(0)!r}"))
                reported.add(concept)
        return findings

    def _material_sense(self, text: str, match: re.Match[str], language: str) -> bool:
        """False for a word that is a material only in some senses ("piel": skin or leather) unless it comes
        right after a material preposition with no article ("de piel", "in pelle")."""
        if match.group(0).lower() not in self.features.material_senses.get(language, ()):
            return True
        before = text[:match.start()].split()[-1:]
        return bool(before) and before[0].lower() in self.features.material_prepositions.get(language, ())

    def _bound_parts(self, text: str, material: re.Match[str], language: str) -> list[str]:
        """The part a material is said to be of: "mesh armrests", "Armlehnen aus Netzgewebe", "braccioli in rete".
        Several when the word names several parts ("pied": a lamp's base or a table's legs)."""
        before = text[max(0, material.start() - 40):material.start()]
        after = text[material.end():material.end() + 30]
        found = []
        for part in self.features.parts:
            for lang in dict.fromkeys((language, "en")):
                pattern = part.patterns.get(lang)
                if pattern is None:
                    continue
                preceding = re.search(rf"(?:{pattern.pattern})\s+(?:\w+\s+)?(?:made\s+)?"
                                      r"(?:of|in|from|aus|en|de|di|in|da)\s+(?:\w+\s+)?$", before, re.IGNORECASE)
                following = lang == "en" and re.match(rf"\s+(?:{pattern.pattern})", after, re.IGNORECASE)
                if preceding or following:
                    found.append(part.name)
                    break
        return found

    def _sentence_languages(self, masked: str) -> list[SentenceLanguage]:
        """Each sentence of five words or more, and the language it is detected as."""
        spans = []
        position = 0
        for sentence in _SENTENCE.split(masked):
            start = masked.index(sentence, position)
            position = start + len(sentence)
            if len(_LETTERS.findall(sentence)) >= _SENTENCE_WORDS:
                spans.append(range(start, position))
        detected = self.detect_language([masked[span.start:span.stop] for span in spans]) if spans else []
        return [(span, lang, score) for span, (lang, score) in zip(spans, detected)]

    def _mixed_language(self, masked: str, language: str, sentences: list[SentenceLanguage]) -> list[Finding]:
        """A sentence detected as another language, or source-language words left in the text."""
        findings = []
        for span, detected, score in sentences:
            if detected != language and detected in self.vocabulary.languages and (score or 0) >= _SENTENCE_SCORE:
                sentence = masked[span.start:span.stop]
                findings.append(Finding("mixed_language", f"a sentence in {detected} ({score}): {sentence[:60]!r}"))
                break
        if language != "en":
            english = [word for word in _LETTERS.findall(masked)
                       if (zipf := zipf_frequency(word.lower(), "en")) >= _ENGLISH_ZIPF
                       and zipf - zipf_frequency(word.lower(), language) >= _ENGLISH_MARGIN]
            if len(english) >= _ENGLISH_WORDS:
                findings.append(Finding("mixed_language", f"English words: {', '.join(english[:5])}"))
        return findings

    def _country_pattern(self, language: str) -> re.Pattern[str]:
        if language not in self._countries:
            names = sorted(country_names(language, self.names.lexicon.countries), key=len, reverse=True)
            # Case-sensitive: country names are capitalised, and "Chad" or "Jordan" are also words.
            self._countries[language] = re.compile(
                rf"(?<![\w-])(?:{'|'.join(re.escape(name) for name in names)})(?![\w-])")
        return self._countries[language]


def _part_has_material(part: str, material: str, part_materials: dict[str | None, set[str]]) -> bool:
    """The facts give this part this material; or give the part none, and give the material to the whole
    product (not only to other parts: "mesh armrests" when only the back is mesh)."""
    if part in part_materials:
        return material in part_materials[part]
    given_to_parts = any(material in materials for name, materials in part_materials.items() if name is not None)
    return material in part_materials.get(None, set()) or not given_to_parts


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
                if not isinstance(forms, str):
                    alternatives += [re.escape(form) for form in forms.get("forms", ())]
                per_language[language] = whole_words(sorted(set(alternatives)))
            words[f"{section[:-1]} {concept}"] = per_language
    return words


def _by_language(masked: str, language: str, sentences: list[SentenceLanguage],
                 languages: Collection[str]) -> dict[str, str]:
    """The text per language it is written in: sentences confidently detected as another of ``languages``
    apart, each blanked out of the others."""
    regions: dict[str, list[range]] = {}
    for span, detected, score in sentences:
        if detected in languages and detected != language and (score or 0) >= _SENTENCE_SCORE:
            regions.setdefault(detected, []).append(span)
    if not regions:
        return {language: masked}
    foreign = [span for spans in regions.values() for span in spans]
    texts = {language: "".join(" " if any(i in span for span in foreign) else c for i, c in enumerate(masked))}
    for detected, spans in regions.items():
        if detected in texts:
            continue
        texts[detected] = "".join(c if any(i in span for span in spans) else " " for i, c in enumerate(masked))
    return texts


def _mask(text: str, verbatim: Sequence[str]) -> str:
    """Blank out the name, the brand and coded values ("X50CrMoV15"), which are allowed as they are."""
    for value in verbatim:
        text = text.replace(value, " " * len(value))
    return text


def _markup(text: str) -> list[Finding]:
    found = re.search(r"<\|?\w*\|?>|[{}]|```|\*\*|^#+\s|\[\w+\]|https?://|www\.|\b[\w.+-]+@[\w-]+\.\w+",
                      text, re.MULTILINE)
    return [Finding("markup", found.group(0))] if found else []


def _name_and_brand(text: str, facts: ProductFacts, language: str) -> list[Finding]:
    findings = []
    names = {facts.name, facts.names.get(language, facts.name)}
    if not any(name in text for name in names):
        if any(name.lower() in text.lower() for name in names):
            findings.append(Finding("name_altered", "the name appears with other case"))
        else:
            findings.append(Finding("name_missing", facts.names.get(language, facts.name)))
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
    # "à l'huile d'olive, à l'huile de coco et à l'huile…" is French, not a loop: a looped phrase has words.
    looped = [" ".join(gram) for gram, count in trigrams.items()
              if count >= 3 and sum(len(word) >= 3 for word in gram) >= 2]
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
