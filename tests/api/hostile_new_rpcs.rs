//! Hostile input against the RPCs merged with issues 18 and 19: `doudi.v1.Subsidies` (docs/subsidies.md) and the
//! coverage findings of `MedicalAssistance.AnswerFinding` / `ExplainFinding` and `Coordination.ListCoverageFindings`
//! (docs/findings.md). Every refusal must be a clear status naming the field and the reason (never INTERNAL or
//! UNKNOWN), must change nothing (no index, answer or audit event stored), and a person-level read that succeeds must
//! be audited.

use chrono::{DateTime, Utc};
use doudi::client::Clients;
use doudi::grpc::pb;
use macro_rules_attribute::apply;
use tonic::Code;

use crate::support::*;

const HUAN: &str = "621022";
const NING: &str = "621026";

fn set_clock(app: &TestApp, at: &str) {
    let t: DateTime<Utc> = DateTime::parse_from_rfc3339(at).unwrap().to_utc();
    app.app_hub.clock.set(Some(t));
}

/// INVALID_ARGUMENT whose message names `field` (`field: reason`, or `…field: reason` inside a list of fields).
#[track_caller]
fn names(s: &tonic::Status, field: &str) {
    assert_eq!(s.code(), Code::InvalidArgument, "{field}: {s:?}");
    let m = s.message();
    assert!(m.starts_with(&format!("{field}: ")) || m.contains(&format!("; {field}: ")), "names {field}: {s:?}");
}

fn index(month: &str, cpi: &str, food: &str, published_on: &str) -> pb::PriceIndex {
    pb::PriceIndex {
        month: month.into(),
        cpi_yoy: cpi.into(),
        food_cpi_yoy: food.into(),
        scpi_yoy: String::new(),
        published_on: published_on.into(),
    }
}

async fn push_indices(c: &mut Clients, indices: Vec<pb::PriceIndex>) -> Result<Vec<i32>, tonic::Status> {
    Ok(c.subsidies.push_price_indices(pb::PushPriceIndicesRequest { indices }).await?.into_inner().outcomes)
}

async fn decide(c: &mut Clients, month: &str) -> Result<pb::LinkageDecision, tonic::Status> {
    Ok(c.subsidies
        .decide_linkage(pb::DecideLinkageRequest { month: month.into() })
        .await?
        .into_inner()
        .decision
        .unwrap())
}

/// The index of a request whose only refusal is in `indices[0]`, or the whole-request field `indices`.
fn one_bad(field: &str, value: &str) -> pb::PriceIndex {
    let mut i = index("2022-08", "2.50", "6.10", "2022-09-09");
    match field {
        "month" => i.month = value.into(),
        "cpi_yoy" => i.cpi_yoy = value.into(),
        "food_cpi_yoy" => i.food_cpi_yoy = value.into(),
        "scpi_yoy" => i.scpi_yoy = value.into(),
        "published_on" => i.published_on = value.into(),
        _ => unreachable!("{field}"),
    }
    i
}

