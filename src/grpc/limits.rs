//! A tower layer that reports an oversized request message as RESOURCE_EXHAUSTED.
//!
//! tonic 0.14 refuses a message over `max_decoding_message_size` with OUT_OF_RANGE, while the gRPC
//! protocol (and security.md: "over them: RESOURCE_EXHAUSTED") calls for RESOURCE_EXHAUSTED. Unary
//! calls fail before the handler runs, as a trailers-only response; this layer rewrites that
//! response's `grpc-status`. Streaming handlers map the same status themselves
//! ([`resource_exhausted_if_too_large`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::HeaderValue;
use tonic::{Code, Status};
use tower::{Layer, Service};

/// The prefix of tonic's message for an oversized message.
const TOO_LARGE: &str = "Error, decoded message length too large";

/// Turn tonic's OUT_OF_RANGE "message too large" into RESOURCE_EXHAUSTED, other statuses unchanged.
pub fn resource_exhausted_if_too_large(s: Status) -> Status {
    if s.code() == Code::OutOfRange && s.message().starts_with(TOO_LARGE) {
        Status::resource_exhausted(too_large_message(s.message()))
    } else {
        s
    }
}

fn too_large_message(tonic_message: &str) -> String {
    let detail = tonic_message.trim_start_matches(TOO_LARGE).trim_start_matches(':').trim();
    format!("request message too large ({detail}); split the batch or use StreamFacts with smaller messages")
}

#[derive(Clone, Copy, Debug, Default)]
pub struct MessageLimitLayer;

impl<S> Layer<S> for MessageLimitLayer {
    type Service = MessageLimit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        MessageLimit { inner }
    }
}

#[derive(Clone, Debug)]
pub struct MessageLimit<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for MessageLimit<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut resp = fut.await?;
            let h = resp.headers_mut();
            let out_of_range = h.get("grpc-status").is_some_and(|v| v.as_bytes() == b"11");
            if out_of_range
                && let Some(status) = Status::from_header_map(h)
                && status.message().starts_with(TOO_LARGE)
            {
                let replaced = Status::resource_exhausted(too_large_message(status.message()));
                h.insert("grpc-status", HeaderValue::from(Code::ResourceExhausted as i32));
                // Re-encode the message as the protocol requires (percent-encoding).
                let mut tmp = http::HeaderMap::new();
                if replaced.add_header(&mut tmp).is_ok()
                    && let Some(m) = tmp.get("grpc-message")
                {
                    h.insert("grpc-message", m.clone());
                }
            }
            Ok(resp)
        })
    }
}
