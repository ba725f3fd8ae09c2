//! Configuration: built-in defaults ← TOML file (`--config`) ← `DOUDI_*` environment variables
//! ← command-line flags. Secrets (the data key) are wrapped in `secrecy` and never printed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The effective configuration of `doudi serve`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (`DOUDI_LISTEN`).
    pub listen: SocketAddr,
    /// `sqlite://path` or `postgres://user@host:port/database` (`DOUDI_DATABASE_URL`).
    pub database_url: String,
    /// Directory holding `ca.pem`, `server.pem`, `server.key` and optionally `ca.crl`
    /// (`DOUDI_CERTS_DIR`); the files below override single paths.
    pub certs_dir: PathBuf,
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// CRL files (PEM); default: `<certs_dir>/ca.crl` when it exists.
    pub tls_crls: Option<Vec<PathBuf>>,
    /// SPIFFE trust domain of agency certificates (`DOUDI_TRUST_DOMAIN`).
    pub trust_domain: String,
    /// The 32-byte data key in standard base64 (`DOUDI_DATA_KEY`). Required by `serve`.
    #[serde(skip_serializing)]
    pub data_key: Option<SecretString>,
    /// Access matrix file replacing the built-in one of docs/spec/security.md.
    pub access_policy_file: Option<PathBuf>,
    /// TOML file replacing the coverage-rule parameters (`domain::coverage::CoverageParams`: programs, ages,
    /// grades); default: docs/spec/coordination.md's values.
    pub coverage_params_file: Option<PathBuf>,
    /// Data-layer algorithms: "aes" (AES-256-GCM, HMAC-SHA256; default) or "sm" (SM4-GCM, HMAC-SM3). Fixed per
    /// database (the data-key check refuses the other suite).
    pub crypto_suite: crate::security::crypto::CryptoSuite,
    /// Most facts per PushFacts request / StreamFacts message.
    pub max_batch: usize,
    /// Most facts one GetRecipient response carries (more: page with page_size; issue 23 item 6).
    pub max_recipient_facts: usize,
    /// Most ID numbers one MatchRecipients call compares (more: RESOURCE_EXHAUSTED; compare the rest in another
    /// call); 0 = no limit.
    pub match_max_ids_per_call: usize,
    /// ID numbers each agency may compare with MatchRecipients per day, refilled evenly through the day; 0 = no limit.
    pub match_ids_per_agency_per_day: u32,
    /// Largest difference (decimal yuan) between a roster program's fund report and the amount
    /// computed from the roster before DISBURSEMENT_MISMATCH (docs/spec/coordination.md).
    pub fund_report_tolerance: String,
    /// Largest accepted gRPC message, bytes.
    pub max_message_bytes: usize,
    /// Seconds a client has to complete the TLS handshake.
    pub handshake_timeout_secs: u64,
    /// How often the CRL and certificate files are checked for changes, seconds (a changed file is reloaded, as
    /// on SIGHUP); 0 = only on SIGHUP.
    pub crl_poll_secs: u64,
    /// A client certificate whose CA's CRL is past its nextUpdate: "refuse" (default: the handshake fails) or "warn"
    /// (accepted, logged). `crate::security::cert_watch`.
    pub crl_stale: crate::security::cert_watch::CrlStale,
    /// Log a warning (once a day per certificate) when the CA, server or a client certificate seen has fewer days
    /// left than this; 0 = never. The days are on /metrics either way (`doudi_certificate_expiry_days`).
    pub cert_expiry_warn_days: u64,
    /// Pinned TLCP (or other) gateways whose connections may forward the agency's client certificate in
    /// `x-forwarded-client-cert` (Envoy's form): each a SPIFFE ID of the gateway's certificate or `sha256:<hex>` of the
    /// certificate itself. Empty (default): no gateway; the header is ignored from every peer. `grpc::gateway`.
    pub gateway_identities: Vec<String>,
    /// PostgreSQL: seconds between audit checkpoints while the audit log changes (docs/audit-lanes.md: a checkpoint
    /// names every lane's head, so deleting the newest events of one lane is detected); 0 = none. Ignored on SQLite.
    pub audit_checkpoint_secs: u64,
    /// Seconds between signings of the audit heads by the hub's audit signer (docs/audit-lanes.md "Signed heads"): a
    /// signed head is kept only when the heads changed since the newest kept one; 0 = only on request
    /// (`GetSignedHead` with `fresh`).
    pub audit_head_sign_secs: u64,
    /// Refusals on record (docs/refusals.md): refusals are audit events aggregated per (kind, method, peer, address,
    /// minute); at most this many such events a minute, refusals of further peers counted in one overflow event per
    /// kind; 0 = every refusal in the overflow events.
    pub audit_refusal_peers_per_minute: usize,
    /// Seconds a change request of the two-person rule (an access matrix, a data-key rotation: docs/admin.md) waits
    /// for its approval by a second security administrator before it expires; at least 1.
    pub admin_change_ttl_secs: u64,
    /// Requests per second each agency may make (GCRA quota), and the burst above it; 0 = no quota.
    pub rate_per_agency: u32,
    pub rate_burst: u32,
    /// Concurrent StreamFacts streams per agency; 0 = no limit.
    pub max_streams_per_agency: usize,
    /// Seconds after which a connection is asked to go away (HTTP/2 GOAWAY: the client opens a new one for its next
    /// call, so load spreads over replicas after a restart or scale-out); 0 = never.
    pub max_connection_age_secs: u64,
    /// Seconds a connection past `max_connection_age_secs` may keep its open streams before it is closed.
    pub max_connection_age_grace_secs: u64,
    /// Seconds a shutdown (SIGTERM, Ctrl-C) waits for in-flight requests before it closes every connection; open
    /// StreamFacts streams are ended at once with UNAVAILABLE saying what was committed.
    pub shutdown_grace_secs: u64,
    /// Concurrent WatchChanges streams per agency (counted apart from StreamFacts); 0 = no limit.
    pub max_watches_per_agency: usize,
    /// Seconds without a message after which a watch gets a heartbeat (keeps idle streams alive through proxies).
    pub watch_heartbeat_secs: u64,
    /// A watcher whose send buffer is full is ended (ABORTED, "resume from cursor N") once the change log is more
    /// than this many changes ahead of it.
    pub watch_max_lag: u64,
    /// A watcher whose send buffer stays full this many seconds is ended (ABORTED, "resume from cursor N").
    pub watch_send_timeout_secs: u64,
    /// Address of the Prometheus metrics endpoint (`GET /metrics`, plain HTTP), e.g. "127.0.0.1:9464"
    /// (`DOUDI_METRICS_LISTEN`); unset or empty = no metrics endpoint.
    #[serde(default, deserialize_with = "empty_is_none", skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// OTLP/gRPC collector the request spans are exported to, e.g. "http://127.0.0.1:4317" (`DOUDI_OTLP_ENDPOINT`;
    /// plain HTTP/2: a collector or agent on loopback or a management network); unset or empty = no export. Needs
    /// the cargo feature `otlp` (on by default). docs/operations.md "Traces".
    #[serde(default, deserialize_with = "empty_string_is_none", skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
}

