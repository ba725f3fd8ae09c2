//! The outermost tower layer of the gRPC server: a request id, a tracing span and the request metrics for every
//! call.
//!
//! - **Request id**: the client's `x-request-id` header when it is sane (1–64 characters of `A–Z a–z 0–9 - _ . :`),
//!   else a new random UUID (v4). It is echoed in the response headers (`x-request-id`), for errors too.
//! - **Trace id**: the client's W3C `traceparent` when it is valid ([`crate::grpc::trace_context`]: the trace it names
//!   becomes the request's, and the client's span the parent of the request span, exported over OTLP when
//!   configured: [`crate::server::telemetry`]), else a new random trace. It is echoed in the response headers (`x-trace-id`,
//!   32 lower-case hex digits), for errors too.
//! - **Span** `request` with fields `request_id`, `agency`, `service`, `method`, `trace_id`: every log line written
//!   while the request is handled (the handler runs inside the response future; streamed response bodies are polled
//!   inside the span too) carries them, in human and JSON logs. The agency comes from the peer certificate's SPIFFE ID
//!   (`civil_affairs`, or `civil_affairs/621022` for a county office); `unknown` when the certificate names no
//!   agency this hub knows (the handler then refuses the call with UNAUTHENTICATED).
//! - **Metrics** ([`crate::server::metrics`]): `doudi_grpc_requests_total{service,method,agency,code}` and
//!   `doudi_grpc_request_duration_seconds{service,method}`. The gRPC code is read from the response's
//!   `grpc-status`: in the headers of a trailers-only response (errors raised before any message, which is how
//!   tonic answers a unary error), else in the trailers at the end of the body. Streaming responses are therefore
//!   counted and timed when their stream ends (trailers), not when the headers leave; a response body dropped
//!   before its trailers (the client cancelled or the connection broke) counts as `CANCELLED`, and so does a call
//!   dropped before the handler answered (the client's deadline passed, or it reset the stream); a body that ends
//!   without trailers counts as `UNKNOWN`. Paths that are not a method of a registered service are labelled
//!   `unknown`/`unknown`, so a client cannot grow the label sets.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use prost::Message as _;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower::{Layer, Service};
use tracing::Instrument as _;

use crate::domain::agency::Principal;
use crate::domain::policy::AccessPolicy;
use crate::grpc::trace_context::{TRACE_ID, TraceParent};
use crate::server::metrics::Metrics;
use crate::server::refusals::{Peer, RefusalKind, RefusalLog, Refused};

/// The request-id header (request and response metadata).
pub const REQUEST_ID: &str = "x-request-id";

/// The agency label of a principal: the agency code, and `/county` for a county office.
pub fn agency_label(p: &Principal) -> String {
    match p.county() {
        Some(c) => format!("{}/{}", p.agency(), c),
        None => p.agency().to_string(),
    }
}

/// Is a client-supplied request id safe to log and echo?
pub fn sane_request_id(v: &str) -> bool {
    (1..=64).contains(&v.len())
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A random UUID, version 4.
pub fn new_request_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// The canonical name of a gRPC status code (`grpc-status` value).
pub fn code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

fn grpc_code(h: &HeaderMap) -> Option<&'static str> {
    let v = h.get("grpc-status")?;
    Some(code_name(v.to_str().ok()?.trim().parse().ok()?))
}

/// What the layer needs: the metrics, how to read the agency, and the method paths served.
#[derive(Clone)]
pub struct ObserveLayer {
    metrics: Arc<Metrics>,
    trust_domain: Arc<str>,
    policy: Arc<AccessPolicy>,
    methods: Arc<HashSet<String>>,
    /// Where refusals are put on record (`crate::server::refusals`), when set.
    refusals: Option<Arc<RefusalSink>>,
}

/// What recording a refusal needs, shared by every request (one reference count per request).
struct RefusalSink {
    log: Arc<RefusalLog>,
    trust_domain: Arc<str>,
    policy: Arc<AccessPolicy>,
    methods: Arc<HashSet<String>>,
}

