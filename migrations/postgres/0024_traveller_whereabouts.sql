-- Where each traveller (a staff account by its sign-ins, a client credential by the tokens issued
-- to it) was last seen, and where it was last seen before that in another country: the
-- impossible-travel detector compares each located use with this one row instead of reading the
-- traveller's recent events (which grew with issuance: ~720,000 rows per check at 100 tokens/s).
CREATE TABLE traveller_whereabouts (
    traveller_kind    TEXT NOT NULL,
    traveller_id      TEXT NOT NULL,
    last_country      TEXT NOT NULL,
    last_at           BIGINT NOT NULL,
    last_event        TEXT NOT NULL,
    elsewhere_country TEXT,
    elsewhere_at      BIGINT,
    elsewhere_event   TEXT,
    PRIMARY KEY (traveller_kind, traveller_id)
);
-- Whereabouts older than the travel window can no longer raise anything and are forgotten.
CREATE INDEX traveller_whereabouts_last_at ON traveller_whereabouts (last_at);

-- A trip under way during the upgrade is still seen: the whereabouts start from the located uses
-- of the two hours (the default window) up to where the detector has read.
WITH reached AS (
    SELECT last_at, last_id FROM detector_cursor WHERE id = 1
),
located AS (
    SELECT CASE WHEN e.event_type = 'login' THEN 'account' ELSE 'credential' END AS kind,
           CASE WHEN e.event_type = 'login' THEN e.subject ELSE e.actor_id END AS who,
           e.country, e.occurred_at, e.id
    FROM auth_events e, reached r
    WHERE e.outcome = 'success' AND e.country IS NOT NULL
      AND e.occurred_at >= r.last_at - 7200000
      AND (e.occurred_at < r.last_at OR (e.occurred_at = r.last_at AND e.id <= r.last_id))
      AND ((e.event_type = 'login' AND e.subject IS NOT NULL)
        OR (e.event_type = 'token_issued' AND e.actor_kind = 'client' AND e.actor_id IS NOT NULL))
),
ranked AS (
    SELECT kind, who, country, occurred_at, id,
           ROW_NUMBER() OVER (PARTITION BY kind, who ORDER BY occurred_at DESC, id DESC) AS n
    FROM located
),
latest AS (
    SELECT kind, who, country, occurred_at, id FROM ranked WHERE n = 1
),
elsewhere AS (
    SELECT r.kind, r.who, r.country, r.occurred_at, r.id,
           ROW_NUMBER() OVER (PARTITION BY r.kind, r.who ORDER BY r.occurred_at DESC, r.id DESC) AS n
    FROM ranked r JOIN latest l ON l.kind = r.kind AND l.who = r.who AND r.country <> l.country
)
INSERT INTO traveller_whereabouts (traveller_kind, traveller_id, last_country, last_at, last_event,
                                   elsewhere_country, elsewhere_at, elsewhere_event)
SELECT l.kind, l.who, l.country, l.occurred_at, l.id, e.country, e.occurred_at, e.id
FROM latest l LEFT JOIN elsewhere e ON e.kind = l.kind AND e.who = l.who AND e.n = 1;
