//! Quarterly snapshots end to end (docs/spec/coordination.md): freezing once, coverage findings equal to the gaps the
//! synthetic population planted, verification that names what was altered, access.

use doudi::grpc::convert::fact_out;
use doudi::grpc::pb;
use doudi::tools::synth::{AGENCIES, GAP_RULES, Population, SynthConfig};
use macro_rules_attribute::apply;
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

/// Run one statement directly on the hub's database (SQLite or PostgreSQL), as a tamperer would; rows affected.
async fn execute(app: &TestApp, sql: &'static str) -> u64 {
    let store = &app.app_hub.store;
    if crate::ON_POSTGRES {
        sqlx::query(sql).execute(store.pg_pool().unwrap()).await.unwrap().rows_affected()
    } else {
        sqlx::query(sql).execute(store.sqlite_pool().unwrap()).await.unwrap().rows_affected()
    }
}

fn q(quarter: &str) -> pb::CreateSnapshotRequest {
    pb::CreateSnapshotRequest { quarter: quarter.into() }
}

#[apply(e2e!)]
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
    // Aggregates only: no ID number (nor its first 14 characters) anywhere in the summary.
    let text = serde_json::to_string(&summary).unwrap();
    for p in pop.persons() {
        assert!(!text.contains(&p.id_number.as_str()[..14]), "person-level data in the summary");
    }
    assert_eq!(summary.snapshot.content_hash, snap.content_hash);

    // Verification passes, then fails naming the section once a stored row is altered.
    let v = lg.coordination.verify_snapshot(pb::VerifySnapshotRequest { quarter: "2023Q2".into() }).await.unwrap();
    let v = v.into_inner();
    assert!(v.valid, "{:?}", v.differences);
    // One status row made to point at another version, and one JSON section edited.
    let n = execute(
        &app,
        "UPDATE snapshot_statuses SET source_version = source_version + 1 \
         WHERE person_key = (SELECT person_key FROM snapshot_statuses ORDER BY person_key LIMIT 1)",
    )
    .await;
    assert!(n >= 1, "a status row altered");
    let n = execute(
        &app,
        "UPDATE snapshot_sections SET body = replace(body, '\"received\":', '\"received\": ') WHERE section = 'warnings'",
    )
    .await;
    assert_eq!(n, 1, "the warnings section altered");
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

#[apply(e2e!)]
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

#[apply(e2e!)]
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

/// A protobuf Struct back to JSON (the hub's own inverse conversion).
pub fn struct_json(s: prost_types::Struct) -> serde_json::Value {
    doudi::grpc::snapshot::struct_to_json(s)
}

/// Split `total` (fen or persons) over the eight counties by uneven weights; the last county takes the rest, so the
/// parts add up to `total` exactly.
fn split(total: i64) -> Vec<i64> {
    const W: [i64; 8] = [3, 5, 9, 2, 1, 4, 7, 8]; // sum 39
    let mut parts: Vec<i64> = W[..7].iter().map(|w| total * w / 39).collect();
    parts.push(total - parts.iter().sum::<i64>());
    parts
}

fn yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

