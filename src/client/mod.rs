//! The agency client: the mutual-TLS channel to a hub ([`connect`], [`Clients`]) and the agency commands of the
//! `doudi` binary: `push`, `get`, `list`, `export`, `watch`, `match`, `audit head`,
//! `snapshot sign` (README, docs/file-exchange.md, docs/countersign.md).
//!
//! Each command is a library function taking its clap argument struct, so the tests run them in-process against a
//! hub from `spawn_app`; `src/main.rs` only dispatches. The file formats are in [`format`], the export manifest in
//! [`manifest`].

mod channel;
pub use channel::{ClientIdentity, Clients, connect};

pub mod admin;
pub mod audit_head;
pub mod countersign;
pub mod export;
pub mod findings;
pub mod findings_page;
pub mod format;
pub mod get;
pub mod list;
pub mod manifest;
pub mod matching;
pub mod operator;
pub mod push;
pub mod subsidies;
mod view;
pub mod watch;

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Largest gRPC message the client commands send or accept.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Where the hub is and who the agency is.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnectArgs {
    /// The hub's address.
    #[arg(long, default_value = "https://localhost:50051")]
    pub server: String,
    /// Directory holding ca.pem, AGENCY.pem and AGENCY.key (as `doudi certs init` writes them).
    #[arg(long)]
    pub certs_dir: Option<PathBuf>,
    /// Certificate name in --certs-dir, e.g. civil_affairs or civil_affairs-621022.
    #[arg(long)]
    pub agency: Option<String>,
    /// The hub's CA certificate (PEM) [default: CERTS_DIR/ca.pem].
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// The agency's client certificate (PEM) [default: CERTS_DIR/AGENCY.pem].
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// The agency's private key (PEM) [default: CERTS_DIR/AGENCY.key].
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Name the hub's certificate must carry.
    #[arg(long, default_value = "localhost")]
    pub domain: String,
}

impl ConnectArgs {
    /// `--server SERVER --certs-dir DIR --agency AGENCY`.
    pub fn from_dir(server: &str, dir: &Path, agency: &str) -> ConnectArgs {
        ConnectArgs {
            server: server.to_owned(),
            certs_dir: Some(dir.to_owned()),
            agency: Some(agency.to_owned()),
            ca: None,
            cert: None,
            key: None,
            domain: "localhost".into(),
        }
    }

    fn path(&self, explicit: &Option<PathBuf>, flag: &str, file: impl Fn(&str) -> String) -> anyhow::Result<PathBuf> {
        if let Some(p) = explicit {
            return Ok(p.clone());
        }
        match (&self.certs_dir, &self.agency) {
            (Some(d), Some(a)) => Ok(d.join(file(a))),
            (Some(d), None) if flag == "--ca" => Ok(d.join("ca.pem")),
            _ => anyhow::bail!("{flag}: give {flag} FILE, or --certs-dir DIR --agency NAME"),
        }
    }

    /// Read the CA, certificate and key.
    pub fn identity(&self) -> anyhow::Result<ClientIdentity> {
        let read = |p: PathBuf| std::fs::read(&p).with_context(|| format!("reading {}", p.display()));
        Ok(ClientIdentity {
            ca_pem: read(self.path(&self.ca, "--ca", |_| "ca.pem".into())?)?,
            cert_pem: read(self.path(&self.cert, "--cert", |a| format!("{a}.pem"))?)?,
            key_pem: read(self.path(&self.key, "--key", |a| format!("{a}.key"))?)?,
        })
    }

    /// Connect over mutual TLS.
    pub async fn connect(&self) -> anyhow::Result<Clients> {
        let id = self.identity()?;
        let channel = connect(&self.server, &self.domain, &id).await?;
        Ok(Clients::new(channel, MAX_MESSAGE_BYTES))
    }
}

/// A gRPC status as one line for the user: code and message (the hub's messages name the field and the reason).
pub fn status_text(s: &tonic::Status) -> String {
    format!("{:?}: {}", s.code(), s.message())
}
