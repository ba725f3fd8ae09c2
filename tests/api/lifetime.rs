//! Connection lifetime and graceful shutdown (issue 7 item 4; docs/spec/security.md "Abuse and faults"): health
//! NOT_SERVING first, open streams told to reconnect with what was committed, exit within a bounded time even with a
//! stream that never ends; `max_connection_age` with grace.

use std::time::{Duration, Instant};

use doudi::grpc::pb;
use macro_rules_attribute::apply;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

use crate::support::{base, id, rural_dibao, spawn_app_with, with};

#[apply(e2e!)]
#[tokio::test]
async fn shutdown_says_not_serving_first_tells_streams_to_resume_and_ends_in_bounded_time() {
    let mut app = spawn_app_with(|c| c.shutdown_grace_secs = 2).await;
    let person = |n: u16| id("621022", (1970, 1, 1), n);
    let fact = |n: u16| with(base(&format!("SD-{n}"), &person(n), "621022101203"), rural_dibao());

    // A health watch never ends by itself: without a bounded drain it would hold the server open for ever.
    let watch_channel =
        doudi::client::connect(&app.server, "localhost", &app.identity("civil_affairs", None)).await.unwrap();
    let mut watch = HealthClient::new(watch_channel)
        .watch(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(watch.message().await.unwrap().unwrap().status, ServingStatus::Serving as i32);

    // A StreamFacts stream sends one batch of 3 facts and then stays open.
    let mut streamer = app.client("civil_affairs").await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(pb::PushFactsRequest { facts: vec![fact(1), fact(2), fact(3)] }).await.unwrap();
    let running = tokio::spawn(async move { streamer.exchange.stream_facts(ReceiverStream::new(rx)).await });
    // Wait until the batch is committed (seen by another connection).
    let mut reader = app.client("civil_affairs").await;
    for _ in 0..100 {
        let r = reader
            .exchange
            .get_recipient(pb::GetRecipientRequest {
                id_number: person(3),
                as_of: "2023-06-30".into(),
                purpose: "test".into(),
                ..Default::default()
            })
            .await;
        if r.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let versions_before_stop = app.fact_versions().await;
    assert_eq!(versions_before_stop, 3);

    let asked = Instant::now();
    app.begin_stop();

    // Health turns NOT_SERVING before anything is closed.
    let next = tokio::time::timeout(Duration::from_secs(2), watch.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(next.status, ServingStatus::NotServing as i32);

    // The open stream is told to reconnect and resume after the 3 facts that were committed.
    let e = tokio::time::timeout(Duration::from_secs(2), running).await.unwrap().unwrap().unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{}", e.message());
    assert!(e.message().contains("resend from fact 3"), "{}", e.message());
    assert!(e.message().contains("accepted 3"), "{}", e.message());
    drop(tx);

    // The health watch never ends on its own; the hub still exits within the grace (2 s) plus a margin.
    tokio::time::timeout(Duration::from_secs(6), app.join()).await.expect("exit within the shutdown grace").unwrap();
    let took = asked.elapsed();
    assert!(took >= Duration::from_millis(1900), "the watch stream was given the grace: {took:?}");
    // The watch stream was cut (an error or an end, not a hang).
    let end = tokio::time::timeout(Duration::from_secs(2), watch.message()).await.expect("the watch ended");
    assert!(!matches!(end, Ok(Some(_))), "no more health messages after NOT_SERVING: {end:?}");
    // What was committed before the stop is still there.
    let store = doudi::store::Store::open(&app.database_url).await.unwrap();
    assert_eq!(store.fact_version_count().await.unwrap(), versions_before_stop);
}

#[apply(e2e!)]
#[tokio::test]
async fn a_connection_past_its_age_is_sent_away_and_cut_after_the_grace() {
    let app = spawn_app_with(|c| {
        c.max_connection_age_secs = 1;
        c.max_connection_age_grace_secs = 1;
    })
    .await;
    let mut client = app.client("civil_affairs").await;
    client.audit.who_am_i(pb::WhoAmIRequest {}).await.unwrap();

    // A stream opened on the connection and kept open past age + grace (2 s) is cut.
    let mut streamer = app.client("civil_affairs").await;
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::PushFactsRequest>(1);
    let opened = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(8), streamer.exchange.stream_facts(ReceiverStream::new(rx)))
        .await
        .expect("cut within age + grace + margin");
    let e = r.unwrap_err();
    assert!(matches!(e.code(), Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled), "{e:?}");
    assert!(opened.elapsed() >= Duration::from_millis(1500), "not before age + grace: {:?}", opened.elapsed());
    drop(tx);

    // Calls after the GOAWAY go over a new connection: the client carries on.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    client.audit.who_am_i(pb::WhoAmIRequest {}).await.unwrap();
    app.stop().await;
}
