//! The row types of the storage interface: what the hub hands the store to write and what it gets back, shared by
//! both backends. No SQL here.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use sha2::{Digest, Sha256};

use crate::domain::agency::AgencyCode;
use crate::domain::coverage::{CoverageParams, MonthlyStandards};
use crate::domain::fact::{Fact, Payload, PayloadKind};
use crate::domain::medical::{Finding, FindingCode, PolicyParams, Settlement, SettlementCheck};
use crate::domain::money::Money;
use crate::domain::workdays::CalendarEntry;
use crate::security::crypto::PersonKey;
use crate::store::StoreError;

// ---- Facts, persons, audit records and reference data ----
/// The hasher of the write path's maps, keyed per process (foldhash's `RandomState`): SipHash, the standard one, was
/// about 3% of the hub's time in P1 at 1,000,000 facts, all of it inside the writer's transaction (issue 16).
pub type WriteHasher = foldhash::fast::RandomState;

/// Each person's `person_id`, by person key, as an ingest transaction resolved them.
pub type PersonIds = HashMap<PersonKey, i64, WriteHasher>;

/// The stored current version of each `(agency, fact_id)` an ingest looked up.
pub(crate) type CurrentVersions = HashMap<(String, String), crate::store::Current, WriteHasher>;

/// A valid fact ready to store, with its derived keys.
#[derive(Debug, Clone)]
pub struct PreparedFact {
    pub agency: AgencyCode,
    pub fact: Fact,
    pub person_key: PersonKey,
    pub payload_json: String,
    pub content_hash: [u8; 32],
}

impl PreparedFact {
    /// Derive the stored form. The content hash covers everything but `fact_id`,
    /// `source_version` and system time: SHA-256 of
    /// `person_key(hex) | division_code | valid_from | valid_to ('' if open) | kind | payload JSON`.
    pub fn new(agency: AgencyCode, fact: Fact, person_key: PersonKey) -> PreparedFact {
        let payload_json = fact.payload.storage_form().to_json();
        let mut h = Sha256::new();
        h.update(hex::encode(person_key.as_bytes()));
        for part in [
            fact.division_code.as_str(),
            &fact.valid_from.to_string(),
            &fact.valid_to.map(|d| d.to_string()).unwrap_or_default(),
            fact.payload.kind().as_str(),
            &payload_json,
        ] {
            h.update(b"|");
            h.update(part.as_bytes());
        }
        PreparedFact { agency, fact, person_key, payload_json, content_hash: h.finalize().into() }
    }
}

/// A new person row: key, encrypted ID number, masked form.
#[derive(Debug, Clone)]
pub struct NewPerson {
    pub person_key: PersonKey,
    pub id_cipher: Vec<u8>,
    pub id_masked: String,
}

/// One audit event to append (docs/spec/security.md: time, agency, division, method, purpose, outcome,
/// the person keys touched; and the pinned gateway a call came through, "" for a direct peer).
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub agency: String,
    pub division: String,
    pub via: String,
    pub method: String,
    pub purpose: String,
    pub outcome: String,
    pub person_keys: Vec<PersonKey>,
}

/// The audit record of an operator's action: [`crate::domain::admin::AdminEvent`] is the domain's account of it,
/// the row is the store's (agency [`crate::domain::admin::OPERATOR_AGENCY`], method the RPC path or the command,
/// purpose who and the arguments, outcome `OK detail; before=…; after=…`; docs/admin.md).
pub trait AdminEventRecord {
    /// The event as the audit chain stores it.
    fn record(&self) -> AuditRecord;
}

impl AdminEventRecord for crate::domain::admin::AdminEvent<'_> {
    fn record(&self) -> AuditRecord {
        AuditRecord {
            agency: crate::domain::admin::OPERATOR_AGENCY.to_owned(),
            division: String::new(),
            via: String::new(),
            method: self.actor.method_or(self.command),
            purpose: if self.args.is_empty() {
                self.actor.who()
            } else {
                format!("{}; {}", self.actor.who(), self.args)
            },
            outcome: format!("OK {}; before={}; after={}", self.detail, self.before, self.after),
            person_keys: Vec::new(),
        }
    }
}

