//! The hostile-input suite at full size against a real `doudi serve` process (run by `scripts/hostile.sh`).
//!
//! After a warm-up and a client process killed mid-stream (which writes data), the scenarios of `doudi::tools::hostile`
//! run in rounds. After each scenario the hub's resident memory (VmRSS of `--pid`) is read from `/proc`, the hub is
//! asked WhoAmI and VerifyAuditChain, and its person count is read back through ListRecipients' `total_size` (one
//! person per fact here). The verdict: the hub still serves, its chain verifies, no data changed except by whole
//! batches, and its RSS after the last round is within `--rss-slack-mib` of its RSS after the first (memory that
//! plateaus is a working set; memory that grows every round is a leak).
//!
//! `--child-stream` is the victim of "client killed mid-stream": this same binary, started as a child process that
//! streams facts until the parent kills it with SIGKILL.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use doudi::client::{ClientIdentity, Clients, connect};
use doudi::grpc::pb;
use doudi::tools::hostile::{self, Outcome, Target};
use tokio_stream::wrappers::ReceiverStream;

#[derive(Parser)]
struct Args {
    /// The hub, e.g. https://localhost:50051.
    #[arg(long)]
    server: String,
    /// Certificate directory of `doudi certs init` (ca.pem, civil_affairs.pem/.key, education.pem/.key).
    #[arg(long)]
    certs_dir: PathBuf,
    /// The hub's process id (memory is read from /proc/PID/status).
    #[arg(long)]
    pid: Option<u32>,
    /// Multiplies every scenario's size (1 = 10,000 streams, 2,000 cancelled requests, 200 stalled handshakes,
    /// 2,000 refused connections).
    #[arg(long, default_value_t = 1)]
    scale: usize,
    /// The agency whose certificate was revoked before the run (`doudi certs revoke`); empty = skip that flood.
    #[arg(long, default_value = "education")]
    revoked: String,
    /// Rounds of the scenarios (memory after the last must be within `--rss-slack-mib` of memory after the first).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// How far the hub's RSS may grow from the end of round 1 to the end of the last round, MiB.
    #[arg(long, default_value_t = 16)]
    rss_slack_mib: u64,
    /// Internal: stream facts until killed.
    #[arg(long, hide = true)]
    child_stream: bool,
}

fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Facts of `n` distinct persons (rural dibao, county 621022), ids `prefix-i`.
fn facts(prefix: &str, from: usize, n: usize) -> Vec<pb::Fact> {
    (from..from + n)
        .map(|i| {
            // One person per index: born (i / 1,000) days after 1940-01-01, sequence i % 1,000.
            let birth = chrono::NaiveDate::from_ymd_opt(1940, 1, 1).expect("valid date")
                + chrono::Days::new((i / 1_000) as u64);
            let person = doudi::domain::id_number::IdNumber::from_parts("621022", birth, (i % 1_000) as u16);
            pb::Fact {
                fact_id: format!("{prefix}-{i}"),
                source_version: 1,
                id_number: person.as_str().to_owned(),
                division_code: "621022101203".into(),
                valid_from: "2023-01-01".into(),
                payload: Some(pb::fact::Payload::Assistance(pb::Assistance {
                    program: pb::Program::Dibao as i32,
                    residence: pb::Residence::Rural as i32,
                    rural_class: Some(2),
                    household_id: format!("HH-{i}"),
                    monthly_benefit: "442.00".into(),
                    status: pb::AssistanceStatus::Active as i32,
                    ..Default::default()
                })),
                ..Default::default()
            }
        })
        .collect()
}

struct Probe {
    target: Target,
    me: ClientIdentity,
    pid: Option<u32>,
}