impl ObserveLayer {
    /// `descriptor_sets`: encoded `FileDescriptorSet`s of the services registered; their methods (plus the two
    /// reflection services') are the paths labelled by name.
    pub fn new(
        metrics: Arc<Metrics>,
        trust_domain: &str,
        policy: Arc<AccessPolicy>,
        descriptor_sets: &[&[u8]],
    ) -> ObserveLayer {
        let mut methods = HashSet::new();
        for set in descriptor_sets {
            let Ok(set) = prost_types::FileDescriptorSet::decode(*set) else { continue };
            for file in set.file {
                let package = file.package.unwrap_or_default();
                for s in file.service {
                    let service = format!("{package}.{}", s.name.unwrap_or_default());
                    for m in s.method {
                        methods.insert(format!("/{service}/{}", m.name.unwrap_or_default()));
                    }
                }
            }
        }
        methods.insert("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo".into());
        methods.insert("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo".into());
        ObserveLayer { metrics, trust_domain: trust_domain.into(), policy, methods: Arc::new(methods), refusals: None }
    }

    /// Put refusals on record in `log` (PERMISSION_DENIED, UNAUTHENTICATED, and RESOURCE_EXHAUSTED with reason
    /// QUOTA_EXCEEDED or CONCURRENCY_LIMIT_EXCEEDED: docs/refusals.md).
    pub fn with_refusals(mut self, log: Arc<RefusalLog>) -> ObserveLayer {
        self.refusals = Some(Arc::new(RefusalSink {
            log,
            trust_domain: self.trust_domain.clone(),
            policy: self.policy.clone(),
            methods: self.methods.clone(),
        }));
        self
    }

    fn agency<B>(&self, req: &http::Request<B>) -> String {
        let certs = req.extensions().get::<TlsConnectInfo<TcpConnectInfo>>().and_then(|i| i.peer_certs());
        let Some(leaf) = certs.as_ref().and_then(|c| c.first().cloned()) else { return "unknown".into() };
        for id in crate::server::tls::peer_spiffe_ids(leaf.as_ref()).unwrap_or_default() {
            if let Ok(p) = Principal::from_spiffe(&id, &self.trust_domain)
                && self.policy.is_known(p.agency())
            {
                return agency_label(&p);
            }
        }
        "unknown".into()
    }

    fn labels(&self, path: &str) -> (String, String) {
        if self.methods.contains(path)
            && let Some((service, method)) = path.trim_start_matches('/').split_once('/')
        {
            return (service.to_owned(), method.to_owned());
        }
        ("unknown".into(), "unknown".into())
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Observe { inner, layer: self.clone() }
    }
}

#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    layer: ObserveLayer,
}

/// Records one request's metrics exactly once.
struct Recorder {
    metrics: Arc<Metrics>,
    service: String,
    method: String,
    agency: String,
    started: Instant,
    /// What a refusal's audit event needs, when refusals are on record.
    refusal: Option<RefusalContext>,
}

/// The request's path, peer certificate and address, kept for the refusal log until the status is known.
struct RefusalContext {
    sink: Arc<RefusalSink>,
    path: String,
    certs: Option<Arc<Vec<rustls::pki_types::CertificateDer<'static>>>>,
    addr: Option<std::net::SocketAddr>,
}

impl RefusalContext {
    /// Record the call's refusal, if its status (in `headers`: the headers of a trailers-only answer, or the
    /// trailers) is one that goes on record.
    fn observe(self, headers: &HeaderMap) {
        let Some(status) = tonic::Status::from_header_map(headers) else { return };
        let kind = match status.code() {
            tonic::Code::PermissionDenied => RefusalKind::PermissionDenied,
            tonic::Code::Unauthenticated => RefusalKind::Unauthenticated,
            tonic::Code::ResourceExhausted => {
                use tonic_types::StatusExt as _;
                let reason = status.get_error_details().error_info().map(|i| i.reason.clone()).unwrap_or_default();
                if reason != crate::grpc::status::ErrorReason::QuotaExceeded.as_str_name()
                    && reason != crate::grpc::status::ErrorReason::ConcurrencyLimitExceeded.as_str_name()
                {
                    return;
                }
                RefusalKind::ResourceExhausted
            }
            _ => return,
        };
        let sink = &self.sink;
        let method = if sink.methods.contains(&self.path) { self.path } else { "unknown".into() };
        let leaf = self.certs.as_ref().and_then(|c| c.first());
        let peer = Peer::from_certificate(
            leaf.map(|c| c.as_ref()),
            self.addr.map(|a| a.ip()),
            &sink.trust_domain,
            &sink.policy,
        );
        sink.log.record(Refused { kind, method, peer, reason: status.message().to_owned() });
    }
}

