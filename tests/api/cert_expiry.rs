//! Revocation and certificates that fail safe (issue 20 item 4): a CRL past its nextUpdate refuses its CA's client
//! certificates at the handshake (`crl_stale = "refuse"`, the default) or is accepted with a warning (`"warn"`); a
//! revoked certificate is refused either way; `doudi certs refresh-crl` is the way back. The certificates' days to
//! expiry and the CRL's seconds to nextUpdate are on /metrics. Expected days are worked out here from each
//! certificate's own notAfter (x509-parser on the PEM the test holds), never from the hub's output.

use std::time::{Duration, SystemTime};

use doudi::client::{ClientIdentity, Clients, connect};
use doudi::grpc::pb;
use doudi::security::cert_watch::CrlStale;
use doudi::security::certs::Issued;
use macro_rules_attribute::apply;
use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::metrics::{sample, scrape};
use crate::support::*;

fn identity(app: &TestApp, issued: &Issued) -> ClientIdentity {
    ClientIdentity {
        ca_pem: app.ca.cert_pem().as_bytes().to_vec(),
        cert_pem: issued.cert_pem.clone().into_bytes(),
        key_pem: issued.key_pem.clone().into_bytes(),
    }
}

/// Whether a new connection with `id` gets an answer (with TLS 1.3 the client may finish its handshake before the
/// server refuses its certificate: the refusal then shows on the first call).
async fn accepted(app: &TestApp, id: &ClientIdentity) -> bool {
    match connect(&app.server, "localhost", id).await {
        Err(_) => false,
        Ok(ch) => Clients::new(ch, 1 << 20).audit.who_am_i(pb::WhoAmIRequest {}).await.is_ok(),
    }
}

