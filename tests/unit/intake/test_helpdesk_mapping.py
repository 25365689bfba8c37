"""Help-desk mappings: validated with path-named errors; vendor deliveries placed as exactly
one Ladder command, ignored, or refused with a reason."""

from __future__ import annotations

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
from services.intake.core.helpdesks.mapping import VENDORS, HelpdeskError, parse_mapping
from services.intake.core.helpdesks.place import place
from services.intake.core.helpdesks.vendors import Change, Ignored, Unplaceable, delivery_key, read
from simulator.helpdesks import COMPLETE_HANDOFF, MAPPINGS, Delivery, Helpdesk

SECRET = "s" * 20


def outcome(helpdesk: Helpdesk, delivery: Delivery) -> Any:
    mapping = helpdesk.mapping
    headers = {name.lower(): value for name, value in delivery.headers.items()}
    reading = read(
        helpdesk.vendor,
        orjson.loads(delivery.body),
        headers,
        group_field=mapping.group_field,
        satisfaction_field=mapping.satisfaction_field,
        events=mapping.events,
    )
    return place(reading, mapping) if isinstance(reading, Change) else reading


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_lifecycle_from_each_vendor_becomes_the_commands_a_direct_client_sends(vendor):
    desk = Helpdesk(vendor, SECRET)
    ticket, created = desk.create("4711", intent="login")
    steps = [
        created,
        desk.reply(ticket, "ana"),
        desk.reply(ticket, "ana", public=False),  # a private note: nothing Ladder tracks
        desk.move(ticket, "L2", "ana", COMPLETE_HANDOFF),
        desk.reply(ticket, "gia"),
        desk.move(ticket, "L1", "gia", {"fix_summary": "rotated the certificate"}),
        desk.resolve(ticket, "ana"),
        desk.rate(ticket, 5),
        desk.reopen(ticket),
    ]
    placed = [outcome(desk, step) for step in steps]
    assert [type(p.request) if not isinstance(p, Ignored) else Ignored for p in placed] == [
        CreateTicketRequest,
        RecordResponseRequest,
        Ignored,
        RequestEscalationRequest,
        RecordResponseRequest,
        ReturnWithFixRequest,
        ResolveTicketRequest,
        RateTicketRequest,
        ReopenTicketRequest,
    ]
    assert {p.external_id for p in placed if not isinstance(p, Ignored)} == {"4711"}
    create, escalate, back, resolve, rate = (placed[i].request for i in (0, 3, 5, 6, 7))
    assert (create.intent, create.priority.value, create.external_id) == ("login", "P3", "4711")
    assert (escalate.from_tier.value, escalate.to_tier.value) == ("L1", "L2")
    assert escalate.checklist.problem_statement == COMPLETE_HANDOFF["problem_statement"]
    assert escalate.checklist.steps_attempted == COMPLETE_HANDOFF["steps_attempted"]
    assert escalate.hypothesis == COMPLETE_HANDOFF["hypothesis"]
    assert (back.from_tier.value, back.to_tier.value, back.fix_summary) == ("L2", "L1", "rotated the certificate")
    assert (resolve.tier.value, rate.score) == ("L1", 5)


@pytest.mark.parametrize("vendor", VENDORS)
def test_an_escalation_without_the_handoff_fields_is_still_sent_so_escalation_bounces_it(vendor):
    desk = Helpdesk(vendor, SECRET)
    ticket, _ = desk.create("4712")
    escalate = outcome(desk, desk.move(ticket, "L2", "ana"))
    assert isinstance(escalate.request, RequestEscalationRequest)
    assert escalate.request.hypothesis is None and escalate.request.checklist.impact is None


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_group_the_mapping_does_not_know_is_unplaceable(vendor):
    desk = Helpdesk(vendor, SECRET)
    ticket, _ = desk.create("4713")
    desk.group_of["L2"] = "Billing Wizards"
    refused = outcome(desk, desk.move(ticket, "L2", "ana", COMPLETE_HANDOFF))
    assert refused == Unplaceable("unknown_group", "group: not in the mapping's groups")


