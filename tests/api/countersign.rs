//! Countersigning the frozen quarter (issue 19 item 2, docs/countersign.md): partner agencies sign the snapshot's
//! content hash with their client keys, the hub checks each signature (hash, certificate chain and CRL, agency, frozen
//! quarter) before keeping it, and VerifySnapshot, `doudi snapshot verify` (on the hub's database and `--offline` on an
//! export with only the CA certificate) report each agency as VALID, MISSING or INVALID.
//!
//! Expected values come from the issue and docs/countersign.md: the partner agencies are the five that push facts in
//! the access matrix (civil_affairs, disability_federation, education, human_resources, medical_insurance; SECURITY.md),
//! one audit event per kept signature, version 1 for a first signature and 2 for a re-sign.

use std::path::Path;

use base64::Engine as _;
use doudi::client::ConnectArgs;
use doudi::grpc::pb;
use doudi::security::countersign::{AgencySigner, Countersignature};
use macro_rules_attribute::apply;
use tonic::Code;

use crate::support::*;

const Q: &str = "2023Q2";

/// The partner agencies (those that push facts in crates/domain/src/access_policy.toml), in code order.
const PARTNERS: [&str; 5] =
    ["civil_affairs", "disability_federation", "education", "human_resources", "medical_insurance"];

/// A directory holding ca.pem, AGENCY.pem and AGENCY.key, as `--certs-dir` expects.
fn certs_dir(app: &TestApp, agency: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let id = app.identity(agency, None);
    std::fs::write(d.path().join("ca.pem"), &id.ca_pem).unwrap();
    std::fs::write(d.path().join(format!("{agency}.pem")), &id.cert_pem).unwrap();
    std::fs::write(d.path().join(format!("{agency}.key")), &id.key_pem).unwrap();
    d
}

/// A hub with 2023Q2 frozen (an empty quarter: the signatures are about its content hash, not its figures).
async fn frozen() -> (TestApp, String) {
    let app = spawn_app().await;
    let mut civil = app.client("civil_affairs").await;
    let snap = civil.coordination.create_snapshot(pb::CreateSnapshotRequest { quarter: Q.into() }).await.unwrap();
    (app, snap.into_inner().content_hash)
}

fn hash32(hex_text: &str) -> [u8; 32] {
    doudi::security::countersign::hex32(hex_text).unwrap()
}

fn now_micros() -> i64 {
    doudi::store::to_micros(chrono::Utc::now())
}

/// A signature by a fresh certificate of `agency` (key and certificate as `doudi certs init` issues them).
fn signed(app: &TestApp, agency: &str, hash: [u8; 32]) -> Countersignature {
    let id = app.identity(agency, None);
    AgencySigner::from_pem(&id.key_pem, &id.cert_pem).unwrap().sign(Q, hash, now_micros())
}

fn request(s: &Countersignature) -> pb::SignSnapshotRequest {
    pb::SignSnapshotRequest {
        quarter: s.quarter.clone(),
        content_hash: hex::encode(s.content_hash),
        signed_at: Some(doudi::grpc::convert::timestamp(doudi::store::from_micros(s.signed_at_micros))),
        signature: s.signature.clone(),
        signer_certificate: s.signer_cert_der.clone(),
    }
}

async fn submit(app: &TestApp, caller: &str, s: &Countersignature) -> Result<pb::SnapshotSignature, tonic::Status> {
    let mut c = app.client(caller).await;
    c.coordination.sign_snapshot(request(s)).await.map(|r| r.into_inner())
}

/// (agency, status name, problem) of each signature, in the order given.
fn statuses(sigs: &[pb::SnapshotSignature]) -> Vec<(String, &'static str, String)> {
    sigs.iter()
        .map(|s| {
            let status = match pb::SignatureStatus::try_from(s.status).unwrap() {
                pb::SignatureStatus::Valid => "VALID",
                pb::SignatureStatus::Missing => "MISSING",
                pb::SignatureStatus::Invalid => "INVALID",
                pb::SignatureStatus::Unspecified => "UNSPECIFIED",
            };
            (s.agency.clone(), status, s.problem.clone())
        })
        .collect()
}

