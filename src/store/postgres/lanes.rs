//! Audit lanes on PostgreSQL (issue 17 item 2, docs/audit-lanes.md): each hub process appends its reads' audit events
//! to a lane of its own, so audited reads on several replicas take no hub-wide lock; write transactions keep lane 0
//! under the hub-wide write lock.
//!
//! - **Claiming.** On its first read audit (or checkpoint) a process takes the session advisory lock
//!   `(LANE_LOCK_CLASS, n)` for the lowest free `n` ≥ 1 on a connection it keeps for its life, and writes a fresh
//!   random `holder` token into lane `n`'s row of `audit_lanes`. A restarted process finds its old lane free and
//!   continues it.
//! - **Fencing.** A lane append locks its lane's row (`FOR UPDATE`) and finds it only if the row still names this
//!   process's token: if the session lock was lost (the connection dropped) and another process claimed the lane
//!   since, the append finds nothing, drops the claim and appends the group to lane 0 under the write lock instead.
//!   Nothing is lost and no lane ever has two writers.
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

/// A claimed lane: its number, the token in its row, and the connection holding its session lock.
struct Claim {
    lane: i32,
    holder: String,
    session: PgConnection,
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
    /// This process's lane and token, claiming one first if it has none.
    async fn claimed_lane(&self) -> Result<(i32, String), StoreError> {
        let mut claim = self.lanes.claim.lock().await;
        if let Some(c) = claim.as_ref() {
            return Ok((c.lane, c.holder.clone()));
        }
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
            *claim = Some(Claim { lane, holder: holder.clone(), session });
            return Ok((lane, holder));
        }
        Err(StoreError::Db(sqlx::Error::Protocol(format!("no free audit lane among 1 to {MAX_LANES}"))))
    }

    /// Begin a transaction holding this process's lane (its row locked, still ours), or `None` when the lane was
    /// taken over (the claim is dropped; the caller falls back to lane 0).
    async fn begin_lane(&self) -> Result<Option<(i32, sqlx::Transaction<'static, sqlx::Postgres>)>, StoreError> {
        let (lane, holder) = self.claimed_lane().await?;
        let mut tx = self.pool.begin().await?;
        let held = sqlx::query("SELECT lane FROM audit_lanes WHERE lane = $1 AND holder = $2 FOR UPDATE")
            .bind(lane)
            .bind(&holder)
            .fetch_optional(&mut *tx)
            .await?;
        if held.is_none() {
            tracing::warn!(lane, "this process's audit lane was claimed by another; its reads' events go to lane 0");
            drop(tx);
            self.lanes.release().await;
            return Ok(None);
        }
        Ok(Some((lane, tx)))
    }

    /// A group of reads' audit events, in one transaction on this process's lane (no hub-wide lock); on lane 0 under
    /// the write lock when the process has no lane (none free, or taken over).
    pub(super) async fn append_read_audits(&self, events: &[AuditRecord]) -> Result<(), StoreError> {
        let lane = match self.begin_lane().await {
            Ok(lane) => lane,
            Err(e) => {
                tracing::warn!(error = %e, "no audit lane for this process; its reads' events go to lane 0");
                None
            }
        };
        let (lane, mut tx, _turn) = match lane {
            Some((lane, tx)) => (lane, tx, None),
            None => {
                let w = self.write().await?;
                (0, w.tx, Some(w._turn))
            }
        };
        // Taken under the lane's lock, so event times follow the lane's order.
        let now = crate::store::from_micros(crate::store::to_micros(Utc::now()));
        append_audits(&mut tx, lane, events, now).await?;
        tx.commit().await?;
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
        let Some((lane, mut tx)) = self.begin_lane().await? else {
            return Ok(false);
        };
        // Committed heads of the other lanes; this lane's own is locked by this transaction.
        let heads = lane_heads(&mut tx).await?;
        let activity = lane_activity(&mut tx).await?;
        let record = AuditRecord {
            agency: CHECKPOINT_AGENCY.into(),
            division: String::new(),
            method: CHECKPOINT_METHOD.into(),
            purpose: format_heads(&heads),
            outcome: "OK".into(),
            person_keys: Vec::new(),
        };
        let now = crate::store::from_micros(crate::store::to_micros(Utc::now()));
        append_audits(&mut tx, lane, std::slice::from_ref(&record), now).await?;
        tx.commit().await?;
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