#[apply(e2e!)]
#[tokio::test]
async fn hostile_price_indices_are_refused_per_field_and_store_nothing() {
    let app = spawn_app().await;
    set_clock(&app, "2022-11-20T02:00:00Z"); // 2022-11-20 in Asia/Shanghai
    let mut dr = app.client("development_reform").await;
    let audit_before = app.audit_events().await;
    let long = "1".repeat(10_000);
    let mut cases: Vec<(&str, String)> = Vec::new();
    for rise in
        ["NaN", "nan", "inf", "1e3", "50.001", "50.01", "-50.01", " 3.0 ", "3.0 ", "+3.00", "", "３.００", "3.", ".5"]
    {
        cases.push(("cpi_yoy", rise.into()));
        cases.push(("food_cpi_yoy", rise.into()));
    }
    cases.push(("cpi_yoy", long.clone()));
    cases.push(("scpi_yoy", "1e3".into()));
    cases.push(("scpi_yoy", "NaN".into()));
    for month in ["2022-13", "2022-00", "2022-8", "22-08", "", "２０２２-０８", "2022-08 ", "9999-12", "2023-01"]
    {
        cases.push(("month", month.into()));
    }
    cases.push(("month", "2".repeat(10_000)));
    for date in ["2022-02-30", "2022-09-9", "", "2022-11-21", "2022-08-31", "9999-12-31"] {
        cases.push(("published_on", date.into()));
    }
    for (field, value) in &cases {
        let s = push_indices(&mut dr, vec![one_bad(field, value)]).await.unwrap_err();
        let shown: String = value.chars().take(20).collect();
        assert_eq!(s.code(), Code::InvalidArgument, "{field}={shown:?}: {s:?}");
        assert!(s.message().contains(&format!("indices[0].{field}: ")), "{field}={shown:?}: {s:?}");
        assert!(s.message().len() < 2_000, "the refusal does not echo a 10 KB value: {} bytes", s.message().len());
    }
    // The batch: empty, and one over the maximum of 120 (each a valid index).
    names(&push_indices(&mut dr, vec![]).await.unwrap_err(), "indices");
    let many = vec![index("2022-08", "2.50", "6.10", "2022-09-09"); 121];
    names(&push_indices(&mut dr, many).await.unwrap_err(), "indices");
    let huge = vec![index("2022-08", "2.50", "6.10", "2022-09-09"); 20_000];
    names(&push_indices(&mut dr, huge).await.unwrap_err(), "indices");
    // A good index beside a bad one: the whole request refused.
    let mixed = vec![index("2022-08", "2.50", "6.10", "2022-09-09"), one_bad("cpi_yoy", "NaN")];
    let s = push_indices(&mut dr, mixed).await.unwrap_err();
    assert!(s.message().contains("indices[1].cpi_yoy: "), "{s:?}");
    // Callers who may not push: a county office of development_reform, and agencies without the right.
    for (agency, county) in [("development_reform", Some(HUAN)), ("civil_affairs", None), ("education", None)] {
        let mut c = app.client_in(agency, county).await;
        let s = push_indices(&mut c, vec![index("2022-08", "2.50", "6.10", "2022-09-09")]).await.unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied, "{agency} {county:?}: {s:?}");
    }
    assert_eq!(app.audit_events().await, audit_before, "refused pushes write nothing");
    let mut lg = app.client("leading_group").await;
    assert_eq!(decide(&mut lg, "2022-09").await.unwrap_err().code(), Code::FailedPrecondition, "nothing stored");
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn an_index_month_outside_the_months_decide_linkage_accepts_is_refused() {
    // DecideLinkage takes months 1900-01 .. 2099-12 only (`month_in`); a pushed index month outside that range could
    // never be used, and year 0 is not a date PostgreSQL or the calendar of the notices knows.
    let app = spawn_app().await;
    set_clock(&app, "2022-11-20T02:00:00Z");
    let mut dr = app.client("development_reform").await;
    let before = app.audit_events().await;
    for (month, published) in [("0000-01", "0000-02-15"), ("1899-12", "1900-01-15")] {
        let s = push_indices(&mut dr, vec![index(month, "2.50", "6.10", published)]).await.unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument, "{month}: {s:?}");
        assert!(s.message().contains("indices[0].month: "), "{month}: {s:?}");
    }
    assert_eq!(app.audit_events().await, before);
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn a_negative_zero_rise_is_the_same_value_as_zero() {
    let app = spawn_app().await;
    set_clock(&app, "2022-11-20T02:00:00Z");
    let mut dr = app.client("development_reform").await;
    let o = push_indices(&mut dr, vec![index("2022-08", "0.00", "6.10", "2022-09-09")]).await.unwrap();
    assert_eq!(o, [pb::IndexOutcome::Accepted as i32]);
    // "-0.00", "-0" and "0" are the value 0.00 again: DUPLICATE, nothing written.
    for zero in ["-0.00", "-0", "0", "00.0"] {
        let o = push_indices(&mut dr, vec![index("2022-08", zero, "6.10", "2022-09-09")]).await.unwrap();
        assert_eq!(o, [pb::IndexOutcome::Duplicate as i32], "{zero}");
    }
    let mut lg = app.client("leading_group").await;
    let d = decide(&mut lg, "2022-09").await.unwrap();
    assert_eq!(d.index_version, 1);
    assert_eq!(d.comparisons[0].rise, "0.00");
    app.stop().await;
}

