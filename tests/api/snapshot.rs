//! Quarterly snapshots end to end (coordination.md): freezing once, coverage findings equal to the gaps the
//! synthetic population planted, verification that names what was altered, access.

use doudi::grpc::convert::fact_out;
use doudi::grpc::pb;
use doudi::synth::{AGENCIES, GAP_RULES, Population, SynthConfig};
use tonic::Code;

use crate::support::{TestApp, spawn_app};

async fn load(app: &TestApp, pop: &Population) {
    for agency in AGENCIES {
        let mut c = app.client(agency).await;
        let facts: Vec<pb::Fact> = pop.facts(agency).map(|f| fact_out(&f)).collect();
        for chunk in facts.chunks(5_000) {
            c.exchange.push_facts(pb::PushFactsRequest { facts: chunk.to_vec() }).await.unwrap();
        }
    }
}

fn q(quarter: &str) -> pb::CreateSnapshotRequest {
    pb::CreateSnapshotRequest { quarter: quarter.into() }
}

#[tokio::test]
async fn a_snapshot_freezes_the_quarter_once_and_finds_the_planted_gaps() {
    let app = spawn_app().await;
    // 20,000 dibao + tekun persons: every coverage rule has a planted gap (synth.rs test
    // planted_gaps_equal_what_the_facts_show), counted as of 2023-06-30, the end of 2023Q2.
    let pop = Population::generate(&SynthConfig { persons: 20_000, ..SynthConfig::default() });
    load(&app, &pop).await;
    let mut civil = app.client("civil_affairs").await;
    let snap = civil.coordination.create_snapshot(q("2023Q2")).await.unwrap().into_inner();
    assert_eq!(snap.as_of, "2023-06-30");
    assert_eq!(snap.previous_quarter, "");
    assert_eq!(snap.previous_hash, "0".repeat(64));
    assert_eq!(snap.content_hash.len(), 64);

    // A second call: ALREADY_EXISTS naming the hash; nothing changes.
    let again = civil.coordination.create_snapshot(q("2023Q2")).await.unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    assert!(again.message().contains(&snap.content_hash), "{}", again.message());

    // Coverage findings: exactly the gaps the generator planted, rule by rule.
    let expected = pop.expected();
    let mut lg = app.client("leading_group").await;
    let s = lg
        .coordination
        .get_quarterly_summary(pb::GetQuarterlySummaryRequest { quarter: "2023Q2".into() })
        .await
        .unwrap()
        .into_inner();
    let summary: doudi::domain::summary::QuarterlySummary =
        serde_json::from_value(struct_json(s.summary.unwrap())).unwrap();
    for rule in GAP_RULES {
        let found: u64 = summary.coverage.iter().filter(|c| c.code == rule).map(|c| c.count).sum();
        assert_eq!(found, expected.gaps[rule] as u64, "{rule}");
    }
    assert_eq!(summary.headline.dibao_tekun_persons, 20_000, "the generator's dibao + tekun");
    assert_eq!(summary.snapshot.content_hash, snap.content_hash);

    // Verification passes, then fails naming the section once a stored row is altered.
    let v = lg.coordination.verify_snapshot(pb::VerifySnapshotRequest { quarter: "2023Q2".into() }).await.unwrap();
    let v = v.into_inner();
    assert!(v.valid, "{:?}", v.differences);
    // One status row made to point at another version, and one JSON section edited.
    sqlx::query(
        "UPDATE snapshot_statuses SET source_version = source_version + 1 \
         WHERE person_key = (SELECT person_key FROM snapshot_statuses ORDER BY person_key LIMIT 1)",
    )
    .execute(app.app_hub.store.pool())
    .await
    .unwrap();
    sqlx::query("UPDATE snapshot_sections SET body = replace(body, '\"received\":', '\"received\": ') WHERE section = 'warnings'")
        .execute(app.app_hub.store.pool())
        .await
        .unwrap();
    let v = lg.coordination.verify_snapshot(pb::VerifySnapshotRequest { quarter: "2023Q2".into() }).await.unwrap();
    let v = v.into_inner();
    assert!(!v.valid);
    assert!(v.differences.iter().any(|d| d.starts_with("section warnings")), "{:?}", v.differences);
    assert!(v.differences.iter().any(|d| d.starts_with("section statuses")), "{:?}", v.differences);
    assert!(v.differences.iter().any(|d| d.contains("missing or altered since the snapshot")), "{:?}", v.differences);
    assert!(v.differences.iter().any(|d| d.starts_with("content_hash")), "{:?}", v.differences);
    assert_ne!(v.recomputed_content_hash, v.stored_content_hash);
    app.stop().await;
}

#[tokio::test]
async fn only_civil_affairs_freezes_and_only_finished_quarters() {
    let app = spawn_app().await;
    let mut mi = app.client("medical_insurance").await;
    let e = mi.coordination.create_snapshot(q("2023Q2")).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let mut civil = app.client("civil_affairs").await;
    // The hub's clock is today's date (2026 or later): 2099Q4 has not ended.
    let e = civil.coordination.create_snapshot(q("2099Q4")).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
    for bad in ["2023Q5", "2023-Q2", "", "23Q2"] {
        let e = civil.coordination.create_snapshot(q(bad)).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{bad}");
        assert!(e.message().starts_with("quarter:"), "{}", e.message());
    }
    // Chain: 2023Q1 then 2023Q2 links to it; 2022Q4 afterwards is refused.
    let q1 = civil.coordination.create_snapshot(q("2023Q1")).await.unwrap().into_inner();
    let q2 = civil.coordination.create_snapshot(q("2023Q2")).await.unwrap().into_inner();
    assert_eq!(q2.previous_quarter, "2023Q1");
    assert_eq!(q2.previous_hash, q1.content_hash);
    let e = civil.coordination.create_snapshot(q("2022Q4")).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    // Everyone may read headers; NOT_FOUND for a quarter never frozen.
    let mut edu = app.client("education").await;
    let list = edu.coordination.list_snapshots(pb::ListSnapshotsRequest {}).await.unwrap().into_inner();
    assert_eq!(list.snapshots.iter().map(|s| s.quarter.as_str()).collect::<Vec<_>>(), ["2023Q1", "2023Q2"]);
    let e = edu.coordination.get_snapshot(pb::GetSnapshotRequest { quarter: "2023Q3".into() }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_creates_have_exactly_one_winner() {
    let app = spawn_app().await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let mut c = app.client("civil_affairs").await;
        tasks.push(tokio::spawn(async move { c.coordination.create_snapshot(q("2023Q2")).await }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.code(), Code::AlreadyExists),
        }
    }
    assert_eq!(ok, 1);
    app.stop().await;
}

/// A protobuf Struct back to JSON.
pub fn struct_json(s: prost_types::Struct) -> serde_json::Value {
    fn value(v: prost_types::Value) -> serde_json::Value {
        use prost_types::value::Kind;
        match v.kind {
            None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
            Some(Kind::BoolValue(b)) => b.into(),
            Some(Kind::NumberValue(n)) if n.fract() == 0.0 && n.abs() < 9e15 => (n as i64).into(),
            Some(Kind::NumberValue(n)) => n.into(),
            Some(Kind::StringValue(s)) => s.into(),
            Some(Kind::ListValue(l)) => l.values.into_iter().map(value).collect::<Vec<_>>().into(),
            Some(Kind::StructValue(s)) => struct_json(s),
        }
    }
    serde_json::Value::Object(s.fields.into_iter().map(|(k, v)| (k, value(v))).collect())
}