/// A stored fact version as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFact {
    pub agency: String,
    pub fact_id: String,
    pub source_version: u64,
    pub person_key: PersonKey,
    pub division_code: String,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    pub payload: Payload,
    pub recorded_at: DateTime<Utc>,
}

impl StoredFact {
    pub fn kind(&self) -> PayloadKind {
        self.payload.kind()
    }
}

/// Filter of `ListRecipients`.
#[derive(Debug, Clone)]
pub struct PersonFilter {
    /// Division code prefix; empty = all.
    pub division_prefix: String,
    /// Only persons with an ACTIVE assistance fact of this program (stored code, e.g. "DIBAO").
    pub program: Option<String>,
    pub as_of: NaiveDate,
}

/// A standard row of reference data.
#[derive(Debug, Clone)]
pub struct StandardRow {
    pub year: i64,
    pub division_code: String,
    pub item: String,
    pub name: String,
    pub amount: String,
    pub unit: String,
    pub effective_from: String,
    pub source: String,
}

/// A division row of reference data.
#[derive(Debug, Clone)]
pub struct DivisionRow {
    pub code: String,
    pub name: String,
    pub level: String,
    pub parent_code: Option<String>,
}

// ---- The audit log ----
/// One stored audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEventRow {
    /// The event's number in the log: unique across lanes, increasing in each lane (the order of ListAccessEvents).
    pub seq: i64,
    /// Its lane and its position there (1, 2, … without gaps): what the chain hashes (`domain::audit`).
    pub lane: i32,
    pub lane_seq: i64,
    pub at: DateTime<Utc>,
    pub agency: String,
    pub division: String,
    pub method: String,
    pub purpose: String,
    pub outcome: String,
    pub person_count: i64,
    pub hash: [u8; 32],
    /// The pinned gateway the call came through; "" for a direct peer.
    pub via: String,
}

/// Filter of `ListAccessEvents`.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub person: Option<PersonKey>,
    pub agency: Option<String>,
    /// Microseconds since the Unix epoch, inclusive.
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Only events of this outcome (refusals on record, `crate::server::refusals`).
    pub outcome: Option<OutcomeFilter>,
}

/// The outcome filter of `ListAccessEvents` (docs/refusals.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeFilter {
    /// Every event that is not a refusal (`OK …`, `NOT_FOUND`).
    Answered,
    /// Every refusal on record (outcome `REFUSED …`).
    Refused,
    /// Refusals of one kind.
    Kind(crate::server::refusals::RefusalKind),
}

impl OutcomeFilter {
    /// `ANSWERED`, `REFUSED` or a refusal kind (`PERMISSION_DENIED`, `UNAUTHENTICATED`, `RESOURCE_EXHAUSTED`,
    /// `HANDSHAKE`).
    pub fn parse(s: &str) -> Option<OutcomeFilter> {
        match s {
            "ANSWERED" => Some(OutcomeFilter::Answered),
            "REFUSED" => Some(OutcomeFilter::Refused),
            k => crate::server::refusals::RefusalKind::parse(k).map(OutcomeFilter::Kind),
        }
    }

    /// The SQL condition on `e.outcome` (the same on both backends). `substr(e.outcome, 1, 8) = 'REFUSED '` is the
    /// predicate of the partial index `audit_events_refusals` (migration 0013), written identically so that both
    /// planners use it. Built from constants only.
    pub fn sql(self) -> String {
        const REFUSED: &str = "substr(e.outcome, 1, 8) = 'REFUSED '";
        match self {
            OutcomeFilter::Answered => "substr(e.outcome, 1, 8) <> 'REFUSED '".into(),
            OutcomeFilter::Refused => REFUSED.into(),
            OutcomeFilter::Kind(k) => {
                let prefix = format!("{}{} ", crate::server::refusals::OUTCOME_PREFIX, k.as_str());
                format!("{REFUSED} AND substr(e.outcome, 1, {}) = '{prefix}'", prefix.len())
            }
        }
    }
}

