-- Separated administrators (issue 20 item 1, docs/admin.md): change requests under the two-person rule. The same
-- migration as migrations/postgres/0016_admin_changes.sql. Nothing existing changes: one new table.
--
-- A change of the access matrix or a data-key rotation is requested by one security administrator (`requested_by`,
-- the operator's SPIFFE ID) and takes effect only once a different one approved it (`approved_by`) before
-- `expires_at`. The request, the approval and the application are each an audit event in the same transaction.
-- `payload` is the matrix (TOML) or the new data key's check value (64 lower-hex characters; never the key).
CREATE TABLE admin_changes (
    id           INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    kind         TEXT    NOT NULL CHECK (kind IN ('access_matrix', 'data_key_rotation')),
    payload      TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    requested_by TEXT    NOT NULL,
    requested_at INTEGER NOT NULL,               -- microseconds since the Unix epoch
    expires_at   INTEGER NOT NULL,               -- past it an unapproved request can no longer be approved
    approved_by  TEXT,                           -- NULL until approved
    approved_at  INTEGER,
    applied_by   TEXT,                           -- NULL until carried out (a rotation: `doudi keys rotate` finished)
    applied_at   INTEGER,
    CHECK (expires_at > requested_at),
    CHECK ((approved_by IS NULL) = (approved_at IS NULL)),
    CHECK (approved_by IS NULL OR approved_by <> requested_by),
    CHECK ((applied_by IS NULL) = (applied_at IS NULL)),
    CHECK (applied_by IS NULL OR approved_by IS NOT NULL)
);

-- The newest approved change of a kind (the access matrix in force at start; the rotation `doudi keys rotate` needs).
CREATE INDEX admin_changes_kind ON admin_changes (kind, id);
