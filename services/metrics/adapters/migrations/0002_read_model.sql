-- The read model behind the read API and the ladder page (services/metrics/core/read_model.py):
-- every fresh event of a ticket in stream order (its timeline), and each ticket's current
-- state. Written in the transaction that claims the events, like the KPI projection.
-- Customer text (ticket.created's subject) is not kept: the timeline says who and why.
CREATE TABLE ticket_event (
    ticket_id    text NOT NULL,
    seq          bigint GENERATED ALWAYS AS IDENTITY,  -- stream order within the ticket (one partition)
    event_id     text NOT NULL,
    type         text NOT NULL,
    source       text NOT NULL,
    at           timestamptz NOT NULL,
    cycle        integer,
    causation_id text,
    body         jsonb NOT NULL,
    PRIMARY KEY (ticket_id, seq)
);
-- The weekly report's example handoffs: escalation requests and what became of them.
CREATE INDEX ticket_event_type_at ON ticket_event (type, at);

CREATE TABLE ticket_now (
    ticket_id           text PRIMARY KEY,
    priority            text NOT NULL,
    intent              text NOT NULL,
    customer_blocked    boolean NOT NULL,
    status              text NOT NULL CHECK (status IN ('open', 'resolved')),
    tier                text,          -- the owning tier (the resolver once resolved); NULL before routing
    queue               text,
    assignee            text,
    communication_owner text,          -- the tier keeping the customer updated when not the owner
    queued_at           timestamptz,   -- when it entered its current queue
    visit_start         timestamptz,   -- when its current visit at `tier` started
    created_at          timestamptz NOT NULL
);
-- The queues: open tickets per tier and queue, oldest first.
CREATE INDEX ticket_now_open ON ticket_now (tier, queue, queued_at) WHERE status = 'open';
