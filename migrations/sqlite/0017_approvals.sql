-- Four-eyes approvals: one table for every dangerous action waiting for a second person. The
-- action is its kind plus typed columns (the tenant, the person it is about, and a kind-specific
-- target: a key id, a role, a role assignment); `dedupe` names what it would change, so the same
-- change cannot wait twice. Claiming a pending row (status pending → executed, not expired) is the
-- one conditional update that makes execution happen once however many instances race.
CREATE TABLE approvals (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    tenant_id       TEXT REFERENCES tenants (id),
    subject_user_id TEXT REFERENCES users (id),
    target          TEXT NOT NULL DEFAULT '',
    -- What the typed columns cannot hold (an invitee's address and name), as JSON.
    details         TEXT NOT NULL DEFAULT '{}',
    dedupe          TEXT NOT NULL,
    reason          TEXT NOT NULL,
    requested_by    TEXT NOT NULL REFERENCES users (id),
    requested_at    BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'executed', 'rejected', 'cancelled', 'expired')),
    decided_by      TEXT REFERENCES users (id),
    decided_at      BIGINT,
    decision_note   TEXT
);
CREATE UNIQUE INDEX approvals_one_pending ON approvals (dedupe) WHERE status = 'pending';
CREATE INDEX approvals_pending_expiry ON approvals (expires_at) WHERE status = 'pending';
CREATE INDEX approvals_newest ON approvals (requested_at, id);

-- Emergency key replacements waiting today move over; decided ones stay in the event log.
INSERT INTO approvals (id, kind, tenant_id, target, dedupe, reason, requested_by, requested_at, expires_at, status)
SELECT id, 'replace_signing_key', tenant_id, kid, 'replace_signing_key:' || tenant_id, reason, requested_by,
       requested_at, expires_at, 'pending'
FROM pending_key_actions WHERE status = 'pending';
DROP TABLE pending_key_actions;
