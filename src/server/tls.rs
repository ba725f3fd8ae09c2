//! Server-side mutual TLS for the hub and client-side helpers (rustls 0.23, ring provider only).
//!
//! docs/spec/security.md, "Transport and identity": TLS 1.2/1.3 with rustls only, client certificates
//! required, CRLs honoured at handshake and reloadable without a restart.
//!
//! Serving: build a config with [`server_config`] (or [`TlsFiles::server_config`]), wrap it in a
//! [`ReloadableServerConfig`], and hand [`tls_incoming`] to tonic's
//! `Server::serve_with_incoming[_shutdown]` **without** calling `Server::tls_config` (the handshake
//! is done here). tonic implements `Connected` for `tokio_rustls::server::TlsStream<TcpStream>`
//! (feature `tls-connect-info`, enabled by `tls-ring`), so every request carries a
//! `tonic::transport::server::TlsConnectInfo<tonic::transport::server::TcpConnectInfo>` extension:
//! `request.peer_certs()` returns the client's chain (end-entity first) and
//! `request.remote_addr()` the peer address. In a tower layer (an `http::Request`), read
//! `req.extensions().get::<TlsConnectInfo<TcpConnectInfo>>()` and call `.peer_certs()` on it. Then
//! [`peer_spiffe_ids`] gives the SPIFFE IDs of the end-entity certificate.
//!
//! Why not `Server::tls_config`: tonic 0.14's `ServerTlsConfig` builds its own rustls config, with
//! no way to pass CRLs and no way to swap the config when the CRL changes; its handshakes are
//! spawned but unbounded in number, and time out only if `ServerTlsConfig::timeout` is set.
//!
//! Session resumption is disabled on the server (no session cache, no TLS 1.3 tickets), so every
//! connection runs the full certificate check and a CRL reload takes effect on the very next
//! connection.
//!
//! A CRL past its `nextUpdate` is refused by default (`crl_stale`); with a [`CertWatch`]
//! ([`TlsFiles::watched_server_config`], [`ReloadableServerConfig::watched`]) the verifier reports
//! to it for the stale-CRL log and the certificate-expiry metrics (`crate::security::cert_watch`).

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::Stream;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::security::cert_watch::{self, CertKind, CertWatch, CrlStale, WatchedVerifier};

/// ALPN protocol offered and accepted: HTTP/2 only (gRPC).
pub const ALPN_H2: &[u8] = b"h2";

/// How many completed handshakes may wait in the channel for the server to pick them up.
const ACCEPTED_QUEUE: usize = 64;

/// How many handshakes may run at once; further connections wait in the kernel's backlog.
pub const MAX_CONCURRENT_HANDSHAKES: usize = 256;

/// Errors building TLS configurations or reading peer certificates. Messages name the input (a
/// file path when read through [`TlsFiles`]) and the reason.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// PEM input held nothing usable or was malformed.
    #[error("{what}: {reason}")]
    Pem {
        /// What was being read (a file path or e.g. "CA certificate PEM").
        what: String,
        /// Why it was refused.
        reason: String,
    },
    /// rustls refused the configuration (bad certificate/key pair, unusable CRL, no roots, …).
    #[error("{what}: {reason}")]
    Config {
        /// What was being configured.
        what: String,
        /// rustls' reason.
        reason: String,
    },
    /// A peer certificate could not be parsed.
    #[error("peer certificate: {0}")]
    PeerCertificate(String),
}

/// Installs rustls' ring provider as the process default. Idempotent: a provider already installed
/// (by an earlier call, or by anything else) is left in place.
///
/// Call it first thing in `main` and in tests (one provider, installed explicitly).
/// The configs built here name the ring provider themselves, so they do not depend on it; tonic's
/// own client TLS (see [`tonic_client_tls`]) takes the process default when there is one.
pub fn install_crypto_provider() {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Paths of the PEM files a TLS endpoint needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificate(s) that client (or server) certificates must chain to.
    pub ca: PathBuf,
    /// This side's certificate chain, end-entity first.
    pub cert: PathBuf,
    /// This side's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CRL files (PEM `X509 CRL`, one or more per file); may be empty.
    pub crls: Vec<PathBuf>,
}

