-- Foundation (PostgreSQL): same shape as the SQLite migration of the same version.
-- Portable shape (see DESIGN.md "Storage"): ids TEXT, times BIGINT epoch ms, JSON as TEXT.

CREATE TABLE users (
    id               TEXT PRIMARY KEY,
    email            TEXT NOT NULL,
    email_normalized TEXT NOT NULL UNIQUE,
    display_name     TEXT NOT NULL,
    password_hash    TEXT,
    status           TEXT NOT NULL CHECK (status IN ('active', 'deactivated')),
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

-- tenant_id is NULL for global roles; its foreign key arrives with the tenants table.
CREATE TABLE role_assignments (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('superadmin', 'security', 'support', 'tenant_admin')),
    tenant_id  TEXT,
    granted_by TEXT REFERENCES users (id),
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX role_assignments_unique ON role_assignments (user_id, role, COALESCE(tenant_id, ''));

-- A single row, inserted by whichever bootstrap path wins: the primary key makes it happen once.
CREATE TABLE installation (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    bootstrapped_at BIGINT NOT NULL,
    bootstrapped_by TEXT NOT NULL REFERENCES users (id)
);

CREATE TABLE setup_tokens (
    token_hash TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

-- The cookie carries the session key; only its SHA-256 is stored.
CREATE TABLE sessions (
    key_hash            TEXT PRIMARY KEY,
    user_id             TEXT REFERENCES users (id) ON DELETE CASCADE,
    state               TEXT NOT NULL,
    auth_level          TEXT,
    ip                  TEXT,
    user_agent          TEXT,
    created_at          BIGINT NOT NULL,
    authenticated_at    BIGINT,
    last_seen_at        BIGINT NOT NULL,
    idle_expires_at     BIGINT NOT NULL,
    absolute_expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_idle_expiry ON sessions (idle_expires_at);
CREATE INDEX sessions_absolute_expiry ON sessions (absolute_expires_at);

-- Append-only. id is a UUIDv7, so (occurred_at, id) orders events for keyset pagination.
CREATE TABLE auth_events (
    id          TEXT PRIMARY KEY,
    occurred_at BIGINT NOT NULL,
    tenant_id   TEXT,
    actor_kind  TEXT NOT NULL,
    actor_id    TEXT,
    subject     TEXT,
    event_type  TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    ip          TEXT,
    country     TEXT,
    user_agent  TEXT,
    request_id  TEXT,
    details     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX auth_events_time ON auth_events (occurred_at, id);
CREATE INDEX auth_events_tenant_time ON auth_events (tenant_id, occurred_at, id);
CREATE INDEX auth_events_subject_time ON auth_events (subject, occurred_at, id);
CREATE INDEX auth_events_type_time ON auth_events (event_type, occurred_at, id);
CREATE INDEX auth_events_ip_time ON auth_events (ip, occurred_at);

-- The log is append-only for the application's own statements too.
CREATE FUNCTION auth_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'auth_events is append-only';
END;
$$;
CREATE TRIGGER auth_events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON auth_events
    FOR EACH ROW EXECUTE FUNCTION auth_events_append_only();