impl Recorder {
    /// Record the metrics, and the refusal when `status` (headers holding `grpc-status`) is one.
    fn record_status(mut self, code: &str, status: Option<&HeaderMap>) {
        if let (Some(ctx), Some(h)) = (self.refusal.take(), status)
            && matches!(code, "PERMISSION_DENIED" | "UNAUTHENTICATED" | "RESOURCE_EXHAUSTED")
        {
            ctx.observe(h);
        }
        self.record(code);
    }

    fn record(self, code: &str) {
        let elapsed = self.started.elapsed();
        self.metrics.requests.with_label_values(&[&self.service, &self.method, &self.agency, code]).inc();
        self.metrics.latency.with_label_values(&[&self.service, &self.method]).observe(elapsed.as_secs_f64());
        tracing::debug!(code, elapsed_ms = elapsed.as_secs_f64() * 1e3, "request finished");
    }
}

/// Records `CANCELLED` when a request's future is dropped before the handler answered: tonic's `grpc-timeout` expired
/// (the client's deadline) or the client reset the stream, and the handler's work stopped at its next `.await`.
struct Unanswered(Option<Recorder>);

impl Drop for Unanswered {
    fn drop(&mut self) {
        if let Some(r) = self.0.take() {
            r.record("CANCELLED");
        }
    }
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Observe<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Body<Data = Bytes> + Unpin,
{
    type Response = http::Response<ObservedBody<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<ReqBody>) -> Self::Future {
        let started = Instant::now();
        let request_id = match req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()) {
            Some(v) if sane_request_id(v) => v.to_owned(),
            _ => new_request_id(),
        };
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            // Handlers see the id the hub uses (a replaced one too).
            req.headers_mut().insert(REQUEST_ID, v);
        }
        let agency = self.layer.agency(&req);
        let (service, method) = self.layer.labels(req.uri().path());
        let span = tracing::info_span!(
            "request",
            request_id = %request_id,
            agency = %agency,
            service = %service,
            method = %method,
            trace_id = tracing::field::Empty,
        );
        let parent = TraceParent::from_headers(req.headers());
        let trace_id = crate::server::telemetry::join_trace(&span, parent.as_ref(), req.headers());
        span.record("trace_id", tracing::field::display(&trace_id));
        let refusal = self.layer.refusals.as_ref().map(|sink| {
            let info = req.extensions().get::<TlsConnectInfo<TcpConnectInfo>>();
            RefusalContext {
                sink: sink.clone(),
                path: req.uri().path().to_owned(),
                certs: info.and_then(|i| i.peer_certs()),
                addr: info
                    .and_then(|i| i.get_ref().remote_addr())
                    .or_else(|| req.extensions().get::<TcpConnectInfo>().and_then(|i| i.remote_addr())),
            }
        });
        let recorder = Recorder { metrics: self.layer.metrics.clone(), service, method, agency, started, refusal };
        let fut = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        Box::pin(
            async move {
                let mut unanswered = Unanswered(Some(recorder));
                let resp = fut.await;
                let recorder = unanswered.0.take().expect("taken only here");
                let resp = resp?;
                let (mut parts, body) = resp.into_parts();
                if let Ok(v) = HeaderValue::from_str(&request_id) {
                    parts.headers.insert(REQUEST_ID, v);
                }
                if let Ok(v) = HeaderValue::from_str(&trace_id) {
                    parts.headers.insert(TRACE_ID, v);
                }
                let recorder = match grpc_code(&parts.headers) {
                    // Trailers-only response: the status is already known.
                    Some(code) => {
                        recorder.record_status(code, Some(&parts.headers));
                        None
                    }
                    None => Some(recorder),
                };
                let body = ObservedBody { inner: body, span: tracing::Span::current(), recorder };
                Ok(http::Response::from_parts(parts, body))
            }
            .instrument(span),
        )
    }
}

