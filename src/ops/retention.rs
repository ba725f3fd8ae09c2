//! `doudi retention show|set|hold|release|purge` (issue 20 item 3, docs/retention.md): retention periods as data, legal
//! holds, and the resumable, audited purge. Operator commands on the hub's database for now; issue 20 item 1 (the
//! Admin service, separated administrator roles) will route them through `doudi.v1.Admin`. Every change they make is
//! an audit event in the same transaction.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::Subcommand;

use crate::domain::calendar::Quarter;
use crate::domain::retention::{RecordKind, check_period, cutoff};
use crate::security::crypto::PersonKey;
use crate::store::{AuditRecord, HoldTarget, NewHold, Store, StoredHold};

/// `doudi retention …`.
#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Print the retention period of every kind of record (with its source and who set it) and every legal hold.
    Show {
        /// Database (with --direct-database; `show` reads it without): sqlite://PATH or postgres://USER@HOST:PORT/DB
        /// [default: sqlite://doudi.db].
        #[arg(long)]
        database_url: Option<String>,
        /// Through the hub as a system administrator (--operator), or on the database (--direct-database).
        #[command(flatten)]
        hub: crate::client::admin::OperatorArgs,
    },
    /// Set the retention period of one kind of record (audit_persons, change_log, fact_version, settlement), in days,
    /// with its source. The audit may not go below 180 days (《网络安全法》第二十一条). Audited (before and after).
    Set {
        /// The kind of record.
        kind: String,
        /// The period in days.
        days: i64,
        /// Where the period comes from (a law, a standard, a decision), e.g. "庆阳市民政局档案管理规定 (2026)".
        #[arg(long)]
        source: String,
        /// Database (with --direct-database; `show` reads it without): sqlite://PATH or postgres://USER@HOST:PORT/DB
        /// [default: sqlite://doudi.db].
        #[arg(long)]
        database_url: Option<String>,
        /// Through the hub as a system administrator (--operator), or on the database (--direct-database).
        #[command(flatten)]
        hub: crate::client::admin::OperatorArgs,
    },
    /// Place a legal hold on a person (by ID number, stored only as the hub's person key; needs the data key) or on a
    /// quarter (e.g. 2023Q2): their records are never purged while it is in force. Audited.
    Hold {
        /// The person's ID number (18 characters).
        #[arg(long, conflicts_with = "quarter", required_unless_present = "quarter")]
        person: Option<String>,
        /// The quarter, YYYYQn.
        #[arg(long)]
        quarter: Option<String>,
        /// Why (a case number, a court order).
        #[arg(long)]
        reason: String,
        /// Database (with --direct-database; `show` reads it without): sqlite://PATH or postgres://USER@HOST:PORT/DB
        /// [default: sqlite://doudi.db].
        #[arg(long)]
        database_url: Option<String>,
        /// Through the hub as a system administrator (--operator), or on the database (--direct-database).
        #[command(flatten)]
        hub: crate::client::admin::OperatorArgs,
    },
    /// Release a legal hold by its id (`doudi retention show` lists them). The hold is kept, released. Audited.
    Release {
        /// The hold's id.
        id: i64,
        /// Why it is released.
        #[arg(long)]
        reason: String,
        /// Database (with --direct-database; `show` reads it without): sqlite://PATH or postgres://USER@HOST:PORT/DB
        /// [default: sqlite://doudi.db].
        #[arg(long)]
        database_url: Option<String>,
        /// Through the hub as a system administrator (--operator), or on the database (--direct-database).
        #[command(flatten)]
        hub: crate::client::admin::OperatorArgs,
    },
    /// Purge what is past its retention period and not held: who each old audit event looked at, old changes of the
    /// change log, the payload of old superseded fact versions (their content hashes stay). Works in chunks, each
    /// its own transaction with its audit event: interrupted, run it again to finish. With --dry-run, only counts.
    Purge {
        /// Count what would be purged now, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Records purged per transaction.
        #[arg(long, default_value_t = DEFAULT_CHUNK)]
        chunk: usize,
        /// Stop after this many chunks in all (to rehearse an interruption).
        #[arg(long, hide = true)]
        max_chunks: Option<usize>,
        /// Database (with --direct-database; `show` reads it without): sqlite://PATH or postgres://USER@HOST:PORT/DB
        /// [default: sqlite://doudi.db].
        #[arg(long)]
        database_url: Option<String>,
        /// Through the hub as a system administrator (--operator), or on the database (--direct-database).
        #[command(flatten)]
        hub: crate::client::admin::OperatorArgs,
    },
}