impl Probe {
    /// (serving and chain valid, stored fact count as listed, RSS KiB)
    async fn check(&self) -> anyhow::Result<(bool, i64, Option<u64>)> {
        let mut c = Clients::new(connect(&self.target.server, &self.target.domain, &self.me).await?, 64 << 20);
        let serving = c.audit.who_am_i(pb::WhoAmIRequest {}).await.is_ok();
        let chain = c.audit.verify_audit_chain(pb::VerifyAuditChainRequest {}).await?.into_inner();
        let total = c
            .exchange
            .list_recipients(pb::ListRecipientsRequest {
                division_code: String::new(),
                as_of: "2023-06-30".into(),
                page_size: 1,
                purpose: "hostile suite check".into(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .total_size;
        // Let freed memory go back before reading RSS.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok((serving && chain.valid, total, rss_kib(self.pid)))
    }
}

fn line(out: &Outcome, check: &(bool, i64, Option<u64>)) {
    println!(
        "{out}; after: serving+chain {}, persons listed {}, hub RSS {}",
        check.0,
        check.1,
        check.2.map_or("?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    doudi::server::tls::install_crypto_provider();
    let args = Args::parse();
    let me = ClientIdentity::from_dir(&args.certs_dir, "civil_affairs")?;
    let port = args.server.rsplit(':').next().context("--server needs a port")?.parse::<u16>()?;
    let target =
        Target { server: args.server.clone(), addr: ([127, 0, 0, 1], port).into(), domain: "localhost".into() };

    if args.child_stream {
        let mut c = Clients::new(connect(&target.server, &target.domain, &me).await?, 64 << 20);
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tokio::spawn(async move {
            // Persons of their own (the warm-up uses indices from 0).
            let mut from = 10_000_000;
            loop {
                if tx.send(pb::PushFactsRequest { facts: facts("KILL", from, 500) }).await.is_err() {
                    break;
                }
                from += 500;
            }
        });
        c.exchange.stream_facts(ReceiverStream::new(rx)).await?;
        return Ok(());
    }

    let probe = Probe { target: target.clone(), me: me.clone(), pid: args.pid };
    let s = args.scale.max(1);
    // Warm-up: the hub's caches, pools and allocator arenas reach their working size first.
    let warm = hostile::cancelled_burst(
        &target,
        &me,
        (0..200).map(|b| facts("WARM", b * 5, 5)).collect(),
        32,
        Duration::from_secs(5),
    )
    .await?;
    let start = probe.check().await?;
    line(&warm, &start);
    let mut ok = start.0;

    // A real process killed with SIGKILL in the middle of a stream (it writes data, so it runs before the rounds
    // whose memory is compared).
    let started = std::time::Instant::now();
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["--server", &args.server, "--certs-dir"])
        .arg(&args.certs_dir)
        .arg("--child-stream")
        .spawn()?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    child.kill()?;
    child.wait()?;
    let out = Outcome {
        name: "client process killed mid-stream (SIGKILL)",
        attempts: 1,
        elapsed: started.elapsed(),
        ..Default::default()
    };
    let c = probe.check().await?;
    line(&out, &c);
    let left = c.1 - start.1;
    println!("  the killed stream left {left} persons (one per fact; whole batches of 500: {})", left % 500 == 0);
    ok &= c.0 && left % 500 == 0;
    let mut last = c;

    // The same scenarios, round after round: memory must plateau (a leak grows every round).
    let mut round_end = Vec::new();
    for round in 0..args.rounds.max(1) {
        println!("round {}", round + 1);
        let out = hostile::streams_opened_and_dropped(&target, &me, 10_000 * s, 16).await?;
        let c = probe.check().await?;
        line(&out, &c);
        ok &= c.0 && c.1 == last.1;
        last = c;

        let from = 20_000_000 + round * 10_000 * s * 5;
        let out = hostile::cancelled_burst(
            &target,
            &me,
            (0..2_000 * s).map(|b| facts("CXL", from + b * 5, 5)).collect(),
            64,
            Duration::from_millis(20),
        )
        .await?;
        let c = probe.check().await?;
        line(&out, &c);
        let left = c.1 - last.1;
        println!("  cancelled requests left {left} persons (whole batches of 5: {})", left % 5 == 0);
        ok &= c.0 && left % 5 == 0;
        last = c;

        let out = hostile::stalled_handshakes(&target, 200 * s, Duration::from_secs(30)).await?;
        let c = probe.check().await?;
        line(&out, &c);
        ok &= c.0 && c.1 == last.1 && out.completed == out.attempts;
        last = c;

        let other = doudi::security::certs::Ca::generate("an attacker's CA")?.issue_client(
            doudi::security::certs::DEFAULT_TRUST_DOMAIN,
            "civil_affairs",
            None,
        )?;
        let foreign = ClientIdentity {
            ca_pem: me.ca_pem.clone(),
            cert_pem: other.cert_pem.into_bytes(),
            key_pem: other.key_pem.into_bytes(),
        };
        let out = hostile::certificate_flood(&target, &foreign, 1_000 * s, 64).await?;
        let c = probe.check().await?;
        line(&out, &c);
        ok &= c.0 && c.1 == last.1 && out.refused == out.attempts;
        last = c;

        if !args.revoked.is_empty() {
            let revoked = ClientIdentity::from_dir(&args.certs_dir, &args.revoked)?;
            let out = hostile::certificate_flood(&target, &revoked, 1_000 * s, 64).await?;
            let c = probe.check().await?;
            line(&out, &c);
            ok &= c.0 && c.1 == last.1 && out.refused == out.attempts;
            last = c;
        }
        round_end.push(last.2);
    }

    let mib = |k: u64| k as f64 / 1024.0;
    if let (Some(Some(first)), Some(Some(end))) = (round_end.first(), round_end.last()) {
        let grew = end.saturating_sub(*first) / 1024;
        println!(
            "hub RSS: {:.1} MiB after warm-up, {:.1} MiB after round 1, {:.1} MiB after round {} (+{grew} MiB over the later rounds; allowed {})",
            start.2.map_or(0.0, mib),
            mib(*first),
            mib(*end),
            round_end.len(),
            args.rss_slack_mib
        );
        ok &= grew <= args.rss_slack_mib;
    }
    println!("{}", if ok { "HOSTILE SUITE PASSED" } else { "HOSTILE SUITE FAILED" });
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}
