//! Refusals on record (issue 20 item 2, docs/refusals.md): PERMISSION_DENIED, UNAUTHENTICATED, quota refusals
//! (RESOURCE_EXHAUSTED with reason QUOTA_EXCEEDED or CONCURRENCY_LIMIT_EXCEEDED) and client certificates refused at
//! the TLS handshake become audit events, aggregated so that a flood cannot grow the chain without bound.
//!
//! - **Where they are seen.** Every gRPC refusal passes the outermost tower layer ([`crate::grpc::observe`]), which
//!   reads the final status (headers of a trailers-only answer, or the trailers) and calls [`RefusalLog::record`];
//!   handshake refusals are seen by the accept loop ([`crate::server::tls::tls_incoming_recorded`]), with the certificate
//!   the verifier refused ([`note_handshake_cert`]) when one was presented and parsed.
//! - **Aggregation.** One event per (kind, method, peer identity, peer IP address, minute of the UTC wall clock),
//!   carrying the count. Recording is an O(1) update of an in-memory map under a mutex held for microseconds: no I/O,
//!   no `.await`, so refusals never block or slow the data path.
//! - **Bound.** At most `peers_per_minute` keys a minute (`audit_refusal_peers_per_minute`); refusals of further
//!   keys in that minute are counted in one overflow event per kind (peer `*`, method `*`). A minute thus adds at most
//!   `peers_per_minute + 4` events, however many refusals it saw.
//! - **Writing.** A minute's events are written once the minute is over (a task ticks every second:
//!   [`spawn_flusher`]), through the read-audit group commit ([`crate::store::FactReads::record_audit`]), so they
//!   are ordinary chained events of the process's lane; at shutdown whatever is pending, the current minute
//!   included, is written ([`RefusalLog::flush_all`]). Events the store could not take are kept and retried, up to
//!   [`MAX_READY_EVENTS`]; past that they are dropped, logged and counted (`doudi_audit_refusal_events_dropped_total`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec, Opts};
use rustls::pki_types::CertificateDer;
use sha2::{Digest, Sha256};

use crate::domain::agency::Principal;
use crate::domain::policy::AccessPolicy;
use crate::hub::Clock;
use crate::store::{AuditRecord, Store};

/// The method of a handshake refusal's event (there is no gRPC request).
pub const HANDSHAKE_METHOD: &str = "tls.handshake";

/// Every refusal event's outcome starts with this (then the kind and `count=N`).
pub const OUTCOME_PREFIX: &str = "REFUSED ";

/// The agency of a refusal whose certificate named no agency this hub knows (the label `crate::grpc::observe` uses).
pub const UNKNOWN_AGENCY: &str = "unknown";

/// The peer and method of an overflow event.
pub const OVERFLOW: &str = "*";

/// Default of `audit_refusal_peers_per_minute`.
pub const DEFAULT_PEERS_PER_MINUTE: usize = 1000;

/// Events waiting to be written at most (the store failing); later ones are dropped and counted.
pub const MAX_READY_EVENTS: usize = 100_000;

/// Longest reason and certificate subject kept in an event, in characters.
const MAX_TEXT_CHARS: usize = 120;

const MINUTE_MICROS: i64 = 60_000_000;

/// What was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RefusalKind {
    /// PERMISSION_DENIED: a method or payload the agency may not use, a county office outside its county, …
    PermissionDenied,
    /// UNAUTHENTICATED: a certificate naming no agency this hub knows.
    Unauthenticated,
    /// RESOURCE_EXHAUSTED with reason QUOTA_EXCEEDED or CONCURRENCY_LIMIT_EXCEEDED: over a per-agency quota.
    ResourceExhausted,
    /// The TLS handshake refused the client certificate (unknown issuer, revoked, expired, stale CRL, none).
    Handshake,
}

impl RefusalKind {
    pub const ALL: [RefusalKind; 4] = [
        RefusalKind::PermissionDenied,
        RefusalKind::Unauthenticated,
        RefusalKind::ResourceExhausted,
        RefusalKind::Handshake,
    ];

