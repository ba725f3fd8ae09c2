//! The quarterly summary (调度汇总) and the monthly report (每月报告) of docs/spec/coordination.md, as plain data.
//!
//! Computed only from a frozen snapshot and the previous one (`hub::snapshot`); rendered to Markdown, CSV, JSON, XLSX
//! and HTML by `report::*`; served by `Coordination.GetQuarterlySummary` / `GetMonthlyReport`. Aggregates only: no
//! person key or ID number ever appears here (docs/spec/security.md). Small cells are suppressed as
//! [`Count::Suppressed`] where the rule requires it (HIV_AFFECTED_CHILD counts under 5, and never below county level).
//!
//! Money is [`Money`] (yuan, serialized as a decimal string "1234.56"); percentages are whole percent (`i64`, rounded
//! half away from zero) or `f64` shares for charts only; dates are `YYYY-MM-DD` (Asia/Shanghai); instants UTC.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::money::Money;

pub mod campaigns;
pub use campaigns::{CampaignCounty, CampaignMonth, CampaignSection, IndexComparison, QuarterCampaign};

/// A count that may be suppressed to protect a small group (HIV_AFFECTED_CHILD under 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Count {
    Value(u64),
    /// Fewer than 5 (the value is withheld).
    Suppressed,
}

impl Count {
    /// The value, or `None` if suppressed.
    pub fn value(self) -> Option<u64> {
        match self {
            Count::Value(v) => Some(v),
            Count::Suppressed => None,
        }
    }
}

/// The whole quarterly summary, in section order (docs/spec/coordination.md "Quarterly summary").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuarterlySummary {
    /// `YYYYQn`, e.g. "2023Q2".
    pub quarter: String,
    /// The quarter's last day (business time).
    pub as_of: NaiveDate,
    /// The instant the snapshot was taken: facts recorded after it are not in it.
    pub knowledge_cutoff: DateTime<Utc>,
    /// The previous snapshot's quarter, if any (the change and late-correction sections compare against it).
    pub previous_quarter: Option<String>,
    /// Section 1.
    pub headline: Headline,
    /// Section 2: persons, households and monthly benefits by county × program (county level only).
    pub by_county_program: Vec<CountyProgramRow>,
    /// Section 3: change against the previous quarter, by program (city level), and the trend points for the chart.
    pub change: Vec<ProgramChange>,
    /// Section 4: cross-department coverage findings by rule, agency to act and county.
    pub coverage: Vec<CoverageRow>,
    /// Section 5: the medical three-tier results of the quarter.
    pub medical: MedicalSection,
    /// Section 6: fund reports of the quarter's three months.
    pub fund_reports: FundReportSection,
    /// Section 7: the early-warning workflow.
    pub warnings: WarningSection,
    /// Section 8: late corrections — facts recorded after the previous snapshot's cutoff that changed the previous
    /// quarter, per agency and payload kind.
    pub late_corrections: Vec<LateCorrection>,
    /// Section 9: assistance standards of the quarter's year against the previous year (reference data).
    pub standards: Vec<StandardChange>,
    /// Section 10: the snapshot's hashes.
    pub snapshot: SnapshotHashes,
    /// Section 10: the partner agencies that countersigned the snapshot, and when (docs/countersign.md), in agency
    /// order: each agency's newest signature as the hub kept it (checked when submitted; `doudi snapshot verify` and
    /// VerifySnapshot check them again and name the agencies that have not signed). Absent when none has signed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub countersignatures: Vec<Countersigned>,
    /// Section 11: per agency, what became of the previous quarter's coverage findings that name it (docs/findings.md
    /// "The summary's section per agency"): answered as of this snapshot's knowledge cutoff, confirmed fixed when this
    /// snapshot no longer raises them. Absent without a previous snapshot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings_by_agency: Vec<AgencyFindings>,
    /// Section 11, medical: per agency, what became of the medical findings of the settlements settled in the
    /// previous quarter (known at its cutoff): answers as of this snapshot's cutoff, "still open" = not resolved by a
    /// recheck by then (docs/findings.md). Absent without a previous snapshot or such findings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub medical_findings_by_agency: Vec<AgencyFindings>,
    /// Section 12: the subsidy campaigns of the quarter (docs/subsidies.md "In the quarterly summary"), as frozen in
    /// the snapshot's `campaigns` section. Absent when the quarter has no campaign month (no subsidy month the hub
    /// could decide, no fixed-amount campaign), so such summaries, and every one frozen before, read as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaigns: Option<CampaignSection>,
}

