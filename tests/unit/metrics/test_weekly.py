"""The weekly report's core (services/metrics/core/weekly.py) and the read scope
(services/metrics/core/read_model.visible): ISO weeks in UTC, the example rule, who sees what."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.metrics.core.read_model import TicketNow, visible
from services.metrics.core.weekly import example_handoffs, week_bounds, week_of, weeks_before

MONDAY = datetime(2026, 11, 30, tzinfo=UTC)  # 2026-W49
FULL = {
    "impact": "all EU users",
    "steps_attempted": ["cleared cache"],
    "attachments": ["req-1"],
    "problem_statement": "p",
}


def test_a_week_is_its_iso_week_in_utc():
    assert week_bounds("2026-W49") == (MONDAY, MONDAY + timedelta(days=7))
    assert week_bounds("2027-W01") == (datetime(2027, 1, 4, tzinfo=UTC), datetime(2027, 1, 11, tzinfo=UTC))
    assert week_of(MONDAY) == "2026-W49" and week_of(MONDAY - timedelta(microseconds=1)) == "2026-W48"
    assert weeks_before("2026-W01", 2) == ["2025-W51", "2025-W52"]
    with pytest.raises(ValueError, match="ISO week"):
        week_bounds("2026-49")


def timeline(hours_to_resolution: float, checklist=FULL, hypothesis="cache key collides", *between: str, after=()):
    at = MONDAY + timedelta(days=1)
    events = [
        {"type": "ticket.created", "at": at, "body": {}},
        {
            "type": "ticket.escalation_requested",
            "at": at,
            "body": {
                "from_tier": "L1",
                "to_tier": "L2",
                "agent_id": "ann",
                "checklist": checklist,
                "hypothesis": hypothesis,
            },
        },
        {"type": "ticket.escalated", "at": at, "body": {}},
        *({"type": kind, "at": at, "body": {}} for kind in between),
        {"type": "ticket.resolved", "at": at + timedelta(hours=hours_to_resolution), "body": {"tier": "L2"}},
    ]
    if "reopened" in after:
        events.append({"type": "ticket.reopened", "at": at + timedelta(hours=hours_to_resolution + 1), "body": {}})
    return events


def chosen(timelines) -> list[str]:
    since, until = week_bounds("2026-W49")
    return [e.ticket_id for e in example_handoffs(timelines, since, until, ["it's broken", "n/a"])]


def test_the_fastest_three_complete_handoffs_with_a_real_hypothesis_are_the_examples():
    timelines = {
        "slow": timeline(30),
        "fast": timeline(1),
        "b-tie": timeline(2),
        "a-tie": timeline(2),
        "blank-item": timeline(0.1, {**FULL, "attachments": [" "]}),
        "placeholder": timeline(0.1, FULL, "It's broken!!"),
        "bounced": timeline(0.1, FULL, "h", "ticket.bounced"),
        "another-request": timeline(0.1, FULL, "h", "ticket.escalation_requested"),
        "reopened": timeline(0.1, after=("reopened",)),
        "after-the-week": timeline(24 * 7),
    }
    assert chosen(timelines) == ["fast", "a-tie", "b-tie"]
    assert chosen({"slow": timeline(30)}) == ["slow"]
    assert chosen({"quick": timeline(0.1)}) == ["quick"]  # the cases above fail only by their flaw


def test_a_request_outside_the_week_or_never_escalated_is_no_example():
    early = timeline(1)
    early[1] = {**early[1], "at": MONDAY - timedelta(seconds=1)}
    never = [e for e in timeline(1) if e["type"] != "ticket.escalated"]
    assert chosen({"early": early, "never": never}) == []


def ticket(client: str | None) -> TicketNow:
    return TicketNow("t", "P3", "x", False, "open", None, None, None, None, None, None, MONDAY, client)


def test_a_read_key_sees_its_clients_tickets_unless_granted_all():
    assert visible("helpdesk", False, ticket("helpdesk"))
    assert not visible("chatbot", False, ticket("helpdesk"))
    assert not visible("helpdesk", False, ticket(None))
    assert visible("lead", True, ticket("helpdesk")) and visible("lead", True, ticket(None))
