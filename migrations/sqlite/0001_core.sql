-- doudi core schema (SQLite). Instants are INTEGER microseconds since the Unix epoch (UTC);
-- business dates are TEXT 'YYYY-MM-DD' (Asia/Shanghai); money is TEXT decimal yuan.
-- Keys are chosen so the same layout distributes by person_key on a sharded PostgreSQL engine
-- (see ARCHITECTURE.md).

-- One row per person known to the hub. The ID number is never stored in clear.
CREATE TABLE persons (
    person_key  BLOB    NOT NULL PRIMARY KEY,  -- HMAC-SHA256(lookup key, ID number), 32 bytes
    id_cipher   BLOB    NOT NULL,              -- AES-256-GCM: nonce(12) || ciphertext || tag
    id_masked   TEXT    NOT NULL,              -- first 6 + '********' + last 4
    key_version INTEGER NOT NULL DEFAULT 1,    -- data-key generation used for id_cipher
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- Every version of every fact. (agency, fact_id) identifies the source record; versions never
-- change once written, except that `is_current`/`superseded_at` move when a newer version arrives.
CREATE TABLE facts (
    agency         TEXT    NOT NULL,
    fact_id        TEXT    NOT NULL,
    source_version INTEGER NOT NULL,
    person_key     BLOB    NOT NULL,
    kind           TEXT    NOT NULL,   -- payload kind, e.g. 'assistance'
    division_code  TEXT    NOT NULL,
    valid_from     TEXT    NOT NULL,   -- business time, inclusive
    valid_to       TEXT,               -- business time, exclusive; NULL = open
    program        TEXT,               -- assistance only: denormalized for filters and aggregates
    status         TEXT,               -- assistance only
    residence      TEXT,               -- assistance only: URBAN | RURAL
    benefit_fen    INTEGER,            -- assistance only: monthly_benefit in fen (for roster sums)
    payload        TEXT    NOT NULL,   -- canonical JSON of the payload fields
    content_hash   BLOB    NOT NULL,   -- SHA-256 of the canonical content (see store/mod.rs)
    recorded_at    INTEGER NOT NULL,   -- system time this version was stored
    superseded_at  INTEGER,            -- system time a newer version replaced it
    is_current     INTEGER NOT NULL,   -- 1 for the newest version of (agency, fact_id)
    PRIMARY KEY (agency, fact_id, source_version)
) WITHOUT ROWID;

CREATE INDEX facts_current_person ON facts (person_key) WHERE is_current = 1;
CREATE INDEX facts_current_program ON facts (program, division_code, person_key)
    WHERE is_current = 1 AND program IS NOT NULL;
CREATE INDEX facts_current_division ON facts (division_code, person_key) WHERE is_current = 1;

-- Audit: one event per request that reads or writes person-level data (security.md).
-- hash = SHA-256(prev_hash || canonical content); see store/audit.rs for the canonical form.
CREATE TABLE audit_events (
    seq          INTEGER NOT NULL PRIMARY KEY,
    at           INTEGER NOT NULL,
    agency       TEXT    NOT NULL,
    division     TEXT    NOT NULL,     -- county scope of the caller, '' for the whole hub
    method       TEXT    NOT NULL,     -- full gRPC method path
    purpose      TEXT    NOT NULL,
    outcome      TEXT    NOT NULL,
    person_count INTEGER NOT NULL,
    persons_hash BLOB    NOT NULL,     -- SHA-256 over the sorted person keys touched
    prev_hash    BLOB    NOT NULL,
    hash         BLOB    NOT NULL
);

-- Which persons each audit event touched: "who looked at this person's data".
CREATE TABLE audit_persons (
    person_key BLOB    NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (person_key, seq)
) WITHOUT ROWID;

-- Facts about the database itself, e.g. the check value of the data key it was created with.
CREATE TABLE hub_meta (
    name  TEXT NOT NULL PRIMARY KEY,
    value BLOB NOT NULL
);
