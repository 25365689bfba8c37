"""A vendor `Change` placed as exactly one Ladder command, through the connection's mapping.
Pure. What each change becomes:

* created -> create_ticket (external_id = the vendor's ticket id, so every later delivery
  names the same Ladder ticket);
* status_changed -> resolve_ticket (to a resolved status; the tier is the group's) or
  reopen_ticket (to an open status from a resolved one); other moves are ignored;
* group_changed -> request_escalation (to a higher tier: checklist and hypothesis from the
  named fields, so an incomplete handoff bounces as any client's would) or return_with_fix
  (to a lower tier, with the fix from its field); a move within a tier is ignored;
* public_comment -> record_response by an agent (private notes, customer replies ignored);
* satisfaction -> rate_ticket (the mapping's scale, or 1-5 as sent).

A group, status or rating the mapping does not know is `Unplaceable` (refused and
dead-lettered): the mapping must say what it means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from services.intake.core.commands import (
    CreateTicketRequest,
    RateTicketRequest,
    RecordResponseRequest,
    ReopenTicketRequest,
    Request,
    RequestEscalationRequest,
    ResolveTicketRequest,
    ReturnWithFixRequest,
)
from services.intake.core.helpdesks.mapping import HelpdeskMapping
from services.intake.core.helpdesks.vendors import Change, Ignored, Unplaceable
from shared.envelope import describe_validation_error
from shared.events import RANK, Tier

_NOT_CODE = re.compile(r"[^a-z0-9_.-]+")
UNASSIGNED = "unassigned"


@dataclass(frozen=True, slots=True)
class Placed:
    request: Request
    external_id: str  # the vendor's ticket id: the Ladder ticket is derived from it


def place(change: Change, mapping: HelpdeskMapping) -> Placed | Ignored | Unplaceable:
    try:
        return _place(change, mapping)
    except ValidationError as error:
        return Unplaceable("invalid_command", describe_validation_error(error, _COMMAND_FIELDS))
    except _Refuse as refusal:
        return refusal.unplaceable


class _Refuse(Exception):
    def __init__(self, code: str, reason: str) -> None:
        self.unplaceable = Unplaceable(code, reason)


def _place(change: Change, mapping: HelpdeskMapping) -> Placed | Ignored | Unplaceable:
    external = change.ticket[:128]
    agent = (change.agent or UNASSIGNED)[:128]
    match change.kind:
        case "created":
            if not change.requester or not change.subject:
                raise _Refuse("missing_field", "a new ticket needs its requester and subject")
            body: dict[str, Any] = {
                "customer_id": change.requester[:128],
                "channel": mapping.channels.get(change.channel or "", mapping.default_channel),
                "subject": change.subject[:300],
                "intent": _code(_field(change, mapping.intent.field)) or mapping.intent.default,
                "priority": mapping.priorities.get(change.priority or "", mapping.default_priority),
                "customer_blocked": _blocked(change, mapping),
                "external_id": external,
            }
            return Placed(CreateTicketRequest.model_validate(body), external)
        case "status_changed":
            status = change.status or ""
            if status in mapping.statuses.resolved:
                code = _code(_field(change, mapping.resolution_code.field)) or mapping.resolution_code.default
                tier = _tier(mapping, change.group, "group")
                return Placed(ResolveTicketRequest(tier=tier, agent_id=agent, resolution_code=code), external)
            if status not in mapping.statuses.open:
                raise _Refuse("unknown_status", "status: not in the mapping's statuses (open or resolved)")
            if change.previous_status in mapping.statuses.resolved:
                return Placed(ReopenTicketRequest(), external)
            return Ignored("a move between open statuses")
        case "group_changed":
            if change.previous_group is None:
                raise _Refuse("missing_field", "previous_group: a group change must say which group it leaves")
            source = _tier(mapping, change.previous_group, "previous_group")
            target = _tier(mapping, change.group, "group")
            if RANK[target] > RANK[source]:
                handoff = mapping.handoff
                checklist = {
                    "impact": _field(change, handoff.impact),
                    "steps_attempted": _items(change, handoff.steps_attempted),
                    "attachments": _items(change, handoff.attachments),
                    "problem_statement": _field(change, handoff.problem_statement),
                }
                return Placed(
                    RequestEscalationRequest.model_validate(
                        {
                            "from_tier": source,
                            "to_tier": target,
                            "agent_id": agent,
                            "checklist": {key: value for key, value in checklist.items() if value},
                            "hypothesis": _field(change, handoff.hypothesis),
                        }
                    ),
                    external,
                )
            if RANK[target] < RANK[source]:
                fix = _field(change, mapping.handoff.fix_summary)
                if not fix:
                    raise _Refuse("missing_field", "a return to a lower tier needs the fix (handoff.fix_summary)")
                return Placed(
                    ReturnWithFixRequest(from_tier=source, to_tier=target, agent_id=agent, fix_summary=fix[:500]),
                    external,
                )
            return Ignored("a move within one tier")
        case "public_comment":
            if not change.public or not change.by_agent:
                return Ignored("not a public reply by an agent")
            return Placed(RecordResponseRequest(tier=_tier(mapping, change.group, "group"), agent_id=agent), external)
        case "satisfaction":
            return Placed(RateTicketRequest(score=_score(change.rating, mapping)), external)
    raise AssertionError(change.kind)


def _tier(mapping: HelpdeskMapping, group: str | None, where: str) -> Tier:
    if group is None:
        raise _Refuse("missing_field", f"{where}: required")
    tier = mapping.groups.get(group)
    if tier is None:
        raise _Refuse("unknown_group", f"{where}: not in the mapping's groups")
    return tier


def _score(rating: str | None, mapping: HelpdeskMapping) -> int:
    if rating is not None:
        if rating in mapping.satisfaction:
            return mapping.satisfaction[rating]
        if rating.lower() in mapping.satisfaction:
            return mapping.satisfaction[rating.lower()]
        if rating.isdigit() and 1 <= int(rating) <= 5:
            return int(rating)
    raise _Refuse("unknown_rating", "rating: not in the mapping's satisfaction scale (nor 1-5)")


def _field(change: Change, name: str | None) -> str | None:
    if name is None:
        return None
    value = change.fields.get(name)
    if isinstance(value, dict):
        value = value.get("value", value.get("name"))
    if isinstance(value, list):
        value = "; ".join(str(item) for item in value if item not in (None, ""))
    text = str(value).strip() if value not in (None, False) else ""
    return text or None


def _items(change: Change, name: str | None) -> list[str]:
    value = change.fields.get(name) if name else None
    if isinstance(value, list):
        return [str(item)[:500] for item in value if str(item).strip()][:50]
    text = _field(change, name)
    return [line.strip()[:500] for line in text.splitlines() if line.strip()][:50] if text else []


def _code(text: str | None) -> str | None:
    if not text:
        return None
    return _NOT_CODE.sub("_", text.lower()).strip("_")[:64] or None


def _blocked(change: Change, mapping: HelpdeskMapping) -> bool:
    if mapping.blocked.tag and mapping.blocked.tag in change.tags:
        return True
    value = change.fields.get(mapping.blocked.field) if mapping.blocked.field else None
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "yes", "1"))


_COMMAND_FIELDS: frozenset[str] = frozenset(
    name
    for model in (CreateTicketRequest, RequestEscalationRequest, ReturnWithFixRequest, ResolveTicketRequest)
    for name in model.model_fields
) | {"checklist", "impact", "steps_attempted", "attachments", "problem_statement"}
