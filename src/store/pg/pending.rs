//! Stubs of the PostgreSQL operations not yet ported. Each area's port moves its functions into `pg/<area>.rs`;
//! this file is deleted when it is empty.
#![allow(clippy::too_many_arguments)]

use std::collections::HashMap;

use chrono::NaiveDate;

use super::PgStore;
use crate::store::*;

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
