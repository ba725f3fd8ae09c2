//! Mutual TLS and identity (docs/spec/security.md, "Transport and identity"), health.

use doudi::client::{ClientIdentity, Clients, connect};
use doudi::grpc::pb;
use macro_rules_attribute::apply;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::support::*;

#[apply(e2e!)]
#[tokio::test]
async fn who_am_i_reads_the_certificate() {
    let app = spawn_app().await;
    let mut hr = app.client("human_resources").await;
    let me = hr.audit.who_am_i(pb::WhoAmIRequest {}).await.unwrap().into_inner();
    assert_eq!(me.agency, "human_resources");
    assert_eq!(me.division_code, "");
    assert_eq!(me.spiffe_id, format!("spiffe://{TRUST_DOMAIN}/agency/human_resources"));
    assert_eq!(me.push_kinds, ["employment", "pension"]);
    assert!(me.read_aggregates);
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn unknown_agency_and_wrong_trust_domain_are_unauthenticated() {
    let app = spawn_app().await;
    // Chains to the CA, but no such agency.
    let mut c = app.client("tax_bureau").await;
    let s = c.audit.who_am_i(pb::WhoAmIRequest {}).await.unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated);
    assert!(s.message().contains("tax_bureau"), "{}", s.message());
    // Right agency, other trust domain.
    let issued = app.ca.issue_client("other.example", "civil_affairs", None).unwrap();
    let id = ClientIdentity {
        ca_pem: app.ca.cert_pem().as_bytes().to_vec(),
        cert_pem: issued.cert_pem.into_bytes(),
        key_pem: issued.key_pem.into_bytes(),
    };
    let mut c = Clients::new(connect(&app.server, "localhost", &id).await.unwrap(), 1 << 20);
    assert_eq!(c.audit.who_am_i(pb::WhoAmIRequest {}).await.unwrap_err().code(), Code::Unauthenticated);
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let app = spawn_app().await;
    let other = doudi::security::certs::Ca::generate("someone else").unwrap();
    let issued = other.issue_client(TRUST_DOMAIN, "civil_affairs", None).unwrap();
    let id = ClientIdentity {
        ca_pem: app.ca.cert_pem().as_bytes().to_vec(),
        cert_pem: issued.cert_pem.into_bytes(),
        key_pem: issued.key_pem.into_bytes(),
    };
    // The handshake (or the first call on it) fails; no request reaches a handler.
    let refused = match connect(&app.server, "localhost", &id).await {
        Err(_) => true,
        Ok(ch) => Clients::new(ch, 1 << 20).audit.who_am_i(pb::WhoAmIRequest {}).await.is_err(),
    };
    assert!(refused);
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn health_reports_each_service() {
    let app = spawn_app().await;
    let ch = connect(&app.server, "localhost", &app.identity("leading_group", None)).await.unwrap();
    let mut h = HealthClient::new(ch);
    for s in [
        "",
        "doudi.v1.RecipientExchange",
        "doudi.v1.Reference",
        "doudi.v1.Audit",
        "doudi.v1.Coordination",
        "doudi.v1.MedicalAssistance",
        "doudi.v1.Subsidies",
    ] {
        let r = h.check(HealthCheckRequest { service: s.into() }).await.unwrap().into_inner();
        assert_eq!(r.status, 1, "{s} SERVING");
    }
    // A service that does not exist is not registered.
    let s = h.check(HealthCheckRequest { service: "doudi.v1.NoSuchService".into() }).await.unwrap_err();
    assert_eq!(s.code(), Code::NotFound);
    app.stop().await;
}

/// Issue 23 item 5: Health/Watch on an unknown service ended at once with NOT_FOUND and no message. The health protocol
/// (https://github.com/grpc/grpc/blob/master/doc/health-checking.md): "the server will send a message setting the
/// serving status to SERVICE_UNKNOWN but will *not* terminate the call". SERVICE_UNKNOWN is 3 in health.proto; SERVING
/// is 1.
#[apply(e2e!)]
#[tokio::test]
async fn health_watch_on_an_unknown_service_sends_service_unknown_and_stays_open() {
    let app = spawn_app().await;
    let ch = connect(&app.server, "localhost", &app.identity("leading_group", None)).await.unwrap();
    let mut h = HealthClient::new(ch);
    let unknown = HealthCheckRequest { service: "doudi.v1.NoSuchService".into() };
    let mut w = h.watch(unknown).await.expect("the call is not refused").into_inner();
    let first = w.message().await.expect("no error").expect("one message");
    assert_eq!(first.status, 3, "SERVICE_UNKNOWN");
    let next = tokio::time::timeout(std::time::Duration::from_secs(1), w.message()).await;
    assert!(next.is_err(), "the call stays open (no end, no error, no message): {next:?}");
    // A known service's watch is unchanged: SERVING first.
    let mut known = h.watch(HealthCheckRequest { service: "doudi.v1.Audit".into() }).await.unwrap().into_inner();
    assert_eq!(known.message().await.unwrap().unwrap().status, 1, "SERVING");
    drop((w, known));
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn a_revoked_certificate_is_refused() {
    let (app, revoked) = spawn_app_with_revoked("education").await;
    let id = ClientIdentity {
        ca_pem: app.ca.cert_pem().as_bytes().to_vec(),
        cert_pem: revoked.cert_pem.into_bytes(),
        key_pem: revoked.key_pem.into_bytes(),
    };
    let refused = match connect(&app.server, "localhost", &id).await {
        Err(_) => true,
        Ok(ch) => Clients::new(ch, 1 << 20).audit.who_am_i(pb::WhoAmIRequest {}).await.is_err(),
    };
    assert!(refused, "revoked certificate refused at the handshake");
    // Another certificate of the same agency and CA still gets in.
    let mut ok = app.client("education").await;
    assert_eq!(ok.audit.who_am_i(pb::WhoAmIRequest {}).await.unwrap().into_inner().agency, "education");
    app.stop().await;
}

/// Sends arbitrary bytes as the request message (a hostile or broken client).
mod raw {
    use tonic::Status;
    use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

    pub struct RawCodec;
    pub struct RawEncoder;
    pub struct DropDecoder;

    impl Encoder for RawEncoder {
        type Item = Vec<u8>;
        type Error = Status;
        fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
            use bytes::BufMut;
            dst.put_slice(&item);
            Ok(())
        }
    }
    impl Decoder for DropDecoder {
        type Item = ();
        type Error = Status;
        fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, Status> {
            use bytes::Buf;
            src.advance(src.remaining());
            Ok(Some(()))
        }
    }
    impl Codec for RawCodec {
        type Encode = Vec<u8>;
        type Decode = ();
        type Encoder = RawEncoder;
        type Decoder = DropDecoder;
        fn encoder(&mut self) -> RawEncoder {
            RawEncoder
        }
        fn decoder(&mut self) -> DropDecoder {
            DropDecoder
        }
    }
}

#[apply(e2e!)]
#[tokio::test]
async fn malformed_protobuf_is_invalid_argument_and_the_hub_survives() {
    let app = spawn_app().await;
    let ch = connect(&app.server, "localhost", &app.identity("civil_affairs", None)).await.unwrap();
    let cases: [(&str, Vec<u8>); 3] = [
        ("truncated varint", vec![0x0a, 0x80]),
        ("wire type 7", vec![0x0f, 0x01]),
        // field 1 (facts) holding a Fact whose field 1 (fact_id) is invalid UTF-8
        ("invalid UTF-8", vec![0x0a, 0x04, 0x0a, 0x02, 0xff, 0xfe]),
    ];
    for (what, bytes) in cases {
        let mut grpc = tonic::client::Grpc::new(ch.clone());
        grpc.ready().await.unwrap();
        let path = http::uri::PathAndQuery::from_static("/doudi.v1.RecipientExchange/PushFacts");
        let s = grpc.unary(tonic::Request::new(bytes), path, raw::RawCodec).await.unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument, "{what}: {s:?}");
    }
    // still serving
    let mut c = app.client("civil_affairs").await;
    assert_eq!(c.audit.who_am_i(pb::WhoAmIRequest {}).await.unwrap().into_inner().agency, "civil_affairs");
    app.stop().await;
}