/// The result of recomputing the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCheck {
    /// Events checked, every lane together.
    pub checked: i64,
    /// The first broken event, as its position in its lane (`lane_seq`; for lane 0 of a database made before lanes,
    /// the same number as `seq`), and why; [`ChainCheck::first_broken_lane`] names the lane.
    pub first_broken: Option<(i64, String)>,
    /// The lane of `first_broken` (0 when valid).
    pub first_broken_lane: i32,
    /// Hash of lane 0's newest event (GENESIS when empty): the whole chain's head on a database with one lane.
    pub head: [u8; 32],
    /// Every lane's newest event, in lane order (lanes without events left out): what to keep elsewhere.
    pub heads: Vec<crate::domain::audit::LaneHead>,
    /// The newest checkpoint event (in log order), if any.
    pub checkpoint: Option<crate::domain::audit::LaneHead>,
}

// ---- The change log ----
/// What a watcher may be shown, as SQL can filter it (the access policy then reduces each row in the hub).
#[derive(Debug, Clone)]
pub struct ChangeFilter {
    /// Stored payload kinds (`"assistance"`, …); empty = nothing.
    pub kinds: Vec<String>,
    /// Stored division-code prefix; empty = everywhere. A row matches when its version or the version it superseded
    /// lies under it (the second case becomes a "left scope" change for a county office).
    pub division_prefix: String,
}

/// One change as read back: the fact version written, what it superseded, and the person's encrypted and masked ID.
#[derive(Debug, Clone)]
pub struct ChangeRow {
    pub cursor: i64,
    pub fact: StoredFact,
    /// The `source_version` this version superseded; `None` for a new record.
    pub prev_version: Option<u64>,
    /// The superseded version's division code.
    pub prev_division: Option<String>,
    pub id_cipher: Vec<u8>,
    pub id_masked: String,
}

// ---- Fund reports and warnings ----
/// A fund report to store as the next version of its (county, month, program).
#[derive(Debug, Clone)]
pub struct NewFundReport {
    pub county_code: String,
    pub month: String,
    pub program: String,
    pub disbursed_on: String,
    pub amount: String,
    pub recipients: i64,
    pub submitted_by: String,
    pub submitted_at: DateTime<Utc>,
}

/// One stored version of a fund report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFundReport {
    pub county_code: String,
    pub month: String,
    pub program: String,
    pub version: i64,
    pub disbursed_on: String,
    pub amount: String,
    pub recipients: i64,
    pub submitted_at: DateTime<Utc>,
    pub submitted_by: String,
}

/// A warning to store.
#[derive(Debug, Clone)]
pub struct NewWarning {
    pub agency: String,
    pub warning_id: String,
    pub person_key: PersonKey,
    pub division_code: String,
    pub county_code: String,
    pub reason: String,
    pub received_at: DateTime<Utc>,
    pub content_hash: [u8; 32],
}

/// What happened to one pushed warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningInsert {
    Accepted,
    Duplicate,
    Conflict,
}

/// A stored warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWarning {
    pub agency: String,
    pub warning_id: String,
    pub person_key: PersonKey,
    pub division_code: String,
    pub county_code: String,
    pub reason: String,
    pub received_at: DateTime<Utc>,
    pub state: String,
    pub visited_on: Option<String>,
    pub decided_on: Option<String>,
    pub decision: Option<String>,
    pub decided_program: Option<String>,
    pub closed_on: Option<String>,
}

/// The workflow columns a step sets (the others are left as they are).
#[derive(Debug, Clone, Default)]
pub struct WarningUpdate {
    pub state: String,
    pub visited_on: Option<String>,
    pub decided_on: Option<String>,
    pub decision: Option<String>,
    pub decided_program: Option<String>,
    pub closed_on: Option<String>,
}

