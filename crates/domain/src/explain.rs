//! Every finding explains itself (issue 19 item 3, docs/findings.md "Explanations"): a medical finding's computation
//! step by step, with its inputs and the policy parameters used, in English and Chinese. Built from
//! [`SettlementSteps`], which the check itself produces ([`super::medical::steps_person_year_with_versions`]), so an
//! explanation shows the very amounts the check compared. No I/O: the hub gathers the inputs from the store.
//!
//! Amounts are yuan with two decimals ("10000.00"); ratios are whole or decimal percent ("65%", "62.5%").

use rust_decimal::Decimal;
use serde::Serialize;

use super::medical::{Finding, FindingCode, PolicyParams, SettlementSteps};
use super::money::Money;

/// One line of an explanation: a named quantity (or test), how it is obtained in English and Chinese, and its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    /// A stable key, e.g. `after_basic`, `expected_ma`, `test`.
    pub name: String,
    pub en: String,
    pub zh: String,
    /// The value as printed: an amount in yuan, a percent, a date, or `yes` / `no`.
    pub value: String,
}

fn line(name: &str, en: String, zh: String, value: impl Into<String>) -> Line {
    Line { name: name.to_owned(), en, zh, value: value.into() }
}

/// A ratio as percent: `0.65` → `65%`, `0.625` → `62.5%`.
pub fn percent(r: Decimal) -> String {
    format!("{}%", (r * Decimal::from(100)).normalize())
}

/// A finding's explanation: what was read, the parameters, each step with its amounts, the test that raises the
/// finding, and whether the recomputation agrees with the stored finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub finding_id: String,
    /// The finding code, e.g. `ASSISTANCE_MISSED` or `UNINSURED`.
    pub code: String,
    pub agency_to_act: String,
    /// The inputs: each line names a settlement or fact version (`en`, `zh`), its value the content hash (hex).
    pub inputs: Vec<Line>,
    /// The policy version and the parameters used.
    pub parameters: Vec<Line>,
    /// Each step of the computation with its amount.
    pub steps: Vec<Line>,
    /// The test that raises the finding, with the amounts compared; value `raised` or `not raised`.
    pub test: Line,
    /// The amounts the recomputation gives (medical: expected and actual, yuan; absent where the code has none or
    /// the recomputation does not raise the finding) and those stored with the finding.
    pub recomputed_expected: Option<String>,
    pub recomputed_actual: Option<String>,
    pub stored_expected: Option<String>,
    pub stored_actual: Option<String>,
    /// Whether the recomputation raises the finding now.
    pub raised: bool,
    /// Whether the recomputation agrees with the stored finding: raised with the stored amounts while the finding is
    /// open, not raised once it is resolved.
    pub matches_stored: bool,
}

/// An input line: `name` the kind (`settlement`, `fact_version`, `snapshot`, `status`), value the content hash.
pub fn input(name: &str, en: String, zh: String, content_hash: &[u8; 32]) -> Line {
    line(name, en, zh, hex::encode(content_hash))
}

