//! SQLite backend: WAL, one writer at a time (`BEGIN IMMEDIATE` behind an in-process mutex so
//! writers queue instead of spinning on SQLITE_BUSY), readers in parallel from the pool.

mod admin;
mod audit;
mod bench;
mod calendar;
mod changes;
mod coordination;
mod countersign;
mod coverage_answers;
mod direct;
mod durable;
mod facts;
mod keys;
mod medical;
mod retention;
mod snapshot;
mod subsidy;

use async_trait::async_trait;
use std::str::FromStr;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqliteConnection, SqlitePool};

use crate::domain::fact::{Payload, PayloadKind};
use crate::domain::versioning::Decision;
use crate::security::crypto::PersonKey;
use crate::store::AuditRecord;
use crate::store::contract::*;
use crate::store::group::GroupCommit;
use crate::store::writer::{Priority, WriteGuard, WriteLock};
use crate::store::{IngestPlan, plan_ingest};
use crate::store::{NewPerson, PreparedFact, StoreError, StoredFact, from_micros, to_micros};

/// SQLite's default limit of bound parameters per statement is 32,766; stay well under it.
pub(super) const ROWS_PER_INSERT: usize = 500;

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

/// The SQLite migrations, compiled in (same version numbers as the PostgreSQL set will have).
pub(crate) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "core", include_str!("../../../migrations/sqlite/0001_core.sql")),
    (2, "reference", include_str!("../../../migrations/sqlite/0002_reference.sql")),
    (3, "calendar", include_str!("../../../migrations/sqlite/0003_calendar.sql")),
    (4, "coordination", include_str!("../../../migrations/sqlite/0004_coordination.sql")),
    (5, "medical", include_str!("../../../migrations/sqlite/0005_medical.sql")),
    (6, "snapshots", include_str!("../../../migrations/sqlite/0006_snapshots.sql")),
    (7, "change_log", include_str!("../../../migrations/sqlite/0007_change_log.sql")),
    (8, "calendar_notices", include_str!("../../../migrations/sqlite/0008_calendar_notices.sql")),
    (9, "money_checks", include_str!("../../../migrations/sqlite/0009_money_checks.sql")),
    (10, "person_ids", include_str!("../../../migrations/sqlite/0010_person_ids.sql")),
    (11, "audit_lanes", include_str!("../../../migrations/sqlite/0011_audit_lanes.sql")),
    (12, "signed_heads", include_str!("../../../migrations/sqlite/0012_signed_heads.sql")),
    (13, "refusals", include_str!("../../../migrations/sqlite/0013_refusals.sql")),
    (14, "audit_via", include_str!("../../../migrations/sqlite/0014_audit_via.sql")),
    (15, "retention", include_str!("../../../migrations/sqlite/0015_retention.sql")),
    (16, "admin_changes", include_str!("../../../migrations/sqlite/0016_admin_changes.sql")),
    (17, "person_kind_index", include_str!("../../../migrations/sqlite/0017_person_kind_index.sql")),
    (18, "snapshot_signatures", include_str!("../../../migrations/sqlite/0018_snapshot_signatures.sql")),
    (19, "finding_answers", include_str!("../../../migrations/sqlite/0019_finding_answers.sql")),
    (20, "coverage_answers", include_str!("../../../migrations/sqlite/0020_coverage_answers.sql")),
    (21, "subsidies", include_str!("../../../migrations/sqlite/0021_subsidies.sql")),
    (22, "fixed_campaigns", include_str!("../../../migrations/sqlite/0022_fixed_campaigns.sql")),
    (23, "roster_index", include_str!("../../../migrations/sqlite/0023_roster_index.sql")),
];

