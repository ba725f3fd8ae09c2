//! `doudi watch [--from CURSOR] [--json]`: follow the hub's change feed (WatchChanges; docs/change-feed.md), one line
//! per change with its cursor. When the hub ends the watch with "resume from cursor N" (ABORTED: too slow;
//! UNAVAILABLE: shutting down) the command reconnects from N by itself; on any other error it stops and says which
//! `--from` resumes.

use std::io::Write;
use std::time::Duration;

use anyhow::Context as _;
use tonic::Code;

use super::ConnectArgs;
use crate::domain::fact::PayloadKind;
use crate::grpc::pb;

#[derive(clap::Args, Debug, Clone)]
pub struct WatchArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Show the changes after this cursor (the last one printed by an earlier run); 0 = from the oldest retained
    /// change [default: from now].
    #[arg(long = "from")]
    pub from: Option<i64>,
    /// Only this payload kind (repeatable), e.g. assistance, employment [default: every kind you may read].
    #[arg(long = "kind")]
    pub kinds: Vec<String>,
    /// Only this GB/T 2260 division (prefix: county, township or village).
    #[arg(long)]
    pub division: Option<String>,
    /// Why you watch (written to the hub's audit log when the watch starts).
    #[arg(long, default_value = "")]
    pub purpose: String,
    /// One JSON object per line (heartbeats included, as {"cursor":N,"heartbeat":true}) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Stop after this many changes (for scripts; default: until interrupted).
    #[arg(long)]
    pub limit: Option<u64>,
}

/// What a watch ended with: the last cursor reached (resume with `--from` it) and the changes printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchEnd {
    pub cursor: Option<i64>,
    pub changes: u64,
}

/// One change (or, with `json`, a heartbeat) as the line `doudi watch` prints; `None` for a heartbeat in text mode.
pub fn render(c: &pb::Change, json: bool) -> Option<String> {
    if json {
        let mut m = serde_json::Map::new();
        m.insert("cursor".into(), c.cursor.into());
        if c.heartbeat {
            m.insert("heartbeat".into(), true.into());
            return Some(serde_json::Value::Object(m).to_string());
        }
        m.insert("type".into(), change_type(c).into());
        m.insert("agency".into(), c.agency.clone().into());
        m.insert("kind".into(), kind_name(c.kind).into());
        m.insert("id_number_masked".into(), c.id_number_masked.clone().into());
        if c.superseded_version > 0 {
            m.insert("superseded_version".into(), c.superseded_version.into());
        }
        if let Some(f) = &c.fact {
            let fact = if f.payload.is_some() {
                super::view::fact_to_json(f)
            } else {
                serde_json::json!({ "fact_id": f.fact_id, "source_version": f.source_version })
            };
            m.insert("fact".into(), fact);
        }
        return Some(serde_json::Value::Object(m).to_string());
    }
    if c.heartbeat {
        return None;
    }
    let f = c.fact.clone().unwrap_or_default();
    let mut line = format!(
        "{} {} {} {} {} {} v{}",
        c.cursor,
        change_type(c),
        c.agency,
        kind_name(c.kind),
        c.id_number_masked,
        f.fact_id,
        f.source_version
    );
    if c.superseded_version > 0 {
        line.push_str(&format!(" (replaces v{})", c.superseded_version));
    }
    if f.payload.is_some() {
        line.push_str(&format!(" {} {}–{}", f.division_code, f.valid_from, f.valid_to));
        if let serde_json::Value::Object(m) = super::view::fact_to_json(&f) {
            for (k, v) in m {
                let skip = matches!(
                    k.as_str(),
                    "kind"
                        | "fact_id"
                        | "source_version"
                        | "id_number"
                        | "division_code"
                        | "valid_from"
                        | "valid_to"
                        | "agency"
                        | "recorded_at"
                        | "omitted_fields"
                );
                match v {
                    serde_json::Value::String(s) if !skip && !s.is_empty() => line.push_str(&format!(" {k}={s}")),
                    _ => {}
                }
            }
        }
    }
    Some(line)
}

