//! Prometheus metrics: one [`Metrics`] registry per running hub (so several hubs in one test process do not
//! share counters), rendered in the text exposition format by a tiny HTTP/1.1 server on its own port
//! (`metrics_listen`; off when unset). Nothing here carries person data: labels are service, method, agency
//! code, gRPC code, fact outcome, and certificate kinds, subjects (SPIFFE IDs, the CA's and server's names) and CRL
//! file paths only.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `doudi_grpc_requests_total` | counter | `service`, `method`, `agency`, `code` |
//! | `doudi_grpc_request_duration_seconds` | histogram | `service`, `method` |
//! | `doudi_facts_ingested_total` | counter | `agency`, `outcome` |
//! | `doudi_stream_facts_open` | gauge | `agency` |
//! | `doudi_db_pool_connections` | gauge | `pool` (`read`, `write`), `state` (`size`, `idle`) |
//! | `doudi_audit_chain_length` | gauge | — |
//! | `doudi_calendar_covered_until` | gauge | — (YYYYMMDD of the last day the working-day calendar holds, e.g. 20261231) |
//! | `doudi_certificate_expiry_days` | gauge | `kind` (`ca`, `server`, `agency`, `operator`), `subject` (`crate::security::cert_watch`) |
//! | `doudi_crl_next_update_seconds` | gauge | `file` (`crate::security::cert_watch`) |
//! | `doudi_refusals_total` | counter | `kind` (`crate::server::refusals`) |
//! | `doudi_audit_refusal_events_dropped_total` | counter | — (`crate::server::refusals`) |
//! | `doudi_audit_head_sign_age_seconds` | gauge | — (seconds since the audit head signer last ran; 0 when `audit_head_sign_secs` = 0) |
//!
//! The request metrics are recorded by [`crate::grpc::observe`]; the pool and audit gauges are read when
//! `/metrics` is scraped (the audit chain length is the newest event's sequence number, one index lookup). The sign
//! age grows from the hub's start until the interval signer first succeeds, and whenever it fails or has no key: alert
//! when it exceeds about twice `audit_head_sign_secs` (docs/operations.md).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use prometheus::{
    Encoder as _, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::store::Store;

/// Latency buckets, seconds: 1 ms … 60 s (a full StreamFacts of a county may take a minute).
const LATENCY_BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0];

/// The hub's metrics. Cheap to clone (handles into one registry).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    pub facts: IntCounterVec,
    pub streams_open: IntGaugeVec,
    pub pool: IntGaugeVec,
    pub audit_chain_length: IntGauge,
    pub calendar_covered_until: IntGauge,
    pub audit_head_sign_age: IntGauge,
    /// Unix seconds of the audit head signer's last successful run (or of the hub's start before it); `i64::MIN`
    /// when interval signing is off. Read into `audit_head_sign_age` at scrape time.
    pub audit_head_signed_at: Arc<std::sync::atomic::AtomicI64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("doudi_grpc_requests_total", "gRPC requests finished, by service, method, agency and gRPC code"),
            &["service", "method", "agency", "code"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "doudi_grpc_request_duration_seconds",
                "gRPC request latency: from the request's arrival to its status (end of the response stream)",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["service", "method"],
        )
        .expect("valid metric");
        let facts = IntCounterVec::new(
            Opts::new(
                "doudi_facts_ingested_total",
                "facts pushed (PushFacts, StreamFacts), by agency and outcome (ACCEPTED, NEW_VERSION, DUPLICATE, STALE, REJECTED)",
            ),
            &["agency", "outcome"],
        )
        .expect("valid metric");
        let streams_open =
            IntGaugeVec::new(Opts::new("doudi_stream_facts_open", "StreamFacts streams open, by agency"), &["agency"])
                .expect("valid metric");
        let pool = IntGaugeVec::new(
            Opts::new(
                "doudi_db_pool_connections",
                "database connections by pool (read, write) and state (size = open, idle), read at scrape time",
            ),
            &["pool", "state"],
        )
        .expect("valid metric");
        let audit_chain_length = IntGauge::new(
            "doudi_audit_chain_length",
            "audit events in the hash chain (sequence number of the newest event), read at scrape time",
        )
        .expect("valid metric");
        let calendar_covered_until = IntGauge::new(
            "doudi_calendar_covered_until",
            "last day (YYYYMMDD) of the run of years whose holiday notice the working-day calendar holds, from the \
             current year; 0 if none; read at scrape time (load next year's notice before it is reached)",
        )
        .expect("valid metric");
        let audit_head_sign_age = IntGauge::new(
            "doudi_audit_head_sign_age_seconds",
            "seconds since the audit head signer last ran successfully (or since the hub started, before its first \
             run); 0 when interval signing is off (audit_head_sign_secs = 0); read at scrape time",
        )
        .expect("valid metric");
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(audit_head_sign_age.clone()),
            Box::new(calendar_covered_until.clone()),
            Box::new(latency.clone()),
            Box::new(facts.clone()),
            Box::new(streams_open.clone()),
            Box::new(pool.clone()),
            Box::new(audit_chain_length.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Metrics {
            registry,
            requests,
            latency,
            facts,
            streams_open,
            pool,
            audit_chain_length,
            calendar_covered_until,
            audit_head_sign_age,
            audit_head_signed_at: Arc::new(std::sync::atomic::AtomicI64::new(i64::MIN)),
        }
    }

    /// The audit head signer ran successfully at `unix_secs` (or interval signing starts then).
    pub fn audit_head_signed(&self, unix_secs: i64) {
        self.audit_head_signed_at.store(unix_secs, std::sync::atomic::Ordering::Relaxed);
    }

    /// Adds a collector of its own (e.g. `crate::security::cert_watch`'s gauges, computed at each scrape).
    pub fn register(&self, collector: Box<dyn prometheus::core::Collector>) {
        if let Err(e) = self.registry.register(collector) {
            tracing::warn!(error = %e, "metrics: collector not registered");
        }
    }

    /// One more open StreamFacts stream of `agency`, until the guard is dropped.
    pub fn stream_opened(&self, agency: &str) -> StreamGuard {
        let g = self.streams_open.with_label_values(&[agency]);
        g.inc();
        StreamGuard(g)
    }

    /// Read the gauges that are sampled (pool use, audit chain length) from `store`.
    pub async fn sample(&self, store: &Store) {
        for (pool, size, idle) in store.pool_use() {
            self.pool.with_label_values(&[pool, "size"]).set(size as i64);
            self.pool.with_label_values(&[pool, "idle"]).set(idle as i64);
        }
        match store.audit_chain_length().await {
            Ok(n) => self.audit_chain_length.set(n),
            Err(e) => tracing::warn!(error = %e, "metrics: audit chain length not read"),
        }
        let signed = self.audit_head_signed_at.load(std::sync::atomic::Ordering::Relaxed);
        let age = if signed == i64::MIN { 0 } else { (chrono::Utc::now().timestamp() - signed).max(0) };
        self.audit_head_sign_age.set(age);
        match crate::hub::calendar::covered_until(store, chrono::Utc::now()).await {
            Ok(d) => self.calendar_covered_until.set(crate::hub::calendar::yyyymmdd(d)),
            Err(e) => tracing::warn!(error = %e, "metrics: working-day calendar not read"),
        }
    }

    /// The text exposition (format 0.0.4) of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::warn!(error = %e, "metrics: encoding failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Decrements the open-streams gauge when dropped.
