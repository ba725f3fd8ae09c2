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
    /// `sqlite://path` (`DOUDI_DATABASE_URL`).
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
    /// Access matrix file replacing the built-in one of security.md.
    pub access_policy_file: Option<PathBuf>,
    /// TOML file replacing the coverage-rule parameters (`domain::coverage::CoverageParams`: programs, ages,
    /// grades); default: coordination.md's values.
    pub coverage_params_file: Option<PathBuf>,
    /// Data-layer algorithms: "aes" (AES-256-GCM, HMAC-SHA256; default) or "sm" (SM4-GCM, HMAC-SM3). Fixed per
    /// database (the data-key check refuses the other suite).
    pub crypto_suite: crate::crypto::CryptoSuite,
    /// Most facts per PushFacts request / StreamFacts message.
    pub max_batch: usize,
    /// Largest difference (decimal yuan) between a roster program's fund report and the amount
    /// computed from the roster before DISBURSEMENT_MISMATCH (coordination.md).
    pub fund_report_tolerance: String,
    /// Largest accepted gRPC message, bytes.
    pub max_message_bytes: usize,
    /// Seconds a client has to complete the TLS handshake.
    pub handshake_timeout_secs: u64,
    /// How often the CRL and certificate files are checked for changes, seconds (a changed file is reloaded, as
    /// on SIGHUP); 0 = only on SIGHUP.
    pub crl_poll_secs: u64,
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
            trust_domain: crate::certs::DEFAULT_TRUST_DOMAIN.into(),
            data_key: None,
            access_policy_file: None,
            coverage_params_file: None,
            crypto_suite: Default::default(),
            max_batch: 10_000,
            fund_report_tolerance: "1.00".into(),
            max_message_bytes: 4 * 1024 * 1024,
            handshake_timeout_secs: 10,
            crl_poll_secs: 30,
            rate_per_agency: 2_000,
            rate_burst: 4_000,
            max_streams_per_agency: 16,
            max_connection_age_secs: 1800,
            max_connection_age_grace_secs: 60,
            shutdown_grace_secs: 10,
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
}

impl Config {
    /// Load defaults, then the file (if any), then `DOUDI_*`, then `overrides`.
    /// Errors name the offending key.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, Box<figment::Error>> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = file {
            fig = fig.merge(Toml::file_exact(f));
        }
        // DOUDI_CONFIG names the file (a flag's env), DOUDI_TEST_* belong to the test suite.
        let env = Env::prefixed("DOUDI_")
            .filter(|k| k != "config" && k != "new_data_key" && !k.as_str().starts_with("test_"));
        fig = fig.merge(env).merge(Serialized::defaults(overrides));
        fig.extract().map_err(Box::new)
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
