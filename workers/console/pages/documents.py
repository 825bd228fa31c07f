"""Documents waiting for a person (the escalation and review queue): the text with its entities marked at their
offsets, and corrections of the class or the entities, stored as a new version of tier ``human``."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from schemas import Kind
from workers.console import highlight
from workers.console.auth import Viewer
from workers.console.web import Console, Invalid, NotFound
from workers.db.store.console import ConflictError

STATUSES = ("needs_review", "resolved", "all")
# The unified entity labels (workers/documents/entities/entity.py) and the triage lexicon's.
ENTITY_LABELS = ("PERSON", "ORG", "GPE", "LOC", "NORP", "FAC", "PRODUCT", "EVENT", "LAW", "DATE", "TIME", "MONEY",
                 "PERCENT", "QUANTITY", "IBAN", "BIC", "EMAIL", "PHONE", "INVOICE_NUMBER", "ORDER_NUMBER",
                 "REFERENCE_NUMBER", "SYMPTOM", "MEDICATION", "MISC")


def class_labels(console: Console, current: str | None) -> list[str]:
    from workers.documents.classify.labels import LabelsFileError, read_labels

    try:
        labels = list(read_labels(console.settings.documents.labels))
    except (OSError, LabelsFileError):
        labels = []
    return labels + ([current] if current and current not in labels else [])


def corrected(result: dict[str, Any], form: FormData) -> tuple[dict[str, Any] | None, list[str]]:
    """The result with the person's corrections, and what changed (None: nothing changed)."""
    text = (result.get("input") or {}).get("text")
    entities = result.get("entities") or []
    what: list[str] = []
    new = copy.deepcopy(result)
    label = _text(form, "label").strip()
    previous = (result.get("classification") or {}).get("label")
    if label and label != previous:
        new["classification"] = {"label": label, "score": 1.0, "margin": 1.0, "method": "human", "model": None,
                                 "previous": result.get("classification")}
        what.append(f"class {previous} → {label}")
    kept = []
    for index, entity in enumerate(entities):
        if _text(form, f"keep_{index}") != "on":
            what.append(f"removed {entity.get('label')} {entity.get('text')!r}")
            continue
        relabel = _text(form, f"label_{index}").strip().upper()
        if relabel and relabel != entity.get("label"):
            what.append(f"{entity.get('text')!r}: {entity.get('label')} → {relabel}")
            entity = {**entity, "label": relabel, "source": "human", "previous_label": entity.get("label")}
        kept.append(entity)
    added = _added(text, form, kept)
    if added is not None:
        kept.append(added)
        what.append(f"added {added['label']} {added['text']!r}")
    new["entities"] = sorted(kept, key=lambda entity: (entity.get("start", 0), entity.get("end", 0)))
    return (new if what else None), what


def _added(text: str | None, form: FormData, kept: list[dict[str, Any]]) -> dict[str, Any] | None:
    needle, label = _text(form, "add_text"), _text(form, "add_label").strip().upper()
    start, end = _text(form, "add_start").strip(), _text(form, "add_end").strip()
    if not (needle or start or end):
        return None
    if text is None:
        raise Invalid("This document's text is not stored, so an entity cannot be added at an offset.")
    if not label:
        raise Invalid("Choose the label of the entity to add.")
    if start or end:
        try:
            span = (int(start), int(end))
        except ValueError:
            raise Invalid("Start and end are character offsets (whole numbers).") from None
        if not 0 <= span[0] < span[1] <= len(text):
            raise Invalid(f"Offsets must satisfy 0 ≤ start < end ≤ {len(text)}.")
    else:
        found = highlight.find_free(text, needle, [(e["start"], e["end"]) for e in kept if highlight.aligned(text, e)])
        if found is None:
            raise Invalid(f"{needle!r} does not occur in the text outside the entities already marked.")
        span = found
    return {"text": text[span[0]:span[1]], "label": label, "start": span[0], "end": span[1], "source": "human"}


def routes(console: Console) -> APIRouter:
    router = APIRouter(route_class=console.route_class())
    reviewer = console.role("document_reviewer")

    @router.get("/documents")
    def document_list(request: Request, status: str = "needs_review", viewer: Viewer = reviewer) -> Response:
        if status not in STATUSES:
            raise Invalid(f"status must be one of {', '.join(STATUSES)}")
        rows = console.store.current_results(Kind.documents, review_status=None if status == "all" else status,
                                     limit=console.settings.console.page_size * 20)
        rows = [row for row in rows if status != "all" or row["review_status"] is not None]
        return console.render(request, "documents/list.html", rows=rows[:console.settings.console.page_size],
                              total=len(rows), status=status, statuses=STATUSES)

    @router.get("/documents/doc")
    def document_page(request: Request, id: str, viewer: Viewer = reviewer) -> Response:
        rows = console.store.current_results(Kind.documents, item_ids=[id])
        if not rows:
            raise NotFound(f"No document {id!r}.")
        row = rows[0]
        result = row["result"]
        text = (result.get("input") or {}).get("text")
        entities = result.get("entities") or []
        return console.render(
            request, "documents/doc.html", row=row, result=result, text=text,
            segments=highlight.segments(text, entities) if text is not None else [],
            entities=[{**entity, "aligned": text is not None and highlight.aligned(text, entity)} for entity in entities],
            classes=class_labels(console, (result.get("classification") or {}).get("label")),
            entity_labels=sorted({*ENTITY_LABELS, *(entity.get("label") for entity in entities)}),
            history=console.store.history(Kind.documents, id), audit=console.store.item_audit(Kind.documents, id))

    @router.post("/documents/correct")
    def correct(request: Request, form: FormData = console.depends_form(), viewer: Viewer = reviewer) -> Response:
        item_id = _text(form, "id")
        rows = console.store.current_results(Kind.documents, item_ids=[item_id])
        if not rows:
            raise NotFound(f"No document {item_id!r}.")
        row = rows[0]
        if _text(form, "version") != str(row["version"]):
            raise ConflictError(f"{item_id} has a newer version ({row['version']}) than the one you corrected: "
                                "reload the page")
        new, what = corrected(row["result"], form)
        note = _text(form, "note").strip()[:4000] or None
        reviewed = console.store.review(Kind.documents, item_id, actor=viewer.username, review_status="resolved",
                                result=new, note=note if new is None else "; ".join([*what, *([note] if note else [])]))
        message = f"{item_id}: {'; '.join(what)} (version {reviewed['version']})" if what \
            else f"{item_id}: confirmed as it was"
        return console.redirect("/documents", notice=message)

    return router


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""
