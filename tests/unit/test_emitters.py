"""The catalogue's "emitted by" column as a rule: each type has one emitter, and every
other source is refused with a reason that does not quote an unknown source."""

import pytest

from services.escalation.core.sla import SOURCE as ESCALATION_SOURCE
from services.intake.core.tickets import SOURCE as INTAKE_SOURCE
from services.router.handlers.events import SOURCE as ROUTER_SOURCE
from shared.emitters import EMITTED_BY, ESCALATION, INTAKE, ROUTER, emitter, not_allowed
from shared.events import EVENT_TYPES

DESIGN = {  # who emits each type, written out by hand
    "ticket.created": INTAKE,
    "ticket.routed": ROUTER,
    "ticket.responded": INTAKE,
    "ticket.escalation_requested": INTAKE,
    "ticket.escalated": ESCALATION,
    "ticket.bounced": ESCALATION,
    "ticket.return_requested": INTAKE,
    "ticket.resolved": INTAKE,
    "ticket.reopened": INTAKE,
    "ticket.rated": INTAKE,
    "ticket.sla_breached": ESCALATION,
    "ticket.claim_requested": INTAKE,  # issue 18: an agent claims from a shadow queue
}


def test_every_catalogue_type_has_the_emitter_the_design_names():
    assert set(EMITTED_BY) == set(EVENT_TYPES)
    assert dict(EMITTED_BY) == DESIGN


def test_the_services_stamp_the_sources_the_rule_expects():
    assert (INTAKE_SOURCE, ROUTER_SOURCE, ESCALATION_SOURCE) == (INTAKE, ROUTER, ESCALATION)


@pytest.mark.parametrize("event_type", sorted(DESIGN))
def test_the_emitter_may_emit_its_types(event_type):
    assert not_allowed(emitter(event_type), event_type) is None


@pytest.mark.parametrize("event_type", sorted(DESIGN))
def test_every_other_service_may_not(event_type):
    for other in {INTAKE, ROUTER, ESCALATION} - {DESIGN[event_type]}:
        reason = not_allowed(other, event_type)
        assert reason == f"{event_type} is emitted by {DESIGN[event_type]} only; ce_source is {other}"


@pytest.mark.parametrize("source", ["tests", "", "ladder/intake ", "LADDER/ESCALATION", "mallory <script>"])
def test_an_unknown_source_is_refused_without_being_quoted(source):
    reason = not_allowed(source, "ticket.escalated")
    assert reason == "ticket.escalated is emitted by ladder/escalation only; ce_source is not a Ladder service"


def test_a_type_outside_the_catalogue_has_no_emitter():
    assert not_allowed(INTAKE, "ticket.deleted") == "ticket.deleted is not in the event catalogue"
    with pytest.raises(KeyError):
        emitter("ticket.deleted")
