//! `doudi push FILE`: send an agency's CSV or JSON Lines export to the hub over StreamFacts (docs/file-exchange.md).
//!
//! The whole file is read and parsed first (rows that cannot be read are listed, not sent). The readable rows go
//! in batches of `--batch` rows; each batch is one StreamFacts call of messages of up to [`MESSAGE_FACTS`] facts,
//! and its response is the batch's acknowledgement: after it the rejected rows of the batch are appended to the
//! rejects file and `FILE.push-state` records the last acknowledged row, so `--resume` can skip what was done.
//! Pushing the same rows again is harmless anyway: the hub answers DUPLICATE for content it already holds.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::ConnectArgs;
use super::format::{self, FileFormat, ParsedFile, TextEncoding};
use super::manifest::{MANIFEST, Manifest, sha256_hex};
use crate::client::Clients;
use crate::domain::fact::PayloadKind;
use crate::grpc::pb;

/// Facts per StreamFacts message.
pub const MESSAGE_FACTS: usize = 1_000;

#[derive(clap::Args, Debug, Clone)]
pub struct PushArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// A CSV or JSON Lines file of one payload kind, or a directory written by `doudi export` (its manifest.json
    /// is checked first: SHA-256 and row count of every file; on any difference nothing is sent).
    pub file: PathBuf,
    /// File format [default: from the extension: .csv, .jsonl].
    #[arg(long, value_enum)]
    pub format: Option<FileFormat>,
    /// Text encoding of the file (GBK is what Excel and WPS write for "CSV" on Chinese Windows).
    #[arg(long, value_enum, default_value = "utf-8")]
    pub encoding: TextEncoding,
    /// Payload kind of every row (assistance, employment, …) when the file has no `kind` column.
    #[arg(long)]
    pub kind: Option<String>,
    /// Where to list the rows not stored [default: FILE.rejects.csv].
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    /// Rows per acknowledged batch (one StreamFacts call).
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub batch: u64,
    /// Skip the rows up to the last acknowledged one recorded in FILE.push-state by an interrupted run.
    #[arg(long)]
    pub resume: bool,
    /// Stop after this many acknowledged batches (to rehearse an interruption).
    #[arg(long, hide = true)]
    pub stop_after_batches: Option<u64>,
}

/// Facts by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub accepted: u64,
    pub new_version: u64,
    pub duplicate: u64,
    pub stale: u64,
    pub rejected: u64,
}

impl Counts {
    fn add_pb(&mut self, c: &pb::OutcomeCounts) {
        self.accepted += c.accepted;
        self.new_version += c.new_version;
        self.duplicate += c.duplicate;
        self.stale += c.stale;
        self.rejected += c.rejected;
    }

    pub fn add(&mut self, c: &Counts) {
        self.accepted += c.accepted;
        self.new_version += c.new_version;
        self.duplicate += c.duplicate;
        self.stale += c.stale;
        self.rejected += c.rejected;
    }

    /// Facts the hub answered for.
    pub fn total(&self) -> u64 {
        self.accepted + self.new_version + self.duplicate + self.stale + self.rejected
    }
}

/// What one file's push did.
#[derive(Debug, Clone)]
pub struct FileReport {
    pub path: PathBuf,
    pub kind: Option<PayloadKind>,
    /// Data rows in the file.
    pub rows: u64,
    /// This run: rows that could not be read (listed in the rejects file, not sent).
    pub unreadable: u64,
    /// This run: outcomes of the rows sent.
    pub counts: Counts,
    /// This run: acknowledged batches.
    pub batches: u64,
    /// With --resume: the last row acknowledged by the earlier runs (rows up to it were skipped).
    pub resumed_after_row: Option<u64>,
    /// With --resume: what the earlier runs recorded.
    pub earlier: Counts,
    pub earlier_unreadable: u64,
    /// Stopped by --stop-after-batches before the end (FILE.push-state is kept).
    pub stopped_early: bool,
    pub rejects: PathBuf,
    pub elapsed: Duration,
}

/// What a push did, file by file (one file, or each file of an export directory).
#[derive(Debug, Clone, Default)]
pub struct PushReport {
    pub files: Vec<FileReport>,
}

