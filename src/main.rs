//! `doudi`: the hub's one binary. Thin: crypto provider, telemetry, configuration, dispatch.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use doudi::client::admin::Mode;
use doudi::config::{Config, Overrides};
use doudi::store::AdminEventRecord as _;

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
    Serve {
        /// Address to listen on [default: 127.0.0.1:50051].
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Database: sqlite://PATH or postgres://USER@HOST:PORT/DB [default: sqlite://doudi.db].
        #[arg(long)]
        database_url: Option<String>,
        /// Directory with ca.pem, server.pem, server.key and optionally ca.crl [default: certs-example, the
        /// demo PKI whose keys are public: use your own for anything real].
        #[arg(long)]
        certs_dir: Option<PathBuf>,
        /// Serve Prometheus metrics (GET /metrics, plain HTTP) on this address, e.g. 127.0.0.1:9464 [default: off].
        #[arg(long)]
        metrics_listen: Option<std::net::SocketAddr>,
    },
    /// Apply database migrations and exit.
    Migrate {
        /// Database: sqlite://PATH or postgres://USER@HOST:PORT/DB [default: sqlite://doudi.db].
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Run the whole exchange on a fresh database with a synthetic Qingyang population.
    Demo(doudi::tools::demo::DemoArgs),
    /// Measure the performance figures of docs/spec/performance.md on this machine (one JSON line each).
    Bench(doudi::tools::bench::BenchArgs),
    /// Certificates for the hub and the agencies.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Data keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The quarterly summary (from a frozen snapshot) and the monthly report, as Markdown, CSV, JSON, XLSX or
    /// self-contained HTML with charts, from the hub's database.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// The audit log on the hub's database.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Quarterly snapshots on the hub's database (freezing is the CreateSnapshot RPC, civil_affairs only).
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
    },
    /// The working-day calendar: load next year's State Council holiday notice each autumn, show what is held.
    Calendar {
        #[command(subcommand)]
        command: doudi::ops::calendar::CalendarCommand,
    },
    /// Retention (docs/retention.md): periods per kind of record, legal holds, and the resumable, audited purge.
    Retention {
        #[command(subcommand)]
        command: doudi::ops::retention::RetentionCommand,
    },
    /// Subsidy campaigns (docs/subsidies.md): the price-subsidy linkage decided for a month, who is owed it, the
    /// counties' figures against their fund reports; price indices (development_reform); rule versions (operators).
    Subsidies {
        #[command(subcommand)]
        command: SubsidiesCommand,
    },
    /// Medical policy parameters (docs/spec/medical.md): effective-dated versions per pooling area.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// The configuration (defaults ← --config FILE ← DOUDI_* variables; doudi.example.toml lists every key).
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// As an operator (docs/admin.md): the two-person rule (request a matrix change, approve another security
    /// administrator's request, list requests) and the audit administrator's reads, through the hub's Admin service.
    Admin(doudi::client::admin::AdminArgs),
    /// As an agency: push facts from a CSV or JSON Lines file, or an export directory (docs/file-exchange.md).
    Push(doudi::client::push::PushArgs),
    /// As an agency: one person's facts in force, as you may see them.
    Get(doudi::client::get::GetArgs),
    /// As an agency: findings (`doudi findings explain ID`: how the hub got to a finding, in Chinese and English;
    /// `doudi findings page QUARTER -o DIR`: a quarter's findings as HTML pages, each row linked to its explanation).
    Findings(doudi::client::findings::FindingsArgs),
    /// As an agency: persons with facts in force, filtered, as you may see them.
    List(doudi::client::list::ListArgs),
    /// As an agency: write your own facts in force as files `doudi push` reads, with a manifest.
    Export(doudi::client::export::ExportArgs),
    /// As an agency: follow the change feed (WatchChanges), one line per change with its cursor; resume with --from.
    Watch(doudi::client::watch::WatchArgs),
    /// As an agency: which persons of a CSV list are enrolled, as you may see it (MatchRecipients); writes
    /// FILE.match.csv beside the input, one row per ID number.
    Match(doudi::client::matching::MatchArgs),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration of `serve` as TOML, secrets (data key, database password) shown as
    /// "<redacted>"; exits with status 1 naming the key if a value is invalid.
    Show,
}

