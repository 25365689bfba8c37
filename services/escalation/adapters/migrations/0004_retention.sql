-- Retention: settled timers (fired or cancelled) are pruned after ESCALATION_RETENTION_DAYS;
-- pending ones never are.
CREATE INDEX sla_timers_settled ON sla_timers (settled_at) WHERE state <> 'pending';
