"""The API: ingest (``POST /v1/{kind}``), synchronous decisions (``POST /v1/transactions/decide``), urgent
documents (``?priority=urgent&wait=true``) and results (``GET /v1/{kind}/{id}``).

Every request is checked in the same order: API key (401), kind allowed to the key and its producer (403), the
key's rate limit (429 with Retry-After), body size (413), then the items (422). Items go through the one Python
producer (workers/client.py: validate, back-pressure, sign, enqueue); a full queue answers 429 with Retry-After,
an unreachable Redis 503. A caller that waits gets the outcome the workers push after their commit
(workers/runtime/replies.py)."""


import json
import logging
import time
from functools import partial
from typing import Annotated, Any, Literal

import anyio.to_thread
import kombu.exceptions
import redis
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask

from schemas import INPUT_MODELS, ItemError, Kind, Transaction
from workers.client import EnqueueReport, RejectedItem, check_item, queue_full_message
from workers.gateway.body import BodyNotJson, BodyTooLarge, TooLarge, is_ndjson, parse_items, read_body, too_large
from workers.gateway.keys import Caller
from workers.gateway.responses import Decision, ErrorResponse, IngestResponse, ItemOutcome, ItemResult, Version
from workers.gateway.services import Services
from workers.pipelines.base import Rejected
from workers.runtime.names import LANE_QUEUES, QUEUES
from workers.runtime.replies import new_reply_key

log = logging.getLogger(__name__)
router = APIRouter()

BROKER_ERRORS = (kombu.exceptions.OperationalError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                 ConnectionError, TimeoutError)
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "No API key, or an unknown or revoked one."},
    403: {"model": ErrorResponse, "description": "The key (or its producer) may not use this kind."},
    413: {"model": ErrorResponse, "description": "The body is over SLIMLINE_GATEWAY__MAX_BODY_BYTES, or every "
                                                 "document is over SLIMLINE_MAX_DOCUMENT_CHARS."},
    422: {"model": ErrorResponse, "description": "Nothing valid to enqueue: the items' errors (field, reason)."},
    429: {"model": ErrorResponse, "description": "The key's rate limit, or the queue is at SLIMLINE_MAX_QUEUE_LENGTH: "
                                                 "retry after the Retry-After header's seconds."},
    503: {"model": ErrorResponse, "description": "Redis (or the database, for reads) is unreachable."},
}


def services(request: Request) -> Services:
    return request.app.state.services


def error(status: int, detail: str, items: list[ItemOutcome] | None = None,
          headers: dict[str, str] | None = None, background: BackgroundTask | None = None) -> JSONResponse:
    body = ErrorResponse(detail=detail, items=items).model_dump(mode="json", exclude={"items"} if items is None else None)
    return JSONResponse(body, status_code=status, headers=headers, background=background)


class Refused(Exception):
    """A request refused before its items are looked at (401, 403, 413, 429, 503)."""

    def __init__(self, response: JSONResponse) -> None:
        self.response = response