// ---- The working-day calendar (migration 0008) ----
/// One stored version of a year's notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredNotice {
    pub year: i32,
    pub version: i64,
    pub source: String,
    /// `""` for a year's first version; why it was corrected otherwise.
    pub reason: String,
    pub loaded_at: DateTime<Utc>,
    pub loaded_by: String,
    /// The version's days, in date order.
    pub entries: Vec<CalendarEntry>,
}

/// One warning whose deadlines a load moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlineChange {
    pub agency: String,
    pub warning_id: String,
    pub old_visit_due: NaiveDate,
    pub old_decision_due: NaiveDate,
    pub old_provisional: bool,
    pub new_visit_due: NaiveDate,
    pub new_decision_due: NaiveDate,
    pub new_provisional: bool,
}

/// A recorded deadline change, with the notice version that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDeadlineChange {
    pub change: DeadlineChange,
    pub calendar_year: i32,
    pub calendar_version: i64,
    pub changed_at: DateTime<Utc>,
}

/// One load of a year's notice (`hub::calendar::load_notice`): what it writes, and what it was planned from. The
/// store writes it in one write transaction, after checking that every year's newest version is still
/// `expected_versions` (else [`NoticeLoaded::Raced`], nothing written), and computes the deadline changes there with
/// the hub's [`DeadlinePlan`] over the warnings received since `warnings_since`, read under the write lock (so a
/// warning pushed during the load is never missed).
#[derive(Debug, Clone)]
pub struct NoticeLoad {
    pub year: i32,
    pub source: String,
    pub reason: String,
    pub loaded_by: String,
    pub loaded_at: DateTime<Utc>,
    /// The new version's days (they replace the year's rows of `work_calendar`).
    pub entries: Vec<CalendarEntry>,
    /// `(year, newest version)` of every year held when the plan was made, by year.
    pub expected_versions: Vec<(i32, i64)>,
    /// Only warnings received at or after this instant can have deadlines the load moves.
    pub warnings_since: DateTime<Utc>,
}

/// The hub's rule for one load, run by the store inside the load's transaction: from the warnings received since
/// `NoticeLoad::warnings_since`, the deadline changes to record and the load's audit event.
pub type DeadlinePlan<'a> =
    &'a (dyn Fn(&[StoredWarning]) -> Result<(Vec<DeadlineChange>, AuditRecord), StoreError> + Send + Sync);

/// What `load_calendar_notice` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeLoaded {
    /// Stored as this version; these warnings' deadlines moved.
    Loaded { version: i64, changes: Vec<DeadlineChange> },
    /// Another notice was loaded since the plan was made: nothing written; plan again.
    Raced,
}

// ---- Data-key rotation ----
/// Where a rotation stands when it (re)starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationStart {
    /// Re-encrypt the rows whose `key_version` is not this generation.
    Run { generation: i64 },
    /// The database already uses the new key.
    AlreadyDone,
    /// The old key is not the database's key.
    WrongOldKey,
    /// Another rotation, to another key, was started and not finished.
    OtherRotationInProgress,
}

// ---- Medical policies, settlements and findings ----
/// A policy version as stored.
#[derive(Debug, Clone)]
pub struct StoredPolicy {
    pub params: PolicyParams,
    pub example: bool,
    pub source: String,
}

/// A valid settlement ready to store.
#[derive(Debug, Clone)]
pub struct NewSettlement {
    pub agency: String,
    pub settlement: Settlement,
    pub content_hash: [u8; 32],
}

/// What happened to one settlement of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettlementInsert {
    Accepted,
    /// Same id, same content: nothing changed.
    Duplicate,
    /// Same id, other content: refused, nothing changed.
    Conflict,
}

