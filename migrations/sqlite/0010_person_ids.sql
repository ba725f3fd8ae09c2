-- Compact person ids (issue 16, docs/storage-layout.md). Every person key the hub meets gets a 64-bit integer
-- `person_id` in arrival order; facts and audit person rows refer to it instead of the 32-byte HMAC person key, so
-- that the only index keyed by a random value is persons' `person_key → person_id`, and every other index a new
-- person's rows touch grows at its end. Nothing else changes: person keys, ciphers, versions, system times, content
-- hashes, audit hashes and snapshots are copied as they are.
--
-- Run in one transaction by the migrator, with foreign-key enforcement off on its connection (SQLite's documented
-- procedure for rebuilding a table others refer to); `warnings` and `settlements` still refer to
-- `persons (person_key)`, now a UNIQUE column of the rebuilt table, and every key they hold is copied.

-- persons: a rowid table ordered by arrival. A person key met only in an audited read of an unknown ID number
-- (GetRecipient records the probe) has a row without an ID number (`id_cipher` NULL): auditors can still ask who
-- probed it, and it is never returned as a known person.
CREATE TABLE persons_new (
    person_id   INTEGER NOT NULL PRIMARY KEY,  -- 1, 2, 3, … in arrival order
    person_key  BLOB    NOT NULL UNIQUE,       -- HMAC-SHA256(lookup key, ID number), 32 bytes
    id_cipher   BLOB,                          -- AES-256-GCM: nonce(12) || ciphertext || tag; NULL: probe only
    id_masked   TEXT,                          -- first 6 + '********' + last 4; NULL: probe only
    key_version INTEGER NOT NULL DEFAULT 1,    -- data-key generation used for id_cipher
    created_at  INTEGER NOT NULL
);

INSERT INTO persons_new (person_id, person_key, id_cipher, id_masked, key_version, created_at)
SELECT row_number() OVER (ORDER BY created_at, person_key), person_key, id_cipher, id_masked, key_version, created_at
FROM persons;

-- Persons known so far only from audited reads.
INSERT INTO persons_new (person_id, person_key, created_at)
SELECT (SELECT COALESCE(MAX(person_id), 0) FROM persons_new) + row_number() OVER (ORDER BY first_at, person_key),
       person_key, first_at
FROM (SELECT a.person_key, MIN(e.at) AS first_at
      FROM audit_persons a JOIN audit_events e ON e.seq = a.seq
      WHERE a.person_key NOT IN (SELECT person_key FROM persons)
      GROUP BY a.person_key);

-- facts: a rowid table (rows in arrival order, whatever the agencies' record ids look like), the source record's
-- key as a unique index, `person_id` in place of `person_key`.
CREATE TABLE facts_new (
    agency         TEXT    NOT NULL,
    fact_id        TEXT    NOT NULL,
    source_version INTEGER NOT NULL,
    person_id      INTEGER NOT NULL,   -- persons.person_id
    kind           TEXT    NOT NULL,
    division_code  TEXT    NOT NULL,
    valid_from     TEXT    NOT NULL,
    valid_to       TEXT,
    program        TEXT,
    status         TEXT,
    residence      TEXT,
    benefit_fen    INTEGER,
    payload        TEXT    NOT NULL,
    content_hash   BLOB    NOT NULL,
    recorded_at    INTEGER NOT NULL,
    superseded_at  INTEGER,
    is_current     INTEGER NOT NULL,
    PRIMARY KEY (agency, fact_id, source_version)
);

INSERT INTO facts_new (agency, fact_id, source_version, person_id, kind, division_code, valid_from, valid_to, program,
                       status, residence, benefit_fen, payload, content_hash, recorded_at, superseded_at, is_current)
SELECT f.agency, f.fact_id, f.source_version, p.person_id, f.kind, f.division_code, f.valid_from, f.valid_to,
       f.program, f.status, f.residence, f.benefit_fen, f.payload, f.content_hash, f.recorded_at, f.superseded_at,
       f.is_current
FROM facts f JOIN persons_new p ON p.person_key = f.person_key
ORDER BY f.recorded_at, f.agency, f.fact_id, f.source_version;

-- audit_persons by person id.
CREATE TABLE audit_persons_new (
    person_id INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    PRIMARY KEY (person_id, seq)
) WITHOUT ROWID;

INSERT INTO audit_persons_new (person_id, seq)
SELECT p.person_id, a.seq FROM audit_persons a JOIN persons_new p ON p.person_key = a.person_key;

-- Every row was copied, or the migration fails and rolls back: a row of `migration_0010_check` must have
-- `missing` = 0 (CHECK), and the migration drops the table again.
CREATE TABLE migration_0010_check (what TEXT NOT NULL, missing INTEGER NOT NULL CHECK (missing = 0));
INSERT INTO migration_0010_check
SELECT 'facts', (SELECT COUNT(*) FROM facts) - (SELECT COUNT(*) FROM facts_new)
UNION ALL SELECT 'audit_persons', (SELECT COUNT(*) FROM audit_persons) - (SELECT COUNT(*) FROM audit_persons_new);
DROP TABLE migration_0010_check;

DROP TABLE facts;
DROP TABLE audit_persons;
DROP TABLE persons;
ALTER TABLE persons_new RENAME TO persons;
ALTER TABLE facts_new RENAME TO facts;
ALTER TABLE audit_persons_new RENAME TO audit_persons;

-- The current-fact indexes, each growing at a few points only: by person id (arrival order); by county (the first
-- six digits of the division code: a dozen counties, not thousands of villages) then person id; by program, county,
-- person id. A village or township filter reads its county's range in person-id order and checks the full code.
CREATE INDEX facts_current_person ON facts (person_id) WHERE is_current = 1;
CREATE INDEX facts_current_county ON facts (substr(division_code, 1, 6), person_id) WHERE is_current = 1;
CREATE INDEX facts_current_program ON facts (program, substr(division_code, 1, 6), person_id)
    WHERE is_current = 1 AND program IS NOT NULL;
-- Versions no longer current, by when they were superseded (an append: superseded_at is the time of the write that
-- superseded them): a snapshot finds the versions superseded after its cutoff here.
CREATE INDEX facts_superseded ON facts (superseded_at) WHERE is_current = 0;
