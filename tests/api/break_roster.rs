//! Attacks on the roster pass of 2026-12-07 (`Hub::for_each_entitlement`, `FactReads::facts_in_person_range`) and
//! on migration 0023's roster index: SummarizeLinkage's county figures against ListEntitlements page by page, and the
//! fund reports' expected amounts against hand-computed sums.

use std::collections::{BTreeMap, BTreeSet};

use macro_rules_attribute::apply;

use doudi::client::Clients;
use doudi::grpc::pb;

use crate::subsidies::{HUAN, NING, accepted, assistance, at, fact, indices};
use crate::support::*;

const XIFENG: &str = "621002";

/// Every page of ListEntitlements (page size 3) of `month` under `division` ("" = the caller's whole scope).
async fn all_pages(c: &mut Clients, month: &str, division: &str) -> Vec<pb::SubsidyEntitlement> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let r = c
            .subsidies
            .list_entitlements(pb::ListEntitlementsRequest {
                month: month.into(),
                division_code: division.into(),
                page_size: 3,
                page_token: token,
                purpose: "roster check".into(),
                campaign: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        out.extend(r.entitlements);
        token = r.next_page_token;
        if token.is_empty() {
            return out;
        }
    }
}

fn fen(s: &str) -> i64 {
    let (y, f) = s.split_once('.').unwrap();
    y.parse::<i64>().unwrap() * 100 + f.parse::<i64>().unwrap()
}

fn yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

fn unemployed_insured() -> pb::fact::Payload {
    pb::fact::Payload::Employment(pb::Employment {
        status: pb::EmploymentStatus::RegisteredUnemployed as i32,
        unemployment_benefit: pb::UnemploymentBenefit::InsuranceBenefit as i32,
    })
}

fn until(mut f: pb::Fact, valid_to: &str) -> pb::Fact {
    f.valid_to = valid_to.into();
    f
}

/// The persons of the scenario (subsidy months 2022-09 and 2022-10; Sep: urban 41.48, rural 26.78, unemployment
/// insurance 41.48; Oct: urban 59.84, rural 38.63, unemployment insurance 59.84):
/// - a urban dibao 环县 → Sep 41.48, Oct 59.84 (环县)
/// - b urban dibao 环县 v1, then v2 rural dibao 宁县 → Sep 26.78, Oct 38.63 (宁县; v1 no longer counts)
/// - c urban dibao 环县 valid to 2022-09-30 (exclusive) → nothing
/// - d urban dibao 环县 valid from 2022-09-30 → Sep 41.48, Oct 59.84 (环县)
/// - e urban dibao 宁县 valid to 2022-10-31 → Sep 41.48 (宁县), Oct nothing
/// - f rural dibao 环县 and unemployment insurance 宁县 → paid once at the highest, the insurance: Sep 41.48, Oct
///   59.84 (宁县, the county of the fact the payment rests on)
/// - g only read (GetRecipient of an unknown person): a persons row without facts → nothing
/// - h a student fact in 西峰区 and urban dibao 环县 → Sep 41.48, Oct 59.84 (环县)
/// - i suspended urban dibao 西峰区 → nothing
/// - j rural tekun 宁县 → Sep 26.78, Oct 38.63 (宁县)
struct People {
    f: String,
    h: String,
}

