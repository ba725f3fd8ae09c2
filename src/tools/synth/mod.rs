//! Deterministic synthetic population of Qingyang's low-income people, built to match the figures of
//! the Civil Affairs Bureau's reply to CPPCC proposal D062 (`docs/domain/qingyang-figures.md`,
//! "the letter") and the Gansu policy values of `docs/domain/policy-reference.md`.
//!
//! Used by `doudi demo`, by tests and by the benchmarks. [`Population::generate`] draws compact
//! [`Person`] records (about 90 bytes plus an 18-byte ID string each) from a [`SynthConfig`]; [`Population::facts`] builds the
//! [`Fact`]s each agency would push, lazily, one person at a time. The same config always gives the
//! same persons and the same facts in the same order (a `ChaCha8Rng` seeded with
//! [`SynthConfig::seed`], drawn in a fixed order). [`Population::expected`] gives the totals a hub
//! must reproduce from those facts: persons by county × program, facts per agency and the number of
//! deliberately planted coverage gaps per rule of docs/spec/coordination.md.
//!
//! # What is from the letter, what is assumed
//!
//! **From the letter** (2023 standards, 庆市民〔2023〕61号, yuan per person per month):
//! urban dibao standard 700 (the FULL urban amount); urban average subsidy 607; rural dibao classes
//! = annual subsidy / 12: class 1 5580/12 = 465.00, class 2 5304/12 = 442.00, class 3 1068/12 = 89.00,
//! class 4 744/12 = 62.00; tekun urban 910, rural centralized 700, rural dispersed 605. The default
//! size, 211,300 dibao + tekun persons, is the letter's July 2022 count (one-time living subsidy).
//! Benefits always use these 2023 amounts; [`SynthConfig::year`] moves the dates and the
//! medical-insurance year only.
//!
//! **Gansu 2022 premium subsidies** (docs/domain/policy-reference.md, \[local\]), yuan per person and year:
//! FULL 320 for tekun, orphans, de-facto unsupported children and HIV-affected children;
//! PARTIAL 220 for urban full-amount dibao and rural class 1–2 dibao; PARTIAL 160 for urban
//! gap-filling dibao and rural class 3–4 dibao; PARTIAL 100 for monitored at-risk people; NONE
//! (no amount) for everyone else.
//!
//! **Assumptions** (not in any source; each is a constant of this module):
//! - *Split of the `persons` dibao + tekun population*: tekun [`TEKUN_SHARE`] = 8 % (rounded to a
//!   whole person; dibao is the rest, so dibao + tekun = `persons` exactly). Of tekun: urban 10 %,
//!   rural centralized 15 %, rural dispersed 75 % ([`TEKUN_MODE_WEIGHTS`], drawn per person). Of dibao:
//!   urban 12 % ([`DIBAO_URBAN_SHARE`]), rural 88 %; urban full-amount 30 % / gap-filling 70 %
//!   ([`URBAN_FULL_SHARE`]); rural classes 1/2/3/4 ≈ 15/25/35/25 % ([`RURAL_CLASS_WEIGHTS`]).
//!   Residence, urban mode and rural class are drawn per household, so the person shares are close
//!   to, not exactly, these figures.
//! - *Urban gap-filling benefit*: whole yuan drawn uniformly from 435.00..=699.00 (mean 567), so the
//!   urban dibao average is 0.3 × 700 + 0.7 × 567 = 606.9 ≈ the letter's 607.
//! - *Households*: dibao, marginal, at-risk and expenditure-hardship persons live in households of
//!   1–5 persons with weights 35/25/18/14/8 % ([`HOUSEHOLD_SIZE_WEIGHTS`], mean 2.35) sharing
//!   `household_id`, village, residence, class or mode, and enrolment date. Members: a head (one-person
//!   households: 65 % aged 60–90, else 18–59; larger ones: 25–65), then a spouse (85 %, head's age
//!   ± 5) or a child, then children (65 %) or an elderly parent (60–92). Children are 1–22 years old
//!   and at least 20 years younger than the head. This gives about 20 % under-18s and a few
//!   18–22-year-old students among dibao persons. Tekun, orphans, unsupported and HIV-affected
//!   children and illness-impoverished patients are one-person households.
//! - *Tekun support mode*: rural as above; urban tekun (one standard, 910) are recorded DISPERSED,
//!   15 % CENTRALIZED, because `support_mode` is required on every tekun fact.
//! - *Ages of the others*: tekun < 16: 3 % (1–15), 16–59: 22 %, 60–95: 75 %; orphans and
//!   unsupported children 1–17; HIV-affected children 3–17; illness-impoverished patients 30–85.
//!   Everyone is at least one year old on the reference date.
//! - *Low-income persons beyond `persons`*, as shares of `persons`: marginal 10 %, at-risk 6 %,
//!   expenditure hardship 2 %, orphans 0.3 %, de-facto unsupported children 0.5 %, illness-impoverished
//!   1.5 % ([`EXTRA_PROGRAM_SHARES`]); HIV-affected children one per 40,000 (at least one when
//!   `persons` ≥ 10,000, [`HIV_AFFECTED_CHILD_PER`]). Their residence is urban with 12 %.
//! - *Places*: county shares (roughly by rural population: 镇原县, 环县, 宁县 large, 华池县, 合水县
//!   small) and township counts in [`COUNTIES`]. A person's `division_code` is a 12-digit village
//!   code: county + township 101..=1nn + village, where urban persons live in residents' committees
//!   001..=004 and rural persons in villages 201..=215 (the 0xx/2xx convention of the statistical
//!   division codes). Townships and villages are drawn uniformly. These are synthetic codes.
//! - *ID numbers*: address = county code, the birth date, a sequence number whose parity gives the
//!   sex (half male, half female), unique per county, birth date and sex; check character per GB 11643.
//! - *Dates*: the reference date is `year`-06-30 (end of Q2, the demo's snapshot quarter); ages are
//!   whole years on that date. Assistance `valid_from` is uniform over (`year`−4)-01-01..=`year`-03-31
//!   (one draw per household), never before birth; every assistance fact is ACTIVE and open-ended.
//!   Employment and pension start uniformly over (`year`−2)-01-01..=`year`-03-31, not before the
//!   16th (pension receipt: 60th) birthday. Student facts start (`year`−1)-09-01, education aid
//!   (`year`−1)-10-01, both open-ended. Medical insurance covers `year`-01-01..(`year`+1)-01-01.
//!   Disability certificates are issued uniformly over (`year`−10)-01-01..=`year`-03-31, not before
//!   birth; disability subsidies start at the later of the certificate and (`year`−2)-01-01.
//! - *Schooling* by age: 3–5 preschool 85 %; 6–11 primary and 12–14 junior secondary 100 %
//!   (compulsory); 15–17 in school 90 % (senior secondary 60 %, vocational 40 %); 18–22 higher
//!   education 40 %. School codes are synthetic: county + stage digit + 3 digits (the township
//!   number for preschool to junior secondary, 001 for county-level schools, 000 for higher education).
//! - *Education aid* \[unconfirmed amounts, national standards as commonly restated\], yuan a year:
//!   preschool TUITION_WAIVER 1000, primary LIVING_ALLOWANCE 1000, junior secondary LIVING_ALLOWANCE
//!   1250, senior secondary NATIONAL_GRANT 2000, vocational TUITION_WAIVER 2000, higher
//!   NATIONAL_GRANT 3300. Every student of a dibao, tekun, orphan, unsupported-child or HIV-affected
//!   record has aid (except the planted gaps); students of the other programs have it with 50 %.
//! - *Employment*, for non-students aged 16–59: tekun NOT_IN_LABOUR_FORCE (except the planted
//!   gap); everyone else EMPLOYED 15 %, FLEXIBLE 30 %, PUBLIC_WELFARE_JOB 10 %,
//!   REGISTERED_UNEMPLOYED 15 %, NOT_IN_LABOUR_FORCE 30 % ([`EMPLOYMENT_WEIGHTS`]). Students and
//!   people under 16 or over 59 have no employment fact.
//! - *Resident pension*: aged 60 and over: receiving, monthly pension whole yuan 113.00..=180.00
//!   \[unconfirmed: a Gansu basic pension plus a small personal account\]. Non-students aged 16–59:
//!   dibao, tekun and at-risk enrolled with the premium paid by the government (代缴, except the
//!   planted gap); the others enrolled without it with 90 %, else no pension fact. Students have none.
//! - *Medical insurance*: everyone is insured in the RESIDENT scheme for `year` (except the planted
//!   gap), premium subsidy as above.
//! - *Disability*: a certificate for 10 % of adults (18+) and 2 % of children
//!   ([`ADULT_DISABILITY_SHARE`], [`CHILD_DISABILITY_SHARE`]); categories visual/hearing/speech/
//!   physical/intellectual/mental/multiple 12/10/2/50/10/10/6 %, grades 1/2/3/4 15/25/30/30 %;
//!   certificate number = ID number + category digit + grade digit. Living subsidy
//!   (困难残疾人生活补贴) 100.00 a month for dibao holders; nursing subsidy (重度残疾人护理补贴)
//!   100.00 (grade 1) or 80.00 (grade 2) a month for severe holders of any program \[unconfirmed
//!   amounts\]; one `disability_subsidy` fact carries both where both apply.
//!
//! # Planted coverage gaps
//!
//! So that the coverage rules of docs/spec/coordination.md have something to find, a share of persons is made
//! deliberately non-compliant, each by an independent draw among the persons the rule applies to
//! (the rates are the `*_RATE` constants, counts are in [`Expected::gaps`]):
//!
//! | rule | planted on | rate |
//! | --- | --- | --- |
//! | `UNINSURED` | dibao, tekun, marginal, at-risk: no medical-insurance fact | [`UNINSURED_RATE`] 2 % |
//! | `PREMIUM_SUBSIDY_MISMATCH` | insured tekun: PARTIAL 220.00 instead of FULL | [`PREMIUM_SUBSIDY_MISMATCH_RATE`] 1 % |
//! | `DISABILITY_LIVING_SUBSIDY_MISSING` | dibao certificate holders: no living subsidy | [`LIVING_SUBSIDY_MISSING_RATE`] 5 % |
//! | `NURSING_SUBSIDY_MISSING` | grade 1–2 holders: no nursing subsidy | [`NURSING_SUBSIDY_MISSING_RATE`] 4 % |
//! | `STUDENT_AID_MISSING` | students of dibao/tekun/orphan/unsupported/HIV records: no aid | [`STUDENT_AID_MISSING_RATE`] 5 % |
//! | `PENSION_PREMIUM_NOT_PAID` | dibao/tekun non-students 16–59: enrolled, premium not government-paid | [`PENSION_PREMIUM_NOT_PAID_RATE`] 3 % |
//! | `BENEFIT_ABOVE_STANDARD` | dibao: standard + 10.00..=120.00 | [`BENEFIT_ABOVE_STANDARD_RATE`] 0.2 % |
//! | `TEKUN_EMPLOYED` | tekun non-students 16–59: EMPLOYED | [`TEKUN_EMPLOYED_RATE`] 0.5 % |
//!
//! Ages in these rules are taken on [`Population::reference_date`]. No other record breaks a rule.
//!
//! # The showcase person
//!
//! [`Population::showcase`] is the first rural dibao child who is a student, holds a disability
//! certificate and carries no planted gap. When the draws produced none, the first gap-free rural
//! dibao pupil is given an INTELLECTUAL grade-2 certificate issued (`year`−1)-05-15 with both
//! subsidies; this edit happens after all draws, so it changes no other person.

