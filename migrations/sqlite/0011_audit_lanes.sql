-- Audit lanes (issue 17 item 2, docs/audit-lanes.md): the audit log becomes a set of hash chains ("lanes") that
-- append independently, so that audited reads on several PostgreSQL replicas take no hub-wide lock. The same
-- migration as migrations/postgres/0011_audit_lanes.sql.
--
-- - `audit_events.lane`: the chain an event belongs to. Lane 0 is the writer's lane: every event written so far and
--   every event of a write transaction (pushes, reports, warnings, settlements, snapshots). On PostgreSQL each hub
--   process also claims a lane of its own (1, 2, …) for the audit events of its reads. SQLite has one process and
--   one writer, so everything stays in lane 0 here.
-- - `audit_events.lane_seq`: the event's position in its lane (1, 2, … without gaps): the `seq` the canonical form
--   hashes. Every existing event keeps its hash: for lane 0, `lane_seq` = `seq`.
-- - `audit_events.seq` stays the primary key and the log's order (ListAccessEvents, `audit_persons`); it is unique
--   across lanes and may have gaps on PostgreSQL (a sequence).
-- - `audit_lanes`: one row per lane and the process that holds it (`holder`, a random token). A lane append locks
--   its lane's row and finds it still held by its process (fencing).
ALTER TABLE audit_events ADD COLUMN lane INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_events ADD COLUMN lane_seq INTEGER NOT NULL DEFAULT 0;
UPDATE audit_events SET lane_seq = seq;
CREATE UNIQUE INDEX audit_events_lane ON audit_events (lane, lane_seq);
-- The checkpoints (method 'audit.checkpoint', domain::audit): the check of the chain reads each lane's newest.
CREATE INDEX audit_events_checkpoints ON audit_events (lane, lane_seq) WHERE method = 'audit.checkpoint';

CREATE TABLE audit_lanes (
    lane       INTEGER NOT NULL PRIMARY KEY,
    holder     TEXT    NOT NULL,   -- 'writer' for lane 0; a process's random token for a read lane
    claimed_at INTEGER NOT NULL    -- microseconds since the Unix epoch
);
INSERT INTO audit_lanes (lane, holder, claimed_at) VALUES (0, 'writer', 0);
