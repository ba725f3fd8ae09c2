//! The three-tier medical assistance cross-check (三重保障), docs/spec/medical.md.
//!
//! National rule (国办发〔2021〕42号): basic medical insurance (基本医保) pays first, critical-illness insurance
//! (大病保险) next, tilted toward the poorest, and medical assistance (医疗救助) last, on the in-scope out-of-pocket
//! amount that remains. This module recomputes what the second and third tiers should have paid on each settlement
//! pushed by medical_insurance and reports the differences as [`Finding`]s.
//!
//! Pure: no I/O, no clock, no storage. The caller supplies the settlements of one person, the person's assistance group
//! and insurance cover by date (from the stored facts, see [`group_of`]), and the [`PolicyParams`] in force.
//!
//! All amounts are [`Money`] (yuan, exact to the fen); ratios and shares are [`Decimal`] fractions (`0.65` = 65%).
//! Every product rounds half-up to the fen at the step where it is taken (docs/spec/medical.md step 5), never banker's
//! rounding.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{Datelike, Months, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::agency::AgencyCode;
use super::fact::{FieldError, Program};
use super::money::Money;

/// National floors and ceilings (国办发〔2021〕42号, as restated in docs/domain/policy-reference.md). A local
/// [`PolicyParams`] may be more generous; [`PolicyParams::national_floor_warnings`] lists where it is not.
pub mod national {
    use rust_decimal::Decimal;

    /// Lowest medical-assistance ratio for dibao and tekun recipients (groups 1–2): 70%. Others: "slightly lower",
    /// no figure.
    pub const MA_RATIO_FLOOR_GROUPS_1_2: Decimal = Decimal::from_parts(70, 0, 0, false, 2);
    /// Highest medical-assistance deductible for dibao and tekun (groups 1–2) as a share of the previous year's
    /// per-capita disposable income: none in principle, otherwise at most 5%.
    pub const MA_DEDUCTIBLE_CEILING_SHARE_GROUPS_1_2: Decimal = Decimal::from_parts(5, 0, 0, false, 2);
    /// Highest critical-illness deductible as a share of the previous year's per-capita disposable income: 50%.
    pub const CII_DEDUCTIBLE_CEILING_SHARE: Decimal = Decimal::from_parts(50, 0, 0, false, 2);
    /// Lowest critical-illness ratio: 60%.
    pub const CII_RATIO_FLOOR: Decimal = Decimal::from_parts(60, 0, 0, false, 2);
    /// Critical-illness tilt for dibao, tekun and people who returned to poverty: deductible at most halved (share 50%
    /// of the normal deductible)…
    pub const CII_TILT_DEDUCTIBLE_CEILING_SHARE: Decimal = Decimal::from_parts(50, 0, 0, false, 2);
    /// …and ratio at least 5 percentage points higher, with no cap.
    pub const CII_TILT_RATIO_POINTS_FLOOR: Decimal = Decimal::from_parts(5, 0, 0, false, 2);
}

// ---------------------------------------------------------------------------------------------------------------------
// Policy parameters
// ---------------------------------------------------------------------------------------------------------------------

/// The terms of one assistance group (docs/spec/medical.md "Assistance groups").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupParams {
    /// Group number, 1 or more; a person in several groups takes the lowest ([`group_of`]).
    pub group: u8,
    /// The assistance programs that place a person in this group. A program belongs to at most one group.
    pub programs: Vec<Program>,
    /// Medical-assistance deductible (起付线) per calendar year, as a share of
    /// [`PolicyParams::prior_year_income`], rounded half-up to the fen: `0.10` = 10% of income. 0 to 1.
    pub ma_deductible_share: Decimal,
    /// Medical-assistance ratio on the residual above the deductible, inpatient and chronic outpatient care: `0.70`.
    /// 0 to 1.
    pub ma_ratio: Decimal,
    /// Whether the critical-illness tilt applies (deductible reduced, ratio raised, no cap): groups 1–2 by default.
    pub cii_tilt: bool,
}

/// One effective-dated version of the medical parameters for one pooling area (docs/spec/medical.md: every number is a
/// policy parameter, loaded as reference data and listed by `Reference.GetPolicy`).
///
/// Stored as JSON (serde); deserializing runs [`PolicyParams::validate`], so stored reference data that breaks a rule
/// does not load. Money is a string in yuan (`"20000.00"`), ratios and shares are decimal strings (`"0.65"`), dates
/// are `YYYY-MM-DD`. Start from [`PolicyParams::example_2023`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PolicyParamsUnchecked")]
pub struct PolicyParams {
    /// Version label, stored on every [`Finding`] it produced, e.g. `"621000-2023-example"`. Not empty.
    pub version: String,
    /// Pooling area (统筹区) as a six-digit division code, default the city: `"621000"`.
    pub pooling_area: String,
    /// First day (Asia/Shanghai) on which this version applies; it applies until the next version's `effective_from`
    /// ([`PolicyParams::in_force`]).
    pub effective_from: NaiveDate,
    /// The assistance groups with their programs and terms; group numbers unique, a program in at most one group.
    pub groups: Vec<GroupParams>,
    /// "income": the pooling area's previous-year per-capita disposable income (上年居民人均可支配收入), yuan a year.
    pub prior_year_income: Money,
    /// Medical-assistance annual cap per person and calendar year, shared by inpatient and chronic outpatient care,
    /// yuan.
    pub annual_cap: Money,
    /// Critical-illness deductible per calendar year, yuan (national ceiling 50% of income).
    pub cii_deductible: Money,
    /// Critical-illness ratio above the deductible, 0 to 1 (national floor 0.60).
    pub cii_ratio: Decimal,
    /// Tilted critical-illness deductible as a share of [`Self::cii_deductible`], rounded half-up to the fen: `0.5`
    /// (halved). 0 to 1.
    pub cii_tilt_deductible_share: Decimal,
    /// Percentage points added to [`Self::cii_ratio`] under the tilt, as a fraction: `0.05` (+5 points). The tilted
    /// ratio must stay at most 1. (The tilt has no cap; no critical-illness cap is modelled at all.)
    pub cii_tilt_ratio_points: Decimal,
    /// Whether OUTPATIENT_GENERAL settlements get medical assistance (default `false`: no assistance).
    pub outpatient_general_assisted: bool,
    /// Differences up to and including this amount raise no finding, yuan (default 1.00).
    pub tolerance: Money,
    /// HIGH_BURDEN threshold as a share of income, for the out-of-pocket total of the trailing 12 months (default
    /// `1` = 100%). 0 to 100.
    pub high_burden_share: Decimal,
    /// TILTED_ASSISTANCE_CANDIDATE threshold (倾斜救助) as a share of income for the year's in-province, referred
    /// out-of-pocket total. 0 to 100.
    pub tilted_assistance_share: Decimal,
}

/// The serde shape of [`PolicyParams`], before [`PolicyParams::validate`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyParamsUnchecked {
    version: String,
    pooling_area: String,
    effective_from: NaiveDate,
    groups: Vec<GroupParams>,
    prior_year_income: Money,
    annual_cap: Money,
    cii_deductible: Money,
    cii_ratio: Decimal,
    cii_tilt_deductible_share: Decimal,
    cii_tilt_ratio_points: Decimal,
    outpatient_general_assisted: bool,
    tolerance: Money,
    high_burden_share: Decimal,
    tilted_assistance_share: Decimal,
}

impl TryFrom<PolicyParamsUnchecked> for PolicyParams {
    type Error = FieldError;

    fn try_from(u: PolicyParamsUnchecked) -> Result<Self, FieldError> {
        let params = PolicyParams {
            version: u.version,
            pooling_area: u.pooling_area,
            effective_from: u.effective_from,
            groups: u.groups,
            prior_year_income: u.prior_year_income,
            annual_cap: u.annual_cap,
            cii_deductible: u.cii_deductible,
            cii_ratio: u.cii_ratio,
            cii_tilt_deductible_share: u.cii_tilt_deductible_share,
            cii_tilt_ratio_points: u.cii_tilt_ratio_points,
            outpatient_general_assisted: u.outpatient_general_assisted,
            tolerance: u.tolerance,
            high_burden_share: u.high_burden_share,
            tilted_assistance_share: u.tilted_assistance_share,
        };
        params.validate()?;
        Ok(params)
    }
}

fn pct(points: i64) -> Decimal {
    Decimal::new(points, 2)
}

fn yuan(whole: i64) -> Money {
    Money::from_fen(i128::from(whole) * 100).expect("a non-negative literal")
}

/// Upper bound of the income shares (`high_burden_share`, `tilted_assistance_share`): 100 × income.
const MAX_INCOME_SHARE: Decimal = Decimal::ONE_HUNDRED;

impl PolicyParams {
    /// The example values of docs/spec/medical.md, for pooling area 621000 (Qingyang) from 2023-01-01.
    ///
    /// **These are placeholders**, to be replaced from Qingyang's own implementation (庆政办发〔2022〕68号), which
    /// was not found (docs/domain/policy-reference.md): groups 1 TEKUN, ORPHAN, UNSUPPORTED_CHILD, HIV_AFFECTED_CHILD
    /// (deductible 0, ratio 100%, tilt); 2 DIBAO, AT_RISK (0, 70%, tilt); 3 DIBAO_MARGINAL (10% of income, 65%); 4
    /// ILLNESS_IMPOVERISHED (25% of income, 60%); income 20,000.00; annual cap 20,000.00; critical-illness deductible
    /// 10,000.00 (50% of income) and ratio 60%, tilt halves the deductible and adds 5 points; no assistance for
    /// OUTPATIENT_GENERAL; tolerance 1.00; HIGH_BURDEN at 100% of income. `tilted_assistance_share` = 50% of income is
    /// an example of our own (docs/spec/medical.md names no figure).
    pub fn example_2023() -> PolicyParams {
        use Program::*;
        let group = |group, programs: &[Program], share, ratio, cii_tilt| GroupParams {
            group,
            programs: programs.to_vec(),
            ma_deductible_share: pct(share),
            ma_ratio: pct(ratio),
            cii_tilt,
        };
        PolicyParams {
            version: "621000-2023-example".to_owned(),
            pooling_area: "621000".to_owned(),
            effective_from: NaiveDate::from_ymd_opt(2023, 1, 1).expect("a valid date"),
            groups: vec![
                group(1, &[Tekun, Orphan, UnsupportedChild, HivAffectedChild], 0, 100, true),
                group(2, &[Dibao, AtRisk], 0, 70, true),
                group(3, &[DibaoMarginal], 10, 65, false),
                group(4, &[IllnessImpoverished], 25, 60, false),
            ],
            prior_year_income: yuan(20_000),
            annual_cap: yuan(20_000),
            cii_deductible: yuan(10_000),
            cii_ratio: pct(60),
            cii_tilt_deductible_share: pct(50),
            cii_tilt_ratio_points: pct(5),
            outpatient_general_assisted: false,
            tolerance: yuan(1),
            high_burden_share: pct(100),
            tilted_assistance_share: pct(50),
        }
    }