/// Bytes of the database file a comparison read maps (`PRAGMA mmap_size`, set on the reader connection for the read
/// and reset to 0 after it; docs/storage-layout.md "Reads of a comparison"): 1 GiB. A reader empties its page cache
/// whenever another connection has committed since its last read — with audited reads, after nearly every read — and
/// then copied every page again from the OS (`pread`); mapped, a page of the file is read in place. P10
/// (MatchRecipients, 1,000,000 facts) went from 50,863 and 52,706 to 75,545 and 76,326 ID numbers/s with every reader
/// mapped (alternating runs, load 2.0–2.3), but GetRecipient (P2) fell from about 7,000 to 5,800–6,000 requests/s,
/// so only the comparison maps (68,451 ID numbers/s; P2 6,295 and 7,394 against 6,834 without: README 2026-12-07
/// second session). Pages still in the WAL are read from it as before. Trade-off, as SQLite documents it: an I/O
/// error on a mapped page (a failing disk) stops the process (SIGBUS) instead of failing one statement; the hub
/// commits nothing through the mapping and is built to be restarted.
pub(crate) const READER_MMAP_BYTES: u64 = 1 << 30;

/// The hub's store on SQLite: a pool of readers and one dedicated writer connection (its page
/// cache stays warm across write transactions; other writers wait on the mutex, not on SQLITE_BUSY).
#[derive(Clone)]
pub struct SqliteStore {
    pub(super) pool: SqlitePool,
    pub(super) write_pool: SqlitePool,
    pub(super) writer: WriteLock,
    /// The newest committed change-log cursor, published after each commit that appended changes (watchers wake
    /// on it and then read the log itself; the value is a hint, the table is the truth).
    pub(super) change_head: std::sync::Arc<tokio::sync::watch::Sender<i64>>,
    /// Reads' audit events, committed in groups ([`crate::store::group`]).
    pub(super) audit_group: std::sync::Arc<GroupCommit<AuditRecord>>,
    /// Bulk commits' fsyncs, run after the writer is released ([`durable`]).
    wal_sync: std::sync::Arc<durable::WalSync>,
}

/// Why an in-memory SQLite URL (`sqlite::memory:`, `sqlite://:memory:`, `…?mode=memory`) is refused, or `None` for a
/// database file (issue 23). The store is a pool of connections (readers and a dedicated writer); sqlx lets them share
/// one in-memory database only through SQLite's shared cache, whose table-level locks fail concurrent requests with
/// "database table is locked" instead of waiting (20 clients: about one request in ten failed with INTERNAL); and the
/// data would vanish when the hub stops. A file is what the hub needs; for a throwaway hub, a file on a tmpfs.
pub fn in_memory_refusal(url: &str) -> Option<String> {
    // sqlx percent-decodes the URL (`?mode=%6Demory` is `mode=memory`): decide on what it will read.
    let decoded = percent_encoding::percent_decode_str(url).decode_utf8_lossy();
    let rest = decoded.strip_prefix("sqlite://").or_else(|| decoded.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory = path.is_empty()
        || path == ":memory:"
        || path.starts_with("file::memory:")
        || query.split('&').any(|p| p.eq_ignore_ascii_case("mode=memory"));
    in_memory.then(|| {
        format!(
            "{url:?} is an in-memory SQLite database, which the hub refuses: its pool of connections can share one \
             only through SQLite's shared cache, whose table locks fail concurrent requests (\"database table is \
             locked\"), and it is lost when the hub stops. Use a database file, e.g. sqlite://doudi.db (for a \
             throwaway hub, a file on a tmpfs such as sqlite:///dev/shm/doudi.db), without mode=memory"
        )
    })
}

/// The file a `sqlite:` URL names, if it is one (operator commands refuse a database that does not exist yet rather
/// than create an empty one at a mistyped path).
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    if !url.starts_with("sqlite:") {
        return None;
    }
    SqliteConnectOptions::from_str(url).ok().map(|o| o.get_filename().to_path_buf())
}

pub(super) use crate::store::corrupt;

use audit::append_audit;

/// A write transaction on the writer connection, holding the writer mutex until it ends (the shape
/// `store::sql`'s macros expect of `self.write()`).
pub(super) struct SqliteWrite<'a> {
    pub tx: sqlx::Transaction<'static, Sqlite>,
    _guard: WriteGuard,
    _store: std::marker::PhantomData<&'a ()>,
}

/// How SQLite holds the values whose column types differ between the backends (`store::sql`).
pub(super) mod value {
    use chrono::{DateTime, NaiveDate, Utc};
    use sqlx::Row as _;
    use sqlx::sqlite::SqliteRow;
    use sqlx::{QueryBuilder, Sqlite};

