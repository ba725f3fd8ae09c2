-- The current facts of a person by kind (issue 21, P10; docs/storage-layout.md): `facts_current_person` becomes
-- `(person_id, kind)` instead of `(person_id)`. A read of some kinds of a person's facts (MatchRecipients reads only
-- assistance and student: `FactReads::comparison_facts_of_persons`) then fetches the table rows of those kinds only,
-- not every current fact of the person (3.7 on average in the demo, of which 1.2 are assistance or student). Every
-- read that used the index by `person_id` uses its prefix; the index has the same entries, each longer by its kind.
-- No row of any table changes; run in one transaction by the migrator.
DROP INDEX facts_current_person;
CREATE INDEX facts_current_person ON facts (person_id, kind) WHERE is_current;