    /// The name in outcomes, the `kind` label and the ListAccessEvents filter.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalKind::PermissionDenied => "PERMISSION_DENIED",
            RefusalKind::Unauthenticated => "UNAUTHENTICATED",
            RefusalKind::ResourceExhausted => "RESOURCE_EXHAUSTED",
            RefusalKind::Handshake => "HANDSHAKE",
        }
    }

    pub fn parse(s: &str) -> Option<RefusalKind> {
        RefusalKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Who was refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    /// The agency code and county (`""` for none) when the certificate named an agency this hub knows; `operator`
    /// for an operator's certificate (docs/admin.md).
    pub agency: Option<(String, String)>,
    /// The SPIFFE ID of a known agency; else `sha256:<hex>` of the certificate's DER; `none` without one.
    pub identity: String,
    /// The subject of a certificate naming no known agency, when it parsed.
    pub subject: Option<String>,
    /// The peer's IP address (the port is left out: every connection has another; an IPv4-mapped IPv6 address is
    /// written as the IPv4 address it maps, [`canonical`]).
    pub addr: Option<IpAddr>,
}

/// `addr` as written in events: an IPv4-mapped IPv6 address (a hub listening on `[::]`) as its IPv4 address.
pub fn canonical(addr: IpAddr) -> IpAddr {
    addr.to_canonical()
}

impl Peer {
    /// The peer of a connection that presented `leaf` (the end-entity certificate, DER) from `addr`.
    pub fn from_certificate(
        leaf: Option<&[u8]>,
        addr: Option<IpAddr>,
        trust_domain: &str,
        policy: &AccessPolicy,
    ) -> Peer {
        let Some(leaf) = leaf else { return Peer { identity: "none".into(), addr, ..Peer::default() } };
        for id in crate::server::tls::peer_spiffe_ids(leaf).unwrap_or_default() {
            if let Ok(p) = Principal::from_spiffe(&id, trust_domain)
                && policy.is_known(p.agency())
            {
                return Peer {
                    agency: Some((p.agency().to_string(), crate::hub::division_of(&p))),
                    identity: p.spiffe_id().to_owned(),
                    subject: None,
                    addr,
                };
            }
            // An operator (docs/admin.md): agency `operator`, identity its SPIFFE ID (role and name).
            if let Ok(op) = crate::domain::admin::OperatorId::from_spiffe(&id, trust_domain) {
                return Peer {
                    agency: Some((crate::domain::admin::OPERATOR_AGENCY.to_owned(), String::new())),
                    identity: op.spiffe_id,
                    subject: None,
                    addr,
                };
            }
        }
        Peer::unknown_certificate(leaf, addr)
    }

    /// The peer of a certificate that names no known agency (or was refused at the handshake): its fingerprint and,
    /// when it parses, its subject.
    pub fn unknown_certificate(leaf: &[u8], addr: Option<IpAddr>) -> Peer {
        use x509_parser::prelude::FromDer as _;
        let subject =
            x509_parser::prelude::X509Certificate::from_der(leaf).ok().map(|(_, c)| clean(&c.subject().to_string()));
        Peer { agency: None, identity: format!("sha256:{}", hex::encode(Sha256::digest(leaf))), subject, addr }
    }
}

/// One refusal.
#[derive(Debug, Clone)]
pub struct Refused {
    pub kind: RefusalKind,
    /// The gRPC method path (a served one, else `unknown`), or [`HANDSHAKE_METHOD`].
    pub method: String,
    pub peer: Peer,
    /// Why (the status message, or the TLS error); masked and shortened when written.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    kind: RefusalKind,
    identity: String,
    addr: Option<IpAddr>,
    method: String,
}

