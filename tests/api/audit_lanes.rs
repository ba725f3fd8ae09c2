//! Audit lanes on PostgreSQL (issue 17 items 2 and 4, docs/audit-lanes.md), with real `doudi serve` replicas on one
//! database (checkpoints every second, the default): reads on one replica are answered while the hub-wide write lock
//! is held elsewhere; two replicas reading at once keep a lane each and lose no event; a lane cut short after another
//! lane's checkpoint named it is found; a process whose lane was taken over appends to lane 0 and loses nothing.
//! Runs only in the PostgreSQL half (`tests/api_pg`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use doudi::bench::hub::ChildHub;
use doudi::domain::audit::parse_heads;
use doudi::grpc::pb;
use doudi::store::AuditFilter;
use macro_rules_attribute::apply;
use sqlx::Connection as _;

use crate::support::*;

const XIFENG: &str = "621002";

/// The advisory lock every PostgreSQL write transaction takes (`store/postgres/mod.rs`, `WRITE_LOCK`: ASCII
/// "doudi-wr").
const WRITE_LOCK: i64 = 0x646f_7564_692d_7772;

async fn replicas(n: usize) -> (Vec<ChildHub>, String) {
    doudi::tls::install_crypto_provider();
    let url = postgres::fresh_database().await;
    let u = url.clone();
    let hubs = tokio::task::spawn_blocking(move || ChildHub::replicas(Path::new(env!("CARGO_BIN_EXE_doudi")), &u, n))
        .await
        .unwrap()
        .expect("replicas start on one database");
    (hubs, url)
}

fn person(seq: u16) -> String {
    id(XIFENG, (1960, 3, 1), seq)
}

async fn push_persons(hub: &ChildHub, n: u16) {
    let mut c = hub.client("civil_affairs").await.unwrap();
    let facts = (1..=n).map(|i| with(base(&format!("L-{i}"), &person(i), XIFENG), rural_dibao())).collect();
    let r = push(&mut c, facts).await.unwrap();
    assert!(r.results.iter().all(|r| outcome(r) == pb::FactOutcome::Accepted));
}

async fn verify(hub: &ChildHub) -> pb::VerifyAuditChainResponse {
    let mut c = hub.client("leading_group").await.unwrap();
    c.audit.verify_audit_chain(pb::VerifyAuditChainRequest {}).await.unwrap().into_inner()
}

/// Issue 17 item 4: while the hub-wide write lock is held for 2 s (here by the test itself, on its own connection,
/// as a replica's long write transaction would hold it), 32 audited reads on a replica are answered and their events
/// stored, and a push on the other replica waits for the lock.
#[apply(e2e!)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_on_a_replica_are_answered_while_the_write_lock_is_held() {
    let (hubs, url) = replicas(2).await;
    push_persons(&hubs[0], 4).await;
    let mut reader = hubs[1].client("medical_insurance").await.unwrap();
    // One read first, so the replica has claimed its lane before the lock is taken.
    get(&mut reader, &person(1), "2023-06-30").await.unwrap();

    let mut holder = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut tx = holder.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(WRITE_LOCK).execute(&mut *tx).await.unwrap();
    let held_at = Instant::now();

    // A push on replica A now waits for the lock.
    let mut writer = hubs[0].client("civil_affairs").await.unwrap();
    let blocked_push = tokio::spawn(async move {
        let t0 = Instant::now();
        let r = push(&mut writer, vec![with(base("L-late", &person(9), XIFENG), rural_dibao())]).await.unwrap();
        (t0.elapsed(), r)
    });
    // 32 reads on replica B at once.
    let mut tasks = Vec::new();
    for i in 0..32u16 {
        let mut c = reader.clone();
        tasks.push(tokio::spawn(async move { get(&mut c, &person(1 + i % 4), "2023-06-30").await.map(|_| ()) }));
    }
    for t in tasks {
        t.await.unwrap().expect("an audited read is answered while the write lock is held");
    }
    let reads_took = held_at.elapsed();
    assert!(reads_took < Duration::from_millis(1500), "32 reads took {reads_took:?} with the write lock held");
    assert!(!blocked_push.is_finished(), "the push waits for the write lock");

    tokio::time::sleep(Duration::from_secs(2).saturating_sub(held_at.elapsed())).await;
    tx.rollback().await.unwrap();
    let (push_took, r) = blocked_push.await.unwrap();
    assert_eq!(outcome(&r.results[0]), pb::FactOutcome::Accepted);
    assert!(push_took >= Duration::from_millis(1500), "the push waited for the lock: {push_took:?}");
    eprintln!("32 reads answered in {reads_took:?} while the write lock was held; the push waited {push_took:?}");

    // Every read has its event, in replica B's lane; the chain verifies.
    let v = verify(&hubs[1]).await;
    assert!(v.valid, "{}", v.reason);
    let store = doudi::store::Store::open(&url).await.unwrap();
    let events = store.list_audit_events(&AuditFilter::default(), None, 1000).await.unwrap();
    let reads: Vec<_> = events.iter().filter(|e| e.method.ends_with("/GetRecipient")).collect();
    assert_eq!(reads.len(), 33);
    assert!(reads.iter().all(|e| e.lane >= 1 && e.lane == reads[0].lane), "one lane for replica B's reads");
    store.close().await;
}

