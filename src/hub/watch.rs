//! WatchChanges (docs/spec/api.md; docs/change-feed.md): the change log read from a cursor, each change reduced by the
//! same policy path as GetRecipient ([`Hub::visible_fact`]). The streaming itself (heartbeats, lag, shutdown) is in
//! `grpc/watch.rs`; here are the start (checks, scope, audit) and the pages.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::{HubError, VisibleFact, check_purpose, division_of, scoped_prefix, storage_prefix, via_of, with_holder};
use crate::domain::agency::Principal;
use crate::domain::division::DivisionCode;
use crate::domain::fact::PayloadKind;
use crate::domain::id_number::IdNumber;
use crate::domain::policy::Condition;
use crate::security::crypto::PersonKey;
use crate::store::{AuditRecord, ChangeFilter, ChangeRow};

/// How many pages' worth of cursors one `watch_page` query may span.
pub const WATCH_WINDOW_PAGES: i64 = 20;

/// What the caller asked for.
#[derive(Debug, Clone, Default)]
pub struct WatchRequest {
    /// `None` = from now.
    pub after_cursor: Option<i64>,
    /// Empty = every kind the caller may read.
    pub kinds: Vec<PayloadKind>,
    pub division: Option<DivisionCode>,
    pub purpose: String,
}

/// A started watch: who, what, and where it starts.
#[derive(Debug, Clone)]
pub struct WatchPlan {
    principal: Principal,
    filter: ChangeFilter,
    /// Whether some kind is visible to the caller only for students (education's view of assistance).
    student_condition: bool,
    /// The cursor the watch starts after.
    pub start: i64,
}

/// One change as the caller may see it.
#[derive(Debug, Clone)]
pub enum ChangeView {
    /// A version written (new record when `superseded_version` is `None`, else a new version).
    Fact {
        cursor: i64,
        fact: Box<VisibleFact>,
        id_number: IdNumber,
        id_masked: String,
        superseded_version: Option<u64>,
    },
    /// A new version took the record out of what the caller may see; the superseded version was visible.
    LeftScope {
        cursor: i64,
        agency: String,
        fact_id: String,
        source_version: u64,
        kind: PayloadKind,
        id_masked: String,
        superseded_version: u64,
        committed_at: DateTime<Utc>,
    },
}

impl ChangeView {
    pub fn cursor(&self) -> i64 {
        match self {
            ChangeView::Fact { cursor, .. } | ChangeView::LeftScope { cursor, .. } => *cursor,
        }
    }
}

/// One page of a watch: the visible changes, and the cursor up to which the log has been examined (every change
/// up to it that the caller may see is in `changes` or an earlier page).
#[derive(Debug, Clone)]
pub struct WatchPage {
    pub changes: Vec<ChangeView>,
    pub examined_upto: i64,
}

impl super::Hub {
    /// Check a watch request, fix its scope and starting cursor, and write its audit event (one per watch, with the
    /// purpose and the starting cursor: the persons it will show are not known yet; docs/change-feed.md).
    ///
    /// Errors: PERMISSION_DENIED (no person-level reads, a kind never readable, a division outside the county);
    /// INVALID_ARGUMENT (purpose, negative cursor); OUT_OF_RANGE (cursor after the newest change or before the
    /// oldest retained one).
    pub async fn start_watch(
        &self,
        principal: &Principal,
        method: &str,
        req: WatchRequest,
    ) -> Result<WatchPlan, HubError> {
        let purpose = check_purpose(&req.purpose)?;
        let agency = principal.agency();
        if !self.policy.reads_person_data(agency) {
            return Err(HubError::PermissionDenied(format!(
                "agency {agency} may not read person-level data (aggregates only), so it has no changes to watch"
            )));
        }
        let kinds: Vec<PayloadKind> = if req.kinds.is_empty() {
            PayloadKind::ALL.iter().copied().filter(|k| self.policy.read_rule(agency, *k).is_some()).collect()
        } else {
            let mut v = Vec::new();
            for k in req.kinds {
                if self.policy.read_rule(agency, k).is_none() {
                    return Err(HubError::PermissionDenied(format!("kinds: agency {agency} may not read {k}")));
                }
                if !v.contains(&k) {
                    v.push(k);
                }
            }
            v
        };
        let student_condition = kinds
            .iter()
            .any(|k| self.policy.read_rule(agency, *k).is_some_and(|r| r.condition == Some(Condition::Student)));
        let prefix = storage_prefix(scoped_prefix(principal, req.division)?);

        let head = self.store.change_log_head().await?;
        let start = match req.after_cursor {
            None => head,
            Some(c) if c < 0 => return Err(HubError::invalid("after_cursor", format!("{c} is negative"))),
            Some(c) if c > head => {
                return Err(HubError::OutOfRange(format!(
                    "after_cursor {c} is after the newest change {head}: it was not issued by this hub's log \
                     (a restored or other database?); resume from cursor {head} or re-read the current state"
                )));
            }
            Some(c) => {
                if let Some(oldest) = self.store.change_log_oldest().await?
                    && c < oldest - 1
                {
                    return Err(HubError::OutOfRange(format!(
                        "after_cursor {c} is older than the oldest retained change {oldest}; re-read the current \
                         state (ListRecipients) and resume from cursor {}",
                        oldest - 1
                    )));
                }
                c
            }
        };
        self.store
            .record_audit(&AuditRecord {
                agency: agency.to_string(),
                division: division_of(principal),
                via: via_of(principal),
                method: method.to_owned(),
                purpose,
                outcome: format!("OK watch after_cursor={start}"),
                person_keys: Vec::new(),
            })
            .await?;
        Ok(WatchPlan {
            principal: principal.clone(),
            filter: ChangeFilter {
                kinds: kinds.iter().map(|k| k.as_str().to_owned()).collect(),
                division_prefix: prefix,
            },
            student_condition,
            start,
        })
    }

