//! `doudi calendar add|show`: the working-day calendar as operators keep it (docs/operations.md, "Each autumn:
//! next year's calendar"; rules in [`crate::domain::holiday_notice`] and [`crate::hub::calendar`]).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use serde::Serialize;

use crate::client::admin::Mode;
use crate::domain::holiday_notice::{FileFormat, NoticeFile};
use crate::domain::workdays::DayKind;
use crate::hub::calendar::{LoadOutcome, current_versions, load_notice, status};
use crate::store::Store;

/// `doudi calendar …`.
#[derive(Debug, Subcommand)]
pub enum CalendarCommand {
    /// Load one year's State Council holiday notice (国务院办公厅关于YYYY年部分节假日安排的通知) from a TOML or JSON
    /// file: its holidays and make-up working days, each with its festival's name. Deadlines of warnings that
    /// reach that year are recomputed in the same transaction (old and new kept); the load is audited. Loading the
    /// same file again does nothing; other content for a loaded year needs --correction.
    Add {
        /// The notice file (format: `doudi calendar show YEAR --file`, or docs/operations.md).
        file: PathBuf,
        /// The notice as published, e.g. "国办发明电〔2026〕N号".
        #[arg(long)]
        source: String,
        /// Replace a year already loaded with other content, giving the reason (the old version is kept).
        #[arg(long)]
        correction: Option<String>,
        /// Database (with --direct-database): sqlite://PATH or postgres://USER@HOST:PORT/DB [default:
        /// sqlite://doudi.db].
        #[arg(long)]
        database_url: Option<String>,
        /// Through the hub as a system administrator (--operator), or on the database (--direct-database).
        #[command(flatten)]
        hub: crate::client::admin::OperatorArgs,
    },
    /// Print what the calendar holds: every year's notice in force, its source and versions, the last covered day,
    /// and the reminder when next year's notice is due (from 1 November).
    Show {
        /// One year: its days, and every version.
        year: Option<i32>,
        /// As JSON.
        #[arg(long, conflicts_with = "file")]
        json: bool,
        /// The year's notice in force as a file `doudi calendar add` reads (TOML; needs YEAR).
        #[arg(long, requires = "year")]
        file: bool,
        /// Database: sqlite://PATH or postgres://USER@HOST:PORT/DB [default: sqlite://doudi.db].
        #[arg(long)]
        database_url: Option<String>,
    },
}

impl CalendarCommand {
    /// The `--database-url` given, if any.
    pub fn database_url(&self) -> Option<String> {
        match self {
            CalendarCommand::Add { database_url, .. } | CalendarCommand::Show { database_url, .. } => {
                database_url.clone()
            }
        }
    }
}

/// Run one calendar command: `add` through the hub as a system administrator (--operator), else on the database of
/// the configuration (`config`, `--database-url` over it).
pub async fn run(config: Option<&std::path::Path>, command: CalendarCommand) -> anyhow::Result<()> {
    if let CalendarCommand::Add { file, source, correction, hub, .. } = &command
        && let Mode::Hub(hub) = hub.mode("doudi calendar add", true)?
    {
        return crate::client::operator::calendar_add(&hub, file, source, correction.as_deref()).await;
    }
    let store = super::open_store(config, command.database_url()).await?;
    let r = run_on_store(&store, command).await;
    store.close().await;
    r
}

