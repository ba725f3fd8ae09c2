//! Retention (issue 20 item 3, docs/retention.md): periods as data with their sources (audit at least 180 days, from
//! 《网络安全法》第二十一条), legal holds per person and per quarter, and the resumable, audited purge whose tombstones
//! keep every audit chain, saved signed head and snapshot verifying.
//!
//! Records are made old by running the purge with a later clock (`ops::retention::purge` takes `now`; the command
//! passes the current time): with `now` = today + D days, a record written today is D days old. Expected counts are
//! derived by hand from what each test writes: one audit event naming the person per PushFacts of one person and per
//! GetRecipient (docs/spec/security.md), one change per stored fact version (docs/change-feed.md).

use chrono::{Duration, Utc};
use doudi::domain::calendar::Quarter;
use doudi::domain::id_number::IdNumber;
use doudi::domain::retention::RecordKind;
use doudi::grpc::pb;
use doudi::ops::retention::{PurgeReport, place_hold, purge, release_hold};
use doudi::security::crypto::{Keys, PersonKey};
use doudi::store::HoldTarget;
use macro_rules_attribute::apply;
use tonic::Code;

use crate::support::*;

const HUAN: &str = "621022101203";

/// `doudi ARGS…` on the hub's database as an operator runs it, with `DOUDI_DATA_KEY` = `key`; `(exit code, output)`.
fn doudi(key: &str, args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_doudi"))
        .args(args)
        .env_remove("DOUDI_CONFIG")
        .env_remove("DOUDI_TEST_DATABASE_URL")
        .env("DOUDI_TRUST_DOMAIN", TRUST_DOMAIN)
        .env("DOUDI_DATA_KEY", key)
        .output()
        .unwrap();
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn key_of(app: &TestApp, id_number: &str) -> PersonKey {
    app.app_hub.keys.person_key(&IdNumber::parse(id_number).unwrap())
}

/// One scalar of a query on the hub's database (`$1` bound to `bind`), as text.
async fn scalar(app: &TestApp, sql: &str, bind: Vec<u8>) -> Option<String> {
    let store = &app.app_hub.store;
    match store.pg_pool() {
        Some(pg) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).bind(bind).fetch_one(pg).await.unwrap(),
        None => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .bind(bind)
            .fetch_one(store.sqlite_pool().unwrap())
            .await
            .unwrap(),
    }
}

/// Run a statement on the hub's database behind its back (to tamper with the audit).
async fn exec(app: &TestApp, sql: impl Into<String>) {
    let (store, sql) = (&app.app_hub.store, sqlx::AssertSqlSafe(sql.into()));
    match store.pg_pool() {
        Some(pg) => sqlx::query(sql).execute(pg).await.map(|_| ()),
        None => sqlx::query(sql).execute(store.sqlite_pool().unwrap()).await.map(|_| ()),
    }
    .unwrap()
}

/// The purged count of `kind` in a report.
fn purged(r: &PurgeReport, kind: RecordKind) -> u64 {
    r.counts.iter().find(|c| c.kind == kind).map_or(0, |c| c.purged)
}

/// A rural dibao fact of `person`, version `v`, `benefit` a month.
fn dibao(fact_id: &str, person: &str, v: u64, benefit: &str) -> pb::Fact {
    let mut f = with(base(fact_id, person, HUAN), rural_dibao());
    f.source_version = v;
    if let Some(pb::fact::Payload::Assistance(a)) = &mut f.payload {
        a.monthly_benefit = benefit.into();
    }
    f
}

async fn verify_chain(app: &TestApp) -> pb::VerifyAuditChainResponse {
    let mut lg = app.client("leading_group").await;
    lg.audit.verify_audit_chain(pb::VerifyAuditChainRequest {}).await.unwrap().into_inner()
}

