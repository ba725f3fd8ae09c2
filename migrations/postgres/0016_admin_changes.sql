-- Separated administrators (issue 20 item 1, docs/admin.md): change requests under the two-person rule. The same
-- migration as migrations/sqlite/0016_admin_changes.sql (its comments explain each column). Nothing existing
-- changes: one new table.
CREATE TABLE admin_changes (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         TEXT        NOT NULL CHECK (kind IN ('access_matrix', 'data_key_rotation')),
    payload      TEXT        NOT NULL,
    reason       TEXT        NOT NULL,
    requested_by TEXT        NOT NULL,
    requested_at TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    approved_by  TEXT,
    approved_at  TIMESTAMPTZ,
    applied_by   TEXT,
    applied_at   TIMESTAMPTZ,
    CHECK (expires_at > requested_at),
    CHECK ((approved_by IS NULL) = (approved_at IS NULL)),
    CHECK (approved_by IS NULL OR approved_by <> requested_by),
    CHECK ((applied_by IS NULL) = (applied_at IS NULL)),
    CHECK (applied_by IS NULL OR approved_by IS NOT NULL)
);

CREATE INDEX admin_changes_kind ON admin_changes (kind, id);
