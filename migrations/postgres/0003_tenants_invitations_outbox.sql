-- Tenants, staff invitations and the e-mail outbox (PostgreSQL twin).

CREATE TABLE tenants (
    id           TEXT PRIMARY KEY,
    slug         TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    brand_colour TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    logo         BYTEA,
    logo_type    TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX tenants_name ON tenants (name);

-- Single-use invitations: only the SHA-256 of the link's token is kept. The role to grant travels
-- with the invitation and is assigned when it is accepted.
CREATE TABLE invitations (
    id           TEXT PRIMARY KEY,
    email        TEXT NOT NULL,
    email_normalized TEXT NOT NULL,
    display_name TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('superadmin', 'security', 'support', 'tenant_admin')),
    tenant_id    TEXT REFERENCES tenants (id),
    token_hash   TEXT NOT NULL UNIQUE,
    invited_by   TEXT NOT NULL REFERENCES users (id),
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    accepted_at  BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX invitations_email ON invitations (email_normalized);

-- Messages wait here until the sender delivers them; a lease lets several instances share the work
-- without sending anything twice.
CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body_text       TEXT NOT NULL,
    body_html       TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    sent_at         BIGINT,
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox (sent_at, next_attempt_at);

CREATE INDEX role_assignments_tenant ON role_assignments (tenant_id);
ALTER TABLE role_assignments ADD CONSTRAINT role_assignments_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id);
