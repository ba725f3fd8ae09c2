//! Deterministic synthetic medical settlements (结算) for part of a [`Population`], one calendar year (the
//! population's [`SynthConfig::year`](super::SynthConfig::year)), with every kind of fault of the three-tier
//! cross-check (docs/spec/medical.md, [`crate::domain::medical`]) planted at known rates, so that the demo can push
//! them and check that the hub's findings are exactly what was planted.
//!
//! [`generate`] draws, for a [`SettlementConfig::share`] of the persons, a few settlements each and pays them as a
//! **correct payer** would under [`PolicyParams::example_2023`]: the generator keeps its own running per-person-year
//! critical-illness and assistance deductibles and assistance paid (exactly the running totals of
//! docs/spec/medical.md "The computation", half-up to the fen), so a clean settlement raises no finding. Each planted
//! fault then perturbs a chosen settlement (or, for the threshold codes, shapes a chosen person's year) so that it
//! raises a known set of codes. [`ExpectedFindings`] counts those planting decisions; it is not obtained by running the
//! checker (the tests run the checker and compare).
//!
//! The same population and config always give the same settlements in the same order (a `ChaCha8Rng` seeded with
//! [`SettlementConfig::seed`], drawn in a fixed order). Amounts are exact [`Money`] (integer fen).
//!
//! # How the hub is expected to read the persons
//!
//! - A person's assistance group on a day comes from their ACTIVE assistance facts valid on that day ([`group_of`]);
//!   every synthetic person has one open-ended program from its `valid_from` on, and every settlement here is settled
//!   on or after it, so the group is the same all year. Under the example parameters only EXPENDITURE_HARDSHIP places
//!   a person in no group.
//! - `insured_on(admitted_on)` comes from the person's medical_insurance facts valid that day: everyone is insured
//!   `year`-01-01..(`year`+1)-01-01 except the persons with the planted coverage gap `UNINSURED`.
//! - **HIGH_BURDEN's "no assistance program" means no program that places the person in a medical-assistance group**
//!   (`group_on(d).is_none()`), so EXPENDITURE_HARDSHIP persons, and persons unknown to the hub, qualify.
//!
//! # Persons and settlements
//!
//! Each person of [`Population::persons`] is chosen with probability [`SettlementConfig::share`] (default
//! [`DEFAULT_SHARE`] = 20 %). A chosen person follows one *scenario*: a threshold scenario (below) or an ordinary
//! year of 1–6 settlements ([`SETTLEMENT_COUNT_WEIGHTS`]: 50/28/14/5/2/1 %), on distinct `settled_on` days drawn
//! uniformly from the later of `year`-01-01 and the person's assistance `valid_from` to `year`-12-31 (so the group
//! is defined on every `settled_on` and no two settlements of a person look alike by accident).
//!
//! - Visit types ([`VISIT_TYPE_WEIGHTS`]): INPATIENT 40 %, OUTPATIENT_CHRONIC 35 %, OUTPATIENT_GENERAL 25 %.
//! - INPATIENT: total cost 3,000–10,000 yuan (65 %), 10,000–25,000 (25 %) or 25,000–50,000 (10 %), uniform to the
//!   fen within the band; policy scope 80–95 % of the total; basic insurance pays 55–75 % of the scope (45–60 % out
//!   of the province). Stay 3–15 days (7–25 above 10,000): `admitted_on` = `settled_on` − stay, but not before
//!   `year`-01-01 nor on or before the person's previous `settled_on`. 92 % in the province; referred 30 % in the
//!   province, 70 % outside. 5 % have `other_paid` (commercial insurance, charity) of 20–60 % of the costs outside
//!   the scope (none in the HIGH_BURDEN and TILTED scenarios' stays, whose scope is 60–75 % of the total).
//! - OUTPATIENT_CHRONIC: 200–3,000 yuan, scope 85–100 %, basic 50–70 % of the scope. OUTPATIENT_GENERAL: 30–600
//!   yuan, scope 80–100 %, basic 40–60 %. Both admitted and settled the same day, in the province, not referred.
//! - Critical illness and assistance are then paid as docs/spec/medical.md prescribes; `out_of_pocket` is the rest, so
//!   the five parts always sum to `total_cost` and every settlement passes [`Settlement::validate`].
//! - `settlement_id` = `MI-<year>-<7-digit sequence>` in output order (person by person, each in check order);
//!   `division_code` = the person's 12-digit village code; `person` = `[0; 32]`, a placeholder for the caller's
//!   person key.
//!
//! Ordinary years stay clear of every threshold, so that codes never fire by accident: a settlement that would bring
//! the person's assistance paid in the year above 75 % of the annual cap (15,000.00), or a no-group person's
//! out-of-pocket in the year to 90 % of the HIGH_BURDEN threshold (18,000.00), is left out; a group person's
//! in-province referred settlement that would bring their referred out-of-pocket above 90 % of the tilted-assistance
//! threshold (9,000.00) is recorded as not referred (in the ANNUAL_CAP_EXCEEDED scenario too). A settlement left out
//! plants nothing. The same limits apply to the duplicates below.
//!
//! # Planted faults
//!
//! Fault kinds are named after the code they target ([`FAULT_KINDS`], counts in [`ExpectedFindings::planted`]).
//! Settlement faults are drawn once per settlement of an ordinary year (at most one each, by one uniform draw
//! against the rates of the faults that apply to the person's group and visit type); threshold scenarios are drawn
//! once per chosen person, and their settlements carry no other fault. A pick whose condition does not hold on the
//! settlement drawn (e.g. nothing owed to miss) leaves it clean and is not counted, so realized counts are somewhat
//! below rate × eligible settlements.
//!
//! | fault kind | planted on | rate | what is done | codes raised |
//! | --- | --- | --- | --- | --- |
//! | `NOT_INSURED` | every settlement of a person with the population's `UNINSURED` gap (2 % of dibao, tekun, marginal, at-risk) | population's [`UNINSURED_RATE`](super::UNINSURED_RATE) | nothing: the person has no medical_insurance fact | NOT_INSURED on each such settlement, on top of any other code |
//! | `ASSISTANCE_TO_INELIGIBLE` | ordinary settlements of no-group persons | [`ASSISTANCE_TO_INELIGIBLE_RATE`] 10 % | assistance paid as if dibao: 70 % of the residual, half-up (needs a residual of at least 0.01) | ASSISTANCE_TO_INELIGIBLE |
//! | `TIER_ORDER_VIOLATION` | ordinary INPATIENT / OUTPATIENT_CHRONIC settlements of group persons | [`TIER_ORDER_VIOLATION_RATE`] 1 % | `basic_paid` = 0; critical illness and assistance paid as owed on that basis (needs one of them > 0) | TIER_ORDER_VIOLATION |
//! | `ASSISTANCE_MISSED` | same | [`ASSISTANCE_MISSED_RATE`] 3 % | assistance paid 0 (needs more than the 1.00 tolerance owed) | ASSISTANCE_MISSED |
//! | `UNDER_ASSISTED` | same | [`UNDER_ASSISTED_RATE`] 2 % | half the assistance owed, half-up (needs a shortfall above the tolerance) | UNDER_ASSISTED |
//! | `OVER_ASSISTED` | same, and ordinary OUTPATIENT_GENERAL settlements of group persons | [`OVER_ASSISTED_RATE`] 2 % | assistance paid on the whole residual, deductible and ratio ignored (or on a visit that gets none; needs an excess above the tolerance) | OVER_ASSISTED |
//! | `CII_TILT_NOT_APPLIED` | ordinary INPATIENT settlements of group 1–2 persons; drawn in the 25,000–50,000 band | [`CII_TILT_NOT_APPLIED_RATE`] 5 % | critical illness paid by the untilted rule (full deductible left, 60 %); assistance paid as owed on the larger residual | CII_TILT_NOT_APPLIED |
//! | `DUPLICATE_SUSPECTED` | after each ordinary settlement | [`DUPLICATE_SUSPECTED_RATE`] 1 % | the same visit (days, total, scope, basic) pushed again under the next id, upper tiers paid as owed at that point | DUPLICATE_SUSPECTED on the copy |
//! | `ANNUAL_CAP_EXCEEDED` | chosen group persons | [`ANNUAL_CAP_EXCEEDED_RATE`] 0.5 % | INPATIENT stays of 60,000–150,000 paid correctly until one is owed more than the cap left (+ tolerance); that one is paid uncapped and ends the year (docs/spec/medical.md example E) | OVER_ASSISTED **and** ANNUAL_CAP_EXCEEDED on that settlement |
//! | `TILTED_ASSISTANCE_CANDIDATE` | chosen group persons | [`TILTED_ASSISTANCE_CANDIDATE_RATE`] 1.5 % | in-province referred INPATIENT stays of 20,000–60,000 with 25–40 % outside the scope, paid correctly, until the referred out-of-pocket passes 110 % of the threshold (11,000.00) | TILTED_ASSISTANCE_CANDIDATE once |
//! | `HIGH_BURDEN` | chosen no-group persons | [`HIGH_BURDEN_RATE`] 20 % | INPATIENT stays of 20,000–60,000 with 25–40 % outside the scope, paid correctly, until the year's out-of-pocket reaches 110 % of the threshold (22,000.00) | HIGH_BURDEN once (all within 12 months) |
//!
//! So [`ExpectedFindings::by_code`] equals `planted` code by code, except OVER_ASSISTED = planted `OVER_ASSISTED` +
//! planted `ANNUAL_CAP_EXCEEDED`.
//!
//! A duplicate is paid as the payer would pay a new visit at that point of the year (the deductibles already
//! consumed by the original), not copied amount for amount: an exact copy would usually also be owed other amounts
//! and raise CII_TILT_NOT_APPLIED or UNDER_ASSISTED on top.
//!
//! The parameters are those of [`PolicyParams::example_2023`] whatever the year; the hub must hold them (or an
//! equivalent version in force on every `settled_on`) for its findings to match.

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;

