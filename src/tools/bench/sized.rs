//! P1, P2, P3, P5 and P6: two runs, at a tenth of the facts and at all of them, each on a fresh child hub.
//!
//! Per run: the floor (P1, in process, before the hub starts), the hub started, five agencies streaming the facts
//! (P1), the hub's peak RSS read (P5), then on the larger run P2 and P10, and on both P3 (CreateSnapshot), then the
//! hub stopped. Before the larger run, P6 runs on a hub of its own under the same load ([`p6_pass`]). Progress goes to stderr, figures to stdout.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::hub::ChildHub;
use super::{BenchArgs, Figure, Output, load, p1, p2, p3, p6, p10};

const MIB: f64 = 1024.0 * 1024.0;

/// What one run measured.
struct Run {
    n: usize,
    persons: usize,
    /// P1's StreamFacts rate, facts/s.
    rate: f64,
    peak_rss: u64,
    snapshot: Option<Duration>,
}

pub async fn run(args: &BenchArgs, out: &mut Output) -> anyhow::Result<()> {
    let wants = |id: &str| args.only.iter().any(|o| o == id);
    let exe = match &args.hub_exe {
        Some(p) => p.clone(),
        None => std::env::current_exe()?,
    };
    let (pop, large) = match (args.facts, args.persons) {
        (Some(n), _) => (load::population_for(n), n),
        (None, Some(p)) => {
            let pop = crate::tools::synth::Population::generate(&crate::tools::synth::SynthConfig {
                persons: p,
                ..Default::default()
            });
            let n = pop.expected().facts_per_agency.values().sum();
            (pop, n)
        }
        (None, None) => (load::population_for(1_000_000), 1_000_000),
    };
    let small = (large / 10).max(1);
    let as_of = pop.reference_date().to_string();
    let mut runs = Vec::new();
    for n in [small, large] {
        let facts = load::facts(&pop, n);
        let persons =
            facts.iter().flat_map(|(_, f)| f.iter().map(|f| f.id_number.as_str())).collect::<HashSet<_>>().len();
        // CPU of this process during the floor (the inserts, the rows' preparation and the store's checkpointer).
        let mut floor_cpu = 0.0;
        let (floor, engine) = if wants("P1") {
            eprintln!("bench: floor, {n} facts inserted straight into the tables …");
            let cpu = super::hub::cpu_secs_of("/proc/self/stat")?;
            let floor = p1::floor(&facts, args.batch).await?;
            floor_cpu = super::hub::cpu_secs_of("/proc/self/stat")? - cpu;
            eprintln!("bench: engine floor, {n} facts' bytes appended to an (integer key, blob) table …");
            (Some(floor), Some(p1::engine_floor(&facts, args.batch).await?))
        } else {
            (None, None)
        };
        let ids: Arc<Vec<String>> = Arc::new(
            facts
                .iter()
                .filter(|(a, _)| *a == crate::domain::agency::AgencyCode::CIVIL_AFFAIRS)
                .flat_map(|(_, f)| f.iter().map(|f| f.id_number.as_str().to_owned()))
                .collect(),
        );
        let msgs = load::messages(&facts, args.batch);
        drop(facts);
        if n == large && wants("P6") {
            p6_pass(&exe, &pop, n, args.batch, out).await?;
        }
        let hub = ChildHub::start(&exe)?;
        let cpu_before = hub.cpu_secs()?;
        eprintln!("bench: hub pid {} on {}; P1, five agencies streaming {n} facts …", hub.pid(), hub.addr);
        let s = load::stream(&hub, msgs).await?;
        let peak_rss = hub.peak_rss()?;
        let hub_cpu = hub.cpu_secs()? - cpu_before;
        if s.processed != n as u64 || s.accepted != n as u64 {
            anyhow::bail!("the hub processed {} and accepted {} of {n} facts", s.processed, s.accepted);
        }
        let rate = n as f64 / s.elapsed.as_secs_f64();
        if let Some(floor) = floor {
            let floor_rate = n as f64 / floor.as_secs_f64();
            let ratio = rate / floor_rate;
            Figure::against_floor(
                "P1",
                "StreamFacts ingest, 5 agencies at once over mTLS, hub a child process on SQLite; floor = the same rows \
                 inserted straight into the same tables in process, one transaction per batch",
                rate,
                "facts/s",
                floor_rate,
                n,
            )
            .target(serde_json::json!({ "ratio_min": 0.5, "value_min": 100_000 }), ratio >= 0.5 && rate >= 100_000.0)
            .with("secs", round(s.elapsed.as_secs_f64()))
            .with("floor_secs", round(floor.as_secs_f64()))
            .with("floor_cpu_secs", round(floor_cpu))
            .with("hub_cpu_secs", round(hub_cpu))
            .with("hub_cpu_us_per_fact", round(hub_cpu * 1e6 / n as f64))
            .with("batch", args.batch)
            .with("persons", persons)
            .emit(out)?;
        }
        if let Some(engine) = engine {
            let engine_rate = n as f64 / engine.as_secs_f64();
            Figure::against_floor(
                "P1-engine",
                "StreamFacts ingest as in P1 against the storage engine's own limit: the same facts' stored bytes \
                 appended as blobs to a minimal (integer key in arrival order, blob) table, one transaction per batch",
                rate,
                "facts/s",
                engine_rate,
                n,
            )
            .with("engine_secs", round(engine.as_secs_f64()))
            .with("batch", args.batch)
            .emit(out)?;
        }
        if n == large && wants("P2") {
            eprintln!("bench: P2, GetRecipient vs Health/Check, {} concurrent …", p2::CONCURRENCY);
            let (get, health) = p2::run(&hub, ids.clone(), &as_of, Duration::from_secs(args.p2_secs), 2).await?;
            let ratio = get.rate() / health.rate();
            let p99 = get.quantile_ms(0.99);
            Figure::against_floor(
                "P2",
                "GetRecipient over mTLS, 32 concurrent requests on one connection, P1's data set (civil_affairs, \
                 each read audited); floor = grpc.health.v1.Health/Check, same server, connection and concurrency",
                get.rate(),
                "requests/s",
                health.rate(),
                n,
            )
            .target(serde_json::json!({ "ratio_min": 0.6, "p99_ms_max": 5.0 }), ratio >= 0.6 && p99 <= 5.0)
            .with("p50_ms", round(get.quantile_ms(0.5)))
            .with("p99_ms", round(p99))
            .with("floor_p50_ms", round(health.quantile_ms(0.5)))
            .with("floor_p99_ms", round(health.quantile_ms(0.99)))
            .with("requests", get.requests)
            .with("errors", get.errors + health.errors)
            .with("concurrency", p2::CONCURRENCY)
            .emit(out)?;
        }
        if n == large && wants("P10") {
            let mut distinct: Vec<String> = ids.iter().cloned().collect::<HashSet<_>>().into_iter().collect();
            distinct.sort_unstable();
            eprintln!("bench: P10, MatchRecipients of {} ID numbers in {} calls …", distinct.len(), p10::CALLS);
            let o = p10::run(&hub, distinct, &as_of).await?;
            let rate = o.ids as f64 / o.elapsed.as_secs_f64();
            Figure::against_target(
                "P10",
                "MatchRecipients over mTLS on P1's data set: every distinct ID number of civil affairs' facts compared \
                 once as civil_affairs (each message audited), 4 concurrent calls on one connection, 5,000 a message",
                rate,
                "ID numbers/s",
                50_000.0,
                n,
            )
            .target(serde_json::json!({ "value_min": 50_000 }), rate >= 50_000.0)
            .with("ids", o.ids)
            .with("enrolled", o.enrolled)
            .with("not_enrolled", o.not_enrolled)
            .with("secs", round(o.elapsed.as_secs_f64()))
            .emit(out)?;
        }
        let snapshot = if wants("P3") {
            eprintln!("bench: P3, CreateSnapshot {} …", p3::QUARTER);
            Some(p3::run(&hub).await?)
        } else {
            None
        };
        hub.stop()?;
        runs.push(Run { n, persons, rate, peak_rss, snapshot });
    }
    let (a, b) = (&runs[0], &runs[1]);
    if wants("P1") {
        let growth = b.rate / a.rate;
        Figure::against_target(
            "P1-growth",
            "StreamFacts rate at n facts / rate at n/10 facts (1 = the cost of a fact does not grow with the database)",
            growth,
            "x",
            0.8,
            b.n,
        )
        .target(serde_json::json!({ "value_min": 0.8 }), growth >= 0.8)
        .with("small_rate", a.rate.round())
        .with("large_rate", b.rate.round())
        .with("small_n", a.n)
        .emit(out)?;
    }
    if let (Some(ta), Some(tb)) = (a.snapshot, b.snapshot) {
        let secs = tb.as_secs_f64();
        Figure::against_target(
            "P3",
            "CreateSnapshot 2023Q2 over mTLS on P1's larger data set (docs/spec/performance.md's 1,000,000 persons is \
             not run: see `persons`)",
            secs,
            "s",
            60.0,
            b.n,
        )
        .target(serde_json::json!({ "value_max": 60.0, "at_persons": 1_000_000 }), secs <= 60.0)
        .with("persons", b.persons)
        .emit(out)?;
        let growth = secs / ta.as_secs_f64();
        let rows = b.n as f64 / a.n as f64;
        Figure::against_target(
            "P3-growth",
            "CreateSnapshot time at n facts / time at n/10 facts (linear = 10)",
            growth,
            "x",
            12.0,
            b.n,
        )
        .target(serde_json::json!({ "value_max": 12.0 * rows / 10.0 }), growth <= 12.0 * rows / 10.0)
        .with("small_secs", round(ta.as_secs_f64()))
        .with("large_secs", round(secs))
        .with("small_n", a.n)
        .with("persons", b.persons)
        .with("small_persons", a.persons)
        .emit(out)?;
    }
    if wants("P5") {
        let (va, vb) = (a.peak_rss as f64 / MIB, b.peak_rss as f64 / MIB);
        let ratio = vb / va;
        Figure::against_floor(
            "P5",
            "hub peak RSS (VmHWM of the child process) during P1 at n facts; floor = the same at n/10 facts",
            vb,
            "MiB",
            va,
            b.n,
        )
        .target(serde_json::json!({ "ratio_max": 1.2, "value_max": 256.0 }), ratio <= 1.2 && vb <= 256.0)
        .with("small_n", a.n)
        .emit(out)?;
    }
    Ok(())
}

