//! Refusals on record (issue 20 item 2, docs/refusals.md): PERMISSION_DENIED, UNAUTHENTICATED, quota refusals and
//! client certificates refused at the TLS handshake are audit events, one per (kind, method, peer, address, minute)
//! carrying the count; ListAccessEvents filters them by outcome; the chain keeps verifying.
//!
//! The refusal log's clock is fixed (`hub.refusals.clock`) so that each test chooses its minute; the events are then
//! written as the hub writes them when a minute is over (`flush` after the clock moved on) or at shutdown
//! (`flush_all`). Expected values are the spec's (docs/spec/security.md: who may read what) and the counts each test
//! makes.

use std::time::Duration;

use chrono::TimeZone as _;
use doudi::client::{ClientIdentity, Clients, connect};
use doudi::grpc::pb;
use doudi::server::refusals::RefusalKind;
use macro_rules_attribute::apply;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use sha2::Digest as _;
use tonic::Code;

use crate::support::*;

const HUAN: &str = "621022101203";

fn minute(h: u32, m: u32, s: u32) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.with_ymd_and_hms(2026, 12, 6, h, m, s).unwrap()
}

/// Fix the refusal log's clock at 10:00:`s` (2026-12-06).
fn at_ten(app: &TestApp, s: u32) {
    app.app_hub.refusals.clock.set(Some(minute(10, 0, s)));
}

/// Move the clock past 10:00 and write that minute's events as the hub's flusher does; returns how many.
async fn minute_over(app: &TestApp) -> usize {
    app.app_hub.refusals.clock.set(Some(minute(10, 1, 0)));
    app.app_hub.refusals.flush(&app.app_hub.store).await
}

