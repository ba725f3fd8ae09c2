//! A TLCP gateway in front of the hub (issue 20 item 6, SECURITY.md "A TLCP gateway in front of the hub"): on the
//! connection of a pinned gateway (`gateway_identities`) the caller is the agency whose certificate the gateway
//! forwards in `x-forwarded-client-cert` (Envoy's form), verified against the hub's CA and CRL; the access matrix
//! applies to that agency and the audit records it and the gateway; from any other peer the header is ignored; a
//! gateway's request without a valid forwarded certificate is UNAUTHENTICATED. The header values are written here
//! from Envoy's documented form, not by the hub's code.

use std::time::{Duration, SystemTime};

use doudi::client::{ClientIdentity, Clients, connect};
use doudi::grpc::pb;
use doudi::security::certs::Issued;
use macro_rules_attribute::apply;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use sha2::{Digest as _, Sha256};
use tonic::Code;

use crate::support::*;

const HUAN: &str = "621022101203";
const HEADER: &str = "x-forwarded-client-cert";

fn gateway_id() -> String {
    format!("spiffe://{TRUST_DOMAIN}/gateway/tlcp")
}

/// Connects presenting `issued` (a certificate of the test CA or of another).
async fn connect_as(app: &TestApp, issued: &Issued) -> Clients {
    let id = ClientIdentity {
        ca_pem: app.ca.cert_pem().as_bytes().to_vec(),
        cert_pem: issued.cert_pem.clone().into_bytes(),
        key_pem: issued.key_pem.clone().into_bytes(),
    };
    Clients::new(connect(&app.server, "localhost", &id).await.unwrap(), 1 << 20)
}

/// Percent-encoding of every byte but unreserved ASCII letters and digits (as Envoy URL-encodes the PEM).
fn url_encode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

fn sha256_hex(pem: &str) -> String {
    hex::encode(Sha256::digest(CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().as_ref()))
}

/// The element Envoy appends for a client connection it terminated: By (the gateway), Hash, Cert, Chain, URI.
fn element(cert_pem: &str, uri: &str) -> String {
    format!(
        "By={};Hash={};Cert=\"{}\";Chain=\"{}\";Subject=\"\";URI={uri}",
        gateway_id(),
        sha256_hex(cert_pem),
        url_encode(cert_pem),
        url_encode(cert_pem)
    )
}

fn agency_uri(agency: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/agency/{agency}")
}

fn with_header<T>(msg: T, value: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert(HEADER, value.parse().unwrap());
    r
}

async fn who_am_i(c: &mut Clients, header: Option<&str>) -> Result<pb::WhoAmIResponse, tonic::Status> {
    let r = match header {
        Some(h) => with_header(pb::WhoAmIRequest {}, h),
        None => tonic::Request::new(pb::WhoAmIRequest {}),
    };
    c.audit.who_am_i(r).await.map(|r| r.into_inner())
}

fn assistance_fact(n: u16) -> (String, pb::Fact) {
    let person = id("621022", (1979, 4, 4), n);
    (person.clone(), with(base(&format!("GW-{n}"), &person, HUAN), rural_dibao()))
}

