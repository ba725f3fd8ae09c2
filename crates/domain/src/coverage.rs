//! Cross-department coverage findings (docs/spec/coordination.md "Coverage findings"): each agency's implementation of
//! the safety-net policies, checked person by person over the statuses in force on a snapshot's `as_of`.
//!
//! Pure: the caller gathers one person's facts in force (the snapshot's status rows), their birth date (from the ID
//! number) and the standards of the year; [`evaluate`] returns the rules broken. The parameters (ages, which
//! programs) are data ([`CoverageParams`], defaults from docs/spec/coordination.md), replaceable by configuration.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use super::fact::{AssistanceStatus, EmploymentStatus, Payload, PremiumSubsidy, Program, Residence, SupportMode};

/// The rules of docs/spec/coordination.md with the agency that must act, in its order.
pub const RULES: [(&str, &str); 8] = [
    ("UNINSURED", "medical_insurance"),
    ("PREMIUM_SUBSIDY_MISMATCH", "medical_insurance"),
    ("DISABILITY_LIVING_SUBSIDY_MISSING", "disability_federation"),
    ("NURSING_SUBSIDY_MISSING", "disability_federation"),
    ("STUDENT_AID_MISSING", "education"),
    ("PENSION_PREMIUM_NOT_PAID", "human_resources"),
    ("BENEFIT_ABOVE_STANDARD", "civil_affairs"),
    ("TEKUN_EMPLOYED", "civil_affairs"),
];

/// The agency to act on a rule code.
pub fn agency_to_act(code: &str) -> Option<&'static str> {
    RULES.iter().find(|(c, _)| *c == code).map(|(_, a)| *a)
}

/// Parameters of the rules (docs/spec/coordination.md: "ages, which programs are policy data with defaults").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoverageParams {
    /// UNINSURED: programs whose persons must hold medical insurance for the year.
    pub insured_programs: Vec<Program>,
    /// STUDENT_AID_MISSING: programs whose students must receive education aid.
    pub student_aid_programs: Vec<Program>,
    /// PENSION_PREMIUM_NOT_PAID: programs whose working-age persons have the premium paid by the government.
    pub pension_programs: Vec<Program>,
    /// PENSION_PREMIUM_NOT_PAID: ages (whole years on `as_of`), inclusive.
    pub pension_min_age: u32,
    pub pension_max_age: u32,
    /// NURSING_SUBSIDY_MISSING: disability grades that need the nursing subsidy (1 and 2 = severe).
    pub nursing_max_grade: u8,
}

impl Default for CoverageParams {
    fn default() -> Self {
        use Program::*;
        CoverageParams {
            insured_programs: vec![Dibao, Tekun, DibaoMarginal, AtRisk],
            student_aid_programs: vec![Dibao, Tekun, Orphan, UnsupportedChild, HivAffectedChild],
            pension_programs: vec![Dibao, Tekun],
            pension_min_age: 16,
            pension_max_age: 59,
            nursing_max_grade: 2,
        }
    }
}

/// Monthly standards of one year in fen, by item code of the `standards` reference data (`URBAN_DIBAO_STANDARD`,
/// `RURAL_DIBAO_CLASS_1`…`_4` (yearly amounts are divided by 12, half-up), `TEKUN_URBAN`, `TEKUN_RURAL_CENTRALIZED`,
/// `TEKUN_RURAL_DISPERSED`).
pub type MonthlyStandards = BTreeMap<String, i128>;

/// The standard (fen a month) that caps one assistance enrolment's benefit, or `None` if none applies (BENEFIT_ABOVE_
/// STANDARD): urban dibao ≤ the urban standard (full or gap-filling alike); rural dibao ≤ its class's subsidy; tekun ≤
/// the urban or the rural centralized / dispersed living standard.
pub fn standard_for(payload: &Payload, standards: &MonthlyStandards) -> Option<i128> {
    let Payload::Assistance(a) = payload else { return None };
    let item = match (a.program?, a.residence?) {
        (Program::Dibao, Residence::Urban) => "URBAN_DIBAO_STANDARD".to_owned(),
        (Program::Dibao, Residence::Rural) => format!("RURAL_DIBAO_CLASS_{}", a.rural_class?),
        (Program::Tekun, Residence::Urban) => "TEKUN_URBAN".to_owned(),
        (Program::Tekun, Residence::Rural) => match a.support_mode? {
            SupportMode::Centralized => "TEKUN_RURAL_CENTRALIZED".to_owned(),
            SupportMode::Dispersed => "TEKUN_RURAL_DISPERSED".to_owned(),
        },
        _ => return None,
    };
    standards.get(&item).copied()
}

