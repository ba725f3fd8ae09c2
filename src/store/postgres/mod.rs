//! PostgreSQL backend (`postgres://…`): the province's deployment, several hub replicas on one database.
//!
//! Same operations and same results as the SQLite backend (`store/sqlite/mod.rs` and the area files beside it); the
//! end-to-end suite runs on both (`tests/api_pg`). Types are PostgreSQL's own (`migrations/postgres/`): TIMESTAMPTZ
//! instants, DATE business dates, NUMERIC(18,2) money in yuan, BYTEA keys and hashes, BOOLEAN flags.
//!
//! **Writers across replicas.** Every write transaction starts with `pg_advisory_xact_lock(WRITE_LOCK)`
//! ([`PgStore::begin_write`]): the head of audit lane 0, the change-log cursor (`MAX + 1`) and the "current version"
//! decision of a fact are then decided by one writer at a time across every replica, exactly as under SQLite's
//! single writer, and commits happen in cursor order. Reads never take the lock: their audit events go,
//! group-committed (`store/group.rs`), to the process's own audit lane (`lanes.rs`). Before the advisory lock, a process's writers queue on its own two-queue lock
//! (`store/writer.rs`: interactive writes before waiting bulk loads), so only one of them at a time holds a
//! connection waiting on the advisory lock.
//!
//! **Cancellation.** A request's future may be dropped at any wait (tonic drops a handler's future when its client goes
//! away). Every transaction on a pooled connection opens through [`PgStore::begin`], whose `BEGIN` round trip runs in
//! a task of its own: sqlx 0.9's `begin` dropped while its `BEGIN` is in flight queues no rollback and returns the
//! connection to the pool inside a transaction, where the next borrowers' statements would run and a later
//! `SET TRANSACTION` would fail (25001). Once a transaction is open, dropping it queues its `ROLLBACK`, which the pool
//! sends before it lends the connection again. A lane's session (`lanes.rs`) is closed if its last transaction was
//! dropped part-way.
//!
//! **Change notification across replicas.** A transaction that appends changes also runs
//! `pg_notify('doudi_changes', head)`, delivered at commit to every replica's listener ([`spawn_change_listener`]),
//! which publishes the head to its watchers; a 1 s poll of `MAX(cursor)` covers a listener reconnecting.

mod admin;
mod audit;
mod bench;
mod calendar;
mod changes;
mod coordination;
mod core;
mod countersign;
mod coverage_answers;
mod facts;
mod keys;
mod lanes;
mod medical;
mod retention;
mod snapshot;
mod subsidy;

use async_trait::async_trait;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

use super::StoreError;
use crate::domain::money::Money;
use crate::store::AuditRecord;
use crate::store::contract::*;
use crate::store::group::GroupCommit;
use crate::store::writer::{Priority, WriteGuard, WriteLock};

/// The PostgreSQL migrations, compiled in; same version numbers and descriptions as the SQLite set
/// (`sqlite::MIGRATIONS`; `tests::migration_sets_match` checks it).
pub(crate) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "core", include_str!("../../../migrations/postgres/0001_core.sql")),
    (2, "reference", include_str!("../../../migrations/postgres/0002_reference.sql")),
    (3, "calendar", include_str!("../../../migrations/postgres/0003_calendar.sql")),
    (4, "coordination", include_str!("../../../migrations/postgres/0004_coordination.sql")),
    (5, "medical", include_str!("../../../migrations/postgres/0005_medical.sql")),
    (6, "snapshots", include_str!("../../../migrations/postgres/0006_snapshots.sql")),
    (7, "change_log", include_str!("../../../migrations/postgres/0007_change_log.sql")),
    (8, "calendar_notices", include_str!("../../../migrations/postgres/0008_calendar_notices.sql")),
    (9, "money_checks", include_str!("../../../migrations/postgres/0009_money_checks.sql")),
    (10, "person_ids", include_str!("../../../migrations/postgres/0010_person_ids.sql")),
    (11, "audit_lanes", include_str!("../../../migrations/postgres/0011_audit_lanes.sql")),
    (12, "signed_heads", include_str!("../../../migrations/postgres/0012_signed_heads.sql")),
    (13, "refusals", include_str!("../../../migrations/postgres/0013_refusals.sql")),
    (14, "audit_via", include_str!("../../../migrations/postgres/0014_audit_via.sql")),
    (15, "retention", include_str!("../../../migrations/postgres/0015_retention.sql")),
    (16, "admin_changes", include_str!("../../../migrations/postgres/0016_admin_changes.sql")),
    (17, "person_kind_index", include_str!("../../../migrations/postgres/0017_person_kind_index.sql")),
    (18, "snapshot_signatures", include_str!("../../../migrations/postgres/0018_snapshot_signatures.sql")),
    (19, "finding_answers", include_str!("../../../migrations/postgres/0019_finding_answers.sql")),
    (20, "coverage_answers", include_str!("../../../migrations/postgres/0020_coverage_answers.sql")),
    (21, "subsidies", include_str!("../../../migrations/postgres/0021_subsidies.sql")),
    (22, "fixed_campaigns", include_str!("../../../migrations/postgres/0022_fixed_campaigns.sql")),
    (23, "roster_index", include_str!("../../../migrations/postgres/0023_roster_index.sql")),
];

