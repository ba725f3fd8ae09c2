-- Issue 23 item 3: the PostgreSQL migration of the same number adds CHECKs refusing NaN in its NUMERIC money columns.
--
-- On SQLite money is INTEGER fen (`facts.benefit_fen`, the settlement and finding columns), which cannot hold NaN
-- (SQLite stores a NaN it is given as NULL), or the decimal text the hub wrote (`fund_reports.amount`,
-- `standards.amount`), read back through the strict money grammar, which refuses "NaN". There is nothing to add; this
-- file keeps the two migration sets the same (versions and names: `pg::tests::migration_sets_match`) and changes
-- nothing.

SELECT 1;
