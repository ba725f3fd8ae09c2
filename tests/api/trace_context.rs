//! Tracing (issue 21 item 4), end to end: a `doudi serve` process of this build with `otlp_endpoint` set to a tiny
//! OTLP/gRPC receiver run by the test (the collector's `TraceService` from opentelemetry-proto, on the same tonic),
//! its JSON log read from its stderr. A call with the W3C spec's example `traceparent` is logged with that trace id on
//! every line of the request and exported as a span of that trace whose parent is the client's span; a call with a
//! malformed one is served, logged and exported under a new trace; the spans still in the batch when the hub gets
//! SIGTERM are sent before it exits. SQLite only: nothing here depends on the
//! database (tests/api_pg leaves it out).

use std::io::{BufRead as _, BufReader};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use doudi::client::{ClientIdentity, Clients, connect};
use doudi::grpc::pb;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;

/// The W3C spec's example: trace 4bf92f3577b34da6a3ce929d0e0e4736, the caller's span 00f067aa0ba902b7, sampled.
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// An OTLP/gRPC trace receiver keeping every span it is sent.
#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request.into_inner().resource_spans.into_iter().flat_map(|r| r.scope_spans).flat_map(|s| s.spans);
        self.0.lock().unwrap().extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

impl Receiver {
    /// Listening on a loopback port: its `http://` address.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        format!("http://{addr}")
    }

    /// The span received whose `request_id` attribute is `id`.
    fn span_of(&self, id: &str) -> Span {
        let spans = self.0.lock().unwrap();
        let found = spans.iter().find(|s| attribute(s, "request_id").as_deref() == Some(id));
        found.unwrap_or_else(|| panic!("no span of request {id} among {spans:?}")).clone()
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        _ => None,
    })
}

/// A `doudi --log-json serve` child; its log lines are kept. Killed when dropped.
struct Hub {
    child: std::process::Child,
    server: String,
    log: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Hub {
    fn start(certs: &std::path::Path, database_url: &str, otlp_endpoint: &str) -> Hub {
        use std::process::{Command, Stdio};
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_doudi"));
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("DOUDI_") || k.starts_with("OTEL_") {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd
            .args(["--log-json", "serve", "--listen", "127.0.0.1:0", "--database-url", database_url])
            .arg("--certs-dir")
            .arg(certs)
            .env("DOUDI_DATA_KEY", doudi::security::crypto::Keys::generate_base64())
            .env("DOUDI_CRL_POLL_SECS", "0")
            .env("DOUDI_OTLP_ENDPOINT", otlp_endpoint)
            // A batch every 10 minutes (the SDK's variable; default 5 s): the spans of this test are sent by the flush
            // at shutdown.
            .env("OTEL_BSP_SCHEDULE_DELAY", "600000")
            // doudi's DEBUG lines: each request's "request finished" line, inside its span.
            .env("RUST_LOG", "warn,doudi=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    eprintln!("hub: {line}");
                    continue;
                };
                if v["fields"]["message"].as_str().is_some_and(|m| m.starts_with("doudi serving"))
                    && let Some(addr) =
                        v["fields"]["addr"].as_str().and_then(|a| a.parse::<std::net::SocketAddr>().ok())
                {
                    let _ = tx.send(addr);
                }
                kept.lock().unwrap().push(v);
            }
        });
        let Ok(addr) = rx.recv_timeout(Duration::from_secs(120)) else {
            let _ = child.kill();
            panic!("the hub did not start serving within 120 s ({:?})", child.wait());
        };
        Hub { child, server: format!("https://localhost:{}", addr.port()), log }
    }

    /// The log lines of request `id`, once its closing "request finished" line is there (up to 30 s).
    async fn lines_of(&self, id: &str) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let lines: Vec<_> =
                self.log.lock().unwrap().iter().filter(|l| l["span"]["request_id"] == id).cloned().collect();
            if lines.iter().any(|l| l["fields"]["message"] == "request finished") {
                return lines;
            }
            assert!(Instant::now() < deadline, "request {id} not logged within 30 s: {lines:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Hub {
    /// SIGTERM, and wait (up to 60 s) for the process to exit; its exit status.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the hub did not exit within 60 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// WhoAmI with `x-request-id: id` and `traceparent` if given; the response's `x-trace-id`.
async fn who_am_i(c: &mut Clients, id: &str, traceparent: Option<&str>) -> String {
    let mut req = tonic::Request::new(pb::WhoAmIRequest {});
    req.metadata_mut().insert("x-request-id", id.parse().unwrap());
    if let Some(t) = traceparent {
        req.metadata_mut().insert("traceparent", t.parse().unwrap());
    }
    let r = c.audit.who_am_i(req).await.unwrap();
    assert_eq!(r.get_ref().agency, "civil_affairs", "served");
    r.metadata().get("x-trace-id").expect("x-trace-id in the response").to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_s_traceparent_is_logged_on_every_line_and_exported_as_the_parent() {
    doudi::server::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    doudi::security::certs::init(&certs, doudi::security::certs::DEFAULT_TRUST_DOMAIN, true).unwrap();
    let receiver = Receiver::default();
    let endpoint = receiver.start().await;
    let url = format!("sqlite://{}", dir.path().join("hub.db").display());
    let hub = tokio::task::spawn_blocking(move || Hub::start(&certs, &url, &endpoint)).await.unwrap();
    let me = ClientIdentity::from_dir(&dir.path().join("certs"), "civil_affairs").unwrap();
    let mut c = Clients::new(connect(&hub.server, "localhost", &me).await.unwrap(), 1 << 26);

    // The client's trace: echoed, on every line of the request, and the exported span's trace and parent.
    assert_eq!(who_am_i(&mut c, "trace-e2e-1", Some(TRACEPARENT)).await, TRACE);
    // A malformed traceparent (all-zero parent id) is ignored: served under a new trace.
    let made = who_am_i(&mut c, "trace-e2e-2", Some("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01")).await;
    assert!(made.len() == 32 && made != TRACE && made.bytes().all(|b| b.is_ascii_hexdigit()), "{made}");

    for (id, trace) in [("trace-e2e-1", TRACE), ("trace-e2e-2", made.as_str())] {
        for line in hub.lines_of(id).await {
            assert_eq!(line["span"]["trace_id"], trace, "{line}");
            assert!(line["spans"].as_array().unwrap().iter().any(|s| s["trace_id"] == trace), "{line}");
        }
    }

    // Stopping the hub flushes the spans not yet exported (the batch delay is far longer than this test).
    drop(c);
    assert!(receiver.0.lock().unwrap().is_empty(), "nothing exported before the flush");
    let mut hub = hub;
    let status = tokio::task::spawn_blocking(move || hub.terminate()).await.unwrap();
    assert!(status.success(), "{status}");

    let span = receiver.span_of("trace-e2e-1");
    assert_eq!(span.name, "request");
    assert_eq!(hex::encode(&span.trace_id), TRACE);
    assert_eq!(hex::encode(&span.parent_span_id), PARENT, "the client's span is the parent");
    assert_eq!(attribute(&span, "method").as_deref(), Some("WhoAmI"));
    assert_eq!(attribute(&span, "agency").as_deref(), Some("civil_affairs"));
    assert_eq!(attribute(&span, "trace_id").as_deref(), Some(TRACE));

    let span = receiver.span_of("trace-e2e-2");
    assert_eq!(hex::encode(&span.trace_id), made, "the new trace is the one logged and echoed");
    assert!(span.parent_span_id.is_empty(), "a root span: {:?}", span.parent_span_id);
}
