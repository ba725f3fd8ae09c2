//! `doudi.v1.Subsidies` end to end (issue 18; docs/subsidies.md): price indices pushed by development_reform, the
//! linkage decided by the rule versions of migration 0021, entitlements from the facts of civil_affairs and
//! human_resources in force on the subsidy month's last day, and the counties' figures against their fund reports.
//!
//! Every expected amount is computed by hand beside the assertion. Bases (migration 0021): Qingyang's 2022 dibao
//! standards, urban 680.00/month and rural 5,268/12 = 439.00/month (docs/domain/qingyang-figures.md §3); the
//! unemployment groups take the urban base. Index values: the national CPI and food CPI year-on-year of Aug 2022
//! (2.5 %, 6.1 %) and Sep 2022 (2.8 %, 8.8 %), kept as test data.

use chrono::{DateTime, Utc};
use macro_rules_attribute::apply;
use serde_json::json;
use tonic::Code;

use doudi::client::Clients;
use doudi::grpc::pb;

use crate::support::*;

pub(crate) const HUAN: &str = "621022";
pub(crate) const NING: &str = "621026";

pub(crate) fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

pub(crate) fn index(month: &str, cpi: &str, food: &str, published_on: &str) -> pb::PriceIndex {
    pb::PriceIndex {
        month: month.into(),
        cpi_yoy: cpi.into(),
        food_cpi_yoy: food.into(),
        scpi_yoy: String::new(),
        published_on: published_on.into(),
    }
}

pub(crate) async fn push_indices(
    c: &mut Clients,
    indices: Vec<pb::PriceIndex>,
) -> Result<Vec<pb::IndexOutcome>, tonic::Status> {
    let r = c.subsidies.push_price_indices(pb::PushPriceIndicesRequest { indices }).await?.into_inner();
    Ok(r.outcomes.into_iter().map(|o| pb::IndexOutcome::try_from(o).unwrap()).collect())
}

async fn decide(c: &mut Clients, month: &str) -> Result<pb::LinkageDecision, tonic::Status> {
    Ok(c.subsidies
        .decide_linkage(pb::DecideLinkageRequest { month: month.into() })
        .await?
        .into_inner()
        .decision
        .unwrap())
}

async fn entitlements(
    c: &mut Clients,
    month: &str,
    division: &str,
) -> Result<Vec<pb::SubsidyEntitlement>, tonic::Status> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let r = c
            .subsidies
            .list_entitlements(pb::ListEntitlementsRequest {
                month: month.into(),
                division_code: division.into(),
                page_size: 2,
                page_token: token,
                purpose: "price subsidy roll".into(),
                campaign: String::new(),
            })
            .await?
            .into_inner();
        out.extend(r.entitlements);
        token = r.next_page_token;
        if token.is_empty() {
            return Ok(out);
        }
    }
}

fn amount(d: &pb::LinkageDecision, group: &str, residence: pb::Residence) -> String {
    d.amounts.iter().find(|a| a.group == group && a.residence == residence as i32).unwrap().amount.clone()
}

pub(crate) fn assistance(program: pb::Program, residence: pb::Residence) -> pb::fact::Payload {
    let dibao = program == pb::Program::Dibao;
    pb::fact::Payload::Assistance(pb::Assistance {
        program: program as i32,
        residence: residence as i32,
        rural_class: (dibao && residence == pb::Residence::Rural).then_some(1),
        urban_mode: if dibao && residence == pb::Residence::Urban { pb::UrbanMode::Full as i32 } else { 0 },
        support_mode: if program == pb::Program::Tekun { pb::SupportMode::Dispersed as i32 } else { 0 },
        household_id: "HH-S".into(),
        monthly_benefit: "300.00".into(),
        status: pb::AssistanceStatus::Active as i32,
    })
}

fn unemployed(benefit: pb::UnemploymentBenefit) -> pb::fact::Payload {
    pb::fact::Payload::Employment(pb::Employment {
        status: pb::EmploymentStatus::RegisteredUnemployed as i32,
        unemployment_benefit: benefit as i32,
    })
}

pub(crate) fn fact(fact_id: &str, id_number: &str, division: &str, from: &str, p: pb::fact::Payload) -> pb::Fact {
    let mut f = with(base(fact_id, id_number, division), p);
    f.valid_from = from.into();
    f
}

pub(crate) async fn accepted(c: &mut Clients, facts: Vec<pb::Fact>) {
    let r = push(c, facts).await.unwrap();
    for res in &r.results {
        assert_eq!(outcome(res), pb::FactOutcome::Accepted, "{res:?}");
    }
}