/// One agency's line of section 11: the previous quarter's coverage findings naming it, by what became of them.
/// Every count is of findings (one per person and rule); `findings` = `fixed + disputed + in_progress + unanswered`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgencyFindings {
    /// The agency to act, e.g. "medical_insurance".
    pub agency: String,
    /// The quarter the findings were raised in (the previous snapshot), e.g. "2023Q2".
    pub raised_in: String,
    /// Coverage findings of that quarter naming the agency.
    pub findings: u64,
    /// Whose latest answer at this snapshot's cutoff is FIXED (the hub checked each claim when it was made).
    pub fixed: u64,
    /// Of `fixed`, those this snapshot no longer raises (the same rule for the same person): confirmed fixed.
    pub confirmed_fixed: u64,
    /// Whose latest answer is DISPUTED.
    pub disputed: u64,
    /// Whose latest answer is IN_PROGRESS.
    pub in_progress: u64,
    /// Without an answer by this snapshot's cutoff.
    pub unanswered: u64,
    /// Raised again by this snapshot, whatever their answer: still open.
    pub still_open: u64,
    /// Median whole days from the previous snapshot's cutoff (when the finding was raised) to the FIXED answer, over
    /// the `fixed` findings (the lower median for an even count); absent when none is fixed.
    pub median_days_to_fix: Option<i64>,
}

/// The latest answer to each coverage finding of a quarter, by (rule code, person key): its state and when it was
/// given.
pub type LatestAnswers = std::collections::HashMap<(String, [u8; 32]), (super::answer::AnswerState, DateTime<Utc>)>;

/// Section 11 ([`AgencyFindings`], by agency in byte order) from the previous snapshot's coverage rows (`raised`,
/// its quarter `raised_in`, its cutoff `raised_at`), the keys (code, person key) this snapshot raises (`raised_again`),
/// and the latest answer to each previous finding as of this snapshot's cutoff (`answers`: code, person key, state,
/// answered at). Pure.
pub fn agency_findings(
    raised_in: &str,
    raised_at: DateTime<Utc>,
    raised: &[super::snapshot::CoverageRow],
    raised_again: &std::collections::HashSet<(String, [u8; 32])>,
    answers: &LatestAnswers,
) -> Vec<AgencyFindings> {
    tally_by_agency(
        raised_in,
        raised.iter().map(|r| {
            let key = (r.code.clone(), r.person_key);
            (r.agency_to_act.as_str(), raised_at, raised_again.contains(&key), answers.get(&key).copied())
        }),
    )
}

/// One previous finding for [`medical_agency_findings`]: its agency to act, when it was raised (`detected_at`),
/// whether it is still open at this snapshot's cutoff, and its latest answer then (state, answered at).
pub type MedicalOutcome<'a> = (&'a str, DateTime<Utc>, bool, Option<(super::answer::AnswerState, DateTime<Utc>)>);

/// Section 11's medical lines: the medical findings of the settlements settled in the previous quarter (`raised_in`)
/// known at its cutoff, by agency to act; "still open" = open at this snapshot's cutoff (not resolved by a recheck
/// by then), "confirmed fixed" = FIXED and no longer open; days to fix from each finding's `detected_at`. Pure.
pub fn medical_agency_findings<'a>(
    raised_in: &str,
    findings: impl IntoIterator<Item = MedicalOutcome<'a>>,
) -> Vec<AgencyFindings> {
    tally_by_agency(raised_in, findings)
}

/// Count (agency, raised at, still open, latest answer) per agency, in byte order of the agency.
fn tally_by_agency<'a>(raised_in: &str, items: impl IntoIterator<Item = MedicalOutcome<'a>>) -> Vec<AgencyFindings> {
    use super::answer::AnswerState;
    let mut by: std::collections::BTreeMap<&str, (AgencyFindings, Vec<i64>)> = std::collections::BTreeMap::new();
    for (agency, raised_at, again, answer) in items {
        let (a, days) = by.entry(agency).or_insert_with(|| {
            (
                AgencyFindings {
                    agency: agency.to_owned(),
                    raised_in: raised_in.to_owned(),
                    findings: 0,
                    fixed: 0,
                    confirmed_fixed: 0,
                    disputed: 0,
                    in_progress: 0,
                    unanswered: 0,
                    still_open: 0,
                    median_days_to_fix: None,
                },
                Vec::new(),
            )
        });
        a.findings += 1;
        a.still_open += u64::from(again);
        match answer {
            None => a.unanswered += 1,
            Some((AnswerState::InProgress, _)) => a.in_progress += 1,
            Some((AnswerState::Disputed, _)) => a.disputed += 1,
            Some((AnswerState::Fixed, at)) => {
                a.fixed += 1;
                a.confirmed_fixed += u64::from(!again);
                days.push((at - raised_at).num_days());
            }
        }
    }
    by.into_values()
        .map(|(mut a, mut days)| {
            days.sort_unstable();
            a.median_days_to_fix = (!days.is_empty()).then(|| days[(days.len() - 1) / 2]);
            a
        })
        .collect()
}

