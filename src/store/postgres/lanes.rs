//! Audit lanes on PostgreSQL (issue 17 item 2, docs/audit-lanes.md): each hub process appends its reads' audit events
//! to a lane of its own, so audited reads on several replicas take no hub-wide lock; write transactions keep lane 0
//! under the hub-wide write lock.
//!
//! - **Claiming.** On its first read audit (or checkpoint) a process opens a connection of its own (outside the
//!   pool) and takes on it the session advisory lock `(LANE_LOCK_CLASS, n)` for the lowest free `n` ≥ 1; it records
//!   itself in lane `n`'s row of `audit_lanes` (a random `holder` token and the time: who holds which lane). A
//!   restarted process finds its old lane free and continues it.
//! - **Appending on the lock's own session (fencing).** Every append to the lane (a group of reads' events, a
//!   checkpoint) is a transaction on that same connection, one at a time. So an append commits only while this process
//!   holds the lane's lock: if the session ends (the connection drops, `pg_terminate_backend`), its lock goes with it
//!   and the next append on it fails instead of racing a process that claimed the lane since. A lane never has two
//!   writers, and no row lock or hub-wide lock is taken. After such a failure the claim is dropped; the next group
//!   claims a lane again (the same one once it is free). A group whose transaction could not even begin is retried
//!   once on the new claim; one that failed later is refused (UNAVAILABLE), since its commit may or may not have
//!   happened, and the client asks again.
//! - **No lane** (all 1,024 taken, or the claim fails): the group goes to lane 0 under the hub-wide write lock.
//! - **Checkpoints.** Every `every` (1 s by default, `audit_checkpoint_secs`), if any lane's newest event other than a
//!   checkpoint has changed since this process's last checkpoint, the process appends to its lane a checkpoint event
//!   naming every lane's committed head (`domain::audit`). An idle hub writes none.

use std::time::Duration;

use chrono::Utc;
use sqlx::{PgConnection, Row as _};

use super::PgStore;
use super::audit::{append_audits, lane_heads};
use crate::domain::audit::{CHECKPOINT_AGENCY, CHECKPOINT_METHOD, format_heads};
use crate::store::{AuditRecord, StoreError};

/// The first key of the session advisory locks that claim lanes (ASCII "doud"); the second is the lane.
const LANE_LOCK_CLASS: i32 = 0x646f_7564;

/// Lanes a process may claim: 1 to this (a replica that finds none free appends its reads to lane 0).
const MAX_LANES: i32 = 1024;

/// This process's lane and checkpoint state (shared by the clones of a [`PgStore`]).
#[derive(Default)]
pub(super) struct Lanes {
    claim: tokio::sync::Mutex<Option<Claim>>,
    /// Each lane's newest event other than a checkpoint, as of this process's last checkpoint.
    checkpointed: std::sync::Mutex<Option<Vec<(i32, i64)>>>,
}

/// A claimed lane: its number and the connection holding its session lock, on which every append to it runs.
struct Claim {
    lane: i32,
    session: PgConnection,
    /// Set while a transaction of [`PgStore::on_lane`] opens or runs on the session. Still set when the next one
    /// starts only if that one was dropped part-way, when the session's state is unknown (sqlx 0.9's `begin` dropped
    /// while its `BEGIN` is in flight leaves the session inside a transaction, and queues no rollback): the session is
    /// then closed and a lane claimed again.
    busy: bool,
}

impl Claim {
    /// Close the session, and with it the lane's lock.
    async fn close(self) {
        let _ = sqlx::Connection::close(self.session).await;
    }
}

impl Lanes {
    /// Give up this process's lane (its session lock goes with the connection).
    pub(super) async fn release(&self) {
        if let Some(c) = self.claim.lock().await.take() {
            c.close().await;
        }
    }
}

