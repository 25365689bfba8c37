"""The HTTP API (`/v1`): parse, authenticate, hand the command to the core, map the decision.

Status codes: 201/202 accepted (a retry with the same Idempotency-Key gets the original
answer and `Idempotent-Replayed: true`), 401/403 authentication, 404 no such ticket for this
client (missing, or another client's: indistinguishable), 409 the command does not
fit the ticket's state, 413 body too large, 422 invalid body (every invalid field named),
503 storage unavailable (retry with the same Idempotency-Key).
"""

import json
import logging
import math
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, FastAPI, Header, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.intake.core.auth import ApiKey, Denied, KeyRing
from services.intake.core.commands import (
    Action,
    ClaimTicketRequest,
    CreateTicketRequest,
    RateTicketRequest,
    RecordResponseRequest,
    ReopenTicketRequest,
    RequestEscalationRequest,
    ResolveTicketRequest,
    ReturnWithFixRequest,
)
from services.intake.core.commands import (
    Request as Command,
)
from services.intake.core.limits import RateLimits
from services.intake.core.tickets import (
    Accepted,
    Decision,
    RejectCode,
    Rejected,
    Replayed,
    Submission,
    command_id,
    new_ticket_id,
)
from services.intake.service import QueueFull
from shared.delivery.failures import Kind, classify, describe
from shared.events import AgentId, TicketId, Tier

log = logging.getLogger(__name__)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Client-chosen unique key for this request: a retry with the same key, ticket and body gets "
        "the original answer (`Idempotent-Replayed: true`) and produces no second event; the key "
        "used for any other request is refused (422 idempotency_key_reused). A key is remembered for "
        "INTAKE_RETENTION_DAYS (30 days unless the deployment says otherwise) after its first use; after that "
        "it is forgotten and the same key starts a new request (an `external_id` names its ticket for ever).",
    ),
]
TicketPath = Annotated[TicketId, Path(description="Ticket id returned by POST /v1/tickets.")]


class CommandAccepted(BaseModel):
    ticket_id: str
    event_id: str = Field(description="Id of the event this command produced (its CloudEvents ce_id).")
    event_type: str


class InvalidField(BaseModel):
    field: str = Field(description="Where: `body.<field>`, a header name, or `body`.")
    message: str


# The machine-readable codes, per status: the error shape is the same everywhere.
ERROR_CODES = {
    401: ["unauthenticated"],
    403: ["forbidden"],
    404: [RejectCode.UNKNOWN_TICKET.value],
    409: [
        code.value
        for code in RejectCode
        if code not in (RejectCode.MALFORMED, RejectCode.REUSED_KEY, RejectCode.UNKNOWN_TICKET)
    ],
    413: ["too_large"],
    422: ["invalid_request", RejectCode.REUSED_KEY.value],
    429: ["rate_limited"],
    500: ["internal_error"],
    503: ["unavailable", "overloaded"],
}
_MEANING = {
    401: "No valid API key (`Authorization: Bearer <key>`).",
    403: "The API key may not take this action.",
    404: "No such ticket for this client: it does not exist, or another client created it and this key is not "
    "granted every ticket (the two are indistinguishable on purpose).",
    409: "The command does not fit the ticket's state (e.g. ticket_resolved).",
    413: "The body is larger than the server accepts.",
    422: "Invalid body or headers (every field named in `fields`), or an Idempotency-Key already used "
    "for another request (idempotency_key_reused).",
    429: "The client is over its rate limit (a token bucket per client: INTAKE_RATE_PER_SECOND and INTAKE_BURST, "
    "or its key's rate_per_second and burst); nothing was applied. Retry after `Retry-After` seconds.",
    500: "The command could not be stored because of a fault of ours; it was not applied.",
    503: "Storage is unavailable (unavailable), or too many commands are queued (overloaded, INTAKE_HTTP_QUEUE); "
    "nothing was applied: retry after `Retry-After` seconds with the same Idempotency-Key.",
}


class Problem(BaseModel):
    error: Literal[tuple(sorted({code for codes in ERROR_CODES.values() for code in codes}))] = Field(  # type: ignore[valid-type]
        description="Machine-readable code; the codes each status uses are listed with it."
    )
    detail: str = Field(description="One line for people; never echoes customer text.")
    fields: list[InvalidField] = Field(default_factory=list, description="Invalid fields (422 only).")


_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {
        "model": Problem,
        "description": f"{_MEANING[status]} Codes: {', '.join(codes)}.",
        **({"headers": _RETRY_AFTER} if status in (429, 503) else {}),
    }
    for status, codes in ERROR_CODES.items()
}


def _problem(
    status: int,
    error: str,
    detail: str,
    fields: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail, "fields": fields or []}, status_code=status, headers=headers)


def _accepted(
    ticket_id: str, event_id: str, event_type: str, status: int, headers: dict[str, str] | None = None
) -> Response:
    """The `CommandAccepted` body, serialised directly (this is the hot path)."""
    body = orjson.dumps({"ticket_id": ticket_id, "event_id": event_id, "event_type": event_type})
    return Response(body, status_code=status, headers=headers, media_type="application/json")