impl RetentionCommand {
    /// Through the hub or on the database ([`crate::client::admin::OperatorArgs::mode`]; `show` only reads).
    pub fn mode(&self) -> anyhow::Result<crate::client::admin::Mode> {
        match self {
            RetentionCommand::Show { hub, .. } => hub.mode("doudi retention show", false),
            RetentionCommand::Set { hub, .. } => hub.mode("doudi retention set", true),
            RetentionCommand::Hold { hub, .. } => hub.mode("doudi retention hold", true),
            RetentionCommand::Release { hub, .. } => hub.mode("doudi retention release", true),
            RetentionCommand::Purge { hub, .. } => hub.mode("doudi retention purge", true),
        }
    }
}

/// Run one retention command through the hub's Admin service as `hub`'s operator (docs/admin.md).
pub async fn run_through_hub(
    hub: &crate::client::admin::OperatorArgs,
    command: RetentionCommand,
) -> anyhow::Result<()> {
    use crate::client::operator as op;
    match command {
        RetentionCommand::Show { .. } => op::retention_show(hub).await,
        RetentionCommand::Set { kind, days, source, .. } => op::retention_set(hub, &kind, days, &source).await,
        RetentionCommand::Hold { person, quarter, reason, .. } => {
            op::retention_hold(hub, person.as_deref(), quarter.as_deref(), &reason).await
        }
        RetentionCommand::Release { id, reason, .. } => op::retention_release(hub, id, &reason).await,
        RetentionCommand::Purge { dry_run, chunk, max_chunks, .. } => {
            op::retention_purge(hub, dry_run, chunk, max_chunks).await
        }
    }
}

/// Records purged per transaction by default.
pub const DEFAULT_CHUNK: usize = 500;

impl RetentionCommand {
    /// The `--database-url` given, if any.
    pub fn database_url(&self) -> Option<String> {
        match self {
            RetentionCommand::Show { database_url, .. }
            | RetentionCommand::Set { database_url, .. }
            | RetentionCommand::Hold { database_url, .. }
            | RetentionCommand::Release { database_url, .. }
            | RetentionCommand::Purge { database_url, .. } => database_url.clone(),
        }
    }
}

/// The agency of the retention commands' audit events (as `doudi calendar add`'s).
pub use crate::domain::admin::OPERATOR_AGENCY;
use crate::domain::admin::{Actor, NO_STATE, state_hash};

/// The before/after hash of a kind's retention period (docs/admin.md "Audit events").
fn period_hash(kind: RecordKind, days: i64, source: &str) -> String {
    state_hash(&[kind.as_str(), &days.to_string(), source])
}

/// The hash of a hold as placed, and as released (docs/admin.md "Audit events"); a person is its key in hex.
fn hold_hash(id: i64, target: &HoldTarget, reason: &str, released: Option<&str>) -> String {
    let what = match target {
        HoldTarget::Person(k) => format!("person {}", hex::encode(k.as_bytes())),
        HoldTarget::Quarter(q) => format!("quarter {q}"),
    };
    let mut fields = vec![id.to_string(), what, reason.to_owned()];
    if let Some(r) = released {
        fields.push(format!("released: {r}"));
    }
    state_hash(&fields.iter().map(String::as_str).collect::<Vec<_>>())
}

pub use crate::domain::retention::PURGE_METHOD;