/// A write transaction holding the hub-wide write lock (`store::sql`).
pub(super) struct PgWrite {
    pub tx: Transaction<'static, Postgres>,
    /// This process's turn (held until the transaction ends; dropped after `tx`).
    pub _turn: WriteGuard,
}

/// How PostgreSQL holds the values whose column types differ between the backends (`store::sql`).
pub(super) mod value {
    use chrono::{DateTime, NaiveDate, Utc};
    use rust_decimal::Decimal;
    use sqlx::Row as _;
    use sqlx::postgres::PgRow;
    use sqlx::{Postgres, QueryBuilder};

    use crate::domain::money::Money;
    use crate::store::StoreError;

    /// A business date as `DATE`.
    pub fn date(d: NaiveDate) -> NaiveDate {
        d
    }

    /// Column `i` as a business date.
    pub fn get_date(r: &PgRow, i: usize, _table: &'static str) -> Result<NaiveDate, StoreError> {
        Ok(r.try_get(i)?)
    }

    /// A business date given as `YYYY-MM-DD` text, as a `DATE`.
    pub fn text_date(s: &str, table: &'static str) -> Result<NaiveDate, StoreError> {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| crate::store::corrupt(table, format!("bad date {s:?}")))
    }

    /// An amount given as decimal yuan text, as a `NUMERIC`.
    pub fn text_money(s: &str, table: &'static str) -> Result<rust_decimal::Decimal, StoreError> {
        s.parse().map_err(|_| crate::store::corrupt(table, format!("bad amount {s:?}")))
    }

    /// An instant as `TIMESTAMPTZ`.
    pub fn instant(t: DateTime<Utc>) -> DateTime<Utc> {
        t
    }

    /// An instant as stored (`TIMESTAMPTZ`).
    pub type Instant = DateTime<Utc>;

    /// An instant as stored, in microseconds since the Unix epoch.
    pub fn micros(t: Instant) -> i64 {
        crate::store::to_micros(t)
    }

    /// Column `i` as an instant.
    pub fn get_instant(r: &PgRow, i: usize) -> Result<DateTime<Utc>, StoreError> {
        Ok(r.try_get(i)?)
    }

