-- Outbox headers as one JSON value per row ([[name, base64 value], ...]) so a batch is
-- inserted with a single `unnest` statement (header lists differ in length per row).
ALTER TABLE outbox ADD COLUMN headers jsonb;
UPDATE outbox SET headers = (
    SELECT coalesce(jsonb_agg(jsonb_build_array(h.name, translate(encode(h.value, 'base64'), E'\n', '')) ORDER BY h.i), '[]'::jsonb)
    FROM unnest(header_names, header_values) WITH ORDINALITY AS h(name, value, i));
ALTER TABLE outbox ALTER COLUMN headers SET NOT NULL, DROP COLUMN header_names, DROP COLUMN header_values;
