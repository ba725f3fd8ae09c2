-- Signed audit heads (issue 20 item 5, docs/audit-lanes.md "Signed heads"): the heads of every audit lane signed by
-- the hub's audit signer (`src/audit_head.rs`), kept so that `Audit.GetSignedHead` returns the newest and an operator
-- can show what was signed when. A new table only: no existing row changes. The same migration as
-- migrations/postgres/0012_signed_heads.sql.
--
-- - `signed_at`: the signing time as signed (microseconds since the Unix epoch).
-- - `heads`: every lane's head as signed, `lane:seq:hash` in lane order separated by spaces (the form of a
--   checkpoint's purpose, `domain::audit::format_heads`); "" for an empty log.
-- - `signature`: ECDSA P-256 / SHA-256, DER, over `domain::audit::head_message(signed_at, heads)`.
-- - `signer_cert`: the audit signer's certificate (PEM) that verifies it.
-- A row is added only when the heads changed since the newest one, so the table grows no faster than the log.
CREATE TABLE audit_signed_heads (
    id          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    signed_at   INTEGER NOT NULL,
    heads       TEXT    NOT NULL,
    signature   BLOB    NOT NULL,
    signer_cert TEXT    NOT NULL
);
