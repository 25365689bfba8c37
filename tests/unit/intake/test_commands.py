"""Command shapes: every invalid field is named; handoffs go up, returns go down."""

import pytest
from pydantic import ValidationError

from services.intake.core.commands import (
    KAFKA_COMMAND,
    CreateTicketRequest,
    RequestEscalationRequest,
    ReturnWithFixRequest,
)


def fields_of(error: ValidationError) -> set[str]:
    return {".".join(str(part) for part in item["loc"]) for item in error.errors()}


def test_create_names_every_invalid_field():
    with pytest.raises(ValidationError) as caught:
        CreateTicketRequest.model_validate(
            {
                "customer_id": "",
                "channel": "fax",
                "subject": "x" * 301,
                "intent": "Has Spaces",
                "priority": "P0",
                "surprise": True,
            }
        )
    assert fields_of(caught.value) == {"customer_id", "channel", "subject", "intent", "priority", "surprise"}


def test_created_at_needs_a_timezone():
    with pytest.raises(ValidationError, match="timezone"):
        CreateTicketRequest.model_validate(
            {"customer_id": "c", "channel": "web", "subject": "s", "intent": "x", "created_at": "2026-11-23T10:00:00"}
        )


def test_escalations_go_up_and_returns_go_down():
    with pytest.raises(ValidationError, match="to_tier must be above from_tier"):
        RequestEscalationRequest.model_validate({"from_tier": "L2", "to_tier": "L1", "agent_id": "a", "checklist": {}})
    with pytest.raises(ValidationError, match="to_tier must be below from_tier"):
        ReturnWithFixRequest.model_validate({"from_tier": "L1", "to_tier": "L2", "agent_id": "a", "fix_summary": "f"})


def test_topic_commands_are_discriminated_by_type():
    command = KAFKA_COMMAND.validate_python({"type": "rate_ticket", "ticket_id": "t-1", "score": 5})
    assert command.score == 5 and command.ticket_id == "t-1"
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        KAFKA_COMMAND.validate_python({"type": "delete_everything", "ticket_id": "t-1"})
    with pytest.raises(ValidationError) as caught:
        KAFKA_COMMAND.validate_python({"type": "resolve_ticket", "tier": "L1"})
    assert {"resolve_ticket.ticket_id", "resolve_ticket.agent_id", "resolve_ticket.resolution_code"} <= fields_of(
        caught.value
    )
