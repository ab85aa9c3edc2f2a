-- Assisted account recovery: a single-use link (only its SHA-256 here) that, after the person's
-- password, lets them enrol a new passkey. Started from the server (break-glass) or, later, by a
-- second person's approval.
CREATE TABLE account_recoveries (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX account_recoveries_user ON account_recoveries (user_id);
