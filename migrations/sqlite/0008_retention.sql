-- Retention: the one way events leave the log. The append-only guard lets a DELETE through only
-- inside a purge transaction, which raises the permit and lowers it again before committing (so no
-- other connection ever sees it raised). The purge also moves the chain's anchor.

CREATE TABLE purge_permit (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    active INTEGER NOT NULL
);
INSERT INTO purge_permit (id, active) VALUES (1, 0);

DROP TRIGGER auth_events_no_delete;
CREATE TRIGGER auth_events_no_delete BEFORE DELETE ON auth_events
WHEN (SELECT active FROM purge_permit WHERE id = 1) = 0
BEGIN
    SELECT RAISE(ABORT, 'auth_events is append-only');
END;

CREATE TABLE retention_runs (
    id              TEXT PRIMARY KEY,
    ran_at          BIGINT NOT NULL,
    cutoff          BIGINT NOT NULL,
    removed         BIGINT NOT NULL,
    anchor_position BIGINT NOT NULL
);
CREATE INDEX retention_runs_recent ON retention_runs (ran_at);
