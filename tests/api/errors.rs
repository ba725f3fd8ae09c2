//! Standard error details (issue 21 item 2; proto/doudi/v1/errors.proto, docs/errors.md): every refusal of the hub
//! carries google.rpc ErrorInfo (reason, domain "doudi.v1"), a zh-CN LocalizedMessage, and where they apply
//! BadRequest (one violation per bad field), RetryInfo (with the old `retry-after-ms` trailer) and QuotaFailure.
//! Each test decodes the details from the real status a tonic client received (tonic_types::StatusExt).

use std::time::Duration;

use doudi::grpc::pb;
use macro_rules_attribute::apply;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

use crate::support::*;

const HUAN: &str = "621022";

/// The details of `s`, with the two that every refusal carries checked: ErrorInfo of `reason` in domain "doudi.v1",
/// and a LocalizedMessage in zh-CN.
fn details(s: &tonic::Status, reason: &str) -> ErrorDetails {
    let d = s.check_error_details().expect("grpc-status-details-bin decodes as google.rpc.Status");
    let info = d.error_info().unwrap_or_else(|| panic!("no ErrorInfo on {:?} {}", s.code(), s.message()));
    assert_eq!(info.reason, reason, "{}", s.message());
    assert_eq!(info.domain, "doudi.v1");
    let zh = d.localized_message().expect("a LocalizedMessage");
    assert_eq!(zh.locale, "zh-CN");
    assert!(!zh.message.is_empty() && !zh.message.is_ascii(), "Chinese text: {:?}", zh.message);
    d
}

fn warning(id: &str, id_number: &str, division: &str) -> pb::WarningIn {
    pb::WarningIn {
        warning_id: id.into(),
        id_number: id_number.into(),
        division_code: division.into(),
        reason: pb::WarningReason::IncomeDrop as i32,
        // 2023-09-28T02:00:00Z
        received_at: Some(prost_types::Timestamp { seconds: 1_695_866_400, nanos: 0 }),
    }
}