    use crate::domain::money::Money;
    use crate::store::{StoreError, corrupt};

    /// A business date as `TEXT 'YYYY-MM-DD'`.
    pub fn date(d: NaiveDate) -> String {
        d.to_string()
    }

    /// Column `i` as a business date.
    pub fn get_date(r: &SqliteRow, i: usize, table: &'static str) -> Result<NaiveDate, StoreError> {
        let s: String = r.try_get(i)?;
        NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|e| corrupt(table, format!("date {s:?}: {e}")))
    }

    /// A business date given as `YYYY-MM-DD` text (already checked by the hub), as stored: the same text.
    pub fn text_date(s: &str, _table: &'static str) -> Result<String, StoreError> {
        Ok(s.to_owned())
    }

    /// An amount given as decimal yuan text (already checked by the hub), as stored: the same text.
    pub fn text_money(s: &str, _table: &'static str) -> Result<String, StoreError> {
        Ok(s.to_owned())
    }

    /// An instant as `INTEGER` microseconds since the Unix epoch.
    pub fn instant(t: DateTime<Utc>) -> i64 {
        crate::store::to_micros(t)
    }

    /// An instant as stored (`INTEGER` microseconds since the Unix epoch).
    pub type Instant = i64;

    /// An instant as stored, in microseconds since the Unix epoch.
    pub fn micros(t: Instant) -> i64 {
        t
    }

    /// Column `i` as an instant.
    pub fn get_instant(r: &SqliteRow, i: usize) -> Result<DateTime<Utc>, StoreError> {
        Ok(crate::store::from_micros(r.try_get(i)?))
    }

    /// Column `i` as an instant, or NULL.
    pub fn get_opt_instant(r: &SqliteRow, i: usize) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(r.try_get::<Option<i64>, _>(i)?.map(crate::store::from_micros))
    }

    /// Column `i`, a business date, or NULL.
    pub fn get_opt_date(r: &SqliteRow, i: usize, table: &'static str) -> Result<Option<NaiveDate>, StoreError> {
        match r.try_get::<Option<String>, _>(i)? {
            Some(_) => get_date(r, i, table).map(Some),
            None => Ok(None),
        }
    }

    /// Column `i`, a business date, as the API's `YYYY-MM-DD` text (as stored).
    pub fn get_text_date(r: &SqliteRow, i: usize) -> Result<String, StoreError> {
        Ok(r.try_get(i)?)
    }

    /// Column `i`, an amount stored as decimal yuan text, as the API's text (as stored).
    pub fn get_text_money(r: &SqliteRow, i: usize) -> Result<String, StoreError> {
        Ok(r.try_get(i)?)
    }

    /// A flag as `INTEGER` 0 or 1.
    pub fn flag(b: bool) -> i64 {
        b as i64
    }

    /// Column `i` as a flag (non-zero: set).
    pub fn get_flag(r: &SqliteRow, i: usize) -> Result<bool, StoreError> {
        Ok(r.try_get::<i64, _>(i)? != 0)
    }

    /// `TRUE` as SQL text, for flag columns in statements (`is_current = 1`: the form the partial indexes name).
    pub const TRUE: &str = "1";

    /// What follows a text expression in `ORDER BY` or a comparison for byte order: nothing, SQLite's BINARY
    /// collation is byte order.
    pub const BYTE_ORDER: &str = "";

    /// A single amount as `INTEGER` fen.
    pub fn money(m: Money) -> i64 {
        crate::store::column_fen(m)
    }

    /// Column `i`, an `INTEGER` fen amount, as money (a negative one is corrupt).
    pub fn get_money(r: &SqliteRow, i: usize, table: &'static str) -> Result<Money, StoreError> {
        Money::from_fen(r.try_get::<i64, _>(i)?.into()).map_err(|_| corrupt(table, "negative amount"))
    }

    /// Column `i`, an `INTEGER` fen amount or NULL, in fen.
    pub fn get_opt_fen(r: &SqliteRow, i: usize, _table: &'static str) -> Result<Option<i64>, StoreError> {
        Ok(r.try_get(i)?)
    }

    /// Column `i`, an `INTEGER` fen amount or NULL, as money.
    pub fn get_opt_money(r: &SqliteRow, i: usize, table: &'static str) -> Result<Option<Money>, StoreError> {
        match r.try_get::<Option<i64>, _>(i)? {
            Some(_) => get_money(r, i, table).map(Some),
            None => Ok(None),
        }
    }

    /// The select-list item(s) of the exact sum of the fen column `col` ([`super::split_sum`]: two columns, its high
    /// and low 32 bits summed apart); read with [`get_sum_fen`], [`SUM_COLUMNS`] columns wide.
    pub fn sum_fen(col: &str) -> String {
        format!("COALESCE(SUM({col} >> 32), 0), COALESCE(SUM({col} & 4294967295), 0)")
    }

    /// How many columns a [`sum_fen`] takes.
    pub const SUM_COLUMNS: usize = 2;

    /// The [`sum_fen`] starting at column `i`, in fen.
    pub fn get_sum_fen(r: &SqliteRow, i: usize, _table: &'static str) -> Result<i128, StoreError> {
        super::split_sum(r, i)
    }

    /// The [`sum_fen`] starting at column `i`, as money (a negative sum is corrupt).
    pub fn get_sum_money(r: &SqliteRow, i: usize, table: &'static str) -> Result<Money, StoreError> {
        Money::from_fen(super::split_sum(r, i)?).map_err(|_| corrupt(table, "negative sum"))
    }

    /// The SQL expression of the scalar `key` of the JSON text column `col`.
    pub fn json_field(col: &str, key: &str) -> String {
        format!("json_extract({col}, '$.{key}')")
    }

    /// Values per ` IN (…)` list ([`push_in`]): one bound parameter each, under SQLite's limit per statement.
    pub const IN_LIST: usize = super::ROWS_PER_INSERT;

    /// Rows per multi-row statement, and persons per recheck chunk.
    pub const BATCH: usize = super::ROWS_PER_INSERT;

    /// Whether a statement with an ` IN (…)` list of `len` values ([`push_in`]) is kept in sqlx's per-connection
    /// statement cache: only at the full [`IN_LIST`]. Its text has one parameter per value, so every other length is
    /// another statement; cached, they fill the cache (100 a connection; a 500-value statement is ~1,500 SQLite
    /// opcodes and 500 bound values, roughly 100 KB) as lengths come and go, memory that grows with the length of a
    /// load rather than with what it holds. (P5 with and without: within this machine's noise, README 2026-12-07.)
    pub fn cache_in_list(len: usize) -> bool {
        len == IN_LIST
    }

    /// ` IN (…)` over `items` (at most [`IN_LIST`]), one bound parameter each.
    pub fn push_in<T>(qb: &mut QueryBuilder<Sqlite>, items: Vec<T>)
    where
        T: for<'q> sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite> + Send + 'static,
    {
        qb.push(" IN (");
        let mut sep = qb.separated(", ");
        for v in items {
            sep.push_bind(v);
        }
        qb.push(")");
    }
}

