//! MatchRecipients (batch comparison, 比对; issue 21 item 7, docs/spec/api.md "MatchRecipients"): per-ID answers that
//! never say more than GetRecipient, the same answer for unknown and invisible persons, the limits, the audit, and
//! `doudi match FILE.csv`. Expected values come from the facts each test pushes.

use doudi::client::ConnectArgs;
use doudi::client::format::TextEncoding;
use doudi::client::matching::MatchArgs;
use doudi::grpc::pb;
use macro_rules_attribute::apply;
use tonic::Code;
use tonic_types::StatusExt;

use crate::support::*;

const HUAN: &str = "621022"; // 环县
const XIFENG: &str = "621002"; // 西峰区

fn tekun() -> pb::fact::Payload {
    pb::fact::Payload::Assistance(pb::Assistance {
        program: pb::Program::Tekun as i32,
        residence: pb::Residence::Rural as i32,
        support_mode: pb::SupportMode::Dispersed as i32,
        household_id: "HH-T".into(),
        monthly_benefit: "605.00".into(),
        status: pb::AssistanceStatus::Active as i32,
        ..Default::default()
    })
}

fn with_status(p: pb::fact::Payload, status: pb::AssistanceStatus) -> pb::fact::Payload {
    let pb::fact::Payload::Assistance(mut a) = p else { panic!("assistance") };
    a.status = status as i32;
    pb::fact::Payload::Assistance(a)
}

fn request(ids: &[&str], purpose: &str, as_of: &str) -> pb::MatchRecipientsRequest {
    pb::MatchRecipientsRequest {
        id_numbers: ids.iter().map(|s| s.to_string()).collect(),
        purpose: purpose.into(),
        as_of: as_of.into(),
    }
}

/// One call of these messages: the responses received, and the status it ended with (`Ok` for a clean end).
async fn call(
    c: &mut doudi::client::Clients,
    messages: Vec<pb::MatchRecipientsRequest>,
) -> (Vec<pb::MatchRecipientsResponse>, Result<(), tonic::Status>) {
    let mut got = Vec::new();
    let mut answers = match c.exchange.match_recipients(futures::stream::iter(messages)).await {
        Ok(r) => r.into_inner(),
        Err(s) => return (got, Err(s)),
    };
    loop {
        match answers.message().await {
            Ok(Some(r)) => got.push(r),
            Ok(None) => return (got, Ok(())),
            Err(s) => return (got, Err(s)),
        }
    }
}

fn outcome(r: &pb::MatchResult) -> pb::MatchOutcome {
    pb::MatchOutcome::try_from(r.outcome).unwrap()
}

/// (program, since, division) of a result's enrolments.
fn enrolments(r: &pb::MatchResult) -> Vec<(pb::Program, String, String)> {
    r.enrolments
        .iter()
        .map(|e| (pb::Program::try_from(e.program).unwrap(), e.since.clone(), e.division_code.clone()))
        .collect()
}