impl TlsFiles {
    /// Reads the files and builds the server config as [`server_config`] does; errors name the file.
    ///
    /// # Errors
    /// [`TlsError::Read`] for an unreadable file, [`TlsError::Pem`] / [`TlsError::Config`] naming
    /// the file whose content was refused.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let f = self.read_server_files()?;
        let crls = f.crls.into_iter().flat_map(|(_, crls)| crls).collect();
        build_server_config(f.ca, f.chain, f.key, crls, &display(&self.cert), CrlStale::default(), None)
    }

    /// As [`TlsFiles::server_config`], with `watch`'s stale-CRL policy and its verifier reporting to `watch`; once
    /// built, `watch` is told the CA, server certificate and CRLs now in force ([`CertWatch::loaded`]). A certificate
    /// or CRL that x509-parser cannot read (webpki could) is left out of the watch's metrics with a warning.
    ///
    /// # Errors
    /// As [`TlsFiles::server_config`].
    pub fn watched_server_config(&self, watch: &Arc<CertWatch>) -> Result<Arc<ServerConfig>, TlsError> {
        self.watched_server_parts(watch).map(|(config, _)| config)
    }

    /// As [`TlsFiles::watched_server_config`], and the client-certificate verifier the config was built with.
    fn watched_server_parts(&self, watch: &Arc<CertWatch>) -> Result<ServerParts, TlsError> {
        let f = self.read_server_files()?;
        let mut own = Vec::new();
        let ca = f.ca.iter().map(|der| (CertKind::Ca, der, &self.ca));
        for (kind, der, path) in ca.chain([(CertKind::Server, &f.chain[0], &self.cert)]) {
            match cert_watch::own_cert_info(kind, der) {
                Ok(info) => own.push(info),
                Err(e) => tracing::warn!(file = %path.display(), error = %e, "certificate left out of expiry metrics"),
            }
        }
        let mut infos = Vec::new();
        for (path, der) in f.crls.iter().flat_map(|(path, ders)| ders.iter().map(move |der| (path, der))) {
            match cert_watch::crl_info(path, der) {
                Ok(info) => infos.push(info),
                Err(e) => tracing::warn!(file = %path.display(), error = %e, "CRL left out of nextUpdate metrics"),
            }
        }
        let crls = f.crls.into_iter().flat_map(|(_, crls)| crls).collect();
        let parts =
            build_server_parts(f.ca, f.chain, f.key, crls, &display(&self.cert), watch.stale_policy(), Some(watch))?;
        watch.loaded(own, infos);
        Ok(parts)
    }

    fn server_parts(&self) -> Result<ServerParts, TlsError> {
        let f = self.read_server_files()?;
        let crls = f.crls.into_iter().flat_map(|(_, crls)| crls).collect();
        build_server_parts(f.ca, f.chain, f.key, crls, &display(&self.cert), CrlStale::default(), None)
    }

    fn read_server_files(&self) -> Result<ServerFiles, TlsError> {
        let ca = certs_from_pem(&read(&self.ca)?, &display(&self.ca))?;
        let chain = certs_from_pem(&read(&self.cert)?, &display(&self.cert))?;
        let key = key_from_pem(&read(&self.key)?, &display(&self.key))?;
        let mut crls = Vec::new();
        for path in &self.crls {
            crls.push((path.clone(), crls_from_pem(&read(path)?, &display(path))?));
        }
        Ok(ServerFiles { ca, chain, key, crls })
    }

    /// Reads the CA, certificate and key files and builds a client config as [`client_config`]
    /// does (CRLs are not used on the client side).
    ///
    /// # Errors
    /// As [`TlsFiles::server_config`].
    pub fn client_config(&self) -> Result<ClientConfig, TlsError> {
        let ca = certs_from_pem(&read(&self.ca)?, &display(&self.ca))?;
        let chain = certs_from_pem(&read(&self.cert)?, &display(&self.cert))?;
        let key = key_from_pem(&read(&self.key)?, &display(&self.key))?;
        build_client_config(ca, chain, key, &display(&self.cert))
    }
}

/// A server config and the client-certificate verifier it was built with.
type ServerParts = (Arc<ServerConfig>, Arc<dyn ClientCertVerifier>);

/// What [`TlsFiles`] holds for a server, parsed: CA certificates, the server's chain and key, each CRL file's CRLs.
struct ServerFiles {
    ca: Vec<CertificateDer<'static>>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    crls: Vec<(PathBuf, Vec<CertificateRevocationListDer<'static>>)>,
}

/// The hub's rustls server config: client certificates **required** and verified by webpki against
/// the CA certificate(s) in `ca_pem`, with the CRLs in `crl_pems` (each entry a PEM text holding one
/// or more `X509 CRL` blocks) checked for the end-entity certificate. A certificate that no CRL
/// covers is accepted (`allow_unknown_revocation_status`), so an empty CRL list works; a
/// certificate whose CA's CRL is past its `nextUpdate` is refused (`crl_stale = "refuse"`, the
/// default). TLS 1.3 and 1.2, ALPN `h2`, ring provider, no session resumption (see the module docs).
///
/// # Errors
/// [`TlsError::Pem`] when an input holds no certificate / key or malformed PEM;
/// [`TlsError::Config`] when a CA certificate or CRL is unusable or the key does not match the
/// certificate.
pub fn server_config(
    ca_pem: &[u8],
    cert_pem: &[u8],
    key_pem: &[u8],
    crl_pems: &[Vec<u8>],
) -> Result<Arc<ServerConfig>, TlsError> {
    let ca = certs_from_pem(ca_pem, "CA certificate PEM")?;
    let chain = certs_from_pem(cert_pem, "server certificate PEM")?;
    let key = key_from_pem(key_pem, "server key PEM")?;
    let mut crls = Vec::new();
    for (i, pem) in crl_pems.iter().enumerate() {
        crls.extend(crls_from_pem(pem, &format!("CRL PEM #{}", i + 1))?);
    }
    build_server_config(ca, chain, key, crls, "server certificate", CrlStale::default(), None)
}

fn build_server_config(
    ca: Vec<CertificateDer<'static>>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    crls: Vec<CertificateRevocationListDer<'static>>,
    cert_what: &str,
    stale: CrlStale,
    watch: Option<&Arc<CertWatch>>,
) -> Result<Arc<ServerConfig>, TlsError> {
    build_server_parts(ca, chain, key, crls, cert_what, stale, watch).map(|(config, _)| config)
}