    /// Checks the rules a stored version must meet (run on deserialization).
    ///
    /// # Errors
    /// The first [`FieldError`] found: `version` empty; `pooling_area` not six ASCII digits; `groups` empty, a group
    /// number 0 or repeated, a program in two groups; a ratio or share outside 0 to 1 (`groups[i].ma_ratio`,
    /// `groups[i].ma_deductible_share`, `cii_ratio`, `cii_tilt_deductible_share`, and `cii_tilt_ratio_points` such that
    /// the tilted ratio exceeds 1); `high_burden_share` or `tilted_assistance_share` outside 0 to 100.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.version.trim().is_empty() {
            return Err(FieldError::new("version", "must not be empty"));
        }
        if self.pooling_area.len() != 6 || !self.pooling_area.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FieldError::new("pooling_area", "must be a six-digit division code"));
        }
        if self.groups.is_empty() {
            return Err(FieldError::new("groups", "must not be empty"));
        }
        let unit = |d: Decimal| !d.is_sign_negative() && d <= Decimal::ONE;
        let mut seen_groups = Vec::new();
        let mut seen_programs: BTreeMap<Program, u8> = BTreeMap::new();
        for (i, g) in self.groups.iter().enumerate() {
            let field = |name: &str| format!("groups[{i}].{name}");
            if g.group == 0 {
                return Err(FieldError::new(field("group"), "must be 1 or more"));
            }
            if seen_groups.contains(&g.group) {
                return Err(FieldError::new(field("group"), format!("group {} is listed twice", g.group)));
            }
            seen_groups.push(g.group);
            for &program in &g.programs {
                if let Some(other) = seen_programs.insert(program, g.group) {
                    return Err(FieldError::new(field("programs"), format!("{program} is already in group {other}")));
                }
            }
            if !unit(g.ma_deductible_share) {
                return Err(FieldError::new(field("ma_deductible_share"), "must be between 0 and 1"));
            }
            if !unit(g.ma_ratio) {
                return Err(FieldError::new(field("ma_ratio"), "must be between 0 and 1"));
            }
        }
        if !unit(self.cii_ratio) {
            return Err(FieldError::new("cii_ratio", "must be between 0 and 1"));
        }
        if !unit(self.cii_tilt_deductible_share) {
            return Err(FieldError::new("cii_tilt_deductible_share", "must be between 0 and 1"));
        }
        if self.cii_tilt_ratio_points.is_sign_negative() || !unit(self.cii_ratio + self.cii_tilt_ratio_points) {
            return Err(FieldError::new(
                "cii_tilt_ratio_points",
                "must be 0 or more, with cii_ratio + points at most 1",
            ));
        }
        let share = |d: Decimal| !d.is_sign_negative() && d <= MAX_INCOME_SHARE;
        if !share(self.high_burden_share) {
            return Err(FieldError::new("high_burden_share", "must be between 0 and 100"));
        }
        if !share(self.tilted_assistance_share) {
            return Err(FieldError::new("tilted_assistance_share", "must be between 0 and 100"));
        }
        Ok(())
    }

    /// Where this version is less generous than the national rule ([`national`]), one [`FieldError`] per parameter
    /// (field and the floor or ceiling). Warnings, not errors: the local document decides what is paid.
    pub fn national_floor_warnings(&self) -> Vec<FieldError> {
        let mut warnings = Vec::new();
        let income = self.prior_year_income;
        for (i, g) in self.groups.iter().enumerate().filter(|(_, g)| g.group <= 2) {
            if g.ma_ratio < national::MA_RATIO_FLOOR_GROUPS_1_2 {
                warnings.push(FieldError::new(format!("groups[{i}].ma_ratio"), "below the national floor of 70%"));
            }
            if g.ma_deductible_share > national::MA_DEDUCTIBLE_CEILING_SHARE_GROUPS_1_2 {
                warnings.push(FieldError::new(
                    format!("groups[{i}].ma_deductible_share"),
                    "above the national ceiling of 5% of income",
                ));
            }
        }
        if self.cii_deductible > mul(income, national::CII_DEDUCTIBLE_CEILING_SHARE) {
            warnings.push(FieldError::new("cii_deductible", "above the national ceiling of 50% of income"));
        }
        if self.cii_ratio < national::CII_RATIO_FLOOR {
            warnings.push(FieldError::new("cii_ratio", "below the national floor of 60%"));
        }
        if self.cii_tilt_deductible_share > national::CII_TILT_DEDUCTIBLE_CEILING_SHARE {
            warnings.push(FieldError::new("cii_tilt_deductible_share", "the tilt must at least halve the deductible"));
        }
        if self.cii_tilt_ratio_points < national::CII_TILT_RATIO_POINTS_FLOOR {
            warnings.push(FieldError::new("cii_tilt_ratio_points", "the tilt must add at least 5 points"));
        }
        warnings
    }

    /// The version of `pooling_area` in force on `on`: the latest `effective_from` on or before `on` (ties: the
    /// greatest `version` string), or `None` if none has started yet.
    pub fn in_force<'a>(versions: &'a [PolicyParams], pooling_area: &str, on: NaiveDate) -> Option<&'a PolicyParams> {
        versions
            .iter()
            .filter(|p| p.pooling_area == pooling_area && p.effective_from <= on)
            .max_by(|a, b| (a.effective_from, &a.version).cmp(&(b.effective_from, &b.version)))
    }

    /// The versions in force on `on`, one per pooling area held in `versions` (of `area` only, when given), in the
    /// order of the areas' codes ([`PolicyParams::in_force`] for each area).
    pub fn all_in_force<'a>(versions: &'a [PolicyParams], on: NaiveDate, area: Option<&str>) -> Vec<&'a PolicyParams> {
        let mut areas: Vec<&str> = versions.iter().map(|p| p.pooling_area.as_str()).collect();
        areas.sort_unstable();
        areas.dedup();
        areas
            .into_iter()
            .filter(|a| area.is_none_or(|x| x == *a))
            .filter_map(|a| PolicyParams::in_force(versions, a, on))
            .collect()
    }

    /// The first day of the next version of this version's pooling area in `versions` (the day this one stops being in
    /// force), or `None` while no later version is held.
    pub fn effective_to(&self, versions: &[PolicyParams]) -> Option<NaiveDate> {
        versions
            .iter()
            .filter(|o| o.pooling_area == self.pooling_area && o.effective_from > self.effective_from)
            .map(|o| o.effective_from)
            .min()
    }

    /// The terms of group `group`, if this version defines it.
    pub fn group(&self, group: u8) -> Option<&GroupParams> {
        self.groups.iter().find(|g| g.group == group)
    }

    /// The critical-illness deductible and ratio for a person with or without the tilt: tilted, the deductible is
    /// `cii_deductible × cii_tilt_deductible_share` (half-up to the fen) and the ratio `cii_ratio +
    /// cii_tilt_ratio_points` (example: 5,000.00 and 0.65; untilted 10,000.00 and 0.60).
    pub fn cii_terms(&self, tilted: bool) -> (Money, Decimal) {
        if tilted {
            (mul(self.cii_deductible, self.cii_tilt_deductible_share), self.cii_ratio + self.cii_tilt_ratio_points)
        } else {
            (self.cii_deductible, self.cii_ratio)
        }
    }

    /// Whether a settlement of this visit type gets medical assistance: inpatient and chronic outpatient care always,
    /// OUTPATIENT_GENERAL only if [`Self::outpatient_general_assisted`].
    pub fn assists(&self, visit_type: VisitType) -> bool {
        match visit_type {
            VisitType::Inpatient | VisitType::OutpatientChronic => true,
            VisitType::OutpatientGeneral => self.outpatient_general_assisted,
        }
    }

    /// HIGH_BURDEN threshold: `prior_year_income × high_burden_share`, half-up to the fen (example 20,000.00).
    pub fn high_burden_threshold(&self) -> Money {
        mul(self.prior_year_income, self.high_burden_share)
    }

    /// TILTED_ASSISTANCE_CANDIDATE threshold: `prior_year_income × tilted_assistance_share`, half-up to the fen
    /// (example 10,000.00).
    pub fn tilted_assistance_threshold(&self) -> Money {
        mul(self.prior_year_income, self.tilted_assistance_share)
    }
}

/// The assistance group of a person in `programs` (their active assistance programs on the settlement's
/// `settled_on`): the lowest group number among the groups of `params` that list one of them, or `None` (not
/// eligible; e.g. EXPENDITURE_HARDSHIP alone, which the default mapping leaves out).
/// docs/spec/medical.md "Assistance groups".
pub fn group_of(programs: &[Program], params: &PolicyParams) -> Option<u8> {
    params.groups.iter().filter(|g| g.programs.iter().any(|p| programs.contains(p))).map(|g| g.group).min()
}

// ---------------------------------------------------------------------------------------------------------------------
// Settlements
// ---------------------------------------------------------------------------------------------------------------------

/// Kind of visit settled (docs/spec/medical.md `visit_type`). Wire names: `INPATIENT`, `OUTPATIENT_CHRONIC`,
/// `OUTPATIENT_GENERAL`; any other name is an unknown visit type, rejected as INVALID_ARGUMENT by the caller
/// ([`VisitType::parse`] returns `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum VisitType {
    /// Hospital stay (住院).
    #[serde(rename = "INPATIENT")]
    Inpatient,
    /// Chronic or special-disease outpatient care (门诊慢特病), assisted like inpatient care.
    #[serde(rename = "OUTPATIENT_CHRONIC")]
    OutpatientChronic,
    /// General outpatient care (普通门诊): no assistance by default ([`PolicyParams::outpatient_general_assisted`]).
    #[serde(rename = "OUTPATIENT_GENERAL")]
    OutpatientGeneral,
}

impl VisitType {
    /// Every value, in declaration order.
    pub const ALL: [VisitType; 3] = [VisitType::Inpatient, VisitType::OutpatientChronic, VisitType::OutpatientGeneral];

    /// The wire name, e.g. `"INPATIENT"`.
    pub fn as_str(self) -> &'static str {
        match self {
            VisitType::Inpatient => "INPATIENT",
            VisitType::OutpatientChronic => "OUTPATIENT_CHRONIC",
            VisitType::OutpatientGeneral => "OUTPATIENT_GENERAL",
        }
    }

    /// Inverse of [`Self::as_str`]; `None` for an unknown visit type.
    pub fn parse(s: &str) -> Option<VisitType> {
        VisitType::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for VisitType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One settlement (结算) pushed by medical_insurance (docs/spec/medical.md "Settlement record"). Amounts in yuan.
///
/// The identity number is already replaced by the person key (`person`: the 32-byte HMAC-SHA256 of the normalized
/// identity number, docs/spec/security.md), so this module never sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    /// Unique per agency; orders settlements settled on the same day.
    pub settlement_id: String,
    /// The person key (HMAC-SHA256 of the normalized identity number).
    pub person: [u8; 32],
    /// Six-digit division code of the person's division (carried, not checked here).
    pub division_code: String,
    /// Day of admission (or of the visit); insurance cover is checked on this day (NOT_INSURED).
    pub admitted_on: NaiveDate,
    /// Day of settlement: the policy (calendar) year, the assistance group and all ordering use it.
    pub settled_on: NaiveDate,
    /// Kind of visit.
    pub visit_type: VisitType,
    /// Treated inside the province (省域内就医).
    pub in_province: bool,
    /// Referred through the regular referral path (规范转诊).
    pub referred: bool,
    /// All costs of the visit.
    pub total_cost: Money,
    /// Costs within the policy scope (政策范围内费用), at most `total_cost`.
    pub policy_scope_cost: Money,
    /// Paid by basic medical insurance (tier 1).
    pub basic_paid: Money,
    /// Paid by critical-illness insurance (tier 2).
    pub critical_illness_paid: Money,
    /// Paid by medical assistance (tier 3).
    pub medical_assistance_paid: Money,
    /// Paid by anyone else (commercial insurance, charity…).
    pub other_paid: Money,
    /// Left to the person.
    pub out_of_pocket: Money,
}

impl Settlement {
    /// docs/spec/medical.md's rejection rules (INVALID_ARGUMENT, not stored, the field named), checked in this order:
    ///
    /// - any negative amount: impossible here, since [`Money`] cannot be negative (the wire parser rejects a sign);
    /// - unknown visit type: impossible here ([`VisitType::parse`] at the edge);
    /// - `policy_scope_cost > total_cost` → field `policy_scope_cost`;
    /// - `basic_paid + critical_illness_paid + medical_assistance_paid + other_paid + out_of_pocket != total_cost`,
    ///   exact to the fen (or a sum past the range of [`Money`]) → field `total_cost`;
    /// - `settled_on < admitted_on` → field `settled_on`.
    ///
    /// # Errors
    /// The first rule broken, as a [`FieldError`] naming the field.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.policy_scope_cost > self.total_cost {
            return Err(FieldError::new("policy_scope_cost", "must not exceed total_cost"));
        }
        let parts = [
            self.basic_paid,
            self.critical_illness_paid,
            self.medical_assistance_paid,
            self.other_paid,
            self.out_of_pocket,
        ];
        let sum = parts.iter().try_fold(Money::ZERO, |acc, &m| acc.checked_add(m));
        if sum != Some(self.total_cost) {
            return Err(FieldError::new(
                "total_cost",
                "must equal basic_paid + critical_illness_paid + medical_assistance_paid + other_paid + out_of_pocket",
            ));
        }
        if self.settled_on < self.admitted_on {
            return Err(FieldError::new("settled_on", "must not be before admitted_on"));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// Findings
// ---------------------------------------------------------------------------------------------------------------------

/// The finding codes of docs/spec/medical.md "Findings", in its order. When each fires is documented on
/// [`check_person_year`] and [`check_high_burden`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FindingCode {
    /// No medical_insurance fact covers `admitted_on`.
    NotInsured,
    /// Assistance paid to a person with no assistance group.
    AssistanceToIneligible,
    /// Critical illness or assistance paid while basic insurance paid nothing on in-scope costs.
    TierOrderViolation,
    /// An eligible person was owed assistance and got none.
    AssistanceMissed,
    /// Assistance paid, but less than owed.
    UnderAssisted,
    /// More assistance paid than owed.
    OverAssisted,
    /// The year's assistance paid passes the annual cap.
    AnnualCapExceeded,
    /// Critical illness paid less than the tilted rules give (groups with the tilt).
    CiiTiltNotApplied,
    /// Looks like a settlement already pushed under another id.
    DuplicateSuspected,
    /// A person outside assistance with a heavy 12-month out-of-pocket burden (early warning, reason ILLNESS).
    HighBurden,
    /// Still a heavy burden after all three tiers: a candidate for tilted assistance (倾斜救助).
    TiltedAssistanceCandidate,
}

