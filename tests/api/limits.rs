//! Per-agency limits (docs/spec/security.md "Abuse and faults"): a request-rate quota and concurrent streams, answered
//! with RESOURCE_EXHAUSTED and a retry hint, other agencies unaffected, nothing half-written.

use doudi::grpc::pb;
use macro_rules_attribute::apply;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use crate::support::*;

#[apply(e2e!)]
#[tokio::test]
async fn an_agency_over_its_request_quota_is_told_when_to_retry() {
    // 2 requests a second with a burst of 3: the 4th immediate request is over the quota.
    let app = spawn_app_with(|c| {
        c.rate_per_agency = 2;
        c.rate_burst = 3;
    })
    .await;
    let mut edu = app.client("education").await;
    for _ in 0..3 {
        edu.audit.who_am_i(pb::WhoAmIRequest {}).await.unwrap();
    }
    let e = edu.audit.who_am_i(pb::WhoAmIRequest {}).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!(e.message().contains("agency education") && e.message().contains("retry in"), "{}", e.message());
    let wait: u64 = e.metadata().get("retry-after-ms").unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=1_000).contains(&wait), "{wait} ms (one request every 500 ms)");
    // Another agency is not affected.
    let mut hr = app.client("human_resources").await;
    hr.audit.who_am_i(pb::WhoAmIRequest {}).await.unwrap();
    // After the hint, the agency is served again.
    tokio::time::sleep(std::time::Duration::from_millis(wait + 20)).await;
    edu.audit.who_am_i(pb::WhoAmIRequest {}).await.unwrap();
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn a_second_concurrent_stream_over_the_limit_is_refused_and_writes_nothing() {
    let app = spawn_app_with(|c| c.max_streams_per_agency = 1).await;
    let person = id("621022", (1970, 1, 1), 1);
    let fact = |fid: &str| with(base(fid, &person, "621022101203"), rural_dibao());
    let mut first = app.client("civil_affairs").await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(pb::PushFactsRequest { facts: vec![fact("S-1")] }).await.unwrap();
    let running = tokio::spawn(async move { first.exchange.stream_facts(ReceiverStream::new(rx)).await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let before = app.fact_versions().await;
    let mut second = app.client("civil_affairs").await;
    let (tx2, rx2) = tokio::sync::mpsc::channel(4);
    tx2.send(pb::PushFactsRequest { facts: vec![fact("S-2")] }).await.unwrap();
    drop(tx2);
    let e = second.exchange.stream_facts(ReceiverStream::new(rx2)).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{}", e.message());
    assert!(e.metadata().get("retry-after-ms").is_some());
    assert_eq!(app.fact_versions().await, before, "the refused stream wrote nothing");
    // Another agency's stream is not affected.
    let mut mi = app.client("medical_insurance").await;
    let (tx3, rx3) = tokio::sync::mpsc::channel(1);
    drop(tx3);
    mi.exchange.stream_facts(ReceiverStream::new(rx3)).await.unwrap();

    // The first stream finishes; then a new one is accepted.
    drop(tx);
    let r = running.await.unwrap().unwrap().into_inner();
    assert_eq!(r.counts.unwrap().accepted, 1);
    let mut third = app.client("civil_affairs").await;
    let (tx4, rx4) = tokio::sync::mpsc::channel(4);
    tx4.send(pb::PushFactsRequest { facts: vec![fact("S-3")] }).await.unwrap();
    drop(tx4);
    assert_eq!(
        third.exchange.stream_facts(ReceiverStream::new(rx4)).await.unwrap().into_inner().counts.unwrap().accepted,
        1
    );
    app.stop().await;
}
