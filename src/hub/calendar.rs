//! The working-day calendar as an operator keeps it (issue 15): loading a year's State Council holiday notice
//! (`doudi calendar add`), what the hub holds (`doudi calendar show`, the `doudi_calendar_covered_until` gauge, the
//! reminder logged from 1 November), and the warning deadlines a load moves.
//!
//! A load is one transaction ([`Store::load_calendar_notice`]): the new version of the year, the year's rows of
//! `work_calendar` replaced, one `warning_deadline_changes` row per warning whose deadlines move (old and new), and
//! an audit event. The plan is made here from what was read; the store refuses it (and this retries) if the year's
//! versions or the warnings changed meanwhile, so no warning pushed during a load is missed.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use super::HubError;
use crate::domain::calendar::{shanghai_date, start_of_day_utc};
use crate::domain::coordination::warning_deadlines;
use crate::domain::holiday_notice::NoticeFile;
use crate::domain::workdays::{CalendarEntry, DayKind, WorkCalendar};
use crate::store::{AuditRecord, DeadlineChange, NoticeLoad, NoticeLoaded, Store, StoredNotice};

/// The audit event's `agency` for operator actions taken on the database directly (until operators have
/// certificates of their own: issue 20).
pub const OPERATOR: &str = "operator";

/// What a load did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadOutcome {
    /// Stored as a new version of the year.
    Loaded { version: i64 },
    /// The year's newest version already has exactly these days and this source: nothing written.
    Unchanged { version: i64 },
}

/// The result of [`load_notice`].
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub year: i32,
    pub outcome: LoadOutcome,
    /// Holidays and make-up working days of the loaded notice.
    pub holidays: usize,
    pub make_up_workdays: usize,
    /// Warnings whose deadlines moved (empty when unchanged).
    pub changes: Vec<DeadlineChange>,
}