/// Set `kind`'s period (refused below its floor, [`check_period`]), audited with the period before and after.
/// Returns the period before.
pub async fn set_period(
    store: &Store,
    kind: RecordKind,
    days: i64,
    source: &str,
    actor: &Actor,
    at: DateTime<Utc>,
) -> anyhow::Result<i64> {
    check_period(kind, days).map_err(|e| anyhow::anyhow!("{}: {e}", kind.as_str()))?;
    anyhow::ensure!(!source.trim().is_empty(), "--source: say where the period comes from");
    let by = actor.by.as_str();
    let audit = |before: &crate::store::RetentionPolicy| AuditRecord {
        agency: OPERATOR_AGENCY.to_owned(),
        division: String::new(),
        method: actor.method_or("doudi retention set"),
        purpose: format!("{}; retention period of {}: {source}", actor.who(), kind.as_str()),
        outcome: format!(
            "OK {} {} days -> {days} days; set by {by}; before={}; after={}",
            kind.as_str(),
            before.days,
            period_hash(kind, before.days, &before.source),
            period_hash(kind, days, source)
        ),
        person_keys: Vec::new(),
        via: String::new(),
    };
    let before = store
        .set_retention(kind, days, source, by, at, &audit)
        .await?
        .with_context(|| format!("the database holds no retention period for {}", kind.as_str()))?;
    Ok(before.days)
}

/// Place a hold, audited (a person's hold names the person in its event, so an auditor asking about the person finds
/// it). Returns the hold's id.
pub async fn place_hold(
    store: &Store,
    target: HoldTarget,
    reason: &str,
    actor: &Actor,
    at: DateTime<Utc>,
) -> anyhow::Result<i64> {
    anyhow::ensure!(!reason.trim().is_empty(), "--reason: say why the records are held");
    let by = actor.by.as_str();
    let (what, person) = describe(&target);
    let hold = NewHold { target, reason: reason.to_owned(), placed_by: by.to_owned(), placed_at: at };
    let audit = |id: i64| AuditRecord {
        agency: OPERATOR_AGENCY.to_owned(),
        division: String::new(),
        method: actor.method_or("doudi retention hold"),
        purpose: format!("{}; {reason}", actor.who()),
        outcome: format!(
            "OK hold {id} on {what} placed; by {by}; before={NO_STATE}; after={}",
            hold_hash(id, &hold.target, reason, None)
        ),
        person_keys: person.into_iter().collect(),
        via: String::new(),
    };
    Ok(store.place_hold(&hold, &audit).await?)
}

/// Release hold `id`, audited; `None` when there is no hold `id` in force.
pub async fn release_hold(
    store: &Store,
    id: i64,
    reason: &str,
    actor: &Actor,
    at: DateTime<Utc>,
) -> anyhow::Result<Option<StoredHold>> {
    anyhow::ensure!(!reason.trim().is_empty(), "--reason: say why the hold is released");
    let by = actor.by.as_str();
    let audit = |h: &StoredHold| {
        let (what, person) = describe(&h.target);
        AuditRecord {
            agency: OPERATOR_AGENCY.to_owned(),
            division: String::new(),
            method: actor.method_or("doudi retention release"),
            purpose: format!("{}; {reason}", actor.who()),
            outcome: format!(
                "OK hold {id} on {what} released; by {by}; before={}; after={}",
                hold_hash(id, &h.target, &h.reason, None),
                hold_hash(id, &h.target, &h.reason, Some(reason))
            ),
            person_keys: person.into_iter().collect(),
            via: String::new(),
        }
    };
    Ok(store.release_hold(id, by, reason, at, &audit).await?)
}

/// What a hold holds, for its audit event and `show`: the quarter, or "a person" (never the ID number), and the
/// person's key.
fn describe(target: &HoldTarget) -> (String, Option<PersonKey>) {
    match target {
        HoldTarget::Person(k) => ("a person".to_owned(), Some(*k)),
        HoldTarget::Quarter(q) => (format!("quarter {q}"), None),
    }
}

/// What one kind's purge did or would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeCount {
    pub kind: RecordKind,
    pub days: i64,
    pub cutoff: DateTime<Utc>,
    /// Records purged by this run (or due, with `dry_run`).
    pub purged: u64,
    /// Chunks (transactions) this run committed for the kind.
    pub chunks: usize,
}

/// A purge run's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeReport {
    pub counts: Vec<PurgeCount>,
    /// The run stopped at `max_chunks` before purging everything due (run again to finish).
    pub interrupted: bool,
}

