-- Retention (PostgreSQL twin of the SQLite migration of the same version): DELETE passes the
-- append-only guard only while the purge transaction holds the permit raised.

CREATE TABLE purge_permit (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    active INTEGER NOT NULL
);
INSERT INTO purge_permit (id, active) VALUES (1, 0);

CREATE OR REPLACE FUNCTION auth_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND (SELECT active FROM purge_permit WHERE id = 1) = 1 THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'auth_events is append-only';
END;
$$;

CREATE TABLE retention_runs (
    id              TEXT PRIMARY KEY,
    ran_at          BIGINT NOT NULL,
    cutoff          BIGINT NOT NULL,
    removed         BIGINT NOT NULL,
    anchor_position BIGINT NOT NULL
);
CREATE INDEX retention_runs_recent ON retention_runs (ran_at);
