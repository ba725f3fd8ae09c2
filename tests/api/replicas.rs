//! Several `doudi serve` replicas on one PostgreSQL database (issue 6, item 4), as real processes started together
//! (their migrations meet on sqlx's migration lock). Runs only in the PostgreSQL half (`tests/api_pg`).
//!
//! Expected values are the single-replica contract of docs/spec/api.md: a fact pushed twice with the same content is
//! stored once (ACCEPTED, then DUPLICATE); a lower source_version than the current one is STALE and not stored; a
//! second CreateSnapshot of a quarter is ALREADY_EXISTS naming the first one's hash; change cursors are 1, 2, … without
//! gaps.

use std::path::Path;
use std::time::{Duration, Instant};

use doudi::client::Clients;
use doudi::grpc::pb;
use doudi::tools::bench::hub::ChildHub;
use macro_rules_attribute::apply;
use tonic::Code;

use crate::support::*;

const XIFENG: &str = "621002";

async fn two_replicas() -> (Vec<ChildHub>, String) {
    doudi::server::tls::install_crypto_provider();
    let url = postgres::fresh_database().await;
    let u = url.clone();
    let hubs = tokio::task::spawn_blocking(move || ChildHub::replicas(Path::new(env!("CARGO_BIN_EXE_doudi")), &u, 2))
        .await
        .unwrap()
        .expect("two replicas start on one database");
    (hubs, url)
}

/// Version `version` of a rural dibao record; each version's monthly benefit is 440 + version yuan, so versions
/// differ in content (a higher version with unchanged content is DUPLICATE, docs/spec/api.md).
fn dibao(fact_id: &str, seq: u16, version: u64) -> pb::Fact {
    let mut payload = rural_dibao();
    if let pb::fact::Payload::Assistance(a) = &mut payload {
        a.monthly_benefit = format!("{}.00", 440 + version);
    }
    let mut f = with(base(fact_id, &id(XIFENG, (1960, 3, 1), seq), XIFENG), payload);
    f.source_version = version;
    f
}

async fn stored_versions(url: &str, fact_id: &str) -> (Vec<i64>, Vec<i64>) {
    use sqlx::Connection as _;
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    let all: Vec<i64> =
        sqlx::query_scalar("SELECT source_version FROM facts WHERE fact_id = $1 ORDER BY source_version")
            .bind(fact_id)
            .fetch_all(&mut c)
            .await
            .unwrap();
    let current: Vec<i64> = sqlx::query_scalar("SELECT source_version FROM facts WHERE fact_id = $1 AND is_current")
        .bind(fact_id)
        .fetch_all(&mut c)
        .await
        .unwrap();
    (all, current)
}

