-- Retention: processed commands (idempotency keys, topic commands) are forgotten after
-- INTAKE_RETENTION_DAYS (services/intake/adapters/store.py RETENTION).
CREATE INDEX commands_processed_at ON commands (processed_at);
