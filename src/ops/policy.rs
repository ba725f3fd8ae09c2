//! `doudi policy …`: medical policy parameters (docs/spec/medical.md): effective-dated versions per pooling area,
//! added and listed through the hub (--operator) or on the database (--direct-database).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;

use crate::client::admin::Mode;

use super::open_store;

/// `doudi policy …`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Add a version from a JSON file: the shape `doudi policy show --json` prints (fields documented in README,
    /// "Medical policy parameters").
    /// Versions are never overwritten: a taken `version` label or (pooling_area, effective_from) is refused.
    /// A running hub uses the new version from its next request.
    Add {
        /// The JSON file.
        file: PathBuf,
        /// Where the values come from (document number), e.g. "庆政办发〔2024〕12号".
        #[arg(long)]
        source: String,
        /// Mark the values as placeholders still to be replaced.
        #[arg(long)]
        example: bool,
        /// Database (with --direct-database): sqlite://PATH or postgres://USER@HOST:PORT/DB [default:
        /// sqlite://doudi.db].
        #[arg(long)]
        database_url: Option<String>,
        #[command(flatten)]
        hub: crate::client::admin::OperatorArgs,
    },
    /// Print every version held, oldest first.
    Show {
        /// Print the versions as JSON (one object per line), the input format of `add`.
        #[arg(long)]
        json: bool,
        /// Database (read directly unless --operator is given): sqlite://PATH or postgres://USER@HOST:PORT/DB
        /// [default: sqlite://doudi.db].
        #[arg(long)]
        database_url: Option<String>,
        #[command(flatten)]
        hub: crate::client::admin::OperatorArgs,
    },
}

/// Run one policy command.
pub async fn run(config: Option<&Path>, command: PolicyCommand) -> anyhow::Result<()> {
    use crate::domain::medical::PolicyParams;
    match command {
        PolicyCommand::Add { file, source, example, database_url, hub } => {
            if let Mode::Hub(hub) = hub.mode("doudi policy add", true)? {
                return crate::client::operator::policy_add(&hub, &file, &source, example).await;
            }
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let params: PolicyParams = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a valid policy version", file.display()))?;
            for w in params.national_floor_warnings() {
                eprintln!("warning: {}: {}", w.field, w.reason);
            }
            let store = open_store(config, database_url).await?;
            let actor = crate::ops::direct_actor();
            let added = crate::hub::admin::add_policy_version(&store, &actor, &text, &source, example).await;
            store.close().await;
            added.map_err(|e| anyhow::anyhow!("not added: {e}"))?;
            println!(
                "added {} for pooling area {} from {}",
                params.version, params.pooling_area, params.effective_from
            );
            Ok(())
        }
        PolicyCommand::Show { json, database_url, hub } => {
            if let Mode::Hub(hub) = hub.mode("doudi policy show", false)? {
                return crate::client::operator::policy_show(&hub, json).await;
            }
            let store = open_store(config, database_url).await?;
            let all = store.medical_policies().await?;
            store.close().await;
            for p in all {
                if json {
                    println!("{}", serde_json::to_string(&p.params)?);
                } else {
                    println!(
                        "{}  area {}  from {}  {}source: {}",
                        p.params.version,
                        p.params.pooling_area,
                        p.params.effective_from,
                        if p.example { "EXAMPLE VALUES  " } else { "" },
                        p.source
                    );
                }
            }
            Ok(())
        }
    }
}