/// One line per figment error, starting with the key and where its value came from, e.g.
/// `listen (DOUDI_LISTEN): invalid socket address syntax` or `max_batch (in doudi.toml): invalid type: …`.
fn describe(e: figment::Error) -> String {
    let lines: Vec<String> = e
        .into_iter()
        .map(|e| {
            let key = e.path.join(".").to_lowercase();
            let key = key.strip_prefix("default.").unwrap_or(&key).to_owned();
            let from = match &e.metadata {
                Some(m) if m.name.contains("environment") => format!(" (DOUDI_{})", key.to_uppercase()),
                Some(figment::Metadata { source: Some(figment::Source::File(f)), .. }) => {
                    format!(" (in {})", f.display())
                }
                _ => String::new(),
            };
            let what = e.kind.to_string();
            if key.is_empty() { format!("configuration: {what}{from}") } else { format!("{key}{from}: {what}") }
        })
        .collect();
    format!("invalid configuration: {}", lines.join("; "))
}

/// `scheme://user:password@host/…` with the password replaced by [`REDACTED`]; other strings unchanged.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:{REDACTED}@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// An optional address where an empty string (e.g. `DOUDI_METRICS_LISTEN=`) means "off".
fn empty_is_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    match s.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("{v:?} is not an address such as \"127.0.0.1:9464\" ({e})"))),
    }
}

