//! Fund reports and early warnings (docs/spec/coordination.md): policy, scope, keys, audit, store.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use sha2::{Digest, Sha256};

use super::{Hub, HubError, audit_of, check_purpose, division_of, named, scoped_prefix, storage_prefix, via_of};
use crate::domain::agency::Principal;
use crate::domain::calendar::{Month, shanghai_date};
use crate::domain::coordination::{
    DISBURSEMENT_MISMATCH, FundProgram, ReportStatus, WarningReason, WarningState, WarningStep, WarningTimes,
    check_transition, report_status, warning_times,
};
use crate::domain::division::{DivisionCode, QINGYANG_COUNTIES};
use crate::domain::id_number::IdNumber;
use crate::domain::money::Money;
use crate::domain::policy::CoordinationRight;
use crate::domain::workdays::WorkCalendar;
use crate::security::crypto::{KeyError, PersonKey};
use crate::store::{
    AuditRecord, NewFundReport, NewWarning, StoreError, StoredDeadlineChange, StoredFundReport, StoredWarning,
    WarningInsert, WarningUpdate,
};

/// A fund report as submitted (already parsed).
#[derive(Debug, Clone)]
pub struct FundReportInput {
    pub county: DivisionCode,
    pub month: Month,
    pub program: FundProgram,
    pub disbursed_on: NaiveDate,
    pub amount: Money,
    pub recipients: i64,
}

/// One county × program of a month.
#[derive(Debug, Clone)]
pub struct FundReportLine {
    pub county_code: String,
    pub program: FundProgram,
    pub status: ReportStatus,
    pub latest: Option<StoredFundReport>,
    /// Roster programs only.
    pub expected: Option<Money>,
    /// `DISBURSEMENT_MISMATCH` or empty.
    pub finding: String,
    /// Every version, oldest first (when asked for).
    pub history: Vec<StoredFundReport>,
}

/// `ListFundReports`.
#[derive(Debug, Clone)]
pub struct FundReportList {
    pub rows: Vec<FundReportLine>,
    pub tolerance: Money,
}

/// A warning as pushed (already parsed).
#[derive(Debug, Clone)]
pub struct WarningInput {
    pub warning_id: String,
    pub id_number: IdNumber,
    pub division: DivisionCode,
    pub reason: WarningReason,
    pub received_at: DateTime<Utc>,
}

/// State classes of `ListWarnings` (they partition the warnings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningFilter {
    /// Not closed and not overdue.
    Open,
    /// Not closed and overdue.
    Overdue,
    /// Closed.
    Closed,
}

/// A warning with its deadlines on `as_of`.
#[derive(Debug, Clone)]
pub struct WarningView {
    pub warning: StoredWarning,
    pub id_number: IdNumber,
    pub times: WarningTimes,
    pub as_of: NaiveDate,
    /// Deadline changes made by calendar loads (`doudi calendar add`), oldest first.
    pub deadline_history: Vec<StoredDeadlineChange>,
}

/// One page of `ListWarnings`.
#[derive(Debug, Clone)]
pub struct WarningPage {
    pub warnings: Vec<WarningView>,
    pub next_page_token: String,
    pub total_size: i64,
}

fn corrupt(detail: impl Into<String>) -> HubError {
    HubError::Store(StoreError::Corrupt { table: "warnings", detail: detail.into() })
}

fn state_of(w: &StoredWarning) -> Result<WarningState, HubError> {
    WarningState::parse(&w.state).ok_or_else(|| corrupt(format!("unknown state {}", w.state)))
}

fn date_of(s: &Option<String>) -> Result<Option<NaiveDate>, HubError> {
    s.as_deref().map(|d| d.parse::<NaiveDate>().map_err(|e| corrupt(e.to_string()))).transpose()
}

