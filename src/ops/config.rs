//! `doudi config show`: the effective configuration (defaults ← `--config FILE` ← `DOUDI_*` variables;
//! doudi.example.toml lists every key).

use std::path::Path;

use clap::Subcommand;

use crate::config::{Config, Overrides};

/// `doudi config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration of `serve` as TOML, secrets (data key, database password) shown as
    /// "<redacted>"; exits with status 1 naming the key if a value is invalid.
    Show,
}

/// Print the effective configuration of `serve` as TOML, secrets redacted.
pub fn run(config: Option<&Path>, command: ConfigCommand) -> anyhow::Result<()> {
    let ConfigCommand::Show = command;
    let loaded = Config::load(config, &Overrides::default())?;
    match config {
        Some(f) => println!("# effective configuration: defaults <- {} <- DOUDI_* variables", f.display()),
        None => println!("# effective configuration: defaults <- DOUDI_* variables (no --config file)"),
    }
    print!("{}", loaded.show());
    if std::env::var_os("DOUDI_NEW_DATA_KEY").is_some() {
        println!("# DOUDI_NEW_DATA_KEY (for `doudi keys rotate`) is set: \"{}\"", crate::config::REDACTED);
    }
    Ok(())
}
