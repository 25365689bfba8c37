-- The read model's timelines are pruned by age like every other projection table
-- (retention_rules): the index the pruning pass walks.
CREATE INDEX ticket_event_at ON ticket_event (at);