/// Two urban dibao persons of 环县 and one of 宁县 since 2022-01-01, and the index of Aug 2022 (food CPI 6.10:
/// subsidy month 2022-09 triggered), the clock on 2022-11-20.
async fn linkage_scenario(app: &TestApp) {
    let mut ca = app.client("civil_affairs").await;
    let mut facts = Vec::new();
    for (n, county) in [(1u16, HUAN), (2, HUAN), (3, NING)] {
        let mut f = with(base(&format!("S-{n}"), &id(county, (1960, 1, 1), 40 + n), county), urban_dibao());
        f.valid_from = "2022-01-01".into();
        facts.push(f);
    }
    let r = push(&mut ca, facts).await.unwrap();
    assert!(r.results.iter().all(|r| outcome(r) == pb::FactOutcome::Accepted), "{r:?}");
    set_clock(app, "2022-11-20T02:00:00Z");
    let mut dr = app.client("development_reform").await;
    push_indices(&mut dr, vec![index("2022-08", "2.50", "6.10", "2022-09-09")]).await.unwrap();
}

fn list_req(month: &str) -> pb::ListEntitlementsRequest {
    pb::ListEntitlementsRequest { month: month.into(), purpose: "hostile test".into(), ..Default::default() }
}

#[apply(e2e!)]
#[tokio::test]
async fn subsidy_reads_refuse_hostile_months_tokens_and_callers() {
    let app = spawn_app().await;
    linkage_scenario(&app).await;
    let mut ca = app.client("civil_affairs").await;
    let mut lg = app.client("leading_group").await;
    let before = app.audit_events().await;

    // DecideLinkage: malformed months name `month`; well-formed months without an index or rule: FAILED_PRECONDITION.
    let long = "2".repeat(10_000);
    for m in ["2022-13", "2022-00", "0000-01", "9999-12", "", "2022-9", "２０２２-０９", " 2022-09", "2022-09\n", &long]
    {
        let s = decide(&mut lg, m).await.unwrap_err();
        names(&s, "month");
        assert!(s.message().len() < 2_000, "no 10 KB echo: {} bytes", s.message().len());
    }
    for m in ["2099-12", "1900-01", "2030-01"] {
        assert_eq!(decide(&mut lg, m).await.unwrap_err().code(), Code::FailedPrecondition, "{m}");
    }
    // Who may not decide: education, human_resources.
    for agency in ["education", "human_resources"] {
        let mut c = app.client(agency).await;
        assert_eq!(decide(&mut c, "2022-09").await.unwrap_err().code(), Code::PermissionDenied, "{agency}");
    }

    // ListEntitlements: person-level, civil_affairs only.
    for agency in ["education", "development_reform", "leading_group", "human_resources", "medical_insurance"] {
        let mut c = app.client(agency).await;
        let s = c.subsidies.list_entitlements(list_req("2022-09")).await.unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied, "{agency}: {s:?}");
    }
    // A county office asking for another county, and for the whole city's prefix.
    let mut huan = app.client_in("civil_affairs", Some(HUAN)).await;
    for division in [NING, "621026100", "621002"] {
        let r = pb::ListEntitlementsRequest { division_code: division.into(), ..list_req("2022-09") };
        let s = huan.subsidies.list_entitlements(r).await.unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied, "{division}: {s:?}");
    }
    let bad: Vec<(pb::ListEntitlementsRequest, &str)> = vec![
        (list_req("2022-13"), "month"),
        (list_req("0000-01"), "month"),
        (list_req(""), "month"),
        (pb::ListEntitlementsRequest { page_size: u32::MAX, ..list_req("2022-09") }, "page_size"),
        (pb::ListEntitlementsRequest { page_size: 100_000, ..list_req("2022-09") }, "page_size"),
        (pb::ListEntitlementsRequest { page_token: "garbage".into(), ..list_req("2022-09") }, "page_token"),
        (pb::ListEntitlementsRequest { page_token: "A".repeat(10_000), ..list_req("2022-09") }, "page_token"),
        (pb::ListEntitlementsRequest { purpose: "p".repeat(10_000), ..list_req("2022-09") }, "purpose"),
        (pb::ListEntitlementsRequest { purpose: "roll\u{7}".into(), ..list_req("2022-09") }, "purpose"),
        (pb::ListEntitlementsRequest { division_code: "62102X".into(), ..list_req("2022-09") }, "division_code"),
        (pb::ListEntitlementsRequest { division_code: "六二一".into(), ..list_req("2022-09") }, "division_code"),
        (pb::ListEntitlementsRequest { division_code: "6".repeat(10_000), ..list_req("2022-09") }, "division_code"),
        (pb::ListEntitlementsRequest { campaign: "c".repeat(65), ..list_req("") }, "campaign"),
        (pb::ListEntitlementsRequest { campaign: "c\u{0}".into(), ..list_req("") }, "campaign"),
        (pb::ListEntitlementsRequest { campaign: "x".into(), ..list_req("2022-09") }, "campaign"),
    ];
    for (r, field) in bad {
        let s = ca.subsidies.list_entitlements(r).await.unwrap_err();
        names(&s, field);
        assert!(s.message().len() < 2_000, "{field}: no 10 KB echo: {} bytes", s.message().len());
    }
    let s = ca.subsidies.list_entitlements(list_req("2099-12")).await.unwrap_err();
    assert_eq!(s.code(), Code::FailedPrecondition, "{s:?}");
    let s = ca
        .subsidies
        .list_entitlements(pb::ListEntitlementsRequest { campaign: "no-such".into(), ..list_req("") })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::NotFound, "{s:?}");
    assert_eq!(app.audit_events().await, before, "no refused call is audited as a read");

    // Page tokens: a page of one person of the city; the token is refused by another caller (the 环县 office), for
    // another month and for another division; accepted by its own caller.
    let first = pb::ListEntitlementsRequest { page_size: 1, ..list_req("2022-09") };
    let p1 = ca.subsidies.list_entitlements(first.clone()).await.unwrap().into_inner();
    assert_eq!(p1.entitlements.len(), 1);
    assert!(!p1.next_page_token.is_empty());
    assert_eq!(app.audit_events().await, before + 1, "one audit event per page read");
    let token = p1.next_page_token.clone();
    let mut edited = token.clone();
    let last = edited.pop().unwrap();
    edited.push(if last == 'A' { 'B' } else { 'A' });
    let reuse: Vec<(Clients, pb::ListEntitlementsRequest)> = vec![
        (huan.clone(), pb::ListEntitlementsRequest { page_token: token.clone(), ..first.clone() }),
        (
            ca.clone(),
            pb::ListEntitlementsRequest { page_token: token.clone(), division_code: HUAN.into(), ..first.clone() },
        ),
        (ca.clone(), pb::ListEntitlementsRequest { page_token: edited, ..first.clone() }),
    ];
    for (mut c, r) in reuse {
        names(&c.subsidies.list_entitlements(r).await.unwrap_err(), "page_token");
    }
    // Another month: 2022-10 has no index yet (FAILED_PRECONDITION before the token is read); once it has one, the
    // token of 2022-09 is refused.
    let r = pb::ListEntitlementsRequest { page_token: token.clone(), page_size: 1, ..list_req("2022-10") };
    assert_eq!(ca.subsidies.list_entitlements(r).await.unwrap_err().code(), Code::FailedPrecondition);
    let mut dr = app.client("development_reform").await;
    push_indices(&mut dr, vec![index("2022-09", "2.80", "8.80", "2022-10-14")]).await.unwrap();
    let r = pb::ListEntitlementsRequest { page_token: token.clone(), page_size: 1, ..list_req("2022-10") };
    names(&ca.subsidies.list_entitlements(r).await.unwrap_err(), "page_token");
    let audited = app.audit_events().await;
    let p2 = ca
        .subsidies
        .list_entitlements(pb::ListEntitlementsRequest { page_token: token, ..first.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p2.entitlements.len(), 1);
    assert_ne!(p2.entitlements[0].id_number, p1.entitlements[0].id_number);
    assert_eq!(app.audit_events().await, audited + 1, "the second page is audited too");
    // The 环县 office lists its county only.
    let r = huan.subsidies.list_entitlements(list_req("2022-09")).await.unwrap().into_inner();
    assert_eq!(r.entitlements.len(), 2);
    assert!(r.entitlements.iter().all(|e| e.county_code == HUAN), "{r:?}");

    // SummarizeLinkage and SummarizeCampaign.
    let summarize = |from: &str, to: &str| pb::SummarizeLinkageRequest { from_month: from.into(), to_month: to.into() };
    let before = app.audit_events().await;
    for (r, field) in [
        (summarize("2022-13", "2022-09"), "from_month"),
        (summarize("", "2022-09"), "from_month"),
        (summarize("2022-09", ""), "to_month"),
        (summarize("2022-09", "9999-12"), "to_month"),
        (summarize("2022-10", "2022-09"), "to_month"),
        (summarize("2022-01", "2023-01"), "to_month"),
        (summarize("1900-01", "2099-12"), "to_month"),
    ] {
        names(&lg.subsidies.summarize_linkage(r).await.unwrap_err(), field);
    }
    for agency in ["education", "human_resources"] {
        let mut c = app.client(agency).await;
        let s = c.subsidies.summarize_linkage(summarize("2022-09", "2022-09")).await.unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied, "{agency}: {s:?}");
        let s =
            c.subsidies.summarize_campaign(pb::SummarizeCampaignRequest { campaign: "x".into() }).await.unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied, "{agency}: {s:?}");
    }
    for campaign in [String::new(), "c".repeat(10_000), "a\nb".into()] {
        let s = lg.subsidies.summarize_campaign(pb::SummarizeCampaignRequest { campaign }).await.unwrap_err();
        names(&s, "campaign");
    }
    let s = lg.subsidies.summarize_campaign(pb::SummarizeCampaignRequest { campaign: "no-such".into() }).await;
    assert_eq!(s.unwrap_err().code(), Code::NotFound);
    // A county office's summary holds its county's row only.
    let r = huan.subsidies.summarize_linkage(summarize("2022-09", "2022-09")).await.unwrap().into_inner();
    let counties: Vec<&str> = r.counties.iter().map(|c| c.county_code.as_str()).collect();
    assert_eq!(counties, [HUAN]);
    assert_eq!(app.audit_events().await, before, "aggregates are not audited, refusals write nothing");
    app.stop().await;
}

