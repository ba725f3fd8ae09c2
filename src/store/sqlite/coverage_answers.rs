//! SQLite: answers to the coverage findings of snapshots (migration 0020, docs/findings.md), written
//! once for both backends in `store/sql/coverage_answers.rs`.

use super::{append_audit, corrupt, value};
use crate::store::{SqliteStore, StoreError};

/// The driver the shared SQL runs on.
type Db = sqlx::Sqlite;

coverage_answers_store!(SqliteStore);
