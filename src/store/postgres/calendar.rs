//! PostgreSQL: the working-day calendar's notices, their versions and the warning deadline changes a load makes
//! (migration 0008). The implementation is written once for both backends: `store/sql/calendar.rs`.

use sqlx::Row as _;

use super::audit::append_audit;
use super::coordination::{WARNING_COLUMNS, warning};
use super::value;
use crate::domain::workdays::CalendarEntry;
use crate::store::corrupt;
use crate::store::rows::*;
use crate::store::{PgStore, StoreError};

/// The driver the shared SQL runs on.
type Db = sqlx::Postgres;

calendar_store!(PgStore);