impl SqliteStore {
    /// Begin a write transaction on the writer connection (`BEGIN IMMEDIATE`, behind the writer mutex).
    pub(super) async fn write(&self) -> Result<SqliteWrite<'_>, StoreError> {
        let guard = self.writer.lock(Priority::Interactive).await;
        self.writer_sync(false).await?;
        let tx = self.write_pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(SqliteWrite { tx, _guard: guard, _store: std::marker::PhantomData })
    }

    /// Put the writer connection in the mode the next transaction commits in: relaxed (`synchronous = NORMAL`, a bulk
    /// group, [`durable`]) or strict (FULL, every other write); the writer lock held, before the transaction begins.
    /// Touches the connection only when the mode changes, so consecutive writes of one kind pay nothing.
    async fn writer_sync(&self, relaxed: bool) -> Result<(), StoreError> {
        if relaxed == self.wal_sync.is_relaxed() {
            return Ok(());
        }
        let mut conn = self.write_pool.acquire().await?;
        if relaxed { self.wal_sync.relax(&mut conn).await } else { self.wal_sync.strict(&mut conn).await }
    }

    /// Open (creating if missing) the database at `url` (`sqlite://path` or `sqlite:path`). An in-memory database is
    /// refused ([`in_memory_refusal`]).
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        if let Some(why) = in_memory_refusal(url) {
            return Err(StoreError::Db(sqlx::Error::Configuration(why.into())));
        }
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL (issue 17): every commit's WAL frames are on disk before the commit returns, so an acknowledged
            // push or the audit event of an answered read survives a power loss or OS crash, not only a process
            // crash as under NORMAL. Its cost is one fsync per commit, which group commit shares among requests.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .pragma("cache_size", "-16384")
            .pragma("temp_store", "memory")
            .pragma("journal_size_limit", WAL_SIZE_LIMIT.to_string());
        let write_pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            // 24 MiB: the writer's working set under layout 0010 is the right edges of the append-mostly indexes and
            // the one random-keyed index, persons (person_key) (~13 MB at 269,000 persons). 64 MiB held no
            // faster (P1 at 1M facts 43–51k facts/s against 46–54k, alternating runs) and made the hub's peak RSS grow
            // with the database (P5 1.24× the 100k run against 1.13×).
            .connect_with(opts.clone().pragma("cache_size", "-24576").pragma("wal_autocheckpoint", "0"))
            .await?;
        let wal_sync = std::sync::Arc::new(durable::WalSync::new(opts.get_filename()));
        let pool = SqlitePoolOptions::new().max_connections(8).min_connections(1).connect_with(opts).await?;
        let writer = WriteLock::default();
        spawn_checkpointer(pool.clone(), writer.clone());
        Ok(SqliteStore {
            pool,
            write_pool,
            writer,
            change_head: std::sync::Arc::new(tokio::sync::watch::channel(0).0),
            audit_group: std::sync::Arc::new(GroupCommit::new(crate::store::group::MAX_AUDIT_GROUP)),
            wal_sync,
        })
    }

    /// Raw access for tests and the benchmark floor.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

