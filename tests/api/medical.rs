//! `doudi.v1.MedicalAssistance` and `Reference.GetPolicy` end to end: docs/spec/medical.md's worked examples A–E over
//! gRPC, every finding code, every validation rejection, DUPLICATE, access and county scope, out-of-order arrival and
//! late status changes (RecheckPeriod), pagination and filters, and the policy versions.
//!
//! Every expected amount is docs/spec/medical.md's, or worked out by hand in the comment next to it, with the example
//! parameters of docs/spec/medical.md (version '621000-2023-example' from 2023-01-01): income 20,000.00; annual
//! assistance cap 20,000.00; critical-illness (CII) deductible 10,000.00 at 60%, tilted for groups 1–2 to 5,000.00 at
//! 65%; assistance (MA) groups 1 (TEKUN…) 0 deductible 100%, 2 (DIBAO, AT_RISK) 0 / 70%, 3 (DIBAO_MARGINAL) 10% of
//! income = 2,000.00 / 65%, 4 (ILLNESS_IMPOVERISHED) 25% = 5,000.00 / 60%; tolerance 1.00; HIGH_BURDEN at 100% of
//! income = 20,000.00 over the trailing 12 months.
//!
//! Settlement amounts are written in the order of [`settlement`]'s `m` array: total_cost, policy_scope_cost,
//! basic_paid, critical_illness_paid, medical_assistance_paid, other_paid, out_of_pocket; the builder asserts that
//! the five parts add up to total_cost, so a slip in a hand sum fails loudly here rather than in the hub.

use std::collections::BTreeSet;

use doudi::client::Clients;
use doudi::grpc::pb;
use macro_rules_attribute::apply;
use rust_decimal::Decimal;
use tonic::Code;

use crate::support::*;

const HUAN: &str = "621022";
const XIFENG: &str = "621002";

const EXAMPLE_2023: &str = "621000-2023-example";
const NATIONAL_FLOOR: &str = "621000-national-floor";

use pb::FindingCode as F;

// ---------------------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------------------

fn dec(s: &str) -> Decimal {
    s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

/// An inpatient settlement in Huan county, in province, not referred. `m`: total_cost, policy_scope_cost,
/// basic_paid, critical_illness_paid, medical_assistance_paid, other_paid, out_of_pocket (decimal yuan). Panics if the
/// five parts do not add up to total_cost (a slip in the test's own arithmetic).
fn settlement(id: &str, person: &str, admitted_on: &str, settled_on: &str, m: [&str; 7]) -> pb::Settlement {
    let parts: Decimal = m[2..].iter().map(|s| dec(s)).sum();
    assert_eq!(parts, dec(m[0]), "test data {id}: the five parts must add up to total_cost");
    pb::Settlement {
        settlement_id: id.into(),
        id_number: person.into(),
        division_code: HUAN.into(),
        admitted_on: admitted_on.into(),
        settled_on: settled_on.into(),
        visit_type: pb::VisitType::Inpatient as i32,
        in_province: true,
        referred: false,
        total_cost: m[0].into(),
        policy_scope_cost: m[1].into(),
        basic_paid: m[2].into(),
        critical_illness_paid: m[3].into(),
        medical_assistance_paid: m[4].into(),
        other_paid: m[5].into(),
        out_of_pocket: m[6].into(),
    }
}

fn assistance(program: pb::Program) -> pb::fact::Payload {
    let mut a = pb::Assistance {
        program: program as i32,
        household_id: "HH-M".into(),
        status: pb::AssistanceStatus::Active as i32,
        ..Default::default()
    };
    if program == pb::Program::Tekun {
        a.residence = pb::Residence::Rural as i32;
        a.support_mode = pb::SupportMode::Dispersed as i32;
        a.monthly_benefit = "600.00".into();
    }
    pb::fact::Payload::Assistance(a)
}

/// civil_affairs enrols `person` in `payload`'s program from 2023-01-01 (open-ended).
async fn enrol(app: &TestApp, fact_id: &str, person: &str, division: &str, payload: pb::fact::Payload) {
    let mut civil = app.client("civil_affairs").await;
    let r = push(&mut civil, vec![with(base(fact_id, person, division), payload)]).await.unwrap();
    assert_eq!(outcome(&r.results[0]), pb::FactOutcome::Accepted, "{r:?}");
}

/// medical_insurance records cover for 2023: [2023-01-01, 2024-01-01).
async fn insure(app: &TestApp, fact_id: &str, person: &str, division: &str) {
    let mut mi = app.client("medical_insurance").await;
    let mut f = with(base(fact_id, person, division), medical_insurance());
    f.valid_to = "2024-01-01".into();
    let r = push(&mut mi, vec![f]).await.unwrap();
    assert_eq!(outcome(&r.results[0]), pb::FactOutcome::Accepted, "{r:?}");
}

async fn submit(c: &mut Clients, settlements: Vec<pb::Settlement>) -> Result<Vec<pb::SettlementResult>, tonic::Status> {
    c.medical.submit_settlements(pb::SubmitSettlementsRequest { settlements }).await.map(|r| r.into_inner().results)
}

/// Submit one settlement that must be ACCEPTED; its result.
async fn accept(c: &mut Clients, s: pb::Settlement) -> pb::SettlementResult {
    let mut r = submit(c, vec![s]).await.unwrap();
    assert_eq!(r.len(), 1);
    let r = r.remove(0);
    assert_eq!(result_outcome(&r), pb::SettlementOutcome::Accepted, "{r:?}");
    r
}

fn result_outcome(r: &pb::SettlementResult) -> pb::SettlementOutcome {
    pb::SettlementOutcome::try_from(r.outcome).unwrap()
}

fn code(f: &pb::Finding) -> F {
    F::try_from(f.code).unwrap()
}

/// The finding codes of a result, sorted (the order within one settlement is not part of the contract).
fn codes(r: &pb::SettlementResult) -> Vec<F> {
    let mut c: Vec<F> = r.findings.iter().map(code).collect();
    c.sort();
    c
}

fn only<'a>(findings: &'a [pb::Finding], settlement_id: &str, c: F) -> &'a pb::Finding {
    let found: Vec<&pb::Finding> =
        findings.iter().filter(|f| f.settlement_id == settlement_id && code(f) == c).collect();
    assert_eq!(found.len(), 1, "{c:?} on {settlement_id} in {findings:#?}");
    found[0]
}

/// (expected_amount, actual_amount) of the one finding `c` on `settlement_id`.
fn amounts(findings: &[pb::Finding], settlement_id: &str, c: F) -> (String, String) {
    let f = only(findings, settlement_id, c);
    (f.expected_amount.clone(), f.actual_amount.clone())
}

fn pair(expected: &str, actual: &str) -> (String, String) {
    (expected.to_owned(), actual.to_owned())
}

/// Asserts the recomputation of an ACCEPTED result: group, after_basic, expected CII, residual, expected MA, cap left.
fn assert_check(r: &pb::SettlementResult, group: u32, values: [&str; 5]) {
    let c = r.check.as_ref().unwrap_or_else(|| panic!("no check on {r:?}"));
    assert_eq!(c.assistance_group, group, "group of {}", r.settlement_id);
    assert_eq!(c.policy_version, EXAMPLE_2023, "{}", r.settlement_id);
    let got = [
        c.after_basic.as_str(),
        c.expected_critical_illness.as_str(),
        c.residual.as_str(),
        c.expected_medical_assistance.as_str(),
        c.cap_left.as_str(),
    ];
    assert_eq!(got, values, "after_basic, cii, residual, ma, cap_left of {}", r.settlement_id);
}

fn list_req() -> pb::ListFindingsRequest {
    pb::ListFindingsRequest { purpose: "medical cross-check test".into(), ..Default::default() }
}

async fn list(c: &mut Clients, req: pb::ListFindingsRequest) -> Result<pb::ListFindingsResponse, tonic::Status> {
    c.medical.list_findings(req).await.map(|r| r.into_inner())
}

