//! P4: the medical cross-check, in process and end to end (`SubmitSettlements` over mTLS).

use std::collections::HashMap;
use std::time::Instant;

use crate::domain::fact::{AssistanceStatus, Payload, PayloadKind};
use crate::domain::medical::PolicyParams;
use crate::domain::medical_history::{Cover, Enrolment, PersonHistory, recheck_person};
use crate::grpc::convert::fact_out;
use crate::grpc::medical::settlement_out;
use crate::grpc::pb;
use crate::tools::synth::settlements::{self, SettlementConfig};
use crate::tools::synth::{Population, SynthConfig};

use super::Figure;

/// The person histories the hub would build from the population's facts (assistance and insurance).
fn histories(pop: &Population, set: &settlements::SettlementSet) -> Vec<PersonHistory> {
    let mut by_person: HashMap<usize, PersonHistory> = HashMap::new();
    for s in &set.settlements {
        let h = by_person.entry(s.person_index).or_insert_with(|| {
            let person = &pop.persons()[s.person_index];
            let mut h = PersonHistory::default();
            for agency in ["civil_affairs", "medical_insurance"] {
                for f in pop.facts_of(person, agency) {
                    match &f.payload {
                        Payload::Assistance(a) if a.status == Some(AssistanceStatus::Active) => {
                            if let Some(program) = a.program {
                                h.enrolments.push(Enrolment { program, valid_from: f.valid_from, valid_to: f.valid_to })
                            }
                        }
                        p if p.kind() == PayloadKind::MedicalInsurance => {
                            h.covers.push(Cover { valid_from: f.valid_from, valid_to: f.valid_to })
                        }
                        _ => {}
                    }
                }
            }
            h
        });
        h.settlements.push(s.settlement.clone());
    }
    by_person.into_values().collect()
}

/// P4: cross-check rules in process (target ≥ 200,000 settlements/s) and `SubmitSettlements` end to end over mTLS
/// on a fresh SQLite hub (target ≥ 20,000 settlements/s).
pub async fn run(persons: usize, out: &mut super::Output) -> anyhow::Result<()> {
    let pop = Population::generate(&SynthConfig { persons, ..SynthConfig::default() });
    let set = settlements::generate(&pop, &SettlementConfig::default());
    let n = set.settlements.len();
    let versions = [PolicyParams::example_2023()];

    // In process: every person's whole history rechecked, as the hub does on arrival and on RecheckPeriod.
    let hs = histories(&pop, &set);
    let mut rounds = 0usize;
    let t = Instant::now();
    let mut findings = 0usize;
    while rounds == 0 || t.elapsed().as_secs_f64() < 2.0 {
        for h in &hs {
            findings += recheck_person(h, &versions, "621000").map(|r| r.findings.len()).unwrap_or(0);
        }
        rounds += 1;
    }
    let rate = (n * rounds) as f64 / t.elapsed().as_secs_f64();
    std::hint::black_box(findings);
    Figure::against_target(
        "P4",
        "cross-check rules in process (recheck_person over each person's year)",
        rate,
        "settlements/s",
        200_000.0,
        n,
    )
    .emit(out)?;

    // End to end: a hub (child process, as for P1) on a fresh database; the persons' facts pushed first (not timed).
    let exe = std::env::current_exe()?;
    let hub = tokio::task::spawn_blocking(move || super::hub::ChildHub::start(&exe)).await??;
    let client = |agency: &'static str| hub.client(agency);
    for agency in ["civil_affairs", "medical_insurance"] {
        let mut c = client(agency).await?;
        let facts: Vec<pb::Fact> = pop.facts(agency).map(|f| fact_out(&f)).collect();
        for chunk in facts.chunks(10_000) {
            c.exchange.push_facts(pb::PushFactsRequest { facts: chunk.to_vec() }).await?;
        }
    }
    let wire: Vec<pb::Settlement> =
        set.settlements.iter().map(|s| settlement_out(&s.id_number, &s.settlement)).collect();
    let mut mi = client("medical_insurance").await?;
    let t = Instant::now();
    for chunk in wire.chunks(crate::tools::demo::medical::BATCH) {
        mi.medical.submit_settlements(pb::SubmitSettlementsRequest { settlements: chunk.to_vec() }).await?;
    }
    let rate = n as f64 / t.elapsed().as_secs_f64();
    Figure::against_target(
        "P4",
        "SubmitSettlements end to end (mTLS, SQLite, batches of 5,000, one client; hub a child process)",
        rate,
        "settlements/s",
        20_000.0,
        n,
    )
    .emit(out)?;
    hub.stop()?;
    Ok(())
}
