-- escalation's own state, in its schema (ESCALATION_SCHEMA_NAME); the delivery kit adds
-- outbox, inbox and lifecycle to the same schema.

-- What escalation knows of each ticket (services/escalation/core/tickets.py: Ticket).
CREATE TABLE tickets (
    ticket_id           text PRIMARY KEY,
    correlation_id      text NOT NULL,          -- id of the ticket.created event
    priority            text NOT NULL,
    intent              text NOT NULL,
    customer_blocked    boolean NOT NULL,
    owner               text,                   -- effective owner; null while resolved
    visit_tier          text,                   -- the current visit; null between a resolution and the next routing
    visit_started_by    text,                   -- the ticket.routed that started it (its timers' armed_by)
    communication_owner text,
    CHECK ((visit_tier IS NULL) = (visit_started_by IS NULL))
);

-- SLA timers: one per visit and kind, named by the routed event that armed it, so arming
-- again is a no-op and a settled timer is never revived. A timer settles once.
CREATE TABLE sla_timers (
    armed_by   text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('first_response', 'time_in_tier')),
    ticket_id  text NOT NULL,
    tier       text NOT NULL,
    due_at     timestamptz NOT NULL,
    state      text NOT NULL CHECK (state IN ('pending', 'fired', 'cancelled')),
    settled_at timestamptz,
    PRIMARY KEY (armed_by, kind)
);

-- The timer loop's only questions: the earliest pending deadline, and what is due now.
CREATE INDEX sla_timers_pending_due ON sla_timers (due_at) WHERE state = 'pending';
-- Cancelling a ticket's pending timers when it responds, moves or is resolved.
CREATE INDEX sla_timers_pending_ticket ON sla_timers (ticket_id) WHERE state = 'pending';
