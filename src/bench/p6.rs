//! P6: change-feed latency under P1's load (performance.md: a change pushed by one agency reaches a `WatchChanges`
//! subscriber within p99 ≤ 100 ms while P1 runs). No floor: the ratio is p99 / 100 ms.
//!
//! A `WatchChanges` stream (civil_affairs, kind ASSISTANCE: exactly civil_affairs' own pushes) is open on the hub
//! before P1's five streams start. Each StreamFacts message of civil_affairs is stamped with the instant the client
//! hands it to the transport ([`Stamps::stamp`]); each change delivered is matched to its fact's stamp, and the
//! delay is `delivered − stamped`. It thus includes the hub's validation, the write transaction and the commit,
//! not only the feed. A watcher that falls too far behind is told ABORTED "resume from cursor N" by the hub; it
//! resumes from its cursor, as a client should, and the delays keep counting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::grpc::pb;

use super::hub::ChildHub;

/// When each watched fact's message was handed to the transport.
#[derive(Default, Clone)]
pub struct Stamps(Arc<Mutex<HashMap<String, Instant>>>);

impl Stamps {
    /// Stamp every fact of `msg` with now.
    pub fn stamp(&self, msg: &pb::PushFactsRequest) {
        let now = Instant::now();
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for f in &msg.facts {
            m.insert(f.fact_id.clone(), now);
        }
    }

    fn take(&self, fact_id: &str) -> Option<Instant> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(fact_id)
    }
}

/// The watcher: runs until `expected` changes have been matched (or the stream fails twice in a row); returns the
/// delays in microseconds, sorted, and how many times it resumed.
pub async fn watch(hub: &ChildHub, stamps: Stamps, expected: usize) -> anyhow::Result<(Vec<u32>, usize)> {
    let mut client = hub.client("civil_affairs").await?;
    let mut delays = Vec::with_capacity(expected);
    let mut cursor: Option<i64> = None;
    let mut resumes = 0;
    let mut failures_in_a_row = 0;
    while delays.len() < expected {
        let req = pb::WatchChangesRequest {
            after_cursor: cursor,
            kinds: vec![pb::PayloadKind::Assistance as i32],
            purpose: "benchmark P6".into(),
            ..Default::default()
        };
        let mut stream = match client.exchange.watch_changes(req).await {
            Ok(s) => s.into_inner(),
            Err(e) => {
                failures_in_a_row += 1;
                if failures_in_a_row > 1 {
                    anyhow::bail!("WatchChanges refused twice: {e}");
                }
                continue;
            }
        };
        loop {
            match stream.message().await {
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
                        if delays.len() >= expected {
                            break;
                        }
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
                    break;
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
