-- The current assistance facts by program and county now carry what a county's roster sum reads (status, residence,
-- validity, the benefit and the full division code), so a roster sum can be an index-only scan (issue 16; the SQLite
-- migration of the same number gives the figures). The key is the same as before (program, county, person id), so
-- every read that used the index uses it as it did. No row changes.
DROP INDEX facts_current_program;
CREATE INDEX facts_current_program ON facts (program, substr(division_code, 1, 6), person_id)
    INCLUDE (status, residence, valid_from, valid_to, benefit, division_code)
    WHERE is_current AND program IS NOT NULL;
