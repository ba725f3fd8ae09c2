//! Operations (issue 9): Prometheus metrics scraped over plain HTTP from `metrics_listen`, and the request id
//! echoed in response metadata. Every expected number is counted from the calls each test makes.

use std::collections::BTreeMap;
use std::time::Duration;

use doudi::grpc::pb;
use macro_rules_attribute::apply;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use crate::support::*;

/// `GET /metrics` with a minimal HTTP/1.1 client; the body.
pub(crate) async fn scrape(app: &TestApp) -> String {
    let addr = app.metrics_addr.expect("metrics_listen is set");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("Content-Type: text/plain; version=0.0.4"), "{head}");
    body.to_owned()
}

/// The value of the sample `name` whose labels are exactly `labels` (in any order), if present.
pub(crate) fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<&str, &str> = labels.iter().copied().collect();
    text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (n, got) = match series.split_once('{') {
            Some((n, rest)) => {
                let inner = rest.strip_suffix('}')?;
                let got: BTreeMap<&str, &str> = inner
                    .split("\",")
                    .filter(|p| !p.is_empty())
                    .filter_map(|p| {
                        let (k, v) = p.split_once("=\"")?;
                        Some((k, v.trim_end_matches('"')))
                    })
                    .collect();
                (n, got)
            }
            None => (series, BTreeMap::new()),
        };
        (n == name && got == want).then(|| value.parse().unwrap())
    })
}

const EXCHANGE: &str = "doudi.v1.RecipientExchange";

fn requests(text: &str, method: &str, agency: &str, code: &str) -> Option<f64> {
    sample(
        text,
        "doudi_grpc_requests_total",
        &[("service", EXCHANGE), ("method", method), ("agency", agency), ("code", code)],
    )
}

fn facts(text: &str, agency: &str, outcome: &str) -> Option<f64> {
    sample(text, "doudi_facts_ingested_total", &[("agency", agency), ("outcome", outcome)])
}

fn dibao(fact_id: &str, version: u64, person: &str, benefit: &str) -> pb::Fact {
    let mut f = with(base(fact_id, person, "621022101203"), rural_dibao());
    f.source_version = version;
    if let Some(pb::fact::Payload::Assistance(a)) = &mut f.payload {
        a.monthly_benefit = benefit.into();
    }
    f
}

