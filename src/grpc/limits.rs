//! A tower layer that gives request-decoding failures the status the gRPC protocol and
//! docs/spec/security.md call for:
//! - a message over `max_decoding_message_size`: tonic 0.14 says OUT_OF_RANGE → RESOURCE_EXHAUSTED;
//! - a gzip message that inflates past `max_decoding_message_size` (a "zip bomb"): tonic stops inflating there and says
//!   RESOURCE_EXHAUSTED → the same status with the hub's message and details;
//! - malformed protobuf or invalid UTF-8 in a string field, or a gzip message that does not inflate: tonic says
//!   INTERNAL ("failed to decode Protobuf message", "Error decompressing") → INVALID_ARGUMENT (the client sent it;
//!   nothing is wrong inside the hub).
//!
//! Each mapped status carries the error details of `super::status` (reasons MESSAGE_TOO_LARGE, MALFORMED_REQUEST).
//! Unary calls fail before the handler runs, as a trailers-only response; this layer rewrites that
//! response's `grpc-status`, `grpc-message` and `grpc-status-details-bin`. Streaming handlers map the same statuses
//! themselves ([`client_fault`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::HeaderValue;
use tonic::{Code, Status};
use tower::{Layer, Service};

use super::status::{ErrorReason, Refusal};

/// The prefix of tonic's message for an oversized message.
const TOO_LARGE: &str = "Error, decoded message length too large";
/// The prefix of tonic's message for undecodable protobuf.
const UNDECODABLE: &str = "failed to decode Protobuf message";
/// The prefix of tonic's message for a compressed message that inflates past the limit (RESOURCE_EXHAUSTED).
const INFLATES_TOO_LARGE: &str = "Error decompressing: size limit";
/// The prefix of tonic's message for a compressed message that does not inflate (INTERNAL).
const UNDECOMPRESSABLE: &str = "Error decompressing";

/// Map tonic's decoding statuses to the client's fault, with error details: `Ok` with the refusal for those,
/// `Err` with the status unchanged for any other (a transport error, a reset).
pub fn client_fault(s: Status) -> Result<Refusal, Status> {
    let m = s.message();
    match s.code() {
        Code::OutOfRange if m.starts_with(TOO_LARGE) => Ok(too_large(detail(m.trim_start_matches(TOO_LARGE)))),
        Code::ResourceExhausted if m.starts_with(INFLATES_TOO_LARGE) => {
            // tonic: "…size limit, of N bytes, exceeded while decompressing message"
            let limit = m.split_whitespace().find_map(|w| w.parse::<u64>().ok());
            Ok(too_large(&match limit {
                Some(n) => format!("it inflates to more than the limit of {n} bytes when decompressed"),
                None => "it inflates past the size limit when decompressed".to_owned(),
            }))
        }
        Code::Internal if m.starts_with(UNDECODABLE) => Ok(malformed(&format!(
            "request is not a valid protobuf message of the method's type (malformed bytes or invalid UTF-8 in a \
             string field): {}",
            detail(m.trim_start_matches(UNDECODABLE))
        ))),
        Code::Internal if m.starts_with(UNDECOMPRESSABLE) => Ok(malformed(&format!(
            "request message does not decompress with its grpc-encoding: {}",
            detail(m.trim_start_matches(UNDECOMPRESSABLE))
        ))),
        _ => Err(s),
    }
}

/// [`client_fault`] as a status: the refusal, or the status unchanged.
pub fn client_fault_status(s: Status) -> Status {
    client_fault(s).map_or_else(|s| s, Status::from)
}

fn detail(rest: &str) -> &str {
    rest.trim_start_matches(':').trim()
}

fn malformed(message: &str) -> Refusal {
    Refusal::new(Code::InvalidArgument, ErrorReason::MalformedRequest, message)
}

fn too_large(why: &str) -> Refusal {
    Refusal::new(
        Code::ResourceExhausted,
        ErrorReason::MessageTooLarge,
        format!("request message too large ({why}); split the batch or use StreamFacts with smaller messages"),
    )
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
            // 8 RESOURCE_EXHAUSTED, 11 OUT_OF_RANGE, 13 INTERNAL: tonic's decoding statuses have these codes and no
            // details (a handler's own status already has details and is left alone).
            if matches!(code.as_deref(), Some(b"8") | Some(b"11") | Some(b"13"))
                && !h.contains_key("grpc-status-details-bin")
                && let Some(status) = Status::from_header_map(h)
                && let Ok(refusal) = client_fault(status)
            {
                // The client's fault, not the hub's: warn (an operator may want to tell the agency), never error.
                tracing::warn!(%method, code = ?refusal.code(), message = refusal.message(), "refused a client's message");
                let mapped = Status::from(refusal);
                // Re-encode as the protocol requires (percent-encoded message, base64 details).
                let mut tmp = http::HeaderMap::new();
                if mapped.add_header(&mut tmp).is_ok() {
                    h.insert("grpc-status", HeaderValue::from(mapped.code() as i32));
                    for name in ["grpc-message", "grpc-status-details-bin"] {
                        if let Some(v) = tmp.get(name) {
                            h.insert(name, v.clone());
                        }
                    }
                }
            }
            Ok(resp)
        })
    }
}
