"""Each command over HTTP produces the right event on the stream, read back independently."""

import orjson
import pytest

from shared import envelope as ce
from shared.kafka import topic_partitions
from shared.partitioning import partition_for
from tests.integration.intake.conftest import HELPDESK, ticket_body

FLOW = [  # (path, body, event type) in an order the state rules accept
    ("responses", {"tier": "L1", "agent_id": "ann"}, "ticket.responded"),
    (
        "escalations",
        {
            "from_tier": "L1",
            "to_tier": "L2",
            "agent_id": "ann",
            "hypothesis": "stale cache",
            "checklist": {
                "impact": "1 customer",
                "steps_attempted": ["re-sent"],
                "attachments": ["inv-7"],
                "problem_statement": "PDF renders blank",
            },
        },
        "ticket.escalation_requested",
    ),
    (
        "returns",
        {"from_tier": "L2", "agent_id": "bo", "fix_summary": "cleared template cache"},
        "ticket.return_requested",
    ),
    ("resolution", {"tier": "L1", "agent_id": "ann", "resolution_code": "fixed"}, "ticket.resolved"),
    ("rating", {"score": 5}, "ticket.rated"),
    ("reopen", {}, "ticket.reopened"),
]


async def test_every_command_becomes_its_event(intake, events, unique):
    created = await intake.post("/v1/tickets", json=ticket_body(unique), headers=HELPDESK)
    assert created.status_code == 201, created.text
    ticket_id = created.json()["ticket_id"]
    created_id = created.json()["event_id"]
    answers = [created.json()]
    for path, body, _ in FLOW:
        response = await intake.post(f"/v1/tickets/{ticket_id}/{path}", json=body, headers=HELPDESK)
        assert response.status_code == 202, (path, response.text)
        answers.append(response.json())

    records = await events.wait_for(lambda rs: len([r for r in rs if r.key == ticket_id.encode()]) >= 7)
    mine = [r for r in records if r.key == ticket_id.encode()]
    decoded = [ce.decode(r.key, r.value, r.headers) for r in mine]
    assert [d.type for d in decoded] == ["ticket.created"] + [t for _, _, t in FLOW]
    assert [d.id for d in decoded] == [a["event_id"] for a in answers]
    assert len({r.partition for r in mine}) == 1  # one ticket, one partition, in order
    # ...the partition any producer with the default (murmur2) partitioner would choose
    assert mine[0].partition == partition_for(
        ticket_id.encode(), len(await topic_partitions(events.bootstrap, events.topic))
    )
    assert all(d.correlation_id == created_id for d in decoded)
    assert all(d.causation_id for d in decoded)
    assert decoded[0].event.subject == "Invoice PDF is blank"
    assert decoded[2].event.checklist.problem_statement == "PDF renders blank"
    assert decoded[5].event.score == 5


async def test_created_body_and_headers(intake, events, unique):
    body = ticket_body(
        unique, customer_blocked=True, priority="P1", created_at="2026-11-23T08:00:00+01:00", external_id=f"ZD-{unique}"
    )
    response = await intake.post("/v1/tickets", json=body, headers=HELPDESK)
    assert response.status_code == 201
    ticket_id = response.json()["ticket_id"]
    (record,) = await events.wait_for(lambda rs: any(r.key == ticket_id.encode() for r in rs))
    headers = dict(record.headers)
    assert headers["ce_type"] == b"ticket.created" and headers["ce_source"] == b"ladder/intake"
    payload = orjson.loads(record.value)
    assert payload["customer_blocked"] is True and payload["priority"] == "P1"
    assert payload["created_at"] == "2026-11-23T08:00:00+01:00"
    assert payload["external_id"] == f"ZD-{unique}"


@pytest.mark.parametrize("path", ["responses", "resolution", "reopen", "rating"])
async def test_unknown_ticket_is_404(intake, path, unique):
    bodies = {
        "responses": {"tier": "L1", "agent_id": "a"},
        "resolution": {"tier": "L1", "agent_id": "a", "resolution_code": "x"},
        "reopen": {},
        "rating": {"score": 3},
    }
    response = await intake.post(f"/v1/tickets/nope-{unique}/{path}", json=bodies[path], headers=HELPDESK)
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_ticket"