#[apply(e2e!)]
#[tokio::test]
async fn metrics_count_requests_by_agency_method_and_code_and_facts_by_outcome() {
    let app = spawn_app_with(|c| c.metrics_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let person = id("621022", (1985, 12, 31), 3);
    let mut ca = app.client("civil_affairs").await;

    // 1. A own kind (ACCEPTED) and a foreign kind (REJECTED for that record); 2. the same again (DUPLICATE);
    // 3. a higher version with other content (NEW_VERSION); 4. the first version's number with other content (STALE).
    let pushes = [
        vec![dibao("MZ-1", 1, &person, "442.00"), with(base("JY-1", &person, "621022101203"), student())],
        vec![dibao("MZ-1", 1, &person, "442.00")],
        vec![dibao("MZ-1", 2, &person, "500.00")],
        vec![dibao("MZ-1", 1, &person, "300.00")],
    ];
    for facts in pushes {
        ca.exchange.push_facts(pb::PushFactsRequest { facts }).await.unwrap();
    }
    // 5. leading_group owns no payload kind: the whole batch is refused.
    let mut lg = app.client("leading_group").await;
    let e = lg
        .exchange
        .push_facts(pb::PushFactsRequest { facts: vec![dibao("LG-1", 1, &person, "442.00")] })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    let text = scrape(&app).await;
    assert_eq!(requests(&text, "PushFacts", "civil_affairs", "OK"), Some(4.0), "{text}");
    assert_eq!(requests(&text, "PushFacts", "leading_group", "PERMISSION_DENIED"), Some(1.0));
    assert_eq!(requests(&text, "PushFacts", "leading_group", "OK"), None, "no such call was made");
    assert_eq!(requests(&text, "PushFacts", "civil_affairs", "PERMISSION_DENIED"), None);
    assert_eq!(
        sample(&text, "doudi_grpc_request_duration_seconds_count", &[("service", EXCHANGE), ("method", "PushFacts")]),
        Some(5.0),
        "every PushFacts is timed, refused or not"
    );
    for (outcome, n) in [("ACCEPTED", 1.0), ("REJECTED", 1.0), ("DUPLICATE", 1.0), ("NEW_VERSION", 1.0), ("STALE", 1.0)]
    {
        assert_eq!(facts(&text, "civil_affairs", outcome), Some(n), "{outcome}");
    }
    assert_eq!(facts(&text, "leading_group", "REJECTED"), None, "a refused batch ingests nothing");
    // Four accepted pushes, one audit event each; the refused one appends none.
    assert_eq!(sample(&text, "doudi_audit_chain_length", &[]), Some(4.0));
    // Migration 0003 holds the notices of 2022–2026: the calendar runs to 2026-12-31 (still so on a later date,
    // as the newest covered year before it).
    assert_eq!(sample(&text, "doudi_calendar_covered_until", &[]), Some(20261231.0));
    if crate::ON_POSTGRES {
        // One pool of at most 16 connections (store/postgres/mod.rs), at least one open.
        let size = sample(&text, "doudi_db_pool_connections", &[("pool", "postgres"), ("state", "size")]).unwrap();
        assert!((1.0..=16.0).contains(&size), "{size}");
    } else {
        // The write pool holds exactly one connection.
        assert_eq!(sample(&text, "doudi_db_pool_connections", &[("pool", "write"), ("state", "size")]), Some(1.0));
    }

    // A StreamFacts stream is counted as open while it runs.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(pb::PushFactsRequest { facts: vec![dibao("MZ-2", 1, &person, "442.00")] }).await.unwrap();
    let mut streamer = app.client("civil_affairs").await;
    let running = tokio::spawn(async move { streamer.exchange.stream_facts(ReceiverStream::new(rx)).await });
    let open = |t: &str| sample(t, "doudi_stream_facts_open", &[("agency", "civil_affairs")]);
    let mut seen_open = None;
    for _ in 0..100 {
        seen_open = open(&scrape(&app).await);
        if seen_open == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen_open, Some(1.0), "one stream open");
    drop(tx);
    let r = running.await.unwrap().unwrap().into_inner();
    assert_eq!(r.counts.unwrap().accepted, 1);

    let text = scrape(&app).await;
    assert_eq!(open(&text), Some(0.0), "the stream has ended");
    assert_eq!(requests(&text, "StreamFacts", "civil_affairs", "OK"), Some(1.0));
    assert_eq!(facts(&text, "civil_affairs", "ACCEPTED"), Some(2.0), "one more from the stream");
    assert_eq!(sample(&text, "doudi_audit_chain_length", &[]), Some(5.0), "the stream's one message");
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn the_request_id_is_echoed_or_made() {
    let app = spawn_app_with(|c| c.metrics_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let mut edu = app.client("education").await;
    let header = |m: &tonic::metadata::MetadataMap| m.get("x-request-id").map(|v| v.to_str().unwrap().to_owned());

    let mut req = tonic::Request::new(pb::WhoAmIRequest {});
    req.metadata_mut().insert("x-request-id", "ops-test-42".parse().unwrap());
    let r = edu.audit.who_am_i(req).await.unwrap();
    assert_eq!(header(r.metadata()).as_deref(), Some("ops-test-42"));

    // Without one (and with one that is not sane) the hub makes a UUID v4.
    let r = edu.audit.who_am_i(pb::WhoAmIRequest {}).await.unwrap();
    let made = header(r.metadata()).unwrap();
    assert_eq!(made.len(), 36, "{made}");
    let mut req = tonic::Request::new(pb::WhoAmIRequest {});
    req.metadata_mut().insert("x-request-id", "a b".parse().unwrap());
    let r = edu.audit.who_am_i(req).await.unwrap();
    let replaced = header(r.metadata()).unwrap();
    assert!(replaced != "a b" && replaced.len() == 36, "{replaced}");

    // An error response carries it too.
    let mut req = tonic::Request::new(pb::PushFactsRequest { facts: vec![] });
    req.metadata_mut().insert("x-request-id", "ops-test-43".parse().unwrap());
    let e = edu.exchange.push_facts(req).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(header(e.metadata()).as_deref(), Some("ops-test-43"));

    let text = scrape(&app).await;
    let who = |code| {
        sample(
            &text,
            "doudi_grpc_requests_total",
            &[("service", "doudi.v1.Audit"), ("method", "WhoAmI"), ("agency", "education"), ("code", code)],
        )
    };
    assert_eq!(who("OK"), Some(3.0));
    assert_eq!(requests(&text, "PushFacts", "education", "INVALID_ARGUMENT"), Some(1.0));
    app.stop().await;
}

/// Issue 21 item 4: the trace id of a call comes back in `x-trace-id`: the client's W3C `traceparent`'s (the spec's
/// example here), or a new one when it sent none or a malformed one, which is ignored (the call is served).
#[apply(e2e!)]
#[tokio::test]
async fn the_trace_id_is_echoed_from_traceparent_or_made() {
    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    let app = spawn_app().await;
    let mut edu = app.client("education").await;
    let header = |m: &tonic::metadata::MetadataMap| m.get("x-trace-id").map(|v| v.to_str().unwrap().to_owned());
    let who = |traceparent: Option<&str>| {
        let mut req = tonic::Request::new(pb::WhoAmIRequest {});
        if let Some(t) = traceparent {
            req.metadata_mut().insert("traceparent", t.parse().unwrap());
        }
        req
    };

    let r = edu.audit.who_am_i(who(Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))).await.unwrap();
    assert_eq!(header(r.metadata()).as_deref(), Some(TRACE));

    let mut made = Vec::new();
    for traceparent in [
        None,
        // Upper-case hex, an all-zero trace id, version ff: each ignored.
        Some("00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01"),
        Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
        Some("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ] {
        let r = edu.audit.who_am_i(who(traceparent)).await.unwrap();
        assert_eq!(r.get_ref().agency, "education", "served");
        let id = header(r.metadata()).unwrap();
        assert!(doudi::grpc::trace_context::is_trace_id(&id) && id != TRACE, "{traceparent:?}: {id}");
        made.push(id);
    }
    made.sort();
    made.dedup();
    assert_eq!(made.len(), 4, "a new trace each time");

    // An error response carries it too.
    let mut req = tonic::Request::new(pb::PushFactsRequest { facts: vec![] });
    req.metadata_mut()
        .insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap());
    let e = edu.exchange.push_facts(req).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(header(e.metadata()).as_deref(), Some(TRACE));
    app.stop().await;
}
