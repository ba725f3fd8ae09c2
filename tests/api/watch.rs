//! WatchChanges (docs/spec/api.md; docs/change-feed.md): exactly-once ordered delivery across reconnects, the access
//! policy applied as GetRecipient applies it, an explicit status for laggards and at shutdown, heartbeats, tasks freed
//! when the client vanishes, nothing logged for what was not stored. Cursors are derived by hand: the log starts
//! empty and every stored fact version takes the next cursor, in commit order and within a batch in batch order.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use doudi::client::Clients;
use doudi::grpc::pb;
use macro_rules_attribute::apply;
use tonic::Code;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::support::*;

const HUAN: &str = "621022";
const XIFENG: &str = "621002";

type Watch = tonic::Streaming<pb::Change>;

async fn watch(c: &mut Clients, after: Option<i64>) -> Result<Watch, tonic::Status> {
    watch_with(c, pb::WatchChangesRequest { after_cursor: after, purpose: "test watch".into(), ..Default::default() })
        .await
}

async fn watch_with(c: &mut Clients, req: pb::WatchChangesRequest) -> Result<Watch, tonic::Status> {
    c.exchange.watch_changes(req).await.map(|r| r.into_inner())
}

/// The next message (change or heartbeat) within 5 s.
async fn next(w: &mut Watch) -> Result<pb::Change, tonic::Status> {
    tokio::time::timeout(Duration::from_secs(5), w.message())
        .await
        .expect("a message within 5 s")
        .map(|m| m.expect("the stream never ends cleanly"))
}

/// The next change, skipping heartbeats.
async fn next_change(w: &mut Watch) -> pb::Change {
    loop {
        let m = next(w).await.unwrap();
        if !m.heartbeat {
            return m;
        }
    }
}

/// Every change up to `head` (skipping heartbeats), stopping at the first message whose cursor reaches `head`
/// (a change, or a heartbeat saying everything up to it was sent).
async fn changes_until(w: &mut Watch, head: i64) -> Vec<pb::Change> {
    let mut out = Vec::new();
    loop {
        let m = next(w).await.unwrap();
        let at = m.cursor;
        if !m.heartbeat {
            out.push(m);
        }
        if at >= head {
            return out;
        }
    }
}

fn cursors(cs: &[pb::Change]) -> Vec<i64> {
    cs.iter().map(|c| c.cursor).collect()
}

fn fact_ids(cs: &[pb::Change]) -> Vec<String> {
    cs.iter().map(|c| c.fact.as_ref().unwrap().fact_id.clone()).collect()
}

fn masked(id_number: &str) -> String {
    format!("{}********{}", &id_number[..6], &id_number[14..])
}

fn assistance(c: &pb::Change) -> &pb::Assistance {
    match c.fact.as_ref().unwrap().payload.as_ref().unwrap() {
        pb::fact::Payload::Assistance(a) => a,
        p => panic!("not assistance: {p:?}"),
    }
}

async fn stored(c: &mut Clients, facts: Vec<pb::Fact>) {
    let r = push(c, facts).await.unwrap();
    for res in &r.results {
        assert!(matches!(outcome(res), pb::FactOutcome::Accepted | pb::FactOutcome::NewVersion), "{res:?}");
    }
}

