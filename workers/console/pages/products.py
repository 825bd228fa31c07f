"""Product description drafts: each language's text beside the product's facts, with the checks that failed;
approve, edit (a person's text becomes a new, approved version of tier ``human``) or reject."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from schemas import Kind
from workers.console.auth import Viewer
from workers.console.web import Console, Invalid, NotFound
from workers.db.store.console import ConflictError

STATUSES = ("draft", "approved", "rejected", "all")
MAX_TEXT = 5000


def edited(row: dict[str, Any], language: str, text: str, editor: str) -> dict[str, Any]:
    """The result with one language's description replaced by a person's text (as `slimline products review
    edit` writes it)."""
    result = copy.deepcopy(row["result"])
    previous = result["descriptions"][language]
    result["descriptions"][language] = {
        "text": text, "path": "human", "edited_by": editor, "model": None, "model_sha256": None,
        "template_version": None, "verdict": "human", "reasons": [], "untranslated": [],
        "replaced": {"path": previous.get("path"), "text": previous.get("text"), "version": row["version"]},
    }
    result["review_status"] = "approved"
    return result


def routes(console: Console) -> APIRouter:
    router = APIRouter(route_class=console.route_class())
    editor = console.role("product_editor")

    def current(item_id: str, seen_version: str | None = None) -> dict[str, Any]:
        rows = console.store.current_results(Kind.products, item_ids=[item_id])
        if not rows:
            raise NotFound(f"No product {item_id!r}.")
        if seen_version is not None and seen_version != str(rows[0]["version"]):
            raise ConflictError(f"{item_id} has a newer version ({rows[0]['version']}) than the one you read: "
                                "reload the page")
        return rows[0]

    @router.get("/products")
    def product_list(request: Request, status: str = "draft", viewer: Viewer = editor) -> Response:
        if status not in STATUSES:
            raise Invalid(f"status must be one of {', '.join(STATUSES)}")
        rows = console.store.current_results(Kind.products, review_status=None if status == "all" else status,
                                     limit=console.settings.console.page_size)
        return console.render(request, "products/list.html", rows=rows, status=status, statuses=STATUSES)

    @router.get("/products/product")
    def product_page(request: Request, id: str, viewer: Viewer = editor) -> Response:
        row = current(id)
        return console.render(request, "products/product.html", row=row, result=row["result"],
                              facts=row["result"].get("input") or {}, history=console.store.history(Kind.products, id),
                              audit=console.store.item_audit(Kind.products, id))

    @router.post("/products/approve")
    def approve(request: Request, form: FormData = console.depends_form(), viewer: Viewer = editor) -> Response:
        item_id = _text(form, "id")
        current(item_id, _text(form, "version"))
        reviewed = console.store.review(Kind.products, item_id, actor=viewer.username, review_status="approved",
                                note=_text(form, "note").strip()[:4000] or None)
        return console.redirect("/products", notice=f"{item_id}: approved (version {reviewed['version']}).")

    @router.post("/products/edit")
    def edit(request: Request, form: FormData = console.depends_form(), viewer: Viewer = editor) -> Response:
        item_id, language = _text(form, "id"), _text(form, "language")
        text = _text(form, "text").replace("\r\n", "\n").strip()
        row = current(item_id, _text(form, "version"))
        if language not in (row["result"].get("descriptions") or {}):
            raise Invalid(f"{item_id} has no {language!r} description.")
        if not text:
            raise Invalid("The corrected description is empty.")
        if len(text) > MAX_TEXT:
            raise Invalid(f"The description is longer than {MAX_TEXT} characters.")
        reviewed = console.store.review(Kind.products, item_id, actor=viewer.username, review_status="approved",
                                result=edited(row, language, text, viewer.username),
                                note=_text(form, "note").strip()[:4000] or None)
        return console.redirect("/products", notice=f"{item_id}: {language} edited and approved "
                                                    f"(version {reviewed['version']}).")

    @router.post("/products/reject")
    def reject(request: Request, form: FormData = console.depends_form(), viewer: Viewer = editor) -> Response:
        item_id = _text(form, "id")
        note = _text(form, "note").strip()[:4000]
        if not note:
            raise Invalid("Say why the draft is rejected.")
        current(item_id, _text(form, "version"))
        console.store.review(Kind.products, item_id, actor=viewer.username, review_status="rejected", note=note)
        return console.redirect("/products", notice=f"{item_id}: rejected.")

    return router


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""
