-- An Idempotency-Key claimed by a request still being answered is held on a lease: a request that
-- failed, was cancelled or died with its instance leaves a claim whose lease runs out, and a retry
-- then runs instead of being told "in progress" for a day. NULL (claims made before this) counts
-- as run out.
ALTER TABLE api_idempotency ADD COLUMN lease_until BIGINT;
