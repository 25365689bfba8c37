-- What the echo service applied: one row per event, so a test sees "exactly once" directly.
-- A ticket id starting with "reject-me" violates the check: a failure that is not transient.
CREATE TABLE applied (
    event_id   text PRIMARY KEY,
    ticket_id  text NOT NULL CHECK (ticket_id NOT LIKE 'reject-me%'),
    event_type text NOT NULL
);
