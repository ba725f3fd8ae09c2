//! Subsidy campaigns (issue 18; docs/subsidies.md): the price-subsidy linkage mechanism (社会救助和保障标准与物价上涨挂钩
//! 联动机制) and who is owed what under it. Pure functions: every date, index value and rule version is an argument; no
//! clock, no I/O.
//!
//! Terms:
//! - **index month**: the month whose price indices are measured (e.g. the CPI of 2022-08, published in September).
//! - **subsidy month**: the month the subsidy is paid for, whose fund reports (PRICE_SUBSIDY) are reconciled; it is the
//!   month after the index month ("indices of Aug 2022 – Feb 2023 (paid Sep 2022 – Mar 2023)", the 2022-08-31 notice of
//!   NDRC and five ministries, docs/domain/policy-reference.md "Price subsidies linked to prices"). [`index_month_of`].
//! - **rule version** ([`LinkageRule`]): thresholds, covered groups, base amount per group and residence, formula,
//!   minimum, rounding and the pay-once-at-the-highest rule, effective by index month ([`choose_rule`]). Data, loaded by
//!   migration 0021 and `doudi subsidies rule add`, never constants in code.
//! - **eligibility**: decided from the facts in force on the subsidy month's last day (Asia/Shanghai).

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::calendar::Month;
use super::fact::{AssistanceStatus, FieldError, Payload, Program, Residence, UnemploymentBenefit, string_enum};
use super::money::Money;

/// Largest absolute year-on-year rise accepted, in percent (issue 18 item 1: "a rise outside −50…+50").
pub const MAX_ABS_RISE: Decimal = Decimal::from_parts(50, 0, 0, false, 0);

/// Why a rise (a year-on-year change in percent) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RiseError {
    /// Not `-?digits(.digits)?` in ASCII.
    #[error(
        "must be a decimal percent like 3.00 or -0.5: an optional '-', digits, optionally a point and 1 or 2 digits"
    )]
    Format,
    /// Three or more digits after the point.
    #[error("has more than 2 fractional digits (a year-on-year rise is published to 0.1 point; at most 0.01 accepted)")]
    TooManyFractionalDigits,
    /// Below −50 or above +50.
    #[error("must lie within -50 and +50 percent")]
    OutOfRange,
}

/// A year-on-year change of a price index, in percent (3.00 = +3.00 %), at most 2 decimals, within −50…+50.
/// Wire and storage form: a decimal string, e.g. `"3.00"`, `"-0.5"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rise(Decimal);

impl Rise {
    /// Parses `^-?[0-9]+(\.[0-9]{1,2})?$` within −50…+50.
    ///
    /// # Errors
    /// [`RiseError::Format`], [`RiseError::TooManyFractionalDigits`] (e.g. `"3.005"`), [`RiseError::OutOfRange`]
    /// (e.g. `"50.01"`).
    pub fn parse(s: &str) -> Result<Rise, RiseError> {
        let body = s.strip_prefix('-').unwrap_or(s);
        let (int, frac) = match body.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (body, None),
        };
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || !frac.is_none_or(digits) {
            return Err(RiseError::Format);
        }
        if frac.is_some_and(|f| f.len() > 2) {
            return Err(RiseError::TooManyFractionalDigits);
        }
        // At most 3 integer digits can still be in range (e.g. "050"); more is out of range, not a parse failure.
        if int.trim_start_matches('0').len() > 2 {
            return Err(RiseError::OutOfRange);
        }
        let d = Decimal::from_str(s).map_err(|_| RiseError::Format)?;
        if d.abs() > MAX_ABS_RISE {
            return Err(RiseError::OutOfRange);
        }
        Ok(Rise(d))
    }

    /// The value in percent.
    pub fn percent(self) -> Decimal {
        self.0
    }
}

impl fmt::Display for Rise {
    /// Exactly 2 decimals: `3.00`, `-0.50`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = self.0;
        d.rescale(2);
        write!(f, "{d}")
    }
}

impl FromStr for Rise {
    type Err = RiseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Rise::parse(s)
    }
}