#[apply(e2e!)]
#[tokio::test]
async fn a_batch_with_bad_fields_names_each_of_them_in_bad_request() {
    let app = spawn_app().await;
    let mut civil = app.client("civil_affairs").await;
    let good = warning("W-0", &id(HUAN, (1980, 1, 1), 1), HUAN);
    // Warning 1 has two bad fields (17-digit ID number, no reason), warning 2 one (a division that does not exist),
    // warning 3 is good: three violations, in request order and field order.
    let batch = vec![
        good.clone(),
        pb::WarningIn { id_number: "62102219800101001".into(), reason: 0, ..warning("W-1", "", HUAN) },
        pb::WarningIn { division_code: "621099".into(), ..warning("W-2", &id(HUAN, (1980, 1, 2), 2), HUAN) },
        warning("W-3", &id(HUAN, (1980, 1, 3), 3), HUAN),
    ];
    let e = civil.coordination.push_warnings(pb::PushWarningsRequest { warnings: batch }).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let d = details(&e, "INVALID_FIELD");
    let v = &d.bad_request().expect("BadRequest").field_violations;
    let fields: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, ["warnings[1].id_number", "warnings[1].reason", "warnings[2].division_code"]);
    assert_eq!(v[1].description, "is required");
    assert!(v.iter().all(|v| !v.description.is_empty()));
    // The English message names every field too (the old clients' only source).
    for f in &fields {
        assert!(e.message().contains(f), "{f} in {}", e.message());
    }
    let zh = &d.localized_message().unwrap().message;
    assert!(zh.contains("warnings[1].id_number、warnings[1].reason、warnings[2].division_code"), "{zh}");
    assert!(d.retry_info().is_none(), "retrying the same bad request cannot help");
    assert!(e.metadata().get("retry-after-ms").is_none());
    assert_eq!(app.app_hub.store.coordination_counts().await.unwrap(), (0, 0), "nothing stored");

    // Twelve warnings with no warning_id: ten violations listed (MAX_VIOLATIONS), the count of the rest said.
    let many: Vec<pb::WarningIn> = (1..=12u16)
        .map(|seq| pb::WarningIn { warning_id: String::new(), ..warning("", &id(HUAN, (1981, 1, 1), seq), HUAN) })
        .collect();
    let e = civil.coordination.push_warnings(pb::PushWarningsRequest { warnings: many }).await.unwrap_err();
    let d = details(&e, "INVALID_FIELD");
    let v = &d.bad_request().unwrap().field_violations;
    assert_eq!(v.len(), 10);
    assert_eq!((v[0].field.as_str(), v[9].field.as_str()), ("warnings[0].warning_id", "warnings[9].warning_id"));
    assert!(e.message().ends_with("; and 2 more invalid fields"), "{}", e.message());
    assert_eq!(d.error_info().unwrap().metadata.get("invalid_fields").map(String::as_str), Some("12"));
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn one_bad_field_of_a_unary_call_is_one_violation() {
    let app = spawn_app().await;
    let mut mi = app.client("medical_insurance").await;
    let e = get(&mut mi, &id(HUAN, (1980, 1, 1), 1), "2023-02-30").await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("as_of:"), "{}", e.message());
    let d = details(&e, "INVALID_FIELD");
    let v = &d.bad_request().unwrap().field_violations;
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].field, "as_of");
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn a_permission_refusal_says_the_policy_refused() {
    let app = spawn_app().await;
    // The leading group reads aggregates only, never a person (docs/spec/security.md's matrix).
    let mut lg = app.client("leading_group").await;
    let e = get(&mut lg, &id(HUAN, (1980, 1, 1), 1), "2023-06-30").await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let d = details(&e, "PERMISSION_DENIED_BY_POLICY");
    assert!(d.bad_request().is_none() && d.retry_info().is_none() && d.quota_failure().is_none());
    // A county office reaching outside its county: the same reason.
    let mut huan = app.client_in("civil_affairs", Some(HUAN)).await;
    let e = huan
        .exchange
        .list_recipients(pb::ListRecipientsRequest {
            division_code: "621002".into(),
            as_of: "2023-06-30".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    details(&e, "PERMISSION_DENIED_BY_POLICY");
    // An agency the policy does not know is not a permission question: UNAUTHENTICATED.
    let mut unknown = app.client("veterans_affairs").await;
    let e = unknown.audit.who_am_i(pb::WhoAmIRequest {}).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    details(&e, "CLIENT_CERTIFICATE_REJECTED");
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn a_quota_refusal_says_when_to_retry_in_retry_info_and_the_old_trailer() {
    // 2 requests a second with a burst of 3: the 4th immediate request is over, and GCRA frees one request every
    // 1000 / 2 = 500 ms, so the wait is more than 0 and at most 500 ms.
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
    let d = details(&e, "QUOTA_EXCEEDED");
    let info = d.error_info().unwrap();
    assert_eq!(info.metadata.get("agency").map(String::as_str), Some("education"));
    assert_eq!(info.metadata.get("quota_per_second").map(String::as_str), Some("2"));
    let wait = d.retry_info().expect("RetryInfo").retry_delay.expect("a delay");
    assert!(wait > Duration::ZERO && wait <= Duration::from_millis(500), "{wait:?}");
    // The old trailer says the same wait, in whole milliseconds.
    let ms: u128 = e.metadata().get("retry-after-ms").unwrap().to_str().unwrap().parse().unwrap();
    assert_eq!(ms, wait.as_millis().max(1));
    let q = d.quota_failure().expect("QuotaFailure");
    assert_eq!(q.violations.len(), 1);
    assert_eq!(q.violations[0].subject, "agency:education");
    assert!(d.localized_message().unwrap().message.contains("education"));
    // After the wait, served again.
    tokio::time::sleep(wait + Duration::from_millis(20)).await;
    edu.audit.who_am_i(pb::WhoAmIRequest {}).await.unwrap();
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn a_concurrency_refusal_advises_one_second() {
    let app = spawn_app_with(|c| c.max_streams_per_agency = 1).await;
    let mut first = app.client("civil_affairs").await;
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::PushFactsRequest>(1);
    let running = tokio::spawn(async move { first.exchange.stream_facts(ReceiverStream::new(rx)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut second = app.client("civil_affairs").await;
    let (tx2, rx2) = tokio::sync::mpsc::channel::<pb::PushFactsRequest>(1);
    drop(tx2);
    let e = second.exchange.stream_facts(ReceiverStream::new(rx2)).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
    let d = details(&e, "CONCURRENCY_LIMIT_EXCEEDED");
    assert_eq!(d.error_info().unwrap().metadata.get("limit").map(String::as_str), Some("1"));
    // errors.proto: 1 s, the same as the trailer's 1000 ms.
    assert_eq!(d.retry_info().unwrap().retry_delay, Some(Duration::from_secs(1)));
    assert_eq!(e.metadata().get("retry-after-ms").unwrap(), "1000");
    drop(tx);
    running.await.unwrap().unwrap();
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn an_oversized_message_has_details_but_no_retry_info() {
    // 2,000 bytes allowed; one fact with a 3,000-character household id is over it however it is encoded.
    let app = spawn_app_with(|c| c.max_message_bytes = 2_000).await;
    let mut civil = app.client("civil_affairs").await;
    let mut fact = with(base("BIG-1", &id(HUAN, (1980, 1, 1), 1), "621022101203"), rural_dibao());
    if let Some(pb::fact::Payload::Assistance(a)) = fact.payload.as_mut() {
        a.household_id = "H".repeat(3_000);
    }
    let e = push(&mut civil, vec![fact]).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{}", e.message());
    let d = details(&e, "MESSAGE_TOO_LARGE");
    assert!(d.retry_info().is_none(), "the same message would be refused again");
    assert!(e.metadata().get("retry-after-ms").is_none());
    app.stop().await;
}
