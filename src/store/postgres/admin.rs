//! PostgreSQL: administrative audit events and the change requests of the two-person rule (migration 0016,
//! docs/admin.md), written once for both backends in `store/sql/admin.rs`.

use super::audit::append_audit;
use super::{PgStore, value};
use crate::store::StoreError;

/// The driver the shared SQL runs on.
type Db = sqlx::Postgres;

admin_store!(PgStore);
