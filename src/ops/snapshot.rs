//! `doudi snapshot …`: quarterly snapshots ([`crate::hub::snapshot`], docs/snapshot-format.md; freezing is the
//! CreateSnapshot RPC): verify one on the hub's database or as an export with only the CA, list them, and as an
//! agency countersign one (docs/countersign.md).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;

use crate::config::{Config, Overrides};

use super::{CheckFailed, open_store};

/// `doudi snapshot …`.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Recompute a snapshot's section hashes, content hash and chain link from the stored rows and name every
    /// difference (docs/snapshot-format.md), and check every partner agency's countersignature again with the CA
    /// (VALID, MISSING or INVALID; docs/countersign.md). Exits with status 1 if anything differs or a signature is
    /// invalid (a missing one is reported only). With --offline DIR: the same checks on a snapshot export
    /// (`doudi export --snapshot`) with only the CA certificate: its files, the content hash recomputed from its
    /// header, and its signatures.
    Verify {
        /// Quarter, YYYYQn, e.g. 2023Q2 (with --offline: the export's, checked if given).
        #[arg(required_unless_present = "offline")]
        quarter: Option<String>,
        /// Database: sqlite://PATH or postgres://USER@HOST:PORT/DB [default: sqlite://doudi.db].
        #[arg(long, conflicts_with = "offline")]
        database_url: Option<String>,
        /// Check this snapshot export directory instead of the hub's database.
        #[arg(long)]
        offline: Option<PathBuf>,
        /// The CA certificate that issued the agencies' certificates [default: the configuration's tls_ca, else
        /// CERTS_DIR/ca.pem; on the hub's database, signatures are left unchecked (and said so) when that file is
        /// missing].
        #[arg(long)]
        ca: Option<PathBuf>,
    },
    /// As an agency: countersign a frozen quarter (docs/countersign.md): sign the snapshot's content hash with your
    /// client key (GetSnapshot, then SignSnapshot). A second run adds a new version.
    Sign(crate::client::countersign::SignArgs),
    /// List the snapshots held, oldest first, with their hashes.
    List {
        /// Database: sqlite://PATH or postgres://USER@HOST:PORT/DB [default: sqlite://doudi.db].
        #[arg(long)]
        database_url: Option<String>,
    },
}

/// Run one snapshot command; a snapshot that differs or an invalid signature is [`CheckFailed`] (status 1).
pub async fn run(config: Option<&Path>, command: SnapshotCommand) -> anyhow::Result<()> {
    match command {
        SnapshotCommand::Sign(args) => crate::client::countersign::run_sign(args).await,
        SnapshotCommand::Verify { quarter, database_url, offline, ca } => {
            let q = quarter
                .map(|quarter| {
                    quarter
                        .parse::<crate::domain::calendar::Quarter>()
                        .map_err(|e| anyhow::anyhow!("quarter {quarter:?}: {e} (expected YYYYQn)"))
                })
                .transpose()?;
            let loaded = Config::load(config, &Overrides { database_url: database_url.clone(), ..Default::default() })?;
            let ca_given = ca.is_some();
            let ca_path = ca.unwrap_or_else(|| loaded.ca_path());
            if let Some(dir) = offline {
                if let Some(q) = q {
                    let m = crate::client::manifest::Manifest::read(&dir)?;
                    let exported = m.snapshot.map(|s| s.quarter).unwrap_or_default();
                    if exported != q.to_string() {
                        anyhow::bail!("{} holds the snapshot of {exported:?}, not {q}", dir.display());
                    }
                }
                return crate::client::countersign::run_offline(&dir, &ca_path);
            }
            let Some(q) = q else { anyhow::bail!("give a quarter, or --offline DIR") };
            // Without --ca, a missing default CA file leaves the signatures unchecked (said so) rather than stopping the
            // content check an operator runs after every upgrade (docs/operations.md).
            let ca_pem = match std::fs::read(&ca_path) {
                Ok(pem) => Some(pem),
                Err(e) if ca_given => return Err(e).with_context(|| format!("reading {}", ca_path.display())),
                Err(_) => None,
            };
            let policy = match &loaded.access_policy_file {
                Some(p) => crate::domain::policy::AccessPolicy::from_toml(
                    &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
                )?,
                None => crate::domain::policy::AccessPolicy::default(),
            };
            let store = open_store(config, database_url).await?;
            let checked = async {
                let Some(v) = store.verify_snapshot(q).await? else { return Ok(None) };
                let sigs = match &ca_pem {
                    Some(ca_pem) => Some(
                        crate::hub::countersign::signature_report(
                            &store,
                            &policy.partner_agencies(),
                            &v.header,
                            ca_pem,
                            Some(&loaded.trust_domain),
                        )
                        .await?,
                    ),
                    None => None,
                };
                Ok::<_, crate::store::StoreError>(Some((v, sigs)))
            }
            .await;
            store.close().await;
            let Some((v, sigs)) = checked? else { anyhow::bail!("quarter {q} has no snapshot") };
            println!("snapshot {q}: as of {}, knowledge cutoff {}", v.header.as_of, v.header.knowledge_cutoff);
            println!("content_hash stored     {}", hex::encode(v.header.content_hash));
            println!("content_hash recomputed {}", hex::encode(v.recomputed_content_hash));
            for d in &v.differences {
                println!("DIFFERS: {d}");
            }
            let sigs: Vec<_> = sigs.unwrap_or_default().into_iter().map(|s| (s.agency, s.status)).collect();
            if ca_pem.is_none() {
                println!("signatures not checked: no CA certificate at {} (give --ca FILE)", ca_path.display());
            }
            for l in crate::client::countersign::signature_lines(&sigs) {
                println!("{l}");
            }
            let invalid =
                sigs.iter().any(|(_, s)| matches!(s, crate::domain::countersign::SignatureStatus::Invalid(_)));
            if v.differences.is_empty() && !invalid {
                println!("valid: every section, the content hash and the chain link recompute to what was stored");
                if ca_pem.is_some() {
                    println!("and every signature present checks with {}", ca_path.display());
                }
                Ok(())
            } else {
                Err(CheckFailed.into())
            }
        }
        SnapshotCommand::List { database_url } => {
            let store = open_store(config, database_url).await?;
            for h in store.snapshots().await? {
                println!(
                    "{}  as of {}  cutoff {}  by {}  content {}  previous {}",
                    h.quarter,
                    h.as_of,
                    h.knowledge_cutoff,
                    h.created_by,
                    hex::encode(h.content_hash),
                    h.previous_quarter.as_deref().unwrap_or("-")
                );
            }
            store.close().await;
            Ok(())
        }
    }
}
