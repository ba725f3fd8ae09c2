//! Bulk commits whose fsync runs after the writer is released (issue 16, P1; docs/storage-layout.md "Durability").
//!
//! Every SQLite commit is durable before the hub answers for it: `synchronous = FULL` makes a commit return after its
//! WAL frames are fsynced. For a bulk ingest group (`Priority::Bulk`, a StreamFacts group) that fsync ran while the
//! group held the writer: about 2 ms a commit at 1,000,000 facts, in which no other group could write and the hub did
//! nothing (a sixth of P1's wall time). Here a bulk group commits with `synchronous = NORMAL` (SQLite writes the
//! frames and returns, the database stays consistent after any crash), releases the writer, and only then waits for
//! an fsync of the WAL file ([`WalSync::wait`]), so the next group writes while the disk syncs. `ingest_batches`
//! still returns only once its commit is durable, and publishes its change-log head only then, so a watcher is never
//! shown a change a power loss could take back.
//!
//! What this changes: between its commit and its fsync (about 2 ms) a bulk group's rows can be read by the hub's
//! other connections. Every answer that carries them is made durable first anyway: an audited read's event is a FULL
//! commit, whose fsync covers every frame written before it, and a watcher sees only heads published after an fsync.
//!
//! One fsync covers every commit whose frames were written before it began: a waiter whose commit an fsync already
//! covered returns without another ([`WalSync::wait`] holds the count of commits covered).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sqlx::SqliteConnection;

use crate::store::StoreError;

/// The WAL file's fsyncs for bulk commits, and whether the writer connection is relaxed (`synchronous = NORMAL`).
pub(super) struct WalSync {
    /// The database's `-wal` file.
    wal: PathBuf,
    /// Bulk commits made so far, counted under the writer lock once each commit has returned.
    committed: AtomicU64,
    /// Of them, those an fsync has covered; held while an fsync runs, so waiters share it.
    durable: tokio::sync::Mutex<u64>,
    /// The writer connection was set to `synchronous = NORMAL` and not yet set back (a bulk ingest dropped between
    /// the two): the next writer sets it back before it begins ([`WalSync::strict`]).
    relaxed: AtomicBool,
}

impl WalSync {
    /// For the database at `db` (its log is `db` + `-wal`).
    pub(super) fn new(db: &std::path::Path) -> WalSync {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        WalSync {
            wal: PathBuf::from(wal),
            committed: AtomicU64::new(0),
            durable: tokio::sync::Mutex::new(0),
            relaxed: AtomicBool::new(false),
        }
    }

    /// Whether the writer connection may be at `synchronous = NORMAL` (set by [`WalSync::relax`], cleared by
    /// [`WalSync::strict`]).
    pub(super) fn is_relaxed(&self) -> bool {
        self.relaxed.load(Ordering::SeqCst)
    }

    /// Set the writer connection `conn` (outside a transaction, the writer lock held) to commit without waiting for
    /// the disk, unless it already is (consecutive bulk groups pay nothing); [`WalSync::strict`] sets it back. Marked
    /// relaxed before the statement runs: a connection marked relaxed that is not is only set to FULL once more.
    pub(super) async fn relax(&self, conn: &mut SqliteConnection) -> Result<(), StoreError> {
        if !self.relaxed.swap(true, Ordering::SeqCst) {
            sqlx::query("PRAGMA synchronous = NORMAL").execute(conn).await?;
        }
        Ok(())
    }

    /// Set the writer connection `conn` back to `synchronous = FULL` if it was relaxed (outside a transaction, the
    /// writer lock held). Every writer does this before it begins (`SqliteStore::writer_sync`, the migrator), so a
    /// bulk ingest dropped while relaxed never leaves the next commit without its fsync.
    pub(super) async fn strict(&self, conn: &mut SqliteConnection) -> Result<(), StoreError> {
        if self.relaxed.load(Ordering::SeqCst) {
            sqlx::query("PRAGMA synchronous = FULL").execute(conn).await?;
            self.relaxed.store(false, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Count a relaxed commit that has returned (the writer lock still held); returns its number for
    /// [`WalSync::wait`].
    pub(super) fn committed(&self) -> u64 {
        self.committed.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Wait until relaxed commit number `seq` is on disk: if no fsync has covered it yet, fsync the WAL file (it
    /// covers every commit counted so far, which all wrote their frames before it began).
    pub(super) async fn wait(&self, seq: u64) -> Result<(), StoreError> {
        let mut durable = self.durable.lock().await;
        if *durable >= seq {
            return Ok(());
        }
        let target = self.committed.load(Ordering::SeqCst);
        let wal = self.wal.clone();
        tokio::task::spawn_blocking(move || std::fs::File::open(&wal)?.sync_data())
            .await
            .map_err(|e| StoreError::Db(sqlx::Error::Io(std::io::Error::other(e))))?
            .map_err(|e| StoreError::Db(sqlx::Error::Io(e)))?;
        *durable = target;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One fsync covers every commit counted before it began; a commit counted after needs another. The fsync is
    /// real: with the log file gone, a wait that needs one fails, and a wait already covered does not.
    #[tokio::test]
    async fn one_fsync_covers_the_commits_counted_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("d.db");
        std::fs::write(dir.path().join("d.db-wal"), b"frames").unwrap();
        let sync = WalSync::new(&db);
        let (first, second) = (sync.committed(), sync.committed());
        assert_eq!((first, second), (1, 2));
        sync.wait(first).await.unwrap();
        assert_eq!(*sync.durable.lock().await, 2, "the fsync for commit 1 covered commit 2, counted before it began");
        std::fs::remove_file(dir.path().join("d.db-wal")).unwrap();
        sync.wait(second).await.expect("commit 2 is covered: no fsync, so the missing file does not matter");
        let third = sync.committed();
        let e = sync.wait(third).await.expect_err("commit 3 needs an fsync of a file that is gone");
        assert!(e.to_string().contains("No such file"), "{e}");
    }
}