fn answer_req(finding_id: &str, state: pb::AnswerState) -> pb::AnswerFindingRequest {
    pb::AnswerFindingRequest {
        finding_id: finding_id.into(),
        state: state as i32,
        purpose: "hostile test".into(),
        ..Default::default()
    }
}

fn coverage_req(quarter: &str) -> pb::ListCoverageFindingsRequest {
    pb::ListCoverageFindingsRequest { quarter: quarter.into(), purpose: "hostile test".into(), ..Default::default() }
}

#[apply(e2e!)]
#[tokio::test]
async fn coverage_finding_ids_tokens_and_answers_resist_hostile_callers() {
    let app = spawn_app().await;
    // Two rural dibao persons of 环县 without medical insurance: two UNINSURED findings naming medical_insurance.
    let mut civil = app.client("civil_affairs").await;
    let persons = [id(HUAN, (1980, 3, 1), 801), id(HUAN, (1980, 3, 1), 802)];
    for (n, p) in persons.iter().enumerate() {
        let r = push(&mut civil, vec![with(base(&format!("HA-{n}"), p, HUAN), rural_dibao())]).await.unwrap();
        assert_eq!(outcome(&r.results[0]), pb::FactOutcome::Accepted);
    }
    set_clock(&app, "2023-07-05T02:00:00Z");
    civil.coordination.create_snapshot(pb::CreateSnapshotRequest { quarter: "2023Q2".into() }).await.unwrap();
    let mut mi = app.client("medical_insurance").await;
    let page = mi.coordination.list_coverage_findings(coverage_req("2023Q2")).await.unwrap().into_inner();
    assert_eq!(page.findings.len(), 2);
    let fid = page.findings[0].finding_id.clone();
    let key = page.findings[0].person_key.clone();
    assert_eq!(fid, format!("coverage/2023Q2/UNINSURED/{key}"));
    let before = app.audit_events().await;

    // Malformed ids, each INVALID_ARGUMENT naming finding_id, in AnswerFinding, ExplainFinding and ListFindingAnswers.
    let bad_ids = [
        String::new(),
        format!("coverage/2023Q2/UNINSURED/{}", key.to_uppercase()),
        format!("coverage/2023Q2/UNINSURED/{}", &key[..63]),
        format!("coverage/2023Q2/UNINSURED/{key}0"),
        format!("coverage/2023Q2/UNINSURED/{}é", &key[..63]),
        format!("coverage/2023Q2/UNINSURED/{}", "é".repeat(32)),
        format!("coverage/2023q2/UNINSURED/{key}"),
        format!("coverage/2023Q5/UNINSURED/{key}"),
        format!("coverage/2023Q0/UNINSURED/{key}"),
        format!("coverage//UNINSURED/{key}"),
        format!("coverage/2023Q2/uninsured/{key}"),
        format!("coverage/2023Q2/UNINSURED/{key}/"),
        format!("coverage/2023Q2/UNINSURED//{key}"),
        format!("coverage/2023Q2/UNINSURED/ {key}"),
        format!("Coverage/2023Q2/UNINSURED/{key}"),
        format!("coverage/2023Q2/UNINSURED/{}", "0".repeat(10_000)),
        "x".repeat(10_000),
        "coverage/".into(),
    ];
    for bad in &bad_ids {
        let shown: String = bad.chars().take(40).collect();
        let s = mi.medical.answer_finding(answer_req(bad, pb::AnswerState::InProgress)).await.unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument, "{shown}: {s:?}");
        names(&s, "finding_id");
        assert!(s.message().len() < 2_000, "no 10 KB echo: {} bytes", s.message().len());
        let r = pb::ExplainFindingRequest { finding_id: bad.clone(), purpose: "hostile test".into() };
        names(&mi.medical.explain_finding(r).await.unwrap_err(), "finding_id");
        let r = pb::ListFindingAnswersRequest { finding_id: bad.clone(), purpose: "hostile test".into() };
        names(&mi.medical.list_finding_answers(r).await.unwrap_err(), "finding_id");
    }
    // Well-formed ids of no stored finding: NOT_FOUND (a quarter never frozen, another rule, another key).
    for unknown in [
        format!("coverage/2023Q1/UNINSURED/{key}"),
        format!("coverage/9999Q4/UNINSURED/{key}"),
        format!("coverage/2023Q2/UNINSURED/{}", "0".repeat(64)),
        format!("coverage/2023Q2/STUDENT_AID_MISSING/{key}"),
    ] {
        let s = mi.medical.answer_finding(answer_req(&unknown, pb::AnswerState::InProgress)).await.unwrap_err();
        assert_eq!(s.code(), Code::NotFound, "{unknown}: {s:?}");
    }
    // Other fields of the answer, each named.
    let fix = |agency: &str, fact_id: &str, v: u64| {
        Some(pb::FindingFix {
            fix: Some(pb::finding_fix::Fix::FactVersion(pb::FactVersionRef {
                agency: agency.into(),
                fact_id: fact_id.into(),
                source_version: v,
            })),
        })
    };
    let fixed = answer_req(&fid, pb::AnswerState::Fixed);
    for (r, field) in [
        (pb::AnswerFindingRequest { state: 99, ..answer_req(&fid, pb::AnswerState::InProgress) }, "state"),
        (pb::AnswerFindingRequest { state: -1, ..answer_req(&fid, pb::AnswerState::InProgress) }, "state"),
        (answer_req(&fid, pb::AnswerState::Unspecified), "state"),
        (
            pb::AnswerFindingRequest { reason: "r".repeat(10_000), ..answer_req(&fid, pb::AnswerState::Disputed) },
            "reason",
        ),
        (
            pb::AnswerFindingRequest { purpose: "p".repeat(10_000), ..answer_req(&fid, pb::AnswerState::InProgress) },
            "purpose",
        ),
        (
            pb::AnswerFindingRequest { fixed_by: fix("a".repeat(10_000).as_str(), "F", 1), ..fixed.clone() },
            "fixed_by.fact_version.agency",
        ),
        (
            pb::AnswerFindingRequest { fixed_by: fix("medical_insurance", "", 1), ..fixed.clone() },
            "fixed_by.fact_version.fact_id",
        ),
        (
            pb::AnswerFindingRequest { fixed_by: fix("medical_insurance", "F", u64::MAX), ..fixed.clone() },
            "fixed_by.fact_version.source_version",
        ),
        (
            pb::AnswerFindingRequest {
                fixed_by: fix("medical_insurance", "F", 1),
                ..answer_req(&fid, pb::AnswerState::InProgress)
            },
            "fixed_by",
        ),
    ] {
        names(&mi.medical.answer_finding(r).await.unwrap_err(), field);
    }
    // Another agency's finding: education, development_reform, and civil_affairs (which reads every finding as the
    // coordinator, but answers none it is not named in); a county office of another county.
    for (agency, county) in
        [("education", None), ("development_reform", None), ("civil_affairs", None), ("medical_insurance", Some(NING))]
    {
        let mut c = app.client_in(agency, county).await;
        let s = c.medical.answer_finding(answer_req(&fid, pb::AnswerState::InProgress)).await.unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied, "{agency} {county:?}: {s:?}");
    }
    for (agency, county) in [("education", None), ("development_reform", None), ("medical_insurance", Some(NING))] {
        let mut c = app.client_in(agency, county).await;
        let r = pb::ExplainFindingRequest { finding_id: fid.clone(), purpose: "hostile test".into() };
        assert_eq!(c.medical.explain_finding(r).await.unwrap_err().code(), Code::PermissionDenied, "{agency}");
    }
    assert_eq!(app.audit_events().await, before, "no refused call writes an answer or an audit event");
    let stored = app
        .app_hub
        .store
        .coverage_answers(&doudi::domain::answer::CoverageFindingId::parse(&fid).unwrap())
        .await
        .unwrap();
    assert!(stored.is_empty(), "no answer stored: {stored:?}");

    // The same answer twice: two versions, each audited (answers are never overwritten).
    for v in [1, 2] {
        let a = mi.medical.answer_finding(answer_req(&fid, pb::AnswerState::InProgress)).await.unwrap().into_inner();
        assert_eq!(a.answer.unwrap().version, v);
    }
    assert_eq!(app.audit_events().await, before + 2);
    // ExplainFinding is a person-level read: audited.
    let r = pb::ExplainFindingRequest { finding_id: fid.clone(), purpose: "hostile test".into() };
    mi.medical.explain_finding(r).await.unwrap();
    assert_eq!(app.audit_events().await, before + 3, "ExplainFinding is audited");

    // ListCoverageFindings: bad fields named, nothing audited.
    let before = app.audit_events().await;
    for (r, field) in [
        (pb::ListCoverageFindingsRequest { page_size: -1, ..coverage_req("2023Q2") }, "page_size"),
        (pb::ListCoverageFindingsRequest { page_size: i32::MIN, ..coverage_req("2023Q2") }, "page_size"),
        (pb::ListCoverageFindingsRequest { page_size: i32::MAX, ..coverage_req("2023Q2") }, "page_size"),
        (coverage_req("0000Q1"), "quarter"),
        (coverage_req("9999Q4"), "quarter"),
        (coverage_req("2023Q2 "), "quarter"),
        (coverage_req("２０２３Q2"), "quarter"),
        (coverage_req(""), "quarter"),
        (coverage_req(&"2".repeat(10_000)), "quarter"),
        (pb::ListCoverageFindingsRequest { code: "U".repeat(10_000), ..coverage_req("2023Q2") }, "code"),
        (pb::ListCoverageFindingsRequest { code: "uninsured".into(), ..coverage_req("2023Q2") }, "code"),
        (
            pb::ListCoverageFindingsRequest { division_code: "6210221".into(), ..coverage_req("2023Q2") },
            "division_code",
        ),
        (pb::ListCoverageFindingsRequest { answer: -3, ..coverage_req("2023Q2") }, "answer"),
        (pb::ListCoverageFindingsRequest { purpose: "p".repeat(10_000), ..coverage_req("2023Q2") }, "purpose"),
        (pb::ListCoverageFindingsRequest { page_token: "A".repeat(10_000), ..coverage_req("2023Q2") }, "page_token"),
    ] {
        let s = mi.coordination.list_coverage_findings(r).await.unwrap_err();
        names(&s, field);
        assert!(s.message().len() < 2_000, "{field}: no 10 KB echo: {} bytes", s.message().len());
    }
    // Page tokens: civil_affairs' token is refused to medical_insurance (another caller) even with the same filter,
    // and to civil_affairs itself for another filter.
    let first = pb::ListCoverageFindingsRequest { page_size: 1, ..coverage_req("2023Q2") };
    let p1 = civil.coordination.list_coverage_findings(first.clone()).await.unwrap().into_inner();
    assert!(!p1.next_page_token.is_empty());
    let token = p1.next_page_token;
    let s = mi
        .coordination
        .list_coverage_findings(pb::ListCoverageFindingsRequest { page_token: token.clone(), ..first.clone() })
        .await
        .unwrap_err();
    names(&s, "page_token");
    let other = pb::ListCoverageFindingsRequest { page_token: token, code: "UNINSURED".into(), ..first.clone() };
    names(&civil.coordination.list_coverage_findings(other).await.unwrap_err(), "page_token");
    assert_eq!(app.audit_events().await, before + 1, "the one page read is audited, the refusals are not");
    // development_reform is named by no coverage rule: it lists nothing person-level, not even a count.
    let mut dr = app.client("development_reform").await;
    let page = dr.coordination.list_coverage_findings(coverage_req("2023Q2")).await.unwrap().into_inner();
    assert_eq!((page.findings.len(), page.total_size, page.next_page_token.as_str()), (0, 0, ""));
    app.stop().await;
}