use super::{Person, Population, pick, ymd};
use crate::domain::id_number::IdNumber;
use crate::domain::medical::{FindingCode, PolicyParams, Settlement, VisitType, group_of};
use crate::domain::money::Money;

// ---------------------------------------------------------------------------------------------------------------------
// Configuration and documented rates
// ---------------------------------------------------------------------------------------------------------------------

/// Default share of the persons who have settlements.
pub const DEFAULT_SHARE: f64 = 0.20;
/// Default seed.
pub const DEFAULT_SEED: u64 = 2023;

/// What to generate. The year is the population's.
#[derive(Debug, Clone, PartialEq)]
pub struct SettlementConfig {
    /// Probability that a person has settlements in the year, 0 to 1 (default [`DEFAULT_SHARE`]).
    pub share: f64,
    /// Seed of the `ChaCha8Rng`; same population and config → same settlements.
    pub seed: u64,
}

impl Default for SettlementConfig {
    fn default() -> Self {
        Self { share: DEFAULT_SHARE, seed: DEFAULT_SEED }
    }
}

/// Settlements in an ordinary year: 1, 2, …, 6, relative weights (percent).
pub const SETTLEMENT_COUNT_WEIGHTS: [u32; 6] = [50, 28, 14, 5, 2, 1];
/// INPATIENT, OUTPATIENT_CHRONIC, OUTPATIENT_GENERAL, percent.
pub const VISIT_TYPE_WEIGHTS: [u32; 3] = [40, 35, 25];

/// Ordinary settlements of no-group persons: assistance paid anyway.
pub const ASSISTANCE_TO_INELIGIBLE_RATE: f64 = 0.10;
/// Ordinary INPATIENT / OUTPATIENT_CHRONIC settlements of group persons: basic insurance skipped.
pub const TIER_ORDER_VIOLATION_RATE: f64 = 0.01;
/// Ordinary INPATIENT / OUTPATIENT_CHRONIC settlements of group persons: no assistance paid.
pub const ASSISTANCE_MISSED_RATE: f64 = 0.03;
/// Ordinary INPATIENT / OUTPATIENT_CHRONIC settlements of group persons: half the assistance paid.
pub const UNDER_ASSISTED_RATE: f64 = 0.02;
/// Ordinary settlements of group persons (every visit type): assistance on the whole residual.
pub const OVER_ASSISTED_RATE: f64 = 0.02;
/// Ordinary INPATIENT settlements of group 1–2 persons: untilted critical illness.
pub const CII_TILT_NOT_APPLIED_RATE: f64 = 0.05;
/// After each ordinary settlement: the same visit pushed again under another id.
pub const DUPLICATE_SUSPECTED_RATE: f64 = 0.01;
/// Chosen group persons: a year of large stays whose last one is paid past the annual cap.
pub const ANNUAL_CAP_EXCEEDED_RATE: f64 = 0.005;
/// Chosen group persons: a year of referred stays leaving a heavy out-of-pocket.
pub const TILTED_ASSISTANCE_CANDIDATE_RATE: f64 = 0.015;
/// Chosen no-group persons: a year of stays whose out-of-pocket reaches the HIGH_BURDEN threshold.
pub const HIGH_BURDEN_RATE: f64 = 0.20;

