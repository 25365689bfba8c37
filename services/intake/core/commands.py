"""What upstream systems may ask of intake: one model per command.

The HTTP API takes the `*Request` body models (the ticket id is in the path); the
`support.ticket-commands` topic takes the same fields plus `type` and `ticket_id`
(`KafkaCommand`). Validation here is about shape only; whether a command fits the
ticket's current state is decided in `core.tickets`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, TypeAdapter, model_validator

from shared.envelope import field_names
from shared.events import RANK, AgentId, AwareDatetime, Channel, HandoffChecklist, Priority, TicketId, Tier


def _whole_number(value: object) -> object:
    """JSON has one number type: 5.0 is the integer 5 (as JSON Schema says); 5.5, "5" and
    true are not integers and stay refused."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _tier_pairs(upward: bool, default: Tier | None = None) -> dict[str, Any]:
    """The allowed (from_tier, to_tier) pairs as JSON Schema, so the document says what the
    validator enforces: per from_tier, the to_tier values above (or below) it (and to_tier is
    required where its default would not be allowed)."""
    rules: list[Any] = []
    for tier in Tier:
        allowed = [t.value for t in Tier if t is not tier and (RANK[t] > RANK[tier]) == upward]
        then: dict[str, Any] | bool = False
        if allowed:
            then = {"properties": {"to_tier": {"enum": allowed}}}
            if default is None or default.value not in allowed:
                then["required"] = ["to_tier"]
        rules.append(
            {"if": {"properties": {"from_tier": {"const": tier.value}}, "required": ["from_tier"]}, "then": then}
        )
    return {"allOf": rules}


Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_.-]+$")]
ExternalRef = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]


class Action(StrEnum):
    """What an API key may be allowed to do."""

    CREATE = "create"
    RESPOND = "respond"
    ESCALATE = "escalate"
    RETURN = "return"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    RATE = "rate"
    CLAIM = "claim"
    READ = "read"  # the read API and the ladder page's ticket views (services/metrics)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    ACTION: ClassVar[Action]


class CreateTicketRequest(_Body):
    ACTION: ClassVar[Action] = Action.CREATE

    customer_id: Annotated[str, Field(min_length=1, max_length=128, examples=["cust-42"])]
    channel: Channel
    subject: Annotated[str, Field(min_length=1, max_length=300, examples=["Cannot log in with SSO"])]
    intent: Code = Field(examples=["login"])
    priority: Priority = Priority.P3
    customer_blocked: StrictBool = Field(False, description="A JSON boolean (0/1 are refused).")
    created_at: AwareDatetime | None = Field(None, description="When the customer raised it; defaults to now.")
    external_id: ExternalRef | None = Field(
        None,
        description="The upstream system's id; a second create with the same id from the same "
        "client is treated as a retry, like a repeated Idempotency-Key.",
    )


class RecordResponseRequest(_Body):
    ACTION: ClassVar[Action] = Action.RESPOND

    tier: Tier
    agent_id: AgentId


class RequestEscalationRequest(_Body):
    model_config = ConfigDict(json_schema_extra=_tier_pairs(upward=True))
    ACTION: ClassVar[Action] = Action.ESCALATE

    from_tier: Tier
    to_tier: Tier
    agent_id: AgentId
    checklist: HandoffChecklist
    hypothesis: str | None = Field(None, max_length=1000, description="Suspected cause or next test.")

    @model_validator(mode="after")
    def _goes_up(self) -> RequestEscalationRequest:
        if RANK[self.to_tier] <= RANK[self.from_tier]:
            raise ValueError("to_tier must be above from_tier")
        return self


class ReturnWithFixRequest(_Body):
    model_config = ConfigDict(json_schema_extra=_tier_pairs(upward=False, default=Tier.L1))
    ACTION: ClassVar[Action] = Action.RETURN

    from_tier: Tier
    to_tier: Tier = Tier.L1
    agent_id: AgentId
    fix_summary: Annotated[str, Field(min_length=1, max_length=500)]

    @model_validator(mode="after")
    def _goes_down(self) -> ReturnWithFixRequest:
        if RANK[self.to_tier] >= RANK[self.from_tier]:
            raise ValueError("to_tier must be below from_tier")
        return self


class ResolveTicketRequest(_Body):
    ACTION: ClassVar[Action] = Action.RESOLVE

    tier: Tier
    agent_id: AgentId
    resolution_code: Code


class ReopenTicketRequest(_Body):
    ACTION: ClassVar[Action] = Action.REOPEN


class RateTicketRequest(_Body):
    ACTION: ClassVar[Action] = Action.RATE

    score: Annotated[int, Field(strict=True, ge=1, le=5), BeforeValidator(_whole_number)]


class ClaimTicketRequest(_Body):
    ACTION: ClassVar[Action] = Action.CLAIM

    tier: Tier = Field(description="Tier of the claiming agent.")
    agent_id: AgentId
    batch_id: ExternalRef = Field(description="Names the batch; the claims of one batch share it.")


Request = (
    CreateTicketRequest
    | RecordResponseRequest
    | RequestEscalationRequest
    | ReturnWithFixRequest
    | ResolveTicketRequest
    | ReopenTicketRequest
    | RateTicketRequest
    | ClaimTicketRequest
)


# --- the same commands on the `support.ticket-commands` topic -------------------------------


class _OnTopic(BaseModel):
    command_id: ExternalRef | None = Field(
        None,
        description="Sender's unique id for this command; a repeat is ignored. "
        "Defaults to the record's topic position.",
    )


class _ForTicket(_OnTopic):
    ticket_id: TicketId


class CreateTicketCommand(CreateTicketRequest, _OnTopic):
    type: Literal["create_ticket"]


class RecordResponseCommand(RecordResponseRequest, _ForTicket):
    type: Literal["record_response"]


class RequestEscalationCommand(RequestEscalationRequest, _ForTicket):
    type: Literal["request_escalation"]


class ReturnWithFixCommand(ReturnWithFixRequest, _ForTicket):
    type: Literal["return_with_fix"]


class ResolveTicketCommand(ResolveTicketRequest, _ForTicket):
    type: Literal["resolve_ticket"]


class ReopenTicketCommand(ReopenTicketRequest, _ForTicket):
    type: Literal["reopen_ticket"]


class RateTicketCommand(RateTicketRequest, _ForTicket):
    type: Literal["rate_ticket"]


class ClaimTicketCommand(ClaimTicketRequest, _ForTicket):
    type: Literal["claim_ticket"]


_ON_TOPIC = (
    CreateTicketCommand,
    RecordResponseCommand,
    RequestEscalationCommand,
    ReturnWithFixCommand,
    ResolveTicketCommand,
    ReopenTicketCommand,
    RateTicketCommand,
    ClaimTicketCommand,
)
KafkaCommand = Annotated[
    CreateTicketCommand
    | RecordResponseCommand
    | RequestEscalationCommand
    | ReturnWithFixCommand
    | ResolveTicketCommand
    | ReopenTicketCommand
    | RateTicketCommand
    | ClaimTicketCommand,
    Field(discriminator="type"),
]
KAFKA_COMMAND = TypeAdapter(KafkaCommand)
KAFKA_COMMAND_TYPES: tuple[str, ...] = tuple(get_args(model.model_fields["type"].annotation)[0] for model in _ON_TOPIC)
COMMAND_FIELDS = field_names(*_ON_TOPIC) | set(KAFKA_COMMAND_TYPES)  # what a validation error may quote