/// An optional string where an empty one (e.g. `DOUDI_OTLP_ENDPOINT=`) means "off".
fn empty_string_is_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    Ok(s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()))
}

/// Why `endpoint` is not an OTLP endpoint the hub can export to, if it is not: `http://HOST:PORT` (a path is
/// ignored by gRPC), and a build with the feature `otlp`.
fn otlp_endpoint_refusal(endpoint: &str) -> Option<String> {
    if !cfg!(feature = "otlp") {
        return Some("this doudi was built without the cargo feature `otlp`".into());
    }
    let uri: http::Uri = match endpoint.parse() {
        Ok(u) => u,
        Err(e) => return Some(format!("not a URL such as \"http://127.0.0.1:4317\" ({e})")),
    };
    match uri.scheme_str() {
        Some("http") if uri.host().is_some_and(|h| !h.is_empty()) => None,
        Some("https") => Some(
            "https is not supported: export over plain HTTP/2 to a collector or agent on loopback or a management \
             network (as for metrics_listen)"
                .into(),
        ),
        _ => Some("not a URL such as \"http://127.0.0.1:4317\"".into()),
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:50051".parse().expect("valid literal"),
            database_url: "sqlite://doudi.db".into(),
            certs_dir: PathBuf::from("certs-example"),
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            tls_crls: None,
            trust_domain: crate::security::certs::DEFAULT_TRUST_DOMAIN.into(),
            data_key: None,
            access_policy_file: None,
            coverage_params_file: None,
            crypto_suite: Default::default(),
            max_batch: 10_000,
            max_recipient_facts: 1_000,
            match_max_ids_per_call: 250_000,
            match_ids_per_agency_per_day: 2_000_000,
            fund_report_tolerance: "1.00".into(),
            max_message_bytes: 4 * 1024 * 1024,
            handshake_timeout_secs: 10,
            crl_poll_secs: 30,
            crl_stale: Default::default(),
            cert_expiry_warn_days: 30,
            gateway_identities: Vec::new(),
            audit_checkpoint_secs: 1,
            audit_head_sign_secs: 300,
            audit_refusal_peers_per_minute: crate::server::refusals::DEFAULT_PEERS_PER_MINUTE,
            admin_change_ttl_secs: crate::domain::admin::DEFAULT_CHANGE_TTL_SECS,
            rate_per_agency: 2_000,
            rate_burst: 4_000,
            max_streams_per_agency: 16,
            max_connection_age_secs: 1800,
            max_connection_age_grace_secs: 60,
            shutdown_grace_secs: 10,
            max_watches_per_agency: 8,
            watch_heartbeat_secs: 15,
            watch_max_lag: 100_000,
            watch_send_timeout_secs: 30,
            metrics_listen: None,
            otlp_endpoint: None,
        }
    }
}

/// Overrides from command-line flags (only the ones given).
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certs_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
}

/// What `config show` prints in place of a secret.
pub const REDACTED: &str = "<redacted>";

