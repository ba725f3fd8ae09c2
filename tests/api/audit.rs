//! The audit log read back (docs/spec/security.md): who looked at a person, per agency, and the hash chain verified
//! after alterations, deletions and reordering of stored rows.

use doudi::grpc::pb;
use macro_rules_attribute::apply;
use tonic::Code;

use crate::support::*;

const HUAN: &str = "621022101203";

async fn seed(app: &TestApp) -> String {
    let person = id("621022", (1980, 3, 3), 7);
    let mut civil = app.client("civil_affairs").await;
    push(&mut civil, vec![with(base("A-1", &person, HUAN), rural_dibao())]).await.unwrap();
    let mut mi = app.client("medical_insurance").await;
    get(&mut mi, &person, "2023-06-30").await.unwrap();
    let mut hr = app.client("human_resources").await;
    get(&mut hr, &person, "2023-06-30").await.unwrap();
    person
}

/// Run one statement straight on the hub's database (SQLite or PostgreSQL), as someone with database access would.
async fn exec(app: &TestApp, sql: &'static str) {
    match app.app_hub.store.pg_pool() {
        Some(pg) => sqlx::query(sql).execute(pg).await.map(|_| ()),
        None => sqlx::query(sql).execute(app.app_hub.store.sqlite_pool().unwrap()).await.map(|_| ()),
    }
    .unwrap();
}

/// `(lane, position in the lane)` of the event numbered `seq` in the log: on SQLite (one lane) `(0, seq)`; on
/// PostgreSQL a read's event is in the hub process's own lane (docs/audit-lanes.md).
async fn position(app: &TestApp, seq: i64) -> (i32, i64) {
    let mut civil = app.client("civil_affairs").await;
    let events = civil.audit.list_access_events(pb::ListAccessEventsRequest::default()).await.unwrap().into_inner();
    let e = events.events.iter().find(|e| e.seq == seq).expect("the event is listed");
    (e.lane, e.lane_seq)
}

/// Where verification says the chain breaks: `(lane, position in the lane)`.
fn broken_at(v: &pb::VerifyAuditChainResponse) -> (i32, i64) {
    (v.first_broken_lane, v.first_broken_seq)
}

async fn verify(c: &mut doudi::client::Clients) -> pb::VerifyAuditChainResponse {
    c.audit.verify_audit_chain(pb::VerifyAuditChainRequest {}).await.unwrap().into_inner()
}

#[apply(e2e!)]
#[tokio::test]
async fn who_looked_at_this_person() {
    let app = spawn_app().await;
    let person = seed(&app).await;
    let mut civil = app.client("civil_affairs").await;
    let r = civil
        .audit
        .list_access_events(pb::ListAccessEventsRequest {
            id_number: person.clone(),
            purpose: "complaint 2023-118".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // Newest first: human_resources' read, medical_insurance's read, civil_affairs' push.
    let who: Vec<(&str, &str)> = r.events.iter().map(|e| (e.agency.as_str(), e.method.as_str())).collect();
    assert_eq!(
        who,
        [
            ("human_resources", "/doudi.v1.RecipientExchange/GetRecipient"),
            ("medical_insurance", "/doudi.v1.RecipientExchange/GetRecipient"),
            ("civil_affairs", "/doudi.v1.RecipientExchange/PushFacts"),
        ]
    );
    // An agency without the right lists only its own events and may not ask by person.
    let mut hr = app.client("human_resources").await;
    let e = hr
        .audit
        .list_access_events(pb::ListAccessEventsRequest { id_number: person.clone(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let own = hr.audit.list_access_events(pb::ListAccessEventsRequest::default()).await.unwrap().into_inner();
    assert!(!own.events.is_empty() && own.events.iter().all(|e| e.agency == "human_resources"));
    let e = hr
        .audit
        .list_access_events(pb::ListAccessEventsRequest { agency: "civil_affairs".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // A malformed agency filter is refused naming the field.
    let e = civil
        .audit
        .list_access_events(pb::ListAccessEventsRequest { agency: "Civil Affairs!".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("agency:"), "{}", e.message());
    // Pages of one, newest first, each event once.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let r = civil
            .audit
            .list_access_events(pb::ListAccessEventsRequest {
                page_size: 1,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(r.events.iter().map(|e| e.seq));
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    let mut sorted = seen.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(seen, sorted, "strictly newest first, no repeats");
    assert_eq!(*seen.last().unwrap(), 1);
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn the_chain_names_the_first_altered_deleted_or_reordered_event() {
    let app = spawn_app().await;
    seed(&app).await;
    let mut lg = app.client("leading_group").await;
    let ok = verify(&mut lg).await;
    assert!(ok.valid, "{}", ok.reason);
    assert_eq!(ok.events_checked, 3);
    assert_eq!(ok.first_broken_seq, 0);

    // Altered content: event 2's purpose.
    let second = position(&app, 2).await;
    exec(&app, "UPDATE audit_events SET purpose = 'nothing to see' WHERE seq = 2").await;
    let v = verify(&mut lg).await;
    assert!(!v.valid);
    assert_eq!(broken_at(&v), second);
    assert!(v.reason.starts_with("content altered"), "{}", v.reason);
    app.stop().await;

    // Deleted: event 2 (and its persons).
    let app = spawn_app().await;
    seed(&app).await;
    let second = position(&app, 2).await;
    exec(&app, "DELETE FROM audit_events WHERE seq = 2").await;
    exec(&app, "DELETE FROM audit_persons WHERE seq = 2").await;
    let mut lg = app.client("leading_group").await;
    let v = verify(&mut lg).await;
    assert_eq!(broken_at(&v), second);
    assert!(v.reason.contains("missing"), "{}", v.reason);
    app.stop().await;

    // Reordered: events 2 and 3 swap their content (each keeps its seq).
    let app = spawn_app().await;
    seed(&app).await;
    let second = position(&app, 2).await;
    exec(
        &app,
        "UPDATE audit_events SET agency = CASE seq WHEN 2 THEN (SELECT agency FROM audit_events WHERE seq = 3) \
         ELSE (SELECT agency FROM audit_events WHERE seq = 2) END WHERE seq IN (2, 3)",
    )
    .await;
    let mut lg = app.client("leading_group").await;
    let v = verify(&mut lg).await;
    assert_eq!(broken_at(&v), second, "{}", v.reason);

    // And the command on the database says the same, with exit status 1.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_doudi"))
        .args(["audit", "verify", "--database-url", &app.database_url])
        .env_remove("DOUDI_CONFIG")
        // The suite's own variable (DOUDI_* is configuration to the command, which refuses unknown keys).
        .env_remove("DOUDI_TEST_DATABASE_URL")
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{said}");
    let where_ = match second {
        (0, n) => format!("BROKEN at event {n}:"),
        (lane, n) => format!("BROKEN at event {n} of lane {lane}:"),
    };
    assert!(String::from_utf8_lossy(&out.stdout).contains(&where_), "{said}");
    app.stop().await;

    // Persons altered: a person removed from event 3's record.
    let app = spawn_app().await;
    seed(&app).await;
    let third = position(&app, 3).await;
    exec(&app, "DELETE FROM audit_persons WHERE seq = 3").await;
    let mut lg = app.client("leading_group").await;
    let v = verify(&mut lg).await;
    assert_eq!(broken_at(&v), third);
    assert!(v.reason.starts_with("persons altered"), "{}", v.reason);
    app.stop().await;
}