class _Refused(Exception):
    def __init__(self, response: JSONResponse) -> None:
        self.response = response


_SURROGATE = re.compile("[\ud800-\udfff]")


def _as_text(value: Any) -> Any:
    """JSON may escape lone UTF-16 surrogates ("\\ud800"), which are no Unicode text: each
    becomes U+FFFD, as browsers do for such strings, so any JSON string is accepted."""
    if isinstance(value, str):
        if _SURROGATE.search(value):
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return value
    if isinstance(value, list):
        return [_as_text(item) for item in value]
    if isinstance(value, dict):
        return {_as_text(key): _as_text(item) for key, item in value.items()}
    return value


class _TextRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = _as_text(json.loads(await self.body()))
        return self._json


class _TextRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            return await handler(_TextRequest(request.scope, request.receive))

        return route


def api_router(
    keys: Callable[[], KeyRing],
    submit: Callable[[Submission], Awaitable[Decision]],
    limits: RateLimits,
    clock: Callable[[], float] = time.monotonic,
) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["tickets"], responses=_ERRORS, route_class=_TextRoute)

    bearer = HTTPBearer(auto_error=False, description="An API key allowed to take this action.")

    def writer(action: Action) -> Callable[..., Awaitable[ApiKey]]:
        # async: a plain `def` dependency would cost a thread-pool round trip per request
        async def authorize(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> ApiKey:
            outcome = keys().authorize(
                f"{credentials.scheme} {credentials.credentials}" if credentials else None, action
            )
            if isinstance(outcome, Denied):
                error = "unauthenticated" if outcome.status == 401 else "forbidden"
                raise _Refused(
                    _problem(
                        outcome.status,
                        error,
                        outcome.reason,
                        headers={"WWW-Authenticate": "Bearer"} if outcome.status == 401 else None,
                    )
                )
            wait = limits.take(outcome.name, clock(), outcome.rate_per_second, outcome.burst)
            if wait is not None:
                raise _Refused(
                    _problem(
                        429,
                        "rate_limited",
                        f"client {outcome.name!r} is over its rate limit; retry after the Retry-After seconds",
                        headers={"Retry-After": str(max(1, math.ceil(wait)))},
                    )
                )
            return outcome

        return authorize

    async def handle(
        key: ApiKey, command: Command, ticket_id: str | None, idempotency_key: str | None, status: int
    ) -> Response:
        command_key = command_id(key.name, idempotency_key=idempotency_key)
        if ticket_id is None:
            assert isinstance(command, CreateTicketRequest)
            ticket_id = new_ticket_id(key.name, command, command_key)
        submission = Submission(
            command,
            ticket_id,
            command_key,
            key.name,
            datetime.now(UTC),
            repeatable=idempotency_key is not None,
            all_tickets=key.tickets == "all",
        )
        try:
            decision = await submit(submission)
        except QueueFull:
            return _problem(503, "overloaded", "too many commands queued; retry later", headers={"Retry-After": "1"})
        except Exception as error:
            if classify(error) is not Kind.POISON:  # an outage, logged once per backoff step (main._Http)
                return _problem(
                    503,
                    "unavailable",
                    "storage is unavailable; retry with the same Idempotency-Key",
                    headers={"Retry-After": "1"},
                )
            log.error("command not stored", extra={"action": command.ACTION.value, "error": describe(error)})
            return _problem(500, "internal_error", "the command could not be stored; it was not applied")
        match decision:
            case Accepted(envelope=envelope):
                return _accepted(envelope.ticket_id, envelope.id, envelope.type, status)
            case Replayed():
                return _accepted(
                    decision.ticket_id,
                    decision.event_id,
                    decision.event_type,
                    status,
                    headers={"Idempotent-Replayed": "true"},
                )
            case Rejected(code=RejectCode.REUSED_KEY, reason=reason):
                return _problem(
                    422,
                    RejectCode.REUSED_KEY.value,
                    f"Idempotency-Key {idempotency_key!r}: {reason}",
                    [{"field": "Idempotency-Key", "message": reason}],
                )
            case Rejected(code=RejectCode.UNKNOWN_TICKET, reason=reason):
                return _problem(404, RejectCode.UNKNOWN_TICKET.value, reason)  # another client's: the same answer
            case Rejected(code=code, reason=reason):
                return _problem(409, code.value, reason)
        raise AssertionError(decision)

    follow_ups: dict[str, tuple[str, type[Command], str]] = {  # path -> (operation id, body, summary)
        "responses": ("recordResponse", RecordResponseRequest, "Record an agent's response to the customer"),
        "escalations": ("requestEscalation", RequestEscalationRequest, "Ask to hand the ticket up a tier"),
        "returns": ("returnWithFix", ReturnWithFixRequest, "Hand the ticket back down with a fix"),
        "resolution": ("resolveTicket", ResolveTicketRequest, "Resolve the ticket"),
        "reopen": ("reopenTicket", ReopenTicketRequest, "Reopen a resolved ticket"),
        "rating": ("rateTicket", RateTicketRequest, "Record the customer's satisfaction rating (1-5)"),
        "claim": ("claimTicket", ClaimTicketRequest, "Claim the ticket out of its tier's shadow queue"),
    }
    # OpenAPI links: what a client (or a stateful tester) can do with a created ticket's id.
    links = {
        operation: {"operationId": operation, "parameters": {"ticket_id": "$response.body#/ticket_id"}}
        for operation, _, _ in follow_ups.values()
    }

    @router.post(
        "/tickets",
        status_code=201,
        response_model=CommandAccepted,
        summary="Create a ticket",
        operation_id="createTicket",
        responses={201: {"description": "Created", "links": links}},
    )
    async def create_ticket(
        command: CreateTicketRequest,
        idempotency_key: IdempotencyKey = None,
        key: ApiKey = Depends(writer(Action.CREATE)),
    ) -> Response:
        return await handle(key, command, None, idempotency_key, 201)

    def ticket_command(path: str, operation: str, body: type[Command], summary: str) -> None:
        async def endpoint(
            ticket_id: TicketPath,
            command: body,  # type: ignore[valid-type]
            idempotency_key: IdempotencyKey = None,
            key: ApiKey = Depends(writer(body.ACTION)),
        ) -> Response:
            return await handle(key, command, ticket_id, idempotency_key, 202)

        endpoint.__name__ = path
        router.add_api_route(
            f"/tickets/{{ticket_id}}/{path}",
            endpoint,
            methods=["POST"],
            status_code=202,
            response_model=CommandAccepted,
            summary=summary,
            operation_id=operation,
            responses={202: {"description": "Accepted", "links": links}},
        )

    for path, (operation, body, summary) in follow_ups.items():
        ticket_command(path, operation, body, summary)

    @router.post(
        "/claims",
        status_code=202,
        response_model=ClaimBatchAccepted,
        summary="Claim a batch of tickets out of a shadow queue",
        operation_id="claimBatch",
        description="One `ticket.claim_requested` per ticket, all naming one batch (the Idempotency-Key, "
        "or a new id). Router takes each ticket out of its shadow queue once: a ticket already claimed "
        "(by this batch or another) stays with its first claimer.",
    )
    async def claim_batch(
        batch: ClaimBatchRequest,
        idempotency_key: IdempotencyKey = None,
        key: ApiKey = Depends(writer(Action.CLAIM)),
    ) -> JSONResponse:
        batch_id = idempotency_key or str(uuid.uuid4())
        claims = []
        for ticket_id in batch.ticket_ids:
            command = ClaimTicketRequest(tier=batch.tier, agent_id=batch.agent_id, batch_id=batch_id)
            answer = await handle(key, command, ticket_id, f"{batch_id}/{ticket_id}", 202)
            claims.append({"ticket_id": ticket_id, "status": answer.status_code, **orjson.loads(bytes(answer.body))})
        return JSONResponse({"batch_id": batch_id, "claims": claims}, status_code=202)

    return router


class ClaimBatchRequest(BaseModel):
    model_config = {"extra": "forbid"}

    tier: Tier
    agent_id: AgentId
    ticket_ids: list[TicketId] = Field(min_length=1, max_length=500, description="Tickets to claim (distinct).")

    @field_validator("ticket_ids")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a ticket is listed twice")
        return value


class ClaimBatchAccepted(BaseModel):
    batch_id: str
    claims: list[dict[str, Any]] = Field(description="Per ticket: its status (202 or 409) and answer.")


def install_error_handlers(app: FastAPI) -> None:
    """One error shape everywhere (`Problem`), and only documented statuses."""

    @app.exception_handler(_Refused)
    async def refused(_: Request, error: _Refused) -> JSONResponse:
        return error.response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400:  # FastAPI's answer to a body it cannot even decode
            return _problem(
                422,
                "invalid_request",
                "body: not a JSON document (UTF-8)",
                [{"field": "body", "message": "not a JSON document (UTF-8)"}],
            )
        names = {404: "not_found", 405: "method_not_allowed"}
        return _problem(
            error.status_code,
            names.get(error.status_code, "http_error"),
            str(error.detail),
            headers=getattr(error, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        # Name every invalid field; never echo the input (it may be customer text).
        fields = [
            {"field": ".".join(str(part) for part in item["loc"]), "message": item["msg"]} for item in error.errors()
        ]
        return _problem(422, "invalid_request", "; ".join(f"{f['field']}: {f['message']}" for f in fields), fields)


class BodySizeLimit:
    """ASGI middleware: refuse request bodies over `max_bytes` with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            await self.app(scope, receive, send)  # the server enforces the declared length
            return
        # Streamed (chunked) body: buffer up to the limit, then replay it to the app.
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = _problem(413, "too_large", f"request body exceeds {self.max_bytes} bytes")
        await response(scope, receive, send)