#[async_trait]
impl StoreAdmin for SqliteStore {
    fn backend_name(&self) -> &'static str {
        "sqlite"
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    async fn migration_versions(&self) -> Result<(i64, i64), StoreError> {
        let has_table = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'";
        crate::store::sql::migration_versions(&self.pool, has_table, MIGRATIONS).await
    }
    async fn migrate_to(&self, version: i64) -> Result<(), StoreError> {
        // Each migration runs in its own transaction (the migrator's), with foreign-key enforcement off on this
        // connection: SQLite's documented way to rebuild a table that others refer to (migration 0010 rebuilds
        // `persons`, which `warnings` and `settlements` refer to; it copies every key they hold). The pragma cannot
        // change inside a transaction, so it is set around the migrator and always set back.
        let _w = self.writer.lock(Priority::Interactive).await;
        let mut conn = self.write_pool.acquire().await?;
        self.wal_sync.strict(&mut conn).await?;
        sqlx::query("PRAGMA foreign_keys = OFF").execute(&mut *conn).await?;
        let ran = crate::store::migrator(MIGRATIONS, version).run_direct(None, &mut *conn, false).await;
        sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *conn).await?;
        ran?;
        Ok(())
    }
    /// Apply `migrations/sqlite/` (idempotent).
    async fn migrate(&self) -> Result<(), StoreError> {
        self.migrate_to(i64::MAX).await?;
        let head = self.change_log_head().await?;
        self.publish_change_head(head);
        Ok(())
    }
    async fn close(&self) {
        let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.write_pool).await;
        self.pool.close().await;
        self.write_pool.close().await;
    }
    /// Number of audit events (for tests and operators).
    /// Connections of the read and the write pool: `(pool, open, idle)` (for metrics).
    fn pool_use(&self) -> Vec<(&'static str, u32, usize)> {
        vec![
            ("read", self.pool.size(), self.pool.num_idle()),
            ("write", self.write_pool.size(), self.write_pool.num_idle()),
        ]
    }
}