/// Two replicas reading at once: each appends its reads to a lane of its own, every read has exactly one event (the
/// events per person equal the reads made of that person), each lane is gap-free and verifies, and checkpoints name
/// every lane's head. Then, with the hubs stopped, the newest events of one lane are deleted from the position the
/// other lane's newest checkpoint names: verification names that lane and position.
#[apply(e2e!)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_keep_a_lane_each_and_a_cut_lane_is_found() {
    let (hubs, url) = replicas(2).await;
    push_persons(&hubs[0], 4).await;
    // Replica A reads person 1 ten times and person 2 five times; replica B person 2 seven times, person 3 six times.
    let plan: [(usize, u16, usize); 4] = [(0, 1, 10), (0, 2, 5), (1, 2, 7), (1, 3, 6)];
    let mut tasks = Vec::new();
    for (hub, p, n) in plan {
        let c = hubs[hub].client("medical_insurance").await.unwrap();
        for _ in 0..n {
            let mut c = c.clone();
            tasks.push(tokio::spawn(async move { get(&mut c, &person(p), "2023-06-30").await.map(|_| ()) }));
        }
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    // Reads per person, as made: person 1: 10, person 2: 12, person 3: 6, person 4: none (ListAccessEvents by person,
    // newest first; each listing's own event is appended after it answers).
    let mut civil = hubs[1].client("civil_affairs").await.unwrap();
    let mut per_person = Vec::new();
    for i in 1..=4u16 {
        let listed = civil
            .audit
            .list_access_events(pb::ListAccessEventsRequest {
                id_number: person(i),
                page_size: 1000,
                purpose: "lane test".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        per_person.push(listed.events.iter().filter(|e| e.method.ends_with("/GetRecipient")).count());
    }
    assert_eq!(per_person, [10, 12, 6, 0], "audit events per person = reads made of that person");
    // Let each replica's checkpoint timer (1 s) see the other's reads.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let v = verify(&hubs[0]).await;
    assert!(v.valid, "{}", v.reason);
    let lanes: Vec<i32> = v.heads.iter().map(|h| h.lane).collect();
    assert_eq!(lanes.len(), 3, "lane 0 (the push) and one lane per replica: {lanes:?}");
    assert_eq!(lanes[0], 0);
    assert!(v.checkpoint.is_some(), "a checkpoint was written");
    drop(hubs);

    let store = doudi::store::Store::open(&url).await.unwrap();
    let events = store.list_audit_events(&AuditFilter::default(), None, 1000).await.unwrap();
    let mut reads_by_lane: BTreeMap<i32, usize> = BTreeMap::new();
    for e in events.iter().filter(|e| e.method.ends_with("/GetRecipient")) {
        *reads_by_lane.entry(e.lane).or_default() += 1;
    }
    let mut per_lane: Vec<usize> = reads_by_lane.values().copied().collect();
    per_lane.sort_unstable();
    assert_eq!(per_lane, [13, 15], "replica B's 13 reads in one lane, A's 15 in another");

    // The newest checkpoint of one replica's lane names the other's lane at some position k ≥ 1.
    let (reader_a, reader_b) = (v.heads[1].lane, v.heads[2].lane);
    let pool = store.pg_pool().unwrap();
    let (by_lane, purpose): (i32, String) = sqlx::query_as(
        "SELECT lane, purpose FROM audit_events WHERE method = 'audit.checkpoint' AND lane IN ($1, $2) \
         ORDER BY seq DESC LIMIT 1",
    )
    .bind(reader_a)
    .bind(reader_b)
    .fetch_one(pool)
    .await
    .unwrap();
    let other = if by_lane == reader_a { reader_b } else { reader_a };
    let named = parse_heads(&purpose).unwrap().into_iter().find(|h| h.lane == other).expect("names the other lane");
    assert!(named.seq >= 1);
    // Cut the other lane from that position on (its events and their persons), as someone with database access.
    let cut = named.seq;
    sqlx::query(
        "DELETE FROM audit_persons WHERE seq IN (SELECT seq FROM audit_events WHERE lane = $1 AND lane_seq >= $2)",
    )
    .bind(other)
    .bind(cut)
    .execute(pool)
    .await
    .unwrap();
    let deleted = sqlx::query("DELETE FROM audit_events WHERE lane = $1 AND lane_seq >= $2")
        .bind(other)
        .bind(cut)
        .execute(pool)
        .await
        .unwrap()
        .rows_affected();
    assert!(deleted >= 1);
    let c = store.verify_audit_chain().await.unwrap();
    let (at, why) = c.first_broken.expect("the cut lane is found");
    assert_eq!((c.first_broken_lane, at), (other, cut), "{why}");
    assert!(why.contains("checkpoint"), "{why}");
    store.close().await;
}

/// Fencing: a lane taken over by another process (its row names another holder) is not appended to; the group goes
/// to lane 0 under the write lock instead, and the next read claims a lane again. Nothing is lost; the chain verifies.
#[apply(e2e!)]
#[tokio::test]
async fn a_lane_taken_over_is_not_appended_to() {
    let url = postgres::fresh_database().await;
    let store = doudi::store::Store::open(&url).await.unwrap();
    store.migrate().await.unwrap();
    let record = |n: usize| doudi::store::AuditRecord {
        agency: "education".into(),
        division: String::new(),
        method: format!("/doudi.v1.RecipientExchange/GetRecipient#{n}"),
        purpose: "fencing test".into(),
        outcome: "OK".into(),
        person_keys: vec![],
    };
    store.record_audit(&record(1)).await.unwrap();
    let pool = store.pg_pool().unwrap().clone();
    sqlx::query("UPDATE audit_lanes SET holder = 'another process' WHERE lane = 1").execute(&pool).await.unwrap();
    store.record_audit(&record(2)).await.unwrap();
    store.record_audit(&record(3)).await.unwrap();
    let lanes: Vec<(String, i32, i64)> =
        sqlx::query_as("SELECT method, lane, lane_seq FROM audit_events ORDER BY seq").fetch_all(&pool).await.unwrap();
    let m = |n: usize| format!("/doudi.v1.RecipientExchange/GetRecipient#{n}");
    assert_eq!(lanes[..2], [(m(1), 1, 1), (m(2), 0, 1)], "1 in the process's lane; 2 in lane 0 once it was taken over");
    // 3 in a lane claimed again: lane 1 (continued) once the old session's lock is gone, else the next free one.
    let (method, lane, lane_seq) = lanes[2].clone();
    assert_eq!(method, m(3));
    assert!((lane, lane_seq) == (1, 2) || (lane >= 2 && lane_seq == 1), "{lanes:?}");
    let c = store.verify_audit_chain().await.unwrap();
    assert_eq!((c.checked, c.first_broken), (3, None));
    store.close().await;
}
