-- A client secret can be retired on its own (the end of a rotation) while its credential stays
-- active, so the revocation log gets a 'secret' kind (subject: the secret's id).

ALTER TABLE revocations DROP CONSTRAINT revocations_kind_check;
ALTER TABLE revocations ADD CONSTRAINT revocations_kind_check
    CHECK (kind IN ('token', 'credential', 'secret', 'key', 'tenant_suspended', 'tenant_reactivated'));
