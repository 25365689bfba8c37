"""Help-desk webhooks: `POST /v1/webhooks/{vendor}/{connection}` for Zendesk, Jira (Service
Management), Zammad and Freshdesk. Thin: verify, read, place, hand the command to intake's
command path (the HTTP batcher and `service.process`, like every HTTP command), answer.

Order, per delivery: the connection (404), the vendor's signature over the raw body (401,
before the body is parsed; Freshdesk's shared secret before the body is even read), then
the payload. Answers: 202 with the command's event (a retried delivery: the same event and
`Idempotent-Replayed: true`, nothing emitted again), 200 when nothing Ladder tracks happened,
422 when the delivery cannot be placed or does not fit the ticket's state: the reason is
named and the delivery is dead-lettered in the same transaction (once, however often the
vendor retries). 422 rather than 409: Zendesk and Jira retry a 409, and a retry cannot fix it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from services.intake.core.helpdesks.mapping import VENDORS, Connection, Vendor
from services.intake.core.helpdesks.place import Placed, place
from services.intake.core.helpdesks.signatures import (
    Refused,
    verify_hub,
    verify_shared_secret,
    verify_zendesk,
)
from services.intake.core.helpdesks.vendors import Change, Ignored, Unplaceable, delivery_key, read
from services.intake.core.limits import RateLimits
from services.intake.core.tickets import (
    Accepted,
    Decision,
    Rejected,
    Replayed,
    Submission,
    command_id,
    external_ticket_id,
)
from services.intake.service import DEAD_LETTERED, Entry, FromTopic, Poison
from shared.delivery.failures import Kind, classify, describe
from shared.delivery.records import Rejection, SourceRecord

log = logging.getLogger(__name__)

# Vendor headers worth keeping on a dead letter (never a signature or a secret).
_KEPT_HEADERS = (
    "content-type",
    "x-zendesk-webhook-id",
    "x-zendesk-webhook-invocation-id",
    "x-zendesk-webhook-signature-timestamp",
    "x-atlassian-webhook-identifier",
    "x-atlassian-webhook-retry",
    "x-zammad-trigger",
    "x-zammad-delivery",
)
WEBHOOK_HEADER = "ladder_webhook"  # on a dead letter: vendor/connection it came from


class WebhookAccepted(BaseModel):
    ticket_id: str
    event_id: str = Field(description="Id of the event this delivery produced (its CloudEvents ce_id).")
    event_type: str


class WebhookIgnored(BaseModel):
    ignored: str = Field(description="Why nothing was done (nothing Ladder tracks happened).")


class WebhookProblem(BaseModel):
    error: str = Field(
        description="unauthenticated (401), not_found (404), too_large (413), a placement code (422: "
        "not_json, not_an_object, unknown_event, unknown_trigger, missing_field, ambiguous, unknown_group, "
        "unknown_status, unknown_rating, invalid_command, dead_lettered, or the state rule: unknown_ticket, "
        "ticket_resolved, ticket_open, already_rated, ticket_exists, idempotency_key_reused), unavailable (503)."
    )
    detail: str = Field(description="One line for people; never echoes the payload.")
    fields: list[dict[str, str]] = Field(default_factory=list)


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": WebhookIgnored, "description": "Nothing Ladder tracks happened; acknowledged."},
    401: {
        "model": WebhookProblem,
        "description": "The vendor's signature (or Freshdesk's secret) is missing, wrong or stale.",
    },
    404: {"model": WebhookProblem, "description": "No connection of this vendor by that name."},
    429: {
        "model": WebhookProblem,
        "description": "The connection is over its rate limit (a client's token bucket); retry after "
        "`Retry-After` seconds. Nothing was applied.",
    },
    413: {"model": WebhookProblem, "description": "The body is larger than the server accepts."},
    422: {
        "model": WebhookProblem,
        "description": "The delivery cannot be placed, or does not fit the ticket's "
        "state: the reason is named and the delivery dead-lettered. Not retried by the vendors.",
    },
    500: {"model": WebhookProblem, "description": "A fault of ours; nothing was applied."},
    503: {"model": WebhookProblem, "description": "Storage is unavailable; the vendor's retry will be applied once."},
}

_SIGNED_BY: dict[Vendor, str] = {
    "zendesk": "`X-Zendesk-Webhook-Signature`: base64 HMAC-SHA256 of `X-Zendesk-Webhook-Signature-Timestamp` "
    "+ raw body with the webhook's signing secret; a timestamp older than the mapping's `max_age` is refused.",
    "jira": "`X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>` with the webhook's secret.",
    "zammad": "`X-Hub-Signature: sha1=<hex HMAC-SHA1 of the raw body>` with the webhook's HMAC SHA1 token; "
    "the trigger's name (`X-Zammad-Trigger`) says what changed.",
    "freshdesk": "Freshdesk signs nothing: the shared secret in `X-Ladder-Webhook-Secret` or as the basic-auth "
    "password, set in the automation rule. Weaker: it travels with every request.",
}


def _problem(status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail, "fields": []}, status_code=status, headers=headers)


def webhook_router(
    connections: Mapping[str, Connection],
    submit: Callable[[Entry], Awaitable[Decision]],
    limits: RateLimits,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    clock: Callable[[], float] = time.monotonic,
) -> APIRouter:
    """A connection is a client like any other: its own secret, its own tickets (ids derive
    from the connection) and its own token bucket in `limits` (the API's, by client name)."""
    router = APIRouter(prefix="/v1/webhooks", tags=["help-desk webhooks"], responses=_RESPONSES)

    async def receive(vendor: Vendor, name: str, request: Request) -> Response:
        connection = connections.get(name)
        if connection is None or connection.mapping.vendor != vendor:
            return _problem(404, "not_found", f"no {vendor} connection by that name")
        mapping = connection.mapping
        headers = {key.lower(): value for key, value in request.headers.items()}
        received = now()
        refused: Refused | None = None
        if vendor == "freshdesk":  # nothing to compute over the body: check before reading it
            refused = verify_shared_secret(headers, connection.secret)
        if refused is None:
            body = await request.body()
            if vendor == "zendesk":
                refused = verify_zendesk(headers, body, connection.secret, now=received, max_age=mapping.max_age)
            elif vendor == "jira":
                refused = verify_hub(headers, body, connection.secret, algorithm="sha256")
            elif vendor == "zammad":
                refused = verify_hub(headers, body, connection.secret, algorithm="sha1")
        if refused is not None:
            log.warning("webhook refused", extra={"connection": name, "reason": refused.reason})
            return _problem(401, "unauthenticated", refused.reason)
        wait = limits.take(name, clock(), mapping.rate_per_second, mapping.burst)
        if wait is not None:
            return _problem(
                429,
                "rate_limited",
                f"connection {name!r} is over its rate limit; retry after the Retry-After seconds",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )

        try:
            payload: Any = orjson.loads(body)
        except orjson.JSONDecodeError:
            payload = None
        key = delivery_key(vendor, payload, headers, body)
        command = command_id(connection.name, idempotency_key=f"webhook/{key}")
        reading = (
            read(
                vendor,
                payload,
                headers,
                group_field=mapping.group_field,
                satisfaction_field=mapping.satisfaction_field,
                events=mapping.events,
            )
            if payload is not None
            else Unplaceable("not_json", "the body is not JSON")
        )
        outcome = place(reading, mapping) if isinstance(reading, Change) else reading
        if isinstance(outcome, Ignored):
            return JSONResponse({"ignored": outcome.reason}, status_code=200)
        source = SourceRecord(
            topic=f"webhooks.{vendor}",
            partition=0,
            offset=0,
            timestamp_ms=int(received.timestamp() * 1000),
            key=reading.ticket.encode() if isinstance(reading, Change) else None,
            value=body,
            headers=[(h, _bytes(headers[h])) for h in _KEPT_HEADERS if h in headers]
            + [(WEBHOOK_HEADER, _bytes(f"{vendor}/{name}"))],
        )
        entry: Entry
        if isinstance(outcome, Unplaceable):
            entry = Poison(command, source, Rejection(outcome.code, f"{outcome.code}: {outcome.reason}"))
        else:
            assert isinstance(outcome, Placed)
            ticket_id = external_ticket_id(connection.name, outcome.external_id)
            entry = FromTopic(Submission(outcome.request, ticket_id, command, connection.name, received), source)
        return await _answer(entry, submit)

    def route(vendor: Vendor) -> None:
        async def endpoint(
            request: Request,
            connection: Annotated[
                str, Path(description="The connection: the name of its mapping file.", pattern=r"^[A-Za-z0-9._-]+$")
            ],
        ) -> Response:
            return await receive(vendor, connection, request)

        endpoint.__name__ = f"{vendor}_webhook"
        router.add_api_route(
            f"/{vendor}/{{connection}}",
            endpoint,
            methods=["POST"],
            status_code=202,
            response_model=WebhookAccepted,
            summary=f"Receive a {vendor.capitalize()} webhook",
            operation_id=f"{vendor}Webhook",
            description=f"{_SIGNED_BY[vendor]} The body is the vendor's payload (docs/helpdesks/{vendor}.md).",
            openapi_extra={
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}
            },
            responses={202: {"description": "Accepted: the delivery became this event (a retry: the same one)."}},
        )

    for vendor in VENDORS:
        route(vendor)
    return router


