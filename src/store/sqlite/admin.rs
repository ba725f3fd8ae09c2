//! SQLite: administrative audit events and the change requests of the two-person rule (migration 0016,
//! docs/admin.md), written once for both backends in `store/sql/admin.rs`.

use super::{append_audit, value};
use crate::store::{SqliteStore, StoreError};

/// The driver the shared SQL runs on.
type Db = sqlx::Sqlite;

admin_store!(SqliteStore);