    /// Column `i` as an instant, or NULL.
    pub fn get_opt_instant(r: &PgRow, i: usize) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(r.try_get(i)?)
    }

    /// Column `i`, a business date, or NULL.
    pub fn get_opt_date(r: &PgRow, i: usize, _table: &'static str) -> Result<Option<NaiveDate>, StoreError> {
        Ok(r.try_get(i)?)
    }

    /// Column `i`, a `DATE`, as the API's `YYYY-MM-DD` text.
    pub fn get_text_date(r: &PgRow, i: usize) -> Result<String, StoreError> {
        Ok(r.try_get::<NaiveDate, _>(i)?.to_string())
    }

    /// Column `i`, a `NUMERIC` amount in yuan, as the API's decimal text with 2 places.
    pub fn get_text_money(r: &PgRow, i: usize) -> Result<String, StoreError> {
        Ok(format!("{:.2}", r.try_get::<Decimal, _>(i)?))
    }

    /// A flag as `BOOLEAN`.
    pub fn flag(b: bool) -> bool {
        b
    }

    /// Column `i` as a flag.
    pub fn get_flag(r: &PgRow, i: usize) -> Result<bool, StoreError> {
        Ok(r.try_get(i)?)
    }

    /// `TRUE` as SQL text, for flag columns in statements (`is_current = true`, which the planner reads as
    /// `is_current`).
    pub const TRUE: &str = "true";

    /// What follows a text expression in `ORDER BY` or a comparison for byte order (as SQLite's BINARY), whatever
    /// the database's collation.
    pub const BYTE_ORDER: &str = " COLLATE \"C\"";

    /// A single amount as `NUMERIC` yuan.
    pub fn money(m: Money) -> Decimal {
        super::money_to_numeric(m)
    }

    /// Column `i`, a `NUMERIC` yuan amount, as money.
    pub fn get_money(r: &PgRow, i: usize, table: &'static str) -> Result<Money, StoreError> {
        super::numeric_to_money(r.try_get(i)?, table)
    }

    /// Column `i`, a `NUMERIC` yuan amount or NULL, in fen.
    pub fn get_opt_fen(r: &PgRow, i: usize, table: &'static str) -> Result<Option<i64>, StoreError> {
        r.try_get::<Option<Decimal>, _>(i)?.map(|d| super::numeric_to_fen(d, table)).transpose()
    }

    /// Column `i`, a `NUMERIC` yuan amount or NULL, as money.
    pub fn get_opt_money(r: &PgRow, i: usize, table: &'static str) -> Result<Option<Money>, StoreError> {
        r.try_get::<Option<Decimal>, _>(i)?.map(|d| super::numeric_to_money(d, table)).transpose()
    }

    /// The select-list item of the exact sum of the yuan column `col` (`SUM(numeric)` is exact and unbounded); read
    /// with [`get_sum_fen`], [`SUM_COLUMNS`] column wide.
    pub fn sum_fen(col: &str) -> String {
        format!("COALESCE(SUM({col}), 0)")
    }

    /// How many columns a [`sum_fen`] takes.
    pub const SUM_COLUMNS: usize = 1;

    /// The [`sum_fen`] at column `i`, in fen.
    pub fn get_sum_fen(r: &PgRow, i: usize, table: &'static str) -> Result<i128, StoreError> {
        super::numeric_sum_to_fen(r.try_get(i)?, table)
    }

    /// The [`sum_fen`] at column `i`, as money.
    pub fn get_sum_money(r: &PgRow, i: usize, table: &'static str) -> Result<Money, StoreError> {
        super::numeric_to_money(r.try_get(i)?, table)
    }

    /// The SQL expression of the scalar `key` of the JSON text column `col` (as text).
    pub fn json_field(col: &str, key: &str) -> String {
        format!("{col}::jsonb ->> '{key}'")
    }

    /// Values per ` = ANY(…)` ([`push_in`]): one array parameter, so no limit.
    pub const IN_LIST: usize = usize::MAX;

    /// Rows per multi-row statement, and persons per recheck chunk.
    pub const BATCH: usize = super::ROWS_PER_STATEMENT;

    /// Whether a statement with a [`push_in`] list is kept in sqlx's statement cache: always (one array parameter, so
    /// its text does not depend on the number of values).
    pub fn cache_in_list(_len: usize) -> bool {
        true
    }

    /// ` = ANY(…)` over `items`, bound as one array: what SQLite writes ` IN (…)`.
    pub fn push_in<T>(qb: &mut QueryBuilder<Postgres>, items: Vec<T>)
    where
        T: sqlx::postgres::PgHasArrayType + for<'q> sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres> + Send + 'static,
    {
        qb.push(" = ANY(").push_bind(items).push(")");
    }
}

/// The advisory lock key every write transaction takes first (ASCII "doudi-wr").
pub(super) const WRITE_LOCK: i64 = 0x646f_7564_692d_7772;

/// The statement that opens a transaction at the database's default isolation level (READ COMMITTED), read-write.
pub(super) const BEGIN: &str = "BEGIN";

/// The NOTIFY channel carrying the newest change-log cursor.
const CHANGE_CHANNEL: &str = "doudi_changes";

