-- What a client credential may do beyond authenticating: the networks it may call from (CIDRs,
-- comma-separated; NULL: anywhere), how many tokens it may obtain per minute (counted across instances in
-- `issuance_windows`), and whether its tokens must be bound to a key (DPoP). A tenant may require
-- DPoP proofs to carry a server nonce (RFC 9449 §8).
ALTER TABLE credentials ADD COLUMN allowed_networks TEXT;
ALTER TABLE credentials ADD COLUMN tokens_per_minute INTEGER NOT NULL DEFAULT 60;
ALTER TABLE credentials ADD COLUMN require_dpop INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN dpop_nonce INTEGER NOT NULL DEFAULT 0;

-- Tokens issued per credential in the current fixed one-minute window. The count moves in the
-- same transaction as the token's own row, so a refused or failed issuance never counts.
CREATE TABLE issuance_windows (
    credential_id TEXT PRIMARY KEY REFERENCES credentials (id),
    window_start  BIGINT NOT NULL,
    issued        BIGINT NOT NULL
);

-- Secrets every instance must share and nobody types (the DPoP nonce key, the key that signs
-- state handed to anonymous browsers): created once by whichever instance needs one first.
CREATE TABLE installation_secrets (
    name       TEXT PRIMARY KEY,
    secret     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
