"""The analysts' flags queue: flagged transactions by score, filters and saved views, "next unassigned"
(which locks the case to you), a case page, and decisions (fraud / legitimate / escalate, with a comment)
stored as labels for `slimline train risk --labels-from-database`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from schemas import Kind
from workers.console.auth import Viewer
from workers.console.web import Console, Invalid, NotFound
from workers.db.store.console import FLAG_DECISIONS, FLAG_STATUSES, ConflictError

ACTIONS = ("review", "block")
ASSIGNED = ("any", "me", "unassigned")
MAX_COMMENT = 4000


@dataclass
class FlagFilters:
    """What the list shows; the database applies status, action, score and account, the console the rest."""

    status: str = "open"
    action: str = ""
    min_score: str = ""
    account: str = ""
    reason: str = ""
    merchant: str = ""
    assigned: str = "any"

    @classmethod
    def parse(cls, values: Any) -> FlagFilters:
        known = {field.name for field in fields(cls)}
        filters = cls(**{name: str(values.get(name) or "").strip()[:200] for name in known if values.get(name)})
        if filters.status not in (*FLAG_STATUSES, "all"):
            raise Invalid(f"status must be one of {', '.join((*FLAG_STATUSES, 'all'))}")
        if filters.action not in ("", *ACTIONS):
            raise Invalid("outcome must be review or block")
        if filters.assigned not in ASSIGNED:
            raise Invalid(f"assigned must be one of {', '.join(ASSIGNED)}")
        if filters.min_score:
            try:
                float(filters.min_score)
            except ValueError:
                raise Invalid(f"minimum score {filters.min_score!r} is not a number") from None
        return filters

    def query(self) -> dict[str, str]:
        """The non-default filters, for links and saved views."""
        defaults = FlagFilters()
        return {name: value for name, value in asdict(self).items() if value != getattr(defaults, name)}


def flag_row(row: dict[str, Any], lock: dict[str, Any] | None) -> dict[str, Any]:
    """What the list and the case page show of a stored decision."""
    result = row.get("result") or {}
    features = result.get("features") or {}
    transaction = result.get("transaction") or {}
    submitted = result.get("input") or {}
    merchant = transaction.get("merchant") or (submitted.get("merchant") or {}).get("name")
    return {
        "id": row["item_id"],
        "version": row["version"],
        "status": row["review_status"],
        "action": result.get("action"),
        "score": result.get("score"),
        "amount": features.get("amount", submitted.get("amount")),
        "currency": features.get("currency", submitted.get("currency")),
        "account": result.get("account_id"),
        "merchant": merchant,
        "mcc": features.get("mcc"),
        "time": transaction.get("timestamp") or submitted.get("timestamp"),
        "rules": [rule.get("code") for rule in result.get("rules_fired", [])],
        "reasons": [reason.get("code") for reason in result.get("model_reasons", [])],
        "locked_by": lock["username"] if lock else None,
        "locked_until": lock["expires_at"] if lock else None,
        "note": row.get("note"),
    }


def matches(flag: dict[str, Any], filters: FlagFilters, username: str) -> bool:
    if filters.reason and filters.reason.upper() not in {*flag["rules"], *flag["reasons"]}:
        return False
    if filters.merchant and filters.merchant.casefold() not in str(flag["merchant"] or "").casefold():
        return False
    if filters.assigned == "me" and flag["locked_by"] != username:
        return False
    return not (filters.assigned == "unassigned" and flag["locked_by"] is not None)


def routes(console: Console) -> APIRouter:
    router = APIRouter(route_class=console.route_class())
    analyst = console.role("analyst")

    def listed(filters: FlagFilters, username: str) -> list[dict[str, Any]]:
        store = console.store
        rows = store.flags(status=None if filters.status == "all" else filters.status, action=filters.action or None,
                           min_score=float(filters.min_score) if filters.min_score else None,
                           account=filters.account or None)
        locks = store.locks(Kind.transactions, [row["item_id"] for row in rows])
        flags = [flag_row(row, locks.get(row["item_id"])) for row in rows]
        return [flag for flag in flags if matches(flag, filters, username)]

    @router.get("/flags")
    def flag_list(request: Request, viewer: Viewer = analyst) -> Response:
        filters = FlagFilters.parse(request.query_params)
        flags = listed(filters, viewer.username)
        page_size = console.settings.console.page_size
        return console.render(request, "flags/list.html", filters=filters, flags=flags[:page_size], total=len(flags),
                              views=console.store.views(viewer.username, "flags"), statuses=FLAG_STATUSES,
                              actions=ACTIONS, assigned=ASSIGNED)

    @router.post("/flags/next")
    def next_unassigned(request: Request, form: FormData = console.depends_form(),
                        viewer: Viewer = analyst) -> Response:
        filters = FlagFilters.parse(form)
        filters.status, filters.assigned = "open", "any"
        candidates = [flag["id"] for flag in listed(filters, viewer.username)
                      if flag["locked_by"] in (None, viewer.username)]
        lock = timedelta(minutes=console.settings.console.lock_minutes)
        taken = console.store.take_next_flag(viewer.username, lock, candidates)
        if taken is None:
            return console.redirect("/flags", **filters.query(),
                                    notice="No unassigned open case matches these filters.")
        return console.redirect("/flags/case", id=taken)

    @router.post("/flags/views")
    def save_view(request: Request, form: FormData = console.depends_form(), viewer: Viewer = analyst) -> Response:
        name = str(form.get("view_name") or "").strip()
        if not name or len(name) > 100:
            raise Invalid("Give the view a name (at most 100 characters).")
        filters = FlagFilters.parse(form)
        console.store.save_view(viewer.username, "flags", name, filters.query())
        return console.redirect("/flags", **filters.query(), notice=f"Saved the view {name!r}.")

    @router.post("/flags/views/delete")
    def delete_view(request: Request, form: FormData = console.depends_form(), viewer: Viewer = analyst) -> Response:
        try:
            view_id = int(str(form.get("view_id")))
        except ValueError:
            raise Invalid("Which view?") from None
        if not console.store.delete_view(viewer.username, view_id):
            raise NotFound("You have no such saved view.")
        return console.redirect("/flags", notice="Deleted the view.")

    @router.get("/flags/case")
    def case(request: Request, id: str, viewer: Viewer = analyst) -> Response:
        rows = console.store.current_results(Kind.transactions, item_ids=[id])
        if not rows or rows[0]["review_status"] is None:
            raise NotFound(f"No flagged transaction {id!r}.")
        row = rows[0]
        store = console.store
        flag = flag_row(row, store.locks(Kind.transactions, [id]).get(id))
        result = row["result"]
        account = result.get("account_id")
        recent = [flag_row(other, None) for other in store.account_decisions(account, limit=21)
                  if other["item_id"] != id][:20] if account else []
        earlier = [flag_row(other, None) for other in store.account_decisions(account, limit=21, flagged_only=True)
                   if other["item_id"] != id][:20] if account else []
        earlier_labels = {label["transaction_id"]: label
                          for label in store.analyst_labels([flag["id"] for flag in earlier])}
        return console.render(
            request, "flags/case.html", flag=flag, result=result, submitted=result.get("input") or {},
            features=result.get("features") or {}, recent=recent, earlier=earlier, earlier_labels=earlier_labels,
            labels=store.analyst_labels([id], newest_only=False), history=store.history(Kind.transactions, id),
            decisions=FLAG_DECISIONS, mine=flag["locked_by"] == viewer.username,
            audit=store.item_audit(Kind.transactions, id))

    @router.post("/flags/take")
    def take(request: Request, form: FormData = console.depends_form(), viewer: Viewer = analyst) -> Response:
        item_id = str(form.get("id") or "")
        if not console.store.current_results(Kind.transactions, item_ids=[item_id]):
            raise NotFound(f"No flagged transaction {item_id!r}.")
        if not console.store.lock_case(Kind.transactions, item_id, viewer.username,
                                       timedelta(minutes=console.settings.console.lock_minutes)):
            raise ConflictError("Someone else has this case.")
        return console.redirect("/flags/case", id=item_id)

    @router.post("/flags/decide")
    def decide(request: Request, form: FormData = console.depends_form(), viewer: Viewer = analyst) -> Response:
        item_id = str(form.get("id") or "")
        decision = str(form.get("decision") or "")
        comment = str(form.get("comment") or "").strip()
        if decision not in FLAG_DECISIONS:
            raise Invalid(f"Choose a decision: {', '.join(FLAG_DECISIONS)}.")
        if not comment:
            raise Invalid("A decision needs a comment: say what you saw.")
        if len(comment) > MAX_COMMENT:
            raise Invalid(f"The comment is longer than {MAX_COMMENT} characters.")
        try:
            seen = int(str(form.get("version")))
        except ValueError:
            seen = None
        console.store.decide_flag(item_id, decision, comment, analyst=viewer.username, seen_version=seen)
        return console.redirect("/flags", notice=f"{item_id}: {decision}.")

    return router
