//! SQLite: the ingest write path, with group commit. Concurrent `ingest` calls (the five agencies' streams, a county's
//! push) queue their batches; whoever takes the writer lock next writes every queued batch, in arrival order, up to
//! [`GROUP_FACTS`] facts, in **one** transaction, and answers each caller with its own decisions. The result is the
//! same as writing the batches one after the other in that order (each fact is decided against the stored versions
//! and the earlier facts of the group, `plan_ingest`; each batch keeps its own audit event, appended in order; change
//! cursors follow write order), but a commit's fixed cost — rewriting the right-edge pages of every index into the
//! WAL — is paid once per group instead of once per batch. Measured (README, 2026-12-06): P1 at 1,000,000 facts with
//! 10,000-fact transactions 73,296 facts/s against 53,110 with 2,000-fact ones.
//!
//! Failure and cancellation: if a group's transaction fails, nothing of it is stored and each of its batches is
//! written again alone, so one batch's error is that batch's answer only. The group is written by a spawned task that
//! holds the writer lock, so a caller that goes away (a cancelled RPC) cannot stop a group other callers wait on; a
//! batch whose caller has gone away before its group starts is dropped unwritten, as a cancelled call was before.

use std::collections::{HashMap, VecDeque};

use chrono::Utc;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use tokio::sync::oneshot;

use super::{ROWS_PER_INSERT, SqliteStore, audit, changes, corrupt, insert_fact_rows, insert_persons};
use crate::domain::versioning::{CurrentVersion, Decision};
use crate::store::contract::FactStore;
use crate::store::{AuditRecord, Current, IngestPlan, NewPerson, PreparedFact, StoreError, plan_ingest, to_micros};

/// The most facts one group commit writes (a single larger batch is written alone). Bounds how long one transaction
/// holds the writer: about 0.1 s at the rates measured, so a small push waits at most about two of them.
pub(super) const GROUP_FACTS: usize = 10_000;

/// One caller's batch waiting for a group commit.
struct Job {
    facts: Vec<PreparedFact>,
    persons: Vec<NewPerson>,
    audit: Option<AuditRecord>,
    answer: oneshot::Sender<Result<Vec<Decision>, StoreError>>,
}

/// The batches waiting for the writer, in arrival order.
#[derive(Default)]
pub(crate) struct Queue(std::sync::Mutex<VecDeque<Job>>);

impl Queue {
    fn push(&self, job: Job) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push_back(job);
    }

    /// The next group: queued jobs in order while they fit in [`GROUP_FACTS`] (always at least one), skipping jobs
    /// whose caller has gone away.
    fn take_group(&self) -> Vec<Job> {
        let mut q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut group: Vec<Job> = Vec::new();
        let mut facts = 0;
        while let Some(job) = q.front() {
            if job.answer.is_closed() {
                q.pop_front();
                continue;
            }
            if !group.is_empty() && facts + job.facts.len() > GROUP_FACTS {
                break;
            }
            facts += job.facts.len();
            group.extend(q.pop_front());
        }
        group
    }
}