/// The computation of one settlement, steps 1–4 of docs/spec/medical.md "The computation", with the running totals
/// of the person's year it used.
pub fn medical_steps(s: &SettlementSteps) -> Vec<Line> {
    let tilt_en = if s.tilted { " (tilted)" } else { "" };
    let tilt_zh = if s.tilted { "（倾斜）" } else { "" };
    let cii_used = s.cii_deductible.saturating_sub_zero(s.cii_deductible_left);
    let mut out = vec![
        line(
            "after_basic",
            format!("after basic = max(0, policy scope {} − basic paid {})", s.policy_scope_cost, s.basic_paid),
            format!("基本医保后 = max(0, 政策范围内费用 {} − 基本医保支付 {})", s.policy_scope_cost, s.basic_paid),
            s.after_basic.to_string(),
        ),
        line(
            "cii_deductible_left",
            format!(
                "critical-illness deductible left = year's deductible {}{tilt_en} − used earlier in the year {cii_used}",
                s.cii_deductible
            ),
            format!("大病保险起付线剩余 = 年度起付线 {}{tilt_zh} − 本年此前已用 {cii_used}", s.cii_deductible),
            s.cii_deductible_left.to_string(),
        ),
        line(
            "cii_ratio",
            format!("critical-illness ratio{tilt_en}"),
            format!("大病保险报销比例{tilt_zh}"),
            percent(s.cii_ratio),
        ),
        line(
            "expected_cii",
            format!(
                "critical illness owed = max(0, {} − {}) × {}",
                s.after_basic,
                s.cii_deductible_left,
                percent(s.cii_ratio)
            ),
            format!("大病保险应付 = max(0, {} − {}) × {}", s.after_basic, s.cii_deductible_left, percent(s.cii_ratio)),
            s.expected_cii.to_string(),
        ),
        line(
            "residual",
            format!("residual = max(0, {} − critical illness paid {})", s.after_basic, s.critical_illness_paid),
            format!("大病保险后剩余 = max(0, {} − 大病保险支付 {})", s.after_basic, s.critical_illness_paid),
            s.residual.to_string(),
        ),
    ];
    let group = s.group.map(|g| g.to_string()).unwrap_or_else(|| "none".into());
    out.push(line(
        "group",
        format!("assistance group on {} (from the person's ACTIVE enrolments)", s.settled_on),
        format!("{} 的救助类别（按在册救助身份）", s.settled_on),
        group,
    ));
    match (s.ma_deductible, s.ma_deductible_left, s.ma_ratio) {
        (Some(deductible), Some(left), Some(ratio)) => {
            let used = deductible.saturating_sub_zero(left);
            out.push(line(
                "ma_deductible_left",
                format!(
                    "assistance deductible left = year's deductible {deductible} − used earlier in the year {used}"
                ),
                format!("医疗救助起付线剩余 = 年度起付线 {deductible} − 本年此前已用 {used}"),
                left.to_string(),
            ));
            out.push(line("ma_ratio", "assistance ratio".into(), "医疗救助比例".into(), percent(ratio)));
        }
        _ => out.push(line(
            "assisted",
            "no assistance owed: no assistance group, or a visit type that gets none".into(),
            "不予救助：无救助类别或该就诊类型不予救助".into(),
            "no",
        )),
    }
    let paid_earlier = s.annual_cap.saturating_sub_zero(s.cap_left_before);
    out.push(line(
        "cap_left_before",
        format!("annual cap left = cap {} − assistance paid earlier in the year {paid_earlier}", s.annual_cap),
        format!("年度救助限额剩余 = 限额 {} − 本年此前已付救助 {paid_earlier}", s.annual_cap),
        s.cap_left_before.to_string(),
    ));
    let expected_ma = match (s.ma_deductible_left, s.ma_ratio) {
        (Some(left), Some(ratio)) => line(
            "expected_ma",
            format!(
                "assistance owed = min(max(0, {} − {left}) × {}, {})",
                s.residual,
                percent(ratio),
                s.cap_left_before
            ),
            format!("医疗救助应付 = min(max(0, {} − {left}) × {}, {})", s.residual, percent(ratio), s.cap_left_before),
            s.expected_ma.to_string(),
        ),
        _ => line("expected_ma", "assistance owed".into(), "医疗救助应付".into(), s.expected_ma.to_string()),
    };
    out.push(expected_ma);
    out.push(line(
        "paid_in_year",
        format!("assistance paid in the year, this settlement included (paid now {})", s.medical_assistance_paid),
        format!("本年已付救助（含本次 {}）", s.medical_assistance_paid),
        s.paid_in_year.to_string(),
    ));
    out.push(line(
        "cap_left",
        format!("annual cap left after it = max(0, {} − {})", s.annual_cap, s.paid_in_year),
        format!("本次后年度救助限额剩余 = max(0, {} − {})", s.annual_cap, s.paid_in_year),
        s.cap_left.to_string(),
    ));
    out
}

