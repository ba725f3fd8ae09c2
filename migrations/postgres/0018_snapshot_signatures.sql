-- Countersigned quarters (issue 19 item 2, docs/countersign.md): the same as
-- migrations/sqlite/0018_snapshot_signatures.sql, whose comments say what each column means. A new table only.
CREATE TABLE snapshot_signatures (
    quarter      TEXT        NOT NULL REFERENCES snapshots (quarter),
    agency       TEXT        NOT NULL,
    version      BIGINT      NOT NULL CHECK (version >= 1),
    content_hash BYTEA       NOT NULL,
    signed_at    TIMESTAMPTZ NOT NULL,
    signature    BYTEA       NOT NULL,
    signer_cert  BYTEA       NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL,
    recorded_by  TEXT        NOT NULL,
    PRIMARY KEY (quarter, agency, version)
);