/// The planted fault kinds, in [`FindingCode::ALL`] order: each is named after the code it targets (module docs).
pub const FAULT_KINDS: [&str; 11] = [
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
];

/// Longest a threshold scenario may run (days drawn up front); the targets are reached well before.
const SCENARIO_SETTLEMENTS: usize = 8;

// ---------------------------------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------------------------------

/// One generated settlement and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthSettlement {
    /// The person's identity number; the caller derives the person key from it.
    pub id_number: IdNumber,
    /// Position of the person in [`Population::persons`].
    pub person_index: usize,
    /// The settlement, with `person` = `[0; 32]` (placeholder: fill in the person key).
    pub settlement: Settlement,
}

/// Totals of the three tiers, yuan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TierTotals {
    /// Basic medical insurance (tier 1).
    pub basic: Money,
    /// Critical-illness insurance (tier 2).
    pub critical_illness: Money,
    /// Medical assistance (tier 3).
    pub medical_assistance: Money,
}

/// What a hub must find in a [`SettlementSet`], from the planting decisions (module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedFindings {
    /// Findings per code; every code of [`FindingCode::ALL`] is present, 0 where none.
    pub by_code: BTreeMap<&'static str, usize>,
    /// Faults planted per kind; every kind of [`FAULT_KINDS`] is present. `NOT_INSURED` counts settlements,
    /// `HIGH_BURDEN`, `TILTED_ASSISTANCE_CANDIDATE` and `ANNUAL_CAP_EXCEEDED` count persons (one finding each), the
    /// others settlements.
    pub planted: BTreeMap<&'static str, usize>,
    /// Settlements generated.
    pub settlements: usize,
    /// Distinct persons with at least one settlement.
    pub persons: usize,
    /// Sum of `total_cost`.
    pub total_cost: Money,
    /// Sum of `out_of_pocket`.
    pub out_of_pocket: Money,
    /// Sums of `basic_paid`, `critical_illness_paid` and `medical_assistance_paid` as recorded.
    pub paid: TierTotals,
    /// What the rules owe: the sums of the checker's `expected_cii` and `expected_ma` (docs/spec/medical.md steps 2
    /// and 4). The basic tier is not recomputed by docs/spec/medical.md, so `expected.basic` = `paid.basic`.
    pub expected: TierTotals,
}

/// The settlements of one year and what they should raise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementSet {
    /// Person by person (population order), each person's in check order (`settled_on`, then `settlement_id`).
    pub settlements: Vec<SynthSettlement>,
    /// The findings a correct hub must produce.
    pub expected: ExpectedFindings,
}

/// Generates the settlements of the population's year (deterministic; see the module docs).
///
/// # Panics
/// If `config.share` is not within 0 to 1.
pub fn generate(population: &Population, config: &SettlementConfig) -> SettlementSet {
    assert!((0.0..=1.0).contains(&config.share), "share {} outside 0..=1", config.share);
    let mut g = Generator::new(population, config);
    for (index, person) in population.persons().iter().enumerate() {
        if g.rng.random_bool(config.share) {
            g.person(index, person);
        }
    }
    g.finish()
}

// ---------------------------------------------------------------------------------------------------------------------
// The payer
// ---------------------------------------------------------------------------------------------------------------------

fn fen(f: i128) -> Money {
    Money::from_fen(f).expect("synthetic amounts are not negative")
}

fn mul(m: Money, ratio: Decimal) -> Money {
    m.mul_ratio_half_up(ratio)
}

/// `a − b > tolerance` (the checker's comparison).
fn exceeds(a: Money, b: Money, tolerance: Money) -> bool {
    a.saturating_sub_zero(b) > tolerance
}

/// `percent` % of `m`, fen truncated: `percent_of(x, 90)` = 90 % of `x`.
fn percent_of(m: Money, percent: i64) -> Money {
    fen(m.to_fen() * i128::from(percent) / 100)
}

/// The example parameters, as the payer needs them.
#[derive(Debug, Clone, Copy)]
struct Rules {
    cap: Money,
    tolerance: Money,
    cii_plain: (Money, Decimal),
    cii_tilted: (Money, Decimal),
    general_assisted: bool,
    /// Assistance paid in an ordinary year stays at or below this (75 % of the cap).
    ma_budget: Money,
    /// A group person's in-province referred out-of-pocket stays at or below this (90 % of the threshold).
    referred_budget: Money,
    /// A no-group person's out-of-pocket stays at or below this (90 % of the threshold).
    burden_budget: Money,
    /// The TILTED_ASSISTANCE_CANDIDATE scenario runs until above this (110 % of the threshold).
    referred_target: Money,
    /// The HIGH_BURDEN scenario runs until at or above this (110 % of the threshold).
    burden_target: Money,
}

impl Rules {
    fn new(p: &PolicyParams) -> Rules {
        let referred = p.tilted_assistance_threshold();
        let burden = p.high_burden_threshold();
        Rules {
            cap: p.annual_cap,
            tolerance: p.tolerance,
            cii_plain: p.cii_terms(false),
            cii_tilted: p.cii_terms(true),
            general_assisted: p.outpatient_general_assisted,
            ma_budget: percent_of(p.annual_cap, 75),
            referred_budget: percent_of(referred, 90),
            burden_budget: percent_of(burden, 90),
            referred_target: percent_of(referred, 110),
            burden_target: percent_of(burden, 110),
        }
    }

    fn assists(&self, visit_type: VisitType) -> bool {
        match visit_type {
            VisitType::Inpatient | VisitType::OutpatientChronic => true,
            VisitType::OutpatientGeneral => self.general_assisted,
        }
    }
}

/// A person's assistance group terms under the example parameters.
#[derive(Debug, Clone, Copy)]
struct Terms {
    ma_ratio: Decimal,
    /// `income × ma_deductible_share`, half-up.
    ma_deductible: Money,
    tilted: bool,
}

/// Running totals of the person's year, as the checker keeps them.
#[derive(Debug, Clone, Copy, Default)]
struct YearState {
    cii_consumed: Money,
    ma_consumed: Money,
    ma_paid: Money,
    referred_out_of_pocket: Money,
    out_of_pocket: Money,
}

/// What is settled before the upper tiers: the visit and the basic payment.
#[derive(Debug, Clone, Copy)]
struct Visit {
    visit_type: VisitType,
    admitted_on: NaiveDate,
    settled_on: NaiveDate,
    in_province: bool,
    referred: bool,
    total: Money,
    scope: Money,
    basic: Money,
    other: Money,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    Ineligible,
    TierOrder,
    Missed,
    Under,
    Over,
    CiiTilt,
    CapIgnored,
}

