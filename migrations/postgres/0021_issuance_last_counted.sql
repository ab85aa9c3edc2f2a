-- How many tokens the last count let through. The token recorder counts a credential's share of a
-- batch in one upsert and reads this back from RETURNING (which shows only the row as it became),
-- so the tokens it records are decided in the same statement that locks and moves the window.
ALTER TABLE issuance_windows ADD COLUMN last_counted BIGINT NOT NULL DEFAULT 0;