impl FindingCode {
    /// Every code, in docs/spec/medical.md's order.
    pub const ALL: [FindingCode; 11] = [
        FindingCode::NotInsured,
        FindingCode::AssistanceToIneligible,
        FindingCode::TierOrderViolation,
        FindingCode::AssistanceMissed,
        FindingCode::UnderAssisted,
        FindingCode::OverAssisted,
        FindingCode::AnnualCapExceeded,
        FindingCode::CiiTiltNotApplied,
        FindingCode::DuplicateSuspected,
        FindingCode::HighBurden,
        FindingCode::TiltedAssistanceCandidate,
    ];

    /// The stored and wire code, e.g. `"ASSISTANCE_MISSED"`.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingCode::NotInsured => "NOT_INSURED",
            FindingCode::AssistanceToIneligible => "ASSISTANCE_TO_INELIGIBLE",
            FindingCode::TierOrderViolation => "TIER_ORDER_VIOLATION",
            FindingCode::AssistanceMissed => "ASSISTANCE_MISSED",
            FindingCode::UnderAssisted => "UNDER_ASSISTED",
            FindingCode::OverAssisted => "OVER_ASSISTED",
            FindingCode::AnnualCapExceeded => "ANNUAL_CAP_EXCEEDED",
            FindingCode::CiiTiltNotApplied => "CII_TILT_NOT_APPLIED",
            FindingCode::DuplicateSuspected => "DUPLICATE_SUSPECTED",
            FindingCode::HighBurden => "HIGH_BURDEN",
            FindingCode::TiltedAssistanceCandidate => "TILTED_ASSISTANCE_CANDIDATE",
        }
    }

    /// Inverse of [`Self::as_str`].
    pub fn parse(s: &str) -> Option<FindingCode> {
        FindingCode::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The agency that must act on the finding: civil_affairs for HIGH_BURDEN, medical_insurance for every other code
    /// (docs/spec/medical.md "Each finding carries").
    pub fn agency_to_act(self) -> &'static str {
        match self {
            FindingCode::HighBurden => AgencyCode::CIVIL_AFFAIRS,
            _ => AgencyCode::MEDICAL_INSURANCE,
        }
    }
}

impl fmt::Display for FindingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding on one settlement (docs/spec/medical.md "Each finding carries"). What `expected` and `actual` hold is
/// listed per code on [`check_person_year`] and [`check_high_burden`]; `None` where no amount applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What was found.
    pub code: FindingCode,
    /// The settlement it is about.
    pub settlement_id: String,
    /// The person's key.
    pub person: [u8; 32],
    /// The amount the rules give, yuan.
    pub expected: Option<Money>,
    /// The amount in the settlement (or its running total), yuan.
    pub actual: Option<Money>,
    /// [`PolicyParams::version`] of the parameters applied.
    pub policy_version: String,
    /// `"medical_insurance"`, or `"civil_affairs"` for HIGH_BURDEN ([`FindingCode::agency_to_act`]).
    pub agency_to_act: &'static str,
}

impl Finding {
    fn new(
        code: FindingCode,
        s: &Settlement,
        p: &PolicyParams,
        expected: Option<Money>,
        actual: Option<Money>,
    ) -> Self {
        Finding {
            code,
            settlement_id: s.settlement_id.clone(),
            person: s.person,
            expected,
            actual,
            policy_version: p.version.clone(),
            agency_to_act: code.agency_to_act(),
        }
    }
}

/// The recomputation for one settlement, with its findings. Amounts in yuan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettlementCheck {
    /// The settlement checked.
    pub settlement_id: String,
    /// The person's assistance group on `settled_on` (`None`: not eligible, or a group the parameters do not define).
    pub group: Option<u8>,
    /// [`PolicyParams::version`] applied.
    pub policy_version: String,
    /// Step 1: `max(0, policy_scope_cost − basic_paid)`.
    pub after_basic: Money,
    /// Step 2: expected critical-illness payment.
    pub expected_cii: Money,
    /// Step 3: `max(0, policy_scope_cost − basic_paid − critical_illness_paid)`, from the amounts actually paid.
    pub residual: Money,
    /// Step 4: expected medical-assistance payment (0 when not eligible or the visit type is not assisted).
    pub expected_ma: Money,
    /// Annual cap left after this settlement: `max(0, annual_cap − assistance actually paid in the year so far,
    /// this settlement included)`.
    pub cap_left: Money,
    /// Findings on this settlement, in [`FindingCode`] order (HIGH_BURDEN comes from [`check_high_burden`]).
    pub findings: Vec<Finding>,
}

// ---------------------------------------------------------------------------------------------------------------------
// The computation
// ---------------------------------------------------------------------------------------------------------------------

/// `m × ratio`, half-up to the fen, saturating at the largest [`Money`] (only reachable with amounts far beyond any
/// real settlement; ratios are non-negative by [`PolicyParams::validate`]).
fn mul(m: Money, ratio: Decimal) -> Money {
    m.checked_mul_ratio_half_up(ratio).unwrap_or_else(money_max)
}

fn add(a: Money, b: Money) -> Money {
    a.checked_add(b).unwrap_or_else(money_max)
}

fn money_max() -> Money {
    Money::from_fen(i128::from(i64::MAX)).expect("positive")
}

/// `a − b > tolerance`, i.e. a difference of exactly the tolerance raises nothing.
fn exceeds(a: Money, b: Money, tolerance: Money) -> bool {
    a.saturating_sub_zero(b) > tolerance
}

/// The settlements in check order: `settled_on`, then `settlement_id` (docs/spec/medical.md).
fn ordered(settlements: &[Settlement]) -> Vec<&Settlement> {
    let mut ordered: Vec<&Settlement> = settlements.iter().collect();
    ordered.sort_by(|a, b| (a.settled_on, &a.settlement_id).cmp(&(b.settled_on, &b.settlement_id)));
    ordered
}

/// Running totals of one person and calendar year.
#[derive(Default)]
struct YearState {
    year: i32,
    /// Critical-illness deductible consumed so far.
    cii_consumed: Money,
    /// Medical-assistance deductible consumed so far.
    ma_consumed: Money,
    /// Medical assistance actually paid so far.
    ma_paid: Money,
    /// Out-of-pocket of the in-province, referred settlements so far.
    referred_out_of_pocket: Money,
    /// Whether TILTED_ASSISTANCE_CANDIDATE was raised this year.
    tilted_raised: bool,
}

/// Cross-checks the settlements of **one person** under one parameter version (docs/spec/medical.md "The computation").
/// Same as [`check_person_year_with_versions`] with `params` for every date.
pub fn check_person_year(
    settlements: &[Settlement],
    group_on: impl Fn(NaiveDate) -> Option<u8>,
    insured_on: impl Fn(NaiveDate) -> bool,
    params: &PolicyParams,
) -> Vec<SettlementCheck> {
    check_person_year_with_versions(settlements, group_on, insured_on, |_| params)
}

/// Cross-checks the settlements of **one person** (docs/spec/medical.md "The computation" and "Findings"), returning
/// one [`SettlementCheck`] per settlement in check order: `settled_on`, ties by `settlement_id` (ids are unique per
/// agency). The input order does not matter. Settlements of several calendar years may be passed together: every
/// running total restarts on 1 January (year of `settled_on`). HIGH_BURDEN is not raised here ([`check_high_burden`]).
///
/// - `group_on(d)`: the person's assistance group on day `d` (from their active assistance facts, [`group_of`]);
///   asked for each `settled_on`. A group that the version in force does not define counts as no group.
/// - `insured_on(d)`: whether a medical_insurance fact covers day `d`; asked for each `admitted_on`.
/// - `params_on(d)`: the [`PolicyParams`] version in force on `settled_on` `d` ([`PolicyParams::in_force`]). The
///   year's deductibles are tracked as amounts consumed, so a version change within a year applies its deductible
///   minus what was already consumed, and its cap minus what was already paid.
///
/// Per settlement, with all products half-up to the fen:
///
/// 1. `after_basic = max(0, policy_scope_cost − basic_paid)`.
/// 2. `expected_cii = max(0, after_basic − cii_left) × ratio`, with the tilted deductible and ratio for a group with
///    the tilt ([`PolicyParams::cii_terms`]); `cii_left = max(0, deductible − consumed)`, and `min(after_basic,
///    cii_left)` is consumed. Every visit type goes through this step (docs/spec/medical.md limits only assistance by visit type).
/// 3. `residual = max(0, policy_scope_cost − basic_paid − critical_illness_paid)`.
/// 4. Only for a person with a group and an assisted visit type ([`PolicyParams::assists`]; otherwise
///    `expected_ma = 0` and nothing is consumed): `expected_ma = min(max(0, residual − ma_left) × ma_ratio,
///    cap_left)`, `ma_left = max(0, income × ma_deductible_share − consumed)`, and `min(residual, ma_left)` is
///    consumed. `cap_left = max(0, annual_cap − medical_assistance_paid of the year's earlier settlements)`: what was
///    actually paid, whatever the visit type or group, not the expected amounts.
///
/// Findings (`tolerance` = [`PolicyParams::tolerance`]; "by more than the tolerance" means a difference of exactly the
/// tolerance raises nothing; expected / actual amounts in brackets):
///
/// - NOT_INSURED: `insured_on(admitted_on)` is false [—/—]. The other checks still run.
/// - ASSISTANCE_TO_INELIGIBLE: `medical_assistance_paid > 0` and no group [— / paid]. No OVER_ASSISTED then.
/// - TIER_ORDER_VIOLATION: `critical_illness_paid > 0` or `medical_assistance_paid > 0`, while `basic_paid = 0` and
///   `policy_scope_cost > 0` [— / critical illness + assistance paid].
/// - ASSISTANCE_MISSED: a group, `expected_ma` above the tolerance and nothing paid [expected_ma / 0.00].
/// - UNDER_ASSISTED: `medical_assistance_paid > 0` and `expected_ma` above it by more than the tolerance
///   [expected_ma / paid].
/// - OVER_ASSISTED: a group and `medical_assistance_paid` above `expected_ma` by more than the tolerance (including
///   assistance paid on a visit type that gets none) [expected_ma / paid].
/// - ANNUAL_CAP_EXCEEDED: `medical_assistance_paid > 0` and the year's assistance actually paid, this settlement
///   included, is above `annual_cap` — strictly, with no tolerance, as both figures are exact rather than computed;
///   raised on every such settlement [annual_cap / the year's total paid].
/// - CII_TILT_NOT_APPLIED: a group with the tilt and `expected_cii` above `critical_illness_paid` by more than the
///   tolerance [expected_cii / critical illness paid].
/// - DUPLICATE_SUSPECTED: an earlier settlement in check order has the same `admitted_on`, `settled_on` and
///   `total_cost` under another id; the first of such a set is not flagged, every later one is [—/—]. Suspected
///   duplicates still count in the running totals (they were paid).
/// - TILTED_ASSISTANCE_CANDIDATE (倾斜救助): a group (assistance recipients only, 国办发〔2021〕42号), the
///   settlement is `in_province` and `referred`, and the year's `out_of_pocket` over in-province referred
///   settlements, this one included, exceeds `income × tilted_assistance_share` (strictly); at most once per person
///   and year, on the first such settlement [threshold / that total].
pub fn check_person_year_with_versions<'p>(
    settlements: &[Settlement],
    group_on: impl Fn(NaiveDate) -> Option<u8>,
    insured_on: impl Fn(NaiveDate) -> bool,
    params_on: impl Fn(NaiveDate) -> &'p PolicyParams,
) -> Vec<SettlementCheck> {
    steps_person_year_with_versions(settlements, group_on, insured_on, params_on).into_iter().map(|(c, _)| c).collect()
}

