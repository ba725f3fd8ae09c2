-- Countersigned quarters (issue 19 item 2, docs/countersign.md): each partner agency's signature of a frozen
-- snapshot's content hash, made with its client certificate's key and checked by the hub before it is kept
-- (`src/hub/countersign.rs`). A new table only: no existing row changes. The same migration as
-- migrations/postgres/0018_snapshot_signatures.sql.
--
-- - `version`: 1 for an agency's first signature of the quarter; a re-sign adds the next version and keeps the
--   earlier ones. The newest version is the agency's signature.
-- - `content_hash`: the hash signed (the snapshot's: the hub refuses any other).
-- - `signed_at`: the signing time as signed (microseconds since the Unix epoch).
-- - `signature`: ECDSA P-256 / SHA-256, DER, over `domain::countersign::message`.
-- - `signer_cert`: the signer's certificate, DER (issued by the hub's CA to the agency's city office).
-- - `recorded_at`, `recorded_by`: when the hub kept it and the SPIFFE ID of the caller that submitted it.
CREATE TABLE snapshot_signatures (
    quarter      TEXT    NOT NULL REFERENCES snapshots (quarter),
    agency       TEXT    NOT NULL,
    version      INTEGER NOT NULL CHECK (version >= 1),
    content_hash BLOB    NOT NULL,
    signed_at    INTEGER NOT NULL,
    signature    BLOB    NOT NULL,
    signer_cert  BLOB    NOT NULL,
    recorded_at  INTEGER NOT NULL,
    recorded_by  TEXT    NOT NULL,
    PRIMARY KEY (quarter, agency, version)
);
