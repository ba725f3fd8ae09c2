-- Retention (issue 20 item 3, docs/retention.md): retention periods as data, legal holds, and tombstones. The same
-- migration as migrations/sqlite/0015_retention.sql (its comments explain each column). Nothing existing changes: two
-- nullable columns (NULL = not purged, what every existing row is) and two new tables.
ALTER TABLE audit_events ADD COLUMN purged_at TIMESTAMPTZ;
ALTER TABLE facts ADD COLUMN purged_at TIMESTAMPTZ;

CREATE TABLE retention_policy (
    kind     TEXT        NOT NULL PRIMARY KEY,
    days     INTEGER     NOT NULL CHECK (days >= min_days),
    min_days INTEGER     NOT NULL CHECK (min_days >= 1),
    source   TEXT        NOT NULL,
    set_at   TIMESTAMPTZ NOT NULL,
    set_by   TEXT        NOT NULL
);

INSERT INTO retention_policy (kind, days, min_days, source, set_at, set_by) VALUES
    ('audit_persons', 366, 180,
     '《网络安全法》第二十一条: network logs kept no less than six months (floor 180 days); GB/T 22239-2019 level 3 '
     || 'security audit; default 366 days: at least one calendar year, one annual review cycle (docs/retention.md)',
     now(), 'migration 0015_retention'),
    ('change_log', 366, 1,
     'docs/retention.md: a watcher more than a year behind re-reads the state (docs/change-feed.md "Retention")',
     now(), 'migration 0015_retention'),
    ('fact_version', 1827, 1,
     'docs/retention.md: superseded fact versions five years after they were superseded (the documented policy; '
     || 'a city replaces it with its archive rules)',
     now(), 'migration 0015_retention'),
    ('settlement', 1827, 1,
     'docs/retention.md: five years after settlement (not purged yet: docs/retention.md "Settlements")',
     now(), 'migration 0015_retention');

CREATE TABLE retention_holds (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope          TEXT        NOT NULL CHECK (scope IN ('person', 'quarter')),
    person_key     BYTEA,
    quarter        TEXT,
    from_date      DATE,
    to_date        DATE,
    from_at        TIMESTAMPTZ,
    to_at          TIMESTAMPTZ,
    reason         TEXT        NOT NULL,
    placed_at      TIMESTAMPTZ NOT NULL,
    placed_by      TEXT        NOT NULL,
    released_at    TIMESTAMPTZ,
    released_by    TEXT,
    release_reason TEXT,
    CHECK ((scope = 'person' AND person_key IS NOT NULL AND quarter IS NULL)
        OR (scope = 'quarter' AND person_key IS NULL AND quarter IS NOT NULL AND from_date IS NOT NULL
            AND to_date IS NOT NULL AND from_at IS NOT NULL AND to_at IS NOT NULL))
);
