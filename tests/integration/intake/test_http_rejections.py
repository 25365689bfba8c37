"""Bad input over HTTP: a clear 4xx, and the event stream is left unchanged."""

import asyncio

from tests.integration.intake.conftest import CHATBOT, HELPDESK, ticket_body


async def no_event_for(events, key_fragment: str) -> None:
    await events.settle(1.5)
    assert not [r for r in events.records if key_fragment.encode() in (r.key or b"")]


async def test_invalid_body_names_every_field(intake, events, unique):
    bad = {
        "customer_id": "",
        "channel": "pigeon",
        "subject": "",
        "intent": "Not A Slug",
        "priority": "P7",
        "unexpected": 1,
    }
    response = await intake.post("/v1/tickets", json=bad, headers=HELPDESK)
    assert response.status_code == 422
    problem = response.json()
    assert problem["error"] == "invalid_request"
    fields = {f["field"] for f in problem["fields"]}
    assert fields == {
        "body.customer_id",
        "body.channel",
        "body.subject",
        "body.intent",
        "body.priority",
        "body.unexpected",
    }
    assert "pigeon" not in response.text  # input is not echoed back
    await events.settle(1.0)
    assert not [
        r
        for r in events.records
        if b"ticket.created" in dict(r.headers).get("ce_type", b"") and f"cust-{unique}".encode() in r.value
    ]


async def test_malformed_json_is_422(intake):
    response = await intake.post(
        "/v1/tickets", content=b"{nope", headers={**HELPDESK, "Content-Type": "application/json"}
    )
    assert response.status_code == 422


async def test_too_large_is_413(intake):
    response = await intake.post("/v1/tickets", json=ticket_body("x", subject="y" * 20000), headers=HELPDESK)
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"

    async def chunks():
        for _ in range(10):
            yield b"x" * 1000

    streamed = await intake.post(
        "/v1/tickets", content=chunks(), headers={**HELPDESK, "Content-Type": "application/json"}
    )
    assert streamed.status_code == 413


async def test_state_conflicts_are_409_with_reason(intake, events, unique):
    created = (await intake.post("/v1/tickets", json=ticket_body(unique), headers=HELPDESK)).json()
    ticket = created["ticket_id"]
    reopen = await intake.post(f"/v1/tickets/{ticket}/reopen", json={}, headers=HELPDESK)
    assert reopen.status_code == 409 and reopen.json()["error"] == "ticket_open"
    rate = await intake.post(f"/v1/tickets/{ticket}/rating", json={"score": 4}, headers=HELPDESK)
    assert rate.status_code == 409 and "resolved" in rate.json()["detail"]
    resolve = {"tier": "L1", "agent_id": "a", "resolution_code": "done"}
    assert (await intake.post(f"/v1/tickets/{ticket}/resolution", json=resolve, headers=HELPDESK)).status_code == 202
    again = await intake.post(f"/v1/tickets/{ticket}/resolution", json=resolve, headers=HELPDESK)
    assert again.status_code == 409 and again.json()["error"] == "ticket_resolved"
    await asyncio.sleep(0)
    mine = await events.wait_for(lambda rs: len([r for r in rs if r.key == ticket.encode()]) >= 2)
    await events.settle(1.0)
    types = [dict(r.headers)["ce_type"] for r in events.records if r.key == ticket.encode()]
    assert types == [b"ticket.created", b"ticket.resolved"], mine


async def test_wrong_direction_handoffs_are_422(intake, unique):
    created = (await intake.post("/v1/tickets", json=ticket_body(unique), headers=HELPDESK)).json()
    response = await intake.post(
        f"/v1/tickets/{created['ticket_id']}/escalations",
        headers=HELPDESK,
        json={"from_tier": "L2", "to_tier": "L1", "agent_id": "a", "checklist": {}},
    )
    assert response.status_code == 422 and "to_tier must be above from_tier" in response.text


async def test_authentication(intake, events, unique):
    body = ticket_body(unique)
    missing = await intake.post("/v1/tickets", json=body)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
    stranger = await intake.post("/v1/tickets", json={"channel": "pigeon"})
    assert stranger.status_code == 401  # no schema details for strangers
    wrong = await intake.post("/v1/tickets", json=body, headers={"Authorization": "Bearer not-a-key"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "unauthenticated"
    basic = await intake.post("/v1/tickets", json=body, headers={"Authorization": "Basic aGk6aGk="})
    assert basic.status_code == 401
    allowed = await intake.post("/v1/tickets", json=body, headers=CHATBOT)
    assert allowed.status_code == 201
    ticket = allowed.json()["ticket_id"]
    forbidden = await intake.post(
        f"/v1/tickets/{ticket}/resolution",
        headers=CHATBOT,
        json={"tier": "L1", "agent_id": "bot", "resolution_code": "x"},
    )
    assert forbidden.status_code == 403 and "chatbot" in forbidden.json()["detail"]
    await events.wait_for(lambda rs: any(r.key == ticket.encode() for r in rs))
    await events.settle(1.0)
    assert [dict(r.headers)["ce_type"] for r in events.records if r.key == ticket.encode()] == [b"ticket.created"]


async def test_operations_endpoints(intake):
    from cli.contracts import openapi as document

    assert (await intake.get("/healthz")).json() == {"status": "alive"}
    ready = await intake.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {
        "database": True,
        "kafka": True,
        "relay": True,
        "http_commands": True,
        "consumers": True,
        "retention": True,
        "waiting": True,
        "keys": True,
    }
    assert (await intake.get("/openapi.json")).json() == document()
    from services.intake.asyncapi import asyncapi

    assert (await intake.get("/asyncapi.json")).json() == asyncapi()
    page = await intake.get("/asyncapi")
    assert (
        page.status_code == 200 and "support.ticket-events" in page.text and "ticket.escalation_requested" in page.text
    )
    metrics = (await intake.get("/metrics")).text
    assert 'support_http_requests_total{method="POST",route="/v1/tickets",status="201"}' in metrics
    for name in (
        "support_intake_commands_total",
        "support_outbox_published_total",
        "support_outbox_pending_records",
        "support_outbox_oldest_age_seconds",
        "support_outbox_relay_leader",
        "support_dead_letters_total",
        "support_consumer_batches_total",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in metrics, name
    assert "ticket_id=" not in metrics  # no per-ticket labels
