//! PostgreSQL: the partner agencies' signatures of frozen quarters (migration 0018, docs/countersign.md), written once
//! for both backends in `store/sql/countersign.rs`.

use super::audit::append_audit;
use super::{PgStore, value};
use crate::store::StoreError;

countersign_store!(PgStore);
