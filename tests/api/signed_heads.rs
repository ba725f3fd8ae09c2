//! Signed audit heads (issue 20 item 5, docs/audit-lanes.md "Signed heads"): a head fetched from the hub is checked
//! here with ring from the public key in the certificate directory over bytes written out from the documented form
//! (not by the hub's own functions); `doudi audit verify --against` passes while the chain holds the saved head and
//! fails naming the lane and position once a lane is cut short, an event at the saved position is altered or a lane
//! is rewritten from it; a head signed by another key, or altered after signing, is refused.

use std::time::Duration;

use doudi::client::ConnectArgs;
use doudi::client::audit_head::HeadArgs;
use doudi::grpc::pb;
use doudi::security::audit_head::SignedHead;
use macro_rules_attribute::apply;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::support::*;

const HUAN: &str = "621022101203";

/// A push by civil_affairs and reads by two agencies (lane 0 on SQLite; reads in the process's lane on PostgreSQL).
async fn seed(app: &TestApp, n: u16) -> String {
    let person = id("621022", (1980, 3, 3), n);
    let mut civil = app.client("civil_affairs").await;
    push(&mut civil, vec![with(base(&format!("A-{n}"), &person, HUAN), rural_dibao())]).await.unwrap();
    let mut mi = app.client("medical_insurance").await;
    get(&mut mi, &person, "2023-06-30").await.unwrap();
    let mut hr = app.client("human_resources").await;
    get(&mut hr, &person, "2023-06-30").await.unwrap();
    person
}

/// The signed bytes, written out from the documented form (docs/audit-lanes.md "Signed heads").
fn documented_message(r: &pb::GetSignedHeadResponse) -> Vec<u8> {
    let at = r.signed_at.unwrap();
    let micros = at.seconds * 1_000_000 + i64::from(at.nanos / 1_000);
    let mut fields = vec![micros.to_string(), r.heads.len().to_string()];
    for h in &r.heads {
        fields.extend([h.lane.to_string(), h.seq.to_string(), h.hash.clone()]);
    }
    let mut out = b"doudi-audit-head-v1".to_vec();
    for f in fields {
        out.extend_from_slice(format!("{}:{f};", f.len()).as_bytes());
    }
    out
}

/// Check the signature with ring, from the public key of `audit-signing.pem` in the hub's certificate directory.
fn verify_independently(app: &TestApp, r: &pb::GetSignedHeadResponse) {
    let pem = std::fs::read(app.dir.path().join("audit-signing.pem")).unwrap();
    assert_eq!(r.signer_certificate.as_bytes(), &pem[..], "the certificate of the hub's audit signer");
    let der = CertificateDer::from_pem_slice(&pem).unwrap();
    let (_, cert) = X509Certificate::from_der(der.as_ref()).unwrap();
    let key = cert.public_key().subject_public_key.data.as_ref();
    assert_eq!(r.format, "doudi-audit-head-v1");
    assert_eq!(r.algorithm, "ecdsa-p256-sha256");
    assert_eq!(r.message, documented_message(r), "message is the documented form of the fields");
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, key)
        .verify(&documented_message(r), &r.signature)
        .expect("the signature verifies with the signer's public key");
    let mut other = r.clone();
    other.heads[0].seq += 1;
    assert!(
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, key)
            .verify(&documented_message(&other), &r.signature)
            .is_err(),
        "and not over other heads"
    );
}

async fn signed_head(c: &mut doudi::client::Clients, fresh: bool) -> pb::GetSignedHeadResponse {
    c.audit.get_signed_head(pb::GetSignedHeadRequest { fresh }).await.unwrap().into_inner()
}

/// Run statements straight on the hub's database (SQLite or PostgreSQL), as someone with database access would:
/// `sql` with `$1` = lane and `$2` = position.
async fn exec(app: &TestApp, sql: &'static str, lane: i32, seq: i64) {
    match app.app_hub.store.pg_pool() {
        Some(pg) => sqlx::query(sql).bind(lane).bind(seq).execute(pg).await.map(|_| ()),
        None => {
            sqlx::query(sql).bind(lane).bind(seq).execute(app.app_hub.store.sqlite_pool().unwrap()).await.map(|_| ())
        }
    }
    .unwrap();
}

