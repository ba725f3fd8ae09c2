//! Every finding explains itself (issue 19 items 3 and 4, docs/findings.md "Explanations"): ExplainFinding over the
//! wire on docs/spec/medical.md's example B, with the worked figures; the refusals; and the explanation recomputed
//! from stored data only agreeing with every stored finding of a synthetic population.

use doudi::grpc::convert::fact_out;
use doudi::grpc::pb;
use doudi::store::FindingFilter;
use doudi::tools::synth::settlements::SettlementConfig;
use doudi::tools::synth::{Population, SynthConfig};
use macro_rules_attribute::apply;
use tonic::Code;

use crate::support::*;

const HUAN: &str = "621022";
const B_ID: &str = "medical/medical_insurance/B-621022/ASSISTANCE_MISSED";

fn explain_req(id: &str) -> pb::ExplainFindingRequest {
    pb::ExplainFindingRequest { finding_id: id.into(), purpose: "explain test".into() }
}

fn value<'a>(lines: &'a [pb::ExplanationLine], name: &str) -> &'a str {
    &lines.iter().find(|l| l.name == name).unwrap_or_else(|| panic!("no line {name} in {lines:?}")).value
}

/// docs/spec/medical.md example B over the wire: a DIBAO_MARGINAL person (group 3) of Huan county, insured, scope
/// 10,000.00, basic 6,000.00, nothing else paid, total 12,000.00 (6,000.00 out of pocket). Worked figures: "cii not
/// tilted: 4,000 < 10,000 deductible → 0; residual 4,000.00; ma = (4,000 − 2,000) × 65% = 1,300.00",
/// ASSISTANCE_MISSED (expected 1,300.00), 1,300.00 − 0.00 above the 1.00 tolerance.
#[apply(e2e!)]
#[tokio::test]
async fn example_b_explains_itself_with_the_worked_figures() {
    let app = spawn_app().await;
    let person = id(HUAN, (1962, 2, 2), 611);
    let mut civil = app.client("civil_affairs").await;
    let mut mi = app.client("medical_insurance").await;
    let marginal = pb::fact::Payload::Assistance(pb::Assistance {
        program: pb::Program::DibaoMarginal as i32,
        household_id: "HH-B".into(),
        status: pb::AssistanceStatus::Active as i32,
        ..Default::default()
    });
    push(&mut civil, vec![with(base("AS-B", &person, HUAN), marginal)]).await.unwrap();
    push(&mut mi, vec![with(base("MI-B", &person, HUAN), medical_insurance())]).await.unwrap();
    let b = pb::Settlement {
        settlement_id: "B-621022".into(),
        id_number: person.clone(),
        division_code: HUAN.into(),
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
    };
    mi.medical.submit_settlements(pb::SubmitSettlementsRequest { settlements: vec![b] }).await.unwrap();

    let e = mi.medical.explain_finding(explain_req(B_ID)).await.unwrap().into_inner();
    assert_eq!((e.finding_id.as_str(), e.code.as_str()), (B_ID, "ASSISTANCE_MISSED"));
    assert_eq!(e.agency_to_act, "medical_insurance");
    // Inputs: the settlement and the two fact versions, each with its content hash (64 hex digits).
    let names: Vec<&str> = e.inputs.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["settlement", "fact_version", "fact_version"]);
    assert!(e.inputs.iter().all(|l| l.value.len() == 64), "{:?}", e.inputs);
    assert!(e.inputs[0].en.contains("medical_insurance/B-621022"), "{:?}", e.inputs[0]);
    assert!(e.inputs.iter().any(|l| l.en.contains("civil_affairs/AS-B/1")), "{:?}", e.inputs);
    // The example parameters of docs/spec/medical.md (migration 0005's 621000-2023-example).
    assert_eq!(value(&e.parameters, "policy_version"), "621000-2023-example");
    assert_eq!(value(&e.parameters, "prior_year_income"), "20000.00");
    assert_eq!(value(&e.parameters, "group_terms"), "10%, 65%"); // group 3
    // The steps: after basic 10,000 − 6,000 = 4,000.00; CII deductible 10,000.00 left, 60%, owed 0.00; residual
    // 4,000.00; MA deductible left 10% × 20,000 = 2,000.00, 65%; cap left 20,000.00; owed 1,300.00.
    assert_eq!(value(&e.steps, "after_basic"), "4000.00");
    assert_eq!(value(&e.steps, "cii_deductible_left"), "10000.00");
    assert_eq!(value(&e.steps, "cii_ratio"), "60%");
    assert_eq!(value(&e.steps, "expected_cii"), "0.00");
    assert_eq!(value(&e.steps, "residual"), "4000.00");
    assert_eq!(value(&e.steps, "group"), "3");
    assert_eq!(value(&e.steps, "ma_deductible_left"), "2000.00");
    assert_eq!(value(&e.steps, "ma_ratio"), "65%");
    assert_eq!(value(&e.steps, "cap_left_before"), "20000.00");
    assert_eq!(value(&e.steps, "expected_ma"), "1300.00");
    let test = e.test.unwrap();
    assert_eq!(test.en, "owed 1300.00 − paid 0.00 = 1300.00 > tolerance 1.00, nothing paid");
    assert_eq!(test.zh, "应付 1300.00 − 已付 0.00 = 1300.00 > 容差 1.00，且未支付");
    assert_eq!((e.recomputed_expected.as_str(), e.recomputed_actual.as_str()), ("1300.00", "0.00"));
    assert_eq!((e.stored_expected.as_str(), e.stored_actual.as_str()), ("1300.00", "0.00"));
    assert!(e.raised && e.matches_stored);

    // `doudi findings explain ID` prints the same in Chinese and English.
    let certs = tempfile::tempdir().unwrap();
    let who = app.identity("medical_insurance", None);
    std::fs::write(certs.path().join("ca.pem"), &who.ca_pem).unwrap();
    std::fs::write(certs.path().join("medical_insurance.pem"), &who.cert_pem).unwrap();
    std::fs::write(certs.path().join("medical_insurance.key"), &who.key_pem).unwrap();
    let args = doudi::client::findings::ExplainArgs {
        connect: doudi::client::ConnectArgs::from_dir(&app.server, certs.path(), "medical_insurance"),
        finding_id: B_ID.into(),
        purpose: "explain test".into(),
        json: false,
    };
    let text = doudi::client::findings::render(&doudi::client::findings::explain(&args).await.unwrap());
    for want in [
        "expected_ma = 1300.00",
        "医疗救助应付 = min(max(0, 4000.00 − 2000.00) × 65%, 20000.00)",
        "assistance owed = min(max(0, 4000.00 − 2000.00) × 65%, 20000.00)",
        "应付 1300.00 − 已付 0.00 = 1300.00 > 容差 1.00，且未支付",
        "Agrees with the stored finding: 是 yes",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }

    // Refusals: an agency without findings; unknown findings (a coverage one of a quarter never frozen); bad input.
    let mut edu = app.client("education").await;
    assert_eq!(edu.medical.explain_finding(explain_req(B_ID)).await.unwrap_err().code(), Code::PermissionDenied);
    let s = mi
        .medical
        .explain_finding(explain_req("medical/medical_insurance/B-NONE/ASSISTANCE_MISSED"))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::NotFound, "{s:?}");
    let unknown = format!("coverage/2023Q2/UNINSURED/{}", "ab".repeat(32));
    assert_eq!(mi.medical.explain_finding(explain_req(&unknown)).await.unwrap_err().code(), Code::NotFound);
    for bad in ["", "medical/medical_insurance/B-621022/NOPE", "coverage/2023Q2/UNINSURED/ab"] {
        let s = mi.medical.explain_finding(explain_req(bad)).await.unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument, "{bad}: {s:?}");
        assert!(s.message().starts_with("finding_id: "), "{s:?}");
    }
    let mut xifeng = app.client_in("medical_insurance", Some("621002")).await;
    assert_eq!(xifeng.medical.explain_finding(explain_req(B_ID)).await.unwrap_err().code(), Code::PermissionDenied);
    app.stop().await;
}

