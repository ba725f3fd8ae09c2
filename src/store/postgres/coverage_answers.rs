//! PostgreSQL: answers to the coverage findings of snapshots (migration 0020, docs/findings.md), written
//! once for both backends in `store/sql/coverage_answers.rs`.

use super::audit::append_audit;
use super::{PgStore, value};
use crate::store::{StoreError, corrupt};

/// The driver the shared SQL runs on.
type Db = sqlx::Postgres;

coverage_answers_store!(PgStore);
