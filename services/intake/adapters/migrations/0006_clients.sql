-- The client that created each ticket: a client acts only on its own tickets unless its key is
-- granted every ticket. Tickets created before this was remembered have none (NULL): only a key
-- granted every ticket may act on them.
ALTER TABLE tickets ADD COLUMN client text;