impl Fault {
    /// The fault kind counted in [`ExpectedFindings::planted`].
    fn kind(self) -> Option<FindingCode> {
        Some(match self {
            Fault::None => return None,
            Fault::Ineligible => FindingCode::AssistanceToIneligible,
            Fault::TierOrder => FindingCode::TierOrderViolation,
            Fault::Missed => FindingCode::AssistanceMissed,
            Fault::Under => FindingCode::UnderAssisted,
            Fault::Over => FindingCode::OverAssisted,
            Fault::CiiTilt => FindingCode::CiiTiltNotApplied,
            Fault::CapIgnored => FindingCode::AnnualCapExceeded,
        })
    }
}

/// The upper tiers of one settlement as paid, with what the rules owe and the deductibles consumed.
#[derive(Debug, Clone, Copy)]
struct Paid {
    basic: Money,
    cii: Money,
    ma: Money,
    out_of_pocket: Money,
    expected_cii: Money,
    expected_ma: Money,
    cii_consumed: Money,
    ma_consumed: Money,
}

/// Ratio of the UNDER_ASSISTED fault (half) and of the ASSISTANCE_TO_INELIGIBLE fault (dibao's 70 %).
const HALF: Decimal = Decimal::from_parts(50, 0, 0, false, 2);
const INELIGIBLE_RATIO: Decimal = Decimal::from_parts(70, 0, 0, false, 2);

/// Pays `v` with `fault` after the year so far (`st`), mirroring docs/spec/medical.md "The computation" step by step.
/// `None` when the fault's condition does not hold (the module docs' "needs …"), so that it would not raise its code.
fn settle(rules: &Rules, terms: Option<Terms>, st: &YearState, v: &Visit, fault: Fault) -> Option<Paid> {
    let basic = if fault == Fault::TierOrder { Money::ZERO } else { v.basic };
    // Step 1.
    let after_basic = v.scope.saturating_sub_zero(basic);
    // Step 2.
    let tilted = terms.is_some_and(|t| t.tilted);
    let (deductible, ratio) = if tilted { rules.cii_tilted } else { rules.cii_plain };
    let cii_left = deductible.saturating_sub_zero(st.cii_consumed);
    let expected_cii = mul(after_basic.saturating_sub_zero(cii_left), ratio);
    let cii = if fault == Fault::CiiTilt {
        let (deductible, ratio) = rules.cii_plain;
        mul(after_basic.saturating_sub_zero(deductible.saturating_sub_zero(st.cii_consumed)), ratio)
    } else {
        expected_cii
    };
    let cii_consumed = st.cii_consumed + after_basic.min(cii_left);
    // Step 3, from what was paid.
    let residual = after_basic.saturating_sub_zero(cii);
    // Step 4.
    let cap_left = rules.cap.saturating_sub_zero(st.ma_paid);
    let (uncapped, ma_consumed) = match terms {
        Some(t) if rules.assists(v.visit_type) => {
            let ma_left = t.ma_deductible.saturating_sub_zero(st.ma_consumed);
            (mul(residual.saturating_sub_zero(ma_left), t.ma_ratio), st.ma_consumed + residual.min(ma_left))
        }
        _ => (Money::ZERO, st.ma_consumed),
    };
    let expected_ma = uncapped.min(cap_left);
    let ma = match fault {
        Fault::None | Fault::TierOrder | Fault::CiiTilt => expected_ma,
        Fault::Missed => Money::ZERO,
        Fault::Under => mul(expected_ma, HALF),
        Fault::Over => residual,
        Fault::Ineligible => mul(residual, INELIGIBLE_RATIO),
        Fault::CapIgnored => uncapped,
    };
    let tolerance = rules.tolerance;
    let holds = match fault {
        Fault::None => true,
        Fault::Ineligible => terms.is_none() && !ma.is_zero(),
        Fault::TierOrder => !v.scope.is_zero() && !(cii + ma).is_zero(),
        Fault::Missed => terms.is_some() && expected_ma > tolerance,
        Fault::Under => !ma.is_zero() && exceeds(expected_ma, ma, tolerance),
        Fault::Over => terms.is_some() && exceeds(ma, expected_ma, tolerance),
        Fault::CiiTilt => tilted && exceeds(expected_cii, cii, tolerance),
        Fault::CapIgnored => terms.is_some() && exceeds(uncapped, cap_left, tolerance),
    };
    if !holds {
        return None;
    }
    // basic ≤ scope, cii ≤ after basic, ma ≤ residual and other ≤ outside the scope, so nothing goes negative.
    let out_of_pocket = [basic, cii, ma, v.other]
        .into_iter()
        .try_fold(v.total, Money::checked_sub)
        .expect("the parts paid never exceed the total");
    Some(Paid { basic, cii, ma, out_of_pocket, expected_cii, expected_ma, cii_consumed, ma_consumed })
}

// ---------------------------------------------------------------------------------------------------------------------
// Generator
// ---------------------------------------------------------------------------------------------------------------------

/// Amount band of a visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Size {
    /// The ordinary distribution of the visit type.
    Regular,
    /// INPATIENT 25,000–50,000 (CII_TILT_NOT_APPLIED picks).
    Major,
    /// INPATIENT 20,000–60,000 with 25–40 % outside the scope, no other payer (HIGH_BURDEN, TILTED scenarios).
    Heavy,
    /// INPATIENT 60,000–150,000 (ANNUAL_CAP_EXCEEDED scenario).
    Huge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Ordinary,
    CapIgnored,
    Tilted,
    HighBurden,
}

/// One chosen person's year in progress.
struct Year<'a> {
    person: &'a Person,
    index: usize,
    division_code: String,
    terms: Option<Terms>,
    scenario: Scenario,
    state: YearState,
    previous: Option<NaiveDate>,
    committed: usize,
}

struct Generator {
    rules: Rules,
    params: PolicyParams,
    rng: ChaCha8Rng,
    year: i32,
    first_day: NaiveDate,
    last_day: NaiveDate,
    settlements: Vec<SynthSettlement>,
    planted: [usize; 11],
    persons: usize,
    total_cost: Money,
    out_of_pocket: Money,
    paid: TierTotals,
    expected: TierTotals,
}

fn kind_index(code: FindingCode) -> usize {
    FindingCode::ALL.iter().position(|c| *c == code).expect("every code is in ALL")
}