/// The letter's 2022 figures (docs/domain/qingyang-figures.md §4), pushed as county fund reports split unevenly over
/// the eight counties, come back exactly in the monthly reports and the quarterly summaries; the standards section
/// shows 2023 against 2022 with the letter's changes (urban standard +3%, average urban subsidy +4%).
#[apply(e2e!)]
#[tokio::test]
async fn the_letters_2022_figures_are_reproduced() {
    use doudi::domain::division::QINGYANG_COUNTIES;
    use doudi::domain::summary::{MonthlyReport, QuarterlySummary};
    let app = spawn_app().await;
    let mut civil = app.client("civil_affairs").await;
    // (month, program, amount in fen, recipients): one-time living subsidy July 2022, 211,300 persons,
    // 49,460,800.00; price subsidies September and October 2022, 508,300 person-times and 10,660,000.00 together
    // (split here 254,150 + 254,150 and 5,330,000.00 + 5,330,000.00); winter warmth delivered by the end of October
    // 2022, 22,737,500.00; temporary assistance 2022, 218 person-times, 720,800.00 (reported in December).
    let reports = [
        ("2022-07", pb::FundProgram::OneTimeSubsidy, 4_946_080_000i64, 211_300i64),
        ("2022-09", pb::FundProgram::PriceSubsidy, 533_000_000, 254_150),
        ("2022-10", pb::FundProgram::PriceSubsidy, 533_000_000, 254_150),
        ("2022-10", pb::FundProgram::WinterWarmth, 2_273_750_000, 0),
        ("2022-12", pb::FundProgram::TemporaryAssistance, 72_080_000, 218),
    ];
    for (month, program, fen, persons) in reports {
        app.app_hub.clock.set(Some(format!("{month}-10T02:00:00Z").parse().unwrap()));
        for (((county, _), f), n) in QINGYANG_COUNTIES.iter().zip(split(fen)).zip(split(persons)) {
            civil
                .coordination
                .submit_fund_report(pb::SubmitFundReportRequest {
                    county_code: county.to_string(),
                    month: month.into(),
                    program: program as i32,
                    disbursed_on: format!("{month}-05"),
                    amount: yuan(f),
                    recipients: n,
                })
                .await
                .unwrap();
        }
    }
    app.app_hub.clock.set(Some("2023-01-10T02:00:00Z".parse().unwrap()));
    let mut lg = app.client("leading_group").await;
    let total = |totals: &[doudi::domain::summary::FundReportTotal], program: &str| {
        totals
            .iter()
            .filter(|t| t.program == program)
            .fold((0i128, 0u64), |(a, r), t| (a + t.amount.to_fen(), r + t.recipients))
    };
    // Monthly reports.
    let monthly = |month: &'static str| {
        let mut lg = lg.clone();
        async move {
            let r = lg
                .coordination
                .get_monthly_report(pb::GetMonthlyReportRequest { month: month.into() })
                .await
                .unwrap()
                .into_inner();
            let r: MonthlyReport = serde_json::from_value(struct_json(r.report.unwrap())).unwrap();
            r
        }
    };
    let july = monthly("2022-07").await;
    assert_eq!(total(&july.fund_reports.totals, "ONE_TIME_SUBSIDY"), (4_946_080_000, 211_300));
    let (sep, oct, dec) = (monthly("2022-09").await, monthly("2022-10").await, monthly("2022-12").await);
    let price = |m: &MonthlyReport| total(&m.fund_reports.totals, "PRICE_SUBSIDY");
    assert_eq!((price(&sep).0 + price(&oct).0, price(&sep).1 + price(&oct).1), (1_066_000_000, 508_300));
    assert_eq!(total(&oct.fund_reports.totals, "WINTER_WARMTH").0, 2_273_750_000);
    assert_eq!(total(&dec.fund_reports.totals, "TEMPORARY_ASSISTANCE"), (72_080_000, 218));

    // Quarterly summaries of 2022Q3 and 2022Q4.
    for quarter in ["2022Q3", "2022Q4"] {
        civil.coordination.create_snapshot(q(quarter)).await.unwrap();
    }
    let summary = |quarter: &'static str| {
        let mut lg = lg.clone();
        async move {
            let s = lg
                .coordination
                .get_quarterly_summary(pb::GetQuarterlySummaryRequest { quarter: quarter.into() })
                .await
                .unwrap()
                .into_inner();
            let s: QuarterlySummary = serde_json::from_value(struct_json(s.summary.unwrap())).unwrap();
            s
        }
    };
    let (q3, q4) = (summary("2022Q3").await, summary("2022Q4").await);
    assert_eq!(total(&q3.fund_reports.totals, "ONE_TIME_SUBSIDY"), (4_946_080_000, 211_300));
    let p3 = total(&q3.fund_reports.totals, "PRICE_SUBSIDY");
    let p4 = total(&q4.fund_reports.totals, "PRICE_SUBSIDY");
    assert_eq!((p3.0 + p4.0, p3.1 + p4.1), (1_066_000_000, 508_300));
    assert_eq!(total(&q4.fund_reports.totals, "WINTER_WARMTH").0, 2_273_750_000);
    assert_eq!(total(&q4.fund_reports.totals, "TEMPORARY_ASSISTANCE"), (72_080_000, 218));
    assert_eq!(q4.previous_quarter.as_deref(), Some("2022Q3"));
    // Every county's report was on time (submitted on the 10th).
    assert!(q3.fund_reports.rows.iter().filter(|r| r.program == "ONE_TIME_SUBSIDY").all(|r| r.status == "ON_TIME"));

    // Standards: the 2022 snapshots compare 2022 with 2021 (not loaded); a 2023 snapshot shows the letter's changes.
    civil.coordination.create_snapshot(q("2023Q1")).await.unwrap_err(); // 2023Q1 is not over on 2023-01-10
    app.app_hub.clock.set(Some("2023-04-10T02:00:00Z".parse().unwrap()));
    civil.coordination.create_snapshot(q("2023Q1")).await.unwrap();
    let s = summary("2023Q1").await;
    let change = |item: &str| s.standards.iter().find(|c| c.item == item).unwrap().change_pct;
    assert_eq!(change("URBAN_DIBAO_STANDARD"), Some(3), "680 → 700");
    assert_eq!(change("URBAN_DIBAO_AVERAGE_SUBSIDY"), Some(4), "584 → 607");
    let _ = &mut lg;
    app.stop().await;
}