#[derive(Debug)]
struct Entry {
    agency: Option<(String, String)>,
    subject: Option<String>,
    reason: String,
    count: u64,
    first: i64,
    last: i64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Overflow {
    count: u64,
    first: i64,
    last: i64,
}

/// One minute's refusals.
#[derive(Debug)]
struct Window {
    /// Minutes since the Unix epoch.
    minute: i64,
    entries: HashMap<Key, Entry>,
    overflow: [Overflow; 4],
}

#[derive(Debug, Default)]
struct State {
    current: Option<Window>,
    /// Events of closed minutes, oldest first, not yet written.
    ready: Vec<AuditRecord>,
}

/// The in-memory buffer of refusals (module docs). Shared by the observe layer, the accept loop and the flusher.
pub struct RefusalLog {
    state: Mutex<State>,
    peers_per_minute: usize,
    /// The wall clock unless fixed (tests fix it to choose the minute).
    pub clock: Clock,
    refusals: IntCounterVec,
    dropped: IntCounter,
}

impl Default for RefusalLog {
    fn default() -> Self {
        RefusalLog::new(DEFAULT_PEERS_PER_MINUTE)
    }
}

impl std::fmt::Debug for RefusalLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefusalLog").field("peers_per_minute", &self.peers_per_minute).finish_non_exhaustive()
    }
}

impl RefusalLog {
    /// At most `peers_per_minute` aggregated events a minute besides the overflow events (0: every refusal goes to
    /// the overflow events).
    pub fn new(peers_per_minute: usize) -> RefusalLog {
        RefusalLog {
            state: Mutex::new(State::default()),
            peers_per_minute,
            clock: Clock::default(),
            refusals: IntCounterVec::new(
                Opts::new(
                    "doudi_refusals_total",
                    "refusals put on record (audit events aggregated per peer and minute), by kind (PERMISSION_DENIED, \
                     UNAUTHENTICATED, RESOURCE_EXHAUSTED, HANDSHAKE)",
                ),
                &["kind"],
            )
            .expect("valid metric"),
            dropped: IntCounter::new(
                "doudi_audit_refusal_events_dropped_total",
                "aggregated refusal events dropped because the store could not take them and the buffer was full",
            )
            .expect("valid metric"),
        }
    }

