//! `doudi`: the hub's one binary. Thin: it parses the command line, sets up the heap, crypto provider and telemetry,
//! dispatches to the operator commands ([`doudi::ops`]), the agency commands ([`doudi::client`]) and the tools
//! ([`doudi::tools`]), and turns the outcome into an exit status.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use doudi::ops::{audit::AuditCommand, snapshot::SnapshotCommand};
use doudi::{client, ops, tools};

#[derive(Parser)]
#[command(name = "doudi", version, about = "doudi (兜底): the safety-net data exchange hub")]
struct Cli {
    /// TOML configuration file (DOUDI_* environment variables override it).
    #[arg(long, global = true, env = "DOUDI_CONFIG")]
    config: Option<PathBuf>,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub (gRPC over mutual TLS).
    ///
    /// Needs DOUDI_DATA_KEY (or `data_key` in the config file): 32 random bytes in standard base64,
    /// made by `doudi keys generate`; keep it: a database only opens with the key it was created with.
    Serve(ops::serve::ServeArgs),
    /// Apply database migrations and exit.
    Migrate(ops::migrate::MigrateArgs),
    /// Run the whole exchange on a fresh database with a synthetic Qingyang population.
    Demo(tools::demo::DemoArgs),
    /// Measure the performance figures of docs/spec/performance.md on this machine (one JSON line each).
    Bench(tools::bench::BenchArgs),
    /// Certificates for the hub and the agencies.
    #[command(subcommand)]
    Certs(ops::certs::CertsCommand),
    /// Data keys.
    #[command(subcommand)]
    Keys(ops::keys::KeysCommand),
    /// The quarterly summary (from a frozen snapshot) and the monthly report, as Markdown, CSV, JSON, XLSX or
    /// self-contained HTML with charts, from the hub's database.
    #[command(subcommand)]
    Report(ops::report::ReportCommand),
    /// The audit log on the hub's database.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Quarterly snapshots on the hub's database (freezing is the CreateSnapshot RPC, civil_affairs only).
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// The working-day calendar: load next year's State Council holiday notice each autumn, show what is held.
    #[command(subcommand)]
    Calendar(ops::calendar::CalendarCommand),
    /// Retention (docs/retention.md): periods per kind of record, legal holds, and the resumable, audited purge.
    #[command(subcommand)]
    Retention(ops::retention::RetentionCommand),
    /// Subsidy campaigns (docs/subsidies.md): the price-subsidy linkage decided for a month, who is owed it, the
    /// counties' figures against their fund reports; price indices (development_reform); rule versions (operators).
    #[command(subcommand)]
    Subsidies(ops::subsidies::SubsidiesCommand),
    /// Medical policy parameters (docs/spec/medical.md): effective-dated versions per pooling area.
    #[command(subcommand)]
    Policy(ops::policy::PolicyCommand),
    /// The configuration (defaults ← --config FILE ← DOUDI_* variables; doudi.example.toml lists every key).
    #[command(subcommand)]
    Config(ops::config::ConfigCommand),
    /// As an operator (docs/admin.md): the two-person rule (request a matrix change, approve another security
    /// administrator's request, list requests) and the audit administrator's reads, through the hub's Admin service.
    Admin(client::admin::AdminArgs),
    /// As an agency: push facts from a CSV or JSON Lines file, or an export directory (docs/file-exchange.md).
    Push(client::push::PushArgs),
    /// As an agency: one person's facts in force, as you may see them.
    Get(client::get::GetArgs),
    /// As an agency: findings (`doudi findings explain ID`: how the hub got to a finding, in Chinese and English;
    /// `doudi findings page QUARTER -o DIR`: a quarter's findings as HTML pages, each row linked to its explanation).
    Findings(client::findings::FindingsArgs),
    /// As an agency: persons with facts in force, filtered, as you may see them.
    List(client::list::ListArgs),
    /// As an agency: write your own facts in force as files `doudi push` reads, with a manifest.
    Export(client::export::ExportArgs),
    /// As an agency: follow the change feed (WatchChanges), one line per change with its cursor; resume with --from.
    Watch(client::watch::WatchArgs),
    /// As an agency: which persons of a CSV list are enrolled, as you may see it (MatchRecipients); writes
    /// FILE.match.csv beside the input, one row per ID number.
    Match(client::matching::MatchArgs),
}

/// The log filter of the commands that print their own output.
const QUIET: &str = "warn,sqlx::query=error";

/// Status 0 on success; 1 when a check printed its findings ([`ops::CheckFailed`]), or on an error (printed as
/// `Error: …`); 2 on a usage error (clap).
fn main() -> anyhow::Result<ExitCode> {
    // Before any thread starts (src/server/memory.rs).
    doudi::server::memory::configure_heap();
    doudi::server::tls::install_crypto_provider();
    let cli = Cli::parse();
    // The demo, the bench and the agency commands print their own output: they log only warnings unless RUST_LOG says
    // otherwise.
    let default_filter = match &cli.command {
        Command::Demo(_) | Command::Bench(_) => QUIET,
        Command::Push(_) | Command::Get(_) | Command::Findings(_) | Command::List(_) | Command::Export(_) => QUIET,
        Command::Watch(_) | Command::Match(_) | Command::Subsidies(_) => QUIET,
        Command::Audit(AuditCommand::Head(_)) | Command::Snapshot(SnapshotCommand::Sign(_)) => QUIET,
        _ => "info,sqlx=warn,h2=warn",
    };
    // `serve` installs its subscriber once its configuration is read (with the OTLP export of `otlp_endpoint`).
    if !matches!(cli.command, Command::Serve(_)) {
        doudi::server::telemetry::init(cli.log_json, default_filter);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match rt.block_on(run(cli, default_filter)) {
        Err(e) if e.is::<ops::CheckFailed>() => Ok(ExitCode::FAILURE),
        r => r.map(|()| ExitCode::SUCCESS),
    }
}

async fn run(cli: Cli, default_filter: &str) -> anyhow::Result<()> {
    let config = cli.config.as_deref();
    match cli.command {
        Command::Serve(args) => ops::serve::run(config, cli.log_json, default_filter, args).await,
        Command::Migrate(args) => ops::migrate::run(config, args).await,
        Command::Demo(args) => tools::demo::run(args).await,
        Command::Bench(args) => tools::bench::run(args).await,
        Command::Certs(command) => ops::certs::run(command).await,
        Command::Keys(command) => ops::keys::run(config, command).await,
        Command::Report(command) => ops::report::run(config, command).await,
        Command::Audit(command) => ops::audit::run(config, command).await,
        Command::Snapshot(command) => ops::snapshot::run(config, command).await,
        Command::Calendar(command) => ops::calendar::run(config, command).await,
        Command::Retention(command) => ops::retention::run(config, command).await,
        Command::Subsidies(command) => ops::subsidies::run(config, command).await,
        Command::Policy(command) => ops::policy::run(config, command).await,
        Command::Config(command) => ops::config::run(config, command),
        Command::Admin(args) => client::admin::run(args).await,
        Command::Push(args) => client::push::run(args).await,
        Command::Get(args) => client::get::run(args).await,
        Command::Findings(args) => client::findings::run(args).await,
        Command::List(args) => client::list::run(args).await,
        Command::Export(args) => client::export::run(args).await,
        Command::Watch(args) => client::watch::run(args).await,
        Command::Match(args) => client::matching::run(args).await,
    }
}
