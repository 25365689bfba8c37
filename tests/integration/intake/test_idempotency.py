"""A retried create yields one ticket and one ticket.created; the retry gets the original answer."""

import asyncio

from shared import envelope as ce
from tests.integration.intake.conftest import CHATBOT, HELPDESK, ticket_body


def created_for(events, ticket_id):
    return [
        r for r in events.records if r.key == ticket_id.encode() and dict(r.headers)["ce_type"] == b"ticket.created"
    ]


async def test_retry_with_the_same_key(intake, events, unique):
    headers = {**HELPDESK, "Idempotency-Key": f"create-{unique}"}
    first = await intake.post("/v1/tickets", json=ticket_body(unique), headers=headers)
    second = await intake.post("/v1/tickets", json=ticket_body(unique), headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    ticket = first.json()["ticket_id"]
    await events.wait_for(lambda rs: created_for(events, ticket))
    await events.settle(1.5)
    assert len(created_for(events, ticket)) == 1


async def test_same_key_different_body_is_refused(intake, unique):
    headers = {**HELPDESK, "Idempotency-Key": f"k-{unique}"}
    assert (await intake.post("/v1/tickets", json=ticket_body(unique), headers=headers)).status_code == 201
    other = await intake.post("/v1/tickets", json=ticket_body(unique, subject="different"), headers=headers)
    assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reused"


async def test_keys_are_scoped_per_client(intake, unique):
    key = f"shared-{unique}"
    a = await intake.post("/v1/tickets", json=ticket_body(unique), headers={**HELPDESK, "Idempotency-Key": key})
    b = await intake.post("/v1/tickets", json=ticket_body(unique), headers={**CHATBOT, "Idempotency-Key": key})
    assert a.json()["ticket_id"] != b.json()["ticket_id"]


async def test_concurrent_duplicates_yield_one_event(intake, events, unique):
    headers = {**HELPDESK, "Idempotency-Key": f"burst-{unique}"}
    responses = await asyncio.gather(
        *(intake.post("/v1/tickets", json=ticket_body(unique), headers=headers) for _ in range(25))
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["event_id"] for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 24
    ticket = responses[0].json()["ticket_id"]
    await events.wait_for(lambda rs: created_for(events, ticket))
    await events.settle(1.5)
    (record,) = created_for(events, ticket)
    assert ce.decode(record.key, record.value, record.headers).id == responses[0].json()["event_id"]


async def test_external_id_dedupes_without_a_key(intake, events, unique):
    body = ticket_body(unique, external_id=f"ZD-{unique}")
    first = await intake.post("/v1/tickets", json=body, headers=HELPDESK)
    again = await intake.post("/v1/tickets", json=body, headers=HELPDESK)
    assert first.json() == again.json()
    changed = await intake.post("/v1/tickets", json={**body, "subject": "new"}, headers=HELPDESK)
    assert changed.status_code == 409 and changed.json()["error"] == "ticket_exists"
    ticket = first.json()["ticket_id"]
    await events.wait_for(lambda rs: created_for(events, ticket))
    await events.settle(1.0)
    assert len(created_for(events, ticket)) == 1


async def test_a_key_reused_on_another_ticket_is_422_naming_the_key(intake, events, unique):
    a, b = [
        (await intake.post("/v1/tickets", json=ticket_body(f"{unique}-{x}"), headers=HELPDESK)).json()["ticket_id"]
        for x in "ab"
    ]
    headers = {**HELPDESK, "Idempotency-Key": f"respond-{unique}"}
    body = {"tier": "L1", "agent_id": "ann"}
    first = await intake.post(f"/v1/tickets/{a}/responses", json=body, headers=headers)
    other = await intake.post(f"/v1/tickets/{b}/responses", json=body, headers=headers)
    assert first.status_code == 202
    assert other.status_code == 422 and other.headers.get("Idempotent-Replayed") is None
    problem = other.json()
    assert problem["error"] == "idempotency_key_reused"
    assert f"respond-{unique}" in problem["detail"]
    assert problem["fields"][0]["field"] == "Idempotency-Key"
    await events.wait_for(
        lambda rs: any(r.key == a.encode() and dict(r.headers)["ce_type"] == b"ticket.responded" for r in rs)
    )
    await events.settle(1.0)
    assert not [r for r in events.records if r.key == b.encode() and dict(r.headers)["ce_type"] == b"ticket.responded"]


async def test_32_concurrent_first_uses_of_one_key_make_one_event_and_no_5xx(intake, events, unique):
    tickets = [
        (await intake.post("/v1/tickets", json=ticket_body(f"{unique}-{i}"), headers=HELPDESK)).json()["ticket_id"]
        for i in range(32)
    ]
    headers = {**HELPDESK, "Idempotency-Key": f"race-{unique}"}
    answers = await asyncio.gather(
        *(
            intake.post(f"/v1/tickets/{ticket}/responses", json={"tier": "L1", "agent_id": "a"}, headers=headers)
            for ticket in tickets
        )
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [202] + [422] * 31  # one request owns the key; the others are told it is taken
    (winner,) = [a.json() for a in answers if a.status_code == 202]
    await events.wait_for(lambda rs: any(dict(r.headers)["ce_id"].decode() == winner["event_id"] for r in rs))
    await events.settle(1.5)
    responded = [
        r for r in events.records if r.key.decode() in tickets and dict(r.headers)["ce_type"] == b"ticket.responded"
    ]
    assert len(responded) == 1
