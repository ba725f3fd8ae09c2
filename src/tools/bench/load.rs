//! The load of P1–P5: exactly `n` facts of the synthetic population (the demo's generator), split over the five
//! agencies in the population's own proportions, and the five agencies streaming them at once over mTLS.

use std::time::{Duration, Instant};

use crate::domain::fact::Fact;
use crate::grpc::convert::fact_out;
use crate::grpc::pb;
use crate::tools::synth::{AGENCIES, Population, SynthConfig};

use super::hub::ChildHub;

/// Facts per StreamFacts message (the demo's and `doudi push`'s size), and per floor transaction.
pub const BATCH: usize = 2_000;

/// A population big enough for `n` facts (dibao + tekun persons grown until it yields at least `n`).
pub fn population_for(n: usize) -> Population {
    // The default population yields about 4.48 facts per dibao/tekun person.
    let mut persons = (n as f64 / 4.4).ceil() as usize + 10;
    loop {
        let pop = Population::generate(&SynthConfig { persons, ..SynthConfig::default() });
        let total: usize = pop.expected().facts_per_agency.values().sum();
        if total >= n {
            return pop;
        }
        persons = persons * 21 / 20 + 10;
    }
}

/// `n` facts of `pop`: each agency's first facts (persons in generation order), the shares as in the population.
pub fn facts(pop: &Population, n: usize) -> Vec<(&'static str, Vec<Fact>)> {
    let all: Vec<(&'static str, Vec<Fact>)> = AGENCIES.iter().map(|a| (*a, pop.facts(a).collect())).collect();
    let total: usize = all.iter().map(|(_, f)| f.len()).sum();
    assert!(total >= n, "population too small: {total} facts < {n}");
    let mut keep: Vec<usize> = all.iter().map(|(_, f)| f.len() * n / total).collect();
    let mut missing = n - keep.iter().sum::<usize>();
    for (k, (_, f)) in keep.iter_mut().zip(&all) {
        let more = missing.min(f.len() - *k);
        *k += more;
        missing -= more;
    }
    all.into_iter().zip(keep).map(|((a, mut f), k)| (a, f.drain(..k).collect())).collect()
}

/// The facts as StreamFacts messages of `batch`, per agency (built before anything is timed).
pub fn messages(facts: &[(&'static str, Vec<Fact>)], batch: usize) -> Vec<(&'static str, Vec<pb::PushFactsRequest>)> {
    facts
        .iter()
        .map(|(a, f)| {
            let msgs =
                f.chunks(batch).map(|c| pb::PushFactsRequest { facts: c.iter().map(fact_out).collect() }).collect();
            (*a, msgs)
        })
        .collect()
}

/// What one streaming run did.
#[derive(Debug, Clone, Copy)]
pub struct StreamRun {
    /// Facts the hub counted in its five responses (every outcome).
    pub processed: u64,
    /// Of them ACCEPTED.
    pub accepted: u64,
    pub elapsed: Duration,
}

/// Five agencies (one connection each, connected before the clock starts) stream their messages at once, one
/// StreamFacts each; the time runs from the first message to the last response.
pub async fn stream(hub: &ChildHub, msgs: Vec<(&'static str, Vec<pb::PushFactsRequest>)>) -> anyhow::Result<StreamRun> {
    let mut clients = Vec::new();
    for (agency, m) in msgs {
        clients.push((hub.client(agency).await?, m));
    }
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(clients.len() + 1));
    let mut tasks = Vec::new();
    for (mut c, m) in clients {
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let resp = c.exchange.stream_facts(tokio_stream::iter(m)).await?.into_inner();
            anyhow::Ok(resp.counts.unwrap_or_default())
        }));
    }
    start.wait().await;
    let t = Instant::now();
    let (mut processed, mut accepted) = (0, 0);
    for task in tasks {
        let c = task.await??;
        processed += c.accepted + c.new_version + c.duplicate + c.stale + c.rejected;
        accepted += c.accepted;
    }
    Ok(StreamRun { processed, accepted, elapsed: t.elapsed() })
}
