//! SQLite: retention periods, legal holds and the resumable purge (migration 0015, docs/retention.md), written once
//! for both backends in `store/sql/retention.rs`.

use super::{append_audit, value};
use crate::store::{SqliteStore, StoreError};

/// The driver the shared SQL runs on.
type Db = sqlx::Sqlite;

/// The facts' monthly benefit column: INTEGER fen.
const BENEFIT: &str = "benefit_fen";

/// `is_current` of a superseded version, as the partial index `facts_superseded` names it.
const NOT_CURRENT: &str = "0";

retention_store!(SqliteStore);