/// Delete the events of `lane` from position `from` on, with their persons: the lane is cut short there.
async fn cut(app: &TestApp, lane: i32, from: i64) {
    exec(
        app,
        "DELETE FROM audit_persons WHERE seq IN (SELECT seq FROM audit_events WHERE lane = $1 AND lane_seq >= $2)",
        lane,
        from,
    )
    .await;
    exec(app, "DELETE FROM audit_events WHERE lane = $1 AND lane_seq >= $2", lane, from).await;
}

/// `doudi ARGS…` as an operator runs it on the hub's database, with the tests' trust domain; `(exit code, output)`.
fn doudi(args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_doudi"))
        .args(args)
        .env_remove("DOUDI_CONFIG")
        // The suite's own variable (DOUDI_* is configuration to the command, which refuses unknown keys).
        .env_remove("DOUDI_TEST_DATABASE_URL")
        .env("DOUDI_TRUST_DOMAIN", TRUST_DOMAIN)
        .output()
        .unwrap();
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn verify_against(app: &TestApp, file: &std::path::Path) -> (Option<i32>, String) {
    let ca = app.dir.path().join("ca.pem");
    doudi(&[
        "audit",
        "verify",
        "--database-url",
        &app.database_url,
        "--against",
        file.to_str().unwrap(),
        "--ca",
        ca.to_str().unwrap(),
    ])
}

/// A directory holding ca.pem, AGENCY.pem and AGENCY.key, as `--certs-dir` expects.
fn agency_dir(app: &TestApp, agency: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let id = app.identity(agency, None);
    std::fs::write(d.path().join("ca.pem"), &id.ca_pem).unwrap();
    std::fs::write(d.path().join(format!("{agency}.pem")), &id.cert_pem).unwrap();
    std::fs::write(d.path().join(format!("{agency}.key")), &id.key_pem).unwrap();
    d
}

fn heads_of(v: &[pb::AuditLaneHead]) -> Vec<(i32, i64, String)> {
    v.iter().map(|h| (h.lane, h.seq, h.hash.clone())).collect()
}

#[apply(e2e!)]
#[tokio::test]
async fn a_signed_head_verifies_with_the_ca_and_proves_the_chain_still_holds_it() {
    let app = spawn_app().await;
    let person = seed(&app, 7).await;

    // Any agency may ask; none is kept yet, so the heads are signed now; they are the heads VerifyAuditChain reports.
    let mut edu = app.client("education").await;
    let first = signed_head(&mut edu, false).await;
    verify_independently(&app, &first);
    let chain = edu.audit.verify_audit_chain(pb::VerifyAuditChainRequest {}).await.unwrap().into_inner();
    assert!(chain.valid, "{}", chain.reason);
    assert_eq!(heads_of(&first.heads), heads_of(&chain.heads));
    // Kept: asked again without `fresh`, the same signed head; with `fresh`, signed again now over the same heads.
    assert_eq!(signed_head(&mut edu, false).await, first);
    let again = signed_head(&mut edu, true).await;
    verify_independently(&app, &again);
    assert_eq!(heads_of(&again.heads), heads_of(&first.heads));
    assert!(again.signed_at.unwrap().seconds >= first.signed_at.unwrap().seconds);

    // The agency keeps it with the CLI (which checks it against its CA before saving).
    let certs = agency_dir(&app, "education");
    let saved = app.dir.path().join("head.json");
    doudi::client::audit_head::run(HeadArgs {
        connect: ConnectArgs::from_dir(&app.server, certs.path(), "education"),
        save: Some(saved.clone()),
        fresh: false,
    })
    .await
    .unwrap();
    let kept = SignedHead::from_json(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(doudi::grpc::audit::signed_head_to_pb(&kept), first, "the file holds the head the hub signed");

    // More reads and pushes; the chain still holds the saved head.
    seed(&app, 8).await;
    let mut mi = app.client("medical_insurance").await;
    get(&mut mi, &person, "2023-06-30").await.unwrap();
    let (code, said) = verify_against(&app, &saved);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("valid: the chain verifies and every lane still holds the saved head"), "{said}");

    // The newest events of a lane cut off from the saved position on: the shorter lane is a valid chain (plain
    // verification passes), but the saved head finds the cut, naming the lane and the position.
    let last = kept.heads.last().unwrap();
    cut(&app, last.lane, last.seq).await;
    let (code, said) = doudi(&["audit", "verify", "--database-url", &app.database_url]);
    assert_eq!(code, Some(0), "a cut lane alone verifies: {said}");
    let (code, said) = verify_against(&app, &saved);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains(&format!("BROKEN against {}: lane {}, event {}:", saved.display(), last.lane, last.seq)),
        "{said}"
    );
    assert!(said.contains(&format!("lane {} was cut short", last.lane)), "{said}");
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn a_saved_head_finds_an_event_altered_or_a_lane_rewritten_at_its_position() {
    let app = spawn_app().await;
    seed(&app, 7).await;
    let mut lg = app.client("leading_group").await;
    let head = doudi::grpc::audit::signed_head_from_pb(&signed_head(&mut lg, true).await).unwrap();
    let saved = app.dir.path().join("head.json");
    std::fs::write(&saved, head.to_json()).unwrap();
    seed(&app, 8).await;
    let (code, said) = verify_against(&app, &saved);
    assert_eq!(code, Some(0), "{said}");

    // Lane 0 holds the push (on either backend); alter its event at the saved position.
    let lane0 = head.heads.iter().find(|h| h.lane == 0).copied().expect("lane 0 is signed");
    exec(&app, "UPDATE audit_events SET purpose = 'nothing to see' WHERE lane = $1 AND lane_seq = $2", 0, lane0.seq)
        .await;
    let (code, said) = verify_against(&app, &saved);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains(&format!("lane 0, event {}:", lane0.seq)), "{said}");
    assert!(said.contains("content altered"), "{said}");

    // Lane 0 rewritten from the saved position: its events from there deleted, and the hub appends new ones in their
    // place. Every link is valid again, but the event at the saved position is another one.
    cut(&app, 0, lane0.seq).await;
    let mut civil = app.client("civil_affairs").await;
    let person = id("621022", (1980, 3, 3), 9);
    push(&mut civil, vec![with(base("A-9", &person, HUAN), rural_dibao())]).await.unwrap();
    let (code, said) = doudi(&["audit", "verify", "--database-url", &app.database_url]);
    assert_eq!(code, Some(0), "the rewritten chain alone verifies: {said}");
    let (code, said) = verify_against(&app, &saved);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains(&format!("lane 0, event {}:", lane0.seq)), "{said}");
    assert!(said.contains("lane 0 was rewritten"), "{said}");
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn a_head_signed_by_another_key_or_altered_after_signing_is_refused() {
    let app = spawn_app().await;
    seed(&app, 7).await;
    let mut edu = app.client("education").await;
    let genuine = doudi::grpc::audit::signed_head_from_pb(&signed_head(&mut edu, true).await).unwrap();
    let file = app.dir.path().join("head.json");
    let refused = |head: &SignedHead| {
        std::fs::write(&file, head.to_json()).unwrap();
        let (code, said) = verify_against(&app, &file);
        assert_eq!(code, Some(1), "{said}");
        assert!(said.contains("REFUSED"), "{said}");
        said
    };

    // The same heads signed by another CA's audit signer.
    let other_ca = doudi::security::certs::Ca::generate("another CA").unwrap();
    let stranger = other_ca.issue_audit_signer(TRUST_DOMAIN).unwrap();
    let forged = doudi::security::audit_head::HeadSigner::from_pem(&stranger.key_pem, &stranger.cert_pem)
        .unwrap()
        .sign(genuine.signed_at_micros, &genuine.heads);
    assert!(refused(&forged).contains("not issued by the CA"));

    // The hub's CA, but a signer for another trust domain.
    let elsewhere = app.ca.issue_audit_signer("elsewhere.invalid").unwrap();
    let forged = doudi::security::audit_head::HeadSigner::from_pem(&elsewhere.key_pem, &elsewhere.cert_pem)
        .unwrap()
        .sign(genuine.signed_at_micros, &genuine.heads);
    assert!(refused(&forged).contains("not the audit signer"));

    // The genuine signature over heads changed afterwards (a later position claimed for a lane).
    let mut altered = genuine.clone();
    altered.heads[0].seq += 1;
    assert!(refused(&altered).contains("signature does not verify"));

    // The genuine file passes.
    std::fs::write(&file, genuine.to_json()).unwrap();
    let (code, said) = verify_against(&app, &file);
    assert_eq!(code, Some(0), "{said}");
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn the_hub_signs_at_an_interval_keeps_only_changed_heads_and_reports_the_signers_age() {
    let app = spawn_app_with(|c| {
        c.audit_head_sign_secs = 1;
        c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    seed(&app, 7).await;
    let store = &app.app_hub.store;
    let current = store.audit_lane_heads().await.unwrap();
    let mut kept = None;
    for _ in 0..100 {
        if let Some(h) = store.newest_signed_head().await.unwrap()
            && h.heads == current
        {
            kept = Some(h);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let kept = kept.expect("the interval signer signed the heads within 5 s");
    let count = || async {
        let sql = "SELECT COUNT(*) FROM audit_signed_heads";
        match store.pg_pool() {
            Some(pg) => sqlx::query_scalar::<_, i64>(sql).fetch_one(pg).await.unwrap(),
            None => sqlx::query_scalar::<_, i64>(sql).fetch_one(store.sqlite_pool().unwrap()).await.unwrap(),
        }
    };
    let rows = count().await;
    // An idle hub keeps no more signed heads, but its signer keeps running: the age stays small.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(count().await, rows, "unchanged heads are not kept again");
    let mut edu = app.client("education").await;
    let r = signed_head(&mut edu, false).await;
    assert_eq!(doudi::grpc::audit::signed_head_from_pb(&r).unwrap(), kept);
    verify_independently(&app, &r);
    let text = {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut conn = tokio::net::TcpStream::connect(app.metrics_addr.unwrap()).await.unwrap();
        conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut raw = String::new();
        conn.read_to_string(&mut raw).await.unwrap();
        raw
    };
    let age: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("doudi_audit_head_sign_age_seconds "))
        .expect("the gauge is exposed")
        .trim()
        .parse()
        .unwrap();
    assert!(age <= 2.0, "the signer ran within the last interval or two: age {age}");
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn a_hub_without_an_audit_signer_serves_refuses_to_sign_and_its_sign_age_grows() {
    // The TLS files where they are, but a certs_dir without audit-signing.key.
    let empty = tempfile::tempdir().unwrap();
    let empty_path = empty.path().to_owned();
    let app = spawn_app_with(|c| {
        c.tls_ca = Some(c.certs_dir.join("ca.pem"));
        c.tls_cert = Some(c.certs_dir.join("server.pem"));
        c.tls_key = Some(c.certs_dir.join("server.key"));
        c.certs_dir = empty_path;
        c.audit_head_sign_secs = 1;
        c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    seed(&app, 7).await;
    let mut edu = app.client("education").await;
    for fresh in [false, true] {
        let s = edu.audit.get_signed_head(pb::GetSignedHeadRequest { fresh }).await.unwrap_err();
        assert_eq!(s.code(), tonic::Code::FailedPrecondition, "{s:?}");
        assert!(s.message().contains("audit-signing.key"), "{}", s.message());
        assert!(s.message().contains("doudi certs audit-signer"), "{}", s.message());
    }
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let text = {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut conn = tokio::net::TcpStream::connect(app.metrics_addr.unwrap()).await.unwrap();
        conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut raw = String::new();
        conn.read_to_string(&mut raw).await.unwrap();
        raw
    };
    let age: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("doudi_audit_head_sign_age_seconds "))
        .expect("the gauge is exposed")
        .trim()
        .parse()
        .unwrap();
    assert!(age >= 2.0, "no signer: the age grows from the start ({age})");
    app.stop().await;
    drop(empty);
}