/// One agency's countersignature of the quarter, as kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Countersigned {
    /// The agency's code, e.g. "education".
    pub agency: String,
    /// The signing time as signed.
    pub signed_at: DateTime<Utc>,
    /// 1 for its first signature of the quarter; each re-sign adds one.
    pub version: i64,
}

/// Headline counts (city level).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Headline {
    /// Dibao + tekun persons with an ACTIVE enrolment on `as_of` (the letter's headline figure).
    pub dibao_tekun_persons: u64,
    pub dibao_persons: u64,
    pub tekun_persons: u64,
    /// ACTIVE enrolments of every program on `as_of` (a person in two programs counts twice).
    pub all_persons: u64,
    /// Distinct households (`household_id`) of dibao.
    pub dibao_households: u64,
    /// Sum of the monthly benefits of dibao and tekun on `as_of`, yuan a month.
    pub monthly_benefit_total: Money,
    /// Open coverage findings at the snapshot.
    pub coverage_findings: u64,
    /// Medical findings of settlements settled in the quarter, open at the cutoff.
    pub medical_findings: u64,
    /// Warnings received in the quarter.
    pub warnings_received: u64,
    /// Fund reports of the quarter: county × month × program cells ON_TIME, LATE, MISSING.
    pub fund_reports_on_time: u64,
    pub fund_reports_late: u64,
    pub fund_reports_missing: u64,
}

/// One county × program cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountyProgramRow {
    /// Six-digit county code.
    pub county_code: String,
    /// Chinese name, e.g. "环县".
    pub county_name: String,
    /// Program code, e.g. "DIBAO".
    pub program: String,
    pub persons: Count,
    pub households: Count,
    /// Sum of monthly benefits, yuan a month (0.00 for programs without a benefit in the hub).
    pub monthly_benefit: Money,
}

/// One program's change against the previous quarter (city level).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramChange {
    pub program: String,
    /// Persons at the previous snapshot (`None` without one).
    pub previous: Option<Count>,
    pub current: Count,
    /// Persons who entered (active now, not at the previous snapshot) and exited (the reverse).
    pub entries: Count,
    pub exits: Count,
}

/// Coverage findings of one rule for one county.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverageRow {
    /// Rule code, e.g. "UNINSURED".
    pub code: String,
    /// The agency that must act, e.g. "medical_insurance".
    pub agency_to_act: String,
    pub county_code: String,
    pub count: u64,
}

/// Totals of the three tiers, yuan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Tiers {
    pub basic: Money,
    pub critical_illness: Money,
    pub medical_assistance: Money,
}