/// Load one year's notice (already parsed from its file) as a new version, or do nothing if the newest version is
/// the same. `correction`: required to replace a year already loaded with other content (the reason is kept with
/// the new version); the old version stays in `calendar_notices`.
///
/// # Errors
/// - `InvalidArgument` (field `notice` or `source`): the file breaks a rule of [`crate::domain::holiday_notice`],
///   or the source is empty;
/// - `AlreadyExists`: the year is loaded with other content and no `correction` was given;
/// - `FailedPrecondition`: a date is listed by another year's notice in force;
/// - `Store`: the database failed (nothing written).
pub async fn load_notice(
    store: &Store,
    file: &NoticeFile,
    source: &str,
    correction: Option<&str>,
    actor: &crate::domain::admin::Actor,
    now: DateTime<Utc>,
) -> Result<LoadReport, HubError> {
    let loaded_by = actor.by.as_str();
    let mut entries = file.entries().map_err(|e| HubError::invalid("notice", e.to_string()))?;
    entries.sort_by_key(|e| e.date);
    let source = source.trim();
    if source.is_empty() {
        return Err(HubError::invalid("source", "is empty: cite the notice, e.g. 国办发明电〔2026〕N号"));
    }
    plain_text("source", source, 200)?;
    let reason = correction.map(str::trim).unwrap_or_default();
    if correction.is_some() && reason.chars().count() < 4 {
        return Err(HubError::invalid("correction", "give the reason for the correction in a few words"));
    }
    plain_text("correction", reason, 500)?;
    let year = file.year;
    let holidays = entries.iter().filter(|e| e.kind == DayKind::Holiday).count();
    let make_up_workdays = entries.len() - holidays;
    for _attempt in 0..10 {
        let in_force = current_versions(&store.calendar_notices().await?);
        let expected_version = match in_force.get(&year) {
            Some(cur) if cur.entries == entries && cur.source == source => {
                return Ok(LoadReport {
                    year,
                    outcome: LoadOutcome::Unchanged { version: cur.version },
                    holidays,
                    make_up_workdays,
                    changes: Vec::new(),
                });
            }
            Some(cur) if correction.is_none() => {
                return Err(HubError::AlreadyExists(format!(
                    "calendar year {year} is already loaded (version {}, source {:?}) with other content: {}; to \
                     replace it, load the file again with --correction \"why\" (the old version is kept)",
                    cur.version,
                    cur.source,
                    difference(&cur.entries, &entries, &cur.source, source)
                )));
            }
            Some(cur) => cur.version,
            None => 0,
        };
        for e in &entries {
            if let Some(other) =
                in_force.values().find(|n| n.year != year && n.entries.iter().any(|o| o.date == e.date))
            {
                return Err(HubError::FailedPrecondition(format!(
                    "{} is already listed by the {} notice in force (version {}): a day belongs to one notice; \
                     correct that year first",
                    e.date, other.year, other.version
                )));
            }
        }
        let old = calendar_of(in_force.values().flat_map(|n| n.entries.iter().cloned()))?;
        let new = calendar_of(
            in_force.values().filter(|n| n.year != year).flat_map(|n| n.entries.iter().cloned()).chain(entries.clone()),
        )?;
        // A warning's deadline walk (5 working days) spans at most about three weeks even across the longest
        // holiday, so only warnings received from 31 days before the first day the old or the new version lists
        // (and at the latest from 1 December of the year before) can have deadlines this load moves.
        let first_day = in_force
            .get(&year)
            .into_iter()
            .flat_map(|n| n.entries.iter())
            .chain(entries.iter())
            .map(|e| e.date)
            .min()
            .unwrap_or_else(|| NaiveDate::from_ymd_opt(year, 1, 1).expect("a valid year"));
        let december = NaiveDate::from_ymd_opt(year - 1, 12, 1).expect("a valid year");
        let since = start_of_day_utc(december.min(first_day - chrono::Days::new(31)));
        let version = expected_version + 1;
        let purpose = if reason.is_empty() { source.to_owned() } else { format!("{source}; correction: {reason}") };
        let before = match in_force.get(&year) {
            Some(cur) => notice_hash(year, &cur.source, &cur.entries),
            None => crate::domain::admin::NO_STATE.to_owned(),
        };
        let after = notice_hash(year, source, &entries);
        let plan = |warnings: &[crate::store::StoredWarning]| {
            let mut changes = Vec::new();
            for w in warnings {
                let bad = |e: crate::domain::workdays::CalendarError| crate::store::StoreError::Corrupt {
                    table: "warnings",
                    detail: format!("{}: {e}", w.warning_id),
                };
                let o = warning_deadlines(&old, w.received_at).map_err(bad)?;
                let n = warning_deadlines(&new, w.received_at).map_err(bad)?;
                if o != n {
                    changes.push(DeadlineChange {
                        agency: w.agency.clone(),
                        warning_id: w.warning_id.clone(),
                        old_visit_due: o.visit_due.value,
                        old_decision_due: o.decision_due.value,
                        old_provisional: o.decision_due.provisional,
                        new_visit_due: n.visit_due.value,
                        new_decision_due: n.decision_due.value,
                        new_provisional: n.decision_due.provisional,
                    });
                }
            }
            let audit = AuditRecord {
                agency: OPERATOR.to_owned(),
                division: String::new(),
                via: String::new(),
                method: actor.method_or("doudi calendar add"),
                purpose: format!("{}; {purpose}", actor.who()),
                outcome: format!(
                    "OK calendar {year} version {version}: {holidays} days off, {make_up_workdays} make-up working \
                     days; deadlines moved for {} warnings; loaded by {loaded_by}; before={before}; after={after}",
                    changes.len()
                ),
                person_keys: Vec::new(),
            };
            Ok((changes, audit))
        };
        let load = NoticeLoad {
            year,
            source: source.to_owned(),
            reason: reason.to_owned(),
            loaded_by: loaded_by.to_owned(),
            loaded_at: now,
            entries: entries.clone(),
            expected_versions: in_force.values().map(|n| (n.year, n.version)).collect(),
            warnings_since: since,
        };
        match store.load_calendar_notice(&load, &plan).await? {
            NoticeLoaded::Loaded { version, changes } => {
                return Ok(LoadReport {
                    year,
                    outcome: LoadOutcome::Loaded { version },
                    holidays,
                    make_up_workdays,
                    changes,
                });
            }
            // Another notice was loaded meanwhile: plan again from what is held now.
            NoticeLoaded::Raced => continue,
        }
    }
    Err(HubError::FailedPrecondition(format!(
        "calendar year {year}: other notices kept being loaded while this one was planned; try again"
    )))
}

/// The before/after hash of a year's notice in the audit event of its load (docs/admin.md "Audit events"): the year,
/// the source and every entry (date, kind, festival) in date order.
fn notice_hash(year: i32, source: &str, entries: &[crate::domain::workdays::CalendarEntry]) -> String {
    let mut fields = vec![year.to_string(), source.to_owned()];
    for e in entries {
        fields.push(format!("{} {:?} {}", e.date, e.kind, e.name));
    }
    crate::domain::admin::state_hash(&fields.iter().map(String::as_str).collect::<Vec<_>>())
}

