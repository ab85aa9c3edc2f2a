-- Events name the console session they belong to (its public handle, never its key), so the log
-- can show everything one session did. Only console requests carry one, hence the partial index.
ALTER TABLE auth_events ADD COLUMN session_id TEXT;
CREATE INDEX auth_events_session ON auth_events (session_id, occurred_at, id) WHERE session_id IS NOT NULL;
