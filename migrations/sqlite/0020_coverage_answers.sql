-- Answers to coverage findings (issue 19 item 1, docs/findings.md): the agency a snapshot's coverage finding names
-- records IN_PROGRESS, FIXED (naming the fact version that fixes it, checked by the hub against the stored facts) or
-- DISPUTED (with a reason). A new table only: no existing row changes, and the snapshot's rows (and so its content
-- hash) are untouched. The same migration as migrations/postgres/0020_coverage_answers.sql.
--
-- - (`quarter`, `code`, `person_key`): the finding answered (snapshot_coverage's key; its finding_id is
--   `coverage/<quarter>/<code>/<hex person_key>`).
-- - `version`: 1 for the finding's first answer; each answer adds the next version and keeps the earlier ones.
-- - `state`: IN_PROGRESS | FIXED | DISPUTED.
-- - `fixed_agency`, `fixed_fact_id`, `fixed_source_version`: FIXED's fact version (else NULL).
-- - `reason`: DISPUTED's reason (and an optional note on the others; '' when none).
-- - `answered_at`, `answered_by`: when the hub kept it (microseconds since the Unix epoch) and the caller's SPIFFE ID.
CREATE TABLE coverage_answers (
    quarter              TEXT    NOT NULL,
    code                 TEXT    NOT NULL,
    person_key           BLOB    NOT NULL,
    version              INTEGER NOT NULL CHECK (version >= 1),
    state                TEXT    NOT NULL CHECK (state IN ('IN_PROGRESS', 'FIXED', 'DISPUTED')),
    fixed_agency         TEXT,
    fixed_fact_id        TEXT,
    fixed_source_version INTEGER,
    reason               TEXT    NOT NULL,
    answered_at          INTEGER NOT NULL,
    answered_by          TEXT    NOT NULL,
    PRIMARY KEY (quarter, code, person_key, version),
    FOREIGN KEY (quarter, code, person_key) REFERENCES snapshot_coverage (quarter, code, person_key),
    CHECK ((state = 'FIXED') = (fixed_agency IS NOT NULL AND fixed_fact_id IS NOT NULL
                                AND fixed_source_version IS NOT NULL))
);
