"""A retried create yields one ticket and one ticket.created; the retry gets the original answer."""

import asyncio

from shared import envelope as ce
from tests.integration.intake.conftest import CHATBOT, HELPDESK, ticket_body


def created_for(events, ticket_id):
    return [r for r in events.records if r.key == ticket_id.encode()
            and dict(r.headers)["ce_type"] == b"ticket.created"]


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
    responses = await asyncio.gather(*(intake.post("/v1/tickets", json=ticket_body(unique), headers=headers)
                                       for _ in range(25)))
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