/// Run one calendar command on an opened and migrated store.
pub async fn run_on_store(store: &Store, command: CalendarCommand) -> anyhow::Result<()> {
    match command {
        CalendarCommand::Add { file, source, correction, .. } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let notice = NoticeFile::parse(&text, FileFormat::detect(&file, &text))
                .with_context(|| format!("{}", file.display()))?;
            let r = load_notice(
                store,
                &notice,
                &source,
                correction.as_deref(),
                &crate::ops::direct_actor(),
                chrono::Utc::now(),
            )
            .await
            .with_context(|| format!("{}: not loaded", file.display()))?;
            match r.outcome {
                LoadOutcome::Unchanged { version } => println!(
                    "calendar {}: version {version} already holds exactly this notice; nothing changed",
                    r.year
                ),
                LoadOutcome::Loaded { version } => {
                    println!(
                        "calendar {} loaded as version {version}: {} days off, {} make-up working days (source: {source})",
                        r.year, r.holidays, r.make_up_workdays
                    );
                    println!("warnings whose deadlines moved: {}", r.changes.len());
                    for c in &r.changes {
                        let p = |b: bool| if b { " (provisional)" } else { "" };
                        println!(
                            "  {} {}: visit due {}{} → {}{}, decision due {}{} → {}{}",
                            c.agency,
                            c.warning_id,
                            c.old_visit_due,
                            p(c.old_provisional),
                            c.new_visit_due,
                            p(c.new_provisional),
                            c.old_decision_due,
                            p(c.old_provisional),
                            c.new_decision_due,
                            p(c.new_provisional)
                        );
                    }
                }
            }
            Ok(())
        }
        CalendarCommand::Show { year, json, file, .. } => {
            let s = status(store, chrono::Utc::now()).await?;
            let current = current_versions(&s.notices);
            if file {
                let y = year.expect("clap: --file requires YEAR");
                let n = current.get(&y).with_context(|| format!("the calendar holds no notice for {y}"))?;
                println!("# {y}, version {}, source: {}", n.version, n.source);
                print!("{}", NoticeFile::from_entries(y, &n.entries).to_toml());
                return Ok(());
            }
            let versions: Vec<_> = s.notices.iter().filter(|n| year.is_none_or(|y| n.year == y)).collect();
            if let Some(y) = year
                && versions.is_empty()
            {
                anyhow::bail!("the calendar holds no notice for {y}");
            }
            if json {
                #[derive(Serialize)]
                struct Version<'a> {
                    year: i32,
                    version: i64,
                    in_force: bool,
                    source: &'a str,
                    reason: &'a str,
                    loaded_at: String,
                    loaded_by: &'a str,
                    notice: NoticeFile,
                }
                #[derive(Serialize)]
                struct Out<'a> {
                    today: String,
                    covered_years: Vec<i32>,
                    covered_until: Option<String>,
                    reminder: Option<&'a str>,
                    versions: Vec<Version<'a>>,
                }
                let out = Out {
                    today: s.today.to_string(),
                    covered_years: s.calendar.covered_years().iter().copied().collect(),
                    covered_until: s.covered_until.map(|d| d.to_string()),
                    reminder: s.reminder.as_deref(),
                    versions: versions
                        .iter()
                        .map(|n| Version {
                            year: n.year,
                            version: n.version,
                            in_force: current.get(&n.year).is_some_and(|c| c.version == n.version),
                            source: &n.source,
                            reason: &n.reason,
                            loaded_at: n.loaded_at.to_rfc3339(),
                            loaded_by: &n.loaded_by,
                            notice: NoticeFile::from_entries(n.year, &n.entries),
                        })
                        .collect(),
                };
                println!("{}", serde_json::to_string_pretty(&out)?);
                return Ok(());
            }
            match s.covered_until {
                Some(d) => println!("working-day calendar: covered through {d} (today {})", s.today),
                None => println!("working-day calendar: this year is not covered (today {})", s.today),
            }
            if let Some(r) = &s.reminder {
                println!("REMINDER: {r}");
            }
            println!(
                "{:<6}{:<9}{:<10}{:<9}{:<22}{:<28}source",
                "year", "version", "holidays", "make-up", "loaded at", "loaded by"
            );
            for n in &versions {
                let holidays = n.entries.iter().filter(|e| e.kind == DayKind::Holiday).count();
                let in_force = current.get(&n.year).is_some_and(|c| c.version == n.version);
                println!(
                    "{:<6}{:<9}{:<10}{:<9}{:<22}{:<28}{}{}{}",
                    n.year,
                    format!("{}{}", n.version, if in_force { "" } else { " (old)" }),
                    holidays,
                    n.entries.len() - holidays,
                    n.loaded_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                    n.loaded_by,
                    n.source,
                    if n.reason.is_empty() { "" } else { "; correction: " },
                    n.reason
                );
            }
            if let Some(y) = year
                && let Some(n) = current.get(&y)
            {
                let f = NoticeFile::from_entries(y, &n.entries);
                println!("\n{y} in force (version {}):", n.version);
                for h in &f.holidays {
                    match &h.last {
                        Some(l) => println!("  off   {} … {}  {}", h.first, l, h.name),
                        None => println!("  off   {}               {}", h.first, h.name),
                    }
                }
                for m in &f.make_up_workdays {
                    println!("  work  {}               {} (make-up working day)", m.date, m.name);
                }
            }
            Ok(())
        }
    }
}
