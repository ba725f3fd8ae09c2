//! `doudi migrate`: apply the database migrations and exit (the only operator command that migrates;
//! docs/operations.md §11).

use std::path::Path;

use anyhow::Context as _;

use crate::config::{Config, Overrides};

/// `doudi migrate …`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// Database: sqlite://PATH or postgres://USER@HOST:PORT/DB [default: sqlite://doudi.db].
    #[arg(long)]
    pub database_url: Option<String>,
}

/// Open the configured database, migrate it to this release's layout, close it.
pub async fn run(config: Option<&Path>, args: MigrateArgs) -> anyhow::Result<()> {
    let config = Config::load(config, &Overrides { database_url: args.database_url, ..Default::default() })?;
    let store = crate::store::Store::open(&config.database_url)
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
