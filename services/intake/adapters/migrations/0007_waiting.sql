-- Topic commands waiting for their ticket: a follow-up read before its ticket's create (written
-- with another key, so on another partition) waits here and is retried in `seq` order for a
-- bounded time (INTAKE_UNKNOWN_TICKET_WAIT_S); a later command for the same ticket waits behind
-- it, so one ticket's commands keep their order. The record is kept verbatim (it may become a
-- dead letter), and `first_seen` is when intake first read it (its signature is judged then).
CREATE TABLE waiting (
    seq          bigserial PRIMARY KEY,
    command_id   text NOT NULL UNIQUE,  -- a redelivered record waits once
    ticket_id    text NOT NULL,
    first_seen   timestamptz NOT NULL,
    topic        text NOT NULL,
    partition    integer NOT NULL,
    "offset"     bigint NOT NULL,
    timestamp_ms bigint NOT NULL,
    key          bytea,
    value        bytea,
    headers      bytea NOT NULL
);
CREATE INDEX waiting_ticket ON waiting (ticket_id);