impl Generator {
    fn new(population: &Population, config: &SettlementConfig) -> Self {
        let params = PolicyParams::example_2023();
        let year = population.config().year;
        Generator {
            rules: Rules::new(&params),
            params,
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            year,
            first_day: ymd(year, 1, 1),
            last_day: ymd(year, 12, 31),
            settlements: Vec::new(),
            planted: [0; 11],
            persons: 0,
            total_cost: Money::ZERO,
            out_of_pocket: Money::ZERO,
            paid: TierTotals::default(),
            expected: TierTotals::default(),
        }
    }

    fn terms_of(&self, person: &Person) -> Option<Terms> {
        let group = group_of(&[person.program()], &self.params).and_then(|g| self.params.group(g))?;
        Some(Terms {
            ma_ratio: group.ma_ratio,
            ma_deductible: mul(self.params.prior_year_income, group.ma_deductible_share),
            tilted: group.cii_tilt,
        })
    }

    fn person(&mut self, index: usize, person: &Person) {
        let terms = self.terms_of(person);
        let u: f64 = self.rng.random();
        let scenario = match terms {
            Some(_) if u < ANNUAL_CAP_EXCEEDED_RATE => Scenario::CapIgnored,
            Some(_) if u < ANNUAL_CAP_EXCEEDED_RATE + TILTED_ASSISTANCE_CANDIDATE_RATE => Scenario::Tilted,
            None if u < HIGH_BURDEN_RATE => Scenario::HighBurden,
            _ => Scenario::Ordinary,
        };
        let mut year = Year {
            person,
            index,
            division_code: person.division_code_string(),
            terms,
            scenario,
            state: YearState::default(),
            previous: None,
            committed: 0,
        };
        let start = person.assistance_from.max(self.first_day);
        match scenario {
            Scenario::Ordinary => self.ordinary(&mut year, start),
            Scenario::CapIgnored => self.cap_ignored(&mut year, start),
            Scenario::Tilted | Scenario::HighBurden => self.heavy_year(&mut year, start),
        }
        if year.committed > 0 {
            self.persons += 1;
        }
    }

    fn ordinary(&mut self, y: &mut Year<'_>, start: NaiveDate) {
        let n = 1 + pick(&mut self.rng, &SETTLEMENT_COUNT_WEIGHTS);
        for day in self.days(start, n) {
            let visit_type = VisitType::ALL[pick(&mut self.rng, &VISIT_TYPE_WEIGHTS)];
            let fault = self.pick_fault(y.terms, visit_type);
            let size = if fault == Fault::CiiTilt { Size::Major } else { Size::Regular };
            let visit = self.visit(visit_type, size, day, y.previous);
            let (paid, fault) = match settle(&self.rules, y.terms, &y.state, &visit, fault) {
                Some(paid) => (paid, fault),
                None => (self.settle_clean(y, &visit), Fault::None),
            };
            let Some(visit) = self.admit(y, visit, &paid) else { continue };
            self.commit(y, visit, paid, fault.kind());
            if self.rng.random_bool(DUPLICATE_SUSPECTED_RATE) {
                let paid = self.settle_clean(y, &visit);
                if let Some(copy) = self.admit(y, visit, &paid) {
                    self.commit(y, copy, paid, Some(FindingCode::DuplicateSuspected));
                }
            }
        }
    }

    /// Large stays paid correctly until one is owed more than the cap left; that one is paid uncapped.
    fn cap_ignored(&mut self, y: &mut Year<'_>, start: NaiveDate) {
        for day in self.days(start, SCENARIO_SETTLEMENTS) {
            let visit = self.stay(Size::Huge, day, y.previous, false);
            if let Some(paid) = settle(&self.rules, y.terms, &y.state, &visit, Fault::CapIgnored) {
                let visit = self.admit(y, visit, &paid).expect("scenarios are not budgeted");
                self.commit(y, visit, paid, Some(FindingCode::AnnualCapExceeded));
                return;
            }
            let paid = self.settle_clean(y, &visit);
            let visit = self.admit(y, visit, &paid).expect("scenarios are not budgeted");
            self.commit(y, visit, paid, None);
        }
    }

    /// Heavy stays paid correctly until the scenario's out-of-pocket target is reached: TILTED (referred, in the
    /// province, a group person) or HIGH_BURDEN (a no-group person, any flags).
    fn heavy_year(&mut self, y: &mut Year<'_>, start: NaiveDate) {
        let tilted = y.scenario == Scenario::Tilted;
        for day in self.days(start, SCENARIO_SETTLEMENTS) {
            let visit = self.stay(Size::Heavy, day, y.previous, tilted);
            let paid = self.settle_clean(y, &visit);
            let visit = self.admit(y, visit, &paid).expect("scenarios are not budgeted");
            self.commit(y, visit, paid, None);
            let (reached, kind) = if tilted {
                (y.state.referred_out_of_pocket > self.rules.referred_target, FindingCode::TiltedAssistanceCandidate)
            } else {
                (y.state.out_of_pocket >= self.rules.burden_target, FindingCode::HighBurden)
            };
            if reached {
                self.planted[kind_index(kind)] += 1;
                return;
            }
        }
        // At least 5,000.00 out of pocket per stay (25 % of 20,000 outside the scope, no other payer): the 22,000.00
        // target takes at most 5 of the 8 days.
        unreachable!("a heavy scenario reaches its target within {SCENARIO_SETTLEMENTS} stays");
    }

    fn settle_clean(&self, y: &Year<'_>, visit: &Visit) -> Paid {
        settle(&self.rules, y.terms, &y.state, visit, Fault::None).expect("a clean settlement always settles")
    }

    /// The year's limits (module docs): `None` to leave an ordinary settlement out; a group person's referred
    /// settlement may come back as not referred.
    fn admit(&self, y: &Year<'_>, mut visit: Visit, paid: &Paid) -> Option<Visit> {
        let r = &self.rules;
        if y.scenario == Scenario::Ordinary {
            if y.state.ma_paid + paid.ma > r.ma_budget {
                return None;
            }
            if y.terms.is_none() && y.state.out_of_pocket + paid.out_of_pocket > r.burden_budget {
                return None;
            }
        }
        if y.terms.is_some()
            && y.scenario != Scenario::Tilted
            && visit.in_province
            && visit.referred
            && y.state.referred_out_of_pocket + paid.out_of_pocket > r.referred_budget
        {
            visit.referred = false;
        }
        Some(visit)
    }

