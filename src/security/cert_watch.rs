//! Revocation and certificates that fail safe (issue 20 item 4): what the hub does with a CRL past its `nextUpdate`,
//! and how it tells operators, ahead of time, that a certificate or a CRL runs out.
//!
//! - **Stale CRL** (`crl_stale`): `"refuse"` (the default) builds the client-certificate verifier with webpki's
//!   `enforce_revocation_expiration`, so a client certificate whose CA's CRL is past its `nextUpdate` fails the
//!   handshake (fail closed). webpki checks `nextUpdate` against the clock at every handshake, so a CRL that goes
//!   stale while the hub runs takes effect on the next connection, without a reload. `"warn"` accepts it and logs a
//!   warning. Either way the log line names the CRL file, its `nextUpdate` and what to do (`doudi certs refresh-crl`
//!   or `doudi certs revoke` write a CRL valid [`crate::security::certs::CRL_VALIDITY_DAYS`] days), at most once a minute per
//!   file (and again at once after each reload). A revoked certificate is refused in both modes.
//! - **Expiry**: `doudi_certificate_expiry_days{kind, subject}` for the CA certificate(s) and the server certificate
//!   (subject: the certificate's subject name), and for every client certificate the hub has accepted at a handshake
//!   (kind `agency` or `operator` from its SPIFFE ID, subject: the SPIFFE ID; the most recent certificate presented
//!   for an ID; at most [`MAX_PEER_SERIES`] IDs, of the hub's trust domain only). A `warn` line once per certificate
//!   and day when one has less than `cert_expiry_warn_days` left.
//! - `doudi_crl_next_update_seconds{file}`: seconds until the soonest `nextUpdate` of each CRL file in force,
//!   negative once stale.
//!
//! [`CertWatch`] holds what the TLS configuration in force was built from (replaced by each successful reload in
//! `crate::server::tls`), the client certificates seen, and the log rate limits; it is a Prometheus collector, so both
//! gauges are computed from the clock at each scrape. [`WatchedVerifier`] wraps rustls' verifier to report to it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, Opts};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use serde::{Deserialize, Serialize};
use x509_parser::prelude::{FromDer as _, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

/// What the hub does with a client certificate whose CA's CRL is past its `nextUpdate` (`crl_stale`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CrlStale {
    /// Refuse it at the handshake (fail closed).
    #[default]
    Refuse,
    /// Accept it and log a warning.
    Warn,
}

/// Client certificates (SPIFFE IDs) whose expiry the hub reports; later ones are not recorded (a city has a few
/// dozen partner systems and operators).
pub const MAX_PEER_SERIES: usize = 1000;

/// Least time between two log lines about the same stale CRL file.
pub const CRL_LOG_EVERY: Duration = Duration::from_secs(60);

const DAY_SECS: i64 = 86_400;

/// Which certificate an expiry series is about (the `kind` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertKind {
    Ca,
    Server,
    Agency,
    Operator,
}

impl CertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CertKind::Ca => "ca",
            CertKind::Server => "server",
            CertKind::Agency => "agency",
            CertKind::Operator => "operator",
        }
    }
}

/// A certificate's expiry: its `kind`, `subject` label and `notAfter` (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub kind: CertKind,
    pub subject: String,
    pub not_after: i64,
}

/// One CRL in force: its file, its issuer (DER name, to match a certificate's issuer, and text) and its
/// `nextUpdate` (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlInfo {
    pub file: PathBuf,
    pub issuer_der: Vec<u8>,
    pub issuer: String,
    pub next_update: i64,
}

/// Reads a CRL's issuer and `nextUpdate`. A CRL without `nextUpdate` (webpki does not load one) is an error.
pub fn crl_info(file: &Path, der: &[u8]) -> Result<CrlInfo, String> {
    let (_, crl) = CertificateRevocationList::from_der(der).map_err(|e| format!("not an X.509 CRL: {e}"))?;
    let next_update = crl.next_update().ok_or("the CRL has no nextUpdate")?.timestamp();
    Ok(CrlInfo {
        file: file.to_path_buf(),
        issuer_der: crl.issuer().as_raw().to_vec(),
        issuer: crl.issuer().to_string(),
        next_update,
    })
}

/// A certificate of the hub's own (CA or server): `subject` is its subject name.
pub fn own_cert_info(kind: CertKind, der: &[u8]) -> Result<CertInfo, String> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    Ok(CertInfo { kind, subject: cert.subject().to_string(), not_after: cert.validity().not_after.timestamp() })
}

