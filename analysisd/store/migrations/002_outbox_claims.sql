-- Several replicas scan one outbox: a replica claims the due rows it is about to send
-- (claimed_by, claimed_until in epoch seconds) so the others skip them until it records
-- the attempt or the claim runs out (the claimer died mid-send).
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_until DOUBLE PRECISION;