fn change_type(c: &pb::Change) -> &'static str {
    match pb::ChangeType::try_from(c.r#type) {
        Ok(pb::ChangeType::Created) => "CREATED",
        Ok(pb::ChangeType::NewVersion) => "NEW_VERSION",
        Ok(pb::ChangeType::LeftScope) => "LEFT_SCOPE",
        _ => "UNKNOWN",
    }
}

fn kind_name(k: i32) -> &'static str {
    match pb::PayloadKind::try_from(k) {
        Ok(pb::PayloadKind::Assistance) => "assistance",
        Ok(pb::PayloadKind::Employment) => "employment",
        Ok(pb::PayloadKind::Pension) => "pension",
        Ok(pb::PayloadKind::Student) => "student",
        Ok(pb::PayloadKind::EducationAid) => "education_aid",
        Ok(pb::PayloadKind::MedicalInsurance) => "medical_insurance",
        Ok(pb::PayloadKind::Disability) => "disability",
        Ok(pb::PayloadKind::DisabilitySubsidy) => "disability_subsidy",
        _ => "unknown",
    }
}

/// The cursor named by a status that ends a watch (`doudi-resume-cursor`), if any.
fn resume_cursor(s: &tonic::Status) -> Option<i64> {
    s.metadata().get(crate::grpc::watch::RESUME_CURSOR)?.to_str().ok()?.parse().ok()
}

/// Watch, writing one line per change to `out` (and notes to stderr), until `--limit` changes or an error that is
/// not a "resume from cursor" status. Reconnects from the named cursor after ABORTED or UNAVAILABLE.
pub async fn watch(args: &WatchArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<WatchEnd> {
    let kinds = args
        .kinds
        .iter()
        .map(|k| {
            PayloadKind::parse(k.trim())
                .map(|k| crate::grpc::convert::payload_kind_out(k) as i32)
                .with_context(|| format!("--kind: {k:?} is not a payload kind (assistance, employment, …)"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut end = WatchEnd { cursor: args.from, changes: 0 };
    let mut retries = 0u32;
    loop {
        let mut c = args.connect.connect().await?;
        let request = pb::WatchChangesRequest {
            after_cursor: end.cursor,
            kinds: kinds.clone(),
            division_code: args.division.clone().unwrap_or_default(),
            purpose: args.purpose.clone(),
        };
        let status = match c.exchange.watch_changes(request).await {
            Err(s) => s,
            Ok(r) => {
                let mut stream = r.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(change)) => {
                            if end.cursor.is_none() && change.heartbeat {
                                eprintln!("watching from cursor {}", change.cursor);
                            }
                            end.cursor = Some(change.cursor);
                            retries = 0;
                            if let Some(line) = render(&change, args.json) {
                                writeln!(out, "{line}")?;
                                out.flush()?;
                            }
                            if !change.heartbeat {
                                end.changes += 1;
                                if args.limit.is_some_and(|l| end.changes >= l) {
                                    return Ok(end);
                                }
                            }
                        }
                        Ok(None) => break tonic::Status::unavailable("the hub ended the watch without a status"),
                        Err(s) => break s,
                    }
                }
            }
        };
        let resumable = matches!(status.code(), Code::Aborted | Code::Unavailable);
        if let Some(c) = resume_cursor(&status) {
            end.cursor = Some(c);
        }
        let from = end.cursor.map_or_else(|| "(none yet)".to_owned(), |c| c.to_string());
        if !resumable || retries >= 5 {
            anyhow::bail!("WatchChanges: {}; resume with --from {from}", super::status_text(&status));
        }
        retries += 1;
        eprintln!("{}; reconnecting from cursor {from}", super::status_text(&status));
        tokio::time::sleep(Duration::from_millis(500 * u64::from(retries))).await;
    }
}

/// `doudi watch`.
pub async fn run(args: WatchArgs) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout();
    let end = watch(&args, &mut stdout).await?;
    if let Some(c) = end.cursor {
        eprintln!("{} changes; resume with --from {c}", end.changes);
    }
    Ok(())
}
