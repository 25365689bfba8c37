-- Who owns each ticket, for the tier-claim rule (shared.lifecycle invariant 5): the latest
-- routing's tier and communication owner. A lifecycle stored before this has no owners on
-- record (owners_known false): its claims fit until its next routing tells.
ALTER TABLE lifecycle
    ADD COLUMN owner text,
    ADD COLUMN communication_owner text,
    ADD COLUMN owners_known boolean NOT NULL DEFAULT false;
ALTER TABLE lifecycle ALTER COLUMN owners_known SET DEFAULT true;
