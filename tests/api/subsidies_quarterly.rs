//! The quarterly summary's section 12, the subsidy campaigns of the quarter (issue 18 item 5; docs/subsidies.md "In
//! the quarterly summary"): decided when the quarter is frozen, kept in the snapshot's optional `campaigns` section
//! (format v2, docs/snapshot-format.md), absent for a quarter without a campaign month (format v1, as before).
//!
//! The roster and indices are `subsidies.rs`'s (A urban dibao 环县, B rural dibao 环县 + unemployment insurance, C
//! rural dibao-marginal 宁县, D urban dibao 环县 from 2022-10-01, E at-risk 环县; Aug 2022 CPI 2.50 / food 6.10, Sep
//! 2022 CPI 2.80 / food 8.80). Every expected figure is computed by hand beside its assertion.

use macro_rules_attribute::apply;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tonic::Code;

use doudi::client::Clients;
use doudi::grpc::pb;

use crate::subsidies::{HUAN, NING, accepted, assistance, at, fact, index, indices, push_indices, roster};
use crate::support::*;

/// A one-time subsidy for test (amounts of our own, not of a document): 200.00 per dibao person, 300.00 per tekun
/// person, paid in July 2022.
const ONE_TIME: &str = r#"{"code":"t-2022-07-one-time","name":"一次性生活补贴","month":"2022-07",
  "fund_program":"ONE_TIME_SUBSIDY","amounts":[{"group":"DIBAO","base":"200.00"},{"group":"TEKUN","base":"300.00"}],
  "pay_once_at_highest":true}"#;

/// Run one statement directly on the hub's database, as a tamperer would; rows affected.
async fn execute(app: &TestApp, sql: &'static str) -> u64 {
    let store = &app.app_hub.store;
    if crate::ON_POSTGRES {
        sqlx::query(sql).execute(store.pg_pool().unwrap()).await.unwrap().rows_affected()
    } else {
        sqlx::query(sql).execute(store.sqlite_pool().unwrap()).await.unwrap().rows_affected()
    }
}

async fn freeze(civil: &mut Clients, quarter: &str) -> pb::Snapshot {
    civil
        .coordination
        .create_snapshot(pb::CreateSnapshotRequest { quarter: quarter.into() })
        .await
        .unwrap()
        .into_inner()
}

async fn summary(lg: &mut Clients, quarter: &str) -> Value {
    let s = lg
        .coordination
        .get_quarterly_summary(pb::GetQuarterlySummaryRequest { quarter: quarter.into() })
        .await
        .unwrap()
        .into_inner();
    doudi::grpc::snapshot::struct_to_json(s.summary.unwrap())
}

async fn verify(lg: &mut Clients, quarter: &str) -> pb::VerifySnapshotResponse {
    lg.coordination.verify_snapshot(pb::VerifySnapshotRequest { quarter: quarter.into() }).await.unwrap().into_inner()
}

/// The content hash as docs/snapshot-format.md specifies it, recomputed here from the header's fields: the v1 text,
/// or the v2 text when the section hashes hold `campaigns`.
fn documented_hash(s: &pb::Snapshot) -> String {
    let cutoff = s.knowledge_cutoff.unwrap();
    let micros = cutoff.seconds * 1_000_000 + i64::from(cutoff.nanos / 1_000);
    let v2 = s.section_hashes.contains_key("campaigns");
    let mut text = format!(
        "doudi-snapshot-{}\nquarter={}\nas_of={}\nknowledge_cutoff={micros}\n",
        if v2 { "v2" } else { "v1" },
        s.quarter,
        s.as_of
    );
    for name in [
        "statuses",
        "aggregates",
        "agencies",
        "coverage",
        "medical",
        "fund_reports",
        "warnings",
        "late_corrections",
        "standards",
    ] {
        text.push_str(&format!("{name}={}\n", s.section_hashes[name]));
    }
    if v2 {
        text.push_str(&format!("campaigns={}\n", s.section_hashes["campaigns"]));
    }
    hex::encode(Sha256::digest(text.as_bytes()))
}

