//! SQLite: persons and their facts read back, reference data, counts, the data key check and the audit event of a
//! read, written once for both backends in `store/sql/facts.rs` (the ingest write path is the backend's own).

use sqlx::Row as _;

use super::{comparison_fact, stored_fact, value};
use crate::store::{SqliteStore, StoreError};

/// The driver the shared SQL runs on.
type Db = sqlx::Sqlite;

fact_reads!(SqliteStore);