impl PgStore {
    /// Claim a lane (module docs): a connection of its own holding the lane's session lock.
    async fn claim_lane(&self) -> Result<Claim, StoreError> {
        let mut session = self.pool.acquire().await?.detach();
        for lane in 1..=MAX_LANES {
            let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
                .bind(LANE_LOCK_CLASS)
                .bind(lane)
                .fetch_one(&mut session)
                .await?;
            if !got {
                continue;
            }
            let holder = hex::encode(rand::random::<[u8; 16]>());
            sqlx::query(
                "INSERT INTO audit_lanes (lane, holder, claimed_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (lane) DO UPDATE SET holder = excluded.holder, claimed_at = excluded.claimed_at",
            )
            .bind(lane)
            .bind(&holder)
            .bind(Utc::now())
            .execute(&mut session)
            .await?;
            tracing::info!(lane, "claimed an audit lane for this process's reads");
            return Ok(Claim { lane, session, busy: false });
        }
        let _ = sqlx::Connection::close(session).await;
        Err(StoreError::Db(sqlx::Error::Protocol(format!("no free audit lane among 1 to {MAX_LANES}"))))
    }

    /// Run `work` in a transaction on this process's lane (claimed first if need be), one at a time; `None` when the
    /// process has no lane and cannot claim one (`Some(Some(activity))` for a checkpoint). See the module docs for
    /// what a failure does.
    async fn on_lane(&self, work: Work<'_>) -> Result<Option<Option<Vec<(i32, i64)>>>, StoreError> {
        let mut claim = self.lanes.claim.lock().await;
        for attempt in 0..2 {
            if let Some(c) = claim.take_if(|c| c.busy) {
                tracing::warn!(lane = c.lane, "the audit lane's last transaction was dropped part-way; claiming again");
                c.close().await;
            }
            if claim.is_none() {
                match self.claim_lane().await {
                    Ok(c) => *claim = Some(c),
                    Err(e) => {
                        tracing::warn!(error = %e, "no audit lane for this process; its reads' events go to lane 0");
                        return Ok(None);
                    }
                }
            }
            let (result, lost, retry) = {
                let c = claim.as_mut().expect("claimed above");
                let lane = c.lane;
                c.busy = true;
                let begun = match work.prepare(&mut c.session).await {
                    Ok(()) => sqlx::Connection::begin(&mut c.session).await,
                    Err(e) => Err(e),
                };
                let ended = match begun {
                    // The session is gone (and its lock with it): nothing was written; claim again and retry once.
                    Err(e) => (Err(StoreError::from(e)), true, attempt == 0),
                    Ok(mut tx) => {
                        let done = async {
                            let out = work.append(lane, &mut tx).await?;
                            tx.commit().await?;
                            Ok::<_, StoreError>(out)
                        }
                        .await;
                        let lost = done.as_ref().is_err_and(StoreError::is_transient);
                        (done.map(Some), lost, false)
                    }
                };
                // Committed, or rolled back (a dropped `tx` queues its `ROLLBACK`), or the session failed.
                c.busy = false;
                ended
            };
            if lost && let Some(c) = claim.take() {
                tracing::warn!(lane = c.lane, "the audit lane's session failed; the next group claims a lane again");
                c.close().await;
            }
            if retry {
                continue;
            }
            return result;
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// A group of reads' audit events, in one transaction on this process's lane (no hub-wide lock, no row lock); on
    /// lane 0 under the write lock when the process has no lane.
    pub(super) async fn append_read_audits(&self, events: &[AuditRecord]) -> Result<(), StoreError> {
        let on_lane = self.on_lane(Work::Events(events)).await?;
        if on_lane.is_none() {
            let mut w = self.write().await?;
            let now = crate::store::from_micros(crate::store::to_micros(Utc::now()));
            append_audits(&mut w.tx, 0, events, now).await?;
            w.tx.commit().await?;
        }
        Ok(())
    }

    /// Append a checkpoint to this process's lane if any lane's newest event other than a checkpoint changed since
    /// its last one (module docs). Returns whether it did.
    pub(super) async fn checkpoint_if_due(&self) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let activity = lane_activity(&mut conn).await?;
        drop(conn);
        if activity.is_empty() || self.lanes.checkpointed.lock().expect("not poisoned").as_ref() == Some(&activity) {
            return Ok(false);
        }
        let done = self.on_lane(Work::Checkpoint).await?;
        let Some(Some(activity)) = done else {
            return Ok(false);
        };
        *self.lanes.checkpointed.lock().expect("not poisoned") = Some(activity);
        Ok(true)
    }

    /// Run [`PgStore::checkpoint_if_due`] every `every` until the pool is closed.
    pub(super) fn spawn_checkpoints(&self, every: Duration) {
        let store = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if store.pool.is_closed() {
                    return;
                }
                if let Err(e) = store.checkpoint_if_due().await {
                    if store.pool.is_closed() {
                        return;
                    }
                    tracing::warn!(error = %e, "audit checkpoint failed; retrying at the next interval");
                }
            }
        });
    }
}

