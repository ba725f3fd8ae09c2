//! The three-tier medical cross-check (docs/spec/medical.md): rights, scope, keys, audit; the arithmetic is in
//! `domain::medical`, the person-level recheck in `domain::medical_history`, the transaction in `store::medical`.

use std::collections::HashSet;

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use super::{Hub, HubError, audit_of, check_purpose, division_of, named, scoped_prefix, storage_prefix, via_of};
use crate::domain::agency::Principal;
use crate::domain::answer::FindingId;
use crate::domain::division::DivisionCode;
use crate::domain::fact::FieldError;
use crate::domain::id_number::IdNumber;
use crate::domain::medical::{Finding, PolicyParams, Settlement, SettlementCheck};
use crate::domain::medical_history::pooling_area_of;
use crate::domain::policy::MedicalRight;
use crate::security::crypto::{KeyError, PersonKey};
use crate::store::{
    AuditRecord, FindingCursor, FindingFilter, NewPerson, NewSettlement, RecheckTally, SettlementInsert, StoredFinding,
    StoredPolicy,
};

/// The default pooling area (统筹区): the city (docs/spec/medical.md).
pub const DEFAULT_POOLING_AREA: &str = "621000";

/// Persons rechecked per write transaction by `RecheckPeriod` (keeps the writer free for other requests).
const RECHECK_PERSONS_PER_TX: usize = 2_000;

/// A settlement as submitted, parsed (`settlement.person` is filled here from the ID number).
#[derive(Debug, Clone)]
pub struct SettlementInput {
    pub id_number: IdNumber,
    pub division: DivisionCode,
    pub settlement: Settlement,
}

/// What happened to one submitted settlement.
#[derive(Debug, Clone)]
pub enum SettlementOutcome {
    /// Stored and checked: the recomputation and its findings (HIGH_BURDEN included).
    Accepted {
        check: SettlementCheck,
        findings: Vec<Finding>,
    },
    /// Same id and content as stored: nothing changed.
    Duplicate,
    Rejected {
        field: String,
        reason: String,
    },
}

/// Result of one submitted settlement (`index` = position in the request).
#[derive(Debug, Clone)]
pub struct SettlementResult {
    pub index: usize,
    pub settlement_id: String,
    pub outcome: SettlementOutcome,
}

/// A finding with the person's ID number, as a caller may see it.
#[derive(Debug, Clone)]
pub struct FindingView {
    pub finding: StoredFinding,
    pub id_number: IdNumber,
    /// The finding's latest answer (docs/findings.md), if any.
    pub answer: Option<crate::store::FindingAnswer>,
}

/// One page of `ListFindings`.
#[derive(Debug, Clone)]
pub struct FindingPage {
    pub findings: Vec<FindingView>,
    pub next_page_token: String,
    pub total_size: i64,
}

/// What `RecheckPeriod` did.
pub type RecheckReport = RecheckTally;

/// SHA-256 over the settlement's content in a fixed order (`|`-separated): person key (hex), division, admitted_on,
/// settled_on, visit type, in_province, referred, then the seven amounts in fen. Same id + same hash = DUPLICATE.
fn settlement_hash(s: &Settlement) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(hex::encode(s.person));
    let parts = [
        s.division_code.clone(),
        s.admitted_on.to_string(),
        s.settled_on.to_string(),
        s.visit_type.as_str().to_owned(),
        (s.in_province as u8).to_string(),
        (s.referred as u8).to_string(),
    ];
    for p in parts {
        h.update(b"|");
        h.update(p.as_bytes());
    }
    for m in [
        s.total_cost,
        s.policy_scope_cost,
        s.basic_paid,
        s.critical_illness_paid,
        s.medical_assistance_paid,
        s.other_paid,
        s.out_of_pocket,
    ] {
        h.update(b"|");
        h.update(m.to_fen().to_string().as_bytes());
    }
    h.finalize().into()
}

impl Hub {
    fn require_medical(&self, principal: &Principal, right: MedicalRight, what: &str) -> Result<(), HubError> {
        if self.policy.may_medical(principal.agency(), right) {
            Ok(())
        } else {
            Err(HubError::PermissionDenied(format!("agency {} may not {what}", principal.agency())))
        }
    }

    /// The policy versions held (all areas), for the cross-check.
    pub async fn medical_policies(&self) -> Result<Vec<StoredPolicy>, HubError> {
        Ok(self.store.medical_policies().await?)
    }

