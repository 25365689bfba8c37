-- SLA timers fire on stream time (adapters/timers.py): each timer carries the partition of
-- its ticket's records, and fires once that partition has been read past its deadline.
-- Timers armed before this migration have none (NULL): the timer loop places the pending
-- ones at start, with the partition every producer puts the ticket on (murmur2 of the
-- ticket id over the topic's partition count, shared/partitioning.py), before it fires
-- anything; until then they are not claimed. Settled rows keep NULL (never read again).
ALTER TABLE sla_timers ADD COLUMN partition integer;

-- The loop's questions, per partition it owns: what is due by that partition's stream
-- time, and its earliest pending deadline.
DROP INDEX sla_timers_pending_due;
CREATE INDEX sla_timers_pending_due ON sla_timers (partition, due_at) WHERE state = 'pending';
