//! Monthly fund reports and the early-warning workflow (docs/spec/coordination.md): the rules, no I/O.
//!
//! - **Timeliness** of a fund report: due by the 15th of its month, by the Asia/Shanghai date of the instant the
//!   hub received it (2023-07-15T16:30:00Z is 2023-07-16 in Shanghai: LATE). The *first* version decides; a
//!   correction never changes it. With no version: MISSING once `as_of` is after the month's last day, PENDING
//!   before.
//! - **Roster programs** (URBAN_DIBAO, RURAL_DIBAO, TEKUN): the expected amount is the sum of the monthly benefits
//!   of the county's assistance facts of the program that are ACTIVE and in force on the month's last day
//!   (`valid_from ≤ last day < valid_to`), in their current version.
//! - **Warnings**: RECEIVED → VISITED → DECIDED → CLOSED, one step at a time; the visit is due 3 working days and the
//!   decision 5 working days after the Asia/Shanghai date of receipt ([`WorkCalendar::due_date`]).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::{Month, shanghai_date};
use crate::workdays::{CalendarError, WorkCalendar};

use crate::fact::string_enum;

string_enum!(
    /// Programs a fund report covers (docs/spec/coordination.md).
    FundProgram {
        UrbanDibao = "URBAN_DIBAO",
        RuralDibao = "RURAL_DIBAO",
        Tekun = "TEKUN",
        TemporaryAssistance = "TEMPORARY_ASSISTANCE",
        Orphan = "ORPHAN",
        UnsupportedChild = "UNSUPPORTED_CHILD",
        PriceSubsidy = "PRICE_SUBSIDY",
        OneTimeSubsidy = "ONE_TIME_SUBSIDY",
        WinterWarmth = "WINTER_WARMTH",
        Other = "OTHER",
    }
);

/// Which assistance facts make a roster program's expected amount: stored program code and residence (if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RosterSelector {
    pub program: &'static str,
    pub residence: Option<&'static str>,
}

impl FundProgram {
    /// The roster behind a roster program; `None` for the others.
    pub fn roster(self) -> Option<RosterSelector> {
        match self {
            FundProgram::UrbanDibao => Some(RosterSelector { program: "DIBAO", residence: Some("URBAN") }),
            FundProgram::RuralDibao => Some(RosterSelector { program: "DIBAO", residence: Some("RURAL") }),
            FundProgram::Tekun => Some(RosterSelector { program: "TEKUN", residence: None }),
            _ => None,
        }
    }
}

string_enum!(
    /// Timeliness of a county's report (PENDING is ours: nothing yet, month not over).
    ReportStatus { OnTime = "ON_TIME", Late = "LATE", Missing = "MISSING", Pending = "PENDING" }
);

/// The last day (inclusive) a report for `month` is on time.
pub fn report_due(month: Month) -> NaiveDate {
    NaiveDate::from_ymd_opt(month.year(), month.month(), 15).expect("every month has a 15th")
}

/// ON_TIME if `submitted_at`'s Asia/Shanghai date is on or before the 15th of `month`, else LATE.
pub fn submission_status(month: Month, submitted_at: DateTime<Utc>) -> ReportStatus {
    if shanghai_date(submitted_at) <= report_due(month) { ReportStatus::OnTime } else { ReportStatus::Late }
}

/// Status of a county's report: by the first version's submission instant, or MISSING / PENDING without one.
pub fn report_status(month: Month, first_submitted_at: Option<DateTime<Utc>>, as_of: NaiveDate) -> ReportStatus {
    match first_submitted_at {
        Some(t) => submission_status(month, t),
        None if as_of > month.last_day() => ReportStatus::Missing,
        None => ReportStatus::Pending,
    }
}

/// The most recipients one fund report (county × month × program) may name: 10,000,000. Qingyang has 211,300
/// dibao and tekun persons in all (the letter) and Gansu about 25 million inhabitants, so a larger count is an entry
/// error; the bound also keeps every total of counts far inside `u64` (docs/money-limits.md).
pub const MAX_FUND_REPORT_RECIPIENTS: i64 = 10_000_000;

/// Check a fund report's recipient count: not negative, at most [`MAX_FUND_REPORT_RECIPIENTS`].
///
/// # Errors
/// The reason, for the field `recipients`.
pub fn check_recipients(recipients: i64) -> Result<(), String> {
    if recipients < 0 {
        return Err("must not be negative".to_owned());
    }
    if recipients > MAX_FUND_REPORT_RECIPIENTS {
        return Err(format!(
            "{recipients} exceeds the plausible maximum of {MAX_FUND_REPORT_RECIPIENTS} recipients for one county, \
             month and program"
        ));
    }
    Ok(())
}

/// The finding code of a roster mismatch.
pub const DISBURSEMENT_MISMATCH: &str = "DISBURSEMENT_MISMATCH";

