//! `doudi`: the hub's one binary. Thin: crypto provider, telemetry, configuration, dispatch.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use doudi::config::{Config, Overrides};

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
        /// SQLite database, e.g. sqlite://doudi.db [default: sqlite://doudi.db].
        #[arg(long)]
        database_url: Option<String>,
        /// Directory with ca.pem, server.pem, server.key and optionally ca.crl [default: certs-example, the
        /// demo PKI whose keys are public: use your own for anything real].
        #[arg(long)]
        certs_dir: Option<PathBuf>,
    },
    /// Apply database migrations and exit.
    Migrate {
        /// SQLite database, e.g. sqlite://doudi.db [default: sqlite://doudi.db].
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Run the whole exchange on a fresh database with a synthetic Qingyang population.
    Demo(doudi::demo::DemoArgs),
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
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Make a CA, a server certificate (localhost, 127.0.0.1, ::1), one client certificate per agency,
    /// the 环县 (621022) county civil-affairs office, a revoked certificate and the CRL listing it.
    Init {
        /// Output directory.
        #[arg(long, default_value = "certs")]
        out: PathBuf,
        /// SPIFFE trust domain written into the agency certificates.
        #[arg(long, default_value = doudi::certs::DEFAULT_TRUST_DOMAIN)]
        trust_domain: String,
        /// Replace an existing CA.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a new random data key (standard base64) for DOUDI_DATA_KEY.
    Generate,
}

fn main() -> anyhow::Result<()> {
    doudi::tls::install_crypto_provider();
    let cli = Cli::parse();
    // The demo prints its own report; its hub logs only warnings unless RUST_LOG says otherwise.
    let default_filter = if matches!(cli.command, Command::Demo(_)) { "warn" } else { "info,sqlx=warn,h2=warn" };
    doudi::telemetry::init(cli.log_json, default_filter);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { listen, database_url, certs_dir } => {
            let config = Config::load(cli.config.as_deref(), &Overrides { listen, database_url, certs_dir })?;
            let app = doudi::server::Application::build(&config, doudi::server::shutdown_signal()).await?;
            app.run().await
        }
        Command::Migrate { database_url } => {
            let config = Config::load(cli.config.as_deref(), &Overrides { database_url, ..Default::default() })?;
            let store = doudi::store::Store::open(&config.database_url)
                .await
                .with_context(|| format!("opening {}", config.database_url))?;
            store.migrate().await.with_context(|| format!("migrating {}", config.database_url))?;
            println!("migrations applied to {}", config.database_url);
            Ok(())
        }
        Command::Demo(args) => doudi::demo::run(args).await,
        Command::Certs { command: CertsCommand::Init { out, trust_domain, force } } => {
            doudi::certs::init(&out, &trust_domain, force)
                .with_context(|| format!("writing certificates to {}", out.display()))?;
            println!("certificates written to {}", out.display());
            Ok(())
        }
        Command::Keys { command: KeysCommand::Generate } => {
            println!("{}", doudi::crypto::Keys::generate_base64());
            Ok(())
        }
    }
}
