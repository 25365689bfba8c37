-- The outbox moves to the delivery kit's layout (shared/delivery/migrations): headers as
-- bytes, so header names may hold any character (jsonb cannot hold NUL) and values may be
-- null; a record's value may be null (a dead-lettered tombstone is kept verbatim).
ALTER TABLE outbox ADD COLUMN header_bytes bytea;
UPDATE outbox SET header_bytes = coalesce((
    SELECT string_agg(int4send(octet_length(convert_to(h.value->>0, 'UTF8'))) || convert_to(h.value->>0, 'UTF8')
                      || int4send(octet_length(decode(h.value->>1, 'base64'))) || decode(h.value->>1, 'base64'),
                      ''::bytea ORDER BY h.ordinality)
    FROM jsonb_array_elements(headers) WITH ORDINALITY AS h), ''::bytea);
ALTER TABLE outbox DROP COLUMN headers;
ALTER TABLE outbox RENAME COLUMN header_bytes TO headers;
ALTER TABLE outbox ALTER COLUMN headers SET NOT NULL, ALTER COLUMN value DROP NOT NULL;