impl Serialize for Rise {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rise {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Rise::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The monthly price indices development_reform (市发改委) pushes, as received (all strings, wire form).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriceIndexInput {
    /// Index month, `YYYY-MM`.
    pub month: String,
    /// CPI year-on-year rise, percent (`"3.00"`).
    pub cpi_yoy: String,
    /// Food CPI year-on-year rise, percent.
    pub food_cpi_yoy: String,
    /// Low-income basic-living price index (SCPI) year-on-year rise, percent; empty = not published.
    pub scpi_yoy: String,
    /// Publication date, `YYYY-MM-DD` (Asia/Shanghai).
    pub published_on: String,
}

/// One month's price indices, validated ([`PriceIndex::validate`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceIndex {
    pub month: Month,
    pub cpi_yoy: Rise,
    pub food_cpi_yoy: Rise,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scpi_yoy: Option<Rise>,
    pub published_on: NaiveDate,
}

impl PriceIndex {
    /// Checks every field of `input` against `today` (the Asia/Shanghai date the hub receives it; an argument, so
    /// this stays pure) and returns every failure, each naming its field (`month`, `cpi_yoy`, `food_cpi_yoy`,
    /// `scpi_yoy`, `published_on`) and the reason:
    /// - `month`: `YYYY-MM`, not after today's month ("is in the future");
    /// - the rises: [`Rise::parse`] (at most 2 decimals, within −50…+50); `scpi_yoy` may be empty;
    /// - `published_on`: a date after the index month's last day (an index is published once its month is over)
    ///   and not after `today`.
    ///
    /// # Errors
    /// The list of [`FieldError`]s, in field order; never empty.
    pub fn validate(input: &PriceIndexInput, today: NaiveDate) -> Result<PriceIndex, Vec<FieldError>> {
        let mut errors = Vec::new();
        let month = match input.month.parse::<Month>() {
            // The months `DecideLinkage` takes (`grpc::snapshot::month_in`): an index month before 1900 (year 0
            // included) could never be used.
            Ok(m) if !(1900..=2099).contains(&m.year()) => {
                errors.push(FieldError::new("month", format!("{m} is outside 1900-01 to 2099-12")));
                None
            }
            Ok(m) if m > Month::of(today) => {
                errors.push(FieldError::new("month", format!("{m} is in the future (today is {today})")));
                None
            }
            Ok(m) => Some(m),
            Err(_) => {
                errors.push(FieldError::new("month", "must be a month YYYY-MM"));
                None
            }
        };
        let mut rise = |field: &str, s: &str| match Rise::parse(s) {
            Ok(r) => Some(r),
            Err(e) => {
                errors.push(FieldError::new(field, e.to_string()));
                None
            }
        };
        let cpi = rise("cpi_yoy", &input.cpi_yoy);
        let food = rise("food_cpi_yoy", &input.food_cpi_yoy);
        let scpi = if input.scpi_yoy.is_empty() { Some(None) } else { rise("scpi_yoy", &input.scpi_yoy).map(Some) };
        let published = match super::calendar::parse_date(&input.published_on) {
            Ok(d) if d > today => {
                errors.push(FieldError::new("published_on", format!("{d} is in the future (today is {today})")));
                None
            }
            Ok(d) if month.is_some_and(|m| d <= m.last_day()) => {
                let m = month.map(|m| m.to_string()).unwrap_or_default();
                errors.push(FieldError::new("published_on", format!("{d} is not after the index month {m}")));
                None
            }
            Ok(d) => Some(d),
            Err(_) => {
                errors.push(FieldError::new("published_on", "must be a date YYYY-MM-DD"));
                None
            }
        };
        match (month, cpi, food, scpi, published) {
            (Some(month), Some(cpi_yoy), Some(food_cpi_yoy), Some(scpi_yoy), Some(published_on))
                if errors.is_empty() =>
            {
                Ok(PriceIndex { month, cpi_yoy, food_cpi_yoy, scpi_yoy, published_on })
            }
            _ => Err(errors),
        }
    }
}

string_enum!(
    /// The groups a linkage rule may cover (发改价格〔2021〕1553号 and the 2022-08-31 notice; docs/domain/policy-reference.md
    /// "Price subsidies linked to prices"). Which are covered, and at what base, is the rule version's data.
    LinkageGroup {
        Dibao = "DIBAO",
        Tekun = "TEKUN",
        Orphan = "ORPHAN",
        UnsupportedChild = "UNSUPPORTED_CHILD",
        HivAffectedChild = "HIV_AFFECTED_CHILD",
        UnemploymentInsurance = "UNEMPLOYMENT_INSURANCE",
        EntitledVeteran = "ENTITLED_VETERAN",
        UnemploymentSubsidy = "UNEMPLOYMENT_SUBSIDY",
        DibaoMarginal = "DIBAO_MARGINAL",
    }
);

impl LinkageGroup {
    /// The group of an assistance program, if the program is one the mechanism can cover.
    pub fn of_program(p: Program) -> Option<LinkageGroup> {
        match p {
            Program::Dibao => Some(LinkageGroup::Dibao),
            Program::Tekun => Some(LinkageGroup::Tekun),
            Program::Orphan => Some(LinkageGroup::Orphan),
            Program::UnsupportedChild => Some(LinkageGroup::UnsupportedChild),
            Program::HivAffectedChild => Some(LinkageGroup::HivAffectedChild),
            Program::DibaoMarginal => Some(LinkageGroup::DibaoMarginal),
            Program::AtRisk | Program::ExpenditureHardship | Program::IllnessImpoverished => None,
        }
    }
}

impl LinkageGroup {
    /// The group of an unemployment benefit reported on an `employment` fact; `NONE` places nobody.
    pub fn of_benefit(b: UnemploymentBenefit) -> Option<LinkageGroup> {
        match b {
            UnemploymentBenefit::InsuranceBenefit => Some(LinkageGroup::UnemploymentInsurance),
            UnemploymentBenefit::UnemploymentSubsidy => Some(LinkageGroup::UnemploymentSubsidy),
            UnemploymentBenefit::None => None,
        }
    }
}

/// How a rule turns a base and a rise into a monthly amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Formula {
    /// `base × rise / 100` (the common local formula: dibao standard × the index's rise).
    BaseTimesRise,
}

/// The unit an amount is rounded to, always half-up (0.5 away from zero; never banker's rounding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Rounding {
    /// To the fen (0.01 yuan).
    Fen,
    /// To the yuan.
    Yuan,
}

impl Rounding {
    fn places(self) -> u32 {
        match self {
            Rounding::Fen => 2,
            Rounding::Yuan => 0,
        }
    }
}

/// The base amount of one group (and residence, for groups that have one), yuan per person per month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupBase {
    pub group: LinkageGroup,
    /// `None`: every residence (groups without one, such as unemployment-insurance recipients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residence: Option<Residence>,
    pub base: Money,
}

/// One version of the linkage rule, effective for index months `effective_from ..= effective_until`. Stored as this
/// JSON (migration 0021, `doudi subsidies rule add`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkageRule {
    /// Unique name of the version, e.g. `621000-1553-2021`.
    pub version: String,
    /// First index month in force.
    pub effective_from: Month,
    /// Last index month in force (inclusive); `None` = until a later version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_until: Option<Month>,
    /// The CPI year-on-year rise at or above which a month triggers, percent.
    pub cpi_threshold: Rise,
    /// The food CPI year-on-year rise at or above which a month triggers, percent.
    pub food_cpi_threshold: Rise,
    /// Covered groups with their base amounts; a group is covered iff it appears here.
    pub bases: Vec<GroupBase>,
    pub formula: Formula,
    /// Lowest monthly amount paid once triggered (0.00: none).
    pub minimum: Money,
    pub rounding: Rounding,
    /// A person in several groups is paid once, at the highest amount (就高, 不重复享受); false = once per group.
    pub pay_once_at_highest: bool,
}

