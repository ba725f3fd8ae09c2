//! Stubs of the PostgreSQL operations not yet ported. Each area's port moves its functions into `pg/<area>.rs`;
//! this file is deleted when it is empty.
#![allow(clippy::too_many_arguments)]

use std::collections::HashMap;

use chrono::NaiveDate;

use super::PgStore;
use crate::crypto::PersonKey;
use crate::store::*;

// ---- audit
impl PgStore {
    pub async fn list_audit_events(
        &self,
        _filter: &AuditFilter,
        _before: Option<i64>,
        _limit: usize,
    ) -> Result<Vec<AuditEventRow>, StoreError> {
        unimplemented!("PostgreSQL: list_audit_events")
    }

    pub async fn verify_audit_chain(&self) -> Result<ChainCheck, StoreError> {
        unimplemented!("PostgreSQL: verify_audit_chain")
    }
}

// ---- bench
impl PgStore {
    pub async fn bench_insert_rows(&self, _facts: &[PreparedFact], _persons: &[NewPerson]) -> Result<(), StoreError> {
        unimplemented!("PostgreSQL: bench_insert_rows")
    }
}

// ---- changes
impl PgStore {
    pub async fn changes_after(
        &self,
        _filter: &ChangeFilter,
        _after: i64,
        _upto: i64,
        _limit: usize,
    ) -> Result<Vec<ChangeRow>, StoreError> {
        unimplemented!("PostgreSQL: changes_after")
    }
}

// ---- keys
impl PgStore {
    pub async fn rotation_begin(
        &self,
        _old_check: &[u8; 32],
        _new_check: &[u8; 32],
        _lookup_wrapped_new: &[u8],
    ) -> Result<RotationStart, StoreError> {
        unimplemented!("PostgreSQL: rotation_begin")
    }

    pub async fn persons_to_rotate(
        &self,
        _generation: i64,
        _limit: usize,
    ) -> Result<Vec<(PersonKey, Vec<u8>)>, StoreError> {
        unimplemented!("PostgreSQL: persons_to_rotate")
    }

    pub async fn rotate_persons(&self, _rows: &[(PersonKey, Vec<u8>)], _generation: i64) -> Result<u64, StoreError> {
        unimplemented!("PostgreSQL: rotate_persons")
    }

    pub async fn rotation_finish(&self) -> Result<(), StoreError> {
        unimplemented!("PostgreSQL: rotation_finish")
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