/// A stored finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFinding {
    pub agency: String,
    pub settlement_id: String,
    pub code: FindingCode,
    pub person_key: PersonKey,
    pub division_code: String,
    pub settled_on: NaiveDate,
    pub expected: Option<Money>,
    pub actual: Option<Money>,
    pub policy_version: String,
    pub agency_to_act: String,
    pub detected_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// Filter of `ListFindings`.
#[derive(Debug, Clone, Default)]
pub struct FindingFilter {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Division code prefix; empty = all.
    pub division_prefix: String,
    pub code: Option<FindingCode>,
    pub include_resolved: bool,
    /// Only findings without an answer, or whose latest answer is in a state (migration 0019); `None` = all.
    pub answer: Option<crate::domain::answer::AnswerFilter>,
}

/// Keyset position in the findings order: (settled_on, settlement_id, code, agency).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingCursor {
    pub settled_on: String,
    pub settlement_id: String,
    pub code: String,
    pub agency: String,
}

/// What a recheck did.
#[derive(Debug, Clone, Default)]
pub struct RecheckTally {
    pub persons: i64,
    pub settlements: i64,
    pub added: BTreeMap<FindingCode, i64>,
    pub resolved: BTreeMap<FindingCode, i64>,
    /// The recomputation and every finding (HIGH_BURDEN included) of the settlements asked for (`report_for`), by
    /// settlement id, to answer SubmitSettlements.
    pub checks: HashMap<String, (SettlementCheck, Vec<Finding>)>,
    /// HIGH_BURDEN warnings newly raised.
    pub warnings_raised: i64,
}

/// Prefix of the warning_id of a warning raised by HIGH_BURDEN (the rest is the settlement id).
pub const HIGH_BURDEN_WARNING_PREFIX: &str = "MEDICAL-HIGH_BURDEN-";

// ---- Quarterly snapshots ----
/// A stored snapshot's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotHeader {
    pub quarter: String,
    pub as_of: NaiveDate,
    pub knowledge_cutoff: DateTime<Utc>,
    pub created_by: String,
    pub previous_quarter: Option<String>,
    pub previous_hash: [u8; 32],
    /// Section name → hex SHA-256.
    pub section_hashes: BTreeMap<String, String>,
    pub content_hash: [u8; 32],
}

/// What the hub computes outside the transaction and hands in as finished JSON sections.
pub struct SnapshotInput<'a> {
    pub quarter: String,
    pub as_of: NaiveDate,
    pub cutoff: DateTime<Utc>,
    pub created_by: String,
    /// Bodies of the sections `fund_reports`, `warnings` and `standards` (canonical JSON).
    pub hub_sections: BTreeMap<&'static str, String>,
    pub coverage_params: &'a CoverageParams,
    pub standards: &'a MonthlyStandards,
    /// The birth date of a person from their encrypted ID number (the hub's keys).
    pub birth_date: &'a (dyn Fn(&PersonKey, &[u8]) -> Option<NaiveDate> + Sync),
}

/// Outcome of `create_snapshot`.
#[derive(Debug, Clone)]
pub enum CreateOutcome {
    Created(SnapshotHeader),
    /// The quarter is already frozen: its header, unchanged.
    AlreadyExists(SnapshotHeader),
    /// A later quarter is already frozen (the chain only grows forward).
    LaterExists(String),
}

/// The result of recomputing a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub header: SnapshotHeader,
    pub recomputed_content_hash: [u8; 32],
    /// Each difference found, named: a section whose rows no longer hash to the stored value, a content hash that
    /// differs, a broken link to the previous snapshot, a fact version referenced by a status row that changed.
    pub differences: Vec<String>,
}

// ---- Countersigned quarters (migration 0018, docs/countersign.md) ----
/// A countersignature the hub has checked, to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSnapshotSignature {
    pub signature: crate::security::countersign::Countersignature,
    /// When the hub keeps it.
    pub recorded_at: DateTime<Utc>,
    /// The SPIFFE ID of the caller that submitted it.
    pub recorded_by: String,
}