/// Written after each acknowledged batch; removed when the file is done.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct PushState {
    input_sha256: String,
    last_row: u64,
    batches: u64,
    counts: Counts,
    unreadable: u64,
    /// Length of the rejects file at the acknowledgement (a resumed run cuts it back to this).
    rejects_bytes: u64,
}

/// `FILE.push-state`.
pub fn state_path(file: &Path) -> PathBuf {
    suffixed(file, ".push-state")
}

/// `FILE.rejects.csv`.
pub fn default_rejects_path(file: &Path) -> PathBuf {
    suffixed(file, ".rejects.csv")
}

fn suffixed(file: &Path, suffix: &str) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The columns of the rejects file.
pub const REJECTS_HEADER: [&str; 5] = ["row", "fact_id", "field", "reason", "source"];

/// One line of the rejects file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reject {
    row: u64,
    fact_id: String,
    field: String,
    reason: String,
    /// "file": could not be read, not sent; "hub": sent and REJECTED.
    source: &'static str,
}

/// A read and parsed input file.
struct Loaded {
    path: PathBuf,
    sha256: String,
    parsed: ParsedFile,
    encoding: TextEncoding,
}

fn load(
    path: &Path,
    format: Option<FileFormat>,
    encoding: TextEncoding,
    kind: Option<PayloadKind>,
) -> anyhow::Result<Loaded> {
    let format = match format.or_else(|| FileFormat::from_path(path)) {
        Some(f) => f,
        None => anyhow::bail!("{}: give --format csv or --format jsonl (the extension does not say)", path.display()),
    };
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = encoding.decode(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}; nothing was sent", path.display()))?;
    let parsed =
        format::parse(&text, format, kind).map_err(|e| anyhow::anyhow!("{}: {e}; nothing was sent", path.display()))?;
    Ok(Loaded { path: path.to_owned(), sha256: sha256_hex(&bytes), parsed, encoding })
}

/// Push a file or an export directory; returns what happened (the CLI prints it with [`print_report`]).
pub async fn push(args: &PushArgs) -> anyhow::Result<PushReport> {
    let kind = args.kind.as_deref().map(format::parse_kind).transpose().map_err(|e| anyhow::anyhow!("--kind: {e}"))?;
    let mut loaded = Vec::new();
    if args.file.is_dir() {
        if args.rejects.is_some() {
            anyhow::bail!("--rejects: a directory's files each get FILE.rejects.csv");
        }
        let m = Manifest::read(&args.file)?;
        let Some(format) = m.format.filter(|_| m.snapshot.is_none()) else {
            anyhow::bail!(
                "{} holds a snapshot's aggregates (doudi export --snapshot), not facts: nothing to push",
                args.file.display()
            );
        };
        let mut problems = Vec::new();
        for (f, path) in m.files.iter().zip(m.paths(&args.file)) {
            let fkind = format::parse_kind(&f.kind).map_err(|e| anyhow::anyhow!("{MANIFEST}: {}: {e}", f.name))?;
            let l = match load(&path, Some(format), TextEncoding::Utf8, Some(fkind)) {
                Ok(l) => l,
                Err(e) => {
                    problems.push(format!("{e:#}"));
                    continue;
                }
            };
            if l.sha256 != f.sha256 {
                problems.push(format!("{}: SHA-256 is {} but the manifest says {}", f.name, l.sha256, f.sha256));
            }
            let rows = l.parsed.rows.len() as u64;
            if Some(rows) != f.rows {
                let said = f.rows.map(|r| r.to_string()).unwrap_or_else(|| "nothing".into());
                problems.push(format!("{}: {rows} rows but the manifest says {said}", f.name));
            }
            loaded.push(l);
        }
        if !problems.is_empty() {
            anyhow::bail!(
                "{} does not match its {MANIFEST}; nothing was sent:\n  {}",
                args.file.display(),
                problems.join("\n  ")
            );
        }
    } else {
        loaded.push(load(&args.file, args.format, args.encoding, kind)?);
    }
    let mut clients = args.connect.connect().await?;
    let mut report = PushReport::default();
    let mut batches_left = args.stop_after_batches;
    for l in loaded {
        let rejects = match &args.rejects {
            Some(r) => r.clone(),
            None => default_rejects_path(&l.path),
        };
        let r = push_file(&mut clients, l, &rejects, args.batch as usize, args.resume, &mut batches_left).await?;
        let stopped = r.stopped_early;
        report.files.push(r);
        if stopped {
            break;
        }
    }
    Ok(report)
}

