//! `doudi audit …`: the audit log ([`crate::security::audit_head`], docs/spec/security.md): recompute its hash chain
//! on the hub's database, optionally against a signed head kept earlier; as an agency, fetch and keep a signed head.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;

use crate::config::{Config, Overrides};

use super::{CheckFailed, open_store};

/// `doudi audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the audit hash chain (docs/spec/security.md) and name the first event whose content, persons or link
    /// was altered, or where events were deleted. Prints the chain head's hash (keep it: deleting the newest events
    /// leaves a valid shorter chain, found only by comparing heads). Exits with status 1 if the chain is broken.
    /// With --against FILE (a signed head kept by `doudi audit head --save`): also checks its signature with the CA
    /// and that every lane still holds the saved head (no truncation or rewrite since), else exits 1 naming the lane.
    Verify {
        /// Database: sqlite://PATH or postgres://USER@HOST:PORT/DB [default: sqlite://doudi.db].
        #[arg(long)]
        database_url: Option<String>,
        /// A signed audit head (JSON, from `doudi audit head --save FILE`) the chain must still contain.
        #[arg(long)]
        against: Option<PathBuf>,
        /// The CA certificate that issued the audit signer [default: the configuration's tls_ca, else
        /// CERTS_DIR/ca.pem]. The signer must be spiffe://<trust_domain>/hub/audit-signer of the configured domain.
        #[arg(long, requires = "against")]
        ca: Option<PathBuf>,
    },
    /// As an agency: fetch the hub's signed audit head (GetSignedHead), check its signature with the CA, and keep it
    /// (--save FILE) for `doudi audit verify --against FILE`.
    Head(crate::client::audit_head::HeadArgs),
}

/// Run one audit command; a broken chain is [`CheckFailed`] (status 1).
pub async fn run(config: Option<&Path>, command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Head(args) => crate::client::audit_head::run(args).await,
        AuditCommand::Verify { database_url, against: Some(file), ca } => {
            verify_against(config, database_url, &file, ca).await
        }
        AuditCommand::Verify { database_url, against: None, .. } => {
            let store = open_store(config, database_url).await?;
            let c = store.verify_audit_chain().await;
            store.close().await;
            let c = c?;
            println!("audit events checked: {}", c.checked);
            println!("chain head: {}", hex::encode(c.head));
            // One line to keep elsewhere: every lane's head (lane:seq:hash) and the newest checkpoint.
            println!("lane heads: {}", crate::domain::audit::format_heads(&c.heads));
            if let Some(cp) = c.checkpoint {
                println!("newest checkpoint: {cp}");
            }
            match c.first_broken {
                None => {
                    println!("valid: every event recomputes and links to the one before in its lane");
                    Ok(())
                }
                Some((seq, why)) if c.first_broken_lane == 0 => {
                    println!("BROKEN at event {seq}: {why}");
                    Err(CheckFailed.into())
                }
                Some((seq, why)) => {
                    println!("BROKEN at event {seq} of lane {}: {why}", c.first_broken_lane);
                    Err(CheckFailed.into())
                }
            }
        }
    }
}

/// `doudi audit verify --against FILE`: the saved signed head's signature (CA, trust domain of the configuration),
/// then the chain and every saved lane head ([`crate::security::audit_head::check_against`]). [`CheckFailed`]
/// (status 1) naming the lane and the position when the chain no longer holds the head.
async fn verify_against(
    config: Option<&Path>,
    database_url: Option<String>,
    file: &Path,
    ca: Option<PathBuf>,
) -> anyhow::Result<()> {
    let loaded = Config::load(config, &Overrides { database_url: database_url.clone(), ..Default::default() })?;
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let head = crate::security::audit_head::SignedHead::from_json(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let ca_path = ca.unwrap_or_else(|| loaded.ca_path());
    let ca_pem = std::fs::read(&ca_path).with_context(|| format!("reading {}", ca_path.display()))?;
    println!("saved head: {}", crate::client::audit_head::describe(&head));
    if let Err(e) = crate::security::audit_head::verify(&head, &ca_pem, Some(&loaded.trust_domain)) {
        println!("REFUSED {}: {e} (CA {})", file.display(), ca_path.display());
        return Err(CheckFailed.into());
    }
    println!("signature verified with {}", ca_path.display());
    let store = open_store(config, database_url).await?;
    let r = crate::security::audit_head::check_against(&store, &head).await;
    store.close().await;
    let r = r?;
    println!("audit events checked: {}", r.chain.checked);
    println!("lane heads: {}", crate::domain::audit::format_heads(&r.chain.heads));
    match r.problem {
        None => {
            println!(
                "valid: the chain verifies and every lane still holds the saved head (nothing cut off or rewritten since)"
            );
            Ok(())
        }
        Some((lane, seq, why)) => {
            println!("BROKEN against {}: lane {lane}, event {seq}: {why}", file.display());
            Err(CheckFailed.into())
        }
    }
}
