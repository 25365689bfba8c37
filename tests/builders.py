"""A ticket.created as intake publishes it, for tests in every folder: only what a test
varies is named at the call."""

from __future__ import annotations

from datetime import datetime

from shared.events import Channel, Priority, TicketCreated


def ticket_created(
    ticket_id: str,
    at: datetime,
    *,
    intent: str = "login",
    priority: Priority = Priority.P3,
    blocked: bool = False,
    customer_id: str = "acme",
    subject: str = "s",
) -> TicketCreated:
    return TicketCreated(
        ticket_id=ticket_id,
        customer_id=customer_id,
        channel=Channel.WEB,
        subject=subject,
        intent=intent,
        priority=priority,
        customer_blocked=blocked,
        created_at=at,
    )
