//! `doudi keys …`: data keys ([`crate::security::crypto`]): make one, and rotate the database to a new one under the
//! two-person rule (requested and approved through the hub; docs/admin.md) or, in a disaster, without it (audited).

use std::path::Path;

use anyhow::Context as _;
use clap::Subcommand;

use crate::client::admin::Mode;
use crate::config::{Config, Overrides};
use crate::store::AdminEventRecord as _;
use crate::store::Store;

use super::open_store;

/// `doudi keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a new random data key (standard base64) for DOUDI_DATA_KEY.
    Generate,
    /// Re-encrypt every stored ID number under a new data key (stop the hub first). The current key comes from
    /// DOUDI_DATA_KEY (or the config file), the new one from DOUDI_NEW_DATA_KEY. Resumable: interrupted, run it
    /// again with the same two keys. Afterwards start the hub with the new key; person keys, audit and snapshots
    /// are unchanged.
    Rotate {
        /// Database: sqlite://PATH or postgres://USER@HOST:PORT/DB [default: sqlite://doudi.db].
        #[arg(long)]
        database_url: Option<String>,
        /// Persons re-encrypted per transaction.
        #[arg(long, default_value_t = 5_000)]
        batch: usize,
        /// Stop after this many batches (to rehearse an interruption).
        #[arg(long, hide = true)]
        max_batches: Option<usize>,
        /// Break-glass: rotate without an approved request (the two-person rule, docs/admin.md), giving the reason;
        /// recorded as an audit event.
        #[arg(long)]
        without_approval: Option<String>,
    },
    /// As a security administrator, through the hub: request a rotation to DOUDI_NEW_DATA_KEY (only its check value
    /// is sent). A second security administrator approves it (`doudi admin approve ID`); then `doudi keys rotate`
    /// may run.
    RequestRotation {
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        hub: crate::client::admin::OperatorArgs,
    },
}

/// Run one data-key command.
pub async fn run(config: Option<&Path>, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::RequestRotation { reason, hub } => {
            let loaded = Config::load(config, &Overrides::default())?;
            let new = std::env::var("DOUDI_NEW_DATA_KEY")
                .context("the new data key: set DOUDI_NEW_DATA_KEY (doudi keys generate makes one)")?;
            let Mode::Hub(hub) = hub.mode("doudi keys request-rotation", true)? else {
                anyhow::bail!("a rotation is requested through the hub: give --operator NAME --certs-dir DIR")
            };
            crate::client::operator::keys_request_rotation(&hub, &new, loaded.crypto_suite, &reason).await
        }
        KeysCommand::Rotate { database_url, batch, max_batches, without_approval } => {
            use secrecy::ExposeSecret as _;
            let loaded = Config::load(config, &Overrides { database_url: database_url.clone(), ..Default::default() })?;
            let old = loaded.data_key.as_ref().context("the current data key: set DOUDI_DATA_KEY")?;
            let new = std::env::var("DOUDI_NEW_DATA_KEY")
                .context("the new data key: set DOUDI_NEW_DATA_KEY (doudi keys generate makes one)")?;
            let store = open_store(config, database_url).await?;
            let gate = rotation_gate(&store, loaded.crypto_suite, &new, without_approval.as_deref()).await;
            let gate = match gate {
                Ok(g) => g,
                Err(e) => {
                    store.close().await;
                    return Err(e);
                }
            };
            let r = crate::security::rotation::rotate(
                &store,
                loaded.crypto_suite,
                old.expose_secret(),
                &new,
                batch.max(1),
                max_batches,
            )
            .await;
            let r = match r {
                Ok(r) if r.finished && !r.already_done => {
                    let recorded = rotation_recorded(
                        &store,
                        loaded.crypto_suite,
                        old.expose_secret(),
                        &new,
                        gate,
                        without_approval.as_deref(),
                    )
                    .await;
                    recorded.map(|()| r)
                }
                other => other,
            };
            store.close().await;
            let r = r?;
            if r.already_done {
                println!("the database already uses the new data key; nothing to do");
            } else if r.finished {
                println!(
                    "{} ID numbers re-encrypted; the database now uses the new data key (start the hub with it)",
                    r.re_encrypted
                );
            } else {
                println!(
                    "{} ID numbers re-encrypted; stopped before the end: run the same command again to finish",
                    r.re_encrypted
                );
            }
            Ok(())
        }
        KeysCommand::Generate => {
            println!("{}", crate::security::crypto::Keys::generate_base64());
            Ok(())
        }
    }
}