use std::collections::BTreeMap;

use chrono::{Days, Months, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::domain::agency::AgencyCode;
use crate::domain::division::{DivisionCode, QINGYANG_COUNTIES};
use crate::domain::fact::{
    AidType, Assistance, AssistanceStatus, Disability, DisabilityCategory, DisabilitySubsidy, EducationAid, Employment,
    EmploymentStatus, Fact, MedicalInsurance, Payload, PayloadKind, Pension, PremiumSubsidy, Program, Residence,
    Scheme, Stage, Student, SupportMode, UrbanMode,
};
use crate::domain::id_number::IdNumber;
use crate::domain::money::Money;

pub mod settlements;

// ---------------------------------------------------------------------------------------------
// Configuration and documented parameters
// ---------------------------------------------------------------------------------------------

/// What to generate. `Default`: the letter's 211,300 dibao + tekun persons, seed 2023, year 2023.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthConfig {
    /// Dibao + tekun persons (the letter: 211,300 in July 2022). The other low-income programs are
    /// added on top, in proportion to this number.
    pub persons: usize,
    /// Seed of the `ChaCha8Rng`; same config → same population.
    pub seed: u64,
    /// Calendar year of the statuses: dates are placed around it, medical insurance covers it.
    pub year: i32,
}

/// The letter's dibao + tekun count (July 2022).
pub const DEFAULT_PERSONS: usize = 211_300;
pub const DEFAULT_SEED: u64 = 2023;
pub const DEFAULT_YEAR: i32 = 2023;

impl Default for SynthConfig {
    fn default() -> Self {
        Self { persons: DEFAULT_PERSONS, seed: DEFAULT_SEED, year: DEFAULT_YEAR }
    }
}

/// The agency codes [`Population::facts`] answers for, in the order of docs/domain/qingyang-figures.md §1.
pub const AGENCIES: [&str; 5] = [
    AgencyCode::CIVIL_AFFAIRS,
    AgencyCode::HUMAN_RESOURCES,
    AgencyCode::EDUCATION,
    AgencyCode::MEDICAL_INSURANCE,
    AgencyCode::DISABILITY_FEDERATION,
];

/// The coverage rule codes of docs/spec/coordination.md whose gaps are planted, in the order of its table.
pub const GAP_RULES: [&str; 8] = [
    "UNINSURED",
    "PREMIUM_SUBSIDY_MISMATCH",
    "DISABILITY_LIVING_SUBSIDY_MISSING",
    "NURSING_SUBSIDY_MISSING",
    "STUDENT_AID_MISSING",
    "PENSION_PREMIUM_NOT_PAID",
    "BENEFIT_ABOVE_STANDARD",
    "TEKUN_EMPLOYED",
];

/// A county of Qingyang and how the generator uses it (assumptions, see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountyProfile {
    /// GB/T 2260 county code.
    pub code: &'static str,
    /// Share of every program's persons, in per mille (sums to 1000 over [`COUNTIES`]).
    pub share_permille: u32,
    /// Townships, coded 101..=100+n.
    pub townships: u8,
}

/// Qingyang's eight counties: shares by rural population (assumption), approximate township counts.
pub const COUNTIES: [CountyProfile; 8] = [
    CountyProfile { code: "621002", share_permille: 90, townships: 10 }, // 西峰区
    CountyProfile { code: "621021", share_permille: 110, townships: 15 }, // 庆城县
    CountyProfile { code: "621022", share_permille: 190, townships: 20 }, // 环县
    CountyProfile { code: "621023", share_permille: 70, townships: 15 }, // 华池县
    CountyProfile { code: "621024", share_permille: 60, townships: 12 }, // 合水县
    CountyProfile { code: "621025", share_permille: 80, townships: 10 }, // 正宁县
    CountyProfile { code: "621026", share_permille: 180, townships: 18 }, // 宁县
    CountyProfile { code: "621027", share_permille: 220, townships: 19 }, // 镇原县
];

/// Residents' committees per township, coded 001..=n (urban persons live there).
pub const COMMUNITIES_PER_TOWNSHIP: u16 = 4;
/// Villages per township, coded 201..=200+n (rural persons live there).
pub const VILLAGES_PER_TOWNSHIP: u16 = 15;

/// Tekun share of the `persons` dibao + tekun population.
pub const TEKUN_SHARE: f64 = 0.08;
/// Tekun urban / rural centralized / rural dispersed, percent.
pub const TEKUN_MODE_WEIGHTS: [u32; 3] = [10, 15, 75];
/// Urban share of dibao (per household).
pub const DIBAO_URBAN_SHARE: f64 = 0.12;
/// Full-amount share of urban dibao (per household); the rest is gap-filling.
pub const URBAN_FULL_SHARE: f64 = 0.30;
/// Rural dibao classes 1–4, percent (per household).
pub const RURAL_CLASS_WEIGHTS: [u32; 4] = [15, 25, 35, 25];
/// Household sizes 1–5, percent.
pub const HOUSEHOLD_SIZE_WEIGHTS: [u32; 5] = [35, 25, 18, 14, 8];
/// Urban share of the programs other than dibao and tekun.
pub const OTHER_URBAN_SHARE: f64 = 0.12;
/// Persons of the other programs, as a share of `persons` (HIV-affected children separately).
pub const EXTRA_PROGRAM_SHARES: [(Program, f64); 6] = [
    (Program::DibaoMarginal, 0.10),
    (Program::AtRisk, 0.06),
    (Program::ExpenditureHardship, 0.02),
    (Program::Orphan, 0.003),
    (Program::UnsupportedChild, 0.005),
    (Program::IllnessImpoverished, 0.015),
];
/// One HIV-affected child per this many `persons` (rounded), at least one from 10,000 persons.
pub const HIV_AFFECTED_CHILD_PER: usize = 40_000;

/// Urban dibao full amount = the urban standard, fen a month (letter, 2023).
pub const URBAN_DIBAO_STANDARD_FEN: i64 = 70_000;
/// Range of the urban gap-filling benefit, fen a month (assumption, whole yuan).
pub const URBAN_GAP_RANGE_FEN: (i64, i64) = (43_500, 69_900);
/// Rural dibao classes 1–4, fen a month: 5580, 5304, 1068, 744 yuan a year / 12 (letter, 2023).
pub const RURAL_CLASS_MONTHLY_FEN: [i64; 4] = [46_500, 44_200, 8_900, 6_200];
/// Tekun urban, rural centralized, rural dispersed, fen a month (letter, 2023).
pub const TEKUN_MONTHLY_FEN: [i64; 3] = [91_000, 70_000, 60_500];

/// Disability certificate holders among adults (18+) and among children.
pub const ADULT_DISABILITY_SHARE: f64 = 0.10;
pub const CHILD_DISABILITY_SHARE: f64 = 0.02;
/// Employment of non-tekun non-students aged 16–59: EMPLOYED, FLEXIBLE, PUBLIC_WELFARE_JOB,
/// REGISTERED_UNEMPLOYED, NOT_IN_LABOUR_FORCE, percent.
pub const EMPLOYMENT_WEIGHTS: [u32; 5] = [15, 30, 10, 15, 30];

pub const UNINSURED_RATE: f64 = 0.02;
pub const PREMIUM_SUBSIDY_MISMATCH_RATE: f64 = 0.01;
pub const LIVING_SUBSIDY_MISSING_RATE: f64 = 0.05;
pub const NURSING_SUBSIDY_MISSING_RATE: f64 = 0.04;
pub const STUDENT_AID_MISSING_RATE: f64 = 0.05;
pub const PENSION_PREMIUM_NOT_PAID_RATE: f64 = 0.03;
pub const BENEFIT_ABOVE_STANDARD_RATE: f64 = 0.002;
pub const TEKUN_EMPLOYED_RATE: f64 = 0.005;

const PREMIUM_FULL_FEN: i64 = 32_000;
const PREMIUM_220_FEN: i64 = 22_000;
const PREMIUM_160_FEN: i64 = 16_000;
const PREMIUM_100_FEN: i64 = 10_000;
const LIVING_SUBSIDY_FEN: i64 = 10_000;
const NURSING_SUBSIDY_FEN: [i64; 2] = [10_000, 8_000];

const DISABILITY_CATEGORY_WEIGHTS: [(DisabilityCategory, u32); 7] = [
    (DisabilityCategory::Visual, 12),
    (DisabilityCategory::Hearing, 10),
    (DisabilityCategory::Speech, 2),
    (DisabilityCategory::Physical, 50),
    (DisabilityCategory::Intellectual, 10),
    (DisabilityCategory::Mental, 10),
    (DisabilityCategory::Multiple, 6),
];
const DISABILITY_GRADE_WEIGHTS: [u32; 4] = [15, 25, 30, 30];

// Planted-gap flags of a person.
const GAP_UNINSURED: u16 = 1 << 0;
const GAP_SUBSIDY_MISMATCH: u16 = 1 << 1;
const GAP_LIVING_MISSING: u16 = 1 << 2;
const GAP_NURSING_MISSING: u16 = 1 << 3;
const GAP_AID_MISSING: u16 = 1 << 4;
const GAP_PENSION_NOT_PAID: u16 = 1 << 5;
const GAP_ABOVE_STANDARD: u16 = 1 << 6;
const GAP_TEKUN_EMPLOYED: u16 = 1 << 7;
/// In the order of [`GAP_RULES`].
const GAP_FLAGS: [u16; 8] = [
    GAP_UNINSURED,
    GAP_SUBSIDY_MISMATCH,
    GAP_LIVING_MISSING,
    GAP_NURSING_MISSING,
    GAP_AID_MISSING,
    GAP_PENSION_NOT_PAID,
    GAP_ABOVE_STANDARD,
    GAP_TEKUN_EMPLOYED,
];
const ALL_GAPS: u16 = GAP_UNINSURED
    | GAP_SUBSIDY_MISMATCH
    | GAP_LIVING_MISSING
    | GAP_NURSING_MISSING
    | GAP_AID_MISSING
    | GAP_PENSION_NOT_PAID
    | GAP_ABOVE_STANDARD
    | GAP_TEKUN_EMPLOYED;
