//! SQLite: the partner agencies' signatures of frozen quarters (migration 0018, docs/countersign.md), written once for
//! both backends in `store/sql/countersign.rs`.

use super::{append_audit, value};
use crate::store::{SqliteStore, StoreError};

countersign_store!(SqliteStore);
