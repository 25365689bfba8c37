"""The event catalogue: what happened to a ticket, as published on `support.ticket-events`.

Every model is strict and closed (`extra="forbid"`): a producer that sends an unknown
field or a wrong type is told which field, instead of a consumer silently guessing.
The event *type* travels in the CloudEvents `ce_type` header (see `shared.envelope`);
`EVENT_TYPES` maps it to the body model.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a timezone offset")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
TicketId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="Ticket identifier; also the Kafka record key.",
    ),
]
AgentId = Annotated[str, Field(min_length=1, max_length=128, description="Agent who acted.")]
ShortText = Annotated[str, Field(min_length=1, max_length=500)]


class Tier(StrEnum):
    """Support tiers of the charter. L0 is self-service, L4 an external vendor."""

    L0 = "L0"
    L1 = "L1"
    L2 = "L2"
    L3 = "L3"
    L4 = "L4"


# The one tier order (L0 lowest): escalations go up it, bounces and returns down.
RANK: dict[Tier, int] = {tier: rank for rank, tier in enumerate(Tier)}


class Priority(StrEnum):
    P1 = "P1"  # urgent: production down
    P2 = "P2"  # high
    P3 = "P3"  # normal
    P4 = "P4"  # low


class Channel(StrEnum):
    EMAIL = "email"
    CHAT = "chat"
    PHONE = "phone"
    WEB = "web"
    API = "api"


class RoutingReason(StrEnum):
    RULE = "rule"  # the charter's intent rules placed it
    JUMP = "jump"  # blocked customer, slow diagnostics: straight to L3
    ESCALATION = "escalation"
    BOUNCE = "bounce"
    REOPEN = "reopen"  # the customer came back: to the tier the charter names (by default the resolver)
    ASSIGNMENT = "assignment"  # same tier, an agent now has it (it waited for capacity, or was reassigned)
    CLAIM = "claim"  # same tier, out of its shadow queue: an agent of the tier claimed it in a batch


class EscalationReason(StrEnum):
    HANDOFF = "handoff"
    SLA_BREACH = "sla_breach"
    JUMP = "jump"


class BounceReason(StrEnum):
    HANDOFF_INCOMPLETE = "handoff_incomplete"
    RETURNED_WITH_FIX = "returned_with_fix"


class SlaKind(StrEnum):
    FIRST_RESPONSE = "first_response"
    TIME_IN_TIER = "time_in_tier"


class Event(BaseModel):
    """Base of every event body. `ticket_id` is repeated in the body so it is self-contained."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    TYPE: ClassVar[str]

    ticket_id: TicketId


