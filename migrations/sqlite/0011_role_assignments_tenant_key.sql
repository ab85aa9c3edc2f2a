-- role_assignments.tenant_id gets the foreign key to tenants that PostgreSQL has had since 0003
-- (0001 promised it "with the tenants table"; SQLite's 0003 only added the index). SQLite cannot
-- add a constraint to a table, so the table is rebuilt: create the new shape, copy the rows, drop
-- the old table, rename the new one, recreate the indexes (the table has no triggers).
--
-- The migrator runs this in a transaction on a connection with foreign_keys ON (src/store/mod.rs),
-- where that pragma cannot be switched off. That is safe here: no table references
-- role_assignments, so dropping the old table deletes nothing elsewhere, and the copy is checked
-- against the new key as it is inserted.
--
-- Rows whose tenant no longer exists are dropped, not copied: the new key would make the copy fail
-- on them. The application never deletes tenants, so only a hand-edited database has such rows,
-- and a role in a tenant that does not exist grants nothing.

CREATE TABLE role_assignments_new (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('superadmin', 'security', 'support', 'tenant_admin')),
    tenant_id  TEXT REFERENCES tenants (id),
    granted_by TEXT REFERENCES users (id),
    created_at BIGINT NOT NULL
);

INSERT INTO role_assignments_new (id, user_id, role, tenant_id, granted_by, created_at)
SELECT id, user_id, role, tenant_id, granted_by, created_at
FROM role_assignments
WHERE tenant_id IS NULL OR tenant_id IN (SELECT id FROM tenants);

DROP TABLE role_assignments;
ALTER TABLE role_assignments_new RENAME TO role_assignments;

CREATE UNIQUE INDEX role_assignments_unique ON role_assignments (user_id, role, COALESCE(tenant_id, ''));
CREATE INDEX role_assignments_tenant ON role_assignments (tenant_id);
