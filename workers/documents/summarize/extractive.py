"""Extractive summaries: the most central sentences, chosen by maximal marginal relevance (MMR) so
that a second sentence saying the same as the first loses to one that adds something.

Cost is bounded on long documents: at most ``max_candidates`` sentences, spread evenly over the
document, are embedded; the candidates of a whole batch of documents go to the encoder in one call.

Encode once (:func:`encode_sentences`): the same encoder call also embeds the document's short lines, and
the weighted mean of all its sentence vectors is the document's vector, so the documents pipeline embeds
each document once for its class and its summary.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from workers.documents.summarize.base import Summary, SummarySentence
from workers.documents.summarize.sentences import sentence_spans
from workers.models.encoders.base import Encoder, l2_normalize
from workers.registry import register

# Cosine at which two sentences say the same thing; such a sentence is never chosen twice.
NEAR_DUPLICATE = 0.9
# Greetings, sign-offs and bare headers ("Kind regards", "Total:") are seldom what a summary needs.
MIN_WORDS = 4


def informative(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Spans of at least ``MIN_WORDS`` words, or all spans if none is that long."""
    long_enough = [(start, end) for start, end in spans if len(text[start:end].split()) >= MIN_WORDS]
    return long_enough or spans


def spread(count: int, limit: int) -> list[int]:
    """Up to ``limit`` indices out of ``count``, evenly spaced, first and last included."""
    if count <= limit:
        return list(range(count))
    return sorted({round(i * (count - 1) / (limit - 1)) for i in range(limit)}) if limit > 1 else [0]


def centrality(embeddings: np.ndarray) -> np.ndarray:
    """Cosine of each sentence to the document's normalized centroid: how much of the whole it carries."""
    centroid = embeddings.mean(axis=0)
    return embeddings @ (centroid / max(float(np.linalg.norm(centroid)), 1e-12))


def mmr_select(embeddings: np.ndarray, lengths: Sequence[int], max_sentences: int, max_chars: int,
               diversity: float) -> list[int]:
    """Indices of the chosen sentences (in choice order). Relevance is :func:`centrality`; each step
    subtracts ``diversity`` × the highest similarity to a sentence already chosen. Never chosen: a near
    duplicate of a chosen sentence, or one that would push the summary past ``max_chars``."""
    relevance = centrality(embeddings)
    similarity = embeddings @ embeddings.T
    sizes = np.asarray(lengths)
    available = np.ones(len(sizes), dtype=bool)
    redundancy = np.zeros(len(sizes), dtype=np.float32)
    chosen: list[int] = []
    used_chars = 0
    while len(chosen) < max_sentences:
        fits = available & (redundancy < NEAR_DUPLICATE) & (used_chars + sizes <= max_chars)
        if not fits.any():
            break
        objective = (1.0 - diversity) * relevance - diversity * redundancy
        best = int(np.where(fits, objective, -np.inf).argmax())
        chosen.append(best)
        available[best] = False
        used_chars += int(sizes[best])
        redundancy = np.maximum(redundancy, similarity[best])
    return chosen


@dataclass(frozen=True)
class EncodedSentences:
    """One document's sentences, embedded once: the summary's candidates (spans and their vectors) and
    the document's own unit vector, derived from all its embedded sentences."""

    spans: list[tuple[int, int]]
    vectors: np.ndarray
    document: np.ndarray


