-- Tamper evidence for the event log: events are sealed, in (occurred_at, id) order, into a hash
-- chain kept beside them (auth_events itself stays append-only and insertion stays one plain
-- INSERT). Each link's hash covers the previous hash and every field of its event, so editing or
-- deleting a sealed event by hand breaks the chain at that link.

CREATE TABLE event_chain (
    position  BIGINT PRIMARY KEY,
    event_id  TEXT NOT NULL UNIQUE,
    hash      TEXT NOT NULL,
    sealed_at BIGINT NOT NULL
);

-- The one head: the last sealed link, and the anchor retention leaves when it purges old events
-- (the chain verifies from the anchor's hash onwards).
CREATE TABLE event_chain_head (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    position        BIGINT NOT NULL,
    hash            TEXT NOT NULL,
    last_at         BIGINT NOT NULL,
    last_id         TEXT NOT NULL,
    anchor_position BIGINT NOT NULL,
    anchor_hash     TEXT NOT NULL,
    updated_at      BIGINT NOT NULL
);
INSERT INTO event_chain_head (id, position, hash, last_at, last_id, anchor_position, anchor_hash, updated_at)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0, '', 0,
        '0000000000000000000000000000000000000000000000000000000000000000', 0);

CREATE TABLE audit_verifications (
    id              TEXT PRIMARY KEY,
    started_at      BIGINT NOT NULL,
    finished_at     BIGINT NOT NULL,
    ok              INTEGER NOT NULL,
    checked         BIGINT NOT NULL,
    broken_position BIGINT,
    broken_event    TEXT,
    problem         TEXT,
    run_by          TEXT NOT NULL
);
CREATE INDEX audit_verifications_recent ON audit_verifications (finished_at);
