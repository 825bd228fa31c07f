"""Transaction rules: the version in use, drafts (one rule edited, or the whole document), a backtest of a draft
on stored decisions, and promotion by an approver who is not the draft's author. Workers pick a promoted
version up within SLIMLINE_TRANSACTIONS__RULES_REFRESH_SECONDS."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from workers.console import rule_drafts
from workers.console.auth import Viewer
from workers.console.web import Console, Denied, Invalid, NotFound
from workers.transactions.rules import ACTIONS, RuleFileError


def routes(console: Console) -> APIRouter:
    router = APIRouter(route_class=console.route_class())
    reader = console.role("rule_author", "rule_approver")
    author = console.role("rule_author")
    approver = console.role("rule_approver")

    @router.get("/rules")
    def rules_page(request: Request, viewer: Viewer = reader) -> Response:
        in_use = rule_drafts.rules_in_use(console.store, console.settings)
        return console.render(request, "rules/index.html", in_use=in_use,
                              rules=rule_drafts.parse(in_use.document, in_use.origin).rules,
                              drafts=console.store.rule_versions(["draft"]),
                              history=[row for row in console.store.rule_versions() if row["status"] != "draft"][:50])

    def edit_page(request: Request, *, mode: str, rule: dict[str, Any], original_code: str | None,
                  document: str, error: str | None = None, summary: str = "", status: int = 200) -> Response:
        in_use = rule_drafts.rules_in_use(console.store, console.settings)
        return console.render(request, "rules/edit.html", status_code=status, mode=mode, rule=rule,
                              original_code=original_code, document=document, in_use=in_use, actions=ACTIONS,
                              error=error, summary=summary)

    @router.get("/rules/edit")
    def edit_form(request: Request, code: str | None = None, whole: bool = False, viewer: Viewer = author) -> Response:
        in_use = rule_drafts.rules_in_use(console.store, console.settings)
        if whole:
            return edit_page(request, mode="document", rule={}, original_code=None, document=in_use.document)
        existing = next((rule for rule in rule_drafts.rule_entries(in_use.document) if rule.get("code") == code), None)
        if code and existing is None:
            raise NotFound(f"There is no rule {code!r} in the version in use.")
        rule = existing or {"code": "", "action": "review", "description": "", "when": ""}
        return edit_page(request, mode="rule", rule=rule, original_code=code, document="")

    @router.post("/rules/drafts")
    def new_draft(request: Request, form: FormData = console.depends_form(), viewer: Viewer = author) -> Response:
        in_use = rule_drafts.rules_in_use(console.store, console.settings)
        mode = _text(form, "mode")
        summary = _text(form, "summary").strip()[:500]
        rule = {name: _text(form, name) for name in ("code", "action", "description", "when")}
        rule["code"] = rule["code"].strip().upper()
        original_code = _text(form, "original_code") or None
        try:
            if mode == "document":
                document = _text(form, "document").replace("\r\n", "\n")
                summary = summary or "edited the whole document"
            else:
                remove = _text(form, "remove") == "yes"
                document = rule_drafts.edit_rule(in_use.document, code=rule["code"], action=rule["action"],
                                                 description=rule["description"], when=rule["when"], remove=remove,
                                                 original_code=original_code)
                summary = summary or (f"remove {original_code or rule['code']}" if remove
                                      else f"{'edit' if original_code else 'add'} {rule['code']}")
            rule_drafts.parse(document)
        except RuleFileError as error:
            return edit_page(request, mode=mode or "rule", rule=rule, original_code=original_code,
                             document=_text(form, "document"), error=str(error), summary=summary, status=422)
        if rule_drafts.sha256(document) == rule_drafts.sha256(in_use.document):
            return edit_page(request, mode=mode or "rule", rule=rule, original_code=original_code,
                             document=_text(form, "document"), error="Nothing changed.", summary=summary, status=422)
        draft = console.store.add_rule_draft(document, rule_drafts.sha256(document), in_use.number, summary,
                                     author=viewer.username)
        return console.redirect(f"/rules/versions/{draft['id']}", notice="Draft saved: backtest it next.")

    def version_or_404(version_id: int) -> dict[str, Any]:
        version = console.store.rule_version(version_id)
        if version is None:
            raise NotFound(f"There is no rule version {version_id}.")
        return version

    @router.get("/rules/versions/{version_id}")
    def version_page(request: Request, version_id: int, viewer: Viewer = reader) -> Response:
        version = version_or_404(version_id)
        if version["base_version"] is not None:
            base = version_or_404(version["base_version"])["document"]
            base_name = f"version {version['base_version']}"
        else:
            base = rule_drafts.rules_in_use(console.store, console.settings).document if version["status"] == "draft" \
                else None
            base_name = "the rule file"
        in_use = rule_drafts.rules_in_use(console.store, console.settings)
        return console.render(
            request, "rules/version.html", version=version, base_name=base_name,
            changes=rule_drafts.changes(base, version["document"]) if base is not None else None,
            in_use=in_use, stale=version["status"] == "draft" and version["base_version"] != in_use.number,
            can_decide=viewer.can("rule_approver") and viewer.username != version["author"],
            can_backtest=viewer.can("rule_author", "rule_approver"))

    @router.post("/rules/versions/{version_id}/backtest")
    def run_backtest(request: Request, version_id: int, form: FormData = console.depends_form(),
                     viewer: Viewer = reader) -> Response:
        version = version_or_404(version_id)
        rules = rule_drafts.parse(version["document"], f"rule version {version_id}")
        rows = console.store.transaction_decisions(console.settings.console.backtest_decisions)
        result = rule_drafts.backtest(rules, rows, rule_drafts.labels_of(console.store, rows))
        console.store.record_backtest(version_id, result, actor=viewer.username)
        return console.redirect(f"/rules/versions/{version_id}",
                                notice=f"Backtested on {result['decisions']} stored decisions.")

    @router.post("/rules/versions/{version_id}/promote")
    def promote(request: Request, version_id: int, form: FormData = console.depends_form(),
                viewer: Viewer = approver) -> Response:
        return decide(request, version_id, viewer, promote=True, note=_text(form, "note").strip() or None)

    @router.post("/rules/versions/{version_id}/reject")
    def reject(request: Request, version_id: int, form: FormData = console.depends_form(),
               viewer: Viewer = approver) -> Response:
        note = _text(form, "note").strip()
        if not note:
            raise Invalid("Say why the draft is rejected.")
        return decide(request, version_id, viewer, promote=False, note=note)

    def decide(request: Request, version_id: int, viewer: Viewer, *, promote: bool, note: str | None) -> Response:
        version_or_404(version_id)
        try:
            console.store.decide_rule_draft(version_id, approver=viewer.username, promote=promote, note=note)
        except PermissionError as error:
            console.store.audit(viewer.username, "console.denied", None, {"path": request.url.path, "method": "POST",
                                                                  "reason": "author of the draft"})
            raise Denied(f"{error}. Separation of duties: the person who approves a rule change is not its author.") \
                from None
        return console.redirect(f"/rules/versions/{version_id}", notice=(
            f"Version {version_id} is promoted: workers use it within "
            f"{console.settings.transactions.rules_refresh_seconds:g} s." if promote else f"Version {version_id} rejected."))

    @router.post("/rules/versions/{version_id}/withdraw")
    def withdraw(request: Request, version_id: int, form: FormData = console.depends_form(),
                 viewer: Viewer = author) -> Response:
        version_or_404(version_id)
        try:
            console.store.withdraw_rule_draft(version_id, author=viewer.username)
        except PermissionError as error:
            raise Denied(str(error)) from None
        return console.redirect("/rules", notice=f"Draft {version_id} withdrawn.")

    return router


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""