#[apply(e2e!)]
#[tokio::test]
async fn a_reconnect_with_the_last_cursor_gets_every_later_change_once_in_order() {
    let app = spawn_app_with(|c| c.watch_heartbeat_secs = 1).await;
    let mut ca = app.client("civil_affairs").await;
    let (pa, pb_, pc) = (id(HUAN, (1960, 1, 1), 1), id(HUAN, (1961, 2, 2), 2), id(HUAN, (1962, 3, 3), 3));
    let fact = |fid: &str, p: &str| with(base(fid, p, "621022101203"), rural_dibao());
    stored(&mut ca, vec![fact("A", &pa)]).await; // cursor 1
    stored(&mut ca, vec![fact("B", &pb_)]).await; // cursor 2

    let audit_before = app.audit_events().await;
    let mut w = watch(&mut ca, Some(0)).await.unwrap();
    // The watch start is audited once, with its purpose and starting cursor.
    assert_eq!(app.audit_events().await, audit_before + 1);
    const LAST_EVENT: &str = "SELECT method, purpose, outcome FROM audit_events ORDER BY seq DESC LIMIT 1";
    let (method, purpose, out): (String, String, String) = match app.app_hub.store.pg_pool() {
        Some(pg) => sqlx::query_as(LAST_EVENT).fetch_one(pg).await,
        None => sqlx::query_as(LAST_EVENT).fetch_one(app.app_hub.store.sqlite_pool().unwrap()).await,
    }
    .unwrap();
    assert_eq!(method, "/doudi.v1.RecipientExchange/WatchChanges");
    assert_eq!(purpose, "test watch");
    assert_eq!(out, "OK watch after_cursor=0");

    // First a heartbeat naming the starting cursor, then A.
    let hb = next(&mut w).await.unwrap();
    assert!(hb.heartbeat && hb.cursor == 0, "{hb:?}");
    let a = next_change(&mut w).await;
    assert_eq!(a.cursor, 1);
    assert_eq!(a.r#type, pb::ChangeType::Created as i32);
    assert_eq!(a.agency, "civil_affairs");
    assert_eq!(a.kind, pb::PayloadKind::Assistance as i32);
    assert_eq!(a.id_number_masked, masked(&pa));
    let f = a.fact.as_ref().unwrap();
    assert_eq!((f.fact_id.as_str(), f.source_version, f.id_number.as_str()), ("A", 1, pa.as_str()));
    assert_eq!(assistance(&a).monthly_benefit, "442.00");
    assert!(f.omitted_fields.is_empty(), "civil_affairs reads every field");
    drop(w);

    stored(&mut ca, vec![fact("C", &pc)]).await; // cursor 3
    let mut w = watch(&mut ca, Some(a.cursor)).await.unwrap();
    let got = changes_until(&mut w, 3).await;
    assert_eq!(cursors(&got), [2, 3]);
    assert_eq!(fact_ids(&got), ["B", "C"]);

    // A new version of B: cursor 4, replacing version 1.
    let mut b2 = fact("B", &pb_);
    b2.source_version = 2;
    if let Some(pb::fact::Payload::Assistance(a)) = &mut b2.payload {
        a.monthly_benefit = "500.00".into();
    }
    stored(&mut ca, vec![b2]).await;
    let c4 = next_change(&mut w).await;
    assert_eq!((c4.cursor, c4.r#type, c4.superseded_version), (4, pb::ChangeType::NewVersion as i32, 1));
    assert_eq!(assistance(&c4).monthly_benefit, "500.00");
    // Nothing more: the next message is a heartbeat at cursor 4.
    let hb = next(&mut w).await.unwrap();
    assert!(hb.heartbeat && hb.cursor == 4, "{hb:?}");
    drop(w);

    // From now: starts at the head (4), says so, and then shows only what comes later.
    let mut w = watch(&mut ca, None).await.unwrap();
    let hb = next(&mut w).await.unwrap();
    assert!(hb.heartbeat && hb.cursor == 4, "{hb:?}");
    stored(&mut ca, vec![fact("D", &pa)]).await; // cursor 5
    let d = next_change(&mut w).await;
    assert_eq!((d.cursor, d.fact.unwrap().fact_id.as_str()), (5, "D"));

    // A cursor the log never issued is OUT_OF_RANGE naming the newest; a negative one INVALID_ARGUMENT.
    let e = watch(&mut ca, Some(99)).await.unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange, "{e:?}");
    assert!(e.message().contains("after_cursor 99 is after the newest change 5"), "{}", e.message());
    let e = watch(&mut ca, Some(-1)).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("after_cursor:"), "{}", e.message());
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn each_watcher_sees_only_what_it_may_read() {
    let app = spawn_app_with(|c| c.watch_heartbeat_secs = 1).await;
    let student_p = id(HUAN, (2012, 5, 1), 11);
    let adult_p = id(HUAN, (1970, 5, 1), 12);
    let xifeng_p = id(XIFENG, (1971, 5, 1), 13);
    let mut edu = app.client("education").await;
    let mut ca = app.client("civil_affairs").await;
    let mut mi = app.client("medical_insurance").await;
    let mut hr = app.client("human_resources").await;
    // 1: student fact of the student (education).
    stored(&mut edu, vec![with(base("ST-1", &student_p, "621022101203"), student())]).await;
    // 2, 3, 4: assistance for the student, the adult (both Huan) and a person in Xifeng.
    stored(
        &mut ca,
        vec![
            with(base("AS-1", &student_p, "621022101203"), rural_dibao()),
            with(base("AS-2", &adult_p, "621022101203"), rural_dibao()),
            with(base("AS-3", &xifeng_p, "621002001001"), urban_dibao()),
        ],
    )
    .await;
    // 5: medical insurance of the student; 6: employment of the adult.
    stored(&mut mi, vec![with(base("MI-1", &student_p, "621022101203"), medical_insurance())]).await;
    stored(&mut hr, vec![with(base("EM-2", &adult_p, "621022101203"), employment())]).await;

    // Education: its student fact, and the student's assistance with program and status only (as GetRecipient).
    let got = changes_until(&mut watch(&mut edu, Some(0)).await.unwrap(), 6).await;
    assert_eq!(cursors(&got), [1, 2]);
    assert_eq!(fact_ids(&got), ["ST-1", "AS-1"]);
    let a = assistance(&got[1]);
    assert_eq!((a.program, a.status), (pb::Program::Dibao as i32, pb::AssistanceStatus::Active as i32));
    assert_eq!((a.residence, a.rural_class, a.monthly_benefit.as_str(), a.household_id.as_str()), (0, None, "", ""));
    assert_eq!(
        got[1].fact.as_ref().unwrap().omitted_fields,
        ["residence", "rural_class", "urban_mode", "support_mode", "household_id", "monthly_benefit"]
    );
    let via_get = get(&mut edu, &student_p, "2023-06-30").await.unwrap();
    let get_assist = via_get.facts.iter().find(|f| f.fact_id == "AS-1").unwrap();
    assert_eq!(get_assist.payload, got[1].fact.as_ref().unwrap().payload, "the same reduction as GetRecipient");
    assert_eq!(got[1].fact.as_ref().unwrap().id_number, student_p, "the full ID, as GetRecipient returns it");

    // human_resources: assistance (program, status) of all three and the employment; never medical insurance.
    let got = changes_until(&mut watch(&mut hr, Some(0)).await.unwrap(), 6).await;
    assert_eq!(cursors(&got), [2, 3, 4, 6]);
    assert!(got.iter().all(|c| c.kind != pb::PayloadKind::MedicalInsurance as i32));
    assert!(got[..3].iter().all(|c| assistance(c).monthly_benefit.is_empty()));
    // ... and asking for it is refused, naming the kind.
    let e = watch_with(
        &mut hr,
        pb::WatchChangesRequest { kinds: vec![pb::PayloadKind::MedicalInsurance as i32], ..Default::default() },
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("medical_insurance"), "{}", e.message());

    // medical_insurance: assistance with every field and its own fact.
    let got = changes_until(&mut watch(&mut mi, Some(0)).await.unwrap(), 6).await;
    assert_eq!(cursors(&got), [2, 3, 4, 5]);
    assert_eq!(assistance(&got[2]).monthly_benefit, "700.00");

    // A kinds filter narrows: civil_affairs asking for employment only.
    let got = changes_until(
        &mut watch_with(
            &mut ca,
            pb::WatchChangesRequest {
                after_cursor: Some(0),
                kinds: vec![pb::PayloadKind::Employment as i32],
                ..Default::default()
            },
        )
        .await
        .unwrap(),
        6,
    )
    .await;
    assert_eq!(cursors(&got), [6]);

    // The Huan county office: everything in Huan, nothing of Xifeng; another county is refused.
    let mut huan = app.client_in("civil_affairs", Some(HUAN)).await;
    let mut hw = watch(&mut huan, Some(0)).await.unwrap();
    let got = changes_until(&mut hw, 6).await;
    assert_eq!(cursors(&got), [1, 2, 3, 5, 6]);
    let e = watch_with(&mut huan, pb::WatchChangesRequest { division_code: XIFENG.into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("621002"), "{}", e.message());
    // 7: the adult moves to Xifeng: the Huan office gets a tombstone without the new place or payload.
    let mut moved = with(base("AS-2", &adult_p, "621002001001"), rural_dibao());
    moved.source_version = 2;
    stored(&mut ca, vec![moved]).await;
    let t = next_change(&mut hw).await;
    assert_eq!((t.cursor, t.r#type, t.superseded_version), (7, pb::ChangeType::LeftScope as i32, 1));
    assert_eq!(t.id_number_masked, masked(&adult_p));
    let f = t.fact.unwrap();
    assert_eq!(
        (f.fact_id.as_str(), f.source_version, f.division_code.as_str(), f.id_number.as_str()),
        ("AS-2", 2, "", "")
    );
    assert!(f.payload.is_none());

    // leading_group reads no person-level data.
    let mut lg = app.client("leading_group").await;
    assert_eq!(watch(&mut lg, Some(0)).await.unwrap_err().code(), Code::PermissionDenied);
    app.stop().await;
}

/// A client whose HTTP/2 windows are small (8 KiB), so an unread stream fills the hub's buffers after a few
/// hundred changes.
async fn small_window_client(app: &TestApp) -> Clients {
    let who = app.identity("civil_affairs", None);
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&who.ca_pem))
        .identity(Identity::from_pem(&who.cert_pem, &who.key_pem))
        .domain_name("localhost");
    let ch = Endpoint::from_shared(app.server.clone())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .initial_stream_window_size(8 * 1024)
        .initial_connection_window_size(8 * 1024)
        .connect()
        .await
        .unwrap();
    Clients::new(ch, 64 * 1024 * 1024)
}

/// 1,000 rural dibao facts of 1,000 persons, ids `{tag}-0` … `{tag}-999`, as one batch.
fn thousand(tag: &str) -> Vec<pb::Fact> {
    (0..1000)
        .map(|i| {
            let p = id(HUAN, (1940 + i / 300, 1 + (i / 28 % 12) as u32, 1 + (i % 28) as u32), (i % 997) as u16);
            with(base(&format!("{tag}-{i}"), &p, "621022101203"), rural_dibao())
        })
        .collect()
}

/// An unread watch over 1,000 changes ends with ABORTED naming the last cursor queued; everything before it arrives
/// first with no gap, and a reconnect from it gets the rest.
async fn laggard_case(app: &TestApp, expect: &str) {
    let mut slow = small_window_client(app).await;
    let mut w = watch(&mut slow, None).await.unwrap();
    assert!(next(&mut w).await.unwrap().heartbeat);
    let mut ca = app.client("civil_affairs").await;
    stored(&mut ca, thousand("LAG")).await; // cursors 1..=1000
    // Not reading for 2.5 s: the buffers fill and stay full.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut seen = Vec::new();
    let status = loop {
        match next(&mut w).await {
            Ok(m) if m.heartbeat => {}
            Ok(m) => seen.push(m.cursor),
            Err(s) => break s,
        }
    };
    let last = *seen.last().unwrap();
    assert_eq!(seen, (1..=last).collect::<Vec<_>>(), "no gap before the status");
    assert!(last < 1000, "the watcher was cut before the end: {last}");
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    assert!(status.message().contains(expect), "{}", status.message());
    assert!(status.message().ends_with(&format!("resume from cursor {last}")), "{}", status.message());
    assert_eq!(status.metadata().get("doudi-resume-cursor").unwrap().to_str().unwrap(), last.to_string());
    // Resuming, reading as it comes: the rest, once each.
    let mut w = watch(&mut ca, Some(last)).await.unwrap();
    let rest = changes_until(&mut w, 1000).await;
    assert_eq!(cursors(&rest), (last + 1..=1000).collect::<Vec<_>>());
}

#[apply(e2e!)]
#[tokio::test]
async fn a_watcher_far_behind_with_a_full_buffer_is_aborted_with_its_cursor() {
    let app = spawn_app_with(|c| c.watch_max_lag = 100).await;
    laggard_case(&app, "more than watch_max_lag 100").await;
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn a_watcher_whose_buffer_stays_full_is_aborted_with_its_cursor() {
    let app = spawn_app_with(|c| c.watch_send_timeout_secs = 1).await;
    laggard_case(&app, "stayed full for 1 s (watch_send_timeout_secs)").await;
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn an_idle_watch_gets_a_heartbeat_every_interval() {
    let app = spawn_app_with(|c| c.watch_heartbeat_secs = 1).await;
    let mut ca = app.client("civil_affairs").await;
    let mut w = watch(&mut ca, None).await.unwrap();
    let first = next(&mut w).await.unwrap();
    assert!(first.heartbeat && first.cursor == 0);
    for _ in 0..2 {
        let t = Instant::now();
        let hb = next(&mut w).await.unwrap();
        let took = t.elapsed();
        assert!(hb.heartbeat && hb.cursor == 0, "{hb:?}");
        assert!(took >= Duration::from_millis(800) && took < Duration::from_millis(2500), "{took:?}");
    }
    stored(&mut ca, vec![with(base("HB-1", &id(HUAN, (1950, 1, 1), 5), "621022101203"), rural_dibao())]).await;
    assert_eq!(next_change(&mut w).await.cursor, 1);
    let hb = next(&mut w).await.unwrap();
    assert!(hb.heartbeat && hb.cursor == 1, "the heartbeat carries the cursor reached: {hb:?}");
    app.stop().await;
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current().metrics().num_alive_tasks()
}

#[apply(e2e!)]
#[tokio::test]
async fn vanished_watchers_free_their_tasks_and_permits() {
    let app = spawn_app_with(|c| c.max_watches_per_agency = 3).await;
    let mut probe = app.client("civil_affairs").await;
    probe.audit.who_am_i(pb::WhoAmIRequest {}).await.unwrap();
    let baseline = alive_tasks();
    for round in 0..2 {
        let mut open = Vec::new();
        for _ in 0..3 {
            let mut c = app.client("civil_affairs").await;
            let mut w = watch(&mut c, None).await.unwrap();
            assert!(next(&mut w).await.unwrap().heartbeat);
            open.push((c, w));
        }
        // The agency's limit: a fourth is refused (the count is per agency, apart from StreamFacts).
        let e = watch(&mut probe, None).await.unwrap_err();
        assert_eq!(e.code(), Code::ResourceExhausted, "round {round}: {e:?}");
        assert!(e.message().contains("3 watches"), "{}", e.message());
        assert!(alive_tasks() > baseline);
        drop(open); // the clients vanish: connections closed
        let mut now = alive_tasks();
        for _ in 0..100 {
            if now <= baseline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            now = alive_tasks();
        }
        assert!(now <= baseline, "round {round}: {now} tasks alive, baseline {baseline}");
    }
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn shutdown_ends_a_watch_with_unavailable_naming_the_cursor() {
    let mut app = spawn_app_with(|c| c.shutdown_grace_secs = 2).await;
    let mut ca = app.client("civil_affairs").await;
    let p = id(HUAN, (1955, 1, 1), 7);
    stored(
        &mut ca,
        vec![
            with(base("SD-1", &p, "621022101203"), rural_dibao()),
            with(base("SD-2", &p, "621022101203"), urban_dibao()),
        ],
    )
    .await;
    let mut w = watch(&mut ca, Some(0)).await.unwrap();
    assert_eq!(cursors(&changes_until(&mut w, 2).await), [1, 2]);
    let asked = Instant::now();
    app.begin_stop();
    let e = next(&mut w).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert!(e.message().ends_with("resume from cursor 2"), "{}", e.message());
    assert_eq!(e.metadata().get("doudi-resume-cursor").unwrap().to_str().unwrap(), "2");
    tokio::time::timeout(Duration::from_secs(6), app.join()).await.expect("the hub exits").unwrap();
    assert!(asked.elapsed() < Duration::from_secs(6));
}

#[apply(e2e!)]
#[tokio::test]
async fn only_stored_versions_are_logged() {
    let app = spawn_app_with(|c| c.watch_heartbeat_secs = 1).await;
    let mut ca = app.client("civil_affairs").await;
    let p = id(HUAN, (1965, 6, 6), 9);
    let good = |fid: &str| with(base(fid, &p, "621022101203"), rural_dibao());
    let mut bad = good("BAD-1");
    bad.valid_from = "2023-02-30".into();
    let mut foreign = with(base("EMP-1", &p, "621022101203"), employment());
    foreign.source_version = 1;

    // A batch in which nothing is stored: no change.
    let r = push(&mut ca, vec![bad.clone()]).await.unwrap();
    assert_eq!(outcome(&r.results[0]), pb::FactOutcome::Rejected);
    // Refused whole (a kind civil_affairs does not own): no change.
    assert_eq!(push(&mut ca, vec![foreign.clone()]).await.unwrap_err().code(), Code::PermissionDenied);
    // One stored, two rejected: one change (cursor 1).
    let r = push(&mut ca, vec![bad, good("OK-1"), foreign]).await.unwrap();
    let outcomes: Vec<_> = r.results.iter().map(outcome).collect();
    assert_eq!(outcomes, [pb::FactOutcome::Rejected, pb::FactOutcome::Accepted, pb::FactOutcome::Rejected]);
    // DUPLICATE and STALE store nothing: no change.
    assert_eq!(outcome(&push(&mut ca, vec![good("OK-1")]).await.unwrap().results[0]), pb::FactOutcome::Duplicate);
    let mut stale = good("OK-1");
    if let Some(pb::fact::Payload::Assistance(a)) = &mut stale.payload {
        a.household_id = "HH-OTHER".into(); // other content at the same source_version
    }
    assert_eq!(outcome(&push(&mut ca, vec![stale]).await.unwrap().results[0]), pb::FactOutcome::Stale);

    // The log itself, read on the database (BIGINT on both backends).
    const HEAD: &str = "SELECT COALESCE(MAX(cursor), 0) FROM change_log";
    let head: i64 = match app.app_hub.store.pg_pool() {
        Some(pg) => sqlx::query_scalar(HEAD).fetch_one(pg).await,
        None => sqlx::query_scalar(HEAD).fetch_one(app.app_hub.store.sqlite_pool().unwrap()).await,
    }
    .unwrap();
    assert_eq!(head, 1);
    let mut w = watch(&mut ca, Some(0)).await.unwrap();
    let got = changes_until(&mut w, 1).await;
    assert_eq!(fact_ids(&got), ["OK-1"]);
    // Then only heartbeats at cursor 1.
    let hb = next(&mut w).await.unwrap();
    assert!(hb.heartbeat && hb.cursor == 1, "{hb:?}");
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn concurrent_pushes_from_three_agencies_are_seen_once_in_cursor_order() {
    let app = spawn_app_with(|c| c.rate_per_agency = 0).await;
    let mut ca = app.client("civil_affairs").await;
    let mut w = watch(&mut ca, None).await.unwrap();
    assert_eq!(next(&mut w).await.unwrap().cursor, 0);
    let mut tasks = Vec::new();
    for (agency, tag) in [("civil_affairs", "CA"), ("human_resources", "HR"), ("medical_insurance", "MI")] {
        let mut c = app.client(agency).await;
        tasks.push(tokio::spawn(async move {
            for b in 0..10 {
                let facts = (0..20)
                    .map(|k| {
                        let i = b * 20 + k;
                        let p = id(HUAN, (1950 + i / 28, 1, 1 + (i % 28) as u32), (100 + i) as u16);
                        let payload = match tag {
                            "CA" => rural_dibao(),
                            "HR" => employment(),
                            _ => medical_insurance(),
                        };
                        with(base(&format!("{tag}-{i}"), &p, "621022101203"), payload)
                    })
                    .collect();
                let r = push(&mut c, facts).await.unwrap();
                assert!(r.results.iter().all(|r| outcome(r) == pb::FactOutcome::Accepted));
            }
        }));
    }
    let got = changes_until(&mut w, 600).await;
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(cursors(&got), (1..=600).collect::<Vec<_>>(), "every change once, in cursor order");
    let ids: BTreeSet<(String, String)> =
        got.iter().map(|c| (c.agency.clone(), c.fact.as_ref().unwrap().fact_id.clone())).collect();
    let expected: BTreeSet<(String, String)> =
        [("civil_affairs", "CA"), ("human_resources", "HR"), ("medical_insurance", "MI")]
            .iter()
            .flat_map(|(a, t)| (0..200).map(move |i| (a.to_string(), format!("{t}-{i}"))))
            .collect();
    assert_eq!(ids, expected);
    // Within each agency, its batches arrive in the order it pushed them.
    for tag in ["CA", "HR", "MI"] {
        let seq: Vec<usize> = got
            .iter()
            .filter_map(|c| {
                c.fact.as_ref().unwrap().fact_id.strip_prefix(&format!("{tag}-")).map(|n| n.parse().unwrap())
            })
            .collect();
        assert_eq!(seq, (0..200).collect::<Vec<_>>(), "{tag}");
    }
    app.stop().await;
}

/// A raw HTTP/2 connection to the hub over mutual TLS as `agency` (for what tonic's client cannot do: many streams
/// reset in one burst on the connection a watch uses).
async fn raw_h2(app: &TestApp, agency: &str) -> h2::client::SendRequest<bytes::Bytes> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let id = app.identity(agency, None);
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&id.ca_pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&id.cert_pem).collect::<Result<_, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_slice(&id.key_pem).unwrap();
    let mut tls =
        rustls::ClientConfig::builder().with_root_certificates(roots).with_client_auth_cert(chain, key).unwrap();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let port: u16 = app.server.rsplit(':').next().unwrap().parse().unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let io = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (send, connection) = h2::client::handshake(io).await.unwrap();
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("raw HTTP/2 connection ended: {e}");
        }
    });
    send
}

fn grpc_request(method: &str) -> http::Request<()> {
    http::Request::builder()
        .method("POST")
        .uri(format!("https://localhost{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap()
}

/// The next gRPC message of a raw response body (5-byte prefix: compressed flag, big-endian length).
async fn raw_message(body: &mut h2::RecvStream, buf: &mut Vec<u8>) -> Result<pb::Change, String> {
    use prost::Message as _;
    loop {
        if buf.len() >= 5 {
            let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
            if buf.len() >= 5 + len {
                let msg = pb::Change::decode(&buf[5..5 + len]).map_err(|e| e.to_string())?;
                buf.drain(..5 + len);
                return Ok(msg);
            }
        }
        match tokio::time::timeout(Duration::from_secs(10), body.data()).await {
            Err(_) => return Err("no message within 10 s".into()),
            Ok(None) => return Err(format!("the watch ended: trailers {:?}", body.trailers().await)),
            Ok(Some(Err(e))) => return Err(format!("the watch failed: {e}")),
            Ok(Some(Ok(data))) => {
                let _ = body.flow_control().release_capacity(data.len());
                buf.extend_from_slice(&data);
            }
        }
    }
}

/// Issue 23 item 4: when 500 or more calls on one HTTP/2 connection were cancelled before the hub accepted them, h2's
/// default limit (20 pending-accept resets) sent GOAWAY `too_many_resets` and ended every stream on the connection, a
/// WatchChanges included. Here 3,000 calls are opened and cancelled at once (HEADERS and RST_STREAM queued together and
/// written in one burst) on the connection of a running watch; the watch still receives a fact pushed afterwards.
#[apply(e2e!)]
#[tokio::test]
async fn three_thousand_immediate_cancels_leave_a_watch_on_the_same_connection_running() {
    use prost::Message as _;
    let app = spawn_app().await;
    let mut h2c = raw_h2(&app, "civil_affairs").await;
    let (response, mut send) =
        h2c.send_request(grpc_request("/doudi.v1.RecipientExchange/WatchChanges"), false).unwrap();
    let req = pb::WatchChangesRequest { purpose: "reset storm".into(), ..Default::default() }.encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(req.len() as u32).to_be_bytes());
    framed.extend_from_slice(&req);
    send.send_data(framed.into(), true).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut buf = Vec::new();
    let first = raw_message(&mut body, &mut buf).await.unwrap();
    assert!(first.heartbeat, "a watch from now starts with a heartbeat naming the cursor: {first:?}");

    // 3,000 calls opened and reset at once, without yielding: h2 keeps each HEADERS and queues its RST_STREAM right
    // after it, and the connection task writes them all in one burst.
    for _ in 0..3_000 {
        let (_response, mut stream) =
            h2c.send_request(grpc_request("/doudi.v1.Reference/ListDivisions"), false).unwrap();
        stream.send_reset(h2::Reason::CANCEL);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A change pushed afterwards reaches the watch on the same connection.
    let mut civil = app.client("civil_affairs").await;
    let person = id(HUAN, (1980, 1, 1), 1);
    stored(&mut civil, vec![with(base("MZ-STORM", &person, HUAN), rural_dibao())]).await;
    let change = loop {
        let m = raw_message(&mut body, &mut buf).await.expect("the watch survives the reset storm");
        if !m.heartbeat {
            break m;
        }
    };
    assert_eq!(change.fact.unwrap().fact_id, "MZ-STORM");
    // And the connection still takes new calls.
    let (response, _send) = h2c.send_request(grpc_request("/doudi.v1.Audit/WhoAmI"), true).unwrap();
    assert_eq!(response.await.unwrap().status(), 200);
    drop((body, h2c));
    app.stop().await;
}