async fn report(app: &TestApp, fund_program: pb::FundProgram, month: &str, amount: &str, recipients: i64) {
    let mut huan = app.client_in("civil_affairs", Some(HUAN)).await;
    huan.coordination
        .submit_fund_report(pb::SubmitFundReportRequest {
            county_code: HUAN.into(),
            month: month.into(),
            program: fund_program as i32,
            disbursed_on: format!("{month}-25"),
            amount: amount.into(),
            recipients,
        })
        .await
        .unwrap();
}

#[apply(e2e!)]
#[tokio::test]
async fn the_quarterly_summary_shows_the_quarters_campaigns_as_frozen() {
    use doudi::domain::admin::Role;
    use doudi::grpc::pb::admin_client::AdminClient;
    let app = spawn_app().await;
    roster(&app).await;
    indices(&app).await; // the hub's clock: 2022-11-20 10:00 Asia/Shanghai, so 2022Q3 is over.

    // The one-time subsidy of July 2022, added by the system administrator through the Admin service.
    let issued = app.ca.issue_operator(TRUST_DOMAIN, Role::System, "sam").unwrap();
    let op = doudi::client::ClientIdentity {
        ca_pem: app.ca.cert_pem().as_bytes().to_vec(),
        cert_pem: issued.cert_pem.into_bytes(),
        key_pem: issued.key_pem.into_bytes(),
    };
    let mut admin = AdminClient::new(doudi::client::connect(&app.server, "localhost", &op).await.unwrap());
    admin
        .add_fixed_campaign(pb::AddFixedCampaignRequest { campaign_json: ONE_TIME.into(), source: "test".into() })
        .await
        .unwrap();

    // 环县 reports 2022-09's price subsidy as owed (A 41.48 + B 41.48 = 82.96) and July's one-time subsidy as owed
    // (A and B are dibao on 2022-07-31: 2 × 200.00 = 400.00). 宁县 reports nothing.
    report(&app, pb::FundProgram::PriceSubsidy, "2022-09", "82.96", 2).await;
    report(&app, pb::FundProgram::OneTimeSubsidy, "2022-07", "400.00", 2).await;

    let mut civil = app.client("civil_affairs").await;
    let mut lg = app.client("leading_group").await;
    // 2022Q2 first (snapshots go in quarter order): its subsidy months 2022-04…06 need the indices of 2022-03…05, never
    // pushed, and it has no fixed-amount campaign: no section 12, format v1.
    let q2 = freeze(&mut civil, "2022Q2").await;
    assert!(!q2.section_hashes.contains_key("campaigns"));
    assert_eq!(q2.content_hash, documented_hash(&q2), "the v1 text");
    assert!(summary(&mut lg, "2022Q2").await.get("campaigns").is_none());

    let q3 = freeze(&mut civil, "2022Q3").await;
    assert!(q3.section_hashes.contains_key("campaigns"), "{:?}", q3.section_hashes);
    assert_eq!(q3.content_hash, documented_hash(&q3), "the v2 text");
    let v = verify(&mut lg, "2022Q3").await;
    assert!(v.valid, "{:?}", v.differences);

    let s = summary(&mut lg, "2022Q3").await;
    let c = &s["campaigns"];
    assert_eq!(c["tolerance"], "1.00", "fund_report_tolerance, 1.00 by default");
    let campaigns = c["campaigns"].as_array().unwrap();
    assert_eq!(campaigns.len(), 2, "the linkage, then the fixed-amount campaign");

    // The linkage: only 2022-09 is decided (2022-07 and 2022-08 need the indices of June and July, not pushed). Index
    // month 2022-08 under 621000-2022-0831: CPI 2.50 < 3.00, food 6.10 ≥ 6.00: triggered.
    let linkage = &campaigns[0];
    assert_eq!(
        (&linkage["campaign"], &linkage["name"], &linkage["program"]),
        (&json!("PRICE_SUBSIDY_LINKAGE"), &json!("价格临时补贴"), &json!("PRICE_SUBSIDY"))
    );
    assert_eq!(
        linkage["months"],
        json!([{"month": "2022-09", "rule": "621000-2022-0831", "index_month": "2022-08", "index_version": 1,
            "comparisons": [
                {"index": "CPI", "rise": "2.50", "threshold": "3.00", "crossed": false},
                {"index": "FOOD_CPI", "rise": "6.10", "threshold": "6.00", "crossed": true}],
            "triggered": true}])
    );
    // 环县: A urban dibao 680.00 × 6.10 % = 41.48; B rural dibao 439.00 × 6.10 % = 26.779 → 26.78 or unemployment
    // insurance 680.00 × 6.10 % = 41.48, paid once at the higher: 41.48. 2 persons, 82.96 owed, 82.96 reported.
    // 宁县: C rural dibao-marginal (inside the 2022-08…2023-02 window) 26.78, no report: MISSING. Other counties:
    // nothing owed, nothing reported: left out.
    assert_eq!(
        linkage["counties"],
        json!([
            {"county_code": HUAN, "persons": 2, "person_times": 2, "amount_owed": "82.96", "amount_reported": "82.96",
             "finding": ""},
            {"county_code": NING, "persons": 1, "person_times": 1, "amount_owed": "26.78", "amount_reported": null,
             "finding": "MISSING"},
        ])
    );
    // The fixed-amount campaign: A and B (dibao on 2022-07-31) 200.00 each = 400.00 in 环县, reported 400.00; C is
    // dibao-marginal, not a group of the campaign; D starts in October.
    let one_time = &campaigns[1];
    assert_eq!(
        (&one_time["campaign"], &one_time["program"]),
        (&json!("t-2022-07-one-time"), &json!("ONE_TIME_SUBSIDY"))
    );
    assert_eq!(one_time["months"], json!([{"month": "2022-07", "rule": "t-2022-07-one-time", "triggered": true}]));
    assert_eq!(
        one_time["counties"],
        json!([{"county_code": HUAN, "persons": 2, "person_times": 2, "amount_owed": "400.00",
            "amount_reported": "400.00", "finding": ""}])
    );

    // The same figures as SummarizeLinkage over the decided month and SummarizeCampaign.
    let live = lg
        .subsidies
        .summarize_linkage(pb::SummarizeLinkageRequest { from_month: "2022-09".into(), to_month: "2022-09".into() })
        .await
        .unwrap()
        .into_inner();
    let h = live.counties.iter().find(|r| r.county_code == HUAN).unwrap();
    assert_eq!((h.persons, h.person_times, h.amount_owed.as_str()), (2, 2, "82.96"));

    // A fact recorded after the freeze that changes 2022-09 (F, urban dibao in 宁县 since 2022-01-01): the live
    // figures change (宁县 26.78 + 680.00 × 6.10 % = 26.78 + 41.48 = 68.26), the frozen section does not.
    let f = id(NING, (1966, 1, 1), 17);
    let mut ca = app.client("civil_affairs").await;
    accepted(&mut ca, vec![fact("F", &f, NING, "2022-01-01", assistance(pb::Program::Dibao, pb::Residence::Urban))])
        .await;
    let live = lg
        .subsidies
        .summarize_linkage(pb::SummarizeLinkageRequest { from_month: "2022-09".into(), to_month: "2022-09".into() })
        .await
        .unwrap()
        .into_inner();
    let n = live.counties.iter().find(|r| r.county_code == NING).unwrap();
    assert_eq!((n.persons, n.amount_owed.as_str()), (2, "68.26"));
    assert_eq!(summary(&mut lg, "2022Q3").await["campaigns"], *c, "frozen with the quarter");

    // Rendered: section 12 in Markdown (the same table model feeds CSV, HTML and XLSX).
    let typed: doudi::domain::summary::QuarterlySummary = serde_json::from_value(s.clone()).unwrap();
    let md = String::from_utf8(doudi::report::render_quarterly(&typed, doudi::report::Format::Md).unwrap()).unwrap();
    assert!(md.contains("## 12. Subsidy campaigns 补贴发放"), "{md}");
    assert!(
        md.contains("| PRICE_SUBSIDY_LINKAGE | PRICE_SUBSIDY | 621022 | 环县 | 2 | 2 | 82.96 | 82.96 | — |"),
        "{md}"
    );
    assert!(
        md.contains("| PRICE_SUBSIDY_LINKAGE | PRICE_SUBSIDY | 621026 | 宁县 | 1 | 1 | 26.78 | — | MISSING |"),
        "{md}"
    );

    // `doudi report quarterly` on the hub's database shows it too.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_doudi"))
        .args(["report", "quarterly", "2022Q3", "--format", "csv", "--database-url", &app.database_url])
        .env_remove("DOUDI_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(
        csv.contains("campaign_counties,t-2022-07-one-time,ONE_TIME_SUBSIDY,621022,环县,2,2,400.00,400.00,\n"),
        "{csv}"
    );

    // The section is covered by the content hash: removing it is found.
    assert_eq!(
        execute(&app, "DELETE FROM snapshot_sections WHERE quarter = '2022Q3' AND section = 'campaigns'").await,
        1
    );
    let v = verify(&mut lg, "2022Q3").await;
    assert!(!v.valid);
    assert!(v.differences.iter().any(|d| d.starts_with("section campaigns: stored hash ")), "{:?}", v.differences);
    assert!(v.differences.iter().any(|d| d.starts_with("content_hash: stored ")), "{:?}", v.differences);
    app.stop().await;
}