/// The test that raises `code` on this settlement, with the amounts compared (docs/spec/medical.md "Findings");
/// `finding` is the recomputed finding where the amounts come from the finding itself (HIGH_BURDEN,
/// TILTED_ASSISTANCE_CANDIDATE: threshold and running total). The value is `raised` or `not raised`.
pub fn medical_test(code: FindingCode, s: &SettlementSteps, finding: Option<&Finding>) -> Line {
    let raised = if finding.is_some() { "raised" } else { "not raised" };
    let tol = s.tolerance;
    let diff = |a: Money, b: Money| a.saturating_sub_zero(b);
    let (en, zh) = match code {
        FindingCode::NotInsured => (
            format!("no medical_insurance cover on admitted_on {}: {}", s.admitted_on, yes_no(!s.insured)),
            format!("入院日 {} 无医保参保记录：{}", s.admitted_on, yes_no(!s.insured)),
        ),
        FindingCode::AssistanceToIneligible => (
            format!("no assistance group and assistance paid {} > 0", s.medical_assistance_paid),
            format!("无救助类别而支付医疗救助 {} > 0", s.medical_assistance_paid),
        ),
        FindingCode::TierOrderViolation => (
            format!(
                "basic paid {} = 0 with policy scope {} > 0, while critical illness {} + assistance {} was paid",
                s.basic_paid, s.policy_scope_cost, s.critical_illness_paid, s.medical_assistance_paid
            ),
            format!(
                "基本医保支付 {} 为 0、政策范围内费用 {} > 0，却支付了大病保险 {} + 医疗救助 {}",
                s.basic_paid, s.policy_scope_cost, s.critical_illness_paid, s.medical_assistance_paid
            ),
        ),
        FindingCode::AssistanceMissed => (
            format!(
                "owed {} − paid {} = {} > tolerance {tol}, nothing paid",
                s.expected_ma,
                s.medical_assistance_paid,
                diff(s.expected_ma, s.medical_assistance_paid)
            ),
            format!(
                "应付 {} − 已付 {} = {} > 容差 {tol}，且未支付",
                s.expected_ma,
                s.medical_assistance_paid,
                diff(s.expected_ma, s.medical_assistance_paid)
            ),
        ),
        FindingCode::UnderAssisted => (
            format!(
                "owed {} − paid {} = {} > tolerance {tol}",
                s.expected_ma,
                s.medical_assistance_paid,
                diff(s.expected_ma, s.medical_assistance_paid)
            ),
            format!(
                "应付 {} − 已付 {} = {} > 容差 {tol}",
                s.expected_ma,
                s.medical_assistance_paid,
                diff(s.expected_ma, s.medical_assistance_paid)
            ),
        ),
        FindingCode::OverAssisted => (
            format!(
                "paid {} − owed {} = {} > tolerance {tol}",
                s.medical_assistance_paid,
                s.expected_ma,
                diff(s.medical_assistance_paid, s.expected_ma)
            ),
            format!(
                "已付 {} − 应付 {} = {} > 容差 {tol}",
                s.medical_assistance_paid,
                s.expected_ma,
                diff(s.medical_assistance_paid, s.expected_ma)
            ),
        ),
        FindingCode::AnnualCapExceeded => (
            format!("assistance paid in the year {} > annual cap {}", s.paid_in_year, s.annual_cap),
            format!("本年已付救助 {} > 年度限额 {}", s.paid_in_year, s.annual_cap),
        ),
        FindingCode::CiiTiltNotApplied => (
            format!(
                "critical illness owed {} − paid {} = {} > tolerance {tol} (tilted group)",
                s.expected_cii,
                s.critical_illness_paid,
                diff(s.expected_cii, s.critical_illness_paid)
            ),
            format!(
                "大病保险应付 {} − 已付 {} = {} > 容差 {tol}（倾斜类别）",
                s.expected_cii,
                s.critical_illness_paid,
                diff(s.expected_cii, s.critical_illness_paid)
            ),
        ),
        FindingCode::DuplicateSuspected => (
            "an earlier settlement of the person has the same admitted_on, settled_on and total_cost".into(),
            "此前另有一笔入院日、结算日与总费用相同的结算".into(),
        ),
        FindingCode::HighBurden | FindingCode::TiltedAssistanceCandidate => {
            let total = finding.and_then(|f| f.actual).map(|m| m.to_string()).unwrap_or_else(|| "—".into());
            let threshold = finding.and_then(|f| f.expected).map(|m| m.to_string()).unwrap_or_else(|| "—".into());
            if code == FindingCode::HighBurden {
                (
                    format!("out of pocket over the trailing 12 months {total} ≥ threshold {threshold}, no program"),
                    format!("近 12 个月个人自付 {total} ≥ 阈值 {threshold}，且无救助身份"),
                )
            } else {
                (
                    format!("the year's in-province referred out of pocket {total} > threshold {threshold}"),
                    format!("本年省内转诊个人自付 {total} > 阈值 {threshold}"),
                )
            }
        }
    };
    line("test", en, zh, raised)
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// The policy parameters a medical computation used (docs/spec/medical.md), of the version in force on the
/// settlement's `settled_on`, with the group's terms where the person had a group.
pub fn medical_parameters(p: &PolicyParams, group: Option<u8>) -> Vec<Line> {
    let mut out = vec![
        line("policy_version", "policy version".into(), "政策参数版本".into(), p.version.clone()),
        line(
            "prior_year_income",
            "previous-year per-capita disposable income".into(),
            "上年居民人均可支配收入".into(),
            p.prior_year_income.to_string(),
        ),
        line("annual_cap", "annual assistance cap".into(), "年度救助限额".into(), p.annual_cap.to_string()),
        line(
            "cii_deductible",
            "critical-illness deductible".into(),
            "大病保险起付线".into(),
            p.cii_deductible.to_string(),
        ),
        line("cii_ratio", "critical-illness ratio".into(), "大病保险报销比例".into(), percent(p.cii_ratio)),
        line(
            "cii_tilt",
            "tilt for groups with it: deductible share, ratio points".into(),
            "倾斜：起付线比例、比例上浮".into(),
            format!("{}, +{}", percent(p.cii_tilt_deductible_share), percent(p.cii_tilt_ratio_points)),
        ),
        line("tolerance", "tolerance".into(), "容差".into(), p.tolerance.to_string()),
    ];
    if let Some(g) = group.and_then(|g| p.group(g)) {
        out.push(line(
            "group_terms",
            format!("group {}: assistance deductible share of income, ratio", g.group),
            format!("第 {} 类：救助起付线占收入比例、救助比例", g.group),
            format!("{}, {}", percent(g.ma_deductible_share), percent(g.ma_ratio)),
        ));
    }
    out
}

/// The conditions of coverage rule `code` (docs/spec/coordination.md "Coverage findings", `domain::coverage`) over
/// one person's facts in force on `as_of` (`facts`: each payload with its reference `agency/fact_id/source_version`),
/// each as a line with its value, then the test: `raised` when [`super::coverage::evaluate`] itself breaks the rule
/// (the lines describe; the decision is the rule's own code).
pub fn coverage_steps(
    code: &str,
    facts: &[(String, super::fact::Payload)],
    birth: Option<chrono::NaiveDate>,
    as_of: chrono::NaiveDate,
    params: &super::coverage::CoverageParams,
    standards: &super::coverage::MonthlyStandards,
) -> (Vec<Line>, Line) {
    use super::fact::{AssistanceStatus, EmploymentStatus, Payload, Program};
    let programs = |ps: &[Program]| ps.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ");
    let active: Vec<(&String, &super::fact::Assistance)> = facts
        .iter()
        .filter_map(|(r, p)| match p {
            Payload::Assistance(a) if a.status == Some(AssistanceStatus::Active) => Some((r, a)),
            _ => None,
        })
        .collect();
    let refs = |pred: &dyn Fn(&Payload) -> bool| {
        let v: Vec<&str> = facts.iter().filter(|(_, p)| pred(p)).map(|(r, _)| r.as_str()).collect();
        if v.is_empty() { "none".to_owned() } else { v.join(", ") }
    };
    let in_programs = |ps: &[Program]| {
        let v: Vec<String> = active
            .iter()
            .filter(|(_, a)| a.program.is_some_and(|p| ps.contains(&p)))
            .map(|(r, a)| format!("{} ({r})", a.program.map(|p| p.as_str()).unwrap_or("?")))
            .collect();
        if v.is_empty() { "none".to_owned() } else { v.join(", ") }
    };
    let year = chrono::Datelike::year(&as_of);
    let mut out = vec![line(
        "active_enrolments",
        format!("ACTIVE assistance enrolments in force on {as_of}"),
        format!("{as_of} 在册的救助身份"),
        {
            let v: Vec<String> =
                active.iter().map(|(r, a)| format!("{} ({r})", a.program.map(|p| p.as_str()).unwrap_or("?"))).collect();
            if v.is_empty() { "none".to_owned() } else { v.join(", ") }
        },
    )];
    let insurance =
        |p: &Payload| matches!(p, Payload::MedicalInsurance(m) if m.year.is_some_and(|y| i32::from(y) == year));
    match code {
        "UNINSURED" | "PREMIUM_SUBSIDY_MISMATCH" => {
            out.push(line(
                "programs",
                format!("enrolled in a program that must be insured ({})", programs(&params.insured_programs)),
                format!("属于须参保的救助项目（{}）", programs(&params.insured_programs)),
                in_programs(&params.insured_programs),
            ));
            out.push(line(
                "insurance",
                format!("medical_insurance fact for {year}"),
                format!("{year} 年度医保参保记录"),
                refs(&insurance),
            ));
            if code == "PREMIUM_SUBSIDY_MISMATCH" {
                let sub = facts.iter().find_map(|(_, p)| match p {
                    Payload::MedicalInsurance(m) if m.year.is_some_and(|y| i32::from(y) == year) => {
                        Some(m.premium_subsidy.map(|s| s.as_str()).unwrap_or("none"))
                    }
                    _ => None,
                });
                out.push(line(
                    "premium_subsidy",
                    "premium subsidy recorded (tekun: FULL; dibao: PARTIAL or FULL)".into(),
                    "参保资助（特困：全额；低保：定额或全额）".into(),
                    sub.unwrap_or("none"),
                ));
            }
        }
        "DISABILITY_LIVING_SUBSIDY_MISSING" | "NURSING_SUBSIDY_MISSING" => {
            let grade = facts.iter().find_map(|(_, p)| match p {
                Payload::Disability(d) => Some(d.grade.map(|g| g.to_string()).unwrap_or_else(|| "none".into())),
                _ => None,
            });
            out.push(line(
                "disability",
                format!("disability fact and grade (nursing subsidy for grade ≤ {})", params.nursing_max_grade),
                format!("残疾人证及等级（{} 级及以上须护理补贴）", params.nursing_max_grade),
                grade.unwrap_or_else(|| "none".into()),
            ));
            let subsidy = |nursing: bool| {
                facts
                    .iter()
                    .find_map(|(_, p)| match p {
                        Payload::DisabilitySubsidy(s) => {
                            if nursing {
                                s.nursing_subsidy
                            } else {
                                s.living_subsidy
                            }
                        }
                        _ => None,
                    })
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| "none".into())
            };
            if code == "DISABILITY_LIVING_SUBSIDY_MISSING" {
                out.push(line("dibao", "ACTIVE dibao".into(), "在册低保".into(), in_programs(&[Program::Dibao])));
                out.push(line(
                    "living_subsidy",
                    "living subsidy for the disabled in difficulty (above 0)".into(),
                    "困难残疾人生活补贴（大于 0）".into(),
                    subsidy(false),
                ));
            } else {
                out.push(line(
                    "nursing_subsidy",
                    "nursing subsidy for the severely disabled (above 0)".into(),
                    "重度残疾人护理补贴（大于 0）".into(),
                    subsidy(true),
                ));
            }
        }
        "STUDENT_AID_MISSING" => {
            out.push(line(
                "programs",
                format!("enrolled in a program whose pupils get aid ({})", programs(&params.student_aid_programs)),
                format!("属于学生须获资助的救助项目（{}）", programs(&params.student_aid_programs)),
                in_programs(&params.student_aid_programs),
            ));
            out.push(line(
                "student",
                "student fact".into(),
                "在校学生记录".into(),
                refs(&|p| matches!(p, Payload::Student(_))),
            ));
            out.push(line(
                "education_aid",
                "education aid fact".into(),
                "教育资助记录".into(),
                refs(&|p| matches!(p, Payload::EducationAid(_))),
            ));
        }
        "PENSION_PREMIUM_NOT_PAID" => {
            out.push(line(
                "programs",
                format!("enrolled in {}", programs(&params.pension_programs)),
                format!("属于 {}", programs(&params.pension_programs)),
                in_programs(&params.pension_programs),
            ));
            out.push(line(
                "age",
                format!(
                    "age on {as_of} from the ID number's birth date ({} to {} pay no premium)",
                    params.pension_min_age, params.pension_max_age
                ),
                format!(
                    "{as_of} 时的年龄（按身份证出生日期；{} 至 {} 岁由政府代缴）",
                    params.pension_min_age, params.pension_max_age
                ),
                birth.map(|b| super::coverage::age_on(b, as_of).to_string()).unwrap_or_else(|| "unknown".into()),
            ));
            out.push(line(
                "student",
                "student fact (students are exempt)".into(),
                "在校学生（不适用）".into(),
                refs(&|p| matches!(p, Payload::Student(_))),
            ));
            let pension = facts.iter().find_map(|(r, p)| match p {
                Payload::Pension(x) => Some(format!(
                    "enrolled {}, premium paid by the government {} ({r})",
                    yes_no(x.enrolled == Some(true)),
                    yes_no(x.premium_paid_by_government == Some(true))
                )),
                _ => None,
            });
            out.push(line(
                "pension",
                "pension fact: enrolled, premium paid by the government".into(),
                "养老保险：已参保、政府代缴".into(),
                pension.unwrap_or_else(|| "none".into()),
            ));
        }
        "BENEFIT_ABOVE_STANDARD" => {
            for (r, a) in &active {
                let payload = Payload::Assistance((*a).clone());
                let std = super::coverage::standard_for(&payload, standards);
                let benefit = a.monthly_benefit.map(|m| m.to_string()).unwrap_or_else(|| "none".into());
                let std_text =
                    std.and_then(|f| Money::from_fen(f).ok()).map(|m| m.to_string()).unwrap_or_else(|| "none".into());
                out.push(line(
                    "benefit",
                    format!(
                        "{} ({r}): monthly benefit {benefit} against the standard {std_text}",
                        a.program.map(|p| p.as_str()).unwrap_or("?")
                    ),
                    format!(
                        "{}（{r}）：月补助 {benefit}，标准 {std_text}",
                        a.program.map(|p| p.as_str()).unwrap_or("?")
                    ),
                    format!("{benefit} / {std_text}"),
                ));
            }
        }
        "TEKUN_EMPLOYED" => {
            out.push(line("tekun", "ACTIVE tekun".into(), "在册特困".into(), in_programs(&[Program::Tekun])));
            out.push(line(
                "employed",
                "employment fact EMPLOYED".into(),
                "就业状态为已就业".into(),
                refs(&|p| matches!(p, Payload::Employment(e) if e.status == Some(EmploymentStatus::Employed))),
            ));
        }
        _ => {}
    }
    let payloads: Vec<Payload> = facts.iter().map(|(_, p)| p.clone()).collect();
    let raised = super::coverage::evaluate(&payloads, birth, as_of, params, standards).contains(&code);
    let test = line(
        "test",
        format!("rule {code} (docs/spec/coordination.md) broken on {as_of}"),
        format!("{as_of} 违反规则 {code}"),
        if raised { "raised" } else { "not raised" },
    );
    (out, test)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::medical::{Settlement, VisitType, steps_person_year_with_versions};

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    /// An inpatient settlement of one person admitted and settled on `day`; the person pays the rest of `total`.
    fn settlement(id: &str, day: &str, total: &str, scope: &str, basic: &str, cii: &str, ma: &str) -> Settlement {
        let (total, scope, basic, cii, ma) = (m(total), m(scope), m(basic), m(cii), m(ma));
        let day: NaiveDate = day.parse().unwrap();
        Settlement {
            settlement_id: id.into(),
            person: [9; 32],
            division_code: "621022".into(),
            admitted_on: day,
            settled_on: day,
            visit_type: VisitType::Inpatient,
            in_province: true,
            referred: false,
            total_cost: total,
            policy_scope_cost: scope,
            basic_paid: basic,
            critical_illness_paid: cii,
            medical_assistance_paid: ma,
            other_paid: Money::ZERO,
            out_of_pocket: total.saturating_sub_zero(basic + cii + ma),
        }
    }

    /// A settlement's step lines and the test line of each finding code raised on it.
    type Explained = (Vec<Line>, Vec<(FindingCode, Line)>);

    /// Each settlement's explanation lines (steps and the tests of every finding code raised), under the example
    /// parameters of docs/spec/medical.md (`PolicyParams::example_2023`) and a constant group.
    fn explained(settlements: &[Settlement], group: Option<u8>) -> Vec<Explained> {
        let p = PolicyParams::example_2023();
        steps_person_year_with_versions(settlements, |_| group, |_| true, |_| &p)
            .into_iter()
            .map(|(c, s)| {
                let tests = c.findings.iter().map(|f| (f.code, medical_test(f.code, &s, Some(f)))).collect();
                (medical_steps(&s), tests)
            })
            .collect()
    }

    fn value<'a>(lines: &'a [Line], name: &str) -> &'a str {
        &lines.iter().find(|l| l.name == name).unwrap_or_else(|| panic!("no line {name}")).value
    }

    /// Example A (docs/spec/medical.md "Worked examples"): dibao (group 2), first of the year, scope 25,000.00,
    /// basic 15,000.00, CII paid 3,250.00, MA paid 4,725.00, total 30,000.00: "cii = (10,000 − 5,000) × 65% =
    /// 3,250.00; residual 6,750.00; ma = 6,750 × 70% = 4,725.00", no finding.
    #[test]
    fn example_a_explains_the_worked_figures() {
        let a = settlement("A", "2023-03-10", "30000.00", "25000.00", "15000.00", "3250.00", "4725.00");
        let (lines, tests) = &explained(&[a], Some(2))[0];
        assert_eq!(value(lines, "after_basic"), "10000.00"); // 25,000 − 15,000
        assert_eq!(value(lines, "cii_deductible_left"), "5000.00"); // tilted: 10,000 halved
        assert_eq!(value(lines, "cii_ratio"), "65%"); // 60% + 5 points
        assert_eq!(value(lines, "expected_cii"), "3250.00");
        assert_eq!(value(lines, "residual"), "6750.00");
        assert_eq!(value(lines, "ma_deductible_left"), "0.00"); // group 2: no deductible
        assert_eq!(value(lines, "ma_ratio"), "70%");
        assert_eq!(value(lines, "cap_left_before"), "20000.00");
        assert_eq!(value(lines, "expected_ma"), "4725.00");
        assert!(tests.is_empty());
        let cii = lines.iter().find(|l| l.name == "expected_cii").unwrap();
        assert_eq!(cii.en, "critical illness owed = max(0, 10000.00 − 5000.00) × 65%");
        assert_eq!(cii.zh, "大病保险应付 = max(0, 10000.00 − 5000.00) × 65%");
    }

    /// Example B: marginal (group 3), scope 10,000.00, basic 6,000.00, nothing else paid, total 12,000.00: "cii not
    /// tilted: 4,000 < 10,000 deductible → 0; residual 4,000.00; ma = (4,000 − 2,000) × 65% = 1,300.00",
    /// ASSISTANCE_MISSED (expected 1,300.00); the difference 1,300.00 is above the 1.00 tolerance.
    #[test]
    fn example_b_explains_assistance_missed() {
        let b = settlement("B", "2023-03-10", "12000.00", "10000.00", "6000.00", "0.00", "0.00");
        let (lines, tests) = &explained(&[b], Some(3))[0];
        assert_eq!(value(lines, "after_basic"), "4000.00");
        assert_eq!(value(lines, "cii_deductible_left"), "10000.00");
        assert_eq!(value(lines, "cii_ratio"), "60%");
        assert_eq!(value(lines, "expected_cii"), "0.00");
        assert_eq!(value(lines, "residual"), "4000.00");
        assert_eq!(value(lines, "ma_deductible_left"), "2000.00"); // 10% of 20,000
        assert_eq!(value(lines, "ma_ratio"), "65%");
        assert_eq!(value(lines, "expected_ma"), "1300.00");
        assert_eq!(tests.len(), 1);
        let (code, test) = &tests[0];
        assert_eq!(*code, FindingCode::AssistanceMissed);
        assert_eq!(test.en, "owed 1300.00 − paid 0.00 = 1300.00 > tolerance 1.00, nothing paid");
        assert_eq!(test.zh, "应付 1300.00 − 已付 0.00 = 1300.00 > 容差 1.00，且未支付");
        assert_eq!(test.value, "raised");
    }

    /// Example C: no program, MA paid 500.00 (the other amounts filled in: total 6,000.00, scope 5,000.00, basic
    /// 3,000.00): ASSISTANCE_TO_INELIGIBLE, no assistance owed.
    #[test]
    fn example_c_explains_assistance_to_the_ineligible() {
        let c = settlement("C", "2023-03-10", "6000.00", "5000.00", "3000.00", "0.00", "500.00");
        let (lines, tests) = &explained(&[c], None)[0];
        assert_eq!(value(lines, "group"), "none");
        assert_eq!(value(lines, "assisted"), "no");
        assert_eq!(value(lines, "expected_ma"), "0.00");
        let codes: Vec<FindingCode> = tests.iter().map(|t| t.0).collect();
        assert_eq!(codes, [FindingCode::AssistanceToIneligible]);
        assert_eq!(tests[0].1.en, "no assistance group and assistance paid 500.00 > 0");
    }

    /// Examples D and E: tekun (group 1). D, first of the year: scope 50,000.00, basic 30,000.00, CII paid 9,750.00,
    /// MA paid 10,250.00: "cii = (20,000 − 5,000) × 65% = 9,750.00; ma = 10,250.00", no finding, "cap left
    /// 9,750.00". E, later that year: scope 40,000.00, basic 22,000.00, CII paid 6,000.00, MA paid 12,000.00: "cii =
    /// 18,000 × 65% = 11,700.00 (deductible used up); residual 12,000.00; ma = min(12,000, 9,750) = 9,750.00";
    /// CII_TILT_NOT_APPLIED (11,700.00 vs 6,000.00), OVER_ASSISTED (12,000.00 vs 9,750.00), ANNUAL_CAP_EXCEEDED
    /// (10,250 + 12,000 = 22,250.00 paid in the year > 20,000.00).
    #[test]
    fn examples_d_and_e_explain_the_year_running_totals() {
        let d = settlement("D", "2023-03-10", "60000.00", "50000.00", "30000.00", "9750.00", "10250.00");
        let e = settlement("E", "2023-09-10", "45000.00", "40000.00", "22000.00", "6000.00", "12000.00");
        let out = explained(&[d, e], Some(1));
        let (d_lines, d_tests) = &out[0];
        assert_eq!(value(d_lines, "after_basic"), "20000.00");
        assert_eq!(value(d_lines, "cii_deductible_left"), "5000.00");
        assert_eq!(value(d_lines, "expected_cii"), "9750.00");
        assert_eq!(value(d_lines, "residual"), "10250.00"); // 20,000 − 9,750
        assert_eq!(value(d_lines, "ma_ratio"), "100%");
        assert_eq!(value(d_lines, "expected_ma"), "10250.00");
        assert_eq!(value(d_lines, "cap_left"), "9750.00");
        assert!(d_tests.is_empty());

        let (e_lines, e_tests) = &out[1];
        assert_eq!(value(e_lines, "after_basic"), "18000.00");
        assert_eq!(value(e_lines, "cii_deductible_left"), "0.00"); // used up by D
        assert_eq!(value(e_lines, "expected_cii"), "11700.00");
        assert_eq!(value(e_lines, "residual"), "12000.00"); // 18,000 − 6,000
        assert_eq!(value(e_lines, "cap_left_before"), "9750.00");
        assert_eq!(value(e_lines, "expected_ma"), "9750.00");
        assert_eq!(value(e_lines, "paid_in_year"), "22250.00");
        let by_code = |c| &e_tests.iter().find(|(code, _)| *code == c).unwrap().1;
        assert_eq!(
            by_code(FindingCode::CiiTiltNotApplied).en,
            "critical illness owed 11700.00 − paid 6000.00 = 5700.00 > tolerance 1.00 (tilted group)"
        );
        assert_eq!(by_code(FindingCode::OverAssisted).en, "paid 12000.00 − owed 9750.00 = 2250.00 > tolerance 1.00");
        assert_eq!(
            by_code(FindingCode::AnnualCapExceeded).en,
            "assistance paid in the year 22250.00 > annual cap 20000.00"
        );
        assert_eq!(e_tests.len(), 3);
    }

    /// UNINSURED (docs/spec/coordination.md): an ACTIVE dibao enrolment on 2023-06-30 and no medical_insurance fact
    /// for 2023 breaks it; a 2023 cover (premium subsidy PARTIAL, enough for dibao) mends it.
    #[test]
    fn a_coverage_rule_lists_its_conditions_and_is_decided_by_the_rule_itself() {
        use crate::coverage::{CoverageParams, MonthlyStandards};
        use crate::fact::*;
        let dibao = Payload::Assistance(Assistance {
            program: Some(Program::Dibao),
            residence: Some(Residence::Urban),
            status: Some(AssistanceStatus::Active),
            monthly_benefit: Some(m("600.00")),
            ..Default::default()
        });
        let as_of: NaiveDate = "2023-06-30".parse().unwrap();
        let birth = "1980-01-01".parse().ok();
        let (p, st) = (CoverageParams::default(), MonthlyStandards::new());
        let facts = vec![("civil_affairs/AS-1/1".to_owned(), dibao)];
        let (lines, test) = coverage_steps("UNINSURED", &facts, birth, as_of, &p, &st);
        assert_eq!(value(&lines, "active_enrolments"), "DIBAO (civil_affairs/AS-1/1)");
        assert_eq!(value(&lines, "programs"), "DIBAO (civil_affairs/AS-1/1)");
        assert_eq!(value(&lines, "insurance"), "none");
        assert_eq!(test.value, "raised");
        let mut insured = facts.clone();
        insured.push((
            "medical_insurance/MI-1/1".to_owned(),
            Payload::MedicalInsurance(MedicalInsurance {
                scheme: Some(Scheme::Resident),
                year: Some(2023),
                premium_subsidy: Some(PremiumSubsidy::Partial),
                ..Default::default()
            }),
        ));
        let (lines, test) = coverage_steps("UNINSURED", &insured, birth, as_of, &p, &st);
        assert_eq!(value(&lines, "insurance"), "medical_insurance/MI-1/1");
        assert_eq!(test.value, "not raised");
    }
}
