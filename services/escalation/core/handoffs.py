"""Handoff rules: when a tier may hand a ticket up, and exactly what is missing when not.

"Definition of done at L1" and "escalate with a hypothesis, never 'it's broken'": the
charter lists each tier's checklist and what counts as no hypothesis.

Invariants (tests: tests/unit/escalation/test_handoffs.py):
1. A request is complete exactly when nothing is missing. `missing` lists, in this order:
   the requesting tier's checklist items that are absent or blank (an empty string, only
   spaces, or a list without a non-blank entry), in charter order; "hypothesis" when one
   is required and it is empty or a placeholder (compared case-, space- and
   punctuation-blind: "It's broken!!" is "it's broken"); "owner" when the requesting tier
   does not own the ticket now; "skip_level" when the target is not the next tier up and
   the jump rule does not allow it.
2. Complete: `Escalate(from, to)`, reason `jump` when a level was skipped, else `handoff`.
   Incomplete: `Bounce` from the target back to the requesting tier, with the missing items.
3. A level may be skipped only when `handoffs.skip_levels` is `jump_only`, the customer
   is blocked, the ticket's intent is a jump intent and the target is the jump's tier.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from shared.charter import Charter, Handoff
from shared.events import EscalationReason, TicketEscalationRequested, Tier

if TYPE_CHECKING:
    from services.escalation.core.tickets import Ticket

HYPOTHESIS, OWNER, SKIP_LEVEL = "hypothesis", "owner", "skip_level"


@dataclass(frozen=True, slots=True)
class Escalate:
    from_tier: Tier
    to_tier: Tier
    reason: EscalationReason


@dataclass(frozen=True, slots=True)
class Bounce:
    from_tier: Tier  # the tier that refuses the handoff (the requested target)
    to_tier: Tier  # back to the requesting tier
    missing: tuple[str, ...]


def judge_handoff(charter: Charter, ticket: Ticket, request: TicketEscalationRequested) -> Escalate | Bounce:
    source, target = request.from_tier, request.to_tier
    spec = charter.tiers.get(source)
    rule = spec.handoff if spec is not None and spec.handoff is not None else Handoff()
    missing: list[str] = [item for item in rule.checklist if not _filled(getattr(request.checklist, item))]
    if rule.hypothesis_required and not is_hypothesis(request.hypothesis, charter.handoffs.hypothesis_placeholders):
        missing.append(HYPOTHESIS)
    if ticket.owner is not source:
        missing.append(OWNER)
    jump = target != charter.above(source)
    if jump and not _may_jump(charter, ticket, target):
        missing.append(SKIP_LEVEL)
    if missing:
        return Bounce(from_tier=target, to_tier=source, missing=tuple(missing))
    return Escalate(source, target, EscalationReason.JUMP if jump else EscalationReason.HANDOFF)


def is_hypothesis(text: str | None, placeholders: list[str]) -> bool:
    """A suspected cause or next test: something, and not one of the charter's stand-ins."""
    plain = _plain(text or "")
    return bool(plain) and plain not in _placeholders(tuple(placeholders))


def _may_jump(charter: Charter, ticket: Ticket, target: Tier) -> bool:
    jump = charter.routing.jump
    return (
        charter.handoffs.skip_levels == "jump_only"
        and jump is not None
        and target is jump.to
        and ticket.customer_blocked
        and ticket.intent in jump.intents
    )


def _filled(value: str | list[str] | None) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    return any(item.strip() for item in value)


def _plain(text: str) -> str:
    return "".join(char for char in text.casefold() if char.isalnum())


@cache
def _placeholders(placeholders: tuple[str, ...]) -> frozenset[str]:
    return frozenset(_plain(text) for text in placeholders)
