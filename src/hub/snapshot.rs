//! Quarterly snapshots, the quarterly summary and the monthly report (docs/spec/coordination.md): rights, the sections
//! the hub computes (fund reports, warnings, standards), and the summary built only from a snapshot and the previous
//! one.

use std::collections::BTreeMap;

use chrono::{NaiveDate, Utc};

use super::{Hub, HubError, audit_of};
use crate::domain::agency::Principal;
use crate::domain::calendar::{Month, Quarter, shanghai_date};
use crate::domain::coordination::{ReportStatus, WarningDecision, WarningState};
use crate::domain::coverage::MonthlyStandards;
use crate::domain::division::{QINGYANG_COUNTIES, division_name};
use crate::domain::fact::Program;
use crate::domain::money::Money;
use crate::domain::policy::{CityWideAction, CoordinationRight};
use crate::domain::snapshot::Aggregates;
use crate::domain::summary::{
    CampaignSection, CodeCount, Count, Countersigned, CountyCount, CountyProgramRow, CoverageRow, FundReportRow,
    FundReportSection, FundReportTotal, Headline, LateCorrection, MedicalSection, MonthlyReport, ProgramChange,
    QuarterlySummary, SnapshotHashes, StandardChange, WarningSection, change_pct, percent,
};
use crate::store::{CreateOutcome, SnapshotHeader, SnapshotInput, Store, StoreError, Verification};

/// Counts of HIV_AFFECTED_CHILD below this are suppressed in every summary (docs/domain/policy-reference.md: the AIDS
/// regulation).
pub const SUPPRESS_BELOW: u64 = 5;

fn corrupt(detail: impl Into<String>) -> HubError {
    HubError::Store(StoreError::Corrupt { table: "snapshot_sections", detail: detail.into() })
}