    fn commit(&mut self, y: &mut Year<'_>, v: Visit, paid: Paid, kind: Option<FindingCode>) {
        let st = &mut y.state;
        st.cii_consumed = paid.cii_consumed;
        st.ma_consumed = paid.ma_consumed;
        st.ma_paid += paid.ma;
        st.out_of_pocket += paid.out_of_pocket;
        if v.in_province && v.referred {
            st.referred_out_of_pocket += paid.out_of_pocket;
        }
        y.previous = Some(v.settled_on);
        y.committed += 1;
        if let Some(kind) = kind {
            self.planted[kind_index(kind)] += 1;
        }
        if !y.person.insured() {
            self.planted[kind_index(FindingCode::NotInsured)] += 1;
        }
        self.total_cost += v.total;
        self.out_of_pocket += paid.out_of_pocket;
        self.paid.basic += paid.basic;
        self.paid.critical_illness += paid.cii;
        self.paid.medical_assistance += paid.ma;
        self.expected.basic += paid.basic;
        self.expected.critical_illness += paid.expected_cii;
        self.expected.medical_assistance += paid.expected_ma;
        let sequence = self.settlements.len() + 1;
        self.settlements.push(SynthSettlement {
            id_number: y.person.id_number.clone(),
            person_index: y.index,
            settlement: Settlement {
                settlement_id: format!("MI-{}-{sequence:07}", self.year),
                person: [0; 32],
                division_code: y.division_code.clone(),
                admitted_on: v.admitted_on,
                settled_on: v.settled_on,
                visit_type: v.visit_type,
                in_province: v.in_province,
                referred: v.referred,
                total_cost: v.total,
                policy_scope_cost: v.scope,
                basic_paid: paid.basic,
                critical_illness_paid: paid.cii,
                medical_assistance_paid: paid.ma,
                other_paid: v.other,
                out_of_pocket: paid.out_of_pocket,
            },
        });
    }

    fn finish(self) -> SettlementSet {
        let planted: BTreeMap<&'static str, usize> =
            FAULT_KINDS.iter().zip(self.planted).map(|(kind, n)| (*kind, n)).collect();
        let mut by_code: BTreeMap<&'static str, usize> =
            FindingCode::ALL.iter().zip(self.planted).map(|(code, n)| (code.as_str(), n)).collect();
        *by_code.get_mut(FindingCode::OverAssisted.as_str()).expect("every code present") +=
            self.planted[kind_index(FindingCode::AnnualCapExceeded)];
        SettlementSet {
            expected: ExpectedFindings {
                by_code,
                planted,
                settlements: self.settlements.len(),
                persons: self.persons,
                total_cost: self.total_cost,
                out_of_pocket: self.out_of_pocket,
                paid: self.paid,
                expected: self.expected,
            },
            settlements: self.settlements,
        }
    }

    // --- draws ------------------------------------------------------------------------------------------------------

    /// The settlement fault of an ordinary settlement: one uniform draw against the rates that apply.
    fn pick_fault(&mut self, terms: Option<Terms>, visit_type: VisitType) -> Fault {
        let assisted = self.rules.assists(visit_type);
        let mut table: Vec<(Fault, f64)> = Vec::with_capacity(5);
        match terms {
            None => table.push((Fault::Ineligible, ASSISTANCE_TO_INELIGIBLE_RATE)),
            Some(t) => {
                if assisted {
                    table.extend([
                        (Fault::TierOrder, TIER_ORDER_VIOLATION_RATE),
                        (Fault::Missed, ASSISTANCE_MISSED_RATE),
                        (Fault::Under, UNDER_ASSISTED_RATE),
                    ]);
                }
                table.push((Fault::Over, OVER_ASSISTED_RATE));
                if t.tilted && visit_type == VisitType::Inpatient {
                    table.push((Fault::CiiTilt, CII_TILT_NOT_APPLIED_RATE));
                }
            }
        }
        let u: f64 = self.rng.random();
        let mut threshold = 0.0;
        for (fault, rate) in table {
            threshold += rate;
            if u < threshold {
                return fault;
            }
        }
        Fault::None
    }

    /// `n` distinct days from `start` to the end of the year, in order.
    fn days(&mut self, start: NaiveDate, n: usize) -> Vec<NaiveDate> {
        let span = (self.last_day - start).num_days().max(0) as u64;
        let n = n.min(span as usize + 1);
        let mut days: Vec<NaiveDate> = Vec::with_capacity(n);
        while days.len() < n {
            let day = start + Days::new(self.rng.random_range(0..=span));
            if !days.contains(&day) {
                days.push(day);
            }
        }
        days.sort_unstable();
        days
    }

    fn yuan_between(&mut self, low: i64, high: i64) -> Money {
        fen(i128::from(self.rng.random_range(low * 100..=high * 100)))
    }

    /// `m × percent`, with `percent` drawn uniformly from `low..=high` in tenths of a percent, half-up.
    fn share_of(&mut self, m: Money, low: i64, high: i64) -> Money {
        let permille = self.rng.random_range(low * 10..=high * 10);
        fen((m.to_fen() * i128::from(permille) + 500) / 1000)
    }

    fn visit(
        &mut self,
        visit_type: VisitType,
        size: Size,
        settled_on: NaiveDate,
        previous: Option<NaiveDate>,
    ) -> Visit {
        let same_day = |total: Money, scope: Money, basic: Money| Visit {
            visit_type,
            admitted_on: settled_on,
            settled_on,
            in_province: true,
            referred: false,
            total,
            scope,
            basic,
            other: Money::ZERO,
        };
        match visit_type {
            VisitType::OutpatientGeneral => {
                let total = self.yuan_between(30, 600);
                let scope = self.share_of(total, 80, 100);
                let basic = self.share_of(scope, 40, 60);
                same_day(total, scope, basic)
            }
            VisitType::OutpatientChronic => {
                let total = self.yuan_between(200, 3_000);
                let scope = self.share_of(total, 85, 100);
                let basic = self.share_of(scope, 50, 70);
                same_day(total, scope, basic)
            }
            VisitType::Inpatient => self.stay(size, settled_on, previous, false),
        }
    }