/// Medical three-tier results of settlements settled in the quarter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MedicalSection {
    pub settlements: u64,
    /// Distinct persons with a settlement.
    pub persons: u64,
    /// Persons who received medical assistance (paid > 0).
    pub persons_assisted: u64,
    pub total_cost: Money,
    pub out_of_pocket: Money,
    /// Paid by each tier.
    pub paid: Tiers,
    /// Findings open at the cutoff, by code (every code of docs/spec/medical.md, 0 where none).
    pub findings_by_code: Vec<CodeCount>,
    /// The same by county (codes with a count only).
    pub findings_by_county: Vec<CountyCodeCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeCount {
    pub code: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountyCodeCount {
    pub county_code: String,
    pub code: String,
    pub count: u64,
}

/// Fund reports of the quarter's months.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FundReportSection {
    /// One row per month × county × program reported or expected (the latest version known at the cutoff).
    pub rows: Vec<FundReportRow>,
    /// Totals per month × program over the counties (amount and recipients of the latest versions).
    pub totals: Vec<FundReportTotal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FundReportRow {
    /// `YYYY-MM`.
    pub month: String,
    pub county_code: String,
    /// FundProgram code, e.g. "RURAL_DIBAO".
    pub program: String,
    /// "ON_TIME", "LATE" or "MISSING".
    pub status: String,
    /// Amount of the latest version, yuan (`None` when missing).
    pub amount: Option<Money>,
    pub recipients: Option<u64>,
    /// Roster programs: the expected amount; others `None`.
    pub expected: Option<Money>,
    /// "DISBURSEMENT_MISMATCH" or empty.
    pub finding: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FundReportTotal {
    pub month: String,
    pub program: String,
    pub amount: Money,
    pub recipients: u64,
    /// Counties that reported.
    pub counties: u64,
}

/// The early-warning workflow for warnings received in the quarter, as of `as_of`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarningSection {
    pub received: u64,
    pub visited_within_3_working_days: u64,
    pub decided_within_5_working_days: u64,
    /// Open and past a deadline on `as_of`.
    pub overdue: u64,
    pub assisted: u64,
    pub closed: u64,
    /// Closed / received, whole percent (`None` when nothing was received).
    pub clearance_rate_pct: Option<i64>,
    /// Received per county.
    pub by_county: Vec<CountyCount>,
    /// Of `received`, the warnings whose deadlines or lateness were computed under the provisional Monday–Friday
    /// rule because a year's holiday notice was not loaded (issue 15). Absent from the JSON when 0, so sections
    /// frozen before this field existed hash and read as before.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub provisional: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountyCount {
    pub county_code: String,
    pub count: u64,
}

/// Facts recorded after the previous snapshot's cutoff that changed the previous quarter's statuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LateCorrection {
    pub agency: String,
    /// Payload kind, e.g. "assistance".
    pub kind: String,
    /// Fact versions.
    pub facts: u64,
    /// Distinct persons.
    pub persons: u64,
}

/// One standard item, this year against last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StandardChange {
    /// Item code, e.g. "URBAN_DIBAO_STANDARD".
    pub item: String,
    /// Name as in the source, e.g. "城市低保标准".
    pub name: String,
    pub previous_year: i32,
    pub previous: Option<Money>,
    pub current_year: i32,
    pub current: Money,
    /// (current − previous) / previous in whole percent, half away from zero (the letter: +3%, +4%).
    pub change_pct: Option<i64>,
}

/// The snapshot behind the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotHashes {
    /// Hex SHA-256 of the snapshot's canonical content.
    pub content_hash: String,
    /// Hex of the previous snapshot's content hash; empty for the first.
    pub previous_hash: String,
}

/// The monthly report to the leading group (docs/spec/coordination.md "Monthly report"): aggregates only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonthlyReport {
    /// `YYYY-MM`.
    pub month: String,
    /// The month's last day.
    pub as_of: NaiveDate,
    /// Persons by county × program at month end.
    pub by_county_program: Vec<CountyProgramRow>,
    /// Fund reports of the month.
    pub fund_reports: FundReportSection,
    /// Warnings received in the month.
    pub warnings: WarningSection,
    /// Medical findings of settlements settled in the month, by code.
    pub medical_findings_by_code: Vec<CodeCount>,
    /// Subsidy campaigns paid for the month (docs/subsidies.md): the price-subsidy linkage when its index is stored,
    /// and fixed-amount campaigns of the month, by campaign and county. Absent when there is none (so reports of
    /// months without campaigns read as before).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub campaigns: Vec<CampaignRow>,
}

/// One campaign in one county for one month (docs/subsidies.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignRow {
    /// The linkage rule version (e.g. `621000-2022-0831`) or the fixed-amount campaign's code.
    pub campaign: String,
    /// The fund-report program it is reported under (PRICE_SUBSIDY, ONE_TIME_SUBSIDY, WINTER_WARMTH, OTHER).
    pub program: String,
    /// Whether the month triggered (always for a fixed-amount campaign).
    pub triggered: bool,
    /// GB/T 2260 county code.
    pub county_code: String,
    /// Persons owed.
    pub persons: u64,
    pub amount_owed: Money,
    /// The county's latest report of the program for the month; `None` if none.
    pub amount_reported: Option<Money>,
    /// MISSING, MISMATCH or empty.
    pub finding: String,
}

/// Whole percent of `part / whole`, half away from zero; `None` if `whole` is 0.
pub fn percent(part: impl Into<i128>, whole: impl Into<i128>) -> Option<i64> {
    let (part, whole): (i128, i128) = (part.into(), whole.into());
    if whole == 0 {
        return None;
    }
    let num = part.checked_mul(100)?;
    let den = whole;
    let q = num / den;
    let r = num % den;
    let adj = if (r.abs() * 2) >= den.abs() { num.signum() * den.signum() } else { 0 };
    i64::try_from(q + adj).ok()
}

