-- Twin of the SQLite migration of the same version, which gives role_assignments.tenant_id the
-- foreign key to tenants that PostgreSQL has had since 0003 (role_assignments_tenant_fk): nothing
-- to change here.
SELECT 1;
