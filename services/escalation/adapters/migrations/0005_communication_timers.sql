-- The communication owner's own first-response timer (core/sla.py, invariant 5): a visit
-- may now arm two timers of one kind, the owning tier's and the communication owner's, so a
-- timer is named by its arming event, kind and tier.
ALTER TABLE sla_timers DROP CONSTRAINT sla_timers_pkey;
ALTER TABLE sla_timers ADD PRIMARY KEY (armed_by, kind, tier);