/// Quarter-over-quarter change, late corrections and small-cell suppression, from hand-pushed facts.
#[apply(e2e!)]
#[tokio::test]
async fn change_late_corrections_and_suppression() {
    use crate::support::{base, id, rural_dibao, with};
    use doudi::domain::summary::{Count, QuarterlySummary};
    const HUAN: &str = "621022101203";
    let app = spawn_app().await;
    let mut civil = app.client("civil_affairs").await;
    let assistance = |program: pb::Program| {
        pb::fact::Payload::Assistance(pb::Assistance {
            program: program as i32,
            residence: pb::Residence::Rural as i32,
            support_mode: if program == pb::Program::Tekun { pb::SupportMode::Dispersed as i32 } else { 0 },
            monthly_benefit: if program == pb::Program::Tekun { "605.00".into() } else { String::new() },
            status: pb::AssistanceStatus::Active as i32,
            ..Default::default()
        })
    };
    // Before 2023Q1's snapshot: one rural dibao person (valid from 2023-01-01) and three HIV-affected children.
    let mut facts = vec![with(base("D-1", &id("621022", (1970, 1, 1), 1), HUAN), rural_dibao())];
    for i in 0..3u16 {
        let mut f = with(
            base(&format!("H-{i}"), &id("621022", (2012, 5, 1), 10 + i), HUAN),
            assistance(pb::Program::HivAffectedChild),
        );
        f.valid_from = "2022-06-01".into();
        facts.push(f);
    }
    civil.exchange.push_facts(pb::PushFactsRequest { facts }).await.unwrap();
    civil.coordination.create_snapshot(q("2023Q1")).await.unwrap();
    // After it: a dibao person enrolled from 2023-02-01 (a late correction to 2023Q1, and an entry in 2023Q2), and a
    // tekun person from 2023-05-01 (an entry in 2023Q2 only).
    let mut late = with(base("D-2", &id("621022", (1971, 1, 1), 2), HUAN), rural_dibao());
    late.valid_from = "2023-02-01".into();
    let mut tekun = with(base("T-1", &id("621022", (1950, 1, 1), 3), HUAN), assistance(pb::Program::Tekun));
    tekun.valid_from = "2023-05-01".into();
    civil.exchange.push_facts(pb::PushFactsRequest { facts: vec![late, tekun] }).await.unwrap();
    civil.coordination.create_snapshot(q("2023Q2")).await.unwrap();

    let s = civil
        .coordination
        .get_quarterly_summary(pb::GetQuarterlySummaryRequest { quarter: "2023Q2".into() })
        .await
        .unwrap()
        .into_inner();
    let s: QuarterlySummary = serde_json::from_value(struct_json(s.summary.unwrap())).unwrap();
    let change = |p: &str| s.change.iter().find(|c| c.program == p).unwrap().clone();
    let dibao = change("DIBAO");
    assert_eq!((dibao.previous, dibao.current), (Some(Count::Value(1)), Count::Value(2)));
    assert_eq!((dibao.entries, dibao.exits), (Count::Value(1), Count::Value(0)));
    let t = change("TEKUN");
    assert_eq!((t.previous, t.current, t.entries), (Some(Count::Value(0)), Count::Value(1), Count::Value(1)));
    // Three HIV-affected children: under 5, suppressed everywhere.
    let hiv = change("HIV_AFFECTED_CHILD");
    assert_eq!((hiv.current, hiv.previous), (Count::Suppressed, Some(Count::Suppressed)));
    let cell = s.by_county_program.iter().find(|r| r.program == "HIV_AFFECTED_CHILD").unwrap();
    assert_eq!((cell.persons, cell.households), (Count::Suppressed, Count::Suppressed));
    // The late dibao fact changed 2023Q1 (in force on 2023-03-31, recorded after Q1's cutoff); the tekun fact did not.
    assert_eq!(s.late_corrections.len(), 1, "{:?}", s.late_corrections);
    let l = &s.late_corrections[0];
    assert_eq!((l.agency.as_str(), l.kind.as_str(), l.facts, l.persons), ("civil_affairs", "assistance", 1, 1));
    assert_eq!(s.headline.dibao_tekun_persons, 3);
    // 442.00 × 2 + 605.00 = 1,489.00 a month.
    assert_eq!(s.headline.monthly_benefit_total.to_string(), "1489.00");
    app.stop().await;
}

