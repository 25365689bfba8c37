-- Retention (shared/retention.py): dedup rows and quarantined records are pruned by age in
-- small batches; these indexes find the oldest rows without scanning the tables.
CREATE INDEX IF NOT EXISTS inbox_claimed_at ON inbox (claimed_at);
CREATE INDEX IF NOT EXISTS inbox_duplicates_seen_at ON inbox_duplicates (seen_at);
CREATE INDEX IF NOT EXISTS outbox_quarantine_quarantined_at ON outbox_quarantine (quarantined_at);