/// As [`build_server_config`], and the client-certificate verifier the config was built with (for certificates a
/// pinned gateway forwards, [`ReloadableServerConfig::verify_forwarded`]).
fn build_server_parts(
    ca: Vec<CertificateDer<'static>>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    crls: Vec<CertificateRevocationListDer<'static>>,
    cert_what: &str,
    stale: CrlStale,
    watch: Option<&Arc<CertWatch>>,
) -> Result<(Arc<ServerConfig>, Arc<dyn ClientCertVerifier>), TlsError> {
    let provider = provider();
    let roots = root_store(ca)?;
    let mut builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .with_crls(crls)
        .only_check_end_entity_revocation()
        .allow_unknown_revocation_status();
    if stale == CrlStale::Refuse {
        // webpki compares nextUpdate with the clock at each handshake: a CRL going stale takes effect by itself.
        builder = builder.enforce_revocation_expiration();
    }
    let mut verifier = builder.build().map_err(|e| config_err("client certificate verifier", e))?;
    if let Some(watch) = watch {
        verifier = Arc::new(WatchedVerifier::new(verifier, watch.clone()));
    }
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| config_err("TLS versions", e))?
        .with_client_cert_verifier(verifier.clone())
        .with_single_cert(chain, key)
        .map_err(|e| config_err(cert_what, e))?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    // Every connection runs the full client-certificate check against the current CRLs.
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok((Arc::new(config), verifier))
}

/// A client config for connecting to the hub with rustls directly (tokio-rustls, tests, tools):
/// trusts only the CA certificate(s) in `ca_pem`, presents `cert_pem`/`key_pem`, TLS 1.3 and 1.2,
/// ALPN `h2`, ring provider. For a tonic `Channel`, [`tonic_client_tls`] is simpler.
///
/// # Errors
/// [`TlsError::Pem`] / [`TlsError::Config`] as for [`server_config`].
pub fn client_config(ca_pem: &[u8], cert_pem: &[u8], key_pem: &[u8]) -> Result<ClientConfig, TlsError> {
    let ca = certs_from_pem(ca_pem, "CA certificate PEM")?;
    let chain = certs_from_pem(cert_pem, "client certificate PEM")?;
    let key = key_from_pem(key_pem, "client key PEM")?;
    build_client_config(ca, chain, key, "client certificate")
}

fn build_client_config(
    ca: Vec<CertificateDer<'static>>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_what: &str,
) -> Result<ClientConfig, TlsError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| config_err("TLS versions", e))?
        .with_root_certificates(root_store(ca)?)
        .with_client_auth_cert(chain, key)
        .map_err(|e| config_err(cert_what, e))?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(config)
}

/// tonic's client TLS settings for an mTLS connection to the hub: trust `ca_pem`, present
/// `cert_pem`/`key_pem`, expect the server certificate to name `domain` (e.g. `"localhost"`).
///
/// Use with an `https://` endpoint (tonic only does TLS for that scheme):
/// `Endpoint::from_shared("https://127.0.0.1:50051")?.tls_config(tonic_client_tls(..))?.connect().await?`.
/// PEM is only parsed at `tls_config`, which reports malformed input. tonic builds its rustls config
/// from the process-default provider, or ring when none is installed (feature `tls-ring`); ALPN h2.
pub fn tonic_client_tls(
    ca_pem: &[u8],
    cert_pem: &[u8],
    key_pem: &[u8],
    domain: &str,
) -> tonic::transport::ClientTlsConfig {
    tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca_pem))
        .identity(tonic::transport::Identity::from_pem(cert_pem, key_pem))
        .domain_name(domain)
}

/// A server config that can be replaced while the server runs (for CRL reloads on SIGHUP or a
/// poll). Clones share the same slot. Connections already established keep the config they were
/// accepted with; each new handshake uses the config current when its TCP connection was accepted.
///
/// It also keeps the client-certificate verifier of the config in force, when built from files
/// ([`ReloadableServerConfig::from_files`]): a client certificate that a pinned gateway forwards is checked with it
/// ([`ReloadableServerConfig::verify_forwarded`]), against the same CA, CRLs and stale-CRL policy as a direct peer.
#[derive(Clone)]
pub struct ReloadableServerConfig {
    current: Arc<RwLock<Arc<ServerConfig>>>,
    verifier: Arc<RwLock<Option<Arc<dyn ClientCertVerifier>>>>,
    watch: Option<Arc<CertWatch>>,
}

impl std::fmt::Debug for ReloadableServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadableServerConfig").finish_non_exhaustive()
    }
}

impl ReloadableServerConfig {
    /// Starts with `config`.
    pub fn new(config: Arc<ServerConfig>) -> Self {
        Self { current: Arc::new(RwLock::new(config)), verifier: Default::default(), watch: None }
    }

    /// Starts with `config` (built by [`TlsFiles::watched_server_config`] with `watch`); reloads build their
    /// configs the same way.
    pub fn watched(config: Arc<ServerConfig>, watch: Arc<CertWatch>) -> Self {
        Self { current: Arc::new(RwLock::new(config)), verifier: Default::default(), watch: Some(watch) }
    }

