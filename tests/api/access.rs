//! Access by need: every cell of docs/spec/security.md's matrix for every agency, allowed and denied; the
//! education-only-for-students rule; county scope. The expected matrix is written out here from
//! docs/spec/security.md, independently of `access_policy.toml`.

use std::collections::BTreeMap;

use doudi::grpc::pb;
use macro_rules_attribute::apply;
use tonic::Code;

use crate::support::*;

const HUAN: &str = "621022";
const XIFENG: &str = "621002";

const KINDS: [&str; 8] = [
    "assistance",
    "employment",
    "pension",
    "student",
    "education_aid",
    "medical_insurance",
    "disability",
    "disability_subsidy",
];

fn payload_for(kind: &str, id_number: &str) -> pb::fact::Payload {
    match kind {
        "assistance" => rural_dibao(),
        "employment" => employment(),
        "pension" => pension(),
        "student" => student(),
        "education_aid" => education_aid(),
        "medical_insurance" => medical_insurance(),
        "disability" => disability(id_number),
        "disability_subsidy" => disability_subsidy(),
        _ => unreachable!(),
    }
}

fn kind_of(f: &pb::Fact) -> &'static str {
    use pb::fact::Payload as P;
    match f.payload.as_ref().unwrap() {
        P::Assistance(_) => "assistance",
        P::Employment(_) => "employment",
        P::Pension(_) => "pension",
        P::Student(_) => "student",
        P::EducationAid(_) => "education_aid",
        P::MedicalInsurance(_) => "medical_insurance",
        P::Disability(_) => "disability",
        P::DisabilitySubsidy(_) => "disability_subsidy",
    }
}

/// docs/spec/security.md "Access by need": only the owner of a payload kind may push it (docs/spec/api.md).
fn owner(kind: &str) -> &'static str {
    match kind {
        "assistance" => "civil_affairs",
        "employment" | "pension" => "human_resources",
        "student" | "education_aid" => "education",
        "medical_insurance" => "medical_insurance",
        "disability" | "disability_subsidy" => "disability_federation",
        _ => unreachable!(),
    }
}

/// What each agency reads of a *student* (docs/spec/security.md matrix): kind → None = all fields,
/// Some(list) = only those fields.
fn expected_reads(agency: &str) -> BTreeMap<&'static str, Option<Vec<&'static str>>> {
    let all = |k: &'static str| (k, None);
    let only = |k: &'static str, f: &[&'static str]| (k, Some(f.to_vec()));
    match agency {
        "civil_affairs" => KINDS.iter().map(|k| all(k)).collect(),
        "human_resources" => [
            only("assistance", &["program", "status"]),
            all("employment"),
            all("pension"),
            only("disability", &["category", "grade"]),
        ]
        .into(),
        "education" => [
            only("assistance", &["program", "status"]),
            all("student"),
            all("education_aid"),
            only("disability", &["grade"]),
        ]
        .into(),
        "medical_insurance" => [all("assistance"), all("medical_insurance"), all("disability")].into(),
        "disability_federation" => {
            [only("assistance", &["program", "status"]), all("disability"), all("disability_subsidy")].into()
        }
        _ => BTreeMap::new(),
    }
}

/// Fields present (non-default) in a received payload.
fn present_fields(f: &pb::Fact) -> Vec<&'static str> {
    use pb::fact::Payload as P;
    let mut v = Vec::new();
    let mut put = |name: &'static str, present: bool| {
        if present {
            v.push(name)
        }
    };
    match f.payload.as_ref().unwrap() {
        P::Assistance(a) => {
            put("program", a.program != 0);
            put("residence", a.residence != 0);
            put("rural_class", a.rural_class.is_some());
            put("household_id", !a.household_id.is_empty());
            put("monthly_benefit", !a.monthly_benefit.is_empty());
            put("status", a.status != 0);
        }
        P::Disability(d) => {
            put("category", d.category != 0);
            put("grade", d.grade != 0);
            put("certificate_no", !d.certificate_no.is_empty());
        }
        _ => put("*", true),
    }
    v
}

async fn push_everything(app: &TestApp, person: &str, division: &str, kinds: &[&str], tag: &str) {
    for kind in kinds {
        let mut c = app.client(owner(kind)).await;
        let f = with(base(&format!("{tag}-{kind}"), person, division), payload_for(kind, person));
        let r = push(&mut c, vec![f]).await.unwrap();
        assert_eq!(outcome(&r.results[0]), pb::FactOutcome::Accepted, "{kind}: {:?}", r.results[0]);
    }
}

