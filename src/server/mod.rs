//! The running hub: binds its listener first (so tests can use port 0 and learn the real port),
//! serves gRPC over mutual TLS with health and reflection, and shuts down gracefully.
//!
//! Beside it: mutual TLS ([`tls`]), connection lifetime ([`lifetime`]), refusals on record ([`refusals`]), metrics
//! ([`metrics`]), logs and traces ([`telemetry`]) and the heap's footprint ([`memory`]).

pub mod lifetime;
pub mod memory;
pub mod metrics;
pub mod refusals;
pub mod telemetry;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_stream::StreamExt as _;
use tonic::transport::Server;
use tonic_health::ServingStatus;

use crate::config::Config;
use crate::domain::policy::AccessPolicy;
use crate::grpc::FILE_DESCRIPTOR_SET;
use crate::grpc::audit::AuditService;
use crate::grpc::auth::Authenticator;
use crate::grpc::coordination::CoordinationService;
use crate::grpc::exchange::ExchangeService;
use crate::grpc::medical::MedicalService;
use crate::grpc::pb::audit_server::AuditServer;
use crate::grpc::pb::coordination_server::CoordinationServer;
use crate::grpc::pb::medical_assistance_server::MedicalAssistanceServer;
use crate::grpc::pb::recipient_exchange_server::RecipientExchangeServer;
use crate::grpc::pb::reference_server::ReferenceServer;
use crate::grpc::reference::ReferenceService;
use crate::hub::{Hub, Limits};
use crate::security::cert_watch::CertWatch;
use crate::security::crypto::Keys;
use crate::server::lifetime::Trigger;
use crate::server::metrics::Metrics;
use crate::store::Store;

/// Names of the doudi services registered (health reports each, and "" for the whole server).
pub const SERVICES: [&str; 7] = [
    "doudi.v1.Admin",
    "doudi.v1.RecipientExchange",
    "doudi.v1.Reference",
    "doudi.v1.Audit",
    "doudi.v1.Coordination",
    "doudi.v1.MedicalAssistance",
    "doudi.v1.Subsidies",
];

/// Streams a client may reset before the hub has accepted them, pending on one connection at once, before h2 ends the
/// connection with GOAWAY `too_many_resets` (issue 23 item 4; SECURITY.md "Reset storms"). h2's default is 20: a batch
/// client timing out 500 calls at once lost the whole connection, its WatchChanges included. 4,096 holds a burst of
/// several thousand cancels, and still bounds what one connection can queue (a pending stream holds its decoded
/// request headers, about 1 KiB: at most a few MiB per connection). Resets arriving faster than the hub accepts streams
/// for that long (the rapid-reset attack, CVE-2023-44487) still fill it and close the connection.
pub const MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 4096;

/// Streams the hub itself may reset because of the client's protocol errors before it ends the connection (the
/// "MadeYouReset" variant of rapid reset, RUSTSEC-2024-0003 / CVE-2025-8671). hyper's default is 1,024, but tonic's
/// builder passes `None` when unset, which turns hyper's limit off: doudi sets it explicitly.
pub const MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;

/// Largest response message.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Message compression of every doudi service (issue 21 item 3): requests in gzip are accepted (inflated at most to
/// `max_message_bytes`, past it RESOURCE_EXHAUSTED), responses are gzip to clients whose `grpc-accept-encoding` names
/// it and uncompressed to the others; `grpc-encoding: identity` is an uncompressed request, any other encoding is
/// UNIMPLEMENTED naming the accepted ones (`grpc-accept-encoding: gzip,identity`). Health and reflection stay
/// uncompressed.
pub const GZIP: tonic::codec::CompressionEncoding = tonic::codec::CompressionEncoding::Gzip;

type ServeFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// A bound, ready-to-run hub.
pub struct Application {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    serve: ServeFuture,
    pub hub: Hub,
    pub metrics: Arc<Metrics>,
}

