//! The store's error, and the conversion of a stored value that does not read back into one.

use crate::domain::workdays::DayKind;

/// Errors of the store. Messages are for logs; clients get a generic INTERNAL.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// An error of the SQLite ingest's direct row work (`store/sqlite/direct.rs`, rusqlite on the writer's handle).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row in {table}: {detail}")]
    Corrupt { table: &'static str, detail: String },
    /// The failure of a group-committed transaction ([`crate::store::group`]), shared by every write of the group.
    #[error("{0}")]
    Group(std::sync::Arc<StoreError>),
}

impl StoreError {
    /// Whether the database was unreachable rather than the request or the data wrong: the connection was lost or
    /// refused (I/O, a server shutting down or terminating the session: SQLSTATE classes 08 and 57P, e.g. a failover
    /// or `pg_terminate_backend`), the pool timed out or closed, the server was out of resources (class 53), or it
    /// rolled the transaction back to resolve a deadlock or a serialization conflict (class 40: e.g. a read's audit
    /// group and a push inserting the same new persons in opposite orders). The transaction did not commit; the same
    /// request may succeed on a retry (gRPC UNAVAILABLE).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Db(e) => match e {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                sqlx::Error::Database(d) => d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some_and(|p| {
                    let c = p.code();
                    c.starts_with("08") || c.starts_with("57P") || c.starts_with("53") || c.starts_with("40")
                }),
                _ => false,
            },
            // SQLITE_BUSY / SQLITE_LOCKED after the connection's busy timeout: another process holds the database.
            StoreError::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            StoreError::Migrate(_) | StoreError::Corrupt { .. } => false,
            StoreError::Group(e) => e.is_transient(),
        }
    }
}

/// A stored value that does not read back: the table and what is wrong.
pub(crate) fn corrupt(table: &'static str, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt { table, detail: detail.into() }
}

/// A stored calendar day kind (`HOLIDAY` / `MAKEUP_WORKDAY`).
pub(crate) fn day_kind(table: &'static str, s: &str) -> Result<DayKind, StoreError> {
    s.parse().map_err(|e: crate::domain::workdays::CalendarError| corrupt(table, e.to_string()))
}
