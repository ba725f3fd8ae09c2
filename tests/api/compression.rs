//! Message compression (issue 21 item 3; `server::GZIP`): gzip requests are accepted, clients that ask (with
//! `grpc-accept-encoding: gzip`) get gzip responses and the others uncompressed ones, `grpc-encoding: identity` is an
//! uncompressed request, any other encoding is UNIMPLEMENTED, and a gzip message is limited by what it inflates to.

use std::sync::{Arc, Mutex};

use doudi::client::connect;
use doudi::grpc::pb;
use doudi::grpc::pb::recipient_exchange_client::RecipientExchangeClient;
use macro_rules_attribute::apply;
use tonic::Code;
use tonic::codec::CompressionEncoding::Gzip;
use tonic::transport::Channel;
use tonic_types::StatusExt;

use crate::support::*;

const VILLAGE: &str = "621022101203";

type HttpRequest = http::Request<tonic::body::Body>;

/// The request headers a client sent: (`grpc-encoding`, `grpc-accept-encoding`), one pair per call.
type Seen = Arc<Mutex<Vec<(Option<String>, Option<String>)>>>;

/// A RecipientExchange client of `agency` whose requests' compression headers are recorded in the returned list.
async fn recording_client(
    app: &TestApp,
    agency: &str,
) -> (
    RecipientExchangeClient<tower::util::MapRequest<Channel, impl FnMut(HttpRequest) -> HttpRequest + Clone + use<>>>,
    Seen,
) {
    let channel = connect(&app.server, "localhost", &app.identity(agency, None)).await.unwrap();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let svc = tower::ServiceBuilder::new()
        .map_request(move |req: HttpRequest| {
            let h = |name: &str| req.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
            record.lock().unwrap().push((h("grpc-encoding"), h("grpc-accept-encoding")));
            req
        })
        .service(channel);
    (RecipientExchangeClient::new(svc), seen)
}

fn encoding(m: &tonic::metadata::MetadataMap) -> Option<&str> {
    m.get("grpc-encoding").map(|v| v.to_str().unwrap())
}

#[apply(e2e!)]
#[tokio::test]
async fn a_gzip_request_is_stored_and_a_client_that_asks_gets_gzip_back() {
    let app = spawn_app().await;
    let person = id("621022", (1980, 1, 1), 1);
    let (client, seen) = recording_client(&app, "civil_affairs").await;
    let mut civil = client.send_compressed(Gzip).accept_compressed(Gzip);
    let resp = civil
        .push_facts(pb::PushFactsRequest { facts: vec![with(base("GZ-1", &person, VILLAGE), rural_dibao())] })
        .await
        .unwrap();
    assert_eq!(encoding(resp.metadata()), Some("gzip"), "the response is gzip");
    let results = resp.into_inner().results;
    assert_eq!(results.len(), 1);
    assert_eq!(outcome(&results[0]), pb::FactOutcome::Accepted);
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].0.as_deref(), Some("gzip"), "the request went gzip-compressed");
        assert!(seen[0].1.as_deref().unwrap().split(',').any(|e| e.trim() == "gzip"), "and asked for gzip");
    }

    // Read back with gzip both ways: the values pushed (rural_dibao: 442.00 a month).
    let (client, _) = recording_client(&app, "medical_insurance").await;
    let mut mi = client.send_compressed(Gzip).accept_compressed(Gzip);
    let resp = mi
        .get_recipient(pb::GetRecipientRequest {
            id_number: person.clone(),
            as_of: "2023-06-30".into(),
            purpose: "compression test".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(encoding(resp.metadata()), Some("gzip"));
    let r = resp.into_inner();
    assert_eq!(r.facts.len(), 1);
    match &r.facts[0].payload {
        Some(pb::fact::Payload::Assistance(a)) => assert_eq!(a.monthly_benefit, "442.00"),
        other => panic!("assistance expected, got {other:?}"),
    }

    // A client that sends gzip but does not ask for it gets an uncompressed response.
    let (client, _) = recording_client(&app, "civil_affairs").await;
    let mut plain_answer = client.send_compressed(Gzip);
    let resp = plain_answer
        .push_facts(pb::PushFactsRequest { facts: vec![with(base("GZ-1", &person, VILLAGE), rural_dibao())] })
        .await
        .unwrap();
    assert_eq!(encoding(resp.metadata()), None);
    assert_eq!(outcome(&resp.into_inner().results[0]), pb::FactOutcome::Duplicate);
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn identity_is_an_uncompressed_request_and_other_encodings_are_unimplemented() {
    let app = spawn_app().await;
    let person = id("621022", (1980, 1, 2), 2);
    let (mut civil, seen) = recording_client(&app, "civil_affairs").await;
    let mut req =
        tonic::Request::new(pb::PushFactsRequest { facts: vec![with(base("ID-1", &person, VILLAGE), rural_dibao())] });
    req.metadata_mut().insert("grpc-encoding", "identity".parse().unwrap());
    let resp = civil.push_facts(req).await.unwrap();
    assert_eq!(encoding(resp.metadata()), None, "a client that does not ask for gzip gets none");
    assert_eq!(outcome(&resp.into_inner().results[0]), pb::FactOutcome::Accepted);
    assert_eq!(seen.lock().unwrap()[0].0.as_deref(), Some("identity"));

    // zstd is not one the hub accepts: UNIMPLEMENTED (gRPC compression spec), naming what it accepts.
    let mut req =
        tonic::Request::new(pb::PushFactsRequest { facts: vec![with(base("ID-2", &person, VILLAGE), rural_dibao())] });
    req.metadata_mut().insert("grpc-encoding", "zstd".parse().unwrap());
    let e = civil.push_facts(req).await.unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented, "{}", e.message());
    let accepted = e.metadata().get("grpc-accept-encoding").unwrap().to_str().unwrap();
    assert!(accepted.split(',').any(|x| x.trim() == "gzip"), "{accepted}");
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn a_gzip_message_is_limited_by_what_it_inflates_to() {
    // 64 KiB allowed. 100 facts with a 1,000-character household id are over 100,000 bytes uncompressed but only a
    // few KiB in gzip (the same bytes repeated): the frame passes the length check, inflating it stops at the limit.
    let app = spawn_app_with(|c| c.max_message_bytes = 64 * 1024).await;
    let facts: Vec<pb::Fact> = (1..=100u16)
        .map(|i| {
            let mut f = with(base(&format!("BOMB-{i}"), &id("621022", (1980, 1, 3), i), VILLAGE), rural_dibao());
            if let Some(pb::fact::Payload::Assistance(a)) = f.payload.as_mut() {
                a.household_id = "H".repeat(1_000);
            }
            f
        })
        .collect();
    let (client, _) = recording_client(&app, "civil_affairs").await;
    let mut civil = client.send_compressed(Gzip);
    let before = app.fact_versions().await;
    let e = civil.push_facts(pb::PushFactsRequest { facts }).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{}", e.message());
    assert!(e.message().contains("65536 bytes when decompressed"), "{}", e.message());
    let d = e.check_error_details().unwrap();
    assert_eq!(d.error_info().unwrap().reason, "MESSAGE_TOO_LARGE");
    assert_eq!(app.fact_versions().await, before, "nothing stored");
    app.stop().await;
}