string_enum!(
    /// Reason of an early warning.
    WarningReason {
        IncomeDrop = "INCOME_DROP",
        ExpenditureSpike = "EXPENDITURE_SPIKE",
        Illness = "ILLNESS",
        Disability = "DISABILITY",
        Accident = "ACCIDENT",
        SchoolingCost = "SCHOOLING_COST",
        Other = "OTHER",
    }
);

string_enum!(
    /// Workflow state of a warning.
    WarningState { Received = "RECEIVED", Visited = "VISITED", Decided = "DECIDED", Closed = "CLOSED" }
);

string_enum!(
    /// Decision on a warning.
    WarningDecision { Assisted = "ASSISTED", NotEligible = "NOT_ELIGIBLE", Referred = "REFERRED" }
);

/// Working days to the household visit.
pub const VISIT_WORKING_DAYS: u32 = 3;
/// Working days to the decision.
pub const DECISION_WORKING_DAYS: u32 = 5;

/// One workflow step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningStep {
    Visit { on: NaiveDate },
    Decision { on: NaiveDate, decision: WarningDecision, program: Option<FundProgram> },
    Close { on: NaiveDate },
}

impl WarningStep {
    /// The state a step requires and the state it leads to.
    pub fn transition(&self) -> (WarningState, WarningState) {
        match self {
            WarningStep::Visit { .. } => (WarningState::Received, WarningState::Visited),
            WarningStep::Decision { .. } => (WarningState::Visited, WarningState::Decided),
            WarningStep::Close { .. } => (WarningState::Decided, WarningState::Closed),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            WarningStep::Visit { .. } => "visit",
            WarningStep::Decision { .. } => "decision",
            WarningStep::Close { .. } => "close",
        }
    }
}

/// Why a step may not be applied now: the state it is in (FAILED_PRECONDITION).
pub fn check_transition(current: WarningState, step: &WarningStep) -> Result<WarningState, String> {
    let (from, to) = step.transition();
    if current == from {
        return Ok(to);
    }
    let why = match (current, step) {
        (WarningState::Closed, _) => "the warning is CLOSED; nothing more can be recorded".to_owned(),
        (WarningState::Received, _) => "the warning is RECEIVED: record the visit first".to_owned(),
        (WarningState::Visited, WarningStep::Visit { .. }) => {
            "the warning is VISITED: the visit is recorded".to_owned()
        }
        (WarningState::Visited, _) => "the warning is VISITED: record the decision first".to_owned(),
        (WarningState::Decided, WarningStep::Decision { .. }) => {
            "the warning is DECIDED: a decision is already recorded".to_owned()
        }
        (WarningState::Decided, _) => "the warning is DECIDED: only close is allowed".to_owned(),
    };
    Err(format!("{} not allowed: {why}", step.name()))
}

/// Deadlines and lateness of one warning as of a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarningTimes {
    pub visit_due: NaiveDate,
    pub decision_due: NaiveDate,
    /// The visit deadline reached a year whose holiday notice is not loaded: it follows the provisional
    /// Monday–Friday rule there and may move when the notice is loaded
    /// ([`WorkCalendar::add_working_days_or_provisional`]).
    pub visit_due_provisional: bool,
    /// The same for the decision deadline (implied by `visit_due_provisional`: the decision walk goes further).
    pub decision_due_provisional: bool,
    pub overdue: bool,
    pub visit_days_late: i64,
    pub decision_days_late: i64,
    /// A days-late figure counted days of a year whose notice is not loaded (provisional rule).
    pub days_late_provisional: bool,
    pub visited_on_time: bool,
    pub decided_on_time: bool,
}

/// A warning's two deadlines (3 and 5 working days after the Asia/Shanghai date of receipt), each flagged when it
/// was computed under the provisional rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    pub visit_due: crate::workdays::Reckoned<NaiveDate>,
    pub decision_due: crate::workdays::Reckoned<NaiveDate>,
}

/// The deadlines of a warning received at `received_at`. Never refuses a year whose notice is not loaded (issue 15).
///
/// # Errors
/// [`CalendarError::DateOutOfRange`] only (past the end of chrono's range).
pub fn warning_deadlines(cal: &WorkCalendar, received_at: DateTime<Utc>) -> Result<Deadlines, CalendarError> {
    Ok(Deadlines {
        visit_due: cal.due_date_or_provisional(received_at, VISIT_WORKING_DAYS)?,
        decision_due: cal.due_date_or_provisional(received_at, DECISION_WORKING_DAYS)?,
    })
}