    /// The metrics to register with the hub's registry.
    pub fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![Box::new(self.refusals.clone()), Box::new(self.dropped.clone())]
    }

    /// Refusals of `kind` recorded since the hub started (`doudi_refusals_total`).
    pub fn recorded(&self, kind: RefusalKind) -> u64 {
        self.refusals.with_label_values(&[kind.as_str()]).get()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_micros(&self) -> i64 {
        crate::store::to_micros(self.clock.now())
    }

    /// Count one refusal in its minute's event (never blocks on I/O).
    pub fn record(&self, r: Refused) {
        self.refusals.with_label_values(&[r.kind.as_str()]).inc();
        let now = self.now_micros();
        let minute = now.div_euclid(MINUTE_MICROS);
        let mut s = self.lock();
        if s.current.as_ref().is_some_and(|w| w.minute != minute) {
            self.close(&mut s);
        }
        let w =
            s.current.get_or_insert_with(|| Window { minute, entries: HashMap::new(), overflow: Default::default() });
        let key = Key { kind: r.kind, identity: r.peer.identity, addr: r.peer.addr.map(canonical), method: r.method };
        let full = w.entries.len() >= self.peers_per_minute;
        match w.entries.get_mut(&key) {
            Some(e) => {
                e.count += 1;
                e.last = now;
            }
            None if !full => {
                w.entries.insert(
                    key,
                    Entry {
                        agency: r.peer.agency,
                        subject: r.peer.subject,
                        reason: r.reason,
                        count: 1,
                        first: now,
                        last: now,
                    },
                );
            }
            None => {
                let o = &mut w.overflow[r.kind.index()];
                if o.count == 0 {
                    o.first = now;
                }
                o.count += 1;
                o.last = now;
            }
        }
    }

    /// Close the current minute: its events join the ready ones.
    fn close(&self, s: &mut State) {
        let Some(w) = s.current.take() else { return };
        let events = window_events(w, self.peers_per_minute);
        let room = MAX_READY_EVENTS.saturating_sub(s.ready.len());
        if events.len() > room {
            let lost = events.len() - room;
            self.dropped.inc_by(lost as u64);
            tracing::error!(lost, "refusal events dropped: the store has not taken the earlier ones (buffer full)");
        }
        s.ready.extend(events.into_iter().take(room));
    }

    /// The events of every minute that is over (the current one stays open).
    fn take_ready(&self, all: bool) -> Vec<AuditRecord> {
        let minute = self.now_micros().div_euclid(MINUTE_MICROS);
        let mut s = self.lock();
        if all || s.current.as_ref().is_some_and(|w| w.minute < minute) {
            self.close(&mut s);
        }
        std::mem::take(&mut s.ready)
    }

    /// Write the events of the minutes that are over. Returns how many were written; those the store refused are
    /// kept for the next call.
    pub async fn flush(&self, store: &Store) -> usize {
        let events = self.take_ready(false);
        self.write(store, events).await
    }

    /// Write everything pending, the current minute included (at shutdown; a refusal of the same key later in that
    /// minute, by the next process, becomes an event of its own).
    pub async fn flush_all(&self, store: &Store) -> usize {
        let events = self.take_ready(true);
        self.write(store, events).await
    }

    async fn write(&self, store: &Store, events: Vec<AuditRecord>) -> usize {
        if events.is_empty() {
            return 0;
        }
        // Handed in together, they share the read-audit group commit's transactions (256 events each).
        let results = futures::future::join_all(events.iter().map(|e| store.record_audit(e))).await;
        let mut failed = Vec::new();
        let mut written = 0;
        let mut error = None;
        for (e, r) in events.into_iter().zip(results) {
            match r {
                Ok(()) => written += 1,
                Err(err) => {
                    error.get_or_insert(err);
                    failed.push(e);
                }
            }
        }
        if let Some(err) = error {
            tracing::warn!(error = %err, events = failed.len(), "writing refusal events failed; retrying");
            let mut s = self.lock();
            let room = MAX_READY_EVENTS.saturating_sub(s.ready.len());
            if failed.len() > room {
                self.dropped.inc_by((failed.len() - room) as u64);
                tracing::error!(lost = failed.len() - room, "refusal events dropped: buffer full");
                failed.truncate(room);
            }
            failed.append(&mut s.ready);
            s.ready = failed;
        }
        written
    }
}

/// The events of a closed minute: one per key, in key order, then one overflow event per kind that overflowed.
fn window_events(w: Window, cap: usize) -> Vec<AuditRecord> {
    let minute = fmt_minute(w.minute);
    let mut entries: Vec<(Key, Entry)> = w.entries.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::with_capacity(entries.len() + 4);
    for (k, e) in entries {
        let (agency, division) = e.agency.unwrap_or_else(|| (UNKNOWN_AGENCY.into(), String::new()));
        let mut purpose = format!(
            "minute={minute}; peer={}; addr={}",
            k.identity,
            k.addr.map(|a| a.to_string()).unwrap_or_else(|| "none".into())
        );
        if let Some(s) = &e.subject {
            purpose.push_str(&format!("; subject={s}"));
        }
        purpose.push_str(&format!(
            "; first={}; last={}; reason={}",
            fmt_time(e.first),
            fmt_time(e.last),
            text(&e.reason)
        ));
        out.push(AuditRecord {
            agency,
            division,
            method: k.method,
            purpose,
            outcome: format!("{OUTCOME_PREFIX}{} count={}", k.kind.as_str(), e.count),
            person_keys: Vec::new(),
            via: String::new(),
        });
    }
    for kind in RefusalKind::ALL {
        let o = w.overflow[kind.index()];
        if o.count == 0 {
            continue;
        }
        out.push(AuditRecord {
            agency: UNKNOWN_AGENCY.into(),
            division: String::new(),
            method: OVERFLOW.into(),
            purpose: format!(
                "minute={minute}; peer={OVERFLOW}; first={}; last={}; reason=refusals of peers beyond the first {cap} \
                 of the minute (audit_refusal_peers_per_minute)",
                fmt_time(o.first),
                fmt_time(o.last)
            ),
            outcome: format!("{OUTCOME_PREFIX}{} count={}", kind.as_str(), o.count),
            person_keys: Vec::new(),
            via: String::new(),
        });
    }
    out
}

