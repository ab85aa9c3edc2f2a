-- The event log's text filter matches the subject or the actor: both indexed.
CREATE INDEX auth_events_actor_time ON auth_events (actor_id, occurred_at, id);