    /// Starts with the config built from `files` (with `watch`'s stale-CRL policy and reporting, as
    /// [`TlsFiles::watched_server_config`], when given), keeping its client-certificate verifier for
    /// [`ReloadableServerConfig::verify_forwarded`]; reloads build theirs the same way.
    ///
    /// # Errors
    /// As [`TlsFiles::server_config`].
    pub fn from_files(files: &TlsFiles, watch: Option<Arc<CertWatch>>) -> Result<Self, TlsError> {
        let (config, verifier) = match &watch {
            Some(watch) => files.watched_server_parts(watch)?,
            None => files.server_parts()?,
        };
        Ok(Self { current: Arc::new(RwLock::new(config)), verifier: Arc::new(RwLock::new(Some(verifier))), watch })
    }

    /// Checks a client certificate chain (end-entity first) that did not come in a handshake but was forwarded by a
    /// pinned gateway, with the client-certificate verifier of the config in force: the same CA, CRLs (end-entity
    /// revocation) and stale-CRL policy as a direct peer's handshake, at the current time; an accepted certificate is
    /// reported to the [`CertWatch`] (expiry metrics) as a direct peer's is.
    ///
    /// # Errors
    /// rustls' reason (e.g. `InvalidCertificate(UnknownIssuer)`, `InvalidCertificate(Revoked)`), or
    /// `General` when this config was not built from files (no verifier kept) or `chain` is empty.
    pub fn verify_forwarded(&self, chain: &[CertificateDer<'_>]) -> Result<(), rustls::Error> {
        let verifier = self.verifier.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let verifier = verifier.ok_or_else(|| rustls::Error::General("no client-certificate verifier kept".into()))?;
        let (end_entity, intermediates) =
            chain.split_first().ok_or_else(|| rustls::Error::General("no certificate".into()))?;
        verifier.verify_client_cert(end_entity, intermediates, rustls::pki_types::UnixTime::now()).map(|_| ())
    }

    /// The config new handshakes use now.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Replaces the config for every later handshake. The verifier kept for forwarded certificates is not changed
    /// (use [`ReloadableServerConfig::reload_from`] for both).
    pub fn reload(&self, new: Arc<ServerConfig>) {
        *self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = new;
    }

    /// Re-reads `files` and swaps the new config in; on error the old config stays in force.
    ///
    /// # Errors
    /// As [`TlsFiles::server_config`].
    pub fn reload_from(&self, files: &TlsFiles) -> Result<(), TlsError> {
        let (config, verifier) = match &self.watch {
            Some(watch) => files.watched_server_parts(watch)?,
            None => files.server_parts()?,
        };
        // The verifier first: a forwarded certificate is never checked against older CRLs than a handshake.
        *self.verifier.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(verifier);
        self.reload(config);
        Ok(())
    }
}

/// Accepts TCP connections on `listener` and yields the ones whose TLS handshake completes.
///
/// - `TCP_NODELAY` is set on every accepted socket.
/// - Each handshake runs in its own task under `handshake_timeout`, with at most
///   [`MAX_CONCURRENT_HANDSHAKES`] at once, so a slow or silent client never holds up other
///   clients; one that has not finished in time is dropped (its socket closed).
/// - Failed and timed-out handshakes are logged (`warn` when the client's certificate was refused
///   or missing, `debug` otherwise) and **not** yielded: the stream only ever yields `Ok`. (tonic
///   0.14.9's `serve_with_incoming` would survive an `Err` — it logs it at `trace` and keeps
///   accepting — so yielding errors would only hide them.) TCP accept errors are logged and retried
///   after a short pause (e.g. when out of file descriptors).
/// - Each handshake uses the config that is current in `config` when its connection is accepted.
/// - Dropping the stream ends the accept loop (and closes the listener) at its next wake-up;
///   handshakes in progress finish or time out and are then discarded.
///
/// Must be called inside a tokio runtime (it spawns the accept loop).
pub fn tls_incoming(
    listener: TcpListener,
    config: ReloadableServerConfig,
    handshake_timeout: Duration,
) -> impl Stream<Item = Result<TlsStream<TcpStream>, io::Error>> + Send + 'static {
    tls_incoming_recorded(listener, config, handshake_timeout, None)
}

/// [`tls_incoming`], and every handshake that refuses the client's certificate (or finds none) is put on record in
/// `refusals` (docs/refusals.md): kind HANDSHAKE, method `tls.handshake`, the peer's IP address and, when the
/// verifier saw one, the certificate's fingerprint and subject. Other failed handshakes (a client that is not TLS,
/// one that gives up, a timeout) are only logged.
pub fn tls_incoming_recorded(
    listener: TcpListener,
    config: ReloadableServerConfig,
    handshake_timeout: Duration,
    refusals: Option<Arc<crate::server::refusals::RefusalLog>>,
) -> impl Stream<Item = Result<TlsStream<TcpStream>, io::Error>> + Send + 'static {
    let (tx, rx) = mpsc::channel(ACCEPTED_QUEUE);
    tokio::spawn(accept_loop(listener, config, handshake_timeout, tx, refusals));
    ReceiverStream::new(rx)
}