async fn scenario(app: &TestApp) -> People {
    let p = |county: &str, seq: u16| id(county, (1970, 1, 1), seq);
    let (a, b, c, d, e, f, g, h, i, j) = (
        p(HUAN, 31),
        p(HUAN, 32),
        p(HUAN, 33),
        p(HUAN, 34),
        p(NING, 35),
        p(HUAN, 36),
        p(HUAN, 37),
        p(XIFENG, 38),
        p(XIFENG, 39),
        p(NING, 40),
    );
    let mut ca = app.client("civil_affairs").await;
    let mut hr = app.client("human_resources").await;
    let mut ed = app.client("education").await;
    let urban = || assistance(pb::Program::Dibao, pb::Residence::Urban);
    let rural = || assistance(pb::Program::Dibao, pb::Residence::Rural);
    // g's read comes first: the persons row of g has a person id below everybody's.
    let _ = get(&mut ca, &g, "2022-09-30").await;
    accepted(&mut ca, vec![fact("a", &a, HUAN, "2022-01-01", urban()), fact("b", &b, HUAN, "2022-01-01", urban())])
        .await;
    accepted(&mut ca, vec![until(fact("c", &c, HUAN, "2022-01-01", urban()), "2022-09-30")]).await;
    accepted(&mut ca, vec![fact("d", &d, HUAN, "2022-09-30", urban())]).await;
    // b's second version: rural, 宁县.
    let mut b2 = fact("b", &b, NING, "2022-01-01", rural());
    b2.source_version = 2;
    let r = push(&mut ca, vec![b2]).await.unwrap();
    assert_eq!(outcome(&r.results[0]), pb::FactOutcome::NewVersion, "{r:?}");
    accepted(&mut ca, vec![until(fact("e", &e, NING, "2022-01-01", urban()), "2022-10-31")]).await;
    accepted(&mut ca, vec![fact("f", &f, HUAN, "2022-01-01", rural())]).await;
    accepted(&mut hr, vec![fact("f-u", &f, NING, "2022-01-01", unemployed_insured())]).await;
    accepted(&mut ed, vec![fact("h-s", &h, XIFENG, "2022-01-01", student())]).await;
    accepted(&mut ca, vec![fact("h", &h, HUAN, "2022-01-01", urban())]).await;
    let mut suspended = urban();
    if let pb::fact::Payload::Assistance(x) = &mut suspended {
        x.status = pb::AssistanceStatus::Suspended as i32;
    }
    accepted(&mut ca, vec![fact("i", &i, XIFENG, "2022-01-01", suspended)]).await;
    accepted(&mut ca, vec![fact("j", &j, NING, "2022-01-01", assistance(pb::Program::Tekun, pb::Residence::Rural))])
        .await;
    People { f, h }
}

async fn summary(app: &TestApp) -> BTreeMap<String, (u64, u64, String)> {
    let mut lg = app.client("leading_group").await;
    let r = lg
        .subsidies
        .summarize_linkage(pb::SummarizeLinkageRequest { from_month: "2022-09".into(), to_month: "2022-10".into() })
        .await
        .unwrap()
        .into_inner();
    r.counties.into_iter().map(|c| (c.county_code, (c.persons, c.person_times, c.amount_owed))).collect()
}

/// SummarizeLinkage's persons, person-times and amount per county (the new pass along person ids) equal both a hand
/// computation and the city-wide ListEntitlements pages (the per-key path) grouped by the entitlement's county.
#[apply(e2e!)]
#[tokio::test]
async fn break_roster_summary_equals_list_entitlements_by_county() {
    let app = spawn_app().await;
    scenario(&app).await;
    indices(&app).await;
    let mut ca = app.client("civil_affairs").await;
    let mut by_list: BTreeMap<String, (BTreeSet<String>, u64, i64)> = BTreeMap::new();
    for month in ["2022-09", "2022-10"] {
        for e in all_pages(&mut ca, month, "").await {
            let x = by_list.entry(e.county_code.clone()).or_default();
            x.0.insert(e.id_number.clone());
            x.1 += 1;
            x.2 += fen(&e.total);
        }
    }
    let sum = summary(&app).await;
    for (county, (persons, times, owed)) in &by_list {
        let s = sum.get(county).unwrap_or_else(|| panic!("county {county} of the lists is in the summary"));
        assert_eq!((s.0, s.1, s.2.clone()), (persons.len() as u64, *times, yuan(*owed)), "county {county}");
    }
    for (county, s) in &sum {
        if !by_list.contains_key(county) {
            assert_eq!((s.0, s.1, s.2.as_str()), (0, 0, "0.00"), "county {county} owes nothing in the lists");
        }
    }
    // By hand: 环县 a, d, h: 3 persons, 6 person-times, 3 × (41.48 + 59.84) = 303.96.
    // 宁县 b 26.78 + 38.63, e 41.48, f 41.48 + 59.84, j 26.78 + 38.63: 4 persons, 7 person-times, 65.41 + 41.48 +
    // 101.32 + 65.41 = 273.62. 西峰区 nobody (i suspended; h's student fact is not a qualification).
    assert_eq!(sum[HUAN], (3, 6, "303.96".to_owned()));
    assert_eq!(sum[NING], (4, 7, "273.62".to_owned()));
    assert_eq!(sum[XIFENG], (0, 0, "0.00".to_owned()));
    app.stop().await;
}

