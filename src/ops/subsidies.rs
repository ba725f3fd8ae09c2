//! `doudi subsidies …` (docs/subsidies.md): the agency commands of [`crate::client::subsidies`], and the operators'
//! campaigns and linkage rule versions, added through the hub (--operator) or on the database (--direct-database).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;

use crate::client::admin::Mode;

use super::open_store;

/// `doudi subsidies …`.
#[derive(Debug, Subcommand)]
pub enum SubsidiesCommand {
    /// As an agency: whether a subsidy month triggered, under which rule version, and the amount per group.
    Decide(crate::client::subsidies::DecideArgs),
    /// As civil_affairs: the persons owed for a subsidy month, with the facts that made them eligible.
    List(crate::client::subsidies::ListArgs),
    /// As an agency: subsidy months FROM..TO, per county against the PRICE_SUBSIDY fund reports.
    Summary(crate::client::subsidies::SummaryArgs),
    /// As development_reform: push monthly price indices from a CSV file.
    PushIndices(crate::client::subsidies::PushIndicesArgs),
    /// As an agency: a fixed-amount campaign's amounts and county figures against its fund reports.
    CampaignSummary(crate::client::subsidies::CampaignSummaryArgs),
    /// Fixed-amount campaigns on the hub's database (operators).
    Campaign {
        #[command(subcommand)]
        command: CampaignCommand,
    },
    /// Linkage rule versions on the hub's database (operators).
    Rule {
        #[command(subcommand)]
        command: RuleCommand,
    },
}

/// `doudi subsidies campaign …`.
#[derive(Debug, Subcommand)]
pub enum CampaignCommand {
    /// Add a campaign from a JSON file (groups and the amount per group; docs/subsidies.md). Never overwritten: a
    /// taken code is refused. Audited.
    Add {
        /// The JSON file.
        file: PathBuf,
        /// Where the groups and amounts come from (document numbers), e.g. "甘民发〔2022〕101号".
        #[arg(long)]
        source: String,
        /// Database (with --direct-database): sqlite://PATH or postgres://USER@HOST:PORT/DB [default:
        /// sqlite://doudi.db].
        #[arg(long)]
        database_url: Option<String>,
        #[command(flatten)]
        hub: crate::client::admin::OperatorArgs,
    },
    /// Print every campaign held (one JSON object per line).
    Show {
        /// Database: sqlite://PATH or postgres://USER@HOST:PORT/DB [default: sqlite://doudi.db].
        #[arg(long)]
        database_url: Option<String>,
    },
}

/// `doudi subsidies rule …`.
#[derive(Debug, Subcommand)]
pub enum RuleCommand {
    /// Add a version from a JSON file (the shape `doudi subsidies rule show --json` prints; docs/subsidies.md).
    /// Versions are never overwritten: a taken version label or first index month is refused. Audited.
    Add {
        /// The JSON file.
        file: PathBuf,
        /// Where the values come from (document numbers), e.g. "发改价格〔2021〕1553号".
        #[arg(long)]
        source: String,
        /// Database (with --direct-database): sqlite://PATH or postgres://USER@HOST:PORT/DB [default:
        /// sqlite://doudi.db].
        #[arg(long)]
        database_url: Option<String>,
        #[command(flatten)]
        hub: crate::client::admin::OperatorArgs,
    },
    /// Print every version held, by first index month.
    Show {
        /// One JSON object per line (the input format of `add`).
        #[arg(long)]
        json: bool,
        /// Database: sqlite://PATH or postgres://USER@HOST:PORT/DB [default: sqlite://doudi.db].
        #[arg(long)]
        database_url: Option<String>,
    },
}

/// Run one subsidies command.
pub async fn run(config: Option<&Path>, command: SubsidiesCommand) -> anyhow::Result<()> {
    use crate::client::subsidies as s;
    match command {
        SubsidiesCommand::Decide(args) => print!("{}", s::decide(&args).await?),
        SubsidiesCommand::List(args) => print!("{}", s::list(&args).await?),
        SubsidiesCommand::Summary(args) => print!("{}", s::summary(&args).await?),
        SubsidiesCommand::PushIndices(args) => print!("{}", s::push_indices(&args).await?),
        SubsidiesCommand::CampaignSummary(args) => print!("{}", s::campaign_summary(&args).await?),
        SubsidiesCommand::Campaign { command: CampaignCommand::Add { file, source, database_url, hub } } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            if let Mode::Hub(hub) = hub.mode("doudi subsidies campaign add", true)? {
                let r = hub
                    .connect()
                    .await?
                    .add_fixed_campaign(crate::grpc::pb::AddFixedCampaignRequest { campaign_json: text, source })
                    .await
                    .map_err(|s| crate::client::admin::failed("AddFixedCampaign", s))?
                    .into_inner();
                println!("added campaign {} for {} (audited)", r.code, r.month);
                return Ok(());
            }
            let store = open_store(config, database_url).await?;
            let actor = crate::ops::direct_actor();
            let added = crate::hub::subsidy::add_fixed_campaign(&store, &actor, &text, &source).await;
            store.close().await;
            let c = added.map_err(|e| anyhow::anyhow!("not added: {e}"))?;
            println!("added campaign {} ({}) for {} (audited)", c.code, c.name, c.month);
        }
        SubsidiesCommand::Campaign { command: CampaignCommand::Show { database_url } } => {
            let store = open_store(config, database_url).await?;
            let all = store.fixed_campaigns().await;
            store.close().await;
            for c in all? {
                println!("{}", serde_json::to_string(&c.campaign)?);
            }
        }
        SubsidiesCommand::Rule { command: RuleCommand::Add { file, source, database_url, hub } } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            if let Mode::Hub(hub) = hub.mode("doudi subsidies rule add", true)? {
                let r = hub
                    .connect()
                    .await?
                    .add_linkage_rule(crate::grpc::pb::AddLinkageRuleRequest { rule_json: text, source })
                    .await
                    .map_err(|s| crate::client::admin::failed("AddLinkageRule", s))?
                    .into_inner();
                println!("added linkage rule {} from index month {} (audited)", r.version, r.effective_from);
                return Ok(());
            }
            let store = open_store(config, database_url).await?;
            let actor = crate::ops::direct_actor();
            let added = crate::hub::subsidy::add_linkage_rule(&store, &actor, &text, &source).await;
            store.close().await;
            let rule = added.map_err(|e| anyhow::anyhow!("not added: {e}"))?;
            println!("added linkage rule {} from index month {} (audited)", rule.version, rule.effective_from);
        }
        SubsidiesCommand::Rule { command: RuleCommand::Show { json, database_url } } => {
            let store = open_store(config, database_url).await?;
            let all = store.linkage_rules().await;
            store.close().await;
            for r in all? {
                if json {
                    println!("{}", serde_json::to_string(&r.rule)?);
                } else {
                    let until = r.rule.effective_until.map(|m| m.to_string()).unwrap_or_else(|| "…".into());
                    println!(
                        "{}  index months {}..{}  CPI >= {} % or food >= {} %  {} groups  source: {}",
                        r.rule.version,
                        r.rule.effective_from,
                        until,
                        r.rule.cpi_threshold,
                        r.rule.food_cpi_threshold,
                        r.rule.bases.len(),
                        r.source
                    );
                }
            }
        }
    }
    Ok(())
}
