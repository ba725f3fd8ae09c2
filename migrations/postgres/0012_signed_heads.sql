-- Signed audit heads (issue 20 item 5, docs/audit-lanes.md "Signed heads"): the same as
-- migrations/sqlite/0012_signed_heads.sql, whose comments say what each column means. A new table only.
CREATE TABLE audit_signed_heads (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    signed_at   TIMESTAMPTZ NOT NULL,
    heads       TEXT        NOT NULL,
    signature   BYTEA       NOT NULL,
    signer_cert TEXT        NOT NULL
);