def test_a_move_within_a_tier_and_between_open_statuses_are_ignored():
    desk = Helpdesk("zendesk", SECRET)
    ticket, _ = desk.create("4714")
    desk.group_of["L1"] = "Tier 1 Support"
    assert isinstance(outcome(desk, desk.move(ticket, "L1", "ana")), Ignored)
    desk.open = "pending"
    assert isinstance(outcome(desk, desk.reopen(ticket)), Ignored)  # new -> pending is no reopen


def test_jira_one_delivery_changing_two_tracked_things_is_refused_whole():
    desk = Helpdesk("jira", SECRET)
    ticket, _ = desk.create("4715")
    moved = orjson.loads(desk.move(ticket, "L2", "ana", COMPLETE_HANDOFF).body)
    moved["changelog"]["items"].append({"field": "status", "fromString": "Open", "toString": "Resolved"})
    reading = read("jira", moved, {}, group_field="customfield_10050")
    assert isinstance(reading, Unplaceable) and reading.code == "ambiguous"


def test_zammad_a_trigger_the_mapping_does_not_name_is_refused():
    desk = Helpdesk("zammad", SECRET)
    _, created = desk.create("4716")
    headers = {name.lower(): value for name, value in created.headers.items()} | {"x-zammad-trigger": "Other"}
    reading = read("zammad", orjson.loads(created.body), headers, events=desk.mapping.events)
    assert reading == Unplaceable("unknown_trigger", "X-Zammad-Trigger: not a trigger this mapping names in events")


def test_delivery_identity_is_the_vendors_delivery_id_else_a_hash_of_the_body():
    assert delivery_key("jira", {}, {"x-atlassian-webhook-identifier": "a-1"}, b"x") == "jira/a-1"
    assert delivery_key("zammad", {}, {"x-zammad-delivery": "d-1"}, b"x") == "zammad/d-1"
    assert delivery_key("zendesk", {"id": "ev-1"}, {"x-zendesk-webhook-id": "w"}, b"x") == "zendesk/w/ev-1"
    assert delivery_key("freshdesk", {}, {}, b"x") == delivery_key("freshdesk", {}, {}, b"x")
    assert delivery_key("freshdesk", {}, {}, b"x") != delivery_key("freshdesk", {}, {}, b"y")


@pytest.mark.parametrize("vendor", VENDORS)
def test_the_shipped_mappings_are_valid(vendor):
    assert parse_mapping((MAPPINGS / f"{vendor}.yaml").read_text()).vendor == vendor


def test_a_bad_mapping_is_refused_with_every_problem_named_by_path():
    text = """
vendor: zendesk
groups: {Tier 1: L9}
statuses: {resolved: [solved], open: [solved]}
satisfaction: {good: 7}
"""
    with pytest.raises(HelpdeskError) as refused:
        parse_mapping(text, "acme.yaml")
    assert refused.value.problems == [
        "groups.Tier 1: Input should be 'L0', 'L1', 'L2', 'L3' or 'L4'",
        "statuses: solved cannot be both open and resolved",
        "satisfaction.good: Input should be less than or equal to 5",
    ]
    with pytest.raises(HelpdeskError) as refused:
        parse_mapping("vendor: jira\ngroups: {a: L1}\nstatuses: {resolved: [x], open: [y]}\nsecret_env: S")
    assert refused.value.problems == [
        "document: group_field is required for jira (the field that holds the support group)"
    ]
    with pytest.raises(HelpdeskError) as refused:
        parse_mapping(
            "vendor: zammad\nsecret_env: S\ngroups: {a: L1}\nstatuses: {resolved: [x], open: [y]}\n"
            "events: {t: {kind: group_changed, from_group: b}}"
        )
    assert refused.value.problems == ["events.t.from_group: b is not in groups"]
