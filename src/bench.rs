//! `doudi bench`: the performance figures of performance.md, measured on this machine, one JSON line each.
//!
//! Today: P4 (the medical cross-check), in process and end to end. The harness of the benchmark issue (P1–P6,
//! floors measured in the same run, a load client in its own process) extends this module.
//!
//! Each line: `{"id", "what", "value", "unit", "target", "ratio" (value / target), "cores", "n"}`.

use std::collections::HashMap;
use std::time::Instant;

use crate::certs;
use crate::client::{ClientIdentity, Clients, connect};
use crate::config::Config;
use crate::crypto::Keys;
use crate::domain::fact::{AssistanceStatus, Payload, PayloadKind};
use crate::domain::medical::PolicyParams;
use crate::domain::medical_history::{Cover, Enrolment, PersonHistory, recheck_person};
use crate::grpc::convert::fact_out;
use crate::grpc::medical::settlement_out;
use crate::grpc::pb;
use crate::server::Application;
use crate::synth::settlements::{self, SettlementConfig};
use crate::synth::{Population, SynthConfig};

/// Flags of `doudi bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Dibao and tekun persons of the synthetic population (others are added in proportion).
    #[arg(long, default_value_t = 211_300)]
    pub persons: usize,
    /// Only these figures, comma-separated (known: P4, P1-audit).
    #[arg(long, value_delimiter = ',', default_value = "P4")]
    pub only: Vec<String>,
}

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn line(id: &str, what: &str, value: f64, unit: &str, target: f64, n: usize) {
    let v = serde_json::json!({
        "id": id,
        "what": what,
        "value": (value * 10.0).round() / 10.0,
        "unit": unit,
        "target": target,
        "ratio": ((value / target) * 1000.0).round() / 1000.0,
        "cores": cores(),
        "n": n,
    });
    println!("{v}");
}

/// Run the benchmarks asked for.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    for id in &args.only {
        match id.as_str() {
            "P4" => p4(args.persons).await?,
            "P1-audit" => p1_audit(args.persons).await?,
            other => anyhow::bail!("unknown benchmark {other:?} (known: P4, P1-audit)"),
        }
    }
    Ok(())
}

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

/// The audit chain's cost on ingest (issue 7 item 1): every fact of the population pushed in process through
/// `Hub::push_facts` (parsing done, then ownership, scope, validation, ID encryption, version decisions; one
/// transaction per batch of 1,000) into a fresh SQLite database, once with each batch's audit event (SELECT of the
/// chain head, one event row, one `audit_persons` row per person of the batch) and once without. The value is the
/// audited rate, the floor the unaudited one; the ratio is the share of the rate the audit chain leaves. Each is the
/// best of two runs, alternating.
async fn p1_audit(persons: usize) -> anyhow::Result<()> {
    use crate::domain::agency::{AgencyCode, Principal};
    let pop = Population::generate(&SynthConfig { persons, ..SynthConfig::default() });
    // Two runs of each, alternating, best of each: the machine is shared and noisy, and order must not favour one.
    let mut rates = [0.0f64; 2];
    let mut n = 0;
    for (slot, skip_audit) in [(0, false), (1, true), (0, false), (1, true)] {
        let dir = tempfile::Builder::new().prefix("doudi-bench-").tempdir()?;
        let store = crate::store::Store::open(&format!("sqlite://{}", dir.path().join("bench.db").display())).await?;
        store.migrate().await?;
        let hub = crate::hub::Hub {
            store,
            keys: Keys::from_base64(&Keys::generate_base64())?,
            policy: Default::default(),
            limits: crate::hub::Limits { bench_skip_ingest_audit: skip_audit, ..Default::default() },
            clock: Default::default(),
            coverage: Default::default(),
        };
        let mut batches = Vec::new();
        for agency in AgencyCode::KNOWN.iter().filter(|a| **a != AgencyCode::LEADING_GROUP) {
            let principal = Principal::new(certs::DEFAULT_TRUST_DOMAIN, AgencyCode::parse(agency)?, None)?;
            let facts: Vec<_> = pop.facts(agency).collect();
            for chunk in facts.chunks(1_000) {
                batches.push((principal.clone(), chunk.to_vec()));
            }
        }
        n = batches.iter().map(|(_, b)| b.len()).sum::<usize>();
        let t = Instant::now();
        for (principal, batch) in batches {
            let results = hub
                .push_facts(&principal, "/doudi.v1.RecipientExchange/StreamFacts", batch.into_iter().map(Ok).collect())
                .await?;
            std::hint::black_box(results);
        }
        rates[slot] = rates[slot].max(n as f64 / t.elapsed().as_secs_f64());
        hub.store.close().await;
    }
    let v = serde_json::json!({
        "id": "P1-audit",
        "what": "in-process ingest (Hub::push_facts, batches of 1,000, SQLite) with the audit chain; floor = the same without it",
        "value": rates[0].round(),
        "unit": "facts/s",
        "floor": rates[1].round(),
        "ratio": ((rates[0] / rates[1]) * 1000.0).round() / 1000.0,
        "cores": cores(),
        "n": n,
    });
    println!("{v}");
    Ok(())
}

/// P4: cross-check rules in process (target ≥ 200,000 settlements/s) and `SubmitSettlements` end to end over mTLS
/// on a fresh SQLite hub (target ≥ 20,000 settlements/s).
async fn p4(persons: usize) -> anyhow::Result<()> {
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
    line(
        "P4",
        "cross-check rules in process (recheck_person over each person's year)",
        rate,
        "settlements/s",
        200_000.0,
        n,
    );

    // End to end: a hub on a fresh database; the persons' facts pushed first (not timed).
    let dir = tempfile::Builder::new().prefix("doudi-bench-").tempdir()?;
    let certs_dir = dir.path().join("certs");
    certs::init(&certs_dir, certs::DEFAULT_TRUST_DOMAIN, true)?;
    let config = Config {
        listen: "127.0.0.1:0".parse()?,
        database_url: format!("sqlite://{}", dir.path().join("bench.db").display()),
        certs_dir: certs_dir.clone(),
        data_key: Some(Keys::generate_base64().into()),
        max_message_bytes: 64 * 1024 * 1024,
        ..Config::default()
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let app = Application::build(&config, async {
        let _ = stop_rx.await;
    })
    .await?;
    let server = format!("https://localhost:{}", app.addr().port());
    let task = tokio::spawn(app.run());
    let client = |agency: &'static str| {
        let server = server.clone();
        let certs_dir = certs_dir.clone();
        async move {
            let id = ClientIdentity::from_dir(&certs_dir, agency)?;
            anyhow::Ok(Clients::new(connect(&server, "localhost", &id).await?, 64 * 1024 * 1024))
        }
    };
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
    for chunk in wire.chunks(crate::demo::medical::BATCH) {
        mi.medical.submit_settlements(pb::SubmitSettlementsRequest { settlements: chunk.to_vec() }).await?;
    }
    let rate = n as f64 / t.elapsed().as_secs_f64();
    line(
        "P4",
        "SubmitSettlements end to end (mTLS, SQLite, batches of 5,000, one client)",
        rate,
        "settlements/s",
        20_000.0,
        n,
    );
    let _ = stop_tx.send(());
    task.await??;
    Ok(())
}
