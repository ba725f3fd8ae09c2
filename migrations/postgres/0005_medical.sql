-- The three-tier medical assistance cross-check (medical.md; issue 3).
-- Money is NUMERIC(18,2) yuan; dates DATE (Asia/Shanghai); instants TIMESTAMPTZ.

-- Effective-dated policy parameters per pooling area (统筹区). `params` is the JSON form of
-- domain::medical::PolicyParams (validated when loaded: a bad row refuses to load, it is never
-- silently skipped). New versions are added with `doudi policy add FILE.json`, no code change.
CREATE TABLE medical_policies (
    pooling_area   TEXT    NOT NULL,   -- 6-digit division code, e.g. '621000'
    effective_from DATE    NOT NULL,   -- first day in force
    version        TEXT    NOT NULL UNIQUE,
    params         TEXT    NOT NULL,   -- JSON, see above
    example        BOOLEAN NOT NULL,   -- 1: placeholder values to be replaced from the local document
    source         TEXT    NOT NULL,
    added_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (pooling_area, effective_from)
);

-- National floors (国办发〔2021〕42号, policy-reference.md): assistance ratio 70% for groups 1-2,
-- "slightly lower" for the others (65%, 60%), critical illness 60% above a deductible of 50% of
-- income, the tilt halving the deductible and adding 5 points. Income and the annual cap have no
-- national figure: medical.md's examples (20,000.00 each) stand in for them.
INSERT INTO medical_policies VALUES ('621000', '2022-01-01', '621000-national-floor',
'{"version":"621000-national-floor","pooling_area":"621000","effective_from":"2022-01-01",
 "groups":[
  {"group":1,"programs":["TEKUN","ORPHAN","UNSUPPORTED_CHILD","HIV_AFFECTED_CHILD"],"ma_deductible_share":"0","ma_ratio":"0.70","cii_tilt":true},
  {"group":2,"programs":["DIBAO","AT_RISK"],"ma_deductible_share":"0","ma_ratio":"0.70","cii_tilt":true},
  {"group":3,"programs":["DIBAO_MARGINAL"],"ma_deductible_share":"0.10","ma_ratio":"0.65","cii_tilt":false},
  {"group":4,"programs":["ILLNESS_IMPOVERISHED"],"ma_deductible_share":"0.25","ma_ratio":"0.60","cii_tilt":false}],
 "prior_year_income":"20000.00","annual_cap":"20000.00","cii_deductible":"10000.00","cii_ratio":"0.60",
 "cii_tilt_deductible_share":"0.50","cii_tilt_ratio_points":"0.05","outpatient_general_assisted":false,
 "tolerance":"1.00","high_burden_share":"1","tilted_assistance_share":"0.50"}',
true, 'national floors of 国办发〔2021〕42号 (policy-reference.md); income and annual cap are medical.md examples', TIMESTAMPTZ '1970-01-01 00:00:00+00');

-- medical.md's example values for Qingyang from 2023: PLACEHOLDERS until the city's own
-- implementation (庆政办发〔2022〕68号, not found) is loaded with `doudi policy add`.
INSERT INTO medical_policies VALUES ('621000', '2023-01-01', '621000-2023-example',
'{"version":"621000-2023-example","pooling_area":"621000","effective_from":"2023-01-01",
 "groups":[
  {"group":1,"programs":["TEKUN","ORPHAN","UNSUPPORTED_CHILD","HIV_AFFECTED_CHILD"],"ma_deductible_share":"0","ma_ratio":"1.00","cii_tilt":true},
  {"group":2,"programs":["DIBAO","AT_RISK"],"ma_deductible_share":"0","ma_ratio":"0.70","cii_tilt":true},
  {"group":3,"programs":["DIBAO_MARGINAL"],"ma_deductible_share":"0.10","ma_ratio":"0.65","cii_tilt":false},
  {"group":4,"programs":["ILLNESS_IMPOVERISHED"],"ma_deductible_share":"0.25","ma_ratio":"0.60","cii_tilt":false}],
 "prior_year_income":"20000.00","annual_cap":"20000.00","cii_deductible":"10000.00","cii_ratio":"0.60",
 "cii_tilt_deductible_share":"0.50","cii_tilt_ratio_points":"0.05","outpatient_general_assisted":false,
 "tolerance":"1.00","high_burden_share":"1","tilted_assistance_share":"0.50"}',
true, 'medical.md example values (placeholders for 庆政办发〔2022〕68号)', TIMESTAMPTZ '1970-01-01 00:00:00+00');

-- Settlements pushed by medical_insurance; immutable (a correction is a new settlement_id).
CREATE TABLE settlements (
    agency                  TEXT    NOT NULL,
    settlement_id           TEXT    NOT NULL,
    person_key              BYTEA   NOT NULL REFERENCES persons (person_key),
    division_code           TEXT    NOT NULL,
    admitted_on             DATE    NOT NULL,
    settled_on              DATE    NOT NULL,
    visit_type              TEXT    NOT NULL,   -- INPATIENT | OUTPATIENT_CHRONIC | OUTPATIENT_GENERAL
    in_province             BOOLEAN NOT NULL,
    referred                BOOLEAN NOT NULL,
    total_cost              NUMERIC(18,2) NOT NULL,
    policy_scope_cost       NUMERIC(18,2) NOT NULL,
    basic_paid              NUMERIC(18,2) NOT NULL,
    critical_illness_paid   NUMERIC(18,2) NOT NULL,
    medical_assistance_paid NUMERIC(18,2) NOT NULL,
    other_paid              NUMERIC(18,2) NOT NULL,
    out_of_pocket           NUMERIC(18,2) NOT NULL,
    content_hash            BYTEA   NOT NULL,   -- SHA-256 of the content, for DUPLICATE
    received_at             TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (agency, settlement_id)
);
CREATE INDEX settlements_by_person ON settlements (person_key, settled_on);
CREATE INDEX settlements_by_date ON settlements (settled_on, person_key);

-- Findings of the cross-check, one row per (settlement, code). A recheck that no longer raises a
-- finding sets resolved_at; raising it again clears it. Open findings: resolved_at IS NULL.
CREATE TABLE medical_findings (
    agency         TEXT    NOT NULL,   -- the settlement's agency
    settlement_id  TEXT    NOT NULL,
    code           TEXT    NOT NULL,   -- FindingCode, e.g. 'ASSISTANCE_MISSED'
    person_key     BYTEA   NOT NULL,
    division_code  TEXT    NOT NULL,
    settled_on     DATE    NOT NULL,
    expected       NUMERIC(18,2),
    actual         NUMERIC(18,2),
    policy_version TEXT    NOT NULL,
    agency_to_act  TEXT    NOT NULL,
    detected_at    TIMESTAMPTZ NOT NULL,
    resolved_at    TIMESTAMPTZ,
    PRIMARY KEY (agency, settlement_id, code)
);
CREATE INDEX medical_findings_by_date ON medical_findings (settled_on, settlement_id, code);
CREATE INDEX medical_findings_by_person ON medical_findings (person_key);
