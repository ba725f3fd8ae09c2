//! Answers to findings (issue 19 item 1, docs/findings.md) end to end: AnswerFinding's refusals (another agency, a
//! county office outside its county, an agency without findings, an unknown finding, bad input naming the field), a
//! FIXED the stored facts support (a later fact version, a settlement correction) and FIXED claims they do not (a
//! version recorded before the finding, another person's, one not stored), versions kept, one audit event per answer
//! written with it, ListFindingAnswers, and ListFindings carrying the latest answer and filtering by it.
//!
//! The findings are docs/spec/medical.md's example B (tests/api/medical.rs): a DIBAO_MARGINAL person (group 3), scope
//! 10,000.00, basic paid 6,000.00: after basic 4,000.00, CII 0.00 (under the 10,000.00 deductible), MA owed
//! (4,000 − 2,000) × 65% = 1,300.00, nothing paid: ASSISTANCE_MISSED, agency to act medical_insurance.

use doudi::client::Clients;
use doudi::grpc::pb;
use doudi::store::AuditFilter;
use macro_rules_attribute::apply;
use tonic::Code;

use crate::support::*;

const HUAN: &str = "621022";
const XIFENG: &str = "621002";
const METHOD: &str = "/doudi.v1.MedicalAssistance/AnswerFinding";

/// Example B's amounts: total 12,000.00 = basic 6,000.00 + 0 + 0 + 0 + out of pocket 6,000.00; scope 10,000.00.
fn example_b(id: &str, person: &str, county: &str) -> pb::Settlement {
    pb::Settlement {
        settlement_id: id.into(),
        id_number: person.into(),
        division_code: county.into(),
        admitted_on: "2023-04-01".into(),
        settled_on: "2023-04-10".into(),
        visit_type: pb::VisitType::Inpatient as i32,
        in_province: true,
        referred: false,
        total_cost: "12000.00".into(),
        policy_scope_cost: "10000.00".into(),
        basic_paid: "6000.00".into(),
        critical_illness_paid: "0.00".into(),
        medical_assistance_paid: "0.00".into(),
        other_paid: "0.00".into(),
        out_of_pocket: "6000.00".into(),
    }
}

fn marginal() -> pb::fact::Payload {
    pb::fact::Payload::Assistance(pb::Assistance {
        program: pb::Program::DibaoMarginal as i32,
        household_id: "HH-A".into(),
        status: pb::AssistanceStatus::Active as i32,
        ..Default::default()
    })
}

/// medical_insurance's cover fact `fact_id` of `person`, version `v`, valid from 2023-01-01 to `valid_to`.
fn cover(fact_id: &str, person: &str, county: &str, v: u64, valid_to: &str) -> pb::Fact {
    let mut f = with(base(fact_id, person, county), medical_insurance());
    f.source_version = v;
    f.valid_to = valid_to.into();
    f
}

async fn pushed(c: &mut Clients, f: pb::Fact) {
    let r = push(c, vec![f]).await.unwrap();
    let o = outcome(&r.results[0]);
    assert!(matches!(o, pb::FactOutcome::Accepted | pb::FactOutcome::NewVersion), "{r:?}");
}

