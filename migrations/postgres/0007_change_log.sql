-- The change log behind RecipientExchange.WatchChanges (docs/change-feed.md).
--
-- One row per fact version written (ACCEPTED or NEW_VERSION), appended by the same transaction that writes the
-- version, so a committed fact always has its change and a rolled-back batch has none.
--
-- `cursor` is assigned by the writer inside its transaction as MAX(cursor) + 1, 2, … (explicit values, no
-- AUTOINCREMENT or rowid reliance, so the same SQL runs on PostgreSQL as BIGINT). Writers are serialized (on PostgreSQL by the
-- transaction-scoped advisory lock every write takes first, across all replicas), so transactions commit in cursor order and a reader always sees a
-- prefix 1..head of the log without holes: a watcher reading `cursor > N` never skips a row that becomes visible
-- later below a cursor it has already passed. A rolled-back transaction's cursors were never visible and are
-- reused by the next writer.
--
-- The row references the fact version (agency, fact_id, source_version) instead of copying its payload; `kind` and
-- `division_code` are copied so watchers filter before joining. `prev_version` / `prev_division` describe the version
-- a NEW_VERSION superseded (NULL for a new record), so a county office learns when a record leaves its county.
CREATE TABLE change_log (
    cursor         BIGINT  NOT NULL PRIMARY KEY,   -- 1, 2, 3, … in commit order
    agency         TEXT    NOT NULL,
    fact_id        TEXT    NOT NULL,
    source_version BIGINT  NOT NULL,
    kind           TEXT    NOT NULL,
    division_code  TEXT    NOT NULL,
    prev_version   BIGINT,                         -- the superseded version; NULL when the record is new
    prev_division  TEXT                            -- its division_code
);

-- Fact versions written before this migration have no change: the log starts empty and "from the beginning"
-- means from the first change written after the upgrade.
