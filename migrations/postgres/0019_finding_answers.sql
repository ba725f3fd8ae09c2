-- Answers to findings (issue 19 item 1, docs/findings.md): the same as migrations/sqlite/0019_finding_answers.sql,
-- whose comments say what each column means. A new table only.
CREATE TABLE finding_answers (
    agency               TEXT        NOT NULL,
    settlement_id        TEXT        NOT NULL,
    code                 TEXT        NOT NULL,
    version              BIGINT      NOT NULL CHECK (version >= 1),
    state                TEXT        NOT NULL CHECK (state IN ('IN_PROGRESS', 'FIXED', 'DISPUTED')),
    fixed_agency         TEXT,
    fixed_fact_id        TEXT,
    fixed_source_version BIGINT,
    fixed_settlement_id  TEXT,
    reason               TEXT        NOT NULL,
    answered_at          TIMESTAMPTZ NOT NULL,
    answered_by          TEXT        NOT NULL,
    PRIMARY KEY (agency, settlement_id, code, version),
    FOREIGN KEY (agency, settlement_id, code) REFERENCES medical_findings (agency, settlement_id, code)
);