/// P6 on its own fresh hub under P1's load (the same `n` facts, five agencies streaming): a probe `PushFacts` every
/// 50 ms and a WatchChanges subscriber timing each probe's delivery ([`p6`]). It runs apart from the P1 run so that
/// P1 and P5 measure the ingest alone, as docs/spec/performance.md defines them; the ingest rate while the probes and
/// the watcher ran is printed in P6's line (`ingest_facts_per_s`), so the cost of a live subscriber stays visible.
async fn p6_pass(
    exe: &std::path::Path,
    pop: &crate::tools::synth::Population,
    n: usize,
    batch: usize,
    out: &mut Output,
) -> anyhow::Result<()> {
    let msgs = load::messages(&load::facts(pop, n), batch);
    let hub = ChildHub::start(exe)?;
    eprintln!("bench: hub pid {} on {}; P6, a WatchChanges subscriber while {n} facts stream …", hub.pid(), hub.addr);
    let (stamps, stop) = (p6::Stamps::default(), Arc::new(std::sync::atomic::AtomicBool::new(false)));
    let load = async {
        let r = load::stream(&hub, msgs).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        r
    };
    let (s, probes, watched) = tokio::join!(
        load,
        p6::probe(&hub, stamps.clone(), stop.clone()),
        p6::watch(&hub, stamps.clone(), stop.clone())
    );
    let ((delays, resumes), s, (probes, answered)) = (watched?, s?, probes?);
    hub.stop()?;
    let p99 = p6::quantile_ms(&delays, 0.99);
    Figure::against_target(
        "P6",
        "push-to-WatchChanges delivery under P1's load (its own run of the same facts): a probe PushFacts every 50 ms \
         (civil_affairs, own connection) while the five agencies stream; delay from the call to its change arriving \
         at a civil_affairs watcher (the wait for the single writer behind P1's batches, the commit and the feed \
         included)",
        p99,
        "ms (p99)",
        100.0,
        n,
    )
    .target(serde_json::json!({ "p99_ms_max": 100.0 }), p99 <= 100.0)
    .with("p50_ms", round(p6::quantile_ms(&delays, 0.5)))
    .with("max_ms", round(p6::quantile_ms(&delays, 1.0)))
    .with("push_p50_ms", round(p6::quantile_ms(&answered, 0.5)))
    .with("push_p99_ms", round(p6::quantile_ms(&answered, 0.99)))
    .with("probes", probes)
    .with("changes", delays.len())
    .with("resumes", resumes)
    .with("ingest_facts_per_s", (n as f64 / s.elapsed.as_secs_f64()).round())
    .emit(out)?;
    Ok(())
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}
