-- Passkeys, recovery codes, login throttling, and a public id for each session (PostgreSQL twin).

CREATE TABLE passkeys (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id   TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    -- webauthn-rs Passkey (public key, counter, backup flags) as JSON: no secret in it.
    passkey         TEXT NOT NULL,
    sign_count      BIGINT NOT NULL DEFAULT 0,
    backup_eligible INTEGER NOT NULL DEFAULT 0,
    backup_state    INTEGER NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    last_used_at    BIGINT
);
CREATE INDEX passkeys_user ON passkeys (user_id);

CREATE TABLE recovery_codes (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE UNIQUE INDEX recovery_codes_user_hash ON recovery_codes (user_id, code_hash);

-- One row per throttled key: 'account:<normalized e-mail>' or 'ip:<address>'. Keyed by e-mail, not
-- user id, so unknown and known accounts are throttled alike.
CREATE TABLE login_throttle (
    throttle_key      TEXT PRIMARY KEY,
    failures          INTEGER NOT NULL,
    window_started_at BIGINT NOT NULL,
    locked_until      BIGINT,
    updated_at        BIGINT NOT NULL
);

-- A public handle for a session ("end this one"); the key hash stays private.
ALTER TABLE sessions ADD COLUMN public_id TEXT;
CREATE UNIQUE INDEX sessions_public_id ON sessions (public_id);
