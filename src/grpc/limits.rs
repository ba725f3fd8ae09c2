//! A tower layer that gives request-decoding failures the status the gRPC protocol and
//! security.md call for:
//! - a message over `max_decoding_message_size`: tonic 0.14 says OUT_OF_RANGE → RESOURCE_EXHAUSTED;
//! - malformed protobuf or invalid UTF-8 in a string field: tonic says INTERNAL ("failed to decode
//!   Protobuf message") → INVALID_ARGUMENT (the client sent it; nothing is wrong inside the hub).
//!
//! Unary calls fail before the handler runs, as a trailers-only response; this layer rewrites that
//! response's `grpc-status`. Streaming handlers map the same statuses themselves ([`client_fault`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::HeaderValue;
use tonic::{Code, Status};
use tower::{Layer, Service};

/// The prefix of tonic's message for an oversized message.
const TOO_LARGE: &str = "Error, decoded message length too large";
/// The prefix of tonic's message for undecodable protobuf.
const UNDECODABLE: &str = "failed to decode Protobuf message";

/// Map tonic's decoding statuses to the client's fault; other statuses unchanged.
pub fn client_fault(s: Status) -> Status {
    match s.code() {
        Code::OutOfRange if s.message().starts_with(TOO_LARGE) => {
            Status::resource_exhausted(too_large_message(s.message()))
        }
        Code::Internal if s.message().starts_with(UNDECODABLE) => {
            Status::invalid_argument(undecodable_message(s.message()))
        }
        _ => s,
    }
}

fn undecodable_message(tonic_message: &str) -> String {
    let detail = tonic_message.trim_start_matches(UNDECODABLE).trim_start_matches(':').trim();
    format!(
        "request is not a valid protobuf message of the method's type (malformed bytes or invalid UTF-8 in a string field): {detail}"
    )
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
        let method = req.uri().path().to_owned();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut resp = fut.await?;
            let h = resp.headers_mut();
            let code = h.get("grpc-status").map(|v| v.as_bytes().to_vec());
            if matches!(code.as_deref(), Some(b"11") | Some(b"13"))
                && let Some(status) = Status::from_header_map(h)
            {
                let mapped = client_fault(status.clone());
                if mapped.code() != status.code() {
                    // The client's fault, not the hub's: warn (an operator may want to tell the agency), never error.
                    tracing::warn!(%method, code = ?mapped.code(), message = mapped.message(), "refused a client's message");
                    h.insert("grpc-status", HeaderValue::from(mapped.code() as i32));
                    // Re-encode the message as the protocol requires (percent-encoding).
                    let mut tmp = http::HeaderMap::new();
                    if mapped.add_header(&mut tmp).is_ok()
                        && let Some(m) = tmp.get("grpc-message")
                    {
                        h.insert("grpc-message", m.clone());
                    }
                }
            }
            Ok(resp)
        })
    }
}
