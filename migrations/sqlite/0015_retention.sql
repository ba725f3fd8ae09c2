-- Retention (issue 20 item 3, docs/retention.md): retention periods as data, legal holds, and tombstones. The same
-- migration as migrations/postgres/0015_retention.sql. Nothing existing changes: two nullable columns (NULL = not
-- purged, what every existing row is) and two new tables.
--
-- - `audit_events.purged_at`: when a purge deleted the event's `audit_persons` rows (who was looked at). The row
--   itself stays, with its `persons_hash`, `person_count` and `hash`: the chain check trusts the stored persons hash
--   of a purged event that has no person rows left, and still recomputes the event's hash from the row.
-- - `facts.purged_at`: when a purge cleared a superseded version's payload ('') and the columns derived from it
--   (program, status, residence, benefit_fen → NULL). Its key, person, division, validity, times and `content_hash`
--   stay: snapshots still verify against it. A current version is never purged.
ALTER TABLE audit_events ADD COLUMN purged_at INTEGER;   -- microseconds since the Unix epoch; NULL: not purged
ALTER TABLE facts ADD COLUMN purged_at INTEGER;          -- microseconds since the Unix epoch; NULL: not purged

-- One retention period per kind of record. `min_days` is the floor a `doudi retention set` may not go below (audit:
-- 180 days, 《网络安全法》第二十一条). `source` says where the period comes from; `set_at`/`set_by` who set it last
-- (the migration for the defaults). Every change is also an audit event (method 'doudi retention set').
CREATE TABLE retention_policy (
    kind     TEXT    NOT NULL PRIMARY KEY,   -- 'audit_persons' | 'change_log' | 'fact_version' | 'settlement'
    days     INTEGER NOT NULL CHECK (days >= min_days),
    min_days INTEGER NOT NULL CHECK (min_days >= 1),
    source   TEXT    NOT NULL,
    set_at   INTEGER NOT NULL,               -- microseconds since the Unix epoch
    set_by   TEXT    NOT NULL
);

INSERT INTO retention_policy (kind, days, min_days, source, set_at, set_by) VALUES
    ('audit_persons', 366, 180,
     '《网络安全法》第二十一条: network logs kept no less than six months (floor 180 days); GB/T 22239-2019 level 3 '
     || 'security audit; default 366 days: at least one calendar year, one annual review cycle (docs/retention.md)',
     CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER), 'migration 0015_retention'),
    ('change_log', 366, 1,
     'docs/retention.md: a watcher more than a year behind re-reads the state (docs/change-feed.md "Retention")',
     CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER), 'migration 0015_retention'),
    ('fact_version', 1827, 1,
     'docs/retention.md: superseded fact versions five years after they were superseded (the documented policy; '
     || 'a city replaces it with its archive rules)',
     CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER), 'migration 0015_retention'),
    ('settlement', 1827, 1,
     'docs/retention.md: five years after settlement (not purged yet: docs/retention.md "Settlements")',
     CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER), 'migration 0015_retention');

-- Legal holds: a held person's or quarter's records are never purged. A hold is released, never deleted.
-- A person is named by the hub's person key (HMAC of the ID number): the ID number itself is not stored here.
-- A quarter holds the audit events of its time span (Asia/Shanghai: `from_at` inclusive, `to_at` exclusive) and the
-- fact versions in force at some day of it (`from_date` inclusive, `to_date` exclusive).
CREATE TABLE retention_holds (
    id             INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    scope          TEXT    NOT NULL CHECK (scope IN ('person', 'quarter')),
    person_key     BLOB,                    -- scope 'person'
    quarter        TEXT,                    -- scope 'quarter', 'YYYYQn'
    from_date      TEXT,                    -- scope 'quarter': its first day
    to_date        TEXT,                    -- scope 'quarter': the next quarter's first day
    from_at        INTEGER,                 -- scope 'quarter': its first instant (00:00 +08:00), microseconds
    to_at          INTEGER,                 -- scope 'quarter': the next quarter's first instant
    reason         TEXT    NOT NULL,
    placed_at      INTEGER NOT NULL,
    placed_by      TEXT    NOT NULL,
    released_at    INTEGER,                 -- NULL while the hold is in force
    released_by    TEXT,
    release_reason TEXT,
    CHECK ((scope = 'person' AND person_key IS NOT NULL AND quarter IS NULL)
        OR (scope = 'quarter' AND person_key IS NULL AND quarter IS NOT NULL AND from_date IS NOT NULL
            AND to_date IS NOT NULL AND from_at IS NOT NULL AND to_at IS NOT NULL))
);