/// `doudi snapshot verify QUARTER` on the hub's database: valid, then exit status 1 naming the altered section.
#[apply(e2e!)]
#[tokio::test]
async fn snapshot_verify_command_names_what_differs() {
    let app = spawn_app().await;
    let mut civil = app.client("civil_affairs").await;
    civil.coordination.create_snapshot(q("2023Q1")).await.unwrap();
    let url = app.database_url.clone();
    let run = |url: String| {
        std::process::Command::new(env!("CARGO_BIN_EXE_doudi"))
            .args(["snapshot", "verify", "2023Q1", "--database-url", &url])
            .env_remove("DOUDI_CONFIG")
            .output()
            .unwrap()
    };
    let out = run(url.clone());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));
    let n =
        execute(&app, "UPDATE snapshot_sections SET body = '[]' WHERE quarter = '2023Q1' AND section = 'standards'")
            .await;
    assert_eq!(n, 1);
    let out = run(url);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("DIFFERS: section standards"), "{stdout}");
    app.stop().await;
}

/// `doudi report quarterly|monthly` on the hub's database, in every format.
#[apply(e2e!)]
#[tokio::test]
async fn report_commands_write_every_format() {
    use crate::support::{base, id, rural_dibao, with};
    let app = spawn_app().await;
    let mut civil = app.client("civil_affairs").await;
    let f = with(base("D-1", &id("621022", (1970, 1, 1), 1), "621022101203"), rural_dibao());
    civil.exchange.push_facts(pb::PushFactsRequest { facts: vec![f] }).await.unwrap();
    civil.coordination.create_snapshot(q("2023Q2")).await.unwrap();
    let url = app.database_url.clone();
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--database-url", &url]);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_doudi"))
            .args(&all)
            .env_remove("DOUDI_CONFIG")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let md = String::from_utf8(run(&["report", "quarterly", "2023Q2", "--format", "md"])).unwrap();
    assert!(md.contains("2023Q2") && md.contains("环县"), "{md}");
    let json: serde_json::Value =
        serde_json::from_slice(&run(&["report", "quarterly", "2023Q2", "--format", "json"])).unwrap();
    // One rural class-2 dibao person at 442.00 a month (support::rural_dibao).
    assert_eq!(json["headline"]["dibao_persons"], 1);
    assert_eq!(json["headline"]["monthly_benefit_total"], "442.00");
    let xlsx = app.dir.path().join("q.xlsx");
    run(&["report", "quarterly", "2023Q2", "--format", "xlsx", "-o", xlsx.to_str().unwrap()]);
    assert_eq!(&std::fs::read(&xlsx).unwrap()[..2], b"PK", "an XLSX is a zip file");
    let html = String::from_utf8(run(&["report", "quarterly", "2023Q2", "--format", "html"])).unwrap();
    assert_eq!(html.matches("<svg").count(), 3, "three inline charts");
    let csv = String::from_utf8(run(&["report", "monthly", "2023-07", "--format", "csv"])).unwrap();
    assert!(csv.contains("621022"), "{csv}");
    app.stop().await;
}