/// Every finding matching `req`, all pages (page size 2 to exercise the tokens), with the total_size each page gave.
async fn list_all(c: &mut Clients, req: pb::ListFindingsRequest) -> Vec<pb::Finding> {
    let mut out = Vec::new();
    let mut token = String::new();
    let mut total = None;
    loop {
        let page = list(c, pb::ListFindingsRequest { page_size: 2, page_token: token, ..req.clone() }).await.unwrap();
        assert!(page.findings.len() <= 2);
        assert!(total.is_none_or(|t| t == page.total_size), "total_size is the same on every page");
        total = Some(page.total_size);
        out.extend(page.findings);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(total.unwrap(), out.len() as i64, "total_size counts every page");
    out
}

async fn recheck(c: &mut Clients, from: &str, to: &str) -> Result<pb::RecheckPeriodResponse, tonic::Status> {
    c.medical
        .recheck_period(pb::RecheckPeriodRequest { from_date: from.into(), to_date: to.into(), purpose: "test".into() })
        .await
        .map(|r| r.into_inner())
}

fn by_code(counts: &[pb::FindingCount]) -> Vec<(F, i64)> {
    let mut v: Vec<(F, i64)> = counts.iter().map(|c| (F::try_from(c.code).unwrap(), c.count)).collect();
    v.sort();
    v
}

/// The hub-independent content of a finding: (settlement, code, expected, actual, ID number, version, agency to act).
type Key = (String, i32, String, String, String, String, String);

fn key(f: &pb::Finding) -> Key {
    (
        f.settlement_id.clone(),
        f.code,
        f.expected_amount.clone(),
        f.actual_amount.clone(),
        f.id_number.clone(),
        f.policy_version.clone(),
        f.agency_to_act.clone(),
    )
}

// ---------------------------------------------------------------------------------------------------------------------
// Worked examples A–E
// ---------------------------------------------------------------------------------------------------------------------

struct Examples {
    /// Results of A, B, C, D (one batch), then E (a later request).
    a: pb::SettlementResult,
    b: pb::SettlementResult,
    c: pb::SettlementResult,
    d: pb::SettlementResult,
    e: pb::SettlementResult,
    persons: [String; 4],
}

/// docs/spec/medical.md's worked examples: A a dibao person, B a marginal one, C one in EXPENDITURE_HARDSHIP only (no
/// group under the default mapping), D and E the same tekun person; all insured for 2023. A–D are one batch, E a later
/// one.
async fn load_examples(app: &TestApp) -> Examples {
    let a_person = id(HUAN, (1961, 1, 1), 101);
    let b_person = id(HUAN, (1962, 2, 2), 102);
    let c_person = id(HUAN, (1963, 3, 3), 103);
    let t_person = id(HUAN, (1944, 4, 4), 104);
    enrol(app, "EX-AS-A", &a_person, HUAN, rural_dibao()).await;
    enrol(app, "EX-AS-B", &b_person, HUAN, assistance(pb::Program::DibaoMarginal)).await;
    enrol(app, "EX-AS-C", &c_person, HUAN, assistance(pb::Program::ExpenditureHardship)).await;
    enrol(app, "EX-AS-T", &t_person, HUAN, assistance(pb::Program::Tekun)).await;
    for (i, p) in [&a_person, &b_person, &c_person, &t_person].into_iter().enumerate() {
        insure(app, &format!("EX-MI-{i}"), p, HUAN).await;
    }
    let mut mi = app.client("medical_insurance").await;
    // A: total 30,000.00 = basic 15,000.00 + CII 3,250.00 + MA 4,725.00 + other 0 + out of pocket 7,025.00.
    let a = settlement(
        "EX-A",
        &a_person,
        "2023-03-01",
        "2023-03-10",
        ["30000.00", "25000.00", "15000.00", "3250.00", "4725.00", "0.00", "7025.00"],
    );
    // B: total 12,000.00 = 6,000.00 + 0 + 0 + 0 + out of pocket 6,000.00.
    let b = settlement(
        "EX-B",
        &b_person,
        "2023-04-01",
        "2023-04-10",
        ["12000.00", "10000.00", "6000.00", "0.00", "0.00", "0.00", "6000.00"],
    );
    // C (docs/spec/medical.md gives only "MA paid 500.00"): scope 5,000.00, basic 3,000.00; total 6,000.00 = 3,000.00 +
    // 0
    // + 500.00 + 0 + out of pocket 2,500.00.
    let c = settlement(
        "EX-C",
        &c_person,
        "2023-05-01",
        "2023-05-10",
        ["6000.00", "5000.00", "3000.00", "0.00", "500.00", "0.00", "2500.00"],
    );
    // D: total 55,000.00 = 30,000.00 + 9,750.00 + 10,250.00 + 0 + out of pocket 5,000.00.
    let d = settlement(
        "EX-D",
        &t_person,
        "2023-03-01",
        "2023-03-10",
        ["55000.00", "50000.00", "30000.00", "9750.00", "10250.00", "0.00", "5000.00"],
    );
    let mut abcd = submit(&mut mi, vec![a, b, c, d]).await.unwrap();
    assert_eq!(abcd.len(), 4);
    for (i, r) in abcd.iter().enumerate() {
        assert_eq!(r.index, i as u32);
        assert_eq!(result_outcome(r), pb::SettlementOutcome::Accepted, "{r:?}");
    }
    // E: total 42,000.00 = 22,000.00 + 6,000.00 + 12,000.00 + 0 + out of pocket 2,000.00.
    let e = settlement(
        "EX-E",
        &t_person,
        "2023-06-01",
        "2023-06-15",
        ["42000.00", "40000.00", "22000.00", "6000.00", "12000.00", "0.00", "2000.00"],
    );
    let e = accept(&mut mi, e).await;
    let d = abcd.pop().unwrap();
    let c = abcd.pop().unwrap();
    let b = abcd.pop().unwrap();
    let a = abcd.pop().unwrap();
    Examples { a, b, c, d, e, persons: [a_person, b_person, c_person, t_person] }
}

#[apply(e2e!)]
#[tokio::test]
async fn worked_examples_a_to_e() {
    let app = spawn_app().await;
    let ex = load_examples(&app).await;

    // A (dibao, group 2): after basic 25,000 − 15,000 = 10,000.00; CII (10,000 − 5,000) × 65% = 3,250.00; residual
    // 25,000 − 15,000 − 3,250 = 6,750.00; MA 6,750 × 70% = 4,725.00; cap left 20,000 − 4,725 = 15,275.00. None.
    assert_check(&ex.a, 2, ["10000.00", "3250.00", "6750.00", "4725.00", "15275.00"]);
    assert!(ex.a.findings.is_empty(), "{:?}", ex.a.findings);

    // B (marginal, group 3): after basic 4,000.00; CII untilted: 4,000 < 10,000 → 0.00; residual 4,000.00; MA
    // (4,000 − 2,000) × 65% = 1,300.00; nothing paid, so the cap left stays 20,000.00. ASSISTANCE_MISSED.
    assert_check(&ex.b, 3, ["4000.00", "0.00", "4000.00", "1300.00", "20000.00"]);
    assert_eq!(codes(&ex.b), [F::AssistanceMissed]);
    assert_eq!(amounts(&ex.b.findings, "EX-B", F::AssistanceMissed), pair("1300.00", "0.00"));
    let missed = &ex.b.findings[0];
    assert_eq!(missed.id_number, ex.persons[1]);
    assert_eq!(missed.division_code, HUAN);
    assert_eq!(missed.settled_on, "2023-04-10");
    assert_eq!(missed.policy_version, EXAMPLE_2023);
    assert_eq!(missed.agency_to_act, "medical_insurance");
    assert_eq!(missed.person_key.len(), 64, "hex of HMAC-SHA256");
    assert!(missed.detected_at.is_some() && missed.resolved_at.is_none());

    // C (EXPENDITURE_HARDSHIP only: no group): after basic 2,000.00; CII untilted 2,000 < 10,000 → 0.00; residual
    // 2,000.00; no MA owed; the cap falls by the 500.00 paid: 19,500.00. ASSISTANCE_TO_INELIGIBLE (paid 500.00).
    assert_check(&ex.c, 0, ["2000.00", "0.00", "2000.00", "0.00", "19500.00"]);
    assert_eq!(codes(&ex.c), [F::AssistanceToIneligible]);
    assert_eq!(amounts(&ex.c.findings, "EX-C", F::AssistanceToIneligible), pair("", "500.00"));

    // D (tekun, group 1): after basic 20,000.00; CII (20,000 − 5,000) × 65% = 9,750.00; residual 50,000 − 30,000 −
    // 9,750 = 10,250.00; MA 10,250 × 100% = 10,250.00; cap left 9,750.00 (docs/spec/medical.md). None.
    assert_check(&ex.d, 1, ["20000.00", "9750.00", "10250.00", "10250.00", "9750.00"]);
    assert!(ex.d.findings.is_empty(), "{:?}", ex.d.findings);

    // E (same tekun, later): after basic 18,000.00; CII 18,000 × 65% = 11,700.00 (deductible used up by D);
    // residual 40,000 − 22,000 − 6,000 = 12,000.00; MA min(12,000, 9,750) = 9,750.00; cap left max(0, 20,000 −
    // 10,250 − 12,000) = 0.00.
    assert_check(&ex.e, 1, ["18000.00", "11700.00", "12000.00", "9750.00", "0.00"]);
    assert_eq!(codes(&ex.e), [F::OverAssisted, F::AnnualCapExceeded, F::CiiTiltNotApplied]);
    assert_eq!(amounts(&ex.e.findings, "EX-E", F::CiiTiltNotApplied), pair("11700.00", "6000.00"));
    assert_eq!(amounts(&ex.e.findings, "EX-E", F::OverAssisted), pair("9750.00", "12000.00"));
    // The cap, and the year's assistance paid that passed it: 10,250 + 12,000 = 22,250.00.
    assert_eq!(amounts(&ex.e.findings, "EX-E", F::AnnualCapExceeded), pair("20000.00", "22250.00"));

    // The same findings are stored and listed: B 1 + C 1 + E 3 = 5.
    let mut mi = app.client("medical_insurance").await;
    let listed = list_all(&mut mi, list_req()).await;
    let got: BTreeSet<(String, F)> = listed.iter().map(|f| (f.settlement_id.clone(), code(f))).collect();
    let want: BTreeSet<(String, F)> = [
        ("EX-B", F::AssistanceMissed),
        ("EX-C", F::AssistanceToIneligible),
        ("EX-E", F::OverAssisted),
        ("EX-E", F::AnnualCapExceeded),
        ("EX-E", F::CiiTiltNotApplied),
    ]
    .into_iter()
    .map(|(s, c)| (s.to_owned(), c))
    .collect();
    assert_eq!(got, want);
    assert_eq!(listed.len(), 5);
    assert_eq!(amounts(&listed, "EX-E", F::CiiTiltNotApplied), pair("11700.00", "6000.00"));
    assert_eq!(amounts(&listed, "EX-E", F::OverAssisted), pair("9750.00", "12000.00"));
    assert_eq!(amounts(&listed, "EX-E", F::AnnualCapExceeded), pair("20000.00", "22250.00"));
    assert_eq!(amounts(&listed, "EX-B", F::AssistanceMissed), pair("1300.00", "0.00"));
    assert_eq!(only(&listed, "EX-E", F::OverAssisted).id_number, ex.persons[3]);
    // Ordered by settled_on: B (04-10), C (05-10), E (06-15).
    let order: Vec<&str> = listed.iter().map(|f| f.settled_on.as_str()).collect();
    assert!(order.is_sorted(), "{order:?}");
    assert!(listed.iter().all(|f| f.policy_version == EXAMPLE_2023 && f.agency_to_act == "medical_insurance"));
    // The person key is the same in the answer to SubmitSettlements and in the list.
    assert_eq!(only(&listed, "EX-B", F::AssistanceMissed).person_key, ex.b.findings[0].person_key);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------------------------------
// Every finding code
// ---------------------------------------------------------------------------------------------------------------------

#[apply(e2e!)]
#[tokio::test]
async fn every_finding_code_fires_end_to_end_and_a_clean_settlement_raises_none() {
    let app = spawn_app().await;
    // ASSISTANCE_MISSED (B), ASSISTANCE_TO_INELIGIBLE (C), OVER_ASSISTED, ANNUAL_CAP_EXCEEDED and
    // CII_TILT_NOT_APPLIED (E) come from the worked examples.
    load_examples(&app).await;
    let mut mi = app.client("medical_insurance").await;

    // NOT_INSURED: a dibao person with no medical_insurance fact, example A's amounts otherwise, so nothing else.
    let uninsured = id(HUAN, (1970, 1, 1), 201);
    enrol(&app, "AS-NI", &uninsured, HUAN, rural_dibao()).await;
    let r = accept(
        &mut mi,
        settlement(
            "NI-1",
            &uninsured,
            "2023-03-01",
            "2023-03-10",
            ["30000.00", "25000.00", "15000.00", "3250.00", "4725.00", "0.00", "7025.00"],
        ),
    )
    .await;
    assert_check(&r, 2, ["10000.00", "3250.00", "6750.00", "4725.00", "15275.00"]);
    assert_eq!(codes(&r), [F::NotInsured]);
    assert_eq!(amounts(&r.findings, "NI-1", F::NotInsured), pair("", ""));

    // TIER_ORDER_VIOLATION: a marginal person (group 3, no tilt), basic paid 0 on a scope of 10,000.00, MA paid.
    // After basic 10,000.00; CII untilted: 10,000 − 10,000 → 0.00; residual 10,000.00; MA (10,000 − 2,000) × 65% =
    // 5,200.00, paid 5,200.00 (no under/over); cap left 14,800.00. Total 10,000.00 = 0 + 0 + 5,200.00 + 0 + out of
    // pocket 4,800.00. Actual = CII + MA paid = 5,200.00.
    let tier = id(HUAN, (1970, 2, 2), 202);
    enrol(&app, "AS-TO", &tier, HUAN, assistance(pb::Program::DibaoMarginal)).await;
    insure(&app, "MI-TO", &tier, HUAN).await;
    let r = accept(
        &mut mi,
        settlement(
            "TO-1",
            &tier,
            "2023-03-01",
            "2023-03-10",
            ["10000.00", "10000.00", "0.00", "0.00", "5200.00", "0.00", "4800.00"],
        ),
    )
    .await;
    assert_check(&r, 3, ["10000.00", "0.00", "10000.00", "5200.00", "14800.00"]);
    assert_eq!(codes(&r), [F::TierOrderViolation]);
    assert_eq!(amounts(&r.findings, "TO-1", F::TierOrderViolation), pair("", "5200.00"));

    // UNDER_ASSISTED: a dibao person, example A but MA paid 4,000.00 of the 4,725.00 owed (725.00 > 1.00).
    // Total 30,000.00 = 15,000.00 + 3,250.00 + 4,000.00 + 0 + out of pocket 7,750.00; cap left 16,000.00.
    let under = id(HUAN, (1970, 3, 3), 203);
    enrol(&app, "AS-UA", &under, HUAN, rural_dibao()).await;
    insure(&app, "MI-UA", &under, HUAN).await;
    let r = accept(
        &mut mi,
        settlement(
            "UA-1",
            &under,
            "2023-03-01",
            "2023-03-10",
            ["30000.00", "25000.00", "15000.00", "3250.00", "4000.00", "0.00", "7750.00"],
        ),
    )
    .await;
    assert_check(&r, 2, ["10000.00", "3250.00", "6750.00", "4725.00", "16000.00"]);
    assert_eq!(codes(&r), [F::UnderAssisted]);
    assert_eq!(amounts(&r.findings, "UA-1", F::UnderAssisted), pair("4725.00", "4000.00"));

    // DUPLICATE_SUSPECTED: a dibao person, two settlements admitted 2023-04-01, settled 2023-04-10, total 1,000.00,
    // under two ids. Each: after basic 1,000 − 800 = 200.00; CII: 200 within the tilted deductible → 0.00; residual
    // 200.00; MA 200 × 70% = 140.00, paid 140.00. Total 1,000.00 = 800.00 + 0 + 140.00 + 0 + out of pocket 60.00.
    // The first raises nothing; the second (cap left 20,000 − 140 − 140 = 19,720.00) is the suspected duplicate.
    let dup = id(HUAN, (1970, 4, 4), 204);
    enrol(&app, "AS-DS", &dup, HUAN, rural_dibao()).await;
    insure(&app, "MI-DS", &dup, HUAN).await;
    let amounts_dup = ["1000.00", "1000.00", "800.00", "0.00", "140.00", "0.00", "60.00"];
    let r1 = accept(&mut mi, settlement("DS-1", &dup, "2023-04-01", "2023-04-10", amounts_dup)).await;
    assert_check(&r1, 2, ["200.00", "0.00", "200.00", "140.00", "19860.00"]);
    assert!(r1.findings.is_empty(), "{:?}", r1.findings);
    let r2 = accept(&mut mi, settlement("DS-2", &dup, "2023-04-01", "2023-04-10", amounts_dup)).await;
    assert_check(&r2, 2, ["200.00", "0.00", "200.00", "140.00", "19720.00"]);
    assert_eq!(codes(&r2), [F::DuplicateSuspected]);
    assert_eq!(amounts(&r2.findings, "DS-2", F::DuplicateSuspected), pair("", ""));

    // HIGH_BURDEN: a person in no assistance program, insured. HB-1 (2023-03-10): scope 20,000.00, basic 12,000.00;
    // after basic 8,000.00 < CII deductible 10,000 → CII 0.00 (2,000.00 of the deductible left); total 24,000.00 =
    // 12,000.00 + 0 + 0 + 0 + out of pocket 12,000.00. HB-2 (2023-08-10): scope 15,000.00, basic 9,000.00; after basic
    // 6,000.00; CII (6,000 − 2,000) × 60% = 2,400.00, paid; total 20,400.00 = 9,000.00 + 2,400.00 + 0 + 0 + out of
    // pocket 9,000.00. Trailing 12 months: 12,000 + 9,000 = 21,000.00 ≥ 20,000.00 → HIGH_BURDEN on HB-2 only.
    let burden = id(HUAN, (1970, 5, 5), 205);
    insure(&app, "MI-HB", &burden, HUAN).await;
    let r = accept(
        &mut mi,
        settlement(
            "HB-1",
            &burden,
            "2023-03-01",
            "2023-03-10",
            ["24000.00", "20000.00", "12000.00", "0.00", "0.00", "0.00", "12000.00"],
        ),
    )
    .await;
    assert_check(&r, 0, ["8000.00", "0.00", "8000.00", "0.00", "20000.00"]);
    assert!(r.findings.is_empty(), "12,000.00 is below the threshold: {:?}", r.findings);
    let r = accept(
        &mut mi,
        settlement(
            "HB-2",
            &burden,
            "2023-08-01",
            "2023-08-10",
            ["20400.00", "15000.00", "9000.00", "2400.00", "0.00", "0.00", "9000.00"],
        ),
    )
    .await;
    assert_check(&r, 0, ["6000.00", "2400.00", "3600.00", "0.00", "20000.00"]);
    assert_eq!(codes(&r), [F::HighBurden]);
    assert_eq!(amounts(&r.findings, "HB-2", F::HighBurden), pair("20000.00", "21000.00"));
    assert_eq!(only(&r.findings, "HB-2", F::HighBurden).agency_to_act, "civil_affairs");
    // …and its early warning, reason ILLNESS, is civil_affairs' to act on.
    let mut civil = app.client("civil_affairs").await;
    let warnings = civil
        .coordination
        .list_warnings(pb::ListWarningsRequest { purpose: "test".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let w: Vec<&pb::Warning> =
        warnings.warnings.iter().filter(|w| w.warning_id.starts_with("MEDICAL-HIGH_BURDEN-")).collect();
    assert_eq!(w.len(), 1, "{warnings:#?}");
    assert_eq!(w[0].warning_id, "MEDICAL-HIGH_BURDEN-HB-2");
    assert_eq!(w[0].reason, pb::WarningReason::Illness as i32);
    assert_eq!(w[0].id_number, burden);
    assert_eq!(w[0].division_code, HUAN);
    // Huan county's civil-affairs office sees it too (the settlement is in Huan county); Xifeng's does not.
    for (county, n) in [(HUAN, 1), (XIFENG, 0)] {
        let mut office = app.client_in("civil_affairs", Some(county)).await;
        let listed = office
            .coordination
            .list_warnings(pb::ListWarningsRequest { purpose: "test".into(), ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        let ids: Vec<&str> = listed
            .warnings
            .iter()
            .map(|w| w.warning_id.as_str())
            .filter(|w| *w == "MEDICAL-HIGH_BURDEN-HB-2")
            .collect();
        assert_eq!(ids.len(), n, "{county}: {listed:#?}");
    }

    // TILTED_ASSISTANCE_CANDIDATE: a dibao person, in province and referred. Scope 60,000.00, basic 30,000.00: after
    // basic 30,000.00; CII (30,000 − 5,000) × 65% = 16,250.00, paid; residual 60,000 − 30,000 − 16,250 = 13,750.00;
    // MA 13,750 × 70% = 9,625.00, paid; cap left 10,375.00. Total 70,000.00 = 30,000.00 + 16,250.00 + 9,625.00 + 0 +
    // out of pocket 14,125.00, above the threshold 50% of income = 10,000.00 (tilted_assistance_share 0.50 of the
    // example version: docs/spec/medical.md names no figure; asserted from GetPolicy below).
    let mut reference = app.client("medical_insurance").await.reference;
    let policy = reference
        .get_policy(pb::GetPolicyRequest { as_of: "2023-07-10".into(), pooling_area: "621000".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(policy.medical_policies[0].tilted_assistance_threshold, "10000.00");
    let tilted = id(HUAN, (1970, 6, 6), 206);
    enrol(&app, "AS-TA", &tilted, HUAN, rural_dibao()).await;
    insure(&app, "MI-TA", &tilted, HUAN).await;
    let mut s = settlement(
        "TA-1",
        &tilted,
        "2023-07-01",
        "2023-07-10",
        ["70000.00", "60000.00", "30000.00", "16250.00", "9625.00", "0.00", "14125.00"],
    );
    s.referred = true;
    let r = accept(&mut mi, s).await;
    assert_check(&r, 2, ["30000.00", "16250.00", "13750.00", "9625.00", "10375.00"]);
    assert_eq!(codes(&r), [F::TiltedAssistanceCandidate]);
    assert_eq!(amounts(&r.findings, "TA-1", F::TiltedAssistanceCandidate), pair("10000.00", "14125.00"));

    // Clean: an ILLNESS_IMPOVERISHED person (group 4), paid exactly by the rules. Scope 40,000.00, basic 10,000.00:
    // after basic 30,000.00; CII untilted (30,000 − 10,000) × 60% = 12,000.00, paid; residual 18,000.00; MA (18,000 −
    // 5,000) × 60% = 7,800.00, paid; cap left 12,200.00. Total 40,000.00 = 10,000.00 + 12,000.00 + 7,800.00 + 0 + out
    // of pocket 10,200.00 (not referred, so no tilted-assistance candidate).
    let clean = id(HUAN, (1970, 7, 7), 207);
    enrol(&app, "AS-CL", &clean, HUAN, assistance(pb::Program::IllnessImpoverished)).await;
    insure(&app, "MI-CL", &clean, HUAN).await;
    let r = accept(
        &mut mi,
        settlement(
            "CL-1",
            &clean,
            "2023-03-01",
            "2023-03-10",
            ["40000.00", "40000.00", "10000.00", "12000.00", "7800.00", "0.00", "10200.00"],
        ),
    )
    .await;
    assert_check(&r, 4, ["30000.00", "12000.00", "18000.00", "7800.00", "12200.00"]);
    assert!(r.findings.is_empty(), "{:?}", r.findings);

    // Every code of docs/spec/medical.md is now stored and listed, each exactly as often as raised above.
    let listed = list_all(&mut mi, list_req()).await;
    let mut counts: Vec<(F, usize)> = Vec::new();
    for c in listed.iter().map(code) {
        match counts.iter_mut().find(|(k, _)| *k == c) {
            Some((_, n)) => *n += 1,
            None => counts.push((c, 1)),
        }
    }
    counts.sort();
    let every: Vec<(F, usize)> = [
        F::NotInsured,
        F::AssistanceToIneligible,
        F::TierOrderViolation,
        F::AssistanceMissed,
        F::UnderAssisted,
        F::OverAssisted,
        F::AnnualCapExceeded,
        F::CiiTiltNotApplied,
        F::DuplicateSuspected,
        F::HighBurden,
        F::TiltedAssistanceCandidate,
    ]
    .into_iter()
    .map(|c| (c, 1))
    .collect();
    assert_eq!(counts, every);
    assert!(listed.iter().all(|f| f.settlement_id != "CL-1"));
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------------------------------

#[apply(e2e!)]
#[tokio::test]
async fn invalid_settlements_are_rejected_per_record_and_not_stored() {
    let app = spawn_app().await;
    // A person in no program, insured: every stored settlement with assistance paid raises ASSISTANCE_TO_INELIGIBLE,
    // so a rejected settlement that had been stored would show up in the list.
    let person = id(HUAN, (1975, 1, 1), 301);
    insure(&app, "MI-V", &person, HUAN).await;
    let mut mi = app.client("medical_insurance").await;
    // Total 6,000.00 = basic 3,000.00 + 0 + MA 500.00 + 0 + out of pocket 2,500.00.
    let ok = ["6000.00", "5000.00", "3000.00", "0.00", "500.00", "0.00", "2500.00"];
    let valid = |sid: &str, admitted: &str, settled: &str| settlement(sid, &person, admitted, settled, ok);
    let mut bad_id = person.clone();
    let check = bad_id.pop().unwrap();
    bad_id.push(if check == '0' { '1' } else { '0' });

    let mut batch = vec![valid("V-1", "2023-03-01", "2023-03-10")];
    // The field each settlement of the batch must be rejected for; "" = ACCEPTED.
    let mut expect: Vec<&str> = vec![""];
    let mut add = |s: pb::Settlement, field: &'static str, batch: &mut Vec<pb::Settlement>| {
        expect.push(field);
        batch.push(s);
    };
    // A negative amount, in each of the seven money fields.
    type Field = fn(&mut pb::Settlement) -> &mut String;
    let money_fields: [(&'static str, Field); 7] = [
        ("total_cost", |s| &mut s.total_cost),
        ("policy_scope_cost", |s| &mut s.policy_scope_cost),
        ("basic_paid", |s| &mut s.basic_paid),
        ("critical_illness_paid", |s| &mut s.critical_illness_paid),
        ("medical_assistance_paid", |s| &mut s.medical_assistance_paid),
        ("other_paid", |s| &mut s.other_paid),
        ("out_of_pocket", |s| &mut s.out_of_pocket),
    ];
    for (name, field) in money_fields {
        let mut s = valid(&format!("R-NEG-{name}"), "2023-05-01", "2023-05-10");
        *field(&mut s) = "-1.00".into();
        add(s, name, &mut batch);
    }
    // Money that is not decimal yuan with at most 2 fractional digits (docs/spec/api.md), or missing.
    for (i, bad) in ["0.001", "+0.00", "1e2", ""].into_iter().enumerate() {
        let mut s = valid(&format!("R-FMT-{i}"), "2023-05-01", "2023-05-10");
        s.other_paid = bad.into();
        add(s, "other_paid", &mut batch);
    }
    let mut s = valid("R-SCOPE", "2023-05-01", "2023-05-10");
    s.policy_scope_cost = "6000.01".into(); // above total_cost 6,000.00
    add(s, "policy_scope_cost", &mut batch);
    let mut s = valid("R-SUM", "2023-05-01", "2023-05-10");
    s.out_of_pocket = "2499.99".into(); // parts 3,000 + 0 + 500 + 0 + 2,499.99 = 5,999.99 ≠ 6,000.00
    add(s, "total_cost", &mut batch);
    add(valid("R-DATES", "2023-05-11", "2023-05-10"), "settled_on", &mut batch);
    let mut s = valid("R-VT0", "2023-05-01", "2023-05-10");
    s.visit_type = pb::VisitType::Unspecified as i32;
    add(s, "visit_type", &mut batch);
    let mut s = valid("R-VT99", "2023-05-01", "2023-05-10");
    s.visit_type = 99;
    add(s, "visit_type", &mut batch);
    let mut s = valid("R-ID", "2023-05-01", "2023-05-10");
    s.id_number = bad_id.clone();
    add(s, "id_number", &mut batch);
    add(valid("R-FEB29", "2023-02-28", "2023-02-29"), "settled_on", &mut batch);
    // No policy version is in force before 2022-01-01.
    add(valid("R-2021", "2021-12-20", "2021-12-31"), "settled_on", &mut batch);
    add(valid("V-2", "2023-04-01", "2023-04-10"), "", &mut batch);

    let results = submit(&mut mi, batch.clone()).await.unwrap();
    assert_eq!(results.len(), batch.len());
    for (i, (r, field)) in results.iter().zip(&expect).enumerate() {
        assert_eq!(r.index, i as u32);
        assert_eq!(r.settlement_id, batch[i].settlement_id);
        if field.is_empty() {
            assert_eq!(result_outcome(r), pb::SettlementOutcome::Accepted, "{r:?}");
            assert_eq!(codes(r), [F::AssistanceToIneligible]);
        } else {
            assert_eq!(result_outcome(r), pb::SettlementOutcome::Rejected, "{r:?}");
            assert_eq!(r.field, *field, "{r:?}");
            assert!(!r.reason.is_empty());
            assert!(r.check.is_none() && r.findings.is_empty());
        }
    }

    // Only the two valid ones were stored.
    let listed = list_all(&mut mi, list_req()).await;
    let ids: BTreeSet<&str> = listed.iter().map(|f| f.settlement_id.as_str()).collect();
    assert_eq!(ids, BTreeSet::from(["V-1", "V-2"]));
    assert_eq!(listed.len(), 2);

    // Resubmitted as they were, they are rejected again (not DUPLICATE: nothing was stored under those ids)…
    let again = submit(&mut mi, batch[1..batch.len() - 1].to_vec()).await.unwrap();
    for (r, field) in again.iter().zip(&expect[1..]) {
        assert_eq!(result_outcome(r), pb::SettlementOutcome::Rejected, "{r:?}");
        assert_eq!(r.field, *field);
    }
    // …and corrected under the same ids they are ACCEPTED, not a conflict with a stored settlement.
    let corrected: Vec<pb::Settlement> = batch[1..batch.len() - 1]
        .iter()
        .enumerate()
        .map(|(i, s)| valid(&s.settlement_id, &format!("2023-09-{:02}", i + 1), &format!("2023-09-{:02}", i + 1)))
        .collect();
    let results = submit(&mut mi, corrected).await.unwrap();
    assert!(results.iter().all(|r| result_outcome(r) == pb::SettlementOutcome::Accepted), "{results:#?}");

    // An empty batch is refused as a whole.
    let s = submit(&mut mi, vec![]).await.unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(s.message().contains("settlements"), "{}", s.message());
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------------------------------
// DUPLICATE and immutability
// ---------------------------------------------------------------------------------------------------------------------

#[apply(e2e!)]
#[tokio::test]
async fn the_same_settlement_again_is_a_duplicate_and_other_content_is_refused() {
    let app = spawn_app().await;
    let person = id(HUAN, (1962, 2, 2), 401);
    enrol(&app, "AS-D", &person, HUAN, assistance(pb::Program::DibaoMarginal)).await;
    insure(&app, "MI-D", &person, HUAN).await;
    let mut mi = app.client("medical_insurance").await;
    // Example B: ASSISTANCE_MISSED 1,300.00 vs 0.00. Total 12,000.00 = 6,000.00 + 0 + 0 + 0 + 6,000.00.
    let b = settlement(
        "DUP-B",
        &person,
        "2023-04-01",
        "2023-04-10",
        ["12000.00", "10000.00", "6000.00", "0.00", "0.00", "0.00", "6000.00"],
    );
    let first = accept(&mut mi, b.clone()).await;
    assert_eq!(codes(&first), [F::AssistanceMissed]);
    let before = list(&mut mi, list_req()).await.unwrap();
    assert_eq!(before.total_size, 1);

    let r = submit(&mut mi, vec![b.clone()]).await.unwrap();
    assert_eq!(result_outcome(&r[0]), pb::SettlementOutcome::Duplicate, "{r:?}");
    assert!(r[0].check.is_none() && r[0].findings.is_empty(), "{r:?}");
    let after = list(&mut mi, list_req()).await.unwrap();
    assert_eq!(after.total_size, 1, "no new finding");
    assert_eq!(after.findings, before.findings, "nothing changed");

    // Same id, other content (MA 1,300.00 paid; total 12,000.00 = 6,000.00 + 0 + 1,300.00 + 0 + 4,700.00): refused,
    // and the stored settlement still raises its ASSISTANCE_MISSED (had it been replaced, nothing would be missed).
    let mut other = b.clone();
    other.medical_assistance_paid = "1300.00".into();
    other.out_of_pocket = "4700.00".into();
    let r = submit(&mut mi, vec![other]).await.unwrap();
    assert_eq!(result_outcome(&r[0]), pb::SettlementOutcome::Rejected, "{r:?}");
    assert_eq!(r[0].field, "settlement_id");
    let after = list(&mut mi, list_req()).await.unwrap();
    assert_eq!(after.total_size, 1);
    assert_eq!(after.findings, before.findings, "the stored settlement is unchanged");
    assert_eq!(amounts(&after.findings, "DUP-B", F::AssistanceMissed), pair("1300.00", "0.00"));

    // The duplicate again, inside a batch with a new settlement: DUPLICATE and ACCEPTED side by side.
    let mut next = b.clone();
    next.settlement_id = "DUP-B2".into();
    next.admitted_on = "2023-10-01".into();
    next.settled_on = "2023-10-10".into();
    let r = submit(&mut mi, vec![b, next.clone()]).await.unwrap();
    assert_eq!(result_outcome(&r[0]), pb::SettlementOutcome::Duplicate);
    assert_eq!(result_outcome(&r[1]), pb::SettlementOutcome::Accepted);

    // One new id twice in one batch: the first is stored, the repeat is a DUPLICATE of it; with other content,
    // the repeat is refused.
    let mut twice = next.clone();
    twice.settlement_id = "DUP-B3".into();
    twice.admitted_on = "2023-11-01".into();
    twice.settled_on = "2023-11-10".into();
    let mut changed = twice.clone();
    changed.other_paid = "100.00".into();
    changed.out_of_pocket = "5900.00".into(); // 6,000 + 0 + 0 + 100 + 5,900 = 12,000.00
    let r = submit(&mut mi, vec![twice.clone(), twice, changed]).await.unwrap();
    let outcomes: Vec<pb::SettlementOutcome> = r.iter().map(result_outcome).collect();
    assert_eq!(
        outcomes,
        [pb::SettlementOutcome::Accepted, pb::SettlementOutcome::Duplicate, pb::SettlementOutcome::Rejected]
    );
    assert_eq!(r[2].field, "settlement_id");

    // An ID number with the check digit X, sent with a lower-case x (docs/spec/api.md: accepted, stored upper case):
    // the finding carries the upper-case form, and the same settlement with "X" is the same content, a DUPLICATE.
    let upper = (1..999).map(|seq| id(HUAN, (1962, 3, 3), seq)).find(|n| n.ends_with('X')).unwrap();
    enrol(&app, "AS-X", &upper, HUAN, assistance(pb::Program::DibaoMarginal)).await;
    insure(&app, "MI-X", &upper, HUAN).await;
    let mut x = settlement(
        "DUP-X",
        &upper.to_lowercase(),
        "2023-04-01",
        "2023-04-10",
        ["12000.00", "10000.00", "6000.00", "0.00", "0.00", "0.00", "6000.00"],
    );
    let r = accept(&mut mi, x.clone()).await;
    assert_eq!(codes(&r), [F::AssistanceMissed], "the marginal group was found through the normalized number");
    assert_eq!(r.findings[0].id_number, upper);
    x.id_number = upper.clone();
    let r = submit(&mut mi, vec![x]).await.unwrap();
    assert_eq!(result_outcome(&r[0]), pb::SettlementOutcome::Duplicate, "{r:?}");
    let listed = list_all(
        &mut mi,
        pb::ListFindingsRequest { from_date: "2023-04-10".into(), to_date: "2023-04-10".into(), ..list_req() },
    )
    .await;
    assert_eq!(only(&listed, "DUP-X", F::AssistanceMissed).id_number, upper);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------------------------------
// Access
// ---------------------------------------------------------------------------------------------------------------------

#[apply(e2e!)]
#[tokio::test]
async fn only_medical_insurance_submits_and_civil_affairs_reads_within_its_county() {
    let app = spawn_app().await;
    // Example B for one marginal person in Huan county and one in Xifeng district.
    let huan = id(HUAN, (1962, 2, 2), 501);
    let xifeng = id(XIFENG, (1962, 2, 2), 502);
    let mut batch = Vec::new();
    for (i, (person, county)) in [(&huan, HUAN), (&xifeng, XIFENG)].into_iter().enumerate() {
        enrol(&app, &format!("AS-{i}"), person, county, assistance(pb::Program::DibaoMarginal)).await;
        insure(&app, &format!("MI-{i}"), person, county).await;
        let mut s = settlement(
            &format!("ACC-{county}"),
            person,
            "2023-04-01",
            "2023-04-10",
            ["12000.00", "10000.00", "6000.00", "0.00", "0.00", "0.00", "6000.00"],
        );
        s.division_code = county.into();
        batch.push(s);
    }
    let valid_batch = batch.clone();

    for agency in ["human_resources", "education", "disability_federation", "leading_group", "civil_affairs"] {
        let mut c = app.client(agency).await;
        let s = submit(&mut c, valid_batch.clone()).await.unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied, "{agency} SubmitSettlements: {s:?}");
    }
    let mut mi = app.client("medical_insurance").await;
    let r = submit(&mut mi, batch).await.unwrap();
    assert!(r.iter().all(|r| result_outcome(r) == pb::SettlementOutcome::Accepted), "{r:#?}");

    for agency in ["human_resources", "education", "disability_federation", "leading_group"] {
        let mut c = app.client(agency).await;
        let s = list(&mut c, list_req()).await.unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied, "{agency} ListFindings: {s:?}");
        let s = recheck(&mut c, "2023-01-01", "2023-12-31").await.unwrap_err();
        assert_eq!(s.code(), Code::PermissionDenied, "{agency} RecheckPeriod: {s:?}");
    }

    // civil_affairs (city): both findings; a recheck of the year covers both persons.
    let mut civil = app.client("civil_affairs").await;
    let all = list(&mut civil, list_req()).await.unwrap();
    assert_eq!(all.total_size, 2);
    let r = recheck(&mut civil, "2023-01-01", "2023-12-31").await.unwrap();
    assert_eq!((r.persons_checked, r.settlements_checked, r.findings_added, r.findings_resolved), (2, 2, 0, 0));

    // civil_affairs' Huan county office: its county only, in the list and in the recheck.
    let mut county = app.client_in("civil_affairs", Some(HUAN)).await;
    let own = list(&mut county, list_req()).await.unwrap();
    assert_eq!(own.total_size, 1);
    assert_eq!(own.findings.len(), 1);
    assert_eq!(own.findings[0].settlement_id, format!("ACC-{HUAN}"));
    assert_eq!(own.findings[0].id_number, huan);
    assert_eq!(own.findings[0].division_code, HUAN);
    let city_wide = list(&mut county, pb::ListFindingsRequest { division_code: "621000".into(), ..list_req() }).await;
    if let Ok(page) = city_wide {
        assert!(page.findings.iter().all(|f| f.division_code.starts_with(HUAN)), "{page:#?}");
    }
    let r = recheck(&mut county, "2023-01-01", "2023-12-31").await.unwrap();
    assert_eq!((r.persons_checked, r.settlements_checked), (1, 1));
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------------------------------
// Out-of-order arrival and late status changes
// ---------------------------------------------------------------------------------------------------------------------

/// Examples D and E for one tekun person, and F later in the year: scope 5,000.00, basic 3,000.00, nothing else
/// paid; total 6,000.00 = 3,000.00 + 0 + 0 + 0 + out of pocket 3,000.00.
fn tekun_year(person: &str) -> [pb::Settlement; 3] {
    [
        settlement(
            "Y-D",
            person,
            "2023-03-01",
            "2023-03-10",
            ["55000.00", "50000.00", "30000.00", "9750.00", "10250.00", "0.00", "5000.00"],
        ),
        settlement(
            "Y-E",
            person,
            "2023-06-01",
            "2023-06-15",
            ["42000.00", "40000.00", "22000.00", "6000.00", "12000.00", "0.00", "2000.00"],
        ),
        settlement(
            "Y-F",
            person,
            "2023-09-01",
            "2023-09-10",
            ["6000.00", "5000.00", "3000.00", "0.00", "0.00", "0.00", "3000.00"],
        ),
    ]
}

#[apply(e2e!)]
#[tokio::test]
async fn settlements_arriving_in_reverse_order_end_with_the_in_order_findings() {
    let person = id(HUAN, (1944, 4, 4), 601);
    let hubs = [spawn_app().await, spawn_app().await];
    for app in &hubs {
        enrol(app, "AS-T", &person, HUAN, assistance(pb::Program::Tekun)).await;
        insure(app, "MI-T", &person, HUAN).await;
    }
    let [d, e, f] = tekun_year(&person);

    // Hub 0, in order, one request each.
    let mut mi0 = hubs[0].client("medical_insurance").await;
    for s in [d.clone(), e.clone(), f.clone()] {
        accept(&mut mi0, s).await;
    }

    // Hub 1, reverse order.
    let mut mi1 = hubs[1].client("medical_insurance").await;
    // F alone: after basic 2,000.00, within the fresh tilted deductible 5,000 → CII 0.00; residual 2,000.00; MA
    // 2,000 × 100% = 2,000.00, nothing paid → ASSISTANCE_MISSED.
    let r = accept(&mut mi1, f.clone()).await;
    assert_check(&r, 1, ["2000.00", "0.00", "2000.00", "2000.00", "20000.00"]);
    assert_eq!(codes(&r), [F::AssistanceMissed]);
    // E, then F: E is first of the year: CII (18,000 − 5,000) × 65% = 8,450.00 vs 6,000.00 paid → CII_TILT_NOT_APPLIED;
    // residual 12,000.00, MA 12,000.00 = paid; cap left 8,000.00. F: deductible used up, CII 2,000 × 65% = 1,300.00
    // vs 0 → CII_TILT_NOT_APPLIED; MA min(2,000, 8,000) = 2,000.00 still missed.
    let r = accept(&mut mi1, e.clone()).await;
    assert_check(&r, 1, ["18000.00", "8450.00", "12000.00", "12000.00", "8000.00"]);
    assert_eq!(codes(&r), [F::CiiTiltNotApplied]);
    assert_eq!(amounts(&r.findings, "Y-E", F::CiiTiltNotApplied), pair("8450.00", "6000.00"));
    let mid = list_all(&mut mi1, list_req()).await;
    assert_eq!(amounts(&mid, "Y-F", F::CiiTiltNotApplied), pair("1300.00", "0.00"));
    assert_eq!(amounts(&mid, "Y-F", F::AssistanceMissed), pair("2000.00", "0.00"));
    assert_eq!(mid.len(), 3);
    // D last: now D, E, F as docs/spec/medical.md's examples: D none; E 11,700.00 vs 6,000.00, OVER 9,750.00 vs
    // 12,000.00, cap 20,000.00 vs 22,250.00; F: CII 1,300.00 vs 0.00, MA min(2,000, cap left 0) = 0.00, so nothing
    // missed.
    let r = accept(&mut mi1, d.clone()).await;
    assert_check(&r, 1, ["20000.00", "9750.00", "10250.00", "10250.00", "9750.00"]);
    assert!(r.findings.is_empty(), "{:?}", r.findings);

    let expected: BTreeSet<Key> = [
        ("Y-E", F::CiiTiltNotApplied, "11700.00", "6000.00"),
        ("Y-E", F::OverAssisted, "9750.00", "12000.00"),
        ("Y-E", F::AnnualCapExceeded, "20000.00", "22250.00"),
        ("Y-F", F::CiiTiltNotApplied, "1300.00", "0.00"),
    ]
    .into_iter()
    .map(|(s, c, e, a)| {
        let agency = "medical_insurance".to_owned();
        (s.to_owned(), c as i32, e.to_owned(), a.to_owned(), person.clone(), EXAMPLE_2023.to_owned(), agency)
    })
    .collect();
    let in_order: Vec<Key> = list_all(&mut mi0, list_req()).await.iter().map(key).collect();
    let reversed: Vec<Key> = list_all(&mut mi1, list_req()).await.iter().map(key).collect();
    assert_eq!(in_order.iter().cloned().collect::<BTreeSet<_>>(), expected);
    assert_eq!(in_order.len(), expected.len());
    assert_eq!(reversed, in_order, "same findings, same order");

    // The missed assistance on F was resolved by D's arrival, and is still there on request.
    let with_resolved = list_all(&mut mi1, pb::ListFindingsRequest { include_resolved: true, ..list_req() }).await;
    assert_eq!(with_resolved.len(), 5);
    let missed = only(&with_resolved, "Y-F", F::AssistanceMissed);
    assert!(missed.resolved_at.is_some(), "{missed:?}");
    assert!(with_resolved.iter().filter(|f| code(f) != F::AssistanceMissed).all(|f| f.resolved_at.is_none()));
    for app in hubs {
        app.stop().await;
    }
}

#[apply(e2e!)]
#[tokio::test]
async fn a_late_dibao_fact_is_picked_up_by_recheck_period() {
    let app = spawn_app().await;
    let person = id(HUAN, (1961, 1, 1), 701);
    insure(&app, "MI-L", &person, HUAN).await;
    let mut mi = app.client("medical_insurance").await;
    // Example A with MA paid 4,000.00: total 30,000.00 = 15,000.00 + 3,250.00 + 4,000.00 + 0 + out of pocket 7,750.00.
    // No assistance fact yet: no group, so the 4,000.00 paid is ASSISTANCE_TO_INELIGIBLE (and the CII is untilted:
    // (10,000 − 10,000) × 60% = 0.00).
    let s = settlement(
        "L-1",
        &person,
        "2023-03-01",
        "2023-03-10",
        ["30000.00", "25000.00", "15000.00", "3250.00", "4000.00", "0.00", "7750.00"],
    );
    let r = accept(&mut mi, s).await;
    assert_check(&r, 0, ["10000.00", "0.00", "6750.00", "0.00", "16000.00"]);
    assert_eq!(codes(&r), [F::AssistanceToIneligible]);
    assert_eq!(amounts(&r.findings, "L-1", F::AssistanceToIneligible), pair("", "4000.00"));

    // civil_affairs records the dibao enrolment late, in force from 2023-01-01.
    enrol(&app, "AS-L", &person, HUAN, rural_dibao()).await;
    // Nothing changes until a recheck.
    let before = list_all(&mut mi, list_req()).await;
    assert_eq!(before.iter().map(code).collect::<Vec<_>>(), [F::AssistanceToIneligible]);

    // Now group 2: CII (10,000 − 5,000) × 65% = 3,250.00 = paid; MA 6,750 × 70% = 4,725.00 vs 4,000.00 paid →
    // UNDER_ASSISTED; the ineligible finding is resolved.
    let mut civil = app.client("civil_affairs").await;
    let r = recheck(&mut civil, "2023-01-01", "2023-12-31").await.unwrap();
    assert_eq!((r.persons_checked, r.settlements_checked), (1, 1));
    assert_eq!((r.findings_added, r.findings_resolved), (1, 1));
    assert_eq!(by_code(&r.added_by_code), [(F::UnderAssisted, 1)]);
    assert_eq!(by_code(&r.resolved_by_code), [(F::AssistanceToIneligible, 1)]);

    let open = list_all(&mut mi, list_req()).await;
    assert_eq!(open.len(), 1);
    assert_eq!(amounts(&open, "L-1", F::UnderAssisted), pair("4725.00", "4000.00"));
    assert!(open[0].resolved_at.is_none());
    let all = list_all(&mut mi, pb::ListFindingsRequest { include_resolved: true, ..list_req() }).await;
    assert_eq!(all.len(), 2);
    let resolved = only(&all, "L-1", F::AssistanceToIneligible);
    assert!(resolved.resolved_at.is_some(), "{resolved:?}");
    assert!(only(&all, "L-1", F::UnderAssisted).resolved_at.is_none());
    // Filtering by code still finds the resolved one on request, and not otherwise.
    let ineligible = pb::ListFindingsRequest { code: F::AssistanceToIneligible as i32, ..list_req() };
    assert_eq!(list(&mut mi, ineligible.clone()).await.unwrap().total_size, 0);
    assert_eq!(
        list(&mut mi, pb::ListFindingsRequest { include_resolved: true, ..ineligible }).await.unwrap().total_size,
        1
    );

    // A second recheck finds nothing new.
    let r = recheck(&mut mi, "2023-01-01", "2023-12-31").await.unwrap();
    assert_eq!((r.persons_checked, r.findings_added, r.findings_resolved), (1, 0, 0));
    assert!(r.added_by_code.is_empty() && r.resolved_by_code.is_empty());
    // A range with no settlement rechecks nobody.
    let r = recheck(&mut mi, "2023-04-01", "2023-12-31").await.unwrap();
    assert_eq!((r.persons_checked, r.settlements_checked), (0, 0));

    // Bad ranges name the field.
    for (from, to, field) in [
        ("", "2023-12-31", "from_date"),
        ("2023-01-01", "", "to_date"),
        ("2023-12-31", "2023-01-01", "to_date"),
        ("2023-02-29", "2023-03-01", "from_date"),
    ] {
        let s = recheck(&mut mi, from, to).await.unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument, "{from}..{to}: {s:?}");
        assert!(s.message().contains(field), "{from}..{to}: {}", s.message());
    }

    // One audit event per request on person-level data (proto: "Audited").
    let n = app.audit_events().await;
    recheck(&mut civil, "2023-01-01", "2023-12-31").await.unwrap();
    assert_eq!(app.audit_events().await, n + 1, "RecheckPeriod");
    list(&mut civil, list_req()).await.unwrap();
    assert_eq!(app.audit_events().await, n + 2, "ListFindings");
    let again = settlement(
        "L-2",
        &person,
        "2023-10-01",
        "2023-10-10",
        ["1000.00", "1000.00", "800.00", "0.00", "140.00", "0.00", "60.00"],
    );
    accept(&mut mi, again).await;
    assert_eq!(app.audit_events().await, n + 3, "SubmitSettlements");
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn cover_is_checked_on_admitted_on_and_a_late_cover_is_picked_up() {
    let app = spawn_app().await;
    let person = id(HUAN, (1958, 8, 8), 801);
    enrol(&app, "AS-C", &person, HUAN, rural_dibao()).await;
    insure(&app, "MI-2023", &person, HUAN).await;
    let mut mi = app.client("medical_insurance").await;
    // Admitted 2022-12-28, before the 2023 cover, settled 2023-01-05 inside it: NOT_INSURED (cover is checked on
    // admitted_on). Otherwise clean for a dibao person: after basic 1,000 − 800 = 200.00; CII 0.00 (within the
    // tilted deductible); residual 200.00; MA 200 × 70% = 140.00 = paid; cap left 19,860.00. Total 1,000.00 = 800.00
    // + 0 + 140.00 + 0 + out of pocket 60.00.
    let s = settlement(
        "NC-1",
        &person,
        "2022-12-28",
        "2023-01-05",
        ["1000.00", "1000.00", "800.00", "0.00", "140.00", "0.00", "60.00"],
    );
    let r = accept(&mut mi, s).await;
    assert_check(&r, 2, ["200.00", "0.00", "200.00", "140.00", "19860.00"]);
    assert_eq!(codes(&r), [F::NotInsured]);

    // medical_insurance records the 2022 cover late: a recheck resolves the finding.
    let mut f = with(base("MI-2022", &person, HUAN), medical_insurance());
    f.valid_from = "2022-01-01".into();
    f.valid_to = "2023-01-01".into();
    if let Some(pb::fact::Payload::MedicalInsurance(m)) = &mut f.payload {
        m.year = 2022;
    }
    let pushed = push(&mut mi, vec![f]).await.unwrap();
    assert_eq!(outcome(&pushed.results[0]), pb::FactOutcome::Accepted, "{pushed:?}");
    let r = recheck(&mut mi, "2023-01-01", "2023-01-31").await.unwrap();
    assert_eq!((r.persons_checked, r.findings_added, r.findings_resolved), (1, 0, 1));
    assert_eq!(by_code(&r.resolved_by_code), [(F::NotInsured, 1)]);
    assert_eq!(list(&mut mi, list_req()).await.unwrap().total_size, 0);
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn the_policy_version_in_force_on_settled_on_applies() {
    let app = spawn_app().await;
    let person = id(HUAN, (1944, 4, 4), 901);
    let mut civil = app.client("civil_affairs").await;
    let mut tekun = with(base("AS-V", &person, HUAN), assistance(pb::Program::Tekun));
    tekun.valid_from = "2022-01-01".into();
    let r = push(&mut civil, vec![tekun]).await.unwrap();
    assert_eq!(outcome(&r.results[0]), pb::FactOutcome::Accepted, "{r:?}");
    let mut mi = app.client("medical_insurance").await;
    let mut cover_2022 = with(base("MI-V-2022", &person, HUAN), medical_insurance());
    cover_2022.valid_from = "2022-01-01".into();
    cover_2022.valid_to = "2023-01-01".into();
    if let Some(pb::fact::Payload::MedicalInsurance(m)) = &mut cover_2022.payload {
        m.year = 2022;
    }
    let r = push(&mut mi, vec![cover_2022]).await.unwrap();
    assert_eq!(outcome(&r.results[0]), pb::FactOutcome::Accepted, "{r:?}");
    insure(&app, "MI-V-2023", &person, HUAN).await;

    // Example D's amounts settled in 2022, under the national floors: group 1's assistance ratio is 70%, so MA
    // 10,250 × 70% = 7,175.00 and the 10,250.00 paid is OVER_ASSISTED. The CII terms are the same in both versions:
    // (20,000 − 5,000) × 65% = 9,750.00. Cap left 20,000 − 10,250 = 9,750.00.
    let d = ["55000.00", "50000.00", "30000.00", "9750.00", "10250.00", "0.00", "5000.00"];
    let r = accept(&mut mi, settlement("V-2022", &person, "2022-06-01", "2022-06-10", d)).await;
    let c = r.check.as_ref().unwrap();
    assert_eq!(c.policy_version, NATIONAL_FLOOR);
    assert_eq!(c.assistance_group, 1);
    assert_eq!(
        [
            c.after_basic.as_str(),
            &c.expected_critical_illness,
            &c.residual,
            &c.expected_medical_assistance,
            &c.cap_left
        ],
        ["20000.00", "9750.00", "10250.00", "7175.00", "9750.00"]
    );
    assert_eq!(codes(&r), [F::OverAssisted]);
    assert_eq!(amounts(&r.findings, "V-2022", F::OverAssisted), pair("7175.00", "10250.00"));
    assert_eq!(r.findings[0].policy_version, NATIONAL_FLOOR);

    // The same amounts admitted in 2022 but settled in 2023: settled_on decides the version (100%) and the year
    // (fresh deductible and cap): example D exactly, no finding.
    let r = accept(&mut mi, settlement("V-2023", &person, "2022-12-20", "2023-01-05", d)).await;
    assert_check(&r, 1, ["20000.00", "9750.00", "10250.00", "10250.00", "9750.00"]);
    assert!(r.findings.is_empty(), "{:?}", r.findings);

    let listed = list_all(&mut mi, list_req()).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(only(&listed, "V-2022", F::OverAssisted).policy_version, NATIONAL_FLOOR);
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------------------------------
// Listing
// ---------------------------------------------------------------------------------------------------------------------

#[apply(e2e!)]
#[tokio::test]
async fn list_findings_pages_and_filters() {
    let app = spawn_app().await;
    load_examples(&app).await;
    let mut mi = app.client("medical_insurance").await;
    // Five findings (B 1, C 1, E 3), page size 2: pages of 2, 2 and 1.
    let mut seen: Vec<(String, i32)> = Vec::new();
    let mut token = String::new();
    let mut sizes = Vec::new();
    loop {
        let page = list(&mut mi, pb::ListFindingsRequest { page_size: 2, page_token: token.clone(), ..list_req() })
            .await
            .unwrap();
        assert_eq!(page.total_size, 5);
        sizes.push(page.findings.len());
        seen.extend(page.findings.iter().map(|f| (f.settlement_id.clone(), f.code)));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        // The token is bound to the filter.
        for other in [
            pb::ListFindingsRequest { code: F::OverAssisted as i32, ..list_req() },
            pb::ListFindingsRequest { from_date: "2023-01-01".into(), ..list_req() },
            pb::ListFindingsRequest { include_resolved: true, ..list_req() },
        ] {
            let s = list(&mut mi, pb::ListFindingsRequest { page_size: 2, page_token: token.clone(), ..other })
                .await
                .unwrap_err();
            assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
            assert!(s.message().contains("page_token"), "{}", s.message());
        }
    }
    assert_eq!(sizes, [2, 2, 1]);
    let unique: BTreeSet<(String, i32)> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), 5, "each finding exactly once: {seen:?}");

    // By code.
    let tilt =
        list(&mut mi, pb::ListFindingsRequest { code: F::CiiTiltNotApplied as i32, ..list_req() }).await.unwrap();
    assert_eq!(tilt.total_size, 1);
    assert_eq!(tilt.findings[0].settlement_id, "EX-E");
    // By date range, both ends inclusive: B (2023-04-10) and C (2023-05-10).
    let range = pb::ListFindingsRequest { from_date: "2023-04-10".into(), to_date: "2023-05-10".into(), ..list_req() };
    let page = list(&mut mi, range).await.unwrap();
    let ids: Vec<&str> = page.findings.iter().map(|f| f.settlement_id.as_str()).collect();
    assert_eq!(ids, ["EX-B", "EX-C"]);
    assert_eq!(page.total_size, 2);
    // From E's day on: E's three.
    let late = list(&mut mi, pb::ListFindingsRequest { from_date: "2023-06-15".into(), ..list_req() }).await.unwrap();
    assert_eq!(late.total_size, 3);
    assert!(late.findings.iter().all(|f| f.settlement_id == "EX-E"));
    // Up to the day before B: nothing.
    let early = list(&mut mi, pb::ListFindingsRequest { to_date: "2023-04-09".into(), ..list_req() }).await.unwrap();
    assert_eq!(early.total_size, 0);
    // Code and range together.
    let both =
        pb::ListFindingsRequest { code: F::AssistanceMissed as i32, from_date: "2023-05-01".into(), ..list_req() };
    assert_eq!(list(&mut mi, both).await.unwrap().total_size, 0);
    // Bad filters name the field.
    for (req, field) in [
        (
            pb::ListFindingsRequest { from_date: "2023-06-01".into(), to_date: "2023-05-31".into(), ..list_req() },
            "to_date",
        ),
        (pb::ListFindingsRequest { from_date: "2023-02-29".into(), ..list_req() }, "from_date"),
        (pb::ListFindingsRequest { code: 99, ..list_req() }, "code"),
        (pb::ListFindingsRequest { page_token: "not-a-token".into(), ..list_req() }, "page_token"),
    ] {
        let s = list(&mut mi, req).await.unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument, "{field}: {s:?}");
        assert!(s.message().contains(field), "{field}: {}", s.message());
    }
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------------------------------
// Reference.GetPolicy
// ---------------------------------------------------------------------------------------------------------------------

fn programs(g: &pb::MedicalAssistanceGroup) -> Vec<pb::Program> {
    g.programs.iter().map(|p| pb::Program::try_from(*p).unwrap()).collect()
}

#[apply(e2e!)]
#[tokio::test]
async fn get_policy_lists_the_version_in_force() {
    use pb::Program as P;
    let app = spawn_app().await;
    let mut reference = app.client("medical_insurance").await.reference;
    let get = |as_of: &str| pb::GetPolicyRequest { as_of: as_of.into(), pooling_area: String::new() };

    let r = reference.get_policy(get("2023-06-30")).await.unwrap().into_inner();
    assert_eq!(r.as_of, "2023-06-30");
    assert_eq!(r.medical_policies.len(), 1, "one pooling area: the city");
    let p = &r.medical_policies[0];
    assert_eq!(p.version, EXAMPLE_2023);
    assert_eq!(p.pooling_area, "621000");
    assert_eq!(p.effective_from, "2023-01-01");
    assert_eq!(p.effective_to, "", "the latest version");
    assert!(p.example, "docs/spec/medical.md's example values are placeholders");
    // docs/spec/medical.md's table: groups, programs, deductibles (share × income 20,000.00) and ratios.
    let groups: Vec<(u32, Vec<P>, Decimal, String, Decimal, bool)> = p
        .groups
        .iter()
        .map(|g| {
            (g.group, programs(g), dec(&g.ma_deductible_share), g.ma_deductible.clone(), dec(&g.ma_ratio), g.cii_tilt)
        })
        .collect();
    let want: Vec<(u32, Vec<P>, Decimal, String, Decimal, bool)> = vec![
        (
            1,
            vec![P::Tekun, P::Orphan, P::UnsupportedChild, P::HivAffectedChild],
            dec("0"),
            "0.00".into(),
            dec("1.00"),
            true,
        ),
        (2, vec![P::Dibao, P::AtRisk], dec("0"), "0.00".into(), dec("0.70"), true),
        (3, vec![P::DibaoMarginal], dec("0.10"), "2000.00".into(), dec("0.65"), false),
        (4, vec![P::IllnessImpoverished], dec("0.25"), "5000.00".into(), dec("0.60"), false),
    ];
    assert_eq!(groups, want);
    assert_eq!(p.prior_year_income, "20000.00");
    assert_eq!(p.annual_cap, "20000.00");
    assert_eq!(p.cii_deductible, "10000.00");
    assert_eq!(dec(&p.cii_ratio), dec("0.60"));
    // Tilt: deductible halved, +5 points.
    assert_eq!(dec(&p.cii_tilt_deductible_share), dec("0.5"));
    assert_eq!(dec(&p.cii_tilt_ratio_points), dec("0.05"));
    assert!(!p.outpatient_general_assisted);
    assert_eq!(p.tolerance, "1.00");
    // HIGH_BURDEN: 100% of income.
    assert_eq!(dec(&p.high_burden_share), dec("1"));
    assert_eq!(p.high_burden_threshold, "20000.00");
    assert!(!p.source.is_empty());
    assert!(p.national_floor_warnings.is_empty(), "{:?}", p.national_floor_warnings);

    // 2022: the national floors, superseded on 2023-01-01. Group 1's ratio is the national floor of 70%.
    let r = reference.get_policy(get("2022-06-30")).await.unwrap().into_inner();
    let p = &r.medical_policies[0];
    assert_eq!(p.version, NATIONAL_FLOOR);
    assert_eq!(p.effective_from, "2022-01-01");
    assert_eq!(p.effective_to, "2023-01-01");
    assert_eq!(dec(&p.groups[0].ma_ratio), dec("0.70"));
    // The boundary: 2022-12-31 is still the floor version, 2023-01-01 the example.
    let last = reference.get_policy(get("2022-12-31")).await.unwrap().into_inner();
    assert_eq!(last.medical_policies[0].version, NATIONAL_FLOOR);
    let first = reference.get_policy(get("2023-01-01")).await.unwrap().into_inner();
    assert_eq!(first.medical_policies[0].version, EXAMPLE_2023);
    // Before any version: nothing in force.
    let none = reference.get_policy(get("2021-12-31")).await.unwrap().into_inner();
    assert!(none.medical_policies.is_empty(), "{none:?}");

    for bad in ["2023-13-01", "2023-02-29", "30/06/2023"] {
        let s = reference.get_policy(get(bad)).await.unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument, "{bad}: {s:?}");
        assert!(s.message().contains("as_of"), "{}", s.message());
    }
    app.stop().await;
}
