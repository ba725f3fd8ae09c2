//! `doudi.v1.Coordination`: fund reports (on time, late, missing, corrections, roster mismatch) and the
//! early-warning workflow (states, the worked deadlines of docs/domain/policy-reference.md, overdue lateness), with the
//! access rules and county scope. Expected values come from docs/spec/coordination.md, docs/domain/policy-reference.md
//! and the facts each test pushes.

use chrono::{DateTime, Utc};
use doudi::client::Clients;
use doudi::grpc::pb;
use macro_rules_attribute::apply;
use tonic::Code;

use crate::support::*;

const HUAN: &str = "621022";
const XIFENG: &str = "621002";

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn ts(s: &str) -> Option<prost_types::Timestamp> {
    let t = at(s);
    Some(prost_types::Timestamp { seconds: t.timestamp(), nanos: 0 })
}

fn report(county: &str, month: &str, program: pb::FundProgram, amount: &str) -> pb::SubmitFundReportRequest {
    pb::SubmitFundReportRequest {
        county_code: county.into(),
        month: month.into(),
        program: program as i32,
        disbursed_on: format!("{month}-10"),
        amount: amount.into(),
        recipients: 3,
    }
}

async fn submit(c: &mut Clients, r: pb::SubmitFundReportRequest) -> Result<pb::FundReport, tonic::Status> {
    c.coordination.submit_fund_report(r).await.map(|r| r.into_inner().report.unwrap())
}

async fn list_reports(
    c: &mut Clients,
    month: &str,
    program: pb::FundProgram,
    as_of: &str,
) -> Result<Vec<pb::FundReportRow>, tonic::Status> {
    c.coordination
        .list_fund_reports(pb::ListFundReportsRequest {
            month: month.into(),
            program: program as i32,
            as_of: as_of.into(),
            include_history: true,
        })
        .await
        .map(|r| r.into_inner().rows)
}

fn row<'a>(rows: &'a [pb::FundReportRow], county: &str) -> &'a pb::FundReportRow {
    rows.iter().find(|r| r.county_code == county).unwrap()
}

fn status(r: &pb::FundReportRow) -> pb::ReportStatus {
    pb::ReportStatus::try_from(r.status).unwrap()
}

fn warning(id: &str, id_number: &str, division: &str, received: &str) -> pb::WarningIn {
    pb::WarningIn {
        warning_id: id.into(),
        id_number: id_number.into(),
        division_code: division.into(),
        reason: pb::WarningReason::IncomeDrop as i32,
        received_at: ts(received),
    }
}

async fn push_warnings(c: &mut Clients, w: Vec<pb::WarningIn>) -> Result<Vec<pb::WarningPushOutcome>, tonic::Status> {
    c.coordination
        .push_warnings(pb::PushWarningsRequest { warnings: w })
        .await
        .map(|r| r.into_inner().outcomes.into_iter().map(|o| pb::WarningPushOutcome::try_from(o).unwrap()).collect())
}

