-- Public keys a client credential authenticates with (private_key_jwt, RFC 7523): one or two per
-- credential (two for rotation), each an RFC 7517 JWK without private members, named by its RFC
-- 7638 thumbprint. Removal keeps the row (who added what, when) and stops it authenticating.
CREATE TABLE credential_keys (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    credential_id TEXT NOT NULL REFERENCES credentials (id),
    thumbprint    TEXT NOT NULL,
    algorithm     TEXT NOT NULL,
    public_jwk    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    created_by    TEXT REFERENCES users (id),
    removed_at    BIGINT,
    removed_by    TEXT REFERENCES users (id)
);
CREATE UNIQUE INDEX credential_keys_live ON credential_keys (credential_id, thumbprint) WHERE removed_at IS NULL;
CREATE INDEX credential_keys_of ON credential_keys (credential_id, created_at);

-- Client assertion ids already accepted, until the assertion expires: a replay is refused on every
-- instance (the insert collides).
CREATE TABLE used_assertions (
    digest     TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX used_assertions_expiry ON used_assertions (expires_at);
