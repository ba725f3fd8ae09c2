//! `doudi.v1.Coordination` handlers (docs/spec/api.md, docs/spec/coordination.md): fund reports and early warnings.

use chrono::{DateTime, NaiveDate, Utc};
use tonic::{Request, Response, Status};

use super::auth::Authenticator;
use super::convert::{date_in, id_number_in, timestamp};
use super::pb::{self, coordination_server::Coordination};
use super::status::{Refusal, invalid, invalid_field};
use crate::domain::calendar::Month;
use crate::domain::coordination::{
    FundProgram, ReportStatus, WarningDecision, WarningReason, WarningState, WarningStep, submission_status,
};
use crate::domain::division::{DivisionCode, division_name};
use crate::domain::fact::FieldError;
use crate::domain::money::Money;
use crate::hub::{FundReportInput, FundReportLine, Hub, WarningFilter, WarningInput, WarningView};
use crate::hub::{StoredFundReport, WarningInsert};

pub struct CoordinationService {
    pub hub: Hub,
    pub auth: Authenticator,
}

const PUSH_WARNINGS: &str = "/doudi.v1.Coordination/PushWarnings";
const RECORD_OUTCOME: &str = "/doudi.v1.Coordination/RecordWarningOutcome";
const LIST_WARNINGS: &str = "/doudi.v1.Coordination/ListWarnings";
const CREATE_SNAPSHOT: &str = "/doudi.v1.Coordination/CreateSnapshot";
const SIGN_SNAPSHOT: &str = "/doudi.v1.Coordination/SignSnapshot";
const LIST_COVERAGE: &str = "/doudi.v1.Coordination/ListCoverageFindings";

/// Longest accepted `warning_id`.
pub const MAX_WARNING_ID_LEN: usize = 64;

macro_rules! enum_map {
    ($fn_in:ident, $fn_out:ident, $pb:ty, $dom:ty, { $($p:ident <=> $d:ident),+ $(,)? }) => {
        pub fn $fn_in(v: i32, field: &str) -> Result<Option<$dom>, FieldError> {
            if v == 0 {
                return Ok(None);
            }
            match <$pb>::try_from(v) {
                $(Ok(<$pb>::$p) => Ok(Some(<$dom>::$d)),)+
                _ => Err(FieldError::new(field, format!("unknown enum value {v}"))),
            }
        }
        pub fn $fn_out(d: Option<$dom>) -> i32 {
            match d { None => 0, $(Some(<$dom>::$d) => <$pb>::$p as i32),+ }
        }
    };
}

enum_map!(fund_program_in, fund_program_out, pb::FundProgram, FundProgram, {
    UrbanDibao <=> UrbanDibao, RuralDibao <=> RuralDibao, Tekun <=> Tekun,
    TemporaryAssistance <=> TemporaryAssistance, Orphan <=> Orphan, UnsupportedChild <=> UnsupportedChild,
    PriceSubsidy <=> PriceSubsidy, OneTimeSubsidy <=> OneTimeSubsidy, WinterWarmth <=> WinterWarmth, Other <=> Other,
});
enum_map!(reason_in, reason_out, pb::WarningReason, WarningReason, {
    IncomeDrop <=> IncomeDrop, ExpenditureSpike <=> ExpenditureSpike, Illness <=> Illness,
    Disability <=> Disability, Accident <=> Accident, SchoolingCost <=> SchoolingCost, Other <=> Other,
});
enum_map!(decision_in, decision_out, pb::WarningDecision, WarningDecision, {
    Assisted <=> Assisted, NotEligible <=> NotEligible, Referred <=> Referred,
});
enum_map!(state_in, state_out, pb::WarningState, WarningState, {
    Received <=> Received, Visited <=> Visited, Decided <=> Decided, Closed <=> Closed,
});
enum_map!(report_status_in, report_status_out, pb::ReportStatus, ReportStatus, {
    OnTime <=> OnTime, Late <=> Late, Missing <=> Missing, Pending <=> Pending,
});