/// What a lane transaction appends.
enum Work<'a> {
    /// A group of reads' audit events.
    Events(&'a [AuditRecord]),
    /// A checkpoint naming every lane's committed head.
    Checkpoint,
}

impl Work<'_> {
    /// Before the lane's transaction: give every person key of the group not met yet its `persons` row, one key per
    /// statement, each committed on its own. A push that adds the same person holds the hub-wide lock and inserts its
    /// persons in request order; a group's transaction inserting several keys in another order could deadlock with it
    /// (found by the attack tests: 103 of 2,400 reads refused). A statement of one key waits for such a push at most,
    /// holding nothing the push needs. The transaction then finds every person present.
    async fn prepare(&self, session: &mut PgConnection) -> Result<(), sqlx::Error> {
        let Work::Events(events) = self else {
            return Ok(());
        };
        let mut keys: Vec<Vec<u8>> =
            events.iter().flat_map(|e| e.person_keys.iter().map(|k| k.as_bytes().to_vec())).collect();
        if keys.is_empty() {
            return Ok(());
        }
        keys.sort_unstable();
        keys.dedup();
        let missing: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT k FROM UNNEST($1::bytea[]) AS t(k) WHERE NOT EXISTS (SELECT 1 FROM persons p WHERE p.person_key = t.k)",
        )
        .bind(&keys)
        .fetch_all(&mut *session)
        .await?;
        for k in missing {
            sqlx::query("INSERT INTO persons (person_key, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(k)
                .bind(Utc::now())
                .execute(&mut *session)
                .await?;
        }
        Ok(())
    }

    /// Append to `lane` in `tx`; a checkpoint returns the lanes' activity it covered.
    async fn append(&self, lane: i32, tx: &mut PgConnection) -> Result<Option<Vec<(i32, i64)>>, StoreError> {
        // Taken on the lane's session, so event times follow the lane's order.
        let now = crate::store::from_micros(crate::store::to_micros(Utc::now()));
        match self {
            Work::Events(events) => {
                append_audits(tx, lane, events, now).await?;
                Ok(None)
            }
            Work::Checkpoint => {
                // Committed heads of the other lanes; this lane's own is this session's.
                let heads = lane_heads(tx).await?;
                let activity = lane_activity(tx).await?;
                let record = AuditRecord {
                    agency: CHECKPOINT_AGENCY.into(),
                    division: String::new(),
                    via: String::new(),
                    method: CHECKPOINT_METHOD.into(),
                    purpose: format_heads(&heads),
                    outcome: "OK".into(),
                    person_keys: Vec::new(),
                };
                append_audits(tx, lane, std::slice::from_ref(&record), now).await?;
                Ok(Some(activity))
            }
        }
    }
}

/// Each lane's newest event other than a checkpoint, `(lane, lane_seq)` in lane order (lanes with none left out).
async fn lane_activity(conn: &mut PgConnection) -> Result<Vec<(i32, i64)>, StoreError> {
    let rows = sqlx::query(
        "SELECT l.lane, (SELECT x.lane_seq FROM audit_events x WHERE x.lane = l.lane AND x.method <> $1 \
         ORDER BY x.lane_seq DESC LIMIT 1) FROM audit_lanes l ORDER BY l.lane",
    )
    .bind(CHECKPOINT_METHOD)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        if let Some(seq) = r.try_get::<Option<i64>, _>(1)? {
            out.push((r.try_get(0)?, seq));
        }
    }
    Ok(out)
}