/// The roster of the scenario. Persons:
/// A urban dibao (HUAN) since 2022-01-01; B rural dibao (HUAN) since 2022-01-01 and receiving unemployment insurance
/// benefit since 2022-06-01; C rural dibao-marginal (NING) since 2022-01-01; D urban dibao (HUAN) from 2022-10-01;
/// E at-risk only (HUAN).
pub(crate) struct Roster {
    pub(crate) a: String,
    pub(crate) b: String,
    pub(crate) c: String,
    pub(crate) d: String,
    pub(crate) e: String,
}

pub(crate) async fn roster(app: &TestApp) -> Roster {
    let r = Roster {
        a: id(HUAN, (1960, 1, 1), 11),
        b: id(HUAN, (1961, 1, 1), 12),
        c: id(NING, (1962, 1, 1), 13),
        d: id(HUAN, (1963, 1, 1), 14),
        e: id(HUAN, (1964, 1, 1), 15),
    };
    let mut ca = app.client("civil_affairs").await;
    accepted(
        &mut ca,
        vec![
            fact("A", &r.a, HUAN, "2022-01-01", assistance(pb::Program::Dibao, pb::Residence::Urban)),
            fact("B", &r.b, HUAN, "2022-01-01", assistance(pb::Program::Dibao, pb::Residence::Rural)),
            fact("C", &r.c, NING, "2022-01-01", assistance(pb::Program::DibaoMarginal, pb::Residence::Rural)),
            fact("D", &r.d, HUAN, "2022-10-01", assistance(pb::Program::Dibao, pb::Residence::Urban)),
            fact("E", &r.e, HUAN, "2022-01-01", assistance(pb::Program::AtRisk, pb::Residence::Urban)),
        ],
    )
    .await;
    let mut hr = app.client("human_resources").await;
    accepted(
        &mut hr,
        vec![fact("HB", &r.b, HUAN, "2022-06-01", unemployed(pb::UnemploymentBenefit::InsuranceBenefit))],
    )
    .await;
    r
}

/// The indices of Aug and Sep 2022, pushed by development_reform on 2022-11-20 (Asia/Shanghai).
pub(crate) async fn indices(app: &TestApp) {
    app.app_hub.clock.set(Some(at("2022-11-20T02:00:00Z")));
    let mut dr = app.client("development_reform").await;
    let o = push_indices(
        &mut dr,
        vec![index("2022-08", "2.50", "6.10", "2022-09-09"), index("2022-09", "2.80", "8.80", "2022-10-14")],
    )
    .await
    .unwrap();
    assert_eq!(o, [pb::IndexOutcome::Accepted, pb::IndexOutcome::Accepted]);
}