pub struct StreamGuard(IntGauge);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Largest request head read from a scraper.
const MAX_HEAD: usize = 8 * 1024;
/// Time a scraper has to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Bind the metrics listener (port 0 picks a free port; [`TcpListener::local_addr`] tells which).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| format!("metrics_listen: binding {addr}"))
}

/// Serve `GET /metrics` (plain HTTP/1.1, one request per connection) until the task is aborted.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, store: Store) {
    loop {
        let (conn, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (metrics, store) = (metrics.clone(), store.clone());
        tokio::spawn(async move {
            if let Err(e) = answer(conn, &metrics, &store).await {
                tracing::debug!(error = %e, "metrics: connection failed");
            }
        });
    }
}

async fn answer(mut conn: TcpStream, metrics: &Metrics, store: &Store) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let complete = tokio::time::timeout(READ_TIMEOUT, async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
            let n = conn.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        std::io::Result::Ok(())
    })
    .await;
    if complete.is_err() {
        return Ok(()); // too slow: drop the connection
    }
    complete.expect("checked")?;
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET", "/metrics") => {
            metrics.sample(store).await;
            ("200 OK", TextEncoder::new().format_type().to_owned(), metrics.render())
        }
        ("GET", _) => ("404 Not Found", "text/plain; charset=utf-8".into(), "not found: GET /metrics\n".into()),
        _ => ("405 Method Not Allowed", "text/plain; charset=utf-8".into(), "only GET /metrics\n".into()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(response.as_bytes()).await?;
    conn.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_its_labels() {
        let m = Metrics::new();
        m.requests.with_label_values(&["doudi.v1.Audit", "WhoAmI", "education", "OK"]).inc();
        m.facts.with_label_values(&["education", "ACCEPTED"]).inc_by(3);
        let g = m.stream_opened("education");
        let text = m.render();
        assert!(
            text.contains(
                r#"doudi_grpc_requests_total{agency="education",code="OK",method="WhoAmI",service="doudi.v1.Audit"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"doudi_facts_ingested_total{agency="education",outcome="ACCEPTED"} 3"#), "{text}");
        assert!(text.contains(r#"doudi_stream_facts_open{agency="education"} 1"#), "{text}");
        drop(g);
        assert!(m.render().contains(r#"doudi_stream_facts_open{agency="education"} 0"#));
    }
}