#[apply(e2e!)]
#[tokio::test]
async fn push_matrix_only_owners_push() {
    let app = spawn_app().await;
    for agency in
        ["civil_affairs", "human_resources", "education", "medical_insurance", "disability_federation", "leading_group"]
    {
        let mut c = app.client(agency).await;
        let person = id(HUAN, (2010, 9, 1), 40);
        let facts: Vec<pb::Fact> = KINDS
            .iter()
            .map(|k| with(base(&format!("{agency}-{k}"), &person, HUAN), payload_for(k, &person)))
            .collect();
        match push(&mut c, facts).await {
            Ok(r) => {
                for (i, k) in KINDS.iter().enumerate() {
                    let res = &r.results[i];
                    if owner(k) == agency {
                        assert_eq!(outcome(res), pb::FactOutcome::Accepted, "{agency} pushes {k}");
                    } else {
                        assert_eq!(outcome(res), pb::FactOutcome::Rejected, "{agency} must not push {k}");
                        assert_eq!(res.field, format!("facts[{i}].{k}"));
                        assert!(res.reason.contains(owner(k)), "reason names the owner: {}", res.reason);
                    }
                }
            }
            Err(s) => {
                assert_eq!(agency, "leading_group", "only an agency owning nothing is refused outright");
                assert_eq!(s.code(), Code::PermissionDenied);
            }
        }
    }
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn read_matrix_for_every_agency() {
    let app = spawn_app().await;
    let student_id = id(HUAN, (2010, 9, 1), 41);
    push_everything(&app, &student_id, HUAN, &KINDS, "S").await;

    for agency in ["civil_affairs", "human_resources", "education", "medical_insurance", "disability_federation"] {
        let mut c = app.client(agency).await;
        let got = get(&mut c, &student_id, "2023-06-30").await.unwrap();
        let expected = expected_reads(agency);
        let seen: Vec<&str> = got.facts.iter().map(kind_of).collect();
        let want: Vec<&str> = expected.keys().copied().collect();
        let mut seen_sorted = seen.clone();
        seen_sorted.sort_unstable();
        assert_eq!(seen_sorted, want, "{agency} sees exactly its kinds");
        for f in &got.facts {
            let kind = kind_of(f);
            match &expected[kind] {
                None => assert!(f.omitted_fields.is_empty(), "{agency} reads all of {kind}"),
                Some(fields) => {
                    let present = present_fields(f);
                    assert_eq!(present, *fields, "{agency} reads only {fields:?} of {kind}");
                    assert!(!f.omitted_fields.is_empty(), "{agency}: withheld fields are listed");
                }
            }
        }
    }
    // leading_group: aggregates only.
    let mut lg = app.client("leading_group").await;
    let s = get(&mut lg, &student_id, "2023-06-30").await.unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn education_reads_assistance_only_of_students() {
    let app = spawn_app().await;
    let pupil = id(HUAN, (2012, 2, 2), 51);
    let adult = id(HUAN, (1975, 2, 2), 52);
    let assisted_only = id(HUAN, (1976, 2, 2), 53);
    push_everything(&app, &pupil, HUAN, &["assistance", "student"], "P").await;
    push_everything(&app, &adult, HUAN, &["assistance", "disability"], "A").await;
    push_everything(&app, &assisted_only, HUAN, &["assistance"], "O").await;
    let mut edu = app.client("education").await;

    let kinds = |r: &pb::Recipient| r.facts.iter().map(kind_of).collect::<Vec<_>>();
    assert_eq!(kinds(&get(&mut edu, &pupil, "2023-06-30").await.unwrap()), ["assistance", "student"]);
    assert_eq!(
        kinds(&get(&mut edu, &adult, "2023-06-30").await.unwrap()),
        ["disability"],
        "no assistance of a non-student"
    );
    // Nothing left: NOT_FOUND, exactly as for an unknown person (no refusal reveals assistance).
    let hidden = get(&mut edu, &assisted_only, "2023-06-30").await.unwrap_err();
    let unknown = get(&mut edu, &id(HUAN, (1977, 2, 2), 54), "2023-06-30").await.unwrap_err();
    assert_eq!((hidden.code(), unknown.code()), (Code::NotFound, Code::NotFound));

    // In a list, the hidden person is counted as omitted.
    let r = edu
        .exchange
        .list_recipients(pb::ListRecipientsRequest {
            division_code: HUAN.into(),
            program: pb::Program::Dibao as i32,
            as_of: "2023-06-30".into(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.total_size, r.recipients.len(), r.omitted_count), (3, 1, 2));
    assert_eq!(r.recipients[0].id_number, pupil);
    app.stop().await;
}

#[apply(e2e!)]
#[tokio::test]
async fn county_offices_stay_in_their_county() {
    let app = spawn_app().await;
    let in_huan = id(HUAN, (1960, 1, 1), 61);
    let in_xifeng = id(XIFENG, (1960, 1, 1), 62);
    push_everything(&app, &in_xifeng, XIFENG, &["assistance"], "X").await;

    let mut county = app.client_in("civil_affairs", Some(HUAN)).await;
    let r = push(
        &mut county,
        vec![
            with(base("C1", &in_huan, "621022101203"), rural_dibao()),
            with(base("C2", &in_xifeng, XIFENG), rural_dibao()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(outcome(&r.results[0]), pb::FactOutcome::Accepted);
    assert_eq!(outcome(&r.results[1]), pb::FactOutcome::Rejected);
    assert_eq!(r.results[1].field, "facts[1].division_code");

    assert_eq!(get(&mut county, &in_huan, "2023-06-30").await.unwrap().facts.len(), 1);
    assert_eq!(get(&mut county, &in_xifeng, "2023-06-30").await.unwrap_err().code(), Code::NotFound);

    let list = |division: &str| pb::ListRecipientsRequest {
        division_code: division.into(),
        as_of: "2023-06-30".into(),
        page_size: 100,
        ..Default::default()
    };
    let all = county.exchange.list_recipients(list("")).await.unwrap().into_inner();
    assert_eq!(all.total_size, 1, "an empty filter means the office's own county");
    let city = county.exchange.list_recipients(list("621000")).await.unwrap().into_inner();
    assert_eq!(city.total_size, 1, "the city narrows to the county");
    let s = county.exchange.list_recipients(list(XIFENG)).await.unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    assert!(s.message().contains("西峰区") && s.message().contains("环县"), "{}", s.message());

    let me = county.audit.who_am_i(pb::WhoAmIRequest {}).await.unwrap().into_inner();
    assert_eq!((me.agency.as_str(), me.division_code.as_str()), ("civil_affairs", HUAN));
    app.stop().await;
}
