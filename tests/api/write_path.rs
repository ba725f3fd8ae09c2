//! The StreamFacts write path (docs/storage-layout.md, "Write path"): messages read and prepared ahead, consecutive
//! ready messages stored as one group (`FactStore::ingest_batches`), the writer lock's two queues. Each test checks a
//! promise that must hold whatever the grouping turns out to be: decisions as if every message were pushed alone in
//! order, whole messages only (each with its audit event), change-log cursors without gaps, interactive writes served
//! during a load, and a stream ended by a bad message storing exactly what came before it. Expected values are worked
//! out by hand in the comments beside them.

use std::time::Duration;

use doudi::domain::fact::PayloadKind;

use doudi::grpc::pb;
use doudi::store::*;
use macro_rules_attribute::apply;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use crate::support::*;

const XIFENG: &str = "621002"; // 西峰区

/// Person of record `i`: a distinct ID number for each `i` (birth date from `i`, sequence `i % 997`).
fn person(i: usize) -> String {
    id(XIFENG, (1940 + (i / 336) as i32, 1 + (i / 28 % 12) as u32, 1 + (i % 28) as u32), (i % 997) as u16)
}

/// Record `{prefix}-{i}` of person `i`, version `v`, rural dibao valid from `from` (the content: two facts of one
/// record differ in content exactly when their `from` differ).
fn rec(prefix: &str, i: usize, v: u64, from: &str) -> pb::Fact {
    let mut f = with(base(&format!("{prefix}-{i}"), &person(i), XIFENG), rural_dibao());
    f.source_version = v;
    f.valid_from = from.into();
    f
}

const A: &str = "2023-01-01";
const B: &str = "2023-02-01";
const C: &str = "2023-03-01";

fn all_changes() -> ChangeFilter {
    ChangeFilter {
        kinds: PayloadKind::ALL.iter().map(|k| k.as_str().to_owned()).collect(),
        division_prefix: String::new(),
    }
}

/// The change log holds exactly cursors 1..=`n` (no gap, no repeat) and its head is `n`.
async fn change_log_is_gapless(app: &TestApp, n: i64) {
    let store = &app.app_hub.store;
    assert_eq!(store.change_log_head().await.unwrap(), n, "change-log head");
    let rows = store.changes_after(&all_changes(), 0, n, n as usize + 10).await.unwrap();
    let cursors: Vec<i64> = rows.iter().map(|r| r.cursor).collect();
    assert_eq!(cursors, (1..=n).collect::<Vec<_>>(), "change-log cursors");
}

/// StreamFacts audit events, oldest first: their outcomes.
async fn stream_events(app: &TestApp) -> Vec<String> {
    let mut rows = app.app_hub.store.list_audit_events(&AuditFilter::default(), None, 100_000).await.unwrap();
    rows.reverse();
    rows.into_iter().filter(|e| e.method == "/doudi.v1.RecipientExchange/StreamFacts").map(|e| e.outcome).collect()
}

/// The distinct times of the StreamFacts audit events with how many events share each (a group's events are written
/// in one transaction with one time).
async fn stream_event_times(app: &TestApp) -> Vec<usize> {
    let rows = app.app_hub.store.list_audit_events(&AuditFilter::default(), None, 100_000).await.unwrap();
    let mut times = std::collections::BTreeMap::new();
    for e in rows.iter().filter(|e| e.method.ends_with("/StreamFacts")) {
        *times.entry(e.at).or_insert(0usize) += 1;
    }
    times.into_values().collect()
}

async fn chain_verifies(app: &TestApp) {
    let mut c = app.client("civil_affairs").await;
    let v = c.audit.verify_audit_chain(pb::VerifyAuditChainRequest {}).await.unwrap().into_inner();
    assert!(v.valid, "audit chain: {v:?}");
}

