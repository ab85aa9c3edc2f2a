-- Suspicious-activity alerts raised by the detectors, with their evidence and the work done on them.

CREATE TABLE alerts (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT REFERENCES tenants (id),
    detector   TEXT NOT NULL,
    severity   TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high')),
    status     TEXT NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved', 'false_positive')),
    reason     TEXT NOT NULL,
    subject    TEXT,
    -- One alert per detector, subject and window: a burst of a hundred failures is one alert.
    dedup_key  TEXT NOT NULL UNIQUE,
    assignee   TEXT REFERENCES users (id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX alerts_queue ON alerts (status, created_at, id);
CREATE INDEX alerts_tenant ON alerts (tenant_id, status, created_at, id);

CREATE TABLE alert_evidence (
    alert_id TEXT NOT NULL REFERENCES alerts (id),
    event_id TEXT NOT NULL,
    PRIMARY KEY (alert_id, event_id)
);

CREATE TABLE alert_notes (
    id         TEXT PRIMARY KEY,
    alert_id   TEXT NOT NULL REFERENCES alerts (id),
    author     TEXT NOT NULL REFERENCES users (id),
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX alert_notes_alert ON alert_notes (alert_id, created_at);

-- How far the detectors have read the event log; moved only from where a pass read it, so each
-- event is examined once however many instances run the pass.
CREATE TABLE detector_cursor (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    last_at    BIGINT NOT NULL,
    last_id    TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
INSERT INTO detector_cursor (id, last_at, last_id, updated_at) VALUES (1, 0, '', 0);
