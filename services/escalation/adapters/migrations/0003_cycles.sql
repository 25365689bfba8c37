-- The cycle of the ticket.routed that armed the timer (`ce_cycle`): a breach fired later
-- belongs to that cycle, so it is stale everywhere if the ticket was reopened since. Null for
-- timers armed before cycles existed: their breaches carry no cycle (taken as the current one).
ALTER TABLE sla_timers ADD COLUMN cycle integer CHECK (cycle >= 1);