fn required_date(s: &str, field: &str) -> Result<NaiveDate, Status> {
    if s.is_empty() {
        return Err(invalid(field, "is required (YYYY-MM-DD)"));
    }
    date_in(s, field, NaiveDate::MIN).map_err(|e| invalid(&e.field, e.reason))
}

fn month_in(s: &str, field: &str) -> Result<Month, Status> {
    if s.is_empty() {
        return Err(invalid(field, "is required (YYYY-MM)"));
    }
    let m: Month = s.parse().map_err(|e| invalid(field, format!("{e} (expected YYYY-MM)")))?;
    if !(1900..=2099).contains(&m.year()) {
        return Err(invalid(field, format!("{m} is outside 1900-01 to 2099-12")));
    }
    Ok(m)
}

fn county_in(s: &str, field: &str) -> Result<DivisionCode, Status> {
    if s.is_empty() {
        return Err(invalid(field, "is required (a county code, e.g. 621022)"));
    }
    DivisionCode::parse_county(s).map_err(|e| invalid(field, e))
}

fn text_id(s: &str, field: &str) -> Result<String, FieldError> {
    if s.is_empty() {
        return Err(FieldError::new(field, "is required"));
    }
    if s.chars().count() > MAX_WARNING_ID_LEN {
        return Err(FieldError::new(field, format!("is longer than {MAX_WARNING_ID_LEN} characters")));
    }
    if s.chars().any(char::is_control) || s.trim().is_empty() {
        return Err(FieldError::new(field, "contains a control character or is blank"));
    }
    Ok(s.to_owned())
}

fn instant_in(t: Option<&prost_types::Timestamp>, field: &str) -> Result<DateTime<Utc>, FieldError> {
    let bad = |reason: &str| FieldError::new(field, reason);
    let t = t.ok_or_else(|| bad("is required"))?;
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err(bad("nanos out of range"));
    }
    let dt = DateTime::from_timestamp(t.seconds, t.nanos as u32).ok_or_else(|| bad("is out of range"))?;
    let min = DateTime::parse_from_rfc3339("1900-01-01T00:00:00Z").expect("valid").to_utc();
    let max = DateTime::parse_from_rfc3339("2100-01-01T00:00:00Z").expect("valid").to_utc();
    if dt < min || dt >= max {
        return Err(bad("is outside 1900 to 2099"));
    }
    Ok(dt)
}

/// One wire warning → input, or every bad field of it (paths `warnings[i].…`).
fn warning_in(i: usize, w: &pb::WarningIn) -> Result<WarningInput, Vec<FieldError>> {
    let f = |name: &str| format!("warnings[{i}].{name}");
    let division = if w.division_code.is_empty() {
        Err(FieldError::new(f("division_code"), "is required"))
    } else {
        w.division_code.parse::<DivisionCode>().map_err(|e| FieldError::new(f("division_code"), e.to_string()))
    };
    let warning_id = text_id(&w.warning_id, &f("warning_id"));
    let id_number = id_number_in(&w.id_number, &f("id_number"));
    let reason =
        reason_in(w.reason, &f("reason")).and_then(|r| r.ok_or_else(|| FieldError::new(f("reason"), "is required")));
    let received_at = instant_in(w.received_at.as_ref(), &f("received_at"));
    match (warning_id, id_number, division, reason, received_at) {
        (Ok(warning_id), Ok(id_number), Ok(division), Ok(reason), Ok(received_at)) => {
            Ok(WarningInput { warning_id, id_number, division, reason, received_at })
        }
        (a, b, c, d, e) => Err([a.err(), b.err(), c.err(), d.err(), e.err()].into_iter().flatten().collect()),
    }
}

fn report_out(r: &StoredFundReport) -> pb::FundReport {
    let status = r.month.parse::<Month>().ok().map(|m| submission_status(m, r.submitted_at));
    pb::FundReport {
        county_code: r.county_code.clone(),
        month: r.month.clone(),
        program: fund_program_out(FundProgram::parse(&r.program)),
        version: r.version,
        disbursed_on: r.disbursed_on.clone(),
        amount: r.amount.clone(),
        recipients: r.recipients,
        submitted_at: Some(timestamp(r.submitted_at)),
        submitted_by: r.submitted_by.clone(),
        status: report_status_out(status),
    }
}