/// A client certificate's expiry, keyed by its SPIFFE ID in `trust_domain`: kind `agency` for
/// `spiffe://<trust_domain>/agency/…`, `operator` for `…/operator/…`; `None` for a certificate naming neither (the
/// hub answers it UNAUTHENTICATED, and it must not grow the label set).
pub fn peer_cert_info(der: &[u8], trust_domain: &str) -> Option<CertInfo> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let ids = crate::server::tls::spiffe_ids_of(&cert).ok()?;
    let prefix = format!("spiffe://{trust_domain}/");
    ids.into_iter().find_map(|id| {
        let kind = match id.strip_prefix(&prefix)?.split('/').next()? {
            "agency" => CertKind::Agency,
            "operator" => CertKind::Operator,
            _ => return None,
        };
        Some(CertInfo { kind, subject: id, not_after: cert.validity().not_after.timestamp() })
    })
}

/// Days from `now` to `not_after` (Unix seconds), fractional; negative once expired.
pub fn days_left(not_after: i64, now: i64) -> f64 {
    (not_after - now) as f64 / DAY_SECS as f64
}

/// The soonest `nextUpdate` of each file, in file order.
pub fn next_update_by_file(crls: &[CrlInfo]) -> Vec<(&Path, i64)> {
    let mut out: Vec<(&Path, i64)> = Vec::new();
    for crl in crls {
        match out.iter_mut().find(|(f, _)| *f == crl.file.as_path()) {
            Some((_, t)) => *t = (*t).min(crl.next_update),
            None => out.push((&crl.file, crl.next_update)),
        }
    }
    out
}

/// Unix seconds as RFC 3339 (UTC), for log lines.
fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).map_or_else(|| secs.to_string(), |t| t.to_rfc3339())
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// What to do about a stale CRL (the end of its log lines).
const REFRESH_HINT: &str = "replace the CRL: `doudi certs refresh-crl --dir DIR` (or `doudi certs revoke`) rewrites \
                            ca.crl with nextUpdate 365 days ahead; the hub reloads it within crl_poll_secs or on SIGHUP";

#[derive(Default)]
struct State {
    crls: Vec<CrlInfo>,
    own: Vec<CertInfo>,
    peers: HashMap<String, CertInfo>,
    peers_full_logged: bool,
    crl_logged: HashMap<PathBuf, Instant>,
    expiry_warned: HashMap<(CertKind, String), i64>,
}

/// The certificates and CRLs in force, the client certificates seen, and the logs and gauges about them (module
/// docs). One per hub; shared by the TLS configuration (and each one reloaded) and the metrics registry.
pub struct CertWatch {
    stale: CrlStale,
    trust_domain: String,
    warn_days: u64,
    state: Mutex<State>,
    expiry: GaugeVec,
    crl_next_update: GaugeVec,
}

impl std::fmt::Debug for CertWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertWatch").field("stale", &self.stale).finish_non_exhaustive()
    }
}

impl CertWatch {
    /// `warn_days`: log a certificate with fewer days left than this (0 = never).
    pub fn new(stale: CrlStale, trust_domain: &str, warn_days: u64) -> Arc<CertWatch> {
        let expiry = GaugeVec::new(
            Opts::new(
                "doudi_certificate_expiry_days",
                "days until notAfter (negative once expired) of the CA and server certificates and of each client \
                 certificate accepted at a handshake (subject: its SPIFFE ID), computed at scrape time",
            ),
            &["kind", "subject"],
        )
        .expect("valid metric");
        let crl_next_update = GaugeVec::new(
            Opts::new(
                "doudi_crl_next_update_seconds",
                "seconds until the soonest nextUpdate of each CRL file in force; negative once stale (with \
                 crl_stale = \"refuse\" its CA's client certificates are then refused)",
            ),
            &["file"],
        )
        .expect("valid metric");
        Arc::new(CertWatch {
            stale,
            trust_domain: trust_domain.to_owned(),
            warn_days,
            state: Mutex::new(State::default()),
            expiry,
            crl_next_update,
        })
    }