#[apply(e2e!)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_to_one_replica_reaches_a_watcher_on_the_other_within_a_second() {
    let (hubs, _url) = two_replicas().await;
    let mut a = hubs[0].client("civil_affairs").await.unwrap();
    let mut b = hubs[1].client("civil_affairs").await.unwrap();
    let mut w = b
        .exchange
        .watch_changes(pb::WatchChangesRequest { purpose: "replica test".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    // The first message is a heartbeat naming the starting cursor: the log is empty.
    let first = w.message().await.unwrap().unwrap();
    assert!(first.heartbeat);
    assert_eq!(first.cursor, 0);
    for i in 1..=5u16 {
        let fact_id = format!("MZ-R{i}");
        let t0 = Instant::now();
        let r = push(&mut a, vec![dibao(&fact_id, i, 1)]).await.unwrap();
        assert_eq!(outcome(&r.results[0]), pb::FactOutcome::Accepted);
        let change = loop {
            let m = tokio::time::timeout(Duration::from_secs(1), w.message())
                .await
                .unwrap_or_else(|_| panic!("change {i} not seen on the other replica within 1 s"))
                .unwrap()
                .unwrap();
            if !m.heartbeat {
                break m;
            }
        };
        let latency = t0.elapsed();
        assert!(latency < Duration::from_secs(1), "change {i} took {latency:?}");
        assert_eq!(change.cursor, i as i64, "cursors 1, 2, … in commit order");
        assert_eq!(change.fact.as_ref().unwrap().fact_id, fact_id);
        eprintln!("push on replica A → change on replica B's watcher: {latency:?}");
    }
}

#[apply(e2e!)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pushes_of_one_fact_on_two_replicas_have_one_winner_and_lose_no_version() {
    let (hubs, url) = two_replicas().await;
    let mut clients: Vec<Clients> = Vec::new();
    for h in &hubs {
        clients.push(h.client("civil_affairs").await.unwrap());
    }
    // The same fact, same content, on both replicas at once, 20 times: one ACCEPTED, one DUPLICATE, one row.
    for round in 0..20u16 {
        let fact_id = format!("MZ-C{round}");
        let f = dibao(&fact_id, 100 + round, 1);
        let (mut c0, mut c1) = (clients[0].clone(), clients[1].clone());
        let (r0, r1) = tokio::join!(push(&mut c0, vec![f.clone()]), push(&mut c1, vec![f.clone()]));
        let mut outcomes = [outcome(&r0.unwrap().results[0]), outcome(&r1.unwrap().results[0])];
        outcomes.sort_by_key(|o| *o as i32);
        assert_eq!(outcomes, [pb::FactOutcome::Accepted, pb::FactOutcome::Duplicate], "round {round}");
        assert_eq!(stored_versions(&url, &fact_id).await, (vec![1], vec![1]), "round {round}");
    }
    // Versions 2..=9 of one record pushed alternately to both replicas at once: every version reported ACCEPTED or
    // NEW_VERSION is stored, every STALE one is not, and the current version is the highest (9).
    let fact_id = "MZ-V";
    let r = push(&mut clients[0], vec![dibao(fact_id, 500, 1)]).await.unwrap();
    assert_eq!(outcome(&r.results[0]), pb::FactOutcome::Accepted);
    let mut tasks = Vec::new();
    for v in 2..=9u64 {
        let mut c = clients[(v % 2) as usize].clone();
        tasks.push(tokio::spawn(async move { (v, push(&mut c, vec![dibao(fact_id, 500, v)]).await.unwrap()) }));
    }
    let mut written = vec![1i64];
    for t in tasks {
        let (v, r) = t.await.unwrap();
        match outcome(&r.results[0]) {
            pb::FactOutcome::NewVersion => written.push(v as i64),
            pb::FactOutcome::Stale => {}
            o => panic!("version {v}: unexpected {o:?}"),
        }
    }
    written.sort_unstable();
    let (all, current) = stored_versions(&url, fact_id).await;
    assert_eq!(all, written, "stored = reported as written");
    assert_eq!(current, vec![9]);
}

#[apply(e2e!)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_create_snapshot_on_two_replicas_creates_it_once() {
    let (hubs, _url) = two_replicas().await;
    let mut a = hubs[0].client("civil_affairs").await.unwrap();
    let mut b = hubs[1].client("civil_affairs").await.unwrap();
    let facts: Vec<pb::Fact> = (0..10u16).map(|i| dibao(&format!("MZ-S{i}"), 200 + i, 1)).collect();
    push(&mut a, facts).await.unwrap();
    let req = || pb::CreateSnapshotRequest { quarter: "2023Q2".into() };
    let (ra, rb) = tokio::join!(a.coordination.create_snapshot(req()), b.coordination.create_snapshot(req()));
    let (made, refused) = match (ra, rb) {
        (Ok(s), Err(e)) | (Err(e), Ok(s)) => (s.into_inner(), e),
        (x, y) => panic!("expected one snapshot and one ALREADY_EXISTS, got {x:?} and {y:?}"),
    };
    assert_eq!(refused.code(), Code::AlreadyExists);
    assert!(refused.message().contains(&made.content_hash), "{}", refused.message());
    for c in [&mut a, &mut b] {
        let listed = c.coordination.list_snapshots(pb::ListSnapshotsRequest::default()).await.unwrap().into_inner();
        assert_eq!(listed.snapshots.len(), 1);
        assert_eq!(listed.snapshots[0].content_hash, made.content_hash);
    }
}

