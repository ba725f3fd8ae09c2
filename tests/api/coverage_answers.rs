//! Answers to coverage findings (issue 19 items 1 and 4, docs/findings.md) end to end, over two quarters: 2023Q2 is
//! frozen with three coverage findings, listed one by one per agency and by answer; every refusal of AnswerFinding
//! for a coverage finding (another agency, a county office outside its county, an unknown finding, bad input naming
//! the field, and each FIXED claim the stored facts do not support); answers kept as versions and audited; then the
//! fix pushed, 2023Q3 frozen, and its summary's section per agency showing the confirmed fix and what is still open.
//!
//! The persons (docs/spec/coordination.md "Coverage findings", defaults of `domain::coverage::CoverageParams`), all
//! born 1980 except the pupil, each an ACTIVE rural dibao enrolment of class 2 at 442.00 a month (the class's
//! standard, 5,304 / 12, so never BENEFIT_ABOVE_STANDARD):
//! - A, Huan county (621022), no medical insurance: UNINSURED, agency to act medical_insurance;
//! - B, Xifeng district (621002), no medical insurance: UNINSURED, medical_insurance;
//! - C, Huan county, born 2012, insured for 2023 (PARTIAL), a pupil without education aid: STUDENT_AID_MISSING,
//!   agency to act education.
//!
//! And for the medical lines of the summary's section 11: D, Huan county, ILLNESS_IMPOVERISHED (group 4, a program
//! no coverage rule concerns), not insured, with one inpatient settlement settled 2023-05-10 (docs/spec/medical.md,
//! example parameters): scope 20,000.00, basic 10,000.00, nothing else paid, total 22,000.00. After basic 10,000.00;
//! critical illness (10,000 − 10,000 deductible) × 60% = 0.00; residual 10,000.00; assistance (10,000 − 25% ×
//! 20,000) × 60% = 3,000.00 owed, 0.00 paid: ASSISTANCE_MISSED; no cover on admitted_on: NOT_INSURED.

use std::collections::BTreeSet;

use doudi::client::Clients;
use doudi::grpc::pb;
use doudi::store::AuditFilter;
use macro_rules_attribute::apply;
use tonic::Code;

use crate::support::*;

const HUAN: &str = "621022";
const XIFENG: &str = "621002";
const METHOD: &str = "/doudi.v1.MedicalAssistance/AnswerFinding";

async fn pushed(c: &mut Clients, f: pb::Fact) {
    let r = push(c, vec![f]).await.unwrap();
    let o = outcome(&r.results[0]);
    assert!(matches!(o, pb::FactOutcome::Accepted | pb::FactOutcome::NewVersion), "{r:?}");
}

/// medical_insurance's cover of `person` for `year`, valid from `from` to `to` ("" = open).
fn cover(fact_id: &str, person: &str, county: &str, year: u32, from: &str, to: &str) -> pb::Fact {
    let mut f = base(fact_id, person, county);
    f.valid_from = from.into();
    f.valid_to = to.into();
    let mut p = medical_insurance();
    if let pb::fact::Payload::MedicalInsurance(m) = &mut p {
        m.year = year;
    }
    with(f, p)
}

fn req(finding_id: &str, state: pb::AnswerState) -> pb::AnswerFindingRequest {
    pb::AnswerFindingRequest {
        finding_id: finding_id.into(),
        state: state as i32,
        purpose: "coverage answers test".into(),
        ..Default::default()
    }
}

fn fixed_by_fact(agency: &str, fact_id: &str, v: u64) -> Option<pb::FindingFix> {
    Some(pb::FindingFix {
        fix: Some(pb::finding_fix::Fix::FactVersion(pb::FactVersionRef {
            agency: agency.into(),
            fact_id: fact_id.into(),
            source_version: v,
        })),
    })
}

async fn answer(c: &mut Clients, r: pb::AnswerFindingRequest) -> Result<pb::FindingAnswer, tonic::Status> {
    c.medical.answer_finding(r).await.map(|r| r.into_inner().answer.expect("answer"))
}