/// A database created with one data key refuses to serve with another (every person key would differ
/// and every stored person would silently vanish).
#[apply(e2e!)]
#[tokio::test]
async fn another_data_key_is_refused() {
    let app = spawn_app().await;
    let config = doudi::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: app.database_url.clone(),
        certs_dir: app.dir.path().to_owned(),
        trust_domain: TRUST_DOMAIN.into(),
        data_key: Some(doudi::security::crypto::Keys::generate_base64().into()),
        ..doudi::config::Config::default()
    };
    let second = doudi::server::Application::build(&config, std::future::pending()).await.unwrap();
    let err = tokio::time::timeout(std::time::Duration::from_secs(20), second.run()).await.unwrap().unwrap_err();
    assert!(format!("{err:#}").contains("DOUDI_DATA_KEY"), "{err:#}");
    app.stop().await;
}

/// A live agency certificate is revoked while the hub runs (`doudi certs revoke` rewrites the CRL): the poll picks
/// the new CRL up, the agency's next connection is refused, and other agencies carry on.
#[apply(e2e!)]
#[tokio::test]
async fn revoking_a_live_certificate_refuses_its_next_connection() {
    let app = spawn_app_with(|c| c.crl_poll_secs = 1).await;
    // The agency's certificate, kept in a directory beside the CA as `doudi certs init` lays it out.
    let dir = app.dir.path().join("pki");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), app.ca.cert_pem()).unwrap();
    std::fs::write(dir.join("ca.key"), app.ca.key_pem()).unwrap();
    let issued = app.ca.issue_client(TRUST_DOMAIN, "education", None).unwrap();
    std::fs::write(dir.join("education.pem"), &issued.cert_pem).unwrap();
    let id = ClientIdentity {
        ca_pem: app.ca.cert_pem().as_bytes().to_vec(),
        cert_pem: issued.cert_pem.clone().into_bytes(),
        key_pem: issued.key_pem.clone().into_bytes(),
    };
    let ch = connect(&app.server, "localhost", &id).await.unwrap();
    assert_eq!(
        Clients::new(ch, 1 << 20).audit.who_am_i(pb::WhoAmIRequest {}).await.unwrap().into_inner().agency,
        "education"
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_doudi"))
        .args(["certs", "revoke", "education", "--dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The hub reads `ca.crl` from its certificate directory.
    std::fs::copy(dir.join("ca.crl"), app.dir.path().join("ca.crl")).unwrap();

    let mut refused = false;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        refused = match connect(&app.server, "localhost", &id).await {
            Err(_) => true,
            Ok(ch) => Clients::new(ch, 1 << 20).audit.who_am_i(pb::WhoAmIRequest {}).await.is_err(),
        };
        if refused {
            break;
        }
    }
    assert!(refused, "the revoked certificate's next connection is refused within the poll interval");
    let mut other = app.client("medical_insurance").await;
    assert_eq!(other.audit.who_am_i(pb::WhoAmIRequest {}).await.unwrap().into_inner().agency, "medical_insurance");
    app.stop().await;
}