/// The response body, polled inside the request's span; records the metrics when the trailers pass.
pub struct ObservedBody<B> {
    inner: B,
    span: tracing::Span,
    recorder: Option<Recorder>,
}

impl<B> Drop for ObservedBody<B> {
    fn drop(&mut self) {
        if let Some(r) = self.recorder.take() {
            let _entered = self.span.enter();
            r.record("CANCELLED");
        }
    }
}

impl<B> Body for ObservedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        let _entered = this.span.enter();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(t) = frame.trailers_ref()
                    && let Some(r) = this.recorder.take()
                {
                    r.record_status(grpc_code(t).unwrap_or("UNKNOWN"), Some(t));
                }
            }
            Poll::Ready(None) => {
                if let Some(r) = this.recorder.take() {
                    r.record("UNKNOWN");
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(r) = this.recorder.take() {
                    r.record("INTERNAL");
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids() {
        assert!(sane_request_id("req-2023.10:abc_1"));
        assert!(!sane_request_id(""));
        assert!(!sane_request_id("has space"));
        assert!(!sane_request_id("line\nbreak"));
        assert!(!sane_request_id(&"a".repeat(65)));
        let id = new_request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4", "{id}");
        assert!(sane_request_id(&id));
        assert_ne!(new_request_id(), id);
    }

    #[test]
    fn labels_only_for_served_methods() {
        let layer = ObserveLayer::new(
            Arc::new(Metrics::new()),
            "t.invalid",
            Arc::new(AccessPolicy::default()),
            &[crate::grpc::FILE_DESCRIPTOR_SET, tonic_health::pb::FILE_DESCRIPTOR_SET],
        );
        assert_eq!(
            layer.labels("/doudi.v1.RecipientExchange/PushFacts"),
            ("doudi.v1.RecipientExchange".into(), "PushFacts".into())
        );
        assert_eq!(layer.labels("/grpc.health.v1.Health/Check"), ("grpc.health.v1.Health".into(), "Check".into()));
        assert_eq!(layer.labels("/doudi.v1.RecipientExchange/Nope"), ("unknown".into(), "unknown".into()));
        assert_eq!(layer.labels("/x"), ("unknown".into(), "unknown".into()));
    }

    /// A response body of trailers only (as a unary gRPC success ends).
    struct Trailers(Option<HeaderMap>);

    impl Body for Trailers {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.0.take().map(|t| Ok(Frame::trailers(t))))
        }
    }

    /// A writer into a shared buffer, for capturing log lines.
    #[derive(Clone, Default)]
    struct Buf(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }

        /// The JSON log lines written so far.
        fn json_lines(&self) -> Vec<serde_json::Value> {
            self.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
        }
    }

    type BoxedLayer = Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

    /// Log lines (DEBUG and above) into `buf`: JSON, or human without colours.
    fn log_layer(buf: &Buf, json: bool) -> BoxedLayer {
        use tracing_subscriber::Layer as _;
        let writer = buf.clone();
        let fmt = tracing_subscriber::fmt::layer().with_ansi(false).with_writer(move || writer.clone());
        let level = tracing_subscriber::filter::LevelFilter::DEBUG;
        if json { fmt.json().with_filter(level).boxed() } else { fmt.with_filter(level).boxed() }
    }

    /// Through the layer around a handler that logs a line and answers `status` in its trailers (or, with
    /// `trailers_only`, in its headers), the request carrying `headers`, with `layers` as the subscriber; `drain`
    /// polls the body to its end. The response headers.
    fn call_under(
        metrics: &Arc<Metrics>,
        headers: &[(&'static str, &str)],
        status: &'static str,
        trailers_only: bool,
        drain: bool,
        layers: Vec<BoxedLayer>,
    ) -> HeaderMap {
        use tracing_subscriber::layer::SubscriberExt as _;
        let layer = ObserveLayer::new(
            metrics.clone(),
            "t.invalid",
            Arc::new(AccessPolicy::default()),
            &[crate::grpc::FILE_DESCRIPTOR_SET],
        );
        let mut svc = layer.layer(tower::service_fn(move |req: http::Request<()>| async move {
            let seen = req.headers().get(REQUEST_ID).map(|v| v.to_str().unwrap().to_owned());
            tracing::info!(seen_request_id = seen.as_deref().unwrap_or(""), "handler ran");
            let mut resp = http::Response::builder();
            let mut t = HeaderMap::new();
            if trailers_only {
                resp = resp.header("grpc-status", status);
            } else {
                t.insert("grpc-status", HeaderValue::from_static(status));
            }
            Ok::<_, std::convert::Infallible>(resp.body(Trailers(Some(t))).unwrap())
        }));
        let mut req = http::Request::builder().uri("/doudi.v1.Audit/WhoAmI");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req.body(()).unwrap();
        let subscriber = tracing_subscriber::registry().with(layers);
        tracing::subscriber::with_default(subscriber, || {
            // Every callsite's interest recomputed with this subscriber in place (see `cert_watch`'s `logged`).
            tracing::callsite::rebuild_interest_cache();
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                let resp = svc.call(req).await.unwrap();
                let headers = resp.headers().clone();
                let mut body = resp.into_body();
                if drain {
                    while let Some(f) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
                        f.unwrap();
                    }
                }
                headers
            })
        })
    }

    /// [`call_under`] with JSON logs; the request id header when given. The response headers and the captured log.
    fn call(
        metrics: &Arc<Metrics>,
        request_id: Option<&str>,
        status: &'static str,
        trailers_only: bool,
        drain: bool,
    ) -> (HeaderMap, String) {
        let headers: Vec<_> = request_id.map(|id| (REQUEST_ID, id)).into_iter().collect();
        let buf = Buf::default();
        let headers = call_under(metrics, &headers, status, trailers_only, drain, vec![log_layer(&buf, true)]);
        (headers, buf.text())
    }

    fn count(m: &Metrics, code: &str) -> u64 {
        m.requests.with_label_values(&["doudi.v1.Audit", "WhoAmI", "unknown", code]).get()
    }

    #[test]
    fn every_line_of_a_request_carries_its_id_agency_service_and_method() {
        let m = Arc::new(Metrics::new());
        let (headers, log) = call(&m, Some("req-7"), "0", false, true);
        assert_eq!(headers.get(REQUEST_ID).unwrap(), "req-7");
        let lines: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2, "the handler's line and the layer's closing line: {log}");
        for l in &lines {
            let span = &l["span"];
            assert_eq!(span["request_id"], "req-7", "{l}");
            assert_eq!(span["agency"], "unknown", "no client certificate in this test: {l}");
            assert_eq!(span["service"], "doudi.v1.Audit");
            assert_eq!(span["method"], "WhoAmI");
        }
        assert_eq!(lines[0]["fields"]["seen_request_id"], "req-7", "the handler sees the id");
        assert_eq!(lines[1]["fields"]["code"], "OK");
        assert_eq!(count(&m, "OK"), 1);
    }

    #[test]
    fn the_code_comes_from_headers_trailers_or_a_dropped_body() {
        let m = Arc::new(Metrics::new());
        // Trailers-only (a unary error): counted without reading the body.
        let (headers, _) = call(&m, Some("bad id with spaces"), "7", true, false);
        let made = headers.get(REQUEST_ID).unwrap().to_str().unwrap().to_owned();
        assert_eq!(made.len(), 36, "an insane id is replaced: {made}");
        assert_eq!(count(&m, "PERMISSION_DENIED"), 1);
        // Status in the trailers: counted when they pass.
        call(&m, None, "5", false, true);
        assert_eq!(count(&m, "NOT_FOUND"), 1);
        // Body dropped before its trailers: CANCELLED.
        call(&m, None, "0", false, false);
        assert_eq!(count(&m, "CANCELLED"), 1);
        assert_eq!(count(&m, "OK"), 0);
        let latency = m.latency.with_label_values(&["doudi.v1.Audit", "WhoAmI"]).get_sample_count();
        assert_eq!(latency, 3, "each call timed once");
    }

    #[test]
    fn a_call_dropped_before_its_answer_counts_as_cancelled() {
        let m = Arc::new(Metrics::new());
        let layer = ObserveLayer::new(
            m.clone(),
            "t.invalid",
            Arc::new(AccessPolicy::default()),
            &[crate::grpc::FILE_DESCRIPTOR_SET],
        );
        // A handler still working when its future is dropped, as tonic drops it when `grpc-timeout` expires.
        let mut svc = layer.layer(tower::service_fn(|_: http::Request<()>| async {
            std::future::pending::<()>().await;
            Ok::<_, std::convert::Infallible>(http::Response::new(Trailers(None)))
        }));
        let req = http::Request::builder().uri("/doudi.v1.Audit/WhoAmI").body(()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let timed_out =
            rt.block_on(async { tokio::time::timeout(std::time::Duration::from_millis(10), svc.call(req)).await });
        assert!(timed_out.is_err(), "the handler never answers");
        assert_eq!(count(&m, "CANCELLED"), 1);
        assert_eq!(m.latency.with_label_values(&["doudi.v1.Audit", "WhoAmI"]).get_sample_count(), 1);
    }

    #[test]
    fn code_names() {
        assert_eq!(code_name(0), "OK");
        assert_eq!(code_name(7), "PERMISSION_DENIED");
        assert_eq!(code_name(16), "UNAUTHENTICATED");
        assert_eq!(code_name(99), "UNKNOWN");
    }

    /// The W3C spec's example: trace 4bf92f3577b34da6a3ce929d0e0e4736, the caller's span 00f067aa0ba902b7, sampled.
    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    fn header(h: &HeaderMap, name: &str) -> String {
        h.get(name).unwrap().to_str().unwrap().to_owned()
    }

    #[test]
    fn a_traceparent_s_trace_id_is_on_every_line_and_in_the_response() {
        let m = Arc::new(Metrics::new());
        let buf = Buf::default();
        let sent = [(REQUEST_ID, "req-8"), ("traceparent", TRACEPARENT)];
        let headers = call_under(&m, &sent, "0", false, true, vec![log_layer(&buf, true)]);
        assert_eq!(header(&headers, TRACE_ID), TRACE);
        assert_eq!(header(&headers, REQUEST_ID), "req-8");
        let lines = buf.json_lines();
        assert_eq!(lines.len(), 2, "the handler's line and the layer's closing line: {}", buf.text());
        for l in &lines {
            assert_eq!(l["span"]["trace_id"], TRACE, "{l}");
            assert_eq!(l["span"]["request_id"], "req-8", "{l}");
        }

        // Human output: the span prefix of each line carries it beside the request id.
        let buf = Buf::default();
        call_under(&m, &sent, "0", false, true, vec![log_layer(&buf, false)]);
        let text = buf.text();
        assert_eq!(text.lines().count(), 2, "{text}");
        for line in text.lines() {
            assert!(line.contains("request{request_id=req-8 "), "{line}");
            assert!(line.contains(&format!(" trace_id={TRACE}}}")), "{line}");
        }
    }

    #[test]
    fn a_malformed_or_missing_traceparent_starts_a_new_trace() {
        let m = Arc::new(Metrics::new());
        let mut seen = Vec::new();
        for sent in [
            // All-zero parent id, upper case, version ff, and none at all.
            vec![("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01")],
            vec![("traceparent", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01")],
            vec![("traceparent", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")],
            vec![],
        ] {
            let buf = Buf::default();
            let headers = call_under(&m, &sent, "0", false, true, vec![log_layer(&buf, true)]);
            let made = header(&headers, TRACE_ID);
            assert!(crate::grpc::trace_context::is_trace_id(&made), "{made}");
            assert_ne!(made, TRACE, "{sent:?}");
            let lines = buf.json_lines();
            assert_eq!(lines[0]["fields"]["message"], "handler ran", "the request is served");
            assert_eq!(lines[1]["fields"]["code"], "OK");
            for l in &lines {
                assert_eq!(l["span"]["trace_id"], made.as_str(), "{l}");
            }
            seen.push(made);
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 4, "a new trace each time");
        assert_eq!(count(&m, "OK"), 4);
    }

    /// The exported spans of an OpenTelemetry pipeline, kept in memory.
    #[cfg(feature = "otlp")]
    #[derive(Debug, Clone, Default)]
    struct Exported(Arc<std::sync::Mutex<Vec<opentelemetry_sdk::trace::SpanData>>>);

    #[cfg(feature = "otlp")]
    impl opentelemetry_sdk::trace::SpanExporter for Exported {
        fn export(
            &self,
            batch: Vec<opentelemetry_sdk::trace::SpanData>,
        ) -> impl Future<Output = opentelemetry_sdk::error::OTelSdkResult> + Send {
            self.0.lock().unwrap().extend(batch);
            std::future::ready(Ok(()))
        }
    }

    /// With the OpenTelemetry layer of `doudi serve --otlp…` (its filter and tracer, an in-memory exporter in place of
    /// OTLP): one call with `sent` headers; the spans exported, the response headers and the JSON log.
    #[cfg(feature = "otlp")]
    fn call_exported(sent: &[(&'static str, &str)]) -> (Vec<opentelemetry_sdk::trace::SpanData>, HeaderMap, Buf) {
        let exported = Exported::default();
        let provider = crate::server::telemetry::otel_provider_with(|b| b.with_simple_exporter(exported.clone()));
        let buf = Buf::default();
        let layers = vec![log_layer(&buf, true), crate::server::telemetry::otel_layer_of(&provider)];
        let headers = call_under(&Arc::new(Metrics::new()), sent, "0", false, true, layers);
        provider.shutdown().unwrap();
        let spans = exported.0.lock().unwrap().clone();
        (spans, headers, buf)
    }

    #[cfg(feature = "otlp")]
    #[test]
    fn the_exported_span_is_the_client_s_child_and_has_the_logged_trace_id() {
        use opentelemetry::trace::SpanId;
        let (spans, headers, buf) = call_exported(&[(REQUEST_ID, "req-9"), ("traceparent", TRACEPARENT)]);
        assert_eq!(spans.len(), 1, "{spans:?}");
        let span = &spans[0];
        assert_eq!(span.name, "request");
        assert_eq!(span.span_context.trace_id().to_string(), TRACE);
        assert_eq!(span.parent_span_id.to_string(), "00f067aa0ba902b7");
        assert!(span.parent_span_is_remote);
        assert!(span.span_context.is_sampled());
        let attribute = |k: &str| span.attributes.iter().find(|a| a.key.as_str() == k).map(|a| a.value.to_string());
        assert_eq!(attribute("request_id").as_deref(), Some("req-9"));
        assert_eq!(attribute("method").as_deref(), Some("WhoAmI"));
        assert_eq!(attribute("trace_id").as_deref(), Some(TRACE));
        assert!(span.events.iter().any(|e| e.name == "handler ran"), "events logged inside it: {:?}", span.events);
        assert_eq!(header(&headers, TRACE_ID), TRACE);
        for l in buf.json_lines() {
            assert_eq!(l["span"]["trace_id"], TRACE, "{l}");
        }

        // Without a (valid) traceparent the span is the root of a new trace, and that trace id is the one logged.
        for sent in [vec![], vec![("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01")]] {
            let (spans, headers, buf) = call_exported(&sent);
            assert_eq!(spans.len(), 1, "{spans:?}");
            let made = spans[0].span_context.trace_id().to_string();
            assert_ne!(made, TRACE);
            assert_eq!(spans[0].parent_span_id, SpanId::INVALID, "a root span");
            assert_eq!(header(&headers, TRACE_ID), made);
            let lines = buf.json_lines();
            assert_eq!(lines.len(), 2);
            for l in &lines {
                assert_eq!(l["span"]["trace_id"], made.as_str(), "{l}");
            }
        }

        // The client's "not sampled" is followed: nothing exported, the trace id still logged and echoed.
        let (spans, headers, buf) =
            call_exported(&[("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")]);
        assert!(spans.is_empty(), "{spans:?}");
        assert_eq!(header(&headers, TRACE_ID), TRACE);
        for l in buf.json_lines() {
            assert_eq!(l["span"]["trace_id"], TRACE, "{l}");
        }
    }
}