async fn accept_loop(
    listener: TcpListener,
    config: ReloadableServerConfig,
    handshake_timeout: Duration,
    tx: mpsc::Sender<Result<TlsStream<TcpStream>, io::Error>>,
    refusals: Option<Arc<crate::server::refusals::RefusalLog>>,
) {
    let limit = Arc::new(Semaphore::new(MAX_CONCURRENT_HANDSHAKES));
    loop {
        let permit = tokio::select! {
            () = tx.closed() => break,
            permit = limit.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // never closed
            },
        };
        let accepted = tokio::select! {
            () = tx.closed() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                if is_per_connection_error(&e) {
                    tracing::debug!(error = %e, "TCP accept failed");
                } else {
                    tracing::warn!(error = %e, "TCP accept failed; retrying in 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                continue;
            }
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "could not set TCP_NODELAY");
        }
        let acceptor = TlsAcceptor::from(config.current());
        let tx = tx.clone();
        let refusals = refusals.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let (accepted, refused_cert) = crate::server::refusals::with_handshake_cert(tokio::time::timeout(
                handshake_timeout,
                acceptor.accept(tcp),
            ))
            .await;
            match accepted {
                Ok(Ok(stream)) => {
                    // An error here means the stream was dropped: the connection is closed.
                    let _ = tx.send(Ok(stream)).await;
                }
                Ok(Err(e)) => {
                    log_handshake_error(peer, &e);
                    if let (Some(log), Some(reason)) = (&refusals, refused_certificate(&e)) {
                        let peer = match &refused_cert {
                            Some(cert) => {
                                crate::server::refusals::Peer::unknown_certificate(cert.as_ref(), Some(peer.ip()))
                            }
                            None => crate::server::refusals::Peer {
                                identity: "none".into(),
                                addr: Some(peer.ip()),
                                ..Default::default()
                            },
                        };
                        log.record(crate::server::refusals::Refused {
                            kind: crate::server::refusals::RefusalKind::Handshake,
                            method: crate::server::refusals::HANDSHAKE_METHOD.into(),
                            peer,
                            reason,
                        });
                    }
                }
                Err(_elapsed) => {
                    tracing::debug!(%peer, timeout = ?handshake_timeout, "TLS handshake timed out; connection dropped");
                }
            }
        });
    }
    tracing::debug!("TLS accept loop ended: the incoming stream was dropped");
}

fn is_per_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
    )
}

/// The reason when a handshake failed because the client's certificate was refused or missing.
fn refused_certificate(e: &io::Error) -> Option<String> {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(err @ (rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)) => {
            Some(err.to_string())
        }
        _ => None,
    }
}

fn log_handshake_error(peer: SocketAddr, e: &io::Error) {
    let rustls_error = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls_error {
        Some(err @ (rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)) => {
            tracing::warn!(%peer, error = %err, "TLS handshake refused: client certificate");
        }
        _ => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
    }
}

/// The SPIFFE IDs (URI SANs starting with `spiffe://`) of a certificate, in certificate order.
/// Pass the end-entity certificate, i.e. `peer_certs()[0]`. No SAN extension gives an empty list.
///
/// # Errors
/// [`TlsError::PeerCertificate`] when the DER is not a certificate or its SAN extension is
/// malformed or duplicated.
///
/// Memoized by the certificate's bytes (a pure function of them): every request of a connection presents the same
/// leaf, and parsing it (x509-parser) took 3–5% of the hub's CPU on Health/Check (perf, P2). At most
/// [`SPIFFE_MEMO_MAX`] certificates are kept; the memo is emptied when full. Revocation is not cached here: it is
/// checked at the handshake, and this only reads names from bytes.
pub fn peer_spiffe_ids(cert_der: &[u8]) -> Result<Vec<String>, TlsError> {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};
    static MEMO: LazyLock<Mutex<HashMap<Vec<u8>, Vec<String>>>> = LazyLock::new(|| Mutex::new(HashMap::new()));
    if let Some(ids) = MEMO.lock().unwrap_or_else(|e| e.into_inner()).get(cert_der) {
        return Ok(ids.clone());
    }
    let ids = parse_spiffe_ids(cert_der)?;
    let mut memo = MEMO.lock().unwrap_or_else(|e| e.into_inner());
    if memo.len() >= SPIFFE_MEMO_MAX {
        memo.clear();
    }
    memo.insert(cert_der.to_vec(), ids.clone());
    Ok(ids)
}

/// Certificates whose SPIFFE IDs [`peer_spiffe_ids`] keeps (a city has a few dozen partner systems and operators).
pub const SPIFFE_MEMO_MAX: usize = 4096;

fn parse_spiffe_ids(cert_der: &[u8]) -> Result<Vec<String>, TlsError> {
    let (_, cert) = X509Certificate::from_der(cert_der)
        .map_err(|e| TlsError::PeerCertificate(format!("not an X.509 certificate: {e}")))?;
    spiffe_ids_of(&cert)
}

/// The SPIFFE IDs of a parsed certificate (as [`peer_spiffe_ids`], without the memo).
pub(crate) fn spiffe_ids_of(cert: &X509Certificate<'_>) -> Result<Vec<String>, TlsError> {
    let san =
        cert.subject_alternative_name().map_err(|e| TlsError::PeerCertificate(format!("bad subjectAltName: {e}")))?;
    Ok(san
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::URI(uri) if uri.starts_with("spiffe://") => Some((*uri).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default())
}

// ---------------------------------------------------------------------------------------------
// PEM helpers

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_path_buf(), source })
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