impl Application {
    /// Read keys, policy and TLS files, open and migrate the store, bind the listener.
    /// `shutdown` resolves when the server should drain and stop.
    pub async fn build(
        config: &Config,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<Application> {
        use secrecy::ExposeSecret as _;
        let data_key = config.data_key.as_ref().context(
            "no data key: set DOUDI_DATA_KEY (32 random bytes, standard base64; `doudi keys generate` makes one)",
        )?;
        let keys = Keys::from_base64_with(data_key.expose_secret(), config.crypto_suite).context("data_key")?;

        let tls_files = tls::TlsFiles {
            ca: config.ca_path(),
            cert: config.cert_path(),
            key: config.key_path(),
            crls: config.crl_paths(),
        };
        let cert_watch = CertWatch::new(config.crl_stale, &config.trust_domain, config.cert_expiry_warn_days);
        let reloadable = tls::ReloadableServerConfig::from_files(&tls_files, Some(cert_watch.clone()))
            .context("TLS configuration")?;

        let store =
            Store::open(&config.database_url).await.with_context(|| format!("opening {}", config.database_url))?;
        // After a key rotation the person keys stay those of the original lookup key, kept wrapped in the database.
        // If it does not open, the data key is wrong: the key check below refuses to serve.
        let keys = match store.meta("lookup_key_wrapped").await {
            Some(w) => keys.clone().with_wrapped_lookup(&w).unwrap_or(keys),
            None => keys,
        };
        // The access matrix: the newest one two security administrators approved (docs/admin.md "Access matrix"),
        // else `access_policy_file`, else the built-in one.
        // A database not yet at migration 0016 (migrated when the hub starts serving) holds no approved matrix.
        let (applied, _) = store.migration_versions().await?;
        let approved = if applied >= crate::hub::admin::CHANGES_MIGRATION {
            crate::hub::admin::approved_access_matrix(&store).await?
        } else {
            None
        };
        let policy = Arc::new(match approved {
            Some((change, p)) => {
                tracing::info!(
                    change = change.id,
                    requested_by = %change.requested_by,
                    approved_by = %change.approved.as_ref().map(|(by, _)| by.as_str()).unwrap_or(""),
                    "access matrix: the approved change from the database (access_policy_file, if set, is not used)"
                );
                p
            }
            None => match &config.access_policy_file {
                Some(p) => AccessPolicy::from_toml(
                    &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
                )?,
                None => AccessPolicy::default(),
            },
        });
        let coverage = Arc::new(match &config.coverage_params_file {
            Some(p) => toml::from_str::<crate::domain::coverage::CoverageParams>(
                &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
            )
            .with_context(|| format!("coverage_params_file {}", p.display()))?,
            None => Default::default(),
        });
        // The audit signer (docs/audit-lanes.md "Signed heads"): a hub without one serves, but cannot sign heads
        // (GetSignedHead is FAILED_PRECONDITION) and its sign age grows from the start, which alarms.
        let head_signer = match crate::security::audit_head::HeadSigner::load(&config.certs_dir)
            .map_err(|e| anyhow::anyhow!("audit signer: {e}"))?
        {
            Some(s) => Some(Arc::new(s)),
            None => {
                tracing::warn!(
                    dir = %config.certs_dir.display(),
                    "no audit signer ({}): audit heads are not signed; make one with `doudi certs audit-signer`",
                    crate::security::certs::files::AUDIT_SIGNER_KEY
                );
                None
            }
        };
        let signer_trust = crate::security::countersign::Trust {
            tls: reloadable.clone(),
            ca_path: config.ca_path(),
            trust_domain: config.trust_domain.clone(),
        };
        let limits = Limits {
            max_batch: config.max_batch,
            max_recipient_facts: config.max_recipient_facts,
            match_max_ids_per_call: config.match_max_ids_per_call,
            fund_report_tolerance: config
                .fund_report_tolerance
                .parse()
                .map_err(|e| anyhow::anyhow!("fund_report_tolerance {:?}: {e}", config.fund_report_tolerance))?,
            ..Limits::default()
        };
        let hub = Hub::new(store, keys, policy.clone(), limits)
            .with_coverage(coverage)
            .with_head_signer(head_signer)
            .with_signer_trust(Some(Arc::new(signer_trust)))
            .with_refusals(Arc::new(crate::server::refusals::RefusalLog::new(config.audit_refusal_peers_per_minute)));
        let auth = Authenticator::new(&config.trust_domain, policy.clone()).with_limits(
            crate::grpc::auth::AgencyLimits::new(
                config.rate_per_agency,
                config.rate_burst,
                config.max_streams_per_agency,
            )
            .with_max_watches(config.max_watches_per_agency)
            .with_match_budget(config.match_ids_per_agency_per_day),
        );
        let auth = if config.gateway_identities.is_empty() {
            auth
        } else {
            let pins = config
                .gateway_identities
                .iter()
                .map(|g| {
                    crate::grpc::gateway::GatewayPin::parse(g).map_err(|e| anyhow::anyhow!("gateway_identities: {e}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            tracing::info!(gateways = ?config.gateway_identities, "accepting client certificates forwarded by these gateways");
            auth.with_gateways(crate::grpc::gateway::Gateways::new(pins, reloadable.clone()))
        };

        // The Admin service rewrites certs_dir/ca.crl and reloads with it even when it did not exist at start.
        let admin_tls = (reloadable.clone(), tls::TlsFiles { crls: config.watched_crl_paths(), ..tls_files.clone() });
        let listener = TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
        let addr = listener.local_addr()?;
        spawn_tls_reload_on_sighup(reloadable.clone(), tls_files.clone());
        if config.crl_poll_secs > 0 {
            let watched = tls::TlsFiles { crls: config.watched_crl_paths(), ..tls_files };
            spawn_tls_reload_on_change(reloadable.clone(), watched, Duration::from_secs(config.crl_poll_secs));
        }
        // Connection lifetime (src/server/lifetime.rs): GOAWAY at max_connection_age (tonic), closed at age + grace or when
        // the shutdown grace is over (`close`).
        let draining = Trigger::default();
        let close = Trigger::default();
        let max_age = (config.max_connection_age_secs > 0).then(|| Duration::from_secs(config.max_connection_age_secs));
        let age_grace = Duration::from_secs(config.max_connection_age_grace_secs);
        let incoming = {
            let close = close.clone();
            tls::tls_incoming_recorded(
                listener,
                reloadable,
                Duration::from_secs(config.handshake_timeout_secs),
                Some(hub.refusals().clone()),
            )
            .map(move |conn| conn.map(|tls| close.wrap(tls, max_age, age_grace)))
        };

        // tonic-health's reporter; its service wrapped so Watch of an unknown service follows the protocol.
        let health = tonic_health::server::HealthReporter::new();
        let health_service =
            tonic_health::pb::health_server::HealthServer::new(crate::grpc::health::HubHealth::new(health.clone()));
        for s in SERVICES.iter().chain(std::iter::once(&"")) {
            health.set_service_status(*s, ServingStatus::NotServing).await;
        }
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;

        let metrics = Arc::new(Metrics::new());
        metrics.register(cert_watch.collector());
        metrics.register(Box::new(auth.ignored_forwarded_counter()));
        for c in hub.refusals().collectors() {
            metrics.register(c);
        }
        let metrics_listener = match config.metrics_listen {
            Some(a) => Some(crate::server::metrics::bind(a).await?),
            None => None,
        };
        let metrics_addr = metrics_listener.as_ref().map(|l| l.local_addr()).transpose()?;
        let observe = crate::grpc::observe::ObserveLayer::new(
            metrics.clone(),
            &config.trust_domain,
            policy.clone(),
            &[FILE_DESCRIPTOR_SET, tonic_health::pb::FILE_DESCRIPTOR_SET],
        )
        .with_refusals(hub.refusals().clone());

        let max = config.max_message_bytes;
        let exchange = RecipientExchangeServer::new(ExchangeService {
            hub: hub.clone(),
            auth: auth.clone(),
            draining: draining.clone(),
            metrics: metrics.clone(),
            watch: crate::grpc::watch::WatchSettings {
                heartbeat: Duration::from_secs(config.watch_heartbeat_secs),
                max_lag: i64::try_from(config.watch_max_lag).unwrap_or(i64::MAX),
                send_timeout: Duration::from_secs(config.watch_send_timeout_secs),
                ..Default::default()
            },
        })
        .max_decoding_message_size(max)
        // Responses are bounded by paging, not by the request limit: a person with many
        // facts or a full page may exceed 4 MiB.
        .max_encoding_message_size(MAX_RESPONSE_BYTES)
        .accept_compressed(GZIP)
        .send_compressed(GZIP);
        let reference = ReferenceServer::new(ReferenceService { hub: hub.clone(), auth: auth.clone() })
            .max_decoding_message_size(max)
            .accept_compressed(GZIP)
            .send_compressed(GZIP);
        let coordination = CoordinationServer::new(CoordinationService { hub: hub.clone(), auth: auth.clone() })
            .max_decoding_message_size(max)
            .max_encoding_message_size(MAX_RESPONSE_BYTES)
            .accept_compressed(GZIP)
            .send_compressed(GZIP);
        let medical = MedicalAssistanceServer::new(MedicalService { hub: hub.clone(), auth: auth.clone() })
            .max_decoding_message_size(max)
            .max_encoding_message_size(MAX_RESPONSE_BYTES)
            .accept_compressed(GZIP)
            .send_compressed(GZIP);
        let admin = crate::grpc::pb::admin_server::AdminServer::new(crate::grpc::admin::AdminService {
            hub: hub.clone(),
            trust_domain: config.trust_domain.as_str().into(),
            certs_dir: config.certs_dir.clone(),
            tls: Some((admin_tls.0, admin_tls.1)),
            change_ttl: Duration::from_secs(config.admin_change_ttl_secs.max(1)),
        })
        .max_decoding_message_size(max)
        .max_encoding_message_size(MAX_RESPONSE_BYTES)
        .accept_compressed(GZIP)
        .send_compressed(GZIP);
        let subsidies =
            crate::grpc::pb::subsidies_server::SubsidiesServer::new(crate::grpc::subsidies::SubsidiesService {
                hub: hub.clone(),
                auth: auth.clone(),
            })
            .max_decoding_message_size(max)
            .max_encoding_message_size(MAX_RESPONSE_BYTES)
            .accept_compressed(GZIP)
            .send_compressed(GZIP);
        let audit = AuditServer::new(AuditService { hub: hub.clone(), auth })
            .max_decoding_message_size(max)
            .accept_compressed(GZIP)
            .send_compressed(GZIP);

        let mut builder = Server::builder();
        if let Some(age) = max_age {
            builder = builder.max_connection_age(age);
        }
        let router = builder
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .http2_max_pending_accept_reset_streams(Some(MAX_PENDING_ACCEPT_RESET_STREAMS))
            .http2_max_local_error_reset_streams(Some(MAX_LOCAL_ERROR_RESET_STREAMS))
            .tcp_nodelay(true)
            // Outermost first: the request id, span and metrics see the status after the remapping below.
            .layer(observe)
            .layer(crate::grpc::limits::MessageLimitLayer)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(exchange)
            .add_service(reference)
            .add_service(audit)
            .add_service(admin)
            .add_service(coordination)
            .add_service(medical)
            .add_service(subsidies);

        let shutdown_grace = Duration::from_secs(config.shutdown_grace_secs);
        let store = hub.store().clone();
        let clock = hub.clock().clone();
        let key_check = hub.keys().check_value();
        let metrics_for_http = metrics.clone();
        let audit_checkpoint_secs = config.audit_checkpoint_secs;
        let audit_head_sign_secs = config.audit_head_sign_secs;
        let signer_hub = hub.clone();
        let signer_metrics = metrics.clone();
        let refusals = hub.refusals().clone();
        let serve: ServeFuture = Box::pin(async move {
            let metrics_task = metrics_listener
                .map(|l| tokio::spawn(crate::server::metrics::serve(l, metrics_for_http, store.clone())))
                .map(AbortOnDrop);
            let health_on_stop = health.clone();
            let drain_started = draining.clone();
            let server = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async move {
                shutdown.await;
                // Stop advertising first, then drain: new calls go elsewhere (GOAWAY), in-flight requests (accepted
                // writes) finish, open streams are told to reconnect; after `shutdown_grace` whatever is left is cut.
                for s in SERVICES.iter().chain(std::iter::once(&"")) {
                    health_on_stop.set_service_status(*s, ServingStatus::NotServing).await;
                }
                drain_started.fire();
            }));
            let drained = draining.fired();
            let closed_when_done = close.clone();
            tokio::spawn(async move {
                drained.await;
                tokio::time::sleep(shutdown_grace).await;
                if !close.is_fired() {
                    tracing::warn!(?shutdown_grace, "shutdown grace over: closing the connections still open");
                    close.fire();
                }
            });
            // Health says NOT_SERVING until migrations are done.
            store.migrate().await.context("applying migrations")?;
            if audit_checkpoint_secs > 0 {
                store.start_audit_checkpoints(Duration::from_secs(audit_checkpoint_secs));
            }
            if !store.verify_key_check(&key_check).await.context("checking the data key")? {
                anyhow::bail!(
                    "the data key (DOUDI_DATA_KEY) is not the one this database was created with; \
                     start with the original key (a new key would make every stored person unreadable)"
                );
            }
            for s in SERVICES.iter().chain(std::iter::once(&"")) {
                health.set_service_status(*s, ServingStatus::Serving).await;
            }
            match metrics_addr {
                Some(m) => tracing::info!(%addr, metrics = %m, "doudi serving (mutual TLS; metrics over plain HTTP)"),
                None => tracing::info!(%addr, "doudi serving (mutual TLS)"),
            }
            let reminder = AbortOnDrop(crate::hub::calendar::spawn_reminder(store.clone(), clock.clone()));
            let cert_check = AbortOnDrop(spawn_cert_check(cert_watch));
            let trimmer = AbortOnDrop(crate::server::memory::spawn_trimmer());
            // Refusals on record (docs/refusals.md): each minute's events are written once it is over.
            let refusal_flusher =
                crate::server::refusals::spawn_flusher(refusals.clone(), store.clone(), Duration::from_secs(1));
            let head_signer = (audit_head_sign_secs > 0).then(|| {
                AbortOnDrop(spawn_head_signer(signer_hub, Duration::from_secs(audit_head_sign_secs), signer_metrics))
            });
            let r = server.await.context("server task")?;
            // Whatever is pending, the current minute included, before the store closes.
            refusal_flusher.stop().await;
            let written = refusals.flush_all(&store).await;
            if written > 0 {
                tracing::info!(events = written, "refusal events written at shutdown");
            }
            drop(head_signer);
            drop((reminder, cert_check, trimmer));
            closed_when_done.fire();
            drop(metrics_task);
            store.close().await;
            r.context("gRPC server")
        });
        Ok(Application { addr, metrics_addr, serve, hub, metrics })
    }

    /// The bound address (the real port when configured with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound metrics address (`GET /metrics`), when `metrics_listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Serve until the shutdown future resolves and in-flight requests finish.
    pub async fn run(self) -> anyhow::Result<()> {
        self.serve.await
    }
}

/// Aborts the task when dropped (also when the serve future is dropped or fails early).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sign the audit heads every `every` (docs/audit-lanes.md "Signed heads"), keeping a signed head when they changed
/// ([`Hub::sign_heads`]). Reads the heads without any write lock, so it never holds up reads or pushes; each
/// successful run is recorded for `doudi_audit_head_sign_age_seconds`, so a signer that fails, has no key or lags
/// shows as a growing age.
fn spawn_head_signer(hub: Hub, every: Duration, metrics: Arc<Metrics>) -> tokio::task::JoinHandle<()> {
    metrics.audit_head_signed(chrono::Utc::now().timestamp());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            if !hub.has_head_signer() {
                continue;
            }
            match hub.sign_heads(false).await {
                Ok((h, kept)) => {
                    metrics.audit_head_signed(chrono::Utc::now().timestamp());
                    if kept {
                        tracing::debug!(heads = %crate::domain::audit::format_heads(&h.heads), "audit heads signed");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "signing the audit heads failed; retrying at the next interval"),
            }
        }
    })
}

/// Re-read the certificate, key and CRL files on SIGHUP, so a revoked agency's next connection
/// fails without a restart (docs/spec/security.md, "Revocation"). A bad file keeps the previous configuration.
fn spawn_tls_reload_on_sighup(config: tls::ReloadableServerConfig, files: tls::TlsFiles) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            match config.reload_from(&files) {
                Ok(()) => tracing::info!("TLS configuration and CRLs reloaded"),
                Err(e) => tracing::warn!(error = %e, "TLS reload failed; keeping the previous configuration"),
            }
        }
    });
    #[cfg(not(unix))]
    let _ = (config, files);
}

