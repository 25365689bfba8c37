-- The delivery kit's tables, one set in every service's schema (applied after the
-- service's own migrations; ledger: delivery_migrations).

-- Records committed with the effects that caused them; the relay publishes, then deletes.
-- Headers are `shared.delivery.outbox.encode_headers` bytes: any name, any (or null) value.
CREATE TABLE IF NOT EXISTS outbox (
    seq        bigserial PRIMARY KEY,
    topic      text NOT NULL,
    key        bytea,
    value      bytea,
    headers    bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Records the broker refused for good (too large, invalid): parked here, counted, never
-- blocking the records behind them. Nothing is lost; an operator can inspect or re-queue.
CREATE TABLE IF NOT EXISTS outbox_quarantine (
    seq            bigint PRIMARY KEY,
    topic          text NOT NULL,
    key            bytea,
    value          bytea,
    headers        bytea NOT NULL,
    created_at     timestamptz NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT now(),
    reason         text NOT NULL
);

-- Consumed event ids, claimed in the same transaction as their effects: a redelivery or a
-- duplicate changes nothing. `position` is where the id was first seen (partition/offset@ts),
-- so a replay of the log is told apart from a duplicate published at another offset.
CREATE TABLE IF NOT EXISTS inbox (
    event_id   text PRIMARY KEY,
    position   text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now()
);

-- Positions of duplicates already counted, so a replay does not count them again.
CREATE TABLE IF NOT EXISTS inbox_duplicates (
    position   text PRIMARY KEY,
    event_id   text NOT NULL,
    seen_at    timestamptz NOT NULL DEFAULT now()
);

-- The lifecycle every consumer tracks for the shared staleness rule (shared.lifecycle).
CREATE TABLE IF NOT EXISTS lifecycle (
    ticket_id text PRIMARY KEY,
    status    text NOT NULL CHECK (status IN ('open', 'resolved')),
    rated     boolean NOT NULL
);