/// A kept countersignature: an agency's newest version for its quarter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshotSignature {
    pub signature: crate::security::countersign::Countersignature,
    /// 1 for the agency's first signature of the quarter; each re-sign adds one.
    pub version: i64,
    pub recorded_at: DateTime<Utc>,
    pub recorded_by: String,
}

// ---- Retention (migration 0015, docs/retention.md) ----
/// One kind of record's retention period (`retention_policy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub kind: crate::domain::retention::RecordKind,
    pub days: i64,
    /// The shortest period `doudi retention set` accepts (audit: 180 days).
    pub min_days: i64,
    /// Where the period comes from (a law, a standard, the documented policy).
    pub source: String,
    pub set_at: DateTime<Utc>,
    pub set_by: String,
}

/// What a legal hold holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldTarget {
    /// A person, by the hub's person key (the ID number is never stored).
    Person(PersonKey),
    /// A quarter: the audit events of its time span and the fact versions in force at some day of it.
    Quarter(crate::domain::calendar::Quarter),
}

/// A legal hold to place.
#[derive(Debug, Clone)]
pub struct NewHold {
    pub target: HoldTarget,
    pub reason: String,
    pub placed_by: String,
    pub placed_at: DateTime<Utc>,
}

/// A stored legal hold, in force or released (holds are never deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredHold {
    pub id: i64,
    pub target: HoldTarget,
    pub reason: String,
    pub placed_at: DateTime<Utc>,
    pub placed_by: String,
    /// `(when, by whom, why)` once released.
    pub released: Option<(DateTime<Utc>, String, String)>,
}

/// The audit event of a purge chunk, given the number of records the chunk purged (built inside the chunk's
/// transaction, which appends it).
pub type PurgeAudit<'a> = &'a (dyn Fn(u64) -> AuditRecord + Send + Sync);

// ---- Answers to findings (migration 0019, docs/findings.md) ----
/// An answer to a finding, to keep or as kept (`version` 0 until kept): [`FindingAnswer`] (medical, migration 0019)
/// and [`CoverageAnswer`] (coverage, migration 0020).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer<Id> {
    pub finding: Id,
    /// 1 for the finding's first answer, then 2, 3, …; every version is kept.
    pub version: i64,
    pub state: crate::domain::answer::AnswerState,
    /// FIXED only: what fixes it, as checked by the hub (a coverage finding: a fact version only).
    pub fixed_by: Option<crate::domain::answer::FixedBy>,
    /// DISPUTED's reason, or a note ('' when none).
    pub reason: String,
    /// When the hub kept it (microsecond precision).
    pub answered_at: DateTime<Utc>,
    /// The SPIFFE ID of the caller that answered.
    pub answered_by: String,
}

/// An answer to a medical finding (migration 0019).
pub type FindingAnswer = Answer<crate::domain::answer::FindingId>;

/// An answer to a coverage finding of a snapshot (migration 0020).
pub type CoverageAnswer = Answer<crate::domain::answer::CoverageFindingId>;

/// A coverage finding: one row of a snapshot's `coverage` section, with its snapshot's `as_of` and knowledge cutoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCoverageFinding {
    pub id: crate::domain::answer::CoverageFindingId,
    pub agency_to_act: String,
    /// GB/T 2260 county code (6 digits) of the person's first status row.
    pub county_code: String,
    /// The snapshot's `as_of` (the quarter's last day).
    pub as_of: NaiveDate,
    /// The snapshot's knowledge cutoff: the finding was raised then.
    pub knowledge_cutoff: DateTime<Utc>,
}

/// Filter of the coverage findings of one snapshot (`ListCoverageFindings`).
#[derive(Debug, Clone)]
pub struct CoverageFindingFilter {
    pub quarter: crate::domain::calendar::Quarter,
    /// Only findings naming this agency; `None` = every agency.
    pub agency_to_act: Option<String>,
    /// County code prefix; empty = all.
    pub division_prefix: String,
    /// Only this rule code.
    pub code: Option<&'static str>,
    /// Only findings without an answer, or whose latest answer is in a state; `None` = all.
    pub answer: Option<crate::domain::answer::AnswerFilter>,
}