class HandoffChecklist(BaseModel):
    """L1's definition of done before a handoff. Fields may be missing here: judging
    completeness is the escalation service's job (it bounces incomplete handoffs)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    impact: str | None = Field(None, max_length=2000, description="Who and what is affected.")
    steps_attempted: list[Annotated[str, Field(max_length=500)]] = Field(
        default_factory=list, max_length=50, description="What was tried already."
    )
    attachments: list[Annotated[str, Field(max_length=500)]] = Field(
        default_factory=list, max_length=50, description="Screenshot links or log/request/customer IDs."
    )
    problem_statement: str | None = Field(None, max_length=300, description="One-line problem statement.")


class TicketCreated(Event):
    TYPE: ClassVar[str] = "ticket.created"

    customer_id: Annotated[str, Field(min_length=1, max_length=128, description="Customer account id.")]
    channel: Channel = Field(description="Where the ticket came in.")
    subject: Annotated[str, Field(min_length=1, max_length=300, description="Ticket subject (customer text).")]
    intent: Annotated[
        str,
        Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_.-]+$", description="Intent tag used by routing rules."),
    ]
    priority: Priority = Field(description="Business priority.")
    customer_blocked: bool = Field(description="The customer cannot work until this is solved.")
    created_at: AwareDatetime = Field(description="When the customer raised it (upstream clock).")
    external_id: str | None = Field(None, max_length=128, description="Upstream system's id, if any.")


class TicketRouted(Event):
    TYPE: ClassVar[str] = "ticket.routed"

    tier: Tier
    queue: Annotated[str, Field(min_length=1, max_length=64)]
    assignee: str | None = Field(None, max_length=128)
    reason: RoutingReason
    communication_owner: Tier | None = Field(
        None, description="Tier that keeps talking to the customer, when not the owning tier (jump)."
    )


class TicketResponded(Event):
    TYPE: ClassVar[str] = "ticket.responded"

    tier: Tier = Field(description="Tier of the agent who replied.")
    agent_id: AgentId


class TicketEscalationRequested(Event):
    TYPE: ClassVar[str] = "ticket.escalation_requested"

    from_tier: Tier
    to_tier: Tier
    agent_id: AgentId
    checklist: HandoffChecklist
    hypothesis: str | None = Field(None, max_length=1000, description="Suspected cause or next test.")


class TicketEscalated(Event):
    TYPE: ClassVar[str] = "ticket.escalated"

    from_tier: Tier
    to_tier: Tier
    reason: EscalationReason


class TicketReturnRequested(Event):
    """L2/L3 found a quick fix and hands the ticket back so L1 closes the loop.

    Not in the original catalogue: the design has intake accept `returns` but only
    escalation may emit `ticket.bounced`, so intake records the request and escalation
    turns it into `ticket.bounced(returned_with_fix)`, as with escalation requests."""

    TYPE: ClassVar[str] = "ticket.return_requested"

    from_tier: Tier
    to_tier: Tier
    agent_id: AgentId
    fix_summary: ShortText


class TicketBounced(Event):
    TYPE: ClassVar[str] = "ticket.bounced"

    from_tier: Tier = Field(description="Tier that sent it back down.")
    to_tier: Tier
    reason: BounceReason
    missing: list[Annotated[str, Field(max_length=200)]] = Field(
        default_factory=list, max_length=20, description="What the handoff lacked (handoff_incomplete)."
    )
    fix_summary: str | None = Field(
        None, max_length=500, description="The fix L1 closes the loop with (returned_with_fix)."
    )


class TicketClaimRequested(Event):
    """An agent takes the ticket out of a shadow queue, as one of a batch (`batch_id`).

    Intake records the request; router moves the ticket out of the shadow queue once
    (`ticket.routed` reason `claim`) and ignores the request when it is no longer there."""

    TYPE: ClassVar[str] = "ticket.claim_requested"

    tier: Tier = Field(description="Tier of the claiming agent.")
    agent_id: AgentId
    batch_id: Annotated[str, Field(min_length=1, max_length=128, description="The batch the claim belongs to.")]


class TicketSlaBreached(Event):
    TYPE: ClassVar[str] = "ticket.sla_breached"

    tier: Tier = Field(description="Tier whose target was missed.")
    kind: SlaKind
    deadline: AwareDatetime = Field(description="When the target expired (working hours counted).")


class TicketResolved(Event):
    TYPE: ClassVar[str] = "ticket.resolved"

    tier: Tier = Field(description="Resolving tier.")
    agent_id: AgentId
    resolution_code: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_.-]+$")]


class TicketReopened(Event):
    TYPE: ClassVar[str] = "ticket.reopened"


class TicketRated(Event):
    TYPE: ClassVar[str] = "ticket.rated"

    score: Annotated[int, Field(ge=1, le=5, description="Customer satisfaction, 1-5.")]


EVENT_TYPES: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (
        TicketCreated,
        TicketRouted,
        TicketResponded,
        TicketEscalationRequested,
        TicketEscalated,
        TicketReturnRequested,
        TicketBounced,
        TicketClaimRequested,
        TicketSlaBreached,
        TicketResolved,
        TicketReopened,
        TicketRated,
    )
}
