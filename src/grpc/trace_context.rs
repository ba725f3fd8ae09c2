//! W3C Trace Context (<https://www.w3.org/TR/trace-context/>): the `traceparent` request header a client sends to make
//! its call part of a distributed trace.
//!
//! `traceparent: 00-<trace-id>-<parent-id>-<trace-flags>`: version `00`, a 32-hex trace id and a 16-hex parent id
//! (the caller's span), neither all zeros, and two hex digits of flags (bit 0: sampled); hex in lower case only. A
//! higher version is read as the spec's §3.2.4 asks (its first four fields, then the end of the value or a `-`);
//! version `ff` is invalid. A header that is missing, malformed, or sent more than once is ignored, as the spec
//! says: the hub starts a new trace (a new random trace id) and serves the request as usual. `tracestate` is read
//! only beside a valid `traceparent` (and only to go with the exported span: [`crate::server::telemetry`]).
//!
//! The trace id in force, the client's or the new one, is the `trace_id` field of the request span
//! ([`crate::grpc::observe`]), so it is on every log line of the request, and it is echoed in the response header
//! `x-trace-id`.

use http::HeaderMap;

/// The W3C request header naming the caller's trace and span.
pub const TRACEPARENT: &str = "traceparent";
/// The W3C request header of vendor-specific trace state that goes with `traceparent`.
pub const TRACESTATE: &str = "tracestate";
/// The response header carrying the request's trace id (32 lower-case hex digits).
pub const TRACE_ID: &str = "x-trace-id";

/// A valid `traceparent`: the caller's trace, its span (the parent of the hub's), and the trace flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub parent_id: [u8; 8],
    pub flags: u8,
}

impl TraceParent {
    /// The `traceparent` of a request: `None` if it has none, more than one, or one that is not valid.
    pub fn from_headers(headers: &HeaderMap) -> Option<TraceParent> {
        let mut values = headers.get_all(TRACEPARENT).iter();
        let value = values.next()?;
        if values.next().is_some() {
            return None;
        }
        TraceParent::parse(value.as_bytes())
    }

    /// One header value, with the optional white space around it that HTTP allows.
    pub fn parse(value: &[u8]) -> Option<TraceParent> {
        let v = value.trim_ascii_start().trim_ascii_end();
        // version "-" trace-id "-" parent-id "-" trace-flags: 2 + 1 + 32 + 1 + 16 + 1 + 2.
        const LEN: usize = 55;
        if v.len() < LEN || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
            return None;
        }
        let version = lower_hex::<1>(&v[0..2])?[0];
        match version {
            0xff => return None,
            // Version 00 has exactly these four fields.
            0x00 if v.len() != LEN => return None,
            // A later version may add fields after a '-'.
            _ if v.len() > LEN && v[LEN] != b'-' => return None,
            _ => {}
        }
        let trace_id = lower_hex::<16>(&v[3..35])?;
        let parent_id = lower_hex::<8>(&v[36..52])?;
        let flags = lower_hex::<1>(&v[53..55])?[0];
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(TraceParent { trace_id, parent_id, flags })
    }

    /// The trace id as 32 lower-case hex digits.
    pub fn trace_id_hex(&self) -> String {
        hex::encode(self.trace_id)
    }

    /// The caller's sampled flag (bit 0 of the trace flags).
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }
}

/// `N` bytes written as `2 N` lower-case hex digits (the spec's HEXDIGLC: upper case is invalid).
fn lower_hex<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0; N];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// A new random trace id (for a request without a valid `traceparent`), never all zeros, as 32 hex digits.
pub fn new_trace_id() -> String {
    loop {
        let id: [u8; 16] = rand::random();
        if id != [0; 16] {
            return hex::encode(id);
        }
    }
}

/// Is `s` a trace id as the hub writes it: 32 lower-case hex digits, not all zeros?
pub fn is_trace_id(s: &str) -> bool {
    lower_hex::<16>(s.as_bytes()).is_some_and(|id| id != [0; 16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    /// The spec's example (§3.2.2.x): trace 4bf92f35…4736, parent span 00f067aa0ba902b7, sampled.
    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_spec_example_is_read() {
        let p = TraceParent::parse(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(p.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex::encode(p.parent_id), "00f067aa0ba902b7");
        assert_eq!(p.flags, 1);
        assert!(p.sampled());
        let not_sampled = TraceParent::parse(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
        assert!(!not_sampled.sampled());
        // Optional white space around the value (HTTP's OWS) is not part of it.
        assert_eq!(TraceParent::parse(format!(" \t{EXAMPLE} ").as_bytes()), Some(p));
    }

    #[test]
    fn later_versions_are_read_as_the_spec_says() {
        // §3.2.4: a higher version is read by its first four fields, followed by the end or a '-'.
        let p = TraceParent::parse(b"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(p.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let p =
            TraceParent::parse(b"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-will-be-like")
                .unwrap();
        assert_eq!(hex::encode(p.parent_id), "00f067aa0ba902b7");
        assert_eq!(TraceParent::parse(b"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.what"), None);
    }

    #[test]
    fn malformed_values_are_refused() {
        for bad in [
            "",
            "00",
            // Version ff, a version that is not hex, or upper case.
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            // All-zero trace id or parent id.
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            // Upper-case or non-hex digits.
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
            // Fields too short or too long, wrong separators.
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-001",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            // Version 00 has nothing after the flags.
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-will-not-be-like",
            // Not ASCII.
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0é",
        ] {
            assert_eq!(TraceParent::parse(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn one_header_or_none() {
        let mut h = HeaderMap::new();
        assert_eq!(TraceParent::from_headers(&h), None);
        h.insert(TRACEPARENT, HeaderValue::from_static(EXAMPLE));
        assert!(TraceParent::from_headers(&h).is_some());
        // Sent twice: the caller's context is ambiguous, so it is ignored (the W3C test suite's "duplicated").
        h.append(TRACEPARENT, HeaderValue::from_static(EXAMPLE));
        assert_eq!(TraceParent::from_headers(&h), None);
    }

    #[test]
    fn new_trace_ids() {
        let a = new_trace_id();
        assert!(is_trace_id(&a), "{a}");
        assert_ne!(new_trace_id(), a);
        assert!(!is_trace_id("00000000000000000000000000000000"));
        assert!(!is_trace_id("4BF92F3577B34DA6A3CE929D0E0E4736"));
        assert!(is_trace_id("4bf92f3577b34da6a3ce929d0e0e4736"));
    }
}