impl Config {
    /// Every configuration key, in the order of the struct (and of `doudi.example.toml`).
    pub const KEYS: [&'static str; 39] = [
        "listen",
        "database_url",
        "certs_dir",
        "tls_ca",
        "tls_cert",
        "tls_key",
        "tls_crls",
        "trust_domain",
        "data_key",
        "access_policy_file",
        "coverage_params_file",
        "crypto_suite",
        "max_batch",
        "max_recipient_facts",
        "match_max_ids_per_call",
        "match_ids_per_agency_per_day",
        "fund_report_tolerance",
        "max_message_bytes",
        "handshake_timeout_secs",
        "crl_poll_secs",
        "crl_stale",
        "cert_expiry_warn_days",
        "gateway_identities",
        "audit_checkpoint_secs",
        "audit_head_sign_secs",
        "audit_refusal_peers_per_minute",
        "admin_change_ttl_secs",
        "rate_per_agency",
        "rate_burst",
        "max_streams_per_agency",
        "max_connection_age_secs",
        "max_connection_age_grace_secs",
        "shutdown_grace_secs",
        "max_watches_per_agency",
        "watch_heartbeat_secs",
        "watch_max_lag",
        "watch_send_timeout_secs",
        "metrics_listen",
        "otlp_endpoint",
    ];