/// Purge every kind past its period at `now` (the retention periods of `retention_policy`), in chunks of `chunk`
/// records, at most `max_chunks` chunks in all; with `dry_run`, count what is due instead. Each chunk is one
/// transaction with its audit event, selecting only records not yet purged: run again after an interruption and it
/// goes on where it stopped. `now` is the clock of the cutoffs (the command passes the current time; tests pass a
/// later one to make records old); the audit events carry the real time of their writes.
pub async fn purge(
    store: &Store,
    now: DateTime<Utc>,
    chunk: usize,
    max_chunks: Option<usize>,
    dry_run: bool,
    actor: &Actor,
) -> anyhow::Result<PurgeReport> {
    let by = actor.by.as_str();
    let chunk = chunk.max(1);
    let policies = store.retention_policies().await?;
    let mut counts = Vec::new();
    let mut chunks_left = max_chunks.unwrap_or(usize::MAX);
    let mut interrupted = false;
    for kind in RecordKind::ALL {
        let Some(p) = policies.iter().find(|p| p.kind == kind) else {
            anyhow::bail!("the database holds no retention period for {}", kind.as_str());
        };
        let cut = cutoff(now, p.days);
        let mut count = PurgeCount { kind, days: p.days, cutoff: cut, purged: 0, chunks: 0 };
        if dry_run {
            count.purged = store.purge_due(kind, cut).await?;
        } else {
            let days = p.days;
            let audit = move |n: u64| AuditRecord {
                agency: OPERATOR_AGENCY.to_owned(),
                division: String::new(),
                method: PURGE_METHOD.to_owned(),
                purpose: crate::domain::retention::purge_purpose(kind, days, cut),
                outcome: format!("OK purged {} {n}; by {by}", kind.as_str()),
                person_keys: Vec::new(),
                via: String::new(),
            };
            while kind.purged() {
                if chunks_left == 0 {
                    interrupted = store.purge_due(kind, cut).await? > 0;
                    break;
                }
                let n = store.purge_chunk(kind, cut, chunk, &audit).await?;
                if n == 0 {
                    break;
                }
                chunks_left -= 1;
                count.purged += n;
                count.chunks += 1;
            }
        }
        counts.push(count);
        if interrupted {
            break;
        }
    }
    Ok(PurgeReport { counts, interrupted })
}

/// The person key of an ID number under the database's data key (the configuration's, with the lookup key the person
/// keys were made with after a rotation), refused when the key is not the database's.
pub async fn person_key_of(store: &Store, config: &crate::config::Config, id: &str) -> anyhow::Result<PersonKey> {
    use secrecy::ExposeSecret as _;
    let id: crate::domain::id_number::IdNumber =
        id.parse().map_err(|e| anyhow::anyhow!("--person: not a valid ID number: {e}"))?;
    let key = config.data_key.as_ref().context("--person needs the data key: set DOUDI_DATA_KEY")?;
    let keys = crate::security::crypto::Keys::from_base64_with(key.expose_secret(), config.crypto_suite)?;
    let keys = match store.meta("lookup_key_wrapped").await {
        Some(w) => keys.clone().with_wrapped_lookup(&w).unwrap_or(keys),
        None => keys,
    };
    anyhow::ensure!(
        store.verify_key_check(&keys.check_value()).await?,
        "the data key (DOUDI_DATA_KEY) is not the one this database was created with"
    );
    Ok(keys.person_key(&id))
}

/// Run one retention command: through the hub as a system administrator (--operator), else on the database of the
/// configuration (`config`, `--database-url` over it; `show` reads it without --direct-database).
pub async fn run(config: Option<&std::path::Path>, command: RetentionCommand) -> anyhow::Result<()> {
    if let crate::client::admin::Mode::Hub(hub) = command.mode()? {
        return run_through_hub(&hub, command).await;
    }
    let loaded = crate::config::Config::load(
        config,
        &crate::config::Overrides { database_url: command.database_url(), ..Default::default() },
    )?;
    let store = super::open_store(config, command.database_url()).await?;
    let r = run_on_store(&store, &loaded, command).await;
    store.close().await;
    r
}