/// Six messages of 50 facts in one stream, read ahead and stored in groups, whose later messages name records of the
/// earlier ones (in the same group or an earlier one). Contents: A, B, C are three `valid_from`s. Worked by hand,
/// deciding each fact against the record's current version as left by every fact before it:
///
/// - M0: R0..R49 v1 A → 50 ACCEPTED.
/// - M1: R50..R99 v1 A → 50 ACCEPTED.
/// - M2: R0..R24 v2 B → 25 NEW_VERSION; R25..R49 v1 A (as stored) → 25 DUPLICATE.
/// - M3: R0..R9 v1 C → 10 STALE (v1 < current v2, other content); R10..R19 v2 B → 10 DUPLICATE (M2's write);
///   R50..R59 v3 B → 10 NEW_VERSION; R50..R59 v4 A again in the same message → 10 NEW_VERSION (4 > 3, A ≠ B);
///   R60..R69 v2 A → 10 DUPLICATE (same content as v1, any version).
/// - M4: R50..R59 v3 B → 10 STALE (current v4 A); R0..R9 v2 B → 10 DUPLICATE; R70..R79 v2 C → 10 NEW_VERSION;
///   R70..R79 v2 B after it in the message → 10 STALE (equal version, other content); R100..R109 v1 A → 10 ACCEPTED.
/// - M5: R100..R109 v1 A → 10 DUPLICATE; R100..R109 v1 B → 10 STALE; R80..R89 v5 B → 10 NEW_VERSION; the same
///   again → 10 DUPLICATE; R90..R99 v1 C → 10 STALE.
///
/// Counts: ACCEPTED 50 + 50 + 10 = 110; NEW_VERSION 25 + 10 + 10 + 10 + 10 = 65; DUPLICATE 25 + 10 + 10 + 10 + 10 +
/// 10 = 75; STALE 10 + 10 + 10 + 10 + 10 = 50; 300 in all. Versions stored = ACCEPTED + NEW_VERSION = 175, one
/// change each (cursors 1..=175). Current versions: R0..R24 v2 B, R25..R49 v1 A, R50..R59 v4 A, R60..R69 v1 A,
/// R70..R79 v2 C, R80..R89 v5 B, R90..R99 v1 A, R100..R109 v1 A. One audit event per message, "stored=50" (every
/// fact valid, the count of valid facts whatever their decision).
#[apply(e2e!)]
#[tokio::test]
async fn a_stream_of_small_messages_is_decided_as_if_each_were_pushed_alone() {
    let app = spawn_app().await;
    let mut ca = app.client("civil_affairs").await;
    let range = |r: std::ops::Range<usize>, v: u64, from: &'static str| r.map(move |i| rec("R", i, v, from));
    let msgs: Vec<Vec<pb::Fact>> = vec![
        range(0..50, 1, A).collect(),
        range(50..100, 1, A).collect(),
        range(0..25, 2, B).chain(range(25..50, 1, A)).collect(),
        range(0..10, 1, C)
            .chain(range(10..20, 2, B))
            .chain(range(50..60, 3, B))
            .chain(range(50..60, 4, A))
            .chain(range(60..70, 2, A))
            .collect(),
        range(50..60, 3, B)
            .chain(range(0..10, 2, B))
            .chain(range(70..80, 2, C))
            .chain(range(70..80, 2, B))
            .chain(range(100..110, 1, A))
            .collect(),
        range(100..110, 1, A)
            .chain(range(100..110, 1, B))
            .chain(range(80..90, 5, B))
            .chain(range(80..90, 5, B))
            .chain(range(90..100, 1, C))
            .collect(),
    ];
    assert!(msgs.iter().all(|m| m.len() == 50));
    let msgs: Vec<pb::PushFactsRequest> = msgs.into_iter().map(|facts| pb::PushFactsRequest { facts }).collect();
    let r = ca.exchange.stream_facts(tokio_stream::iter(msgs)).await.unwrap().into_inner();
    let c = r.counts.unwrap();
    assert_eq!((c.accepted, c.new_version, c.duplicate, c.stale, c.rejected), (110, 65, 75, 50, 0));
    assert!(r.results.is_empty(), "no rejection listed");
    assert_eq!(app.fact_versions().await, 175);
    change_log_is_gapless(&app, 175).await;
    // The changes of three records, in cursor order, each NEW_VERSION naming the version it superseded (also when
    // that version was written earlier in the same message or group): R-50 v1, v3 (after 1), v4 (after 3, in the
    // same message); R-70 v1, v2 (after 1); R-80 v1, v5 (after 1).
    let rows = app.app_hub.store.changes_after(&all_changes(), 0, 175, 200).await.unwrap();
    for (record, expected) in [
        ("R-50", vec![(1, None), (3, Some(1)), (4, Some(3))]),
        ("R-70", vec![(1, None), (2, Some(1))]),
        ("R-80", vec![(1, None), (5, Some(1))]),
    ] {
        let got: Vec<(u64, Option<u64>)> =
            rows.iter().filter(|r| r.fact.fact_id == record).map(|r| (r.fact.source_version, r.prev_version)).collect();
        assert_eq!(got, expected, "{record}");
    }
    assert_eq!(stream_events(&app).await, vec!["OK stored=50 rejected=0"; 6]);
    let groups = stream_event_times(&app).await;
    eprintln!("stored in {} transactions (events' times: {groups:?})", groups.len());

    let expected = |i: usize| match i {
        0..25 => (2, B),
        25..50 => (1, A),
        50..60 => (4, A),
        60..70 => (1, A),
        70..80 => (2, C),
        80..90 => (5, B),
        _ => (1, A),
    };
    for i in 0..110 {
        let got = get(&mut ca, &person(i), "2024-01-01").await.unwrap();
        let facts: Vec<(u64, &str)> = got.facts.iter().map(|f| (f.source_version, f.valid_from.as_str())).collect();
        assert_eq!(facts, [expected(i)], "record R-{i}");
    }
    chain_verifies(&app).await;
    app.stop().await;
}
/// Consecutive small messages are stored as groups (docs/storage-layout.md, "Write path"): 40 messages of 50 facts
/// sent at once are all ready long before the hub has stored them one by one, so while the first is stored the reader
/// prepares those behind it and the next transaction takes every one ready, up to 2,000 facts (all 39 left would
/// fit). One transaction per message (40) would mean no group was ever formed. Each group's audit events share one
/// time (one transaction, `now` taken once), so the distinct times count the transactions.
#[apply(e2e!)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_messages_sent_at_once_are_stored_in_groups() {
    let app = spawn_app().await;
    let mut ca = app.client("civil_affairs").await;
    let msgs: Vec<pb::PushFactsRequest> = (0..40)
        .map(|m| pb::PushFactsRequest { facts: (m * 50..m * 50 + 50).map(|i| rec("G", i, 1, A)).collect() })
        .collect();
    let r = ca.exchange.stream_facts(tokio_stream::iter(msgs)).await.unwrap().into_inner();
    assert_eq!(r.counts.unwrap().accepted, 2_000);
    assert_eq!(stream_events(&app).await, vec!["OK stored=50 rejected=0"; 40]);
    let groups = stream_event_times(&app).await;
    assert_eq!(groups.iter().sum::<usize>(), 40);
    assert!(groups.len() < 40, "every message was stored alone: {groups:?}");
    change_log_is_gapless(&app, 2_000).await;
    // The change-log statements of a group (500 rows each, numbered from the head) follow the stream's order: cursor
    // k is the k-th fact sent, G-(k-1), a first version.
    let rows = app.app_hub.store.changes_after(&all_changes(), 0, 2_000, 2_010).await.unwrap();
    let got: Vec<(i64, String, u64)> =
        rows.iter().map(|r| (r.cursor, r.fact.fact_id.clone(), r.fact.source_version)).collect();
    let expected: Vec<(i64, String, u64)> = (1..=2_000).map(|k| (k, format!("G-{}", k - 1), 1)).collect();
    assert!(got == expected, "cursors out of the stream's order");
    chain_verifies(&app).await;
    app.stop().await;
}