    /// An INPATIENT visit settled on `settled_on`, admitted after `previous`; `referred_in_province` forces the
    /// flags (TILTED scenario), otherwise they are drawn.
    fn stay(
        &mut self,
        size: Size,
        settled_on: NaiveDate,
        previous: Option<NaiveDate>,
        referred_in_province: bool,
    ) -> Visit {
        let total = match size {
            Size::Regular => match pick(&mut self.rng, &[65, 25, 10]) {
                0 => self.yuan_between(3_000, 10_000),
                1 => self.yuan_between(10_000, 25_000),
                _ => self.yuan_between(25_000, 50_000),
            },
            Size::Major => self.yuan_between(25_000, 50_000),
            Size::Heavy => self.yuan_between(20_000, 60_000),
            Size::Huge => self.yuan_between(60_000, 150_000),
        };
        let scope = if size == Size::Heavy { self.share_of(total, 60, 75) } else { self.share_of(total, 80, 95) };
        let in_province = referred_in_province || self.rng.random_bool(0.92);
        let referred = referred_in_province || self.rng.random_bool(if in_province { 0.30 } else { 0.70 });
        let basic = if in_province { self.share_of(scope, 55, 75) } else { self.share_of(scope, 45, 60) };
        let outside_scope = total.saturating_sub_zero(scope);
        let other = if size != Size::Heavy && self.rng.random_bool(0.05) {
            self.share_of(outside_scope, 20, 60)
        } else {
            Money::ZERO
        };
        let stay = if total > fen(1_000_000) { self.rng.random_range(7..=25) } else { self.rng.random_range(3..=15) };
        let earliest = previous.map_or(self.first_day, |p| p + Days::new(1)).max(self.first_day);
        let admitted_on = (settled_on - Days::new(stay)).max(earliest).min(settled_on);
        debug_assert_eq!(settled_on.year(), self.year);
        Visit {
            visit_type: VisitType::Inpatient,
            admitted_on,
            settled_on,
            in_province,
            referred,
            total,
            scope,
            basic,
            other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::sync::OnceLock;

    use super::*;
    use crate::domain::agency::AgencyCode;
    use crate::domain::fact::{AssistanceStatus, Payload};
    use crate::domain::medical::{check_high_burden, check_person_year};
    use crate::tools::synth::SynthConfig;

    fn population(persons: usize, seed: u64) -> Population {
        Population::generate(&SynthConfig { persons, seed, year: 2023 })
    }

    fn population_5k() -> &'static Population {
        static P: OnceLock<Population> = OnceLock::new();
        P.get_or_init(|| population(5_000, 2023))
    }

    /// Half of the 5,000-person population, so that every fault kind is planted.
    fn set_5k() -> &'static SettlementSet {
        static S: OnceLock<SettlementSet> = OnceLock::new();
        S.get_or_init(|| generate(population_5k(), &SettlementConfig { share: 0.5, seed: 11 }))
    }

