"""`ladder simulate --via`: what the simulated agents decide, done in a help desk, is the
delivery that intake places as exactly the command a direct client sends (pure: the
simulator's deliveries read and placed by intake's own core)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest

from services.intake.core.commands import (
    CreateTicketRequest,
    RateTicketRequest,
    RecordResponseRequest,
    ReopenTicketRequest,
    RequestEscalationRequest,
    ResolveTicketRequest,
    ReturnWithFixRequest,
)
from services.intake.core.helpdesks.mapping import VENDORS
from services.intake.core.helpdesks.place import Placed, place
from services.intake.core.helpdesks.vendors import Change, read
from simulator.agents import Action, escalate, resolve, respond
from simulator.helpdesks import Delivery, Helpdesk, HelpdeskAgents
from simulator.plans import TicketPlan

SECRET = "s" * 20
PLAN = TicketPlan(
    index=3,
    persona="jump",
    intent="data_loss",
    priority="P2",
    blocked=True,
    channel="email",
    transport="http",
    return_fix=True,
    rating=4,
    reopen=True,
)
DIRECT = {  # what the direct client posts under /v1/tickets/{id}/<path>
    "responses": RecordResponseRequest,
    "escalations": RequestEscalationRequest,
    "returns": ReturnWithFixRequest,
    "resolution": ResolveTicketRequest,
    "reopen": ReopenTicketRequest,
    "rating": RateTicketRequest,
}


def placed(agents: HelpdeskAgents, delivery: Delivery) -> Placed:
    mapping = agents.desk.mapping
    reading = read(
        mapping.vendor,
        orjson.loads(delivery.body),
        {name.lower(): value for name, value in delivery.headers.items()},
        group_field=mapping.group_field,
        satisfaction_field=mapping.satisfaction_field,
        events=mapping.events,
    )
    assert isinstance(reading, Change), reading
    outcome = place(reading, mapping)
    assert isinstance(outcome, Placed), outcome
    return outcome


def steps() -> list[tuple[str, Action]]:
    """Every command the agents send, with the tier the ticket is at when they send it."""
    return [
        ("L1", respond("L1")),
        ("L2", respond("L2")),
        ("L1", escalate("L1", "L2", complete=True)),
        ("L1", escalate("L1", "L2", complete=False)),  # sloppy: sent as is, escalation bounces it
        ("L2", escalate("L2", "L3", complete=True)),
        ("L2", Action("returns", {"from_tier": "L2", "agent_id": "sim-l2", "fix_summary": "cleared the cache"})),
        ("L3", Action("returns", {"from_tier": "L3", "agent_id": "sim-l3", "fix_summary": "patched"})),
        ("L1", resolve("L1")),
        ("L3", resolve("L3")),
        *((f"L{n % 3 + 1}", Action("rating", {"score": n})) for n in range(1, 6)),
    ]


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize(("tier", "action"), steps(), ids=lambda s: s.path if isinstance(s, Action) else s)
def test_each_agent_command_done_in_the_help_desk_is_placed_as_the_direct_clients_command(vendor, tier, action):
    agents = HelpdeskAgents(Helpdesk(vendor, SECRET))
    ticket, _ = agents.create(PLAN, "4711")
    agents.follow(ticket, "ticket.routed", {"tier": tier, "reason": "route"})  # Ladder has it at `tier`
    result = placed(agents, agents.act(ticket, action))
    assert result.external_id == "4711"
    assert result.request == DIRECT[action.path].model_validate(action.body)


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_reopen_after_a_resolution_is_placed_as_the_direct_clients(vendor):
    agents = HelpdeskAgents(Helpdesk(vendor, SECRET))
    ticket, _ = agents.create(PLAN, "4711")
    placed(agents, agents.act(ticket, resolve("L1")))
    assert placed(agents, agents.act(ticket, Action("reopen", {}))).request == ReopenTicketRequest()


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_ticket_created_in_the_help_desk_carries_the_plans_intent_blocked_priority_and_channel(vendor):
    agents = HelpdeskAgents(Helpdesk(vendor, SECRET))
    mapping = agents.desk.mapping
    for plan in (PLAN, replace(PLAN, blocked=False, priority="P4", channel="chat", intent="question")):
        _, delivery = agents.create(plan, "4711")
        create = placed(agents, delivery).request
        assert isinstance(create, CreateTicketRequest)
        assert (create.intent, create.customer_blocked, create.external_id) == (plan.intent, plan.blocked, "4711")
        # what the vendor has a value for arrives as planned; what it has none for, as the default
        want_priority = plan.priority if plan.priority in {p.value for p in mapping.priorities.values()} else "P3"
        assert create.priority.value == want_priority
        if vendor != "jira":  # Jira's issue payload has no channel: always web (docs/helpdesks/jira.md)
            assert create.channel.value == plan.channel


@pytest.mark.parametrize("vendor", VENDORS)
def test_the_help_desk_group_follows_where_ladder_moved_the_ticket(vendor):
    """A jump to L3, a bounce back: the next delivery names the group Ladder has it in."""
    agents = HelpdeskAgents(Helpdesk(vendor, SECRET))
    ticket, _ = agents.create(PLAN, "4711")
    agents.follow(ticket, "ticket.routed", {"tier": "L3", "reason": "jump", "communication_owner": "L1"})
    assert placed(agents, agents.act(ticket, respond("L3"))).request == RecordResponseRequest(
        tier="L3", agent_id="sim-l3"
    )
    # the communication owner's reply counts for the ticket's group: a help desk cannot say more
    assert placed(agents, agents.act(ticket, respond("L1"))).request.tier.value == "L3"

    agents.follow(ticket, "ticket.routed", {"tier": "L1", "reason": "route"})
    sloppy: Any = placed(agents, agents.act(ticket, escalate("L1", "L2", complete=False))).request
    assert (sloppy.from_tier.value, sloppy.to_tier.value) == ("L1", "L2")
    agents.follow(ticket, "ticket.bounced", {"from_tier": "L2", "to_tier": "L1", "reason": "handoff_incomplete"})
    again: Any = placed(agents, agents.act(ticket, escalate("L1", "L2", complete=True))).request
    assert (again.from_tier.value, again.to_tier.value, again.hypothesis) == (
        "L1",
        "L2",
        "The last deploy broke token refresh",
    )