/// Why a rule version cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct RuleError {
    pub field: String,
    pub reason: String,
}

impl LinkageRule {
    /// Parses and checks a version's JSON: the shape above; `version` 1–64 printable characters; `effective_until`
    /// not before `effective_from`; thresholds positive; at least one base; no (group, residence) twice.
    ///
    /// # Errors
    /// [`RuleError`] naming the field.
    pub fn from_json(text: &str) -> Result<LinkageRule, RuleError> {
        let r: LinkageRule =
            serde_json::from_str(text).map_err(|e| RuleError { field: "rule".into(), reason: e.to_string() })?;
        let err = |field: &str, reason: &str| Err(RuleError { field: field.into(), reason: reason.into() });
        if r.version.is_empty() || r.version.len() > 64 || r.version.chars().any(char::is_control) {
            return err("version", "must be 1-64 printable characters");
        }
        if r.effective_until.is_some_and(|u| u < r.effective_from) {
            return err("effective_until", "is before effective_from");
        }
        if r.cpi_threshold.percent() <= Decimal::ZERO || r.food_cpi_threshold.percent() <= Decimal::ZERO {
            return err("cpi_threshold", "thresholds must be positive");
        }
        if r.bases.is_empty() {
            return err("bases", "must cover at least one group");
        }
        for (i, b) in r.bases.iter().enumerate() {
            if r.bases[..i].iter().any(|o| o.group == b.group && o.residence == b.residence) {
                return err(&format!("bases[{i}]"), "repeats a group and residence");
            }
        }
        Ok(r)
    }

    /// Whether the version is in force for `index_month`.
    pub fn covers_month(&self, index_month: Month) -> bool {
        self.effective_from <= index_month && self.effective_until.is_none_or(|u| index_month <= u)
    }

    /// The base of `group` for `residence`: the exact (group, residence) entry, else the group's entry without a
    /// residence; `None` if the version does not cover the group.
    pub fn base(&self, group: LinkageGroup, residence: Option<Residence>) -> Option<Money> {
        let exact = self.bases.iter().find(|b| b.group == group && b.residence == residence && residence.is_some());
        exact.or_else(|| self.bases.iter().find(|b| b.group == group && b.residence.is_none())).map(|b| b.base)
    }

    /// The monthly amount for `base` at `rise`: `base × rise / 100`, rounded half-up to [`Self::rounding`], and at
    /// least [`Self::minimum`]. E.g. 680.00 × 3.00 % = 20.40; 439.00 × 6.15 % = 26.9985 → 27.00 (fen).
    pub fn amount(&self, base: Money, rise: Rise) -> Money {
        let raw = base.as_decimal() * rise.percent() / Decimal::ONE_HUNDRED;
        let mut rounded = raw.round_dp_with_strategy(self.rounding.places(), RoundingStrategy::MidpointAwayFromZero);
        rounded.rescale(2);
        let amount = Money::from_fen(rounded.mantissa()).unwrap_or(Money::ZERO);
        amount.max(self.minimum)
    }
}

/// The version in force for `index_month`: among the versions covering it, the one with the latest
/// `effective_from` (a window such as the 2022-08-31 notice's overrides the open-ended 1553 version inside it);
/// `None` if none covers it.
pub fn choose_rule(rules: &[LinkageRule], index_month: Month) -> Option<&LinkageRule> {
    rules.iter().filter(|r| r.covers_month(index_month)).max_by_key(|r| r.effective_from)
}

/// The index month of a subsidy month: the month before (indices of Aug 2022 – Feb 2023 paid Sep 2022 – Mar 2023,
/// the 2022-08-31 notice).
pub fn index_month_of(subsidy_month: Month) -> Month {
    subsidy_month.prev()
}

/// Which index crossed its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IndexKind {
    Cpi,
    FoodCpi,
}

impl IndexKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IndexKind::Cpi => "CPI",
            IndexKind::FoodCpi => "FOOD_CPI",
        }
    }
}

/// One index compared with its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crossing {
    pub index: IndexKind,
    pub rise: Rise,
    pub threshold: Rise,
    /// `rise ≥ threshold`.
    pub crossed: bool,
}

/// The monthly amount of one group (and residence) in a triggered month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupAmount {
    pub group: LinkageGroup,
    pub residence: Option<Residence>,
    pub base: Money,
    pub amount: Money,
}

/// The decision for one subsidy month ([`decide`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkageDecision {
    pub subsidy_month: Month,
    pub index_month: Month,
    pub rule_version: String,
    /// Both indices with their thresholds, CPI first.
    pub comparisons: Vec<Crossing>,
    /// Whether any index crossed.
    pub triggered: bool,
    /// The rise the amounts are computed from: the highest crossing rise ("the higher if both trigger",
    /// docs/domain/policy-reference.md); `None` when not triggered.
    pub applied: Option<Crossing>,
    /// One row per base of the rule, in the rule's order; empty when not triggered.
    pub amounts: Vec<GroupAmount>,
    pub pay_once_at_highest: bool,
}