fn req(finding_id: &str, state: pb::AnswerState) -> pb::AnswerFindingRequest {
    pb::AnswerFindingRequest {
        finding_id: finding_id.into(),
        state: state as i32,
        purpose: "answers test".into(),
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

async fn listed(c: &mut Clients, filter: pb::AnswerFilter) -> Vec<pb::Finding> {
    c.medical
        .list_findings(pb::ListFindingsRequest {
            answer: filter as i32,
            purpose: "answers test".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .findings
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

/// The outcomes of the hub's AnswerFinding audit events, oldest first.
async fn answer_events(app: &TestApp) -> Vec<String> {
    events_of(app, METHOD).await
}

const HUAN_B: &str = "medical/medical_insurance/B-621022/ASSISTANCE_MISSED";
const XIFENG_B: &str = "medical/medical_insurance/B-621002/ASSISTANCE_MISSED";

/// Two example-B findings, one in Huan county, one in Xifeng district; returns (Huan person, Xifeng person).
async fn two_findings(app: &TestApp) -> (String, String) {
    let huan = id(HUAN, (1962, 2, 2), 601);
    let xifeng = id(XIFENG, (1962, 2, 2), 602);
    let mut civil = app.client("civil_affairs").await;
    let mut mi = app.client("medical_insurance").await;
    for (person, county) in [(&huan, HUAN), (&xifeng, XIFENG)] {
        pushed(&mut civil, with(base(&format!("AS-{county}"), person, county), marginal())).await;
        pushed(&mut mi, cover(&format!("MI-{county}"), person, county, 1, "2024-01-01")).await;
        let r = mi
            .medical
            .submit_settlements(pb::SubmitSettlementsRequest {
                settlements: vec![example_b(&format!("B-{county}"), person, county)],
            })
            .await
            .unwrap()
            .into_inner();
        let ids: Vec<&str> = r.results[0].findings.iter().map(|f| f.finding_id.as_str()).collect();
        assert_eq!(ids, [format!("medical/medical_insurance/B-{county}/ASSISTANCE_MISSED")], "{r:?}");
    }
    (huan, xifeng)
}

#[apply(e2e!)]
#[tokio::test]
async fn answers_are_refused_to_others_and_for_bad_input() {
    let app = spawn_app().await;
    two_findings(&app).await;

    // Another agency: civil_affairs reads findings but ASSISTANCE_MISSED names medical_insurance.
    let mut civil = app.client("civil_affairs").await;
    let s = answer(&mut civil, req(HUAN_B, pb::AnswerState::InProgress)).await.unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    assert!(s.message().contains("medical_insurance"), "{s:?}");
    // An agency without findings at all.
    let mut hr = app.client("human_resources").await;
    let s = answer(&mut hr, req(HUAN_B, pb::AnswerState::InProgress)).await.unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    // medical_insurance's Xifeng office: not its county.
    let mut xifeng_office = app.client_in("medical_insurance", Some(XIFENG)).await;
    let s = answer(&mut xifeng_office, req(HUAN_B, pb::AnswerState::InProgress)).await.unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");

    // Unknown findings: no such settlement, and a code the settlement did not raise.
    let mut mi = app.client("medical_insurance").await;
    for unknown in
        ["medical/medical_insurance/B-NONE/ASSISTANCE_MISSED", "medical/medical_insurance/B-621022/OVER_ASSISTED"]
    {
        let s = answer(&mut mi, req(unknown, pb::AnswerState::InProgress)).await.unwrap_err();
        assert_eq!(s.code(), Code::NotFound, "{unknown}: {s:?}");
    }

    // Bad input, each naming its field.
    for bad in ["", "coverage/2023Q2/X/Y", "medical/medical_insurance/B-621022/NO_SUCH_CODE"] {
        let s = answer(&mut mi, req(bad, pb::AnswerState::InProgress)).await.unwrap_err();
        invalid_field(&s, "finding_id");
    }
    let s = answer(&mut mi, req(HUAN_B, pb::AnswerState::Unspecified)).await.unwrap_err();
    invalid_field(&s, "state");
    let s = answer(&mut mi, pb::AnswerFindingRequest { state: 9, ..req(HUAN_B, pb::AnswerState::InProgress) })
        .await
        .unwrap_err();
    invalid_field(&s, "state");
    // DISPUTED needs at least 10 characters: "too short" is 9.
    let s = answer(
        &mut mi,
        pb::AnswerFindingRequest { reason: "too short".into(), ..req(HUAN_B, pb::AnswerState::Disputed) },
    )
    .await
    .unwrap_err();
    invalid_field(&s, "reason");
    let s = answer(&mut mi, req(HUAN_B, pb::AnswerState::Disputed)).await.unwrap_err();
    invalid_field(&s, "reason");
    // FIXED without a fix, and a fix on IN_PROGRESS.
    let s = answer(&mut mi, req(HUAN_B, pb::AnswerState::Fixed)).await.unwrap_err();
    invalid_field(&s, "fixed_by");
    let s = answer(
        &mut mi,
        pb::AnswerFindingRequest {
            fixed_by: fixed_by_fact("medical_insurance", "MI-621022", 1),
            ..req(HUAN_B, pb::AnswerState::InProgress)
        },
    )
    .await
    .unwrap_err();
    invalid_field(&s, "fixed_by");
    let s = answer(
        &mut mi,
        pb::AnswerFindingRequest {
            fixed_by: fixed_by_fact("medical_insurance", "MI-621022", u64::MAX),
            ..req(HUAN_B, pb::AnswerState::Fixed)
        },
    )
    .await
    .unwrap_err();
    invalid_field(&s, "fixed_by.fact_version.source_version");

    // Nothing kept, nothing audited as an answer.
    assert!(answer_events(&app).await.is_empty());
    let mut civil = app.client("civil_affairs").await;
    let h = civil
        .medical
        .list_finding_answers(pb::ListFindingAnswersRequest { finding_id: HUAN_B.into(), purpose: "test".into() })
        .await
        .unwrap()
        .into_inner();
    assert!(h.answers.is_empty());
    assert_eq!(h.finding.unwrap().finding_id, HUAN_B);
    let s = civil
        .medical
        .list_finding_answers(pb::ListFindingAnswersRequest {
            finding_id: "medical/medical_insurance/B-NONE/ASSISTANCE_MISSED".into(),
            purpose: "test".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::NotFound);
    // The read of a stored finding's history is audited; the unknown finding's NOT_FOUND is not an answer.
    assert_eq!(
        events_of(&app, "/doudi.v1.MedicalAssistance/ListFindingAnswers").await,
        [format!("OK {HUAN_B} answers=0")]
    );
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn fixed_is_checked_against_the_facts_and_answers_are_versioned_audited_and_listed() {
    let app = spawn_app().await;
    let (huan, _xifeng) = two_findings(&app).await;
    let mut mi = app.client("medical_insurance").await;

    // v1: IN_PROGRESS by the Huan county office (its county).
    let mut huan_office = app.client_in("medical_insurance", Some(HUAN)).await;
    let a1 = answer(&mut huan_office, req(HUAN_B, pb::AnswerState::InProgress)).await.unwrap();
    assert_eq!((a1.version, a1.state), (1, pb::AnswerState::InProgress as i32));
    assert_eq!(a1.finding_id, HUAN_B);
    assert!(a1.answered_by.ends_with("/division/621022"), "{}", a1.answered_by);

    // FIXED claims the facts do not support: the cover version pushed before the finding was raised, the Xifeng
    // person's cover, and a version never pushed. Each FAILED_PRECONDITION; nothing kept.
    for (fact_id, v, why) in [
        ("MI-621022", 1, "not after the finding"),
        ("MI-621002", 1, "another person"),
        ("MI-621022", 7, "is not stored"),
    ] {
        let s = answer(
            &mut mi,
            pb::AnswerFindingRequest {
                fixed_by: fixed_by_fact("medical_insurance", fact_id, v),
                ..req(HUAN_B, pb::AnswerState::Fixed)
            },
        )
        .await
        .unwrap_err();
        assert_eq!(s.code(), Code::FailedPrecondition, "{fact_id} v{v}: {s:?}");
        assert!(s.message().contains(why), "{fact_id} v{v}: {s:?}");
    }

    // The cover corrected after the finding (version 2: valid to 2024-02-01): FIXED holds, v2.
    pushed(&mut mi, cover("MI-621022", &huan, HUAN, 2, "2024-02-01")).await;
    let a2 = answer(
        &mut mi,
        pb::AnswerFindingRequest {
            fixed_by: fixed_by_fact("medical_insurance", "MI-621022", 2),
            reason: "cover corrected".into(),
            ..req(HUAN_B, pb::AnswerState::Fixed)
        },
    )
    .await
    .unwrap();
    assert_eq!((a2.version, a2.state), (2, pb::AnswerState::Fixed as i32));
    assert_eq!(a2.fixed_by, fixed_by_fact("medical_insurance", "MI-621022", 2));
    assert_eq!(a2.reason, "cover corrected");

    // The Xifeng finding: DISPUTED (v1) with a reason of 10+ characters; then FIXED by a settlement correction
    // submitted after it (v2), while a settlement of the Huan person does not fix it.
    let x1 = answer(
        &mut mi,
        pb::AnswerFindingRequest {
            reason: "the hospital applied the 2022 deductible".into(),
            ..req(XIFENG_B, pb::AnswerState::Disputed)
        },
    )
    .await
    .unwrap();
    assert_eq!((x1.version, x1.state), (1, pb::AnswerState::Disputed as i32));
    let xifeng = id(XIFENG, (1962, 2, 2), 602);
    // The correction: MA paid 1,300.00 (as owed); total 12,000.00 = 6,000.00 + 0 + 1,300.00 + 0 + 4,700.00.
    let mut corr = example_b("B-621002-C", &xifeng, XIFENG);
    corr.admitted_on = "2023-05-01".into();
    corr.settled_on = "2023-05-10".into();
    corr.medical_assistance_paid = "1300.00".into();
    corr.out_of_pocket = "4700.00".into();
    mi.medical.submit_settlements(pb::SubmitSettlementsRequest { settlements: vec![corr] }).await.unwrap();
    let by_settlement = |sid: &str| Some(pb::FindingFix { fix: Some(pb::finding_fix::Fix::SettlementId(sid.into())) });
    let s = answer(
        &mut mi,
        pb::AnswerFindingRequest { fixed_by: by_settlement("B-621022"), ..req(XIFENG_B, pb::AnswerState::Fixed) },
    )
    .await
    .unwrap_err();
    assert_eq!(s.code(), Code::FailedPrecondition, "{s:?}");
    let x2 = answer(
        &mut mi,
        pb::AnswerFindingRequest { fixed_by: by_settlement("B-621002-C"), ..req(XIFENG_B, pb::AnswerState::Fixed) },
    )
    .await
    .unwrap();
    assert_eq!((x2.version, x2.state), (2, pb::AnswerState::Fixed as i32));

    // Versions kept: the history of each finding, oldest first.
    let mut civil = app.client("civil_affairs").await;
    let history = |id: &str| pb::ListFindingAnswersRequest { finding_id: id.into(), purpose: "test".into() };
    let h = civil.medical.list_finding_answers(history(HUAN_B)).await.unwrap().into_inner();
    let states: Vec<(i64, i32)> = h.answers.iter().map(|a| (a.version, a.state)).collect();
    assert_eq!(states, [(1, pb::AnswerState::InProgress as i32), (2, pb::AnswerState::Fixed as i32)]);
    assert_eq!(h.answers[0], a1);
    assert_eq!(h.answers[1], a2);
    assert_eq!(h.finding.as_ref().unwrap().id_number, huan);
    // A county office reads only its county's findings' answers.
    let mut xifeng_civil = app.client_in("civil_affairs", Some(XIFENG)).await;
    let s = xifeng_civil.medical.list_finding_answers(history(HUAN_B)).await.unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);

    // One audit event per answer kept, in order, naming the finding, the version and the state.
    assert_eq!(
        answer_events(&app).await,
        [
            format!("OK {HUAN_B} v1 IN_PROGRESS"),
            format!("OK {HUAN_B} v2 FIXED"),
            format!("OK {XIFENG_B} v1 DISPUTED"),
            format!("OK {XIFENG_B} v2 FIXED"),
        ]
    );

    // ListFindings: the latest answer with each finding, and the filter by it. The correction's recheck may have
    // resolved the Xifeng finding (include_resolved is off), so the filter is checked on the Huan finding and on
    // what the list holds.
    let all = listed(&mut civil, pb::AnswerFilter::Unspecified).await;
    let huan_f = all.iter().find(|f| f.finding_id == HUAN_B).expect("Huan finding listed");
    assert_eq!(huan_f.answer.as_ref(), Some(&a2));
    let fixed: Vec<String> =
        listed(&mut civil, pb::AnswerFilter::Fixed).await.into_iter().map(|f| f.finding_id).collect();
    assert!(fixed.contains(&HUAN_B.to_owned()), "{fixed:?}");
    assert!(listed(&mut civil, pb::AnswerFilter::InProgress).await.is_empty(), "v1's IN_PROGRESS is not the latest");
    assert!(listed(&mut civil, pb::AnswerFilter::Disputed).await.is_empty(), "the dispute was superseded by FIXED");
    let unanswered: Vec<String> =
        listed(&mut civil, pb::AnswerFilter::Unanswered).await.into_iter().map(|f| f.finding_id).collect();
    assert!(!unanswered.contains(&HUAN_B.to_owned()) && !unanswered.contains(&XIFENG_B.to_owned()), "{unanswered:?}");
    // Every listed finding is in exactly one of the answer filters' lists.
    assert_eq!(fixed.len() + unanswered.len(), all.len(), "{all:#?}");

    // A new answer after FIXED is a new version again: IN_PROGRESS v3 (reopened), and the filters follow it.
    // Its note names the person's ID number: kept masked (free text never carries a full ID number).
    let a3 = answer(
        &mut mi,
        pb::AnswerFindingRequest {
            reason: format!("reopened: {huan} was admitted again"),
            ..req(HUAN_B, pb::AnswerState::InProgress)
        },
    )
    .await
    .unwrap();
    assert_eq!(a3.version, 3);
    assert_eq!(a3.reason, format!("reopened: {}********{} was admitted again", &huan[..6], &huan[14..]));
    let in_progress: Vec<String> =
        listed(&mut civil, pb::AnswerFilter::InProgress).await.into_iter().map(|f| f.finding_id).collect();
    assert_eq!(in_progress, [HUAN_B]);
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn high_burden_names_civil_affairs_and_only_civil_affairs_answers_it() {
    let app = spawn_app().await;
    // tests/api/medical.rs' HIGH_BURDEN: a person in no assistance program, insured. HB-1: out of pocket 12,000.00;
    // HB-2: 9,000.00; trailing 12 months 12,000 + 9,000 = 21,000.00 ≥ the threshold 20,000.00 → HIGH_BURDEN on
    // HB-2, agency to act civil_affairs. HB-1: total 24,000.00 = 12,000.00 + 0 + 0 + 0 + 12,000.00 (scope
    // 20,000.00); HB-2: total 20,400.00 = 9,000.00 + CII 2,400.00 + 0 + 0 + 9,000.00 (scope 15,000.00).
    let person = id(HUAN, (1970, 5, 5), 605);
    let mut mi = app.client("medical_insurance").await;
    pushed(&mut mi, cover("MI-HB", &person, HUAN, 1, "2024-01-01")).await;
    let mut hb1 = example_b("HB-1", &person, HUAN);
    (hb1.admitted_on, hb1.settled_on) = ("2023-03-01".into(), "2023-03-10".into());
    (hb1.total_cost, hb1.policy_scope_cost, hb1.basic_paid, hb1.out_of_pocket) =
        ("24000.00".into(), "20000.00".into(), "12000.00".into(), "12000.00".into());
    let mut hb2 = example_b("HB-2", &person, HUAN);
    (hb2.admitted_on, hb2.settled_on) = ("2023-08-01".into(), "2023-08-10".into());
    (hb2.total_cost, hb2.policy_scope_cost, hb2.basic_paid, hb2.critical_illness_paid, hb2.out_of_pocket) =
        ("20400.00".into(), "15000.00".into(), "9000.00".into(), "2400.00".into(), "9000.00".into());
    let r = mi
        .medical
        .submit_settlements(pb::SubmitSettlementsRequest { settlements: vec![hb1, hb2] })
        .await
        .unwrap()
        .into_inner();
    const HB: &str = "medical/medical_insurance/HB-2/HIGH_BURDEN";
    let ids: Vec<&str> = r.results.iter().flat_map(|r| r.findings.iter().map(|f| f.finding_id.as_str())).collect();
    assert_eq!(ids, [HB], "{r:#?}");

    // medical_insurance submitted the settlement but is not the agency to act.
    let s = answer(&mut mi, req(HB, pb::AnswerState::InProgress)).await.unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    assert!(s.message().contains("civil_affairs"), "{s:?}");

    // civil_affairs enrols the person afterwards (ILLNESS_IMPOVERISHED) and says that fixes it: the fact version is
    // stored, the person's, recorded after the finding: FIXED holds. Its Huan office answers too (v2).
    let mut civil = app.client("civil_affairs").await;
    let enrol = pb::fact::Payload::Assistance(pb::Assistance {
        program: pb::Program::IllnessImpoverished as i32,
        household_id: "HH-HB".into(),
        status: pb::AssistanceStatus::Active as i32,
        ..Default::default()
    });
    pushed(&mut civil, with(base("AS-HB", &person, HUAN), enrol)).await;
    let a = answer(
        &mut civil,
        pb::AnswerFindingRequest {
            fixed_by: fixed_by_fact("civil_affairs", "AS-HB", 1),
            ..req(HB, pb::AnswerState::Fixed)
        },
    )
    .await
    .unwrap();
    assert_eq!((a.version, a.state), (1, pb::AnswerState::Fixed as i32));
    let mut huan_civil = app.client_in("civil_affairs", Some(HUAN)).await;
    let a = answer(&mut huan_civil, req(HB, pb::AnswerState::InProgress)).await.unwrap();
    assert_eq!(a.version, 2);
    app.stop().await;
}