/// A county's own ListEntitlements roll against its SummarizeLinkage row: the roll of 环县 (division 621022) should
/// hold the persons the summary counts for 环县, no more. f (rural dibao in 环县, unemployment insurance in 宁县,
/// paid once at the insurance, so owed by 宁县) and h (owed by 环县, but with a student fact in 西峰区) show up in the
/// rolls of counties that, per SummarizeLinkage, do not owe them.
#[apply(e2e!)]
#[tokio::test]
async fn break_roster_county_roll_sums_equal_the_summary_row() {
    let app = spawn_app().await;
    let people = scenario(&app).await;
    indices(&app).await;
    let sum = summary(&app).await;
    let mut ca = app.client("civil_affairs").await;
    let mut report = Vec::new();
    for county in [HUAN, NING, XIFENG] {
        let mut persons = BTreeSet::new();
        let (mut times, mut owed) = (0u64, 0i64);
        let mut foreign = Vec::new();
        for month in ["2022-09", "2022-10"] {
            for e in all_pages(&mut ca, month, county).await {
                if e.county_code != county {
                    let who = if e.id_number == people.f {
                        "f"
                    } else if e.id_number == people.h {
                        "h"
                    } else {
                        "?"
                    };
                    foreign.push(format!("{month} {who} owed by {}", e.county_code));
                }
                persons.insert(e.id_number);
                times += 1;
                owed += fen(&e.total);
            }
        }
        let got = (persons.len() as u64, times, yuan(owed));
        if got != sum[county] {
            report.push(format!(
                "{county}: roll {got:?} vs summary {:?}; listed but owed elsewhere: {foreign:?}",
                sum[county]
            ));
        }
    }
    assert!(report.is_empty(), "county rolls differ from SummarizeLinkage:\n{}", report.join("\n"));
    app.stop().await;
}

fn assistance_of(
    program: pb::Program,
    residence: pb::Residence,
    benefit: &str,
    status: pb::AssistanceStatus,
) -> pb::fact::Payload {
    let mut p = assistance(program, residence);
    if let pb::fact::Payload::Assistance(x) = &mut p {
        x.monthly_benefit = benefit.into();
        x.status = status as i32;
    }
    p
}