#[async_trait::async_trait]
impl FactStore for SqliteStore {
    /// Store a batch of valid facts, the persons they introduce and the request's audit event; committed with the
    /// batches of other callers queued at the same moment (group commit, module docs), with the same result as
    /// writing them one after the other. Returns one decision per fact, in order. Facts repeated inside the batch
    /// are decided in order against each other. `audit` is `None` only when the benchmark measures the audit
    /// chain's cost (`Limits::bench_skip_ingest_audit`).
    async fn ingest(
        &self,
        facts: &[PreparedFact],
        persons: &[NewPerson],
        audit: Option<&AuditRecord>,
    ) -> Result<Vec<Decision>, StoreError> {
        let (answer, mut answered) = oneshot::channel();
        self.ingest_queue.push(Job { facts: facts.to_vec(), persons: persons.to_vec(), audit: audit.cloned(), answer });
        loop {
            let guard = self.writer.clone().lock_owned().await;
            // Whoever held the lock before may have written this batch with its group.
            match answered.try_recv() {
                Ok(result) => return result,
                // The task writing this batch's group panicked before answering (logged below); the caller may
                // retry (UNAVAILABLE): a retried batch that did commit is answered DUPLICATE.
                Err(oneshot::error::TryRecvError::Closed) => return Err(StoreError::Db(sqlx::Error::WorkerCrashed)),
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            let group = self.ingest_queue.take_group();
            let (write_pool, change_head) = (self.write_pool.clone(), self.change_head.clone());
            let task = tokio::spawn(async move {
                let _guard = guard;
                if let Some(head) = commit_group(&write_pool, group).await {
                    // Published after the commit, still under the writer lock: watchers woken by it find the rows.
                    crate::store::raise_head(&change_head, head);
                }
            });
            if let Err(e) = task.await {
                tracing::error!("ingest group commit task failed: {e}");
            }
        }
    }
}

/// Write `group` in one transaction and answer each job; if that fails, write each job alone. Returns the newest
/// change cursor committed, if any.
async fn commit_group(pool: &sqlx::SqlitePool, mut group: Vec<Job>) -> Option<i64> {
    // The jobs' facts and persons moved into one list each; job i's are the i-th ranges.
    let mut facts: Vec<PreparedFact> = Vec::with_capacity(group.iter().map(|j| j.facts.len()).sum());
    let mut persons: Vec<NewPerson> = Vec::new();
    let mut ranges = Vec::with_capacity(group.len());
    for j in &mut group {
        let (f, p) = (facts.len(), persons.len());
        facts.append(&mut j.facts);
        persons.append(&mut j.persons);
        ranges.push((f..facts.len(), p..persons.len()));
    }
    if group.len() > 1 {
        let audits: Vec<&AuditRecord> = group.iter().filter_map(|j| j.audit.as_ref()).collect();
        if let Ok((decisions, head)) = write(pool, &facts, &persons, &audits).await {
            for (j, (f, _)) in group.into_iter().zip(ranges) {
                let _ = j.answer.send(Ok(decisions[f].to_vec()));
            }
            return head;
        }
    }
    let mut newest = None;
    for (j, (f, p)) in group.into_iter().zip(ranges) {
        let audits: Vec<&AuditRecord> = j.audit.iter().collect();
        let result = write(pool, &facts[f], &persons[p], &audits).await.map(|(decisions, head)| {
            newest = head.or(newest);
            decisions
        });
        let _ = j.answer.send(result);
    }
    newest
}

/// One transaction: the facts (decided in order), their persons and the audit events in order. Returns the decisions
/// and the newest change cursor written.
async fn write(
    pool: &sqlx::SqlitePool,
    facts: &[PreparedFact],
    persons: &[NewPerson],
    audits: &[&AuditRecord],
) -> Result<(Vec<Decision>, Option<i64>), StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let now = to_micros(Utc::now());
    let current = current_versions(&mut tx, facts).await?;
    let IngestPlan { decisions, superseded, rows, changes } = plan_ingest(facts, current);
    supersede(&mut tx, &superseded, now).await?;
    let ids = insert_persons(&mut tx, persons, now).await?;
    insert_fact_rows(&mut tx, &rows, &ids, now).await?;
    let head = changes::append_changes(&mut tx, &changes).await?;
    for a in audits {
        // A request's persons are its batch's (`Hub::ingest`), all in `ids` now.
        audit::append_audit_of(&mut tx, a, now, Some(&ids)).await?;
    }
    tx.commit().await?;
    Ok((decisions, head))
}

