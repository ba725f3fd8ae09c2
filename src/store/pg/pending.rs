//! Stubs of the PostgreSQL operations not yet ported. Each area's port moves its functions into `pg/<area>.rs`;
//! this file is deleted when it is empty.
#![allow(clippy::too_many_arguments)]

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};

use super::PgStore;
use crate::crypto::PersonKey;
use crate::domain::medical::{FindingCode, PolicyParams};
use crate::domain::workdays::CalendarEntry;
use crate::store::*;

// ---- coordination
impl PgStore {
    pub async fn submit_fund_report(&self, _r: &NewFundReport) -> Result<StoredFundReport, StoreError> {
        unimplemented!("PostgreSQL: submit_fund_report")
    }

    pub async fn fund_reports(
        &self,
        _month: &str,
        _program: Option<&str>,
    ) -> Result<Vec<StoredFundReport>, StoreError> {
        unimplemented!("PostgreSQL: fund_reports")
    }

    pub async fn roster_benefit_fen(
        &self,
        _county: &str,
        _program: &str,
        _residence: Option<&str>,
        _on: NaiveDate,
    ) -> Result<i64, StoreError> {
        unimplemented!("PostgreSQL: roster_benefit_fen")
    }

    pub async fn push_warnings(
        &self,
        _warnings: &[NewWarning],
        _persons: &[NewPerson],
        _audit: &AuditRecord,
    ) -> Result<Vec<WarningInsert>, StoreError> {
        unimplemented!("PostgreSQL: push_warnings")
    }

    pub async fn warning(&self, _agency: &str, _warning_id: &str) -> Result<Option<StoredWarning>, StoreError> {
        unimplemented!("PostgreSQL: warning")
    }

    pub async fn update_warning(
        &self,
        _agency: &str,
        _warning_id: &str,
        _from_state: &str,
        _u: &WarningUpdate,
        _audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        unimplemented!("PostgreSQL: update_warning")
    }

    pub async fn list_warnings(&self, _prefix: &str) -> Result<Vec<StoredWarning>, StoreError> {
        unimplemented!("PostgreSQL: list_warnings")
    }

    pub async fn work_calendar(&self) -> Result<Vec<CalendarEntry>, StoreError> {
        unimplemented!("PostgreSQL: work_calendar")
    }

    pub async fn coordination_counts(&self) -> Result<(i64, i64), StoreError> {
        unimplemented!("PostgreSQL: coordination_counts")
    }
}

// ---- medical
impl PgStore {
    pub async fn medical_policies(&self) -> Result<Vec<StoredPolicy>, StoreError> {
        unimplemented!("PostgreSQL: medical_policies")
    }

    pub async fn add_medical_policy(&self, _p: &StoredPolicy) -> Result<bool, StoreError> {
        unimplemented!("PostgreSQL: add_medical_policy")
    }

    pub async fn submit_settlements(
        &self,
        _batch: &[NewSettlement],
        _persons: &[NewPerson],
        _policies: &[PolicyParams],
        _default_area: &str,
        _audit: &AuditRecord,
        _now: DateTime<Utc>,
    ) -> Result<(Vec<SettlementInsert>, RecheckTally), StoreError> {
        unimplemented!("PostgreSQL: submit_settlements")
    }

    pub async fn persons_with_settlements(
        &self,
        _from: NaiveDate,
        _to: NaiveDate,
        _prefix: &str,
    ) -> Result<Vec<PersonKey>, StoreError> {
        unimplemented!("PostgreSQL: persons_with_settlements")
    }

    pub async fn recheck_persons(
        &self,
        _persons: &[PersonKey],
        _policies: &[PolicyParams],
        _default_area: &str,
        _audit: Option<&AuditRecord>,
        _now: DateTime<Utc>,
        _tally: &mut RecheckTally,
    ) -> Result<(), StoreError> {
        unimplemented!("PostgreSQL: recheck_persons")
    }

    pub async fn list_findings(
        &self,
        _filter: &FindingFilter,
        _after: Option<&FindingCursor>,
        _limit: usize,
    ) -> Result<Vec<StoredFinding>, StoreError> {
        unimplemented!("PostgreSQL: list_findings")
    }

    pub async fn count_findings(&self, _filter: &FindingFilter) -> Result<i64, StoreError> {
        unimplemented!("PostgreSQL: count_findings")
    }

    pub async fn open_findings_by_code(&self) -> Result<BTreeMap<FindingCode, i64>, StoreError> {
        unimplemented!("PostgreSQL: open_findings_by_code")
    }

    pub async fn settlement_totals(&self) -> Result<(i64, i64, i64, i64), StoreError> {
        unimplemented!("PostgreSQL: settlement_totals")
    }
}

// ---- snapshot
impl PgStore {
    pub async fn create_snapshot(&self, _input: SnapshotInput<'_>) -> Result<CreateOutcome, StoreError> {
        unimplemented!("PostgreSQL: create_snapshot")
    }

    pub async fn snapshot(&self, _quarter: &str) -> Result<Option<SnapshotHeader>, StoreError> {
        unimplemented!("PostgreSQL: snapshot")
    }

    pub async fn snapshots(&self) -> Result<Vec<SnapshotHeader>, StoreError> {
        unimplemented!("PostgreSQL: snapshots")
    }

    pub async fn snapshot_section(&self, _quarter: &str, _section: &str) -> Result<Option<String>, StoreError> {
        unimplemented!("PostgreSQL: snapshot_section")
    }

    pub async fn snapshot_coverage_counts(
        &self,
        _quarter: &str,
    ) -> Result<Vec<(String, String, String, u64)>, StoreError> {
        unimplemented!("PostgreSQL: snapshot_coverage_counts")
    }

    pub async fn active_by_county_program(
        &self,
        _on: NaiveDate,
    ) -> Result<HashMap<(String, String), (u64, u64, i64)>, StoreError> {
        unimplemented!("PostgreSQL: active_by_county_program")
    }

    pub async fn findings_by_code_between(
        &self,
        _from: NaiveDate,
        _to: NaiveDate,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        unimplemented!("PostgreSQL: findings_by_code_between")
    }

    pub async fn verify_snapshot(&self, _quarter: &str) -> Result<Option<Verification>, StoreError> {
        unimplemented!("PostgreSQL: verify_snapshot")
    }
}