/// Stress across two replicas: pushes of overlapping records and versions, fund reports of one county/month/program,
/// warnings and settlements with the same ids, and CreateSnapshot, all at once on both; then the store's invariants
/// are checked in SQL (one current version per record, the highest stored; change cursors 1..N, each naming a stored
/// version; audit seq 1..N and the chain verifies), and a watcher on each replica saw every change once, in order.
#[apply(e2e!)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_at_once_on_two_replicas_keeps_the_invariants() {
    use sqlx::Connection as _;
    let (hubs, url) = two_replicas().await;
    let mut civil = Vec::new();
    let mut med = Vec::new();
    for h in &hubs {
        civil.push(h.client("civil_affairs").await.unwrap());
        med.push(h.client("medical_insurance").await.unwrap());
    }
    // Watchers from cursor 0 on both replicas.
    let mut watchers = Vec::new();
    for c in &civil {
        let mut c = c.clone();
        let w = c
            .exchange
            .watch_changes(pb::WatchChangesRequest {
                purpose: "stress".into(),
                after_cursor: Some(0),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        watchers.push(w);
    }
    let mut tasks: Vec<tokio::task::JoinHandle<()>> = Vec::new();
    // 8 pushers, 4 per replica: 25 batches of 40 facts each over 60 records, versions pseudo-random in 1..=12.
    for p in 0..8u64 {
        let mut c = civil[(p % 2) as usize].clone();
        tasks.push(tokio::spawn(async move {
            let mut x = p * 7919 + 1;
            for _ in 0..25 {
                let batch: Vec<pb::Fact> = (0..40)
                    .map(|_| {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        let rec = ((x >> 33) % 60) as u16;
                        let v = (x >> 20) % 12 + 1;
                        dibao(&format!("MZ-X{rec}"), 600 + rec, v)
                    })
                    .collect();
                let r = push(&mut c, batch).await.unwrap();
                assert_eq!(r.results.len(), 40);
            }
        }));
    }
    // Fund reports: same county/month/program on both replicas, 10 each.
    for p in 0..4usize {
        let mut c = civil[p % 2].clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                c.coordination
                    .submit_fund_report(pb::SubmitFundReportRequest {
                        county_code: XIFENG.into(),
                        month: "2023-07".into(),
                        program: pb::FundProgram::RuralDibao as i32,
                        disbursed_on: "2023-07-10".into(),
                        amount: format!("{}.00", 100 + p * 10 + i),
                        recipients: 3,
                    })
                    .await
                    .unwrap();
            }
        }));
    }
    // Warnings with the same ids on both replicas.
    for p in 0..4usize {
        let mut c = civil[p % 2].clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10u16 {
                let w = pb::WarningIn {
                    warning_id: format!("W-{i}"),
                    id_number: id(XIFENG, (1970, 1, 1), 300 + i),
                    division_code: XIFENG.into(),
                    reason: pb::WarningReason::IncomeDrop as i32,
                    received_at: Some(prost_types::Timestamp { seconds: 1_695_866_400, nanos: 0 }),
                };
                c.coordination.push_warnings(pb::PushWarningsRequest { warnings: vec![w] }).await.unwrap();
            }
        }));
    }
    // Settlements with the same ids on both replicas.
    for p in 0..4usize {
        let mut c = med[p % 2].clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10u16 {
                let s = pb::Settlement {
                    settlement_id: format!("S-{i}"),
                    id_number: id(XIFENG, (1960, 3, 1), 600 + i),
                    division_code: XIFENG.into(),
                    admitted_on: "2023-03-01".into(),
                    settled_on: "2023-03-10".into(),
                    visit_type: pb::VisitType::Inpatient as i32,
                    in_province: true,
                    referred: false,
                    total_cost: "30000.00".into(),
                    policy_scope_cost: "25000.00".into(),
                    basic_paid: "15000.00".into(),
                    critical_illness_paid: "3250.00".into(),
                    medical_assistance_paid: "4725.00".into(),
                    other_paid: "0.00".into(),
                    out_of_pocket: "7025.00".into(),
                };
                c.medical.submit_settlements(pb::SubmitSettlementsRequest { settlements: vec![s] }).await.unwrap();
            }
        }));
    }
    // CreateSnapshot of 2023Q2 on both, twice.
    let mut snaps = Vec::new();
    for p in 0..4usize {
        let mut c = civil[p % 2].clone();
        snaps.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200 * p as u64)).await;
            c.coordination.create_snapshot(pb::CreateSnapshotRequest { quarter: "2023Q2".into() }).await
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut made = 0;
    for s in snaps {
        match s.await.unwrap() {
            Ok(_) => made += 1,
            Err(e) => assert_eq!(e.code(), Code::AlreadyExists, "{e:?}"),
        }
    }
    assert_eq!(made, 1);

    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    let bad_current: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT agency, fact_id FROM facts GROUP BY agency, fact_id \
         HAVING COUNT(*) FILTER (WHERE is_current) <> 1 \
         OR MAX(source_version) <> MAX(source_version) FILTER (WHERE is_current)) x",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(bad_current, 0, "one current version per record, the highest");
    let (n, min, max, distinct): (i64, Option<i64>, Option<i64>, i64) =
        sqlx::query_as("SELECT COUNT(*), MIN(cursor), MAX(cursor), COUNT(DISTINCT cursor) FROM change_log")
            .fetch_one(&mut db)
            .await
            .unwrap();
    let versions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM facts").fetch_one(&mut db).await.unwrap();
    assert_eq!((min, max, distinct), (Some(1), Some(n), n), "cursors 1..N");
    assert_eq!(n, versions, "one change per stored version");
    let dangling: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM change_log c WHERE NOT EXISTS (SELECT 1 FROM facts f WHERE f.agency = c.agency \
         AND f.fact_id = c.fact_id AND f.source_version = c.source_version)",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(dangling, 0);
    let (an, amin, amax): (i64, Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT COUNT(*), MIN(seq), MAX(seq) FROM audit_events").fetch_one(&mut db).await.unwrap();
    assert_eq!((amin, amax), (Some(1), Some(an)), "audit seq 1..N");
    let fr: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM fund_reports ORDER BY version").fetch_all(&mut db).await.unwrap();
    assert_eq!(fr, (1..=40).collect::<Vec<i64>>(), "40 fund report versions 1..40");
    let w: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM warnings").fetch_one(&mut db).await.unwrap();
    assert_eq!(w, 10);
    let s: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM settlements").fetch_one(&mut db).await.unwrap();
    assert_eq!(s, 10);
    eprintln!("stress: {n} changes, {an} audit events, {versions} versions");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_doudi"))
        .args(["audit", "verify", "--database-url", &url])
        .env("DOUDI_DATA_KEY", doudi::security::crypto::Keys::generate_base64())
        .output()
        .unwrap();
    eprintln!("audit verify: {} {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success());
    // Every watcher saw cursors 1..=n exactly once, in order.
    for (i, w) in watchers.iter_mut().enumerate() {
        let mut seen = Vec::new();
        while seen.len() < n as usize {
            let m = tokio::time::timeout(Duration::from_secs(10), w.message())
                .await
                .unwrap_or_else(|_| panic!("watcher {i} stuck after {} changes", seen.len()))
                .unwrap()
                .unwrap();
            if !m.heartbeat {
                seen.push(m.cursor);
            }
        }
        assert_eq!(seen, (1..=n).collect::<Vec<i64>>(), "watcher {i}");
    }
}