    /// GetPolicy: the versions in force on `as_of`, one per pooling area (of `pooling_area` only, unless empty), each
    /// with the day it stops being in force (the next version's first day) if a later version is held.
    ///
    /// Errors: INVALID_ARGUMENT `pooling_area` unless empty or six digits; the store's.
    pub async fn policies_in_force(
        &self,
        as_of: chrono::NaiveDate,
        pooling_area: &str,
    ) -> Result<Vec<(StoredPolicy, Option<chrono::NaiveDate>)>, HubError> {
        let area = if pooling_area.is_empty() {
            None
        } else if pooling_area.len() == 6 && pooling_area.bytes().all(|b| b.is_ascii_digit()) {
            Some(pooling_area)
        } else {
            return Err(HubError::invalid("pooling_area", "must be a six-digit division code, e.g. 621000"));
        };
        let all = self.store.medical_policies().await?;
        let params: Vec<PolicyParams> = all.iter().map(|p| p.params.clone()).collect();
        Ok(PolicyParams::all_in_force(&params, as_of, area)
            .into_iter()
            .filter_map(|p| all.iter().find(|s| s.params.version == p.version))
            .map(|s| (s.clone(), s.params.effective_to(&params)))
            .collect())
    }

    async fn policy_params(&self) -> Result<Vec<PolicyParams>, HubError> {
        Ok(self.store.medical_policies().await?.into_iter().map(|p| p.params).collect())
    }

    /// `SubmitSettlements`: validate each settlement (docs/spec/medical.md), store the valid ones, recheck the persons
    /// they touch and audit, in one transaction.
    ///
    /// Errors: PERMISSION_DENIED without the `submit_settlements` right; INVALID_ARGUMENT for an empty batch or one
    /// over `max_batch`. Per settlement: REJECTED naming the field (parse errors, outside the caller's county, the
    /// rules of [`Settlement::validate`], no policy in force on `settled_on`, an id stored with other content).
    pub async fn submit_settlements(
        &self,
        principal: &Principal,
        method: &str,
        inputs: Vec<(String, Result<SettlementInput, FieldError>)>,
    ) -> Result<Vec<SettlementResult>, HubError> {
        self.require_medical(principal, MedicalRight::SubmitSettlements, "submit settlements")?;
        if inputs.is_empty() {
            return Err(HubError::invalid("settlements", "is empty"));
        }
        if inputs.len() > self.limits.max_batch {
            return Err(HubError::invalid(
                "settlements",
                format!("{} settlements exceed the batch limit of {}", inputs.len(), self.limits.max_batch),
            ));
        }
        let policies = self.policy_params().await?;
        let agency = principal.agency().to_string();
        let mut results: Vec<SettlementResult> = Vec::with_capacity(inputs.len());
        let mut batch: Vec<NewSettlement> = Vec::new();
        let mut batch_at: Vec<usize> = Vec::new();
        let mut persons: Vec<NewPerson> = Vec::new();
        let mut seen: HashSet<PersonKey> = HashSet::new();
        for (index, (settlement_id, input)) in inputs.into_iter().enumerate() {
            let reject = |field: &str, reason: String| SettlementResult {
                index,
                settlement_id: settlement_id.clone(),
                outcome: SettlementOutcome::Rejected { field: field.to_owned(), reason },
            };
            let mut input = match input {
                Ok(i) => i,
                Err(e) => {
                    results.push(reject(&e.field, e.reason));
                    continue;
                }
            };
            if !principal.in_scope(&input.division) {
                results.push(reject(
                    "division_code",
                    format!(
                        "{} lies outside the caller's county {}",
                        named(input.division.as_str()),
                        named(&division_of(principal))
                    ),
                ));
                continue;
            }
            if let Err(e) = input.settlement.validate() {
                results.push(reject(&e.field, e.reason));
                continue;
            }
            let area = pooling_area_of(input.division.as_str(), &policies, DEFAULT_POOLING_AREA);
            if PolicyParams::in_force(&policies, &area, input.settlement.settled_on).is_none() {
                results.push(reject(
                    "settled_on",
                    format!(
                        "no medical policy version of pooling area {area} is in force on {} (see Reference.GetPolicy)",
                        input.settlement.settled_on
                    ),
                ));
                continue;
            }
            let key = self.person_row(&input.id_number, &mut seen, &mut persons);
            input.settlement.person = *key.as_bytes();
            let content_hash = settlement_hash(&input.settlement);
            batch_at.push(results.len());
            results.push(SettlementResult { index, settlement_id, outcome: SettlementOutcome::Duplicate });
            batch.push(NewSettlement { agency: agency.clone(), settlement: input.settlement, content_hash });
        }

        let rejected = results.len() - batch.len();
        let mut audit = AuditRecord {
            agency: agency.clone(),
            division: division_of(principal),
            via: via_of(principal),
            method: method.to_owned(),
            purpose: String::new(),
            outcome: String::new(),
            person_keys: seen.into_iter().collect(),
        };
        if batch.is_empty() {
            audit.outcome = format!("OK accepted=0 duplicate=0 rejected={rejected}");
            self.store.record_audit(&audit).await?;
            return Ok(results);
        }
        // The outcome counts are only known inside the transaction; the event records what was submitted.
        audit.outcome = format!("OK submitted={} rejected={rejected}", batch.len());
        let (outcomes, mut tally) = self
            .store
            .submit_settlements(&batch, &persons, &policies, DEFAULT_POOLING_AREA, &audit, self.clock.now())
            .await?;
        for ((slot, outcome), n) in batch_at.into_iter().zip(outcomes).zip(&batch) {
            results[slot].outcome = match outcome {
                SettlementInsert::Duplicate => SettlementOutcome::Duplicate,
                SettlementInsert::Conflict => SettlementOutcome::Rejected {
                    field: "settlement_id".into(),
                    reason: format!(
                        "{} was already submitted with other content; settlements are immutable, submit a \
                         correction under a new settlement_id",
                        n.settlement.settlement_id
                    ),
                },
                SettlementInsert::Accepted => {
                    let (check, findings) = tally.checks.remove(&n.settlement.settlement_id).unwrap_or_else(|| {
                        (
                            SettlementCheck {
                                settlement_id: n.settlement.settlement_id.clone(),
                                group: None,
                                policy_version: String::new(),
                                after_basic: Default::default(),
                                expected_cii: Default::default(),
                                residual: Default::default(),
                                expected_ma: Default::default(),
                                cap_left: Default::default(),
                                findings: Vec::new(),
                            },
                            Vec::new(),
                        )
                    });
                    SettlementOutcome::Accepted { check, findings }
                }
            };
        }
        Ok(results)
    }