/// `2026-12-06T23:55Z`.
fn fmt_minute(minute: i64) -> String {
    crate::store::from_micros(minute * MINUTE_MICROS).format("%Y-%m-%dT%H:%MZ").to_string()
}

/// `23:55:03.120`.
fn fmt_time(micros: i64) -> String {
    crate::store::from_micros(micros).format("%H:%M:%S%.3f").to_string()
}

/// Control characters replaced, at most [`MAX_TEXT_CHARS`] characters.
fn clean(s: &str) -> String {
    let mut out: String = s.chars().take(MAX_TEXT_CHARS).map(|c| if c.is_control() { '?' } else { c }).collect();
    if s.chars().count() > MAX_TEXT_CHARS {
        out.push('…');
    }
    out
}

/// A reason as written: cleaned, and any ID-number-like run masked.
fn text(s: &str) -> String {
    crate::hub::mask_id_like(&clean(s))
}

tokio::task_local! {
    /// The client certificate the verifier refused during this handshake, if any ([`note_handshake_cert`]).
    static HANDSHAKE_CERT: std::cell::RefCell<Option<CertificateDer<'static>>>;
}

/// Called by the client-certificate verifier when it refuses `cert`: remembered for the handshake's refusal event
/// when the handshake runs in [`with_handshake_cert`] (otherwise nothing happens).
pub fn note_handshake_cert(cert: &CertificateDer<'_>) {
    let _ = HANDSHAKE_CERT.try_with(|c| *c.borrow_mut() = Some(cert.clone().into_owned()));
}

/// Run a handshake, returning its output and the certificate the verifier refused during it, if any.
pub async fn with_handshake_cert<F: std::future::Future>(f: F) -> (F::Output, Option<CertificateDer<'static>>) {
    HANDSHAKE_CERT
        .scope(std::cell::RefCell::new(None), async move {
            let out = f.await;
            (out, HANDSHAKE_CERT.with(|c| c.borrow_mut().take()))
        })
        .await
}