/// 20 messages of 50 sent at once (stored in groups), fact 7 of each with an unknown division: each rejected fact is
/// listed with its position in the whole stream, 50·m + 7, whatever group its message was stored in; 20 × 49 = 980
/// ACCEPTED, 20 REJECTED; each message's audit event counts its own facts ("stored=49 rejected=1").
#[apply(e2e!)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_in_grouped_messages_keep_their_stream_positions() {
    let app = spawn_app().await;
    let mut ca = app.client("civil_affairs").await;
    let msgs: Vec<pb::PushFactsRequest> = (0..20)
        .map(|m| {
            let mut facts: Vec<pb::Fact> = (m * 50..m * 50 + 50).map(|i| rec("J", i, 1, A)).collect();
            facts[7].division_code = "999999".into();
            pb::PushFactsRequest { facts }
        })
        .collect();
    let r = ca.exchange.stream_facts(tokio_stream::iter(msgs)).await.unwrap().into_inner();
    let c = r.counts.unwrap();
    assert_eq!((c.accepted, c.rejected), (980, 20));
    let idx: Vec<u32> = r.results.iter().map(|x| x.index).collect();
    assert_eq!(idx, (0..20).map(|m| m * 50 + 7).collect::<Vec<u32>>());
    assert_eq!(stream_events(&app).await, vec!["OK stored=49 rejected=1"; 20]);
    assert_eq!(app.fact_versions().await, 980);
    change_log_is_gapless(&app, 980).await;
    app.stop().await;
}

/// One StreamFacts message of 4,500 facts, more than one bulk transaction holds (`writer::MAX_BULK_FACTS` = 2,000),
/// is stored in consecutive parts of at most 2,000 facts to store, each with its own audit event. Worked by hand:
/// positions 10, 2,010 and 4,499 are refused (division 999999), so 4,497 facts are valid; part 1 is positions 0–2,000
/// (2,000 valid, 1 refused), part 2 positions 2,001–4,001 (2,000 valid, 1 refused), part 3 positions 4,002–4,499
/// (497 valid, 1 refused). Position 2,500 is record S-0 version 2 with another content (person 0): a NEW_VERSION of
/// the record part 1 stored, so person 0 is in the events of parts 1 and 2. Counts: ACCEPTED 4,496, NEW_VERSION 1,
/// REJECTED 3; versions stored 4,497 (cursors 1..=4,497); rejections listed at their positions in the message.
#[apply(e2e!)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_larger_than_a_bulk_transaction_is_stored_in_parts() {
    let app = spawn_app_with(|c| c.max_batch = 10_000).await;
    let mut ca = app.client("civil_affairs").await;
    let mut facts: Vec<pb::Fact> = (0..4_500).map(|i| rec("S", i, 1, A)).collect();
    for i in [10, 2_010, 4_499] {
        facts[i].division_code = "999999".into();
    }
    facts[2_500] = rec("S", 0, 2, B);
    let r =
        ca.exchange.stream_facts(tokio_stream::iter(vec![pb::PushFactsRequest { facts }])).await.unwrap().into_inner();
    let c = r.counts.unwrap();
    assert_eq!((c.accepted, c.new_version, c.duplicate, c.stale, c.rejected), (4_496, 1, 0, 0, 3));
    assert_eq!(r.results.iter().map(|x| x.index).collect::<Vec<u32>>(), [10, 2_010, 4_499]);
    assert_eq!(
        stream_events(&app).await,
        [
            "OK stored=2000 rejected=1 part 1 of 3",
            "OK stored=2000 rejected=1 part 2 of 3",
            "OK stored=497 rejected=1 part 3 of 3"
        ]
    );
    assert_eq!(stream_event_times(&app).await, [1, 1, 1], "one transaction per part");
    assert_eq!(app.fact_versions().await, 4_497);
    change_log_is_gapless(&app, 4_497).await;
    let key = app.app_hub.keys.person_key(&doudi::domain::id_number::IdNumber::parse(&person(0)).unwrap());
    let of_person_0 = app
        .app_hub
        .store
        .list_audit_events(&AuditFilter { person: Some(key), ..AuditFilter::default() }, None, 10)
        .await
        .unwrap();
    let outcomes: Vec<&str> = of_person_0.iter().map(|e| e.outcome.as_str()).collect();
    assert_eq!(outcomes, ["OK stored=2000 rejected=1 part 2 of 3", "OK stored=2000 rejected=1 part 1 of 3"]);
    let counts: Vec<i64> = {
        let mut all = app.app_hub.store.list_audit_events(&AuditFilter::default(), None, 100).await.unwrap();
        all.reverse();
        all.iter().filter(|e| e.method.ends_with("/StreamFacts")).map(|e| e.person_count).collect()
    };
    // Distinct persons per part: part 1 persons 0–2,000 but 10 (2,000); part 2 persons 2,001–4,001 but 2,010 and
    // 2,500, plus person 0 (2,000); part 3 persons 4,002–4,498 (497).
    assert_eq!(counts, [2_000, 2_000, 497]);
    chain_verifies(&app).await;
    app.stop().await;
}

