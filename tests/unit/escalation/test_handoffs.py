"""judge_handoff: the verdict for every combination of missing checklist items, hypothesis,
owner and level skipped (services/escalation/core/handoffs.py, invariants 1-3)."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.escalation.core.handoffs import Bounce, Escalate, is_hypothesis, judge_handoff
from services.escalation.core.tickets import Ticket
from shared.events import EscalationReason, HandoffChecklist, Priority, TicketEscalationRequested, Tier
from tests.unit.escalation.builders import COMPLETE, DEFAULT, HYPOTHESIS, charter_with

ITEMS = ("impact", "steps_attempted", "attachments", "problem_statement")
BLANK = {
    "impact": [None, "", "   "],
    "steps_attempted": [[], ["  "], ["", "\t"]],
    "attachments": [[], [" "]],
    "problem_statement": [None, "\n"],
}
NO_HYPOTHESIS = [None, "", "   ", "It's broken!!", "  DOESN'T   work ", "n/a", "N.A.", "?", "¿?", "no-idea", "Broken."]
GOOD_HYPOTHESIS = [HYPOTHESIS, "broken cache key after deploy", "it's broken because the IdP cert expired", "42"]


def ticket(owner: Tier | None = Tier.L1, *, blocked: bool = False, intent: str = "login") -> Ticket:
    return Ticket("t-1", "corr", Priority.P2, intent, blocked, owner)


def request(
    source: Tier = Tier.L1,
    target: Tier = Tier.L2,
    *,
    checklist: HandoffChecklist = COMPLETE,
    hypothesis: str | None = HYPOTHESIS,
) -> TicketEscalationRequested:
    return TicketEscalationRequested(
        ticket_id="t-1", from_tier=source, to_tier=target, agent_id="ann", checklist=checklist, hypothesis=hypothesis
    )


def without(items: tuple[str, ...], variant: int = 0) -> HandoffChecklist:
    blanks = {item: BLANK[item][variant % len(BLANK[item])] for item in items}
    return COMPLETE.model_copy(update=blanks)


# (owner, target, blocked, intent, charter skip rule) -> expected "owner"/"skip_level" items and reason
ROUTES = [
    (Tier.L1, Tier.L2, False, "login", "jump_only", (), EscalationReason.HANDOFF),
    (Tier.L1, Tier.L2, True, "api_errors", "jump_only", (), EscalationReason.HANDOFF),  # no level skipped
    (Tier.L1, Tier.L3, True, "api_errors", "jump_only", (), EscalationReason.JUMP),  # the jump rule
    (Tier.L1, Tier.L3, False, "api_errors", "jump_only", ("skip_level",), None),  # not blocked
    (Tier.L1, Tier.L3, True, "login", "jump_only", ("skip_level",), None),  # not a slow-diagnostics intent
    (Tier.L1, Tier.L3, True, "api_errors", "never", ("skip_level",), None),  # the charter forbids skipping
    (Tier.L1, Tier.L4, True, "api_errors", "jump_only", ("skip_level",), None),  # L4 is not the jump's tier
    (Tier.L2, Tier.L2, False, "login", "jump_only", ("owner",), None),  # L2 owns it, L1 asks
    (None, Tier.L2, False, "login", "jump_only", ("owner",), None),  # nobody owns it (not routed yet)
    (Tier.L2, Tier.L3, True, "login", "never", ("owner", "skip_level"), None),
]


@pytest.mark.parametrize(
    "absent", [c for n in range(5) for c in itertools.combinations(ITEMS, n)], ids=lambda c: "+".join(c) or "complete"
)
def test_every_combination_gets_exactly_its_missing_items(absent):
    for (owner, target, blocked, intent, skip, route_missing, reason), hypothesis, variant in itertools.product(
        ROUTES, NO_HYPOTHESIS[:4] + GOOD_HYPOTHESIS[:1], range(3)
    ):
        charter = charter_with(DEFAULT, skip_levels=skip)
        verdict = judge_handoff(
            charter,
            ticket(owner, blocked=blocked, intent=intent),
            request(target=target, checklist=without(absent, variant), hypothesis=hypothesis),
        )
        missing = (*absent, *(("hypothesis",) if hypothesis != HYPOTHESIS else ()), *route_missing)
        case = (absent, owner, target, blocked, intent, skip, hypothesis, variant)
        if missing:
            assert verdict == Bounce(from_tier=target, to_tier=Tier.L1, missing=missing), case
        else:
            assert verdict == Escalate(Tier.L1, target, reason), case


@pytest.mark.parametrize("text", NO_HYPOTHESIS)
def test_placeholders_are_no_hypothesis(text):
    assert not is_hypothesis(text, DEFAULT.handoffs.hypothesis_placeholders)
    verdict = judge_handoff(DEFAULT, ticket(), request(hypothesis=text))
    assert verdict == Bounce(Tier.L2, Tier.L1, ("hypothesis",))


@pytest.mark.parametrize("text", GOOD_HYPOTHESIS)
def test_a_real_hypothesis_passes(text):
    assert is_hypothesis(text, DEFAULT.handoffs.hypothesis_placeholders)
    assert judge_handoff(DEFAULT, ticket(), request(hypothesis=text)) == Escalate(
        Tier.L1, Tier.L2, EscalationReason.HANDOFF
    )


def test_a_tier_that_needs_no_hypothesis_and_checks_less():
    lenient = DEFAULT.tiers[Tier.L1].handoff.model_copy(update={"checklist": ["impact"], "hypothesis_required": False})
    tiers = {**DEFAULT.tiers, Tier.L1: DEFAULT.tiers[Tier.L1].model_copy(update={"handoff": lenient})}
    charter = DEFAULT.model_copy(update={"tiers": tiers})
    bare = HandoffChecklist(impact="everyone in EU")
    assert judge_handoff(charter, ticket(), request(checklist=bare, hypothesis=None)) == Escalate(
        Tier.L1, Tier.L2, EscalationReason.HANDOFF
    )
    assert judge_handoff(charter, ticket(), request(checklist=HandoffChecklist(), hypothesis=None)) == Bounce(
        Tier.L2, Tier.L1, ("impact",)
    )


def test_l2_hands_up_to_l3_with_its_own_checklist():
    assert judge_handoff(DEFAULT, ticket(Tier.L2), request(Tier.L2, Tier.L3)) == Escalate(
        Tier.L2, Tier.L3, EscalationReason.HANDOFF
    )
    assert judge_handoff(DEFAULT, ticket(Tier.L2), request(Tier.L2, Tier.L3, hypothesis="no idea")) == Bounce(
        Tier.L3, Tier.L2, ("hypothesis",)
    )


blank_text = st.text(st.sampled_from(" \t\n"), max_size=4)
some_text = st.text(min_size=1, max_size=30).filter(lambda s: s.strip())
checklists = st.builds(
    HandoffChecklist,
    impact=st.none() | blank_text | some_text,
    steps_attempted=st.lists(blank_text | some_text, max_size=3),
    attachments=st.lists(blank_text | some_text, max_size=3),
    problem_statement=st.none() | blank_text | some_text,
)
placeholder_like = st.sampled_from(DEFAULT.handoffs.hypothesis_placeholders).flatmap(
    lambda p: st.lists(st.sampled_from(" .!?'-"), max_size=3).map(
        lambda extra: "".join(extra) + p.upper() + "".join(extra)
    )
)


@given(
    checklists,
    st.none() | blank_text | placeholder_like | some_text,
    st.sampled_from([Tier.L1, Tier.L2, None]),
    st.sampled_from([Tier.L2, Tier.L3]),
    st.booleans(),
    st.sampled_from(["login", "api_errors", "outage"]),
)
def test_the_verdict_is_exactly_what_is_missing(checklist, hypothesis, owner, target, blocked, intent):
    verdict = judge_handoff(
        DEFAULT,
        ticket(owner, blocked=blocked, intent=intent),
        request(target=target, checklist=checklist, hypothesis=hypothesis),
    )
    expected = [
        item
        for item in ITEMS
        if not (
            (value := getattr(checklist, item))
            and (value.strip() if isinstance(value, str) else any(v.strip() for v in value))
        )
    ]
    plain = "".join(c for c in (hypothesis or "").casefold() if c.isalnum())
    if not plain or plain in {
        "".join(c for c in p.casefold() if c.isalnum()) for p in DEFAULT.handoffs.hypothesis_placeholders
    }:
        expected.append("hypothesis")
    if owner is not Tier.L1:
        expected.append("owner")
    jump = target is Tier.L3
    if jump and not (blocked and intent in DEFAULT.routing.jump.intents):
        expected.append("skip_level")
    if expected:
        assert verdict == Bounce(target, Tier.L1, tuple(expected))
    else:
        assert verdict == Escalate(Tier.L1, target, EscalationReason.JUMP if jump else EscalationReason.HANDOFF)