/// The task writing each minute's events once it is over ([`spawn_flusher`]).
/// Dropped without [`Flusher::stop`] (the hub failed), the task is aborted.
pub struct Flusher {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Flusher {
    /// Stop it, after the write in progress (if any) has finished: nothing taken from the buffer is lost.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Write the events of each minute once it is over, checking every `every` (1 s in the hub). Never holds up
/// requests: they only touch the in-memory buffer.
pub fn spawn_flusher(log: Arc<RefusalLog>, store: Store, every: Duration) -> Flusher {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                _ = tick.tick() => {}
            }
            log.flush(&store).await;
        }
    });
    Flusher { stop: Some(stop), task: Some(task) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn at(h: u32, m: u32, s: u32) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc.with_ymd_and_hms(2026, 12, 6, h, m, s).unwrap()
    }

    fn refused(kind: RefusalKind, identity: &str, ip: &str, method: &str) -> Refused {
        Refused {
            kind,
            method: method.into(),
            peer: Peer {
                agency: Some(("education".into(), String::new())),
                identity: identity.into(),
                subject: None,
                addr: Some(ip.parse().unwrap()),
            },
            reason: "agency education may not call it".into(),
        }
    }

    #[test]
    fn a_million_refusals_of_one_peer_in_a_minute_are_one_event_with_their_count() {
        let log = RefusalLog::new(10);
        log.clock.set(Some(at(10, 0, 5)));
        for _ in 0..1_000_000 {
            log.record(refused(RefusalKind::PermissionDenied, "spiffe://t/agency/education", "10.0.0.1", "/m"));
        }
        // The minute is not over: nothing ready yet.
        assert!(log.take_ready(false).is_empty());
        log.clock.set(Some(at(10, 1, 0)));
        let events = log.take_ready(false);
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.outcome, "REFUSED PERMISSION_DENIED count=1000000");
        assert_eq!(e.agency, "education");
        assert_eq!(e.method, "/m");
        assert_eq!(
            e.purpose,
            "minute=2026-12-06T10:00Z; peer=spiffe://t/agency/education; addr=10.0.0.1; first=10:00:05.000; \
             last=10:00:05.000; reason=agency education may not call it"
        );
        assert!(e.person_keys.is_empty());
    }

    #[test]
    fn keys_beyond_the_cap_go_to_one_overflow_event_per_kind() {
        let log = RefusalLog::new(3);
        log.clock.set(Some(at(10, 0, 0)));
        // 5 peers (addresses) × 2 refusals each, then 4 handshake refusals of another 4 peers.
        for round in 0..2 {
            for i in 1..=5 {
                let _ = round;
                log.record(refused(RefusalKind::Unauthenticated, "sha256:ab", &format!("10.0.0.{i}"), "/m"));
            }
        }
        for i in 1..=4 {
            log.record(refused(RefusalKind::Handshake, "none", &format!("10.0.1.{i}"), HANDSHAKE_METHOD));
        }
        let events = log.take_ready(true);
        // 3 keys kept (10.0.0.1–3, 2 each); 10.0.0.4 and .5 (4 refusals) and the 4 handshakes overflow.
        let outcomes: Vec<&str> = events.iter().map(|e| e.outcome.as_str()).collect();
        assert_eq!(
            outcomes,
            [
                "REFUSED UNAUTHENTICATED count=2",
                "REFUSED UNAUTHENTICATED count=2",
                "REFUSED UNAUTHENTICATED count=2",
                "REFUSED UNAUTHENTICATED count=4",
                "REFUSED HANDSHAKE count=4",
            ]
        );
        assert_eq!(events[3].method, "*");
        assert_eq!(events[3].agency, "unknown");
        assert!(events[3].purpose.contains("peer=*"), "{}", events[3].purpose);
    }

    #[test]
    fn a_new_minute_closes_the_last_one_and_keys_are_kind_method_identity_and_address() {
        let log = RefusalLog::new(100);
        log.clock.set(Some(at(10, 0, 59)));
        log.record(refused(RefusalKind::PermissionDenied, "p", "10.0.0.1", "/a"));
        log.record(refused(RefusalKind::PermissionDenied, "p", "10.0.0.1", "/b"));
        log.record(refused(RefusalKind::ResourceExhausted, "p", "10.0.0.1", "/a"));
        log.record(refused(RefusalKind::PermissionDenied, "p", "10.0.0.2", "/a"));
        log.clock.set(Some(at(10, 1, 0)));
        log.record(refused(RefusalKind::PermissionDenied, "p", "10.0.0.1", "/a"));
        assert_eq!(log.take_ready(false).len(), 4, "four keys in 10:00");
        let last = log.take_ready(true);
        assert_eq!(last.len(), 1);
        assert!(last[0].purpose.starts_with("minute=2026-12-06T10:01Z;"), "{}", last[0].purpose);
    }

    #[test]
    fn an_ipv4_mapped_address_is_the_same_peer_as_the_ipv4_address() {
        let log = RefusalLog::new(100);
        log.clock.set(Some(at(10, 0, 0)));
        log.record(refused(RefusalKind::PermissionDenied, "p", "10.0.0.1", "/a"));
        log.record(refused(RefusalKind::PermissionDenied, "p", "::ffff:10.0.0.1", "/a"));
        let events = log.take_ready(true);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].outcome, "REFUSED PERMISSION_DENIED count=2");
        assert!(events[0].purpose.contains("; addr=10.0.0.1;"), "{}", events[0].purpose);
    }

    #[test]
    fn reasons_are_cleaned_shortened_and_masked() {
        assert_eq!(text("id 62102219800303123X\nhere"), "id 621022********123X?here");
        let long = "x".repeat(200);
        assert_eq!(text(&long).chars().count(), MAX_TEXT_CHARS + 1);
    }
}