/// The explanation, recomputed from stored data only, agrees with every stored finding of the demo's medical
/// population (the settlement generator plants every finding code): raised now, with the stored amounts and policy
/// version.
#[apply(e2e!)]
#[tokio::test]
async fn every_stored_finding_of_a_population_is_explained_by_the_stored_data() {
    let app = spawn_app().await;
    let pop = Population::generate(&SynthConfig { persons: 2_000, ..SynthConfig::default() });
    for agency in ["civil_affairs", "medical_insurance"] {
        let mut c = app.client(agency).await;
        let facts: Vec<pb::Fact> = pop.facts(agency).map(|f| fact_out(&f)).collect();
        for chunk in facts.chunks(5_000) {
            c.exchange.push_facts(pb::PushFactsRequest { facts: chunk.to_vec() }).await.unwrap();
        }
    }
    let mut medical = app.client("medical_insurance").await;
    let mut civil = app.client("civil_affairs").await;
    let config = SettlementConfig { share: 0.5, ..SettlementConfig::default() };
    let report = doudi::tools::demo::medical::run(&pop, &config, &mut medical, &mut civil).await.unwrap();

    let store = &app.app_hub.store;
    let versions: Vec<_> = store.medical_policies().await.unwrap().into_iter().map(|p| p.params).collect();
    let filter = FindingFilter { include_resolved: true, ..FindingFilter::default() };
    let findings = store.list_findings(&filter, None, 1_000_000).await.unwrap();
    assert!(findings.len() > 100, "a population with findings: {}", findings.len());
    let mut codes = std::collections::BTreeSet::new();
    for f in &findings {
        let id = doudi::hub::finding_id_of(f);
        let inputs = store.medical_inputs(&f.person_key).await.unwrap();
        let e = doudi::hub::explain::explain_medical(&id, f, &inputs, &versions).unwrap();
        assert!(e.matches_stored, "{}: {e:?}", id.to_id_string());
        assert_eq!(e.raised, f.resolved_at.is_none(), "{}", id.to_id_string());
        codes.insert(e.code);
    }
    // Every code the generator planted is among them.
    let planted: std::collections::BTreeSet<String> =
        report.expected.by_code.iter().filter(|(_, n)| **n > 0).map(|(c, _)| c.to_string()).collect();
    assert_eq!(codes, planted);
    app.stop().await;
}