/// Rows per multi-row statement where arrays (UNNEST) are not used; PostgreSQL allows 65,535 bound parameters.
pub(super) const ROWS_PER_STATEMENT: usize = 1000;

/// The hub's store on PostgreSQL: one pool; writers serialized by an advisory lock (module docs).
#[derive(Clone)]
pub struct PgStore {
    pub(super) pool: PgPool,
    /// The newest committed change-log cursor known to this replica (module docs).
    pub(super) change_head: Arc<tokio::sync::watch::Sender<i64>>,
    /// Reads' audit events, committed in groups ([`crate::store::group`]) to this process's audit lane.
    pub(super) audit_group: Arc<GroupCommit<AuditRecord>>,
    /// This process's audit lane and checkpoint state (`lanes.rs`).
    lanes: Arc<lanes::Lanes>,
    /// This process's writers queue here (interactive before bulk, `store/writer.rs`) before the hub-wide
    /// advisory lock, so a replica's interactive writes go ahead of its own waiting bulk loads and waiting writers
    /// hold no pooled connection.
    pub(super) writer: WriteLock,
    /// Stops the change listener when the store closes.
    closed: Arc<tokio::sync::Notify>,
}

impl PgStore {
    /// Connect to `url` (`postgres://user@host:port/db`); the database must exist.
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        let opts = PgConnectOptions::from_str(url)?.application_name("doudi");
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await?;
        Ok(PgStore {
            pool,
            change_head: Arc::new(tokio::sync::watch::channel(0).0),
            audit_group: Arc::new(GroupCommit::new(crate::store::group::MAX_AUDIT_GROUP)),
            lanes: Arc::default(),
            writer: WriteLock::default(),
            closed: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// Open a transaction on a pooled connection with `statement` ([`BEGIN`], or `BEGIN` with the transaction's
    /// isolation level and access mode, so that no statement has to come first in it), whatever the caller's future
    /// does meanwhile (module docs, "Cancellation"): the acquire and the `BEGIN` round trip run in a task of their own.
    /// If the caller is dropped before the transaction is open, the task drops it once open, which queues its
    /// `ROLLBACK`, sent when the connection returns to the pool. The only way to open a pooled transaction here
    /// (`tests::transactions_open_only_through_begin`).
    pub(super) async fn begin(&self, statement: &'static str) -> Result<Transaction<'static, Postgres>, StoreError> {
        let pool = self.pool.clone();
        match tokio::spawn(async move { pool.begin_with(statement).await }).await {
            Ok(opened) => Ok(opened?),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(StoreError::Db(sqlx::Error::Io(std::io::Error::other(
                "the task opening a transaction was cancelled (the runtime is shutting down)",
            )))),
        }
    }

    /// Begin a write transaction: waits for this process's turn at `priority` (`writer`), then takes the hub-wide
    /// write lock (module docs) for the transaction's life. Keep the guard until the transaction ends.
    pub(super) async fn begin_write(
        &self,
        priority: Priority,
    ) -> Result<(WriteGuard, Transaction<'static, Postgres>), StoreError> {
        let turn = self.writer.lock(priority).await;
        let mut tx = self.begin(BEGIN).await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(WRITE_LOCK).execute(&mut *tx).await?;
        Ok((turn, tx))
    }

    /// [`PgStore::begin_write`] (interactive) in the shape `store::sql`'s macros expect of `self.write()`.
    pub(super) async fn write(&self) -> Result<PgWrite, StoreError> {
        let (turn, tx) = self.begin_write(Priority::Interactive).await?;
        Ok(PgWrite { tx, _turn: turn })
    }

    /// Queue the change-log head for every replica's watchers; delivered when `tx` commits.
    pub(super) async fn notify_change_head(
        tx: &mut Transaction<'static, Postgres>,
        head: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)").bind(CHANGE_CHANNEL).bind(head.to_string()).execute(&mut **tx).await?;
        Ok(())
    }

    /// Raise this replica's published head to `head` (never lowers it).
    pub(super) fn publish_change_head(&self, head: i64) {
        super::raise_head(&self.change_head, head);
    }

    /// Raw access for tests and the benchmark floor.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl StoreAdmin for PgStore {
    fn backend_name(&self) -> &'static str {
        "postgres"
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    async fn migration_versions(&self) -> Result<(i64, i64), StoreError> {
        let has_table = "SELECT CAST(CASE WHEN to_regclass('_sqlx_migrations') IS NULL THEN 0 ELSE 1 END AS BIGINT)";
        crate::store::sql::migration_versions(&self.pool, has_table, MIGRATIONS).await
    }
    async fn migrate_to(&self, version: i64) -> Result<(), StoreError> {
        // On a connection of its own: sqlx holds a session advisory lock while it migrates and does not release it
        // when a migration fails, so a pooled connection would keep the lock and the next attempt in this process
        // would wait forever. Detached from the pool and closed, the connection takes its lock with it.
        let mut conn = self.pool.acquire().await?.detach();
        let ran = crate::store::migrator(MIGRATIONS, version).run_direct(None, &mut conn, false).await;
        let _ = sqlx::Connection::close(conn).await;
        ran?;
        Ok(())
    }
    /// Apply `migrations/postgres/` (idempotent). sqlx holds a session advisory lock while it migrates, so replicas
    /// started together do not race: one applies, the others wait and find nothing to do.
    async fn migrate(&self) -> Result<(), StoreError> {
        self.migrate_to(i64::MAX).await?;
        let head = self.change_log_head().await?;
        self.publish_change_head(head);
        spawn_change_listener(self.pool.clone(), self.change_head.clone(), self.closed.clone());
        Ok(())
    }
    async fn close(&self) {
        self.closed.notify_waiters();
        self.closed.notify_one();
        self.pool.close().await;
        self.lanes.release().await;
    }
    fn start_audit_checkpoints(&self, every: Duration) {
        self.spawn_checkpoints(every);
    }
    /// Connections of the pool: `(pool, open, idle)` (for metrics).
    fn pool_use(&self) -> Vec<(&'static str, u32, usize)> {
        vec![("postgres", self.pool.size(), self.pool.num_idle())]
    }
}

/// Listens on [`CHANGE_CHANNEL`] and publishes each head it hears; every second it also reads `MAX(cursor)`, so a
/// notification lost while the listener reconnects delays a watcher by at most a second.
fn spawn_change_listener(pool: PgPool, head: Arc<tokio::sync::watch::Sender<i64>>, closed: Arc<tokio::sync::Notify>) {
    let publish = move |h: i64| super::raise_head(&head, h);
    tokio::spawn(async move {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(mut l) => match l.listen(CHANGE_CHANNEL).await {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "change listener: LISTEN failed; polling only");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "change listener: connect failed; polling only");
                None
            }
        };
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = closed.notified() => return,
                n = async {
                    match listener.as_mut() {
                        Some(l) => l.try_recv().await,
                        None => std::future::pending().await,
                    }
                } => match n {
                    Ok(Some(n)) => {
                        if let Ok(h) = n.payload().parse::<i64>() {
                            publish(h);
                        }
                    }
                    // The connection dropped; PgListener reconnects on the next call. Catch up by polling.
                    Ok(None) => {}
                    Err(e) => {
                        if pool.is_closed() {
                            return;
                        }
                        tracing::warn!(error = %e, "change listener failed; polling only");
                        listener = None;
                    }
                },
                _ = tick.tick() => {
                    if pool.is_closed() {
                        return;
                    }
                    if let Ok(h) = sqlx::query_scalar::<_, i64>("SELECT COALESCE(MAX(cursor), 0) FROM change_log")
                        .fetch_one(&pool)
                        .await
                    {
                        publish(h);
                    }
                }
            }
        }
    });
}