// Other per-person decisions.
const HAS_EDUCATION_AID: u16 = 1 << 8;
const HAS_LIVING_SUBSIDY: u16 = 1 << 9;
const HAS_NURSING_SUBSIDY: u16 = 1 << 10;

// ---------------------------------------------------------------------------------------------
// Persons
// ---------------------------------------------------------------------------------------------

/// Resident-pension state of a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PensionState {
    /// No pension fact.
    None,
    /// Contributing; `government_paid` = premium paid by the government (代缴).
    Enrolled { government_paid: bool },
    /// Aged 60+ and drawing a pension.
    Receiving,
}

/// One synthetic person: a compact record (56 bytes on 64-bit targets) from which every fact about
/// them is derived. About 90 bytes plus the ID number's 18-byte string; the division code is
/// built on demand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// The 18-character resident ID number: address = county code, birth date, a sequence
    /// number unique per county, birth date and sex, GB 11643 check character.
    pub id_number: IdNumber,
    index: u32,
    household: u32,
    assistance_from: NaiveDate,
    /// Start of employment and pension facts.
    labour_from: NaiveDate,
    /// Disability certificate issue date (meaningful only with `disability`).
    certificate_from: NaiveDate,
    place: u16,
    benefit_fen: Option<u32>,
    pension_fen: u16,
    annual_aid_fen: u32,
    program: Program,
    residence: Residence,
    rural_class: Option<u8>,
    urban_mode: Option<UrbanMode>,
    support_mode: Option<SupportMode>,
    stage: Option<Stage>,
    employment: Option<EmploymentStatus>,
    pension: PensionState,
    disability: Option<(DisabilityCategory, u8)>,
    flags: u16,
}

impl Person {
    /// Position in [`Population::persons`]; also the number in every `fact_id` of the person.
    pub fn index(&self) -> usize {
        self.index as usize
    }

    /// The first day of the person's assistance fact (open-ended, ACTIVE: see the module docs).
    pub fn assistance_from(&self) -> NaiveDate {
        self.assistance_from
    }
    /// The birth date (that of the ID number).
    pub fn birth_date(&self) -> NaiveDate {
        self.id_number.birth_date()
    }
    /// Whole years of age on `date`.
    pub fn age_on(&self, date: NaiveDate) -> u32 {
        self.id_number.age_on(date)
    }
    /// Six-digit county code (one of [`COUNTIES`]).
    pub fn county_code(&self) -> &'static str {
        COUNTIES[place_county(self.place)].code
    }
    /// The county's Chinese name, from `QINGYANG_COUNTIES`.
    pub fn county_name(&self) -> &'static str {
        let code = self.county_code();
        QINGYANG_COUNTIES.iter().find(|(c, _)| *c == code).map(|(_, n)| *n).unwrap_or("")
    }
    /// The 12-digit village (or residents' committee) code.
    pub fn division_code(&self) -> DivisionCode {
        DivisionCode::parse(&self.division_code_string()).expect("synthetic village codes parse")
    }
    /// The 12-digit village code as text.
    pub fn division_code_string(&self) -> String {
        place_code(self.place)
    }
    pub fn program(&self) -> Program {
        self.program
    }
    pub fn residence(&self) -> Residence {
        self.residence
    }
    /// Rural dibao class 1–4.
    pub fn rural_class(&self) -> Option<u8> {
        self.rural_class
    }
    pub fn urban_mode(&self) -> Option<UrbanMode> {
        self.urban_mode
    }
    pub fn support_mode(&self) -> Option<SupportMode> {
        self.support_mode
    }
    /// `H` + county code + 7-digit household number; shared by the members of a household.
    pub fn household_id(&self) -> String {
        format!("H{}{:07}", self.county_code(), self.household)
    }
    /// Household number (unique across the population).
    pub fn household(&self) -> u32 {
        self.household
    }
    /// Monthly assistance benefit (dibao and tekun only).
    pub fn monthly_benefit(&self) -> Option<Money> {
        self.benefit_fen.map(|f| fen_to_money(f as i64))
    }
    /// School stage, when a student.
    pub fn stage(&self) -> Option<Stage> {
        self.stage
    }
    pub fn employment(&self) -> Option<EmploymentStatus> {
        self.employment
    }
    pub fn pension(&self) -> PensionState {
        self.pension
    }
    /// Disability certificate category and grade (1–4).
    pub fn disability(&self) -> Option<(DisabilityCategory, u8)> {
        self.disability
    }
    /// Whether a medical-insurance fact exists for the person.
    pub fn insured(&self) -> bool {
        self.flags & GAP_UNINSURED == 0
    }
    /// The coverage rules (of [`GAP_RULES`]) deliberately broken on this person.
    pub fn planted_gaps(&self) -> Vec<&'static str> {
        GAP_RULES.iter().zip(GAP_FLAGS).filter(|(_, f)| self.flags & f != 0).map(|(r, _)| *r).collect()
    }
}

// Places: a flat index over county × township × (communities, villages).
const SLOTS_PER_TOWNSHIP: u16 = COMMUNITIES_PER_TOWNSHIP + VILLAGES_PER_TOWNSHIP;

const fn county_place_offset(county: usize) -> u16 {
    let mut off = 0u16;
    let mut i = 0;
    while i < county {
        off += COUNTIES[i].townships as u16 * SLOTS_PER_TOWNSHIP;
        i += 1;
    }
    off
}

fn place_county(place: u16) -> usize {
    (0..COUNTIES.len()).rev().find(|&c| county_place_offset(c) <= place).unwrap_or(0)
}

fn place_code(place: u16) -> String {
    let county = place_county(place);
    let rel = place - county_place_offset(county);
    let township = rel / SLOTS_PER_TOWNSHIP + 101;
    let slot = rel % SLOTS_PER_TOWNSHIP;
    let village = if slot < COMMUNITIES_PER_TOWNSHIP { slot + 1 } else { slot - COMMUNITIES_PER_TOWNSHIP + 201 };
    format!("{}{township:03}{village:03}", COUNTIES[county].code)
}

fn place_township(place: u16) -> u16 {
    let county = place_county(place);
    (place - county_place_offset(county)) / SLOTS_PER_TOWNSHIP + 101
}

// ---------------------------------------------------------------------------------------------
// Population
// ---------------------------------------------------------------------------------------------

/// A generated population: persons in generation order (dibao households, tekun, marginal,
/// at-risk and expenditure-hardship households, orphans, unsupported children, HIV-affected
/// children, illness-impoverished patients).
#[derive(Debug, Clone)]
pub struct Population {
    config: SynthConfig,
    reference_date: NaiveDate,
    persons: Vec<Person>,
    showcase: Option<u32>,
}

/// Totals the hub must reproduce from the facts of a [`Population`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Persons with an ACTIVE assistance enrolment, by (county code, program). Every person has one.
    pub persons_by_county_program: BTreeMap<(String, Program), usize>,
    /// Distinct `household_id`s by (county code, program).
    pub households_by_county_program: BTreeMap<(String, Program), usize>,
    /// Sum of monthly benefits by (county code, program), for dibao and tekun.
    pub monthly_benefit_by_county_program: BTreeMap<(String, Program), Money>,
    /// Dibao + tekun persons; equals [`SynthConfig::persons`].
    pub dibao_tekun_total: usize,
    /// All persons, every program.
    pub total_persons: usize,
    /// Number of facts [`Population::facts`] yields per agency code (every code of [`AGENCIES`]).
    pub facts_per_agency: BTreeMap<&'static str, usize>,
    /// Planted gaps per coverage rule code (every code of [`GAP_RULES`]), as of the reference date.
    pub gaps: BTreeMap<&'static str, usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Agency {
    CivilAffairs,
    HumanResources,
    Education,
    MedicalInsurance,
    DisabilityFederation,
}

impl Agency {
    fn parse(code: &str) -> Option<Agency> {
        Some(match code {
            AgencyCode::CIVIL_AFFAIRS => Agency::CivilAffairs,
            AgencyCode::HUMAN_RESOURCES => Agency::HumanResources,
            AgencyCode::EDUCATION => Agency::Education,
            AgencyCode::MEDICAL_INSURANCE => Agency::MedicalInsurance,
            AgencyCode::DISABILITY_FEDERATION => Agency::DisabilityFederation,
            _ => return None,
        })
    }
}

/// Money of a synthetic amount (never negative).
fn fen_to_money(fen: i64) -> Money {
    Money::from_fen(fen.into()).expect("synthetic amounts are not negative")
}

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid calendar date")
}

impl Population {
    /// Generates the population of `config` (deterministic; see the module docs for every
    /// distribution). Panics only if `config.year` is outside 1900..=2200.
    pub fn generate(config: &SynthConfig) -> Population {
        assert!((1900..=2200).contains(&config.year), "year {} outside 1900..=2200", config.year);
        let mut g = Generator::new(config);
        let tekun = (config.persons as f64 * TEKUN_SHARE).round() as usize;
        let dibao = config.persons - tekun;

        g.households(Program::Dibao, dibao);
        for _ in 0..tekun {
            g.single(Program::Tekun);
        }
        for &(program, share) in &EXTRA_PROGRAM_SHARES[..3] {
            g.households(program, (config.persons as f64 * share).round() as usize);
        }
        for &(program, share) in &EXTRA_PROGRAM_SHARES[3..5] {
            for _ in 0..(config.persons as f64 * share).round() as usize {
                g.single(program);
            }
        }
        let mut hiv = (config.persons as f64 / HIV_AFFECTED_CHILD_PER as f64).round() as usize;
        if config.persons >= 10_000 {
            hiv = hiv.max(1);
        }
        for _ in 0..hiv {
            g.single(Program::HivAffectedChild);
        }
        let (program, share) = EXTRA_PROGRAM_SHARES[5];
        for _ in 0..(config.persons as f64 * share).round() as usize {
            g.single(program);
        }
        let showcase = g.settle_showcase();
        Population { config: config.clone(), reference_date: g.reference_date, persons: g.persons, showcase }
    }

    pub fn config(&self) -> &SynthConfig {
        &self.config
    }

    /// `year`-06-30: the date on which ages, and so the planted-gap counts, are taken.
    pub fn reference_date(&self) -> NaiveDate {
        self.reference_date
    }

    /// All persons, in generation order.
    pub fn persons(&self) -> &[Person] {
        &self.persons
    }

    /// A rural dibao child (under 18) who is a student and holds a disability certificate, with no
    /// planted gap: the demo shows what each agency sees of this one person. Exists whenever the
    /// population has a rural dibao child of school age, which is always the case from a few
    /// hundred persons on (always for `persons` ≥ 1,000).
    ///
    /// Panics if there is none (only possible for tiny populations); see [`Self::try_showcase`].
    pub fn showcase(&self) -> &Person {
        self.try_showcase().expect("population too small to contain a rural dibao schoolchild")
    }