#[apply(e2e!)]
#[tokio::test]
async fn answers_say_no_more_than_get_recipient() {
    let app = spawn_app().await;
    let mut ca = app.client("civil_affairs").await;
    let mut hr = app.client("human_resources").await;
    let mut edu = app.client("education").await;
    let dibao = id(HUAN, (1980, 1, 1), 1);
    let both = id(HUAN, (1950, 2, 2), 2);
    let suspended = id(HUAN, (1970, 3, 3), 3);
    let employed_only = id(HUAN, (1990, 4, 4), 4);
    let unknown = id(HUAN, (1960, 5, 5), 5);
    let pupil = id(XIFENG, (2012, 6, 6), 6);
    let mut later = with(base("MZ-1", &dibao, "621022101203"), rural_dibao());
    later.valid_from = "2023-03-01".into();
    let mut t = with(base("MZ-2T", &both, HUAN), tekun());
    t.valid_from = "2022-07-01".into();
    push(
        &mut ca,
        vec![
            later,
            with(base("MZ-2D", &both, HUAN), urban_dibao()),
            t,
            with(base("MZ-3", &suspended, HUAN), with_status(rural_dibao(), pb::AssistanceStatus::Suspended)),
            with(base("MZ-6", &pupil, "621002100001"), rural_dibao()),
        ],
    )
    .await
    .unwrap();
    push(&mut hr, vec![with(base("RS-4", &employed_only, HUAN), employment())]).await.unwrap();
    push(&mut edu, vec![with(base("JY-6", &pupil, XIFENG), student())]).await.unwrap();

    let ids =
        [dibao.as_str(), both.as_str(), suspended.as_str(), employed_only.as_str(), unknown.as_str(), "123", &pupil];
    let (got, end) = call(&mut ca, vec![request(&ids, "quarterly comparison", "2023-06-30")]).await;
    end.unwrap();
    assert_eq!(got.len(), 1, "one response per request message");
    let r = &got[0].results;
    assert_eq!(r.len(), ids.len());
    for (i, x) in r.iter().enumerate() {
        assert_eq!(x.index, i as u64);
    }
    assert_eq!(outcome(&r[0]), pb::MatchOutcome::Enrolled);
    assert_eq!(enrolments(&r[0]), vec![(pb::Program::Dibao, "2023-03-01".into(), "621022101203".into())]);
    assert_eq!(r[0].id_number, dibao);
    // Two programs, in Program order (DIBAO = 1 before TEKUN = 2), each with its own record's valid_from.
    assert_eq!(
        enrolments(&r[1]),
        vec![
            (pb::Program::Dibao, "2023-01-01".into(), HUAN.into()),
            (pb::Program::Tekun, "2022-07-01".into(), HUAN.into())
        ]
    );
    // SUSPENDED is not enrolled; a person with only other kinds of facts and one the hub never met look the same.
    for i in [2, 3, 4] {
        assert_eq!(outcome(&r[i]), pb::MatchOutcome::NotEnrolled, "{i}");
        assert!(r[i].enrolments.is_empty() && r[i].field.is_empty());
    }
    assert_eq!(outcome(&r[5]), pb::MatchOutcome::Invalid);
    assert_eq!(r[5].field, "id_numbers[5]");
    assert!(!r[5].reason.is_empty());
    assert_eq!(outcome(&r[6]), pb::MatchOutcome::Enrolled);

    // Every ENROLLED answer is in GetRecipient's view of the same caller and date: an ACTIVE assistance fact of that
    // program with that valid_from.
    for (i, x) in r.iter().enumerate().filter(|(_, x)| outcome(x) == pb::MatchOutcome::Enrolled) {
        let view = get(&mut ca, ids[i], "2023-06-30").await.unwrap();
        for (program, since, _) in enrolments(x) {
            assert!(
                view.facts.iter().any(|f| f.valid_from == since
                    && matches!(&f.payload, Some(pb::fact::Payload::Assistance(a))
                        if a.program == program as i32 && a.status == pb::AssistanceStatus::Active as i32)),
                "{program:?} of {i} is in GetRecipient's view"
            );
        }
    }

    // Before the record's valid_from: not enrolled.
    let (got, end) = call(&mut ca, vec![request(&[&dibao], "quarterly comparison", "2023-02-28")]).await;
    end.unwrap();
    assert_eq!(outcome(&got[0].results[0]), pb::MatchOutcome::NotEnrolled);

    // A county office sees its county only: 环县's person is NOT_ENROLLED for 西峰区, as if unknown.
    let mut xifeng = app.client_in("civil_affairs", Some(XIFENG)).await;
    let (got, end) = call(&mut xifeng, vec![request(&[&dibao, &pupil], "county comparison", "2023-06-30")]).await;
    end.unwrap();
    assert_eq!(outcome(&got[0].results[0]), pb::MatchOutcome::NotEnrolled);
    assert_eq!(outcome(&got[0].results[1]), pb::MatchOutcome::Enrolled);

    // Education sees assistance only of students (docs/spec/security.md): the pupil, not the adult.
    let (got, end) = call(&mut edu, vec![request(&[&dibao, &pupil], "education aid check", "2023-06-30")]).await;
    end.unwrap();
    assert_eq!(outcome(&got[0].results[0]), pb::MatchOutcome::NotEnrolled);
    assert_eq!(enrolments(&got[0].results[1]), vec![(pb::Program::Dibao, "2023-01-01".into(), "621002100001".into())]);
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn a_call_of_several_messages_is_answered_in_order_and_audited_per_person() {
    let app = spawn_app().await;
    let mut ca = app.client("civil_affairs").await;
    let known = id(HUAN, (1980, 1, 1), 11);
    let unknown = id(HUAN, (1981, 1, 1), 12);
    push(&mut ca, vec![with(base("MZ-11", &known, HUAN), rural_dibao())]).await.unwrap();
    let before = app.audit_events().await;
    let (got, end) = call(
        &mut ca,
        vec![
            request(&[&known, &unknown], "monthly comparison", "2023-06-30"),
            request(&[], "", ""),
            request(&[&unknown, &known, &known], "", "2023-06-30"),
        ],
    )
    .await;
    end.unwrap();
    assert_eq!(got.len(), 3);
    assert!(got[1].results.is_empty());
    let idx: Vec<u64> = got.iter().flat_map(|r| r.results.iter().map(|x| x.index)).collect();
    assert_eq!(idx, vec![0, 1, 2, 3, 4], "indexes count over the whole call");
    let outs: Vec<pb::MatchOutcome> = got.iter().flat_map(|r| r.results.iter().map(outcome)).collect();
    use pb::MatchOutcome::{Enrolled, NotEnrolled};
    assert_eq!(outs, vec![Enrolled, NotEnrolled, NotEnrolled, Enrolled, Enrolled]);
    // One audit event per message (the empty one too), each naming its persons: both are found by person.
    assert_eq!(app.audit_events().await - before, 3);
    for person in [&known, &unknown] {
        let events = ca
            .audit
            .list_access_events(pb::ListAccessEventsRequest { id_number: person.to_string(), ..Default::default() })
            .await
            .unwrap()
            .into_inner()
            .events;
        let matches: Vec<_> = events.iter().filter(|e| e.method.ends_with("/MatchRecipients")).collect();
        assert_eq!(matches.len(), 2, "{person}: both messages naming the person");
        assert!(matches.iter().all(|e| e.purpose == "monthly comparison" && e.agency == "civil_affairs"));
    }
    let chain = ca.audit.verify_audit_chain(pb::VerifyAuditChainRequest::default()).await.unwrap().into_inner();
    assert!(chain.valid, "{chain:?}");
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn refusals_name_the_field_and_keep_earlier_answers() {
    let app = spawn_app_with(|c| {
        c.max_batch = 3;
        c.match_max_ids_per_call = 5;
        c.match_ids_per_agency_per_day = 8;
    })
    .await;
    let person = id(HUAN, (1980, 1, 1), 21);
    let mut ca = app.client("civil_affairs").await;
    push(&mut ca, vec![with(base("MZ-21", &person, HUAN), rural_dibao())]).await.unwrap();

    // An agency that reads aggregates only may not compare.
    let mut lg = app.client("leading_group").await;
    let (got, end) = call(&mut lg, vec![request(&[&person], "check", "")]).await;
    assert!(got.is_empty());
    let s = end.unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{}", s.message());

    // The purpose is required.
    let (_, end) = call(&mut ca, vec![request(&[&person], "  ", "")]).await;
    let s = end.unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().starts_with("purpose"), "{}", s.message());
    let v = s.get_details_bad_request().expect("BadRequest");
    assert_eq!(v.field_violations[0].field, "purpose");

    // Another purpose in a later message: refused there, the first message's answer stands. (1 of the budget.)
    let (got, end) = call(&mut ca, vec![request(&[&person], "a", ""), request(&[&person], "b", "")]).await;
    assert_eq!(got.len(), 1);
    let s = end.unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().starts_with("purpose"), "{}", s.message());

    // More than max_batch in one message.
    let (got, end) = call(&mut ca, vec![request(&[&person, &person, &person, &person], "check", "")]).await;
    assert!(got.is_empty());
    let s = end.unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    assert!(s.message().starts_with("id_numbers"), "{}", s.message());

    // More than match_max_ids_per_call (5) in one call: 3 answered, then the message of 3 that would pass it is
    // refused. (3 more of the budget: 4 used.)
    let (got, end) = call(
        &mut ca,
        vec![request(&[&person, &person, &person], "check", ""), request(&[&person, &person, &person], "", "")],
    )
    .await;
    assert_eq!(got.len(), 1);
    let s = end.unwrap_err();
    assert_eq!(s.code(), Code::ResourceExhausted);
    assert!(s.message().contains("match_max_ids_per_call"), "{}", s.message());
    let info = s.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "QUOTA_EXCEEDED");
    assert_eq!(info.metadata.get("ids_answered").map(String::as_str), Some("3"));

    // The agency's daily budget (8): 4 used, 3 more pass, the next 3 do not, with a wait in RetryInfo.
    let (got, end) = call(&mut ca, vec![request(&[&person, &person, &person], "check", "")]).await;
    end.unwrap();
    assert_eq!(got[0].results.len(), 3);
    let (got, end) = call(&mut ca, vec![request(&[&person, &person, &person], "check", "")]).await;
    assert!(got.is_empty());
    let s = end.unwrap_err();
    assert_eq!(s.code(), Code::ResourceExhausted);
    assert!(s.message().contains("per day"), "{}", s.message());
    let retry = s.get_details_retry_info().expect("RetryInfo");
    assert!(retry.retry_delay.unwrap() > std::time::Duration::from_secs(60 * 60), "a day's budget refills slowly");
    // Another agency has its own budget.
    let mut hr = app.client("human_resources").await;
    let (_, end) = call(&mut hr, vec![request(&[&person], "check", "")]).await;
    end.unwrap();
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn match_command_writes_one_answer_per_row_beside_the_file() {
    let app = spawn_app().await;
    let mut ca = app.client("civil_affairs").await;
    let a = id(HUAN, (1980, 1, 1), 31);
    let b = id(HUAN, (1981, 1, 1), 32);
    push(&mut ca, vec![with(base("MZ-31", &a, HUAN), rural_dibao())]).await.unwrap();
    let certs = tempfile::tempdir().unwrap();
    let idn = app.identity("civil_affairs", None);
    std::fs::write(certs.path().join("ca.pem"), &idn.ca_pem).unwrap();
    std::fs::write(certs.path().join("civil_affairs.pem"), &idn.cert_pem).unwrap();
    std::fs::write(certs.path().join("civil_affairs.key"), &idn.key_pem).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("list.csv");
    // A header naming the column, in the second place; a bad row; a blank ID.
    std::fs::write(&file, format!("name,id_number\n张三,{a}\n李四,{b}\n王五,12345\n赵六,\n")).unwrap();
    let args = MatchArgs {
        connect: ConnectArgs::from_dir(&app.server, certs.path(), "civil_affairs"),
        file: file.clone(),
        purpose: "roster comparison".into(),
        as_of: Some("2023-06-30".into()),
        encoding: TextEncoding::Utf8,
        out: None,
    };
    doudi::client::matching::run(args).await.unwrap();
    let text = std::fs::read_to_string(dir.path().join("list.csv.match.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "row,id_number,outcome,programs,since,division_codes,reason");
    assert_eq!(lines[1], format!("1,{a},ENROLLED,DIBAO,2023-01-01,{HUAN},"));
    assert_eq!(lines[2], format!("2,{b},NOT_ENROLLED,,,,"));
    assert!(lines[3].starts_with("3,12345,INVALID,,,,"), "{}", lines[3]);
    assert_eq!(lines[4], "4,,INVALID,,,,is required");
    assert_eq!(lines.len(), 5);
    app.stop().await;
}

/// A message of persons the hub never met (the audit makes their `persons` rows without an ID number; on PostgreSQL's
/// read lanes one autocommitted statement per key): every one NOT_ENROLLED, each found by ListAccessEvents, the chain
/// valid.
#[apply(e2e!)]
#[tokio::test]
async fn a_message_of_unknown_persons_is_audited_for_each() {
    let app = spawn_app().await;
    let mut ca = app.client("civil_affairs").await;
    let unknown: Vec<String> = (1..=40).map(|s| id(XIFENG, (1975, 7, 7), s)).collect();
    let refs: Vec<&str> = unknown.iter().map(String::as_str).collect();
    let (got, end) = call(&mut ca, vec![request(&refs, "tracing unknown persons", "2023-06-30")]).await;
    end.unwrap();
    assert_eq!(got[0].results.len(), 40);
    assert!(got[0].results.iter().all(|r| outcome(r) == pb::MatchOutcome::NotEnrolled));
    for person in [&unknown[0], &unknown[39]] {
        let events = ca
            .audit
            .list_access_events(pb::ListAccessEventsRequest { id_number: person.clone(), ..Default::default() })
            .await
            .unwrap()
            .into_inner()
            .events;
        assert_eq!(events.len(), 1, "{person}");
        assert_eq!(events[0].outcome, "OK compared=40 enrolled=0 invalid=0");
    }
    let chain = ca.audit.verify_audit_chain(pb::VerifyAuditChainRequest::default()).await.unwrap().into_inner();
    assert!(chain.valid, "{chain:?}");
    app.stop().await;
}
