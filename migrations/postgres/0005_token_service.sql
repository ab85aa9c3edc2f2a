-- Token service (PostgreSQL twin of the SQLite migration of the same version).

-- A key is published (JWKS) from creation: next → active (signs) → retiring (verifies only) →
-- retired (gone from the JWKS). The private key is sealed with the key-encryption key; the tenant
-- and kid are its associated data, so a sealed key copied to another row does not open.
CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants (id),
    algorithm      TEXT NOT NULL CHECK (algorithm IN ('EdDSA', 'ES256')),
    state          TEXT NOT NULL CHECK (state IN ('next', 'active', 'retiring', 'retired')),
    public_jwk     TEXT NOT NULL,
    sealed_private TEXT NOT NULL,
    kek_id         TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    -- A next key may sign from this time on: published longer than any JWKS cache keeps a copy.
    usable_from    BIGINT NOT NULL,
    activated_at   BIGINT,
    retiring_at    BIGINT,
    -- Every token this key signed has expired by then.
    retire_after   BIGINT,
    retired_at     BIGINT,
    retired_reason TEXT,
    updated_at     BIGINT NOT NULL
);
-- At most one active and one next key per tenant: two instances rotating at once cannot both win.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (tenant_id) WHERE state = 'active';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (tenant_id) WHERE state = 'next';
CREATE INDEX signing_keys_tenant ON signing_keys (tenant_id, created_at);
CREATE INDEX signing_keys_changes ON signing_keys (updated_at);

CREATE TABLE access_tokens (
    jti           TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    credential_id TEXT NOT NULL REFERENCES credentials (id),
    client_id     TEXT NOT NULL,
    kid           TEXT NOT NULL REFERENCES signing_keys (kid),
    scopes        TEXT NOT NULL,
    issued_at     BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    ip            TEXT,
    revoked_at    BIGINT
);
CREATE INDEX access_tokens_kid ON access_tokens (kid, expires_at);
CREATE INDEX access_tokens_expiry ON access_tokens (expires_at);

-- Append-only log of revocations. `seq` is the feed's cursor; writers serialise on it so a
-- reader that has seen seq N has seen everything before N.
CREATE TABLE revocations (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    kind          TEXT NOT NULL CHECK (kind IN ('token', 'credential', 'key', 'tenant_suspended', 'tenant_reactivated')),
    subject       TEXT NOT NULL,
    client_id     TEXT,
    revoked_at    BIGINT NOT NULL,
    -- After this, nothing the entry covers can verify anyway, and the entry may be forgotten.
    forget_after  BIGINT
);
CREATE INDEX revocations_tenant ON revocations (tenant_id, seq);

-- Emergency key replacement waits here for a second superadmin.
CREATE TABLE pending_key_actions (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    kid           TEXT NOT NULL REFERENCES signing_keys (kid),
    reason        TEXT NOT NULL,
    requested_by  TEXT NOT NULL REFERENCES users (id),
    requested_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'cancelled')),
    decided_by    TEXT REFERENCES users (id),
    decided_at    BIGINT
);
CREATE UNIQUE INDEX pending_key_actions_one ON pending_key_actions (tenant_id) WHERE status = 'pending';

-- Resource servers (gateways) may introspect tokens and read the revocation feed.
ALTER TABLE credentials ADD COLUMN may_introspect INTEGER NOT NULL DEFAULT 0;