/// Money to NUMERIC(18,2) yuan (a single amount: within the wire grammar).
pub(super) fn money_to_numeric(m: Money) -> Decimal {
    m.as_decimal()
}

/// Fen to NUMERIC(18,2) yuan.
pub(super) fn fen_to_numeric(fen: i64) -> Decimal {
    Decimal::new(fen, 2)
}

/// NUMERIC yuan (at most 2 decimal places) back to fen; `table` names the table for the corruption error.
pub(super) fn numeric_to_fen(d: Decimal, table: &'static str) -> Result<i64, StoreError> {
    use rust_decimal::prelude::ToPrimitive;
    let fen = d * Decimal::ONE_HUNDRED;
    if fen.fract() != Decimal::ZERO {
        return Err(super::corrupt(table, format!("{d} has more than 2 decimal places")));
    }
    fen.to_i64().ok_or_else(|| super::corrupt(table, format!("{d} out of range")))
}

/// A NUMERIC sum of yuan (`SUM(numeric)` is exact and unbounded in PostgreSQL) to fen in `i128` (issue 23 item 3: the
/// sum of 100,000 benefits of 999,999,999,999.99 yuan was refused as "out of range" of an `i64`).
pub(super) fn numeric_sum_to_fen(d: Decimal, table: &'static str) -> Result<i128, StoreError> {
    use rust_decimal::prelude::ToPrimitive;
    let fen = d.checked_mul(Decimal::ONE_HUNDRED).ok_or_else(|| super::corrupt(table, format!("{d} out of range")))?;
    if fen.fract() != Decimal::ZERO {
        return Err(super::corrupt(table, format!("{d} has more than 2 decimal places")));
    }
    fen.to_i128().ok_or_else(|| super::corrupt(table, format!("{d} out of range")))
}