/// ListFundReports' expected amounts (the roster sum over migration 0023's index) against sums by hand, with urban
/// and rural dibao, validity ending on or after the month's last day, superseded versions and suspended facts.
#[apply(e2e!)]
#[tokio::test]
async fn break_roster_fund_report_expected_amounts_by_hand() {
    use pb::AssistanceStatus::{Active, Suspended};
    use pb::Program::{Dibao, Tekun};
    use pb::Residence::{Rural, Urban};
    let app = spawn_app().await;
    app.app_hub.clock.set(Some(at("2022-11-20T02:00:00Z")));
    let p = |county: &str, seq: u16| id(county, (1980, 2, 2), seq);
    let mut ca = app.client("civil_affairs").await;
    accepted(
        &mut ca,
        vec![
            fact("u1", &p(HUAN, 1), HUAN, "2022-01-01", assistance_of(Dibao, Urban, "700.00", Active)),
            until(
                fact("u2", &p(HUAN, 2), HUAN, "2022-01-01", assistance_of(Dibao, Urban, "123.45", Active)),
                "2022-09-30",
            ),
            fact("u3", &p(HUAN, 3), HUAN, "2022-09-30", assistance_of(Dibao, Urban, "10.01", Active)),
            fact("u4", &p(HUAN, 4), HUAN, "2022-01-01", assistance_of(Dibao, Urban, "500.00", Active)),
            fact("u5", &p(HUAN, 5), HUAN, "2022-01-01", assistance_of(Dibao, Urban, "400.00", Active)),
            fact("u6", &p(HUAN, 6), HUAN, "2022-01-01", assistance_of(Dibao, Urban, "99.00", Suspended)),
            fact("u7", &p(HUAN, 7), HUAN, "2022-10-01", assistance_of(Dibao, Urban, "1.00", Active)),
            fact("r1", &p(HUAN, 11), HUAN, "2022-01-01", assistance_of(Dibao, Rural, "442.00", Active)),
            until(
                fact("r2", &p(HUAN, 12), HUAN, "2022-01-01", assistance_of(Dibao, Rural, "0.01", Active)),
                "2022-10-01",
            ),
            fact("t1", &p(NING, 21), NING, "2022-01-01", assistance_of(Tekun, Urban, "300.00", Active)),
            fact("t2", &p(HUAN, 22), HUAN, "2022-01-01", assistance_of(Tekun, Rural, "250.50", Active)),
            fact("n1", &p(NING, 23), NING, "2022-01-01", assistance_of(Dibao, Urban, "600.00", Active)),
        ],
    )
    .await;
    // Second versions: u4 555.55 (was 500.00); u5 moves to rural 400.00; n1 moves to 环县 urban 600.00.
    let mut v2 = vec![
        fact("u4", &p(HUAN, 4), HUAN, "2022-01-01", assistance_of(Dibao, Urban, "555.55", Active)),
        fact("u5", &p(HUAN, 5), HUAN, "2022-01-01", assistance_of(Dibao, Rural, "400.00", Active)),
        fact("n1", &p(NING, 23), HUAN, "2022-01-01", assistance_of(Dibao, Urban, "600.00", Active)),
    ];
    for f in &mut v2 {
        f.source_version = 2;
    }
    let r = push(&mut ca, v2).await.unwrap();
    for res in &r.results {
        assert_eq!(outcome(res), pb::FactOutcome::NewVersion, "{res:?}");
    }
    let rows = ca
        .coordination
        .list_fund_reports(pb::ListFundReportsRequest {
            month: "2022-09".into(),
            program: 0,
            as_of: "2022-11-20".into(),
            include_history: false,
        })
        .await
        .unwrap()
        .into_inner()
        .rows;
    let expected = |county: &str, program: pb::FundProgram| {
        rows.iter().find(|r| r.county_code == county && r.program == program as i32).unwrap().expected_amount.clone()
    };
    // 环县 urban on 2022-09-30: u1 700.00 + u3 10.01 + u4 555.55 + n1 600.00 = 1865.56 (u2 ends 09-30, u5 now rural,
    // u6 suspended, u7 from 10-01). Rural: r1 442.00 + r2 0.01 + u5 400.00 = 842.01. Tekun: t2 250.50.
    assert_eq!(expected(HUAN, pb::FundProgram::UrbanDibao), "1865.56");
    assert_eq!(expected(HUAN, pb::FundProgram::RuralDibao), "842.01");
    assert_eq!(expected(HUAN, pb::FundProgram::Tekun), "250.50");
    // 宁县: n1 moved away; t1 300.00.
    assert_eq!(expected(NING, pb::FundProgram::UrbanDibao), "0.00");
    assert_eq!(expected(NING, pb::FundProgram::RuralDibao), "0.00");
    assert_eq!(expected(NING, pb::FundProgram::Tekun), "300.00");
    // October (2022-10-31): urban u1 + u3 + u4 + n1 + u7 1.00 = 1866.56; rural r1 + u5 = 842.00 (r2 ended 10-01).
    let oct = ca
        .coordination
        .list_fund_reports(pb::ListFundReportsRequest {
            month: "2022-10".into(),
            program: pb::FundProgram::RuralDibao as i32,
            as_of: "2022-11-20".into(),
            include_history: false,
        })
        .await
        .unwrap()
        .into_inner()
        .rows;
    assert_eq!(oct.iter().find(|r| r.county_code == HUAN).unwrap().expected_amount, "842.00");
    // SubmitFundReport's finding uses the same sum: 环县 rural 2022-09 reported 842.01 → no mismatch; 844.00 → beyond
    // the tolerance of 1.00.
    let mut huan = app.client_in("civil_affairs", Some(HUAN)).await;
    for amount in ["842.01", "844.00"] {
        huan.coordination
            .submit_fund_report(pb::SubmitFundReportRequest {
                county_code: HUAN.into(),
                month: "2022-09".into(),
                program: pb::FundProgram::RuralDibao as i32,
                disbursed_on: "2022-09-25".into(),
                amount: amount.into(),
                recipients: 3,
            })
            .await
            .unwrap();
        let rows = huan
            .coordination
            .list_fund_reports(pb::ListFundReportsRequest {
                month: "2022-09".into(),
                program: pb::FundProgram::RuralDibao as i32,
                as_of: "2022-11-20".into(),
                include_history: false,
            })
            .await
            .unwrap()
            .into_inner()
            .rows;
        let row = rows.iter().find(|r| r.county_code == HUAN).unwrap();
        let want = if amount == "842.01" { "" } else { "DISBURSEMENT_MISMATCH" };
        assert_eq!((row.expected_amount.as_str(), row.finding.as_str()), ("842.01", want), "reported {amount}");
    }
    app.stop().await;
}