/// The GetRecipient and PushFacts events ListAccessEvents finds for `person`.
async fn events_of(app: &TestApp, person: &str) -> usize {
    let mut civil = app.client("civil_affairs").await;
    let r = civil
        .audit
        .list_access_events(pb::ListAccessEventsRequest {
            id_number: person.into(),
            purpose: "retention test".into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    r.events.iter().filter(|e| e.method.ends_with("/GetRecipient") || e.method.ends_with("/PushFacts")).count()
}

#[apply(e2e!)]
#[tokio::test]
async fn defaults_are_loaded_with_their_sources_and_an_audit_period_under_180_days_is_refused() {
    let key = Keys::generate_base64();
    let k = key.clone();
    let app = spawn_app_with(move |c| c.data_key = Some(k.into())).await;
    let db = app.database_url.clone();

    // The defaults of docs/retention.md: audit 366 days (floor 180, 《网络安全法》第二十一条), change log 366, fact
    // versions and settlements 1827 (five years: 5 × 365 + 2 leap days).
    let policies = app.app_hub.store.retention_policies().await.unwrap();
    let days: Vec<(RecordKind, i64, i64)> = policies.iter().map(|p| (p.kind, p.days, p.min_days)).collect();
    assert_eq!(
        days,
        [
            (RecordKind::AuditPersons, 366, 180),
            (RecordKind::ChangeLog, 366, 1),
            (RecordKind::FactVersion, 1827, 1),
            (RecordKind::Settlement, 1827, 1),
        ]
    );
    assert!(policies[0].source.contains("《网络安全法》第二十一条"), "{}", policies[0].source);
    assert!(policies.iter().all(|p| p.set_by == "migration 0015_retention"));
    let (code, said) = doudi(&key, &["retention", "show", "--database-url", &db]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("audit_persons") && said.contains("第二十一条"), "{said}");

    // Below six months: refused, naming the law; nothing changed, nothing audited.
    let events = app.audit_events().await;
    let (code, said) = doudi(
        &key,
        &["retention", "set", "--direct-database", "audit_persons", "179", "--source", "test", "--database-url", &db],
    );
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("at least 180 days") && said.contains("第二十一条"), "{said}");
    assert_eq!(app.audit_events().await, events);
    assert_eq!(app.app_hub.store.retention_policies().await.unwrap()[0].days, 366);

    // 180 days exactly is accepted, and audited with the period before and after.
    let (code, said) = doudi(
        &key,
        &[
            "retention",
            "set",
            "--direct-database",
            "audit_persons",
            "180",
            "--source",
            "市局决定 2026-1",
            "--database-url",
            &db,
        ],
    );
    assert_eq!(code, Some(0), "{said}");
    let p = &app.app_hub.store.retention_policies().await.unwrap()[0];
    assert_eq!((p.days, p.source.as_str()), (180, "市局决定 2026-1"));
    let mut civil = app.client("civil_affairs").await;
    let list = civil
        .audit
        .list_access_events(pb::ListAccessEventsRequest { agency: "operator".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let set = list.events.iter().find(|e| e.method == "doudi retention set").expect("the change is audited");
    assert!(set.outcome.contains("audit_persons 366 days -> 180 days"), "{}", set.outcome);

    // Holds by the CLI: a person by ID number (the event names the person; the ID number is stored nowhere in the
    // hold), a quarter; released, not deleted.
    let person = id("621022", (1970, 5, 5), 3);
    let (code, said) = doudi(
        &key,
        &[
            "retention",
            "hold",
            "--direct-database",
            "--person",
            &person,
            "--reason",
            "案件 (2026) 甘1022",
            "--database-url",
            &db,
        ],
    );
    assert_eq!(code, Some(0), "{said}");
    let (code, said) = doudi(
        &key,
        &[
            "retention",
            "hold",
            "--direct-database",
            "--quarter",
            "2023Q2",
            "--reason",
            "审计署抽查",
            "--database-url",
            &db,
        ],
    );
    assert_eq!(code, Some(0), "{said}");
    let holds = app.app_hub.store.retention_holds().await.unwrap();
    assert_eq!(holds.len(), 2);
    assert_eq!(holds[0].target, HoldTarget::Person(key_of(&app, &person)));
    assert_eq!(holds[1].target, HoldTarget::Quarter("2023Q2".parse().unwrap()));
    let (code, said) = doudi(
        &key,
        &[
            "retention",
            "release",
            "--direct-database",
            &holds[1].id.to_string(),
            "--reason",
            "抽查结束",
            "--database-url",
            &db,
        ],
    );
    assert_eq!(code, Some(0), "{said}");
    let (code, _) = doudi(
        &key,
        &[
            "retention",
            "release",
            "--direct-database",
            &holds[1].id.to_string(),
            "--reason",
            "again",
            "--database-url",
            &db,
        ],
    );
    assert_eq!(code, Some(1), "a released hold is not released twice");
    let holds = app.app_hub.store.retention_holds().await.unwrap();
    assert_eq!(holds.len(), 2, "kept");
    assert!(holds[0].released.is_none());
    assert_eq!(holds[1].released.as_ref().map(|r| r.2.as_str()), Some("抽查结束"));
    assert_eq!(events_of(&app, &person).await, 0, "no read or push of that person");
    let mut civil = app.client("civil_affairs").await;
    let r = civil
        .audit
        .list_access_events(pb::ListAccessEventsRequest {
            id_number: person.clone(),
            purpose: "retention test".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.events.iter().any(|e| e.method == "doudi retention hold"), "the hold is found by the person");
    let hold_text = scalar(
        &app,
        "SELECT reason FROM retention_holds WHERE person_key = $1",
        key_of(&app, &person).as_bytes().to_vec(),
    )
    .await;
    assert_eq!(hold_text.as_deref(), Some("案件 (2026) 甘1022"));

    // A purge now finds nothing due (everything was written today), and says so.
    let (code, said) = doudi(&key, &["retention", "purge", "--direct-database", "--dry-run", "--database-url", &db]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("audit_persons  due         0"), "{said}");
    let (code, said) = doudi(&key, &["retention", "purge", "--direct-database", "--database-url", &db]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("audit_persons  purged         0") && said.contains("purge complete"), "{said}");

    // An event made a tombstone behind the command's back (its persons deleted, marked purged) while no purge of the
    // audit is recorded in the log: the chain check says so.
    assert!(verify_chain(&app).await.valid);
    let newest = "(SELECT MAX(seq) FROM audit_events WHERE person_count > 0 AND purged_at IS NULL)";
    exec(&app, format!("DELETE FROM audit_persons WHERE seq = {newest}")).await;
    exec(&app, format!("UPDATE audit_events SET purged_at = at WHERE seq = {newest}")).await;
    let v = verify_chain(&app).await;
    assert!(!v.valid && v.reason.contains("purged without a purge"), "{}", v.reason);
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn a_purge_keeps_the_audit_chain_and_a_saved_signed_head_verifying_and_spares_what_is_held() {
    let key = Keys::generate_base64();
    let k = key.clone();
    let app = spawn_app_with(move |c| c.data_key = Some(k.into())).await;
    let store = &app.app_hub.store;
    let (a, b) = (id("621022", (1980, 3, 3), 7), id("621022", (1981, 4, 4), 8));
    let mut civil = app.client("civil_affairs").await;
    let mut mi = app.client("medical_insurance").await;
    for (i, p) in [&a, &b].into_iter().enumerate() {
        push(&mut civil, vec![dibao(&format!("R-{i}"), p, 1, "442.00")]).await.unwrap();
        get(&mut mi, p, "2023-06-30").await.unwrap();
    }
    // Per person: its push and one read. (Asking ListAccessEvents about a person is itself an event naming them.)
    assert_eq!((events_of(&app, &a).await, events_of(&app, &b).await), (2, 2));

    // A signed head saved before the purge.
    let mut lg = app.client("leading_group").await;
    let head = lg.audit.get_signed_head(pb::GetSignedHeadRequest { fresh: true }).await.unwrap().into_inner();
    let saved = app.dir.path().join("head.json");
    std::fs::write(&saved, doudi::grpc::audit::signed_head_from_pb(&head).unwrap().to_json()).unwrap();

    // B held; the current quarter held: nothing of this test's is purged while the quarter is held.
    let now = Utc::now();
    place_hold(
        store,
        HoldTarget::Person(key_of(&app, &b)),
        "案件 1",
        &doudi::domain::admin::Actor::direct("test"),
        now,
    )
    .await
    .unwrap();
    let quarter = place_hold(
        store,
        HoldTarget::Quarter(Quarter::of_instant(now)),
        "抽查",
        &doudi::domain::admin::Actor::direct("test"),
        now,
    )
    .await
    .unwrap();
    // 400 days later, everything written today is past the audit's 366 days.
    let later = now + Duration::days(400);
    let r = purge(store, later, 100, None, false, &doudi::domain::admin::Actor::direct("test")).await.unwrap();
    assert_eq!(purged(&r, RecordKind::AuditPersons), 0, "the quarter is held");
    release_hold(store, quarter, "抽查结束", &doudi::domain::admin::Actor::direct("test"), Utc::now())
        .await
        .unwrap()
        .unwrap();
    let before = store.audit_count().await.unwrap();
    let dry = purge(store, later, 100, None, true, &doudi::domain::admin::Actor::direct("test")).await.unwrap();
    let r = purge(store, later, 100, None, false, &doudi::domain::admin::Actor::direct("test")).await.unwrap();
    // A's push, its read and the ListAccessEvents that asked about A: 3 events. B's are held (the hold's own event
    // names B too), and the events naming no one have nothing to purge.
    assert_eq!(purged(&r, RecordKind::AuditPersons), 3);
    assert_eq!(purged(&dry, RecordKind::AuditPersons), 3, "the dry run counted what the purge did");
    // One audit event per chunk committed (audit persons here; the first run already cut the change log to its
    // newest change, and without a frozen snapshot no fact version is purged).
    let chunks: usize = r.counts.iter().map(|c| c.chunks).sum();
    assert_eq!(store.audit_count().await.unwrap(), before + chunks as i64, "no event deleted; one per chunk added");

    // Who looked at A is gone; at B, still there.
    assert_eq!((events_of(&app, &a).await, events_of(&app, &b).await), (0, 2));
    // The chain verifies (the tombstones' stored persons hashes stand in), by RPC and by the CLI, and still holds the
    // saved signed head.
    let v = verify_chain(&app).await;
    assert!(v.valid, "{}", v.reason);
    let db = app.database_url.clone();
    let (code, said) = doudi(&key, &["audit", "verify", "--database-url", &db]);
    assert_eq!(code, Some(0), "{said}");
    let ca = app.dir.path().join("ca.pem");
    let (code, said) = doudi(
        &key,
        &["audit", "verify", "--database-url", &db, "--against", saved.to_str().unwrap(), "--ca", ca.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("every lane still holds the saved head"), "{said}");

    // A real tombstone whose row is altered breaks the chain as any event does.
    exec(
        &app,
        "UPDATE audit_events SET person_count = person_count + 1 WHERE seq = (SELECT MIN(seq) FROM audit_events \
         WHERE purged_at IS NOT NULL)",
    )
    .await;
    let v = verify_chain(&app).await;
    assert!(!v.valid && v.reason.contains("content altered"), "{}", v.reason);
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn fact_tombstones_keep_their_hashes_reads_and_snapshots_still_work_and_old_cursors_are_out_of_range() {
    let app = spawn_app().await;
    let store = &app.app_hub.store;
    let (a, b) = (id("621022", (1980, 3, 3), 7), id("621022", (1981, 4, 4), 8));
    let mut civil = app.client("civil_affairs").await;
    // Changes 1 and 2: A-1 and B-1 version 1, frozen into 2023Q2.
    push(&mut civil, vec![dibao("A-1", &a, 1, "442.00")]).await.unwrap();
    push(&mut civil, vec![dibao("B-1", &b, 1, "442.00")]).await.unwrap();
    let q2 = civil.coordination.create_snapshot(pb::CreateSnapshotRequest { quarter: "2023Q2".into() }).await.unwrap();
    let q2 = q2.into_inner();
    // Changes 3 and 4: version 2 of both (version 1 superseded), frozen into 2023Q3; change 5: C-1.
    push(&mut civil, vec![dibao("A-1", &a, 2, "500.00")]).await.unwrap();
    push(&mut civil, vec![dibao("B-1", &b, 2, "500.00")]).await.unwrap();
    civil.coordination.create_snapshot(pb::CreateSnapshotRequest { quarter: "2023Q3".into() }).await.unwrap();
    let c = id("621022", (1982, 5, 5), 9);
    push(&mut civil, vec![dibao("C-1", &c, 1, "442.00")]).await.unwrap();
    assert_eq!(store.change_log_head().await.unwrap(), 5);
    let hash_sql = "SELECT lower(hex(f.content_hash)) || ' ' || CAST(LENGTH(f.payload) AS TEXT) FROM facts f \
                    JOIN persons p ON p.person_id = f.person_id WHERE p.person_key = $1 AND f.source_version = 1";
    let hash_sql = if crate::ON_POSTGRES {
        "SELECT encode(f.content_hash, 'hex') || ' ' || CAST(LENGTH(f.payload) AS TEXT) FROM facts f \
         JOIN persons p ON p.person_id = f.person_id WHERE p.person_key = $1 AND f.source_version = 1"
    } else {
        hash_sql
    };
    let before_a = scalar(&app, hash_sql, key_of(&app, &a).as_bytes().to_vec()).await.unwrap();
    let before_b = scalar(&app, hash_sql, key_of(&app, &b).as_bytes().to_vec()).await.unwrap();

    // B held; six years later (past the five years of fact versions and the change log's year).
    place_hold(
        store,
        HoldTarget::Person(key_of(&app, &b)),
        "案件 2",
        &doudi::domain::admin::Actor::direct("test"),
        Utc::now(),
    )
    .await
    .unwrap();
    let later = Utc::now() + Duration::days(6 * 366);
    let r = purge(store, later, 100, None, false, &doudi::domain::admin::Actor::direct("test")).await.unwrap();
    // The change log loses every change but its newest (5): changes 1–4.
    assert_eq!(purged(&r, RecordKind::ChangeLog), 4);
    // A-1 version 1 only: B's is held, and current versions are never purged.
    assert_eq!(purged(&r, RecordKind::FactVersion), 1);
    assert_eq!(purged(&r, RecordKind::Settlement), 0, "settlements are not purged yet");

    // A-1 version 1: same content hash, payload emptied; B-1 version 1 as it was.
    let after_a = scalar(&app, hash_sql, key_of(&app, &a).as_bytes().to_vec()).await.unwrap();
    assert_eq!(after_a.split(' ').next(), before_a.split(' ').next(), "the content hash stays");
    assert!(after_a.ends_with(" 0") && !before_a.ends_with(" 0"), "{before_a} -> {after_a}");
    assert_eq!(scalar(&app, hash_sql, key_of(&app, &b).as_bytes().to_vec()).await.unwrap(), before_b);

    // Reads still answer: the current version of A.
    let mut mi = app.client("medical_insurance").await;
    let rec = get(&mut mi, &a, "2023-06-30").await.unwrap();
    assert_eq!(rec.facts.len(), 1);
    // Both frozen quarters still verify: 2023Q2 names A-1 version 1 by its content hash.
    let mut lg = app.client("leading_group").await;
    for q in ["2023Q2", "2023Q3"] {
        let v = lg.coordination.verify_snapshot(pb::VerifySnapshotRequest { quarter: q.into() }).await.unwrap();
        let v = v.into_inner();
        assert!(v.valid, "{q}: {:?}", v.differences);
        if q == "2023Q2" {
            assert_eq!(v.stored_content_hash, q2.content_hash);
        }
    }
    // The change feed: the oldest change left is 5, so a cursor below 4 is OUT_OF_RANGE naming it; 4 resumes.
    assert_eq!(store.change_log_oldest().await.unwrap(), Some(5));
    let watch = |after: i64| pb::WatchChangesRequest {
        after_cursor: Some(after),
        purpose: "retention test".into(),
        ..Default::default()
    };
    let e = civil.exchange.watch_changes(watch(2)).await.unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange, "{e:?}");
    assert!(e.message().contains("older than the oldest retained change 5"), "{}", e.message());
    let mut w = civil.exchange.watch_changes(watch(4)).await.unwrap().into_inner();
    let first = loop {
        let m = tokio::time::timeout(std::time::Duration::from_secs(5), w.message()).await.unwrap().unwrap().unwrap();
        if !m.heartbeat {
            break m;
        }
    };
    assert_eq!((first.cursor, first.fact.unwrap().fact_id.as_str()), (5, "C-1"));
    drop(w);
    let v = verify_chain(&app).await;
    assert!(v.valid, "{}", v.reason);
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn an_interrupted_purge_resumes_where_it_stopped_without_redoing_work() {
    let app = spawn_app().await;
    let store = &app.app_hub.store;
    let mut civil = app.client("civil_affairs").await;
    let mut mi = app.client("medical_insurance").await;
    // Five persons, each pushed alone and read once: 10 audit events naming one person each.
    for i in 0..5u16 {
        let p = id("621022", (1970, 1, 1), 10 + i);
        push(&mut civil, vec![dibao(&format!("P-{i}"), &p, 1, "442.00")]).await.unwrap();
        get(&mut mi, &p, "2023-06-30").await.unwrap();
    }
    let later = Utc::now() + Duration::days(400);
    let due = purge(store, later, 3, None, true, &doudi::domain::admin::Actor::direct("test")).await.unwrap();
    assert_eq!(purged(&due, RecordKind::AuditPersons), 10);
    // Stopped after two chunks of three (as a kill between chunks leaves it: each chunk committed on its own).
    let first = purge(store, later, 3, Some(2), false, &doudi::domain::admin::Actor::direct("test")).await.unwrap();
    assert!(first.interrupted);
    assert_eq!(purged(&first, RecordKind::AuditPersons), 6);
    // Run again: the remaining 4 in two chunks (3 + 1); nothing purged twice.
    let second = purge(store, later, 3, None, false, &doudi::domain::admin::Actor::direct("test")).await.unwrap();
    assert!(!second.interrupted);
    assert_eq!(purged(&second, RecordKind::AuditPersons), 4);
    let audit_chunks = |r: &PurgeReport| r.counts.iter().find(|c| c.kind == RecordKind::AuditPersons).unwrap().chunks;
    assert_eq!((audit_chunks(&first), audit_chunks(&second)), (2, 2));
    // And a third run finds nothing.
    let third = purge(store, later, 3, None, false, &doudi::domain::admin::Actor::direct("test")).await.unwrap();
    assert_eq!(purged(&third, RecordKind::AuditPersons), 0);
    let n = scalar(
        &app,
        "SELECT CAST(COUNT(*) AS TEXT) FROM audit_events WHERE purged_at IS NOT NULL OR $1 IS NULL",
        vec![],
    )
    .await;
    assert_eq!(n.as_deref(), Some("10"));
    // One audit event per chunk: 2 + 2 for the audit persons, each saying how many it purged.
    let mut civil = app.client("civil_affairs").await;
    let list = civil
        .audit
        .list_access_events(pb::ListAccessEventsRequest { agency: "operator".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let mut counts: Vec<&str> = list
        .events
        .iter()
        .filter(|e| e.method == "doudi retention purge" && e.purpose.starts_with("retention: audit_persons"))
        .map(|e| e.outcome.as_str())
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        [
            "OK purged audit_persons 1; by direct-database:test",
            "OK purged audit_persons 3; by direct-database:test",
            "OK purged audit_persons 3; by direct-database:test",
            "OK purged audit_persons 3; by direct-database:test"
        ]
    );
    let v = verify_chain(&app).await;
    assert!(v.valid, "{}", v.reason);
    app.stop().await;
}