fn count(program: &str, n: u64) -> Count {
    if program == Program::HivAffectedChild.as_str() && n < SUPPRESS_BELOW {
        Count::Suppressed
    } else {
        Count::Value(n)
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, HubError> {
    serde_json::to_string(v).map_err(|e| corrupt(e.to_string()))
}

fn parse<T: serde::de::DeserializeOwned>(body: Option<String>, section: &str) -> Result<T, HubError> {
    let body = body.ok_or_else(|| corrupt(format!("section {section} missing")))?;
    serde_json::from_str(&body).map_err(|e| corrupt(format!("section {section}: {e}")))
}

impl Hub {
    /// A county office may not take a city-wide action (the access matrix's `city_wide`).
    pub(crate) fn require_city_office(&self, principal: &Principal, action: CityWideAction) -> Result<(), HubError> {
        self.policy.check_city_wide(principal, action).map_err(HubError::PermissionDenied)
    }

    fn require_aggregates(&self, principal: &Principal) -> Result<(), HubError> {
        if self.policy.may_read_aggregates(principal.agency()) {
            Ok(())
        } else {
            Err(HubError::PermissionDenied(format!("agency {} may not read aggregates", principal.agency())))
        }
    }

    /// Fund report rows and totals of `months` as known now, statuses as of `as_of`: roster programs for every
    /// county (ON_TIME / LATE / MISSING), other programs where a county reported.
    async fn fund_section(&self, months: &[Month], as_of: NaiveDate) -> Result<FundReportSection, HubError> {
        let mut rows = Vec::new();
        let mut totals: BTreeMap<(String, String), (Money, u64, u64)> = BTreeMap::new();
        for &m in months {
            let list = self.fund_report_lines(m, None, as_of, false).await?;
            for l in list.rows {
                if l.latest.is_none() && l.program.roster().is_none() {
                    continue;
                }
                let amount = l
                    .latest
                    .as_ref()
                    .map(|r| Money::parse(&r.amount))
                    .transpose()
                    .map_err(|e| corrupt(e.to_string()))?;
                let recipients = l.latest.as_ref().map(|r| r.recipients.max(0) as u64);
                if let (Some(a), Some(n)) = (amount, recipients) {
                    let t = totals.entry((m.to_string(), l.program.as_str().to_owned())).or_insert((Money::ZERO, 0, 0));
                    // Amounts are i128 fen and counts are bounded at intake; counts stored before the bound saturate
                    // rather than stop the city's reports (issue 23).
                    t.0 = t.0.checked_add(a).ok_or_else(|| corrupt(format!("fund total of {m} overflows")))?;
                    t.1 = t.1.saturating_add(n);
                    t.2 += 1;
                }
                let status = match l.status {
                    ReportStatus::OnTime => "ON_TIME",
                    ReportStatus::Late => "LATE",
                    ReportStatus::Missing => "MISSING",
                    ReportStatus::Pending => "PENDING",
                };
                rows.push(FundReportRow {
                    month: m.to_string(),
                    county_code: l.county_code,
                    program: l.program.as_str().to_owned(),
                    status: status.to_owned(),
                    amount,
                    recipients,
                    expected: l.expected,
                    finding: l.finding,
                });
            }
        }
        let totals = totals
            .into_iter()
            .map(|((month, program), (amount, recipients, counties))| FundReportTotal {
                month,
                program,
                amount,
                recipients,
                counties,
            })
            .collect();
        Ok(FundReportSection { rows, totals })
    }

    /// Warnings received (Shanghai date) in `[from, to]`, their workflow as of `as_of`.
    async fn warning_section(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        as_of: NaiveDate,
    ) -> Result<WarningSection, HubError> {
        let cal = self.work_calendar().await?;
        let mut s = WarningSection {
            received: 0,
            visited_within_3_working_days: 0,
            decided_within_5_working_days: 0,
            overdue: 0,
            assisted: 0,
            closed: 0,
            clearance_rate_pct: None,
            by_county: Vec::new(),
            provisional: 0,
        };
        let mut by_county: BTreeMap<String, u64> = BTreeMap::new();
        for w in self.store.list_warnings("").await? {
            let d = shanghai_date(w.received_at);
            if d < from || d > to {
                continue;
            }
            let state = WarningState::parse(&w.state).ok_or_else(|| corrupt(format!("warning state {}", w.state)))?;
            let date = |s: &Option<String>| s.as_deref().and_then(|s| s.parse::<NaiveDate>().ok());
            let t = crate::domain::coordination::warning_times(
                &cal,
                w.received_at,
                state,
                date(&w.visited_on),
                date(&w.decided_on),
                as_of,
            )
            .map_err(|e| HubError::FailedPrecondition(format!("working-day calendar: {e}")))?;
            s.received += 1;
            s.provisional += u64::from(t.decision_due_provisional || t.days_late_provisional);
            *by_county.entry(w.county_code.clone()).or_default() += 1;
            s.visited_within_3_working_days += u64::from(t.visited_on_time);
            s.decided_within_5_working_days += u64::from(t.decided_on_time);
            s.overdue += u64::from(t.overdue);
            s.assisted += u64::from(w.decision.as_deref() == Some(WarningDecision::Assisted.as_str()));
            s.closed += u64::from(state == WarningState::Closed);
        }
        s.clearance_rate_pct = percent(s.closed as i64, s.received as i64);
        s.by_county = by_county.into_iter().map(|(county_code, count)| CountyCount { county_code, count }).collect();
        Ok(s)
    }

    /// The standards of `year` against `year − 1`, and the monthly standards of `year` for BENEFIT_ABOVE_STANDARD
    /// (yearly amounts / 12, half-up).
    pub(super) async fn standards(&self, year: i32) -> Result<(Vec<StandardChange>, MonthlyStandards), HubError> {
        let rows = self.store.list_standards(None).await?;
        let mut changes = Vec::new();
        let mut monthly = MonthlyStandards::new();
        let amount = |s: &str| Money::parse(s).map_err(|e| corrupt(e.to_string()));
        for r in rows.iter().filter(|r| r.year == i64::from(year)) {
            let current = amount(&r.amount)?;
            let previous = rows
                .iter()
                .find(|p| p.year == i64::from(year - 1) && p.item == r.item && p.division_code == r.division_code)
                .map(|p| amount(&p.amount))
                .transpose()?;
            changes.push(StandardChange {
                item: r.item.clone(),
                name: r.name.clone(),
                previous_year: year - 1,
                previous,
                current_year: year,
                current,
                change_pct: previous.and_then(|p| change_pct(p, current)),
            });
            let fen = match r.unit.as_str() {
                "PER_PERSON_YEAR" => {
                    current.mul_ratio_half_up(rust_decimal::Decimal::ONE / rust_decimal::Decimal::from(12)).to_fen()
                }
                _ => current.to_fen(),
            };
            monthly.insert(r.item.clone(), fen);
        }
        Ok((changes, monthly))
    }

    /// `CreateSnapshot`: freeze a quarter that has ended (on the hub's clock, Asia/Shanghai). civil_affairs' city
    /// office only.
    ///
    /// Errors: PERMISSION_DENIED without `create_snapshots` or for a county office (a city-wide action); FAILED_PRECONDITION for a quarter not over yet or
    /// earlier than one already frozen; ALREADY_EXISTS naming the frozen snapshot's content hash.
    pub async fn create_snapshot(
        &self,
        principal: &Principal,
        method: &str,
        quarter: Quarter,
    ) -> Result<SnapshotHeader, HubError> {
        self.require(principal, CoordinationRight::CreateSnapshots, "create snapshots")?;
        self.require_city_office(principal, CityWideAction::CreateSnapshot)?;
        let today = shanghai_date(self.clock.now());
        if quarter.last_day() >= today {
            return Err(HubError::FailedPrecondition(format!(
                "quarter {quarter} is not over (today is {today}); a snapshot freezes a finished quarter"
            )));
        }
        if let Some(h) = self.store.snapshot(quarter).await? {
            return Err(already(&h));
        }
        let as_of = quarter.last_day();
        let started = std::time::Instant::now();
        let fund = self.fund_section(&quarter.months(), as_of).await?;
        let warnings = self.warning_section(quarter.first_day(), as_of, as_of).await?;
        let (standards, monthly) = self.standards(quarter.year()).await?;
        // Section 12 (optional): the subsidy campaigns of the quarter, as known now, like the fund reports
        // (docs/subsidies.md "In the quarterly summary"); none makes the snapshot format v1 as before.
        let campaigns = self.campaign_section(quarter).await?;
        tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "snapshot: hub sections");
        let mut hub_sections = BTreeMap::new();
        hub_sections.insert("fund_reports", json(&fund)?);
        hub_sections.insert("warnings", json(&warnings)?);
        hub_sections.insert("standards", json(&standards)?);
        if let Some(c) = &campaigns {
            hub_sections.insert("campaigns", json(c)?);
        }
        let keys = self.keys.clone();
        let birth = move |k: &crate::security::crypto::PersonKey, cipher: &[u8]| {
            keys.decrypt(cipher, k).ok().map(|id| id.birth_date())
        };
        let created_by = match principal.county() {
            Some(c) => format!("{}/{}", principal.agency(), c.as_str()),
            None => principal.agency().to_string(),
        };
        let outcome = self
            .store
            .create_snapshot(SnapshotInput {
                quarter: quarter.to_string(),
                as_of,
                // System time, like every fact's recorded_at: the cutoff separates what was known from what came later.
                cutoff: self.clock.system_now(),
                created_by,
                hub_sections,
                coverage_params: &self.coverage,
                standards: &monthly,
                birth_date: &birth,
            })
            .await?;
        let header = match outcome {
            CreateOutcome::Created(h) => h,
            CreateOutcome::AlreadyExists(h) => return Err(already(&h)),
            CreateOutcome::LaterExists(l) => {
                return Err(HubError::FailedPrecondition(format!(
                    "{l} is already frozen; snapshots are taken in quarter order"
                )));
            }
        };
        self.store
            .record_audit(&audit_of(
                principal,
                method,
                String::new(),
                format!("OK {quarter} {}", hex::encode(header.content_hash)),
                Vec::new(),
            ))
            .await?;
        Ok(header)
    }

    /// `GetSnapshot`. Errors: NOT_FOUND.
    pub async fn get_snapshot(&self, principal: &Principal, quarter: Quarter) -> Result<SnapshotHeader, HubError> {
        self.require_aggregates(principal)?;
        self.store.snapshot(quarter).await?.ok_or_else(|| not_frozen(quarter))
    }

    /// `ListSnapshots`, oldest first.
    pub async fn list_snapshots(&self, principal: &Principal) -> Result<Vec<SnapshotHeader>, HubError> {
        self.require_aggregates(principal)?;
        Ok(self.store.snapshots().await?)
    }

    /// `VerifySnapshot`: the recomputation, and every partner agency's countersignature checked again
    /// ([`Hub::signatures_of`]). Errors: NOT_FOUND; FAILED_PRECONDITION without a CA to check signatures with.
    pub async fn verify_snapshot(
        &self,
        principal: &Principal,
        quarter: Quarter,
    ) -> Result<(Verification, Vec<super::countersign::AgencySignature>), HubError> {
        self.require_aggregates(principal)?;
        self.require_city_office(principal, CityWideAction::VerifySnapshot)?;
        let v = self.store.verify_snapshot(quarter).await?.ok_or_else(|| not_frozen(quarter))?;
        let signatures = self.signatures_of(&v.header).await?;
        Ok((v, signatures))
    }

    /// `GetQuarterlySummary`. Errors: NOT_FOUND for a quarter not frozen.
    pub async fn quarterly_summary(
        &self,
        principal: &Principal,
        quarter: Quarter,
    ) -> Result<QuarterlySummary, HubError> {
        self.require_aggregates(principal)?;
        self.require_city_office(principal, CityWideAction::GetQuarterlySummary)?;
        quarterly_summary(&self.store, quarter).await
    }

    /// `GetMonthlyReport`: aggregates of a month as known now. Errors: FAILED_PRECONDITION outside the calendar.
    pub async fn monthly_report(&self, principal: &Principal, month: Month) -> Result<MonthlyReport, HubError> {
        self.require_aggregates(principal)?;
        self.require_city_office(principal, CityWideAction::GetMonthlyReport)?;
        self.monthly_report_data(month).await
    }

    /// The monthly report without a caller (the `doudi report monthly` command on the hub's own database).
    pub async fn monthly_report_data(&self, month: Month) -> Result<MonthlyReport, HubError> {
        let as_of = month.last_day();
        let mut by_county_program = Vec::new();
        let counts = self.store.active_by_county_program(as_of).await?;
        for (county, _) in QINGYANG_COUNTIES {
            for p in Program::ALL {
                let (persons, households, fen) =
                    counts.get(&(county.to_string(), p.as_str().to_owned())).copied().unwrap_or((0, 0, 0));
                by_county_program.push(CountyProgramRow {
                    county_code: county.to_owned(),
                    county_name: division_name(county).unwrap_or_default().to_owned(),
                    program: p.as_str().to_owned(),
                    persons: count(p.as_str(), persons),
                    households: count(p.as_str(), households),
                    monthly_benefit: Money::from_fen(fen).map_err(|e| corrupt(e.to_string()))?,
                });
            }
        }
        let fund_reports = self.fund_section(&[month], as_of).await?;
        let warnings = self.warning_section(month.first_day(), as_of, as_of).await?;
        let medical_findings_by_code = self
            .store
            .findings_by_code_between(month.first_day(), as_of)
            .await?
            .into_iter()
            .map(|(code, count)| CodeCount { code, count })
            .collect();
        let campaigns = self.campaign_rows(month).await?;
        Ok(MonthlyReport {
            month: month.to_string(),
            as_of,
            by_county_program,
            fund_reports,
            warnings,
            medical_findings_by_code,
            campaigns,
        })
    }
}

fn already(h: &SnapshotHeader) -> HubError {
    HubError::AlreadyExists(format!(
        "quarter {} is already frozen with content_hash {}",
        h.quarter,
        hex::encode(h.content_hash)
    ))
}

fn not_frozen(q: Quarter) -> HubError {
    HubError::NotFound(format!("quarter {q} has no snapshot (CreateSnapshot freezes it)"))
}

/// The quarterly summary, computed only from the snapshot of `quarter` and the one before it in the chain (and the
/// countersignatures kept for it).
pub async fn quarterly_summary(store: &Store, quarter: Quarter) -> Result<QuarterlySummary, HubError> {
    let h = store.snapshot(quarter).await?.ok_or_else(|| not_frozen(quarter))?;
    // The chain's previous quarter, as stored.
    let previous_quarter: Option<Quarter> = h
        .previous_quarter
        .as_deref()
        .map(|p| p.parse().map_err(|_| corrupt(format!("previous quarter {p:?}"))))
        .transpose()?;
    let aggregates: Aggregates = parse(store.snapshot_section(quarter, "aggregates").await?, "aggregates")?;
    let previous: Option<Aggregates> = match previous_quarter {
        Some(p) => Some(parse(store.snapshot_section(p, "aggregates").await?, "aggregates")?),
        None => None,
    };
    let medical: MedicalSection = parse(store.snapshot_section(quarter, "medical").await?, "medical")?;
    let fund_reports: FundReportSection =
        parse(store.snapshot_section(quarter, "fund_reports").await?, "fund_reports")?;
    let warnings: WarningSection = parse(store.snapshot_section(quarter, "warnings").await?, "warnings")?;
    let late_corrections: Vec<LateCorrection> =
        parse(store.snapshot_section(quarter, "late_corrections").await?, "late_corrections")?;
    let standards: Vec<StandardChange> = parse(store.snapshot_section(quarter, "standards").await?, "standards")?;
    // Section 12 is optional: only snapshots of quarters with a campaign month hold it (format v2).
    let campaigns: Option<CampaignSection> = match store.snapshot_section(quarter, "campaigns").await? {
        Some(body) => Some(parse(Some(body), "campaigns")?),
        None => None,
    };
    let coverage: Vec<CoverageRow> = store
        .snapshot_coverage_counts(quarter)
        .await?
        .into_iter()
        .map(|(code, agency_to_act, county_code, count)| CoverageRow { code, agency_to_act, county_code, count })
        .collect();

    // County × program, summed over rural class and support mode.
    let mut cells: BTreeMap<(String, String), (u64, u64, i128)> = BTreeMap::new();
    for r in &aggregates.rows {
        let c = cells.entry((r.county_code.clone(), r.program.clone())).or_default();
        c.0 += r.persons;
        c.1 += r.households;
        c.2 += r.monthly_benefit_fen;
    }
    let by_county_program = cells
        .iter()
        .map(|((county, program), (persons, households, fen))| {
            Ok(CountyProgramRow {
                county_code: county.clone(),
                county_name: division_name(county).unwrap_or_default().to_owned(),
                program: program.clone(),
                persons: count(program, *persons),
                households: count(program, *households),
                monthly_benefit: Money::from_fen(*fen).map_err(|e| corrupt(e.to_string()))?,
            })
        })
        .collect::<Result<Vec<_>, HubError>>()?;
    let program_total =
        |a: &Aggregates, p: &str| a.rows.iter().filter(|r| r.program == p).map(|r| r.persons).sum::<u64>();
    let mut programs: Vec<String> = aggregates.rows.iter().map(|r| r.program.clone()).collect();
    if let Some(p) = &previous {
        programs.extend(p.rows.iter().map(|r| r.program.clone()));
    }
    programs.sort_by_key(|p| Program::parse(p).map(|x| Program::ALL.iter().position(|y| *y == x)));
    programs.dedup();
    let change = programs
        .iter()
        .map(|p| {
            let flows = aggregates.flows.iter().filter(|f| &f.program == p);
            let (entries, exits) = flows.fold((0, 0), |(e, x), f| (e + f.entries, x + f.exits));
            ProgramChange {
                program: p.clone(),
                previous: previous.as_ref().map(|a| count(p, program_total(a, p))),
                current: count(p, program_total(&aggregates, p)),
                entries: count(p, entries),
                exits: count(p, exits),
            }
        })
        .collect();
    let dibao = program_total(&aggregates, Program::Dibao.as_str());
    let tekun = program_total(&aggregates, Program::Tekun.as_str());
    let status_count = |s: &str| fund_reports.rows.iter().filter(|r| r.status == s).count() as u64;
    let benefit: i128 = aggregates
        .rows
        .iter()
        .filter(|r| r.program == Program::Dibao.as_str() || r.program == Program::Tekun.as_str())
        .map(|r| r.monthly_benefit_fen)
        .sum();
    let headline = Headline {
        dibao_tekun_persons: dibao + tekun,
        dibao_persons: dibao,
        tekun_persons: tekun,
        all_persons: aggregates.rows.iter().map(|r| r.persons).sum(),
        dibao_households: aggregates
            .rows
            .iter()
            .filter(|r| r.program == Program::Dibao.as_str())
            .map(|r| r.households)
            .sum(),
        monthly_benefit_total: Money::from_fen(benefit).map_err(|e| corrupt(e.to_string()))?,
        coverage_findings: coverage.iter().map(|c| c.count).sum(),
        medical_findings: medical.findings_by_code.iter().map(|c| c.count).sum(),
        warnings_received: warnings.received,
        fund_reports_on_time: status_count("ON_TIME"),
        fund_reports_late: status_count("LATE"),
        fund_reports_missing: status_count("MISSING"),
    };
    let countersignatures = store
        .snapshot_signatures(quarter)
        .await?
        .into_iter()
        .map(|s| Countersigned {
            agency: s.signature.agency,
            signed_at: crate::store::from_micros(s.signature.signed_at_micros),
            version: s.version,
        })
        .collect();
    let (findings_by_agency, medical_findings_by_agency) = match previous_quarter {
        Some(p) => (
            findings_by_agency(store, p, quarter, h.knowledge_cutoff).await?,
            medical_findings_by_agency(store, p, h.knowledge_cutoff).await?,
        ),
        None => (Vec::new(), Vec::new()),
    };
    Ok(QuarterlySummary {
        campaigns,
        findings_by_agency,
        medical_findings_by_agency,
        quarter: quarter.to_string(),
        as_of: h.as_of,
        knowledge_cutoff: h.knowledge_cutoff,
        previous_quarter: h.previous_quarter.clone(),
        headline,
        by_county_program,
        change,
        coverage,
        medical,
        fund_reports,
        warnings,
        late_corrections,
        standards,
        snapshot: SnapshotHashes {
            content_hash: hex::encode(h.content_hash),
            previous_hash: if h.previous_quarter.is_some() { hex::encode(h.previous_hash) } else { String::new() },
        },
        countersignatures,
    })
}

/// Section 11 of the summary of `quarter` (frozen at `cutoff`): what became of the coverage findings of `previous`,
/// by agency, from the answers as they stood at `cutoff` (the answer log is append-only, each version with its
/// `answered_at`, so the section is the same whenever it is computed; docs/findings.md) and this snapshot's rows.
async fn findings_by_agency(
    store: &Store,
    previous: Quarter,
    quarter: Quarter,
    cutoff: chrono::DateTime<Utc>,
) -> Result<Vec<crate::domain::summary::AgencyFindings>, HubError> {
    let p = store.snapshot(previous).await?.ok_or_else(|| corrupt(format!("previous snapshot {previous} missing")))?;
    let raised = store.snapshot_coverage_rows(previous).await?;
    let again: std::collections::HashSet<(String, [u8; 32])> =
        store.snapshot_coverage_rows(quarter).await?.into_iter().map(|r| (r.code, r.person_key)).collect();
    let answers: std::collections::HashMap<_, _> = store
        .coverage_answers_as_of(previous, cutoff)
        .await?
        .into_iter()
        .map(|a| ((a.finding.code.to_owned(), a.finding.person_key), (a.state, a.answered_at)))
        .collect();
    Ok(crate::domain::summary::agency_findings(&previous.to_string(), p.knowledge_cutoff, &raised, &again, &answers))
}

/// Section 11, medical: the medical findings of the settlements settled in the `previous` quarter and known at its
/// cutoff, by agency to act, with their answers and their state (open or resolved by a recheck) at `cutoff`.
async fn medical_findings_by_agency(
    store: &Store,
    previous: Quarter,
    cutoff: chrono::DateTime<Utc>,
) -> Result<Vec<crate::domain::summary::AgencyFindings>, HubError> {
    let p = store.snapshot(previous).await?.ok_or_else(|| corrupt(format!("previous snapshot {previous} missing")))?;
    let q = previous;
    let rows = store.medical_findings_as_of(q.first_day(), q.last_day(), p.knowledge_cutoff, cutoff).await?;
    Ok(crate::domain::summary::medical_agency_findings(
        &previous.to_string(),
        rows.iter().map(|(f, a)| {
            let open = f.resolved_at.is_none_or(|r| r > cutoff);
            (f.agency_to_act.as_str(), f.detected_at, open, a.as_ref().map(|a| (a.state, a.answered_at)))
        }),
    ))
}