    fn money(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    /// What the checker of medical.rs finds over `set`, person by person, with the group and insurance cover read
    /// from each person's civil_affairs and medical_insurance facts: per code, and the sums of expected CII and MA.
    fn run_checker(pop: &Population, set: &SettlementSet) -> (BTreeMap<&'static str, usize>, Money, Money) {
        let p = PolicyParams::example_2023();
        let persons: HashMap<&str, &Person> = pop.persons().iter().map(|x| (x.id_number.as_str(), x)).collect();
        let mut by_person: BTreeMap<&str, Vec<Settlement>> = BTreeMap::new();
        for s in &set.settlements {
            by_person.entry(s.id_number.as_str()).or_default().push(s.settlement.clone());
        }
        let mut found: BTreeMap<&'static str, usize> = FindingCode::ALL.iter().map(|c| (c.as_str(), 0)).collect();
        let (mut cii, mut ma) = (Money::ZERO, Money::ZERO);
        for (id, settlements) in &by_person {
            let person = persons[id];
            let valid = |from: NaiveDate, to: Option<NaiveDate>, d: NaiveDate| from <= d && to.is_none_or(|t| d < t);
            let assistance: Vec<_> = pop
                .facts_of(person, AgencyCode::CIVIL_AFFAIRS)
                .into_iter()
                .filter_map(|f| match f.payload {
                    Payload::Assistance(a) if a.status == Some(AssistanceStatus::Active) => {
                        Some((f.valid_from, f.valid_to, a.program.unwrap()))
                    }
                    _ => None,
                })
                .collect();
            let cover: Vec<_> = pop
                .facts_of(person, AgencyCode::MEDICAL_INSURANCE)
                .into_iter()
                .filter(|f| matches!(f.payload, Payload::MedicalInsurance(_)))
                .map(|f| (f.valid_from, f.valid_to))
                .collect();
            let group_on = |d: NaiveDate| {
                let programs: Vec<_> =
                    assistance.iter().filter(|(from, to, _)| valid(*from, *to, d)).map(|(_, _, p)| *p).collect();
                group_of(&programs, &p)
            };
            let insured_on = |d: NaiveDate| cover.iter().any(|(from, to)| valid(*from, *to, d));
            for check in check_person_year(settlements, group_on, insured_on, &p) {
                cii += check.expected_cii;
                ma += check.expected_ma;
                for f in check.findings {
                    *found.get_mut(f.code.as_str()).unwrap() += 1;
                }
            }
            for f in check_high_burden(settlements, |d| group_on(d).is_some(), |_| &p) {
                *found.get_mut(f.code.as_str()).unwrap() += 1;
            }
        }
        (found, cii, ma)
    }

    fn assert_checker_finds_what_was_planted(pop: &Population, set: &SettlementSet) {
        let (found, cii, ma) = run_checker(pop, set);
        assert_eq!(found, set.expected.by_code, "planted: {:?}", set.expected.planted);
        assert_eq!(cii, set.expected.expected.critical_illness);
        assert_eq!(ma, set.expected.expected.medical_assistance);
    }

    #[test]
    fn the_checker_finds_exactly_what_was_planted() {
        let set = set_5k();
        assert_checker_finds_what_was_planted(population_5k(), set);
        // Every code is exercised.
        for (code, n) in &set.expected.by_code {
            assert!(*n > 0, "no {code} planted: {:?}", set.expected.by_code);
        }
        assert_eq!(
            set.expected.by_code["OVER_ASSISTED"],
            set.expected.planted["OVER_ASSISTED"] + set.expected.planted["ANNUAL_CAP_EXCEEDED"]
        );
        for kind in FAULT_KINDS.iter().filter(|k| **k != "OVER_ASSISTED") {
            assert_eq!(set.expected.by_code[kind], set.expected.planted[kind], "{kind}");
        }
    }

    #[test]
    fn the_checker_agrees_on_other_populations_and_shares() {
        for (persons, pop_seed, share, seed) in [(3_000, 5, DEFAULT_SHARE, 1), (2_000, 9, 1.0, 2), (1_000, 3, 0.0, 3)] {
            let pop = population(persons, pop_seed);
            let set = generate(&pop, &SettlementConfig { share, seed });
            assert_checker_finds_what_was_planted(&pop, &set);
        }
    }

    #[test]
    fn expected_maps_list_every_code_and_kind() {
        let e = &set_5k().expected;
        let codes: Vec<&str> = FindingCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(FAULT_KINDS.to_vec(), codes);
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        assert_eq!(e.by_code.keys().copied().collect::<Vec<_>>(), sorted);
        assert_eq!(e.planted.keys().copied().collect::<Vec<_>>(), sorted);
        let empty = generate(population_5k(), &SettlementConfig { share: 0.0, seed: 1 });
        assert!(empty.settlements.is_empty());
        assert_eq!(empty.expected.by_code.len(), 11);
        assert!(empty.expected.by_code.values().all(|n| *n == 0));
        assert_eq!((empty.expected.settlements, empty.expected.persons), (0, 0));
    }

    #[test]
    fn same_config_gives_the_same_settlements() {
        let pop = population_5k();
        let config = SettlementConfig { share: 0.5, seed: 11 };
        assert_eq!(&generate(pop, &config), set_5k());
        let other = generate(pop, &SettlementConfig { seed: 12, ..config });
        assert_ne!(other.settlements, set_5k().settlements);
    }

    #[test]
    fn totals_add_up() {
        let set = set_5k();
        let e = &set.expected;
        let sum = |f: fn(&Settlement) -> Money| set.settlements.iter().map(|s| f(&s.settlement)).sum::<Money>();
        assert_eq!(e.settlements, set.settlements.len());
        assert_eq!(e.persons, set.settlements.iter().map(|s| s.person_index).collect::<HashSet<_>>().len());
        assert_eq!(e.total_cost, sum(|s| s.total_cost));
        assert_eq!(e.out_of_pocket, sum(|s| s.out_of_pocket));
        assert_eq!(e.paid.basic, sum(|s| s.basic_paid));
        assert_eq!(e.paid.critical_illness, sum(|s| s.critical_illness_paid));
        assert_eq!(e.paid.medical_assistance, sum(|s| s.medical_assistance_paid));
        assert_eq!(e.expected.basic, e.paid.basic);
        // Missed and halved assistance outweigh the overpayments; the untilted CII is short.
        assert!(e.expected.critical_illness > e.paid.critical_illness);
        let persons = e.persons as f64 / population_5k().persons().len() as f64;
        assert!((0.45..0.55).contains(&persons), "{persons}");
    }

    #[test]
    fn settlements_are_valid_unique_and_dated_within_the_year() {
        let pop = population_5k();
        let set = set_5k();
        let (first, last) = (ymd(2023, 1, 1), ymd(2023, 12, 31));
        let mut ids = HashSet::new();
        for (i, s) in set.settlements.iter().enumerate() {
            let st = &s.settlement;
            assert_eq!(st.validate(), Ok(()), "{st:?}");
            assert!(ids.insert(st.settlement_id.clone()), "{} twice", st.settlement_id);
            assert_eq!(st.settlement_id, format!("MI-2023-{:07}", i + 1));
            let person = &pop.persons()[s.person_index];
            assert_eq!(person.id_number, s.id_number);
            assert_eq!(st.division_code, person.division_code_string());
            assert_eq!(st.person, [0; 32]);
            assert!(first <= st.admitted_on && st.admitted_on <= st.settled_on && st.settled_on <= last, "{st:?}");
            assert!(st.settled_on >= person.assistance_from, "{st:?}");
            if st.visit_type != VisitType::Inpatient {
                assert_eq!(st.admitted_on, st.settled_on);
            }
        }
        // Person by person, each in check order.
        let order: Vec<(usize, NaiveDate, &str)> = set
            .settlements
            .iter()
            .map(|s| (s.person_index, s.settlement.settled_on, s.settlement.settlement_id.as_str()))
            .collect();
        assert!(order.is_sorted());
    }

    #[test]
    fn amounts_are_realistic() {
        let set = set_5k();
        let mut by_type: BTreeMap<VisitType, Vec<Money>> = BTreeMap::new();
        for s in &set.settlements {
            by_type.entry(s.settlement.visit_type).or_default().push(s.settlement.total_cost);
        }
        let median = |v: &mut Vec<Money>| {
            v.sort_unstable();
            v[v.len() / 2]
        };
        let range = |v: &[Money]| (v[0], v[v.len() - 1]);
        let inpatient = by_type.get_mut(&VisitType::Inpatient).unwrap();
        let m = median(inpatient);
        assert!(money("4000") < m && m < money("15000"), "inpatient median {m}");
        let (low, high) = range(inpatient);
        assert!(low >= money("3000") && high <= money("150000"), "{low}..{high}");
        let chronic = by_type.get_mut(&VisitType::OutpatientChronic).unwrap();
        median(chronic);
        let (low, high) = range(chronic);
        assert!(low >= money("200") && high <= money("3000"), "{low}..{high}");
        let general = by_type.get_mut(&VisitType::OutpatientGeneral).unwrap();
        median(general);
        let (low, high) = range(general);
        assert!(low >= money("30") && high <= money("600"), "{low}..{high}");
        // A mix of visit types, of referred and of out-of-province stays.
        let n = set.settlements.len() as f64;
        for (visit_type, v) in &by_type {
            let share = v.len() as f64 / n;
            assert!((0.15..0.6).contains(&share), "{visit_type}: {share}");
        }
        let stays: Vec<&Settlement> =
            set.settlements.iter().map(|s| &s.settlement).filter(|s| s.visit_type == VisitType::Inpatient).collect();
        assert!(stays.iter().any(|s| s.referred && s.in_province));
        assert!(stays.iter().any(|s| !s.in_province));
        assert!(stays.iter().any(|s| s.admitted_on < s.settled_on));
        assert!(set.settlements.iter().any(|s| !s.settlement.other_paid.is_zero()));
    }

    #[test]
    fn several_settlements_exercise_the_deductibles() {
        let set = set_5k();
        let mut per_person: HashMap<usize, usize> = HashMap::new();
        for s in &set.settlements {
            *per_person.entry(s.person_index).or_default() += 1;
        }
        assert!(per_person.values().any(|n| *n >= 5));
        let mean = set.settlements.len() as f64 / per_person.len() as f64;
        assert!((1.5..2.2).contains(&mean), "{mean}");
    }

    /// The demo's size: the default population (254,200 persons) and config, about 94,000 settlements (about 3 s in a
    /// debug build): `cargo test --lib synth::settlements -- --ignored`.
    #[test]
    #[ignore]
    fn the_checker_agrees_at_the_demos_size() {
        let pop = Population::generate(&SynthConfig::default());
        let t = std::time::Instant::now();
        let set = generate(&pop, &SettlementConfig::default());
        eprintln!("generated {} in {:?}", set.settlements.len(), t.elapsed());
        let t = std::time::Instant::now();
        assert_checker_finds_what_was_planted(&pop, &set);
        eprintln!("checked in {:?}", t.elapsed());
    }
}
