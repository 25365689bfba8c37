"""router builds its outbox records in one pass; they are exactly what the shared envelope
makes of a validated TicketRouted, so every consumer reads them as any other event."""

from __future__ import annotations

from datetime import UTC, datetime

from services.router.core.dispatch import Routed
from services.router.handlers.events import SOURCE, routed_records
from shared.envelope import Envelope, decode, encode
from shared.events import RoutingReason, TicketRouted, Tier


def test_routed_records_are_what_encode_makes():
    at = datetime(2026, 11, 24, 9, 30, 0, 123456, tzinfo=UTC)
    routed = [
        Routed("t-1", Tier.L3, "l3-engineering", "kofi", RoutingReason.JUMP, Tier.L1, "e1", "c1", "r1", 2),
        Routed(
            "t:2.x", Tier.L1, "l1-triage", None, RoutingReason.RULE, None, "e2", "c2", "r2", None
        ),  # placed before cycles
    ]
    for record, r in zip(routed_records(routed, at, "events"), routed, strict=True):
        event = TicketRouted(
            ticket_id=r.ticket_id,
            tier=r.tier,
            queue=r.queue,
            assignee=r.assignee,
            reason=r.reason,
            communication_owner=r.communication_owner,
        )
        expected = encode(
            Envelope(
                event=event,
                id=r.event_id,
                source=SOURCE,
                time=at,
                correlation_id=r.correlation_id,
                causation_id=r.causation_id,
                cycle=r.cycle,
            )
        )
        assert (record.topic, record.key, record.value, record.headers) == (
            "events",
            expected.key,
            expected.value,
            expected.headers,
        )
        decoded = decode(record.key, record.value, record.headers)
        assert (decoded.event, decoded.cycle) == (event, r.cycle)
