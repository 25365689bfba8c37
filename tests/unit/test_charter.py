"""The tier charter: the shipped default is valid and follows the seeds; anything invalid
is refused with the path of the offending entry."""

import copy

import pytest
import yaml

from shared.charter import DEFAULT_PATH, CharterError, load_charter, parse_charter
from shared.events import Priority, Tier

DEFAULT = yaml.safe_load(DEFAULT_PATH.read_text())


def refused(data) -> list[str]:
    with pytest.raises(CharterError) as caught:
        parse_charter(yaml.safe_dump(data, sort_keys=False))
    return caught.value.problems


def leaves(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*path, str(key)))
    elif isinstance(node, list) and node and not isinstance(node[0], (dict, list)):
        yield path  # a list of scalars is one entry
    else:
        yield path


def replaced(path, value):
    data = copy.deepcopy(DEFAULT)
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return data


def test_the_default_charter_follows_the_seeds():
    charter = load_charter()
    assert charter.ladder == [Tier.L1, Tier.L2, Tier.L3]
    assert len(charter.routing.l1_owns) == 10 and len(charter.routing.straight_to_l2) == 5
    assert charter.routing.jump.to is Tier.L3 and charter.routing.jump.communication_owner is Tier.L1
    assert charter.routing.parallel_own.owner is Tier.L2
    assert charter.routing.fallback.tier is Tier.L1 and charter.handoffs.return_to is Tier.L1
    assert charter.tiers[Tier.L1].handoff.checklist == ["impact", "steps_attempted", "attachments", "problem_statement"]
    assert "it's broken" in charter.handoffs.hypothesis_placeholders
    assert charter.tiers[Tier.L2].roster.rotation.on_duty >= 1
    assert charter.tiers[Tier.L3].office_hours and charter.tiers[Tier.L3].shadow_queue
    assert all(set(spec.sla) == set(Priority) for spec in charter.tiers.values())


@pytest.mark.parametrize("path", sorted(set(leaves(DEFAULT)) - {("version",)}), ids=".".join)
def test_garbage_in_any_entry_is_refused_naming_that_entry(path):
    problems = refused(replaced(path, {"not": ["what", "was", "expected"]}))
    assert any(line.startswith(".".join(path)) for line in problems), problems
    assert all("\n" not in line for line in problems)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            ("tiers", "L2", "sla", "P1", "first_response"),
            "soon",
            "tiers.L2.sla.P1.first_response: expected a duration like 90s, 15m, 4h, 1d or 1h30m",
        ),
        (
            ("tiers", "L2", "sla", "P1", "first_response"),
            "0m",
            "tiers.L2.sla.P1.first_response: a duration must be positive",
        ),
        (("tiers", "L1", "working_hours"), "weekends", "tiers.L1.working_hours: no calendar named 'weekends'"),
        (("calendars", "business", "timezone"), "Mars/Olympus", "calendars.business.timezone: unknown IANA time zone"),
        (("calendars", "business", "start"), "25:00", "calendars.business.start: expected HH:MM"),
        (
            ("routing", "straight_to_l2"),
            ["login"],
            "routing.straight_to_l2.0: intent 'login' is already in routing.l1_owns",
        ),
        (("routing", "fallback", "tier"), "L4", "routing.fallback.tier: L4 is not in use"),
        (("routing", "jump", "communication_owner"), "L3", "routing.jump.communication_owner: must be below"),
        (("tiers", "L2", "roster", "rotation", "on_duty"), 9, "tiers.L2.roster.rotation.on_duty: more agents on duty"),
        (
            ("tiers", "L2", "sla"),
            {"P1": {"first_response": "1h", "time_in_tier": "2h"}},
            "tiers.L2.sla: Value error, a target for every priority is required (missing P2, P3, P4)",
        ),
        (("tiers", "L1", "handoff", "checklist"), ["impact", "vibes"], "tiers.L1.handoff.checklist.1"),
        (("handoffs", "return_to"), "L4", "handoffs.return_to: L4 is not in use"),
    ],
)
def test_problems_are_named_precisely(path, value, expected):
    problems = refused(replaced(path, value))
    assert any(line.startswith(expected.replace("Value error, ", "")) or expected in line for line in problems), (
        problems
    )


def test_structural_problems():
    no_handoff = replaced(("tiers", "L1", "handoff"), None)
    assert "tiers.L1.handoff: required (the checklist before L1 hands a ticket up)" in refused(no_handoff)
    unordered = copy.deepcopy(DEFAULT)
    unordered["tiers"] = dict(reversed(list(unordered["tiers"].items())))
    assert parse_charter(yaml.safe_dump(unordered, sort_keys=False)).ladder == [Tier.L1, Tier.L2, Tier.L3]
    assert refused("just a string") == ["document: expected a mapping (version, calendars, tiers, routing, handoffs)"]
    with pytest.raises(CharterError, match="line 1: not valid YAML"):
        parse_charter("tiers: [unclosed")
    with pytest.raises(CharterError, match="cannot read"):
        load_charter("/nonexistent/charter.yaml")


def test_working_hours():
    from datetime import UTC, datetime

    business = load_charter().calendars["business"]
    assert business.is_open(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))  # Tuesday 10:00 in Berlin
    assert not business.is_open(datetime(2026, 11, 24, 17, 0, tzinfo=UTC))  # 18:00 in Berlin: closed
    assert not business.is_open(datetime(2026, 11, 28, 10, 0, tzinfo=UTC))  # Saturday
    assert not business.is_open(datetime(2026, 12, 25, 10, 0, tzinfo=UTC))  # a holiday
    assert load_charter().calendars["always"].is_open(datetime(2026, 11, 28, 23, 59, 59, tzinfo=UTC))
