//! P6: change-feed latency under P1's load (docs/spec/performance.md: push-to-`WatchChanges` delivery p99 ≤ 100 ms
//! while P1 runs). No floor: the ratio is p99 / 100 ms.
//!
//! While P1's five agencies stream, a probe client pushes one new assistance fact every 50 ms with `PushFacts`
//! (civil_affairs, `fact_id` `P6-PROBE-n`, its own connection), and a `WatchChanges` stream (civil_affairs, kind
//! ASSISTANCE) opened before the load starts waits for each probe's change. The delay is from just before the probe's
//! `PushFacts` call to its change arriving at the watcher: the probe's wait for the single writer behind P1's
//! batches, its transaction and commit, and the feed's wake-up and read. The bulk streams' own facts also reach the
//! watcher and are skipped (their send time says only how far ahead the client has buffered, not a push). A
//! watcher that falls too far behind is told ABORTED "resume from cursor N"; it resumes, and is counted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::grpc::pb;

use super::hub::ChildHub;

/// Time between probes.
pub const PROBE_EVERY: Duration = Duration::from_millis(50);

/// The instant each probe's `PushFacts` was called, by `fact_id`; removed when its change arrives.
#[derive(Default, Clone)]
pub struct Stamps(Arc<Mutex<HashMap<String, Instant>>>);

impl Stamps {
    fn put(&self, fact_id: String, at: Instant) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(fact_id, at);
    }

    fn take(&self, fact_id: &str) -> Option<Instant> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(fact_id)
    }

    fn is_empty(&self) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }
}

/// Probe `n`: a valid rural dibao fact of a person outside the synthetic population (birth year 1931).
fn probe_fact(n: u16) -> pb::Fact {
    let birth =
        chrono::NaiveDate::from_ymd_opt(1931, 1 + (n / 28 % 12) as u32, 1 + (n % 28) as u32).unwrap_or_default();
    let id = crate::domain::id_number::IdNumber::from_parts("621002", birth, 900 + n % 99);
    pb::Fact {
        fact_id: format!("P6-PROBE-{n}"),
        source_version: 1,
        id_number: id.as_str().to_owned(),
        division_code: "621002".into(),
        valid_from: "2023-01-01".into(),
        payload: Some(pb::fact::Payload::Assistance(pb::Assistance {
            program: pb::Program::Dibao as i32,
            residence: pb::Residence::Rural as i32,
            rural_class: Some(2),
            household_id: format!("P6-HH-{n}"),
            monthly_benefit: "442.00".into(),
            status: pb::AssistanceStatus::Active as i32,
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// Push a probe every [`PROBE_EVERY`] until `stop`; returns how many were accepted and each `PushFacts` call's time
/// to its answer in microseconds, sorted (the writer's share of the delay: the wait behind the bulk group in
/// progress, the probe's transaction and its commit).
pub async fn probe(hub: &ChildHub, stamps: Stamps, stop: Arc<AtomicBool>) -> anyhow::Result<(usize, Vec<u32>)> {
    let mut answered = Vec::new();
    let mut client = hub.client("civil_affairs").await?;
    let mut tick = tokio::time::interval(PROBE_EVERY);
    let mut n: u16 = 0;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let f = probe_fact(n);
        let id = f.fact_id.clone();
        let at = Instant::now();
        stamps.put(id.clone(), at);
        let r = client.exchange.push_facts(pb::PushFactsRequest { facts: vec![f] }).await?.into_inner();
        answered.push(at.elapsed().as_micros().min(u32::MAX as u128) as u32);
        if r.results.first().map(|r| r.outcome) != Some(pb::FactOutcome::Accepted as i32) {
            stamps.take(&id);
            anyhow::bail!("probe {id} not accepted: {:?}", r.results.first());
        }
        n += 1;
    }
    answered.sort_unstable();
    Ok((n as usize, answered))
}

/// The watcher: matches changes to probe stamps until `stop` is set and every stamped probe has arrived. Returns the
/// delays in microseconds, sorted, and how many times it resumed.
pub async fn watch(hub: &ChildHub, stamps: Stamps, stop: Arc<AtomicBool>) -> anyhow::Result<(Vec<u32>, usize)> {
    let mut client = hub.client("civil_affairs").await?;
    let mut delays = Vec::new();
    let mut cursor: Option<i64> = None;
    let mut resumes = 0;
    let mut failures_in_a_row = 0;
    let deadline_after_stop = Duration::from_secs(30);
    let mut stopped_at: Option<Instant> = None;
    'outer: loop {
        let req = pb::WatchChangesRequest {
            after_cursor: cursor,
            kinds: vec![pb::PayloadKind::Assistance as i32],
            purpose: "benchmark P6".into(),
            ..Default::default()
        };
        let mut stream = client.exchange.watch_changes(req).await?.into_inner();
        loop {
            if stop.load(Ordering::Relaxed) {
                let at = *stopped_at.get_or_insert_with(Instant::now);
                if stamps.is_empty() {
                    break 'outer;
                }
                if at.elapsed() > deadline_after_stop {
                    anyhow::bail!("probe changes still missing 30 s after the load ended");
                }
            }
            let m = match tokio::time::timeout(Duration::from_millis(200), stream.message()).await {
                Err(_) => continue,
                Ok(m) => m,
            };
            match m {
                Ok(Some(c)) => {
                    failures_in_a_row = 0;
                    cursor = Some(c.cursor);
                    if c.heartbeat {
                        continue;
                    }
                    let now = Instant::now();
                    if let Some(f) = &c.fact
                        && let Some(sent) = stamps.take(&f.fact_id)
                    {
                        delays.push(now.duration_since(sent).as_micros().min(u32::MAX as u128) as u32);
                    }
                }
                Ok(None) => anyhow::bail!("the watch ended cleanly, which the hub never does"),
                Err(s) => {
                    if let Some(v) = s.metadata().get(crate::grpc::watch::RESUME_CURSOR)
                        && let Ok(c) = v.to_str().unwrap_or_default().parse::<i64>()
                    {
                        cursor = Some(c);
                    }
                    resumes += 1;
                    failures_in_a_row += 1;
                    if failures_in_a_row > 1 {
                        anyhow::bail!("WatchChanges failed twice in a row: {s}");
                    }
                    continue 'outer;
                }
            }
        }
    }
    delays.sort_unstable();
    Ok((delays, resumes))
}

/// The `q` quantile (0..=1) of sorted microseconds, in milliseconds (nearest rank).
pub fn quantile_ms(sorted_us: &[u32], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    sorted_us[rank - 1] as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nearest rank: of 1..=100 ms the p99 is 99 ms and the p50 50 ms.
    #[test]
    fn quantiles_by_nearest_rank() {
        let us: Vec<u32> = (1..=100).map(|ms| ms * 1000).collect();
        assert_eq!(quantile_ms(&us, 0.99), 99.0);
        assert_eq!(quantile_ms(&us, 0.5), 50.0);
        assert!(quantile_ms(&[], 0.5).is_nan());
    }
}
