-- Answers to findings (issue 19 item 1, docs/findings.md): the agency a medical finding names records IN_PROGRESS,
-- FIXED (naming the fact version or settlement that fixes it, checked by the hub against the stored facts) or
-- DISPUTED (with a reason). A new table only: no existing row changes. The same migration as
-- migrations/postgres/0019_finding_answers.sql.
--
-- - (`agency`, `settlement_id`, `code`): the finding answered (medical_findings' key; its finding_id is
--   `medical/<agency>/<settlement_id>/<code>`).
-- - `version`: 1 for the finding's first answer; each answer adds the next version and keeps the earlier ones. The
--   newest version is the finding's answer.
-- - `state`: IN_PROGRESS | FIXED | DISPUTED.
-- - `fixed_agency`, `fixed_fact_id`, `fixed_source_version`: FIXED by a fact version (else NULL).
-- - `fixed_settlement_id`: FIXED by a settlement correction of the finding's settlement agency (else NULL).
-- - `reason`: DISPUTED's reason (and an optional note on the others; '' when none).
-- - `answered_at`, `answered_by`: when the hub kept it (microseconds since the Unix epoch) and the caller's SPIFFE ID.
CREATE TABLE finding_answers (
    agency               TEXT    NOT NULL,
    settlement_id        TEXT    NOT NULL,
    code                 TEXT    NOT NULL,
    version              INTEGER NOT NULL CHECK (version >= 1),
    state                TEXT    NOT NULL CHECK (state IN ('IN_PROGRESS', 'FIXED', 'DISPUTED')),
    fixed_agency         TEXT,
    fixed_fact_id        TEXT,
    fixed_source_version INTEGER,
    fixed_settlement_id  TEXT,
    reason               TEXT    NOT NULL,
    answered_at          INTEGER NOT NULL,
    answered_by          TEXT    NOT NULL,
    PRIMARY KEY (agency, settlement_id, code, version),
    FOREIGN KEY (agency, settlement_id, code) REFERENCES medical_findings (agency, settlement_id, code)
);
