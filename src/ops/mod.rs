//! The operator commands of the `doudi` binary (README, docs/operations.md): `serve`, `migrate`, `config`, `certs`,
//! `keys`, `audit`, `snapshot`, `report`, `calendar`, `retention`, `subsidies`, `policy`. Each module is one command
//! group: its clap type and an async `run`; `src/main.rs` only parses, dispatches and turns the outcome into an exit
//! status. Most work on the hub's database directly (first start, disaster recovery, and the actions that have no
//! administrative RPC yet): each opens the store from the configuration ([`open_store`]), does one thing, and closes
//! it. The agency commands are in [`crate::client`].

use std::path::Path;

use anyhow::Context as _;

use crate::config::{Config, Overrides};
use crate::store::Store;

pub mod audit;
pub mod calendar;
pub mod certs;
pub mod config;
pub mod keys;
pub mod migrate;
pub mod policy;
pub mod report;
pub mod retention;
pub mod serve;
pub mod snapshot;
pub mod subsidies;

/// A check (`doudi audit verify`, `doudi snapshot verify`) found a problem and printed it: the binary exits with
/// status 1 without a further error message.
#[derive(Debug, thiserror::Error)]
#[error("the check failed (its findings are printed above)")]
pub struct CheckFailed;

/// The direct, break-glass path (docs/operations.md) as the login running this process: `$USER`, `unknown` without
/// one. The domain's [`Actor::direct`] takes the name; reading the environment is the operator command's.
pub fn direct_actor() -> crate::domain::admin::Actor {
    crate::domain::admin::Actor::direct(&std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned()))
}

/// The hub's database of the configuration (`config` file, `--database-url` over it), opened without migrating:
/// refused when a SQLite file is missing or the database is at another migration than this release's.
pub async fn open_store(config: Option<&Path>, database_url: Option<String>) -> anyhow::Result<Store> {
    let config = Config::load(config, &Overrides { database_url, ..Default::default() })?;
    if let Some(file) = crate::store::sqlite_file(&config.database_url)
        && !file.exists()
    {
        anyhow::bail!(
            "no database at {} ({}): operator commands work on an existing hub database; check the path, or create \
             it with `doudi migrate --database-url …`",
            file.display(),
            config.database_url
        );
    }
    let store = Store::open(&config.database_url).await.with_context(|| format!("opening {}", config.database_url))?;
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