/// The coverage parameters are data: a `coverage_params_file` that lists no program for UNINSURED turns that rule
/// off for an uninsured dibao person, who is UNINSURED under the defaults.
#[apply(e2e!)]
#[tokio::test]
async fn coverage_parameters_come_from_configuration() {
    use crate::support::{base, id, rural_dibao, spawn_app_with, with};
    use doudi::domain::summary::QuarterlySummary;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("coverage.toml");
    std::fs::write(
        &file,
        "insured_programs = []\nstudent_aid_programs = [\"DIBAO\"]\npension_programs = [\"DIBAO\", \"TEKUN\"]\n\
         pension_min_age = 16\npension_max_age = 59\nnursing_max_grade = 2\n",
    )
    .unwrap();
    for (file, expected) in [(None, 1u64), (Some(file), 0)] {
        let app = spawn_app_with(|c| c.coverage_params_file = file.clone()).await;
        let mut civil = app.client("civil_affairs").await;
        let f = with(base("D-1", &id("621022", (1970, 1, 1), 1), "621022101203"), rural_dibao());
        civil.exchange.push_facts(pb::PushFactsRequest { facts: vec![f] }).await.unwrap();
        civil.coordination.create_snapshot(q("2023Q2")).await.unwrap();
        let s = civil
            .coordination
            .get_quarterly_summary(pb::GetQuarterlySummaryRequest { quarter: "2023Q2".into() })
            .await
            .unwrap()
            .into_inner();
        let s: QuarterlySummary = serde_json::from_value(struct_json(s.summary.unwrap())).unwrap();
        let n: u64 = s.coverage.iter().filter(|c| c.code == "UNINSURED").map(|c| c.count).sum();
        assert_eq!(n, expected, "coverage_params_file {file:?}");
        app.stop().await;
    }
}

