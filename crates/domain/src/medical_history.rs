//! The cross-check of one person's whole settlement history (docs/spec/medical.md), from what the hub knows about them:
//! their assistance enrolments and insurance cover over time, and the policy versions in force.
//!
//! [`medical`](super::medical) does the arithmetic per person and year; this module turns stored facts into the
//! `group_on` / `insured_on` / `params_on` functions it needs and gathers every finding, HIGH_BURDEN included. The
//! store calls [`recheck_person`] on arrival of a settlement and on `RecheckPeriod`: rechecking the whole history each
//! time makes the findings independent of arrival order (a property test in `medical.rs`' callers checks this).
//!
//! Pure: no I/O.
//!
//! Decisions where docs/spec/medical.md is silent (also in docs/decisions.md "The medical cross-check"):
//! - A person's assistance group on a day comes from their **ACTIVE** assistance facts in force that day (current
//!   versions: what the hub knows now, not what it knew when the settlement arrived — hence `RecheckPeriod`).
//! - HIGH_BURDEN's "the person has no assistance program" means no program that places them in an assistance group
//!   (EXPENDITURE_HARDSHIP, or unknown to the hub): the warning exists to find people the safety net does not yet
//!   cover for illness.
//! - The pooling area of a person is that of their latest settlement's division (first four digits + "00"), or the
//!   default area when no policy version exists for it.

use chrono::NaiveDate;

use super::fact::Program;
use super::medical::{
    Finding, PolicyParams, Settlement, SettlementCheck, SettlementSteps, check_high_burden, group_of,
    steps_person_year_with_versions,
};

/// One ACTIVE assistance enrolment over `[valid_from, valid_to)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    pub program: Program,
    pub valid_from: NaiveDate,
    /// Exclusive; `None` = open.
    pub valid_to: Option<NaiveDate>,
}

/// One medical-insurance cover over `[valid_from, valid_to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cover {
    pub valid_from: NaiveDate,
    /// Exclusive; `None` = open.
    pub valid_to: Option<NaiveDate>,
}

fn in_force(from: NaiveDate, to: Option<NaiveDate>, d: NaiveDate) -> bool {
    from <= d && to.is_none_or(|t| d < t)
}

/// What the hub holds about one person, for the cross-check.
#[derive(Debug, Clone, Default)]
pub struct PersonHistory {
    /// Every settlement of the person, any order.
    pub settlements: Vec<Settlement>,
    /// Their ACTIVE assistance enrolments (current fact versions).
    pub enrolments: Vec<Enrolment>,
    /// Their medical-insurance covers (current fact versions).
    pub covers: Vec<Cover>,
}

impl PersonHistory {
    /// Programs the person is actively enrolled in on `d`.
    pub fn programs_on(&self, d: NaiveDate) -> Vec<Program> {
        self.enrolments.iter().filter(|e| in_force(e.valid_from, e.valid_to, d)).map(|e| e.program).collect()
    }

    /// Whether a cover is in force on `d` (NOT_INSURED otherwise).
    pub fn insured_on(&self, d: NaiveDate) -> bool {
        self.covers.iter().any(|c| in_force(c.valid_from, c.valid_to, d))
    }
}

/// The pooling area (统筹区) of a division code: its first four digits + "00" (the city), if `versions` holds any
/// version for it, else `default_area`.
pub fn pooling_area_of(division_code: &str, versions: &[PolicyParams], default_area: &str) -> String {
    if division_code.len() >= 4 {
        let area = format!("{}00", &division_code[..4]);
        if versions.iter().any(|p| p.pooling_area == area) {
            return area;
        }
    }
    default_area.to_owned()
}

/// No policy version is in force for a settlement's date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no medical policy version of pooling area {pooling_area} is in force on {date}")]
pub struct NoPolicy {
    pub pooling_area: String,
    pub date: NaiveDate,
}

/// The result of rechecking one person: one check per settlement (in check order) and every finding, the
/// per-settlement ones first, then HIGH_BURDEN.
#[derive(Debug, Clone, Default)]
pub struct PersonResult {
    pub checks: Vec<SettlementCheck>,
    pub findings: Vec<Finding>,
}

/// Recheck one person's whole history (docs/spec/medical.md "The computation" and "Findings").
///
/// # Errors
/// [`NoPolicy`] if a settlement's `settled_on` precedes every version of the person's pooling area (the caller
/// rejects such a settlement before storing it, so stored histories never fail).
pub fn recheck_person(
    history: &PersonHistory,
    versions: &[PolicyParams],
    default_area: &str,
) -> Result<PersonResult, NoPolicy> {
    let explained = explain_person(history, versions, default_area)?;
    let checks: Vec<SettlementCheck> = explained.steps.into_iter().map(|(c, _)| c).collect();
    let mut findings: Vec<Finding> = checks.iter().flat_map(|c| c.findings.iter().cloned()).collect();
    findings.extend(explained.high_burden);
    Ok(PersonResult { checks, findings })
}