async def admit(request: Request, kind: Kind) -> Caller:
    """The caller, allowed to use ``kind`` and within its rate limit."""
    gateway = services(request)
    authorization = request.headers.get("authorization", "")
    presented = authorization[7:].strip() if authorization[:7].lower() == "bearer " else \
        request.headers.get("x-api-key", "").strip()
    if not presented:
        raise Refused(error(401, "an API key is required: Authorization: Bearer <key>",
                            headers={"WWW-Authenticate": "Bearer"}))
    try:
        caller = await gateway.caller(presented)
    except Exception as failure:  # noqa: BLE001 - the database is down: nobody can be verified
        log.error("could not verify an API key: %s", type(failure).__name__)
        raise Refused(error(503, "API keys cannot be verified now (database unreachable); retry later")) from None
    if caller is None:
        raise Refused(error(401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"}))
    if gateway.signed and gateway.keyring.get(caller.producer) is None:
        log.error("API key %s maps to producer %r, which has no key in the producer keys", caller.key_id,
                  caller.producer)
        raise Refused(error(500, "the gateway has no signing key for this key's producer: tell an operator"))
    if not caller.may_use(kind) or not gateway.producer_may_send(caller.producer, kind):
        raise Refused(error(403, f"this key (producer {caller.producer!r}) may not use {kind.value}"))
    try:
        wait = await gateway.over_limit(caller)
    except BROKER_ERRORS:
        raise Refused(error(503, "Redis is unreachable; retry later")) from None
    if wait is not None:
        raise Refused(error(429, f"rate limit of this key exceeded; retry in {wait} s",
                            headers={"Retry-After": str(wait)}))
    return caller


async def read_items(request: Request, kind: Kind, single: bool = False) -> list[Any]:
    limit = services(request).settings.gateway.max_body_bytes
    try:
        body = await read_body(request, limit)
    except BodyTooLarge:
        raise Refused(error(413, f"the body is over {limit} bytes (SLIMLINE_GATEWAY__MAX_BODY_BYTES); send "
                                 f"fewer items per request")) from None
    try:
        items = parse_items(body, ndjson=not single and is_ndjson(request))
    except BodyNotJson as failure:
        raise Refused(error(422, str(failure))) from None
    if not items:
        raise Refused(error(422, f"no {kind.value} in the body"))
    if single and (len(items) != 1 or not isinstance(items[0], dict)):
        raise Refused(error(422, f"send one {kind.value[:-1]} as a JSON object"))
    return items


async def enqueue(request: Request, caller: Caller, kind: Kind, items: list[Any], *, queue: str | None = None,
                  reply_to: str | None = None) -> EnqueueReport:
    """Enqueue through the caller's producer (in a thread: publishing blocks)."""
    gateway = services(request)
    producer = gateway.producer(caller.producer)  # its signing key exists: checked by admit()
    destination = queue or QUEUES[kind]
    try:
        if (depth := await gateway.depths.full(destination, len(items))) is not None:
            seconds = str(gateway.settings.gateway.queue_full_retry_after_seconds)
            raise Refused(error(429, queue_full_message(destination, depth, gateway.settings),
                                item_outcomes(items, EnqueueReport(kind), oversized(items)),
                                headers={"Retry-After": seconds}))
        send = partial(producer.enqueue, kind, items, queue=queue, reply_to=reply_to, record=False)
        # One item is one LPUSH on a pooled connection: sent from the event loop, it spares two thread switches,
        # which cost more than the send on a busy machine. Several go through a thread, not to hold up others.
        return send() if len(items) == 1 else await anyio.to_thread.run_sync(send)
    except BROKER_ERRORS as failure:
        log.error("could not enqueue %s: Redis unreachable (%s)", kind.value, type(failure).__name__)
        raise Refused(error(503, "Redis is unreachable; nothing was enqueued by this request, retry later")) from None


def oversized(items: list[Any]) -> frozenset[int]:
    """Positions of the documents :func:`too_large` refused."""
    return frozenset(position for position, item in enumerate(items, start=1) if isinstance(item, TooLarge))


def recording(request: Request, caller: Caller, report: EnqueueReport) -> BackgroundTask | None:
    """Rejections (and, unsigned, who enqueued what) are recorded after the response is sent."""
    gateway = services(request)
    if not report.rejected and gateway.signed:
        return None
    return BackgroundTask(anyio.to_thread.run_sync, gateway.producer(caller.producer).record, report)


def item_outcomes(items: list[Any], report: EnqueueReport, oversized: frozenset[int] = frozenset()) -> list[ItemOutcome]:
    """Each item's status from the producer's report (``oversized``: positions refused as too large). When the
    producer stopped early (a full queue), the items it did not reach are ``not_sent``."""
    rejected = {item.position: item for item in report.rejected}
    accepted = iter(zip(report.item_ids, report.task_ids))
    outcomes = []
    for position, item in enumerate(items, start=1):
        if position in rejected:
            refused = rejected[position]
            outcomes.append(ItemOutcome(position=position, id=refused.item_id, errors=refused.errors,
                                        status="too_large" if position in oversized else "rejected"))
        elif (taken := next(accepted, None)) is not None:
            outcomes.append(ItemOutcome(position=position, id=taken[0], status="accepted", message_id=taken[1]))
        else:
            outcomes.append(ItemOutcome(position=position, id=_id_of(item), status="not_sent"))
    return outcomes


def _id_of(item: Any) -> str | None:
    return item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None


async def wait_for_replies(request: Request, reply_to: str, count: int, deadline: float) -> dict[str, dict[str, Any]]:
    """Replies by message id, as many as come before ``deadline`` (perf_counter seconds)."""
    client = services(request).redis
    replies: dict[str, dict[str, Any]] = {}
    while len(replies) < count:
        remaining = deadline - time.perf_counter()
        if remaining < 0.001:  # BLPOP's timeout 0 would mean forever
            break
        try:
            popped = await client.blpop([reply_to], timeout=remaining)
        except BROKER_ERRORS:
            break
        if popped is None:
            break
        reply = json.loads(popped[1])
        replies[reply["message_id"]] = reply
    return replies


def with_replies(outcomes: list[ItemOutcome], replies: dict[str, dict[str, Any]]) -> None:
    for outcome in outcomes:
        if outcome.status != "accepted":
            continue
        reply = replies.get(outcome.message_id or "")
        if reply is None:
            outcome.status = "pending"
        elif reply["status"] == "stored":
            outcome.status, outcome.result = "stored", reply["result"]
            outcome.review_status, outcome.tier = reply.get("review_status"), reply.get("tier")
        elif reply["status"] == "rejected":
            outcome.status = "rejected"
            outcome.errors = [ItemError(**error) for error in reply["errors"]]
        else:
            outcome.status = "failed"
            outcome.errors = [ItemError(field="item", reason=reply.get("error") or "kept failing")]


def ingest_status(report: EnqueueReport, outcomes: list[ItemOutcome], waited: bool) -> int:
    if not report.accepted:
        return 413 if all(outcome.status == "too_large" for outcome in outcomes) else 422
    if waited and not any(outcome.status == "pending" for outcome in outcomes):
        return 200
    return 202


async def ingest(request: Request, kind: Kind, priority: str = "bulk", wait: bool = False) -> JSONResponse:
    try:
        caller = await admit(request, kind)
        items = await read_items(request, kind)
        gateway = services(request)
        prepared = [too_large(kind, item, position, gateway.settings) or item
                    for position, item in enumerate(items, start=1)]
        queue = LANE_QUEUES[priority][kind] if priority != "bulk" else None
        reply_to = new_reply_key() if wait else None
        started = time.perf_counter()
        report = await enqueue(request, caller, kind, prepared, queue=queue, reply_to=reply_to)
    except Refused as refused:
        return refused.response
    outcomes = item_outcomes(prepared, report, oversized(prepared))
    if reply_to and report.accepted:
        deadline = started + gateway.settings.gateway.wait_ms / 1000
        with_replies(outcomes, await wait_for_replies(request, reply_to, report.accepted, deadline))
    for outcome in outcomes:
        request.app.state.metrics.items.labels(kind.value, outcome.status).inc()
    status = ingest_status(report, outcomes, waited=reply_to is not None)
    body = IngestResponse(kind=kind.value, accepted=report.accepted, rejected=len(report.rejected), items=outcomes)
    if status >= 400:
        return error(status, "every item was refused: see items[].errors", outcomes,
                     background=recording(request, caller, report))
    return JSONResponse(body.model_dump(mode="json"), status_code=status, background=recording(request, caller, report))


def _request_body(kind: Kind, ndjson: bool = True) -> dict[str, Any]:
    """The body's schema in OpenAPI: the kind's input contract (schemas/messages.py), one object or NDJSON."""
    schema = {"$ref": f"#/components/schemas/{INPUT_MODELS[kind].__name__}"}
    content: dict[str, Any] = {"application/json": {"schema": schema}}
    if ndjson:
        content["application/x-ndjson"] = {"schema": schema, "description": "one object per line"}
    return {"requestBody": {"required": True, "content": content}}


def _add_ingest_route(kind: Kind) -> None:
    lanes = [lane for lane, queues in LANE_QUEUES.items() if kind in queues]

    if lanes:
        async def ingest_with_lanes(
            request: Request,
            priority: Annotated[Literal[tuple(["bulk", *lanes])], Query(  # type: ignore[valid-type]
                description=f"urgent: through the {kind.value} lane, ahead of the bulk backlog")] = "bulk",
            wait: Annotated[bool, Query(description="wait for the results (up to SLIMLINE_GATEWAY__WAIT_MS)")] = False,
        ) -> JSONResponse:
            return await ingest(request, kind, priority, wait)

        endpoint = ingest_with_lanes
    else:
        async def ingest_bulk(
            request: Request,
            wait: Annotated[bool, Query(description="wait for the results (up to SLIMLINE_GATEWAY__WAIT_MS)")] = False,
        ) -> JSONResponse:
            return await ingest(request, kind, "bulk", wait)

        endpoint = ingest_bulk
    router.add_api_route(
        f"/v1/{kind.value}", endpoint, methods=["POST"], status_code=202, response_model=IngestResponse,
        name=f"ingest_{kind.value}", tags=[kind.value], openapi_extra=_request_body(kind),
        summary=f"Enqueue {kind.value}: one JSON object, or NDJSON",
        responses={200: {"model": IngestResponse, "description": "wait=true: every item has its outcome"},
                   202: {"model": IngestResponse, "description": "Accepted (per item: id and status)"}, **ERRORS},
        description=f"Each item is validated against the {INPUT_MODELS[kind].__name__} contract, signed as the "
                    f"key's producer and enqueued. Resending an id is harmless: results are versioned by content.")


for _kind in Kind:
    _add_ingest_route(_kind)


@router.post("/v1/transactions/decide", response_model=Decision, tags=["transactions"],
             openapi_extra=_request_body(Kind.transactions, ndjson=False), responses=ERRORS,
             summary="Decide on one transaction inside the request")
async def decide(request: Request) -> JSONResponse:
    """The transaction is enqueued for a worker to store its decision, then decided in the gateway on the same account
    features (past SLIMLINE_TRANSACTIONS__FEATURES_TIMEOUT_SECONDS, on rules alone, marked ``degraded``).

    With SLIMLINE_GATEWAY__DECIDE_IN=worker the worker's decision is awaited instead, stored before it is returned;
    past SLIMLINE_GATEWAY__DEADLINE_MS (default 150) the answer is the gateway's rules-only decision, marked
    ``rules_only``, and the worker still stores its own."""
    started = time.perf_counter()
    gateway = services(request)
    try:
        caller = await admit(request, Kind.transactions)
        item = (await read_items(request, Kind.transactions, single=True))[0]
        if errors := check_item(Kind.transactions, item, gateway.settings):
            report = EnqueueReport(Kind.transactions, rejected=[RejectedItem(1, _id_of(item), errors)])
            return error(422, "the transaction is not valid: see items[].errors", item_outcomes([item], report),
                         background=recording(request, caller, report))
        reply_to = new_reply_key() if gateway.decider is None else None
        report = await enqueue(request, caller, Kind.transactions, [item], reply_to=reply_to)
    except Refused as refused:
        return refused.response
    message_id = report.task_ids[0]
    transaction = Transaction.model_validate(item)
    decided: dict[str, Any] | Rejected | str
    if gateway.decider is not None:  # on the event loop: see workers/gateway/decider.py
        decided, source = gateway.decider.decide(transaction), "gateway"
    else:
        deadline = started + gateway.settings.gateway.deadline_ms / 1000
        decided, source = await _decided_by_worker(request, reply_to or "", message_id, deadline), "worker"
    if isinstance(decided, str):  # why there is no decision: answer on the rules alone
        reason, source = decided, "rules_only"
        decided = gateway.rules_only.decide(transaction)
    else:
        reason = None
    if isinstance(decided, Rejected):
        outcome = ItemOutcome(position=1, id=item["id"], status="rejected", message_id=message_id,
                              errors=decided.errors)
        return error(422, "the transaction cannot be decided: see items[].errors", [outcome])
    request.app.state.metrics.decisions.labels(source).inc()
    decision = _decision(item["id"], message_id, decided, source, reason, started)
    return JSONResponse(decision.model_dump(mode="json"))


async def _decided_by_worker(request: Request, reply_to: str, message_id: str,
                             deadline: float) -> dict[str, Any] | Rejected | str:
    """The worker's stored decision, the reason it refused the transaction, or why there is no decision."""
    reply = (await wait_for_replies(request, reply_to, 1, deadline)).get(message_id)
    if reply is None:
        return f"no decision from a worker within {services(request).settings.gateway.deadline_ms} ms"
    if reply["status"] == "rejected":
        return Rejected([ItemError(**error) for error in reply["errors"]])
    if reply["status"] == "stored":
        return reply["result"]
    return f"the worker failed on it: {reply.get('error')}"


def _decision(item_id: str, message_id: str, result: dict[str, Any], source: str, reason: str | None,
              started: float) -> Decision:
    rules = result.get("rules_fired") or []
    reasons = result.get("model_reasons") or []
    codes = list(dict.fromkeys([rule["code"] for rule in rules] + [reason["code"] for reason in reasons]))
    return Decision(id=item_id, message_id=message_id, outcome=result["action"], score=result.get("score"),
                    rules_fired=rules, reason_codes=codes, model_reasons=reasons,
                    decided_by=result.get("decided_by") or "rules", decided_in=source,
                    rules_only=source == "rules_only", fallback_reason=reason, stored=source == "worker",
                    review_status=result.get("review_status"),
                    rule_set_version=result.get("rule_set_version"), model_version=result.get("model_version"),
                    degraded=result.get("degraded"), elapsed_ms=round((time.perf_counter() - started) * 1000, 3))


def _add_result_route(kind: Kind) -> None:
    async def result(request: Request, item_id: str) -> JSONResponse:
        try:
            await admit(request, kind)
        except Refused as refused:
            return refused.response
        try:
            versions = await anyio.to_thread.run_sync(partial(services(request).store.history, kind, item_id))
        except Exception as failure:  # noqa: BLE001 - the database is down
            log.error("could not read %s %s: %s", kind.value, "a result", type(failure).__name__)
            return error(503, "the database is unreachable; retry later")
        if not versions:
            return error(404, f"no {kind.value[:-1]} result with id {item_id!r} (yet)")
        listed = [Version.model_validate(version) for version in versions]
        current = next(version for version in listed if version.is_current)
        body = ItemResult(kind=kind.value, id=item_id, current=current, versions=listed)
        return JSONResponse(body.model_dump(mode="json"))

    router.add_api_route(f"/v1/{kind.value}/{{item_id:path}}", result, methods=["GET"], response_model=ItemResult,
                         name=f"result_{kind.value}", tags=[kind.value],
                         summary=f"A {kind.value[:-1]}'s current result and every version",
                         responses={404: {"model": ErrorResponse, "description": "No result for this id (yet)."},
                                    **{code: ERRORS[code] for code in (401, 403, 429, 503)}})


for _kind in Kind:
    _add_result_route(_kind)