/// Issue 23 item 3: 100,000 monthly benefits of 999,999,999,999.99 in one county (valid under the wire grammar, stored
/// before the plausibility maxima existed) made ListFundReports, GetMonthlyReport and CreateSnapshot fail with INTERNAL
/// for every county (SQLite: integer overflow in SUM; PostgreSQL: the NUMERIC sum "out of range" of an i64 of fen).
/// Such rows can no longer be pushed, so they are written here as legacy data straight into the database: 100,000
/// copies of one 环县 rural dibao fact with the benefit 999,999,999,999.99, besides the original (442.00) and one
/// 西峰区 fact (442.00). Hand sums: 环县 = 100,000 × 999,999,999,999.99 + 442.00 = 99,999,999,999,999,000.00 + 442.00
/// = 99,999,999,999,999,442.00 (past i64 fen, 92,233,720,368,547,758.07 yuan); 西峰区 = 442.00; together
/// 99,999,999,999,999,884.00. Every report succeeds, the other county's figure included.
#[apply(e2e!)]
#[tokio::test]
async fn one_countys_absurd_sums_do_not_stop_the_citys_reports() {
    use crate::support::{base, id, push, rural_dibao, with};
    const HUAN: &str = "621022";
    const XIFENG: &str = "621002";
    const HUAN_SUM: &str = "99999999999999442.00";
    let app = spawn_app().await;
    let mut c = app.client("civil_affairs").await;
    let facts = vec![
        with(base("MZ-LEGACY", &id(HUAN, (1980, 1, 1), 1), HUAN), rural_dibao()),
        with(base("MZ-XIFENG", &id(XIFENG, (1980, 1, 1), 2), XIFENG), rural_dibao()),
    ];
    let r = push(&mut c, facts).await.unwrap();
    assert!(r.results.iter().all(|r| r.outcome == pb::FactOutcome::Accepted as i32), "{r:?}");
    let copies = if crate::ON_POSTGRES {
        execute(
            &app,
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) \
             INSERT INTO facts (agency, fact_id, source_version, person_id, kind, division_code, valid_from, valid_to, \
             program, status, residence, benefit, payload, content_hash, recorded_at, superseded_at, is_current) \
             SELECT agency, fact_id || '-' || i, source_version, person_id, kind, division_code, valid_from, valid_to, \
             program, status, residence, 999999999999.99, replace(payload, '\"442.00\"', '\"999999999999.99\"'), \
             content_hash, recorded_at, superseded_at, is_current FROM facts, n WHERE fact_id = 'MZ-LEGACY'",
        )
        .await
    } else {
        execute(
            &app,
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) \
             INSERT INTO facts (agency, fact_id, source_version, person_id, kind, division_code, valid_from, valid_to, \
             program, status, residence, benefit_fen, payload, content_hash, recorded_at, superseded_at, is_current) \
             SELECT agency, fact_id || '-' || i, source_version, person_id, kind, division_code, valid_from, valid_to, \
             program, status, residence, 99999999999999, replace(payload, '\"442.00\"', '\"999999999999.99\"'), \
             content_hash, recorded_at, superseded_at, is_current FROM facts, n WHERE fact_id = 'MZ-LEGACY'",
        )
        .await
    };
    assert_eq!(copies, 100_000);

    let rows = c
        .coordination
        .list_fund_reports(pb::ListFundReportsRequest {
            month: "2023-06".into(),
            program: pb::FundProgram::RuralDibao as i32,
            as_of: "2023-07-31".into(),
            include_history: false,
        })
        .await
        .expect("ListFundReports for the month")
        .into_inner()
        .rows;
    let expected = |county: &str| rows.iter().find(|r| r.county_code == county).unwrap().expected_amount.clone();
    assert_eq!(expected(HUAN), HUAN_SUM);
    assert_eq!(expected(XIFENG), "442.00");

    let report = c
        .coordination
        .get_monthly_report(pb::GetMonthlyReportRequest { month: "2023-06".into() })
        .await
        .expect("GetMonthlyReport for the city");
    let report: doudi::domain::summary::MonthlyReport =
        serde_json::from_value(struct_json(report.into_inner().report.unwrap())).unwrap();
    let benefit = |county: &str| {
        let row = report.by_county_program.iter().find(|r| r.county_code == county && r.program == "DIBAO").unwrap();
        row.monthly_benefit.to_string()
    };
    assert_eq!(benefit(HUAN), HUAN_SUM);
    assert_eq!(benefit(XIFENG), "442.00");

    c.coordination.create_snapshot(q("2023Q2")).await.expect("CreateSnapshot of the quarter");
    let summary = c
        .coordination
        .get_quarterly_summary(pb::GetQuarterlySummaryRequest { quarter: "2023Q2".into() })
        .await
        .expect("the summary of the frozen quarter reads back");
    let summary: doudi::domain::summary::QuarterlySummary =
        serde_json::from_value(struct_json(summary.into_inner().summary.unwrap())).unwrap();
    assert_eq!(summary.headline.monthly_benefit_total.to_string(), "99999999999999884.00");
    let huan = summary.by_county_program.iter().find(|r| r.county_code == HUAN && r.program == "DIBAO").unwrap();
    assert_eq!(huan.monthly_benefit.to_string(), HUAN_SUM);
    app.stop().await;
}