def encode_sentences(encoder: Encoder, texts: Sequence[str], languages: Sequence[str | None],
                     max_candidates: int) -> list[EncodedSentences]:
    """Every document's sentences in one encoder call for the whole batch: the informative ones (at most
    ``max_candidates``, spread evenly: the summary's candidates) and its short lines (headers, item lines;
    at most as many again), which name what a document is ("Rechnung Nr. 4471") though they seldom belong
    in a summary. The document's vector is the mean of all of them weighted by the square root of their
    length; a document without a sentence (no word character) is embedded whole."""
    candidates, short_lines = [], []
    for text, language in zip(texts, languages, strict=True):
        spans = sentence_spans(text, language)
        chosen = informative(text, spans)
        candidates.append([chosen[i] for i in spread(len(chosen), max_candidates)])
        kept = set(chosen)
        others = [span for span in spans if span not in kept]
        short_lines.append([others[i] for i in spread(len(others), max_candidates)])
    flat = [text[start:end] for text, spans, others in zip(texts, candidates, short_lines, strict=True)
            for start, end in spans + others]
    wordless = [i for i, spans in enumerate(candidates) if not spans]
    embeddings = encoder.encode(flat + [texts[i] for i in wordless])
    whole = dict(zip(wordless, embeddings[len(flat):], strict=True))
    encoded, offset = [], 0
    for index, (spans, others) in enumerate(zip(candidates, short_lines, strict=True)):
        vectors = embeddings[offset : offset + len(spans) + len(others)]
        offset += len(spans) + len(others)
        if spans:
            weights = np.sqrt([end - start for start, end in spans + others], dtype=np.float32)
            document = l2_normalize((weights @ vectors)[None, :])[0]
        else:
            document = whole[index]
        encoded.append(EncodedSentences(spans, vectors[: len(spans)], document))
    return encoded


def document_vectors(encoded: Sequence[EncodedSentences]) -> np.ndarray:
    """(documents × dim): each document's vector, for the classifier."""
    return np.stack([sentences.document for sentences in encoded])


class ExtractiveSummarizer:
    def __init__(self, encoder: Encoder, max_sentences: int = 3, max_chars: int = 600, max_candidates: int = 48,
                 diversity: float = 0.3) -> None:
        self.encoder = encoder
        self.max_sentences = max_sentences
        self.max_chars = max_chars
        self.max_candidates = max_candidates
        self.diversity = diversity
        self.model = encoder.info.model

    def __call__(self, texts: Sequence[str], languages: Sequence[str | None]) -> list[Summary]:
        return self.summarize_encoded(texts, self.encode(texts, languages))

    def encode(self, texts: Sequence[str], languages: Sequence[str | None]) -> list[EncodedSentences]:
        """Each document's sentences embedded once (:func:`encode_sentences`): candidates and document vector."""
        return encode_sentences(self.encoder, texts, languages, self.max_candidates)

    def summarize_encoded(self, texts: Sequence[str], encoded: Sequence[EncodedSentences]) -> list[Summary]:
        """Summaries from sentences already embedded by :meth:`encode` (the pipeline shares them)."""
        return [self._summary(text, sentences.spans, sentences.vectors)
                for text, sentences in zip(texts, encoded, strict=True)]

    def _summary(self, text: str, spans: list[tuple[int, int]], vectors: np.ndarray) -> Summary:
        if not spans:
            return Summary(method="extractive", model=self.model, sentences=[], text="")
        chosen = mmr_select(vectors, [end - start for start, end in spans], self.max_sentences, self.max_chars,
                            self.diversity)
        scores = centrality(vectors)
        sentences = [
            SummarySentence(text=text[spans[i][0] : spans[i][1]], start=spans[i][0], end=spans[i][1],
                            score=round(float(scores[i]), 4))
            for i in sorted(chosen)
        ]
        return Summary(method="extractive", model=self.model, sentences=sentences,
                       text=" ".join(sentence.text for sentence in sentences))

    def warm_up(self) -> dict[str, float]:
        started = time.perf_counter()
        self(["Rechnung Nr. 4471. Bitte zahlen Sie 1.245,80 € bis Ende Mai. Vielen Dank."], ["de"])
        return {"summarizer_seconds": time.perf_counter() - started}


@register("summarizer.extractive")
def make_extractive_summarizer(encoder: Encoder, max_sentences: int = 3, max_chars: int = 600,
                               max_candidates: int = 48) -> ExtractiveSummarizer:
    return ExtractiveSummarizer(encoder, max_sentences=max_sentences, max_chars=max_chars,
                                max_candidates=max_candidates)
