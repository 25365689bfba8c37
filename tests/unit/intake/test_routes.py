"""The HTTP routes draw no ids themselves: a command sent without an Idempotency-Key, and
the ticket it creates, are named by the injected id source (the core only derives ids)."""

from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.intake.core.commands import CreateTicketRequest
from services.intake.core.limits import RateLimits
from services.intake.core.tickets import Accepted, Decision, Submission, decide, new_ticket_id
from services.intake.handlers.errors import install_error_handlers
from services.intake.handlers.routes import api_router
from tests.unit.intake.test_auth import RING

BODY = {"customer_id": "acme", "channel": "chat", "subject": "SSO", "intent": "login"}


def test_a_command_without_an_idempotency_key_is_named_by_the_injected_source():
    drawn, submitted = iter(["cmd-1", "cmd-2"]), []

    async def submit(submission: Submission) -> Decision:
        submitted.append(submission)
        return decide(None, None, submission)

    app = FastAPI()
    app.include_router(api_router(lambda: RING, submit, RateLimits(100, 100), new_id=lambda: next(drawn)))
    install_error_handlers(app)
    client = TestClient(app)
    answers = [client.post("/v1/tickets", json=BODY, headers={"Authorization": "Bearer secret-2"}) for _ in range(2)]
    assert [a.status_code for a in answers] == [201, 201]
    assert [s.command_id for s in submitted] == ["cmd-1", "cmd-2"]
    request = CreateTicketRequest.model_validate(BODY)
    assert [a.json()["ticket_id"] for a in answers] == [
        new_ticket_id("chatbot", request, c) for c in ("cmd-1", "cmd-2")
    ]
    decision = decide(None, None, submitted[0])
    assert isinstance(decision, Accepted) and decision.envelope.causation_id == "cmd-1"