#[async_trait]
impl FactStore for SqliteStore {
    /// See [`FactStore::ingest_batches`]: the batches' facts are looked up, decided and written together, each
    /// batch's audit event appended after them, in one transaction on the writer connection.
    async fn ingest_batches(
        &self,
        batches: &[IngestBatch<'_>],
        priority: Priority,
    ) -> Result<Vec<Vec<Decision>>, StoreError> {
        let facts: Vec<&PreparedFact> = batches.iter().flat_map(|b| b.facts.iter()).collect();
        let persons: Vec<&NewPerson> = batches.iter().flat_map(|b| b.persons.iter()).collect();

        let w = self.writer.lock(priority).await;
        // A bulk group commits without waiting for the disk and waits for its fsync after releasing the writer
        // (`durable`); every other write commits with its fsync (`synchronous = FULL`).
        let relaxed = priority == Priority::Bulk;
        self.writer_sync(relaxed).await?;
        let mut tx = self.write_pool.begin_with("BEGIN IMMEDIATE").await?;
        let now = to_micros(Utc::now());

        // The row work in one call on the connection's own handle (`direct`): the records' current versions, the
        // decisions, the superseded versions, the persons, the new versions and their changes (copied from the rows
        // just written), each batch's audit event; then the commit, through sqlx.
        let (decisions, head) = direct::on_handle(&mut tx, |db| {
            let current = direct::current_versions(db, &facts)?;
            let IngestPlan { decisions, superseded, rows, changes } = plan_ingest(&facts, current);
            direct::supersede(db, &superseded, now)?;
            let ids = direct::insert_persons(db, &persons, now)?;
            let head = changes::change_head(db)?;
            let last_row = direct::last_fact_row(db)?;
            direct::insert_fact_rows(db, &rows, &ids, now)?;
            let head = changes::append_changes_of_rows(db, &changes, head, last_row)?;
            for audit in batches.iter().filter_map(|b| b.audit) {
                // The request's persons are the batch's (`Hub::ingest`), all in `ids` now.
                audit::append_ingest_audit(db, audit, now, &ids)?;
            }
            Ok((decisions, head))
        })
        .await?;
        tx.commit().await?;
        if relaxed {
            // Durable once an fsync begun after this commit returns; the writer is released first, so the next group
            // writes meanwhile.
            let seq = self.wal_sync.committed();
            drop(w);
            self.wal_sync.wait(seq).await?;
        }
        // Published once the commit is durable: watchers woken by it find the rows, and never a change a power loss
        // could take back (a later head published by a FULL commit covers this one's frames too).
        if let Some(head) = head {
            self.publish_change_head(head);
        }
        Ok(crate::store::plan::split_decisions(batches, decisions))
    }
}

/// WAL checkpoints run here, off the writer's path: the writer connection has automatic
/// checkpoints off, and this task copies committed pages into the database file every second
/// (PASSIVE: never blocks the writer or readers). Its fsyncs then no longer stall commits.
/// WAL frames (4 KiB pages) above which the checkpointer restarts the log under the writer lock: 256 MiB.
///
/// Each reset stalls every write for one checkpoint of the frames committed since the last PASSIVE one and the
/// database file's fsync under that lock: 53–66 ms on this machine (`perf record` of P1 at 1M facts, 2026-12-07: six
/// stalls in 6 s, one a second, 5.7 % of the writer's time, the fsync's I/O wait most of it). A reset every 64 MiB
/// came once a second under ingest; every 256 MiB it comes about every four. Readers do not pay for the longer log:
/// a page lookup searches only the frames after the last checkpoint (`minFrame`), which PASSIVE advances every second.
pub(super) const WAL_RESTART_FRAMES: i64 = 65_536;

/// Bytes the WAL file may keep after it is reset (`PRAGMA journal_size_limit`): the log is reset at
/// [`WAL_RESTART_FRAMES`] and then overwritten from its start, so the file stays about that size (256 MiB plus the frames
/// written while the reset waited), and one burst larger than that is truncated back to it.
pub(super) const WAL_SIZE_LIMIT: i64 = 2 * WAL_RESTART_FRAMES * 4_120;

/// Checkpoints the WAL every second (PASSIVE: never blocks anyone). Under continuous ingest a PASSIVE checkpoint
/// never finds the log fully copied at the moment a write begins, so SQLite never starts the log over and the file
/// grows without bound (the benchmark issue measured 13 GB after 1M facts). So when the log holds more than
/// [`WAL_RESTART_FRAMES`], the checkpointer takes the writer lock (no write can start) and resets the log:
/// [`restart_wal`].
fn spawn_checkpointer(pool: SqlitePool, writer: WriteLock) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if pool.is_closed() {
                return;
            }
            match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&pool).await {
                Ok(row) => {
                    let log: i64 = row.try_get(1).unwrap_or(0);
                    if log >= WAL_RESTART_FRAMES {
                        match restart_wal(&pool, &writer).await {
                            Ok((0, _, _)) => tracing::debug!(frames = log, "WAL truncated"),
                            Ok(_) => tracing::debug!(frames = log, "WAL not truncated: a reader holds it; next second"),
                            Err(e) if !pool.is_closed() => tracing::warn!(error = %e, "WAL truncate failed"),
                            Err(_) => return,
                        }
                    }
                }
                Err(e) => {
                    if pool.is_closed() {
                        return;
                    }
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                }
            }
        }
    });
}

