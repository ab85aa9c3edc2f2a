-- A mail that could not be delivered for days is given up (retries stay bounded); it stays in the
-- outbox, with its last error, for the operator to see.
ALTER TABLE outbox ADD COLUMN abandoned_at BIGINT;