/// NUMERIC yuan (a single amount or a sum) back to [`Money`].
pub(super) fn numeric_to_money(d: Decimal, table: &'static str) -> Result<Money, StoreError> {
    Money::from_fen(numeric_sum_to_fen(d, table)?).map_err(|e| super::corrupt(table, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both backends apply the same migrations under the same version numbers and names (issue 6: parity).
    #[test]
    fn migration_sets_match() {
        let pg: Vec<(i64, &str)> = MIGRATIONS.iter().map(|(v, d, _)| (*v, *d)).collect();
        let sqlite: Vec<(i64, &str)> = crate::store::sqlite::MIGRATIONS.iter().map(|(v, d, _)| (*v, *d)).collect();
        assert_eq!(pg, sqlite);
        let files = |dir: &str| {
            let mut v: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(files("migrations/postgres"), files("migrations/sqlite"), "same file names in both directories");
    }

    /// Every transaction of this backend on a pooled connection opens through [`PgStore::begin`] (module docs,
    /// "Cancellation"): sqlx's `begin`, `begin_with` or a `SET TRANSACTION ISOLATION` appear nowhere else in its files
    /// or in the SQL it shares with SQLite (`store/sql`), but for a lane's session (`lanes.rs`, which guards its own).
    #[test]
    fn transactions_open_only_through_begin() {
        let mut found = Vec::new();
        for dir in ["src/store/postgres", "src/store/sql"] {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap();
                for (i, line) in code.lines().enumerate() {
                    let line = line.split("//").next().unwrap();
                    let opens = [".begin()", "begin_with(", "Connection::begin(", "SET TRANSACTION ISOLATION"]
                        .iter()
                        .any(|p| line.contains(p));
                    let allowed = (path.ends_with("postgres/mod.rs") && line.contains("pool.begin_with(statement)"))
                        || (path.ends_with("postgres/lanes.rs") && line.contains("Connection::begin(&mut c.session)"));
                    if opens && !allowed {
                        found.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
                    }
                }
            }
        }
        assert!(found.is_empty(), "open these transactions with PgStore::begin: {found:#?}");
    }

    #[test]
    fn numeric_round_trips_fen() {
        for fen in [0i64, 1, 99, 100, 60_700, 99_999_999_999_999] {
            assert_eq!(numeric_to_fen(fen_to_numeric(fen), "t").unwrap(), fen);
        }
        // 607.5 yuan = 60,750 fen; NUMERIC(18,2) may come back with scale 2 or less.
        assert_eq!(numeric_to_fen(Decimal::new(6075, 1), "t").unwrap(), 60_750);
        assert!(numeric_to_fen(Decimal::new(60_755, 3), "t").is_err());
        // Issue 23: 100,000 × 999,999,999,999.99 yuan = 99,999,999,999,999,000.00 yuan, past i64 fen, as a sum.
        let sum = Decimal::new(99_999_999_999_999, 2) * Decimal::from(100_000);
        assert_eq!(numeric_sum_to_fen(sum, "t").unwrap(), 99_999_999_999_999 * 100_000);
        assert!(numeric_to_fen(sum, "t").is_err(), "a single amount stays within i64 fen");
    }
}