/// 32 concurrent PushFacts of one fact each: small pushes are group-committed (`Hub::push_facts`), each decided as if
/// pushed alone in the order they were queued, each with its own audit event. Request i pushes record P-0 version
/// i + 1 with content i (valid from the (i+1)-th day of a 28-day-month calendar from 2023-01-01): whatever the order, exactly one is ACCEPTED (the first stored),
/// every later one is NEW_VERSION (a higher version than the current) or STALE (a lower one), the versions stored
/// are ACCEPTED + NEW_VERSION, the current version is 32, and the 32 events each say "stored=1". Requests 100..131
/// push new records Q-i at once: 32 ACCEPTED.
#[apply(e2e!)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_small_pushes_are_committed_together_each_decided_in_order() {
    let app = spawn_app().await;
    let ca = app.client("civil_affairs").await;
    let mut tasks = Vec::new();
    for i in 0..32u64 {
        let mut c = ca.clone();
        tasks.push(tokio::spawn(async move {
            let from = format!("2023-{:02}-{:02}", 1 + i / 28, 1 + i % 28);
            let r = push(&mut c, vec![rec("P", 0, i + 1, &from)]).await.unwrap();
            let q = push(&mut c, vec![rec("Q", 100 + i as usize, 1, A)]).await.unwrap();
            (outcome(&r.results[0]), outcome(&q.results[0]))
        }));
    }
    let mut p = Vec::new();
    for t in tasks {
        let (o, q) = t.await.unwrap();
        assert_eq!(q, pb::FactOutcome::Accepted);
        p.push(o);
    }
    let n = |o: pb::FactOutcome| p.iter().filter(|x| **x == o).count();
    let (accepted, new_version, stale) =
        (n(pb::FactOutcome::Accepted), n(pb::FactOutcome::NewVersion), n(pb::FactOutcome::Stale));
    assert_eq!((accepted, new_version + stale), (1, 31), "{p:?}");
    assert_eq!(app.fact_versions().await, (1 + new_version + 32) as i64);
    let current = app.app_hub.store.list_audit_events(&AuditFilter::default(), None, 1000).await.unwrap();
    let pushes: Vec<_> = current.iter().filter(|e| e.method.ends_with("/PushFacts")).collect();
    assert_eq!(pushes.len(), 64);
    assert!(pushes.iter().all(|e| e.outcome == "OK stored=1 rejected=0" && e.person_count == 1));
    let times: std::collections::BTreeSet<_> = pushes.iter().map(|e| e.at).collect();
    eprintln!("64 small pushes committed in {} transactions", times.len());
    change_log_is_gapless(&app, (1 + new_version + 32) as i64).await;
    chain_verifies(&app).await;
    app.stop().await;
}