fn warning_hash(key: &PersonKey, w: &WarningInput) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(hex::encode(key.as_bytes()));
    for part in [w.division.as_str(), w.reason.as_str(), &w.received_at.timestamp_micros().to_string()] {
        h.update(b"|");
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

impl Hub {
    pub(crate) fn require(&self, principal: &Principal, right: CoordinationRight, what: &str) -> Result<(), HubError> {
        if self.policy.may(principal.agency(), right) {
            Ok(())
        } else {
            Err(HubError::PermissionDenied(format!("agency {} may not {what}", principal.agency())))
        }
    }

    /// The official calendar as loaded in the store (read per request, so added rows apply at once).
    pub async fn work_calendar(&self) -> Result<WorkCalendar, HubError> {
        let entries = self.store.work_calendar().await?;
        WorkCalendar::from_entries(entries).map_err(|e| corrupt(e.to_string()))
    }

    /// `SubmitFundReport`: the next version of the county's report for the month and program.
    ///
    /// Errors: INVALID_ARGUMENT `recipients` (negative or implausibly many,
    /// [`crate::domain::coordination::check_recipients`]); PERMISSION_DENIED without the right or outside the caller's
    /// county; the store's.
    pub async fn submit_fund_report(
        &self,
        principal: &Principal,
        r: FundReportInput,
    ) -> Result<StoredFundReport, HubError> {
        crate::domain::coordination::check_recipients(r.recipients).map_err(|e| HubError::invalid("recipients", e))?;
        self.require(principal, CoordinationRight::SubmitFundReports, "submit fund reports")?;
        if !principal.in_scope(&r.county) {
            return Err(HubError::PermissionDenied(format!(
                "county_code {} lies outside the caller's county {}",
                named(r.county.as_str()),
                named(&division_of(principal))
            )));
        }
        let submitted_by = match principal.county() {
            Some(c) => format!("{}/{}", principal.agency(), c.as_str()),
            None => principal.agency().to_string(),
        };
        Ok(self
            .store
            .submit_fund_report(&NewFundReport {
                county_code: r.county.as_str().to_owned(),
                month: r.month.to_string(),
                program: r.program.as_str().to_owned(),
                disbursed_on: r.disbursed_on.to_string(),
                amount: r.amount.to_string(),
                recipients: r.recipients,
                submitted_by,
                submitted_at: self.clock.now(),
            })
            .await?)
    }

    /// The expected monthly amount of a roster program in a county: the monthly benefits of its ACTIVE assistance
    /// facts in force on the month's last day.
    pub async fn expected_amount(
        &self,
        county: &DivisionCode,
        month: Month,
        program: FundProgram,
    ) -> Result<Option<Money>, HubError> {
        let Some(sel) = program.roster() else { return Ok(None) };
        let fen = self.store.roster_benefit_fen(county, sel.program, sel.residence, month.last_day()).await?;
        let total = Money::from_fen(fen).map_err(|e| corrupt(format!("roster sum {fen} fen: {e}")))?;
        Ok(Some(total))
    }

    /// `ListFundReports`: every county (× program) of the month; for a county office, its county's rows only.
    pub async fn list_fund_reports(
        &self,
        principal: &Principal,
        month: Month,
        program: Option<FundProgram>,
        as_of: NaiveDate,
        include_history: bool,
    ) -> Result<FundReportList, HubError> {
        self.require(principal, CoordinationRight::ReadFundReports, "read fund reports")?;
        let mut list = self.fund_report_lines(month, program, as_of, include_history).await?;
        // A county office sees its own county's rows (the city's view is the city office's: issue 23).
        if principal.county().is_some() {
            list.rows.retain(|r| r.county_code.parse().is_ok_and(|c| principal.in_scope(&c)));
        }
        Ok(list)
    }

    /// Every county (× program) of the month, as known now (no rights checked: callers do).
    pub(crate) async fn fund_report_lines(
        &self,
        month: Month,
        program: Option<FundProgram>,
        as_of: NaiveDate,
        include_history: bool,
    ) -> Result<FundReportList, HubError> {
        let stored = self.store.fund_reports(month, program.map(|p| p.as_str())).await?;
        let programs: Vec<FundProgram> = match program {
            Some(p) => vec![p],
            None => FundProgram::ALL.to_vec(),
        };
        let tolerance = self.limits.fund_report_tolerance;
        let mut rows = Vec::with_capacity(QINGYANG_COUNTIES.len() * programs.len());
        for (county, _) in QINGYANG_COUNTIES {
            let county_code = DivisionCode::parse(county).map_err(|e| corrupt(format!("county {county}: {e}")))?;
            for &p in &programs {
                let versions: Vec<StoredFundReport> =
                    stored.iter().filter(|r| r.county_code == county && r.program == p.as_str()).cloned().collect();
                let status = report_status(month, versions.first().map(|r| r.submitted_at), as_of);
                let expected = self.expected_amount(&county_code, month, p).await?;
                let latest = versions.last().cloned();
                let finding = match (&latest, expected) {
                    (Some(l), Some(e)) => {
                        let amount = Money::parse(&l.amount).map_err(|e| corrupt(e.to_string()))?;
                        let diff = (amount.to_fen() - e.to_fen()).abs();
                        if diff > tolerance.to_fen() { DISBURSEMENT_MISMATCH.to_owned() } else { String::new() }
                    }
                    _ => String::new(),
                };
                rows.push(FundReportLine {
                    county_code: county.to_owned(),
                    program: p,
                    status,
                    latest,
                    expected,
                    finding,
                    history: if include_history { versions } else { Vec::new() },
                });
            }
        }
        Ok(FundReportList { rows, tolerance })
    }

    /// `PushWarnings`: store new warnings (state RECEIVED); idempotent on warning_id. The whole request is
    /// checked first; one bad warning refuses the request and nothing is stored. Audited in the same transaction.
    pub async fn push_warnings(
        &self,
        principal: &Principal,
        method: &str,
        warnings: Vec<WarningInput>,
    ) -> Result<Vec<WarningInsert>, HubError> {
        self.require(principal, CoordinationRight::PushWarnings, "push warnings")?;
        if warnings.is_empty() {
            return Err(HubError::invalid("warnings", "is empty"));
        }
        if warnings.len() > self.limits.max_batch {
            return Err(HubError::invalid(
                "warnings",
                format!("{} warnings exceed the batch limit of {}", warnings.len(), self.limits.max_batch),
            ));
        }
        let cal = self.work_calendar().await?;
        let now = self.clock.now();
        let agency = principal.agency();
        let mut new = Vec::with_capacity(warnings.len());
        let mut persons = Vec::new();
        let mut seen: HashSet<PersonKey> = HashSet::new();
        for (i, w) in warnings.iter().enumerate() {
            let Some(county) = w.division.county() else {
                return Err(HubError::invalid(
                    format!("warnings[{i}].division_code"),
                    "must be a county, or a township or village within one",
                ));
            };
            if !principal.in_scope(&w.division) {
                return Err(HubError::PermissionDenied(format!(
                    "warnings[{i}].division_code {} lies outside the caller's county {}",
                    named(w.division.as_str()),
                    named(&division_of(principal))
                )));
            }
            if w.received_at > now + chrono::Duration::minutes(5) {
                return Err(HubError::invalid(format!("warnings[{i}].received_at"), "is in the future"));
            }
            // Intake never depends on the calendar (issue 15): deadlines in a year whose notice is not loaded are
            // provisional (Monday–Friday) and flagged on every read; only a date past chrono's range is refused.
            if let Err(e) = crate::domain::coordination::warning_deadlines(&cal, w.received_at) {
                return Err(HubError::invalid(format!("warnings[{i}].received_at"), e.to_string()));
            }
            let key = self.person_row(&w.id_number, &mut seen, &mut persons);
            new.push(NewWarning {
                agency: agency.to_string(),
                warning_id: w.warning_id.clone(),
                person_key: key,
                division_code: w.division.as_str().to_owned(),
                county_code: county.to_owned(),
                reason: w.reason.as_str().to_owned(),
                received_at: w.received_at,
                content_hash: warning_hash(&key, w),
            });
        }
        // The per-warning outcomes are decided inside the transaction; the event records the request's size.
        let audit = AuditRecord {
            agency: agency.to_string(),
            division: division_of(principal),
            via: via_of(principal),
            method: method.to_owned(),
            purpose: String::new(),
            outcome: format!("OK warnings={}", new.len()),
            person_keys: seen.into_iter().collect(),
        };
        Ok(self.store.push_warnings(&new, &persons, &audit).await?)
    }

    /// Views of `warnings` on `as_of`: decrypted ID numbers, deadlines, and their deadline histories (one query for
    /// all of them).
    async fn views(
        &self,
        warnings: Vec<StoredWarning>,
        cal: &WorkCalendar,
        as_of: NaiveDate,
    ) -> Result<Vec<WarningView>, HubError> {
        let ids: Vec<String> = warnings.iter().map(|w| w.warning_id.clone()).collect();
        let mut history = self.store.warning_deadline_changes(&ids).await?;
        let mut out = Vec::with_capacity(warnings.len());
        for w in warnings {
            let cipher = self.store.person_cipher(&w.person_key).await?.ok_or(KeyError::Decrypt)?;
            let id_number = self.keys.decrypt(&cipher, &w.person_key)?;
            let times = self.times(&w, cal, as_of)?;
            let (mine, rest): (Vec<_>, Vec<_>) =
                history.into_iter().partition(|c| c.change.agency == w.agency && c.change.warning_id == w.warning_id);
            history = rest;
            out.push(WarningView { warning: w, id_number, times, as_of, deadline_history: mine });
        }
        Ok(out)
    }

    fn times(&self, w: &StoredWarning, cal: &WorkCalendar, as_of: NaiveDate) -> Result<WarningTimes, HubError> {
        warning_times(cal, w.received_at, state_of(w)?, date_of(&w.visited_on)?, date_of(&w.decided_on)?, as_of)
            .map_err(|e| HubError::invalid("as_of", e.to_string()))
    }

    /// `RecordWarningOutcome`: apply one workflow step (with its audit event, in one transaction).
    pub async fn record_warning_outcome(
        &self,
        principal: &Principal,
        method: &str,
        warning_id: &str,
        step: WarningStep,
    ) -> Result<WarningView, HubError> {
        self.require(principal, CoordinationRight::PushWarnings, "record warning outcomes")?;
        let agency = principal.agency();
        let w = self
            .store
            .warning(agency, warning_id)
            .await?
            .ok_or_else(|| HubError::NotFound(format!("warning_id {warning_id:?}: no such warning")))?;
        let division: DivisionCode = w.division_code.parse().map_err(|_| corrupt("division_code"))?;
        if !principal.in_scope(&division) {
            return Err(HubError::PermissionDenied(format!(
                "warning {warning_id:?} lies in {}, outside the caller's county {}",
                named(&w.county_code),
                named(&division_of(principal))
            )));
        }
        let state = state_of(&w)?;
        let to = check_transition(state, &step).map_err(HubError::FailedPrecondition)?;
        let received = shanghai_date(w.received_at);
        let not_before = |field: &str, on: NaiveDate, earlier: NaiveDate, what: &str| {
            if on < earlier {
                Err(HubError::invalid(field, format!("{on} is before the {what} {earlier}")))
            } else {
                Ok(())
            }
        };
        let mut u = WarningUpdate { state: to.as_str().to_owned(), ..Default::default() };
        match step {
            WarningStep::Visit { on } => {
                not_before("visit.visited_on", on, received, "receipt date")?;
                u.visited_on = Some(on.to_string());
            }
            WarningStep::Decision { on, decision, program } => {
                let visited = date_of(&w.visited_on)?.unwrap_or(received);
                not_before("decision.decided_on", on, visited, "visit date")?;
                match (decision, program) {
                    (crate::domain::coordination::WarningDecision::Assisted, None) => {
                        return Err(HubError::invalid("decision.program", "is required when the decision is ASSISTED"));
                    }
                    (crate::domain::coordination::WarningDecision::Assisted, Some(_)) | (_, None) => {}
                    (_, Some(_)) => {
                        return Err(HubError::invalid(
                            "decision.program",
                            "is allowed only when the decision is ASSISTED",
                        ));
                    }
                }
                u.decided_on = Some(on.to_string());
                u.decision = Some(decision.as_str().to_owned());
                u.decided_program = program.map(|p| p.as_str().to_owned());
            }
            WarningStep::Close { on } => {
                let decided = date_of(&w.decided_on)?.unwrap_or(received);
                not_before("close.closed_on", on, decided, "decision date")?;
                u.closed_on = Some(on.to_string());
            }
        }
        let audit = AuditRecord {
            agency: agency.to_string(),
            division: division_of(principal),
            via: via_of(principal),
            method: method.to_owned(),
            purpose: String::new(),
            outcome: format!("OK {} {}", step.name(), to),
            person_keys: vec![w.person_key],
        };
        if !self.store.update_warning(agency, warning_id, state.as_str(), &u, &audit).await? {
            return Err(HubError::FailedPrecondition(format!(
                "{} not allowed: the warning changed state meanwhile; read it again",
                step.name()
            )));
        }
        let updated = self.store.warning(agency, warning_id).await?.ok_or_else(|| corrupt("vanished"))?;
        let cal = self.work_calendar().await?;
        Ok(self.views(vec![updated], &cal, self.today()).await?.remove(0))
    }

    /// `ListWarnings`: warnings in the caller's scope (narrowed by `division`), by state class on `as_of`,
    /// one page at a time; the read is audited with the listed persons.
    #[allow(clippy::too_many_arguments)]
    pub async fn list_warnings(
        &self,
        principal: &Principal,
        method: &str,
        division: Option<DivisionCode>,
        filter: Option<WarningFilter>,
        as_of: NaiveDate,
        page_size: usize,
        page_token: &str,
        purpose: &str,
    ) -> Result<WarningPage, HubError> {
        self.require(principal, CoordinationRight::ReadWarnings, "read warnings (person-level data)")?;
        let purpose = check_purpose(purpose)?;
        let prefix = storage_prefix(scoped_prefix(principal, division)?);
        let page_size = self.page_size(page_size)?;
        let fingerprint = {
            let mut h = Sha256::new();
            h.update(format!("warnings|{prefix}|{filter:?}|{as_of}"));
            let d = h.finalize();
            let mut out = [0u8; 8];
            out.copy_from_slice(&d[..8]);
            out
        };
        let context = format!("{}|ListWarnings", principal.spiffe_id());
        let offset = if page_token.is_empty() {
            0usize
        } else {
            let bad = || HubError::invalid("page_token", "is not a token this list returned to this caller");
            let raw = self.keys.open_token(page_token, context.as_bytes()).ok_or_else(bad)?;
            if raw.len() != 16 {
                return Err(bad());
            }
            if raw[8..] != fingerprint {
                return Err(HubError::invalid("page_token", "was issued for other filter values"));
            }
            u64::from_be_bytes(raw[..8].try_into().expect("8 bytes")) as usize
        };

        let cal = self.work_calendar().await?;
        let mut matching = Vec::new();
        for w in self.store.list_warnings(&prefix).await? {
            let t = self.times(&w, &cal, as_of)?;
            let closed = state_of(&w)? == WarningState::Closed;
            let class = if closed {
                WarningFilter::Closed
            } else if t.overdue {
                WarningFilter::Overdue
            } else {
                WarningFilter::Open
            };
            if filter.is_none_or(|f| f == class) {
                matching.push(w);
            }
        }
        let total_size = matching.len() as i64;
        let page: Vec<StoredWarning> = matching.into_iter().skip(offset).take(page_size + 1).collect();
        let more = page.len() > page_size;
        let views = self.views(page.into_iter().take(page_size).collect(), &cal, as_of).await?;
        let next_page_token = if more {
            let mut raw = ((offset + page_size) as u64).to_be_bytes().to_vec();
            raw.extend_from_slice(&fingerprint);
            self.keys.seal_token(&raw, context.as_bytes())
        } else {
            String::new()
        };
        self.store
            .record_audit(&audit_of(
                principal,
                method,
                purpose,
                format!("OK listed={}", views.len()),
                views.iter().map(|v| v.warning.person_key).collect(),
            ))
            .await?;
        Ok(WarningPage { warnings: views, next_page_token, total_size })
    }
}