fn list_req(quarter: &str, filter: pb::AnswerFilter) -> pb::ListCoverageFindingsRequest {
    pb::ListCoverageFindingsRequest {
        quarter: quarter.into(),
        answer: filter as i32,
        purpose: "coverage answers test".into(),
        ..Default::default()
    }
}

/// Every page of the listing: (code, ID number, latest answer state or 0).
async fn listed(c: &mut Clients, mut r: pb::ListCoverageFindingsRequest) -> BTreeSet<(String, String, i32)> {
    let mut out = BTreeSet::new();
    loop {
        let page = c.coordination.list_coverage_findings(r.clone()).await.unwrap().into_inner();
        for f in page.findings {
            assert!(f.finding_id.starts_with(&format!("coverage/{}/{}/", f.quarter, f.code)), "{f:?}");
            assert!(f.finding_id.ends_with(&f.person_key), "{f:?}");
            out.insert((f.code, f.id_number, f.answer.map(|a| a.state).unwrap_or(0)));
        }
        if page.next_page_token.is_empty() {
            return out;
        }
        r.page_token = page.next_page_token;
    }
}

/// The finding id of `code` for `person` among the caller's findings of `quarter`.
async fn finding_id(c: &mut Clients, quarter: &str, code: &str, person: &str) -> String {
    let page = c
        .coordination
        .list_coverage_findings(list_req(quarter, pb::AnswerFilter::Unspecified))
        .await
        .unwrap()
        .into_inner();
    page.findings
        .into_iter()
        .find(|f| f.code == code && f.id_number == person)
        .unwrap_or_else(|| panic!("no {code} for {person}"))
        .finding_id
}

fn invalid_field(s: &tonic::Status, field: &str) {
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(s.message().starts_with(&format!("{field}: ")), "names {field}: {s:?}");
}

/// The outcomes of the hub's audit events of `method`, oldest first.
async fn events_of(app: &TestApp, method: &str) -> Vec<String> {
    let mut events = app.app_hub.store.list_audit_events(&AuditFilter::default(), None, 10_000).await.unwrap();
    events.reverse();
    events.into_iter().filter(|e| e.method == method).map(|e| e.outcome).collect()
}

fn set_clock(app: &TestApp, at: &str) {
    app.app_hub.clock.set(Some(at.parse().unwrap()));
}

const IN_PROGRESS: i32 = pb::AnswerState::InProgress as i32;
const FIXED: i32 = pb::AnswerState::Fixed as i32;
const DISPUTED: i32 = pb::AnswerState::Disputed as i32;

