-- Audit lanes (issue 17 item 2, docs/audit-lanes.md): the same as migrations/sqlite/0011_audit_lanes.sql, whose
-- comments say what each column means. On PostgreSQL `seq` now comes from a sequence, so that lanes appending at
-- once take no lock to number their events; it starts after the newest event.
ALTER TABLE audit_events ADD COLUMN lane INTEGER NOT NULL DEFAULT 0, ADD COLUMN lane_seq BIGINT;
UPDATE audit_events SET lane_seq = seq;
ALTER TABLE audit_events ALTER COLUMN lane_seq SET NOT NULL;
CREATE UNIQUE INDEX audit_events_lane ON audit_events (lane, lane_seq);
-- The checkpoints (method 'audit.checkpoint', domain::audit): the check of the chain reads each lane's newest.
CREATE INDEX audit_events_checkpoints ON audit_events (lane, lane_seq) WHERE method = 'audit.checkpoint';

CREATE SEQUENCE audit_events_seq AS BIGINT;
SELECT setval('audit_events_seq', COALESCE((SELECT MAX(seq) FROM audit_events), 0) + 1, false);

CREATE TABLE audit_lanes (
    lane       INTEGER     NOT NULL PRIMARY KEY,
    holder     TEXT        NOT NULL,
    claimed_at TIMESTAMPTZ NOT NULL
);
INSERT INTO audit_lanes (lane, holder, claimed_at) VALUES (0, 'writer', 'epoch');