fn config_err(what: &str, reason: impl std::fmt::Display) -> TlsError {
    TlsError::Config { what: what.to_owned(), reason: reason.to_string() }
}

fn pem_err(what: &str, reason: impl std::fmt::Display) -> TlsError {
    TlsError::Pem { what: what.to_owned(), reason: reason.to_string() }
}

fn certs_from_pem(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(what, format!("bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(pem_err(what, "no CERTIFICATE block found"));
    }
    Ok(certs)
}

fn key_from_pem(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => pem_err(what, "no PRIVATE KEY block found"),
        other => pem_err(what, format!("bad PEM: {other}")),
    })
}

fn crls_from_pem(pem: &[u8], what: &str) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let crls = CertificateRevocationListDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(what, format!("bad PEM: {e}")))?;
    if crls.is_empty() {
        return Err(pem_err(what, "no X509 CRL block found"));
    }
    Ok(crls)
}

fn root_store(ca: Vec<CertificateDer<'static>>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for (i, cert) in ca.into_iter().enumerate() {
        roots.add(cert).map_err(|e| config_err(&format!("CA certificate #{}", i + 1), e))?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::certs::{self, AGENCIES, Ca, DEFAULT_TRUST_DOMAIN};
    use futures::StreamExt as _;
    use rustls::pki_types::ServerName;
    use std::fs;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio_rustls::TlsConnector;

    /// A PKI made at run time by `certs::init`, and a server on 127.0.0.1:0 serving it.
    struct Fixture {
        dir: tempfile::TempDir,
        addr: SocketAddr,
        config: ReloadableServerConfig,
        /// Server-side accepted streams, forwarded by a task that drains the incoming stream.
        accepted: mpsc::UnboundedReceiver<TlsStream<TcpStream>>,
    }

    impl Fixture {
        async fn start(handshake_timeout: Duration) -> Fixture {
            install_crypto_provider();
            let dir = tempfile::tempdir().unwrap();
            certs::init(dir.path(), DEFAULT_TRUST_DOMAIN, false).unwrap();
            let config = ReloadableServerConfig::new(files(dir.path()).server_config().unwrap());
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let mut incoming = Box::pin(tls_incoming(listener, config.clone(), handshake_timeout));
            let (tx, accepted) = mpsc::unbounded_channel();
            tokio::spawn(async move {
                while let Some(item) = incoming.next().await {
                    let stream = item.expect("tls_incoming yields only completed handshakes");
                    if tx.send(stream).is_err() {
                        break;
                    }
                }
            });
            Fixture { dir, addr, config, accepted }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        fn connector(&self, base: &str) -> TlsConnector {
            let read = |name: String| fs::read(self.path(&name)).unwrap();
            let config =
                client_config(&read("ca.pem".into()), &read(format!("{base}.pem")), &read(format!("{base}.key")))
                    .unwrap();
            TlsConnector::from(Arc::new(config))
        }

        /// Connects with the certificate `<base>.pem` and completes the handshake by exchanging
        /// one byte (with TLS 1.3 the client finishes before the server has checked its
        /// certificate; the server's verdict shows on the first read).
        async fn connect(addr: SocketAddr, connector: &TlsConnector) -> io::Result<()> {
            let tcp = TcpStream::connect(addr).await?;
            let name = ServerName::try_from("localhost").unwrap();
            let mut tls = connector.connect(name, tcp).await?;
            tls.write_all(b"?").await?;
            tls.flush().await?;
            let mut byte = [0u8; 1];
            let n = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut byte))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no reply"))??;
            if n == 1 && byte[0] == b'!' {
                Ok(())
            } else {
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed by server"))
            }
        }

        /// Takes the next server-side stream, checks that it is not a stale one, and answers.
        async fn serve_one(&mut self) -> Vec<CertificateDer<'static>> {
            let mut stream = tokio::time::timeout(Duration::from_secs(5), self.accepted.recv())
                .await
                .expect("a connection reaches the server")
                .unwrap();
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await.unwrap();
            stream.write_all(b"!").await.unwrap();
            stream.flush().await.unwrap();
            let (_, session) = stream.get_ref();
            assert_eq!(session.alpn_protocol(), Some(ALPN_H2));
            session.peer_certificates().unwrap().to_vec()
        }

        async fn assert_accepted(&mut self, base: &str) -> Vec<CertificateDer<'static>> {
            let connector = self.connector(base);
            let addr = self.addr;
            let (client, certs) = tokio::join!(Self::connect(addr, &connector), self.serve_one());
            client.unwrap_or_else(|e| panic!("{base} refused: {e}"));
            certs
        }

        async fn assert_refused(&mut self, connector: &TlsConnector, what: &str) {
            let result = Self::connect(self.addr, connector).await;
            assert!(result.is_err(), "{what} was accepted");
            // Nothing reached the server side.
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(self.accepted.try_recv().is_err(), "{what} reached the server");
        }
    }

    fn files(dir: &Path) -> TlsFiles {
        TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            crls: vec![dir.join("ca.crl")],
        }
    }

    #[tokio::test]
    async fn agency_certificate_is_accepted_and_its_spiffe_id_seen() {
        let mut fx = Fixture::start(Duration::from_secs(5)).await;
        for agency in AGENCIES {
            let certs = fx.assert_accepted(agency).await;
            assert_eq!(
                peer_spiffe_ids(&certs[0]).unwrap(),
                vec![format!("spiffe://{DEFAULT_TRUST_DOMAIN}/agency/{agency}")]
            );
        }
        let certs = fx.assert_accepted("civil_affairs-621022").await;
        assert_eq!(
            peer_spiffe_ids(&certs[0]).unwrap(),
            vec![format!("spiffe://{DEFAULT_TRUST_DOMAIN}/agency/civil_affairs/division/621022")]
        );
    }

    #[tokio::test]
    async fn client_without_certificate_is_refused() {
        let mut fx = Fixture::start(Duration::from_secs(5)).await;
        let mut roots = RootCertStore::empty();
        for cert in certs_from_pem(&fs::read(fx.path("ca.pem")).unwrap(), "ca").unwrap() {
            roots.add(cert).unwrap();
        }
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        let connector = TlsConnector::from(Arc::new(config));
        fx.assert_refused(&connector, "a client without a certificate").await;
        // The server still serves others.
        fx.assert_accepted("education").await;
    }

    #[tokio::test]
    async fn certificate_from_another_ca_is_refused() {
        let mut fx = Fixture::start(Duration::from_secs(5)).await;
        let other = Ca::generate("other CA").unwrap();
        let stranger = other.issue_client(DEFAULT_TRUST_DOMAIN, "civil_affairs", None).unwrap();
        // Trusts the real CA (so the server is accepted) but presents a foreign certificate.
        let config = client_config(
            &fs::read(fx.path("ca.pem")).unwrap(),
            stranger.cert_pem.as_bytes(),
            stranger.key_pem.as_bytes(),
        )
        .unwrap();
        fx.assert_refused(&TlsConnector::from(Arc::new(config)), "a foreign certificate").await;
    }

    #[tokio::test]
    async fn revoked_certificate_is_refused() {
        let mut fx = Fixture::start(Duration::from_secs(5)).await;
        let connector = fx.connector("revoked");
        fx.assert_refused(&connector, "the revoked certificate").await;
    }

    #[tokio::test]
    async fn revoke_and_reload_refuses_the_next_connection() {
        let mut fx = Fixture::start(Duration::from_secs(5)).await;
        fx.assert_accepted("human_resources").await;
        certs::revoke(fx.dir.path(), "human_resources.pem").unwrap();
        // Not yet reloaded: the old CRL is still in force.
        fx.assert_accepted("human_resources").await;
        fx.config.reload_from(&files(fx.dir.path())).unwrap();
        let connector = fx.connector("human_resources");
        fx.assert_refused(&connector, "human_resources after revocation").await;
        fx.assert_accepted("medical_insurance").await;
        fx.assert_accepted("civil_affairs").await;
    }

    #[tokio::test]
    async fn silent_client_does_not_block_others_and_is_dropped_after_the_timeout() {
        let mut fx = Fixture::start(Duration::from_secs(1)).await;
        let started = std::time::Instant::now();
        let mut silent = TcpStream::connect(fx.addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        // A second client completes its handshake while the first one says nothing.
        fx.assert_accepted("education").await;
        assert!(started.elapsed() < Duration::from_secs(1), "second handshake waited for the silent client");
        // The silent client is disconnected after about 1 s, and never reaches the server.
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(3), silent.read(&mut buf))
            .await
            .expect("the server drops the silent client after its handshake timeout")
            .unwrap_or(0);
        assert_eq!(n, 0, "expected EOF");
        assert!(started.elapsed() >= Duration::from_millis(900));
        assert!(fx.accepted.try_recv().is_err());
    }

    #[tokio::test]
    async fn dropping_the_stream_ends_the_accept_loop() {
        install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        certs::init(dir.path(), DEFAULT_TRUST_DOMAIN, false).unwrap();
        let config = ReloadableServerConfig::new(files(dir.path()).server_config().unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = tls_incoming(listener, config, Duration::from_secs(1));
        drop(incoming);
        // The accept loop notices, drops the listener, and the port refuses connections.
        let mut refused = false;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if TcpStream::connect(addr).await.is_err() {
                refused = true;
                break;
            }
        }
        assert!(refused, "listener still open after the stream was dropped");
    }

    #[test]
    fn errors_name_the_file_and_reason() {
        install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        certs::init(dir.path(), DEFAULT_TRUST_DOMAIN, false).unwrap();
        let mut f = files(dir.path());
        f.crls = vec![dir.path().join("nope.crl")];
        let err = f.server_config().unwrap_err().to_string();
        assert!(err.contains("nope.crl"), "{err}");

        let mut f = files(dir.path());
        f.key = dir.path().join("education.key"); // key of another certificate
        let err = f.server_config().unwrap_err().to_string();
        assert!(err.contains("server.pem"), "{err}");

        let mut f = files(dir.path());
        f.crls = vec![dir.path().join("ca.pem")]; // a certificate, not a CRL
        let err = f.server_config().unwrap_err().to_string();
        assert!(err.contains("ca.pem") && err.contains("no X509 CRL"), "{err}");

        let err = server_config(b"", b"", b"", &[]).unwrap_err().to_string();
        assert!(err.contains("CA certificate PEM"), "{err}");

        // No CRLs at all is fine.
        let mut f = files(dir.path());
        f.crls.clear();
        f.server_config().unwrap();
    }

    #[test]
    fn spiffe_ids_are_the_spiffe_uri_sans_only() {
        let ca = Ca::generate("test CA").unwrap();
        let issued =
            ca.issue_client_with_uris("mixed", &["https://example.test/x", "spiffe://td/agency/education"]).unwrap();
        let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap();
        assert_eq!(peer_spiffe_ids(&der).unwrap(), vec!["spiffe://td/agency/education".to_string()]);
        let server = ca.issue_server(&["localhost"]).unwrap();
        let der = CertificateDer::from_pem_slice(server.cert_pem.as_bytes()).unwrap();
        assert!(peer_spiffe_ids(&der).unwrap().is_empty());
        assert!(peer_spiffe_ids(b"not a certificate").is_err());
    }

    #[test]
    fn memoized_spiffe_ids_are_those_of_each_certificate_and_errors_are_not_kept() {
        // Two certificates with different IDs, each asked for twice, interleaved: the memo (keyed by the bytes) must
        // give each its own IDs, and bytes that are not a certificate stay an error every time.
        let ca = Ca::generate("test CA").unwrap();
        let a = ca.issue_client_with_uris("a", &["spiffe://td/agency/education"]).unwrap();
        let b = ca.issue_client_with_uris("b", &["spiffe://td/agency/civil_affairs"]).unwrap();
        let a = CertificateDer::from_pem_slice(a.cert_pem.as_bytes()).unwrap();
        let b = CertificateDer::from_pem_slice(b.cert_pem.as_bytes()).unwrap();
        for _ in 0..2 {
            assert_eq!(peer_spiffe_ids(&a).unwrap(), vec!["spiffe://td/agency/education".to_string()]);
            assert_eq!(peer_spiffe_ids(&b).unwrap(), vec!["spiffe://td/agency/civil_affairs".to_string()]);
            assert!(peer_spiffe_ids(b"garbage").is_err());
        }
        // A certificate differing from `a` in its last byte (its signature) is not `a` to the memo.
        let mut altered = a.to_vec();
        *altered.last_mut().unwrap() ^= 1;
        assert_eq!(parse_spiffe_ids(&altered).is_ok(), peer_spiffe_ids(&altered).is_ok());
    }

    /// tonic end to end: `serve_with_incoming(tls_incoming(..))`, a client through
    /// `tonic_client_tls`, and the handler side reading `request.peer_certs()`.
    #[tokio::test]
    async fn tonic_serves_over_tls_incoming_and_sees_the_peer_certificate() {
        use tonic::transport::{Endpoint, Server};
        use tonic_health::pb::HealthCheckRequest;
        use tonic_health::pb::health_client::HealthClient;

        install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        certs::init(dir.path(), DEFAULT_TRUST_DOMAIN, false).unwrap();
        let config = ReloadableServerConfig::new(files(dir.path()).server_config().unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = tls_incoming(listener, config, Duration::from_secs(5));

        let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let seen_in_layer = seen.clone();
        let check = move |req: tonic::Request<()>| -> Result<tonic::Request<()>, tonic::Status> {
            let certs = req.peer_certs().ok_or_else(|| tonic::Status::unauthenticated("no client certificate"))?;
            let ids = peer_spiffe_ids(&certs[0]).map_err(|e| tonic::Status::unauthenticated(e.to_string()))?;
            assert!(req.remote_addr().is_some());
            seen_in_layer.lock().unwrap().extend(ids);
            Ok(req)
        };
        let (_reporter, health) = tonic_health::server::health_reporter();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(
            Server::builder()
                .layer(tonic::service::InterceptorLayer::new(check))
                .add_service(health)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stop_rx.await;
                }),
        );

        let read = |name: &str| fs::read(dir.path().join(name)).unwrap();
        let tls = tonic_client_tls(
            &read("ca.pem"),
            &read("disability_federation.pem"),
            &read("disability_federation.key"),
            "localhost",
        );
        let channel =
            Endpoint::from_shared(format!("https://{addr}")).unwrap().tls_config(tls).unwrap().connect().await.unwrap();
        let reply = HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await.unwrap();
        assert_eq!(reply.get_ref().status, 1); // SERVING
        assert_eq!(
            seen.lock().unwrap().clone(),
            vec![format!("spiffe://{DEFAULT_TRUST_DOMAIN}/agency/disability_federation")]
        );

        // The revoked certificate cannot even open the channel.
        let tls = tonic_client_tls(&read("ca.pem"), &read("revoked.pem"), &read("revoked.key"), "localhost");
        let refused = async {
            let channel =
                Endpoint::from_shared(format!("https://{addr}")).unwrap().tls_config(tls).unwrap().connect().await?;
            HealthClient::new(channel)
                .check(HealthCheckRequest { service: String::new() })
                .await
                .map_err(|s| Box::new(s) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        };
        assert!(refused.await.is_err());

        stop_tx.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