    /// The stale-CRL policy the verifier is built with.
    pub fn stale_policy(&self) -> CrlStale {
        self.stale
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A TLS configuration built from `own` (CA and server certificates) and `crls` is now in force: report on
    /// them at once (a stale CRL is logged again even if it was a minute ago).
    pub fn loaded(&self, own: Vec<CertInfo>, crls: Vec<CrlInfo>) {
        {
            let mut st = self.state();
            st.own = own;
            st.crls = crls;
            st.crl_logged.clear();
        }
        self.check(unix_now());
    }

    /// The periodic check: logs each stale CRL (rate-limited) and each certificate close to expiry (once a day).
    pub fn check(&self, now: i64) {
        let mut st = self.state();
        let stale: Vec<CrlInfo> = st.crls.iter().filter(|c| c.next_update <= now).cloned().collect();
        for crl in &stale {
            self.log_stale(&mut st, crl, now);
        }
        let certs: Vec<CertInfo> = st.own.iter().chain(st.peers.values()).cloned().collect();
        for cert in &certs {
            self.warn_expiry(&mut st, cert, now);
        }
    }

    /// Logs a stale CRL unless its file was logged less than [`CRL_LOG_EVERY`] ago.
    fn log_stale(&self, st: &mut State, crl: &CrlInfo, now: i64) {
        let at = Instant::now();
        if st.crl_logged.get(&crl.file).is_some_and(|last| at.duration_since(*last) < CRL_LOG_EVERY) {
            return;
        }
        st.crl_logged.insert(crl.file.clone(), at);
        let file = crl.file.display();
        let next_update = rfc3339(crl.next_update);
        let stale_for_secs = now - crl.next_update;
        match self.stale {
            CrlStale::Refuse => tracing::error!(
                crl = %file, %next_update, stale_for_secs, issuer = %crl.issuer,
                "CRL past its nextUpdate: client certificates of its CA are REFUSED at the handshake \
                 (crl_stale = \"refuse\"); {REFRESH_HINT}"
            ),
            CrlStale::Warn => tracing::warn!(
                crl = %file, %next_update, stale_for_secs, issuer = %crl.issuer,
                "CRL past its nextUpdate: client certificates of its CA are still accepted (crl_stale = \"warn\"), \
                 but revocations made since may be missing; {REFRESH_HINT}"
            ),
        }
    }

    /// Logs `cert` once per day while it has fewer than `warn_days` days left.
    fn warn_expiry(&self, st: &mut State, cert: &CertInfo, now: i64) {
        let left = days_left(cert.not_after, now);
        if self.warn_days == 0 || left >= self.warn_days as f64 {
            return;
        }
        let today = now.div_euclid(DAY_SECS);
        let key = (cert.kind, cert.subject.clone());
        if st.expiry_warned.get(&key) == Some(&today) {
            return;
        }
        st.expiry_warned.insert(key, today);
        tracing::warn!(
            kind = cert.kind.as_str(), subject = %cert.subject, not_after = %rfc3339(cert.not_after),
            days_left = format!("{left:.1}"),
            "certificate expires soon: issue its successor and put it in place before notAfter (docs/operations.md §6)"
        );
    }

    /// The verifier refused a client certificate because a CRL is stale: name the CRL(s) of its issuer.
    fn refused_stale(&self, end_entity: &[u8], now: i64) {
        let issuer = X509Certificate::from_der(end_entity).ok().map(|(_, c)| c.issuer().as_raw().to_vec());
        let mut st = self.state();
        let stale: Vec<CrlInfo> = st
            .crls
            .iter()
            .filter(|c| c.next_update <= now && issuer.as_ref().is_none_or(|i| *i == c.issuer_der))
            .cloned()
            .collect();
        for crl in &stale {
            self.log_stale(&mut st, crl, now);
        }
    }

    /// A client certificate passed verification: record its expiry, warn if it is close, and with
    /// `crl_stale = "warn"` log its CA's CRL when it is stale.
    fn accepted(&self, end_entity: &[u8], now: i64) {
        let info = peer_cert_info(end_entity, &self.trust_domain);
        let mut st = self.state();
        if self.stale == CrlStale::Warn {
            let issuer = X509Certificate::from_der(end_entity).ok().map(|(_, c)| c.issuer().as_raw().to_vec());
            let stale: Vec<CrlInfo> = st
                .crls
                .iter()
                .filter(|c| c.next_update <= now && issuer.as_ref() == Some(&c.issuer_der))
                .cloned()
                .collect();
            for crl in &stale {
                self.log_stale(&mut st, crl, now);
            }
        }
        let Some(info) = info else { return };
        if !st.peers.contains_key(&info.subject) && st.peers.len() >= MAX_PEER_SERIES {
            if !st.peers_full_logged {
                st.peers_full_logged = true;
                tracing::warn!(
                    max = MAX_PEER_SERIES,
                    "doudi_certificate_expiry_days: more client certificates (SPIFFE IDs) than the cap; later ones \
                     are not reported"
                );
            }
            return;
        }
        st.peers.insert(info.subject.clone(), info.clone());
        self.warn_expiry(&mut st, &info, now);
    }

    /// A Prometheus collector of both gauges, computed at each scrape, for the hub's registry.
    pub fn collector(self: &Arc<Self>) -> Box<dyn Collector> {
        Box::new(WatchCollector(self.clone()))
    }

    /// Sets both gauges from the state and `now` (the collector does this at each scrape).
    fn fill(&self, now: i64) {
        self.expiry.reset();
        self.crl_next_update.reset();
        let st = self.state();
        for cert in st.own.iter().chain(st.peers.values()) {
            self.expiry.with_label_values(&[cert.kind.as_str(), &cert.subject]).set(days_left(cert.not_after, now));
        }
        for (file, next_update) in next_update_by_file(&st.crls) {
            self.crl_next_update.with_label_values(&[&file.display().to_string()]).set((next_update - now) as f64);
        }
    }
}

/// The registry's handle on a [`CertWatch`] (`crate::server::metrics::Metrics::register`).
struct WatchCollector(Arc<CertWatch>);

impl Collector for WatchCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.0.expiry.desc().into_iter().chain(self.0.crl_next_update.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.0.fill(unix_now());
        self.0.expiry.collect().into_iter().chain(self.0.crl_next_update.collect()).collect()
    }
}