/// A certificate's notAfter in Unix seconds and its subject name, read from its PEM.
fn not_after_and_subject(pem: &str) -> (i64, String) {
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
        .map(|d: rustls::pki_types::CertificateDer<'static>| d.to_vec())
        .unwrap();
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    (cert.validity().not_after.timestamp(), cert.subject().to_string())
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn crl_gauge(text: &str, app: &TestApp) -> f64 {
    let file = app.dir.path().join("ca.crl").display().to_string();
    sample(text, "doudi_crl_next_update_seconds", &[("file", &file)]).unwrap_or_else(|| panic!("{file}: {text}"))
}

/// A CRL that goes stale while the hub runs: loaded while fresh, accepted before its nextUpdate, then every
/// certificate of its CA is refused at the next handshake without any reload (webpki checks nextUpdate per
/// handshake); the revoked one stays refused; the gauge turns negative. `doudi certs refresh-crl` writes a fresh CRL,
/// the poll loads it, and the agency is back while the revoked certificate stays out.
#[apply(e2e!)]
#[tokio::test]
async fn a_crl_going_stale_refuses_its_certificates_until_a_fresh_one_is_in_place() {
    let mut revoked = None;
    let app = spawn_app_prepared(
        |c| {
            c.crl_poll_secs = 1;
            c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        },
        |ca, dir| {
            let r = ca.issue_client(TRUST_DOMAIN, "civil_affairs", None).unwrap();
            let next_update = SystemTime::now() + Duration::from_secs(86_400);
            std::fs::write(dir.join("ca.crl"), ca.crl_pem(std::slice::from_ref(&r.serial), next_update).unwrap())
                .unwrap();
            revoked = Some(r);
        },
    )
    .await;
    let revoked_issued = revoked.unwrap();
    let revoked = identity(&app, &revoked_issued);
    let education = app.identity("education", None);
    assert!(accepted(&app, &education).await, "a fresh CRL: accepted");
    assert!(!accepted(&app, &revoked).await, "revoked");
    let day = crl_gauge(&scrape(&app).await, &app);
    assert!((day - 86_400.0).abs() <= 5.0, "{day}");

    // A CRL valid for a few more seconds replaces it (picked up by the poll: the gauge shows it, still positive).
    let next_update = SystemTime::now() + Duration::from_secs(6);
    let short = app.ca.crl_pem(std::slice::from_ref(&revoked_issued.serial), next_update).unwrap();
    std::fs::write(app.dir.path().join("ca.crl"), short).unwrap();
    let mut loaded = None;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let g = crl_gauge(&scrape(&app).await, &app);
        if g < 100.0 {
            loaded = Some(g);
            break;
        }
    }
    let loaded = loaded.expect("the short CRL is loaded by the poll");
    let expected = (unix(next_update) - unix(SystemTime::now())) as f64;
    assert!(loaded > 0.0 && (loaded - expected).abs() <= 2.0, "{loaded} vs {expected}");
    assert!(accepted(&app, &education).await, "before nextUpdate: accepted");
    assert!(SystemTime::now() < next_update, "this machine took too long to check the fresh CRL");

    // Past nextUpdate (second precision in the CRL): refused, the file unchanged since it was loaded.
    let wait = next_update.duration_since(SystemTime::now()).unwrap_or_default() + Duration::from_millis(1100);
    tokio::time::sleep(wait).await;
    assert!(!accepted(&app, &education).await, "stale CRL with crl_stale = refuse: refused");
    assert!(!accepted(&app, &app.identity("medical_insurance", None)).await, "every certificate of the CA");
    assert!(!accepted(&app, &revoked).await, "revoked");
    let after = crl_gauge(&scrape(&app).await, &app);
    assert!(after < 0.0, "stale: negative, {after}");

    // The runbook's way back: a fresh CRL from the CA's directory, picked up by the poll.
    let pki = app.dir.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    std::fs::write(pki.join("ca.pem"), app.ca.cert_pem()).unwrap();
    std::fs::write(pki.join("ca.key"), app.ca.key_pem()).unwrap();
    let serial = doudi::security::certs::cert_file_serial_hex(&{
        let p = pki.join("revoked.pem");
        std::fs::write(&p, &revoked.cert_pem).unwrap();
        p
    })
    .unwrap();
    std::fs::write(pki.join("revoked-serials.txt"), format!("{serial}\n")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_doudi"))
        .args(["certs", "refresh-crl", "--dir", pki.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 revoked serials"), "{out:?}");
    std::fs::copy(pki.join("ca.crl"), app.dir.path().join("ca.crl")).unwrap();
    let mut back = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if accepted(&app, &education).await {
            back = true;
            break;
        }
    }
    assert!(back, "a fresh CRL is loaded within the poll interval");
    assert!(!accepted(&app, &revoked).await, "still revoked by the fresh CRL");
    let fresh = crl_gauge(&scrape(&app).await, &app);
    let year = (doudi::security::certs::CRL_VALIDITY_DAYS * 86_400) as f64;
    assert!(
        (fresh - year).abs() <= 10.0,
        "refresh-crl: nextUpdate {} days ahead, {fresh}",
        doudi::security::certs::CRL_VALIDITY_DAYS
    );
    app.stop().await;
}

/// `crl_stale = "warn"`: a CRL already stale at start is still honoured for what it lists, and the other
/// certificates of its CA are accepted; the gauge says how long ago it went stale.
#[apply(e2e!)]
#[tokio::test]
async fn with_warn_a_stale_crl_accepts_but_still_refuses_the_revoked() {
    let mut revoked = None;
    let day = Duration::from_secs(86_400);
    let next_update = SystemTime::now() - day;
    let app = spawn_app_prepared(
        |c| {
            c.crl_stale = CrlStale::Warn;
            c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        },
        |ca, dir| {
            let r = ca.issue_client(TRUST_DOMAIN, "education", None).unwrap();
            let crl = ca.crl_pem_dated(std::slice::from_ref(&r.serial), next_update - day, next_update).unwrap();
            std::fs::write(dir.join("ca.crl"), crl).unwrap();
            revoked = Some(r);
        },
    )
    .await;
    assert!(accepted(&app, &app.identity("education", None)).await, "stale CRL with crl_stale = warn: accepted");
    assert!(!accepted(&app, &identity(&app, &revoked.unwrap())).await, "the revoked certificate: refused");
    let gauge = crl_gauge(&scrape(&app).await, &app);
    let expected = (unix(next_update) - unix(SystemTime::now())) as f64;
    assert!(gauge < 0.0 && (gauge - expected).abs() <= 2.0, "{gauge} vs {expected}");
    app.stop().await;
}

/// The CA's, the server's and a connected agency's days to expiry, each from its own notAfter.
#[apply(e2e!)]
#[tokio::test]
async fn certificate_expiry_days_are_on_metrics() {
    let app = spawn_app_with(|c| c.metrics_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let issued = app.ca.issue_client(TRUST_DOMAIN, "education", Some("621022")).unwrap();
    assert!(accepted(&app, &identity(&app, &issued)).await);
    let text = scrape(&app).await;
    let now = unix(SystemTime::now());
    let days = |not_after: i64| (not_after - now) as f64 / 86_400.0;

    let server_pem = std::fs::read_to_string(app.dir.path().join("server.pem")).unwrap();
    let (server_not_after, server_subject) = not_after_and_subject(&server_pem);
    let (ca_not_after, ca_subject) = not_after_and_subject(app.ca.cert_pem());
    let (agency_not_after, _) = not_after_and_subject(&issued.cert_pem);
    let spiffe = format!("spiffe://{TRUST_DOMAIN}/agency/education/division/621022");
    for (kind, subject, not_after) in [
        ("server", server_subject.as_str(), server_not_after),
        ("ca", ca_subject.as_str(), ca_not_after),
        ("agency", spiffe.as_str(), agency_not_after),
    ] {
        let got = sample(&text, "doudi_certificate_expiry_days", &[("kind", kind), ("subject", subject)])
            .unwrap_or_else(|| panic!("{kind} {subject}: {text}"));
        assert!((got - days(not_after)).abs() < 0.01, "{kind}: {got} vs {}", days(not_after));
    }
    // Issued for 825 days by the test CA, 10 years for the CA itself.
    assert!((days(agency_not_after) - 825.0).abs() < 1.0);
    assert!((days(ca_not_after) - 3650.0).abs() < 1.0);
    app.stop().await;
}
