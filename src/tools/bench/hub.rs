//! The hub under test as a child process: `doudi serve` of this very binary (or the one given, e.g. a test's
//! `CARGO_BIN_EXE_doudi`) on a fresh temporary SQLite database (or a given PostgreSQL database) and a fresh PKI
//! (`doudi certs init`), with a new data key and the per-agency quotas off, listening on a free loopback port. The
//! load runs in the calling process, so the hub's peak memory (`VmHWM` of `/proc/PID/status`) is the hub's alone.
//! [`ChildHub::replicas`] starts several hubs on one PostgreSQL database with one PKI and one data key.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;

use crate::client::{ClientIdentity, Clients, connect};
use crate::security::certs;
use crate::security::crypto::Keys;

/// Largest gRPC message the bench's hubs and clients accept (a StreamFacts message of 10,000 facts fits).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// A running `doudi serve` child; killed when dropped.
pub struct ChildHub {
    child: Child,
    pub addr: SocketAddr,
    pub certs_dir: PathBuf,
    /// The hub's database URL.
    pub database_url: String,
    /// The data key (base64) the hub was started with.
    data_key: String,
    _dir: std::sync::Arc<tempfile::TempDir>,
}

impl ChildHub {
    /// Start `exe serve` on a fresh SQLite database and wait until it serves (migrations done, health SERVING).
    pub fn start(exe: &Path) -> anyhow::Result<ChildHub> {
        let dir = std::sync::Arc::new(tempfile::Builder::new().prefix("doudi-bench-hub-").tempdir()?);
        let url = format!("sqlite://{}", dir.path().join("hub.db").display());
        let certs_dir = dir.path().join("certs");
        certs::init(&certs_dir, certs::DEFAULT_TRUST_DOMAIN, true).context("making the bench PKI")?;
        ChildHub::spawn(exe, dir, certs_dir, &url, &Keys::generate_base64())
    }

    /// Start `n` replicas of `exe serve` on one database (`database_url`, normally PostgreSQL; it must exist),
    /// sharing one PKI and one data key, all at once (their migrations meet on the database's migration lock).
    pub fn replicas(exe: &Path, database_url: &str, n: usize) -> anyhow::Result<Vec<ChildHub>> {
        let dir = std::sync::Arc::new(tempfile::Builder::new().prefix("doudi-bench-replicas-").tempdir()?);
        let certs_dir = dir.path().join("certs");
        certs::init(&certs_dir, certs::DEFAULT_TRUST_DOMAIN, true).context("making the bench PKI")?;
        let key = Keys::generate_base64();
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let (exe, dir, certs_dir, url, key) =
                    (exe.to_owned(), dir.clone(), certs_dir.clone(), database_url.to_owned(), key.clone());
                std::thread::spawn(move || ChildHub::spawn(&exe, dir, certs_dir, &url, &key))
            })
            .collect();
        handles.into_iter().map(|h| h.join().map_err(|_| anyhow::anyhow!("replica start panicked"))?).collect()
    }

    fn spawn(
        exe: &Path,
        dir: std::sync::Arc<tempfile::TempDir>,
        certs_dir: PathBuf,
        database_url: &str,
        data_key: &str,
    ) -> anyhow::Result<ChildHub> {
        let mut child = Command::new(exe)
            .args(["--log-json", "serve", "--listen", "127.0.0.1:0", "--database-url", database_url])
            .arg("--certs-dir")
            .arg(&certs_dir)
            .env_remove("DOUDI_CONFIG")
            .env("DOUDI_DATA_KEY", data_key)
            .env("DOUDI_RATE_PER_AGENCY", "0")
            .env("DOUDI_MAX_STREAMS_PER_AGENCY", "0")
            .env("DOUDI_MAX_MESSAGE_BYTES", MAX_MESSAGE_BYTES.to_string())
            .env("DOUDI_CRL_POLL_SECS", "0")
            .env("DOUDI_METRICS_LISTEN", "")
            .env("RUST_LOG", "warn,sqlx=error,doudi::server=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {} serve", exe.display()))?;
        let stderr = child.stderr.take().context("hub stderr")?;
        let rx = serving_address(stderr);
        let addr = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait()?;
                anyhow::bail!("the hub did not start serving within 120 s ({status})");
            }
        };
        Ok(ChildHub {
            child,
            addr,
            certs_dir,
            database_url: database_url.to_owned(),
            data_key: data_key.to_owned(),
            _dir: dir,
        })
    }

    /// Start one more replica like this one: same database, PKI and data key (e.g. to restart a killed replica).
    pub fn another(&self, exe: &Path) -> anyhow::Result<ChildHub> {
        ChildHub::spawn(exe, self._dir.clone(), self.certs_dir.clone(), &self.database_url, &self.data_key)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `https://localhost:PORT` (the server certificate names localhost).
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// A client connection (one HTTP/2 connection over mTLS) as `agency`.
    pub async fn client(&self, agency: &str) -> anyhow::Result<Clients> {
        let id = ClientIdentity::from_dir(&self.certs_dir, agency)?;
        Ok(Clients::new(connect(&self.url(), "localhost", &id).await?, MAX_MESSAGE_BYTES))
    }

    /// The hub's peak resident set so far (`VmHWM`), bytes.
    pub fn peak_rss(&self) -> anyhow::Result<u64> {
        status_kib(self.pid(), "VmHWM:").map(|k| k * 1024)
    }

    /// CPU time the hub has used so far (user + system, all threads: `utime` + `stime` of `/proc/PID/stat`), seconds.
    pub fn cpu_secs(&self) -> anyhow::Result<f64> {
        cpu_secs_of(&format!("/proc/{}/stat", self.pid()))
    }

    /// The hub's resident set now (`VmRSS`), bytes.
    pub fn rss(&self) -> anyhow::Result<u64> {
        status_kib(self.pid(), "VmRSS:").map(|k| k * 1024)
    }

    /// Stop the hub (SIGKILL: its database is thrown away with the temporary directory).
    pub fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.child.kill();
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for ChildHub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `kB` field of `/proc/PID/status`.
/// User + system CPU seconds of the process whose `/proc/…/stat` is `path` (fields 14 and 15, in clock ticks of
/// 1/100 s, the kernel's `USER_HZ` on Linux).
pub fn cpu_secs_of(path: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count fields after its closing one.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).with_context(|| format!("no ')' in {path}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        fields.get(i).and_then(|v| v.parse::<f64>().ok()).with_context(|| format!("field {} of {path}", i + 3))
    };
    // After ')': field 3 (state) is index 0, so utime (14) is index 11 and stime (15) index 12.
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// Reads the log (`--log-json`) of a `doudi serve` child: the "doudi serving" line's address is sent on the returned
/// channel; every other line is passed on to this process's stderr, and the pipe is drained to its end so the hub
/// never blocks on it. Also used by the end-to-end tests that kill and restart a hub process.
pub fn serving_address(stderr: std::process::ChildStderr) -> std::sync::mpsc::Receiver<SocketAddr> {
    let (tx, rx) = std::sync::mpsc::channel::<SocketAddr>();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            let serving = v["fields"]["message"].as_str().is_some_and(|m| m.starts_with("doudi serving"));
            match v["fields"]["addr"].as_str().and_then(|a| a.parse().ok()) {
                Some(addr) if serving => {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
                _ => eprintln!("hub: {line}"),
            }
        }
    });
    rx
}