/// Copies the rest of the WAL into the database and resets it (`RESTART`: the next write starts again at the
/// beginning of the file), holding the writer lock so no write begins meanwhile. The file keeps its size, at most
/// [`WAL_SIZE_LIMIT`] bytes: writing into a file that was truncated to 0 made the file system allocate and zero every
/// page of the log again (`ext4_da_write_begin`, about a seventh of the hub's time during P1 at 1M facts), where
/// overwriting reuses the pages it already has. Waits at most 250 ms for readers still using the log (then gives up: `busy` = 1). Returns SQLite's
/// `(busy, log frames, checkpointed frames)`.
pub(super) async fn restart_wal(pool: &SqlitePool, writer: &WriteLock) -> Result<(i64, i64, i64), sqlx::Error> {
    let _w = writer.lock(Priority::Interactive).await;
    let mut conn = pool.acquire().await?;
    sqlx::query("PRAGMA busy_timeout = 250").execute(&mut *conn).await?;
    let r = sqlx::query("PRAGMA wal_checkpoint(RESTART)").fetch_one(&mut *conn).await;
    sqlx::query("PRAGMA busy_timeout = 30000").execute(&mut *conn).await?;
    let row = r?;
    Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
}

/// Make every one of `persons` known and return the `person_id` of each ([`direct::insert_persons`], on the
/// connection's own handle), inside the caller's write transaction.
pub(super) async fn insert_persons<P: std::borrow::Borrow<NewPerson>>(
    conn: &mut SqliteConnection,
    persons: &[P],
    now: i64,
) -> Result<crate::store::PersonIds, StoreError> {
    direct::on_handle(conn, |db| direct::insert_persons(db, persons, now)).await
}

/// Insert fact versions ([`direct::insert_fact_rows`], on the connection's own handle), inside the caller's write
/// transaction. Used by the benchmark floor; ingest runs the same statements.
pub(super) async fn insert_fact_rows(
    conn: &mut SqliteConnection,
    rows: &[(bool, &PreparedFact)],
    ids: &crate::store::PersonIds,
    now: i64,
) -> Result<(), StoreError> {
    direct::on_handle(conn, |db| direct::insert_fact_rows(db, rows, ids, now)).await
}

pub(super) fn stored_fact(r: &SqliteRow) -> Result<StoredFact, StoreError> {
    let kind: String = r.try_get(4)?;
    let kind = PayloadKind::parse(&kind).ok_or_else(|| corrupt("facts", format!("unknown kind {kind}")))?;
    let payload: String = r.try_get(8)?;
    if payload.is_empty() {
        // A retention tombstone (docs/retention.md): no read path selects one (current versions are never purged, the
        // change feed and snapshots read only versions newer than any purged); reaching one is a bug, said plainly.
        return Err(corrupt("facts", "a purged fact version (retention tombstone) has no payload to read"));
    }
    let payload = Payload::from_json(kind, &payload).map_err(|e| corrupt("facts", e.to_string()))?;
    fact_of_row(r, payload)
}

