//! `doudi config show` (issue 9): the effective configuration of the example file, secrets redacted, and a
//! clear refusal naming the key of an invalid value.

use std::process::Command;

fn doudi() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_doudi"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    // Only what each test sets.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("DOUDI_") {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn config_show_prints_the_example_with_every_secret_redacted() {
    let key = doudi::security::crypto::Keys::generate_base64();
    let new_key = doudi::security::crypto::Keys::generate_base64();
    let out = doudi()
        .args(["config", "show", "--config", "doudi.example.toml"])
        .env("DOUDI_DATA_KEY", &key)
        .env("DOUDI_NEW_DATA_KEY", &new_key)
        .env("DOUDI_MAX_BATCH", "700")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    assert!(!stdout.contains(&key) && !stderr.contains(&key), "the data key is never printed");
    assert!(!stdout.contains(&new_key) && !stderr.contains(&new_key), "nor the new one");
    let table: toml::Table = toml::from_str(&stdout).unwrap();
    assert_eq!(table["data_key"].as_str(), Some("<redacted>"));
    assert_eq!(table["max_batch"].as_integer(), Some(700), "the environment overrides the file");
    assert_eq!(table["listen"].as_str(), Some("127.0.0.1:50051"), "the example's value");
    assert!(stdout.contains("DOUDI_NEW_DATA_KEY") && stdout.contains("# metrics_listen: not set"), "{stdout}");
}

#[test]
fn config_show_refuses_an_invalid_value_naming_the_key() {
    let out = doudi().args(["config", "show"]).env("DOUDI_CRYPTO_SUITE", "rot13").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("crypto_suite (DOUDI_CRYPTO_SUITE)") && stderr.contains("rot13"), "{stderr}");
}

/// Issue 23 item 2: `doudi serve --database-url sqlite::memory:` used to start and then fail concurrent requests with
/// "database table is locked"; it now refuses to start, naming the key and suggesting a database file.
#[test]
fn serve_refuses_an_in_memory_sqlite_database() {
    let out = doudi()
        .args(["serve", "--database-url", "sqlite::memory:"])
        .env("DOUDI_DATA_KEY", doudi::security::crypto::Keys::generate_base64())
        .output()
        .unwrap();
    assert!(!out.status.success(), "the hub must not start");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("database_url") && stderr.contains("in-memory"), "{stderr}");
    assert!(stderr.contains("sqlite://doudi.db"), "suggests a file: {stderr}");
}

/// Every command of the binary prints its help. In a debug build clap checks each command's definition when it is
/// built, and a flag defined twice panics (exit 101): `findings page` had its `--agency` filter beside the connection's
/// `--agency`; the filter is `--agency-to-act` now. The walk follows each "Commands:" list from `doudi --help` down;
/// the root lists 22 commands (serve … match), several with subcommands of their own.
#[test]
fn every_command_prints_its_help() {
    let exe = env!("CARGO_BIN_EXE_doudi");
    let mut todo: Vec<Vec<String>> = vec![Vec::new()];
    let mut walked = 0;
    while let Some(path) = todo.pop() {
        let out = Command::new(exe).args(&path).arg("--help").output().expect("doudi runs");
        let shown = format!("doudi {} --help", path.join(" "));
        assert!(out.status.success(), "{shown}: {:?}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
        walked += 1;
        let text = String::from_utf8(out.stdout).expect("UTF-8 help");
        let mut commands = false;
        for line in text.lines() {
            if line.starts_with("Commands:") {
                commands = true;
            } else if commands && line.starts_with("  ") && !line.starts_with("   ") {
                let name = line.split_whitespace().next().expect("a command name");
                if name != "help" {
                    todo.push(path.iter().cloned().chain([name.to_owned()]).collect());
                }
            } else if !line.starts_with("   ") {
                commands = false;
            }
        }
    }
    assert!(walked > 1 + 22, "walked {walked} commands: the root, its 22 and their subcommands");
}