async def _answer(entry: Entry, submit: Callable[[Entry], Awaitable[Decision]]) -> Response:
    try:
        decision = await submit(entry)
    except Exception as error:
        if classify(error) is not Kind.POISON:
            return _problem(503, "unavailable", "storage is unavailable; retry", headers={"Retry-After": "1"})
        log.error("webhook not stored", extra={"error": describe(error)})
        return _problem(500, "internal_error", "the delivery could not be stored; it was not applied")
    match decision:
        case Accepted(envelope=envelope):
            return _accepted(envelope.ticket_id, envelope.id, envelope.type, None)
        case Replayed(event_type=event_type) if event_type == DEAD_LETTERED:
            return _problem(422, "dead_lettered", "this delivery was refused before and is in the dead-letter topic")
        case Replayed():
            replayed = {"Idempotent-Replayed": "true"}
            return _accepted(decision.ticket_id, decision.event_id, decision.event_type, replayed)
        case Rejected(reason=reason) if isinstance(entry, Poison):
            return _problem(422, entry.rejection.code, reason)
        case Rejected(code=code, reason=reason):
            return _problem(422, code.value, f"{code.value}: {reason}; dead-lettered")
    raise AssertionError(decision)


def _bytes(text: str) -> bytes | None:
    return text.encode()


def _accepted(ticket_id: str, event_id: str, event_type: str, headers: dict[str, str] | None) -> Response:
    body = orjson.dumps({"ticket_id": ticket_id, "event_id": event_id, "event_type": event_type})
    return Response(body, status_code=202, headers=headers, media_type="application/json")
