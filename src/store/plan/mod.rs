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
pub(crate) use ingest::{Current, IngestPlan, plan_ingest};
pub(crate) use recheck::*;
pub(crate) use snapshot::*;