/// Map the hub's field path (`facts[3].assistance.monthly_benefit`) to the file's column (`monthly_benefit`).
fn column_of(field: &str, kind: Option<PayloadKind>) -> String {
    let f = match field.strip_prefix("facts[").and_then(|r| r.split_once("].")) {
        Some((_, rest)) => rest,
        None => field,
    };
    match kind.and_then(|k| f.strip_prefix(k.as_str()).and_then(|r| r.strip_prefix('.'))) {
        Some(col) => col.to_owned(),
        None => f.to_owned(),
    }
}

fn write_rejects(out: &mut std::fs::File, encoding: TextEncoding, lines: &[Reject]) -> anyhow::Result<u64> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in lines {
        w.write_record([r.row.to_string().as_str(), &r.fact_id, &r.field, &r.reason, r.source])?;
    }
    let text = String::from_utf8(w.into_inner()?)?;
    let bytes = encoding.encode(&text);
    out.write_all(&bytes)?;
    out.flush()?;
    Ok(bytes.len() as u64)
}

fn write_state(path: &Path, state: &PushState) -> anyhow::Result<()> {
    let tmp = suffixed(path, ".tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(state)?).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Worth retrying: the hub's details say so with a `google.rpc.RetryInfo` (docs/errors.md: a quota, a concurrency
/// limit, a shutdown, the database unavailable; not a message over the size limit, which would fail again). From a
/// hub without details (no `ErrorInfo`): every UNAVAILABLE and RESOURCE_EXHAUSTED, as before.
fn is_transient(s: &tonic::Status) -> bool {
    use tonic_types::StatusExt;
    let d = s.get_error_details();
    if d.error_info().is_some() {
        return d.retry_info().is_some();
    }
    matches!(s.code(), tonic::Code::Unavailable | tonic::Code::ResourceExhausted)
}

/// The wait before a retry: `RetryInfo.retry_delay`, else the `retry-after-ms` trailer, else 1 s; within 50 ms to
/// 30 s.
fn retry_after(s: &tonic::Status) -> Duration {
    use tonic_types::StatusExt;
    let ms = s.get_details_retry_info().and_then(|r| r.retry_delay).map(|d| d.as_millis() as u64).or_else(|| {
        s.metadata().get("retry-after-ms").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok())
    });
    Duration::from_millis(ms.unwrap_or(1_000).clamp(50, 30_000))
}

/// Send one batch as one StreamFacts call; returns the counts and the rejected facts (index in the batch, field,
/// reason), complete even when the hub's list was cut at 1,000 (then the batch is sent again with PushFacts,
/// which answers every fact; a second send changes nothing on the hub).
async fn send_batch(
    clients: &mut Clients,
    facts: &[pb::Fact],
) -> Result<(pb::OutcomeCounts, Vec<(usize, String, String)>), tonic::Status> {
    let mut attempt = 0;
    let resp = loop {
        let msgs: Vec<pb::PushFactsRequest> =
            facts.chunks(MESSAGE_FACTS).map(|c| pb::PushFactsRequest { facts: c.to_vec() }).collect();
        match clients.exchange.stream_facts(futures::stream::iter(msgs)).await {
            Ok(r) => break r.into_inner(),
            Err(s) if is_transient(&s) && attempt < 5 => {
                attempt += 1;
                tokio::time::sleep(retry_after(&s)).await;
            }
            Err(s) => return Err(s),
        }
    };
    let counts = resp.counts.unwrap_or_default();
    let mut rejected: Vec<(usize, String, String)> =
        resp.results.into_iter().map(|r| (r.index as usize, r.field, r.reason)).collect();
    if resp.results_truncated {
        rejected.clear();
        for (n, chunk) in facts.chunks(MESSAGE_FACTS).enumerate() {
            let r = clients.exchange.push_facts(pb::PushFactsRequest { facts: chunk.to_vec() }).await?.into_inner();
            for x in r.results {
                if x.outcome == pb::FactOutcome::Rejected as i32 {
                    rejected.push((n * MESSAGE_FACTS + x.index as usize, x.field, x.reason));
                }
            }
        }
    }
    Ok((counts, rejected))
}

async fn push_file(
    clients: &mut Clients,
    l: Loaded,
    rejects_path: &Path,
    batch: usize,
    resume: bool,
    batches_left: &mut Option<u64>,
) -> anyhow::Result<FileReport> {
    let t = Instant::now();
    let path = l.path.clone();
    let kind = l.parsed.kind;
    let state_file = state_path(&path);
    let rows = l.parsed.rows.len() as u64;

    // Where to start.
    let earlier: Option<PushState> = if resume && state_file.exists() {
        let s: PushState = serde_json::from_slice(&std::fs::read(&state_file)?)
            .with_context(|| format!("{} is not a push state; remove it to start over", state_file.display()))?;
        if s.input_sha256 != l.sha256 {
            anyhow::bail!(
                "{} changed since {} was written; remove the state file to push the file from the start",
                path.display(),
                state_file.display()
            );
        }
        Some(s)
    } else {
        if resume {
            eprintln!("{}: no {} found: pushing from the first row", path.display(), state_file.display());
        }
        let _ = std::fs::remove_file(&state_file);
        None
    };
    let mut out = match &earlier {
        Some(s) => {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(rejects_path)
                .with_context(|| format!("opening {} to resume", rejects_path.display()))?;
            f.set_len(s.rejects_bytes)?;
            let mut f = f;
            std::io::Seek::seek(&mut f, std::io::SeekFrom::End(0))?;
            f
        }
        None => {
            let mut f =
                std::fs::File::create(rejects_path).with_context(|| format!("writing {}", rejects_path.display()))?;
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(REJECTS_HEADER)?;
            f.write_all(&l.encoding.encode(std::str::from_utf8(&w.into_inner()?)?))?;
            f
        }
    };
    let start_after = earlier.as_ref().map(|s| s.last_row).unwrap_or(0);
    let mut state =
        earlier.clone().unwrap_or_else(|| PushState { input_sha256: l.sha256.clone(), ..Default::default() });
    state.rejects_bytes = out.metadata()?.len();

    // What to send and what to list.
    let mut sendable: Vec<(u64, String, pb::Fact)> = Vec::new();
    let mut unreadable: Vec<Reject> = Vec::new();
    for r in l.parsed.rows.into_iter().filter(|r| r.row > start_after) {
        match r.fact {
            Ok(f) => sendable.push((r.row, r.fact_id, f)),
            Err(e) => unreadable.push(Reject {
                row: r.row,
                fact_id: r.fact_id,
                field: e.field,
                reason: e.reason,
                source: "file",
            }),
        }
    }
    let bar = progress_bar(sendable.len() as u64, &path);
    let mut counts = Counts::default();
    let mut unreadable_listed = 0u64;
    let mut batches = 0u64;
    let mut stopped_early = false;
    let mut pending_unreadable = unreadable.into_iter().peekable();
    for chunk in sendable.chunks(batch) {
        let facts: Vec<pb::Fact> = chunk.iter().map(|(_, _, f)| f.clone()).collect();
        let first_row = chunk[0].0;
        let last_row = chunk[chunk.len() - 1].0;
        let (c, rejected) = send_batch(clients, &facts).await.map_err(|s| {
            bar.abandon();
            anyhow::anyhow!(
                "{}: the batch of rows {first_row}–{last_row} was not acknowledged: {}; rows through {} are \
                 (recorded in {}): run the same command with --resume to go on",
                path.display(),
                super::status_text(&s),
                state.last_row,
                state_file.display()
            )
        })?;
        let mut lines: Vec<Reject> = rejected
            .into_iter()
            .filter_map(|(i, field, reason)| {
                let (row, fact_id, _) = chunk.get(i)?;
                Some(Reject {
                    row: *row,
                    fact_id: fact_id.clone(),
                    field: column_of(&field, kind),
                    reason,
                    source: "hub",
                })
            })
            .collect();
        while let Some(u) = pending_unreadable.next_if(|u| u.row <= last_row) {
            unreadable_listed += 1;
            lines.push(u);
        }
        lines.sort_by_key(|r| r.row);
        state.rejects_bytes += write_rejects(&mut out, l.encoding, &lines)?;
        let mut this = Counts::default();
        this.add_pb(&c);
        counts.add(&this);
        state.counts.add(&this);
        state.unreadable += lines.iter().filter(|r| r.source == "file").count() as u64;
        state.last_row = last_row;
        state.batches += 1;
        batches += 1;
        write_state(&state_file, &state)?;
        bar.inc(chunk.len() as u64);
        if let Some(left) = batches_left.as_mut() {
            *left = left.saturating_sub(1);
            if *left == 0 {
                stopped_early = true;
                break;
            }
        }
    }
    if !stopped_early {
        let rest: Vec<Reject> = pending_unreadable.collect();
        unreadable_listed += rest.len() as u64;
        write_rejects(&mut out, l.encoding, &rest)?;
        let _ = std::fs::remove_file(&state_file);
    }
    bar.finish_and_clear();
    let (earlier_counts, earlier_unreadable) = earlier.as_ref().map(|s| (s.counts, s.unreadable)).unwrap_or_default();
    Ok(FileReport {
        path,
        kind,
        rows,
        unreadable: unreadable_listed,
        counts,
        batches,
        resumed_after_row: earlier.map(|s| s.last_row),
        earlier: earlier_counts,
        earlier_unreadable,
        stopped_early,
        rejects: rejects_path.to_owned(),
        elapsed: t.elapsed(),
    })
}

/// A progress bar on standard error when it is a terminal; hidden otherwise.
fn progress_bar(total: u64, path: &Path) -> indicatif::ProgressBar {
    use std::io::IsTerminal as _;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} rows  {per_sec}  eta {eta}")
    {
        bar.set_style(style);
    }
    bar.set_message(path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    bar
}

/// The summary printed by `doudi push`.
pub fn render_report(r: &PushReport) -> String {
    let mut s = String::new();
    for f in &r.files {
        let kind = f.kind.map(|k| k.as_str()).unwrap_or("?");
        s += &format!("{}: {} rows of {kind} facts\n", f.path.display(), f.rows);
        if let Some(row) = f.resumed_after_row {
            s += &format!(
                "  resumed after row {row}: earlier runs sent {} (accepted {}, new_version {}, duplicate {}, stale {}, \
                 rejected {}) and found {} unreadable\n",
                f.earlier.total(),
                f.earlier.accepted,
                f.earlier.new_version,
                f.earlier.duplicate,
                f.earlier.stale,
                f.earlier.rejected,
                f.earlier_unreadable
            );
        }
        s += &format!(
            "  sent {} in {} batch{} ({:.1} s)\n",
            f.counts.total(),
            f.batches,
            if f.batches == 1 { "" } else { "es" },
            f.elapsed.as_secs_f64()
        );
        for (name, n) in [
            ("accepted", f.counts.accepted),
            ("new_version", f.counts.new_version),
            ("duplicate", f.counts.duplicate),
            ("stale", f.counts.stale),
            ("rejected", f.counts.rejected),
        ] {
            s += &format!("  {name:<12}{n:>9}\n");
        }
        s += &format!("  {:<12}{:>9}  (not sent)\n", "unreadable", f.unreadable);
        let listed = f.counts.rejected + f.unreadable;
        s += &format!("  rows not stored: {} ({listed} listed this run)\n", f.rejects.display());
        if f.stopped_early {
            s += &format!(
                "  stopped early: run again with --resume to push the rest ({} keeps the place)\n",
                state_path(&f.path).display()
            );
        }
    }
    s
}

/// `doudi push`.
pub async fn run(args: PushArgs) -> anyhow::Result<()> {
    let r = push(&args).await?;
    print!("{}", render_report(&r));
    Ok(())
}
