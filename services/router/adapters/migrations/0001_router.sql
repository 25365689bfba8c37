-- router: who owns each ticket, and how loaded each agent is (services/router/adapters/store.py).

-- One row per ticket the router has placed. `tier` is the owning tier; once resolved, the tier
-- that resolved it (a reopen goes back there). Rows change only under the locks described in
-- docs/architecture/router.md: the ticket's lock (its own events) and its tier's lock (assignment).
CREATE TABLE tickets (
    ticket_id           text PRIMARY KEY,
    correlation_id      text NOT NULL,
    intent              text NOT NULL,
    priority            text NOT NULL CHECK (priority IN ('P1', 'P2', 'P3', 'P4')),
    tier                text NOT NULL,
    queue               text NOT NULL,
    assignee            text,
    communication_owner text,
    urgent              boolean NOT NULL,  -- a jump or P1: assigned at once, office hours or not
    shadow              boolean NOT NULL,  -- waits in a shadow queue for the tier to batch it
    resolved            boolean NOT NULL,
    queued_at           timestamptz NOT NULL,
    routed_id           text NOT NULL,     -- the last ticket.routed about it
    CHECK (assignee IS NULL OR NOT (resolved OR shadow))
);

-- The line of each tier: unassigned open tickets, waiting ones (NOT shadow) in assignment
-- order (priority, then oldest); also what the queue-depth gauge counts.
CREATE INDEX tickets_unassigned ON tickets (tier, shadow, priority, queued_at, ticket_id)
    WHERE assignee IS NULL AND NOT resolved;
-- The same line outside office hours, where only urgent tickets are assigned.
CREATE INDEX tickets_waiting_urgent ON tickets (tier, priority, queued_at, ticket_id)
    WHERE assignee IS NULL AND NOT resolved AND NOT shadow AND urgent;

-- Each agent's load in a tier. Locking a tier's rows (FOR UPDATE, in (tier, agent) order) is
-- the tier's lock: capacity and round-robin turns are read and written only under it.
CREATE TABLE agents (
    tier         text NOT NULL,
    agent        text NOT NULL,
    open_tickets integer NOT NULL DEFAULT 0 CHECK (open_tickets >= 0),
    turn         bigint NOT NULL DEFAULT 0,   -- the tier's turn number of its last ticket (0: never)
    PRIMARY KEY (tier, agent)
);