/// Nine rounds, each a stream of 40 messages of 50 new records (its own prefix) sent one every 2 ms, whose client is
/// killed after 0 to 200 ms (in a debug build on two cores, rounds killed at 20–125 ms had stored 100 to 1,050 facts),
/// while the hub reads ahead and stores groups. Whatever each round managed to store, it is whole messages: stored
/// versions are a multiple of 50, every StreamFacts audit event says "stored=50 rejected=0" and there is exactly one
/// per stored message (versions = 50 × events), the change log holds cursors 1..=versions without a gap, the chain
/// verifies, and the writer was not lost (a PushFacts is answered at once).
#[apply(e2e!)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_killed_mid_stream_leave_whole_messages_with_their_events() {
    let app = spawn_app_with(|c| c.rate_per_agency = 0).await;
    for (round, delay) in [0u64, 20, 40, 60, 80, 100, 125, 150, 200].into_iter().enumerate() {
        let mut c = app.client("civil_affairs").await;
        let msgs: Vec<pb::PushFactsRequest> = (0..40)
            .map(|m| pb::PushFactsRequest {
                facts: (m * 50..m * 50 + 50).map(|i| rec(&format!("K{round}"), i, 1, A)).collect(),
            })
            .collect();
        // Sent a message every 2 ms, so that the kill finds some messages stored, some read ahead, some unsent.
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let client = tokio::spawn(async move { c.exchange.stream_facts(ReceiverStream::new(rx)).await });
        let sender = tokio::spawn(async move {
            for m in msgs {
                if tx.send(m).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            std::future::pending::<()>().await; // the stream stays open
        });
        tokio::time::sleep(Duration::from_millis(delay)).await;
        client.abort();
        sender.abort();
        let _ = (client.await, sender.await);
        tokio::time::sleep(Duration::from_millis(200)).await;
        eprintln!("killed after {delay} ms: {} versions stored so far", app.fact_versions().await);
    }
    // Let the handlers of the killed streams finish what they had.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stored = app.fact_versions().await;
    eprintln!("{stored} versions stored by the killed streams");
    assert_eq!(stored % 50, 0, "{stored} versions: not whole messages");
    let events = stream_events(&app).await;
    assert!(events.iter().all(|e| e == "OK stored=50 rejected=0"), "{events:?}");
    assert_eq!(events.len() as i64 * 50, stored, "one event per stored message");
    change_log_is_gapless(&app, stored).await;
    chain_verifies(&app).await;
    app.stop().await;
}

/// While one stream loads 60 messages of 50 (3,000 facts, stored in groups as bulk writes), 10 PushFacts of one new
/// record each and 10 audited GetRecipient reads of records pushed before the load are all answered, each within 10 s,
/// and correctly: the pushes ACCEPTED, each read finding its one record. Afterwards: 3,000 + 10 + 10 versions (the
/// 10 read records were pushed first), 60 StreamFacts events, the chain verifies, the change log has no gap.
#[apply(e2e!)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_writes_are_served_during_a_stream_load() {
    let app = spawn_app_with(|c| c.rate_per_agency = 0).await;
    let mut ca = app.client("civil_affairs").await;
    // Records P-9000..P-9009, to be read during the load.
    let r = push(&mut ca, (9_000..9_010).map(|i| rec("P", i, 1, A)).collect()).await.unwrap();
    assert_eq!(r.counts.unwrap().accepted, 10);
    let mut streamer = app.client("civil_affairs").await;
    let msgs: Vec<pb::PushFactsRequest> = (0..60)
        .map(|m| pb::PushFactsRequest { facts: (m * 50..m * 50 + 50).map(|i| rec("L", i, 1, A)).collect() })
        .collect();
    let load = tokio::spawn(async move { streamer.exchange.stream_facts(tokio_stream::iter(msgs)).await });
    let mut tasks = Vec::new();
    for k in 0..10usize {
        let mut c = app.client("civil_affairs").await;
        tasks.push(tokio::spawn(async move {
            let pushed = push(&mut c, vec![rec("Q", 8_000 + k, 1, A)]).await.unwrap();
            assert_eq!(outcome(&pushed.results[0]), pb::FactOutcome::Accepted, "push {k}");
            let got = get(&mut c, &person(9_000 + k), "2024-01-01").await.unwrap();
            let facts: Vec<(&str, u64)> = got.facts.iter().map(|f| (f.fact_id.as_str(), f.source_version)).collect();
            assert_eq!(facts, [(format!("P-{}", 9_000 + k).as_str(), 1)], "read {k}");
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(10), t).await.expect("an interactive call waited 10 s").unwrap();
    }
    let r = load.await.unwrap().unwrap().into_inner();
    assert_eq!(r.counts.unwrap().accepted, 3_000);
    assert_eq!(app.fact_versions().await, 3_020);
    assert_eq!(stream_events(&app).await, vec!["OK stored=50 rejected=0"; 60]);
    change_log_is_gapless(&app, 3_020).await;
    chain_verifies(&app).await;
    app.stop().await;
}

/// 10 messages of 50 sent at once and then one refused as a whole or failing to decode, then a valid one: everything
/// before the bad message is stored (500 facts, 10 events), nothing after it; where the status names the facts
/// processed (a message the client's stream failed on), it names 500, all ACCEPTED. Three bad messages: 51 facts over
/// `max_batch` 50 (INVALID_ARGUMENT naming the limit), a message of over 4 MiB (RESOURCE_EXHAUSTED), a message of a
/// kind civil affairs may not push (PERMISSION_DENIED naming it).
#[apply(e2e!)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_message_after_grouped_messages_stores_exactly_what_came_before() {
    let app = spawn_app_with(|c| c.max_batch = 50).await;
    let mut huge = rec("X", 9_999, 1, A);
    huge.fact_id = "x".repeat(5 * 1024 * 1024);
    let over: Vec<pb::Fact> = (0..51).map(|i| rec("X", 9_000 + i, 1, A)).collect();
    let kind: Vec<pb::Fact> =
        (0..50).map(|i| with(base(&format!("X-{i}"), &person(9_100 + i), XIFENG), student())).collect();
    let cases: [(&str, Vec<pb::Fact>, Code, &str); 3] = [
        ("over max_batch", over, Code::InvalidArgument, "50"),
        ("oversized", vec![huge], Code::ResourceExhausted, "message after fact 500: "),
        ("not its kind", kind, Code::PermissionDenied, "student"),
    ];
    let mut before = 0;
    for (round, (what, bad, code, says)) in cases.into_iter().enumerate() {
        let mut ca = app.client("civil_affairs").await;
        let mut msgs: Vec<pb::PushFactsRequest> = (0..10)
            .map(|m| pb::PushFactsRequest {
                facts: (m * 50..m * 50 + 50).map(|i| rec(&format!("E{round}"), i, 1, A)).collect(),
            })
            .collect();
        msgs.push(pb::PushFactsRequest { facts: bad });
        msgs.push(pb::PushFactsRequest { facts: (600..650).map(|i| rec(&format!("E{round}"), i, 1, A)).collect() });
        let s = ca.exchange.stream_facts(tokio_stream::iter(msgs)).await.unwrap_err();
        assert_eq!(s.code(), code, "{what}: {}", s.message());
        assert!(s.message().contains(says), "{what}: {}", s.message());
        if code == Code::ResourceExhausted {
            assert!(
                s.message().contains(
                    "the 500 facts before it were processed (accepted 500, new_version 0, duplicate 0, stale 0, \
                     rejected 0)"
                ),
                "{what}: {}",
                s.message()
            );
        }
        before += 500;
        assert_eq!(app.fact_versions().await, before, "{what}: the 10 messages before, nothing after");
        assert_eq!(stream_events(&app).await.len() as i64 * 50, before, "{what}: one event per stored message");
    }
    change_log_is_gapless(&app, 1_500).await;
    chain_verifies(&app).await;
    app.stop().await;
}

