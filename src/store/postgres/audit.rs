//! PostgreSQL: reading and verifying the audit log (security.md), written once for both backends in
//! `store/sql/audit.rs`.

use sqlx::Row as _;

use super::value;
use crate::store::rows::*;
use crate::store::{PgStore, StoreError};

/// The driver the shared SQL runs on.
type Db = sqlx::Postgres;

audit_log!(PgStore);
