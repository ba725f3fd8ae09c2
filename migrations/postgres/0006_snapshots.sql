-- Quarterly coordination snapshots (coordination.md; issue 5). Immutable once written.
-- The canonical serialization behind content_hash is documented in docs/snapshot-format.md.

CREATE TABLE snapshots (
    quarter          TEXT    NOT NULL PRIMARY KEY,  -- 'YYYYQn'
    as_of            DATE    NOT NULL,              -- the quarter's last day (Asia/Shanghai)
    knowledge_cutoff TIMESTAMPTZ NOT NULL,
    created_by       TEXT    NOT NULL,              -- agency code (and county) of the caller
    previous_quarter TEXT,                          -- the snapshot this one chains to; NULL for the first
    previous_hash    BYTEA   NOT NULL,              -- its content_hash; 32 zero bytes for the first
    section_hashes   TEXT    NOT NULL,              -- JSON object: section name -> hex SHA-256
    content_hash     BYTEA   NOT NULL               -- SHA-256 of the canonical header + section hashes
);

-- Section 1: every person's status as of as_of, one row per fact version then in force (as known at the cutoff).
CREATE TABLE snapshot_statuses (
    quarter        TEXT    NOT NULL,
    person_key     BYTEA   NOT NULL,
    agency         TEXT    NOT NULL,
    fact_id        TEXT    NOT NULL,
    source_version BIGINT  NOT NULL,
    kind           TEXT    NOT NULL,
    county_code    TEXT    NOT NULL,
    content_hash   BYTEA   NOT NULL,   -- the fact version's content hash (facts.content_hash)
    PRIMARY KEY (quarter, person_key, agency, fact_id)
);

-- Section 4: coverage findings, one row per person and rule.
CREATE TABLE snapshot_coverage (
    quarter       TEXT NOT NULL,
    code          TEXT NOT NULL,
    person_key    BYTEA NOT NULL,
    agency_to_act TEXT NOT NULL,
    county_code   TEXT NOT NULL,
    PRIMARY KEY (quarter, code, person_key)
);

-- The other sections (aggregates, agencies, medical, fund_reports, warnings, late_corrections, standards) as
-- canonical JSON documents.
CREATE TABLE snapshot_sections (
    quarter TEXT NOT NULL,
    section TEXT NOT NULL,
    body    TEXT NOT NULL,
    PRIMARY KEY (quarter, section)
);