#[derive(Subcommand)]
enum AuditCommand {
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
    Head(doudi::client::audit_head::HeadArgs),
}

#[derive(Subcommand)]
enum ReportCommand {
    /// The quarterly summary of a frozen quarter (docs/spec/coordination.md), computed only from its snapshot and the
    /// previous one.
    Quarterly {
        /// Quarter, YYYYQn, e.g. 2023Q2.
        quarter: String,
        #[arg(long, value_enum, default_value = "md")]
        format: doudi::report::Format,
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
        format: doudi::report::Format,
        /// Output file [default: standard output; XLSX needs a file].
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Database: sqlite://PATH or postgres://USER@HOST:PORT/DB [default: sqlite://doudi.db].
        #[arg(long)]
        database_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum SnapshotCommand {
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
    Sign(doudi::client::countersign::SignArgs),
    /// List the snapshots held, oldest first, with their hashes.
    List {
        /// Database: sqlite://PATH or postgres://USER@HOST:PORT/DB [default: sqlite://doudi.db].
        #[arg(long)]
        database_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum SubsidiesCommand {
    /// As an agency: whether a subsidy month triggered, under which rule version, and the amount per group.
    Decide(doudi::client::subsidies::DecideArgs),
    /// As civil_affairs: the persons owed for a subsidy month, with the facts that made them eligible.
    List(doudi::client::subsidies::ListArgs),
    /// As an agency: subsidy months FROM..TO, per county against the PRICE_SUBSIDY fund reports.
    Summary(doudi::client::subsidies::SummaryArgs),
    /// As development_reform: push monthly price indices from a CSV file.
    PushIndices(doudi::client::subsidies::PushIndicesArgs),
    /// As an agency: a fixed-amount campaign's amounts and county figures against its fund reports.
    CampaignSummary(doudi::client::subsidies::CampaignSummaryArgs),
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

#[derive(Subcommand)]
enum CampaignCommand {
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
        hub: doudi::client::admin::OperatorArgs,
    },
    /// Print every campaign held (one JSON object per line).
    Show {
        /// Database: sqlite://PATH or postgres://USER@HOST:PORT/DB [default: sqlite://doudi.db].
        #[arg(long)]
        database_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum RuleCommand {
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
        hub: doudi::client::admin::OperatorArgs,
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

#[derive(Subcommand)]
enum PolicyCommand {
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
        hub: doudi::client::admin::OperatorArgs,
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
        hub: doudi::client::admin::OperatorArgs,
    },
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Make a CA, a server certificate (localhost, 127.0.0.1, ::1), one client certificate per agency,
    /// the 环县 (621022) county civil-affairs office, the operators (operator-system-admin, operator-security-admin,
    /// operator-security-admin-2, operator-audit-admin: docs/admin.md), a revoked certificate and the CRL listing it.
    Init {
        /// Output directory.
        #[arg(long, default_value = "certs")]
        out: PathBuf,
        /// SPIFFE trust domain written into the agency certificates.
        #[arg(long, default_value = doudi::security::certs::DEFAULT_TRUST_DOMAIN)]
        trust_domain: String,
        /// Replace an existing CA.
        #[arg(long)]
        force: bool,
    },
    /// Issue the hub's audit signer (audit-signing.pem, audit-signing.key: the key that signs audit heads) with the
    /// CA in --dir, for a PKI made before `doudi certs init` wrote it. The hub loads it at start.
    AuditSigner {
        /// Directory holding ca.pem and ca.key (the hub's certs_dir).
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// SPIFFE trust domain of the signer's ID (spiffe://<domain>/hub/audit-signer): the hub's trust_domain.
        #[arg(long, default_value = doudi::security::certs::DEFAULT_TRUST_DOMAIN)]
        trust_domain: String,
        /// Replace an existing audit signing key.
        #[arg(long)]
        force: bool,
    },
    /// Revoke an agency's certificate: add its serial to `revoked-serials.txt` and rewrite the CRL (`ca.crl`)
    /// signed by the CA in the same directory. A running hub picks it up on SIGHUP or within `crl_poll_secs`; the
    /// agency's next connection is refused.
    ///
    /// With --operator (a security administrator), the certificate file is sent to the hub, which revokes it with the
    /// CA key in its own certs_dir, reloads the CRL at once and records the audit event (docs/admin.md); without, this
    /// is the CA's own offline tool on --dir (no audit event: the files are not the hub's database).
    Revoke {
        /// The certificate's file name without `.pem`, e.g. `education` or `civil_affairs-621022`.
        name: String,
        /// Directory holding ca.pem, ca.key and the certificate.
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        #[command(flatten)]
        hub: doudi::client::admin::OperatorArgs,
    },
    /// Rewrite the CRL (`ca.crl`) from `revoked-serials.txt`, signed by the CA in the same directory, with a fresh
    /// nextUpdate (365 days ahead): what to do when the hub says its CRL is stale. A running hub picks it up on
    /// SIGHUP or within `crl_poll_secs`.
    ///
    /// With --operator (a security administrator): the hub rewrites its own CRL, reloads it and audits it.
    RefreshCrl {
        /// Directory holding ca.pem, ca.key and revoked-serials.txt.
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        #[command(flatten)]
        hub: doudi::client::admin::OperatorArgs,
    },
    /// Issue one agency's client certificate with the CA in --dir: `AGENCY.pem` and `.key` (`AGENCY-COUNTY` for a
    /// county office), URI SAN spiffe://<trust-domain>/agency/<code>[/division/<county>]. For an agency that joined
    /// after `doudi certs init` made the directory (docs/operations.md §5); the access matrix must know it. Nothing
    /// else in --dir is rewritten.
    IssueAgency {
        /// The agency code, e.g. `development_reform` (lowercase letters, digits and '_').
        agency: String,
        /// A county office of the agency: its six-digit county code (GB/T 2260), e.g. 621022.
        #[arg(long)]
        county: Option<String>,
        /// Directory holding ca.pem and ca.key.
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// SPIFFE trust domain (the hub's trust_domain).
        #[arg(long, default_value = doudi::security::certs::DEFAULT_TRUST_DOMAIN)]
        trust_domain: String,
    },
    /// Issue an operator certificate (docs/admin.md) with the CA in --dir: `operator-NAME.pem` and `.key`, URI SAN
    /// spiffe://<trust-domain>/operator/<role>/<name>. E.g. a further security administrator for the two-person rule.
    IssueOperator {
        /// system (configuration, calendar, policy versions, retention), security (access matrix, certificates,
        /// data-key rotation) or audit (reads and verifies the audit; changes nothing).
        #[arg(long)]
        role: String,
        /// The operator's name: 1-40 characters of a-z, 0-9, '_' and '-' (unique across roles).
        #[arg(long)]
        name: String,
        /// Directory holding ca.pem and ca.key.
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// SPIFFE trust domain (the hub's trust_domain).
        #[arg(long, default_value = doudi::security::certs::DEFAULT_TRUST_DOMAIN)]
        trust_domain: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
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
        hub: doudi::client::admin::OperatorArgs,
    },
}

fn main() -> anyhow::Result<()> {
    // Before any thread starts (src/server/memory.rs).
    doudi::server::memory::configure_heap();
    doudi::server::tls::install_crypto_provider();
    let cli = Cli::parse();
    // The demo prints its own report; its hub logs only warnings unless RUST_LOG says otherwise.
    let default_filter = if matches!(
        cli.command,
        Command::Demo(_)
            | Command::Bench(_)
            | Command::Push(_)
            | Command::Get(_)
            | Command::Findings(_)
            | Command::List(_)
            | Command::Export(_)
            | Command::Watch(_)
            | Command::Match(_)
            | Command::Subsidies { .. }
            | Command::Audit { command: AuditCommand::Head(_) }
            | Command::Snapshot { command: SnapshotCommand::Sign(_) }
    ) {
        "warn,sqlx::query=error"
    } else {
        "info,sqlx=warn,h2=warn"
    };
    // `serve` installs its subscriber once its configuration is read (with the OTLP export of `otlp_endpoint`).
    if !matches!(cli.command, Command::Serve { .. }) {
        doudi::server::telemetry::init(cli.log_json, default_filter);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run(cli, default_filter))
}

async fn run(cli: Cli, default_filter: &str) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { listen, database_url, certs_dir, metrics_listen } => {
            let config =
                Config::load(cli.config.as_deref(), &Overrides { listen, database_url, certs_dir, metrics_listen })?;
            // Dropped when the hub has stopped: the spans not yet exported are sent then.
            let _telemetry = doudi::server::telemetry::init_with_otlp(
                cli.log_json,
                default_filter,
                config.otlp_endpoint.as_deref(),
            )?;
            let app = doudi::server::Application::build(&config, doudi::server::shutdown_signal()).await?;
            app.run().await
        }
        Command::Migrate { database_url } => {
            let config = Config::load(cli.config.as_deref(), &Overrides { database_url, ..Default::default() })?;
            let store = doudi::store::Store::open(&config.database_url)
                .await
                .with_context(|| format!("opening {}", config.database_url))?;
            store.migrate().await.with_context(|| format!("migrating {}", config.database_url))?;
            let (applied, _) = store.migration_versions().await?;
            // SQLite: a final checkpoint, so the migrated layout is in the database file itself and not only in its
            // write-ahead log (copying the main file alone must not undo the upgrade).
            store.close().await;
            println!("migrations applied to {}: now at migration {applied}", config.database_url);
            Ok(())
        }
        Command::Config { command: ConfigCommand::Show } => {
            let config = Config::load(cli.config.as_deref(), &Overrides::default())?;
            match &cli.config {
                Some(f) => println!("# effective configuration: defaults <- {} <- DOUDI_* variables", f.display()),
                None => println!("# effective configuration: defaults <- DOUDI_* variables (no --config file)"),
            }
            print!("{}", config.show());
            if std::env::var_os("DOUDI_NEW_DATA_KEY").is_some() {
                println!("# DOUDI_NEW_DATA_KEY (for `doudi keys rotate`) is set: \"{}\"", doudi::config::REDACTED);
            }
            Ok(())
        }
        Command::Demo(args) => doudi::tools::demo::run(args).await,
        Command::Bench(args) => doudi::tools::bench::run(args).await,
        Command::Push(args) => doudi::client::push::run(args).await,
        Command::Get(args) => doudi::client::get::run(args).await,
        Command::Findings(args) => doudi::client::findings::run(args).await,
        Command::List(args) => doudi::client::list::run(args).await,
        Command::Export(args) => doudi::client::export::run(args).await,
        Command::Watch(args) => doudi::client::watch::run(args).await,
        Command::Match(args) => doudi::client::matching::run(args).await,
        Command::Admin(args) => doudi::client::admin::run(args).await,
        Command::Certs { command: CertsCommand::Init { out, trust_domain, force } } => {
            doudi::security::certs::init(&out, &trust_domain, force)
                .with_context(|| format!("writing certificates to {}", out.display()))?;
            println!("certificates written to {}", out.display());
            Ok(())
        }
        Command::Calendar { command } => {
            if let doudi::ops::calendar::CalendarCommand::Add { file, source, correction, hub, .. } = &command
                && let Mode::Hub(hub) = hub.mode("doudi calendar add", true)?
            {
                return doudi::client::operator::calendar_add(&hub, file, source, correction.as_deref()).await;
            }
            let store = open_store(cli.config.as_deref(), command.database_url()).await?;
            let r = doudi::ops::calendar::run(&store, command).await;
            store.close().await;
            r
        }
        Command::Retention { command } => {
            if let Mode::Hub(hub) = command.mode()? {
                return doudi::ops::retention::run_through_hub(&hub, command).await;
            }
            let config = Config::load(
                cli.config.as_deref(),
                &Overrides { database_url: command.database_url(), ..Default::default() },
            )?;
            let store = open_store(cli.config.as_deref(), command.database_url()).await?;
            let r = doudi::ops::retention::run(&store, &config, command).await;
            store.close().await;
            r
        }
        Command::Policy { command } => policy(cli.config.as_deref(), command).await,
        Command::Subsidies { command } => subsidies(cli.config.as_deref(), command).await,
        Command::Snapshot { command } => snapshot(cli.config.as_deref(), command).await,
        Command::Report { command } => report(cli.config.as_deref(), command).await,
        Command::Audit { command: AuditCommand::Head(args) } => doudi::client::audit_head::run(args).await,
        Command::Audit { command: AuditCommand::Verify { database_url, against: Some(file), ca } } => {
            verify_against(cli.config.as_deref(), database_url, &file, ca).await
        }
        Command::Audit { command: AuditCommand::Verify { database_url, against: None, .. } } => {
            let store = open_store(cli.config.as_deref(), database_url).await?;
            let c = store.verify_audit_chain().await;
            store.close().await;
            let c = c?;
            println!("audit events checked: {}", c.checked);
            println!("chain head: {}", hex::encode(c.head));
            // One line to keep elsewhere: every lane's head (lane:seq:hash) and the newest checkpoint.
            println!("lane heads: {}", doudi::domain::audit::format_heads(&c.heads));
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
                    std::process::exit(1);
                }
                Some((seq, why)) => {
                    println!("BROKEN at event {seq} of lane {}: {why}", c.first_broken_lane);
                    std::process::exit(1);
                }
            }
        }
        Command::Certs { command: CertsCommand::AuditSigner { dir, trust_domain, force } } => {
            let cert = doudi::security::certs::add_audit_signer(&dir, &trust_domain, force)
                .with_context(|| format!("issuing the audit signer in {}", dir.display()))?;
            println!(
                "audit signer written: {} ({}); restart the hub to sign with it",
                cert.display(),
                doudi::security::audit_head::signer_spiffe_id(&trust_domain)
            );
            Ok(())
        }
        Command::Certs { command: CertsCommand::IssueAgency { agency, county, dir, trust_domain } } => {
            let cert = doudi::security::certs::add_agency(&dir, &trust_domain, &agency, county.as_deref())
                .with_context(|| format!("issuing {agency}'s certificate in {}", dir.display()))?;
            println!(
                "agency certificate written: {} ({}); hand it, its .key and ca.pem to the agency",
                cert.display(),
                doudi::security::certs::spiffe_id(&trust_domain, &agency, county.as_deref())?
            );
            Ok(())
        }
        Command::Certs { command: CertsCommand::IssueOperator { role, name, dir, trust_domain } } => {
            let r = doudi::domain::admin::Role::parse(&role)
                .with_context(|| format!("--role {role:?}: one of system, security, audit"))?;
            let cert = doudi::security::certs::add_operator(&dir, &trust_domain, r, &name)
                .with_context(|| format!("issuing operator {name} in {}", dir.display()))?;
            println!(
                "operator certificate written: {} (spiffe://{trust_domain}/operator/{role}/{name}); use it with \
                 --operator {name} --certs-dir {}",
                cert.display(),
                dir.display()
            );
            Ok(())
        }
        Command::Certs { command: CertsCommand::Revoke { name, dir, hub } } => {
            let file = if name.ends_with(".pem") { name.clone() } else { format!("{name}.pem") };
            if let Mode::Hub(hub) = hub.mode("doudi certs revoke", false)? {
                return doudi::client::operator::certs_revoke(&hub, &dir.join(&file)).await;
            }
            doudi::security::certs::revoke(&dir, &file)
                .with_context(|| format!("revoking {}", dir.join(&file).display()))?;
            println!("{} revoked; CRL rewritten: {}", dir.join(&file).display(), dir.join("ca.crl").display());
            Ok(())
        }
        Command::Certs { command: CertsCommand::RefreshCrl { dir, hub } } => {
            if let Mode::Hub(hub) = hub.mode("doudi certs refresh-crl", false)? {
                return doudi::client::operator::certs_refresh_crl(&hub).await;
            }
            let n = doudi::security::certs::rebuild_crl(&dir)
                .with_context(|| format!("rewriting {}", dir.join("ca.crl").display()))?;
            println!(
                "CRL rewritten: {} ({n} revoked serials, next update in {} days)",
                dir.join("ca.crl").display(),
                doudi::security::certs::CRL_VALIDITY_DAYS
            );
            Ok(())
        }
        Command::Keys { command: KeysCommand::RequestRotation { reason, hub } } => {
            let loaded = Config::load(cli.config.as_deref(), &Overrides::default())?;
            let new = std::env::var("DOUDI_NEW_DATA_KEY")
                .context("the new data key: set DOUDI_NEW_DATA_KEY (doudi keys generate makes one)")?;
            let Mode::Hub(hub) = hub.mode("doudi keys request-rotation", true)? else {
                anyhow::bail!("a rotation is requested through the hub: give --operator NAME --certs-dir DIR")
            };
            doudi::client::operator::keys_request_rotation(&hub, &new, loaded.crypto_suite, &reason).await
        }
        Command::Keys { command: KeysCommand::Rotate { database_url, batch, max_batches, without_approval } } => {
            use secrecy::ExposeSecret as _;
            let loaded = Config::load(
                cli.config.as_deref(),
                &Overrides { database_url: database_url.clone(), ..Default::default() },
            )?;
            let old = loaded.data_key.as_ref().context("the current data key: set DOUDI_DATA_KEY")?;
            let new = std::env::var("DOUDI_NEW_DATA_KEY")
                .context("the new data key: set DOUDI_NEW_DATA_KEY (doudi keys generate makes one)")?;
            let store = open_store(cli.config.as_deref(), database_url).await?;
            let gate = rotation_gate(&store, loaded.crypto_suite, &new, without_approval.as_deref()).await;
            let gate = match gate {
                Ok(g) => g,
                Err(e) => {
                    store.close().await;
                    return Err(e);
                }
            };
            let r = doudi::security::rotation::rotate(
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
        Command::Keys { command: KeysCommand::Generate } => {
            println!("{}", doudi::security::crypto::Keys::generate_base64());
            Ok(())
        }
    }
}

/// The approved request (two-person rule, docs/admin.md) that lets `doudi keys rotate` move to `new_key`: its id, or
/// `None` on the break-glass path (`--without-approval REASON`). Refused when neither is there.
async fn rotation_gate(
    store: &doudi::store::Store,
    suite: doudi::security::crypto::CryptoSuite,
    new_key: &str,
    without_approval: Option<&str>,
) -> anyhow::Result<Option<i64>> {
    use doudi::domain::admin::ChangeKind;
    let new_check =
        doudi::security::crypto::Keys::from_base64_with(new_key, suite).context("new data key")?.check_value();
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
    store: &doudi::store::Store,
    suite: doudi::security::crypto::CryptoSuite,
    old_key: &str,
    new_key: &str,
    gate: Option<i64>,
    without_approval: Option<&str>,
) -> anyhow::Result<()> {
    use doudi::domain::admin::{Actor, AdminEvent, state_hash};
    let check = |k: &str| -> anyhow::Result<String> {
        Ok(hex::encode(doudi::security::crypto::Keys::from_base64_with(k, suite)?.check_value()))
    };
    let (before, after) = (state_hash(&[&check(old_key)?]), state_hash(&[&check(new_key)?]));
    let actor = Actor::direct_from_env();
    match gate {
        Some(id) => {
            let audit = |c: &doudi::domain::admin::StoredChange| {
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

/// `doudi audit verify --against FILE`: the saved signed head's signature (CA, trust domain of the configuration),
/// then the chain and every saved lane head ([`doudi::security::audit_head::check_against`]). Exits 1 naming the lane and the
/// position when the chain no longer holds the head.
async fn verify_against(
    config: Option<&std::path::Path>,
    database_url: Option<String>,
    file: &std::path::Path,
    ca: Option<PathBuf>,
) -> anyhow::Result<()> {
    let loaded = Config::load(config, &Overrides { database_url: database_url.clone(), ..Default::default() })?;
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let head = doudi::security::audit_head::SignedHead::from_json(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let ca_path = ca.unwrap_or_else(|| loaded.ca_path());
    let ca_pem = std::fs::read(&ca_path).with_context(|| format!("reading {}", ca_path.display()))?;
    println!("saved head: {}", doudi::client::audit_head::describe(&head));
    if let Err(e) = doudi::security::audit_head::verify(&head, &ca_pem, Some(&loaded.trust_domain)) {
        println!("REFUSED {}: {e} (CA {})", file.display(), ca_path.display());
        std::process::exit(1);
    }
    println!("signature verified with {}", ca_path.display());
    let store = open_store(config, database_url).await?;
    let r = doudi::security::audit_head::check_against(&store, &head).await;
    store.close().await;
    let r = r?;
    println!("audit events checked: {}", r.chain.checked);
    println!("lane heads: {}", doudi::domain::audit::format_heads(&r.chain.heads));
    match r.problem {
        None => {
            println!(
                "valid: the chain verifies and every lane still holds the saved head (nothing cut off or rewritten since)"
            );
            Ok(())
        }
        Some((lane, seq, why)) => {
            println!("BROKEN against {}: lane {lane}, event {seq}: {why}", file.display());
            std::process::exit(1);
        }
    }
}

async fn open_store(
    config: Option<&std::path::Path>,
    database_url: Option<String>,
) -> anyhow::Result<doudi::store::Store> {
    let config = Config::load(config, &Overrides { database_url, ..Default::default() })?;
    if let Some(file) = doudi::store::sqlite_file(&config.database_url)
        && !file.exists()
    {
        anyhow::bail!(
            "no database at {} ({}): operator commands work on an existing hub database; check the path, or create \
             it with `doudi migrate --database-url …`",
            file.display(),
            config.database_url
        );
    }
    let store = doudi::store::Store::open(&config.database_url)
        .await
        .with_context(|| format!("opening {}", config.database_url))?;
    // Operator commands never migrate (docs/operations.md §11): a check such as `audit verify` run by a newer release
    // must not rewrite the tables under the hubs of the older one, nor turn a backup into one its release cannot open.
    let (applied, known) = store
        .migration_versions()
        .await
        .with_context(|| format!("reading the migrations of {}", config.database_url))?;
    if applied < known {
        store.close().await;
        anyhow::bail!(
            "{} is at migration {applied}; this release needs migration {known}. Operator commands do not migrate: \
             stop the hubs of the older release, then run `doudi migrate --database-url …` (docs/operations.md §11)",
            config.database_url
        );
    }
    if applied > known {
        store.close().await;
        anyhow::bail!(
            "{} is at migration {applied}, made by a newer release than this one (which knows up to {known}): use \
             that release's binary",
            config.database_url
        );
    }
    Ok(store)
}

async fn subsidies(config: Option<&std::path::Path>, command: SubsidiesCommand) -> anyhow::Result<()> {
    use doudi::client::subsidies as s;
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
                    .add_fixed_campaign(doudi::grpc::pb::AddFixedCampaignRequest { campaign_json: text, source })
                    .await
                    .map_err(|s| doudi::client::admin::failed("AddFixedCampaign", s))?
                    .into_inner();
                println!("added campaign {} for {} (audited)", r.code, r.month);
                return Ok(());
            }
            let store = open_store(config, database_url).await?;
            let actor = doudi::domain::admin::Actor::direct_from_env();
            let added = doudi::hub::subsidy::add_fixed_campaign(&store, &actor, &text, &source).await;
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
                    .add_linkage_rule(doudi::grpc::pb::AddLinkageRuleRequest { rule_json: text, source })
                    .await
                    .map_err(|s| doudi::client::admin::failed("AddLinkageRule", s))?
                    .into_inner();
                println!("added linkage rule {} from index month {} (audited)", r.version, r.effective_from);
                return Ok(());
            }
            let store = open_store(config, database_url).await?;
            let actor = doudi::domain::admin::Actor::direct_from_env();
            let added = doudi::hub::subsidy::add_linkage_rule(&store, &actor, &text, &source).await;
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

async fn policy(config: Option<&std::path::Path>, command: PolicyCommand) -> anyhow::Result<()> {
    use doudi::domain::medical::PolicyParams;
    match command {
        PolicyCommand::Add { file, source, example, database_url, hub } => {
            if let Mode::Hub(hub) = hub.mode("doudi policy add", true)? {
                return doudi::client::operator::policy_add(&hub, &file, &source, example).await;
            }
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let params: PolicyParams = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a valid policy version", file.display()))?;
            for w in params.national_floor_warnings() {
                eprintln!("warning: {}: {}", w.field, w.reason);
            }
            let store = open_store(config, database_url).await?;
            let actor = doudi::domain::admin::Actor::direct_from_env();
            let added = doudi::hub::admin::add_policy_version(&store, &actor, &text, &source, example).await;
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
                return doudi::client::operator::policy_show(&hub, json).await;
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

async fn snapshot(config: Option<&std::path::Path>, command: SnapshotCommand) -> anyhow::Result<()> {
    match command {
        SnapshotCommand::Sign(args) => doudi::client::countersign::run_sign(args).await,
        SnapshotCommand::Verify { quarter, database_url, offline, ca } => {
            let q = quarter
                .map(|quarter| {
                    quarter
                        .parse::<doudi::domain::calendar::Quarter>()
                        .map_err(|e| anyhow::anyhow!("quarter {quarter:?}: {e} (expected YYYYQn)"))
                })
                .transpose()?;
            let loaded = Config::load(config, &Overrides { database_url: database_url.clone(), ..Default::default() })?;
            let ca_given = ca.is_some();
            let ca_path = ca.unwrap_or_else(|| loaded.ca_path());
            if let Some(dir) = offline {
                if let Some(q) = q {
                    let m = doudi::client::manifest::Manifest::read(&dir)?;
                    let exported = m.snapshot.map(|s| s.quarter).unwrap_or_default();
                    if exported != q.to_string() {
                        anyhow::bail!("{} holds the snapshot of {exported:?}, not {q}", dir.display());
                    }
                }
                return doudi::client::countersign::run_offline(&dir, &ca_path);
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
                Some(p) => doudi::domain::policy::AccessPolicy::from_toml(
                    &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
                )?,
                None => doudi::domain::policy::AccessPolicy::default(),
            };
            let store = open_store(config, database_url).await?;
            let checked = async {
                let Some(v) = store.verify_snapshot(q).await? else { return Ok(None) };
                let sigs = match &ca_pem {
                    Some(ca_pem) => Some(
                        doudi::hub::countersign::signature_report(
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
                Ok::<_, doudi::store::StoreError>(Some((v, sigs)))
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
            for l in doudi::client::countersign::signature_lines(&sigs) {
                println!("{l}");
            }
            let invalid =
                sigs.iter().any(|(_, s)| matches!(s, doudi::domain::countersign::SignatureStatus::Invalid(_)));
            if v.differences.is_empty() && !invalid {
                println!("valid: every section, the content hash and the chain link recompute to what was stored");
                if ca_pem.is_some() {
                    println!("and every signature present checks with {}", ca_path.display());
                }
                Ok(())
            } else {
                std::process::exit(1);
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

fn write_out(bytes: &[u8], format: doudi::report::Format, output: Option<&std::path::Path>) -> anyhow::Result<()> {
    match output {
        Some(p) => {
            std::fs::write(p, bytes).with_context(|| format!("writing {}", p.display()))?;
            eprintln!("written to {}", p.display());
            Ok(())
        }
        None if matches!(format, doudi::report::Format::Xlsx) => {
            anyhow::bail!("XLSX is binary: give an output file with -o FILE.xlsx")
        }
        None => {
            use std::io::Write as _;
            std::io::stdout().write_all(bytes)?;
            Ok(())
        }
    }
}

async fn report(config: Option<&std::path::Path>, command: ReportCommand) -> anyhow::Result<()> {
    match command {
        ReportCommand::Quarterly { quarter, format, output, database_url, link_findings } => {
            let q: doudi::domain::calendar::Quarter =
                quarter.parse().map_err(|e| anyhow::anyhow!("quarter {quarter:?}: {e} (expected YYYYQn)"))?;
            if link_findings && format != doudi::report::Format::Html {
                anyhow::bail!("--link-findings: only with --format html");
            }
            let store = open_store(config, database_url).await?;
            let summary = doudi::hub::snapshot::quarterly_summary(&store, q).await;
            store.close().await;
            let summary = summary?;
            let bytes = if link_findings {
                doudi::report::render_quarterly_html(&summary, &doudi::report::FindingsLinks::beside(&summary))?
            } else {
                doudi::report::render_quarterly(&summary, format)?
            };
            write_out(&bytes, format, output.as_deref())
        }
        ReportCommand::Monthly { month, format, output, database_url } => {
            let m: doudi::domain::calendar::Month =
                month.parse().map_err(|e| anyhow::anyhow!("month {month:?}: {e} (expected YYYY-MM)"))?;
            let loaded = Config::load(config, &Overrides { database_url: database_url.clone(), ..Default::default() })?;
            let store = open_store(config, database_url).await?;
            let hub = doudi::hub::Hub::for_reports(store.clone(), &loaded)?;
            let r = hub.monthly_report_data(m).await;
            store.close().await;
            let bytes = doudi::report::render_monthly(&r?, format)?;
            write_out(&bytes, format, output.as_deref())
        }
    }
}