/// Every coverage finding of a frozen synthetic population explains itself: the rule, recomputed over the person's
/// status rows in the snapshot and the fact versions they pin, is broken (raised) for every stored row.
#[apply(e2e!)]
#[tokio::test]
async fn every_coverage_finding_of_a_population_is_explained_by_its_snapshot_rows() {
    let app = spawn_app().await;
    let pop = Population::generate(&SynthConfig { persons: 2_000, ..SynthConfig::default() });
    for agency in doudi::tools::synth::AGENCIES {
        let mut c = app.client(agency).await;
        let facts: Vec<pb::Fact> = pop.facts(agency).map(|f| fact_out(&f)).collect();
        for chunk in facts.chunks(5_000) {
            c.exchange.push_facts(pb::PushFactsRequest { facts: chunk.to_vec() }).await.unwrap();
        }
    }
    let mut civil = app.client("civil_affairs").await;
    civil.coordination.create_snapshot(pb::CreateSnapshotRequest { quarter: "2023Q2".into() }).await.unwrap();
    let mut ids = Vec::new();
    let mut req = pb::ListCoverageFindingsRequest {
        quarter: "2023Q2".into(),
        page_size: 1_000,
        purpose: "explain test".into(),
        ..Default::default()
    };
    loop {
        let page = civil.coordination.list_coverage_findings(req.clone()).await.unwrap().into_inner();
        ids.extend(page.findings.into_iter().map(|f| (f.finding_id, f.code)));
        if page.next_page_token.is_empty() {
            break;
        }
        req.page_token = page.next_page_token;
    }
    // The gaps the generator planted (synth.rs), rule by rule, are the findings listed.
    let expected = pop.expected();
    assert!(!ids.is_empty());
    assert_eq!(ids.len(), doudi::tools::synth::GAP_RULES.iter().map(|r| expected.gaps[r]).sum::<usize>());
    for (id, code) in &ids {
        let e = civil.medical.explain_finding(explain_req(id)).await.unwrap().into_inner();
        assert_eq!(&e.code, code);
        assert!(e.raised && e.matches_stored, "{id}: {e:?}");
        assert_eq!(e.test.as_ref().map(|t| t.value.as_str()), Some("raised"));
        assert!(!e.inputs.is_empty() && e.inputs.iter().all(|l| l.value.len() == 64), "{id}");
    }
    app.stop().await;
}