/// The columns of a fact row other than its payload (0–7 and 9 of `FACT_COLUMNS_F`), with `payload`.
fn fact_of_row(r: &SqliteRow, payload: Payload) -> Result<StoredFact, StoreError> {
    let pk: Vec<u8> = r.try_get(3)?;
    let date = |s: String| NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|e| corrupt("facts", e.to_string()));
    let valid_to: Option<String> = r.try_get(7)?;
    Ok(StoredFact {
        agency: r.try_get(0)?,
        fact_id: r.try_get(1)?,
        source_version: r.try_get::<i64, _>(2)? as u64,
        person_key: PersonKey::from_slice(&pk).ok_or_else(|| corrupt("facts", "person_key length"))?,
        division_code: r.try_get(5)?,
        valid_from: date(r.try_get(6)?)?,
        valid_to: valid_to.map(date).transpose()?,
        payload,
        recorded_at: from_micros(r.try_get(9)?),
    })
}

#[cfg(test)]
mod wal_tests {
    use super::*;

    /// A bulk ingest leaves the writer connection at `synchronous = NORMAL` (its commit is fsynced after the writer
    /// is released, `durable`); the next interactive writer sets it back to FULL before it begins, also when the bulk
    /// ingest was dropped between the two, as here.
    #[tokio::test]
    async fn an_interactive_write_after_a_relaxed_bulk_commit_commits_with_its_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&format!("sqlite://{}", dir.path().join("s.db").display())).await.unwrap();
        store.migrate().await.unwrap();
        {
            let mut conn = store.write_pool.acquire().await.unwrap();
            store.wal_sync.relax(&mut conn).await.unwrap();
            let level: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&mut *conn).await.unwrap();
            assert_eq!(level, 1, "NORMAL (1) while relaxed");
        }
        let mut w = store.write().await.unwrap();
        let level: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&mut *w.tx).await.unwrap();
        assert_eq!(level, 2, "FULL (2) again for an interactive write (SQLite: 0 OFF, 1 NORMAL, 2 FULL)");
    }

    /// A log that PASSIVE checkpoints alone would keep (continuous writes) is reset by `restart_wal`: the next write
    /// starts at the beginning of the log (the file does not grow past what it was), and the data written is still
    /// there.
    #[tokio::test]
    async fn restart_wal_resets_the_log_and_keeps_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("wal.db");
        let store = SqliteStore::open(&format!("sqlite://{}", db.display())).await.unwrap();
        store.migrate().await.unwrap();
        // 200 rows of 64 KiB: about 12.8 MiB of pages in the log.
        for i in 0..200 {
            sqlx::query("INSERT INTO hub_meta (name, value) VALUES (?, ?)")
                .bind(format!("filler-{i}"))
                .bind(vec![7u8; 64 * 1024])
                .execute(&store.write_pool)
                .await
                .unwrap();
        }
        let wal = dir.path().join("wal.db-wal");
        assert!(std::fs::metadata(&wal).unwrap().len() > 10 * 1024 * 1024, "the log holds the writes");
        // The store's own checkpointer (a PASSIVE checkpoint every second on another connection) may be reading the
        // log at this moment; then SQLite reports busy and, like the checkpointer, we try again shortly after.
        let mut busy = 1;
        for _ in 0..20 {
            busy = restart_wal(&store.pool, &store.writer).await.unwrap().0;
            if busy == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(busy, 0);
        let before = std::fs::metadata(&wal).unwrap().len();
        // One more small write: written at the start of the log, so the log holds a few frames and the file keeps
        // its size (kept for reuse, at most WAL_SIZE_LIMIT bytes).
        sqlx::query("INSERT INTO hub_meta (name, value) VALUES ('after', x'01')")
            .execute(&store.write_pool)
            .await
            .unwrap();
        let after = std::fs::metadata(&wal).unwrap().len();
        assert!(after <= before, "the log was overwritten from its start, not appended to: {before} -> {after}");
        assert!(before <= WAL_SIZE_LIMIT as u64, "the file kept at most the limit: {before}");
        let frames: i64 = {
            let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&store.pool).await.unwrap();
            row.try_get(1).unwrap()
        };
        assert!(frames < 10, "the log starts over after a reset: {frames} frames");
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM hub_meta WHERE name LIKE 'filler-%'")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(n, 200);
        store.close().await;
    }
}