/// How often the CRLs in force and the certificates are checked for staleness and coming expiry (logs only: the
/// handshake checks nextUpdate itself).
const CERT_CHECK_EVERY: Duration = Duration::from_secs(60);

/// Every [`CERT_CHECK_EVERY`]: log a CRL that went stale and certificates close to expiry (`crate::security::cert_watch`).
fn spawn_cert_check(watch: Arc<CertWatch>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CERT_CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            watch.check(chrono::Utc::now().timestamp());
        }
    })
}

/// The modification times of the TLS files (a missing file counts as "none").
fn tls_mtimes(files: &tls::TlsFiles) -> Vec<Option<std::time::SystemTime>> {
    std::iter::once(&files.ca)
        .chain([&files.cert, &files.key])
        .chain(files.crls.iter())
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

/// Poll the certificate, key and CRL files every `every` and reload when one changed (docs/spec/security.md: CRLs
/// "reloaded without a restart (SIGHUP or a poll)"). A bad file keeps the previous configuration; the poll retries
/// on the next change.
fn spawn_tls_reload_on_change(config: tls::ReloadableServerConfig, files: tls::TlsFiles, every: Duration) {
    tokio::spawn(async move {
        let mut seen = tls_mtimes(&files);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let now = tls_mtimes(&files);
            if now == seen {
                continue;
            }
            seen = now;
            // A watched default CRL (certs_dir/ca.crl) may not exist yet.
            let mut present = files.clone();
            present.crls.retain(|p| p.exists());
            match config.reload_from(&present) {
                Ok(()) => tracing::info!("TLS files changed: configuration and CRLs reloaded"),
                Err(e) => {
                    tracing::warn!(error = %e, "TLS files changed but do not load; keeping the previous configuration")
                }
            }
        }
    });
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown requested: draining");
}