/// The approved request (two-person rule, docs/admin.md) that lets `doudi keys rotate` move to `new_key`: its id, or
/// `None` on the break-glass path (`--without-approval REASON`). Refused when neither is there.
async fn rotation_gate(
    store: &Store,
    suite: crate::security::crypto::CryptoSuite,
    new_key: &str,
    without_approval: Option<&str>,
) -> anyhow::Result<Option<i64>> {
    use crate::domain::admin::ChangeKind;
    let new_check =
        crate::security::crypto::Keys::from_base64_with(new_key, suite).context("new data key")?.check_value();
    if store.meta("data_key_check").await.as_deref() == Some(new_check.as_slice()) {
        // Rotated already: `rotate` says there is nothing to do.
        return Ok(None);
    }
    let check = hex::encode(new_check);
    let approved = store.admin_changes().await?.into_iter().find(|c| {
        c.kind == ChangeKind::DataKeyRotation && c.payload == check && c.approved.is_some() && c.applied.is_none()
    });
    match (approved, without_approval) {
        (Some(c), _) => {
            println!(
                "rotation approved: change {} requested by {}, approved by {}",
                c.id,
                c.requested_by,
                c.approved.as_ref().map(|(by, _)| by.as_str()).unwrap_or("")
            );
            Ok(Some(c.id))
        }
        (None, Some(reason)) if !reason.trim().is_empty() => {
            eprintln!("WARNING: rotating without two-person approval (break-glass): {reason}; this is audited");
            Ok(None)
        }
        (None, _) => anyhow::bail!(
            "no approved rotation to this data key: a security administrator requests it (`doudi keys \
             request-rotation --reason …`, with the same DOUDI_NEW_DATA_KEY) and a second one approves it (`doudi admin \
             approve ID`); in a disaster, --without-approval \"REASON\" (audited; docs/operations.md \"Break glass\")"
        ),
    }
}

/// After a finished rotation: the approved request marked applied, or the break-glass rotation recorded; either way
/// one audit event with the old and the new key's check values as before/after.
async fn rotation_recorded(
    store: &Store,
    suite: crate::security::crypto::CryptoSuite,
    old_key: &str,
    new_key: &str,
    gate: Option<i64>,
    without_approval: Option<&str>,
) -> anyhow::Result<()> {
    use crate::domain::admin::{AdminEvent, state_hash};
    let check = |k: &str| -> anyhow::Result<String> {
        Ok(hex::encode(crate::security::crypto::Keys::from_base64_with(k, suite)?.check_value()))
    };
    let (before, after) = (state_hash(&[&check(old_key)?]), state_hash(&[&check(new_key)?]));
    let actor = crate::ops::direct_actor();
    match gate {
        Some(id) => {
            let audit = |c: &crate::domain::admin::StoredChange| {
                AdminEvent {
                    actor: &actor,
                    command: "doudi keys rotate",
                    args: format!(
                        "change_id={}; approved_by={}",
                        c.id,
                        c.approved.as_ref().map(|(b, _)| b.as_str()).unwrap_or("")
                    ),
                    detail: format!("data key rotated under approved change {}", c.id),
                    before: before.clone(),
                    after: after.clone(),
                }
                .record()
            };
            store.apply_change(id, &actor.by, chrono::Utc::now(), &audit).await?;
        }
        None => {
            let e = AdminEvent {
                actor: &actor,
                command: "doudi keys rotate",
                args: format!("without_approval={}", without_approval.unwrap_or_default()),
                detail: "data key rotated WITHOUT two-person approval (break-glass)".into(),
                before,
                after,
            };
            store.append_admin_event(&e.record()).await?;
        }
    }
    Ok(())
}
