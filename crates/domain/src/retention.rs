//! Retention (issue 20 item 3, docs/retention.md): the kinds of record with a retention period, the floor of the
//! audit period, the cutoff a period gives, and the audit events of the retention commands.
//!
//! The periods themselves are data (`retention_policy`, migration 0015), not constants here: the migration loads the
//! defaults with their sources, `doudi retention set` changes them (audited).

use chrono::{DateTime, Duration, Utc};

/// A kind of record with a retention period (`retention_policy.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordKind {
    /// Who each audit event looked at (`audit_persons`): purged, the event keeps its row and hashes (a tombstone).
    AuditPersons,
    /// The change log behind WatchChanges: rows older than the period are deleted, oldest first.
    ChangeLog,
    /// Superseded fact versions: purged, a version keeps its key columns and content hash (a tombstone).
    FactVersion,
    /// Medical settlements: a period is held, but nothing is purged yet (docs/retention.md "Settlements").
    Settlement,
}

impl RecordKind {
    /// Every kind, in the order a purge handles them (the change log before the fact versions it points at).
    pub const ALL: [RecordKind; 4] =
        [RecordKind::AuditPersons, RecordKind::ChangeLog, RecordKind::FactVersion, RecordKind::Settlement];

    /// The name stored in `retention_policy.kind` and used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::AuditPersons => "audit_persons",
            RecordKind::ChangeLog => "change_log",
            RecordKind::FactVersion => "fact_version",
            RecordKind::Settlement => "settlement",
        }
    }

    /// The kind named `s`, if any.
    pub fn parse(s: &str) -> Option<RecordKind> {
        RecordKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The shortest period a `doudi retention set` accepts, in days. Audit: 180 days, the six months of
    /// 《网络安全法》第二十一条 ("留存相关的网络日志不少于六个月"; six months are at most 184 days, but the statute's
    /// floor is stated in months and 180 days is the figure GB/T 22239-2019 assessments check; docs/retention.md).
    pub fn min_days(self) -> i64 {
        match self {
            RecordKind::AuditPersons => AUDIT_MIN_DAYS,
            _ => 1,
        }
    }

    /// Whether a purge removes anything of this kind yet.
    pub fn purged(self) -> bool {
        !matches!(self, RecordKind::Settlement)
    }
}

/// The floor of the audit retention period, in days (see [`RecordKind::min_days`]).
pub const AUDIT_MIN_DAYS: i64 = 180;

/// The most days a period may have (about 1,000 years: keeps the cutoff arithmetic far from chrono's range).
pub const MAX_DAYS: i64 = 366_000;

/// Why a period is refused, or `Ok` when `days` may be set for `kind`.
pub fn check_period(kind: RecordKind, days: i64) -> Result<(), String> {
    if days > MAX_DAYS {
        return Err(format!("{days} days is more than the largest period accepted ({MAX_DAYS} days)"));
    }
    if days < kind.min_days() {
        return Err(match kind {
            RecordKind::AuditPersons => format!(
                "refused: the audit must be kept at least {AUDIT_MIN_DAYS} days (six months, 《网络安全法》第二十一条; \
                 GB/T 22239-2019 level 3 security audit); {days} days is shorter"
            ),
            _ => format!("refused: a period is at least {} day(s); {days} is shorter", kind.min_days()),
        });
    }
    Ok(())
}

/// The cutoff of a period at `now`: records older than it (time strictly before) are past retention.
pub fn cutoff(now: DateTime<Utc>, days: i64) -> DateTime<Utc> {
    now - Duration::days(days.clamp(0, MAX_DAYS))
}

/// The method of a purge chunk's audit event (agency `operator`).
pub const PURGE_METHOD: &str = "doudi retention purge";

/// The purpose of a purge chunk's audit event: `retention: KIND older than DAYS days (before CUTOFF)`, the cutoff in
/// RFC 3339 with microseconds. The chain check reads the newest audit cutoff back ([`purge_cutoff`]).
pub fn purge_purpose(kind: RecordKind, days: i64, cutoff: DateTime<Utc>) -> String {
    format!(
        "retention: {} older than {days} days (before {})",
        kind.as_str(),
        cutoff.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    )
}

/// The kind and cutoff a purge chunk's purpose names ([`purge_purpose`]), or `None` when it is not in that form.
pub fn purge_cutoff(purpose: &str) -> Option<(RecordKind, DateTime<Utc>)> {
    let rest = purpose.strip_prefix("retention: ")?;
    let (kind, rest) = rest.split_once(' ')?;
    let cutoff = rest.rsplit_once("(before ")?.1.strip_suffix(')')?;
    Some((RecordKind::parse(kind)?, DateTime::parse_from_rfc3339(cutoff).ok()?.with_timezone(&Utc)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_below_180_days_is_refused_and_other_kinds_need_a_day() {
        // 《网络安全法》第二十一条: no less than six months; the floor is 180 days.
        assert!(check_period(RecordKind::AuditPersons, 180).is_ok());
        let why = check_period(RecordKind::AuditPersons, 179).unwrap_err();
        assert!(why.contains("at least 180 days") && why.contains("第二十一条"), "{why}");
        assert!(check_period(RecordKind::FactVersion, 1).is_ok());
        assert!(check_period(RecordKind::FactVersion, 0).is_err());
        assert!(check_period(RecordKind::ChangeLog, MAX_DAYS + 1).is_err());
    }

    #[test]
    fn names_round_trip_and_the_cutoff_is_days_before_now() {
        for k in RecordKind::ALL {
            assert_eq!(RecordKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(RecordKind::parse("facts"), None);
        // 2024-03-01T00:00Z minus 366 days: 2023-03-01T00:00Z (2024 is a leap year, 29 February in between).
        let now = "2024-03-01T00:00:00Z".parse().unwrap();
        assert_eq!(cutoff(now, 366), "2023-03-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap());
    }

    #[test]
    fn a_purge_purpose_names_its_kind_and_cutoff() {
        let at: DateTime<Utc> = "2023-03-01T00:00:00.000001Z".parse().unwrap();
        let p = purge_purpose(RecordKind::AuditPersons, 366, at);
        assert_eq!(p, "retention: audit_persons older than 366 days (before 2023-03-01T00:00:00.000001Z)");
        assert_eq!(purge_cutoff(&p), Some((RecordKind::AuditPersons, at)));
        assert_eq!(purge_cutoff("retention: facts older than 1 days (before 2023-03-01T00:00:00Z)"), None);
        assert_eq!(purge_cutoff("case review"), None);
    }
}
