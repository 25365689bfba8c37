-- Read scope (issue 16's model for writes, applied to reads): each ticket remembers the
-- client that created it (ce_client of its ticket.created). A read key with `tickets: own`
-- sees only its client's tickets; NULL (a create without ce_client) only `tickets: all`.
ALTER TABLE ticket_now ADD COLUMN client text;
