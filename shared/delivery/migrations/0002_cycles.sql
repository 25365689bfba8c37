-- The ticket's current cycle (shared.lifecycle invariant 4): an event of an earlier cycle is
-- stale. Tickets known before cycles existed start at 1, as intake's do (its 0004_cycles).
ALTER TABLE lifecycle ADD COLUMN cycle integer NOT NULL DEFAULT 1 CHECK (cycle >= 1);