#[apply(e2e!)]
#[tokio::test]
async fn price_indices_are_versioned_and_bad_fields_are_named() {
    let app = spawn_app().await;
    app.app_hub.clock.set(Some(at("2022-11-20T02:00:00Z"))); // 2022-11-20 10:00 in Asia/Shanghai
    let mut dr = app.client("development_reform").await;
    let audit_before = app.audit_events().await;

    // Every bad field of every index is named; nothing is stored.
    let bad = vec![index("2022-08", "2.50", "6.10", "2022-09-09"), index("2022-12", "3.005", "50.5", "2022-11-21")];
    let s = push_indices(&mut dr, bad).await.unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    for part in [
        "indices[1].month: 2022-12 is in the future",
        "indices[1].cpi_yoy: has more than 2 fractional digits",
        "indices[1].food_cpi_yoy: must lie within -50 and +50",
        "indices[1].published_on: 2022-11-21 is in the future",
    ] {
        assert!(s.message().contains(part), "{part} in {}", s.message());
    }
    assert_eq!(app.audit_events().await, audit_before, "a refused push writes nothing");
    let mut lg = app.client("leading_group").await;
    assert_eq!(decide(&mut lg, "2022-09").await.unwrap_err().code(), Code::FailedPrecondition, "index not stored");

    // First push, the same values again, then a revision of food CPI.
    let o = push_indices(&mut dr, vec![index("2022-08", "2.50", "6.10", "2022-09-09")]).await.unwrap();
    assert_eq!(o, [pb::IndexOutcome::Accepted]);
    let o = push_indices(&mut dr, vec![index("2022-08", "2.50", "6.10", "2022-09-09")]).await.unwrap();
    assert_eq!(o, [pb::IndexOutcome::Duplicate]);
    let o = push_indices(&mut dr, vec![index("2022-08", "2.50", "5.99", "2022-09-19")]).await.unwrap();
    assert_eq!(o, [pb::IndexOutcome::NewVersion]);
    assert_eq!(app.audit_events().await, audit_before + 3, "one audit event per accepted call");

    // The latest version decides: food 5.99 < 6.00 and CPI 2.50 < 3.00 (window): not triggered.
    let d = decide(&mut lg, "2022-09").await.unwrap();
    assert_eq!((d.index_version, d.triggered, d.amounts.len()), (2, false, 0));

    // Who may push: development_reform's city office only.
    let mut ca = app.client("civil_affairs").await;
    let s = push_indices(&mut ca, vec![index("2022-07", "2.70", "6.30", "2022-08-10")]).await.unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    // development_reform owns no fact kind: a PushFacts is refused outright, and it reads nothing person-level.
    let s = push(&mut dr, vec![with(base("X", &id(HUAN, (1970, 1, 1), 3), HUAN), urban_dibao())]).await.unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    let s = get(&mut dr, &id(HUAN, (1970, 1, 1), 3), "2023-06-30").await.unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn decide_linkage_sep_oct_2022() {
    let app = spawn_app().await;
    indices(&app).await;
    let mut lg = app.client("leading_group").await;

    // Subsidy month 2022-09 ← index month 2022-08, rule 621000-2022-0831 (CPI 3.0, food 6.0).
    // CPI 2.50 < 3.00; food 6.10 ≥ 6.00: triggered by food.
    let d = decide(&mut lg, "2022-09").await.unwrap();
    assert_eq!((d.index_month.as_str(), d.rule_version.as_str()), ("2022-08", "621000-2022-0831"));
    assert!(d.triggered);
    assert_eq!(d.applied_index, "FOOD_CPI");
    let crossed: Vec<(&str, &str, &str, bool)> =
        d.comparisons.iter().map(|c| (c.index.as_str(), c.rise.as_str(), c.threshold.as_str(), c.crossed)).collect();
    assert_eq!(crossed, [("CPI", "2.50", "3.00", false), ("FOOD_CPI", "6.10", "6.00", true)]);
    // 680.00 × 6.10 % = 41.48; 439.00 × 6.10 % = 26.779 → 26.78 (half-up to the fen).
    assert_eq!(amount(&d, "DIBAO", pb::Residence::Urban), "41.48");
    assert_eq!(amount(&d, "DIBAO", pb::Residence::Rural), "26.78");
    assert_eq!(amount(&d, "UNEMPLOYMENT_SUBSIDY", pb::Residence::Unspecified), "41.48");
    assert_eq!(amount(&d, "DIBAO_MARGINAL", pb::Residence::Rural), "26.78");

    // 2022-10 ← 2022-09: food 8.80: 680 × 8.8 % = 59.84; 439 × 8.8 % = 38.632 → 38.63.
    let mut dr = app.client("development_reform").await;
    let d = decide(&mut dr, "2022-10").await.unwrap();
    assert_eq!(amount(&d, "TEKUN", pb::Residence::Urban), "59.84");
    assert_eq!(amount(&d, "TEKUN", pb::Residence::Rural), "38.63");

    // Who may decide: civil_affairs, leading_group, development_reform; not human_resources.
    let mut hr = app.client("human_resources").await;
    assert_eq!(decide(&mut hr, "2022-09").await.unwrap_err().code(), Code::PermissionDenied);
    // A month whose index is not stored, and a month that is not one.
    let mut ca = app.client("civil_affairs").await;
    let s = decide(&mut ca, "2022-12").await.unwrap_err();
    assert_eq!(s.code(), Code::FailedPrecondition);
    assert!(s.message().contains("2022-11"), "names the index month: {}", s.message());
    let s = decide(&mut ca, "2022-13").await.unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().starts_with("month:"), "{}", s.message());
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn entitlements_pay_once_at_the_highest_from_the_facts_of_the_last_day() {
    let app = spawn_app().await;
    let r = roster(&app).await;
    indices(&app).await;
    let mut ca = app.client("civil_affairs").await;
    let audit_before = app.audit_events().await;

    // September (facts in force on 2022-09-30), urban 41.48 / rural 26.78:
    // A urban dibao 41.48; B rural dibao 26.78 and unemployment insurance 41.48 → once, 41.48;
    // C rural marginal 26.78 (a window group); D starts 2022-10-01: not yet; E at-risk: not a group.
    let sep = entitlements(&mut ca, "2022-09", "").await.unwrap();
    let got: Vec<(&str, &str, &str)> =
        sep.iter().map(|e| (e.id_number.as_str(), e.payments[0].group.as_str(), e.total.as_str())).collect();
    assert_eq!(
        got,
        [
            (r.a.as_str(), "DIBAO", "41.48"),
            (r.b.as_str(), "UNEMPLOYMENT_INSURANCE", "41.48"),
            (r.c.as_str(), "DIBAO_MARGINAL", "26.78")
        ]
    );
    let b = &sep[1];
    assert_eq!(b.payments.len(), 1, "paid once");
    let considered: Vec<(&str, &str, &str)> =
        b.considered.iter().map(|p| (p.basis.as_str(), p.amount.as_str(), p.fact.as_str())).collect();
    assert_eq!(
        considered,
        [
            ("assistance:DIBAO", "26.78", "civil_affairs/B@1"),
            ("employment:UNEMPLOYMENT_INSURANCE", "41.48", "human_resources/HB@1"),
        ]
    );
    // The roster on 2022-09-30 is A B C E (D's fact starts 2022-10-01): two pages of 2, one audit event each.
    assert_eq!(app.audit_events().await, audit_before + 2);

    // October (2022-10-31), urban 59.84 / rural 38.63: A 59.84, B max(38.63, 59.84) = 59.84, C 38.63, D 59.84.
    let oct = entitlements(&mut ca, "2022-10", "").await.unwrap();
    let totals: Vec<&str> = oct.iter().map(|e| e.total.as_str()).collect();
    assert_eq!(totals, ["59.84", "59.84", "38.63", "59.84"]);

    // The county office of 环县 sees its county only (A, B), and may not ask for 宁县.
    let mut huan = app.client_in("civil_affairs", Some(HUAN)).await;
    let ids: Vec<String> =
        entitlements(&mut huan, "2022-09", "").await.unwrap().into_iter().map(|e| e.id_number).collect();
    assert_eq!(ids, [r.a.clone(), r.b.clone()]);
    assert_eq!(entitlements(&mut huan, "2022-09", NING).await.unwrap_err().code(), Code::PermissionDenied);
    // Person-level: not for leading_group, development_reform or human_resources.
    for agency in ["leading_group", "development_reform", "human_resources"] {
        let mut c = app.client(agency).await;
        assert_eq!(entitlements(&mut c, "2022-09", "").await.unwrap_err().code(), Code::PermissionDenied, "{agency}");
    }

    // A late fact: E was enrolled in urban tekun from 2022-08-01, recorded only now. September computed again:
    // E owed 680 × 6.10 % = 41.48 (tekun's base is the dibao standard in these versions).
    accepted(
        &mut ca,
        vec![fact("E-T", &r.e, HUAN, "2022-08-01", assistance(pb::Program::Tekun, pb::Residence::Urban))],
    )
    .await;
    let sep = entitlements(&mut ca, "2022-09", "").await.unwrap();
    let e = sep.iter().find(|x| x.id_number == r.e).expect("E is owed after the late fact");
    assert_eq!((e.payments[0].group.as_str(), e.total.as_str()), ("TEKUN", "41.48"));
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn unemployment_subsidy_recipients_are_owed_only_inside_the_window() {
    let app = spawn_app().await;
    let person = id(HUAN, (1980, 5, 5), 21);
    let mut hr = app.client("human_resources").await;
    accepted(
        &mut hr,
        vec![fact("US", &person, HUAN, "2022-01-01", unemployed(pb::UnemploymentBenefit::UnemploymentSubsidy))],
    )
    .await;
    // A benefit needs status REGISTERED_UNEMPLOYED: refused per record, naming the field.
    let mut f = fact("US2", &id(HUAN, (1981, 5, 5), 22), HUAN, "2022-01-01", employment());
    if let Some(pb::fact::Payload::Employment(e)) = f.payload.as_mut() {
        e.unemployment_benefit = pb::UnemploymentBenefit::InsuranceBenefit as i32;
    }
    let res = push(&mut hr, vec![f]).await.unwrap();
    assert_eq!(outcome(&res.results[0]), pb::FactOutcome::Rejected);
    assert_eq!(res.results[0].field, "facts[0].employment.unemployment_benefit");

    app.app_hub.clock.set(Some(at("2023-05-20T02:00:00Z")));
    let mut dr = app.client("development_reform").await;
    // Index 2023-02 (inside the window, paid 2023-03) CPI 3.00 ≥ 3.0; index 2023-03 (outside, paid 2023-04) CPI 3.60
    // ≥ 3.5 (both kept as test data: above the real values).
    push_indices(
        &mut dr,
        vec![index("2023-02", "3.00", "1.00", "2023-03-09"), index("2023-03", "3.60", "1.00", "2023-04-11")],
    )
    .await
    .unwrap();
    let mut ca = app.client("civil_affairs").await;
    // Inside: 680.00 × 3.00 % = 20.40.
    let inside = entitlements(&mut ca, "2023-03", "").await.unwrap();
    assert_eq!(inside.len(), 1);
    assert_eq!((inside[0].payments[0].group.as_str(), inside[0].total.as_str()), ("UNEMPLOYMENT_SUBSIDY", "20.40"));
    // Outside: triggered (3.60 ≥ 3.50) under 621000-1553-2021, which does not cover the group: nobody owed.
    let d = decide(&mut ca, "2023-04").await.unwrap();
    assert_eq!((d.rule_version.as_str(), d.triggered), ("621000-1553-2021", true));
    assert!(entitlements(&mut ca, "2023-04", "").await.unwrap().is_empty());
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn county_figures_against_price_subsidy_fund_reports() {
    let app = spawn_app().await;
    roster(&app).await;
    indices(&app).await;
    let mut huan = app.client_in("civil_affairs", Some(HUAN)).await;
    for (month, amount) in [("2022-09", "82.96"), ("2022-10", "170.00")] {
        huan.coordination
            .submit_fund_report(pb::SubmitFundReportRequest {
                county_code: HUAN.into(),
                month: month.into(),
                program: pb::FundProgram::PriceSubsidy as i32,
                disbursed_on: format!("{month}-25"),
                amount: amount.into(),
                recipients: 2,
            })
            .await
            .unwrap();
    }
    let mut lg = app.client("leading_group").await;
    let r = lg
        .subsidies
        .summarize_linkage(pb::SummarizeLinkageRequest { from_month: "2022-09".into(), to_month: "2022-10".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.months.len(), 2);
    let row = |c: &str| r.counties.iter().find(|x| x.county_code == c).unwrap().clone();
    // 环县: Sep A 41.48 + B 41.48 = 82.96 (2 persons); Oct A, B, D 59.84 × 3 = 179.52.
    // Persons {A, B, D} = 3; person-times 2 + 3 = 5; owed 82.96 + 179.52 = 262.48; reported 82.96 + 170.00 = 252.96;
    // October differs by 9.52 > 1.00: MISMATCH.
    let h = row(HUAN);
    assert_eq!(
        (h.persons, h.person_times, h.amount_owed.as_str(), h.amount_reported.as_str(), h.finding.as_str()),
        (3, 5, "262.48", "252.96", "MISMATCH")
    );
    // 宁县: C 26.78 + 38.63 = 65.41 over 2 person-times, nothing reported: MISSING.
    let n = row(NING);
    assert_eq!(
        (n.persons, n.person_times, n.amount_owed.as_str(), n.amount_reported.as_str(), n.finding.as_str()),
        (1, 2, "65.41", "", "MISSING")
    );
    // 西峰区: nobody owed, nothing reported, no finding.
    let x = row("621002");
    assert_eq!((x.persons, x.amount_owed.as_str(), x.finding.as_str()), (0, "0.00", ""));

    // The monthly report of 2022-09 shows the campaign by county (issue 18 item 5): 环县 2 persons, 41.48 × 2 = 82.96
    // owed and reported; 宁县 1 person, 26.78 owed, no report: MISSING.
    let report = |month: &str| {
        let mut lg = lg.clone();
        let month = month.to_owned();
        async move {
            let r = lg.coordination.get_monthly_report(pb::GetMonthlyReportRequest { month }).await.unwrap();
            doudi::grpc::snapshot::struct_to_json(r.into_inner().report.unwrap())
        }
    };
    let sep = report("2022-09").await;
    let rows = sep["campaigns"].as_array().unwrap();
    let of = |c: &str| rows.iter().find(|r| r["county_code"] == c).unwrap().clone();
    let h = of(HUAN);
    assert_eq!(
        (&h["campaign"], &h["program"], &h["persons"], &h["amount_owed"], &h["amount_reported"], &h["finding"]),
        (&json!("621000-2022-0831"), &json!("PRICE_SUBSIDY"), &json!(2), &json!("82.96"), &json!("82.96"), &json!(""))
    );
    let n = of(NING);
    assert_eq!(
        (&n["persons"], &n["amount_owed"], &n["amount_reported"], &n["finding"]),
        (&json!(1), &json!("26.78"), &serde_json::Value::Null, &json!("MISSING"))
    );
    // A month without a stored index (2022-12 ← 2022-11) and no fixed-amount campaign: no campaigns in the report.
    assert!(report("2022-12").await.get("campaigns").is_none());
    app.stop().await;
}

/// A directory holding ca.pem, AGENCY.pem and AGENCY.key, as `--certs-dir` expects.
fn certs_dir(app: &TestApp, agency: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let id = app.identity(agency, None);
    std::fs::write(d.path().join("ca.pem"), &id.ca_pem).unwrap();
    std::fs::write(d.path().join(format!("{agency}.pem")), &id.cert_pem).unwrap();
    std::fs::write(d.path().join(format!("{agency}.key")), &id.key_pem).unwrap();
    d
}

#[apply(e2e!)]
#[tokio::test]
async fn cli_pushes_indices_decides_and_lists_as_tables_and_json() {
    use doudi::client::ConnectArgs;
    use doudi::client::subsidies::{DecideArgs, ListArgs, PushIndicesArgs, decide, list, push_indices};
    let app = spawn_app().await;
    let r = roster(&app).await;
    app.app_hub.clock.set(Some(at("2022-11-20T02:00:00Z")));
    let dr_dir = certs_dir(&app, "development_reform");
    let csv = dr_dir.path().join("indices.csv");
    std::fs::write(
        &csv,
        "month,cpi_yoy,food_cpi_yoy,scpi_yoy,published_on\n2022-08,2.50,6.10,,2022-09-09\n2022-09,2.80,8.80,3.10,2022-10-14\n",
    )
    .unwrap();
    let dr = ConnectArgs::from_dir(&app.server, dr_dir.path(), "development_reform");
    let out = push_indices(&PushIndicesArgs { connect: dr, file: csv }).await.unwrap();
    assert_eq!(out, "2022-08  ACCEPTED\n2022-09  ACCEPTED\n");

    let ca_dir = certs_dir(&app, "civil_affairs");
    let ca = ConnectArgs::from_dir(&app.server, ca_dir.path(), "civil_affairs");
    // `doudi subsidies decide 2022-09`: index 2022-08, food 6.10 ≥ 6.00; urban 680 × 6.10 % = 41.48.
    let table = decide(&DecideArgs { connect: ca.clone(), month: "2022-09".into(), json: false }).await.unwrap();
    assert!(table.contains("rule 621000-2022-0831"), "{table}");
    assert!(table.contains("triggered by FOOD_CPI"), "{table}");
    assert!(table.lines().any(|l| l.contains("DIBAO") && l.contains("URBAN") && l.ends_with("41.48")), "{table}");
    let json = decide(&DecideArgs { connect: ca.clone(), month: "2022-09".into(), json: true }).await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!((v["triggered"].as_bool(), v["applied_index"].as_str()), (Some(true), Some("FOOD_CPI")));

    // `doudi subsidies list 2022-09 --all --json`: A 41.48, B 41.48 (paid once), C 26.78 (439 × 6.10 % = 26.779).
    let args = ListArgs {
        connect: ca.clone(),
        month: Some("2022-09".into()),
        campaign: None,
        division: None,
        page_size: 2,
        all: true,
        purpose: "roll".into(),
        json: true,
    };
    let v: serde_json::Value = serde_json::from_str(&list(&args).await.unwrap()).unwrap();
    let rows: Vec<(String, String)> = v["entitlements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["id_number"].as_str().unwrap().to_owned(), e["total"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(rows, [(r.a.clone(), "41.48".into()), (r.b.clone(), "41.48".into()), (r.c.clone(), "26.78".into())]);
    let table = list(&ListArgs { json: false, ..args }).await.unwrap();
    let b_line = table.lines().find(|l| l.starts_with(&r.b)).unwrap();
    assert!(b_line.contains("UNEMPLOYMENT_INSURANCE") && b_line.contains("assistance:DIBAO 26.78"), "{b_line}");
    app.stop().await;
}

/// A winter-warmth campaign for test (amounts of our own, not of a document): 200.00 per dibao person, 300.00 per
/// tekun person, paid in October 2022.
const WARMTH: &str = r#"{"code":"t-2022-10-warmth","name":"温暖过冬","month":"2022-10","fund_program":"WINTER_WARMTH",
  "amounts":[{"group":"DIBAO","base":"200.00"},{"group":"TEKUN","base":"300.00"}],"pay_once_at_highest":true}"#;

#[apply(e2e!)]
#[tokio::test]
async fn a_fixed_amount_campaign_uses_the_same_roster_and_reconciliation() {
    let app = spawn_app().await;
    let r = roster(&app).await;
    let actor = doudi::ops::direct_actor();
    let before = app.audit_events().await;
    doudi::hub::subsidy::add_fixed_campaign(&app.app_hub.store, &actor, WARMTH, "test amounts").await.unwrap();
    assert_eq!(app.audit_events().await, before + 1, "adding a campaign is audited");
    let again = doudi::hub::subsidy::add_fixed_campaign(&app.app_hub.store, &actor, WARMTH, "test amounts").await;
    assert!(matches!(again, Err(doudi::hub::HubError::AlreadyExists(_))), "never overwritten");
    app.app_hub.clock.set(Some(at("2022-11-20T02:00:00Z")));

    // Facts in force on 2022-10-31: A, B, D urban or rural dibao → 200.00 each (B's unemployment insurance is not a
    // group of this campaign); C dibao-marginal and E at-risk: not covered.
    let mut ca = app.client("civil_affairs").await;
    let list = |campaign: &str, month: &str| pb::ListEntitlementsRequest {
        campaign: campaign.into(),
        month: month.into(),
        page_size: 10,
        purpose: "warmth roll".into(),
        ..Default::default()
    };
    let got = ca.subsidies.list_entitlements(list("t-2022-10-warmth", "")).await.unwrap().into_inner();
    let d = got.decision.unwrap();
    assert_eq!((d.rule_version.as_str(), d.month.as_str(), d.triggered), ("t-2022-10-warmth", "2022-10", true));
    assert_eq!(d.fund_program, pb::FundProgram::WinterWarmth as i32);
    let rows: Vec<(&str, &str)> = got.entitlements.iter().map(|e| (e.id_number.as_str(), e.total.as_str())).collect();
    assert_eq!(rows, [(r.a.as_str(), "200.00"), (r.b.as_str(), "200.00"), (r.d.as_str(), "200.00")]);
    assert_eq!(got.entitlements[1].considered.len(), 1, "B: only the dibao enrolment is a covered group");
    // Month and campaign together, or an unknown campaign.
    let s = ca.subsidies.list_entitlements(list("t-2022-10-warmth", "2022-10")).await.unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    let s = ca.subsidies.list_entitlements(list("no-such", "")).await.unwrap_err();
    assert_eq!(s.code(), Code::NotFound);

    // 环县 reports 600.00 of WINTER_WARMTH for 2022-10 (3 × 200.00): no finding. 宁县 owes nothing: no finding.
    let mut huan = app.client_in("civil_affairs", Some(HUAN)).await;
    huan.coordination
        .submit_fund_report(pb::SubmitFundReportRequest {
            county_code: HUAN.into(),
            month: "2022-10".into(),
            program: pb::FundProgram::WinterWarmth as i32,
            disbursed_on: "2022-10-28".into(),
            amount: "600.00".into(),
            recipients: 3,
        })
        .await
        .unwrap();
    let mut lg = app.client("leading_group").await;
    let s = lg
        .subsidies
        .summarize_campaign(pb::SummarizeCampaignRequest { campaign: "t-2022-10-warmth".into() })
        .await
        .unwrap()
        .into_inner();
    let row = |c: &str| s.counties.iter().find(|x| x.county_code == c).unwrap().clone();
    let h = row(HUAN);
    assert_eq!(
        (h.persons, h.person_times, h.amount_owed.as_str(), h.amount_reported.as_str(), h.finding.as_str()),
        (3, 3, "600.00", "600.00", "")
    );
    let n = row(NING);
    assert_eq!((n.persons, n.amount_owed.as_str(), n.finding.as_str()), (0, "0.00", ""));
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn the_demo_step_decides_sep_oct_2022_and_plants_one_mismatch_and_one_missing_report() {
    let app = spawn_app().await;
    let r = roster(&app).await;
    // 华池县 (621023, the planted short payer) gets one urban dibao person: 41.48 for 2022-09, reported 0.00 (41.48
    // − 100.00 floored at 0.00, `checked_sub` … `unwrap_or_default`).
    let huachi = id("621023", (1965, 1, 1), 16);
    let mut ca = app.client("civil_affairs").await;
    accepted(
        &mut ca,
        vec![fact("H", &huachi, "621023", "2022-01-01", assistance(pb::Program::Dibao, pb::Residence::Urban))],
    )
    .await;
    let mut dr = app.client("development_reform").await;
    let mut lg = app.client("leading_group").await;
    let f = doudi::tools::demo::subsidies::run(&mut dr, &mut ca, &mut lg, &app.app_hub.clock).await.unwrap();
    assert_eq!(f.decisions.iter().map(|d| d.triggered).collect::<Vec<_>>(), [true, true]);
    let row = |c: &str| f.summary.counties.iter().find(|x| x.county_code == c).unwrap().clone();
    // 环县 as in county_figures_against_price_subsidy_fund_reports: owed 262.48, reported as owed: no finding.
    let h = row(HUAN);
    assert_eq!((h.amount_owed.as_str(), h.amount_reported.as_str(), h.finding.as_str()), ("262.48", "262.48", ""));
    // 宁县: C owed 26.78 + 38.63 = 65.41; 2022-10 not reported: MISSING; reported 26.78.
    let n = row(NING);
    assert_eq!((n.amount_owed.as_str(), n.amount_reported.as_str(), n.finding.as_str()), ("65.41", "26.78", "MISSING"));
    // 华池县: H owed 41.48 (Sep) + 59.84 (Oct) = 101.32; reported 0.00 + 59.84 = 59.84: MISMATCH.
    let c = row("621023");
    assert_eq!(
        (c.amount_owed.as_str(), c.amount_reported.as_str(), c.finding.as_str()),
        ("101.32", "59.84", "MISMATCH")
    );
    // City: person-times 5 (环县) + 2 (宁县) + 2 (华池县) = 9; owed 262.48 + 65.41 + 101.32 = 429.21.
    assert!(f.printed.contains("city: 9 person-times, 429.21 yuan owed"), "{}", f.printed);
    // The example: the first person owed in the first county (in code order) with anyone owed. 621002 and 621021 owe
    // nothing, so 环县 (621022), whose first person owed is A.
    assert_eq!(f.example.as_ref().map(|e| e.id_number.as_str()), Some(r.a.as_str()));
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn the_system_administrator_adds_a_rule_version_that_the_index_month_then_selects() {
    use doudi::domain::admin::Role;
    use doudi::grpc::pb::admin_client::AdminClient;
    let app = spawn_app().await;
    app.app_hub.clock.set(Some(at("2023-05-20T02:00:00Z")));
    let mut dr = app.client("development_reform").await;
    push_indices(&mut dr, vec![index("2023-03", "2.50", "1.00", "2023-04-11")]).await.unwrap();
    let mut lg = app.client("leading_group").await;
    // Subsidy month 2023-04 ← index 2023-03 under 621000-1553-2021: CPI 2.50 < 3.50, food 1.00 < 6.00.
    let d = decide(&mut lg, "2023-04").await.unwrap();
    assert_eq!((d.rule_version.as_str(), d.triggered), ("621000-1553-2021", false));

    // A local version lowering the CPI threshold to 2.0 from index month 2023-03 (localities may lower it,
    // docs/domain/policy-reference.md), added through the Admin service by the system administrator.
    let issued = app.ca.issue_operator(TRUST_DOMAIN, Role::System, "sam").unwrap();
    let id = doudi::client::ClientIdentity {
        ca_pem: app.ca.cert_pem().as_bytes().to_vec(),
        cert_pem: issued.cert_pem.into_bytes(),
        key_pem: issued.key_pem.into_bytes(),
    };
    let mut admin = AdminClient::new(doudi::client::connect(&app.server, "localhost", &id).await.unwrap());
    let rules = app.app_hub.store.linkage_rules().await.unwrap();
    let mut rule = rules[0].rule.clone();
    rule.version = "621000-2023-03-local".into();
    rule.effective_from = "2023-03".parse().unwrap();
    rule.cpi_threshold = "2.0".parse().unwrap();
    let req = pb::AddLinkageRuleRequest {
        rule_json: serde_json::to_string(&rule).unwrap(),
        source: "test: a local notice".into(),
    };
    let before = app.audit_events().await;
    let r = admin.add_linkage_rule(req.clone()).await.unwrap().into_inner();
    assert_eq!((r.version.as_str(), r.effective_from.as_str()), ("621000-2023-03-local", "2023-03"));
    assert_eq!(app.audit_events().await, before + 1);
    assert_eq!(admin.add_linkage_rule(req).await.unwrap_err().code(), Code::AlreadyExists);
    let bad = pb::AddLinkageRuleRequest { rule_json: "{}".into(), source: "x".into() };
    let s = admin.add_linkage_rule(bad).await.unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().starts_with("rule_json"), "{}", s.message());

    // Now 2.50 ≥ 2.00: triggered; urban 680.00 × 2.50 % = 17.00, rural 439.00 × 2.50 % = 10.975 → 10.98.
    let d = decide(&mut lg, "2023-04").await.unwrap();
    assert_eq!((d.rule_version.as_str(), d.triggered), ("621000-2023-03-local", true));
    assert_eq!(amount(&d, "DIBAO", pb::Residence::Urban), "17.00");
    assert_eq!(amount(&d, "DIBAO", pb::Residence::Rural), "10.98");
    app.stop().await;
}
