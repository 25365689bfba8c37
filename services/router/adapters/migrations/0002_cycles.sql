-- The cycle of the event that last placed the ticket (`ce_cycle`), carried by the
-- `ticket.routed` it caused and by a later assignment. Null for tickets placed before
-- cycles existed: their assignments carry no cycle, which consumers take as the current one.
ALTER TABLE tickets ADD COLUMN cycle integer CHECK (cycle >= 1);