/// Run one retention command on an opened and migrated store (`config` for the data key of `hold --person`).
pub async fn run_on_store(
    store: &Store,
    config: &crate::config::Config,
    command: RetentionCommand,
) -> anyhow::Result<()> {
    let by = crate::ops::direct_actor();
    match command {
        RetentionCommand::Show { .. } => {
            println!("{:<15}{:>7}{:>10}  {:<22}{:<28}source", "kind", "days", "min", "set at", "set by");
            for p in store.retention_policies().await? {
                println!(
                    "{:<15}{:>7}{:>10}  {:<22}{:<28}{}{}",
                    p.kind.as_str(),
                    p.days,
                    p.min_days,
                    p.set_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                    p.set_by,
                    p.source,
                    if p.kind.purged() { "" } else { " [not purged yet: docs/retention.md]" }
                );
            }
            let holds = store.retention_holds().await?;
            println!("legal holds: {} in force, {} released", holds.iter().filter(|h| h.released.is_none()).count(), {
                holds.iter().filter(|h| h.released.is_some()).count()
            });
            for h in holds {
                let (what, person) = describe(&h.target);
                let what = match person {
                    // The key's first 8 bytes: enough to tell holds apart, never the ID number.
                    Some(k) => format!("person {}…", hex::encode(&k.as_bytes()[..8])),
                    None => what,
                };
                let state = match &h.released {
                    None => "IN FORCE".to_owned(),
                    Some((at, by, why)) => format!("released {} by {by}: {why}", at.format("%Y-%m-%d %H:%M UTC")),
                };
                println!(
                    "  hold {}: {what}; placed {} by {}: {}; {state}",
                    h.id,
                    h.placed_at.format("%Y-%m-%d %H:%M UTC"),
                    h.placed_by,
                    h.reason
                );
            }
            Ok(())
        }
        RetentionCommand::Set { kind, days, source, .. } => {
            let k = RecordKind::parse(&kind).with_context(|| {
                format!("unknown kind {kind:?}: one of audit_persons, change_log, fact_version, settlement")
            })?;
            let before = set_period(store, k, days, &source, &by, Utc::now()).await?;
            println!("retention of {kind}: {before} days -> {days} days (source: {source}); audited");
            Ok(())
        }
        RetentionCommand::Hold { person, quarter, reason, .. } => {
            let target = match (person, quarter) {
                (Some(id), _) => HoldTarget::Person(person_key_of(store, config, &id).await?),
                (None, Some(q)) => {
                    HoldTarget::Quarter(q.parse::<Quarter>().map_err(|e| anyhow::anyhow!("--quarter {q:?}: {e}"))?)
                }
                (None, None) => anyhow::bail!("--person ID or --quarter YYYYQn"),
            };
            let (what, _) = describe(&target);
            let id = place_hold(store, target, &reason, &by, Utc::now()).await?;
            println!("hold {id} placed on {what}: its records are not purged until it is released; audited");
            Ok(())
        }
        RetentionCommand::Release { id, reason, .. } => {
            match release_hold(store, id, &reason, &by, Utc::now()).await? {
                Some(h) => {
                    println!("hold {id} on {} released (kept on record); audited", describe(&h.target).0);
                    Ok(())
                }
                None => anyhow::bail!("no hold {id} in force (`doudi retention show` lists them)"),
            }
        }
        RetentionCommand::Purge { dry_run, chunk, max_chunks, .. } => {
            let r = purge(store, Utc::now(), chunk, max_chunks, dry_run, &by).await?;
            for c in &r.counts {
                let verb = if dry_run { "due" } else { "purged" };
                let note = if c.kind.purged() { String::new() } else { " (not purged yet: docs/retention.md)".into() };
                println!(
                    "{:<15}{verb} {:>9}  (older than {} days: before {}; {} chunks){note}",
                    c.kind.as_str(),
                    c.purged,
                    c.days,
                    c.cutoff.format("%Y-%m-%d %H:%M UTC"),
                    c.chunks
                );
            }
            if r.interrupted {
                println!("stopped before the end: run the same command again to finish (nothing is purged twice)");
            } else if !dry_run {
                println!("purge complete; each chunk is an audit event ({PURGE_METHOD})");
            }
            Ok(())
        }
    }
}
