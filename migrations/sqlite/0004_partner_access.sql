-- Partner access: scope catalogue, access requests, grants, credentials and their secrets.
-- Every table carries tenant_id, and every tenant-scoped query filters on it.

CREATE TABLE scopes (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX scopes_tenant_name ON scopes (tenant_id, name);

CREATE TABLE access_requests (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL REFERENCES tenants (id),
    organisation       TEXT NOT NULL,
    contact_name       TEXT NOT NULL,
    email              TEXT NOT NULL,
    email_normalized   TEXT NOT NULL,
    scopes             TEXT NOT NULL,
    justification      TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('unconfirmed', 'pending', 'approved', 'denied', 'withdrawn', 'expired')),
    confirm_token_hash TEXT NOT NULL UNIQUE,
    ip                 TEXT,
    created_at         BIGINT NOT NULL,
    confirmed_at       BIGINT,
    decided_at         BIGINT,
    decided_by         TEXT REFERENCES users (id),
    decision_reason    TEXT,
    grant_id           TEXT
);
CREATE INDEX access_requests_queue ON access_requests (tenant_id, status, created_at, id);

CREATE TABLE grants (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants (id),
    request_id        TEXT NOT NULL REFERENCES access_requests (id),
    organisation      TEXT NOT NULL,
    contact_email     TEXT NOT NULL,
    scopes            TEXT NOT NULL,
    max_lifetime_days INTEGER NOT NULL,
    created_at        BIGINT NOT NULL,
    created_by        TEXT NOT NULL REFERENCES users (id),
    revoked_at        BIGINT,
    revoked_by        TEXT REFERENCES users (id),
    revoke_reason     TEXT
);
CREATE INDEX grants_tenant ON grants (tenant_id, created_at, id);

CREATE TABLE credentials (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    grant_id      TEXT NOT NULL REFERENCES grants (id),
    kind          TEXT NOT NULL CHECK (kind IN ('api_token', 'client')),
    client_id     TEXT UNIQUE,
    status        TEXT NOT NULL CHECK (status IN ('active', 'revoked', 'expired')),
    created_at    BIGINT NOT NULL,
    created_by    TEXT NOT NULL REFERENCES users (id),
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT,
    revoked_by    TEXT,
    revoke_reason TEXT,
    last_used_at  BIGINT,
    last_used_ip  TEXT,
    expiry_notice_at BIGINT
);
CREATE INDEX credentials_tenant_list ON credentials (tenant_id, created_at, id);
CREATE INDEX credentials_grant ON credentials (grant_id);
CREATE INDEX credentials_expiry ON credentials (status, expires_at);

-- A secret does not exist until the partner opens the retrieval link: it is generated then, shown
-- once, and only its SHA-256 is kept. Until then the row holds only the link's hash.
CREATE TABLE credential_secrets (
    id                   TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL REFERENCES tenants (id),
    credential_id        TEXT NOT NULL REFERENCES credentials (id),
    secret_hash          TEXT UNIQUE,
    display_prefix       TEXT,
    created_at           BIGINT NOT NULL,
    expires_at           BIGINT NOT NULL,
    retrieval_token_hash TEXT NOT NULL UNIQUE,
    retrieval_expires_at BIGINT NOT NULL,
    retrieved_at         BIGINT,
    revoked_at           BIGINT
);
CREATE INDEX credential_secrets_credential ON credential_secrets (credential_id);
