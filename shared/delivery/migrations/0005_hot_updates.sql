-- A ticket's lifecycle row is updated by nearly every event of the ticket, soon after it was
-- inserted, and no update changes an indexed column: with room left on its page the new
-- version is a HOT update (no new index entry, pruned in place). At the default fillfactor
-- (100) a page fills with new tickets and most of their updates had to move to another page
-- (about 40% were HOT in `make bench`). Applies to pages written from now on.
ALTER TABLE lifecycle SET (fillfactor = 70);