/// One settlement's computation step by step (issue 19 item 3, docs/findings.md "Explanations"): the amounts and
/// running totals [`check_person_year_with_versions`] used, from the same code path, so an explanation can never
/// differ from the check. Amounts in yuan; ratios as decimals (`0.65`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettlementSteps {
    pub settlement_id: String,
    pub admitted_on: NaiveDate,
    pub settled_on: NaiveDate,
    /// [`PolicyParams::version`] in force on `settled_on`.
    pub policy_version: String,
    /// The assistance group on `settled_on` (`None`: not eligible).
    pub group: Option<u8>,
    /// Whether the critical-illness tilt applied (a group with `cii_tilt`).
    pub tilted: bool,
    /// Whether a medical_insurance cover held on `admitted_on`.
    pub insured: bool,
    pub policy_scope_cost: Money,
    pub basic_paid: Money,
    pub critical_illness_paid: Money,
    pub medical_assistance_paid: Money,
    /// Step 1: `max(0, policy_scope_cost − basic_paid)`.
    pub after_basic: Money,
    /// Step 2: the year's critical-illness deductible (the tilted one where the tilt applies), what was left of it
    /// before this settlement, the ratio, and the expected payment `max(0, after_basic − left) × ratio`.
    pub cii_deductible: Money,
    pub cii_deductible_left: Money,
    pub cii_ratio: Decimal,
    pub expected_cii: Money,
    /// Step 3: `max(0, after_basic − critical_illness_paid)`.
    pub residual: Money,
    /// Step 4: whether the person is assisted on this visit (a group and an assisted visit type); the year's
    /// assistance deductible (`income × share`), what was left of it before this settlement, the ratio (all `None`
    /// when not assisted), the cap left before this settlement (`annual_cap − assistance paid earlier in the year`)
    /// and the amount owed `min(max(0, residual − left) × ratio, cap left)`.
    pub assisted: bool,
    pub ma_deductible: Option<Money>,
    pub ma_deductible_left: Option<Money>,
    pub ma_ratio: Option<Decimal>,
    pub cap_left_before: Money,
    pub expected_ma: Money,
    /// Assistance actually paid in the year, this settlement included, and the cap left after it.
    pub paid_in_year: Money,
    pub annual_cap: Money,
    pub cap_left: Money,
    /// [`PolicyParams::tolerance`].
    pub tolerance: Money,
}

/// [`check_person_year_with_versions`] with each settlement's [`SettlementSteps`] beside its check.
pub fn steps_person_year_with_versions<'p>(
    settlements: &[Settlement],
    group_on: impl Fn(NaiveDate) -> Option<u8>,
    insured_on: impl Fn(NaiveDate) -> bool,
    params_on: impl Fn(NaiveDate) -> &'p PolicyParams,
) -> Vec<(SettlementCheck, SettlementSteps)> {
    let ordered = ordered(settlements);
    let mut state = YearState::default();
    let mut checks = Vec::with_capacity(ordered.len());
    for (i, &s) in ordered.iter().enumerate() {
        let year = s.settled_on.year();
        if i == 0 || state.year != year {
            state = YearState { year, ..YearState::default() };
        }
        let p = params_on(s.settled_on);
        let terms = group_on(s.settled_on).and_then(|g| p.group(g));
        let tilted = terms.is_some_and(|g| g.cii_tilt);

        // Step 1.
        let after_basic = s.policy_scope_cost.saturating_sub_zero(s.basic_paid);
        // Step 2.
        let (cii_deductible, cii_ratio) = p.cii_terms(tilted);
        let cii_left = cii_deductible.saturating_sub_zero(state.cii_consumed);
        let expected_cii = mul(after_basic.saturating_sub_zero(cii_left), cii_ratio);
        state.cii_consumed = add(state.cii_consumed, after_basic.min(cii_left));
        // Step 3.
        let residual = after_basic.saturating_sub_zero(s.critical_illness_paid);
        // Step 4.
        let cap_left_before = p.annual_cap.saturating_sub_zero(state.ma_paid);
        let mut ma_terms = None;
        let expected_ma = match terms {
            Some(g) if p.assists(s.visit_type) => {
                let ma_deductible = mul(p.prior_year_income, g.ma_deductible_share);
                let ma_left = ma_deductible.saturating_sub_zero(state.ma_consumed);
                ma_terms = Some((ma_deductible, ma_left, g.ma_ratio));
                state.ma_consumed = add(state.ma_consumed, residual.min(ma_left));
                mul(residual.saturating_sub_zero(ma_left), g.ma_ratio).min(cap_left_before)
            }
            _ => Money::ZERO,
        };
        state.ma_paid = add(state.ma_paid, s.medical_assistance_paid);
        if s.in_province && s.referred {
            state.referred_out_of_pocket = add(state.referred_out_of_pocket, s.out_of_pocket);
        }

        // Findings, in FindingCode order.
        let tolerance = p.tolerance;
        let paid = s.medical_assistance_paid;
        let mut findings = Vec::new();
        let mut raise = |code, expected, actual| findings.push(Finding::new(code, s, p, expected, actual));
        let insured = insured_on(s.admitted_on);
        if !insured {
            raise(FindingCode::NotInsured, None, None);
        }
        if terms.is_none() && !paid.is_zero() {
            raise(FindingCode::AssistanceToIneligible, None, Some(paid));
        }
        let upper_tiers_paid = add(s.critical_illness_paid, paid);
        if !upper_tiers_paid.is_zero() && s.basic_paid.is_zero() && !s.policy_scope_cost.is_zero() {
            raise(FindingCode::TierOrderViolation, None, Some(upper_tiers_paid));
        }
        if terms.is_some() && paid.is_zero() && expected_ma > tolerance {
            raise(FindingCode::AssistanceMissed, Some(expected_ma), Some(paid));
        }
        if !paid.is_zero() && exceeds(expected_ma, paid, tolerance) {
            raise(FindingCode::UnderAssisted, Some(expected_ma), Some(paid));
        }
        if terms.is_some() && exceeds(paid, expected_ma, tolerance) {
            raise(FindingCode::OverAssisted, Some(expected_ma), Some(paid));
        }
        if !paid.is_zero() && state.ma_paid > p.annual_cap {
            raise(FindingCode::AnnualCapExceeded, Some(p.annual_cap), Some(state.ma_paid));
        }
        if tilted && exceeds(expected_cii, s.critical_illness_paid, tolerance) {
            raise(FindingCode::CiiTiltNotApplied, Some(expected_cii), Some(s.critical_illness_paid));
        }
        let duplicate = ordered[..i].iter().rev().take_while(|e| e.settled_on == s.settled_on).any(|e| {
            e.settlement_id != s.settlement_id && e.admitted_on == s.admitted_on && e.total_cost == s.total_cost
        });
        if duplicate {
            raise(FindingCode::DuplicateSuspected, None, None);
        }
        let threshold = p.tilted_assistance_threshold();
        if terms.is_some()
            && s.in_province
            && s.referred
            && !state.tilted_raised
            && state.referred_out_of_pocket > threshold
        {
            state.tilted_raised = true;
            raise(FindingCode::TiltedAssistanceCandidate, Some(threshold), Some(state.referred_out_of_pocket));
        }

        let cap_left = p.annual_cap.saturating_sub_zero(state.ma_paid);
        let steps = SettlementSteps {
            settlement_id: s.settlement_id.clone(),
            admitted_on: s.admitted_on,
            settled_on: s.settled_on,
            policy_version: p.version.clone(),
            group: terms.map(|g| g.group),
            tilted,
            insured,
            policy_scope_cost: s.policy_scope_cost,
            basic_paid: s.basic_paid,
            critical_illness_paid: s.critical_illness_paid,
            medical_assistance_paid: s.medical_assistance_paid,
            after_basic,
            cii_deductible,
            cii_deductible_left: cii_left,
            cii_ratio,
            expected_cii,
            residual,
            assisted: ma_terms.is_some(),
            ma_deductible: ma_terms.map(|t| t.0),
            ma_deductible_left: ma_terms.map(|t| t.1),
            ma_ratio: ma_terms.map(|t| t.2),
            cap_left_before,
            expected_ma,
            paid_in_year: state.ma_paid,
            annual_cap: p.annual_cap,
            cap_left,
            tolerance,
        };
        checks.push((
            SettlementCheck {
                settlement_id: s.settlement_id.clone(),
                group: terms.map(|g| g.group),
                policy_version: p.version.clone(),
                after_basic,
                expected_cii,
                residual,
                expected_ma,
                cap_left,
                findings,
            },
            steps,
        ));
    }
    checks
}

