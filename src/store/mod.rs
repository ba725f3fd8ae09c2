//! Storage: the only module that speaks SQL. The domain never sees sqlx types; rows are turned
//! into domain values here.
//!
//! Two backends behind one interface, [`Store`] (`dispatch.rs`), chosen from the database URL: SQLite, the
//! embedded default (`sqlite.rs` and the area files beside it: `audit`, `changes`, `coordination`, `keys`, `medical`,
//! `snapshot`, `bench`; `migrations/sqlite/`), and PostgreSQL (`pg/`, one file per area; `migrations/postgres/`).
//! Row types shared by both live in the SQLite area files and here.

mod audit;
mod bench;
pub(crate) mod calendar;
mod changes;
mod coordination;
mod dispatch;
mod ingest_plan;
mod keys;
mod medical;
mod pg;
mod snapshot;
mod sqlite;

pub use audit::{AuditEventRow, AuditFilter, ChainCheck};
pub use calendar::{DeadlineChange, NoticeLoad, NoticeLoaded, StoredDeadlineChange, StoredNotice};
pub use changes::{ChangeFilter, ChangeRow};
pub use coordination::{NewFundReport, NewWarning, StoredFundReport, StoredWarning, WarningInsert, WarningUpdate};
pub use dispatch::Store;
pub(crate) use ingest_plan::{Current, IngestPlan, plan_ingest};
pub use keys::RotationStart;
pub use medical::{
    FindingCursor, FindingFilter, HIGH_BURDEN_WARNING_PREFIX, NewSettlement, RecheckTally, SettlementInsert,
    StoredFinding, StoredPolicy,
};
pub use pg::PgStore;
pub use snapshot::{CreateOutcome, SnapshotHeader, SnapshotInput, Verification};
pub use sqlite::{SqliteStore, in_memory_refusal};

/// A single amount's fen as the INTEGER (SQLite) columns hold it. Single amounts come from the wire grammar (at most
/// 999,999,999,999.99 yuan, and the plausibility maxima of `domain::money_limits` below that) or from these columns, so
/// they always fit an `i64`; only sums can go past it, and sums are never stored in a fen column.
pub(crate) fn column_fen(m: crate::domain::money::Money) -> i64 {
    i64::try_from(m.to_fen()).expect("a single amount fits i64 fen (wire grammar)")
}

/// An exact sum of an INTEGER fen column on SQLite, read from the two columns `SUM(col >> 32), SUM(col & 4294967295)`
/// starting at `i` (issue 23 item 3). SQLite's `SUM` fails with "integer overflow" past `i64` (100,000 benefits of
/// 999,999,999,999.99 yuan did, for every county's reports) and `TOTAL()` is a float; the high and low 32 bits of
/// each value are summed separately (neither partial sum can overflow before 2^31 rows) and joined here in `i128`.
pub(crate) fn split_sum(row: &sqlx::sqlite::SqliteRow, i: usize) -> Result<i128, StoreError> {
    use sqlx::Row as _;
    let high: i64 = row.try_get(i)?;
    let low: i64 = row.try_get(i + 1)?;
    Ok((i128::from(high) << 32) + i128::from(low))
}

use chrono::{DateTime, NaiveDate, Utc};
use sha2::{Digest, Sha256};

use crate::crypto::PersonKey;
use crate::domain::agency::AgencyCode;
use crate::domain::fact::{Fact, Payload, PayloadKind};

/// Errors of the store. Messages are for logs; clients get a generic INTERNAL.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row in {table}: {detail}")]
    Corrupt { table: &'static str, detail: String },
}

impl StoreError {
    /// Whether the database was unreachable rather than the request or the data wrong: the connection was lost or
    /// refused (I/O, a server shutting down or terminating the session: SQLSTATE classes 08 and 57P, e.g. a failover
    /// or `pg_terminate_backend`), the pool timed out or closed, or the server was out of resources (class 53). The
    /// transaction did not commit; the same request may succeed on a retry (gRPC UNAVAILABLE).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Db(e) => match e {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                sqlx::Error::Database(d) => d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some_and(|p| {
                    let c = p.code();
                    c.starts_with("08") || c.starts_with("57P") || c.starts_with("53")
                }),
                _ => false,
            },
            StoreError::Migrate(_) | StoreError::Corrupt { .. } => false,
        }
    }
}

/// A valid fact ready to store, with its derived keys.
#[derive(Debug, Clone)]
pub struct PreparedFact {
    pub agency: AgencyCode,
    pub fact: Fact,
    pub person_key: PersonKey,
    pub payload_json: String,
    pub content_hash: [u8; 32],
}

impl PreparedFact {
    /// Derive the stored form. The content hash covers everything but `fact_id`,
    /// `source_version` and system time: SHA-256 of
    /// `person_key(hex) | division_code | valid_from | valid_to ('' if open) | kind | payload JSON`.
    pub fn new(agency: AgencyCode, fact: Fact, person_key: PersonKey) -> PreparedFact {
        let payload_json = fact.payload.storage_form().to_json();
        let mut h = Sha256::new();
        h.update(hex::encode(person_key.as_bytes()));
        for part in [
            fact.division_code.as_str(),
            &fact.valid_from.to_string(),
            &fact.valid_to.map(|d| d.to_string()).unwrap_or_default(),
            fact.payload.kind().as_str(),
            &payload_json,
        ] {
            h.update(b"|");
            h.update(part.as_bytes());
        }
        PreparedFact { agency, fact, person_key, payload_json, content_hash: h.finalize().into() }
    }
}

/// A new person row: key, encrypted ID number, masked form.
#[derive(Debug, Clone)]
pub struct NewPerson {
    pub person_key: PersonKey,
    pub id_cipher: Vec<u8>,
    pub id_masked: String,
}

/// One audit event to append (security.md: time, agency, division, method, purpose, outcome,
/// the person keys touched).
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub agency: String,
    pub division: String,
    pub method: String,
    pub purpose: String,
    pub outcome: String,
    pub person_keys: Vec<PersonKey>,
}

/// A stored fact version as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFact {
    pub agency: String,
    pub fact_id: String,
    pub source_version: u64,
    pub person_key: PersonKey,
    pub division_code: String,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    pub payload: Payload,
    pub recorded_at: DateTime<Utc>,
}

impl StoredFact {
    pub fn kind(&self) -> PayloadKind {
        self.payload.kind()
    }
}

/// Filter of `ListRecipients`.
#[derive(Debug, Clone)]
pub struct PersonFilter {
    /// Division code prefix; empty = all.
    pub division_prefix: String,
    /// Only persons with an ACTIVE assistance fact of this program (stored code, e.g. "DIBAO").
    pub program: Option<String>,
    pub as_of: NaiveDate,
}

/// A standard row of reference data.
#[derive(Debug, Clone)]
pub struct StandardRow {
    pub year: i64,
    pub division_code: String,
    pub item: String,
    pub name: String,
    pub amount: String,
    pub unit: String,
    pub effective_from: String,
    pub source: String,
}

/// A division row of reference data.
#[derive(Debug, Clone)]
pub struct DivisionRow {
    pub code: String,
    pub name: String,
    pub level: String,
    pub parent_code: Option<String>,
}

/// Microseconds since the Unix epoch.
pub fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// Raise the published head to `head` (never lower it), waking watchers only when it moved.
fn raise_head(sender: &tokio::sync::watch::Sender<i64>, head: i64) {
    sender.send_if_modified(|h| {
        if head > *h {
            *h = head;
            true
        } else {
            false
        }
    });
}
