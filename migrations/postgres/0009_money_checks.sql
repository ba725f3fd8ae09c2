-- Issue 23 item 3: NUMERIC money columns refuse NaN.
--
-- PostgreSQL's NUMERIC (and NUMERIC(18,2)) accepts 'NaN', which no amount of money is: the hub never writes it (Money is
-- a whole number of fen), but a row written around the hub would make every sum over its column NaN and every read of
-- it fail. Each money column gets a CHECK; NULL (an amount not given) still passes. Adding a CHECK rewrites nothing
-- and deletes nothing: PostgreSQL only scans the existing rows, and if one of them held NaN the migration would stop
-- with the constraint's name and change nothing (fix or remove that row first).
--
-- Numbered 0009: 0008 is the working-day calendar of another change; migrations apply by version, whichever is
-- merged first.

ALTER TABLE facts ADD CONSTRAINT facts_benefit_not_nan CHECK (benefit <> 'NaN');
ALTER TABLE standards ADD CONSTRAINT standards_amount_not_nan CHECK (amount <> 'NaN');
ALTER TABLE fund_reports ADD CONSTRAINT fund_reports_amount_not_nan CHECK (amount <> 'NaN');
ALTER TABLE settlements
    ADD CONSTRAINT settlements_total_cost_not_nan CHECK (total_cost <> 'NaN'),
    ADD CONSTRAINT settlements_policy_scope_cost_not_nan CHECK (policy_scope_cost <> 'NaN'),
    ADD CONSTRAINT settlements_basic_paid_not_nan CHECK (basic_paid <> 'NaN'),
    ADD CONSTRAINT settlements_critical_illness_paid_not_nan CHECK (critical_illness_paid <> 'NaN'),
    ADD CONSTRAINT settlements_medical_assistance_paid_not_nan CHECK (medical_assistance_paid <> 'NaN'),
    ADD CONSTRAINT settlements_other_paid_not_nan CHECK (other_paid <> 'NaN'),
    ADD CONSTRAINT settlements_out_of_pocket_not_nan CHECK (out_of_pocket <> 'NaN');
ALTER TABLE medical_findings
    ADD CONSTRAINT medical_findings_expected_not_nan CHECK (expected <> 'NaN'),
    ADD CONSTRAINT medical_findings_actual_not_nan CHECK (actual <> 'NaN');