/// Wait until the hub has counted `n` refusals of `kind` (handshake refusals are recorded by the accept loop's task,
/// which may run after the client saw the connection end).
async fn wait_recorded(app: &TestApp, kind: RefusalKind, n: u64) {
    for _ in 0..200 {
        if app.app_hub.refusals.recorded(kind) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{} refusals of kind {} recorded, expected {n}", app.app_hub.refusals.recorded(kind), kind.as_str());
}

async fn list(c: &mut Clients, outcome: &str) -> Vec<pb::AccessEvent> {
    c.audit
        .list_access_events(pb::ListAccessEventsRequest {
            outcome: outcome.into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events
}

fn spiffe(agency: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/agency/{agency}")
}

const GET_RECIPIENT: &str = "/doudi.v1.RecipientExchange/GetRecipient";
const LIST_EVENTS: &str = "/doudi.v1.Audit/ListAccessEvents";

#[apply(e2e!)]
#[tokio::test]
async fn refused_reads_in_one_minute_are_one_event_each_with_their_count_and_the_filter_returns_only_refusals() {
    let app = spawn_app().await;
    let person = id("621022", (1980, 3, 3), 7);
    let mut civil = app.client("civil_affairs").await;
    push(&mut civil, vec![with(base("A-7", &person, HUAN), rural_dibao())]).await.unwrap();
    get(&mut civil, &person, "2023-06-30").await.unwrap();

    at_ten(&app, 10);
    // leading_group may read aggregates only (docs/spec/security.md): 5 GetRecipient refused.
    let mut lg = app.client("leading_group").await;
    for _ in 0..5 {
        assert_eq!(get(&mut lg, &person, "2023-06-30").await.unwrap_err().code(), Code::PermissionDenied);
    }
    // education may not list access events by person (civil_affairs only): 2 refused.
    let mut edu = app.client("education").await;
    for _ in 0..2 {
        let s = edu
            .audit
            .list_access_events(pb::ListAccessEventsRequest { id_number: person.clone(), ..Default::default() })
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied);
    }
    // Nothing is written while the minute lasts.
    assert_eq!(app.app_hub.refusals.flush(&app.app_hub.store).await, 0);
    assert!(list(&mut civil, "REFUSED").await.is_empty());
    assert_eq!(minute_over(&app).await, 2, "one event per peer, kind and method");

    // civil_affairs (read_access_events: the audit administrator until operator roles exist) lists every refusal.
    let refused = list(&mut civil, "REFUSED").await;
    assert_eq!(refused.len(), 2, "{refused:#?}");
    // Newest first: the events were written in key order (kind, peer, address, method): education before
    // leading_group.
    let (e, l) = (&refused[1], &refused[0]);
    assert_eq!(l.agency, "leading_group");
    assert_eq!(l.method, GET_RECIPIENT);
    assert_eq!(l.outcome, "REFUSED PERMISSION_DENIED count=5");
    assert_eq!(l.person_count, 0, "a refusal names no person");
    assert!(
        l.purpose.starts_with(&format!(
            "minute=2026-12-06T10:00Z; peer={}; addr=127.0.0.1; first=10:00:10.000; last=10:00:10.000; reason=",
            spiffe("leading_group")
        )),
        "{}",
        l.purpose
    );
    assert_eq!(e.agency, "education");
    assert_eq!(e.method, LIST_EVENTS);
    assert_eq!(e.outcome, "REFUSED PERMISSION_DENIED count=2");
    assert!(e.purpose.contains(&format!("peer={};", spiffe("education"))), "{}", e.purpose);
    assert!(e.purpose.contains("reason=agency education may not list access events by person"), "{}", e.purpose);

    // By kind: the same two; other kinds: none.
    assert_eq!(list(&mut civil, "PERMISSION_DENIED").await.len(), 2);
    for kind in ["UNAUTHENTICATED", "RESOURCE_EXHAUSTED", "HANDSHAKE"] {
        assert!(list(&mut civil, kind).await.is_empty(), "{kind}");
    }
    // ANSWERED: the push and the read, no refusal.
    let answered = list(&mut civil, "ANSWERED").await;
    assert!(answered.iter().all(|e| !e.outcome.starts_with("REFUSED")), "{answered:#?}");
    assert!(answered.iter().any(|e| e.method == GET_RECIPIENT && e.agency == "civil_affairs"));
    assert_eq!(answered.len() + refused.len(), list(&mut civil, "").await.len());
    // An agency without the right lists only its own refusals.
    let own = list(&mut lg, "REFUSED").await;
    assert_eq!(own.len(), 1);
    assert_eq!(own[0].outcome, "REFUSED PERMISSION_DENIED count=5");
    // Another value is refused naming the field.
    let s = civil
        .audit
        .list_access_events(pb::ListAccessEventsRequest { outcome: "DENIED".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().starts_with("outcome:"), "{}", s.message());

    // The listing of refusals has its partial index (migration 0013) on either backend.
    let store = &app.app_hub.store;
    let indexes = match store.pg_pool() {
        Some(pg) => {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'audit_events_refusals'")
                .fetch_one(pg)
                .await
                .unwrap()
        }
        None => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'audit_events_refusals'",
        )
        .fetch_one(store.sqlite_pool().unwrap())
        .await
        .unwrap(),
    };
    assert_eq!(indexes, 1);

    // The chain still verifies, refusals included.
    let chain = civil.audit.verify_audit_chain(pb::VerifyAuditChainRequest {}).await.unwrap().into_inner();
    assert!(chain.valid, "{}", chain.reason);
    assert_eq!(chain.events_checked as usize, list(&mut civil, "").await.len());
    app.stop().await;
}

/// A raw TLS connection to the hub presenting `cert` (PEM, with `key`), or none; waits for the hub to end it.
async fn handshake(app: &TestApp, cert: Option<(&str, &str)>) {
    let ca = CertificateDer::from_pem_slice(app.ca.cert_pem().as_bytes()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let builder =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
    let mut config = match cert {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(app.server.trim_start_matches("https://")).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    // TLS 1.3: the client may finish before the server has checked its certificate; the server then ends it.
    if let Ok(mut tls) = connector.connect(name, tcp).await {
        use tokio::io::AsyncReadExt as _;
        let mut buf = [0u8; 64];
        let _ = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf)).await;
    }
}

fn fingerprint(cert_pem: &str) -> String {
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    hex::encode(sha2::Sha256::digest(der.as_ref()))
}

#[apply(e2e!)]
#[tokio::test]
async fn unknown_revoked_and_missing_certificates_are_recorded_at_the_handshake() {
    let (app, revoked) = spawn_app_with_revoked("education").await;
    at_ten(&app, 20);
    let stranger = doudi::security::certs::Ca::generate("someone else")
        .unwrap()
        .issue_client(TRUST_DOMAIN, "civil_affairs", None)
        .unwrap();
    for _ in 0..3 {
        handshake(&app, Some((&stranger.cert_pem, &stranger.key_pem))).await;
    }
    handshake(&app, Some((&revoked.cert_pem, &revoked.key_pem))).await;
    handshake(&app, None).await;
    wait_recorded(&app, RefusalKind::Handshake, 5).await;
    assert_eq!(minute_over(&app).await, 3, "the stranger's three handshakes are one event");

    let mut civil = app.client("civil_affairs").await;
    let events = list(&mut civil, "HANDSHAKE").await;
    assert_eq!(events.len(), 3, "{events:#?}");
    for e in &events {
        assert_eq!(e.method, "tls.handshake");
        assert_eq!(e.agency, "unknown");
        assert!(e.purpose.contains("; addr=127.0.0.1;"), "{}", e.purpose);
    }
    let by_peer = |peer: &str| {
        events.iter().find(|e| e.purpose.contains(&format!("; peer={peer};"))).unwrap_or_else(|| panic!("{peer}"))
    };
    let s = by_peer(&format!("sha256:{}", fingerprint(&stranger.cert_pem)));
    assert_eq!(s.outcome, "REFUSED HANDSHAKE count=3");
    assert!(s.purpose.contains("; subject=CN=civil_affairs, O=doudi;"), "{}", s.purpose);
    assert!(s.purpose.contains("UnknownIssuer"), "{}", s.purpose);
    let r = by_peer(&format!("sha256:{}", fingerprint(&revoked.cert_pem)));
    assert_eq!(r.outcome, "REFUSED HANDSHAKE count=1");
    assert!(r.purpose.contains("; subject=CN=education, O=doudi;"), "{}", r.purpose);
    assert!(r.purpose.contains("Revoked"), "{}", r.purpose);
    let n = by_peer("none");
    assert_eq!(n.outcome, "REFUSED HANDSHAKE count=1");
    let chain = civil.audit.verify_audit_chain(pb::VerifyAuditChainRequest {}).await.unwrap().into_inner();
    assert!(chain.valid, "{}", chain.reason);
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn unauthenticated_and_quota_refusals_are_recorded() {
    // 1 request a second per agency, bursts of 3.
    let app = spawn_app_with(|c| {
        c.rate_per_agency = 1;
        c.rate_burst = 3;
    })
    .await;
    at_ten(&app, 30);
    // Chains to the CA but names no agency this hub knows: UNAUTHENTICATED, twice.
    let tax_cert = app.ca.issue_client(TRUST_DOMAIN, "tax_bureau", None).unwrap();
    let mut tax = client_of(&app, &identity_of(&app, &tax_cert)).await;
    for _ in 0..2 {
        assert_eq!(tax.audit.who_am_i(pb::WhoAmIRequest {}).await.unwrap_err().code(), Code::Unauthenticated);
    }
    // education over its quota: count what the client saw refused.
    let mut edu = app.client("education").await;
    let mut over = 0;
    for _ in 0..8 {
        match edu.audit.who_am_i(pb::WhoAmIRequest {}).await {
            Ok(_) => {}
            Err(s) => {
                assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
                over += 1;
            }
        }
    }
    assert!(over >= 1, "8 calls at once are over a burst of 3");
    assert_eq!(minute_over(&app).await, 2);

    let mut civil = app.client("civil_affairs").await;
    let un = list(&mut civil, "UNAUTHENTICATED").await;
    assert_eq!(un.len(), 1, "{un:#?}");
    assert_eq!(un[0].outcome, "REFUSED UNAUTHENTICATED count=2");
    assert_eq!(un[0].agency, "unknown");
    assert_eq!(un[0].method, "/doudi.v1.Audit/WhoAmI");
    // The peer: the SHA-256 of the certificate's DER (computed here from the PEM), and its subject.
    assert!(
        un[0].purpose.contains(&format!("; peer=sha256:{};", fingerprint(&tax_cert.cert_pem))),
        "{}",
        un[0].purpose
    );
    assert!(un[0].purpose.contains("; subject=CN=tax_bureau, O=doudi;"), "{}", un[0].purpose);
    assert!(un[0].purpose.contains("tax_bureau is not known"), "{}", un[0].purpose);
    let quota = list(&mut civil, "RESOURCE_EXHAUSTED").await;
    assert_eq!(quota.len(), 1, "{quota:#?}");
    assert_eq!(quota[0].outcome, format!("REFUSED RESOURCE_EXHAUSTED count={over}"));
    assert_eq!(quota[0].agency, "education");
    assert_eq!(quota[0].method, "/doudi.v1.Audit/WhoAmI");
    assert!(quota[0].purpose.contains(&format!("; peer={};", spiffe("education"))), "{}", quota[0].purpose);
    assert!(quota[0].purpose.contains("over its quota of 1 requests per second"), "{}", quota[0].purpose);
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn peers_beyond_the_cap_are_counted_in_one_overflow_event_and_shutdown_writes_what_is_pending() {
    let mut app = spawn_app_with(|c| c.audit_refusal_peers_per_minute = 1).await;
    at_ten(&app, 40);
    let person = id("621022", (1980, 3, 3), 8);
    // leading_group first (the one key of the minute), then two other peers: overflow.
    let mut lg = app.client("leading_group").await;
    for _ in 0..3 {
        assert_eq!(get(&mut lg, &person, "2023-06-30").await.unwrap_err().code(), Code::PermissionDenied);
    }
    for agency in ["education", "human_resources"] {
        let mut c = app.client(agency).await;
        let s = c
            .audit
            .list_access_events(pb::ListAccessEventsRequest { id_number: person.clone(), ..Default::default() })
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied);
    }
    // Not yet written: the minute is not over. The hub shuts down and writes it.
    app.begin_stop();
    app.join().await.unwrap();
    let store = doudi::store::Store::open(&app.database_url).await.unwrap();
    let filter =
        doudi::store::AuditFilter { outcome: Some(doudi::store::OutcomeFilter::Refused), ..Default::default() };
    let events = store.list_audit_events(&filter, None, 100).await.unwrap();
    assert_eq!(events.len(), 2, "{events:#?}");
    let overflow = &events[0];
    assert_eq!(overflow.outcome, "REFUSED PERMISSION_DENIED count=2");
    assert_eq!((overflow.agency.as_str(), overflow.method.as_str()), ("unknown", "*"));
    assert!(overflow.purpose.starts_with("minute=2026-12-06T10:00Z; peer=*;"), "{}", overflow.purpose);
    assert_eq!(events[1].outcome, "REFUSED PERMISSION_DENIED count=3");
    assert_eq!(events[1].agency, "leading_group");
    let chain = store.verify_audit_chain().await.unwrap();
    assert!(chain.first_broken.is_none(), "{chain:?}");
    store.close().await;
}

/// `issued` (a certificate of the hub's CA) as a client identity.
fn identity_of(app: &TestApp, issued: &doudi::security::certs::Issued) -> ClientIdentity {
    ClientIdentity {
        ca_pem: app.ca.cert_pem().as_bytes().to_vec(),
        cert_pem: issued.cert_pem.clone().into_bytes(),
        key_pem: issued.key_pem.clone().into_bytes(),
    }
}

async fn client_of(app: &TestApp, id: &ClientIdentity) -> Clients {
    Clients::new(connect(&app.server, "localhost", id).await.unwrap(), 1 << 20)
}

/// One MatchRecipients call of these messages: the answers received, and how it ended.
async fn match_call(c: &mut Clients, messages: Vec<Vec<String>>) -> (usize, Result<(), tonic::Status>) {
    let messages = messages.into_iter().map(|ids| pb::MatchRecipientsRequest {
        id_numbers: ids,
        purpose: "check".into(),
        as_of: String::new(),
    });
    let mut answers = match c.exchange.match_recipients(futures::stream::iter(messages)).await {
        Ok(r) => r.into_inner(),
        Err(s) => return (0, Err(s)),
    };
    let mut got = 0;
    loop {
        match answers.message().await {
            Ok(Some(_)) => got += 1,
            Ok(None) => return (got, Ok(())),
            Err(s) => return (got, Err(s)),
        }
    }
}

#[apply(e2e!)]
#[tokio::test]
async fn a_stream_refused_after_answers_is_recorded_from_its_trailers_and_other_errors_are_not() {
    let app = spawn_app_with(|c| c.match_max_ids_per_call = 2).await;
    at_ten(&app, 50);
    let p = id("621022", (1980, 3, 3), 9);
    let mut civil = app.client("civil_affairs").await;
    // One ID number answered, then a message that would pass the per-call cap of 2: RESOURCE_EXHAUSTED
    // (QUOTA_EXCEEDED) in the trailers, after an answer.
    let (got, end) = match_call(&mut civil, vec![vec![p.clone()], vec![p.clone(), p.clone()]]).await;
    assert_eq!(got, 1);
    assert_eq!(end.unwrap_err().code(), Code::ResourceExhausted);
    // leading_group may not compare (aggregates only): PERMISSION_DENIED.
    let mut lg = app.client("leading_group").await;
    assert_eq!(match_call(&mut lg, vec![vec![p.clone()]]).await.1.unwrap_err().code(), Code::PermissionDenied);
    // A client error is no refusal on record: an invalid ID number.
    let (_, end) = match_call(&mut civil, vec![vec!["12345".into()]]).await;
    let code = end.err().map(|s| s.code());
    assert_ne!(code, Some(Code::PermissionDenied));
    assert_eq!(minute_over(&app).await, 2);

    let refused = list(&mut civil, "REFUSED").await;
    let got: Vec<(&str, &str, &str)> =
        refused.iter().map(|e| (e.agency.as_str(), e.method.as_str(), e.outcome.as_str())).collect();
    let method = "/doudi.v1.RecipientExchange/MatchRecipients";
    assert_eq!(
        got,
        [
            ("civil_affairs", method, "REFUSED RESOURCE_EXHAUSTED count=1"),
            ("leading_group", method, "REFUSED PERMISSION_DENIED count=1"),
        ]
    );
    assert!(refused[0].purpose.contains("match_max_ids_per_call"), "{}", refused[0].purpose);
    app.stop().await;
}