/// Decides a subsidy month from its index month's indices and the rule in force for that index month. `index.month`
/// must be `index_month_of(subsidy_month)` (the caller fetched it so). Triggered iff CPI ≥ `cpi_threshold` or food
/// CPI ≥ `food_cpi_threshold` (发改价格〔2021〕1553号: either condition); then every covered group's amount is
/// [`LinkageRule::amount`] of its base at the higher crossing rise.
pub fn decide(rule: &LinkageRule, index: &PriceIndex, subsidy_month: Month) -> LinkageDecision {
    let comparisons = vec![
        Crossing {
            index: IndexKind::Cpi,
            rise: index.cpi_yoy,
            threshold: rule.cpi_threshold,
            crossed: index.cpi_yoy >= rule.cpi_threshold,
        },
        Crossing {
            index: IndexKind::FoodCpi,
            rise: index.food_cpi_yoy,
            threshold: rule.food_cpi_threshold,
            crossed: index.food_cpi_yoy >= rule.food_cpi_threshold,
        },
    ];
    // The first of the highest crossing rises (CPI before food on a tie).
    let applied = comparisons.iter().filter(|c| c.crossed).fold(None::<Crossing>, |best, c| match best {
        Some(b) if b.rise >= c.rise => Some(b),
        _ => Some(*c),
    });
    let amounts = match applied {
        None => Vec::new(),
        Some(c) => rule
            .bases
            .iter()
            .map(|b| GroupAmount {
                group: b.group,
                residence: b.residence,
                base: b.base,
                amount: rule.amount(b.base, c.rise),
            })
            .collect(),
    };
    LinkageDecision {
        subsidy_month,
        index_month: index.month,
        rule_version: rule.version.clone(),
        comparisons,
        triggered: applied.is_some(),
        applied,
        amounts,
        pay_once_at_highest: rule.pay_once_at_highest,
    }
}

/// A fact that places a person in a group on the decisive day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Qualification {
    pub group: LinkageGroup,
    /// The residence of an assistance enrolment; `None` for groups from other facts.
    pub residence: Option<Residence>,
    /// Which fact: `assistance:DIBAO` or `employment:UNEMPLOYMENT_INSURANCE`.
    pub basis: String,
}

/// The groups a person's facts in force on the decisive day place them in: every ACTIVE assistance enrolment of a
/// program with a [`LinkageGroup`], and the unemployment benefit recorded on an `employment` fact. Other payloads and
/// suspended or terminated enrolments place nobody.
pub fn qualifications(facts: &[Payload]) -> Vec<Qualification> {
    let mut out = Vec::new();
    for p in facts {
        match p {
            Payload::Assistance(a) => {
                if a.status != Some(AssistanceStatus::Active) {
                    continue;
                }
                if let Some(g) = a.program.and_then(LinkageGroup::of_program) {
                    let program = a.program.map(Program::as_str).unwrap_or_default();
                    out.push(Qualification {
                        group: g,
                        residence: a.residence,
                        basis: format!("assistance:{program}"),
                    });
                }
            }
            Payload::Employment(e) => {
                if let Some(g) = e.unemployment_benefit.and_then(LinkageGroup::of_benefit) {
                    out.push(Qualification { group: g, residence: None, basis: format!("employment:{}", g.as_str()) });
                }
            }
            _ => {}
        }
    }
    out
}

/// One payment owed to a person for a subsidy month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub group: LinkageGroup,
    pub residence: Option<Residence>,
    pub amount: Money,
    pub basis: String,
}

/// What one person is owed for a triggered month: with `pay_once_at_highest`, one payment at the highest amount of
/// the groups the decision covers (on a tie, the group listed first in the rule); otherwise one per covered group.
/// `considered` lists every covered qualification with its amount (the facts that made the person eligible).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entitlement {
    pub payments: Vec<Payment>,
    pub considered: Vec<Payment>,
}

impl Entitlement {
    /// The total owed.
    pub fn total(&self) -> Money {
        self.payments.iter().map(|p| p.amount).sum()
    }
}

/// The entitlement of a person with `quals` under `decision`; `None` if the month did not trigger or no
/// qualification is a covered group.
pub fn entitlement(decision: &LinkageDecision, quals: &[Qualification]) -> Option<Entitlement> {
    if !decision.triggered {
        return None;
    }
    let order = |g: LinkageGroup| decision.amounts.iter().position(|a| a.group == g).unwrap_or(usize::MAX);
    let mut considered: Vec<(usize, Payment)> = Vec::new();
    for q in quals {
        let exact =
            decision.amounts.iter().find(|a| a.group == q.group && q.residence.is_some() && a.residence == q.residence);
        let any = decision.amounts.iter().find(|a| a.group == q.group && a.residence.is_none());
        if let Some(a) = exact.or(any) {
            let p = Payment { group: q.group, residence: q.residence, amount: a.amount, basis: q.basis.clone() };
            if !considered.iter().any(|(_, c)| c == &p) {
                considered.push((order(q.group), p));
            }
        }
    }
    if considered.is_empty() {
        return None;
    }
    considered.sort_by_key(|(o, _)| *o);
    let considered: Vec<Payment> = considered.into_iter().map(|(_, p)| p).collect();
    let payments = if decision.pay_once_at_highest {
        let best = considered.iter().fold(None::<&Payment>, |b, p| match b {
            Some(b) if b.amount >= p.amount => Some(b),
            _ => Some(p),
        });
        best.into_iter().cloned().collect()
    } else {
        let mut per_group: Vec<Payment> = Vec::new();
        for p in &considered {
            match per_group.iter_mut().find(|q| q.group == p.group) {
                Some(q) if q.amount >= p.amount => {}
                Some(q) => *q = p.clone(),
                None => per_group.push(p.clone()),
            }
        }
        per_group
    };
    Some(Entitlement { payments, considered })
}