/// Interactive writes go before bulk ones, but must not shut a stream out: 16 clients read (audited GetRecipient, one
/// audit event each: an interactive write) in a loop as fast as they are answered, while one stream of 20 messages of
/// 50 runs. Alone the stream takes about 0.1 s (debug build, two cores), and as long when its groups queue first come
/// first served with the reads' events; when every read's event went before every waiting group it took 4.8–7.7 s
/// (the groups went only when no event happened to be queued). It must finish within 2 s, while the readers run.
#[apply(e2e!)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_finishes_while_audited_reads_keep_coming() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let app = spawn_app_with(|c| c.rate_per_agency = 0).await;
    let mut ca = app.client("civil_affairs").await;
    push(&mut ca, vec![rec("P", 9_000, 1, A)]).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for _ in 0..16 {
        let mut c = app.client("civil_affairs").await;
        let (stop, reads) = (stop.clone(), reads.clone());
        readers.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                get(&mut c, &person(9_000), "2024-01-01").await.unwrap();
                reads.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut streamer = app.client("civil_affairs").await;
    let msgs: Vec<pb::PushFactsRequest> = (0..20)
        .map(|m| pb::PushFactsRequest { facts: (m * 50..m * 50 + 50).map(|i| rec("S", i, 1, A)).collect() })
        .collect();
    let started = std::time::Instant::now();
    let done =
        tokio::time::timeout(Duration::from_secs(20), streamer.exchange.stream_facts(tokio_stream::iter(msgs))).await;
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    for r in readers {
        r.await.unwrap();
    }
    eprintln!("stream took {took:?}; {} reads", reads.load(Ordering::SeqCst));
    let r = done.expect("the stream was shut out by the reads for 20 s").unwrap().into_inner();
    assert!(took < Duration::from_secs(2), "the stream took {took:?} beside the reads");
    assert_eq!(r.counts.unwrap().accepted, 1_000);
    chain_verifies(&app).await;
    app.stop().await;
}

/// The hub is asked to stop while a stream of 40 messages of 50 (one sent every 2 ms) is being read ahead and stored
/// in groups: the stream is told to resend from fact N, and N is exactly what was committed: N versions stored, a
/// multiple of 50, one StreamFacts audit event per stored message, and the status counts N ACCEPTED (all new records).
/// Messages read ahead but not stored when the stop came are not counted.
#[apply(e2e!)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_stopped_by_shutdown_names_exactly_what_its_groups_committed() {
    let mut app = spawn_app().await;
    let mut c = app.client("civil_affairs").await;
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let running = tokio::spawn(async move { c.exchange.stream_facts(ReceiverStream::new(rx)).await });
    let sender = tokio::spawn(async move {
        for m in 0..40 {
            let facts = (m * 50..m * 50 + 50).map(|i| rec("D", i, 1, A)).collect();
            if tx.send(pb::PushFactsRequest { facts }).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        std::future::pending::<()>().await;
    });
    // Stop once the first messages are stored.
    for _ in 0..400 {
        if app.fact_versions().await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    app.begin_stop();
    let e = tokio::time::timeout(Duration::from_secs(5), running).await.unwrap().unwrap().unwrap_err();
    sender.abort();
    assert_eq!(e.code(), Code::Unavailable, "{}", e.message());
    let n: i64 = e
        .message()
        .split("resend from fact ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no fact count in {:?}", e.message()));
    assert!(e.message().contains(&format!("(accepted {n}, new_version 0,")), "{}", e.message());
    tokio::time::timeout(Duration::from_secs(10), app.join()).await.expect("the hub exits").unwrap();
    let store = Store::open(&app.database_url).await.unwrap();
    eprintln!("stopped after {n} facts");
    assert!(n > 0 && n % 50 == 0, "{n}");
    assert_eq!(store.fact_version_count().await.unwrap(), n, "what the status names is what is stored");
    let events = store.list_audit_events(&AuditFilter::default(), None, 10_000).await.unwrap();
    let streamed = events.iter().filter(|e| e.method.ends_with("/StreamFacts")).count() as i64;
    assert_eq!(streamed * 50, n, "one event per stored message");
    assert_eq!(store.verify_audit_chain().await.unwrap().first_broken, None);
}