/// Issue 23 item 1: 环县's civil-affairs office (`civil_affairs` + `/division/621022`) called CreateSnapshot
/// {"quarter":"2023Q2"} and froze the city's quarter. Every city-wide action of the access matrix is refused to a
/// county office with PERMISSION_DENIED naming the action; nothing is frozen; the city office then freezes the quarter
/// itself. A county office still takes county actions, narrowed to its county (ListFundReports: its rows only).
#[apply(e2e!)]
#[tokio::test]
async fn a_county_office_may_not_take_city_wide_actions() {
    const HUAN: &str = "621022";
    const XIFENG: &str = "621002";
    let app = spawn_app().await;
    let mut huan = app.client_in("civil_affairs", Some(HUAN)).await;
    let mut city = app.client("civil_affairs").await;
    let refused = |e: tonic::Status, action: &str| {
        assert_eq!(e.code(), Code::PermissionDenied, "{action}: {}", e.message());
        assert!(e.message().contains(action) && e.message().contains("city-wide"), "{}", e.message());
        assert!(e.message().contains(HUAN), "names the county office: {}", e.message());
    };

    refused(huan.coordination.create_snapshot(q("2023Q2")).await.unwrap_err(), "CreateSnapshot");
    let frozen = city.coordination.list_snapshots(pb::ListSnapshotsRequest {}).await.unwrap().into_inner();
    assert!(frozen.snapshots.is_empty(), "the county office froze nothing: {frozen:?}");
    let month = || pb::GetMonthlyReportRequest { month: "2023-06".into() };
    refused(huan.coordination.get_monthly_report(month()).await.unwrap_err(), "GetMonthlyReport");
    city.coordination.get_monthly_report(month()).await.unwrap();

    // The city office freezes its own quarter; created_by names it (no county).
    let snap = city.coordination.create_snapshot(q("2023Q2")).await.unwrap().into_inner();
    assert_eq!(snap.created_by, "civil_affairs");
    let quarter = || pb::GetQuarterlySummaryRequest { quarter: "2023Q2".into() };
    refused(huan.coordination.get_quarterly_summary(quarter()).await.unwrap_err(), "GetQuarterlySummary");
    let verify = || pb::VerifySnapshotRequest { quarter: "2023Q2".into() };
    refused(huan.coordination.verify_snapshot(verify()).await.unwrap_err(), "VerifySnapshot");
    city.coordination.get_quarterly_summary(quarter()).await.unwrap();
    assert!(city.coordination.verify_snapshot(verify()).await.unwrap().into_inner().valid);
    // Headers stay readable: a county office may see that (and when) the quarter was frozen.
    let header = huan.coordination.get_snapshot(pb::GetSnapshotRequest { quarter: "2023Q2".into() }).await.unwrap();
    assert_eq!(header.into_inner().content_hash, snap.content_hash);

    // The city's audit log by person is city-wide; the office's own agency's events are not.
    let by_person = pb::ListAccessEventsRequest {
        id_number: crate::support::id(HUAN, (1980, 1, 1), 1),
        purpose: "test".into(),
        ..Default::default()
    };
    refused(huan.audit.list_access_events(by_person.clone()).await.unwrap_err(), "ListAccessEvents");
    city.audit.list_access_events(by_person).await.unwrap();
    let own = huan.audit.list_access_events(pb::ListAccessEventsRequest::default()).await.unwrap().into_inner();
    assert!(own.events.iter().all(|e| e.agency == "civil_affairs"), "{own:?}");

    // Fund reports: the county office lists its own county's row; the city office every county's (8 counties).
    for county in [HUAN, XIFENG] {
        city.coordination
            .submit_fund_report(pb::SubmitFundReportRequest {
                county_code: county.into(),
                month: "2023-07".into(),
                program: pb::FundProgram::Tekun as i32,
                disbursed_on: "2023-07-10".into(),
                amount: "100.00".into(),
                recipients: 1,
            })
            .await
            .unwrap();
    }
    let list = |c: &mut doudi::client::Clients| {
        let req = pb::ListFundReportsRequest {
            month: "2023-07".into(),
            program: pb::FundProgram::Tekun as i32,
            as_of: "2023-08-01".into(),
            include_history: false,
        };
        let mut coordination = c.coordination.clone();
        async move { coordination.list_fund_reports(req).await.unwrap().into_inner().rows }
    };
    let rows = list(&mut huan).await;
    assert_eq!(rows.iter().map(|r| r.county_code.as_str()).collect::<Vec<_>>(), [HUAN]);
    assert_eq!(list(&mut city).await.len(), 8, "Qingyang's 8 counties");
    app.stop().await;
}
