//! The backend-neutral halves of the store's work: each backend loads rows, calls these, and writes the result, so
//! the rules live once. No SQL here.
//!
//! - `ingest`: the version decisions of a batch and the rows they write;
//! - `audit`: the audit chain recomputed from stored rows;
//! - `recheck`: the medical recheck of persons (findings to add, update, reopen, resolve; HIGH_BURDEN warnings);
//! - `snapshot`: the status pass, aggregates, sections, sealing and verification checks of a quarterly snapshot.

mod audit;
mod ingest;
mod recheck;
mod snapshot;

pub(crate) use audit::*;
pub(crate) use ingest::{Current, IngestPlan, plan_ingest, split_decisions};
pub(crate) use recheck::*;
pub(crate) use snapshot::*;

/// Whether the `(year, newest version)` rows read in a calendar load's transaction are the ones its plan was made
/// from (`NoticeLoad::expected_versions`).
pub(crate) fn same_versions(held: &[(i64, i64)], expected: &[(i32, i64)]) -> bool {
    held.len() == expected.len() && held.iter().zip(expected).all(|(h, e)| h.0 == i64::from(e.0) && h.1 == e.1)
}