/// A fixed-amount campaign (issue 18 item 4): the one-time living subsidy (一次性生活补贴, 甘民发〔2022〕101号), winter
/// warmth support (温暖过冬) and the like: groups and an amount per group as data, paid for one month, reconciled against
/// the counties' fund reports of `fund_program` for that month. Stored as this JSON (`doudi subsidies campaign add`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedCampaign {
    /// Unique code, e.g. `621000-2022-07-one-time-living`.
    pub code: String,
    /// Its name, e.g. `一次性生活补贴`.
    pub name: String,
    /// The month paid; eligibility is decided by the facts in force on its last day.
    pub month: Month,
    /// The fund-report program its disbursements are reported under: `ONE_TIME_SUBSIDY`, `WINTER_WARMTH` or `OTHER`.
    pub fund_program: String,
    /// Covered groups with their amount per person (`base` is the amount paid, yuan).
    pub amounts: Vec<GroupBase>,
    /// A person in several groups is paid once, at the highest amount.
    pub pay_once_at_highest: bool,
}

impl FixedCampaign {
    /// Parses and checks a campaign's JSON: the shape above; `code` 1–64 printable characters; `name` 1–100;
    /// `fund_program` one of ONE_TIME_SUBSIDY, WINTER_WARMTH, OTHER; at least one amount, none zero, no (group,
    /// residence) twice.
    ///
    /// # Errors
    /// [`RuleError`] naming the field.
    pub fn from_json(text: &str) -> Result<FixedCampaign, RuleError> {
        let c: FixedCampaign =
            serde_json::from_str(text).map_err(|e| RuleError { field: "campaign".into(), reason: e.to_string() })?;
        let err = |field: &str, reason: &str| Err(RuleError { field: field.into(), reason: reason.into() });
        if c.code.is_empty() || c.code.len() > 64 || c.code.chars().any(char::is_control) {
            return err("code", "must be 1-64 printable characters");
        }
        if c.name.trim().is_empty() || c.name.chars().count() > 100 || c.name.chars().any(char::is_control) {
            return err("name", "must be 1-100 printable characters");
        }
        if !["ONE_TIME_SUBSIDY", "WINTER_WARMTH", "OTHER"].contains(&c.fund_program.as_str()) {
            return err("fund_program", "must be ONE_TIME_SUBSIDY, WINTER_WARMTH or OTHER");
        }
        if c.amounts.is_empty() {
            return err("amounts", "must cover at least one group");
        }
        for (i, b) in c.amounts.iter().enumerate() {
            if b.base.is_zero() {
                return err(&format!("amounts[{i}].base"), "must be more than 0.00");
            }
            if c.amounts[..i].iter().any(|o| o.group == b.group && o.residence == b.residence) {
                return err(&format!("amounts[{i}]"), "repeats a group and residence");
            }
        }
        Ok(c)
    }