    /// `ListFindings`: findings in the caller's scope (narrowed by `filter.division_prefix`), one page at a time, in
    /// (settled_on, settlement_id, code) order; audited with the persons listed.
    ///
    /// Errors: PERMISSION_DENIED without `read_findings` or outside the county; INVALID_ARGUMENT for `page_size`,
    /// `page_token`, a `to_date` before `from_date`, or a bad `purpose`.
    #[allow(clippy::too_many_arguments)]
    pub async fn list_findings(
        &self,
        principal: &Principal,
        method: &str,
        division: Option<DivisionCode>,
        mut filter: FindingFilter,
        page_size: usize,
        page_token: &str,
        purpose: &str,
    ) -> Result<FindingPage, HubError> {
        self.require_medical(principal, MedicalRight::ReadFindings, "read medical findings (person-level data)")?;
        let purpose = check_purpose(purpose)?;
        if let (Some(f), Some(t)) = (filter.from, filter.to)
            && t < f
        {
            return Err(HubError::invalid("to_date", format!("{t} is before from_date {f}")));
        }
        filter.division_prefix = storage_prefix(scoped_prefix(principal, division)?);
        let page_size = self.page_size(page_size)?;
        let fingerprint = {
            let mut h = Sha256::new();
            h.update(format!(
                "findings|{}|{:?}|{:?}|{:?}|{}|{:?}",
                filter.division_prefix, filter.from, filter.to, filter.code, filter.include_resolved, filter.answer
            ));
            h.finalize()[..8].to_vec()
        };
        let context = format!("{}|ListFindings", principal.spiffe_id());
        let after = if page_token.is_empty() {
            None
        } else {
            let bad = || HubError::invalid("page_token", "is not a token this list returned to this caller");
            let raw = self.keys.open_token(page_token, context.as_bytes()).ok_or_else(bad)?;
            if raw.len() < 8 {
                return Err(bad());
            }
            if raw[..8] != fingerprint[..] {
                return Err(HubError::invalid("page_token", "was issued for other filter values"));
            }
            let text = String::from_utf8(raw[8..].to_vec()).map_err(|_| bad())?;
            let parts: Vec<&str> = text.split('\u{1f}').collect();
            let [settled_on, settlement_id, code, agency] = parts[..] else { return Err(bad()) };
            Some(FindingCursor {
                settled_on: settled_on.to_owned(),
                settlement_id: settlement_id.to_owned(),
                code: code.to_owned(),
                agency: agency.to_owned(),
            })
        };
        let mut rows = self.store.list_findings(&filter, after.as_ref(), page_size + 1).await?;
        let more = rows.len() > page_size;
        rows.truncate(page_size);
        let next_page_token = match (more, rows.last()) {
            (true, Some(last)) => {
                let mut raw = fingerprint.clone();
                raw.extend_from_slice(
                    format!(
                        "{}\u{1f}{}\u{1f}{}\u{1f}{}",
                        last.settled_on,
                        last.settlement_id,
                        last.code.as_str(),
                        last.agency
                    )
                    .as_bytes(),
                );
                self.keys.seal_token(&raw, context.as_bytes())
            }
            _ => String::new(),
        };
        let total_size = self.store.count_findings(&filter).await?;
        let keys: Vec<PersonKey> = {
            let mut seen = HashSet::new();
            rows.iter().map(|f| f.person_key).filter(|k| seen.insert(*k)).collect()
        };
        let ciphers = self.store.person_ciphers(&keys).await?;
        let ids: Vec<FindingId> = rows.iter().map(finding_id_of).collect();
        let mut answers: std::collections::HashMap<FindingId, crate::store::FindingAnswer> =
            self.store.latest_finding_answers(&ids).await?.into_iter().map(|a| (a.finding.clone(), a)).collect();
        let mut findings = Vec::with_capacity(rows.len());
        for (f, id) in rows.into_iter().zip(ids) {
            let cipher = ciphers.get(&f.person_key).ok_or(KeyError::Decrypt)?;
            let id_number = self.keys.decrypt(cipher, &f.person_key)?;
            findings.push(FindingView { finding: f, id_number, answer: answers.remove(&id) });
        }
        self.store
            .record_audit(&audit_of(principal, method, purpose, format!("OK listed={}", findings.len()), keys))
            .await?;
        Ok(FindingPage { findings, next_page_token, total_size })
    }

