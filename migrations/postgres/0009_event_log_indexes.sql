-- The event log's text filter matches the subject or the actor: both indexed. Network filters are
-- byte-order ranges on the address text, whatever the database's collation.
CREATE INDEX auth_events_actor_time ON auth_events (actor_id, occurred_at, id);
CREATE INDEX auth_events_ip_bytes ON auth_events ((ip COLLATE "C"), occurred_at);