fn row_out(l: &FundReportLine) -> pb::FundReportRow {
    pb::FundReportRow {
        county_code: l.county_code.clone(),
        county_name: division_name(&l.county_code).unwrap_or_default().to_owned(),
        program: fund_program_out(Some(l.program)),
        status: report_status_out(Some(l.status)),
        latest: l.latest.as_ref().map(report_out),
        expected_amount: l.expected.map(|m| m.to_string()).unwrap_or_default(),
        finding: l.finding.clone(),
        history: l.history.iter().map(report_out).collect(),
    }
}

fn opt_date(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

fn warning_out(v: &WarningView) -> pb::Warning {
    let w = &v.warning;
    pb::Warning {
        warning_id: w.warning_id.clone(),
        id_number: v.id_number.as_str().to_owned(),
        division_code: w.division_code.clone(),
        reason: reason_out(WarningReason::parse(&w.reason)),
        received_at: Some(timestamp(w.received_at)),
        state: state_out(WarningState::parse(&w.state)),
        visit_due: v.times.visit_due.to_string(),
        decision_due: v.times.decision_due.to_string(),
        visited_on: opt_date(&w.visited_on),
        decided_on: opt_date(&w.decided_on),
        decision: decision_out(w.decision.as_deref().and_then(WarningDecision::parse)),
        decided_program: fund_program_out(w.decided_program.as_deref().and_then(FundProgram::parse)),
        closed_on: opt_date(&w.closed_on),
        overdue: v.times.overdue,
        visit_days_late: v.times.visit_days_late,
        decision_days_late: v.times.decision_days_late,
        visited_on_time: v.times.visited_on_time,
        decided_on_time: v.times.decided_on_time,
        as_of: v.as_of.to_string(),
        visit_due_provisional: v.times.visit_due_provisional,
        decision_due_provisional: v.times.decision_due_provisional,
        days_late_provisional: v.times.days_late_provisional,
        deadline_history: v
            .deadline_history
            .iter()
            .map(|h| pb::WarningDeadlineChange {
                changed_at: Some(timestamp(h.changed_at)),
                calendar_year: h.calendar_year,
                calendar_version: h.calendar_version,
                old_visit_due: h.change.old_visit_due.to_string(),
                old_decision_due: h.change.old_decision_due.to_string(),
                old_provisional: h.change.old_provisional,
                new_visit_due: h.change.new_visit_due.to_string(),
                new_decision_due: h.change.new_decision_due.to_string(),
                new_provisional: h.change.new_provisional,
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl Coordination for CoordinationService {
    async fn submit_fund_report(
        &self,
        req: Request<pb::SubmitFundReportRequest>,
    ) -> Result<Response<pb::SubmitFundReportResponse>, Status> {
        let principal = self.auth.principal(&req)?;
        let r = req.into_inner();
        let county = county_in(&r.county_code, "county_code")?;
        let month = month_in(&r.month, "month")?;
        let program = fund_program_in(r.program, "program")
            .map_err(invalid_field)?
            .ok_or_else(|| invalid("program", "is required"))?;
        let disbursed_on = required_date(&r.disbursed_on, "disbursed_on")?;
        if r.amount.is_empty() {
            return Err(invalid("amount", "is required (decimal yuan like \"1326.00\")"));
        }
        let amount: Money = r
            .amount
            .parse()
            .map_err(|e| invalid("amount", format!("{e} (money is a non-negative decimal yuan like \"1326.00\")")))?;
        crate::domain::money_limits::check("amount", amount).map_err(|e| invalid("amount", e))?;
        let stored = self
            .hub
            .submit_fund_report(
                &principal,
                FundReportInput { county, month, program, disbursed_on, amount, recipients: r.recipients },
            )
            .await?;
        tracing::info!(agency = %principal.agency(), county = %stored.county_code, month = %stored.month,
            program = %stored.program, version = stored.version, "SubmitFundReport");
        Ok(Response::new(pb::SubmitFundReportResponse { report: Some(report_out(&stored)) }))
    }

    async fn list_fund_reports(
        &self,
        req: Request<pb::ListFundReportsRequest>,
    ) -> Result<Response<pb::ListFundReportsResponse>, Status> {
        let principal = self.auth.principal(&req)?;
        let r = req.into_inner();
        let month = month_in(&r.month, "month")?;
        let program = fund_program_in(r.program, "program").map_err(invalid_field)?;
        let as_of = date_in(&r.as_of, "as_of", self.hub.today()).map_err(|e| invalid(&e.field, e.reason))?;
        let list = self.hub.list_fund_reports(&principal, month, program, as_of, r.include_history).await?;
        Ok(Response::new(pb::ListFundReportsResponse {
            month: month.to_string(),
            rows: list.rows.iter().map(row_out).collect(),
            tolerance: list.tolerance.to_string(),
        }))
    }

    async fn push_warnings(
        &self,
        req: Request<pb::PushWarningsRequest>,
    ) -> Result<Response<pb::PushWarningsResponse>, Status> {
        let principal = self.auth.principal(&req)?;
        let r = req.into_inner();
        // Every bad field of every warning is named (BadRequest), not only the first.
        let mut warnings = Vec::with_capacity(r.warnings.len());
        let mut bad = Vec::new();
        for (i, w) in r.warnings.iter().enumerate() {
            match warning_in(i, w) {
                Ok(w) => warnings.push(w),
                Err(errors) => bad.extend(errors.into_iter().map(|e| (e.field, e.reason))),
            }
        }
        if !bad.is_empty() {
            return Err(Refusal::invalid_fields(bad).into());
        }
        let outcomes = self.hub.push_warnings(&principal, PUSH_WARNINGS, warnings).await?;
        let out = |o: &WarningInsert| match o {
            WarningInsert::Accepted => pb::WarningPushOutcome::Accepted as i32,
            WarningInsert::Duplicate => pb::WarningPushOutcome::Duplicate as i32,
            WarningInsert::Conflict => pb::WarningPushOutcome::Conflict as i32,
        };
        tracing::info!(agency = %principal.agency(), warnings = outcomes.len(), "PushWarnings");
        Ok(Response::new(pb::PushWarningsResponse { outcomes: outcomes.iter().map(out).collect() }))
    }

    async fn record_warning_outcome(
        &self,
        req: Request<pb::RecordWarningOutcomeRequest>,
    ) -> Result<Response<pb::Warning>, Status> {
        use pb::record_warning_outcome_request::Step;
        let principal = self.auth.principal(&req)?;
        let r = req.into_inner();
        let warning_id = text_id(&r.warning_id, "warning_id").map_err(invalid_field)?;
        let step = match r.step {
            None => return Err(invalid("step", "is required (visit, decision or close)")),
            Some(Step::Visit(v)) => WarningStep::Visit { on: required_date(&v.visited_on, "visit.visited_on")? },
            Some(Step::Decision(d)) => WarningStep::Decision {
                on: required_date(&d.decided_on, "decision.decided_on")?,
                decision: decision_in(d.decision, "decision.decision")
                    .map_err(invalid_field)?
                    .ok_or_else(|| invalid("decision.decision", "is required"))?,
                program: fund_program_in(d.program, "decision.program").map_err(invalid_field)?,
            },
            Some(Step::Close(c)) => WarningStep::Close { on: required_date(&c.closed_on, "close.closed_on")? },
        };
        let view = self.hub.record_warning_outcome(&principal, RECORD_OUTCOME, &warning_id, step).await?;
        Ok(Response::new(warning_out(&view)))
    }

    async fn list_warnings(
        &self,
        req: Request<pb::ListWarningsRequest>,
    ) -> Result<Response<pb::ListWarningsResponse>, Status> {
        let principal = self.auth.principal(&req)?;
        let r = req.into_inner();
        let as_of = date_in(&r.as_of, "as_of", self.hub.today()).map_err(|e| invalid(&e.field, e.reason))?;
        let division = if r.division_code.is_empty() {
            None
        } else {
            Some(r.division_code.parse::<DivisionCode>().map_err(|e| invalid("division_code", e))?)
        };
        let filter = match pb::WarningFilter::try_from(r.filter) {
            Ok(pb::WarningFilter::Unspecified) => None,
            Ok(pb::WarningFilter::Open) => Some(WarningFilter::Open),
            Ok(pb::WarningFilter::Overdue) => Some(WarningFilter::Overdue),
            Ok(pb::WarningFilter::Closed) => Some(WarningFilter::Closed),
            Err(_) => return Err(invalid("filter", format!("unknown enum value {}", r.filter))),
        };
        if r.page_size < 0 {
            return Err(invalid("page_size", "must not be negative"));
        }
        let page = self
            .hub
            .list_warnings(
                &principal,
                LIST_WARNINGS,
                division,
                filter,
                as_of,
                r.page_size as usize,
                &r.page_token,
                &r.purpose,
            )
            .await?;
        Ok(Response::new(pb::ListWarningsResponse {
            warnings: page.warnings.iter().map(warning_out).collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size,
        }))
    }

    async fn create_snapshot(&self, req: Request<pb::CreateSnapshotRequest>) -> Result<Response<pb::Snapshot>, Status> {
        let principal = self.auth.principal(&req)?;
        let q = super::snapshot::quarter_in(&req.get_ref().quarter, "quarter")?;
        let h = self.hub.create_snapshot(&principal, CREATE_SNAPSHOT, q).await?;
        Ok(Response::new(super::snapshot::snapshot_out(&h)))
    }

    async fn get_snapshot(&self, req: Request<pb::GetSnapshotRequest>) -> Result<Response<pb::Snapshot>, Status> {
        let principal = self.auth.principal(&req)?;
        let q = super::snapshot::quarter_in(&req.get_ref().quarter, "quarter")?;
        let h = self.hub.get_snapshot(&principal, q).await?;
        Ok(Response::new(super::snapshot::snapshot_out(&h)))
    }

    async fn list_snapshots(
        &self,
        req: Request<pb::ListSnapshotsRequest>,
    ) -> Result<Response<pb::ListSnapshotsResponse>, Status> {
        let principal = self.auth.principal(&req)?;
        let all = self.hub.list_snapshots(&principal).await?;
        Ok(Response::new(pb::ListSnapshotsResponse {
            snapshots: all.iter().map(super::snapshot::snapshot_out).collect(),
        }))
    }

    async fn verify_snapshot(
        &self,
        req: Request<pb::VerifySnapshotRequest>,
    ) -> Result<Response<pb::VerifySnapshotResponse>, Status> {
        let principal = self.auth.principal(&req)?;
        let q = super::snapshot::quarter_in(&req.get_ref().quarter, "quarter")?;
        let (v, signatures) = self.hub.verify_snapshot(&principal, q).await?;
        Ok(Response::new(super::snapshot::verification_out(&v, &signatures)))
    }

    async fn sign_snapshot(
        &self,
        req: Request<pb::SignSnapshotRequest>,
    ) -> Result<Response<pb::SnapshotSignature>, Status> {
        let principal = self.auth.principal(&req)?;
        let input = super::snapshot::sign_in(req.into_inner())?;
        let kept = self.hub.sign_snapshot(&principal, SIGN_SNAPSHOT, input).await?;
        let quarter = kept.signature.quarter.clone();
        let s = crate::hub::countersign::AgencySignature {
            agency: kept.signature.agency.clone(),
            status: crate::domain::countersign::SignatureStatus::Valid,
            stored: Some(kept),
        };
        Ok(Response::new(super::snapshot::signature_out(&quarter, &s)))
    }

    async fn list_snapshot_signatures(
        &self,
        req: Request<pb::ListSnapshotSignaturesRequest>,
    ) -> Result<Response<pb::ListSnapshotSignaturesResponse>, Status> {
        let principal = self.auth.principal(&req)?;
        let q = super::snapshot::quarter_in(&req.get_ref().quarter, "quarter")?;
        let (header, sigs) = self.hub.snapshot_signatures(&principal, q).await?;
        Ok(Response::new(pb::ListSnapshotSignaturesResponse {
            signatures: sigs.iter().map(|s| super::snapshot::signature_out(&header.quarter, s)).collect(),
        }))
    }

    async fn get_quarterly_summary(
        &self,
        req: Request<pb::GetQuarterlySummaryRequest>,
    ) -> Result<Response<pb::QuarterlySummaryResponse>, Status> {
        let principal = self.auth.principal(&req)?;
        let q = super::snapshot::quarter_in(&req.get_ref().quarter, "quarter")?;
        let s = self.hub.quarterly_summary(&principal, q).await?;
        Ok(Response::new(pb::QuarterlySummaryResponse {
            quarter: s.quarter.clone(),
            content_hash: s.snapshot.content_hash.clone(),
            summary: Some(super::snapshot::to_struct(&s)?),
        }))
    }

    async fn get_monthly_report(
        &self,
        req: Request<pb::GetMonthlyReportRequest>,
    ) -> Result<Response<pb::MonthlyReportResponse>, Status> {
        let principal = self.auth.principal(&req)?;
        let m = super::snapshot::month_in(&req.get_ref().month, "month")?;
        let r = self.hub.monthly_report(&principal, m).await?;
        Ok(Response::new(pb::MonthlyReportResponse {
            month: r.month.clone(),
            report: Some(super::snapshot::to_struct(&r)?),
        }))
    }

    async fn list_coverage_findings(
        &self,
        req: Request<pb::ListCoverageFindingsRequest>,
    ) -> Result<Response<pb::ListCoverageFindingsResponse>, Status> {
        let principal = self.auth.principal(&req)?;
        let r = req.into_inner();
        let quarter = super::snapshot::quarter_in(&r.quarter, "quarter")?;
        let code = if r.code.is_empty() {
            None
        } else {
            Some(crate::domain::coverage::RULES.iter().map(|(c, _)| *c).find(|c| *c == r.code).ok_or_else(|| {
                // At most 64 characters of the value are echoed: a status message travels in a header.
                let shown: String = r.code.chars().take(64).collect();
                let more = if r.code.chars().count() > 64 { "…" } else { "" };
                invalid("code", format!("{shown:?}{more} is not a coverage rule code (docs/spec/coordination.md)"))
            })?)
        };
        let division = if r.division_code.is_empty() {
            None
        } else {
            Some(r.division_code.parse::<DivisionCode>().map_err(|e| invalid("division_code", e))?)
        };
        if r.page_size < 0 {
            return Err(invalid("page_size", "must not be negative"));
        }
        let input = crate::hub::coverage_findings::CoverageListInput {
            quarter,
            division,
            code,
            answer: super::medical::answer_filter_in(r.answer)?,
            page_size: r.page_size as usize,
            page_token: r.page_token,
            purpose: r.purpose,
        };
        let page = self.hub.list_coverage_findings(&principal, LIST_COVERAGE, input).await?;
        Ok(Response::new(pb::ListCoverageFindingsResponse {
            findings: page.findings.iter().map(super::medical::coverage_finding_out).collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_months_name_the_field() {
        assert!(month_in("2023-13", "month").unwrap_err().message().starts_with("month:"));
        assert!(month_in("", "month").is_err());
        assert_eq!(month_in("2023-07", "month").unwrap().to_string(), "2023-07");
    }

    #[test]
    fn report_status_round_trips() {
        for s in [ReportStatus::OnTime, ReportStatus::Late, ReportStatus::Missing, ReportStatus::Pending] {
            assert_eq!(report_status_in(report_status_out(Some(s)), "s").unwrap(), Some(s));
        }
    }
}