/// HIGH_BURDEN over the settlements of **one person**, across years (docs/spec/medical.md "Findings"): an early
/// warning, with reason ILLNESS, for civil_affairs.
///
/// In check order (`settled_on`, then `settlement_id`), a settlement raises HIGH_BURDEN when
///
/// - the person has no assistance program on its `settled_on` (`in_program_on(settled_on)` is false;
///   docs/spec/medical.md says "no assistance program" — pass `|d| group_on(d).is_some()` to mean "no assistance group"
///   instead), and
/// - the `out_of_pocket` of the person's settlements settled in the trailing 12 months — after the same day 12 months
///   earlier, up to and including this settlement's `settled_on`, and in check order up to this settlement — reaches
///   (≥) `income × high_burden_share` of the version in force on that day (`params_on`), and
/// - no HIGH_BURDEN was raised for this person within that window, so a lasting burden warns once per 12 months.
///
/// `expected` is the threshold, `actual` the trailing 12-month total.
pub fn check_high_burden<'p>(
    settlements: &[Settlement],
    in_program_on: impl Fn(NaiveDate) -> bool,
    params_on: impl Fn(NaiveDate) -> &'p PolicyParams,
) -> Vec<Finding> {
    let ordered = ordered(settlements);
    let mut findings = Vec::new();
    let mut last_raised: Option<NaiveDate> = None;
    for (i, &s) in ordered.iter().enumerate() {
        // Day before the window; `None` only near the start of chrono's calendar, where nothing is before it.
        let before_window = s.settled_on.checked_sub_months(Months::new(12));
        let in_window = |d: NaiveDate| before_window.is_none_or(|b| d > b);
        if in_program_on(s.settled_on) || last_raised.is_some_and(in_window) {
            continue;
        }
        let p = params_on(s.settled_on);
        let total = ordered[..=i]
            .iter()
            .filter(|e| in_window(e.settled_on))
            .fold(Money::ZERO, |acc, e| add(acc, e.out_of_pocket));
        let threshold = p.high_burden_threshold();
        if total >= threshold {
            last_raised = Some(s.settled_on);
            findings.push(Finding::new(FindingCode::HighBurden, s, p, Some(threshold), Some(total)));
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn money(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    const PERSON: [u8; 32] = [7; 32];

    /// An inpatient settlement in Qingyang, in province and not referred, admitted and settled on `day`, nothing paid
    /// by others. `total_cost` is filled in so that the five parts sum to it, with the rest of the policy scope plus
    /// `out_of_scope` left to the person.
    fn settlement(
        id: &str,
        day: &str,
        scope: &str,
        basic: &str,
        cii: &str,
        ma: &str,
        out_of_scope: &str,
    ) -> Settlement {
        let (scope, basic, cii, ma, out_of_scope) =
            (money(scope), money(basic), money(cii), money(ma), money(out_of_scope));
        let in_scope_left = scope.saturating_sub_zero(basic + cii + ma);
        let out_of_pocket = in_scope_left + out_of_scope;
        Settlement {
            settlement_id: id.to_owned(),
            person: PERSON,
            division_code: "621002".to_owned(),
            admitted_on: date(day),
            settled_on: date(day),
            visit_type: VisitType::Inpatient,
            in_province: true,
            referred: false,
            total_cost: basic + cii + ma + out_of_pocket,
            policy_scope_cost: scope,
            basic_paid: basic,
            critical_illness_paid: cii,
            medical_assistance_paid: ma,
            other_paid: Money::ZERO,
            out_of_pocket,
        }
    }

    fn params() -> PolicyParams {
        PolicyParams::example_2023()
    }

    /// Checks with a constant group and insurance cover and the example parameters.
    fn check(settlements: &[Settlement], group: Option<u8>) -> Vec<SettlementCheck> {
        let p = params();
        check_person_year(settlements, |_| group, |_| true, &p)
    }

    fn codes(check: &SettlementCheck) -> Vec<&'static str> {
        check.findings.iter().map(|f| f.code.as_str()).collect()
    }

    fn only(check: &SettlementCheck, code: FindingCode) -> &Finding {
        let found: Vec<&Finding> = check.findings.iter().filter(|f| f.code == code).collect();
        assert_eq!(found.len(), 1, "{code} in {:?}", codes(check));
        found[0]
    }

    // --- worked examples (docs/spec/medical.md), group numbers from the default
    // mapping -----------------------------------

    const DIBAO: Option<u8> = Some(2);
    const TEKUN: Option<u8> = Some(1);
    const MARGINAL: Option<u8> = Some(3);

    #[test]
    fn group_numbers_of_the_examples_come_from_the_default_mapping() {
        let p = params();
        assert_eq!(group_of(&[Program::Dibao], &p), DIBAO);
        assert_eq!(group_of(&[Program::Tekun], &p), TEKUN);
        assert_eq!(group_of(&[Program::DibaoMarginal], &p), MARGINAL);
    }

    #[test]
    fn example_a_dibao_first_of_the_year() {
        // Total 30,000.00 = basic 15,000 + CII 3,250 + MA 4,725 + other 0 + out of pocket 7,025 (in-scope 2,025
        // left after the three tiers + 5,000 outside the scope).
        let a = settlement("A", "2023-03-10", "25000", "15000", "3250", "4725", "5000");
        assert_eq!(a.total_cost, money("30000.00"));
        assert_eq!(a.out_of_pocket, money("7025.00"));
        a.validate().unwrap();
        let c = &check(&[a], DIBAO)[0];
        assert_eq!(c.after_basic, money("10000.00"));
        // (10,000 − 5,000 tilted deductible) × 65% tilted ratio.
        assert_eq!(c.expected_cii, money("3250.00"));
        assert_eq!(c.residual, money("6750.00"));
        assert_eq!(c.expected_ma, money("4725.00"));
        assert_eq!(c.group, DIBAO);
        assert!(c.findings.is_empty(), "{:?}", codes(c));
    }

    #[test]
    fn example_b_marginal_assistance_missed() {
        // Total 12,000.00 = basic 6,000 + 0 + 0 + other 0 + out of pocket 6,000 (in-scope 4,000 + 2,000 outside).
        let b = settlement("B", "2023-03-10", "10000", "6000", "0", "0", "2000");
        assert_eq!(b.total_cost, money("12000.00"));
        b.validate().unwrap();
        let c = &check(&[b], MARGINAL)[0];
        // Not tilted: 4,000 < 10,000 deductible.
        assert_eq!(c.expected_cii, Money::ZERO);
        assert_eq!(c.residual, money("4000.00"));
        // (4,000 − 10% × 20,000) × 65%.
        assert_eq!(c.expected_ma, money("1300.00"));
        assert_eq!(codes(c), ["ASSISTANCE_MISSED"]);
        let f = &c.findings[0];
        assert_eq!((f.expected, f.actual), (Some(money("1300.00")), Some(Money::ZERO)));
        assert_eq!(f.settlement_id, "B");
        assert_eq!(f.person, PERSON);
        assert_eq!(f.policy_version, "621000-2023-example");
        assert_eq!(f.agency_to_act, "medical_insurance");
    }

    #[test]
    fn example_c_no_program_assistance_to_ineligible() {
        // docs/spec/medical.md gives only "MA paid 500.00"; filled in: scope 5,000, basic 3,000, MA 500, total 6,000.00
        // = 3,000 + 0 + 500 + 0 + out of pocket 2,500 (in-scope 1,500 + 1,000 outside).
        let c = settlement("C", "2023-03-10", "5000", "3000", "0", "500", "1000");
        assert_eq!(c.total_cost, money("6000.00"));
        c.validate().unwrap();
        let p = params();
        assert_eq!(group_of(&[], &p), None);
        let checked = &check(&[c], None)[0];
        assert_eq!(checked.group, None);
        assert_eq!(checked.expected_ma, Money::ZERO);
        // Exactly one finding: no OVER_ASSISTED on top.
        assert_eq!(codes(checked), ["ASSISTANCE_TO_INELIGIBLE"]);
        let f = &checked.findings[0];
        assert_eq!((f.expected, f.actual), (None, Some(money("500.00"))));
    }

    /// Examples D and E: total D 55,000.00 = 30,000 + 9,750 + 10,250 + 0 + out of pocket 5,000 (outside the scope);
    /// total E 42,000.00 = 22,000 + 6,000 + 12,000 + 0 + out of pocket 2,000 (outside the scope).
    fn examples_d_e() -> [Settlement; 2] {
        let d = settlement("D", "2023-03-10", "50000", "30000", "9750", "10250", "5000");
        let e = settlement("E", "2023-06-15", "40000", "22000", "6000", "12000", "2000");
        assert_eq!((d.total_cost, e.total_cost), (money("55000.00"), money("42000.00")));
        d.validate().unwrap();
        e.validate().unwrap();
        [d, e]
    }

    #[test]
    fn example_d_tekun_first_of_the_year() {
        let [d, _] = examples_d_e();
        let c = &check(&[d], TEKUN)[0];
        // (20,000 − 5,000) × 65%.
        assert_eq!(c.expected_cii, money("9750.00"));
        assert_eq!(c.residual, money("10250.00"));
        // 10,250 × 100%.
        assert_eq!(c.expected_ma, money("10250.00"));
        assert!(c.findings.is_empty(), "{:?}", codes(c));
        assert_eq!(c.cap_left, money("9750.00"));
    }

    #[test]
    fn example_e_same_tekun_later_that_year() {
        let checks = check(&examples_d_e(), TEKUN);
        let (d, e) = (&checks[0], &checks[1]);
        assert!(d.findings.is_empty());
        // Deductible used up by D: 18,000 × 65%.
        assert_eq!(e.expected_cii, money("11700.00"));
        assert_eq!(e.residual, money("12000.00"));
        // min(12,000 × 100%, cap left 9,750).
        assert_eq!(e.expected_ma, money("9750.00"));
        assert_eq!(codes(e), ["OVER_ASSISTED", "ANNUAL_CAP_EXCEEDED", "CII_TILT_NOT_APPLIED"]);
        let tilt = only(e, FindingCode::CiiTiltNotApplied);
        assert_eq!((tilt.expected, tilt.actual), (Some(money("11700.00")), Some(money("6000.00"))));
        let over = only(e, FindingCode::OverAssisted);
        assert_eq!((over.expected, over.actual), (Some(money("9750.00")), Some(money("12000.00"))));
        let cap = only(e, FindingCode::AnnualCapExceeded);
        // 10,250 + 12,000 paid against a 20,000 cap.
        assert_eq!((cap.expected, cap.actual), (Some(money("20000.00")), Some(money("22250.00"))));
        assert_eq!(e.cap_left, Money::ZERO);
    }

    #[test]
    fn settlements_are_checked_in_settled_on_order_whatever_the_input_order() {
        let [d, e] = examples_d_e();
        assert_eq!(check(&[e.clone(), d.clone()], TEKUN), check(&[d, e], TEKUN));
    }

    #[test]
    fn ties_on_settled_on_are_ordered_by_settlement_id() {
        // Same day, two halves of example D: "D1" consumes the tilted CII deductible, "D2" does not.
        let d2 = settlement("D2", "2023-03-10", "10000", "5000", "0", "0", "0");
        let d1 = settlement("D1", "2023-03-10", "10000", "5000", "0", "0", "0");
        let checks = check(&[d2, d1], TEKUN);
        assert_eq!(checks[0].settlement_id, "D1");
        // D1: after basic 5,000, all of it deductible. D2: 5,000 × 65%.
        assert_eq!(checks[0].expected_cii, Money::ZERO);
        assert_eq!(checks[1].expected_cii, money("3250.00"));
    }

    // --- the computation ------------------------------------------------------------------------------------------

    #[test]
    fn untilted_groups_use_the_full_cii_deductible_and_ratio() {
        // Group 4: after basic 30,000; (30,000 − 10,000) × 60% = 12,000.
        let s = settlement("S", "2023-03-10", "40000", "10000", "12000", "0", "0");
        let c = &check(&[s], Some(4))[0];
        assert_eq!(c.expected_cii, money("12000.00"));
        // Residual 18,000; (18,000 − 25% × 20,000) × 60% = 7,800.
        assert_eq!(c.expected_ma, money("7800.00"));
        // Not tilted, so paying the untilted CII raises nothing about the tilt.
        assert_eq!(codes(c), ["ASSISTANCE_MISSED"]);
    }

    #[test]
    fn people_without_a_group_get_untilted_cii_and_no_assistance() {
        let s = settlement("S", "2023-03-10", "40000", "10000", "0", "0", "0");
        let c = &check(&[s], None)[0];
        assert_eq!(c.expected_cii, money("12000.00"));
        assert_eq!(c.expected_ma, Money::ZERO);
        assert!(c.findings.is_empty(), "{:?}", codes(c));
    }

    #[test]
    fn the_ma_deductible_is_consumed_across_the_year() {
        // Group 3, deductible 2,000: the first residual 1,500 is all deductible, 500 left for the second.
        let first = settlement("S1", "2023-02-01", "3500", "2000", "0", "0", "0");
        let second = settlement("S2", "2023-05-01", "5000", "2000", "0", "1625", "0");
        let checks = check(&[first, second], MARGINAL);
        assert_eq!(checks[0].expected_ma, Money::ZERO);
        assert!(checks[0].findings.is_empty());
        // (3,000 − 500) × 65%.
        assert_eq!(checks[1].expected_ma, money("1625.00"));
        assert!(checks[1].findings.is_empty(), "{:?}", codes(&checks[1]));
    }

    #[test]
    fn the_cii_deductible_is_consumed_across_the_year_untilted() {
        // No group: 6,000 then 6,000 after basic against 10,000: 0, then (6,000 − 4,000) × 60%.
        let first = settlement("S1", "2023-02-01", "8000", "2000", "0", "0", "0");
        let second = settlement("S2", "2023-05-01", "8000", "2000", "1200", "0", "0");
        let checks = check(&[first, second], None);
        assert_eq!(checks[0].expected_cii, Money::ZERO);
        assert_eq!(checks[1].expected_cii, money("1200.00"));
    }

    #[test]
    fn the_cap_falls_by_assistance_paid_not_expected() {
        // Tekun, 100%: the first settlement is owed 15,000 but is paid 5,000 (UNDER_ASSISTED); the cap left for the
        // second is 20,000 − 5,000 = 15,000, not 5,000.
        let first = settlement("S1", "2023-02-01", "15000", "0", "0", "5000", "0");
        let mut first = first;
        first.basic_paid = money("0.01");
        first.out_of_pocket = money("9999.99");
        first.validate().unwrap();
        let second = settlement("S2", "2023-05-01", "20000", "5000", "0", "15000", "0");
        let checks = check_person_year(&[first, second], |_| TEKUN, |_| true, &{
            let mut p = params();
            p.cii_deductible = money("1000000");
            p
        });
        assert_eq!(checks[0].expected_ma, money("14999.99"));
        assert_eq!(codes(&checks[0]), ["UNDER_ASSISTED"]);
        assert_eq!(checks[0].cap_left, money("15000.00"));
        assert_eq!(checks[1].expected_ma, money("15000.00"));
        assert!(checks[1].findings.is_empty(), "{:?}", codes(&checks[1]));
        assert_eq!(checks[1].cap_left, Money::ZERO);
    }

    #[test]
    fn residual_uses_the_cii_actually_paid() {
        // Dibao: expected CII 3,250 but 1,000 paid; residual = 25,000 − 15,000 − 1,000 = 9,000; MA 6,300.
        let s = settlement("S", "2023-03-10", "25000", "15000", "1000", "6300", "0");
        let c = &check(&[s], DIBAO)[0];
        assert_eq!(c.residual, money("9000.00"));
        assert_eq!(c.expected_ma, money("6300.00"));
        assert_eq!(codes(c), ["CII_TILT_NOT_APPLIED"]);
    }

    #[test]
    fn basic_above_scope_gives_zero_not_negative() {
        let mut s = settlement("S", "2023-03-10", "1000", "0", "0", "0", "0");
        s.basic_paid = money("1200");
        s.out_of_pocket = Money::ZERO;
        s.total_cost = money("1200");
        s.validate().unwrap();
        let c = &check(&[s], DIBAO)[0];
        assert_eq!(
            (c.after_basic, c.expected_cii, c.residual, c.expected_ma),
            (Money::ZERO, Money::ZERO, Money::ZERO, Money::ZERO)
        );
    }

    #[test]
    fn running_totals_restart_on_1_january() {
        // Example D on 2023-12-31, then example E on 2024-01-02: a new year, so the tilted CII deductible and the
        // cap start again. E: (18,000 − 5,000) × 65% = 8,450; residual 12,000 × 100% under a fresh 20,000 cap.
        // E paid by those rules: residual 18,000 − 8,450 = 9,550 × 100% (within the fresh cap); total 42,000.00 =
        // 22,000 + 8,450 + 9,550 + 0 + 2,000. Without the restart the CII would be 11,700 and the cap left 9,750.
        let [mut d, _] = examples_d_e();
        (d.admitted_on, d.settled_on) = (date("2023-12-31"), date("2023-12-31"));
        let e = settlement("E", "2024-01-02", "40000", "22000", "8450", "9550", "2000");
        assert_eq!(e.total_cost, money("42000.00"));
        let checks = check(&[e, d], TEKUN);
        assert_eq!(checks[1].settlement_id, "E");
        assert_eq!(checks[1].expected_cii, money("8450.00"));
        assert_eq!(checks[1].expected_ma, money("9550.00"));
        assert_eq!(checks[1].cap_left, money("10450.00"));
        assert!(checks[1].findings.is_empty(), "{:?}", codes(&checks[1]));
    }

    #[test]
    fn outpatient_general_gets_no_assistance_by_default() {
        let mut s = settlement("S", "2023-03-10", "1000", "600", "0", "0", "0");
        s.visit_type = VisitType::OutpatientGeneral;
        let c = &check(std::slice::from_ref(&s), DIBAO)[0];
        assert_eq!(c.expected_ma, Money::ZERO);
        assert!(c.findings.is_empty());
        // Assisted when the parameter says so: 400 × 70%.
        let mut p = params();
        p.outpatient_general_assisted = true;
        let c = &check_person_year(std::slice::from_ref(&s), |_| DIBAO, |_| true, &p)[0];
        assert_eq!(c.expected_ma, money("280.00"));
        assert_eq!(codes(c), ["ASSISTANCE_MISSED"]);
    }

    #[test]
    fn assistance_paid_on_general_outpatient_care_is_over_assistance() {
        let mut s = settlement("S", "2023-03-10", "1000", "600", "0", "280", "0");
        s.visit_type = VisitType::OutpatientGeneral;
        let c = &check(&[s], DIBAO)[0];
        let f = only(c, FindingCode::OverAssisted);
        assert_eq!((f.expected, f.actual), (Some(Money::ZERO), Some(money("280.00"))));
    }

    #[test]
    fn chronic_outpatient_care_is_assisted() {
        let mut s = settlement("S", "2023-03-10", "1000", "600", "0", "280", "0");
        s.visit_type = VisitType::OutpatientChronic;
        let c = &check(&[s], DIBAO)[0];
        assert_eq!(c.expected_ma, money("280.00"));
        assert!(c.findings.is_empty());
    }

    #[test]
    fn group_is_taken_on_settled_on_and_insurance_on_admitted_on() {
        // Admitted in December, settled in January: dibao from 2024-01-01 only, insured until 2023-12-31 only.
        let mut s = settlement("S", "2024-01-03", "1000", "600", "0", "280", "0");
        s.admitted_on = date("2023-12-28");
        let p = params();
        let from_2024 = |d: NaiveDate| (d >= date("2024-01-01")).then_some(2);
        let in_2023 = |d: NaiveDate| d.year() == 2023;
        let c = &check_person_year(std::slice::from_ref(&s), from_2024, in_2023, &p)[0];
        assert_eq!(c.group, DIBAO);
        assert!(c.findings.is_empty(), "{:?}", codes(c));
        // Insured only in 2024: not on the day of admission.
        let in_2024 = |d: NaiveDate| d.year() == 2024;
        let c = &check_person_year(std::slice::from_ref(&s), from_2024, in_2024, &p)[0];
        assert_eq!(codes(c), ["NOT_INSURED"]);
        assert_eq!((c.findings[0].expected, c.findings[0].actual), (None, None));
    }

    #[test]
    fn a_group_the_parameters_do_not_define_counts_as_none() {
        let s = settlement("S", "2023-03-10", "1000", "600", "0", "280", "0");
        let c = &check(&[s], Some(9))[0];
        assert_eq!(c.group, None);
        assert_eq!(codes(c), ["ASSISTANCE_TO_INELIGIBLE"]);
    }

    #[test]
    fn a_mid_year_version_applies_its_terms_to_what_is_left() {
        // From 2023-07-01 dibao assistance is 80% and the cap 25,000. The tilted CII deductible (5,000) carries over.
        let mut v2 = params();
        v2.version = "621000-2023-07".to_owned();
        v2.effective_from = date("2023-07-01");
        v2.groups[1].ma_ratio = pct(80);
        v2.annual_cap = yuan(25_000);
        let versions = [params(), v2];
        let first = settlement("S1", "2023-03-10", "25000", "15000", "3250", "4725", "0");
        let second = settlement("S2", "2023-08-10", "25000", "15000", "6500", "2800", "0");
        let on = |d| PolicyParams::in_force(&versions, "621000", d).unwrap();
        let checks = check_person_year_with_versions(&[second, first], |_| DIBAO, |_| true, on);
        assert_eq!(checks[0].policy_version, "621000-2023-example");
        assert_eq!(checks[1].policy_version, "621000-2023-07");
        // Deductible already consumed: 10,000 × 65% = 6,500; residual 3,500 × 80% = 2,800.
        assert_eq!(checks[1].expected_cii, money("6500.00"));
        assert_eq!(checks[1].expected_ma, money("2800.00"));
        // 25,000 − 4,725 − 2,800.
        assert_eq!(checks[1].cap_left, money("17475.00"));
        assert!(checks[1].findings.is_empty());
    }

    // --- rounding ---------------------------------------------------------------------------------------------------

    #[test]
    fn assistance_rounds_half_up_at_a_midpoint() {
        // Marginal: (3,000.10 − 2,000) × 65% = 650.065 → 650.07 (banker's rounding would give 650.06).
        let s = settlement("S", "2023-03-10", "4000.10", "1000", "0", "650.07", "0");
        let c = &check(&[s], MARGINAL)[0];
        assert_eq!(c.expected_ma, money("650.07"));
        assert!(c.findings.is_empty());
    }

    #[test]
    fn critical_illness_rounds_half_up_at_a_midpoint() {
        // Dibao: (5,000.10 − 5,000) × 65% = 0.065 → 0.07 (banker's: 0.06); residual 5,000.10 − 0.07 = 5,000.03,
        // × 70% = 3,500.021 → 3,500.02.
        let s = settlement("S", "2023-03-10", "5000.10", "0", "0.07", "0", "0");
        let c = &check(&[s], DIBAO)[0];
        assert_eq!(c.expected_cii, money("0.07"));
        assert_eq!(c.residual, money("5000.03"));
        assert_eq!(c.expected_ma, money("3500.02"));
    }

    #[test]
    fn deductibles_round_half_up_to_the_fen() {
        // Tilted CII deductible 10,000.01 × 50% = 5,000.005 → 5,000.01; marginal MA deductible 20,000.05 × 10% =
        // 2,000.005 → 2,000.01.
        let mut p = params();
        p.cii_deductible = money("10000.01");
        p.prior_year_income = money("20000.05");
        assert_eq!(p.cii_terms(true), (money("5000.01"), dec("0.65")));
        assert_eq!(p.cii_terms(false), (money("10000.01"), dec("0.60")));
        // Residual 2,000.03: (2,000.03 − 2,000.01) × 65% = 0.013 → 0.01 (a deductible of 2,000.00 would give 0.02).
        let s = settlement("S", "2023-03-10", "2000.03", "0", "0", "0", "0");
        let c = &check_person_year(&[s], |_| MARGINAL, |_| true, &p)[0];
        assert_eq!(c.expected_ma, money("0.01"));
    }

    // --- every finding, triggered and near misses -------------------------------------------------------------------

    #[test]
    fn not_insured() {
        let s = settlement("S", "2023-03-10", "1000", "600", "0", "0", "0");
        let p = params();
        let c = &check_person_year(std::slice::from_ref(&s), |_| None, |_| false, &p)[0];
        assert_eq!(codes(c), ["NOT_INSURED"]);
        let c = &check_person_year(&[s], |_| None, |_| true, &p)[0];
        assert!(c.findings.is_empty());
    }

    #[test]
    fn assistance_to_ineligible_needs_a_payment() {
        let paid = settlement("S", "2023-03-10", "1000", "600", "0", "0.01", "0");
        assert_eq!(codes(&check(&[paid], None)[0]), ["ASSISTANCE_TO_INELIGIBLE"]);
        let unpaid = settlement("S", "2023-03-10", "1000", "600", "0", "0", "0");
        assert!(check(&[unpaid], None)[0].findings.is_empty());
    }

    #[test]
    fn tier_order_violation() {
        // Assistance without basic: dibao residual 1,000 × 70% = 700 paid, basic 0.
        let ma = settlement("S", "2023-03-10", "1000", "0", "0", "700", "0");
        let c = &check(&[ma], DIBAO)[0];
        assert_eq!(codes(c), ["TIER_ORDER_VIOLATION"]);
        assert_eq!((c.findings[0].expected, c.findings[0].actual), (None, Some(money("700.00"))));
        // Critical illness without basic, for a person with no group.
        let cii = settlement("S", "2023-03-10", "20000", "0", "6000", "0", "0");
        let c = &check(&[cii], None)[0];
        assert_eq!(codes(c), ["TIER_ORDER_VIOLATION"]);
        // Near misses: basic paid 0.01; nothing in scope; nothing paid by the upper tiers.
        let mut one_fen = settlement("S", "2023-03-10", "20000", "0.01", "6000", "0", "0");
        one_fen.validate().unwrap();
        assert!(check(std::slice::from_ref(&one_fen), None)[0].findings.is_empty());
        one_fen.basic_paid = Money::ZERO;
        one_fen.policy_scope_cost = Money::ZERO;
        one_fen.out_of_pocket += money("0.01");
        one_fen.validate().unwrap();
        let c = &check(&[one_fen], None)[0];
        assert!(!codes(c).contains(&"TIER_ORDER_VIOLATION"), "{:?}", codes(c));
        let unpaid = settlement("S", "2023-03-10", "1000", "0", "0", "0", "0");
        assert!(check(&[unpaid], None)[0].findings.is_empty());
    }

    /// A dibao settlement whose expected assistance is `ma` (residual = ma / 70%, with ma a multiple of 0.07) and
    /// which paid `paid`.
    fn dibao_owed(residual: &str, paid: &str) -> SettlementCheck {
        let s = settlement("S", "2023-03-10", residual, "0.01", "0", paid, "0");
        let mut s = s;
        s.policy_scope_cost += money("0.01");
        s.out_of_pocket = s.policy_scope_cost.saturating_sub_zero(s.basic_paid + s.medical_assistance_paid);
        s.total_cost = s.policy_scope_cost;
        s.validate().unwrap();
        // Keep the CII out of the way.
        let mut p = params();
        p.cii_deductible = money("1000000");
        check_person_year(&[s], |_| DIBAO, |_| true, &p).remove(0)
    }

    #[test]
    fn assistance_missed_above_the_tolerance_only() {
        // Residual 1.45 × 70% = 1.015 → 1.02: above 1.00.
        let c = dibao_owed("1.45", "0");
        assert_eq!(c.expected_ma, money("1.02"));
        assert_eq!(codes(&c), ["ASSISTANCE_MISSED"]);
        // 1.44 × 70% = 1.008 → 1.01: still above.
        let c = dibao_owed("1.44", "0");
        assert_eq!(c.expected_ma, money("1.01"));
        assert_eq!(codes(&c), ["ASSISTANCE_MISSED"]);
        // 1.43 × 70% = 1.001 → 1.00: exactly the tolerance, no finding.
        let c = dibao_owed("1.43", "0");
        assert_eq!(c.expected_ma, money("1.00"));
        assert!(c.findings.is_empty());
    }

    #[test]
    fn under_assisted_beyond_the_tolerance_only() {
        // Owed 700.00 (1,000 × 70%).
        let c = dibao_owed("1000", "698.99");
        assert_eq!(c.expected_ma, money("700.00"));
        assert_eq!(codes(&c), ["UNDER_ASSISTED"]);
        let f = &c.findings[0];
        assert_eq!((f.expected, f.actual), (Some(money("700.00")), Some(money("698.99"))));
        assert!(dibao_owed("1000", "699.00").findings.is_empty());
    }

    #[test]
    fn over_assisted_beyond_the_tolerance_only() {
        let c = dibao_owed("1000", "701.01");
        assert_eq!(codes(&c), ["OVER_ASSISTED"]);
        let f = &c.findings[0];
        assert_eq!((f.expected, f.actual), (Some(money("700.00")), Some(money("701.01"))));
        assert!(dibao_owed("1000", "701.00").findings.is_empty());
    }

    #[test]
    fn annual_cap_exceeded_strictly_above_the_cap() {
        // Tekun (100%), CII out of the way. 15,000 then 5,000 owed and paid: exactly the 20,000 cap, no finding.
        let mut p = params();
        p.cii_deductible = money("1000000");
        let first = settlement("S1", "2023-02-01", "30000", "15000", "0", "15000", "0");
        let second = settlement("S2", "2023-05-01", "10000", "5000", "0", "5000", "0");
        let checks = check_person_year(&[first.clone(), second], |_| TEKUN, |_| true, &p);
        assert!(checks.iter().all(|c| c.findings.is_empty()));
        assert_eq!(checks[1].expected_ma, money("5000.00"));
        assert_eq!(checks[1].cap_left, Money::ZERO);
        // One fen more paid on the second (residual 5,000.01, owed 5,000 by the cap; 0.01 is within the tolerance for
        // OVER_ASSISTED): the cap is passed.
        let over = settlement("S2", "2023-05-01", "10000", "4999.99", "0", "5000.01", "0");
        // Then one settlement paying nothing (no new finding), one paying 1.00 (over by exactly the tolerance, but
        // past the cap again).
        let nothing = settlement("S3", "2023-08-01", "1000", "1000", "0", "0", "0");
        let one = settlement("S4", "2023-09-01", "1000", "999", "0", "1", "0");
        let checks = check_person_year(&[first, over, nothing, one], |_| TEKUN, |_| true, &p);
        assert_eq!(codes(&checks[1]), ["ANNUAL_CAP_EXCEEDED"]);
        let f = &checks[1].findings[0];
        assert_eq!((f.expected, f.actual), (Some(money("20000.00")), Some(money("20000.01"))));
        assert!(checks[2].findings.is_empty());
        assert_eq!(checks[3].expected_ma, Money::ZERO);
        assert_eq!(codes(&checks[3]), ["ANNUAL_CAP_EXCEEDED"]);
        assert_eq!(checks[3].findings[0].actual, Some(money("20001.01")));
    }

    #[test]
    fn cii_tilt_not_applied_beyond_the_tolerance_only() {
        // Dibao, after basic 6,000: (6,000 − 5,000) × 65% = 650. Assistance paid as owed: (6,000 − CII) × 70%.
        let short = settlement("S", "2023-03-10", "7000", "1000", "648.99", "3745.71", "0");
        let c = &check(&[short], DIBAO)[0];
        assert_eq!(c.expected_cii, money("650.00"));
        assert_eq!(c.expected_ma, money("3745.71"));
        assert_eq!(codes(c), ["CII_TILT_NOT_APPLIED"]);
        let f = &c.findings[0];
        assert_eq!((f.expected, f.actual), (Some(money("650.00")), Some(money("648.99"))));
        let edge = settlement("S", "2023-03-10", "7000", "1000", "649", "3745.70", "0");
        let c = &check(&[edge], DIBAO)[0];
        assert_eq!(c.expected_ma, money("3745.70"));
        assert!(c.findings.is_empty(), "{:?}", codes(c));
        // The untilted rule paid to a dibao recipient: (6,000 − 10,000) → 0 paid, 650 owed.
        let untilted = settlement("S", "2023-03-10", "7000", "1000", "0", "4200", "0");
        assert_eq!(codes(&check(std::slice::from_ref(&untilted), DIBAO)[0]), ["CII_TILT_NOT_APPLIED"]);
        // Groups 3–4 have no tilt: no finding whatever the CII paid.
        let marginal = settlement("S", "2023-03-10", "7000", "1000", "0", "2600", "0");
        assert!(check(&[marginal], MARGINAL)[0].findings.is_empty());
    }

    #[test]
    fn duplicate_suspected_flags_the_later_ones() {
        let a = settlement("X1", "2023-03-10", "1000", "600", "0", "0", "0");
        let mut b = a.clone();
        b.settlement_id = "X2".to_owned();
        let mut c = a.clone();
        c.settlement_id = "X3".to_owned();
        let checks = check(&[c.clone(), b.clone(), a.clone()], None);
        assert!(checks[0].findings.is_empty());
        assert_eq!(codes(&checks[1]), ["DUPLICATE_SUSPECTED"]);
        assert_eq!(codes(&checks[2]), ["DUPLICATE_SUSPECTED"]);
        assert_eq!(checks[2].settlement_id, "X3");
        // Near misses: another total, another admission day, another settlement day.
        let mut other_total = b.clone();
        other_total.total_cost += money("0.01");
        other_total.out_of_pocket += money("0.01");
        let mut other_admission = b.clone();
        other_admission.admitted_on = date("2023-03-09");
        let mut other_settlement = b;
        other_settlement.settled_on = date("2023-03-11");
        for other in [other_total, other_admission, other_settlement] {
            other.validate().unwrap();
            let checks = check(&[a.clone(), other], None);
            assert!(checks.iter().all(|c| c.findings.is_empty()));
        }
    }

    #[test]
    fn tilted_assistance_candidate() {
        // Dibao, referred, in province; threshold 50% × 20,000 = 10,000. Out of pocket 6,000 then 4,000.01.
        let mut first = settlement("S1", "2023-02-01", "1000", "1000", "0", "0", "6000");
        let mut second = settlement("S2", "2023-05-01", "1000", "1000", "0", "0", "4000.01");
        let mut third = settlement("S3", "2023-06-01", "1000", "1000", "0", "0", "100");
        for s in [&mut first, &mut second, &mut third] {
            s.referred = true;
        }
        let checks = check(&[first.clone(), second.clone(), third.clone()], DIBAO);
        assert!(checks[0].findings.is_empty());
        assert_eq!(codes(&checks[1]), ["TILTED_ASSISTANCE_CANDIDATE"]);
        let f = &checks[1].findings[0];
        assert_eq!((f.expected, f.actual), (Some(money("10000.00")), Some(money("10000.01"))));
        // Once a year.
        assert!(checks[2].findings.is_empty());
        // Exactly the threshold: not "exceeds".
        let mut exact = second.clone();
        exact.out_of_pocket = money("4000");
        exact.total_cost = money("5000");
        let checks = check(&[first.clone(), exact], DIBAO);
        assert!(checks[1].findings.is_empty());
        // Not referred, or outside the province: neither raises it nor counts.
        let mut unreferred = second.clone();
        unreferred.referred = false;
        let mut outside = second.clone();
        outside.in_province = false;
        for s in [unreferred, outside] {
            let checks = check(&[first.clone(), s], DIBAO);
            assert!(checks[1].findings.is_empty());
        }
        // No group: HIGH_BURDEN territory instead.
        let checks = check(&[first, second], None);
        assert!(checks[1].findings.is_empty());
    }

    fn no_program(_: NaiveDate) -> bool {
        false
    }

    #[test]
    fn high_burden_when_the_trailing_year_reaches_the_threshold() {
        // Threshold 100% × 20,000. 2023-03-15: 12,000; 2024-03-15: 8,000 → the window after 2023-03-15 holds only
        // 8,000. 2024-03-14: 8,000 → 20,000 exactly, reached.
        let p = params();
        let old = settlement("S1", "2023-03-15", "0", "0", "0", "0", "12000");
        let late = settlement("S2", "2024-03-15", "0", "0", "0", "0", "8000");
        assert!(check_high_burden(&[old.clone(), late], no_program, |_| &p).is_empty());
        let in_time = settlement("S2", "2024-03-14", "0", "0", "0", "0", "8000");
        let findings = check_high_burden(&[in_time.clone(), old.clone()], no_program, |_| &p);
        assert_eq!(findings.len(), 1);
        let f = &findings[0];
        assert_eq!(f.code, FindingCode::HighBurden);
        assert_eq!(f.settlement_id, "S2");
        assert_eq!((f.expected, f.actual), (Some(money("20000.00")), Some(money("20000.00"))));
        assert_eq!(f.agency_to_act, "civil_affairs");
        assert_eq!(f.policy_version, "621000-2023-example");
        // One fen short: nothing.
        let mut short = in_time.clone();
        short.out_of_pocket = money("7999.99");
        short.total_cost = short.out_of_pocket;
        assert!(check_high_burden(&[old.clone(), short], no_program, |_| &p).is_empty());
        // A person in a program: nothing.
        assert!(check_high_burden(&[old, in_time], |_| true, |_| &p).is_empty());
    }

    #[test]
    fn high_burden_warns_once_per_twelve_months() {
        let p = params();
        let days = ["2023-01-10", "2023-02-10", "2023-06-10", "2024-01-10", "2024-02-10"];
        let settlements: Vec<Settlement> = days
            .iter()
            .enumerate()
            .map(|(i, day)| settlement(&format!("S{i}"), day, "0", "0", "0", "0", "20000"))
            .collect();
        let findings = check_high_burden(&settlements, no_program, |_| &p);
        let raised: Vec<&str> = findings.iter().map(|f| f.settlement_id.as_str()).collect();
        // S0 raises; S1 and S2 are within 12 months of it. S3's window (after 2023-01-10) no longer holds S0, so it
        // raises again; S4 is within 12 months of S3.
        assert_eq!(raised, ["S0", "S3"]);
    }

    #[test]
    fn high_burden_counts_same_day_settlements_in_check_order_only() {
        let p = params();
        let b = settlement("B", "2023-05-01", "0", "0", "0", "0", "10000");
        let a = settlement("A", "2023-05-01", "0", "0", "0", "0", "10000");
        let findings = check_high_burden(&[b, a], no_program, |_| &p);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].settlement_id, "B");
    }

    #[test]
    fn high_burden_skips_days_in_a_program() {
        // In a program until 2023-06-30: the crossing on 2023-05-01 raises nothing, the next settlement does.
        let p = params();
        let a = settlement("A", "2023-05-01", "0", "0", "0", "0", "25000");
        let b = settlement("B", "2023-08-01", "0", "0", "0", "0", "0.01");
        let in_program = |d: NaiveDate| d <= date("2023-06-30");
        let findings = check_high_burden(&[a, b], in_program, |_| &p);
        assert_eq!(findings.len(), 1);
        assert_eq!((findings[0].settlement_id.as_str(), findings[0].actual), ("B", Some(money("25000.01"))));
    }

    #[test]
    fn every_finding_code_is_raised_somewhere() {
        // One scenario per code, from the tests above, collected to prove the list is complete.
        let mut seen = std::collections::BTreeSet::new();
        let p = params();
        let mut add_codes = |checks: Vec<SettlementCheck>| {
            for c in checks {
                seen.extend(c.findings.iter().map(|f| f.code));
            }
        };
        let s = settlement("S", "2023-03-10", "1000", "600", "0", "0", "0");
        add_codes(check_person_year(std::slice::from_ref(&s), |_| None, |_| false, &p));
        add_codes(check(&[settlement("C", "2023-03-10", "5000", "3000", "0", "500", "1000")], None));
        add_codes(check(&[settlement("T", "2023-03-10", "1000", "0", "0", "700", "0")], DIBAO));
        add_codes(check(&[settlement("B", "2023-03-10", "10000", "6000", "0", "0", "2000")], MARGINAL));
        add_codes(vec![dibao_owed("1000", "698.99")]);
        add_codes(check(&examples_d_e(), TEKUN));
        let mut dup = s.clone();
        dup.settlement_id = "S0".to_owned();
        add_codes(check(&[s, dup], None));
        let mut referred = settlement("R", "2023-03-10", "1000", "1000", "0", "0", "10000.01");
        referred.referred = true;
        add_codes(check(&[referred], DIBAO));
        let burden = settlement("H", "2023-03-10", "0", "0", "0", "0", "20000");
        seen.extend(check_high_burden(&[burden], no_program, |_| &p).iter().map(|f| f.code));
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), FindingCode::ALL);
    }

    // --- validation -----------------------------------------------------------------------------------------------

    #[test]
    fn valid_settlements_pass() {
        let mut s = settlement("S", "2023-03-10", "1000", "600", "0", "280", "50");
        s.other_paid = money("20");
        s.out_of_pocket = money("150");
        s.total_cost = money("1050");
        s.admitted_on = date("2023-03-01");
        assert_eq!(s.validate(), Ok(()));
        // Same day admission and settlement; scope equal to the total.
        let same = settlement("S", "2023-03-10", "1000", "600", "0", "280", "0");
        assert_eq!(same.policy_scope_cost, same.total_cost);
        assert_eq!(same.validate(), Ok(()));
    }

    #[test]
    fn scope_above_total_is_rejected() {
        let mut s = settlement("S", "2023-03-10", "1000", "600", "0", "0", "0");
        s.policy_scope_cost = money("1000.01");
        let e = s.validate().unwrap_err();
        assert_eq!(e.field, "policy_scope_cost");
    }

    #[test]
    fn parts_not_summing_to_the_total_are_rejected_to_the_fen() {
        let base = settlement("S", "2023-03-10", "1000", "600", "100", "200", "0");
        for field in 0..5 {
            for delta in ["0.01", "100"] {
                let mut s = base.clone();
                let part = match field {
                    0 => &mut s.basic_paid,
                    1 => &mut s.critical_illness_paid,
                    2 => &mut s.medical_assistance_paid,
                    3 => &mut s.other_paid,
                    _ => &mut s.out_of_pocket,
                };
                *part += money(delta);
                assert_eq!(s.validate().unwrap_err().field, "total_cost", "part {field} + {delta}");
            }
        }
        let mut short = base.clone();
        short.total_cost += money("0.01");
        assert_eq!(short.validate().unwrap_err().field, "total_cost");
        let mut overflow = base;
        overflow.other_paid = money_max();
        assert_eq!(overflow.validate().unwrap_err().field, "total_cost");
    }

    #[test]
    fn settled_before_admitted_is_rejected() {
        let mut s = settlement("S", "2023-03-10", "1000", "600", "0", "0", "0");
        s.admitted_on = date("2023-03-11");
        let e = s.validate().unwrap_err();
        assert_eq!(e.field, "settled_on");
        assert_eq!(e.to_string(), "settled_on: must not be before admitted_on");
    }

    #[test]
    fn negative_amounts_and_unknown_visit_types_cannot_be_built() {
        assert!(Money::parse("-1.00").is_err());
        assert!(Money::from_fen(-1).is_err());
        assert_eq!(VisitType::parse("EMERGENCY"), None);
        assert_eq!(VisitType::parse("inpatient"), None);
        for v in VisitType::ALL {
            assert_eq!(VisitType::parse(v.as_str()), Some(v));
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{v}\""));
        }
        assert!(serde_json::from_str::<VisitType>("\"EMERGENCY\"").is_err());
    }

    // --- groups, codes, parameters ----------------------------------------------------------------------------------

    #[test]
    fn default_group_mapping() {
        use Program::*;
        let p = params();
        let cases = [
            (Tekun, Some(1)),
            (Orphan, Some(1)),
            (UnsupportedChild, Some(1)),
            (HivAffectedChild, Some(1)),
            (Dibao, Some(2)),
            (AtRisk, Some(2)),
            (DibaoMarginal, Some(3)),
            (IllnessImpoverished, Some(4)),
            (ExpenditureHardship, None),
        ];
        assert_eq!(cases.len(), Program::ALL.len());
        for (program, group) in cases {
            assert_eq!(group_of(&[program], &p), group, "{program}");
        }
        assert_eq!(group_of(&[], &p), None);
        assert_eq!(group_of(&[IllnessImpoverished, DibaoMarginal, Dibao], &p), Some(2));
        assert_eq!(group_of(&[ExpenditureHardship, IllnessImpoverished], &p), Some(4));
        assert_eq!(group_of(&[Dibao, Orphan], &p), Some(1));
    }

    #[test]
    fn example_parameters_follow_medical_md() {
        let p = params();
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(p.version, "621000-2023-example");
        assert_eq!(p.pooling_area, "621000");
        assert_eq!(p.effective_from, date("2023-01-01"));
        let terms: Vec<(u8, Decimal, Decimal, bool)> =
            p.groups.iter().map(|g| (g.group, g.ma_deductible_share, g.ma_ratio, g.cii_tilt)).collect();
        assert_eq!(
            terms,
            [
                (1, dec("0"), dec("1"), true),
                (2, dec("0"), dec("0.70"), true),
                (3, dec("0.10"), dec("0.65"), false),
                (4, dec("0.25"), dec("0.60"), false),
            ]
        );
        assert_eq!((p.prior_year_income, p.annual_cap, p.cii_deductible), (yuan(20_000), yuan(20_000), yuan(10_000)));
        assert_eq!(p.cii_ratio, dec("0.6"));
        assert_eq!(p.cii_terms(true), (money("5000"), dec("0.65")));
        assert!(!p.outpatient_general_assisted);
        assert_eq!(p.tolerance, money("1.00"));
        assert_eq!(p.high_burden_threshold(), money("20000.00"));
        assert_eq!(p.tilted_assistance_threshold(), money("10000.00"));
        assert!(p.national_floor_warnings().is_empty());
    }

    #[test]
    fn national_floor_warnings_name_the_parameters() {
        let mut p = params();
        p.groups[1].ma_ratio = pct(69);
        p.groups[0].ma_deductible_share = pct(6);
        p.cii_deductible = money("10000.01");
        p.cii_ratio = pct(59);
        p.cii_tilt_deductible_share = pct(60);
        p.cii_tilt_ratio_points = pct(4);
        let fields: Vec<String> = p.national_floor_warnings().into_iter().map(|w| w.field).collect();
        assert_eq!(
            fields,
            [
                "groups[0].ma_deductible_share",
                "groups[1].ma_ratio",
                "cii_deductible",
                "cii_ratio",
                "cii_tilt_deductible_share",
                "cii_tilt_ratio_points",
            ]
        );
        // Group 3 at 65% is fine: the rule is "slightly lower" with no figure.
        let mut p = params();
        p.groups[2].ma_ratio = pct(50);
        assert!(p.national_floor_warnings().is_empty());
    }

    #[test]
    fn parameters_round_trip_through_json() {
        let p = params();
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains(r#""cii_ratio":"0.60""#), "{json}");
        assert!(json.contains(r#""programs":["DIBAO","AT_RISK"]"#), "{json}");
        assert!(json.contains(r#""annual_cap":"20000.00""#), "{json}");
        assert!(json.contains(r#""effective_from":"2023-01-01""#), "{json}");
        assert_eq!(serde_json::from_str::<PolicyParams>(&json).unwrap(), p);
    }

    #[test]
    fn invalid_parameters_do_not_load() {
        let json = serde_json::to_value(params()).unwrap();
        let broken = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut v = json.clone();
            edit(&mut v);
            serde_json::from_value::<PolicyParams>(v).unwrap_err().to_string()
        };
        assert!(broken(&|v| v["groups"][2]["ma_ratio"] = "-0.1".into()).contains("groups[2].ma_ratio"));
        assert!(broken(&|v| v["groups"][2]["ma_ratio"] = "1.01".into()).contains("groups[2].ma_ratio"));
        assert!(broken(&|v| v["groups"][3]["programs"] = serde_json::json!(["DIBAO"])).contains("already in group 2"));
        assert!(broken(&|v| v["groups"][3]["group"] = 1.into()).contains("listed twice"));
        assert!(broken(&|v| v["groups"][3]["group"] = 0.into()).contains("1 or more"));
        assert!(broken(&|v| v["groups"] = serde_json::json!([])).contains("groups"));
        assert!(broken(&|v| v["cii_tilt_ratio_points"] = "0.41".into()).contains("cii_tilt_ratio_points"));
        assert!(broken(&|v| v["cii_ratio"] = "1.5".into()).contains("cii_ratio"));
        assert!(broken(&|v| v["cii_tilt_deductible_share"] = "-0.5".into()).contains("cii_tilt_deductible_share"));
        assert!(broken(&|v| v["high_burden_share"] = "101".into()).contains("high_burden_share"));
        assert!(broken(&|v| v["tilted_assistance_share"] = "-1".into()).contains("tilted_assistance_share"));
        assert!(broken(&|v| v["version"] = " ".into()).contains("version"));
        assert!(broken(&|v| v["pooling_area"] = "62100".into()).contains("pooling_area"));
        assert!(broken(&|v| v["annual_cap"] = "-1".into()).contains("decimal yuan"));
        assert!(broken(&|v| v["surprise"] = true.into()).contains("unknown field"));
        assert!(broken(&|v| v["groups"][0]["programs"] = serde_json::json!(["NOBODY"])).contains("unknown variant"));
    }

    #[test]
    fn the_version_in_force() {
        let mut v2 = params();
        v2.version = "621000-2024".to_owned();
        v2.effective_from = date("2024-01-01");
        let mut other_area = params();
        other_area.pooling_area = "620100".to_owned();
        other_area.effective_from = date("2023-06-01");
        let versions = [v2, other_area, params()];
        let on = |d| PolicyParams::in_force(&versions, "621000", date(d)).map(|p| p.version.as_str());
        assert_eq!(on("2022-12-31"), None);
        assert_eq!(on("2023-01-01"), Some("621000-2023-example"));
        assert_eq!(on("2023-12-31"), Some("621000-2023-example"));
        assert_eq!(on("2024-01-01"), Some("621000-2024"));
    }

    #[test]
    fn finding_codes_match_medical_md() {
        let names: Vec<&str> = FindingCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            [
                "NOT_INSURED",
                "ASSISTANCE_TO_INELIGIBLE",
                "TIER_ORDER_VIOLATION",
                "ASSISTANCE_MISSED",
                "UNDER_ASSISTED",
                "OVER_ASSISTED",
                "ANNUAL_CAP_EXCEEDED",
                "CII_TILT_NOT_APPLIED",
                "DUPLICATE_SUSPECTED",
                "HIGH_BURDEN",
                "TILTED_ASSISTANCE_CANDIDATE",
            ]
        );
        for code in FindingCode::ALL {
            assert_eq!(FindingCode::parse(code.as_str()), Some(code));
            assert_eq!(serde_json::to_string(&code).unwrap(), format!("\"{code}\""));
            let agency = if code == FindingCode::HighBurden { "civil_affairs" } else { "medical_insurance" };
            assert_eq!(code.agency_to_act(), agency);
        }
        assert_eq!(FindingCode::parse("MISSED"), None);
    }

    // --- properties -------------------------------------------------------------------------------------------------

    fn arb_settlement(id: usize) -> impl Strategy<Value = Settlement> {
        (
            0u32..730,
            0u32..5,
            0i64..5_000_000,
            0i64..5_000_000,
            0i64..2_000_000,
            0i64..2_000_000,
            0i64..3_000_000,
            prop::sample::select(VisitType::ALL.to_vec()),
            any::<(bool, bool)>(),
            0i64..3,
        )
            .prop_map(
                move |(day, stay, scope, basic, cii, ma, out_of_scope, visit_type, (in_province, referred), dup)| {
                    let settled_on = date("2023-01-01") + chrono::Days::new(u64::from(day));
                    let fen = |f: i64| Money::from_fen(f.into()).unwrap();
                    let (scope, out_of_scope) = (fen(scope), fen(out_of_scope));
                    let (basic, cii, ma) = (fen(basic), fen(cii), fen(ma));
                    let out_of_pocket = scope.saturating_sub_zero(basic + cii + ma) + out_of_scope;
                    let total_cost = basic + cii + ma + out_of_pocket;
                    Settlement {
                        settlement_id: format!("S{id:03}"),
                        person: PERSON,
                        division_code: "621002".to_owned(),
                        admitted_on: settled_on - chrono::Days::new(u64::from(stay)),
                        // A few share a day, to exercise ties and duplicates.
                        settled_on: if dup == 0 { date("2023-07-01") } else { settled_on },
                        visit_type,
                        in_province,
                        referred,
                        total_cost,
                        policy_scope_cost: scope.min(total_cost),
                        basic_paid: basic,
                        critical_illness_paid: cii,
                        medical_assistance_paid: ma,
                        other_paid: Money::ZERO,
                        out_of_pocket,
                    }
                },
            )
            .prop_map(|mut s| {
                if s.admitted_on > s.settled_on {
                    s.admitted_on = s.settled_on;
                }
                s
            })
    }

    fn arb_settlements() -> impl Strategy<Value = Vec<Settlement>> {
        (1usize..12).prop_flat_map(|n| (0..n).map(arb_settlement).collect::<Vec<_>>())
    }

    /// Groups changing over the two years, and insurance with a gap.
    fn group_on(d: NaiveDate) -> Option<u8> {
        match d.month() {
            1..=3 => Some(1),
            4..=6 => Some(3),
            7..=8 => None,
            9..=10 => Some(2),
            _ => Some(4),
        }
    }

    fn insured_on(d: NaiveDate) -> bool {
        d.ordinal() > 20
    }

    proptest! {
        #[test]
        fn input_order_does_not_matter(
            (settlements, shuffled) in arb_settlements().prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
        ) {
            let p = params();
            for s in &settlements {
                prop_assert_eq!(s.validate(), Ok(()));
            }
            let a = check_person_year(&settlements, group_on, insured_on, &p);
            let b = check_person_year(&shuffled, group_on, insured_on, &p);
            prop_assert_eq!(&a, &b);
            let order: Vec<(NaiveDate, &str)> = a
                .iter()
                .map(|c| {
                    let s = settlements.iter().find(|s| s.settlement_id == c.settlement_id).unwrap();
                    (s.settled_on, s.settlement_id.as_str())
                })
                .collect();
            prop_assert!(order.is_sorted());
            let in_program = |d| group_on(d).is_some();
            prop_assert_eq!(check_high_burden(&settlements, in_program, |_| &p), check_high_burden(&shuffled, in_program, |_| &p));
        }

        #[test]
        fn expected_assistance_stays_within_cap_left_and_residual(settlements in arb_settlements(), cap in 0i64..3_000_000) {
            let mut p = params();
            p.annual_cap = Money::from_fen(cap.into()).unwrap();
            let checks = check_person_year(&settlements, group_on, insured_on, &p);
            let by_id = |id: &str| settlements.iter().find(|s| s.settlement_id == id).unwrap();
            let mut paid_before = Money::ZERO;
            let mut year = 0;
            for c in &checks {
                let s = by_id(&c.settlement_id);
                if s.settled_on.year() != year {
                    (year, paid_before) = (s.settled_on.year(), Money::ZERO);
                }
                let cap_left = p.annual_cap.saturating_sub_zero(paid_before);
                prop_assert!(c.expected_ma <= cap_left, "{:?} above cap left {:?}", c.expected_ma, cap_left);
                prop_assert!(c.expected_ma <= c.residual);
                prop_assert!(c.expected_cii <= c.after_basic);
                paid_before += s.medical_assistance_paid;
                prop_assert_eq!(c.cap_left, p.annual_cap.saturating_sub_zero(paid_before));
            }
        }
    }
}
