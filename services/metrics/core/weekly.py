"""The weekly report's pure parts: ISO weeks as windows, and the example handoffs.

Invariants (tests: tests/unit/metrics/test_weekly.py, tests/integration/metrics/test_weekly_report.py):
1. A week is an ISO week in UTC: [Monday 00:00 UTC, next Monday 00:00 UTC). Its KPIs are the
   rolling windows' exact definitions with these bounds (a sample counts in the week its
   completing event happened).
2. The example handoffs follow EXAMPLE_RULE, nothing else: escalation requests made in the
   week, every checklist item filled, a hypothesis that is not one of the charter's
   placeholders, escalated and then resolved before the week ended with no bounce or further
   request in between, and not reopened within the week; the fastest from request to resolution first (ties: ticket
   id), one per ticket, at most three.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.escalation.core.handoffs import is_hypothesis
from shared.events import HandoffChecklist

WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
EXAMPLES = 3
CHECKLIST = tuple(HandoffChecklist.model_fields)
EXAMPLE_RULE = (
    "Escalation requests made this week whose checklist has every item filled "
    f"({', '.join(CHECKLIST)}), whose hypothesis is not one of the charter's placeholders, "
    "that were escalated and then resolved before the week ended with no bounce or further "
    "request in between, and not reopened within the week; fastest from request to "
    "resolution first, one per ticket, "
    f"at most {EXAMPLES}."
)


def week_bounds(week: str) -> tuple[datetime, datetime]:
    """`2026-W49` -> [its Monday 00:00 UTC, the next Monday 00:00 UTC)."""
    match = WEEK.match(week)
    if match is None:
        raise ValueError(f"not an ISO week like 2026-W49: {week!r}")
    start = datetime.fromisocalendar(int(match[1]), int(match[2]), 1).replace(tzinfo=UTC)
    return start, start + timedelta(days=7)


def week_of(at: datetime) -> str:
    year, week, _ = at.astimezone(UTC).isocalendar()
    return f"{year}-W{week:02d}"


def weeks_before(week: str, count: int) -> list[str]:
    """The `count` weeks before `week`, oldest first."""
    start, _ = week_bounds(week)
    return [week_of(start - timedelta(days=7 * n)) for n in range(count, 0, -1)]


@dataclass(frozen=True, slots=True)
class Example:
    ticket_id: str
    from_tier: str
    to_tier: str
    agent_id: str
    requested_at: datetime
    resolved_at: datetime
    resolved_by: str
    checklist: dict[str, Any]
    hypothesis: str

    @property
    def seconds(self) -> float:
        return (self.resolved_at - self.requested_at).total_seconds()


def _filled(value: object) -> bool:
    if isinstance(value, list):
        return any(isinstance(item, str) and item.strip() for item in value)
    return isinstance(value, str) and bool(value.strip())


def example_handoffs(
    timelines: Mapping[str, Sequence[Mapping[str, Any]]],
    since: datetime,
    until: datetime,
    placeholders: list[str],
) -> list[Example]:
    """EXAMPLE_RULE over tickets' timelines (`type`, `at`, `body`, in stream order)."""
    best: dict[str, Example] = {}
    for ticket_id, events in timelines.items():
        for i, request in enumerate(events):
            if request["type"] != "ticket.escalation_requested" or not since <= request["at"] < until:
                continue
            body = request["body"]
            checklist = body.get("checklist") or {}
            if not all(_filled(checklist.get(item)) for item in CHECKLIST):
                continue
            if not is_hypothesis(body.get("hypothesis"), placeholders):
                continue
            found = _resolved_after(events[i + 1 :], until)
            if found is None or any(
                e["type"] == "ticket.reopened" and found["at"] <= e["at"] < until for e in events[i + 1 :]
            ):
                continue
            example = Example(
                ticket_id, body["from_tier"], body["to_tier"], body["agent_id"], request["at"],
                found["at"], found["body"]["tier"], dict(checklist), body["hypothesis"],
            )  # fmt: skip
            if ticket_id not in best or example.seconds < best[ticket_id].seconds:
                best[ticket_id] = example
    return sorted(best.values(), key=lambda e: (e.seconds, e.ticket_id))[:EXAMPLES]


def _resolved_after(events: Iterable[Mapping[str, Any]], until: datetime) -> Mapping[str, Any] | None:
    """The resolution that followed an escalation with no bounce or new request on the way."""
    escalated = False
    for event in events:
        match event["type"]:
            case "ticket.escalated":
                escalated = True
            case "ticket.bounced" | "ticket.escalation_requested":
                return None
            case "ticket.resolved":
                return event if escalated and event["at"] < until else None
    return None
