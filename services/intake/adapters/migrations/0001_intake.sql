-- What intake must remember to validate commands, and the transactional outbox.

CREATE TABLE tickets (
    ticket_id           text PRIMARY KEY,
    correlation_id      text NOT NULL,            -- id of the ticket.created event
    created_fingerprint text NOT NULL,            -- to tell a retried create from a conflicting one
    status              text NOT NULL CHECK (status IN ('open', 'resolved')),
    rated               boolean NOT NULL DEFAULT false,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- Commands already processed (HTTP with an idempotency key, and everything from the topic).
CREATE TABLE commands (
    command_id   text PRIMARY KEY,
    fingerprint  text NOT NULL,
    ticket_id    text NOT NULL,
    event_id     text NOT NULL,
    event_type   text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);

-- Records committed with the state change, published to Kafka by the relay, then deleted.
CREATE TABLE outbox (
    seq           bigserial PRIMARY KEY,
    topic         text NOT NULL,
    key           bytea,
    value         bytea NOT NULL,
    header_names  text[] NOT NULL,
    header_values bytea[] NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