/// [`recheck_person`]'s computation with each settlement's steps (issue 19 item 3): the same inputs and the same code
/// path, so an explanation shows what the recheck compared.
#[derive(Debug, Clone, Default)]
pub struct PersonSteps {
    /// The pooling area whose versions applied.
    pub pooling_area: String,
    /// One (check, steps) per settlement, in check order.
    pub steps: Vec<(SettlementCheck, SettlementSteps)>,
    /// HIGH_BURDEN findings.
    pub high_burden: Vec<Finding>,
}

/// The steps of [`recheck_person`]. Errors: [`NoPolicy`] as there.
pub fn explain_person(
    history: &PersonHistory,
    versions: &[PolicyParams],
    default_area: &str,
) -> Result<PersonSteps, NoPolicy> {
    let Some(latest) = history.settlements.iter().max_by(|a, b| a.settled_on.cmp(&b.settled_on)) else {
        return Ok(PersonSteps::default());
    };
    let area = pooling_area_of(&latest.division_code, versions, default_area);
    for s in &history.settlements {
        if PolicyParams::in_force(versions, &area, s.settled_on).is_none() {
            return Err(NoPolicy { pooling_area: area, date: s.settled_on });
        }
    }
    let params_on = |d: NaiveDate| PolicyParams::in_force(versions, &area, d).expect("checked above for every date");
    let group_on = |d: NaiveDate| group_of(&history.programs_on(d), params_on(d));
    let steps = steps_person_year_with_versions(&history.settlements, group_on, |d| history.insured_on(d), params_on);
    let high_burden = check_high_burden(&history.settlements, |d| group_on(d).is_some(), params_on);
    Ok(PersonSteps { pooling_area: area.clone(), steps, high_burden })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::medical::{FindingCode, VisitType};
    use crate::money::Money;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }
    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    /// docs/spec/medical.md example A's settlement (dibao person): scope 25,000; basic 15,000; CII 3,250; MA 4,725;
    /// total 30,000.
    fn example_a(settled_on: &str) -> Settlement {
        Settlement {
            settlement_id: "A".into(),
            person: [1; 32],
            division_code: "621022100201".into(),
            admitted_on: d("2023-03-01"),
            settled_on: d(settled_on),
            visit_type: VisitType::Inpatient,
            in_province: true,
            referred: true,
            total_cost: m("30000.00"),
            policy_scope_cost: m("25000.00"),
            basic_paid: m("15000.00"),
            critical_illness_paid: m("3250.00"),
            medical_assistance_paid: m("4725.00"),
            other_paid: m("0"),
            out_of_pocket: m("7025.00"),
        }
    }

    fn dibao_since(from: &str) -> Enrolment {
        Enrolment { program: Program::Dibao, valid_from: d(from), valid_to: None }
    }

    fn insured_2023() -> Cover {
        Cover { valid_from: d("2023-01-01"), valid_to: Some(d("2024-01-01")) }
    }

    #[test]
    fn example_a_from_stored_facts_raises_nothing() {
        let h = PersonHistory {
            settlements: vec![example_a("2023-03-10")],
            enrolments: vec![dibao_since("2021-05-01")],
            covers: vec![insured_2023()],
        };
        let r = recheck_person(&h, &[PolicyParams::example_2023()], "621000").unwrap();
        assert_eq!(r.checks[0].group, Some(2));
        assert_eq!(r.checks[0].expected_ma, m("4725.00"));
        assert!(r.findings.is_empty(), "{:?}", r.findings);
    }

    #[test]
    fn enrolment_starting_after_settled_on_gives_no_group() {
        // Same settlement, but dibao only from 2023-04-01: on 2023-03-10 the person has no group, so the 4,725.00
        // paid is ASSISTANCE_TO_INELIGIBLE (docs/spec/medical.md).
        let h = PersonHistory {
            settlements: vec![example_a("2023-03-10")],
            enrolments: vec![dibao_since("2023-04-01")],
            covers: vec![insured_2023()],
        };
        let r = recheck_person(&h, &[PolicyParams::example_2023()], "621000").unwrap();
        let codes: Vec<_> = r.findings.iter().map(|f| f.code).collect();
        assert_eq!(codes, vec![FindingCode::AssistanceToIneligible]);
    }

    #[test]
    fn cover_is_checked_on_admitted_on_with_exclusive_end() {
        let mut s = example_a("2024-01-02");
        s.admitted_on = d("2024-01-01");
        let h = PersonHistory {
            settlements: vec![s],
            enrolments: vec![dibao_since("2021-05-01")],
            covers: vec![insured_2023()],
        };
        let r = recheck_person(&h, &[PolicyParams::example_2023()], "621000").unwrap();
        assert!(r.findings.iter().any(|f| f.code == FindingCode::NotInsured));
    }

    #[test]
    fn high_burden_for_a_person_outside_every_group() {
        // Expenditure-hardship person (no group): out-of-pocket 7,025.00 three times = 21,075.00 ≥ 20,000.00 (100% of
        // income) on the third settlement; assistance paid 4,725.00 each time is ASSISTANCE_TO_INELIGIBLE.
        let mut settlements = Vec::new();
        for (i, day) in ["2023-03-10", "2023-06-10", "2023-09-10"].iter().enumerate() {
            let mut s = example_a(day);
            s.settlement_id = format!("S{i}");
            s.admitted_on = d(day);
            settlements.push(s);
        }
        let h = PersonHistory {
            settlements,
            enrolments: vec![Enrolment {
                program: Program::ExpenditureHardship,
                valid_from: d("2022-01-01"),
                valid_to: None,
            }],
            covers: vec![insured_2023()],
        };
        let r = recheck_person(&h, &[PolicyParams::example_2023()], "621000").unwrap();
        let hb: Vec<_> = r.findings.iter().filter(|f| f.code == FindingCode::HighBurden).collect();
        assert_eq!(hb.len(), 1);
        assert_eq!(hb[0].settlement_id, "S2");
        assert_eq!(hb[0].expected, Some(m("20000.00")));
        assert_eq!(hb[0].actual, Some(m("21075.00")));
        assert_eq!(hb[0].agency_to_act, "civil_affairs");
    }

    #[test]
    fn a_date_before_every_version_has_no_policy() {
        let h = PersonHistory { settlements: vec![example_a("2022-12-31")], ..Default::default() };
        let e = recheck_person(&h, &[PolicyParams::example_2023()], "621000").unwrap_err();
        assert_eq!(e, NoPolicy { pooling_area: "621000".into(), date: d("2022-12-31") });
    }

    #[test]
    fn pooling_area_falls_back_to_the_default() {
        let v = [PolicyParams::example_2023()];
        assert_eq!(pooling_area_of("621022100201", &v, "621000"), "621000");
        assert_eq!(pooling_area_of("620102", &v, "621000"), "621000", "no version for 620100: default");
    }

    mod order {
        use proptest::prelude::*;

        use super::*;

        /// One settlement of person [7; 32] in 2023, from drawn amounts in fen; out_of_pocket is the remainder, so the
        /// five parts always add up to total_cost.
        fn settlement(i: usize, day: u32, scope: i64, basic_pct: i64, cii: i64, ma: i64, visit: u8) -> Settlement {
            let basic = scope * basic_pct / 100;
            let cii = cii.min(scope - basic);
            let ma = ma.min(scope - basic - cii);
            let total = scope + scope / 5;
            let date = NaiveDate::from_yo_opt(2023, day).unwrap();
            let fen = |v: i64| Money::from_fen(v.into()).unwrap();
            Settlement {
                settlement_id: format!("S{i:02}"),
                person: [7; 32],
                division_code: "621022100201".into(),
                admitted_on: date,
                settled_on: date,
                visit_type: VisitType::ALL[visit as usize % 3],
                in_province: i.is_multiple_of(2),
                referred: i.is_multiple_of(3),
                total_cost: fen(total),
                policy_scope_cost: fen(scope),
                basic_paid: fen(basic),
                critical_illness_paid: fen(cii),
                medical_assistance_paid: fen(ma),
                other_paid: fen(0),
                out_of_pocket: fen(total - basic - cii - ma),
            }
        }

        fn findings(h: &PersonHistory) -> Vec<(String, FindingCode, Option<Money>, Option<Money>)> {
            let mut v: Vec<_> = recheck_person(h, &[PolicyParams::example_2023()], "621000")
                .unwrap()
                .findings
                .into_iter()
                .map(|f| (f.settlement_id, f.code, f.expected, f.actual))
                .collect();
            v.sort();
            v
        }

        proptest! {
            /// docs/spec/medical.md orders by settled_on (ties: settlement_id), so the order in which settlements
            /// arrive never changes a finding: any permutation of a person's settlements gives the same findings and
            /// amounts.
            #[test]
            fn findings_do_not_depend_on_arrival_order(
                drawn in prop::collection::vec(
                    (1u32..=365, 0i64..6_000_000, 0i64..=90, 0i64..1_500_000, 0i64..2_500_000, 0u8..3),
                    1..8,
                ),
                program in prop::sample::select(vec![Program::Dibao, Program::Tekun, Program::DibaoMarginal,
                    Program::IllnessImpoverished, Program::ExpenditureHardship]),
                seed in any::<u64>(),
            ) {
                let settlements: Vec<Settlement> = drawn
                    .iter()
                    .enumerate()
                    .map(|(i, &(day, scope, pct, cii, ma, visit))| settlement(i, day, scope, pct, cii, ma, visit))
                    .collect();
                let history = |s: Vec<Settlement>| PersonHistory {
                    settlements: s,
                    enrolments: vec![Enrolment { program, valid_from: d("2022-01-01"), valid_to: None }],
                    covers: vec![insured_2023()],
                };
                let in_order = findings(&history(settlements.clone()));
                let mut shuffled = settlements;
                // A deterministic shuffle from the drawn seed (Fisher–Yates with an LCG).
                let mut x = seed;
                for i in (1..shuffled.len()).rev() {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    shuffled.swap(i, (x >> 33) as usize % (i + 1));
                }
                prop_assert_eq!(findings(&history(shuffled.clone())), in_order.clone());
                shuffled.reverse();
                prop_assert_eq!(findings(&history(shuffled)), in_order);
            }
        }
    }
}