    /// `RecheckPeriod`: recheck every person (in the caller's scope) with a settlement settled in `[from, to]`, in
    /// transactions of [`RECHECK_PERSONS_PER_TX`] persons, each with its audit event.
    ///
    /// Errors: PERMISSION_DENIED without the `recheck` right; INVALID_ARGUMENT for `to_date` before `from_date`.
    pub async fn recheck_period(
        &self,
        principal: &Principal,
        method: &str,
        from: NaiveDate,
        to: NaiveDate,
        purpose: &str,
    ) -> Result<RecheckReport, HubError> {
        self.require_medical(principal, MedicalRight::Recheck, "recheck medical settlements")?;
        let purpose = check_purpose(purpose)?;
        if to < from {
            return Err(HubError::invalid("to_date", format!("{to} is before from_date {from}")));
        }
        let prefix = storage_prefix(scoped_prefix(principal, None)?);
        let persons = self.store.persons_with_settlements(from, to, &prefix).await?;
        let policies = self.policy_params().await?;
        let mut tally = RecheckTally::default();
        let audit = |keys: &[PersonKey], part: usize, parts: usize| {
            audit_of(principal, method, purpose.clone(), format!("OK {from}..{to} part {part}/{parts}"), keys.to_vec())
        };
        if persons.is_empty() {
            self.store.record_audit(&audit(&[], 0, 0)).await?;
            return Ok(tally);
        }
        let parts = persons.len().div_ceil(RECHECK_PERSONS_PER_TX);
        for (i, chunk) in persons.chunks(RECHECK_PERSONS_PER_TX).enumerate() {
            self.store
                .recheck_persons(
                    chunk,
                    &policies,
                    DEFAULT_POOLING_AREA,
                    Some(&audit(chunk, i + 1, parts)),
                    self.clock.now(),
                    &mut tally,
                )
                .await?;
        }
        Ok(tally)
    }
}

/// A stored finding's identity (docs/findings.md): `medical/<agency>/<settlement_id>/<code>`.
pub fn finding_id_of(f: &StoredFinding) -> FindingId {
    FindingId { agency: f.agency.clone(), settlement_id: f.settlement_id.clone(), code: f.code }
}