/// Whole years from `birth` to `on`.
pub fn age_on(birth: NaiveDate, on: NaiveDate) -> u32 {
    let mut years = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    years.max(0) as u32
}

/// The rules one person breaks on `as_of`, as rule codes in [`RULES`] order (each at most once).
///
/// `facts`: the payloads of the person's facts in force on `as_of` (any agency); `birth`: from the ID number.
/// - UNINSURED: an ACTIVE enrolment in `insured_programs` and no medical_insurance fact for `as_of`'s year.
/// - PREMIUM_SUBSIDY_MISMATCH: insured for the year and (ACTIVE tekun without FULL, or ACTIVE dibao with NONE or no
///   subsidy recorded).
/// - DISABILITY_LIVING_SUBSIDY_MISSING: ACTIVE dibao, a disability fact, no living subsidy above 0.
/// - NURSING_SUBSIDY_MISSING: a disability of grade ≤ `nursing_max_grade`, no nursing subsidy above 0.
/// - STUDENT_AID_MISSING: a student fact, an ACTIVE enrolment in `student_aid_programs`, no education_aid fact.
/// - PENSION_PREMIUM_NOT_PAID: ACTIVE in `pension_programs`, aged `pension_min_age..=pension_max_age`, no student
///   fact, a pension fact enrolled without `premium_paid_by_government`.
/// - BENEFIT_ABOVE_STANDARD: an ACTIVE enrolment whose monthly benefit exceeds [`standard_for`].
/// - TEKUN_EMPLOYED: ACTIVE tekun with an employment fact EMPLOYED.
pub fn evaluate(
    facts: &[Payload],
    birth: Option<NaiveDate>,
    as_of: NaiveDate,
    params: &CoverageParams,
    standards: &MonthlyStandards,
) -> Vec<&'static str> {
    let active: Vec<&super::fact::Assistance> = facts
        .iter()
        .filter_map(|p| match p {
            Payload::Assistance(a) if a.status == Some(AssistanceStatus::Active) => Some(a),
            _ => None,
        })
        .collect();
    if active.is_empty() {
        return Vec::new();
    }
    let has = |prog: Program| active.iter().any(|a| a.program == Some(prog));
    let any_of = |progs: &[Program]| active.iter().any(|a| a.program.is_some_and(|p| progs.contains(&p)));
    let year = as_of.year();
    let insurance = facts.iter().find_map(|p| match p {
        Payload::MedicalInsurance(m) if m.year.is_some_and(|y| i32::from(y) == year) => Some(m),
        _ => None,
    });
    let disability = facts.iter().find_map(|p| match p {
        Payload::Disability(d) => Some(d),
        _ => None,
    });
    let subsidy = facts.iter().find_map(|p| match p {
        Payload::DisabilitySubsidy(s) => Some(s),
        _ => None,
    });
    let student = facts.iter().any(|p| matches!(p, Payload::Student(_)));
    let aid = facts.iter().any(|p| matches!(p, Payload::EducationAid(_)));
    let pension = facts.iter().find_map(|p| match p {
        Payload::Pension(x) => Some(x),
        _ => None,
    });
    let employed =
        facts.iter().any(|p| matches!(p, Payload::Employment(e) if e.status == Some(EmploymentStatus::Employed)));

    let mut out = Vec::new();
    if any_of(&params.insured_programs) && insurance.is_none() {
        out.push("UNINSURED");
    }
    if let Some(m) = insurance {
        let sub = m.premium_subsidy;
        if (has(Program::Tekun) && sub != Some(PremiumSubsidy::Full))
            || (has(Program::Dibao) && matches!(sub, None | Some(PremiumSubsidy::None)))
        {
            out.push("PREMIUM_SUBSIDY_MISMATCH");
        }
    }
    let positive = |m: Option<crate::money::Money>| m.is_some_and(|m| !m.is_zero());
    if let Some(d) = disability {
        if has(Program::Dibao) && !positive(subsidy.and_then(|s| s.living_subsidy)) {
            out.push("DISABILITY_LIVING_SUBSIDY_MISSING");
        }
        if d.grade.is_some_and(|g| g <= params.nursing_max_grade) && !positive(subsidy.and_then(|s| s.nursing_subsidy))
        {
            out.push("NURSING_SUBSIDY_MISSING");
        }
    }
    if student && any_of(&params.student_aid_programs) && !aid {
        out.push("STUDENT_AID_MISSING");
    }
    if any_of(&params.pension_programs)
        && !student
        && birth.is_some_and(|b| (params.pension_min_age..=params.pension_max_age).contains(&age_on(b, as_of)))
        && pension.is_some_and(|p| p.enrolled == Some(true) && p.premium_paid_by_government != Some(true))
    {
        out.push("PENSION_PREMIUM_NOT_PAID");
    }
    let above = facts.iter().any(|p| match p {
        Payload::Assistance(a) if a.status == Some(AssistanceStatus::Active) => {
            match (standard_for(p, standards), a.monthly_benefit) {
                (Some(std), Some(b)) => b.to_fen() > std,
                _ => false,
            }
        }
        _ => false,
    });
    if above {
        out.push("BENEFIT_ABOVE_STANDARD");
    }
    if has(Program::Tekun) && employed {
        out.push("TEKUN_EMPLOYED");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fact::*;
    use crate::money::Money;

    fn m(s: &str) -> Option<Money> {
        Some(Money::parse(s).unwrap())
    }
    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }
    fn assistance(program: Program, residence: Residence, benefit: &str) -> Payload {
        Payload::Assistance(Assistance {
            program: Some(program),
            residence: Some(residence),
            rural_class: (program == Program::Dibao && residence == Residence::Rural).then_some(2),
            support_mode: (program == Program::Tekun).then_some(SupportMode::Dispersed),
            status: Some(AssistanceStatus::Active),
            monthly_benefit: m(benefit),
            ..Default::default()
        })
    }
    fn insured(sub: PremiumSubsidy) -> Payload {
        Payload::MedicalInsurance(MedicalInsurance {
            scheme: Some(Scheme::Resident),
            year: Some(2023),
            premium_subsidy: Some(sub),
            ..Default::default()
        })
    }
    /// 2023 monthly standards from docs/domain/qingyang-figures.md §3: urban 700; rural class 2 5304/12 = 442.00; tekun
    /// rural dispersed 605.
    fn standards() -> MonthlyStandards {
        [("URBAN_DIBAO_STANDARD", 70_000), ("RURAL_DIBAO_CLASS_2", 44_200), ("TEKUN_RURAL_DISPERSED", 60_500)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
    }
    fn eval(facts: &[Payload], birth: &str) -> Vec<&'static str> {
        evaluate(facts, Some(d(birth)), d("2023-06-30"), &CoverageParams::default(), &standards())
    }

    #[test]
    fn a_compliant_rural_dibao_adult_breaks_nothing() {
        let facts = [assistance(Program::Dibao, Residence::Rural, "442.00"), insured(PremiumSubsidy::Partial)];
        assert!(eval(&facts, "1980-01-01").is_empty());
    }

    #[test]
    fn uninsured_only_for_the_listed_programs() {
        assert_eq!(eval(&[assistance(Program::Dibao, Residence::Rural, "442.00")], "1980-01-01"), ["UNINSURED"]);
        assert!(eval(&[assistance(Program::ExpenditureHardship, Residence::Rural, "0")], "1980-01-01").is_empty());
        // Insurance of another year does not count.
        let mut old = insured(PremiumSubsidy::Partial);
        if let Payload::MedicalInsurance(x) = &mut old {
            x.year = Some(2022);
        }
        assert_eq!(eval(&[assistance(Program::AtRisk, Residence::Rural, "0"), old], "1980-01-01"), ["UNINSURED"]);
    }

    #[test]
    fn premium_subsidy_full_for_tekun_at_least_partial_for_dibao() {
        let tekun = assistance(Program::Tekun, Residence::Rural, "605.00");
        assert_eq!(
            eval(&[tekun.clone(), insured(PremiumSubsidy::Partial)], "1950-01-01"),
            ["PREMIUM_SUBSIDY_MISMATCH"]
        );
        assert!(eval(&[tekun, insured(PremiumSubsidy::Full)], "1950-01-01").is_empty());
        let dibao = assistance(Program::Dibao, Residence::Rural, "442.00");
        assert_eq!(eval(&[dibao.clone(), insured(PremiumSubsidy::None)], "1950-01-01"), ["PREMIUM_SUBSIDY_MISMATCH"]);
        assert!(eval(&[dibao, insured(PremiumSubsidy::Partial)], "1950-01-01").is_empty());
    }

    #[test]
    fn disability_subsidies() {
        let grade = |g| {
            Payload::Disability(Disability {
                category: Some(DisabilityCategory::Physical),
                grade: Some(g),
                ..Default::default()
            })
        };
        let subsidy = |living: Option<Money>, nursing: Option<Money>| {
            Payload::DisabilitySubsidy(DisabilitySubsidy { living_subsidy: living, nursing_subsidy: nursing })
        };
        let dibao = assistance(Program::Dibao, Residence::Rural, "442.00");
        let ins = insured(PremiumSubsidy::Partial);
        assert_eq!(
            eval(&[dibao.clone(), ins.clone(), grade(1)], "1950-01-01"),
            ["DISABILITY_LIVING_SUBSIDY_MISSING", "NURSING_SUBSIDY_MISSING"]
        );
        assert!(
            eval(&[dibao.clone(), ins.clone(), grade(1), subsidy(m("100.00"), m("100.00"))], "1950-01-01").is_empty()
        );
        // Grade 3 needs no nursing subsidy; a tekun holder needs no living subsidy (dibao only).
        assert!(eval(&[dibao, ins.clone(), grade(3), subsidy(m("100.00"), None)], "1950-01-01").is_empty());
        let tekun = assistance(Program::Tekun, Residence::Rural, "605.00");
        assert_eq!(eval(&[tekun, insured(PremiumSubsidy::Full), grade(2)], "1950-01-01"), ["NURSING_SUBSIDY_MISSING"]);
    }

    #[test]
    fn student_aid_for_the_listed_programs() {
        let student = Payload::Student(Student { stage: Some(Stage::Primary), school_code: None });
        let aid = Payload::EducationAid(EducationAid {
            aid_type: Some(AidType::LivingAllowance),
            annual_amount: m("1000.00"),
        });
        let dibao = assistance(Program::Dibao, Residence::Rural, "442.00");
        let ins = insured(PremiumSubsidy::Partial);
        assert_eq!(eval(&[dibao.clone(), ins.clone(), student.clone()], "2015-01-01"), ["STUDENT_AID_MISSING"]);
        assert!(eval(&[dibao, ins.clone(), student.clone(), aid], "2015-01-01").is_empty());
        let marginal = assistance(Program::DibaoMarginal, Residence::Rural, "0");
        assert!(eval(&[marginal, ins, student], "2015-01-01").is_empty(), "marginal is not a listed program");
    }

    #[test]
    fn pension_premium_for_working_age_non_students() {
        let pension = |gov| {
            Payload::Pension(Pension {
                enrolled: Some(true),
                premium_paid_by_government: Some(gov),
                receiving: Some(false),
                monthly_pension: None,
            })
        };
        let dibao = assistance(Program::Dibao, Residence::Rural, "442.00");
        let ins = insured(PremiumSubsidy::Partial);
        assert_eq!(eval(&[dibao.clone(), ins.clone(), pension(false)], "1980-01-01"), ["PENSION_PREMIUM_NOT_PAID"]);
        assert!(eval(&[dibao.clone(), ins.clone(), pension(true)], "1980-01-01").is_empty());
        // Ages on 2023-06-30: born 2007-07-01 is 15 (too young); born 2007-06-30 is 16; born 1963-06-30 is 60.
        assert!(eval(&[dibao.clone(), ins.clone(), pension(false)], "2007-07-01").is_empty());
        assert_eq!(eval(&[dibao.clone(), ins.clone(), pension(false)], "2007-06-30"), ["PENSION_PREMIUM_NOT_PAID"]);
        assert!(eval(&[dibao, ins, pension(false)], "1963-06-30").is_empty());
    }

    #[test]
    fn benefit_above_the_standard_of_program_residence_and_class() {
        let ins = insured(PremiumSubsidy::Partial);
        // Rural class 2: 442.00 a month is the standard itself (5,304 / 12); 442.01 is above.
        assert!(eval(&[assistance(Program::Dibao, Residence::Rural, "442.00"), ins.clone()], "1980-01-01").is_empty());
        assert_eq!(
            eval(&[assistance(Program::Dibao, Residence::Rural, "442.01"), ins.clone()], "1980-01-01"),
            ["BENEFIT_ABOVE_STANDARD"]
        );
        assert_eq!(
            eval(&[assistance(Program::Dibao, Residence::Urban, "710.00"), ins], "1980-01-01"),
            ["BENEFIT_ABOVE_STANDARD"]
        );
    }

    #[test]
    fn tekun_employed() {
        let emp = |s| Payload::Employment(Employment { status: Some(s), unemployment_benefit: None });
        let tekun = assistance(Program::Tekun, Residence::Rural, "605.00");
        let ins = insured(PremiumSubsidy::Full);
        assert_eq!(
            eval(&[tekun.clone(), ins.clone(), emp(EmploymentStatus::Employed)], "1980-01-01"),
            ["TEKUN_EMPLOYED"]
        );
        assert!(eval(&[tekun, ins, emp(EmploymentStatus::Flexible)], "1980-01-01").is_empty());
    }

    #[test]
    fn inactive_enrolments_count_for_nothing() {
        let mut a = assistance(Program::Dibao, Residence::Rural, "900.00");
        if let Payload::Assistance(x) = &mut a {
            x.status = Some(AssistanceStatus::Suspended);
        }
        assert!(eval(&[a], "1980-01-01").is_empty());
    }
}
