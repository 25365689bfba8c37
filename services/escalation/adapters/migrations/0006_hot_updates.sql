-- Room on each page for its tickets' updates to stay HOT (see the delivery kit's
-- 0005_hot_updates.sql): the only index is the primary key, which no update changes.
ALTER TABLE tickets SET (fillfactor = 70);
