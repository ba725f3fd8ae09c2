-- Answers to coverage findings (issue 19 item 1, docs/findings.md): the same as
-- migrations/sqlite/0020_coverage_answers.sql, whose comments say what each column means. A new table only.
CREATE TABLE coverage_answers (
    quarter              TEXT        NOT NULL,
    code                 TEXT        NOT NULL,
    person_key           BYTEA       NOT NULL,
    version              BIGINT      NOT NULL CHECK (version >= 1),
    state                TEXT        NOT NULL CHECK (state IN ('IN_PROGRESS', 'FIXED', 'DISPUTED')),
    fixed_agency         TEXT,
    fixed_fact_id        TEXT,
    fixed_source_version BIGINT,
    reason               TEXT        NOT NULL,
    answered_at          TIMESTAMPTZ NOT NULL,
    answered_by          TEXT        NOT NULL,
    PRIMARY KEY (quarter, code, person_key, version),
    FOREIGN KEY (quarter, code, person_key) REFERENCES snapshot_coverage (quarter, code, person_key),
    CHECK ((state = 'FIXED') = (fixed_agency IS NOT NULL AND fixed_fact_id IS NOT NULL
                                AND fixed_source_version IS NOT NULL))
);
