-- A client secret can be retired on its own (the end of a rotation) while its credential stays
-- active, so the revocation log gets a 'secret' kind (subject: the secret's id). SQLite cannot change
-- a CHECK constraint, so the table is rebuilt as in 0011: new shape, copy (sequence numbers kept:
-- every instance's cache follows the log by them), drop, rename, index. Nothing references it.

CREATE TABLE revocations_new (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    kind          TEXT NOT NULL CHECK (kind IN ('token', 'credential', 'secret', 'key', 'tenant_suspended', 'tenant_reactivated')),
    subject       TEXT NOT NULL,
    client_id     TEXT,
    revoked_at    BIGINT NOT NULL,
    -- After this, nothing the entry covers can verify anyway, and the entry may be forgotten.
    forget_after  BIGINT
);

INSERT INTO revocations_new (seq, tenant_id, kind, subject, client_id, revoked_at, forget_after)
SELECT seq, tenant_id, kind, subject, client_id, revoked_at, forget_after FROM revocations;

DROP TABLE revocations;
ALTER TABLE revocations_new RENAME TO revocations;

CREATE INDEX revocations_tenant ON revocations (tenant_id, seq);