#[apply(e2e!)]
#[tokio::test]
async fn coverage_findings_are_answered_refused_and_confirmed_fixed_by_the_next_quarter() {
    let app = spawn_app().await;
    let a = id(HUAN, (1980, 3, 1), 701);
    let b = id(XIFENG, (1980, 3, 1), 702);
    let c = id(HUAN, (2012, 3, 1), 703);
    let mut civil = app.client("civil_affairs").await;
    let mut mi = app.client("medical_insurance").await;
    let mut edu = app.client("education").await;
    for (p, county, n) in [(&a, HUAN, 1), (&b, XIFENG, 2), (&c, HUAN, 3)] {
        pushed(&mut civil, with(base(&format!("AS-{n}"), p, county), rural_dibao())).await;
    }
    pushed(&mut mi, cover("MI-3", &c, HUAN, 2023, "2023-01-01", "")).await;
    pushed(&mut edu, with(base("ST-3", &c, HUAN), student())).await;
    let d = id(HUAN, (1975, 3, 1), 704);
    let illness = pb::fact::Payload::Assistance(pb::Assistance {
        program: pb::Program::IllnessImpoverished as i32,
        household_id: "HH-D".into(),
        status: pb::AssistanceStatus::Active as i32,
        ..Default::default()
    });
    pushed(&mut civil, with(base("AS-4", &d, HUAN), illness)).await;
    let settlement = pb::Settlement {
        settlement_id: "D-1".into(),
        id_number: d.clone(),
        division_code: HUAN.into(),
        admitted_on: "2023-05-01".into(),
        settled_on: "2023-05-10".into(),
        visit_type: pb::VisitType::Inpatient as i32,
        in_province: true,
        referred: false,
        total_cost: "22000.00".into(),
        policy_scope_cost: "20000.00".into(),
        basic_paid: "10000.00".into(),
        critical_illness_paid: "0.00".into(),
        medical_assistance_paid: "0.00".into(),
        other_paid: "0.00".into(),
        out_of_pocket: "12000.00".into(),
    };
    let r = mi.medical.submit_settlements(pb::SubmitSettlementsRequest { settlements: vec![settlement] }).await;
    let codes: Vec<String> = r.unwrap().into_inner().results[0].findings.iter().map(|f| f.finding_id.clone()).collect();
    let (d_missed, d_uninsured) =
        ("medical/medical_insurance/D-1/ASSISTANCE_MISSED", "medical/medical_insurance/D-1/NOT_INSURED");
    assert_eq!(codes, [d_uninsured, d_missed]);

    // 2023Q2 frozen on 2023-07-05: three findings.
    set_clock(&app, "2023-07-05T02:00:00Z");
    civil.coordination.create_snapshot(pb::CreateSnapshotRequest { quarter: "2023Q2".into() }).await.unwrap();
    let q2 = |f| list_req("2023Q2", f);
    let all = pb::AnswerFilter::Unspecified;
    let uninsured = |p: &str| ("UNINSURED".to_owned(), p.to_owned(), 0);
    let aid = ("STUDENT_AID_MISSING".to_owned(), c.clone(), 0);
    // Each agency sees the findings naming it; civil_affairs (which freezes the quarters) every one, page by page.
    assert_eq!(listed(&mut mi, q2(all)).await, [uninsured(&a), uninsured(&b)].into());
    assert_eq!(listed(&mut edu, q2(all)).await, [aid.clone()].into());
    let every = pb::ListCoverageFindingsRequest { page_size: 1, ..q2(all) };
    assert_eq!(listed(&mut civil, every).await, [uninsured(&a), uninsured(&b), aid.clone()].into());
    let mut huan_mi = app.client_in("medical_insurance", Some(HUAN)).await;
    assert_eq!(listed(&mut huan_mi, q2(all)).await, [uninsured(&a)].into());
    let by_code = pb::ListCoverageFindingsRequest { code: "STUDENT_AID_MISSING".into(), ..q2(all) };
    assert_eq!(listed(&mut civil, by_code).await, [aid.clone()].into());
    // Listing refusals, each naming its field; NOT_FOUND for a quarter never frozen.
    for (r, field) in [
        (pb::ListCoverageFindingsRequest { quarter: "2023Q5".into(), ..q2(all) }, "quarter"),
        (pb::ListCoverageFindingsRequest { code: "NOPE".into(), ..q2(all) }, "code"),
        (pb::ListCoverageFindingsRequest { answer: 9, ..q2(all) }, "answer"),
        (pb::ListCoverageFindingsRequest { page_token: "garbage".into(), ..q2(all) }, "page_token"),
    ] {
        invalid_field(&mi.coordination.list_coverage_findings(r).await.unwrap_err(), field);
    }
    let s = mi.coordination.list_coverage_findings(list_req("2023Q1", all)).await.unwrap_err();
    assert_eq!(s.code(), Code::NotFound, "{s:?}");

    let a_id = finding_id(&mut mi, "2023Q2", "UNINSURED", &a).await;
    let b_id = finding_id(&mut mi, "2023Q2", "UNINSURED", &b).await;
    let c_id = finding_id(&mut edu, "2023Q2", "STUDENT_AID_MISSING", &c).await;
    let c_key = c_id.rsplit('/').next().unwrap().to_owned();

    // Refusals. Another agency: education may not answer medical_insurance's finding, nor medical_insurance
    // education's.
    let s = answer(&mut edu, req(&a_id, pb::AnswerState::InProgress)).await.unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    assert!(s.message().contains("medical_insurance"), "names the agency to act: {s:?}");
    let s = answer(&mut mi, req(&c_id, pb::AnswerState::InProgress)).await.unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    // A county office outside its county: medical_insurance's Xifeng office and person A of Huan county.
    let mut xifeng_mi = app.client_in("medical_insurance", Some(XIFENG)).await;
    let s = answer(&mut xifeng_mi, req(&a_id, pb::AnswerState::InProgress)).await.unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    // Unknown findings: C is insured (no UNINSURED row), and 2023Q1 was never frozen.
    for unknown in [format!("coverage/2023Q2/UNINSURED/{c_key}"), format!("coverage/2023Q1/UNINSURED/{c_key}")] {
        let s = answer(&mut mi, req(&unknown, pb::AnswerState::InProgress)).await.unwrap_err();
        assert_eq!(s.code(), Code::NotFound, "{unknown}: {s:?}");
    }
    // Bad input naming the field.
    for bad in [
        "coverage/2023Q2/UNINSURED".to_owned(),
        format!("coverage/2023Q2/NO_SUCH_RULE/{c_key}"),
        format!("coverage/2023Q9/UNINSURED/{c_key}"),
        "coverage/2023Q2/UNINSURED/not-a-key".to_owned(),
    ] {
        invalid_field(&answer(&mut mi, req(&bad, pb::AnswerState::InProgress)).await.unwrap_err(), "finding_id");
    }
    let by_settlement = Some(pb::FindingFix { fix: Some(pb::finding_fix::Fix::SettlementId("S-1".into())) });
    let s = answer(&mut mi, pb::AnswerFindingRequest { fixed_by: by_settlement, ..req(&a_id, pb::AnswerState::Fixed) })
        .await
        .unwrap_err();
    invalid_field(&s, "fixed_by.settlement_id");
    invalid_field(&answer(&mut mi, req(&a_id, pb::AnswerState::Fixed)).await.unwrap_err(), "fixed_by");
    invalid_field(&answer(&mut mi, req(&b_id, pb::AnswerState::Disputed)).await.unwrap_err(), "reason");

    // FIXED claims the stored facts do not support, each FAILED_PRECONDITION saying which check fails: a version not
    // stored; C's cover (another person); A's own enrolment, recorded before the snapshot; and a cover of 2022
    // pushed after the snapshot (2022-01-01 to 2023-01-01: on 2023-06-30 A is still uninsured for 2023).
    pushed(&mut mi, cover("MI-1-2022", &a, HUAN, 2022, "2022-01-01", "2023-01-01")).await;
    for (agency, fact_id, why) in [
        ("medical_insurance", "MI-1", "is not stored"),
        ("medical_insurance", "MI-3", "another person"),
        ("civil_affairs", "AS-1", "not after the snapshot"),
        ("medical_insurance", "MI-1-2022", "rule UNINSURED is still broken"),
    ] {
        let r = pb::AnswerFindingRequest {
            fixed_by: fixed_by_fact(agency, fact_id, 1),
            ..req(&a_id, pb::AnswerState::Fixed)
        };
        let s = answer(&mut mi, r).await.unwrap_err();
        assert_eq!(s.code(), Code::FailedPrecondition, "{fact_id}: {s:?}");
        assert!(s.message().contains(why), "{fact_id}: {s:?}");
    }
    assert!(events_of(&app, METHOD).await.is_empty(), "a refused answer keeps nothing and is not an answer event");

    // Answers: A IN_PROGRESS by the Huan office (v1), then A's 2023 cover from 2023-07-10 is pushed and FIXED holds
    // (v2); B DISPUTED; C unanswered.
    let a1 = answer(&mut huan_mi, req(&a_id, pb::AnswerState::InProgress)).await.unwrap();
    assert_eq!((a1.version, a1.state, a1.finding_id.as_str()), (1, IN_PROGRESS, a_id.as_str()));
    pushed(&mut mi, cover("MI-1", &a, HUAN, 2023, "2023-07-10", "")).await;
    let a2 = answer(
        &mut mi,
        pb::AnswerFindingRequest {
            fixed_by: fixed_by_fact("medical_insurance", "MI-1", 1),
            ..req(&a_id, pb::AnswerState::Fixed)
        },
    )
    .await
    .unwrap();
    assert_eq!((a2.version, a2.state), (2, FIXED));
    assert_eq!(a2.fixed_by, fixed_by_fact("medical_insurance", "MI-1", 1));
    let reason = "the person left for Xi'an in May 2023";
    let b1 =
        answer(&mut mi, pb::AnswerFindingRequest { reason: reason.into(), ..req(&b_id, pb::AnswerState::Disputed) })
            .await
            .unwrap();
    assert_eq!((b1.version, b1.state, b1.reason.as_str()), (1, DISPUTED, reason));
    assert_eq!(
        events_of(&app, METHOD).await,
        [format!("OK {a_id} v1 IN_PROGRESS"), format!("OK {a_id} v2 FIXED"), format!("OK {b_id} v1 DISPUTED")]
    );

    // Listed by answer.
    let state = |p: &str, s| ("UNINSURED".to_owned(), p.to_owned(), s);
    assert_eq!(listed(&mut mi, q2(pb::AnswerFilter::Fixed)).await, [state(&a, FIXED)].into());
    assert_eq!(listed(&mut mi, q2(pb::AnswerFilter::Disputed)).await, [state(&b, DISPUTED)].into());
    assert!(listed(&mut mi, q2(pb::AnswerFilter::InProgress)).await.is_empty());
    assert!(listed(&mut mi, q2(pb::AnswerFilter::Unanswered)).await.is_empty());
    assert_eq!(listed(&mut civil, q2(pb::AnswerFilter::Unanswered)).await, [aid.clone()].into());
    // A's history: both versions, oldest first, with the finding.
    let h = mi
        .medical
        .list_finding_answers(pb::ListFindingAnswersRequest { finding_id: a_id.clone(), purpose: "test".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(h.answers.iter().map(|x| (x.version, x.state)).collect::<Vec<_>>(), [(1, IN_PROGRESS), (2, FIXED)]);
    let f = h.coverage_finding.expect("the coverage finding");
    assert_eq!(
        (f.finding_id.as_str(), f.id_number.as_str(), f.agency_to_act.as_str()),
        (a_id.as_str(), a.as_str(), "medical_insurance")
    );
    assert!(h.finding.is_none());
    let s = edu
        .medical
        .list_finding_answers(pb::ListFindingAnswersRequest { finding_id: a_id.clone(), purpose: "test".into() })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");

    // A's finding explains itself from 2023Q2's status rows: enrolled in DIBAO (civil_affairs/AS-1/1), one of the
    // programs that must be insured, and no medical_insurance fact for 2023 in the snapshot.
    let e = mi.medical.explain_finding(pb::ExplainFindingRequest { finding_id: a_id.clone(), purpose: "test".into() });
    let e = e.await.unwrap().into_inner();
    let step = |name: &str| e.steps.iter().find(|l| l.name == name).map(|l| l.value.clone()).unwrap_or_default();
    assert_eq!(step("programs"), "DIBAO (civil_affairs/AS-1/1)");
    assert_eq!(step("insurance"), "none");
    assert_eq!(e.inputs.len(), 1, "the snapshot's one status row of A: {:?}", e.inputs);
    assert!(e.inputs[0].en.contains("civil_affairs/AS-1/1"), "{:?}", e.inputs);
    assert!(e.raised && e.matches_stored, "{e:?}");

    // D's medical findings: the cover for 2023 is pushed and NOT_INSURED answered FIXED by it, then resolved by a
    // recheck of 2023Q2's settlements; ASSISTANCE_MISSED is disputed and stays open.
    pushed(&mut mi, cover("MI-4", &d, HUAN, 2023, "2023-01-01", "")).await;
    let r = pb::AnswerFindingRequest {
        fixed_by: fixed_by_fact("medical_insurance", "MI-4", 1),
        ..req(d_uninsured, pb::AnswerState::Fixed)
    };
    assert_eq!(answer(&mut mi, r).await.unwrap().state, FIXED);
    let r = pb::AnswerFindingRequest {
        reason: "group 4 persons apply for assistance first".into(),
        ..req(d_missed, pb::AnswerState::Disputed)
    };
    assert_eq!(answer(&mut mi, r).await.unwrap().state, DISPUTED);
    let recheck = pb::RecheckPeriodRequest {
        from_date: "2023-04-01".into(),
        to_date: "2023-06-30".into(),
        purpose: "cover corrected".into(),
    };
    assert_eq!(mi.medical.recheck_period(recheck).await.unwrap().into_inner().findings_resolved, 1);

    // 2023Q3 frozen on 2023-10-08: A is insured for 2023 from 2023-07-10 (no longer UNINSURED), B still is, C still
    // has no aid.
    set_clock(&app, "2023-10-08T02:00:00Z");
    civil.coordination.create_snapshot(pb::CreateSnapshotRequest { quarter: "2023Q3".into() }).await.unwrap();
    assert_eq!(
        listed(&mut civil, list_req("2023Q3", all)).await,
        [uninsured(&b), aid.clone()].into(),
        "A's finding is gone: the fix holds"
    );
    let mut lg = app.client("leading_group").await;
    let s = lg
        .coordination
        .get_quarterly_summary(pb::GetQuarterlySummaryRequest { quarter: "2023Q3".into() })
        .await
        .unwrap()
        .into_inner();
    let summary: doudi::domain::summary::QuarterlySummary =
        serde_json::from_value(doudi::grpc::snapshot::struct_to_json(s.summary.unwrap())).unwrap();
    use doudi::domain::summary::AgencyFindings;
    // By hand: education 1 finding (C), unanswered, raised again. medical_insurance 2 findings: A fixed and not
    // raised again (confirmed), B disputed and raised again (still open); A's FIXED came within the test run,
    // less than a day after the 2023Q2 cutoff: 0 whole days.
    assert_eq!(
        summary.findings_by_agency,
        [
            AgencyFindings {
                agency: "education".into(),
                raised_in: "2023Q2".into(),
                findings: 1,
                fixed: 0,
                confirmed_fixed: 0,
                disputed: 0,
                in_progress: 0,
                unanswered: 1,
                still_open: 1,
                median_days_to_fix: None,
            },
            AgencyFindings {
                agency: "medical_insurance".into(),
                raised_in: "2023Q2".into(),
                findings: 2,
                fixed: 1,
                confirmed_fixed: 1,
                disputed: 1,
                in_progress: 0,
                unanswered: 0,
                still_open: 1,
                median_days_to_fix: Some(0),
            },
        ]
    );
    // Medical, by hand: 2023Q2's settlement D-1 raised 2 findings naming medical_insurance: NOT_INSURED fixed and
    // resolved before 2023Q3's cutoff (confirmed), ASSISTANCE_MISSED disputed and open (still open); fixed within
    // the test run: 0 days.
    assert_eq!(
        summary.medical_findings_by_agency,
        [AgencyFindings {
            agency: "medical_insurance".into(),
            raised_in: "2023Q2".into(),
            findings: 2,
            fixed: 1,
            confirmed_fixed: 1,
            disputed: 1,
            in_progress: 0,
            unanswered: 0,
            still_open: 1,
            median_days_to_fix: Some(0),
        }]
    );
    // 2023Q2's summary has no previous quarter: no section 11.
    let s = lg
        .coordination
        .get_quarterly_summary(pb::GetQuarterlySummaryRequest { quarter: "2023Q2".into() })
        .await
        .unwrap()
        .into_inner();
    let q2_summary: doudi::domain::summary::QuarterlySummary =
        serde_json::from_value(doudi::grpc::snapshot::struct_to_json(s.summary.unwrap())).unwrap();
    assert!(q2_summary.findings_by_agency.is_empty() && q2_summary.medical_findings_by_agency.is_empty());
    app.stop().await;
}
