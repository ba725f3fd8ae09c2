//! PostgreSQL: retention periods, legal holds and the resumable purge (migration 0015, docs/retention.md), written
//! once for both backends in `store/sql/retention.rs`.

use super::audit::append_audit;
use super::{PgStore, value};
use crate::store::StoreError;

/// The driver the shared SQL runs on.
type Db = sqlx::Postgres;

/// The facts' monthly benefit column: NUMERIC yuan.
const BENEFIT: &str = "benefit";

/// `is_current` of a superseded version, as the partial index `facts_superseded` names it.
const NOT_CURRENT: &str = "false";

retention_store!(PgStore);
