//! `doudi serve`: run the hub (gRPC over mutual TLS) with the configuration read from defaults, the `--config` file,
//! `DOUDI_*` variables and these flags ([`crate::server::Application`]).

use std::path::{Path, PathBuf};

use crate::config::{Config, Overrides};

/// `doudi serve …`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:50051].
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Database: sqlite://PATH or postgres://USER@HOST:PORT/DB [default: sqlite://doudi.db].
    #[arg(long)]
    pub database_url: Option<String>,
    /// Directory with ca.pem, server.pem, server.key and optionally ca.crl [default: certs-example, the
    /// demo PKI whose keys are public: use your own for anything real].
    #[arg(long)]
    pub certs_dir: Option<PathBuf>,
    /// Serve Prometheus metrics (GET /metrics, plain HTTP) on this address, e.g. 127.0.0.1:9464 [default: off].
    #[arg(long)]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// Load the configuration, install the log subscriber (with the OTLP export of `otlp_endpoint`), and serve until a
/// shutdown signal.
pub async fn run(config: Option<&Path>, log_json: bool, default_filter: &str, args: ServeArgs) -> anyhow::Result<()> {
    let ServeArgs { listen, database_url, certs_dir, metrics_listen } = args;
    let config = Config::load(config, &Overrides { listen, database_url, certs_dir, metrics_listen })?;
    // Dropped when the hub has stopped: the spans not yet exported are sent then.
    let _telemetry =
        crate::server::telemetry::init_with_otlp(log_json, default_filter, config.otlp_endpoint.as_deref())?;
    let app = crate::server::Application::build(&config, crate::server::shutdown_signal()).await?;
    app.run().await
}