/// A fact version as stored, for a FIXED claim: its person, when the hub recorded it, from when it is in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactVersionSeen {
    pub person_key: PersonKey,
    pub recorded_at: DateTime<Utc>,
    pub valid_from: NaiveDate,
}

/// What a medical finding's explanation is recomputed from (issue 19 item 3): the person's stored settlements and
/// their current `assistance` and `medical_insurance` fact versions, the same inputs as the recheck's.
#[derive(Debug, Clone, Default)]
pub struct MedicalInputs {
    pub settlements: Vec<InputSettlement>,
    pub facts: Vec<InputFact>,
}

/// A stored settlement with its agency, arrival and content hash.
#[derive(Debug, Clone)]
pub struct InputSettlement {
    pub agency: String,
    pub settlement: Settlement,
    pub received_at: DateTime<Utc>,
    pub content_hash: [u8; 32],
}

/// A current fact version of kind `assistance` or `medical_insurance`, with its identity and content hash.
#[derive(Debug, Clone)]
pub struct InputFact {
    pub agency: String,
    pub fact_id: String,
    pub source_version: i64,
    pub kind: String,
    pub program: Option<String>,
    pub status: Option<String>,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    pub content_hash: [u8; 32],
    pub recorded_at: DateTime<Utc>,
}

/// A status row of a snapshot (docs/snapshot-format.md) with the fact version it pins: what a coverage finding's
/// explanation is recomputed from.
#[derive(Debug, Clone)]
pub struct CoverageInput {
    pub agency: String,
    pub fact_id: String,
    pub source_version: i64,
    pub kind: String,
    pub content_hash: [u8; 32],
    /// The fact version's payload (canonical JSON), `valid_from`, `valid_to` and `recorded_at`.
    pub payload: String,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    pub recorded_at: DateTime<Utc>,
}

/// A price-index version as stored (migration 0021; issue 18, docs/subsidies.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPriceIndex {
    pub index: crate::domain::subsidy::PriceIndex,
    /// 1, 2, … per month; the highest is the one in force.
    pub version: i64,
    /// Who pushed it.
    pub agency: String,
    pub recorded_at: DateTime<Utc>,
}

/// A fixed-amount campaign as stored (migration 0022): the campaign and its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFixedCampaign {
    pub campaign: crate::domain::subsidy::FixedCampaign,
    /// The document(s) the groups and amounts come from.
    pub source: String,
}

/// A linkage rule version as stored (migration 0021): the rule and its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLinkageRule {
    pub rule: crate::domain::subsidy::LinkageRule,
    /// The document(s) the values come from.
    pub source: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::admin::{Actor, AdminEvent, OperatorId, Role};

    #[test]
    fn an_admin_event_records_who_what_and_both_hashes() {
        // docs/admin.md: agency "operator", method the RPC path, purpose who and the arguments, outcome with hashes.
        let op = OperatorId::new("doudi.qingyang.gov.cn", Role::Security, "alice").unwrap();
        let actor = Actor::operator(&op, "RefreshCrl");
        let e = AdminEvent {
            actor: &actor,
            command: "doudi certs refresh-crl",
            args: "dir=certs".into(),
            detail: "CRL rewritten".into(),
            before: "sha256:aa".into(),
            after: "sha256:bb".into(),
        }
        .record();
        assert_eq!(e.agency, "operator");
        assert_eq!(e.method, "/doudi.v1.Admin/RefreshCrl");
        assert_eq!(e.purpose, "by=spiffe://doudi.qingyang.gov.cn/operator/security/alice; role=security; dir=certs");
        assert_eq!(e.outcome, "OK CRL rewritten; before=sha256:aa; after=sha256:bb");
        assert!(e.person_keys.is_empty());
    }
}
