"""The HTTP API (`/v1`): parse, authenticate, hand the command to the core, map the decision.

Status codes: 201/202 accepted (a retry with the same Idempotency-Key gets the original
answer and `Idempotent-Replayed: true`), 401/403 authentication, 409 the command does not
fit the ticket's state, 413 body too large, 422 invalid body (every invalid field named),
503 storage unavailable (retry with the same Idempotency-Key).
"""


import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, FastAPI, Header, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.events import TicketId
from shared.delivery.failures import describe, is_transient
from services.intake.core.auth import ApiKey, Denied, KeyRing
from services.intake.core.commands import (
    Action, CreateTicketRequest, RateTicketRequest, RecordResponseRequest, ReopenTicketRequest, Request as Command,
    RequestEscalationRequest, ResolveTicketRequest, ReturnWithFixRequest,
)
from services.intake.core.tickets import Accepted, Decision, Rejected, RejectCode, Replayed, Submission, command_id, new_ticket_id

log = logging.getLogger(__name__)

IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=255,
    description="Client-chosen unique key: a retry with the same key and body gets the original answer "
                "and produces no second event.")]
TicketPath = Annotated[TicketId, Path(description="Ticket id returned by POST /v1/tickets.")]


class CommandAccepted(BaseModel):
    ticket_id: str
    event_id: str = Field(description="Id of the event this command produced (its CloudEvents ce_id).")
    event_type: str


class Problem(BaseModel):
    error: str = Field(description="Machine-readable code, e.g. unknown_ticket, invalid_request.")
    detail: str
    fields: list[dict[str, str]] = Field(default_factory=list, description="Invalid fields (422 only).")


_ERRORS = {status: {"model": Problem} for status in (401, 403, 409, 413, 422, 500, 503)}


def _problem(status: int, error: str, detail: str, fields: list[dict[str, str]] | None = None,
             headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(Problem(error=error, detail=detail, fields=fields or []).model_dump(),
                        status_code=status, headers=headers)


def _accepted(ticket_id: str, event_id: str, event_type: str, status: int,
              headers: dict[str, str] | None = None) -> Response:
    """The `CommandAccepted` body, serialised directly (this is the hot path)."""
    body = orjson.dumps({"ticket_id": ticket_id, "event_id": event_id, "event_type": event_type})
    return Response(body, status_code=status, headers=headers, media_type="application/json")


class _Refused(Exception):
    def __init__(self, response: JSONResponse) -> None:
        self.response = response


def api_router(keys: KeyRing, submit: Callable[[Submission], Awaitable[Decision]]) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["tickets"], responses=_ERRORS)

    bearer = HTTPBearer(auto_error=False, description="An API key allowed to take this action.")

    def writer(action: Action) -> Callable[..., ApiKey]:
        # async: a plain `def` dependency would cost a thread-pool round trip per request
        async def authorize(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> ApiKey:
            outcome = keys.authorize(f"{credentials.scheme} {credentials.credentials}" if credentials else None, action)
            if isinstance(outcome, Denied):
                error = "unauthenticated" if outcome.status == 401 else "forbidden"
                raise _Refused(_problem(outcome.status, error, outcome.reason,
                                        headers={"WWW-Authenticate": "Bearer"} if outcome.status == 401 else None))
            return outcome
        return authorize

    async def handle(key: ApiKey, command: Command, ticket_id: str | None, idempotency_key: str | None,
                     status: int) -> Response:
        command_key = command_id(key.name, idempotency_key=idempotency_key)
        if ticket_id is None:
            assert isinstance(command, CreateTicketRequest)
            ticket_id = new_ticket_id(key.name, command, command_key)
        submission = Submission(command, ticket_id, command_key, key.name, datetime.now(UTC),
                                repeatable=idempotency_key is not None)
        try:
            decision = await submit(submission)
        except Exception as error:
            log.error("command not stored", extra={"action": command.ACTION.value, "error": describe(error)})
            if is_transient(error):
                return _problem(503, "unavailable", "storage is unavailable; retry with the same Idempotency-Key",
                                headers={"Retry-After": "1"})
            return _problem(500, "internal_error", "the command could not be stored; it was not applied")
        match decision:
            case Accepted(envelope=envelope):
                return _accepted(envelope.ticket_id, envelope.id, envelope.type, status)
            case Replayed():
                return _accepted(decision.ticket_id, decision.event_id, decision.event_type, status,
                                 headers={"Idempotent-Replayed": "true"})
            case Rejected(code=RejectCode.REUSED_KEY, reason=reason):
                return _problem(422, RejectCode.REUSED_KEY.value, f"Idempotency-Key {idempotency_key!r}: {reason}",
                                [{"field": "Idempotency-Key", "message": reason}])
            case Rejected(code=code, reason=reason):
                return _problem(409, code.value, reason)
        raise AssertionError(decision)

    @router.post("/tickets", status_code=201, response_model=CommandAccepted, summary="Create a ticket")
    async def create_ticket(command: CreateTicketRequest, idempotency_key: IdempotencyKey = None,
                            key: ApiKey = Depends(writer(Action.CREATE))) -> Response:
        return await handle(key, command, None, idempotency_key, 201)

    def ticket_command(path: str, body: type[Command], summary: str) -> None:
        async def endpoint(ticket_id: TicketPath, command: body,  # type: ignore[valid-type]
                           idempotency_key: IdempotencyKey = None,
                           key: ApiKey = Depends(writer(body.ACTION))) -> Response:
            return await handle(key, command, ticket_id, idempotency_key, 202)
        endpoint.__name__ = path.replace("-", "_")
        router.add_api_route(f"/tickets/{{ticket_id}}/{path}", endpoint, methods=["POST"], status_code=202,
                             response_model=CommandAccepted, summary=summary)

    ticket_command("responses", RecordResponseRequest, "Record an agent's response to the customer")
    ticket_command("escalations", RequestEscalationRequest, "Ask to hand the ticket up a tier")
    ticket_command("returns", ReturnWithFixRequest, "Hand the ticket back down with a fix")
    ticket_command("resolution", ResolveTicketRequest, "Resolve the ticket")
    ticket_command("reopen", ReopenTicketRequest, "Reopen a resolved ticket")
    ticket_command("rating", RateTicketRequest, "Record the customer's satisfaction rating (1-5)")
    return router


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(_Refused)
    async def refused(_: Request, error: _Refused) -> JSONResponse:
        return error.response

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        # Name every invalid field; never echo the input (it may be customer text).
        fields = [{"field": ".".join(str(part) for part in item["loc"]), "message": item["msg"]}
                  for item in error.errors()]
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
