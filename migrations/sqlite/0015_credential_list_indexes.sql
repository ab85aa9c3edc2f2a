-- A grant's credentials newest first straight from an index (the partner and grant filters of the
-- credentials list), and a tenant's secrets by their displayed prefix (the prefix filter).
DROP INDEX credentials_grant;
CREATE INDEX credentials_grant ON credentials (grant_id, created_at, id);
CREATE INDEX credential_secrets_prefix ON credential_secrets (tenant_id, display_prefix);