/// One line of text of at most `max` characters, without control characters (it is printed and audited).
fn plain_text(field: &str, text: &str, max: usize) -> Result<(), HubError> {
    if text.chars().count() > max {
        return Err(HubError::invalid(field, format!("is longer than {max} characters")));
    }
    if text.chars().any(char::is_control) {
        return Err(HubError::invalid(field, "contains a control character (a line break, tab, escape or NUL)"));
    }
    Ok(())
}

/// The newest version of each year's notice.
pub fn current_versions(all: &[StoredNotice]) -> BTreeMap<i32, StoredNotice> {
    let mut out: BTreeMap<i32, StoredNotice> = BTreeMap::new();
    for n in all {
        if out.get(&n.year).is_none_or(|c| c.version < n.version) {
            out.insert(n.year, n.clone());
        }
    }
    out
}

fn calendar_of(entries: impl Iterator<Item = CalendarEntry>) -> Result<WorkCalendar, HubError> {
    WorkCalendar::from_entries(entries).map_err(|e| HubError::FailedPrecondition(format!("calendar: {e}")))
}

/// A short account of how two versions of a year differ (for the refusal message).
fn difference(old: &[CalendarEntry], new: &[CalendarEntry], old_source: &str, new_source: &str) -> String {
    let key = |e: &CalendarEntry| (e.date, e.kind, e.name.clone());
    let old_set: std::collections::BTreeSet<_> = old.iter().map(key).collect();
    let new_set: std::collections::BTreeSet<_> = new.iter().map(key).collect();
    let mut parts = Vec::new();
    let show = |v: Vec<&(NaiveDate, DayKind, String)>| {
        let mut s: Vec<String> = v.iter().take(5).map(|(d, k, n)| format!("{d} {k} {n}")).collect();
        if v.len() > 5 {
            s.push(format!("… {} more", v.len() - 5));
        }
        s.join(", ")
    };
    let added: Vec<_> = new_set.difference(&old_set).collect();
    let removed: Vec<_> = old_set.difference(&new_set).collect();
    if !added.is_empty() {
        parts.push(format!("the file adds {}", show(added)));
    }
    if !removed.is_empty() {
        parts.push(format!("the file drops {}", show(removed)));
    }
    if old_source != new_source {
        parts.push(format!("the source differs ({new_source:?})"));
    }
    parts.join("; ")
}

/// What the hub holds: the notice in force per year, the last covered day and the reminder of
/// [`WorkCalendar::missing_notice_reminder`] on `today`.
#[derive(Debug, Clone)]
pub struct CalendarStatus {
    /// Every version of every year, by year and version.
    pub notices: Vec<StoredNotice>,
    /// The calendar in force.
    pub calendar: WorkCalendar,
    pub today: NaiveDate,
    pub covered_until: Option<NaiveDate>,
    pub reminder: Option<String>,
}

/// [`CalendarStatus`] as of the instant `now` (its Asia/Shanghai date).
pub async fn status(store: &Store, now: DateTime<Utc>) -> Result<CalendarStatus, HubError> {
    let notices = store.calendar_notices().await?;
    let calendar = calendar_of(store.work_calendar().await?.into_iter())?;
    let today = shanghai_date(now);
    Ok(CalendarStatus {
        covered_until: calendar.covered_until(today),
        reminder: calendar.missing_notice_reminder(today),
        notices,
        calendar,
        today,
    })
}

/// The last covered day ([`WorkCalendar::covered_until`]) on the Asia/Shanghai date of `now`, from the calendar in
/// force only (the metrics gauge, read at each scrape).
pub async fn covered_until(store: &Store, now: DateTime<Utc>) -> Result<Option<NaiveDate>, HubError> {
    Ok(calendar_of(store.work_calendar().await?.into_iter())?.covered_until(shanghai_date(now)))
}

/// `YYYYMMDD` of a date as a number (the gauge's value); 0 for none.
pub fn yyyymmdd(d: Option<NaiveDate>) -> i64 {
    d.map_or(0, |d| i64::from(d.year()) * 10_000 + i64::from(d.month()) * 100 + i64::from(d.day()))
}

/// Log the operator's reminder (issue 15, item 4) at start and then once a day, as a `warn` line naming the missing
/// year, while [`WorkCalendar::missing_notice_reminder`] says one is due. Health is not affected.
pub fn spawn_reminder(store: Store, clock: super::Clock) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(24 * 60 * 60));
        loop {
            every.tick().await;
            match status(&store, clock.now()).await {
                Ok(s) => {
                    if let Some(r) = &s.reminder {
                        tracing::warn!(
                            covered_until = %s.covered_until.map_or_else(|| "none".to_owned(), |d| d.to_string()),
                            "{r}"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "working-day calendar not read for the reminder"),
            }
        }
    })
}