    /// Checks beyond the types: each error names its key and never echoes a secret.
    pub fn validate(&self) -> Result<(), String> {
        use secrecy::ExposeSecret as _;
        if !["sqlite:", "postgres://", "postgresql://"].iter().any(|p| self.database_url.starts_with(p)) {
            return Err(format!(
                "database_url: {:?} is not supported: use sqlite://PATH or postgres://USER@HOST:PORT/DATABASE",
                redact_url(&self.database_url)
            ));
        }
        if let Some(why) = crate::store::in_memory_refusal(&self.database_url) {
            return Err(format!("database_url: {why}"));
        }
        if self.trust_domain.is_empty()
            || !self.trust_domain.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return Err(format!(
                "trust_domain: {:?} is not a SPIFFE trust domain (letters, digits, '.', '-', '_')",
                self.trust_domain
            ));
        }
        if let Some(k) = &self.data_key {
            use base64::Engine as _;
            let ok =
                base64::engine::general_purpose::STANDARD.decode(k.expose_secret().trim()).is_ok_and(|b| b.len() == 32);
            if !ok {
                return Err("data_key: must be 32 bytes in standard base64 (`doudi keys generate` makes one); \
                            the value given is not shown"
                    .into());
            }
        }
        if let Err(e) = self.fund_report_tolerance.parse::<crate::domain::money::Money>() {
            return Err(format!(
                "fund_report_tolerance: {:?} is not an amount in yuan such as \"1.00\" ({e})",
                self.fund_report_tolerance
            ));
        }
        for (key, value, min) in [
            ("max_batch", self.max_batch, 1),
            ("max_recipient_facts", self.max_recipient_facts, 1),
            ("max_message_bytes", self.max_message_bytes, 1024),
            ("handshake_timeout_secs", self.handshake_timeout_secs as usize, 1),
            ("watch_heartbeat_secs", self.watch_heartbeat_secs as usize, 1),
            ("admin_change_ttl_secs", usize::try_from(self.admin_change_ttl_secs).unwrap_or(usize::MAX), 1),
            ("watch_send_timeout_secs", self.watch_send_timeout_secs as usize, 1),
        ] {
            if value < min {
                return Err(format!("{key}: {value} is too small (at least {min})"));
            }
        }
        for g in &self.gateway_identities {
            crate::grpc::gateway::GatewayPin::parse(g).map_err(|why| format!("gateway_identities: {why}"))?;
        }
        if let Some(e) = &self.otlp_endpoint
            && let Some(why) = otlp_endpoint_refusal(e)
        {
            return Err(format!("otlp_endpoint: {:?}: {why}", redact_url(e)));
        }
        Ok(())
    }

    /// The configuration as TOML, secrets replaced by [`REDACTED`]: the data key, and a password in the database
    /// URL. Keys without a value are listed as comments.
    pub fn show(&self) -> String {
        let mut shown = self.clone();
        shown.database_url = redact_url(&self.database_url);
        shown.otlp_endpoint = self.otlp_endpoint.as_deref().map(redact_url);
        let mut out = toml::to_string(&shown).unwrap_or_else(|e| format!("# not representable as TOML: {e}\n"));
        if self.data_key.is_some() {
            out.push_str(&format!("data_key = \"{REDACTED}\"\n"));
        }
        let present: toml::Table = toml::from_str(&out).unwrap_or_default();
        for key in Config::KEYS {
            if !present.contains_key(key) {
                out.push_str(&format!("# {key}: not set\n"));
            }
        }
        out
    }

    /// Load defaults, then the file (if any), then `DOUDI_*`, then `overrides`, and [`Config::validate`].
    /// Errors name the offending key.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, Box<figment::Error>> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = file {
            fig = fig.merge(Toml::file_exact(f));
        }
        // DOUDI_CONFIG names the file (a flag's env), DOUDI_TEST_* belong to the test suite.
        let env = Env::prefixed("DOUDI_")
            .filter(|k| k != "config" && k != "new_data_key" && !k.as_str().to_ascii_lowercase().starts_with("test_"));
        fig = fig.merge(env).merge(Serialized::defaults(overrides));
        let mut config: Config = fig.extract().map_err(|e| Box::new(figment::Error::from(describe(e))))?;
        {
            use secrecy::ExposeSecret as _;
            // `DOUDI_DATA_KEY=` (empty) means no key, as if unset.
            if config.data_key.as_ref().is_some_and(|k| k.expose_secret().trim().is_empty()) {
                config.data_key = None;
            }
        }
        config.validate().map_err(|e| Box::new(figment::Error::from(format!("invalid configuration: {e}"))))?;
        Ok(config)
    }

    pub fn ca_path(&self) -> PathBuf {
        self.tls_ca.clone().unwrap_or_else(|| self.certs_dir.join("ca.pem"))
    }
    pub fn cert_path(&self) -> PathBuf {
        self.tls_cert.clone().unwrap_or_else(|| self.certs_dir.join("server.pem"))
    }
    pub fn key_path(&self) -> PathBuf {
        self.tls_key.clone().unwrap_or_else(|| self.certs_dir.join("server.key"))
    }
    /// The CRL files to watch for changes: the configured ones, or `certs_dir/ca.crl` even while it does not exist
    /// (a CRL written later is picked up by the poll).
    pub fn watched_crl_paths(&self) -> Vec<PathBuf> {
        match &self.tls_crls {
            Some(v) => v.clone(),
            None => vec![self.certs_dir.join("ca.crl")],
        }
    }

    pub fn crl_paths(&self) -> Vec<PathBuf> {
        match &self.tls_crls {
            Some(v) => v.clone(),
            None => {
                let p = self.certs_dir.join("ca.crl");
                if p.exists() { vec![p] } else { Vec::new() }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error by design
mod tests {
    use super::*;

    #[test]
    fn file_then_environment_then_flags() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("doudi.toml", "max_batch = 500\nlisten = \"127.0.0.1:7000\"\n")?;
            jail.set_env("DOUDI_MAX_BATCH", "700");
            jail.set_env("DOUDI_CONFIG", "doudi.toml");
            let c = Config::load(Some(Path::new("doudi.toml")), &Overrides::default()).unwrap();
            assert_eq!(c.max_batch, 700, "environment overrides the file");
            assert_eq!(c.listen.port(), 7000, "file overrides the default");
            let flags = Overrides { listen: Some("127.0.0.1:7001".parse().unwrap()), ..Default::default() };
            assert_eq!(Config::load(Some(Path::new("doudi.toml")), &flags).unwrap().listen.port(), 7001);
            Ok(())
        });
    }

    /// The test suite's own variables (`DOUDI_TEST_DATABASE_URL` of tests/api_pg) are not configuration keys, so a
    /// hub started under the suite's environment does not refuse them as unknown.
    #[test]
    fn test_suite_variables_are_not_configuration() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("DOUDI_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres");
            let c = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(c.database_url, "sqlite://doudi.db");
            Ok(())
        });
    }

    fn load_err(jail_env: &[(&str, &str)], file: Option<&str>) -> String {
        let mut msg = String::new();
        figment::Jail::expect_with(|jail| {
            for (k, v) in jail_env {
                jail.set_env(k, v);
            }
            let path = file.map(|text| {
                jail.create_file("doudi.toml", text).unwrap();
                Path::new("doudi.toml")
            });
            msg = Config::load(path, &Overrides::default()).unwrap_err().to_string();
            Ok(())
        });
        msg
    }

    /// Environment variables, a file's text, and the key the error must name.
    type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>, &'a str);

    #[test]
    fn each_invalid_value_is_refused_naming_its_key() {
        let cases: [Case; 14] = [
            (&[("DOUDI_LISTEN", "localhost-50051")], None, "listen"),
            (&[], Some("listen = \"127.0.0.1\"\n"), "listen"),
            (&[("DOUDI_CRYPTO_SUITE", "des")], None, "crypto_suite"),
            (&[("DOUDI_CRL_STALE", "ignore")], None, "crl_stale"),
            (&[("DOUDI_MAX_BATCH", "-5")], None, "max_batch"),
            (&[], Some("rate_burst = \"lots\"\n"), "rate_burst"),
            (&[("DOUDI_MAX_BATCH", "0")], None, "max_batch"),
            (&[("DOUDI_METRICS_LISTEN", "nine-four-six-four")], None, "metrics_listen"),
            (&[("DOUDI_FUND_REPORT_TOLERANCE", "one yuan")], None, "fund_report_tolerance"),
            (&[("DOUDI_DATABASE_URL", "mysql://doudi:hunter2@db/doudi")], None, "database_url"),
            (&[], Some("max_batchh = 5\n"), "max_batchh"),
            (&[("DOUDI_OTLP_ENDPOINT", "https://collector.invalid:4317")], None, "otlp_endpoint"),
            (&[("DOUDI_OTLP_ENDPOINT", "collector.invalid:4317")], None, "otlp_endpoint"),
            (&[], Some("otlp_endpoint = \"http://:hunter2@\"\n"), "otlp_endpoint"),
        ];
        for (env, file, key) in cases {
            let e = load_err(env, file);
            // From the environment figment names the variable's key as written (`LISTEN` of DOUDI_LISTEN).
            assert!(e.to_lowercase().contains(key), "{env:?} {file:?}: {e}");
            assert!(!e.contains("hunter2"), "a password is never echoed: {e}");
        }
    }

    /// Issue 23 item 2: `--database-url sqlite::memory:` was accepted and then failed 150–170 of 1,800 requests of 20
    /// concurrent clients with "database table is locked". It is refused at start, naming the key, the reason and a
    /// file to use instead; a database file is still accepted.
    #[test]
    fn an_in_memory_sqlite_database_is_refused_naming_the_key_and_a_file_instead() {
        for url in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite:",
            "sqlite://hub.db?mode=memory&cache=shared",
            // Percent-encoded: sqlx decodes `%6D` to `m` (found by a break-it run).
            "sqlite://x.db?mode=%6Demory",
        ] {
            let e = load_err(&[("DOUDI_DATABASE_URL", url)], None);
            assert!(e.contains("database_url"), "{url}: {e}");
            assert!(e.contains("in-memory") && e.contains("database table is locked"), "{url}: the reason: {e}");
            assert!(e.contains("sqlite://doudi.db"), "{url}: a file to use instead: {e}");
        }
        figment::Jail::expect_with(|jail| {
            jail.set_env("DOUDI_DATABASE_URL", "sqlite://hub.db?mode=rwc");
            Config::load(None, &Overrides::default()).unwrap();
            Ok(())
        });
    }

    #[test]
    fn a_bad_data_key_is_named_but_not_shown() {
        let e = load_err(&[("DOUDI_DATA_KEY", "c2VjcmV0LWJ1dC1zaG9ydA==")], None);
        assert!(e.contains("data_key") && !e.contains("c2VjcmV0LWJ1dC1zaG9ydA=="), "{e}");
    }

    #[test]
    fn an_empty_metrics_listen_otlp_endpoint_or_data_key_means_unset() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("DOUDI_METRICS_LISTEN", "");
            jail.set_env("DOUDI_DATA_KEY", "");
            let c = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(c.metrics_listen, None);
            assert!(c.data_key.is_none(), "an empty data key is no data key");
            jail.set_env("DOUDI_METRICS_LISTEN", "127.0.0.1:9464");
            let c = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(c.metrics_listen, Some("127.0.0.1:9464".parse().unwrap()));
            jail.set_env("DOUDI_OTLP_ENDPOINT", " ");
            assert_eq!(Config::load(None, &Overrides::default()).unwrap().otlp_endpoint, None);
            if cfg!(feature = "otlp") {
                jail.set_env("DOUDI_OTLP_ENDPOINT", "http://127.0.0.1:4317");
                let c = Config::load(None, &Overrides::default()).unwrap();
                assert_eq!(c.otlp_endpoint.as_deref(), Some("http://127.0.0.1:4317"));
            }
            Ok(())
        });
    }

    /// The example file at the repository root: it loads, its values are the built-in defaults, and it names
    /// every key (commented out where there is no default), so it cannot drift from this struct.
    #[test]
    fn the_example_file_lists_every_key_with_its_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("doudi.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        figment::Jail::expect_with(|_| {
            let c = Config::load(Some(&path), &Overrides::default()).unwrap();
            assert_eq!(toml::to_string(&c).unwrap(), toml::to_string(&Config::default()).unwrap());
            Ok(())
        });
        for key in Config::KEYS {
            let listed = text.lines().any(|l| {
                let l = l.trim_start_matches('#').trim_start();
                l.starts_with(&format!("{key} ="))
            });
            assert!(listed, "doudi.example.toml does not list {key}");
        }
        // KEYS is every field: a configuration with every option set serializes exactly these keys
        // (data_key is never serialized).
        let full = Config {
            tls_ca: Some("a".into()),
            tls_cert: Some("b".into()),
            tls_key: Some("c".into()),
            tls_crls: Some(vec!["d".into()]),
            access_policy_file: Some("e".into()),
            coverage_params_file: Some("f".into()),
            metrics_listen: Some("127.0.0.1:9464".parse().unwrap()),
            otlp_endpoint: Some("http://127.0.0.1:4317".into()),
            ..Config::default()
        };
        let table: toml::Table = toml::from_str(&toml::to_string(&full).unwrap()).unwrap();
        let mut fields: Vec<&str> = table.keys().map(String::as_str).chain(["data_key"]).collect();
        let mut keys = Config::KEYS.to_vec();
        fields.sort_unstable();
        keys.sort_unstable();
        assert_eq!(fields, keys);
    }

    #[test]
    fn show_redacts_the_data_key_and_database_passwords() {
        let key = crate::security::crypto::Keys::generate_base64();
        let c = Config {
            data_key: Some(key.clone().into()),
            database_url: "sqlite://user:hunter2@localhost/doudi.db".into(),
            ..Config::default()
        };
        let shown = c.show();
        assert!(!shown.contains(&key), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let table: toml::Table = toml::from_str(&shown).unwrap();
        assert_eq!(table["data_key"].as_str(), Some(REDACTED));
        assert_eq!(table["database_url"].as_str(), Some("sqlite://user:<redacted>@localhost/doudi.db"));
        assert_eq!(table["max_batch"].as_integer(), Some(10_000));
        assert!(shown.contains("# metrics_listen: not set"), "{shown}");
        assert!(shown.contains("# tls_ca: not set"), "{shown}");
        assert_eq!(redact_url("sqlite://doudi.db"), "sqlite://doudi.db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn an_invalid_value_names_its_key() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("DOUDI_MAX_BATCH", "many");
            let e = Config::load(None, &Overrides::default()).unwrap_err();
            assert!(e.to_string().to_lowercase().contains("max_batch"), "{e}");
            Ok(())
        });
    }
}
