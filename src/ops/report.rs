//! `doudi report …`: the quarterly summary (from a frozen snapshot) and the monthly report, rendered by
//! [`crate::report`] from the hub's database.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;

use crate::config::{Config, Overrides};

use super::open_store;

/// `doudi report …`.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// The quarterly summary of a frozen quarter (docs/spec/coordination.md), computed only from its snapshot and the
    /// previous one.
    Quarterly {
        /// Quarter, YYYYQn, e.g. 2023Q2.
        quarter: String,
        #[arg(long, value_enum, default_value = "md")]
        format: crate::report::Format,
        /// Output file [default: standard output; XLSX needs a file].
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Database: sqlite://PATH or postgres://USER@HOST:PORT/DB [default: sqlite://doudi.db].
        #[arg(long)]
        database_url: Option<String>,
        /// HTML only: link sections 4 and 5 to findings-QUARTER.html and section 11 to the previous quarter's
        /// findings-PREVIOUS.html, the findings pages `doudi findings page` writes; keep them beside this file.
        #[arg(long)]
        link_findings: bool,
    },
    /// The monthly report to the leading group: aggregates of a month as known now.
    Monthly {
        /// Month, YYYY-MM, e.g. 2023-07.
        month: String,
        #[arg(long, value_enum, default_value = "md")]
        format: crate::report::Format,
        /// Output file [default: standard output; XLSX needs a file].
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Database: sqlite://PATH or postgres://USER@HOST:PORT/DB [default: sqlite://doudi.db].
        #[arg(long)]
        database_url: Option<String>,
    },
}

/// The rendered report to `output`, or to standard output unless it is XLSX.
fn write_out(bytes: &[u8], format: crate::report::Format, output: Option<&Path>) -> anyhow::Result<()> {
    match output {
        Some(p) => {
            std::fs::write(p, bytes).with_context(|| format!("writing {}", p.display()))?;
            eprintln!("written to {}", p.display());
            Ok(())
        }
        None if matches!(format, crate::report::Format::Xlsx) => {
            anyhow::bail!("XLSX is binary: give an output file with -o FILE.xlsx")
        }
        None => {
            use std::io::Write as _;
            std::io::stdout().write_all(bytes)?;
            Ok(())
        }
    }
}

/// Render one report to `--output` or standard output.
pub async fn run(config: Option<&Path>, command: ReportCommand) -> anyhow::Result<()> {
    match command {
        ReportCommand::Quarterly { quarter, format, output, database_url, link_findings } => {
            let q: crate::domain::calendar::Quarter =
                quarter.parse().map_err(|e| anyhow::anyhow!("quarter {quarter:?}: {e} (expected YYYYQn)"))?;
            if link_findings && format != crate::report::Format::Html {
                anyhow::bail!("--link-findings: only with --format html");
            }
            let store = open_store(config, database_url).await?;
            let summary = crate::hub::snapshot::quarterly_summary(&store, q).await;
            store.close().await;
            let summary = summary?;
            let bytes = if link_findings {
                crate::report::render_quarterly_html(&summary, &crate::report::FindingsLinks::beside(&summary))?
            } else {
                crate::report::render_quarterly(&summary, format)?
            };
            write_out(&bytes, format, output.as_deref())
        }
        ReportCommand::Monthly { month, format, output, database_url } => {
            let m: crate::domain::calendar::Month =
                month.parse().map_err(|e| anyhow::anyhow!("month {month:?}: {e} (expected YYYY-MM)"))?;
            let loaded = Config::load(config, &Overrides { database_url: database_url.clone(), ..Default::default() })?;
            let store = open_store(config, database_url).await?;
            let hub = crate::hub::Hub::for_reports(store.clone(), &loaded)?;
            let r = hub.monthly_report_data(m).await;
            store.close().await;
            let bytes = crate::report::render_monthly(&r?, format)?;
            write_out(&bytes, format, output.as_deref())
        }
    }
}
