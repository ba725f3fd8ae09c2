//! The demo's medical part on a small population: the findings the hub raises, read back by code, must equal the
//! faults `synth::settlements` planted (counted from its planting decisions, not by running the checker).

use doudi::grpc::convert::fact_out;
use doudi::grpc::pb;
use doudi::tools::synth::settlements::SettlementConfig;
use doudi::tools::synth::{Population, SynthConfig};
use macro_rules_attribute::apply;

use crate::support::spawn_app;

#[apply(e2e!)]
#[tokio::test]
async fn the_demo_finds_exactly_the_planted_faults() {
    let app = spawn_app().await;
    // 5,000 dibao + tekun persons (about 6,000 persons in all); half of them with settlements, so that every fault
    // kind is planted at least once.
    let pop = Population::generate(&SynthConfig { persons: 5_000, ..SynthConfig::default() });
    // The cross-check reads assistance (civil_affairs) and insurance (medical_insurance) facts only.
    for agency in ["civil_affairs", "medical_insurance"] {
        let mut c = app.client(agency).await;
        let facts: Vec<pb::Fact> = pop.facts(agency).map(|f| fact_out(&f)).collect();
        for chunk in facts.chunks(5_000) {
            let r = c.exchange.push_facts(pb::PushFactsRequest { facts: chunk.to_vec() }).await.unwrap().into_inner();
            assert!(r.results.iter().all(|r| r.outcome == pb::FactOutcome::Accepted as i32));
        }
    }
    let mut medical = app.client("medical_insurance").await;
    let mut civil = app.client("civil_affairs").await;
    let config = SettlementConfig { share: 0.5, ..SettlementConfig::default() };
    let report = doudi::tools::demo::medical::run(&pop, &config, &mut medical, &mut civil).await.unwrap();

    for (code, planted) in &report.expected.by_code {
        assert!(*planted > 0, "{code}: nothing planted; raise the share or the population");
        assert_eq!(report.found[code], *planted as i64, "{code}: hub vs planted");
    }
    assert!(report.mismatches().is_empty());
    assert_eq!(report.accepted, report.expected.settlements);
    assert_eq!((report.duplicate, report.rejected), (0, 0));
    // The hub's recomputation owes what the generator's correct payer computed, tier by tier.
    assert_eq!(report.hub_expected, report.expected.expected);
    // One early warning per HIGH_BURDEN finding, and a recheck of an unchanged year changes nothing.
    assert_eq!(report.high_burden_warnings, report.expected.by_code["HIGH_BURDEN"]);
    assert_eq!((report.recheck_added, report.recheck_resolved), (0, 0));
    app.stop().await;
}

/// Migration 0005 loads docs/spec/medical.md's example values as `621000-2023-example` (the same values as
/// `PolicyParams::example_2023`, written from docs/spec/medical.md's tables) and the national floors of 国办发〔2021〕42号 as
/// `621000-national-floor`, which no floor check complains about; and a version added later is used at once.
#[apply(e2e!)]
#[tokio::test]
async fn policy_versions_loaded_by_the_migration_and_added_later() {
    use doudi::domain::medical::PolicyParams;
    use doudi::store::StoredPolicy;
    let app = spawn_app().await;
    let store = &app.app_hub.store;
    let all = store.medical_policies().await.unwrap();
    let versions: Vec<&str> = all.iter().map(|p| p.params.version.as_str()).collect();
    assert_eq!(versions, ["621000-national-floor", "621000-2023-example"]);
    assert_eq!(all[1].params, PolicyParams::example_2023());
    assert!(all.iter().all(|p| p.example), "both are marked as placeholders");
    let floor = &all[0].params;
    assert!(floor.national_floor_warnings().is_empty(), "{:?}", floor.national_floor_warnings());
    assert_eq!(floor.groups[0].ma_ratio.to_string(), "0.70", "group 1 at the national floor of 70%");

    // A 2024 version with a higher income (21,000.00): GetPolicy as of 2024-03-01 answers it, and the 2023 example
    // now ends on 2024-01-01.
    let mut v2024 = PolicyParams::example_2023();
    v2024.version = "621000-2024-test".into();
    v2024.effective_from = "2024-01-01".parse().unwrap();
    v2024.prior_year_income = "21000.00".parse().unwrap();
    let added = StoredPolicy { params: v2024.clone(), example: false, source: "test".into() };
    assert!(store.add_medical_policy(&added).await.unwrap());
    assert!(!store.add_medical_policy(&added).await.unwrap(), "a version is never overwritten");
    let mut c = app.client("education").await;
    let r = c
        .reference
        .get_policy(pb::GetPolicyRequest { as_of: "2024-03-01".into(), pooling_area: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.medical_policies.len(), 1);
    assert_eq!(r.medical_policies[0].version, "621000-2024-test");
    assert_eq!(r.medical_policies[0].prior_year_income, "21000.00");
    // HIGH_BURDEN threshold = 100% of income; group 3's deductible = 10% of 21,000.00 = 2,100.00.
    assert_eq!(r.medical_policies[0].high_burden_threshold, "21000.00");
    assert_eq!(r.medical_policies[0].groups[2].ma_deductible, "2100.00");
    let r = c
        .reference
        .get_policy(pb::GetPolicyRequest { as_of: "2023-12-31".into(), pooling_area: "621000".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.medical_policies[0].version, "621000-2023-example");
    assert_eq!(r.medical_policies[0].effective_to, "2024-01-01");
    app.stop().await;
}
