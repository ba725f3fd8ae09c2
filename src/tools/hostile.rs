//! Hostile clients, for the robustness suite (issue 7 item 6; docs/spec/security.md "Abuse and faults"): each scenario
//! attacks a running hub over the network the way a broken or malicious agency system could, and reports what the
//! hub did. `tests/api/hostile.rs` runs them at test size against an in-process hub and checks that it still
//! serves, that its tasks return to their baseline and that no stored data changed; `examples/hostile.rs`
//! (`scripts/hostile.sh`) runs them at full size against a real `doudi serve` process and records its memory.
//!
//! Nothing here is used by the hub itself.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_stream::wrappers::ReceiverStream;

use crate::client::{ClientIdentity, Clients, connect};
use crate::grpc::pb;

/// What one scenario did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Scenario name.
    pub name: &'static str,
    /// Attempts made (streams, requests, connections).
    pub attempts: usize,
    /// Attempts the hub refused (TLS handshake refused, error status).
    pub refused: usize,
    /// Attempts that completed normally.
    pub completed: usize,
    /// Wall time of the scenario.
    pub elapsed: Duration,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} attempts, {} refused, {} completed, {:.1} s",
            self.name,
            self.attempts,
            self.refused,
            self.completed,
            self.elapsed.as_secs_f64()
        )
    }
}

/// Where to attack: the hub's URL (`https://localhost:PORT`), its socket address, the TLS name to verify.
#[derive(Clone)]
pub struct Target {
    pub server: String,
    pub addr: SocketAddr,
    pub domain: String,
}

impl Target {
    async fn clients(&self, id: &ClientIdentity) -> anyhow::Result<Clients> {
        Ok(Clients::new(connect(&self.server, &self.domain, id).await?, 64 * 1024 * 1024))
    }
}

/// Opens `n` StreamFacts streams, `lanes` at a time (one connection per lane), each sending one empty message
/// (no data) and then dropped by the client without finishing (RST_STREAM).
pub async fn streams_opened_and_dropped(
    target: &Target,
    id: &ClientIdentity,
    n: usize,
    lanes: usize,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let lanes = lanes.clamp(1, n.max(1));
    let mut tasks = Vec::new();
    for lane in 0..lanes {
        let mut c = target.clients(id).await?;
        let count = n / lanes + usize::from(lane < n % lanes);
        tasks.push(tokio::spawn(async move {
            let mut refused = 0;
            for _ in 0..count {
                let (tx, rx) = tokio::sync::mpsc::channel(1);
                let _ = tx.send(pb::PushFactsRequest { facts: Vec::new() }).await;
                let call = c.exchange.stream_facts(ReceiverStream::new(rx));
                // Long enough for the headers and the message to reach the hub; then the call is dropped.
                if let Ok(Err(_)) = tokio::time::timeout(Duration::from_millis(2), call).await {
                    refused += 1;
                }
                drop(tx);
            }
            refused
        }));
    }
    let mut refused = 0;
    for t in tasks {
        refused += t.await?;
    }
    Ok(Outcome { name: "streams opened and dropped", attempts: n, refused, completed: 0, elapsed: started.elapsed() })
}

/// One client streams `batches` in its own connection and is killed (its task aborted, its connection dropped)
/// after `kill_after` batches were sent, in the middle of the stream.
pub async fn killed_mid_stream(
    target: &Target,
    id: &ClientIdentity,
    batches: Vec<Vec<pb::Fact>>,
    kill_after: usize,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let mut c = target.clients(id).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let n = batches.len();
    let client = tokio::spawn(async move { c.exchange.stream_facts(ReceiverStream::new(rx)).await });
    for facts in batches.into_iter().take(kill_after) {
        tx.send(pb::PushFactsRequest { facts }).await?;
    }
    // Let the hub read what was sent, then kill the client with the stream still open.
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.abort();
    let _ = client.await;
    drop(tx);
    Ok(Outcome { name: "client killed mid-stream", attempts: n, refused: 0, completed: 0, elapsed: started.elapsed() })
}

/// `n` PushFacts requests on one connection, `in_flight` at a time, each cancelled by the client after a delay
/// between 0 and `max_delay` (some before the hub sees them, some while their batch is being written).
pub async fn cancelled_burst(
    target: &Target,
    id: &ClientIdentity,
    batches: Vec<Vec<pb::Fact>>,
    in_flight: usize,
    max_delay: Duration,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let c = target.clients(id).await?;
    let n = batches.len();
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(in_flight.max(1)));
    let mut tasks = Vec::new();
    for (i, facts) in batches.into_iter().enumerate() {
        let permit = limit.clone().acquire_owned().await?;
        let mut c = c.clone();
        // Spread the cancellation delays deterministically over [0, max_delay].
        let delay = max_delay.mul_f64((i % 17) as f64 / 16.0);
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(delay, c.exchange.push_facts(pb::PushFactsRequest { facts })).await {
                Ok(Ok(_)) => (0, 1),
                Ok(Err(_)) => (1, 0),
                Err(_) => (0, 0),
            }
        }));
    }
    tally("cancelled requests on one connection", n, tasks, started).await
}

/// `n` TCP connections that start a TLS handshake (a record header and half a ClientHello) and never finish it.
/// Returns when the hub has closed all of them or `wait` has passed; `completed` counts the ones the hub closed.
pub async fn stalled_handshakes(target: &Target, n: usize, wait: Duration) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let mut sockets = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = tokio::net::TcpStream::connect(target.addr).await?;
        // TLS record header: handshake (22), TLS 1.0 record version, length 512; then 5 bytes of a ClientHello.
        s.write_all(&[22, 3, 1, 2, 0, 1, 0, 1, 252, 3]).await?;
        sockets.push(s);
    }
    let deadline = started + wait;
    let mut closed = 0;
    for mut s in sockets {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut buf = [0u8; 64];
        // The hub closes a connection whose handshake times out: the read sees the end (or a reset).
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => closed += 1,
            Ok(Ok(_)) => {
                // An alert or other bytes: keep reading until the end.
                if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(left, s.read(&mut buf)).await {
                    closed += 1;
                }
            }
            Err(_) => {}
        }
    }
    Ok(Outcome {
        name: "TLS handshakes never finished",
        attempts: n,
        refused: 0,
        completed: closed,
        elapsed: started.elapsed(),
    })
}

/// `n` connections, `concurrency` at a time, each presenting `id` (a certificate the hub must refuse: another CA,
/// or revoked) and calling WhoAmI. `refused` counts connections refused at the handshake or by status.
pub async fn certificate_flood(
    target: &Target,
    id: &ClientIdentity,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut tasks = Vec::new();
    for _ in 0..n {
        let permit = limit.clone().acquire_owned().await?;
        let target = target.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            match target.clients(&id).await {
                Err(_) => (1, 0),
                Ok(mut c) => match c.audit.who_am_i(pb::WhoAmIRequest {}).await {
                    Err(_) => (1, 0),
                    Ok(_) => (0, 1),
                },
            }
        }));
    }
    tally("connections with a refused certificate", n, tasks, started).await
}

/// Sum the `(refused, completed)` of each attempt's task into the scenario's [`Outcome`].
async fn tally(
    name: &'static str,
    attempts: usize,
    tasks: Vec<tokio::task::JoinHandle<(usize, usize)>>,
    started: Instant,
) -> anyhow::Result<Outcome> {
    let (mut refused, mut completed) = (0, 0);
    for t in tasks {
        let (r, c) = t.await?;
        refused += r;
        completed += c;
    }
    Ok(Outcome { name, attempts, refused, completed, elapsed: started.elapsed() })
}
