-- The ticket's current cycle (1 until the first reopen; each reopen starts the next), stamped
-- on every event as `ce_cycle`. Tickets known before cycles existed start at 1, as in every
-- consumer's lifecycle table (shared/delivery/migrations/0002_cycles.sql), so both agree.
ALTER TABLE tickets ADD COLUMN cycle integer NOT NULL DEFAULT 1 CHECK (cycle >= 1);
