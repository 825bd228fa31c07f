"""The fallback that is always correct: per-language templates that state the product's attributes
and nothing else. Numbers and units go through babel (CLDR), colour adjectives agree with the
material's gender through the vocabulary, producer-localized values and names win. Category and tone
are not rendered: a template states facts plainly.

What cannot be translated is never printed in the source language inside another language's sentence: an
attribute whose label or value the vocabulary lacks is left out and listed as untranslated (``printed:
false``), for a person to add in review. The product's name is printed (it names the product), in the
shop's localized name where there is one; a name with source-language words and no localized name is listed
as untranslated (part ``name``, ``printed: true``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from wordfreq import zipf_frequency

from schemas import Product
from workers.shared.quantities import format_quantity, parse_quantity
from workers.shared.vocabulary import Vocabulary, default_vocabulary, normalize_key

TEMPLATE_VERSION = "1"
_GERMAN_DATIVE_ENDINGS = {"m": "em", "f": "er", "n": "em"}
_PERCENT_PART = re.compile(r"^\s*(?:(\d+(?:[.,]\d+)?)\s*%\s*(.+?)|(.+?)\s*(\d+(?:[.,]\d+)?)\s*%)\s*$")
_LIST_SEPARATORS = re.compile(r"\s*(?:,|/|&|\+|\band\b)\s*")
_CODE_TOKEN = re.compile(r"^(?:[^\W\d_]{1,5}|[\w.+/-]*\d[\w.+/-]*|[\W_]+|[A-Z]{1,4}(?:-[A-Z]{1,4})+)$")
# A source-language word in a name: this common in English (Zipf scale), and rare in the other language.
_SOURCE_WORD_ZIPF, _TARGET_WORD_ZIPF = 3.0, 2.5


@dataclass(frozen=True)
class Untranslated:
    attribute: str  # the attribute's key, or "name"
    text: str
    part: str  # "label" (the attribute's name), "value" or "name"
    printed: bool = False  # False: left out of the text; True: printed as the source wrote it (the name)
    code: str = "untranslated_value"  # stable reason: untranslated_label, untranslated_value, untranslated_name


@dataclass
class Rendered:
    text: str
    untranslated: list[Untranslated] = field(default_factory=list)

    @property
    def needs_review(self) -> bool:
        """Something could not be translated: a person should complete the text before it is published."""
        return bool(self.untranslated)


@dataclass(frozen=True)
class _Material:
    entry: dict[str, Any]
    percent: Decimal | None


class TemplateRenderer:
    """Renders a product in any language the vocabulary has phrases for (en, de, fr, es, it)."""

    def __init__(self, vocabulary: Vocabulary | None = None) -> None:
        self.vocabulary = vocabulary or default_vocabulary()

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(self.vocabulary.phrases)

    def render(self, product: Product, language: str) -> Rendered:
        if language not in self.vocabulary.phrases:
            raise KeyError(f"no template for language {language!r}")
        return _Rendering(self.vocabulary, product, language).run()

    def facts(self, product: Product, language: str) -> list[tuple[str, str]]:
        """(label, value) per attribute as written in ``language``: what a generator's prompt may state. What the
        vocabulary cannot translate stays as the source wrote it (a multilingual model may translate it)."""
        rendering = _Rendering(self.vocabulary, product, language)
        facts = []
        for key, value in product.attributes.items():
            label, text = rendering.labelled(key, value)
            facts.append((label, value if text is None else text))  # untranslatable: as the source wrote it
        return facts


class _Rendering:
    """One product in one language; collects sentences and untranslated values."""

    def __init__(self, vocabulary: Vocabulary, product: Product, language: str) -> None:
        self.vocabulary = vocabulary
        self.product = product
        self.language = language
        self.phrases = vocabulary.phrases[language]
        self.localized = product.localized_attributes.get(language, {})
        self.untranslated: list[Untranslated] = []

    def run(self) -> Rendered:
        roles: dict[str, tuple[str, str]] = {}
        others: list[tuple[str, str]] = []
        for key, value in self.product.attributes.items():
            found = self.vocabulary.lookup("attributes", key)
            role = found[1].get("role") if found else None
            if role and role not in roles:
                roles[role] = (key, value)
            else:
                others.append((key, value))
        brand = roles.pop("brand", None)
        sentences = [self._intro(brand[1] if brand else None)]
        sentences += self._material_and_colour(roles.get("material"), roles.get("colour"))
        sentences += [self._label_sentence(key, value) for key, value in others]
        return Rendered(text=" ".join(sentence for sentence in sentences if sentence), untranslated=self.untranslated)

    # --- sentences ---------------------------------------------------------------------------

    def _intro(self, brand: str | None) -> str:
        name = self.product.localized_names.get(self.language, self.product.name)
        if name == self.product.name and not self._is_source_language and has_source_words(name, self.language):
            self.untranslated.append(Untranslated(attribute="name", text=name, part="name", printed=True,
                                                  code="untranslated_name"))
        if brand and brand.lower() not in name.lower():
            return _sentence(self.phrases["intro_brand"], name=name, brand=brand)
        return _sentence(self.phrases["intro"], name=name)

    def _material_and_colour(self, material: tuple[str, str] | None, colour: tuple[str, str] | None) -> list[str]:
        materials = self._materials(material) if material and material[0] not in self.localized else None
        colour_entry = None
        if colour and colour[0] not in self.localized:
            found = self.vocabulary.lookup("colours", colour[1])
            colour_entry = found[1] if found else None
        sentences = []
        if materials and not any(part.percent not in (None, Decimal(100)) for part in materials):
            with_colour = colour_entry if len(materials) == 1 and materials[0].percent is None else None
            words = [self._material_words(part.entry, with_colour) for part in materials]
            if materials[0].percent == Decimal(100):
                words[0] = f"{self._percent(Decimal(100))} {words[0]}"
            sentences.append(_sentence(self.phrases["made_of"], material=self._join(words)))
            if with_colour:
                colour = None
        elif materials:
            parts = [f"{self._percent(part.percent)} {self._material_words(part.entry, None)}"
                     if part.percent is not None else self._material_words(part.entry, None) for part in materials]
            sentences.append(self._label("material", ", ".join(parts)))
        elif material:
            sentences.append(self._label_sentence(*material))
        if colour:
            if colour_entry and colour[0] not in self.localized:
                sentences.append(self._label("colour", self._colour_noun(colour_entry)))
            else:
                sentences.append(self._label_sentence(*colour))
        return [sentence for sentence in sentences if sentence]

    def _label_sentence(self, key: str, value: str) -> str:
        """"Label: value." in this language, or nothing when either could not be translated (listed)."""
        found = self.vocabulary.lookup("attributes", key)
        if not found and not self._is_source_language:
            self.untranslated.append(Untranslated(attribute=key, text=_humanize(key), part="label",
                                                  code="untranslated_label"))
            self.untranslated.append(Untranslated(attribute=key, text=value, part="value"))
            return ""
        label, text = self.labelled(key, value)
        if text is None:
            return ""
        return _sentence(self.phrases["label"], label=label, value=text)

    def labelled(self, key: str, value: str) -> tuple[str, str | None]:
        """(label, value) in this language; the value is None when it could not be translated (listed), and
        an unknown label stays in the source language (for a prompt; a template leaves it out)."""
        found = self.vocabulary.lookup("attributes", key)
        label = found[1][self.language] if found else _humanize(key)
        return label, self._value(key, value)

    def _label(self, canonical_key: str, value: str) -> str:
        label = self.vocabulary.attributes[canonical_key][self.language]
        return _sentence(self.phrases["label"], label=label, value=value)

    # --- values ------------------------------------------------------------------------------

    def _value(self, key: str, value: str) -> str | None:
        if key in self.localized:
            return self.localized[key]
        quantity = parse_quantity(value, self.vocabulary)
        if quantity is not None:
            # A bare number may be a version ("Bluetooth 5.3"): it stays as written.
            return format_quantity(quantity, self.language, self.vocabulary) if quantity.unit else value
        if self._is_source_language or _is_language_neutral(value):
            return value
        parts = [self._word(part) for part in _LIST_SEPARATORS.split(value.strip()) if part]
        if parts and all(part is not None for part in parts):
            return self._join([part for part in parts if part is not None]) if len(parts) > 1 else parts[0]
        self.untranslated.append(Untranslated(attribute=key, text=value, part="value"))
        return None

    def _word(self, text: str) -> str | None:
        """One value ("induction", "hand wash cold", "stainless steel", "black") in this language."""
        if _is_language_neutral(text):
            return text
        for section in ("values", "care", "materials", "colours"):
            found = self.vocabulary.lookup(section, text)
            if found:
                entry = found[1][self.language]
                if section == "materials":
                    return entry if isinstance(entry, str) else entry["word"]
                return self._colour_noun(found[1]) if section == "colours" else entry
        return None

    def _materials(self, material: tuple[str, str]) -> list[_Material] | None:
        """The material value as known materials with optional shares ("95% cotton, 5% elastane")."""
        parts = []
        for raw in _LIST_SEPARATORS.split(material[1].strip()):
            if not raw:
                continue
            percent_match = _PERCENT_PART.match(raw)
            percent = None
            name = raw
            if percent_match:
                number = percent_match.group(1) or percent_match.group(4)
                name = percent_match.group(2) or percent_match.group(3)
                percent = Decimal(number.replace(",", "."))
            found = self.vocabulary.lookup("materials", name)
            if not found:
                return None
            parts.append(_Material(entry=found[1], percent=percent))
        return parts or None

    def _material_words(self, material: dict[str, Any], colour: dict[str, Any] | None) -> str:
        word = material[self.language]
        if isinstance(word, str):  # the source language: adjective first, as in English
            return f"{colour[self.language]} {word}" if colour else word
        if colour is None:
            return word["word"]
        colour_forms = colour[self.language]
        if self.language == "de":
            adjective = colour_forms.get("invariable") or colour_forms["stem"] + _GERMAN_DATIVE_ENDINGS[word["gender"]]
            return f"{adjective} {word['word']}"
        return f"{word['word']} {colour_forms[word['gender']]}"

    def _colour_noun(self, colour: dict[str, Any]) -> str:
        forms = colour[self.language]
        if isinstance(forms, str):
            return forms
        return forms["noun"] if "noun" in forms else forms["m"]

    def _percent(self, value: Decimal) -> str:
        quantity = parse_quantity(f"{value}%", self.vocabulary)
        assert quantity is not None
        return format_quantity(quantity, self.language, self.vocabulary)

    def _join(self, words: list[str]) -> str:
        if len(words) == 1:
            return words[0]
        conjunction = self.phrases["and"]
        if self.language == "es" and re.match(r"h?i(?!e)", words[-1], re.IGNORECASE):
            conjunction = "e"  # "seda e hilo": Spanish "y" becomes "e" before an /i/ sound
        return f"{', '.join(words[:-1])} {conjunction} {words[-1]}"

    @property
    def _is_source_language(self) -> bool:
        return self.language == self.vocabulary.source_language


def brand_of(product: Product, vocabulary: Vocabulary) -> tuple[str | None, str | None]:
    """The attribute that names the brand ("brand", "manufacturer"…) and its value."""
    for key, value in product.attributes.items():
        found = vocabulary.lookup("attributes", key)
        if found and found[1].get("role") == "brand":
            return key, value
    return None, None


def _sentence(phrase: str, **slots: str) -> str:
    text = phrase.format(**slots)
    return text[:-1] if text.endswith("..") else text


def _humanize(key: str) -> str:
    words = normalize_key(key)
    return words[:1].upper() + words[1:]


def _is_language_neutral(value: str) -> bool:
    """Sizes, model numbers and codes ("M", "EU 42", "XS-XL", "USB-C", "IPX4") read the same in every language."""
    return all(_CODE_TOKEN.match(token) and (not token.isalpha() or token.isupper() or len(token) == 1)
               for token in value.replace(",", " ").split())


def has_source_words(name: str, language: str, source: str = "en") -> bool:
    """Whether a product name has common words of the source language that ``language`` does not share
    ("Electric Kettle", "Crew Sweater"): such a name reads as English inside a German text."""
    for word in re.findall(r"[^\W\d_]{3,}", name):
        lowered = word.lower()
        english = zipf_frequency(lowered, source)
        if english >= _SOURCE_WORD_ZIPF and zipf_frequency(lowered, language) < _TARGET_WORD_ZIPF:
            return True
    return False