/// A quarter frozen without a campaign month keeps no section 12, even when indices of its months arrive later: the
/// summary is made from the snapshot, whose format (v1) and hash do not change.
#[apply(e2e!)]
#[tokio::test]
async fn an_old_quarter_frozen_without_campaigns_keeps_no_section() {
    let app = spawn_app().await;
    roster(&app).await;
    app.app_hub.clock.set(Some(at("2022-11-20T02:00:00Z")));
    let mut civil = app.client("civil_affairs").await;
    let mut lg = app.client("leading_group").await;
    let q3 = freeze(&mut civil, "2022Q3").await;
    assert!(!q3.section_hashes.contains_key("campaigns"));
    let before = summary(&mut lg, "2022Q3").await;
    assert!(before.get("campaigns").is_none());

    // The indices of June–August 2022 come after the freeze: 2022-09 would trigger now (food 6.10 ≥ 6.00), but the
    // frozen quarter does not change.
    let mut dr = app.client("development_reform").await;
    push_indices(
        &mut dr,
        vec![
            index("2022-06", "2.50", "2.90", "2022-07-09"),
            index("2022-07", "2.70", "6.30", "2022-08-10"),
            index("2022-08", "2.50", "6.10", "2022-09-09"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(summary(&mut lg, "2022Q3").await, before);
    let v = verify(&mut lg, "2022Q3").await;
    assert!(v.valid, "{:?}", v.differences);
    assert_eq!(v.snapshot.unwrap().content_hash, q3.content_hash);
    let md = String::from_utf8(
        doudi::report::render_quarterly(&serde_json::from_value(before).unwrap(), doudi::report::Format::Md).unwrap(),
    )
    .unwrap();
    assert!(!md.contains("Subsidy campaigns"), "{md}");
    app.stop().await;
}

/// The demo's one-time living subsidy (demo::one_time) and its 2023Q2 indices (demo::subsidies::QUARTER_INDICES) on a
/// small synthetic population: the hub owes every county's dibao and tekun persons of 2022-07-31 234.08 yuan each
/// (the counties' books, counted here from the generator), 合水县 reports one person short; 2023Q2's months are
/// decided and none triggers.
#[apply(e2e!)]
#[tokio::test]
async fn the_demo_one_time_subsidy_and_2023q2_campaign_section() {
    use doudi::domain::admin::Role;
    use doudi::grpc::pb::admin_client::AdminClient;
    use doudi::tools::demo::one_time;
    let app = spawn_app().await;
    let pop = doudi::tools::synth::Population::generate(&doudi::tools::synth::SynthConfig {
        persons: 300,
        ..Default::default()
    });
    let mut ca = app.client("civil_affairs").await;
    let facts: Vec<pb::Fact> = pop.facts("civil_affairs").map(|f| doudi::grpc::convert::fact_out(&f)).collect();
    ca.exchange.push_facts(pb::PushFactsRequest { facts }).await.unwrap();
    app.app_hub.clock.set(Some(at("2022-11-20T02:00:00Z")));
    let issued = app.ca.issue_operator(TRUST_DOMAIN, Role::System, "system-admin").unwrap();
    let op = doudi::client::ClientIdentity {
        ca_pem: app.ca.cert_pem().as_bytes().to_vec(),
        cert_pem: issued.cert_pem.into_bytes(),
        key_pem: issued.key_pem.into_bytes(),
    };
    let mut admin = AdminClient::new(doudi::client::connect(&app.server, "localhost", &op).await.unwrap());
    let mut lg = app.client("leading_group").await;
    let f = one_time::run(&pop, &mut admin, &mut ca, &mut lg).await.unwrap();

    // Per county, from the generator: dibao and tekun persons whose assistance began by 2022-07-31.
    let mut books: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    for p in pop.persons() {
        let program = p.program().as_str();
        if (program == "DIBAO" || program == "TEKUN") && p.assistance_from().to_string().as_str() <= "2022-07-31" {
            *books.entry(p.county_code()).or_default() += 1;
        }
    }
    assert!(books.get("621024").copied().unwrap_or(0) > 0, "合水县 has someone to be short of");
    for c in &f.summary.counties {
        let n = books.get(c.county_code.as_str()).copied().unwrap_or(0);
        // n × 234.08, in fen.
        let owed = doudi::domain::money::Money::from_fen(23_408 * i128::from(n)).unwrap().to_string();
        assert_eq!((c.persons, c.amount_owed.as_str()), (n, owed.as_str()), "{}", c.county_code);
        if c.county_code == "621024" {
            // (n − 1) × 234.08: short by 234.08 > 1.00.
            let paid = doudi::domain::money::Money::from_fen(23_408 * i128::from(n - 1)).unwrap().to_string();
            assert_eq!((c.amount_reported.as_str(), c.finding.as_str()), (paid.as_str(), "MISMATCH"));
        } else if n > 0 {
            assert_eq!((c.amount_reported.as_str(), c.finding.as_str()), (owed.as_str(), ""), "{}", c.county_code);
        }
    }
    let total: u64 = books.values().sum();
    assert!(f.printed.contains(&format!("city: {total} persons, ")), "{}", f.printed);

    // 2023Q2: the indices of March–May 2023 (after their publication), then the freeze. Under 621000-1553-2021: April
    // ← March CPI 0.70 < 3.50, food 2.40 < 6.00; May ← April 0.10, 0.40; June ← May 0.20, 1.00: none triggers, nobody
    // is owed, nothing was reported: the months table only.
    app.app_hub.clock.set(Some(at("2023-07-10T02:00:00Z")));
    let mut dr = app.client("development_reform").await;
    doudi::tools::demo::subsidies::push_quarter_indices(&mut dr).await.unwrap();
    let mut civil = app.client("civil_affairs").await;
    freeze(&mut civil, "2023Q2").await;
    let s = summary(&mut lg, "2023Q2").await;
    let campaigns = s["campaigns"]["campaigns"].as_array().unwrap();
    assert_eq!(campaigns.len(), 1, "the linkage only: the one-time subsidy is July 2022's");
    let months: Vec<(&str, &str, &str, &str, bool)> = campaigns[0]["months"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["month"].as_str().unwrap(),
                m["rule"].as_str().unwrap(),
                m["comparisons"][0]["rise"].as_str().unwrap(),
                m["comparisons"][1]["rise"].as_str().unwrap(),
                m["triggered"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        months,
        [
            ("2023-04", "621000-1553-2021", "0.70", "2.40", false),
            ("2023-05", "621000-1553-2021", "0.10", "0.40", false),
            ("2023-06", "621000-1553-2021", "0.20", "1.00", false),
        ]
    );
    assert_eq!(campaigns[0]["counties"], json!([]));
    let typed: doudi::domain::summary::QuarterlySummary = serde_json::from_value(s).unwrap();
    let lines = doudi::tools::demo::snapshot::campaign_lines(&typed);
    assert!(lines.contains("2023-04 not triggered (CPI 0.70 / 3.50, FOOD_CPI 2.40 / 6.00)"), "{lines}");
    // A county office may not read the summary (a city-wide action), as before.
    let mut county = app.client_in("civil_affairs", Some(HUAN)).await;
    let refused = county
        .coordination
        .get_quarterly_summary(pb::GetQuarterlySummaryRequest { quarter: "2023Q2".into() })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    app.stop().await;
}
