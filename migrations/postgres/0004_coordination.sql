-- Monthly fund disbursement reports and early warnings (coordination.md; issue 4).

-- Every version of a county's report for (month, program) is kept; the highest version is the latest.
CREATE TABLE fund_reports (
    county_code   TEXT    NOT NULL,             -- 6-digit county code
    month         TEXT    NOT NULL,             -- YYYY-MM
    program       TEXT    NOT NULL,             -- URBAN_DIBAO, RURAL_DIBAO, TEKUN, ...
    version       BIGINT  NOT NULL,             -- 1, 2, ...
    disbursed_on  DATE    NOT NULL,
    amount        NUMERIC(18,2) NOT NULL,       -- yuan
    recipients    BIGINT  NOT NULL,
    submitted_at  TIMESTAMPTZ NOT NULL,
    submitted_by  TEXT    NOT NULL,             -- agency code, '/county' for a county office
    PRIMARY KEY (county_code, month, program, version)
);
CREATE INDEX fund_reports_by_month ON fund_reports (month, program);

-- Early warnings: one row per (pushing agency, warning_id), updated as the workflow advances.
-- The person is held as its HMAC key only (the encrypted ID number is in `persons`).
CREATE TABLE warnings (
    agency          TEXT    NOT NULL,           -- pushing agency
    warning_id      TEXT    NOT NULL,
    person_key      BYTEA    NOT NULL REFERENCES persons (person_key),
    division_code   TEXT    NOT NULL,           -- county, township or village
    county_code     TEXT    NOT NULL,           -- first 6 digits of division_code
    reason          TEXT    NOT NULL,
    received_at     TIMESTAMPTZ NOT NULL,
    content_hash    BYTEA    NOT NULL,           -- for DUPLICATE / CONFLICT on a re-push
    state           TEXT    NOT NULL CHECK (state IN ('RECEIVED','VISITED','DECIDED','CLOSED')),
    visited_on      DATE,
    decided_on      DATE,
    decision        TEXT CHECK (decision IS NULL OR decision IN ('ASSISTED','NOT_ELIGIBLE','REFERRED')),
    decided_program TEXT,
    closed_on       DATE,
    pushed_at       TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (agency, warning_id)
);
CREATE INDEX warnings_by_county ON warnings (county_code, received_at);
