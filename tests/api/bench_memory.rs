//! P5 in CI (performance.md: hub memory bounded, not growing with the load): the hub binary runs as a child process
//! (as `doudi bench` runs it) and five agencies stream N and then 10×N facts of the synthetic population into two
//! fresh hubs over mTLS. The hub's peak RSS (`VmHWM`) of the larger run must stay within 1.5× the smaller run's plus a
//! fixed slack of 24 MiB — the writer connection's SQLite page cache (`cache_size = -24576` in `SqliteStore::open`), which
//! fills up to its bound as the database grows — and under performance.md's 256 MiB. No timing is asserted.

use doudi::bench::hub::ChildHub;
use doudi::bench::load;

const MIB: u64 = 1024 * 1024;

async fn peak_rss_after_ingest(pop: &doudi::synth::Population, n: usize) -> u64 {
    let msgs = load::messages(&load::facts(pop, n), load::BATCH);
    let hub = ChildHub::start(std::path::Path::new(env!("CARGO_BIN_EXE_doudi"))).expect("hub starts");
    let run = load::stream(&hub, msgs).await.expect("facts streamed");
    assert_eq!(run.accepted, n as u64, "every fact accepted");
    let peak = hub.peak_rss().expect("VmHWM readable");
    hub.stop().expect("hub stops");
    peak
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_peak_memory_is_bounded_when_the_load_grows_tenfold() {
    doudi::tls::install_crypto_provider();
    let (small, large) = (5_000, 50_000);
    let pop = load::population_for(large);
    let a = peak_rss_after_ingest(&pop, small).await;
    let b = peak_rss_after_ingest(&pop, large).await;
    eprintln!("hub VmHWM: {} MiB at {small} facts, {} MiB at {large} facts", a / MIB, b / MIB);
    assert!(b <= a * 3 / 2 + 24 * MIB, "peak RSS {b} B at {large} facts grew beyond 1.5 × {a} B + 24 MiB");
    assert!(b <= 256 * MIB, "peak RSS {b} B at {large} facts is over 256 MiB");
}
