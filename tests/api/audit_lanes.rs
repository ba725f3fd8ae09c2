//! Audit lanes on PostgreSQL (issue 17 items 2 and 4, docs/audit-lanes.md), with real `doudi serve` replicas on one
//! database (checkpoints every second, the default): reads on one replica are answered while the hub-wide write lock
//! is held elsewhere; two replicas reading at once keep a lane each and lose no event; a lane cut short after another
//! lane's checkpoint named it is found; a process whose lane was taken over appends to lane 0 and loses nothing.
//! Runs only in the PostgreSQL half (`tests/api_pg`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use doudi::domain::audit::parse_heads;
use doudi::grpc::pb;
use doudi::store::AuditFilter;
use doudi::tools::bench::hub::ChildHub;
use macro_rules_attribute::apply;
use sqlx::Connection as _;

use crate::support::*;

const XIFENG: &str = "621002";

/// The advisory lock every PostgreSQL write transaction takes (`store/postgres/mod.rs`, `WRITE_LOCK`: ASCII
/// "doudi-wr").
const WRITE_LOCK: i64 = 0x646f_7564_692d_7772;

async fn replicas(n: usize) -> (Vec<ChildHub>, String) {
    doudi::server::tls::install_crypto_provider();
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

/// Fencing: a process appends to its lane only on the session that holds the lane's lock. Process A's session is
/// terminated (as a dropped connection would end it); process B then claims the freed lane 1 and appends; A's next
/// group finds its session gone, claims again, gets lane 2 (B holds 1) and appends there. No event is lost, lane 1
/// has one writer at a time, and the chain verifies. Worked by hand: lane 1 holds A's first event then B's; lane 2
/// A's second.
#[apply(e2e!)]
#[tokio::test]
async fn a_process_whose_lane_session_ended_claims_again_and_never_shares_a_lane() {
    let url = postgres::fresh_database().await;
    let a = doudi::store::Store::open(&url).await.unwrap();
    a.migrate().await.unwrap();
    let b = doudi::store::Store::open(&url).await.unwrap();
    let record = |who: &str| doudi::store::AuditRecord {
        agency: "education".into(),
        division: String::new(),
        via: String::new(),
        method: format!("/doudi.v1.RecipientExchange/GetRecipient#{who}"),
        purpose: "fencing test".into(),
        outcome: "OK".into(),
        person_keys: vec![],
    };
    a.record_audit(&record("a1")).await.unwrap();
    let pool = a.pg_pool().unwrap().clone();
    // The session holding lane 1's lock ("doud" = 0x646f7564, lane 1), ended from outside.
    // pg_locks is the whole server's: only this database's lock.
    let lane_lock = "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = 1685026148 AND objid = 1 \
                     AND objsubid = 2 AND granted AND database = (SELECT oid FROM pg_database WHERE \
                     datname = current_database())";
    let pid: i32 = sqlx::query_scalar(lane_lock).fetch_one(&pool).await.unwrap();
    let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)").bind(pid).fetch_one(&pool).await.unwrap();
    assert!(ended);
    for _ in 0..100 {
        if sqlx::query_scalar::<_, i32>(lane_lock).fetch_optional(&pool).await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    b.record_audit(&record("b1")).await.unwrap();
    a.record_audit(&record("a2")).await.unwrap();
    let rows: Vec<(String, i32, i64)> =
        sqlx::query_as("SELECT method, lane, lane_seq FROM audit_events ORDER BY seq").fetch_all(&pool).await.unwrap();
    let m = |who: &str| format!("/doudi.v1.RecipientExchange/GetRecipient#{who}");
    assert_eq!(rows, [(m("a1"), 1, 1), (m("b1"), 1, 2), (m("a2"), 2, 1)]);
    let c = a.verify_audit_chain().await.unwrap();
    assert_eq!((c.checked, c.first_broken), (3, None));
    a.close().await;
    b.close().await;
}

// ---- Attacks (branch `attack`): tampering, concurrency, crashes, takeover, migration ----

/// A read's audit record for the in-process attacks: `n` numbers it, `persons` its person keys (bytes 1..).
fn read_record(n: usize, persons: &[u8]) -> doudi::store::AuditRecord {
    doudi::store::AuditRecord {
        agency: "education".into(),
        division: String::new(),
        via: String::new(),
        method: format!("/doudi.v1.RecipientExchange/GetRecipient#{n}"),
        purpose: "attack test".into(),
        outcome: "OK".into(),
        person_keys: persons.iter().map(|b| doudi::security::crypto::PersonKey([*b; 32])).collect(),
    }
}

/// Wait until lane `lane` holds `n` events (a checkpoint timer's first tick runs at once).
async fn wait_lane_len(pool: &sqlx::PgPool, lane: i32, n: i64) {
    let t0 = Instant::now();
    loop {
        let len: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE lane = $1")
            .bind(lane)
            .fetch_one(pool)
            .await
            .unwrap();
        if len >= n {
            assert_eq!(len, n, "lane {lane}");
            return;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "lane {lane} has {len} events, not {n}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two processes' lanes (two stores in this process, lanes 1 and 2) with one checkpoint each, built step by step so
/// that what each checkpoint names is known by hand:
///
/// - lane 1: reads 1, 2, 3 (person 1 each), 4; event 5 = checkpoint C_A naming lane 1 at 4 and lane 2 at 3;
/// - lane 2: reads 1, 2; event 3 = checkpoint C_B naming lane 1 at 3 and lane 2 at 2; read 4.
///
/// A checkpoint timer's first tick runs at once and the next one an hour later, so each store writes exactly one.
async fn two_lanes_with_checkpoints() -> String {
    let url = postgres::fresh_database().await;
    let a = doudi::store::Store::open(&url).await.unwrap();
    a.migrate().await.unwrap();
    let b = doudi::store::Store::open(&url).await.unwrap();
    for n in 1..=3 {
        a.record_audit(&read_record(n, &[1])).await.unwrap();
    }
    for n in 1..=2 {
        b.record_audit(&read_record(10 + n, &[2])).await.unwrap();
    }
    let pool = a.pg_pool().unwrap().clone();
    b.start_audit_checkpoints(Duration::from_secs(3600));
    wait_lane_len(&pool, 2, 3).await;
    a.record_audit(&read_record(4, &[1])).await.unwrap();
    a.start_audit_checkpoints(Duration::from_secs(3600));
    wait_lane_len(&pool, 1, 5).await;
    b.record_audit(&read_record(14, &[2])).await.unwrap();
    a.close().await;
    b.close().await;
    url
}

/// Recompute the hashes of lane `lane` from its event `from` on, after the events were altered in place, exactly as
/// the documented canonical form says (`domain::audit`): what someone with database access and the source can do.
async fn rehash_lane(pool: &sqlx::PgPool, lane: i32, from: i64) {
    use doudi::domain::audit::{EventContent, event_hash};
    use sqlx::Row as _;
    let rows = sqlx::query(
        "SELECT lane_seq, at, agency, division, method, purpose, outcome, person_count, persons_hash, prev_hash \
         FROM audit_events WHERE lane = $1 AND lane_seq >= $2 ORDER BY lane_seq",
    )
    .bind(lane)
    .bind(from)
    .fetch_all(pool)
    .await
    .unwrap();
    let mut prev: Option<[u8; 32]> = None;
    for r in rows {
        let lane_seq: i64 = r.get(0);
        let at: chrono::DateTime<chrono::Utc> = r.get(1);
        let persons_hash: Vec<u8> = r.get(8);
        let stored_prev: Vec<u8> = r.get(9);
        let prev_hash: [u8; 32] = prev.unwrap_or_else(|| stored_prev.try_into().unwrap());
        let (agency, division, method, purpose, outcome): (String, String, String, String, String) =
            (r.get(2), r.get(3), r.get(4), r.get(5), r.get(6));
        let content = EventContent {
            seq: lane_seq,
            at_micros: at.timestamp_micros(),
            agency: &agency,
            division: &division,
            method: &method,
            purpose: &purpose,
            outcome: &outcome,
            person_count: r.get(7),
            persons_hash: persons_hash.try_into().unwrap(),
            via: "", // no call of these tests comes through a gateway
        };
        let hash = event_hash(&prev_hash, &content);
        sqlx::query("UPDATE audit_events SET prev_hash = $1, hash = $2 WHERE lane = $3 AND lane_seq = $4")
            .bind(prev_hash.to_vec())
            .bind(hash.to_vec())
            .bind(lane)
            .bind(lane_seq)
            .execute(pool)
            .await
            .unwrap();
        prev = Some(hash);
    }
}

/// Run `tamper` (SQL statements) on a fresh copy of [`two_lanes_with_checkpoints`] and verify.
async fn tampered(tamper: &[&str], rehash: Option<(i32, i64)>) -> doudi::store::ChainCheck {
    let url = two_lanes_with_checkpoints().await;
    let store = doudi::store::Store::open(&url).await.unwrap();
    let pool = store.pg_pool().unwrap().clone();
    let c = store.verify_audit_chain().await.unwrap();
    assert_eq!((c.checked, c.first_broken.clone()), (9, None), "untampered: 5 events in lane 1, 4 in lane 2");
    for sql in tamper {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(&pool).await.unwrap();
    }
    if let Some((lane, from)) = rehash {
        rehash_lane(&pool, lane, from).await;
    }
    let c = store.verify_audit_chain().await.unwrap();
    store.close().await;
    c
}

fn broken_at(c: &doudi::store::ChainCheck) -> Option<(i32, i64)> {
    c.first_broken.as_ref().map(|(at, _)| (c.first_broken_lane, *at))
}

/// The scenario's checkpoints name what the hand count says.
#[apply(e2e!)]
#[tokio::test]
async fn attack_checkpoints_name_the_heads_counted_by_hand() {
    let url = two_lanes_with_checkpoints().await;
    let store = doudi::store::Store::open(&url).await.unwrap();
    let pool = store.pg_pool().unwrap().clone();
    let cps: Vec<(i32, i64, String)> = sqlx::query_as(
        "SELECT lane, lane_seq, purpose FROM audit_events WHERE method = 'audit.checkpoint' ORDER BY seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    type Named = (i32, i64, Vec<(i32, i64)>);
    let named: Vec<Named> = cps
        .iter()
        .map(|(l, s, p)| (*l, *s, parse_heads(p).unwrap().iter().map(|h| (h.lane, h.seq)).collect()))
        .collect();
    assert_eq!(named, vec![(2, 3, vec![(1, 3), (2, 2)]), (1, 5, vec![(1, 4), (2, 3)])]);
    store.close().await;
}

/// Tampering with single events or a lane's numbering is found where it happened.
#[apply(e2e!)]
#[tokio::test]
async fn attack_tampering_with_events_is_found() {
    // C_B (lane 2, event 3) deleted: a gap in lane 2.
    let c = tampered(&["DELETE FROM audit_events WHERE lane = 2 AND lane_seq = 3"], None).await;
    assert_eq!(broken_at(&c), Some((2, 3)), "{:?}", c.first_broken);
    // C_B's purpose altered (names lane 1 at 2 instead of 3).
    let c = tampered(
        &["UPDATE audit_events SET purpose = regexp_replace(purpose, '^1:3:', '1:2:') WHERE lane = 2 AND lane_seq = 3"],
        None,
    )
    .await;
    assert_eq!(broken_at(&c), Some((2, 3)), "{:?}", c.first_broken);
    // C_B's purpose altered and lane 2 rehashed from it: lane 2 is a valid chain, but C_A names its old event 3 (and
    // the altered C_B names lane 1's event 2 with event 3's hash).
    let c = tampered(
        &["UPDATE audit_events SET purpose = regexp_replace(purpose, '^1:3:', '1:2:') WHERE lane = 2 AND lane_seq = 3"],
        Some((2, 3)),
    )
    .await;
    // (C_A's claim on lane 2 and the altered C_B's claim on lane 1 both fail; lane 1 comes first.)
    assert!(c.first_broken.as_ref().unwrap().1.contains("rewritten"), "{:?}", c.first_broken);
    // Lane 1's events 1 and 2 swap positions.
    let c = tampered(
        &[
            "UPDATE audit_events SET lane_seq = -lane_seq WHERE lane = 1 AND lane_seq IN (1, 2)",
            "UPDATE audit_events SET lane_seq = CASE lane_seq WHEN -1 THEN 2 ELSE 1 END WHERE lane = 1 AND lane_seq < 0",
        ],
        None,
    )
    .await;
    assert_eq!(broken_at(&c), Some((1, 1)), "{:?}", c.first_broken);
    // Lane 1's event 2 moved to lane 2 (as its event 5): lane 1 has a gap at 2.
    let c = tampered(&["UPDATE audit_events SET lane = 2, lane_seq = 5 WHERE lane = 1 AND lane_seq = 2"], None).await;
    assert!(c.first_broken.is_some());
    // All of lane 2 renamed lane 3 (events and row): its first event does not link to lane 3's genesis.
    let c = tampered(
        &["UPDATE audit_events SET lane = 3 WHERE lane = 2", "UPDATE audit_lanes SET lane = 3 WHERE lane = 2"],
        None,
    )
    .await;
    assert_eq!(broken_at(&c), Some((3, 1)), "{:?}", c.first_broken);
    // A person link of lane 1's event 2 deleted.
    let c = tampered(
        &["DELETE FROM audit_persons WHERE seq = (SELECT seq FROM audit_events WHERE lane = 1 AND lane_seq = 2)"],
        None,
    )
    .await;
    assert_eq!(broken_at(&c), Some((1, 2)), "{:?}", c.first_broken);
}

/// Cutting a lane short: found when a checkpoint of another lane names a deleted event; not found when no checkpoint
/// names it (the documented limit, docs/audit-lanes.md: compare the heads with a copy kept elsewhere).
#[apply(e2e!)]
#[tokio::test]
async fn attack_cutting_lanes_found_where_a_checkpoint_names_them() {
    let cut = |lane: i32, from: i64| {
        format!(
            "DELETE FROM audit_persons WHERE seq IN (SELECT seq FROM audit_events WHERE lane = {lane} AND lane_seq >= \
             {from}); DELETE FROM audit_events WHERE lane = {lane} AND lane_seq >= {from}"
        )
    };
    // Lane 2 from 3 (C_B and read 4): C_A names lane 2 at 3.
    let c = tampered(&[&cut(2, 3)], None).await;
    assert_eq!(broken_at(&c), Some((2, 3)), "{:?}", c.first_broken);
    // Lane 1 from 3: C_B names lane 1 at 3.
    let c = tampered(&[&cut(1, 3)], None).await;
    assert_eq!(broken_at(&c), Some((1, 3)), "{:?}", c.first_broken);
    // Inherent: lane 2's read 4 (no checkpoint names it).
    let c = tampered(&[&cut(2, 4)], None).await;
    assert_eq!((c.checked, broken_at(&c)), (8, None));
    // Inherent: lane 1 from 4 (read 4 and C_A; only C_A itself named read 4).
    let c = tampered(&[&cut(1, 4)], None).await;
    assert_eq!((c.checked, broken_at(&c)), (7, None));
    // The heads reported for safekeeping show the cut: lane 1 ends at 3, where it ended at 5.
    assert_eq!(c.heads.iter().map(|h| (h.lane, h.seq)).collect::<Vec<_>>(), vec![(1, 3), (2, 4)]);
}

/// Rewriting a lane (altered event, hashes recomputed from it on): found when a checkpoint of another lane names a
/// rewritten event, also when the `audit_lanes` rows (not part of any chain) were deleted or renumbered as well.
#[apply(e2e!)]
#[tokio::test]
async fn attack_rewriting_a_lane_is_found_whatever_audit_lanes_holds() {
    let alter = "UPDATE audit_events SET purpose = 'nothing to see' WHERE lane = 1 AND lane_seq = 3";
    // C_B (lane 2's newest checkpoint) names lane 1's event 3 with its old hash.
    let c = tampered(&[alter], Some((1, 3))).await;
    assert_eq!(broken_at(&c), Some((1, 3)), "{:?}", c.first_broken);
    // The same, with lane 2's row of audit_lanes deleted: the events are those above, so is the answer.
    let c = tampered(&[alter, "DELETE FROM audit_lanes WHERE lane = 2"], Some((1, 3))).await;
    assert_eq!(broken_at(&c), Some((1, 3)), "{:?}", c.first_broken);
    // Or every read lane's row.
    let c = tampered(&[alter, "DELETE FROM audit_lanes WHERE lane <> 0"], Some((1, 3))).await;
    assert_eq!(broken_at(&c), Some((1, 3)), "{:?}", c.first_broken);
    // Or lane 2's row renumbered.
    let c = tampered(&[alter, "UPDATE audit_lanes SET lane = 77 WHERE lane = 2"], Some((1, 3))).await;
    assert_eq!(broken_at(&c), Some((1, 3)), "{:?}", c.first_broken);
    // Deleting audit_lanes rows alone alters no event: the chain is valid.
    let c = tampered(&["DELETE FROM audit_lanes"], None).await;
    assert_eq!((c.checked, broken_at(&c)), (9, None));
    // Inherent: lane 1 rewritten from event 4, which no other lane's checkpoint names.
    let c =
        tampered(&["UPDATE audit_events SET purpose = 'nothing to see' WHERE lane = 1 AND lane_seq = 4"], Some((1, 4)))
            .await;
    assert_eq!((c.checked, broken_at(&c)), (9, None));
}

/// Person `seq` of round `round` of the storms (a birth date per round, so that rounds never share a person).
fn storm_person(round: u32, seq: u16) -> String {
    id(XIFENG, (1970, 1 + round / 28, 1 + round % 28), seq)
}

/// Every `GetRecipient` event per person (by `person_id`), from the database: `(persons read, min, max)` events.
async fn read_events_per_person(pool: &sqlx::PgPool) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT COUNT(*), COALESCE(MIN(n), 0), COALESCE(MAX(n), 0) FROM (SELECT a.person_id, COUNT(*) AS n \
         FROM audit_persons a JOIN audit_events e ON e.seq = a.seq WHERE e.method LIKE '%/GetRecipient' \
         GROUP BY a.person_id) t",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Ideas 1 and 6: three replicas; in each round two replicas push 30 new persons each (lane 0, write lock) while
/// two replicas read each of those 60 persons at once (their lanes; a read may come before the push, probing an
/// unknown person, so reads and pushes insert the same `persons` rows concurrently), and two replicas call
/// VerifyAuditChain in a loop meanwhile. Every push and every read is answered (OK, or NOT_FOUND for a read before
/// its push); no verification reports a break; afterwards each person has exactly the 2 read events made of it.
#[apply(e2e!)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_storm_of_reads_pushes_and_verifications() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    const ROUNDS: u32 = 20;
    const PER_PUSH: u16 = 30;
    let (hubs, url) = replicas(3).await;
    let stop = Arc::new(AtomicBool::new(false));
    let verifications = Arc::new(AtomicUsize::new(0));
    let mut verifiers = Vec::new();
    for h in [0usize, 2] {
        let mut c = hubs[h].client("leading_group").await.unwrap();
        let (stop, count) = (stop.clone(), verifications.clone());
        verifiers.push(tokio::spawn(async move {
            let mut bad = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match c.audit.verify_audit_chain(pb::VerifyAuditChainRequest {}).await {
                    Ok(v) if v.get_ref().valid => {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(v) => bad.push(format!("replica {h}: broken: {}", v.into_inner().reason)),
                    Err(e) => bad.push(format!("replica {h}: {e:?}")),
                }
            }
            bad
        }));
    }
    let mut failures: Vec<String> = Vec::new();
    let mut answered = 0usize;
    for round in 0..ROUNDS {
        let mut tasks: Vec<tokio::task::JoinHandle<Result<usize, String>>> = Vec::new();
        for (k, h) in [0usize, 1].into_iter().enumerate() {
            let mut c = hubs[h].client("civil_affairs").await.unwrap();
            let facts = (1..=PER_PUSH)
                .map(|i| {
                    let seq = k as u16 * PER_PUSH + i;
                    with(base(&format!("S-{round}-{seq}"), &storm_person(round, seq), XIFENG), rural_dibao())
                })
                .collect();
            tasks.push(tokio::spawn(async move {
                match push(&mut c, facts).await {
                    Ok(r) if r.results.iter().all(|r| outcome(r) == pb::FactOutcome::Accepted) => Ok(0),
                    Ok(r) => Err(format!("push not accepted: {r:?}")),
                    Err(e) => Err(format!("push: {e:?}")),
                }
            }));
        }
        for h in [1usize, 2] {
            let c = hubs[h].client("medical_insurance").await.unwrap();
            // Replica 1 reads in the pushes' order, replica 2 in reverse.
            let mut seqs: Vec<u16> = (1..=2 * PER_PUSH).collect();
            if h == 2 {
                seqs.reverse();
            }
            for seq in seqs {
                let mut c = c.clone();
                tasks.push(tokio::spawn(async move {
                    match get(&mut c, &storm_person(round, seq), "2023-06-30").await {
                        Ok(_) => Ok(1),
                        Err(e) if e.code() == tonic::Code::NotFound => Ok(1),
                        Err(e) => Err(format!("read on replica {h}: {e:?}")),
                    }
                }));
            }
        }
        for t in tasks {
            match t.await.unwrap() {
                Ok(n) => answered += n,
                Err(e) => failures.push(e),
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for v in verifiers {
        failures.extend(v.await.unwrap());
    }
    let verified = verifications.load(Ordering::Relaxed);
    eprintln!("storm: {answered} reads answered, {verified} verifications valid, {} failures", failures.len());
    assert!(failures.is_empty(), "{} failures, first ones: {:#?}", failures.len(), &failures[..failures.len().min(5)]);
    assert!(verified >= 2, "verifications ran during the storm");
    let persons = i64::from(ROUNDS) * 2 * i64::from(PER_PUSH);
    assert_eq!(answered as i64, 2 * persons);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let v = verify(&hubs[2]).await;
    assert!(v.valid, "{}", v.reason);
    drop(hubs);
    let store = doudi::store::Store::open(&url).await.unwrap();
    let pool = store.pg_pool().unwrap().clone();
    assert_eq!(read_events_per_person(&pool).await, (persons, 2, 2), "each person's 2 reads, one event each");
    let c = store.verify_audit_chain().await.unwrap();
    assert_eq!(c.first_broken, None);
    store.close().await;
}

/// Idea 2: a replica is killed (SIGKILL) in the middle of a read storm, then another is started on the same
/// database. Every answered read has its event (per person: at least the answered reads, at most the reads sent);
/// the killed replica's lane is continued by the new process (or it claims a free one) without a gap or a fork; the
/// chain verifies.
#[apply(e2e!)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_kill_a_replica_mid_storm_and_restart() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let (mut hubs, url) = replicas(2).await;
    push_persons(&hubs[0], 8).await;
    let exe = Path::new(env!("CARGO_BIN_EXE_doudi"));
    let stop = Arc::new(AtomicBool::new(false));
    // 16 readers on the victim (replica 1), 4 on the survivor (replica 0); each counts, per person, the reads sent
    // and the reads answered.
    let mut readers = Vec::new();
    for (h, n) in [(1usize, 16u16), (0, 4)] {
        let c = hubs[h].client("medical_insurance").await.unwrap();
        for r in 0..n {
            let (mut c, stop) = (c.clone(), stop.clone());
            readers.push(tokio::spawn(async move {
                let (mut sent, mut answered, mut errors) = ([0usize; 8], [0usize; 8], Vec::new());
                let mut i = r as usize;
                while !stop.load(Ordering::Relaxed) {
                    let p = i % 8;
                    i += 1;
                    sent[p] += 1;
                    match get(&mut c, &person(1 + p as u16), "2023-06-30").await {
                        Ok(_) => answered[p] += 1,
                        Err(e) => {
                            errors.push((h, e.code()));
                            if h == 1 {
                                break; // the victim is gone
                            }
                        }
                    }
                }
                (h, sent, answered, errors)
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let victim = hubs.remove(1);
    tokio::task::spawn_blocking(move || victim.stop()).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut sent, mut answered) = ([0usize; 8], [0usize; 8]);
    for r in readers {
        let (h, s, a, errors) = r.await.unwrap();
        if h == 0 {
            assert!(errors.is_empty(), "reads on the surviving replica: {errors:?}");
        }
        for p in 0..8 {
            sent[p] += s[p];
            answered[p] += a[p];
        }
    }
    // A new replica on the same database, reading.
    let h0 = hubs.remove(0);
    let restarted = tokio::task::spawn_blocking(move || {
        let r = h0.another(exe);
        (h0, r)
    })
    .await
    .unwrap();
    let (h0, restarted) = (restarted.0, restarted.1.expect("a replica restarts on the database"));
    let mut c = restarted.client("medical_insurance").await.unwrap();
    for p in 0..8 {
        for _ in 0..3 {
            get(&mut c, &person(1 + p as u16), "2023-06-30").await.unwrap();
            sent[p] += 1;
            answered[p] += 1;
        }
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let v = verify(&restarted).await;
    assert!(v.valid, "{}", v.reason);
    drop((h0, restarted));
    let store = doudi::store::Store::open(&url).await.unwrap();
    let pool = store.pg_pool().unwrap().clone();
    let c = store.verify_audit_chain().await.unwrap();
    assert_eq!(c.first_broken, None);
    // Per person: every answered read has its event; no more events than reads sent.
    let keyed: Vec<(i64,)> = sqlx::query_as(
        "SELECT COUNT(*) FROM audit_persons a JOIN audit_events e ON e.seq = a.seq \
         WHERE e.method LIKE '%/GetRecipient' GROUP BY a.person_id ORDER BY a.person_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    // persons 1..8 were pushed in that order, so their person_ids are in that order.
    let events: Vec<usize> = keyed.iter().map(|(n,)| *n as usize).collect();
    assert_eq!(events.len(), 8);
    for p in 0..8 {
        assert!(
            answered[p] <= events[p] && events[p] <= sent[p],
            "person {}: {} answered, {} events, {} sent",
            p + 1,
            answered[p],
            events[p],
            sent[p]
        );
    }
    // The lanes: 0 (the push), the survivor's, the victim's; the new process continued the victim's lane or took a
    // fourth. No lane has two events at one position (the unique index) and each is gap-free (verified above).
    let lanes: Vec<(i32, i64, i64)> =
        sqlx::query_as("SELECT lane, COUNT(*), MAX(lane_seq) FROM audit_events GROUP BY lane ORDER BY lane")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(lanes.len() == 3 || lanes.len() == 4, "{lanes:?}");
    assert!(lanes.iter().all(|(_, n, max)| n == max), "{lanes:?}");
    eprintln!("lanes after the kill and restart: {lanes:?}; answered {answered:?}; sent {sent:?}");
    store.close().await;
}

/// Idea 3: two stores in this process on one database (two "processes": a lane each), 16 tasks each appending read
/// events concurrently, checkpoint timers every 50 ms, and meanwhile both lanes taken over (their rows given another
/// holder) again and again. Every event is stored exactly once; within each lane the events follow each other in
/// time (one writer at a time); the chain verifies.
#[apply(e2e!)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_two_stores_with_takeovers_lose_nothing() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    const TASKS: usize = 16;
    const EACH: usize = 40;
    let url = postgres::fresh_database().await;
    let a = doudi::store::Store::open(&url).await.unwrap();
    a.migrate().await.unwrap();
    let b = doudi::store::Store::open(&url).await.unwrap();
    a.start_audit_checkpoints(Duration::from_millis(50));
    b.start_audit_checkpoints(Duration::from_millis(50));
    let pool = a.pg_pool().unwrap().clone();
    let stop = Arc::new(AtomicBool::new(false));
    let thief = {
        let (pool, stop) = (pool.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(30)).await;
                sqlx::query("UPDATE audit_lanes SET holder = $1 WHERE lane = $2")
                    .bind(format!("thief {n}"))
                    .bind(1 + n % 2)
                    .execute(&pool)
                    .await
                    .unwrap();
                n += 1;
            }
            n
        })
    };
    let mut tasks = Vec::new();
    for (name, store) in [("a", &a), ("b", &b)] {
        for t in 0..TASKS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut errors = Vec::new();
                for i in 0..EACH {
                    let r = doudi::store::AuditRecord {
                        agency: name.into(),
                        division: String::new(),
                        via: String::new(),
                        method: format!("/doudi.v1.RecipientExchange/GetRecipient#{name}-{t}-{i}"),
                        purpose: "takeover storm".into(),
                        outcome: "OK".into(),
                        person_keys: vec![doudi::security::crypto::PersonKey([(i % 7) as u8 + 1; 32])],
                    };
                    if let Err(e) = store.record_audit(&r).await {
                        errors.push(e.to_string());
                    }
                }
                errors
            }));
        }
    }
    let mut errors = Vec::new();
    for t in tasks {
        errors.extend(t.await.unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    let takeovers = thief.await.unwrap();
    assert!(errors.is_empty(), "{} appends failed: {:?}", errors.len(), &errors[..errors.len().min(3)]);
    assert!(takeovers >= 2, "lanes were taken over during the storm");
    // Each event once.
    let (n, distinct): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT method) FROM audit_events WHERE method LIKE '%GetRecipient#%'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((n, distinct), (2 * (TASKS * EACH) as i64, 2 * (TASKS * EACH) as i64));
    // One writer at a time per lane: times never go back within a lane.
    let back: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT at, LAG(at) OVER (PARTITION BY lane ORDER BY lane_seq) AS before \
         FROM audit_events) t WHERE at < before",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(back, 0);
    let c = a.verify_audit_chain().await.unwrap();
    assert_eq!(c.first_broken, None);
    let lanes: Vec<(i32, i64)> = sqlx::query_as("SELECT lane, COUNT(*) FROM audit_events GROUP BY lane ORDER BY lane")
        .fetch_all(&pool)
        .await
        .unwrap();
    eprintln!("{takeovers} takeovers; events per lane {lanes:?}");
    a.close().await;
    b.close().await;
}