    /// [`Self::showcase`] without the panic.
    pub fn try_showcase(&self) -> Option<&Person> {
        self.showcase.map(|i| &self.persons[i as usize])
    }

    /// The facts `agency` would push, person by person in generation order, and for each person in
    /// payload order (civil_affairs: assistance; human_resources: employment, pension; education:
    /// student, education_aid; medical_insurance: medical_insurance; disability_federation:
    /// disability, disability_subsidy). An unknown agency code yields nothing. `fact_id` =
    /// `<payload kind>-<person index, 7 digits>` (medical insurance: `medical_insurance-<year>-…`),
    /// unique per agency; it carries no personal data. `source_version` is 1.
    pub fn facts<'a>(&'a self, agency: &str) -> impl Iterator<Item = Fact> + use<'a> {
        let agency = Agency::parse(agency);
        self.persons
            .iter()
            .flat_map(move |p| match agency {
                Some(a) => self.person_facts(p, a),
                None => [None, None],
            })
            .flatten()
    }

    /// The facts of one person for one agency (see [`Self::facts`]).
    pub fn facts_of(&self, person: &Person, agency: &str) -> Vec<Fact> {
        match Agency::parse(agency) {
            Some(a) => self.person_facts(person, a).into_iter().flatten().collect(),
            None => Vec::new(),
        }
    }

    /// Totals of the population, counted from the records and the planting decisions.
    pub fn expected(&self) -> Expected {
        let mut persons_by: BTreeMap<(&'static str, Program), usize> = BTreeMap::new();
        let mut households: BTreeMap<(&'static str, Program), std::collections::BTreeSet<u32>> = BTreeMap::new();
        let mut benefit_fen: BTreeMap<(&'static str, Program), i64> = BTreeMap::new();
        let mut facts_per_agency: BTreeMap<&'static str, usize> = AGENCIES.iter().map(|a| (*a, 0)).collect();
        let mut gaps: BTreeMap<&'static str, usize> = GAP_RULES.iter().map(|r| (*r, 0)).collect();
        let mut dibao_tekun_total = 0;
        for p in &self.persons {
            let key = (p.county_code(), p.program);
            *persons_by.entry(key).or_insert(0) += 1;
            households.entry(key).or_default().insert(p.household);
            if let Some(f) = p.benefit_fen {
                *benefit_fen.entry(key).or_insert(0) += f as i64;
            }
            if matches!(p.program, Program::Dibao | Program::Tekun) {
                dibao_tekun_total += 1;
            }
            for (code, agency) in AGENCIES.iter().zip([
                Agency::CivilAffairs,
                Agency::HumanResources,
                Agency::Education,
                Agency::MedicalInsurance,
                Agency::DisabilityFederation,
            ]) {
                let n = fact_kinds(p, agency).iter().filter(|k| k.is_some()).count();
                *facts_per_agency.get_mut(code).expect("all agencies present") += n;
            }
            for (rule, flag) in GAP_RULES.iter().zip(GAP_FLAGS) {
                if p.flags & flag != 0 {
                    *gaps.get_mut(rule).expect("all rules present") += 1;
                }
            }
        }
        let owned = |(c, p): (&str, Program)| (c.to_owned(), p);
        Expected {
            persons_by_county_program: persons_by.into_iter().map(|(k, v)| (owned(k), v)).collect(),
            households_by_county_program: households.into_iter().map(|(k, v)| (owned(k), v.len())).collect(),
            monthly_benefit_by_county_program: benefit_fen
                .into_iter()
                .map(|(k, v)| (owned(k), fen_to_money(v)))
                .collect(),
            dibao_tekun_total,
            total_persons: self.persons.len(),
            facts_per_agency,
            gaps,
        }
    }

    fn person_facts(&self, p: &Person, agency: Agency) -> [Option<Fact>; 2] {
        let kinds = fact_kinds(p, agency);
        if kinds.iter().all(Option::is_none) {
            return [None, None];
        }
        let id_number = &p.id_number;
        let division_code = p.division_code();
        kinds.map(|k| {
            k.map(|kind| {
                let (fact_id, valid_from, valid_to, payload) = self.payload(p, kind);
                Fact {
                    fact_id,
                    source_version: 1,
                    id_number: id_number.clone(),
                    division_code: division_code.clone(),
                    valid_from,
                    valid_to,
                    payload,
                }
            })
        })
    }

    fn payload(&self, p: &Person, kind: PayloadKind) -> (String, NaiveDate, Option<NaiveDate>, Payload) {
        let year = self.config.year;
        let id = format!("{}-{:07}", kind.as_str(), p.index);
        let money = |fen: i64| Some(fen_to_money(fen));
        match kind {
            PayloadKind::Assistance => (
                id,
                p.assistance_from,
                None,
                Payload::Assistance(Assistance {
                    program: Some(p.program),
                    residence: Some(p.residence),
                    rural_class: p.rural_class,
                    urban_mode: p.urban_mode,
                    support_mode: p.support_mode,
                    household_id: Some(p.household_id()),
                    monthly_benefit: p.monthly_benefit(),
                    status: Some(AssistanceStatus::Active),
                }),
            ),
            PayloadKind::Employment => (
                id,
                p.labour_from,
                None,
                Payload::Employment(Employment { status: p.employment, unemployment_benefit: None }),
            ),
            PayloadKind::Pension => {
                let pension = match p.pension {
                    PensionState::Enrolled { government_paid } => Pension {
                        enrolled: Some(true),
                        premium_paid_by_government: Some(government_paid),
                        receiving: Some(false),
                        monthly_pension: None,
                    },
                    _ => Pension {
                        enrolled: Some(true),
                        premium_paid_by_government: None,
                        receiving: Some(true),
                        monthly_pension: money(p.pension_fen as i64),
                    },
                };
                (id, p.labour_from, None, Payload::Pension(pension))
            }
            PayloadKind::Student => {
                let stage = p.stage.expect("student facts only for students");
                let (digit, school) = match stage {
                    Stage::Preschool => (1, place_township(p.place)),
                    Stage::Primary => (2, place_township(p.place)),
                    Stage::JuniorSecondary => (3, place_township(p.place)),
                    Stage::SeniorSecondary => (4, 1),
                    Stage::Vocational => (5, 1),
                    Stage::Higher => (6, 0),
                };
                (
                    id,
                    ymd(year - 1, 9, 1),
                    None,
                    Payload::Student(Student {
                        stage: Some(stage),
                        school_code: Some(format!("{}{digit}{school:03}", p.county_code())),
                    }),
                )
            }
            PayloadKind::EducationAid => {
                let stage = p.stage.expect("aid only for students");
                (
                    id,
                    ymd(year - 1, 10, 1),
                    None,
                    Payload::EducationAid(EducationAid {
                        aid_type: Some(aid_type(stage)),
                        annual_amount: money(p.annual_aid_fen as i64),
                    }),
                )
            }
            PayloadKind::MedicalInsurance => {
                let (subsidy, fen) = premium_subsidy(p);
                (
                    format!("{}-{year}-{:07}", kind.as_str(), p.index),
                    ymd(year, 1, 1),
                    Some(ymd(year + 1, 1, 1)),
                    Payload::MedicalInsurance(MedicalInsurance {
                        scheme: Some(Scheme::Resident),
                        year: Some(year as u16),
                        premium_subsidy: Some(subsidy),
                        subsidy_amount: fen.map(fen_to_money),
                    }),
                )
            }
            PayloadKind::Disability => {
                let (category, grade) = p.disability.expect("certificate holders only");
                (
                    id,
                    p.certificate_from,
                    None,
                    Payload::Disability(Disability {
                        category: Some(category),
                        grade: Some(grade),
                        certificate_no: Some(format!("{}{}{grade}", p.id_number.as_str(), category.digit())),
                    }),
                )
            }
            PayloadKind::DisabilitySubsidy => {
                let grade = p.disability.map(|d| d.1).unwrap_or(4);
                let from = p.certificate_from.max(ymd(year - 2, 1, 1));
                (
                    id,
                    from,
                    None,
                    Payload::DisabilitySubsidy(DisabilitySubsidy {
                        living_subsidy: (p.flags & HAS_LIVING_SUBSIDY != 0).then(|| fen_to_money(LIVING_SUBSIDY_FEN)),
                        nursing_subsidy: (p.flags & HAS_NURSING_SUBSIDY != 0 && grade <= 2)
                            .then(|| fen_to_money(NURSING_SUBSIDY_FEN[grade as usize - 1])),
                    }),
                )
            }
        }
    }
}

/// Which payload kinds `agency` has for `p` (at most two).
fn fact_kinds(p: &Person, agency: Agency) -> [Option<PayloadKind>; 2] {
    match agency {
        Agency::CivilAffairs => [Some(PayloadKind::Assistance), None],
        Agency::HumanResources => [
            p.employment.map(|_| PayloadKind::Employment),
            (p.pension != PensionState::None).then_some(PayloadKind::Pension),
        ],
        Agency::Education => [
            p.stage.map(|_| PayloadKind::Student),
            (p.flags & HAS_EDUCATION_AID != 0).then_some(PayloadKind::EducationAid),
        ],
        Agency::MedicalInsurance => [p.insured().then_some(PayloadKind::MedicalInsurance), None],
        Agency::DisabilityFederation => [
            p.disability.map(|_| PayloadKind::Disability),
            (p.flags & (HAS_LIVING_SUBSIDY | HAS_NURSING_SUBSIDY) != 0).then_some(PayloadKind::DisabilitySubsidy),
        ],
    }
}

fn aid_type(stage: Stage) -> AidType {
    match stage {
        Stage::Preschool | Stage::Vocational => AidType::TuitionWaiver,
        Stage::Primary | Stage::JuniorSecondary => AidType::LivingAllowance,
        Stage::SeniorSecondary | Stage::Higher => AidType::NationalGrant,
    }
}

fn aid_fen(stage: Stage) -> u32 {
    match stage {
        Stage::Preschool | Stage::Primary => 100_000,
        Stage::JuniorSecondary => 125_000,
        Stage::SeniorSecondary | Stage::Vocational => 200_000,
        Stage::Higher => 330_000,
    }
}

/// Premium subsidy and amount (fen) of an insured person (Gansu 2022 values).
fn premium_subsidy(p: &Person) -> (PremiumSubsidy, Option<i64>) {
    if p.flags & GAP_SUBSIDY_MISMATCH != 0 {
        return (PremiumSubsidy::Partial, Some(PREMIUM_220_FEN));
    }
    match p.program {
        Program::Tekun | Program::Orphan | Program::UnsupportedChild | Program::HivAffectedChild => {
            (PremiumSubsidy::Full, Some(PREMIUM_FULL_FEN))
        }
        Program::Dibao => match (p.urban_mode, p.rural_class) {
            (Some(UrbanMode::Full), _) | (_, Some(1 | 2)) => (PremiumSubsidy::Partial, Some(PREMIUM_220_FEN)),
            _ => (PremiumSubsidy::Partial, Some(PREMIUM_160_FEN)),
        },
        Program::AtRisk => (PremiumSubsidy::Partial, Some(PREMIUM_100_FEN)),
        _ => (PremiumSubsidy::None, None),
    }
}

/// Standard monthly benefit (fen) of a dibao or tekun person, from the letter's 2023 table;
/// `None` for urban gap-filling dibao (whose standard is the urban standard, a ceiling) and for
/// other programs.
fn exact_standard_fen(
    program: Program,
    residence: Residence,
    rural_class: Option<u8>,
    urban_mode: Option<UrbanMode>,
    support_mode: Option<SupportMode>,
) -> Option<i64> {
    match (program, residence) {
        (Program::Dibao, Residence::Urban) => (urban_mode == Some(UrbanMode::Full)).then_some(URBAN_DIBAO_STANDARD_FEN),
        (Program::Dibao, Residence::Rural) => rural_class.map(|c| RURAL_CLASS_MONTHLY_FEN[c as usize - 1]),
        (Program::Tekun, Residence::Urban) => Some(TEKUN_MONTHLY_FEN[0]),
        (Program::Tekun, Residence::Rural) => match support_mode {
            Some(SupportMode::Centralized) => Some(TEKUN_MONTHLY_FEN[1]),
            _ => Some(TEKUN_MONTHLY_FEN[2]),
        },
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Generator
// ---------------------------------------------------------------------------------------------

/// Oldest age generated; sizes the sequence-number table.
const MAX_AGE: u32 = 100;

struct Generator<'c> {
    cfg: &'c SynthConfig,
    rng: ChaCha8Rng,
    reference_date: NaiveDate,
    /// Earliest birth date that can occur.
    birth_base: NaiveDate,
    days: usize,
    /// Next free sequence half (seq = 2 × n + sex bit) per county × birth day × sex; 0 = unused.
    next_seq: Vec<u16>,
    persons: Vec<Person>,
    households: u32,
    county_cum: [u32; 8],
}

/// Weighted index: `weights` are relative integers.
fn pick(rng: &mut ChaCha8Rng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut x = rng.random_range(0..total);
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

fn random_date(rng: &mut ChaCha8Rng, from: NaiveDate, to_inclusive: NaiveDate) -> NaiveDate {
    let span = (to_inclusive - from).num_days().max(0) as u64;
    from + Days::new(rng.random_range(0..=span))
}

struct Seed {
    program: Program,
    residence: Residence,
    rural_class: Option<u8>,
    urban_mode: Option<UrbanMode>,
    support_mode: Option<SupportMode>,
    household: u32,
    place: u16,
    age: u32,
    enrolled: NaiveDate,
}

impl<'c> Generator<'c> {
    fn new(cfg: &'c SynthConfig) -> Self {
        let reference_date = ymd(cfg.year, 6, 30);
        let birth_base = reference_date.checked_sub_months(Months::new(12 * (MAX_AGE + 1))).expect("in range");
        let days = (reference_date - birth_base).num_days() as usize + 1;
        let mut county_cum = [0u32; 8];
        let mut acc = 0;
        for (i, c) in COUNTIES.iter().enumerate() {
            acc += c.share_permille;
            county_cum[i] = acc;
        }
        Generator {
            cfg,
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            reference_date,
            birth_base,
            days,
            next_seq: vec![0; COUNTIES.len() * days * 2],
            persons: Vec::with_capacity(cfg.persons + cfg.persons / 4 + 16),
            households: 0,
            county_cum,
        }
    }

    fn new_household(&mut self) -> u32 {
        self.households += 1;
        self.households
    }

    fn pick_place(&mut self, residence: Residence) -> u16 {
        let x = self.rng.random_range(0..1000u32);
        let county = self.county_cum.iter().position(|&c| x < c).unwrap_or(7);
        let township = self.rng.random_range(0..COUNTIES[county].townships as u16);
        let slot = match residence {
            Residence::Urban => self.rng.random_range(0..COMMUNITIES_PER_TOWNSHIP),
            Residence::Rural => COMMUNITIES_PER_TOWNSHIP + self.rng.random_range(0..VILLAGES_PER_TOWNSHIP),
        };
        county_place_offset(county) + township * SLOTS_PER_TOWNSHIP + slot
    }

    fn enrolment_date(&mut self) -> NaiveDate {
        let y = self.cfg.year;
        random_date(&mut self.rng, ymd(y - 4, 1, 1), ymd(y, 3, 31))
    }

    /// Households of `program` until exactly `total` persons.
    fn households(&mut self, program: Program, total: usize) {
        let mut left = total;
        while left > 0 {
            let size = (pick(&mut self.rng, &HOUSEHOLD_SIZE_WEIGHTS) + 1).min(left);
            left -= size;
            let urban_share = if program == Program::Dibao { DIBAO_URBAN_SHARE } else { OTHER_URBAN_SHARE };
            let residence = if self.rng.random_bool(urban_share) { Residence::Urban } else { Residence::Rural };
            let (mut urban_mode, mut rural_class) = (None, None);
            if program == Program::Dibao {
                match residence {
                    Residence::Urban => {
                        urban_mode =
                            Some(if self.rng.random_bool(URBAN_FULL_SHARE) { UrbanMode::Full } else { UrbanMode::Gap })
                    }
                    Residence::Rural => rural_class = Some(pick(&mut self.rng, &RURAL_CLASS_WEIGHTS) as u8 + 1),
                }
            }
            let place = self.pick_place(residence);
            let household = self.new_household();
            let enrolled = self.enrolment_date();
            let ages = self.household_ages(size);
            for age in ages {
                self.add_person(Seed {
                    program,
                    residence,
                    rural_class,
                    urban_mode,
                    support_mode: None,
                    household,
                    place,
                    age,
                    enrolled,
                });
            }
        }
    }

    fn household_ages(&mut self, size: usize) -> Vec<u32> {
        let r = &mut self.rng;
        if size == 1 {
            return vec![if r.random_bool(0.65) { r.random_range(60..=90) } else { r.random_range(18..=59) }];
        }
        let head: u32 = r.random_range(25..=65);
        let mut ages = vec![head];
        let child = |r: &mut ChaCha8Rng| r.random_range(1..=22u32.min(head - 20));
        for i in 1..size {
            let age = if i == 1 {
                if r.random_bool(0.85) { (head as i64 + r.random_range(-5..=5i64)).max(18) as u32 } else { child(r) }
            } else if r.random_bool(0.65) {
                child(r)
            } else {
                r.random_range(60..=92)
            };
            ages.push(age);
        }
        ages
    }

    fn single(&mut self, program: Program) {
        let r = &mut self.rng;
        let (residence, support_mode, age) = match program {
            Program::Tekun => {
                let (residence, mode) = match pick(r, &TEKUN_MODE_WEIGHTS) {
                    0 => (Residence::Urban, SupportMode::Dispersed),
                    1 => (Residence::Rural, SupportMode::Centralized),
                    _ => (Residence::Rural, SupportMode::Dispersed),
                };
                // Urban tekun: the letter has one urban standard; support mode drawn like rural.
                let mode =
                    if residence == Residence::Urban && r.random_bool(0.15) { SupportMode::Centralized } else { mode };
                let age = match pick(r, &[3, 22, 75]) {
                    0 => r.random_range(1..=15),
                    1 => r.random_range(16..=59),
                    _ => r.random_range(60..=95),
                };
                (residence, Some(mode), age)
            }
            _ => {
                let residence = if r.random_bool(OTHER_URBAN_SHARE) { Residence::Urban } else { Residence::Rural };
                let age = match program {
                    Program::Orphan | Program::UnsupportedChild => r.random_range(1..=17),
                    Program::HivAffectedChild => r.random_range(3..=17),
                    _ => r.random_range(30..=85),
                };
                (residence, None, age)
            }
        };
        let place = self.pick_place(residence);
        let household = self.new_household();
        let enrolled = self.enrolment_date();
        self.add_person(Seed {
            program,
            residence,
            rural_class: None,
            urban_mode: None,
            support_mode,
            household,
            place,
            age,
            enrolled,
        });
    }

    /// A birth date giving `age` on the reference date, and a free sequence number.
    fn birth_and_seq(&mut self, county: usize, age: u32) -> (NaiveDate, u16) {
        let latest = self.reference_date.checked_sub_months(Months::new(12 * age)).expect("in range");
        let male = self.rng.random_bool(0.5);
        loop {
            let birth = latest - Days::new(self.rng.random_range(0..365));
            let day = (birth - self.birth_base).num_days() as usize;
            let slot = (county * self.days + day) * 2 + male as usize;
            let next = match self.next_seq[slot] {
                0 => self.rng.random_range(1..=150u16),
                n => n + self.rng.random_range(1..=3u16),
            };
            let seq = 2 * next + male as u16;
            if seq <= 999 {
                self.next_seq[slot] = next;
                return (birth, seq);
            }
        }
    }

    fn add_person(&mut self, s: Seed) {
        let year = self.cfg.year;
        let county = place_county(s.place);
        let (birth, seq) = self.birth_and_seq(county, s.age);
        let age = s.age;
        let r = &mut self.rng;
        let mut flags = 0u16;

        // Assistance benefit.
        let benefit_fen = match (
            s.program,
            exact_standard_fen(s.program, s.residence, s.rural_class, s.urban_mode, s.support_mode),
        ) {
            (Program::Dibao, standard) => {
                let standard = standard.unwrap_or(URBAN_DIBAO_STANDARD_FEN);
                let base = match s.urban_mode {
                    Some(UrbanMode::Gap) => {
                        100 * r.random_range(URBAN_GAP_RANGE_FEN.0 / 100..=URBAN_GAP_RANGE_FEN.1 / 100)
                    }
                    _ => standard,
                };
                if r.random_bool(BENEFIT_ABOVE_STANDARD_RATE) {
                    flags |= GAP_ABOVE_STANDARD;
                    Some(standard + 100 * r.random_range(10..=120))
                } else {
                    Some(base)
                }
            }
            (Program::Tekun, standard) => standard,
            _ => None,
        };

        // Schooling.
        let stage = match age {
            3..=5 => r.random_bool(0.85).then_some(Stage::Preschool),
            6..=11 => Some(Stage::Primary),
            12..=14 => Some(Stage::JuniorSecondary),
            15..=17 => {
                r.random_bool(0.9).then(|| if r.random_bool(0.6) { Stage::SeniorSecondary } else { Stage::Vocational })
            }
            18..=22 => r.random_bool(0.4).then_some(Stage::Higher),
            _ => None,
        };
        let mut annual_aid_fen = 0;
        if let Some(stage) = stage {
            let listed = matches!(
                s.program,
                Program::Dibao
                    | Program::Tekun
                    | Program::Orphan
                    | Program::UnsupportedChild
                    | Program::HivAffectedChild
            );
            let has_aid = if listed {
                if r.random_bool(STUDENT_AID_MISSING_RATE) {
                    flags |= GAP_AID_MISSING;
                    false
                } else {
                    true
                }
            } else {
                r.random_bool(0.5)
            };
            if has_aid {
                flags |= HAS_EDUCATION_AID;
                annual_aid_fen = aid_fen(stage);
            }
        }

        // Employment and pension.
        let dibao_or_tekun = matches!(s.program, Program::Dibao | Program::Tekun);
        let working_age = (16..=59).contains(&age) && stage.is_none();
        let employment = if working_age {
            Some(if s.program == Program::Tekun {
                if r.random_bool(TEKUN_EMPLOYED_RATE) {
                    flags |= GAP_TEKUN_EMPLOYED;
                    EmploymentStatus::Employed
                } else {
                    EmploymentStatus::NotInLabourForce
                }
            } else {
                [
                    EmploymentStatus::Employed,
                    EmploymentStatus::Flexible,
                    EmploymentStatus::PublicWelfareJob,
                    EmploymentStatus::RegisteredUnemployed,
                    EmploymentStatus::NotInLabourForce,
                ][pick(r, &EMPLOYMENT_WEIGHTS)]
            })
        } else {
            None
        };
        let mut pension_fen = 0;
        let pension = if age >= 60 {
            pension_fen = 100 * r.random_range(113..=180u16);
            PensionState::Receiving
        } else if working_age {
            if dibao_or_tekun {
                let paid = !r.random_bool(PENSION_PREMIUM_NOT_PAID_RATE);
                if !paid {
                    flags |= GAP_PENSION_NOT_PAID;
                }
                PensionState::Enrolled { government_paid: paid }
            } else if s.program == Program::AtRisk {
                PensionState::Enrolled { government_paid: true }
            } else if r.random_bool(0.9) {
                PensionState::Enrolled { government_paid: false }
            } else {
                PensionState::None
            }
        } else {
            PensionState::None
        };
        let threshold = if pension == PensionState::Receiving { 60 } else { 16 };
        let labour_from = random_date(r, ymd(year - 2, 1, 1), ymd(year, 3, 31))
            .max(birth.checked_add_months(Months::new(12 * threshold)).expect("in range"))
            .min(self.reference_date);

        // Medical insurance.
        if matches!(s.program, Program::Dibao | Program::Tekun | Program::DibaoMarginal | Program::AtRisk)
            && r.random_bool(UNINSURED_RATE)
        {
            flags |= GAP_UNINSURED;
        } else if s.program == Program::Tekun && r.random_bool(PREMIUM_SUBSIDY_MISMATCH_RATE) {
            flags |= GAP_SUBSIDY_MISMATCH;
        }

        // Disability.
        let share = if age >= 18 { ADULT_DISABILITY_SHARE } else { CHILD_DISABILITY_SHARE };
        let mut disability = None;
        let mut certificate_from = birth;
        if r.random_bool(share) {
            let category = DISABILITY_CATEGORY_WEIGHTS[pick(r, &DISABILITY_CATEGORY_WEIGHTS.map(|(_, w)| w))].0;
            let grade = pick(r, &DISABILITY_GRADE_WEIGHTS) as u8 + 1;
            disability = Some((category, grade));
            certificate_from = random_date(r, ymd(year - 10, 1, 1), ymd(year, 3, 31)).max(birth);
            flags |= disability_subsidy_flags(r, s.program, grade);
        }

        let index = self.persons.len() as u32;
        self.persons.push(Person {
            id_number: IdNumber::from_parts(COUNTIES[county].code, birth, seq),
            index,
            household: s.household,
            assistance_from: s.enrolled.max(birth),
            labour_from,
            certificate_from,
            place: s.place,
            benefit_fen: benefit_fen.map(|f| f as u32),
            pension_fen,
            annual_aid_fen,
            program: s.program,
            residence: s.residence,
            rural_class: s.rural_class,
            urban_mode: s.urban_mode,
            support_mode: s.support_mode,
            stage,
            employment,
            pension,
            disability,
            flags,
        });
    }

    /// Picks the showcase person, making one if needed (see [`Population::showcase`]).
    fn settle_showcase(&mut self) -> Option<u32> {
        let rural_dibao_pupil = |p: &Person| {
            p.program == Program::Dibao
                && p.residence == Residence::Rural
                && p.stage.is_some()
                && p.age_on(self.reference_date) < 18
        };
        let gap_free = |p: &Person| p.flags & ALL_GAPS == 0;
        if let Some(p) = self.persons.iter().find(|p| rural_dibao_pupil(p) && gap_free(p) && p.disability.is_some()) {
            return Some(p.index);
        }
        let i = self
            .persons
            .iter()
            .position(|p| rural_dibao_pupil(p) && gap_free(p))
            .or_else(|| self.persons.iter().position(rural_dibao_pupil))?;
        let year = self.cfg.year;
        let p = &mut self.persons[i];
        p.flags &= !ALL_GAPS;
        p.flags |= HAS_EDUCATION_AID | HAS_LIVING_SUBSIDY | HAS_NURSING_SUBSIDY;
        p.annual_aid_fen = aid_fen(p.stage.expect("pupil"));
        p.benefit_fen = exact_standard_fen(p.program, p.residence, p.rural_class, None, None).map(|f| f as u32);
        p.disability = Some((DisabilityCategory::Intellectual, 2));
        p.certificate_from = ymd(year - 1, 5, 15).max(p.birth_date());
        Some(p.index)
    }
}

/// Subsidy flags of a new certificate holder, with the planted gaps.
fn disability_subsidy_flags(r: &mut ChaCha8Rng, program: Program, grade: u8) -> u16 {
    let mut flags = 0;
    if program == Program::Dibao {
        if r.random_bool(LIVING_SUBSIDY_MISSING_RATE) {
            flags |= GAP_LIVING_MISSING;
        } else {
            flags |= HAS_LIVING_SUBSIDY;
        }
    }
    if grade <= 2 {
        if r.random_bool(NURSING_SUBSIDY_MISSING_RATE) {
            flags |= GAP_NURSING_MISSING;
        } else {
            flags |= HAS_NURSING_SUBSIDY;
        }
    }
    flags
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::sync::OnceLock;

    use super::*;
    use crate::domain::fact::Assistance;

    fn population_20k() -> &'static Population {
        static P: OnceLock<Population> = OnceLock::new();
        P.get_or_init(|| Population::generate(&SynthConfig { persons: 20_000, ..SynthConfig::default() }))
    }

    fn small(persons: usize, seed: u64) -> Population {
        Population::generate(&SynthConfig { persons, seed, year: 2023 })
    }

    fn yuan(s: &str) -> i128 {
        Money::parse(s).expect("test amount parses").to_fen()
    }

    /// GB 11643 check written out here, independently of `IdNumber` (docs/domain/policy-reference.md).
    fn check_char(body: &str) -> char {
        const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let sum: u32 = body.chars().zip(W).map(|(c, w)| c.to_digit(10).unwrap() * w).sum();
        "10X98765432".chars().nth((sum % 11) as usize).unwrap()
    }

    #[test]
    fn check_char_helper_agrees_with_the_standards_samples() {
        for id in ["11010519491231002X", "440524188001010014", "621027200002290025"] {
            assert_eq!(check_char(&id[..17]), id.chars().last().unwrap(), "{id}");
        }
    }

    #[test]
    fn default_config_is_the_letters_count() {
        let c = SynthConfig::default();
        assert_eq!((c.persons, c.seed, c.year), (211_300, 2023, 2023));
    }

    #[test]
    fn same_config_gives_identical_persons_and_facts() {
        let a = small(3_000, 7);
        let b = small(3_000, 7);
        assert_eq!(a.persons(), b.persons());
        for agency in AGENCIES {
            assert!(a.facts(agency).eq(b.facts(agency)), "{agency}");
        }
        assert_eq!(a.expected(), b.expected());
        let c = small(3_000, 8);
        assert_ne!(a.persons(), c.persons(), "another seed gives another population");
    }

    #[test]
    fn dibao_plus_tekun_is_exactly_the_configured_count() {
        for persons in [0, 1, 7, 1_000, 20_000] {
            let pop = if persons == 20_000 { population_20k().clone() } else { small(persons, 2023) };
            let counted = pop
                .facts("civil_affairs")
                .filter(|f| match &f.payload {
                    Payload::Assistance(a) => {
                        matches!(a.program, Some(Program::Dibao | Program::Tekun))
                    }
                    _ => false,
                })
                .count();
            assert_eq!(counted, persons, "dibao + tekun facts for {persons}");
            assert_eq!(pop.expected().dibao_tekun_total, persons);
            // Tekun: 8 % rounded (1,000 → 80; 20,000 → 1,600).
            let tekun = pop.persons().iter().filter(|p| p.program() == Program::Tekun).count();
            assert_eq!(tekun, (persons as f64 * 0.08).round() as usize);
        }
    }

    #[test]
    fn other_programs_are_proportional_to_persons() {
        let pop = population_20k();
        let count = |prog| pop.persons().iter().filter(|p| p.program() == prog).count();
        // 20,000 × 10 %, 6 %, 2 %, 0.3 %, 0.5 %, 1.5 %; HIV: 20,000 / 40,000 rounds to 1.
        assert_eq!(count(Program::DibaoMarginal), 2_000);
        assert_eq!(count(Program::AtRisk), 1_200);
        assert_eq!(count(Program::ExpenditureHardship), 400);
        assert_eq!(count(Program::Orphan), 60);
        assert_eq!(count(Program::UnsupportedChild), 100);
        assert_eq!(count(Program::IllnessImpoverished), 300);
        assert_eq!(count(Program::HivAffectedChild), 1);
        assert_eq!(pop.expected().total_persons, pop.persons().len());
        let tiny = small(9_999, 1);
        let hiv = tiny.persons().iter().filter(|p| p.program() == Program::HivAffectedChild).count();
        assert_eq!(hiv, 0);
        let ten_k = small(10_000, 1);
        let hiv = ten_k.persons().iter().filter(|p| p.program() == Program::HivAffectedChild).count();
        assert_eq!(hiv, 1);
    }

    #[test]
    fn id_numbers_are_valid_unique_and_match_the_person() {
        let pop = population_20k();
        let mut seen = HashSet::new();
        for p in pop.persons() {
            let id = &p.id_number;
            let s = id.as_str();
            assert_eq!(s.len(), 18, "{s}");
            assert!(s[..17].bytes().all(|b| b.is_ascii_digit()), "{s}");
            assert_eq!(check_char(&s[..17]), s.chars().last().unwrap(), "{s}");
            assert_eq!(&s[..6], p.county_code(), "{s}");
            assert_eq!(&s[6..14], p.birth_date().format("%Y%m%d").to_string(), "{s}");
            assert_eq!(id.birth_date(), p.birth_date());
            let parsed = IdNumber::parse_at(s, pop.reference_date()).expect("parses as a real ID number");
            assert_eq!(&parsed, id);
            assert!(seen.insert(s.to_string()), "duplicate {s}");
        }
    }

    #[test]
    fn places_are_villages_of_qingyangs_counties() {
        let codes: HashSet<&str> = QINGYANG_COUNTIES.iter().map(|(c, _)| *c).collect();
        assert_eq!(COUNTIES.iter().map(|c| c.share_permille).sum::<u32>(), 1000);
        assert!(COUNTIES.iter().all(|c| codes.contains(c.code)));
        assert_eq!(COUNTIES.len(), codes.len());
        let pop = population_20k();
        let mut per_county: HashMap<&str, usize> = HashMap::new();
        for p in pop.persons() {
            let d = p.division_code_string();
            assert_eq!(d.len(), 12, "{d}");
            assert_eq!(&d[..6], p.county_code());
            let township: u32 = d[6..9].parse().unwrap();
            let village: u32 = d[9..].parse().unwrap();
            assert!((101..=120).contains(&township), "{d}");
            match p.residence() {
                Residence::Urban => assert!((1..=4).contains(&village), "{d}"),
                Residence::Rural => assert!((201..=215).contains(&village), "{d}"),
            }
            assert!(!p.county_name().is_empty());
            *per_county.entry(p.county_code()).or_default() += 1;
        }
        // Shares within 1.5 points of the documented ones (镇原县 22 %, 合水县 6 %).
        let n = pop.persons().len() as f64;
        for c in COUNTIES {
            let share = per_county[c.code] as f64 / n * 1000.0;
            assert!((share - c.share_permille as f64).abs() < 15.0, "{} {share}", c.code);
        }
    }

    #[test]
    fn every_fact_validates_and_fact_ids_are_unique_per_agency() {
        let pop = population_20k();
        for agency in AGENCIES {
            let mut ids = HashSet::new();
            for f in pop.facts(agency) {
                f.validate().unwrap_or_else(|e| panic!("{agency} {}: {e}", f.fact_id));
                assert!(f.in_force_on(pop.reference_date()), "{} not in force", f.fact_id);
                assert!(f.valid_from >= f.id_number.birth_date(), "{} before birth", f.fact_id);
                assert!(ids.insert(f.fact_id.clone()), "{agency}: duplicate {}", f.fact_id);
                assert!(!f.fact_id.contains(f.id_number.as_str()), "fact_id carries no ID number");
            }
        }
        assert_eq!(pop.facts("leading_group").count(), 0);
    }

    #[test]
    fn facts_per_agency_match_what_facts_yields() {
        let pop = population_20k();
        let e = pop.expected();
        for agency in AGENCIES {
            assert_eq!(e.facts_per_agency[agency], pop.facts(agency).count(), "{agency}");
        }
        assert_eq!(e.facts_per_agency["civil_affairs"], pop.persons().len());
        let by_cp: usize = e.persons_by_county_program.values().sum();
        assert_eq!(by_cp, pop.persons().len());
    }

    #[test]
    fn assistance_facts_are_active_and_spread_over_2019_to_march_2023() {
        let pop = population_20k();
        for f in pop.facts("civil_affairs") {
            let Payload::Assistance(a) = &f.payload else { panic!("civil affairs pushes assistance") };
            assert_eq!(a.status, Some(AssistanceStatus::Active));
            assert_eq!(f.valid_to, None);
            let birth = f.id_number.birth_date();
            let lo = NaiveDate::from_ymd_opt(2019, 1, 1).unwrap().max(birth);
            assert!(f.valid_from >= lo && f.valid_from <= NaiveDate::from_ymd_opt(2023, 3, 31).unwrap().max(birth));
        }
    }

    /// The letter's 2023 standards (docs/domain/qingyang-figures.md §3), monthly fen, computed by hand.
    fn standard(a: &Assistance) -> Option<i128> {
        match (a.program?, a.residence?) {
            (Program::Dibao, Residence::Urban) => Some(yuan("700.00")),
            (Program::Dibao, Residence::Rural) => Some(match a.rural_class? {
                1 => yuan("465.00"), // 5580 / 12
                2 => yuan("442.00"), // 5304 / 12
                3 => yuan("89.00"),  // 1068 / 12
                4 => yuan("62.00"),  // 744 / 12
                c => panic!("class {c}"),
            }),
            (Program::Tekun, Residence::Urban) => Some(yuan("910.00")),
            (Program::Tekun, Residence::Rural) => Some(match a.support_mode? {
                SupportMode::Centralized => yuan("700.00"),
                SupportMode::Dispersed => yuan("605.00"),
            }),
            _ => None,
        }
    }

    #[test]
    fn benefits_equal_the_letters_standards() {
        let pop = population_20k();
        let (mut urban_sum, mut urban_n) = (0i128, 0i128);
        let mut above = 0;
        for f in pop.facts("civil_affairs") {
            let Payload::Assistance(a) = &f.payload else { unreachable!() };
            let benefit = a.monthly_benefit.map(|m| m.to_fen());
            let Some(std) = standard(a) else {
                assert_eq!(benefit, None, "{:?} has no monthly benefit", a.program);
                continue;
            };
            let b = benefit.expect("dibao and tekun have a benefit");
            if a.program == Some(Program::Dibao) && a.residence == Some(Residence::Urban) {
                urban_sum += b;
                urban_n += 1;
            }
            if b > std {
                above += 1;
                assert_eq!(a.program, Some(Program::Dibao), "only dibao is planted above standard");
                continue;
            }
            match a.urban_mode {
                Some(UrbanMode::Gap) => {
                    assert!((yuan("300.00")..=yuan("699.00")).contains(&b), "gap {b}");
                    assert_eq!(b % 100, 0, "whole yuan");
                }
                _ => assert_eq!(b, std, "{:?}", a),
            }
        }
        assert_eq!(above, pop.expected().gaps["BENEFIT_ABOVE_STANDARD"]);
        // The letter's urban average, 607 yuan, within 10 yuan.
        let avg = urban_sum / urban_n;
        assert!((yuan("597.00")..=yuan("617.00")).contains(&avg), "urban average {avg} fen");
    }

    #[test]
    fn split_shares_are_near_the_documented_ones() {
        let pop = population_20k();
        let dibao: Vec<&Person> = pop.persons().iter().filter(|p| p.program() == Program::Dibao).collect();
        let n = dibao.len() as f64;
        let share = |f: &dyn Fn(&&Person) -> bool| dibao.iter().filter(|p| f(p)).count() as f64 / n;
        let urban = share(&|p| p.residence() == Residence::Urban);
        assert!((0.09..0.15).contains(&urban), "urban {urban}");
        let children = share(&|p| p.age_on(pop.reference_date()) < 18);
        assert!((0.15..0.25).contains(&children), "children {children}");
        let c3 = share(&|p| p.rural_class() == Some(3)) / (1.0 - urban);
        assert!((0.30..0.40).contains(&c3), "class 3 {c3}");
        let tekun: Vec<&Person> = pop.persons().iter().filter(|p| p.program() == Program::Tekun).collect();
        let elderly = tekun.iter().filter(|p| p.age_on(pop.reference_date()) >= 60).count() as f64;
        assert!(elderly / tekun.len() as f64 > 0.65);
        // Households of 1–5 in one village.
        let mut hh: HashMap<u32, Vec<&Person>> = HashMap::new();
        for p in &dibao {
            hh.entry(p.household()).or_default().push(p);
        }
        for members in hh.values() {
            assert!((1..=5).contains(&members.len()));
            assert!(members.iter().all(|m| m.division_code_string() == members[0].division_code_string()));
            assert!(members.iter().all(|m| m.household_id() == members[0].household_id()));
        }
        for children in [Program::Orphan, Program::UnsupportedChild, Program::HivAffectedChild] {
            assert!(
                pop.persons().iter().filter(|p| p.program() == children).all(|p| p.age_on(pop.reference_date()) < 18)
            );
        }
    }

    /// Everything the five agencies say about one person, gathered from the facts alone.
    #[derive(Default)]
    struct Seen {
        assistance: Option<Assistance>,
        employment: Option<EmploymentStatus>,
        pension: Option<Pension>,
        student: Option<Stage>,
        aid: bool,
        medical: Option<MedicalInsurance>,
        disability: Option<Disability>,
        subsidy: Option<DisabilitySubsidy>,
    }

    fn gather(pop: &Population) -> HashMap<String, Seen> {
        let mut by_person: HashMap<String, Seen> = HashMap::new();
        for agency in AGENCIES {
            for f in pop.facts(agency) {
                let s = by_person.entry(f.id_number.as_str().to_string()).or_default();
                match f.payload {
                    Payload::Assistance(a) => s.assistance = Some(a),
                    Payload::Employment(e) => s.employment = e.status,
                    Payload::Pension(p) => s.pension = Some(p),
                    Payload::Student(st) => s.student = st.stage,
                    Payload::EducationAid(_) => s.aid = true,
                    Payload::MedicalInsurance(m) => s.medical = Some(m),
                    Payload::Disability(d) => s.disability = Some(d),
                    Payload::DisabilitySubsidy(d) => s.subsidy = Some(d),
                }
            }
        }
        by_person
    }

    /// The coverage rules of docs/spec/coordination.md, re-evaluated from the facts.
    fn recount_gaps(pop: &Population) -> BTreeMap<&'static str, usize> {
        let year = pop.config().year as u16;
        let as_of = pop.reference_date();
        let mut gaps: BTreeMap<&'static str, usize> = GAP_RULES.iter().map(|r| (*r, 0)).collect();
        let mut hit = |rule: &'static str| *gaps.get_mut(rule).unwrap() += 1;
        for (id, s) in gather(pop) {
            let a = s.assistance.as_ref().expect("everyone has an assistance fact");
            let program = a.program.unwrap();
            let birth = NaiveDate::parse_from_str(&id[6..14], "%Y%m%d").unwrap();
            let age = as_of.years_since(birth).unwrap();
            let insured = s.medical.as_ref().filter(|m| m.year == Some(year));
            if matches!(program, Program::Dibao | Program::Tekun | Program::DibaoMarginal | Program::AtRisk)
                && insured.is_none()
            {
                hit("UNINSURED");
            }
            if let Some(m) = insured {
                let sub = m.premium_subsidy.unwrap();
                if (program == Program::Tekun && sub != PremiumSubsidy::Full)
                    || (program == Program::Dibao && sub == PremiumSubsidy::None)
                {
                    hit("PREMIUM_SUBSIDY_MISMATCH");
                }
            }
            let living = s.subsidy.as_ref().and_then(|d| d.living_subsidy);
            let nursing = s.subsidy.as_ref().and_then(|d| d.nursing_subsidy);
            if let Some(d) = &s.disability {
                if program == Program::Dibao && living.is_none() {
                    hit("DISABILITY_LIVING_SUBSIDY_MISSING");
                }
                if d.grade.unwrap() <= 2 && nursing.is_none() {
                    hit("NURSING_SUBSIDY_MISSING");
                }
            }
            let listed = matches!(
                program,
                Program::Dibao
                    | Program::Tekun
                    | Program::Orphan
                    | Program::UnsupportedChild
                    | Program::HivAffectedChild
            );
            if s.student.is_some() && listed && !s.aid {
                hit("STUDENT_AID_MISSING");
            }
            let dibao_or_tekun = matches!(program, Program::Dibao | Program::Tekun);
            if dibao_or_tekun
                && (16..=59).contains(&age)
                && s.student.is_none()
                && let Some(p) = &s.pension
                && p.enrolled == Some(true)
                && p.premium_paid_by_government != Some(true)
            {
                hit("PENSION_PREMIUM_NOT_PAID");
            }
            if let (Some(std), Some(b)) = (standard(a), a.monthly_benefit)
                && b.to_fen() > std
            {
                hit("BENEFIT_ABOVE_STANDARD");
            }
            if program == Program::Tekun && s.employment == Some(EmploymentStatus::Employed) {
                hit("TEKUN_EMPLOYED");
            }
        }
        gaps
    }

    #[test]
    fn planted_gaps_equal_what_the_facts_show() {
        for pop in [population_20k(), &small(1_000, 2023), &small(5_000, 99)] {
            let expected = pop.expected().gaps;
            assert_eq!(recount_gaps(pop), expected, "persons {}", pop.config().persons);
        }
        // At 20,000 persons every rule has something to find.
        let gaps = population_20k().expected().gaps;
        for rule in GAP_RULES {
            assert!(gaps[rule] > 0, "{rule}: {gaps:?}");
        }
    }

    /// The full default population (211,300): slow in a debug build, so run on demand with
    /// `cargo test --release -- --ignored`.
    #[test]
    #[ignore]
    fn default_population_checks() {
        let pop = Population::generate(&SynthConfig::default());
        let e = pop.expected();
        assert_eq!(e.dibao_tekun_total, 211_300);
        assert_eq!(recount_gaps(&pop), e.gaps);
        for agency in AGENCIES {
            let mut n = 0;
            for f in pop.facts(agency) {
                f.validate().unwrap();
                n += 1;
            }
            assert_eq!(n, e.facts_per_agency[agency], "{agency}");
        }
        let ids: HashSet<String> = pop.persons().iter().map(|p| p.id_number.as_str().to_owned()).collect();
        assert_eq!(ids.len(), pop.persons().len());
    }

    #[test]
    fn premium_subsidies_follow_the_gansu_values() {
        let pop = population_20k();
        let by_person = gather(pop);
        for s in by_person.values() {
            let (Some(a), Some(m)) = (&s.assistance, &s.medical) else {
                continue;
            };
            assert_eq!(m.scheme, Some(Scheme::Resident));
            assert_eq!(m.year, Some(2023));
            let amount = m.subsidy_amount.map(|x| x.to_fen());
            let expected = match (a.program.unwrap(), a.urban_mode, a.rural_class) {
                (Program::Tekun, _, _) if m.premium_subsidy == Some(PremiumSubsidy::Partial) => {
                    Some(yuan("220.00")) // the planted mismatch
                }
                (Program::Tekun | Program::Orphan | Program::UnsupportedChild | Program::HivAffectedChild, _, _) => {
                    Some(yuan("320.00"))
                }
                (Program::Dibao, Some(UrbanMode::Full), _) | (Program::Dibao, _, Some(1 | 2)) => Some(yuan("220.00")),
                (Program::Dibao, _, _) => Some(yuan("160.00")),
                (Program::AtRisk, _, _) => Some(yuan("100.00")),
                _ => None,
            };
            assert_eq!(amount, expected, "{a:?}");
            let kind = match expected {
                Some(x) if x == yuan("320.00") => PremiumSubsidy::Full,
                Some(_) => PremiumSubsidy::Partial,
                None => PremiumSubsidy::None,
            };
            assert_eq!(m.premium_subsidy, Some(kind));
        }
    }

    #[test]
    fn partner_facts_follow_age_and_program() {
        let pop = population_20k();
        let as_of = pop.reference_date();
        for (id, s) in gather(pop) {
            let birth = NaiveDate::parse_from_str(&id[6..14], "%Y%m%d").unwrap();
            let age = as_of.years_since(birth).unwrap();
            if let Some(stage) = s.student {
                let ok = match stage {
                    Stage::Preschool => (3..=5).contains(&age),
                    Stage::Primary => (6..=11).contains(&age),
                    Stage::JuniorSecondary => (12..=14).contains(&age),
                    Stage::SeniorSecondary | Stage::Vocational => (15..=17).contains(&age),
                    Stage::Higher => (18..=22).contains(&age),
                };
                assert!(ok, "{stage:?} at {age}");
            } else {
                assert!(!(6..=14).contains(&age), "compulsory schooling at {age}");
            }
            assert!(!s.aid || s.student.is_some());
            assert_eq!(s.employment.is_some(), (16..=59).contains(&age) && s.student.is_none());
            if let Some(p) = &s.pension {
                assert_eq!(p.receiving, Some(age >= 60));
                assert_eq!(p.monthly_pension.is_some(), age >= 60);
            }
            if age >= 60 {
                assert!(s.pension.is_some(), "60+ receive a pension");
            }
            let program = s.assistance.as_ref().unwrap().program.unwrap();
            if matches!(program, Program::Dibao | Program::Tekun) && (16..=59).contains(&age) && s.student.is_none() {
                assert_eq!(s.pension.as_ref().and_then(|p| p.enrolled), Some(true));
            }
            if let Some(d) = &s.disability {
                let no = d.certificate_no.as_deref().unwrap();
                assert_eq!(&no[..18], id);
            }
            if let Some(sub) = &s.subsidy {
                assert!(s.disability.is_some());
                if let Some(l) = sub.living_subsidy {
                    assert_eq!(program, Program::Dibao);
                    assert_eq!(l.to_fen(), yuan("100.00"));
                }
                if sub.nursing_subsidy.is_some() {
                    assert!(s.disability.as_ref().unwrap().grade.unwrap() <= 2);
                }
            }
        }
        // About 10 % of adults hold a certificate.
        let adults: Vec<&Person> = pop.persons().iter().filter(|p| p.age_on(as_of) >= 18).collect();
        let holders = adults.iter().filter(|p| p.disability().is_some()).count() as f64;
        let share = holders / adults.len() as f64;
        assert!((0.08..0.12).contains(&share), "{share}");
    }

    #[test]
    fn showcase_is_a_rural_dibao_pupil_with_a_certificate() {
        for pop in [population_20k(), &small(1_000, 2023), &small(1_000, 5), &small(1_000, 6)] {
            let p = pop.showcase();
            assert_eq!(p.program(), Program::Dibao);
            assert_eq!(p.residence(), Residence::Rural);
            assert!(p.age_on(pop.reference_date()) < 18);
            let student = pop.facts_of(p, "education");
            assert!(student.iter().any(|f| matches!(f.payload, Payload::Student(_))));
            assert!(student.iter().any(|f| matches!(f.payload, Payload::EducationAid(_))));
            let dis = pop.facts_of(p, "disability_federation");
            assert!(dis.iter().any(|f| matches!(f.payload, Payload::Disability(_))));
            assert!(dis.iter().any(|f| matches!(f.payload, Payload::DisabilitySubsidy(_))));
            assert_eq!(pop.facts_of(p, "medical_insurance").len(), 1);
            assert!(p.planted_gaps().is_empty());
            for f in pop.facts_of(p, "civil_affairs") {
                assert_eq!(f.id_number, p.id_number);
            }
        }
    }

    #[test]
    fn showcase_is_made_when_no_pupil_holds_a_certificate() {
        let cfg = SynthConfig { persons: 1_000, ..SynthConfig::default() };
        let mut g = Generator::new(&cfg);
        g.households(Program::Dibao, 1_000);
        for p in &mut g.persons {
            p.disability = None;
            p.flags &= !(HAS_LIVING_SUBSIDY | HAS_NURSING_SUBSIDY | GAP_LIVING_MISSING | GAP_NURSING_MISSING);
        }
        let i = g.settle_showcase().expect("1,000 dibao persons include a rural pupil") as usize;
        let pop = Population {
            config: cfg.clone(),
            reference_date: g.reference_date,
            persons: g.persons,
            showcase: Some(i as u32),
        };
        let p = pop.showcase();
        assert_eq!((p.program(), p.residence()), (Program::Dibao, Residence::Rural));
        assert!(p.stage().is_some() && p.disability().is_some() && p.planted_gaps().is_empty());
        let dis = pop.facts_of(p, "disability_federation");
        assert_eq!(dis.len(), 2);
        dis.iter().for_each(|f| f.validate().unwrap());
        assert_eq!(recount_gaps(&pop), pop.expected().gaps);
    }

    #[test]
    fn tiny_populations_generate() {
        for persons in [0, 1, 2, 13, 99] {
            let pop = small(persons, 3);
            assert_eq!(pop.expected().dibao_tekun_total, persons);
            for agency in AGENCIES {
                pop.facts(agency).for_each(|f| f.validate().unwrap());
            }
        }
        assert!(small(0, 3).try_showcase().is_none());
    }

    #[test]
    fn expected_benefit_totals_are_the_sum_of_the_facts() {
        let pop = population_20k();
        let mut sums: BTreeMap<(String, Program), i128> = BTreeMap::new();
        for f in pop.facts("civil_affairs") {
            let Payload::Assistance(a) = &f.payload else { unreachable!() };
            if let Some(b) = a.monthly_benefit {
                *sums.entry((f.id_number.as_str()[..6].to_string(), a.program.unwrap())).or_default() += b.to_fen();
            }
        }
        let e = pop.expected();
        assert_eq!(sums.len(), e.monthly_benefit_by_county_program.len());
        for ((county, program), fen) in sums {
            assert_eq!(e.monthly_benefit_by_county_program[&(county, program)].to_fen(), fen);
        }
        let hh: HashSet<String> = pop.persons().iter().map(|p| p.household_id()).collect();
        assert_eq!(hh.len(), e.households_by_county_program.values().sum::<usize>());
    }
}