/// The current versions of the records `facts` name, looked up per agency with `agency = ? AND fact_id IN (...)`,
/// which searches the primary key (a row-value `IN (VALUES ...)` would scan the table).
async fn current_versions(
    conn: &mut SqliteConnection,
    facts: &[PreparedFact],
) -> Result<HashMap<(String, String), Current>, StoreError> {
    let mut current: HashMap<(String, String), Current> = HashMap::with_capacity(facts.len());
    let mut by_agency: HashMap<&str, Vec<&str>> = HashMap::new();
    for f in facts {
        by_agency.entry(f.agency.as_str()).or_default().push(f.fact.fact_id.as_str());
    }
    for (agency, ids) in &by_agency {
        for chunk in ids.chunks(ROWS_PER_INSERT) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "SELECT agency, fact_id, source_version, content_hash, division_code FROM facts \
                 WHERE is_current = 1 AND agency = ",
            );
            qb.push_bind(agency.to_string()).push(" AND fact_id IN (");
            let mut sep = qb.separated(", ");
            for id in chunk {
                sep.push_bind(id.to_string());
            }
            qb.push(")");
            for r in qb.build().fetch_all(&mut *conn).await? {
                let hash: Vec<u8> = r.try_get(3)?;
                let hash: [u8; 32] = hash.try_into().map_err(|_| corrupt("facts", "content_hash length"))?;
                let version: i64 = r.try_get(2)?;
                let key: (String, String) = (r.try_get(0)?, r.try_get(1)?);
                let version = CurrentVersion { source_version: version as u64, content_hash: hash };
                current.insert(key, Current { version, division: r.try_get(4)? });
            }
        }
    }
    Ok(current)
}

