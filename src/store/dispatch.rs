//! The one storage interface: [`Store`] is the SQLite or the PostgreSQL backend, chosen at start from the database
//! URL (`sqlite://…` or `postgres://…`). Every operation the hub uses is a method here that forwards to the
//! backend; the two implementations are [`SqliteStore`] (`store/sqlite.rs` and the area files beside it) and
//! [`PgStore`] (`store/pg/`). Both run the same end-to-end conformance suite (`tests/api`, `tests/api_pg`).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};

use super::*;
use crate::crypto::PersonKey;
use crate::domain::medical::{FindingCode, PolicyParams};
use crate::domain::versioning::Decision;
use crate::domain::workdays::CalendarEntry;
use crate::store::rows::*;

/// The hub's store: one of the two backends.
#[derive(Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Store {
    /// Open the database named by `url`: `sqlite://PATH` (created if missing) or `postgres://…` /
    /// `postgresql://…` (the database must exist). Migrations are not applied here: see [`Store::migrate`].
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Store::Postgres(PgStore::open(url).await?))
        } else {
            Ok(Store::Sqlite(SqliteStore::open(url).await?))
        }
    }

    /// `"sqlite"` or `"postgres"` (logs, metrics, `config show`).
    pub fn backend_name(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Connections of each pool: `(pool, open, idle)` (for metrics).
    pub fn pool_use(&self) -> Vec<(&'static str, u32, usize)> {
        match self {
            Store::Sqlite(s) => s.pool_use().to_vec(),
            Store::Postgres(p) => p.pool_use().to_vec(),
        }
    }

    /// The SQLite read pool, for tests and the benchmark floor; `None` on PostgreSQL.
    pub fn sqlite_pool(&self) -> Option<&sqlx::SqlitePool> {
        match self {
            Store::Sqlite(s) => Some(s.pool()),
            Store::Postgres(_) => None,
        }
    }

    /// The PostgreSQL pool, for tests and the benchmark floor; `None` on SQLite.
    pub fn pg_pool(&self) -> Option<&sqlx::PgPool> {
        match self {
            Store::Sqlite(_) => None,
            Store::Postgres(p) => Some(p.pool()),
        }
    }

    pub async fn list_audit_events(
        &self,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditEventRow>, StoreError> {
        match self {
            Store::Sqlite(s) => s.list_audit_events(filter, before, limit).await,
            Store::Postgres(p) => p.list_audit_events(filter, before, limit).await,
        }
    }

    pub async fn verify_audit_chain(&self) -> Result<ChainCheck, StoreError> {
        match self {
            Store::Sqlite(s) => s.verify_audit_chain().await,
            Store::Postgres(p) => p.verify_audit_chain().await,
        }
    }

    pub async fn bench_insert_rows(&self, facts: &[PreparedFact], persons: &[NewPerson]) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.bench_insert_rows(facts, persons).await,
            Store::Postgres(p) => p.bench_insert_rows(facts, persons).await,
        }
    }

    pub async fn change_log_head(&self) -> Result<i64, StoreError> {
        match self {
            Store::Sqlite(s) => s.change_log_head().await,
            Store::Postgres(p) => p.change_log_head().await,
        }
    }

    pub async fn change_log_oldest(&self) -> Result<Option<i64>, StoreError> {
        match self {
            Store::Sqlite(s) => s.change_log_oldest().await,
            Store::Postgres(p) => p.change_log_oldest().await,
        }
    }

    pub fn subscribe_changes(&self) -> tokio::sync::watch::Receiver<i64> {
        match self {
            Store::Sqlite(s) => s.subscribe_changes(),
            Store::Postgres(p) => p.subscribe_changes(),
        }
    }

    pub async fn changes_after(
        &self,
        filter: &ChangeFilter,
        after: i64,
        upto: i64,
        limit: usize,
    ) -> Result<Vec<ChangeRow>, StoreError> {
        match self {
            Store::Sqlite(s) => s.changes_after(filter, after, upto, limit).await,
            Store::Postgres(p) => p.changes_after(filter, after, upto, limit).await,
        }
    }

    pub async fn submit_fund_report(&self, r: &NewFundReport) -> Result<StoredFundReport, StoreError> {
        match self {
            Store::Sqlite(s) => s.submit_fund_report(r).await,
            Store::Postgres(p) => p.submit_fund_report(r).await,
        }
    }

    pub async fn fund_reports(&self, month: &str, program: Option<&str>) -> Result<Vec<StoredFundReport>, StoreError> {
        match self {
            Store::Sqlite(s) => s.fund_reports(month, program).await,
            Store::Postgres(p) => p.fund_reports(month, program).await,
        }
    }

    pub async fn roster_benefit_fen(
        &self,
        county: &str,
        program: &str,
        residence: Option<&str>,
        on: NaiveDate,
    ) -> Result<i128, StoreError> {
        match self {
            Store::Sqlite(s) => s.roster_benefit_fen(county, program, residence, on).await,
            Store::Postgres(p) => p.roster_benefit_fen(county, program, residence, on).await,
        }
    }

    pub async fn push_warnings(
        &self,
        warnings: &[NewWarning],
        persons: &[NewPerson],
        audit: &AuditRecord,
    ) -> Result<Vec<WarningInsert>, StoreError> {
        match self {
            Store::Sqlite(s) => s.push_warnings(warnings, persons, audit).await,
            Store::Postgres(p) => p.push_warnings(warnings, persons, audit).await,
        }
    }

    pub async fn warning(&self, agency: &str, warning_id: &str) -> Result<Option<StoredWarning>, StoreError> {
        match self {
            Store::Sqlite(s) => s.warning(agency, warning_id).await,
            Store::Postgres(p) => p.warning(agency, warning_id).await,
        }
    }

    pub async fn update_warning(
        &self,
        agency: &str,
        warning_id: &str,
        from_state: &str,
        u: &WarningUpdate,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.update_warning(agency, warning_id, from_state, u, audit).await,
            Store::Postgres(p) => p.update_warning(agency, warning_id, from_state, u, audit).await,
        }
    }

    pub async fn list_warnings(&self, prefix: &str) -> Result<Vec<StoredWarning>, StoreError> {
        match self {
            Store::Sqlite(s) => s.list_warnings(prefix).await,
            Store::Postgres(p) => p.list_warnings(prefix).await,
        }
    }

    pub async fn work_calendar(&self) -> Result<Vec<CalendarEntry>, StoreError> {
        match self {
            Store::Sqlite(s) => s.work_calendar().await,
            Store::Postgres(p) => p.work_calendar().await,
        }
    }

    /// Every version of every year's holiday notice, by year and version (migration 0008).
    pub async fn calendar_notices(&self) -> Result<Vec<super::StoredNotice>, StoreError> {
        match self {
            Store::Sqlite(s) => s.calendar_notices().await,
            Store::Postgres(p) => p.calendar_notices().await,
        }
    }

    /// Write one load of a year's notice in one transaction, running `plan` there on the warnings it may move, or
    /// `Raced` and nothing written when another notice was loaded meanwhile ([`super::NoticeLoad`]).
    pub async fn load_calendar_notice(
        &self,
        load: &super::NoticeLoad,
        plan: super::DeadlinePlan<'_>,
    ) -> Result<super::NoticeLoaded, StoreError> {
        match self {
            Store::Sqlite(s) => s.load_calendar_notice(load, plan).await,
            Store::Postgres(p) => p.load_calendar_notice(load, plan).await,
        }
    }

    /// The recorded deadline changes of the warnings with these ids, oldest first.
    pub async fn warning_deadline_changes(
        &self,
        warning_ids: &[String],
    ) -> Result<Vec<super::StoredDeadlineChange>, StoreError> {
        match self {
            Store::Sqlite(s) => s.warning_deadline_changes(warning_ids).await,
            Store::Postgres(p) => p.warning_deadline_changes(warning_ids).await,
        }
    }

    pub async fn coordination_counts(&self) -> Result<(i64, i64), StoreError> {
        match self {
            Store::Sqlite(s) => s.coordination_counts().await,
            Store::Postgres(p) => p.coordination_counts().await,
        }
    }

    pub async fn meta(&self, name: &str) -> Option<Vec<u8>> {
        match self {
            Store::Sqlite(s) => s.meta(name).await,
            Store::Postgres(p) => p.meta(name).await,
        }
    }

    pub async fn rotation_begin(
        &self,
        old_check: &[u8; 32],
        new_check: &[u8; 32],
        lookup_wrapped_new: &[u8],
    ) -> Result<RotationStart, StoreError> {
        match self {
            Store::Sqlite(s) => s.rotation_begin(old_check, new_check, lookup_wrapped_new).await,
            Store::Postgres(p) => p.rotation_begin(old_check, new_check, lookup_wrapped_new).await,
        }
    }

    pub async fn persons_to_rotate(
        &self,
        generation: i64,
        limit: usize,
    ) -> Result<Vec<(PersonKey, Vec<u8>)>, StoreError> {
        match self {
            Store::Sqlite(s) => s.persons_to_rotate(generation, limit).await,
            Store::Postgres(p) => p.persons_to_rotate(generation, limit).await,
        }
    }

    pub async fn rotate_persons(&self, rows: &[(PersonKey, Vec<u8>)], generation: i64) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(s) => s.rotate_persons(rows, generation).await,
            Store::Postgres(p) => p.rotate_persons(rows, generation).await,
        }
    }

    pub async fn rotation_finish(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.rotation_finish().await,
            Store::Postgres(p) => p.rotation_finish().await,
        }
    }

    pub async fn medical_policies(&self) -> Result<Vec<StoredPolicy>, StoreError> {
        match self {
            Store::Sqlite(s) => s.medical_policies().await,
            Store::Postgres(p) => p.medical_policies().await,
        }
    }

    pub async fn add_medical_policy(&self, p: &StoredPolicy) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(st) => st.add_medical_policy(p).await,
            Store::Postgres(pg) => pg.add_medical_policy(p).await,
        }
    }

    pub async fn submit_settlements(
        &self,
        batch: &[NewSettlement],
        persons: &[NewPerson],
        policies: &[PolicyParams],
        default_area: &str,
        audit: &AuditRecord,
        now: DateTime<Utc>,
    ) -> Result<(Vec<SettlementInsert>, RecheckTally), StoreError> {
        match self {
            Store::Sqlite(s) => s.submit_settlements(batch, persons, policies, default_area, audit, now).await,
            Store::Postgres(p) => p.submit_settlements(batch, persons, policies, default_area, audit, now).await,
        }
    }

    pub async fn persons_with_settlements(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        prefix: &str,
    ) -> Result<Vec<PersonKey>, StoreError> {
        match self {
            Store::Sqlite(s) => s.persons_with_settlements(from, to, prefix).await,
            Store::Postgres(p) => p.persons_with_settlements(from, to, prefix).await,
        }
    }

    pub async fn recheck_persons(
        &self,
        persons: &[PersonKey],
        policies: &[PolicyParams],
        default_area: &str,
        audit: Option<&AuditRecord>,
        now: DateTime<Utc>,
        tally: &mut RecheckTally,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.recheck_persons(persons, policies, default_area, audit, now, tally).await,
            Store::Postgres(p) => p.recheck_persons(persons, policies, default_area, audit, now, tally).await,
        }
    }

    pub async fn list_findings(
        &self,
        filter: &FindingFilter,
        after: Option<&FindingCursor>,
        limit: usize,
    ) -> Result<Vec<StoredFinding>, StoreError> {
        match self {
            Store::Sqlite(s) => s.list_findings(filter, after, limit).await,
            Store::Postgres(p) => p.list_findings(filter, after, limit).await,
        }
    }

    pub async fn count_findings(&self, filter: &FindingFilter) -> Result<i64, StoreError> {
        match self {
            Store::Sqlite(s) => s.count_findings(filter).await,
            Store::Postgres(p) => p.count_findings(filter).await,
        }
    }

    pub async fn open_findings_by_code(&self) -> Result<BTreeMap<FindingCode, i64>, StoreError> {
        match self {
            Store::Sqlite(s) => s.open_findings_by_code().await,
            Store::Postgres(p) => p.open_findings_by_code().await,
        }
    }

    pub async fn settlement_totals(&self) -> Result<(i64, i128, i128, i128), StoreError> {
        match self {
            Store::Sqlite(s) => s.settlement_totals().await,
            Store::Postgres(p) => p.settlement_totals().await,
        }
    }

    pub async fn create_snapshot(&self, input: SnapshotInput<'_>) -> Result<CreateOutcome, StoreError> {
        match self {
            Store::Sqlite(s) => s.create_snapshot(input).await,
            Store::Postgres(p) => p.create_snapshot(input).await,
        }
    }

    pub async fn snapshot(&self, quarter: &str) -> Result<Option<SnapshotHeader>, StoreError> {
        match self {
            Store::Sqlite(s) => s.snapshot(quarter).await,
            Store::Postgres(p) => p.snapshot(quarter).await,
        }
    }

    pub async fn snapshots(&self) -> Result<Vec<SnapshotHeader>, StoreError> {
        match self {
            Store::Sqlite(s) => s.snapshots().await,
            Store::Postgres(p) => p.snapshots().await,
        }
    }

    pub async fn snapshot_section(&self, quarter: &str, section: &str) -> Result<Option<String>, StoreError> {
        match self {
            Store::Sqlite(s) => s.snapshot_section(quarter, section).await,
            Store::Postgres(p) => p.snapshot_section(quarter, section).await,
        }
    }

    pub async fn snapshot_coverage_counts(
        &self,
        quarter: &str,
    ) -> Result<Vec<(String, String, String, u64)>, StoreError> {
        match self {
            Store::Sqlite(s) => s.snapshot_coverage_counts(quarter).await,
            Store::Postgres(p) => p.snapshot_coverage_counts(quarter).await,
        }
    }

    pub async fn active_by_county_program(
        &self,
        on: NaiveDate,
    ) -> Result<HashMap<(String, String), (u64, u64, i128)>, StoreError> {
        match self {
            Store::Sqlite(s) => s.active_by_county_program(on).await,
            Store::Postgres(p) => p.active_by_county_program(on).await,
        }
    }

    pub async fn findings_by_code_between(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        match self {
            Store::Sqlite(s) => s.findings_by_code_between(from, to).await,
            Store::Postgres(p) => p.findings_by_code_between(from, to).await,
        }
    }

    pub async fn verify_snapshot(&self, quarter: &str) -> Result<Option<Verification>, StoreError> {
        match self {
            Store::Sqlite(s) => s.verify_snapshot(quarter).await,
            Store::Postgres(p) => p.verify_snapshot(quarter).await,
        }
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.migrate().await,
            Store::Postgres(p) => p.migrate().await,
        }
    }

    /// Apply the migrations numbered up to `version` only (tests of a database made by an earlier release).
    #[doc(hidden)]
    pub async fn migrate_to(&self, version: i64) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.migrate_to(version).await,
            Store::Postgres(p) => p.migrate_to(version).await,
        }
    }

    pub async fn close(&self) {
        match self {
            Store::Sqlite(s) => s.close().await,
            Store::Postgres(p) => p.close().await,
        }
    }

    pub async fn ingest(
        &self,
        facts: &[PreparedFact],
        persons: &[NewPerson],
        audit: Option<&AuditRecord>,
    ) -> Result<Vec<Decision>, StoreError> {
        match self {
            Store::Sqlite(s) => s.ingest(facts, persons, audit).await,
            Store::Postgres(p) => p.ingest(facts, persons, audit).await,
        }
    }

    pub async fn verify_key_check(&self, check: &[u8; 32]) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.verify_key_check(check).await,
            Store::Postgres(p) => p.verify_key_check(check).await,
        }
    }

    pub async fn record_audit(&self, audit: &AuditRecord) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.record_audit(audit).await,
            Store::Postgres(p) => p.record_audit(audit).await,
        }
    }

    pub async fn person_cipher(&self, key: &PersonKey) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Store::Sqlite(s) => s.person_cipher(key).await,
            Store::Postgres(p) => p.person_cipher(key).await,
        }
    }

    pub async fn person_ciphers(&self, keys: &[PersonKey]) -> Result<HashMap<PersonKey, Vec<u8>>, StoreError> {
        match self {
            Store::Sqlite(s) => s.person_ciphers(keys).await,
            Store::Postgres(p) => p.person_ciphers(keys).await,
        }
    }

    pub async fn person_facts(&self, key: &PersonKey, as_of: NaiveDate) -> Result<Vec<StoredFact>, StoreError> {
        match self {
            Store::Sqlite(s) => s.person_facts(key, as_of).await,
            Store::Postgres(p) => p.person_facts(key, as_of).await,
        }
    }

    pub async fn facts_of_persons(&self, keys: &[PersonKey], as_of: NaiveDate) -> Result<Vec<StoredFact>, StoreError> {
        match self {
            Store::Sqlite(s) => s.facts_of_persons(keys, as_of).await,
            Store::Postgres(p) => p.facts_of_persons(keys, as_of).await,
        }
    }

    pub async fn list_persons(
        &self,
        filter: &PersonFilter,
        after: Option<&PersonKey>,
        limit: usize,
    ) -> Result<Vec<PersonKey>, StoreError> {
        match self {
            Store::Sqlite(s) => s.list_persons(filter, after, limit).await,
            Store::Postgres(p) => p.list_persons(filter, after, limit).await,
        }
    }

    pub async fn count_persons(&self, filter: &PersonFilter) -> Result<i64, StoreError> {
        match self {
            Store::Sqlite(s) => s.count_persons(filter).await,
            Store::Postgres(p) => p.count_persons(filter).await,
        }
    }

    pub async fn list_standards(&self, year: Option<i64>) -> Result<Vec<StandardRow>, StoreError> {
        match self {
            Store::Sqlite(s) => s.list_standards(year).await,
            Store::Postgres(p) => p.list_standards(year).await,
        }
    }

    pub async fn list_divisions(&self) -> Result<Vec<DivisionRow>, StoreError> {
        match self {
            Store::Sqlite(s) => s.list_divisions().await,
            Store::Postgres(p) => p.list_divisions().await,
        }
    }

    pub async fn audit_chain_length(&self) -> Result<i64, StoreError> {
        match self {
            Store::Sqlite(s) => s.audit_chain_length().await,
            Store::Postgres(p) => p.audit_chain_length().await,
        }
    }

    pub async fn audit_count(&self) -> Result<i64, StoreError> {
        match self {
            Store::Sqlite(s) => s.audit_count().await,
            Store::Postgres(p) => p.audit_count().await,
        }
    }

    pub async fn fact_version_count(&self) -> Result<i64, StoreError> {
        match self {
            Store::Sqlite(s) => s.fact_version_count().await,
            Store::Postgres(p) => p.fact_version_count().await,
        }
    }
}
