"""The HTTP API (`/v1`): parse, authenticate, hand the command to the core, map the decision.

Status codes: 201/202 accepted (a retry with the same Idempotency-Key gets the original
answer and `Idempotent-Replayed: true`), 401/403 authentication, 404 no such ticket for this
client (missing, or another client's: indistinguishable), 409 the command does not
fit the ticket's state, 413 body too large, 422 invalid body (every invalid field named),
503 storage unavailable (retry with the same Idempotency-Key).
"""

import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Path
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, field_validator

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
from services.intake.handlers.body import TextRoute
from services.intake.handlers.errors import ERRORS, Refused, problem
from services.intake.service import QueueFull
from shared.delivery.failures import Kind, classify, describe
from shared.envelope import new_id as random_id
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


def _accepted(
    ticket_id: str, event_id: str, event_type: str, status: int, headers: dict[str, str] | None = None
) -> Response:
    """The `CommandAccepted` body, serialised directly (this is the hot path)."""
    body = orjson.dumps({"ticket_id": ticket_id, "event_id": event_id, "event_type": event_type})
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def api_router(
    keys: Callable[[], KeyRing],
    submit: Callable[[Submission], Awaitable[Decision]],
    limits: RateLimits,
    clock: Callable[[], float] = time.monotonic,
    new_id: Callable[[], str] = random_id,
) -> APIRouter:
    """The `/v1` routes. `new_id` names a command sent without an Idempotency-Key (and so
    the ticket it creates) and a claim batch without one: the core only derives ids."""
    router = APIRouter(prefix="/v1", tags=["tickets"], responses=ERRORS, route_class=TextRoute)

    bearer = HTTPBearer(auto_error=False, description="An API key allowed to take this action.")

    def writer(action: Action) -> Callable[..., Awaitable[ApiKey]]:
        # async: a plain `def` dependency would cost a thread-pool round trip per request
        async def authorize(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> ApiKey:
            outcome = keys().authorize(
                f"{credentials.scheme} {credentials.credentials}" if credentials else None, action
            )
            if isinstance(outcome, Denied):
                error = "unauthenticated" if outcome.status == 401 else "forbidden"
                raise Refused(
                    problem(
                        outcome.status,
                        error,
                        outcome.reason,
                        headers={"WWW-Authenticate": "Bearer"} if outcome.status == 401 else None,
                    )
                )
            wait = limits.take(outcome.name, clock(), outcome.rate_per_second, outcome.burst)
            if wait is not None:
                raise Refused(
                    problem(
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
        command_key = command_id(key.name, idempotency_key=idempotency_key) if idempotency_key else new_id()
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
            return problem(503, "overloaded", "too many commands queued; retry later", headers={"Retry-After": "1"})
        except Exception as error:
            if classify(error) is not Kind.POISON:  # an outage, logged once per backoff step (main._Http)
                return problem(
                    503,
                    "unavailable",
                    "storage is unavailable; retry with the same Idempotency-Key",
                    headers={"Retry-After": "1"},
                )
            log.error("command not stored", extra={"action": command.ACTION.value, "error": describe(error)})
            return problem(500, "internal_error", "the command could not be stored; it was not applied")
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
                return problem(
                    422,
                    RejectCode.REUSED_KEY.value,
                    f"Idempotency-Key {idempotency_key!r}: {reason}",
                    [{"field": "Idempotency-Key", "message": reason}],
                )
            case Rejected(code=RejectCode.UNKNOWN_TICKET, reason=reason):
                return problem(404, RejectCode.UNKNOWN_TICKET.value, reason)  # another client's: the same answer
            case Rejected(code=code, reason=reason):
                return problem(409, code.value, reason)
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
        batch_id = idempotency_key or new_id()
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
    ticket_ids: list[TicketId] = Field(
        min_length=1,
        max_length=500,
        description="Tickets to claim (distinct).",
        json_schema_extra={"uniqueItems": True},  # documented, so a schema-valid batch is never refused
    )

    @field_validator("ticket_ids")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a ticket is listed twice")
        return value


class ClaimBatchAccepted(BaseModel):
    batch_id: str
    claims: list[dict[str, Any]] = Field(description="Per ticket: its status (202 or 409) and answer.")