/// Whole-percent change from `previous` to `current`, half away from zero.
pub fn change_pct(previous: Money, current: Money) -> Option<i64> {
    percent(current.to_fen() - previous.to_fen(), previous.to_fen())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_letters_changes_round_to_whole_percent() {
        // docs/domain/qingyang-figures.md §3: urban dibao standard 680 → 700 yuan (+2.94% → +3%); average urban subsidy
        // 584 → 607 (+3.94% → +4%).
        let m = |s: &str| Money::parse(s).unwrap();
        assert_eq!(change_pct(m("680"), m("700")), Some(3));
        assert_eq!(change_pct(m("584"), m("607")), Some(4));
        assert_eq!(percent(1, 2), Some(50));
        assert_eq!(percent(1, 8), Some(13), "12.5 rounds half away from zero");
        assert_eq!(percent(-1, 8), Some(-13));
        assert_eq!(percent(3, 0), None);
    }

    /// Section 11 by hand: 2023Q2 raised five findings (cutoff 2023-07-05T00:00Z): medical_insurance UNINSURED for
    /// persons 1, 2, 3 and PREMIUM_SUBSIDY_MISMATCH for 4; education STUDENT_AID_MISSING for 5. Answers at 2023Q3's
    /// cutoff: 1 FIXED on 07-15 (10 days), 2 FIXED on 08-04 (30 days), 3 DISPUTED, 4 IN_PROGRESS; 5 unanswered.
    /// 2023Q3 raises 2 (fixed but raised again) and 4 again. medical_insurance: 4 findings, fixed 2, confirmed 1 (only
    /// person 1 is gone), disputed 1, in progress 1, unanswered 0, still open 2 (persons 2 and 4), median of [10, 30]
    /// = the lower, 10. education: 1 finding, unanswered, not raised again (still open 0), no median.
    #[test]
    fn findings_by_agency_counts_what_became_of_the_previous_quarter() {
        use crate::answer::AnswerState;
        use crate::snapshot::CoverageRow;
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let row = |code: &str, p: u8, agency: &str| CoverageRow {
            code: code.into(),
            person_key: [p; 32],
            agency_to_act: agency.into(),
            county_code: "621022".into(),
        };
        let raised = [
            row("UNINSURED", 1, "medical_insurance"),
            row("UNINSURED", 2, "medical_insurance"),
            row("UNINSURED", 3, "medical_insurance"),
            row("PREMIUM_SUBSIDY_MISMATCH", 4, "medical_insurance"),
            row("STUDENT_AID_MISSING", 5, "education"),
        ];
        let again: std::collections::HashSet<(String, [u8; 32])> =
            [("UNINSURED".to_owned(), [2; 32]), ("PREMIUM_SUBSIDY_MISMATCH".to_owned(), [4; 32])].into();
        let answers: LatestAnswers = [
            (("UNINSURED".to_owned(), [1; 32]), (AnswerState::Fixed, t("2023-07-15T00:00:00Z"))),
            (("UNINSURED".to_owned(), [2; 32]), (AnswerState::Fixed, t("2023-08-04T00:00:00Z"))),
            (("UNINSURED".to_owned(), [3; 32]), (AnswerState::Disputed, t("2023-07-06T00:00:00Z"))),
            (("PREMIUM_SUBSIDY_MISMATCH".to_owned(), [4; 32]), (AnswerState::InProgress, t("2023-07-06T00:00:00Z"))),
        ]
        .into();
        let out = agency_findings("2023Q2", t("2023-07-05T00:00:00Z"), &raised, &again, &answers);
        assert_eq!(
            out,
            [
                AgencyFindings {
                    agency: "education".into(),
                    raised_in: "2023Q2".into(),
                    findings: 1,
                    fixed: 0,
                    confirmed_fixed: 0,
                    disputed: 0,
                    in_progress: 0,
                    unanswered: 1,
                    still_open: 0,
                    median_days_to_fix: None,
                },
                AgencyFindings {
                    agency: "medical_insurance".into(),
                    raised_in: "2023Q2".into(),
                    findings: 4,
                    fixed: 2,
                    confirmed_fixed: 1,
                    disputed: 1,
                    in_progress: 1,
                    unanswered: 0,
                    still_open: 2,
                    median_days_to_fix: Some(10),
                },
            ]
        );
    }
}