/// Mark the current versions of `superseded` `(agency, fact_id)` records as superseded at `now`: one statement per
/// agency and chunk, searching the primary key as the lookup does.
async fn supersede(conn: &mut SqliteConnection, superseded: &[(String, String)], now: i64) -> Result<(), StoreError> {
    let mut by_agency: HashMap<&str, Vec<&str>> = HashMap::new();
    for (agency, fact_id) in superseded {
        by_agency.entry(agency.as_str()).or_default().push(fact_id.as_str());
    }
    for (agency, ids) in &by_agency {
        for chunk in ids.chunks(ROWS_PER_INSERT) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("UPDATE facts SET is_current = 0, superseded_at = ");
            qb.push_bind(now).push(" WHERE is_current = 1 AND agency = ").push_bind(agency.to_string());
            qb.push(" AND fact_id IN (");
            let mut sep = qb.separated(", ");
            for id in chunk {
                sep.push_bind(id.to_string());
            }
            qb.push(")");
            qb.build().execute(&mut *conn).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::PersonKey;
    use crate::domain::agency::AgencyCode;
    use crate::store::contract::{AuditLog, StoreAdmin};
    use crate::synth::{Population, SynthConfig};
    use std::sync::Arc;

    async fn store() -> (tempfile::TempDir, Arc<SqliteStore>) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("group.db").display());
        let store = SqliteStore::open(&url).await.unwrap();
        store.migrate().await.unwrap();
        (dir, Arc::new(store))
    }

    /// Civil affairs' facts of a small synthetic population, each with person key `[i + 1; 32]`.
    fn facts(n: usize) -> Vec<PreparedFact> {
        let pop = Population::generate(&SynthConfig { persons: 50, ..Default::default() });
        let agency = AgencyCode::parse("civil_affairs").unwrap();
        let facts: Vec<PreparedFact> = pop
            .facts("civil_affairs")
            .take(n)
            .enumerate()
            .map(|(i, f)| PreparedFact::new(agency.clone(), f, PersonKey([i as u8 + 1; 32])))
            .collect();
        assert_eq!(facts.len(), n);
        facts
    }

    fn person(f: &PreparedFact) -> NewPerson {
        NewPerson { person_key: f.person_key, id_cipher: vec![1, 2, 3], id_masked: "62**".into() }
    }

    fn audit(outcome: &str, facts: &[&PreparedFact]) -> AuditRecord {
        AuditRecord {
            agency: "civil_affairs".into(),
            division: "621021".into(),
            method: "PushFacts".into(),
            purpose: String::new(),
            outcome: outcome.into(),
            person_keys: facts.iter().map(|f| f.person_key).collect(),
        }
    }

    /// Start one `ingest` per batch while the writer lock is held (so they queue, in this order), then let them run.
    async fn queued(
        store: &Arc<SqliteStore>,
        batches: Vec<(Vec<PreparedFact>, Vec<NewPerson>, AuditRecord)>,
    ) -> Vec<Result<Vec<Decision>, StoreError>> {
        let held = store.writer.lock().await;
        let mut tasks = Vec::new();
        for (facts, persons, audit) in batches {
            let s = store.clone();
            tasks.push(tokio::spawn(async move { s.ingest(&facts, &persons, Some(&audit)).await }));
            // Each call queues its batch before it waits for the lock: let it, so the queue order is this order.
            while s_queued(store) < tasks.len() {
                tokio::task::yield_now().await;
            }
        }
        drop(held);
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }

    fn s_queued(store: &SqliteStore) -> usize {
        store.ingest_queue.0.lock().unwrap().len()
    }

    async fn strings(store: &SqliteStore, sql: &'static str) -> Vec<String> {
        sqlx::query_scalar(sql).fetch_all(&store.pool).await.unwrap()
    }

    /// Batches queued together commit in one transaction (one `recorded_at`), decided as if written one after the
    /// other: C's version 2 of A's record is NEW_VERSION against A's version 1 of the same group; the audit events and
    /// change cursors follow queue order (hand-derived from the batches below).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_batches_commit_together_as_if_one_after_the_other() {
        let (_dir, store) = store().await;
        let f = facts(3);
        // Version 2 of f[1] with other content (an end date), so it is a new version and not a duplicate.
        let mut fact = f[1].fact.clone();
        fact.source_version = 2;
        fact.valid_to = Some(fact.valid_from + chrono::Days::new(400));
        let f1v2 = PreparedFact::new(f[1].agency.clone(), fact, f[1].person_key);
        let a = (vec![f[0].clone(), f[1].clone()], vec![person(&f[0]), person(&f[1])], audit("A", &[&f[0], &f[1]]));
        let c = (vec![f[2].clone(), f1v2.clone()], vec![person(&f[2]), person(&f[1])], audit("C", &[&f[2], &f1v2]));
        let out = queued(&store, vec![a, c]).await;
        assert_eq!(out[0].as_ref().unwrap(), &[Decision::Accepted, Decision::Accepted]);
        assert_eq!(out[1].as_ref().unwrap(), &[Decision::Accepted, Decision::NewVersion]);
        let one: i64 =
            sqlx::query_scalar("SELECT COUNT(DISTINCT recorded_at) FROM facts").fetch_one(&store.pool).await.unwrap();
        assert_eq!(one, 1, "one transaction");
        assert_eq!(strings(&store, "SELECT outcome FROM audit_events ORDER BY seq").await, ["A", "C"]);
        let order = "SELECT fact_id || ' v' || source_version FROM change_log ORDER BY cursor";
        let ids = [&f[0], &f[1], &f[2], &f1v2].map(|p| format!("{} v{}", p.fact.fact_id, p.fact.source_version));
        assert_eq!(strings(&store, order).await, ids);
        // Three persons, numbered in the order the group met them; A's event links two persons, C's two.
        let links: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_persons").fetch_one(&store.pool).await.unwrap();
        assert_eq!(links, 4);
        assert_eq!(store.verify_audit_chain().await.unwrap().checked, 2);
    }

    /// A group whose transaction fails stores nothing of itself and writes each batch alone: the bad batch (a fact
    /// whose person is not among the batch's persons) gets its own error, the others their decisions.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_batch_fails_alone() {
        let (_dir, store) = store().await;
        let f = facts(3);
        let a = (vec![f[0].clone()], vec![person(&f[0])], audit("A", &[&f[0]]));
        let bad = (vec![f[1].clone()], vec![], audit("B", &[]));
        let c = (vec![f[2].clone()], vec![person(&f[2])], audit("C", &[&f[2]]));
        let out = queued(&store, vec![a, bad, c]).await;
        assert_eq!(out[0].as_ref().unwrap(), &[Decision::Accepted]);
        let err = out[1].as_ref().unwrap_err().to_string();
        assert!(err.contains("a fact's person has no person_id"), "{err}");
        assert_eq!(out[2].as_ref().unwrap(), &[Decision::Accepted]);
        let stored = [&f[0], &f[2]].map(|p| p.fact.fact_id.clone());
        assert_eq!(strings(&store, "SELECT fact_id FROM facts ORDER BY fact_id").await, stored);
        assert_eq!(strings(&store, "SELECT outcome FROM audit_events ORDER BY seq").await, ["A", "C"]);
    }
}