    /// The changes with `after < cursor <= upto` the watch may show, at most `limit` log rows examined. One page
    /// reads at most [`WATCH_WINDOW_PAGES`] × `limit` cursors past `after` (the caller loops while behind the head),
    /// so a watcher far behind never makes one query scan and sort the log up to the head: on PostgreSQL right after
    /// a bulk load, before statistics exist, that plan took 380 ms a page (found by the break-it run, 2026-11-29).
    pub async fn watch_page(
        &self,
        plan: &WatchPlan,
        after: i64,
        upto: i64,
        limit: usize,
    ) -> Result<WatchPage, HubError> {
        let upto = upto.min(after.saturating_add((limit as i64).saturating_mul(WATCH_WINDOW_PAGES)));
        let rows = self.store.changes_after(&plan.filter, after, upto, limit).await?;
        let examined_upto = if rows.len() < limit { upto } else { rows.last().map_or(upto, |r| r.cursor) };
        let students = if plan.student_condition { self.students_among(&rows).await? } else { HashSet::new() };
        let prefix = plan.filter.division_prefix.as_str();
        let mut changes = Vec::with_capacity(rows.len());
        for row in rows {
            let ChangeRow { cursor, fact, prev_version, prev_division, id_cipher, id_masked } = row;
            let is_student = students.contains(&fact.person_key);
            let in_prefix = |d: &str| d.starts_with(prefix);
            let person_key = fact.person_key;
            let (kind, agency, fact_id, version, committed_at) =
                (fact.kind(), fact.agency.clone(), fact.fact_id.clone(), fact.source_version, fact.recorded_at);
            // The superseded version as the caller saw it: same record, so same kind and holder; only the place
            // may differ (the policy depends on kind, place and the student condition, not on field values).
            let prev_visible = prev_division.as_deref().is_some_and(|d| {
                in_prefix(d)
                    && d.parse::<DivisionCode>()
                        .ok()
                        .and_then(|div| self.policy.redact(&plan.principal, &div, &fact.payload, is_student))
                        .is_some()
            });
            let visible = if in_prefix(&fact.division_code) {
                self.visible_fact(&plan.principal, fact, is_student)
            } else {
                None
            };
            match visible {
                Some(v) => {
                    let id = self.keys.decrypt(&id_cipher, &person_key)?;
                    let fact = with_holder(vec![v], &id).pop().expect("one fact in, one out");
                    changes.push(ChangeView::Fact {
                        cursor,
                        fact: Box::new(fact),
                        id_number: id,
                        id_masked,
                        superseded_version: prev_version,
                    });
                }
                None if prev_visible => changes.push(ChangeView::LeftScope {
                    cursor,
                    agency,
                    fact_id,
                    source_version: version,
                    kind,
                    id_masked,
                    superseded_version: prev_version.unwrap_or_default(),
                    committed_at,
                }),
                None => {}
            }
        }
        Ok(WatchPage { changes, examined_upto })
    }

    /// The persons of `rows` who are students (as GetRecipient decides it for today's date, when the page is read).
    async fn students_among(&self, rows: &[ChangeRow]) -> Result<HashSet<PersonKey>, HubError> {
        let keys: Vec<PersonKey> = rows.iter().map(|r| r.fact.person_key).collect::<HashSet<_>>().into_iter().collect();
        let mut by_person: HashMap<PersonKey, Vec<crate::store::StoredFact>> = HashMap::new();
        for f in self.store.facts_of_persons(&keys, self.today()).await? {
            by_person.entry(f.person_key).or_default().push(f);
        }
        Ok(by_person.into_iter().filter(|(_, facts)| self.is_student(facts)).map(|(k, _)| k).collect())
    }
}