async fn list_warnings(
    c: &mut Clients,
    filter: pb::WarningFilter,
    as_of: &str,
) -> Result<pb::ListWarningsResponse, tonic::Status> {
    c.coordination
        .list_warnings(pb::ListWarningsRequest {
            filter: filter as i32,
            as_of: as_of.into(),
            purpose: "test".into(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

fn step(id: &str, s: pb::record_warning_outcome_request::Step) -> pb::RecordWarningOutcomeRequest {
    pb::RecordWarningOutcomeRequest { warning_id: id.into(), step: Some(s) }
}

fn visit(id: &str, on: &str) -> pb::RecordWarningOutcomeRequest {
    step(id, pb::record_warning_outcome_request::Step::Visit(pb::WarningVisit { visited_on: on.into() }))
}

fn decide(id: &str, on: &str, d: pb::WarningDecision, p: pb::FundProgram) -> pb::RecordWarningOutcomeRequest {
    step(
        id,
        pb::record_warning_outcome_request::Step::Decision(pb::WarningDecisionStep {
            decided_on: on.into(),
            decision: d as i32,
            program: p as i32,
        }),
    )
}

fn close(id: &str, on: &str) -> pb::RecordWarningOutcomeRequest {
    step(id, pb::record_warning_outcome_request::Step::Close(pb::WarningClose { closed_on: on.into() }))
}

fn find<'a>(r: &'a pb::ListWarningsResponse, id: &str) -> &'a pb::Warning {
    r.warnings.iter().find(|w| w.warning_id == id).unwrap()
}

#[apply(e2e!)]
#[tokio::test]
async fn report_timeliness_follows_the_shanghai_date_and_missing_waits_for_month_end() {
    let app = spawn_app().await;
    let mut civil = app.client("civil_affairs").await;
    // 2023-07-15T15:59:59Z is 23:59:59 on the 15th in Shanghai: on time.
    app.app_hub.clock.set(Some(at("2023-07-15T15:59:59Z")));
    let r = submit(&mut civil, report(HUAN, "2023-07", pb::FundProgram::TemporaryAssistance, "5000.00")).await.unwrap();
    assert_eq!(r.version, 1);
    assert_eq!(r.status, pb::ReportStatus::OnTime as i32);
    // 2023-07-15T16:30:00Z is already the 16th in Shanghai: late.
    app.app_hub.clock.set(Some(at("2023-07-15T16:30:00Z")));
    submit(&mut civil, report(XIFENG, "2023-07", pb::FundProgram::TemporaryAssistance, "6000.00")).await.unwrap();

    // Before the month ends, a county with nothing is PENDING; from the 1st of the next month MISSING.
    let rows = list_reports(&mut civil, "2023-07", pb::FundProgram::TemporaryAssistance, "2023-07-31").await.unwrap();
    assert_eq!(rows.len(), 8, "every county is listed");
    assert_eq!(status(row(&rows, HUAN)), pb::ReportStatus::OnTime);
    assert_eq!(status(row(&rows, XIFENG)), pb::ReportStatus::Late);
    assert_eq!(status(row(&rows, "621027")), pb::ReportStatus::Pending);
    let rows = list_reports(&mut civil, "2023-07", pb::FundProgram::TemporaryAssistance, "2023-08-01").await.unwrap();
    assert_eq!(rows.iter().filter(|r| status(r) == pb::ReportStatus::Missing).count(), 6);
    assert_eq!(row(&rows, "621027").county_name, "镇原县");
    assert!(row(&rows, HUAN).expected_amount.is_empty(), "not a roster program");

    // A correction after the 15th is a new version; timeliness stays with the first version; history kept.
    app.app_hub.clock.set(Some(at("2023-07-20T02:00:00Z")));
    let v2 =
        submit(&mut civil, report(HUAN, "2023-07", pb::FundProgram::TemporaryAssistance, "5100.00")).await.unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(v2.status, pb::ReportStatus::Late as i32, "this version alone came late");
    let rows = list_reports(&mut civil, "2023-07", pb::FundProgram::TemporaryAssistance, "2023-08-01").await.unwrap();
    let huan = row(&rows, HUAN);
    assert_eq!(status(huan), pb::ReportStatus::OnTime);
    assert_eq!(huan.latest.as_ref().unwrap().amount, "5100.00");
    let amounts: Vec<&str> = huan.history.iter().map(|h| h.amount.as_str()).collect();
    assert_eq!(amounts, ["5000.00", "5100.00"]);

    // All programs: 8 counties × 10 programs.
    let all = list_reports(&mut civil, "2023-07", pb::FundProgram::Unspecified, "2023-08-01").await.unwrap();
    assert_eq!(all.len(), 80);
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn roster_mismatch_is_flagged_with_both_amounts() {
    let app = spawn_app().await;
    let mut civil = app.client("civil_affairs").await;
    // Three rural class-2 dibao persons at 442.00 in Huan county, active from 2023-01-01: 3 × 442.00 = 1,326.00.
    let mut facts: Vec<pb::Fact> = (1..=3)
        .map(|i| with(base(&format!("A-{i}"), &id(HUAN, (1960, 1, i), 10 + i as u16), "621022100"), rural_dibao()))
        .collect();
    // Not counted: a suspended one, one that ended before July's last day, an urban one, one in another county.
    let mut suspended = rural_dibao();
    if let pb::fact::Payload::Assistance(a) = &mut suspended {
        a.status = pb::AssistanceStatus::Suspended as i32;
    }
    facts.push(with(base("A-4", &id(HUAN, (1960, 2, 1), 20), HUAN), suspended));
    let mut ended = with(base("A-5", &id(HUAN, (1960, 2, 2), 21), HUAN), rural_dibao());
    ended.valid_to = "2023-07-31".into();
    facts.push(ended);
    facts.push(with(base("A-6", &id(HUAN, (1960, 2, 3), 22), HUAN), urban_dibao()));
    facts.push(with(base("A-7", &id(XIFENG, (1960, 2, 4), 23), XIFENG), rural_dibao()));
    let pushed = push(&mut civil, facts).await.unwrap();
    assert!(pushed.results.iter().all(|r| outcome(r) == pb::FactOutcome::Accepted), "{pushed:?}");

    app.app_hub.clock.set(Some(at("2023-07-10T02:00:00Z")));
    submit(&mut civil, report(HUAN, "2023-07", pb::FundProgram::RuralDibao, "1326.00")).await.unwrap();
    let rows = list_reports(&mut civil, "2023-07", pb::FundProgram::RuralDibao, "2023-08-01").await.unwrap();
    assert_eq!(row(&rows, HUAN).expected_amount, "1326.00");
    assert_eq!(row(&rows, HUAN).finding, "");
    assert_eq!(row(&rows, XIFENG).expected_amount, "442.00");

    // Exactly the tolerance (1.00) is not a mismatch; 26.00 off is.
    submit(&mut civil, report(HUAN, "2023-07", pb::FundProgram::RuralDibao, "1327.00")).await.unwrap();
    let rows = list_reports(&mut civil, "2023-07", pb::FundProgram::RuralDibao, "2023-08-01").await.unwrap();
    assert_eq!(row(&rows, HUAN).finding, "");
    submit(&mut civil, report(HUAN, "2023-07", pb::FundProgram::RuralDibao, "1300.00")).await.unwrap();
    let rows = list_reports(&mut civil, "2023-07", pb::FundProgram::RuralDibao, "2023-08-01").await.unwrap();
    let huan = row(&rows, HUAN);
    assert_eq!(huan.finding, "DISBURSEMENT_MISMATCH");
    assert_eq!(huan.expected_amount, "1326.00");
    assert_eq!(huan.latest.as_ref().unwrap().amount, "1300.00");
    assert_eq!(huan.history.len(), 3);
    // Urban dibao of Huan: the one urban person at 700.00.
    let rows = list_reports(&mut civil, "2023-07", pb::FundProgram::UrbanDibao, "2023-08-01").await.unwrap();
    assert_eq!(row(&rows, HUAN).expected_amount, "700.00");
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn county_offices_report_and_handle_warnings_for_their_own_county_only() {
    let app = spawn_app().await;
    let mut huan = app.client_in("civil_affairs", Some(HUAN)).await;
    let mut city = app.client("civil_affairs").await;
    submit(&mut huan, report(HUAN, "2023-07", pb::FundProgram::Tekun, "100.00")).await.unwrap();
    let e = submit(&mut huan, report(XIFENG, "2023-07", pb::FundProgram::Tekun, "100.00")).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains(XIFENG) && e.message().contains(HUAN), "{}", e.message());
    let r = submit(&mut city, report(XIFENG, "2023-07", pb::FundProgram::Tekun, "100.00")).await.unwrap();
    assert_eq!(r.submitted_by, "civil_affairs");

    let person = id(XIFENG, (1980, 1, 1), 1);
    let e = push_warnings(&mut huan, vec![warning("W-X", &person, XIFENG, "2023-09-28T02:00:00Z")]).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains(XIFENG), "{}", e.message());
    push_warnings(&mut city, vec![warning("W-X", &person, XIFENG, "2023-09-28T02:00:00Z")]).await.unwrap();
    let e = huan.coordination.record_warning_outcome(visit("W-X", "2023-09-29")).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = huan
        .coordination
        .list_warnings(pb::ListWarningsRequest { division_code: XIFENG.into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let own = list_warnings(&mut huan, pb::WarningFilter::Unspecified, "2023-09-28").await.unwrap();
    assert_eq!(own.total_size, 0, "the Xifeng warning is not in Huan's list");
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn only_civil_affairs_pushes_and_reads_warnings_and_leading_group_reads_fund_reports() {
    let app = spawn_app().await;
    let person = id(HUAN, (1980, 1, 1), 1);
    for agency in ["human_resources", "education", "medical_insurance", "disability_federation", "leading_group"] {
        let mut c = app.client(agency).await;
        let e = submit(&mut c, report(HUAN, "2023-07", pb::FundProgram::Tekun, "1.00")).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{agency} submit");
        let e = push_warnings(&mut c, vec![warning("W-1", &person, HUAN, "2023-09-28T02:00:00Z")]).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{agency} push");
        let e = list_warnings(&mut c, pb::WarningFilter::Unspecified, "").await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{agency} list warnings");
        let e = c.coordination.record_warning_outcome(visit("W-1", "2023-09-29")).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{agency} record");
        let listed = list_reports(&mut c, "2023-07", pb::FundProgram::Tekun, "2023-08-01").await;
        if agency == "leading_group" {
            assert_eq!(listed.unwrap().len(), 8, "fund reports are aggregates");
        } else {
            assert_eq!(listed.unwrap_err().code(), Code::PermissionDenied, "{agency} list reports");
        }
    }
    assert_eq!(app.app_hub.store.coordination_counts().await.unwrap(), (0, 0));
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn bad_input_names_the_field_and_changes_nothing() {
    let app = spawn_app().await;
    let mut civil = app.client("civil_affairs").await;
    let cases: Vec<(pb::SubmitFundReportRequest, &str)> = vec![
        (report(HUAN, "2023-13", pb::FundProgram::Tekun, "1.00"), "month:"),
        (report(HUAN, "2023-07", pb::FundProgram::Tekun, "-5.00"), "amount:"),
        (report(HUAN, "2023-07", pb::FundProgram::Tekun, "12,00"), "amount:"),
        (report(HUAN, "2023-07", pb::FundProgram::Tekun, "abc"), "amount:"),
        (report("621099", "2023-07", pb::FundProgram::Tekun, "1.00"), "county_code:"),
        (report("621000", "2023-07", pb::FundProgram::Tekun, "1.00"), "county_code:"),
        (report(HUAN, "2023-07", pb::FundProgram::Unspecified, "1.00"), "program:"),
        (
            pb::SubmitFundReportRequest {
                disbursed_on: "2023-02-30".into(),
                ..report(HUAN, "2023-07", pb::FundProgram::Tekun, "1.00")
            },
            "disbursed_on:",
        ),
        (
            pb::SubmitFundReportRequest { recipients: -1, ..report(HUAN, "2023-07", pb::FundProgram::Tekun, "1.00") },
            "recipients:",
        ),
        // Above the plausible 10,000,000 a county, month and program (a break-it run's i64::MAX made the monthly
        // report's total overflow).
        (
            pb::SubmitFundReportRequest {
                recipients: 10_000_001,
                ..report(HUAN, "2023-07", pb::FundProgram::Tekun, "1.00")
            },
            "recipients:",
        ),
    ];
    for (req, field) in cases {
        let e = submit(&mut civil, req).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{field}");
        assert!(e.message().starts_with(field), "{field}: {}", e.message());
    }
    let e = list_reports(&mut civil, "2023-13", pb::FundProgram::Tekun, "").await.unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().starts_with("month:"), "{}", e.message());

    let good = warning("W-1", &id(HUAN, (1980, 1, 1), 1), HUAN, "2023-09-28T02:00:00Z");
    let bad: Vec<(pb::WarningIn, &str)> = vec![
        (pb::WarningIn { id_number: "62102219800101001".into(), ..good.clone() }, "warnings[1].id_number:"),
        (pb::WarningIn { division_code: "621099".into(), ..good.clone() }, "warnings[1].division_code:"),
        (pb::WarningIn { division_code: "621000".into(), ..good.clone() }, "warnings[1].division_code:"),
        (pb::WarningIn { reason: 0, ..good.clone() }, "warnings[1].reason:"),
        (pb::WarningIn { received_at: None, ..good.clone() }, "warnings[1].received_at:"),
        (pb::WarningIn { received_at: ts("2031-01-05T00:00:00Z"), ..good.clone() }, "warnings[1].received_at:"),
        (pb::WarningIn { warning_id: String::new(), ..good.clone() }, "warnings[1].warning_id:"),
    ];
    let audits = app.audit_events().await;
    for (w, field) in bad {
        let e = push_warnings(&mut civil, vec![good.clone(), w]).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{field}");
        assert!(e.message().starts_with(field), "{field}: {}", e.message());
    }
    assert_eq!(app.app_hub.store.coordination_counts().await.unwrap(), (0, 0), "nothing stored");
    assert_eq!(app.audit_events().await, audits, "no write happened");
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn worked_deadlines_of_policy_reference_end_to_end() {
    let app = spawn_app().await;
    let mut civil = app.client("civil_affairs").await;
    let audits = app.audit_events().await;
    // Thu 2023-09-28 10:00 Shanghai; Thu 2024-02-08 10:00 Shanghai; and 2023-09-27T16:30Z = 09-28 00:30 Shanghai.
    let out = push_warnings(
        &mut civil,
        vec![
            warning("W-2023", &id(HUAN, (1980, 1, 1), 1), "621022100", "2023-09-28T02:00:00Z"),
            warning("W-2024", &id(HUAN, (1980, 1, 2), 2), HUAN, "2024-02-08T02:00:00Z"),
            warning("W-EDGE", &id(HUAN, (1980, 1, 3), 3), HUAN, "2023-09-27T16:30:00Z"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(out, [pb::WarningPushOutcome::Accepted; 3]);
    assert_eq!(app.audit_events().await, audits + 1, "one audit event for the push");
    let all = list_warnings(&mut civil, pb::WarningFilter::Unspecified, "2023-09-28").await.unwrap();
    assert_eq!(all.total_size, 3);
    assert_eq!(app.audit_events().await, audits + 2, "one audit event for the person-level list");
    // Fund reports are aggregates: not audited.
    list_reports(&mut civil, "2023-07", pb::FundProgram::Tekun, "").await.unwrap();
    assert_eq!(app.audit_events().await, audits + 2);
    let w = find(&all, "W-2023");
    assert_eq!((w.visit_due.as_str(), w.decision_due.as_str()), ("2023-10-09", "2023-10-11"));
    assert_eq!(w.state, pb::WarningState::Received as i32);
    assert_eq!(w.id_number, id(HUAN, (1980, 1, 1), 1));
    let w = find(&all, "W-EDGE");
    assert_eq!((w.visit_due.as_str(), w.decision_due.as_str()), ("2023-10-09", "2023-10-11"));
    let w = find(&all, "W-2024");
    assert_eq!((w.visit_due.as_str(), w.decision_due.as_str()), ("2024-02-19", "2024-02-21"));
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn workflow_states_overdue_lateness_and_invalid_transitions() {
    let app = spawn_app().await;
    let mut civil = app.client("civil_affairs").await;
    let person = id(HUAN, (1980, 1, 1), 1);
    push_warnings(
        &mut civil,
        vec![
            warning("W-1", &person, HUAN, "2023-09-28T02:00:00Z"),
            warning("W-2", &id(HUAN, (1980, 1, 2), 2), HUAN, "2023-09-28T02:00:00Z"),
        ],
    )
    .await
    .unwrap();

    // Idempotent: same content is DUPLICATE, other content under the same id is CONFLICT; nothing changes.
    let mut other = warning("W-1", &person, HUAN, "2023-09-28T02:00:00Z");
    other.reason = pb::WarningReason::Illness as i32;
    let out =
        push_warnings(&mut civil, vec![warning("W-1", &person, HUAN, "2023-09-28T02:00:00Z"), other]).await.unwrap();
    assert_eq!(out, [pb::WarningPushOutcome::Duplicate, pb::WarningPushOutcome::Conflict]);
    assert_eq!(app.app_hub.store.coordination_counts().await.unwrap().1, 2);

    // On the visit due date nothing is overdue yet; three working days later both deadlines have passed.
    let r = list_warnings(&mut civil, pb::WarningFilter::Overdue, "2023-10-09").await.unwrap();
    assert_eq!(r.total_size, 0);
    let r = list_warnings(&mut civil, pb::WarningFilter::Overdue, "2023-10-12").await.unwrap();
    assert_eq!(r.total_size, 2);
    let w = find(&r, "W-1");
    assert!(w.overdue);
    // working days after 10-09 up to 10-12: 10, 11, 12 → 3; after 10-11: 12 → 1.
    assert_eq!((w.visit_days_late, w.decision_days_late), (3, 1));

    // Invalid transitions name the state.
    let fp = |e: tonic::Status, state: &str| {
        assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
        assert!(e.message().contains(state), "{}", e.message());
    };
    let audits = app.audit_events().await;
    fp(
        civil
            .coordination
            .record_warning_outcome(decide(
                "W-1",
                "2023-10-10",
                pb::WarningDecision::NotEligible,
                pb::FundProgram::Unspecified,
            ))
            .await
            .unwrap_err(),
        "RECEIVED",
    );
    fp(civil.coordination.record_warning_outcome(close("W-1", "2023-10-10")).await.unwrap_err(), "RECEIVED");
    assert_eq!(app.audit_events().await, audits, "a refused step writes nothing");
    let e = civil.coordination.record_warning_outcome(visit("NOPE", "2023-10-10")).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = civil.coordination.record_warning_outcome(visit("W-1", "2023-09-27")).await.unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().starts_with("visit.visited_on:"), "{}", e.message());

    // Visit on the due date: on time; the decision is still due 10-11, so on 10-12 it is 1 working day late.
    let w = civil.coordination.record_warning_outcome(visit("W-1", "2023-10-09")).await.unwrap().into_inner();
    assert_eq!(w.state, pb::WarningState::Visited as i32);
    assert_eq!(app.audit_events().await, audits + 1, "one audit event per step");
    fp(civil.coordination.record_warning_outcome(visit("W-1", "2023-10-09")).await.unwrap_err(), "VISITED");
    fp(civil.coordination.record_warning_outcome(close("W-1", "2023-10-10")).await.unwrap_err(), "VISITED");
    let r = list_warnings(&mut civil, pb::WarningFilter::Overdue, "2023-10-12").await.unwrap();
    let w = find(&r, "W-1");
    assert!(w.visited_on_time);
    assert_eq!((w.visit_days_late, w.decision_days_late), (0, 1));

    let e = civil
        .coordination
        .record_warning_outcome(decide(
            "W-1",
            "2023-10-11",
            pb::WarningDecision::Assisted,
            pb::FundProgram::Unspecified,
        ))
        .await
        .unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().starts_with("decision.program:"), "{}", e.message());
    let w = civil
        .coordination
        .record_warning_outcome(decide("W-1", "2023-10-11", pb::WarningDecision::Assisted, pb::FundProgram::RuralDibao))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(w.state, pb::WarningState::Decided as i32);
    assert_eq!(w.decided_program, pb::FundProgram::RuralDibao as i32);
    assert!(w.decided_on_time);
    fp(
        civil
            .coordination
            .record_warning_outcome(decide(
                "W-1",
                "2023-10-12",
                pb::WarningDecision::Referred,
                pb::FundProgram::Unspecified,
            ))
            .await
            .unwrap_err(),
        "DECIDED",
    );
    // Decided and not closed: OPEN, not overdue.
    let r = list_warnings(&mut civil, pb::WarningFilter::Open, "2023-10-12").await.unwrap();
    assert_eq!(r.warnings.iter().map(|w| w.warning_id.as_str()).collect::<Vec<_>>(), ["W-1"]);

    let w = civil.coordination.record_warning_outcome(close("W-1", "2023-10-13")).await.unwrap().into_inner();
    assert_eq!(w.state, pb::WarningState::Closed as i32);
    fp(civil.coordination.record_warning_outcome(visit("W-1", "2023-10-13")).await.unwrap_err(), "CLOSED");
    fp(civil.coordination.record_warning_outcome(close("W-1", "2023-10-14")).await.unwrap_err(), "CLOSED");

    let closed = list_warnings(&mut civil, pb::WarningFilter::Closed, "2023-10-20").await.unwrap();
    assert_eq!(closed.warnings.iter().map(|w| w.warning_id.as_str()).collect::<Vec<_>>(), ["W-1"]);
    assert!(!closed.warnings[0].overdue);
    let overdue = list_warnings(&mut civil, pb::WarningFilter::Overdue, "2023-10-20").await.unwrap();
    assert_eq!(overdue.warnings.iter().map(|w| w.warning_id.as_str()).collect::<Vec<_>>(), ["W-2"]);
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn warnings_paginate_and_keep_no_id_number_at_rest() {
    let app = spawn_app().await;
    let mut civil = app.client("civil_affairs").await;
    let ids: Vec<String> = (1..=5).map(|i| id(HUAN, (1975, 3, i), i as u16)).collect();
    let ws = ids
        .iter()
        .enumerate()
        .map(|(i, n)| warning(&format!("W-{i}"), n, HUAN, &format!("2023-09-2{}T02:00:00Z", i + 1)))
        .collect();
    push_warnings(&mut civil, ws).await.unwrap();
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let r = civil
            .coordination
            .list_warnings(pb::ListWarningsRequest {
                as_of: "2023-10-01".into(),
                page_size: 2,
                page_token: token.clone(),
                purpose: "test".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.total_size, 5);
        seen.extend(r.warnings.into_iter().map(|w| w.warning_id));
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    assert_eq!(seen, ["W-0", "W-1", "W-2", "W-3", "W-4"]);
    let e = civil
        .coordination
        .list_warnings(pb::ListWarningsRequest { page_token: "garbage".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().starts_with("page_token:"), "{}", e.message());

    if crate::ON_POSTGRES {
        // Every row of every table of the hub's database, as text (BYTEA columns print as hex, so look for the ID
        // number's bytes in hex too).
        let pool = app.app_hub.store.pg_pool().expect("a PostgreSQL store");
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()")
                .fetch_all(pool)
                .await
                .unwrap();
        assert!(tables.iter().any(|t| t == "warnings"), "{tables:?}");
        let mut text = String::new();
        for t in &tables {
            let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT r::text FROM \"{t}\" r")))
                .fetch_all(pool)
                .await
                .unwrap();
            text.extend(rows.into_iter().map(|r| r + "\n"));
        }
        assert!(text.contains("W-4"), "the warnings are read");
        for n in &ids {
            assert!(!text.contains(n.as_str()), "a full ID number is at rest");
            assert!(!text.contains(&hex::encode(n.as_bytes())), "a full ID number is at rest (bytes)");
        }
        app.stop().await;
        return;
    }
    app.app_hub.store.close().await;
    let mut bytes = std::fs::read(app.db_path()).unwrap();
    if let Ok(wal) = std::fs::read(app.db_path().with_extension("db-wal")) {
        bytes.extend(wal);
    }
    for n in &ids {
        assert!(!bytes.windows(n.len()).any(|w| w == n.as_bytes()), "a full ID number is at rest");
    }
}