/// rustls' client-certificate verifier (webpki, built by `crate::server::tls` with the stale-CRL policy), reporting each
/// verdict to a [`CertWatch`]: accepted certificates for the expiry metric, refusals for a stale CRL for the log.
#[derive(Debug)]
pub struct WatchedVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    watch: Arc<CertWatch>,
}

impl WatchedVerifier {
    pub fn new(inner: Arc<dyn ClientCertVerifier>, watch: Arc<CertWatch>) -> WatchedVerifier {
        WatchedVerifier { inner, watch }
    }
}

impl ClientCertVerifier for WatchedVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let result = self.inner.verify_client_cert(end_entity, intermediates, now);
        let secs = now.as_secs() as i64;
        match &result {
            Ok(_) => self.watch.accepted(end_entity, secs),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ExpiredRevocationList | CertificateError::ExpiredRevocationListContext { .. },
            )) => self.watch.refused_stale(end_entity, secs),
            Err(_) => {}
        }
        if result.is_err() {
            // For the handshake's refusal event (`crate::server::refusals`).
            crate::server::refusals::note_handshake_cert(end_entity);
        }
        result
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::certs::Ca;
    use rustls::RootCertStore;
    use rustls::pki_types::CertificateRevocationListDer;
    use rustls::pki_types::pem::PemObject as _;
    use rustls::server::WebPkiClientVerifier;

    const TD: &str = "td.test";

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    fn crl_der(pem: &str) -> CertificateRevocationListDer<'static> {
        CertificateRevocationListDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    fn secs(t: SystemTime) -> i64 {
        t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64
    }

    /// The verifier as `crate::server::tls` builds it, wrapped.
    fn verifier(ca: &Ca, crl: &str, stale: CrlStale, watch: &Arc<CertWatch>) -> WatchedVerifier {
        let mut roots = RootCertStore::empty();
        roots.add(der(ca.cert_pem())).unwrap();
        let mut b = WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .with_crls([crl_der(crl)])
        .only_check_end_entity_revocation()
        .allow_unknown_revocation_status();
        if stale == CrlStale::Refuse {
            b = b.enforce_revocation_expiration();
        }
        watch.loaded(Vec::new(), vec![crl_info(Path::new("ca.crl"), &crl_der(crl)).unwrap()]);
        WatchedVerifier::new(b.build().unwrap(), watch.clone())
    }

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What `f` logs (plain text, no colours).
    fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
        // Recompute every callsite's interest with this subscriber in place: a callsite first met by another test's
        // thread while no subscriber wanted it can keep a cached "never" that skips this test's events (seen as a
        // flaky empty log).
        let out = tracing::subscriber::with_default(subscriber, || {
            tracing::callsite::rebuild_interest_cache();
            f()
        });
        let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        (out, log)
    }

    fn at(t: SystemTime) -> UnixTime {
        UnixTime::since_unix_epoch(t.duration_since(SystemTime::UNIX_EPOCH).unwrap())
    }

    #[test]
    fn crl_info_reads_the_issuer_and_next_update() {
        let ca = Ca::generate("watch CA").unwrap();
        let next = SystemTime::now() + Duration::from_secs(3 * 86_400);
        let info = crl_info(Path::new("/etc/doudi/ca.crl"), &crl_der(&ca.crl_pem(&[], next).unwrap())).unwrap();
        assert_eq!(info.next_update, secs(next));
        assert_eq!(info.file, Path::new("/etc/doudi/ca.crl"));
        assert!(info.issuer.contains("CN=watch CA"), "{}", info.issuer);
        let ca_der = der(ca.cert_pem());
        let (_, ca_cert) = X509Certificate::from_der(&ca_der).unwrap();
        assert_eq!(info.issuer_der, ca_cert.subject().as_raw());
        assert!(crl_info(Path::new("x"), b"not a crl").is_err());
    }

    #[test]
    fn peer_certificates_are_keyed_by_their_spiffe_id_in_the_trust_domain() {
        let ca = Ca::generate("watch CA").unwrap();
        let agency = ca.issue_client(TD, "education", Some("621022")).unwrap();
        let info = peer_cert_info(&der(&agency.cert_pem), TD).unwrap();
        assert_eq!(info.kind, CertKind::Agency);
        assert_eq!(info.subject, "spiffe://td.test/agency/education/division/621022");
        let agency_der = der(&agency.cert_pem);
        let (_, parsed) = X509Certificate::from_der(&agency_der).unwrap();
        assert_eq!(info.not_after, parsed.validity().not_after.timestamp());

        let op = ca.issue_client_with_uris("alice", &["spiffe://td.test/operator/security/alice"]).unwrap();
        assert_eq!(peer_cert_info(&der(&op.cert_pem), TD).unwrap().kind, CertKind::Operator);
        // Another trust domain, another path, no SPIFFE ID: not recorded.
        for uris in [&["spiffe://other.test/agency/education"][..], &["spiffe://td.test/gateway/x"], &[]] {
            let c = ca.issue_client_with_uris("x", uris).unwrap();
            assert_eq!(peer_cert_info(&der(&c.cert_pem), TD), None, "{uris:?}");
        }
        let server = ca.issue_server(&["localhost"]).unwrap();
        let own = own_cert_info(CertKind::Server, &der(&server.cert_pem)).unwrap();
        assert_eq!(own.subject, "CN=localhost, O=doudi");
    }

    #[test]
    fn days_left_and_next_update_by_file() {
        assert_eq!(days_left(86_400 * 10, 0), 10.0);
        assert_eq!(days_left(0, 43_200), -0.5);
        let crl = |file: &str, next_update| CrlInfo {
            file: file.into(),
            issuer_der: Vec::new(),
            issuer: String::new(),
            next_update,
        };
        let crls = [crl("a.crl", 50), crl("b.crl", 70), crl("a.crl", 30)];
        assert_eq!(next_update_by_file(&crls), vec![(Path::new("a.crl"), 30), (Path::new("b.crl"), 70)]);
    }

    /// webpki compares nextUpdate with the handshake's clock: the same verifier accepts before nextUpdate and, with
    /// "refuse", refuses after it (a CRL going stale while the hub runs needs no reload); "warn" accepts; a revoked
    /// certificate is refused either way.
    #[test]
    fn a_stale_crl_refuses_or_warns_and_a_revoked_certificate_is_refused_either_way() {
        let ca = Ca::generate("watch CA").unwrap();
        let good = ca.issue_client(TD, "education", None).unwrap();
        let revoked = ca.issue_client(TD, "civil_affairs", None).unwrap();
        let next = SystemTime::now() + Duration::from_secs(3600);
        let crl = ca.crl_pem(std::slice::from_ref(&revoked.serial), next).unwrap();
        let before = at(next - Duration::from_secs(60));
        let after = at(next + Duration::from_secs(60));
        for stale in [CrlStale::Refuse, CrlStale::Warn] {
            let watch = CertWatch::new(stale, TD, 30);
            let v = verifier(&ca, &crl, stale, &watch);
            v.verify_client_cert(&der(&good.cert_pem), &[], before).unwrap();
            let (late, log) = logged(|| {
                let late = v.verify_client_cert(&der(&good.cert_pem), &[], after);
                // Rate-limited: the second refusal or acceptance within a minute logs nothing more.
                let _ = v.verify_client_cert(&der(&good.cert_pem), &[], after);
                late
            });
            assert_eq!(log.lines().count(), 1, "{log}");
            for part in ["ca.crl", &rfc3339(secs(next)), "refresh-crl", "CN=watch CA"] {
                assert!(log.contains(part), "{part}: {log}");
            }
            let level = if stale == CrlStale::Refuse { "ERROR" } else { "WARN" };
            assert!(log.contains(level), "{log}");
            match stale {
                CrlStale::Refuse => assert!(
                    matches!(
                        late,
                        Err(rustls::Error::InvalidCertificate(CertificateError::ExpiredRevocationListContext { .. }))
                    ),
                    "{late:?}"
                ),
                CrlStale::Warn => assert!(late.is_ok(), "{late:?}"),
            }
            for when in [before, after] {
                assert!(v.verify_client_cert(&der(&revoked.cert_pem), &[], when).is_err(), "{stale:?}");
            }
            // The stale CRL was logged once (rate-limited), and only the accepted certificate is on record.
            let st = watch.state();
            assert!(st.crl_logged.contains_key(Path::new("ca.crl")), "{stale:?}");
            assert_eq!(st.peers.keys().collect::<Vec<_>>(), vec!["spiffe://td.test/agency/education"]);
        }
    }

    #[test]
    fn gauges_are_computed_at_scrape_time_and_the_peer_series_are_capped() {
        let watch = CertWatch::new(CrlStale::Refuse, TD, 30);
        let now = unix_now();
        watch.loaded(
            vec![CertInfo { kind: CertKind::Ca, subject: "CN=ca".into(), not_after: now + 10 * 86_400 }],
            vec![CrlInfo { file: "ca.crl".into(), issuer_der: vec![], issuer: "CN=ca".into(), next_update: now - 100 }],
        );
        let registry = prometheus::Registry::new();
        registry.register(watch.collector()).unwrap();
        let mut buf = Vec::new();
        prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &registry.gather(), &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let value = |prefix: &str| -> f64 {
            let line = text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("{prefix}: {text}"));
            line.rsplit_once(' ').unwrap().1.parse().unwrap()
        };
        let days = value(r#"doudi_certificate_expiry_days{kind="ca",subject="CN=ca"}"#);
        assert!((days - 10.0).abs() < 0.001, "{days}");
        let crl = value(r#"doudi_crl_next_update_seconds{file="ca.crl"}"#);
        assert!((-110.0..=-100.0).contains(&crl), "stale: negative, {crl}");

        let ca = Ca::generate("watch CA").unwrap();
        {
            let mut st = watch.state();
            for i in 0..MAX_PEER_SERIES {
                let info =
                    CertInfo { kind: CertKind::Agency, subject: format!("id{i}"), not_after: now + 86_400 * 400 };
                st.peers.insert(info.subject.clone(), info);
            }
        }
        let extra = ca.issue_client(TD, "education", None).unwrap();
        watch.accepted(&der(&extra.cert_pem), now);
        assert_eq!(watch.state().peers.len(), MAX_PEER_SERIES);
        assert!(watch.state().peers_full_logged);
    }

    #[test]
    fn expiry_is_warned_once_a_day_below_the_threshold() {
        let watch = CertWatch::new(CrlStale::Refuse, TD, 30);
        let day = 20_000 * DAY_SECS;
        let soon = CertInfo { kind: CertKind::Server, subject: "CN=s".into(), not_after: day + 29 * DAY_SECS };
        let later = CertInfo { kind: CertKind::Ca, subject: "CN=c".into(), not_after: day + 31 * DAY_SECS };
        let mut st = watch.state();
        watch.warn_expiry(&mut st, &soon, day);
        watch.warn_expiry(&mut st, &later, day);
        assert_eq!(st.expiry_warned.get(&(CertKind::Server, "CN=s".into())), Some(&20_000));
        assert!(!st.expiry_warned.contains_key(&(CertKind::Ca, "CN=c".into())), "31 days left: no warning");
        // Same day: not again (the record is unchanged); the next day: again.
        st.expiry_warned.insert((CertKind::Server, "CN=s".into()), 19_999);
        watch.warn_expiry(&mut st, &soon, day + DAY_SECS);
        assert_eq!(st.expiry_warned.get(&(CertKind::Server, "CN=s".into())), Some(&20_001));
        drop(st);
        let off = CertWatch::new(CrlStale::Refuse, TD, 0);
        let mut st = off.state();
        off.warn_expiry(&mut st, &soon, day);
        assert!(st.expiry_warned.is_empty(), "0 = never");
    }
}