fn names<'a>(v: &'a [(String, &'static str, String)]) -> Vec<(&'a str, &'a str)> {
    v.iter().map(|(a, s, _)| (a.as_str(), *s)).collect()
}

/// Run a statement on the hub's database behind its back (a tamperer).
async fn exec(app: &TestApp, sql: &'static str) -> u64 {
    let store = &app.app_hub.store;
    match store.pg_pool() {
        Some(pg) => sqlx::query(sql).execute(pg).await.unwrap().rows_affected(),
        None => sqlx::query(sql).execute(store.sqlite_pool().unwrap()).await.unwrap().rows_affected(),
    }
}

/// Replace the medical_insurance signature with education's: a signature that is well-formed but not over
/// medical_insurance's message.
const TAMPER: &str = "UPDATE snapshot_signatures SET signature = (SELECT e.signature FROM snapshot_signatures e \
                      WHERE e.agency = 'education' ORDER BY e.version DESC LIMIT 1) WHERE agency = 'medical_insurance'";

#[apply(e2e!)]
#[tokio::test]
async fn four_agencies_sign_one_is_missing_and_a_tampered_signature_is_invalid() {
    let (app, hash_hex) = frozen().await;
    let hash = hash32(&hash_hex);

    // civil_affairs signs with the command (GetSnapshot, sign with CERTS_DIR/civil_affairs.key, SignSnapshot).
    let certs = certs_dir(&app, "civil_affairs");
    let args = doudi::client::countersign::SignArgs {
        connect: ConnectArgs::from_dir(&app.server, certs.path(), "civil_affairs"),
        quarter: Q.into(),
    };
    let before = app.audit_events().await;
    let kept = doudi::client::countersign::sign(&args).await.unwrap();
    assert_eq!((kept.agency.as_str(), kept.version, kept.content_hash.as_str()), ("civil_affairs", 1, &*hash_hex));
    assert_eq!(kept.status, pb::SignatureStatus::Valid as i32);
    assert_eq!(app.audit_events().await, before + 1, "a kept signature is one audit event");

    // Three more partners sign over the API; disability_federation does not sign.
    for agency in ["human_resources", "education", "medical_insurance"] {
        let k = submit(&app, agency, &signed(&app, agency, hash)).await.unwrap();
        assert_eq!((k.agency.as_str(), k.version), (agency, 1));
    }
    assert_eq!(app.audit_events().await, before + 4);
    // A re-sign adds version 2; the newest version is the agency's signature.
    let k = submit(&app, "education", &signed(&app, "education", hash)).await.unwrap();
    assert_eq!(k.version, 2);

    let mut lg = app.client("leading_group").await;
    let v = lg.coordination.verify_snapshot(pb::VerifySnapshotRequest { quarter: Q.into() }).await.unwrap();
    let v = v.into_inner();
    assert!(v.valid, "{:?}", v.differences);
    let want = vec![
        ("civil_affairs", "VALID"),
        ("disability_federation", "MISSING"),
        ("education", "VALID"),
        ("human_resources", "VALID"),
        ("medical_insurance", "VALID"),
    ];
    assert_eq!(names(&statuses(&v.signatures)), want);
    let education = v.signatures.iter().find(|s| s.agency == "education").unwrap();
    assert_eq!(education.version, 2);
    assert_eq!(education.content_hash, hash_hex);

    // The summary lists who signed and when (the signing time as signed).
    let mut civil = app.client("civil_affairs").await;
    let s = civil
        .coordination
        .get_quarterly_summary(pb::GetQuarterlySummaryRequest { quarter: Q.into() })
        .await
        .unwrap()
        .into_inner();
    let summary: doudi::domain::summary::QuarterlySummary =
        serde_json::from_value(doudi::grpc::snapshot::struct_to_json(s.summary.unwrap())).unwrap();
    let signers: Vec<(&str, i64)> = summary.countersignatures.iter().map(|c| (c.agency.as_str(), c.version)).collect();
    assert_eq!(signers, vec![("civil_affairs", 1), ("education", 2), ("human_resources", 1), ("medical_insurance", 1)]);
    let civil_at = summary.countersignatures[0].signed_at;
    assert_eq!(Some(doudi::grpc::convert::timestamp(civil_at)), kept.signed_at);

    // Tampered in the database: medical_insurance's signature is now INVALID, saying why; the others still hold.
    assert_eq!(exec(&app, TAMPER).await, 1);
    let v = lg.coordination.verify_snapshot(pb::VerifySnapshotRequest { quarter: Q.into() }).await.unwrap();
    let got = statuses(&v.into_inner().signatures);
    assert_eq!(names(&got)[4], ("medical_insurance", "INVALID"));
    assert!(got[4].2.contains("does not verify"), "{}", got[4].2);
    assert_eq!(names(&got)[..4], want[..4]);
    let listed =
        lg.coordination.list_snapshot_signatures(pb::ListSnapshotSignaturesRequest { quarter: Q.into() }).await;
    assert_eq!(statuses(&listed.unwrap().into_inner().signatures), got);

    // `doudi snapshot verify` on the hub's database says the same and exits 1 (an invalid signature).
    let ca = app.dir.path().join("ca.pem");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_doudi"))
        .args(["snapshot", "verify", Q, "--database-url", &app.database_url, "--ca"])
        .arg(&ca)
        .env_remove("DOUDI_CONFIG")
        .env("DOUDI_TRUST_DOMAIN", TRUST_DOMAIN)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}{}", String::from_utf8_lossy(&out.stderr));
    for (agency, status) in &want[..4] {
        assert!(
            text.lines().any(|l| l.starts_with("signature ") && l.contains(agency) && l.ends_with(status)),
            "{text}"
        );
    }
    assert!(
        text.lines().any(|l| l.contains("medical_insurance") && l.contains("INVALID: the signature does not verify"))
    );
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn signatures_over_another_hash_by_another_agency_or_for_an_open_quarter_are_refused() {
    let (app, hash_hex) = frozen().await;
    let hash = hash32(&hash_hex);
    let before = app.audit_events().await;

    // A signature over another hash, naming it: INVALID_ARGUMENT naming content_hash.
    let mut other = hash;
    other[0] ^= 0xff;
    let e = submit(&app, "education", &signed(&app, "education", other)).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
    assert!(e.message().starts_with("content_hash: "), "{}", e.message());
    // Over another hash while claiming the snapshot's: the signature does not verify.
    let mut s = signed(&app, "education", other);
    s.content_hash = hash;
    let e = submit(&app, "education", &s).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("signature: the signature does not verify"), "{}", e.message());

    // Another agency's certificate: PERMISSION_DENIED naming signer_certificate.
    let e = submit(&app, "education", &signed(&app, "civil_affairs", hash)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("signer_certificate") && e.message().contains("civil_affairs"), "{}", e.message());
    // A certificate of another CA.
    let stranger = doudi::security::certs::Ca::generate("another CA")
        .unwrap()
        .issue_client(TRUST_DOMAIN, "education", None)
        .unwrap();
    let s = AgencySigner::from_pem(stranger.key_pem.as_bytes(), stranger.cert_pem.as_bytes()).unwrap().sign(
        Q,
        hash,
        now_micros(),
    );
    let e = submit(&app, "education", &s).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{}", e.message());
    assert!(e.message().starts_with("signer_certificate: "), "{}", e.message());

    // A quarter not frozen: FAILED_PRECONDITION.
    let mut s = signed(&app, "education", hash);
    s.quarter = "2023Q3".into();
    let e = submit(&app, "education", &s).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("2023Q3 is not frozen"), "{}", e.message());

    // Bad encodings: INVALID_ARGUMENT naming the field.
    let good = request(&signed(&app, "education", hash));
    let mut c = app.client("education").await;
    for (req, field) in [
        (
            pb::SignSnapshotRequest { signer_certificate: b"not a certificate".to_vec(), ..good.clone() },
            "signer_certificate",
        ),
        (pb::SignSnapshotRequest { content_hash: "abc".into(), ..good.clone() }, "content_hash"),
        (pb::SignSnapshotRequest { signed_at: None, ..good.clone() }, "signed_at"),
        (
            pb::SignSnapshotRequest {
                signed_at: Some(prost_types::Timestamp { seconds: 1, nanos: 1 }),
                ..good.clone()
            },
            "signed_at",
        ),
        (pb::SignSnapshotRequest { signature: Vec::new(), ..good.clone() }, "signature"),
        (pb::SignSnapshotRequest { quarter: "2023Q5".into(), ..good.clone() }, "quarter"),
    ] {
        let e = c.coordination.sign_snapshot(req).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{field}: {}", e.message());
        assert!(e.message().starts_with(&format!("{field}: ")), "{field}: {}", e.message());
    }
    // A time before the snapshot was taken.
    let mut s = signed(&app, "education", hash);
    s.signed_at_micros -= 86_400 * 1_000_000;
    let e = submit(&app, "education", &s).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("signed_at: "), "{}", e.message());

    // Who may sign: a county office (a city-wide action) and leading_group (no figures of its own) may not.
    let county = app.identity("civil_affairs", Some("621022"));
    let mut huan = app.client_in("civil_affairs", Some("621022")).await;
    let s = signed(&app, "civil_affairs", hash);
    let e = huan.coordination.sign_snapshot(request(&s)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{}", e.message());
    assert!(e.message().contains("SignSnapshot"), "{}", e.message());
    assert!(AgencySigner::from_pem(&county.key_pem, &county.cert_pem).is_err(), "a county key cannot sign");
    let e = submit(&app, "leading_group", &s).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    // Nothing was kept, nothing audited.
    assert_eq!(app.audit_events().await, before);
    let mut lg = app.client("leading_group").await;
    let listed = lg.coordination.list_snapshot_signatures(pb::ListSnapshotSignaturesRequest { quarter: Q.into() });
    let got = statuses(&listed.await.unwrap().into_inner().signatures);
    assert_eq!(names(&got), PARTNERS.iter().map(|a| (*a, "MISSING")).collect::<Vec<_>>());
    let e = lg.coordination.list_snapshot_signatures(pb::ListSnapshotSignaturesRequest { quarter: "2023Q3".into() });
    assert_eq!(e.await.unwrap_err().code(), Code::NotFound);
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn a_revoked_certificate_cannot_countersign() {
    // education's revoked certificate cannot connect; it is refused when another education connection submits its
    // signature too.
    let (app, revoked) = spawn_app_with_revoked("education").await;
    let mut civil = app.client("civil_affairs").await;
    let snap = civil.coordination.create_snapshot(pb::CreateSnapshotRequest { quarter: Q.into() }).await.unwrap();
    let hash = hash32(&snap.into_inner().content_hash);
    let s = AgencySigner::from_pem(revoked.key_pem.as_bytes(), revoked.cert_pem.as_bytes()).unwrap().sign(
        Q,
        hash,
        now_micros(),
    );
    let e = submit(&app, "education", &s).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{}", e.message());
    assert!(e.message().starts_with("signer_certificate: the certificate is revoked"), "{}", e.message());
    // A certificate of the same agency that is not revoked is accepted.
    assert_eq!(submit(&app, "education", &signed(&app, "education", hash)).await.unwrap().version, 1);
    app.stop().await;
}

fn export_args(conn: &ConnectArgs, out: &Path) -> doudi::client::export::ExportArgs {
    doudi::client::export::ExportArgs {
        connect: conn.clone(),
        out: out.to_owned(),
        division: None,
        as_of: None,
        format: doudi::client::format::FileFormat::Csv,
        purpose: "quarterly coordination".into(),
        page_size: 1_000,
        snapshot: Some(Q.into()),
    }
}

#[apply(e2e!)]
#[tokio::test]
async fn offline_verification_with_only_the_ca_passes_and_finds_a_tampered_signature() {
    use doudi::domain::countersign::SignatureStatus;
    let (app, hash_hex) = frozen().await;
    let hash = hash32(&hash_hex);
    for agency in ["civil_affairs", "education", "human_resources"] {
        submit(&app, agency, &signed(&app, agency, hash)).await.unwrap();
    }
    let certs = certs_dir(&app, "education");
    let out = tempfile::tempdir().unwrap();
    let m = doudi::client::export::export(&export_args(
        &ConnectArgs::from_dir(&app.server, certs.path(), "education"),
        out.path(),
    ))
    .await
    .unwrap();
    assert_eq!(m.snapshot.unwrap().content_hash, hash_hex);
    app.stop().await;

    // Only the CA certificate (the hub is gone).
    let ca_pem = std::fs::read(certs.path().join("ca.pem")).unwrap();
    let r = doudi::client::countersign::verify_offline(out.path(), &ca_pem).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.content_hash, hash_hex, "the content hash recomputed from the exported header");
    let want = vec![
        ("civil_affairs".to_owned(), SignatureStatus::Valid),
        ("disability_federation".to_owned(), SignatureStatus::Missing),
        ("education".to_owned(), SignatureStatus::Valid),
        ("human_resources".to_owned(), SignatureStatus::Valid),
        ("medical_insurance".to_owned(), SignatureStatus::Missing),
    ];
    assert_eq!(r.signatures, want);
    assert!(r.ok());
    // The command says the same and exits 0.
    let cmd = |dir: &Path, ca: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_doudi"))
            .args(["snapshot", "verify", "--offline"])
            .arg(dir)
            .arg("--ca")
            .arg(ca)
            .env_remove("DOUDI_CONFIG")
            .output()
            .unwrap()
    };
    let o = cmd(out.path(), &certs.path().join("ca.pem"));
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stdout));

    // A third party with openssl and jq: the commands of docs/countersign.md, as written there, in the export.
    openssl_recipe(out.path(), &certs.path().join("ca.pem"));

    // Another CA: every signature present is INVALID.
    let other = doudi::security::certs::Ca::generate("another CA").unwrap();
    let r = doudi::client::countersign::verify_offline(out.path(), other.cert_pem().as_bytes()).unwrap();
    assert!(r.signatures.iter().filter(|(_, s)| matches!(s, SignatureStatus::Invalid(_))).count() == 3);
    assert!(!r.ok());

    // One byte of education's signature flipped in the export: INVALID, the others still VALID.
    let path = out.path().join(format!("signatures-{Q}.json"));
    let mut file: doudi::security::countersign::SignaturesFile =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let entry = file.agencies.iter_mut().find(|e| e.agency == "education").unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut sig = b64.decode(entry.signature.as_deref().unwrap()).unwrap();
    let last = sig.len() - 1;
    sig[last] ^= 0x01;
    entry.signature = Some(b64.encode(&sig));
    std::fs::write(&path, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
    let r = doudi::client::countersign::verify_offline(out.path(), &ca_pem).unwrap();
    assert!(
        matches!(&r.signatures[2], (a, SignatureStatus::Invalid(why)) if a == "education" && why.contains("does not verify")),
        "{:?}",
        r.signatures
    );
    assert_eq!(r.signatures[0], want[0]);
    assert_eq!(r.signatures[3], want[3]);
    assert!(
        r.problems.iter().any(|p| p.contains(&format!("signatures-{Q}.json")) && p.contains("altered")),
        "{:?}",
        r.problems
    );
    assert!(!r.ok());
    let o = cmd(out.path(), &certs.path().join("ca.pem"));
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("INVALID"));
}

/// Run the shell block of docs/countersign.md that follows "A third party with openssl" in `dir` (with `ca.pem` copied
/// there): it must print `signer.pem: OK` and `Verified OK`. Skipped, saying so, without openssl or jq.
fn openssl_recipe(dir: &Path, ca: &Path) {
    let have =
        |tool: &str, arg: &str| std::process::Command::new(tool).arg(arg).output().is_ok_and(|o| o.status.success());
    if !have("openssl", "version") || !have("jq", "--version") {
        eprintln!("openssl or jq is not installed: the documented recipe is not run");
        return;
    }
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/countersign.md")).unwrap();
    let from = doc.find("A third party with openssl").expect("the recipe in docs/countersign.md");
    let block = doc[from..].split("```sh\n").nth(1).and_then(|b| b.split("```").next()).unwrap();
    std::fs::copy(ca, dir.join("ca.pem")).unwrap();
    let out =
        std::process::Command::new("bash").args(["-euo", "pipefail", "-c", block]).current_dir(dir).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{block}\n{text}");
    assert!(text.contains("signer.pem: OK"), "{text}");
    assert!(text.contains("Verified OK"), "{text}");
    std::fs::remove_file(dir.join("ca.pem")).unwrap();
}