#[apply(e2e!)]
#[tokio::test]
async fn through_a_pinned_gateway_the_call_is_the_forwarded_agencys_and_the_audit_names_both() {
    let app = spawn_app_with(|c| c.gateway_identities = vec![gateway_id()]).await;
    let gateway = app.ca.issue_client_with_uris("tlcp gateway", &[&gateway_id()]).unwrap();
    let mut gw = connect_as(&app, &gateway).await;

    // WhoAmI: the forwarded certificate's agency, with its rights (docs/spec/security.md: human_resources pushes
    // employment and pension), and the gateway.
    let hr = app.ca.issue_client(TRUST_DOMAIN, "human_resources", None).unwrap();
    let me = who_am_i(&mut gw, Some(&element(&hr.cert_pem, &agency_uri("human_resources")))).await.unwrap();
    assert_eq!(me.agency, "human_resources");
    assert_eq!(me.spiffe_id, agency_uri("human_resources"));
    assert_eq!(me.push_kinds, ["employment", "pension"]);
    assert_eq!(me.via, gateway_id());
    // A county office's certificate keeps its county.
    let county = app.ca.issue_client(TRUST_DOMAIN, "civil_affairs", Some("621022")).unwrap();
    let me = who_am_i(&mut gw, Some(&element(&county.cert_pem, ""))).await.unwrap();
    assert_eq!((me.agency.as_str(), me.division_code.as_str()), ("civil_affairs", "621022"));

    // The access matrix is the forwarded agency's: civil_affairs owns assistance, education does not.
    let civil = app.ca.issue_client(TRUST_DOMAIN, "civil_affairs", None).unwrap();
    let education = app.ca.issue_client(TRUST_DOMAIN, "education", None).unwrap();
    let (person, fact) = assistance_fact(1);
    let as_civil = element(&civil.cert_pem, &agency_uri("civil_affairs"));
    let pushed =
        gw.exchange.push_facts(with_header(pb::PushFactsRequest { facts: vec![fact.clone()] }, &as_civil)).await;
    assert_eq!(outcome(&pushed.unwrap().into_inner().results[0]), pb::FactOutcome::Accepted);
    let (_, other) = assistance_fact(2);
    let as_education = element(&education.cert_pem, &agency_uri("education"));
    let refused = gw.exchange.push_facts(with_header(pb::PushFactsRequest { facts: vec![other] }, &as_education)).await;
    assert_eq!(refused.unwrap_err().code(), Code::PermissionDenied);
    // A read through the gateway as medical_insurance.
    let mi = app.ca.issue_client(TRUST_DOMAIN, "medical_insurance", None).unwrap();
    let read = pb::GetRecipientRequest {
        id_number: person.clone(),
        as_of: "2023-06-30".into(),
        purpose: "through the gateway".into(),
        ..Default::default()
    };
    gw.exchange
        .get_recipient(with_header(read, &element(&mi.cert_pem, &agency_uri("medical_insurance"))))
        .await
        .unwrap();
    // And one read directly, for contrast.
    let mut direct = app.client("medical_insurance").await;
    get(&mut direct, &person, "2023-06-30").await.unwrap();

    // "Who looked at this person", asked directly by civil_affairs: each event names the agency whose certificate
    // was used, and the gateway for the calls that came through it.
    let mut civil_direct = app.client("civil_affairs").await;
    let events = civil_direct
        .audit
        .list_access_events(pb::ListAccessEventsRequest {
            id_number: person.clone(),
            purpose: "gateway test".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let who: Vec<(&str, &str, &str)> =
        events.iter().map(|e| (e.agency.as_str(), e.method.as_str(), e.via.as_str())).collect();
    let gw_id = gateway_id();
    assert_eq!(
        who,
        [
            ("medical_insurance", "/doudi.v1.RecipientExchange/GetRecipient", ""),
            ("medical_insurance", "/doudi.v1.RecipientExchange/GetRecipient", gw_id.as_str()),
            ("civil_affairs", "/doudi.v1.RecipientExchange/PushFacts", gw_id.as_str()),
        ]
    );
    // The chain, with events of both forms, verifies.
    let v = civil_direct.audit.verify_audit_chain(pb::VerifyAuditChainRequest::default()).await.unwrap().into_inner();
    assert!(v.valid, "{}", v.reason);
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn the_header_from_any_other_peer_is_ignored() {
    let app = spawn_app_with(|c| {
        c.gateway_identities = vec![gateway_id()];
        c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let civil = app.ca.issue_client(TRUST_DOMAIN, "civil_affairs", None).unwrap();
    let as_civil = element(&civil.cert_pem, &agency_uri("civil_affairs"));
    // education, connected directly, sends civil_affairs' certificate in the header: it stays education, with
    // education's rights.
    let mut education = app.client("education").await;
    let me = who_am_i(&mut education, Some(&as_civil)).await.unwrap();
    assert_eq!((me.agency.as_str(), me.via.as_str()), ("education", ""));
    let (_, fact) = assistance_fact(3);
    let refused =
        education.exchange.push_facts(with_header(pb::PushFactsRequest { facts: vec![fact] }, &as_civil)).await;
    assert_eq!(refused.unwrap_err().code(), Code::PermissionDenied, "education may not push assistance");
    // Both requests were counted as carrying an ignored header.
    let metrics = crate::metrics::scrape(&app).await;
    assert!(metrics.lines().any(|l| l == "doudi_forwarded_client_cert_ignored_total 2"), "{metrics}");
    app.stop().await;

    // Without gateway_identities the header is ignored from everyone.
    let app = spawn_app().await;
    let mut hr = app.client("human_resources").await;
    let me = who_am_i(&mut hr, Some(&as_civil)).await.unwrap();
    assert_eq!((me.agency.as_str(), me.via.as_str()), ("human_resources", ""));
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn a_gateway_pinned_by_fingerprint_is_that_certificate_only() {
    // The pinned certificate is issued before the hub starts, and its SHA-256 goes into the configuration.
    let gateway = std::cell::RefCell::new(None::<Issued>);
    let app = spawn_app_prepared(
        |c| {
            let pinned = gateway.borrow();
            c.gateway_identities = vec![format!("sha256:{}", sha256_hex(&pinned.as_ref().unwrap().cert_pem))];
        },
        |ca, _| {
            *gateway.borrow_mut() = Some(ca.issue_client_with_uris("tlcp gateway", &[&gateway_id()]).unwrap());
        },
    )
    .await;
    let gateway = gateway.into_inner().unwrap();
    let civil = app.ca.issue_client(TRUST_DOMAIN, "civil_affairs", None).unwrap();
    let as_civil = element(&civil.cert_pem, &agency_uri("civil_affairs"));
    let mut gw = connect_as(&app, &gateway).await;
    let me = who_am_i(&mut gw, Some(&as_civil)).await.unwrap();
    assert_eq!(me.agency, "civil_affairs");
    assert_eq!(me.via, format!("sha256:{}", sha256_hex(&gateway.cert_pem)));
    // Another certificate with the same SPIFFE ID is not the pinned one: its header is ignored, and the certificate
    // itself names no agency.
    let twin = app.ca.issue_client_with_uris("tlcp gateway", &[&gateway_id()]).unwrap();
    let mut twin = connect_as(&app, &twin).await;
    let s = who_am_i(&mut twin, Some(&as_civil)).await.unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated);
    assert!(!s.message().contains(HEADER), "{}", s.message());
    assert!(s.message().contains(&gateway_id()), "the refusal names the twin's own SPIFFE ID: {}", s.message());
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn a_forwarded_certificate_that_is_missing_revoked_foreign_or_garbage_is_unauthenticated() {
    // A CRL, in force before the hub starts, revokes one civil_affairs certificate.
    let revoked = std::sync::Arc::new(std::sync::Mutex::new(None::<Issued>));
    let slot = revoked.clone();
    let app = spawn_app_prepared(
        |c| c.gateway_identities = vec![gateway_id()],
        move |ca, dir| {
            let r = ca.issue_client(TRUST_DOMAIN, "civil_affairs", None).unwrap();
            let crl =
                ca.crl_pem(std::slice::from_ref(&r.serial), SystemTime::now() + Duration::from_secs(86_400)).unwrap();
            std::fs::write(dir.join("ca.crl"), crl).unwrap();
            *slot.lock().unwrap() = Some(r);
        },
    )
    .await;
    let revoked = revoked.lock().unwrap().take().unwrap();
    let gateway = app.ca.issue_client_with_uris("tlcp gateway", &[&gateway_id()]).unwrap();
    let mut gw = connect_as(&app, &gateway).await;
    let events_before = app.audit_events().await;

    let unauthenticated = |r: Result<pb::WhoAmIResponse, tonic::Status>, what: &str, says: &[&str]| {
        let s = r.expect_err(what);
        assert_eq!(s.code(), Code::Unauthenticated, "{what}: {}", s.message());
        for word in says {
            assert!(s.message().contains(word), "{what}: {:?} lacks {word:?}", s.message());
        }
    };
    // No header: the gateway itself has no rights.
    unauthenticated(who_am_i(&mut gw, None).await, "no header", &[HEADER, "has none"]);
    // The revoked certificate.
    unauthenticated(
        who_am_i(&mut gw, Some(&element(&revoked.cert_pem, &agency_uri("civil_affairs")))).await,
        "a revoked certificate",
        &[HEADER, "Revoked"],
    );
    // A certificate of another CA, with the right SPIFFE ID.
    let other = doudi::security::certs::Ca::generate("someone else").unwrap();
    let foreign = other.issue_client(TRUST_DOMAIN, "civil_affairs", None).unwrap();
    unauthenticated(
        who_am_i(&mut gw, Some(&element(&foreign.cert_pem, &agency_uri("civil_affairs")))).await,
        "a foreign certificate",
        &[HEADER, "refused"],
    );
    // Garbage, and a Cert that is not a certificate.
    unauthenticated(who_am_i(&mut gw, Some("garbage")).await, "garbage", &[HEADER]);
    unauthenticated(who_am_i(&mut gw, Some("By=x;Cert=\"not%20a%20PEM\"")).await, "not a PEM", &[HEADER, "Cert"]);
    // A Hash that is not the certificate's.
    let civil = app.ca.issue_client(TRUST_DOMAIN, "civil_affairs", None).unwrap();
    let wrong_hash = element(&civil.cert_pem, "").replace(&sha256_hex(&civil.cert_pem), &"0".repeat(64));
    unauthenticated(who_am_i(&mut gw, Some(&wrong_hash)).await, "a wrong Hash", &[HEADER, "Hash"]);
    // Only the last element counts (the one the gateway appended): a valid certificate in an earlier element, put
    // there by the client, does not make a last element without one acceptable…
    let smuggled = format!("{},By={};URI=spiffe://elsewhere", element(&civil.cert_pem, ""), gateway_id());
    unauthenticated(
        who_am_i(&mut gw, Some(&smuggled)).await,
        "a certificate only in an earlier element",
        &[HEADER, "Cert"],
    );
    // …and with a valid last element, that one is the caller.
    let hr = app.ca.issue_client(TRUST_DOMAIN, "human_resources", None).unwrap();
    let two = format!("{},{}", element(&civil.cert_pem, ""), element(&hr.cert_pem, ""));
    assert_eq!(who_am_i(&mut gw, Some(&two)).await.unwrap().agency, "human_resources");
    // An agency the policy does not know, forwarded with a valid certificate.
    let tax = app.ca.issue_client(TRUST_DOMAIN, "tax_bureau", None).unwrap();
    unauthenticated(
        who_am_i(&mut gw, Some(&element(&tax.cert_pem, ""))).await,
        "an unknown agency",
        &["tax_bureau", &gateway_id()],
    );
    // The gateway still serves calls with a valid forwarded certificate.
    assert_eq!(who_am_i(&mut gw, Some(&element(&civil.cert_pem, ""))).await.unwrap().agency, "civil_affairs");
    // Refusals wrote nothing (WhoAmI is not audited either way).
    assert_eq!(app.audit_events().await, events_before);
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn a_certificate_revoked_while_the_hub_runs_is_refused_on_the_gateways_open_connection() {
    let app = spawn_app_with(|c| {
        c.gateway_identities = vec![gateway_id()];
        c.crl_poll_secs = 1;
    })
    .await;
    let gateway = app.ca.issue_client_with_uris("tlcp gateway", &[&gateway_id()]).unwrap();
    let mut gw = connect_as(&app, &gateway).await;
    let education = app.ca.issue_client(TRUST_DOMAIN, "education", None).unwrap();
    let hr = app.ca.issue_client(TRUST_DOMAIN, "human_resources", None).unwrap();
    let as_education = element(&education.cert_pem, &agency_uri("education"));
    assert_eq!(who_am_i(&mut gw, Some(&as_education)).await.unwrap().agency, "education");

    // The CA revokes education's certificate; the hub picks the CRL up by its poll (as `doudi certs revoke` would
    // leave it). The gateway's connection stays open: a handshake check alone would never see the revocation.
    let crl = app
        .ca
        .crl_pem(std::slice::from_ref(&education.serial), SystemTime::now() + Duration::from_secs(86_400))
        .unwrap();
    std::fs::write(app.dir.path().join("ca.crl"), crl).unwrap();
    let mut refused = None;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Err(s) = who_am_i(&mut gw, Some(&as_education)).await {
            refused = Some(s);
            break;
        }
    }
    let s = refused.expect("the revoked certificate is refused within the poll interval");
    assert_eq!(s.code(), Code::Unauthenticated);
    assert!(s.message().contains("Revoked"), "{}", s.message());
    // Others on the same connection are still served.
    assert_eq!(
        who_am_i(&mut gw, Some(&element(&hr.cert_pem, &agency_uri("human_resources")))).await.unwrap().agency,
        "human_resources"
    );
    app.stop().await;
}