/// Messages sent at once and stored in groups, among them one whose every fact is rejected and empty ones: the
/// all-rejected message has its own audit event in its place ("stored=0 rejected=50", the attempt is on record), the
/// empty ones none (they are skipped, as before), and the rejected facts' positions count every fact before them:
/// messages 0 and 2 hold 50 valid facts each (J-0..J-49, J-50..J-99), message 1 holds 50 facts of an unknown division
/// at stream positions 50..100, so the stream stores 100 versions and lists 50 rejections at 50..=99.
#[apply(e2e!)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_all_rejected_message_in_a_group_keeps_its_event_and_positions() {
    let app = spawn_app().await;
    let mut ca = app.client("civil_affairs").await;
    let bad: Vec<pb::Fact> = (0..50)
        .map(|i| {
            let mut f = rec("BAD", i, 1, A);
            f.division_code = "999999".into();
            f
        })
        .collect();
    let msgs = vec![
        pb::PushFactsRequest { facts: (0..50).map(|i| rec("J", i, 1, A)).collect() },
        pb::PushFactsRequest { facts: vec![] },
        pb::PushFactsRequest { facts: bad },
        pb::PushFactsRequest { facts: vec![] },
        pb::PushFactsRequest { facts: (50..100).map(|i| rec("J", i, 1, A)).collect() },
    ];
    let r = ca.exchange.stream_facts(tokio_stream::iter(msgs)).await.unwrap().into_inner();
    let c = r.counts.unwrap();
    assert_eq!((c.accepted, c.rejected), (100, 50));
    assert_eq!(r.results.iter().map(|x| x.index).collect::<Vec<u32>>(), (50..100).collect::<Vec<u32>>());
    assert_eq!(
        stream_events(&app).await,
        ["OK stored=50 rejected=0", "OK stored=0 rejected=50", "OK stored=50 rejected=0"]
    );
    assert_eq!(app.fact_versions().await, 100);
    change_log_is_gapless(&app, 100).await;
    chain_verifies(&app).await;
    app.stop().await;
}

/// Messages larger than the read-ahead bound (2,000 facts) pass through it: with `max_batch` 5,000, a stream of
/// messages of 5,000, 50, 50 and 5,000 new records is stored: 10,100 ACCEPTED, cursors 1..=10,100; each message of
/// 5,000 in parts of 2,000, 2,000 and 1,000 (one bulk transaction and audit event each), so 8 audit events.
#[apply(e2e!)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_larger_than_the_read_ahead_bound_are_stored() {
    let app = spawn_app_with(|c| c.max_batch = 5_000).await;
    let mut ca = app.client("civil_affairs").await;
    let sizes = [5_000usize, 50, 50, 5_000];
    let mut start = 0;
    let mut msgs = Vec::new();
    for n in sizes {
        msgs.push(pb::PushFactsRequest { facts: (start..start + n).map(|i| rec("BIG", i, 1, A)).collect() });
        start += n;
    }
    let r = tokio::time::timeout(Duration::from_secs(120), ca.exchange.stream_facts(tokio_stream::iter(msgs)))
        .await
        .expect("the stream hung")
        .unwrap()
        .into_inner();
    assert_eq!(r.counts.unwrap().accepted, 10_100);
    assert_eq!(
        stream_events(&app).await,
        [
            "OK stored=2000 rejected=0 part 1 of 3",
            "OK stored=2000 rejected=0 part 2 of 3",
            "OK stored=1000 rejected=0 part 3 of 3",
            "OK stored=50 rejected=0",
            "OK stored=50 rejected=0",
            "OK stored=2000 rejected=0 part 1 of 3",
            "OK stored=2000 rejected=0 part 2 of 3",
            "OK stored=1000 rejected=0 part 3 of 3"
        ]
    );
    change_log_is_gapless(&app, 10_100).await;
    app.stop().await;
}

