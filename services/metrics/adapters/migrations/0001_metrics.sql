-- The KPI projection (docs/architecture/metrics.md). Everything is written in the
-- transaction that claims the events (the kit's inbox), so a replay or a restart adds nothing.

-- Per ticket, what attributing its next event needs (services.metrics.core.visits.TicketState).
CREATE TABLE ticket (
    ticket_id                  text PRIMARY KEY,
    cycle_start                timestamptz NOT NULL,  -- ticket.created or the latest ticket.reopened
    visit_tier                 text,                  -- the open visit's tier (the owner); NULL: nobody owns it
    visit_start                timestamptz,
    visit_escalation_requested boolean NOT NULL,
    visit_responded            boolean NOT NULL,
    resolution_tier            text,                  -- the latest resolution ('' = nobody owned it); NULL after a reopen
    resolution_at              timestamptz,
    resolution_first_contact   boolean NOT NULL,
    first_resolved_at          timestamptz,
    escalated                  boolean NOT NULL
);
-- Backlog: tickets per owning tier, read from this small index.
CREATE INDEX ticket_backlog ON ticket (visit_tier) WHERE visit_tier IS NOT NULL;

-- Every KPI sample, append-only: `at` is the time of the event that completes it (it decides
-- the window). Read for the part of a window that does not cover whole days, and for quantiles.
CREATE TABLE sample (
    at     timestamptz NOT NULL,
    kind   text NOT NULL,
    tier   text NOT NULL,      -- '' for samples of no tier
    detail text NOT NULL,      -- reason, "to_tier/reason", duration bucket, ...
    n      integer NOT NULL,
    good   integer NOT NULL,
    micros bigint              -- durations only (resolution, first_response)
);
CREATE INDEX sample_window ON sample (kind, at);
-- Quantiles: the k-th duration inside one bucket of a tier is a short walk along this index.
CREATE INDEX sample_rank ON sample (kind, tier, detail, micros) INCLUDE (at) WHERE micros IS NOT NULL;

-- The samples summed per UTC day (the whole days of a window) and over all time.
-- Invariant: for every key, the sums over all shards equal the sums of `sample`
-- (tests/integration/metrics/test_store.py). A transaction adds to the rows of one shard,
-- picked at random: concurrent batches rarely wait for each other's row locks.
-- Every batch updates today's rows and the totals: room for HOT updates.
CREATE TABLE total (
    kind   text NOT NULL,
    tier   text NOT NULL,
    detail text NOT NULL,
    shard  smallint NOT NULL,
    n      bigint NOT NULL,
    good   bigint NOT NULL,
    micros bigint NOT NULL,
    PRIMARY KEY (kind, tier, detail, shard)
) WITH (fillfactor = 50);

CREATE TABLE daily (
    day    date NOT NULL,
    kind   text NOT NULL,
    tier   text NOT NULL,
    detail text NOT NULL,
    shard  smallint NOT NULL,
    n      bigint NOT NULL,
    good   bigint NOT NULL,
    micros bigint NOT NULL,
    PRIMARY KEY (day, kind, tier, detail, shard)
) WITH (fillfactor = 50);
