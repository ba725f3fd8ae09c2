//! The demo's medical part on a small population: the findings the hub raises, read back by code, must equal the
//! faults `synth::settlements` planted (counted from its planting decisions, not by running the checker).

use doudi::grpc::convert::fact_out;
use doudi::grpc::pb;
use doudi::synth::settlements::SettlementConfig;
use doudi::synth::{Population, SynthConfig};

use crate::support::spawn_app;

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
    let report = doudi::demo::medical::run(&pop, &config, &mut medical, &mut civil).await.unwrap();

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
