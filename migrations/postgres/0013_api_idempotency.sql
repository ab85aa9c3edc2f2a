-- Idempotency-Key on the automation API's creating POSTs: the first result of a key (per automation
-- key), replayed for 24 hours to a retry with the same body. A row without a status is a request
-- still in progress.

CREATE TABLE api_idempotency (
    api_key         TEXT NOT NULL REFERENCES api_keys (id),
    idempotency_key TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    status          INTEGER,
    content_type    TEXT,
    body            TEXT,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (api_key, idempotency_key)
);
CREATE INDEX api_idempotency_created ON api_idempotency (created_at);