/// Compute deadlines (from the Asia/Shanghai date of `received_at`) and, on `as_of`, which step is overdue and by
/// how many working days ([`WorkCalendar::working_days_between_or_provisional`] from the due date to `as_of`). A step
/// is overdue when it is not done, the warning is not closed, and `as_of` is after its due date. Days of a year
/// whose notice is not loaded follow the provisional rule and set the `*_provisional` flags; never an error for them.
///
/// # Errors
/// [`CalendarError::DateOutOfRange`] only.
pub fn warning_times(
    cal: &WorkCalendar,
    received_at: DateTime<Utc>,
    state: WarningState,
    visited_on: Option<NaiveDate>,
    decided_on: Option<NaiveDate>,
    as_of: NaiveDate,
) -> Result<WarningTimes, CalendarError> {
    let d = warning_deadlines(cal, received_at)?;
    let (visit_due, decision_due) = (d.visit_due.value, d.decision_due.value);
    let open = state != WarningState::Closed;
    let visit_late = open && visited_on.is_none() && as_of > visit_due;
    let decision_late = open && decided_on.is_none() && as_of > decision_due;
    let late = |due: NaiveDate, is_late: bool| -> Result<(i64, bool), CalendarError> {
        if !is_late {
            return Ok((0, false));
        }
        let r = cal.working_days_between_or_provisional(due, as_of)?;
        Ok((r.value, r.provisional))
    };
    let (visit_days_late, visit_p) = late(visit_due, visit_late)?;
    let (decision_days_late, decision_p) = late(decision_due, decision_late)?;
    Ok(WarningTimes {
        visit_due,
        decision_due,
        visit_due_provisional: d.visit_due.provisional,
        decision_due_provisional: d.decision_due.provisional,
        overdue: visit_late || decision_late,
        visit_days_late,
        decision_days_late,
        days_late_provisional: visit_p || decision_p,
        visited_on_time: visited_on.is_some_and(|d| d <= visit_due),
        decided_on_time: decided_on.is_some_and(|d| d <= decision_due),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn shanghai_date_decides_timeliness() {
        let m: Month = "2023-07".parse().unwrap();
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(submission_status(m, t("2023-07-15T15:59:59Z")), ReportStatus::OnTime);
        assert_eq!(submission_status(m, t("2023-07-15T16:30:00Z")), ReportStatus::Late);
        assert_eq!(report_status(m, None, d("2023-07-31")), ReportStatus::Pending);
        assert_eq!(report_status(m, None, d("2023-08-01")), ReportStatus::Missing);
    }

    #[test]
    fn transitions() {
        let v = WarningStep::Visit { on: d("2023-10-01") };
        let dec = WarningStep::Decision { on: d("2023-10-02"), decision: WarningDecision::NotEligible, program: None };
        let c = WarningStep::Close { on: d("2023-10-03") };
        assert_eq!(check_transition(WarningState::Received, &v), Ok(WarningState::Visited));
        assert!(check_transition(WarningState::Received, &dec).unwrap_err().contains("RECEIVED"));
        assert!(check_transition(WarningState::Decided, &dec).unwrap_err().contains("DECIDED"));
        assert!(check_transition(WarningState::Closed, &v).unwrap_err().contains("CLOSED"));
        assert_eq!(check_transition(WarningState::Decided, &c), Ok(WarningState::Closed));
    }

    #[test]
    fn worked_deadlines() {
        let cal = WorkCalendar::builtin();
        let at = "2023-09-28T02:00:00Z".parse().unwrap();
        let w = warning_times(&cal, at, WarningState::Received, None, None, d("2023-10-12")).unwrap();
        assert_eq!((w.visit_due, w.decision_due), (d("2023-10-09"), d("2023-10-11")));
        assert!(w.overdue);
        assert_eq!((w.visit_days_late, w.decision_days_late), (3, 1));
    }

    #[test]
    fn deadlines_past_the_loaded_years_are_provisional_not_refused() {
        // Issue 15, item 5: received 2026-12-28T02:00:00Z = Mon 2026-12-28 10:00 in Shanghai; 2022–2026 loaded.
        // Visit (3): Tue 12-29, Wed 12-30, Thu 12-31 → 2026-12-31, inside 2026.
        // Decision (5): … 12-31, Fri 2027-01-01, Mon 2027-01-04 (Mon–Fri rule in 2027) → 2027-01-04, provisional.
        let cal = WorkCalendar::builtin();
        let at = "2026-12-28T02:00:00Z".parse().unwrap();
        let due = warning_deadlines(&cal, at).unwrap();
        assert_eq!((due.visit_due.value, due.visit_due.provisional), (d("2026-12-31"), false));
        assert_eq!((due.decision_due.value, due.decision_due.provisional), (d("2027-01-04"), true));
        // On 2027-01-06 (Wed), undecided: late by Tue 01-05 and Wed 01-06 = 2 working days, provisional.
        let w = warning_times(&cal, at, WarningState::Visited, Some(d("2026-12-30")), None, d("2027-01-06")).unwrap();
        assert!(w.overdue && w.decision_due_provisional && !w.visit_due_provisional && w.days_late_provisional);
        assert_eq!((w.visit_days_late, w.decision_days_late), (0, 2));
        // Received on Mon 2026-12-21: 5 working days end on Mon 2026-12-28, nothing provisional.
        let at = "2026-12-21T02:00:00Z".parse().unwrap();
        let due = warning_deadlines(&cal, at).unwrap();
        assert_eq!((due.visit_due.value, due.decision_due.value), (d("2026-12-24"), d("2026-12-28")));
        assert!(!due.visit_due.provisional && !due.decision_due.provisional);
    }
}
