-- doudi core schema (PostgreSQL). Same version numbers and tables as migrations/sqlite/ (a test checks the
-- parity); the types are PostgreSQL's own: TIMESTAMPTZ for instants, DATE for business dates (Asia/Shanghai),
-- NUMERIC(18,2) for money in yuan, BYTEA for keys and hashes, BOOLEAN for flags.
--
-- Distribution (SCALING.md): person-level tables (persons, facts, audit_persons, settlements, medical_findings,
-- warnings) are keyed so that a sharded engine can distribute them by person_key; no foreign key crosses
-- distribution groups, and no query needs a cross-shard unique index.

CREATE TABLE persons (
    person_key  BYTEA       NOT NULL PRIMARY KEY,  -- HMAC-SHA256(lookup key, ID number), 32 bytes
    id_cipher   BYTEA       NOT NULL,              -- AES-256-GCM: nonce(12) || ciphertext || tag
    id_masked   TEXT        NOT NULL,              -- first 6 + '********' + last 4
    key_version BIGINT      NOT NULL DEFAULT 1,    -- data-key generation used for id_cipher
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE facts (
    agency         TEXT          NOT NULL,
    fact_id        TEXT          NOT NULL,
    source_version BIGINT        NOT NULL,
    person_key     BYTEA         NOT NULL,
    kind           TEXT          NOT NULL,
    division_code  TEXT          NOT NULL,
    valid_from     DATE          NOT NULL,   -- business time, inclusive
    valid_to       DATE,                     -- business time, exclusive; NULL = open
    program        TEXT,
    status         TEXT,
    residence      TEXT,
    benefit        NUMERIC(18,2),            -- assistance only: monthly_benefit in yuan
    payload        TEXT          NOT NULL,   -- canonical JSON of the payload fields (kept as text: hashed bytes)
    content_hash   BYTEA         NOT NULL,
    recorded_at    TIMESTAMPTZ   NOT NULL,
    superseded_at  TIMESTAMPTZ,
    is_current     BOOLEAN       NOT NULL,
    PRIMARY KEY (agency, fact_id, source_version)
);

CREATE INDEX facts_current_person ON facts (person_key) WHERE is_current;
CREATE INDEX facts_current_program ON facts (program, division_code, person_key)
    WHERE is_current AND program IS NOT NULL;
CREATE INDEX facts_current_division ON facts (division_code, person_key) WHERE is_current;

CREATE TABLE audit_events (
    seq          BIGINT      NOT NULL PRIMARY KEY,
    at           TIMESTAMPTZ NOT NULL,
    agency       TEXT        NOT NULL,
    division     TEXT        NOT NULL,
    method       TEXT        NOT NULL,
    purpose      TEXT        NOT NULL,
    outcome      TEXT        NOT NULL,
    person_count BIGINT      NOT NULL,
    persons_hash BYTEA       NOT NULL,
    prev_hash    BYTEA       NOT NULL,
    hash         BYTEA       NOT NULL
);

CREATE TABLE audit_persons (
    person_key BYTEA  NOT NULL,
    seq        BIGINT NOT NULL,
    PRIMARY KEY (person_key, seq)
);

CREATE TABLE hub_meta (
    name  TEXT  NOT NULL PRIMARY KEY,
    value BYTEA NOT NULL
);