    /// The campaign as a decision: always "triggered", one amount per group as given, so [`entitlement`] decides who
    /// is owed what exactly as for the linkage (same roster, same pay-once rule).
    pub fn decision(&self) -> LinkageDecision {
        LinkageDecision {
            subsidy_month: self.month,
            index_month: self.month,
            rule_version: self.code.clone(),
            comparisons: Vec::new(),
            triggered: true,
            applied: None,
            amounts: self
                .amounts
                .iter()
                .map(|b| GroupAmount { group: b.group, residence: b.residence, base: b.base, amount: b.base })
                .collect(),
            pay_once_at_highest: self.pay_once_at_highest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fact::{Assistance, Employment};

    fn m(s: &str) -> Month {
        s.parse().unwrap()
    }
    fn r(s: &str) -> Rise {
        Rise::parse(s).unwrap()
    }
    fn money(s: &str) -> Money {
        s.parse().unwrap()
    }

    /// The two versions migration 0021 loads, as the migration holds them (`migration_0021_loads_these_versions`).
    const RULES_0021: [&str; 2] = [
        r#"{"version":"621000-1553-2021","effective_from":"2022-01","cpi_threshold":"3.5","food_cpi_threshold":"6.0","bases":[{"group":"DIBAO","residence":"URBAN","base":"680.00"},{"group":"DIBAO","residence":"RURAL","base":"439.00"},{"group":"TEKUN","residence":"URBAN","base":"680.00"},{"group":"TEKUN","residence":"RURAL","base":"439.00"},{"group":"ORPHAN","residence":"URBAN","base":"680.00"},{"group":"ORPHAN","residence":"RURAL","base":"439.00"},{"group":"UNSUPPORTED_CHILD","residence":"URBAN","base":"680.00"},{"group":"UNSUPPORTED_CHILD","residence":"RURAL","base":"439.00"},{"group":"HIV_AFFECTED_CHILD","residence":"URBAN","base":"680.00"},{"group":"HIV_AFFECTED_CHILD","residence":"RURAL","base":"439.00"},{"group":"UNEMPLOYMENT_INSURANCE","base":"680.00"},{"group":"ENTITLED_VETERAN","base":"680.00"}],"formula":"BASE_TIMES_RISE","minimum":"0.00","rounding":"FEN","pay_once_at_highest":true}"#,
        r#"{"version":"621000-2022-0831","effective_from":"2022-08","effective_until":"2023-02","cpi_threshold":"3.0","food_cpi_threshold":"6.0","bases":[{"group":"DIBAO","residence":"URBAN","base":"680.00"},{"group":"DIBAO","residence":"RURAL","base":"439.00"},{"group":"TEKUN","residence":"URBAN","base":"680.00"},{"group":"TEKUN","residence":"RURAL","base":"439.00"},{"group":"ORPHAN","residence":"URBAN","base":"680.00"},{"group":"ORPHAN","residence":"RURAL","base":"439.00"},{"group":"UNSUPPORTED_CHILD","residence":"URBAN","base":"680.00"},{"group":"UNSUPPORTED_CHILD","residence":"RURAL","base":"439.00"},{"group":"HIV_AFFECTED_CHILD","residence":"URBAN","base":"680.00"},{"group":"HIV_AFFECTED_CHILD","residence":"RURAL","base":"439.00"},{"group":"UNEMPLOYMENT_INSURANCE","base":"680.00"},{"group":"ENTITLED_VETERAN","base":"680.00"},{"group":"UNEMPLOYMENT_SUBSIDY","base":"680.00"},{"group":"DIBAO_MARGINAL","residence":"URBAN","base":"680.00"},{"group":"DIBAO_MARGINAL","residence":"RURAL","base":"439.00"}],"formula":"BASE_TIMES_RISE","minimum":"0.00","rounding":"FEN","pay_once_at_highest":true}"#,
    ];

    #[test]
    fn migration_0021_loads_these_versions() {
        for sql in [
            include_str!("../../../migrations/sqlite/0021_subsidies.sql"),
            include_str!("../../../migrations/postgres/0021_subsidies.sql"),
        ] {
            for v in RULES_0021 {
                assert!(sql.contains(v), "the migration holds {}", &v[..40]);
            }
        }
    }

    /// The two versions migration 0021 loads, parsed.
    fn rules() -> Vec<LinkageRule> {
        RULES_0021.iter().map(|t| LinkageRule::from_json(t).unwrap()).collect()
    }

    fn index(month: &str, cpi: &str, food: &str) -> PriceIndex {
        let mm = m(month);
        PriceIndex {
            month: mm,
            cpi_yoy: r(cpi),
            food_cpi_yoy: r(food),
            scpi_yoy: None,
            published_on: mm.last_day() + chrono::Days::new(10),
        }
    }

    /// Decision for subsidy month `sub` with the index of the month before.
    fn decide_for(sub: &str, cpi: &str, food: &str) -> LinkageDecision {
        let sm = m(sub);
        let im = index_month_of(sm);
        let rules = rules();
        let rule = choose_rule(&rules, im).unwrap();
        decide(rule, &index(&im.to_string(), cpi, food), sm)
    }

    fn amount_of(d: &LinkageDecision, g: LinkageGroup, res: Option<Residence>) -> Option<Money> {
        d.amounts.iter().find(|a| a.group == g && a.residence == res).map(|a| a.amount)
    }

    fn assistance(program: Program, residence: Residence, status: AssistanceStatus) -> Payload {
        Payload::Assistance(Assistance {
            program: Some(program),
            residence: Some(residence),
            status: Some(status),
            ..Default::default()
        })
    }

    fn unemployed(b: UnemploymentBenefit) -> Payload {
        Payload::Employment(Employment { unemployment_benefit: Some(b), ..Default::default() })
    }

    #[test]
    fn rise_parses_two_decimals_within_fifty() {
        assert_eq!(r("3.00").percent(), Decimal::new(300, 2));
        assert_eq!(r("-0.5").to_string(), "-0.50");
        assert_eq!(r("50").to_string(), "50.00");
        assert_eq!(r("-50.00").to_string(), "-50.00");
        assert_eq!(Rise::parse("3.005"), Err(RiseError::TooManyFractionalDigits));
        assert_eq!(Rise::parse("50.01"), Err(RiseError::OutOfRange));
        assert_eq!(Rise::parse("-50.01"), Err(RiseError::OutOfRange));
        assert_eq!(Rise::parse("1000"), Err(RiseError::OutOfRange));
        for bad in ["", "-", "3.", ".5", "+3", "3,0", "３", "NaN", "1e1", " 3"] {
            assert_eq!(Rise::parse(bad), Err(RiseError::Format), "{bad:?}");
        }
    }

    #[test]
    fn price_index_fields_are_checked_one_by_one() {
        let today = NaiveDate::from_ymd_opt(2022, 9, 20).unwrap();
        let ok = PriceIndexInput {
            month: "2022-08".into(),
            cpi_yoy: "2.50".into(),
            food_cpi_yoy: "6.10".into(),
            scpi_yoy: String::new(),
            published_on: "2022-09-09".into(),
        };
        let p = PriceIndex::validate(&ok, today).unwrap();
        assert_eq!((p.month, p.scpi_yoy), (m("2022-08"), None));

        let bad = PriceIndexInput {
            month: "2022-10".into(),           // after September 2022: in the future
            cpi_yoy: "3.005".into(),           // three decimals
            food_cpi_yoy: "50.5".into(),       // outside -50..+50
            scpi_yoy: "x".into(),              // not a number
            published_on: "2022-09-21".into(), // after today
        };
        let e = PriceIndex::validate(&bad, today).unwrap_err();
        let fields: Vec<&str> = e.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["month", "cpi_yoy", "food_cpi_yoy", "scpi_yoy", "published_on"]);
        assert!(e[0].reason.contains("in the future"), "{}", e[0].reason);
        assert!(e[1].reason.contains("more than 2 fractional digits"), "{}", e[1].reason);
        assert!(e[2].reason.contains("-50 and +50"), "{}", e[2].reason);

        // Published before the index month is over: August's index cannot be out on 2022-08-31.
        let early = PriceIndexInput { published_on: "2022-08-31".into(), ..ok };
        let e = PriceIndex::validate(&early, today).unwrap_err();
        assert_eq!(e[0].field, "published_on");
    }

    #[test]
    fn the_version_is_chosen_by_the_index_month() {
        let rules = rules();
        let v = |s: &str| choose_rule(&rules, m(s)).map(|r| r.version.as_str());
        // 1553 (2021) in force from index month 2021-10; the 2022-08-31 notice for index months 2022-08 ..= 2023-02.
        assert_eq!(v("2021-09"), None);
        assert_eq!(v("2022-07"), Some("621000-1553-2021"));
        assert_eq!(v("2022-08"), Some("621000-2022-0831"));
        assert_eq!(v("2023-02"), Some("621000-2022-0831"));
        assert_eq!(v("2023-03"), Some("621000-1553-2021"));
        // Subsidy month 2022-09 is paid from index month 2022-08.
        assert_eq!(index_month_of(m("2022-09")), m("2022-08"));
    }

    #[test]
    fn cpi_threshold_edges_inside_and_outside_the_window() {
        // Inside the window (index 2022-08, paid 2022-09): threshold 3.0.
        assert!(!decide_for("2022-09", "2.99", "0").triggered); // 2.99 < 3.00
        let d = decide_for("2022-09", "3.00", "0"); // 3.00 ≥ 3.00
        assert!(d.triggered);
        assert_eq!(d.applied.map(|c| c.index), Some(IndexKind::Cpi));
        // Outside it (index 2023-03, paid 2023-04): threshold 3.5.
        assert!(!decide_for("2023-04", "3.49", "0").triggered); // 3.49 < 3.50
        assert!(!decide_for("2023-04", "3.00", "0").triggered); // the window's 3.0 no longer applies
        assert!(decide_for("2023-04", "3.50", "0").triggered); // 3.50 ≥ 3.50
        // Before the window (index 2022-07, paid 2022-08): 3.5 too.
        assert!(!decide_for("2022-08", "3.00", "0").triggered);
    }

    #[test]
    fn food_threshold_edges() {
        // Food 6.0 in both versions.
        assert!(!decide_for("2022-09", "0", "5.99").triggered);
        let d = decide_for("2022-09", "0", "6.00");
        assert_eq!(d.applied.map(|c| (c.index, c.rise)), Some((IndexKind::FoodCpi, r("6.00"))));
        assert!(!decide_for("2023-04", "0", "5.99").triggered);
        assert!(decide_for("2023-04", "0", "6.00").triggered);
    }

    #[test]
    fn amounts_per_group_and_residence_to_the_fen_half_up() {
        use LinkageGroup::*;
        // Index 2022-08 with CPI 3.00 and food 6.15: both cross, the higher (6.15) is applied.
        let d = decide_for("2022-09", "3.00", "6.15");
        assert_eq!(d.applied.map(|c| c.index), Some(IndexKind::FoodCpi));
        // Urban base = urban dibao standard 680.00/month (2022, docs/domain/qingyang-figures.md §3): 680 × 6.15 % = 41.82 exactly.
        assert_eq!(amount_of(&d, Dibao, Some(Residence::Urban)), Some(money("41.82")));
        // Rural base = 5,268 / 12 = 439.00/month: 439 × 6.15 % = 26.9985 → 27.00 (half-up to the fen).
        assert_eq!(amount_of(&d, Dibao, Some(Residence::Rural)), Some(money("27.00")));
        // Unemployment groups: the urban standard, 41.82.
        assert_eq!(amount_of(&d, UnemploymentSubsidy, None), Some(money("41.82")));

        // Half-up at exactly half a fen: 439 × 3.05 % = 13.3895 → 13.39; 680 × 3.05 % = 20.74 exactly.
        let d = decide_for("2022-09", "3.05", "0");
        assert_eq!(amount_of(&d, Dibao, Some(Residence::Rural)), Some(money("13.39")));
        assert_eq!(amount_of(&d, Dibao, Some(Residence::Urban)), Some(money("20.74")));
        // 439 × 3.15 % = 13.8285 → 13.83 (the digit after the fen is 8).
        let d = decide_for("2022-09", "3.15", "0");
        assert_eq!(amount_of(&d, Tekun, Some(Residence::Rural)), Some(money("13.83")));

        // A rule rounding to the yuan with a 30.00 minimum (a local variant, docs/domain/policy-reference.md):
        // 680 × 3.00 % = 20.40 → 20 → raised to 30.00; 680 × 6.10 % = 41.48 → 41.00; 439 × 6.15 % = 26.9985 → 27.00 → 30.00.
        let mut rule = rules()[1].clone();
        rule.rounding = Rounding::Yuan;
        rule.minimum = money("30.00");
        assert_eq!(rule.amount(money("680.00"), r("3.00")), money("30.00"));
        assert_eq!(rule.amount(money("680.00"), r("6.10")), money("41.00"));
        assert_eq!(rule.amount(money("680.00"), r("6.50")), money("44.00")); // 44.20 → 44
        assert_eq!(rule.amount(money("650.00"), r("6.10")), money("40.00")); // 39.65 → 40 (half-up)
    }

    #[test]
    fn groups_added_by_the_window_are_owed_only_inside_it() {
        let quals = |p: Payload| qualifications(&[p]);
        let subsidy = quals(unemployed(UnemploymentBenefit::UnemploymentSubsidy));
        let marginal = quals(assistance(Program::DibaoMarginal, Residence::Rural, AssistanceStatus::Active));
        // Inside (index 2022-08): 3.20 crosses 3.0; unemployment subsidy 680 × 3.2 % = 21.76; marginal (rural)
        // 439 × 3.2 % = 14.048 → 14.05.
        let d = decide_for("2022-09", "3.20", "0");
        assert_eq!(entitlement(&d, &subsidy).unwrap().total(), money("21.76"));
        assert_eq!(entitlement(&d, &marginal).unwrap().total(), money("14.05"));
        // Outside (index 2023-03) with a triggering 3.60: the groups are not covered, nothing owed.
        let d = decide_for("2023-04", "3.60", "0");
        assert!(d.triggered);
        assert_eq!(entitlement(&d, &subsidy), None);
        assert_eq!(entitlement(&d, &marginal), None);
        // While an unemployment-insurance recipient is: 680 × 3.6 % = 24.48.
        let ui = quals(unemployed(UnemploymentBenefit::InsuranceBenefit));
        assert_eq!(entitlement(&d, &ui).unwrap().total(), money("24.48"));
    }

    #[test]
    fn several_groups_are_paid_once_at_the_highest() {
        // Rural dibao (base 439) and unemployment insurance (base 680), CPI 3.20 (index 2022-08):
        // 439 × 3.2 % = 14.048 → 14.05; 680 × 3.2 % = 21.76; paid once, 21.76 (not 14.05 + 21.76 = 35.81).
        let d = decide_for("2022-09", "3.20", "0");
        let q = qualifications(&[
            assistance(Program::Dibao, Residence::Rural, AssistanceStatus::Active),
            unemployed(UnemploymentBenefit::InsuranceBenefit),
        ]);
        let e = entitlement(&d, &q).unwrap();
        assert_eq!(e.total(), money("21.76"));
        assert_eq!(e.payments.len(), 1);
        assert_eq!(e.payments[0].group, LinkageGroup::UnemploymentInsurance);
        assert_eq!(e.considered.len(), 2);
        // Urban dibao and urban tekun: equal bases, equal amounts (21.76): one payment, the group listed first (DIBAO).
        let q = qualifications(&[
            assistance(Program::Tekun, Residence::Urban, AssistanceStatus::Active),
            assistance(Program::Dibao, Residence::Urban, AssistanceStatus::Active),
        ]);
        let e = entitlement(&d, &q).unwrap();
        assert_eq!((e.payments.len(), e.payments[0].group, e.total()), (1, LinkageGroup::Dibao, money("21.76")));
        // Without the rule (pay_once_at_highest = false): one per group, 14.05 + 21.76 = 35.81.
        let mut d2 = d.clone();
        d2.pay_once_at_highest = false;
        let q = qualifications(&[
            assistance(Program::Dibao, Residence::Rural, AssistanceStatus::Active),
            unemployed(UnemploymentBenefit::InsuranceBenefit),
        ]);
        assert_eq!(entitlement(&d2, &q).unwrap().total(), money("35.81"));
    }

    #[test]
    fn only_active_covered_enrolments_qualify() {
        let d = decide_for("2022-09", "3.20", "0");
        for p in [
            assistance(Program::Dibao, Residence::Urban, AssistanceStatus::Suspended),
            assistance(Program::Dibao, Residence::Urban, AssistanceStatus::Terminated),
            assistance(Program::AtRisk, Residence::Urban, AssistanceStatus::Active),
            unemployed(UnemploymentBenefit::None),
        ] {
            assert_eq!(entitlement(&d, &qualifications(std::slice::from_ref(&p))), None, "{p:?}");
        }
        // Not triggered: nobody is owed.
        let d = decide_for("2022-09", "2.99", "5.99");
        let q = qualifications(&[assistance(Program::Dibao, Residence::Urban, AssistanceStatus::Active)]);
        assert_eq!(entitlement(&d, &q), None);
    }

    #[test]
    fn rule_json_is_checked() {
        let good = RULES_0021[0];
        assert!(LinkageRule::from_json(good).is_ok());
        let e = LinkageRule::from_json(&good.replace("\"cpi_threshold\":\"3.5\"", "\"cpi_threshold\":\"3.555\""))
            .unwrap_err();
        assert!(e.reason.contains("fractional"), "{e}");
        let e = LinkageRule::from_json(&good.replace("\"formula\"", "\"formulae\"")).unwrap_err();
        assert_eq!(e.field, "rule");
    }

    #[test]
    fn a_fixed_campaign_pays_its_amounts_once_at_the_highest() {
        // A one-time subsidy of 300.00 to tekun and 200.00 to dibao (urban and rural alike), 100.00 to the marginal:
        // a dibao-and-tekun person gets 300.00 once; a rural dibao person 200.00; a marginal person 100.00; at-risk
        // nothing.
        let c = FixedCampaign::from_json(
            r#"{"code":"t-2022-07","name":"一次性生活补贴","month":"2022-07","fund_program":"ONE_TIME_SUBSIDY",
                "amounts":[{"group":"DIBAO","base":"200.00"},{"group":"TEKUN","base":"300.00"},
                           {"group":"DIBAO_MARGINAL","base":"100.00"}],"pay_once_at_highest":true}"#,
        )
        .unwrap();
        let d = c.decision();
        let owed = |facts: &[Payload]| entitlement(&d, &qualifications(facts)).map(|e| e.total());
        assert_eq!(
            owed(&[
                assistance(Program::Dibao, Residence::Urban, AssistanceStatus::Active),
                assistance(Program::Tekun, Residence::Urban, AssistanceStatus::Active),
            ]),
            Some(money("300.00"))
        );
        assert_eq!(
            owed(&[assistance(Program::Dibao, Residence::Rural, AssistanceStatus::Active)]),
            Some(money("200.00"))
        );
        assert_eq!(
            owed(&[assistance(Program::DibaoMarginal, Residence::Rural, AssistanceStatus::Active)]),
            Some(money("100.00"))
        );
        assert_eq!(owed(&[assistance(Program::AtRisk, Residence::Rural, AssistanceStatus::Active)]), None);
        // Checked fields.
        let bad = |from: &str, to: &str| {
            FixedCampaign::from_json(&r#"{"code":"t","name":"n","month":"2022-07","fund_program":"ONE_TIME_SUBSIDY","amounts":[{"group":"DIBAO","base":"200.00"}],"pay_once_at_highest":true}"#.replace(from, to))
                .unwrap_err()
                .field
        };
        assert_eq!(bad("\"ONE_TIME_SUBSIDY\"", "\"PRICE_SUBSIDY\""), "fund_program");
        assert_eq!(bad("\"200.00\"", "\"0.00\""), "amounts[0].base");
        assert_eq!(bad("\"code\":\"t\"", "\"code\":\"\""), "code");
    }
}
