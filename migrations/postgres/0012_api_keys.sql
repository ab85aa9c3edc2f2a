-- Personal automation keys: a staff member's key for the JSON API, acting as its owner, limited to
-- the permissions (and optionally tenants and networks) chosen when it was made. Only the key's
-- SHA-256 is stored; the display prefix is enough to recognise it in a list.

CREATE TABLE api_keys (
    id             TEXT PRIMARY KEY,
    owner          TEXT NOT NULL REFERENCES users (id),
    name           TEXT NOT NULL,
    secret_hash    TEXT NOT NULL UNIQUE,
    display_prefix TEXT NOT NULL,
    -- Comma-separated permission names; tenant ids (NULL: every tenant the owner may enter);
    -- networks in CIDR notation (NULL: from anywhere).
    permissions    TEXT NOT NULL,
    tenants        TEXT,
    networks       TEXT,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    revoked_at     BIGINT,
    last_used_at   BIGINT,
    last_used_ip   TEXT
);
CREATE INDEX api_keys_owner ON api_keys (owner, created_at);
