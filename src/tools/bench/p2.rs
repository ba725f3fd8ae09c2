//! P2: `GetRecipient` over mTLS with 32 concurrent requests on one client connection, on P1's data set (target ≥ 0.6
//! of the floor's rate, p99 ≤ 5 ms). Floor: `grpc.health.v1.Health/Check` on the same server, the same connection,
//! the same concurrency. The two alternate (floor, GetRecipient, floor, GetRecipient) so that drift in what else the
//! machine runs falls on both.

use std::time::{Duration, Instant};

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::grpc::pb;

use super::hub::ChildHub;

/// Concurrent requests (docs/spec/performance.md: 32 concurrent streams).
pub const CONCURRENCY: usize = 32;

/// Requests done in a window, with their latencies (µs, sorted).
#[derive(Debug, Default, Clone)]
pub struct Sample {
    pub requests: usize,
    pub errors: usize,
    pub elapsed: Duration,
    pub latencies_us: Vec<u32>,
}

impl Sample {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// The `q` quantile (0..=1) in milliseconds, nearest rank.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        super::p6::quantile_ms(&self.latencies_us, q)
    }

    pub fn merge(&mut self, other: Sample) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.latencies_us.extend(other.latencies_us);
        self.latencies_us.sort_unstable();
    }
}

/// `CONCURRENCY` tasks call `call(i)` in a loop for `window`; `i` counts up per task from the task's number.
async fn drive<F, Fut>(window: Duration, call: F) -> Sample
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let t = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..CONCURRENCY {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            let mut i = task;
            while t.elapsed() < window {
                let s = Instant::now();
                if !call(i).await {
                    errors += 1;
                }
                lat.push(s.elapsed().as_micros().min(u32::MAX as u128) as u32);
                i += CONCURRENCY;
            }
            (lat, errors)
        }));
    }
    let mut sample = Sample::default();
    for task in tasks {
        let (lat, errors) = task.await.unwrap_or_default();
        sample.requests += lat.len();
        sample.errors += errors;
        sample.latencies_us.extend(lat);
    }
    sample.elapsed = t.elapsed();
    sample.latencies_us.sort_unstable();
    sample
}

/// Measure both for `rounds` alternating windows of `window` each. `ids`: ID numbers of persons the hub holds
/// (read as civil_affairs, as of `as_of`). Returns (GetRecipient, Health/Check).
pub async fn run(
    hub: &ChildHub,
    ids: std::sync::Arc<Vec<String>>,
    as_of: &str,
    window: Duration,
    rounds: usize,
) -> anyhow::Result<(Sample, Sample)> {
    let clients = hub.client("civil_affairs").await?;
    let channel = clients.channel.clone();
    let (mut get, mut health) = (Sample::default(), Sample::default());
    for _ in 0..rounds {
        let h = HealthClient::new(channel.clone());
        health.merge(
            drive(window, move |_| {
                let mut h = h.clone();
                async move { h.check(HealthCheckRequest { service: String::new() }).await.is_ok() }
            })
            .await,
        );
        let ex = clients.exchange.clone();
        let ids = ids.clone();
        let as_of = as_of.to_owned();
        get.merge(
            drive(window, move |i| {
                let mut ex = ex.clone();
                let req = pb::GetRecipientRequest {
                    id_number: ids[i % ids.len()].clone(),
                    as_of: as_of.clone(),
                    purpose: "benchmark P2".into(),
                    ..Default::default()
                };
                async move { ex.get_recipient(req).await.is_ok() }
            })
            .await,
        );
    }
    Ok((get, health))
}

/// GetRecipient for one `window` at [`CONCURRENCY`] concurrent requests, task `i` on `clients[i % len]` (one
/// connection per client). `ids`: ID numbers the hub holds, read as civil_affairs as of `as_of`.
pub async fn get_recipient(
    clients: &[crate::client::Clients],
    ids: std::sync::Arc<Vec<String>>,
    as_of: &str,
    window: Duration,
    purpose: &str,
) -> Sample {
    let exchanges: std::sync::Arc<Vec<_>> = std::sync::Arc::new(clients.iter().map(|c| c.exchange.clone()).collect());
    let as_of = as_of.to_owned();
    let purpose = purpose.to_owned();
    drive(window, move |i| {
        let mut ex = exchanges[(i % CONCURRENCY) % exchanges.len()].clone();
        let req = pb::GetRecipientRequest {
            id_number: ids[i % ids.len()].clone(),
            as_of: as_of.clone(),
            purpose: purpose.clone(),
            ..Default::default()
        };
        async move { ex.get_recipient(req).await.is_ok() }
    })
    .await
}