/// Two streams of one agency at once, writing the same 100 records: each sends 10 messages of 50 facts, message m of
/// stream s naming records (10·m + 50·s + j) mod 100 for j in 0..50 at version m + 1 with content m (valid from
/// 2023-01-(m+1)), so both streams send every (record, version) pair with the same content, in different orders. The
/// writer serialises their groups, so whatever the interleaving: every record's current version is the highest
/// version sent for it; no version of a record is stored twice; versions stored = ACCEPTED + NEW_VERSION of both
/// streams; and each stream's outcomes add up to its 500 facts.
#[apply(e2e!)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_streams_writing_the_same_records_keep_the_newest_version() {
    let app = spawn_app().await;
    let mut tasks = Vec::new();
    let mut highest = vec![0u64; 100];
    for s in 0..2usize {
        let mut msgs = Vec::new();
        for m in 0..10usize {
            let facts = (0..50)
                .map(|j| {
                    let i = (10 * m + 50 * s + j) % 100;
                    highest[i] = highest[i].max(m as u64 + 1);
                    rec("T", i, m as u64 + 1, &format!("2023-01-{:02}", m + 1))
                })
                .collect();
            msgs.push(pb::PushFactsRequest { facts });
        }
        let mut c = app.client("civil_affairs").await;
        tasks.push(tokio::spawn(async move { c.exchange.stream_facts(tokio_stream::iter(msgs)).await }));
    }
    let mut written = 0;
    for t in tasks {
        let c = t.await.unwrap().unwrap().into_inner().counts.unwrap();
        assert_eq!(c.accepted + c.new_version + c.duplicate + c.stale + c.rejected, 500);
        written += (c.accepted + c.new_version) as i64;
    }
    assert_eq!(app.fact_versions().await, written);
    change_log_is_gapless(&app, written).await;
    let rows = app.app_hub.store.changes_after(&all_changes(), 0, written, written as usize + 10).await.unwrap();
    let mut seen = std::collections::HashSet::new();
    for r in &rows {
        assert!(
            seen.insert((r.fact.fact_id.clone(), r.fact.source_version)),
            "{} v{} stored twice",
            r.fact.fact_id,
            r.fact.source_version
        );
    }
    let mut ca = app.client("civil_affairs").await;
    for (i, v) in highest.iter().enumerate() {
        let got = get(&mut ca, &person(i), "2024-01-01").await.unwrap();
        let facts: Vec<u64> = got.facts.iter().map(|f| f.source_version).collect();
        assert_eq!(facts, [*v], "record T-{i}");
    }
    chain_verifies(&app).await;
    app.stop().await;
}

/// Interactive writers cancelled at every stage beside a bulk load lose no writer: while one stream stores 40 messages
/// of 50 new records in groups, 200 PushFacts of 4 new records each (32 in flight) are cancelled by their client after
/// 0–20 ms (some queued for the writer, some writing). The stream still stores all 2,000; every answered PushFacts is
/// stored; what the cancelled ones stored is whole batches of 4 (a cancelled push already queued for the group commit
/// is still stored); every version has its change (cursors without gap) and the chain verifies; a PushFacts
/// afterwards is answered at once.
#[apply(e2e!)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_pushes_beside_a_stream_lose_no_writer() {
    let app = spawn_app_with(|c| c.rate_per_agency = 0).await;
    let port = app.server.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let target = doudi::tools::hostile::Target {
        server: app.server.clone(),
        addr: ([127, 0, 0, 1], port).into(),
        domain: "localhost".into(),
    };
    let me = app.identity("civil_affairs", None);
    let mut streamer = app.client("civil_affairs").await;
    let msgs: Vec<pb::PushFactsRequest> = (0..40)
        .map(|m| pb::PushFactsRequest { facts: (m * 50..m * 50 + 50).map(|i| rec("S", i, 1, A)).collect() })
        .collect();
    let load = tokio::spawn(async move { streamer.exchange.stream_facts(tokio_stream::iter(msgs)).await });
    let batches: Vec<Vec<pb::Fact>> =
        (0..200).map(|b| (0..4).map(|k| rec("C", 3_000 + b * 4 + k, 1, A)).collect()).collect();
    let out =
        doudi::tools::hostile::cancelled_burst(&target, &me, batches, 32, Duration::from_millis(20)).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(60), load).await.expect("the stream hung").unwrap().unwrap();
    assert_eq!(r.into_inner().counts.unwrap().accepted, 2_000);
    // A PushFacts afterwards is answered at once. Small pushes are group-committed in the order they were queued, and
    // a cancelled push that was already queued is still stored by the group that takes it: once this one is answered,
    // every push queued before it has been committed, so the counts below no longer move.
    let mut ca = app.client("civil_affairs").await;
    let r = tokio::time::timeout(Duration::from_secs(5), push(&mut ca, vec![rec("AFTER", 5_000, 1, A)])).await;
    assert_eq!(outcome(&r.expect("the writer was lost").unwrap().results[0]), pb::FactOutcome::Accepted);
    let stored = app.fact_versions().await;
    let pushed = stored - 2_001;
    eprintln!("{} of 200 pushes answered, {pushed} facts stored by pushes", out.completed);
    assert!(pushed % 4 == 0 && pushed <= 800, "{pushed} facts stored by the pushes: not whole batches of 4");
    assert!(pushed >= 4 * out.completed as i64, "every answered push is stored");
    change_log_is_gapless(&app, stored).await;
    chain_verifies(&app).await;
    app.stop().await;
}
