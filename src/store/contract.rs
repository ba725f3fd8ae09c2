//! The storage contract: every operation the hub needs from a database, declared once, grouped by area, each with
//! what it reads and writes, its transaction guarantee and its errors. The two backends, [`super::SqliteStore`]
//! (`store/sqlite/`) and [`super::PgStore`] (`store/postgres/`), implement every trait; [`Storage`] is all of them,
//! and [`super::Store`] holds one as a trait object, so the hub never knows which backend it has.
//!
//! Errors: every operation returns [`StoreError`]: `Db` (the database failed or was unreachable:
//! [`StoreError::is_transient`] says whether a retry may succeed; nothing was committed), `Migrate`, or `Corrupt` (a
//! stored value does not read back). A refused business rule is never an error here: it is a value (e.g.
//! [`WarningInsert::Conflict`], [`CreateOutcome::AlreadyExists`]).
//!
//! Adding an operation: declare it in its area's trait here (with its documentation), implement it once in the area's
//! macro in `store/sql/` (else in both backends' area files), and cover it in the conformance suite
//! (`tests/api/conformance.rs`, run on both backends).

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::agency::AgencyCode;
use crate::domain::calendar::{Month, Quarter};
use crate::domain::division::DivisionCode;
use crate::domain::medical::{FindingCode, PolicyParams};
use crate::domain::versioning::Decision;
use crate::domain::workdays::CalendarEntry;
use crate::security::crypto::PersonKey;
use crate::store::StoreError;
use crate::store::rows::*;

/// Opening, migrating and closing the database (the constructor is the backend's `open`, chosen by
/// [`super::Store::open`]).
#[async_trait]
pub trait StoreAdmin: Send + Sync {
    /// `"sqlite"` or `"postgres"` (logs, metrics, `config show`).
    fn backend_name(&self) -> &'static str;

    /// The backend itself, for tests that reach its pool ([`super::Store::sqlite_pool`], [`super::Store::pg_pool`]).
    fn as_any(&self) -> &dyn std::any::Any;

    /// Apply this backend's migrations (`migrations/sqlite/` or `migrations/postgres/`, same versions and names);
    /// idempotent. On PostgreSQL replicas started together wait on sqlx's advisory lock: one applies, the others
    /// find nothing to do. A failed migration is rolled back (each runs in a transaction).
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Apply the migrations numbered up to `version` (tests of a database made by an earlier release; `migrate`
    /// applies them all).
    async fn migrate_to(&self, version: i64) -> Result<(), StoreError>;

    /// `(applied, known)`: the newest migration applied to the database (0 when it has none) and the newest this
    /// release has. Reads only. Operator commands run only when the two are equal: applying a migration is
    /// `doudi migrate`'s (or a starting hub's) job, never a side effect of a check (docs/operations.md §11).
    async fn migration_versions(&self) -> Result<(i64, i64), StoreError>;

    /// Close the pools (SQLite: after a final WAL checkpoint). No operation may follow.
    async fn close(&self);

    /// Append a checkpoint of every audit lane's head to this process's lane every `every` while the log changes
    /// (docs/audit-lanes.md), until the store is closed. PostgreSQL only, where each hub process appends its reads'
    /// audit events to a lane of its own; SQLite has one lane, and this does nothing.
    fn start_audit_checkpoints(&self, every: std::time::Duration) {
        let _ = every;
    }

    /// Connections of each pool: `(pool, open, idle)` (for metrics): SQLite `read` and `write`, PostgreSQL `postgres`.
    fn pool_use(&self) -> Vec<(&'static str, u32, usize)>;
}

/// One request's share of an ingest ([`FactStore::ingest_batches`]): its valid facts, their distinct persons, and its
/// audit event (`None` only when the benchmark measures the audit chain's cost, `Limits::bench_skip_ingest_audit`).
#[derive(Clone, Copy)]
pub struct IngestBatch<'a> {
    pub facts: &'a [PreparedFact],
    pub persons: &'a [NewPerson],
    pub audit: Option<&'a AuditRecord>,
}

/// Storing facts: the ingest write path (each backend's own statements). Every write is one transaction with its audit
/// event (ARCHITECTURE.md, "Invariants").
#[async_trait]
pub trait FactStore: Send + Sync {
    /// Store batches of valid facts, the persons they introduce and each batch's audit event, all in one transaction
    /// (a StreamFacts group: consecutive messages of one stream, docs/storage-layout.md "Write path"). In each batch,
    /// `persons` holds every distinct person of the batch: one not yet known gets the next `person_id` (arrival order,
    /// docs/storage-layout.md), one known only from an audited probe gets its cipher, a known one is left as it is.
    /// Facts are decided in order, across the batches as within one: a record written twice is decided against its
    /// earlier version. Returns one decision per fact, per batch, in order. The transaction waits for the writer in
    /// `priority`'s queue ([`crate::store::writer`]). On an error nothing of any batch is stored.
    async fn ingest_batches(
        &self,
        batches: &[IngestBatch<'_>],
        priority: crate::store::writer::Priority,
    ) -> Result<Vec<Vec<Decision>>, StoreError>;

    /// [`FactStore::ingest_batches`] of one batch, interactive (a PushFacts).
    async fn ingest(
        &self,
        facts: &[PreparedFact],
        persons: &[NewPerson],
        audit: Option<&AuditRecord>,
    ) -> Result<Vec<Decision>, StoreError> {
        let batch = IngestBatch { facts, persons, audit };
        let mut decided = self.ingest_batches(&[batch], crate::store::writer::Priority::Interactive).await?;
        decided.pop().ok_or_else(|| crate::store::corrupt("facts", "no decisions for the batch"))
    }
}

/// Persons and their facts read back, reference data and counts, with the two small writes beside them (the data
/// key's check value, the audit event of a read). Written once for both backends (`store/sql/facts.rs`).
#[async_trait]
pub trait FactReads: Send + Sync {
    /// Record the data key's check value on first use, or compare it. Returns `false` when the
    /// database was created with another data key.
    async fn verify_key_check(&self, check: &[u8; 32]) -> Result<bool, StoreError>;

    /// Append one audit event in its own transaction (for reads). A person key the store has not met gets a
    /// `persons` row without an ID number, so that the event is found by that person (`list_audit_events`); it is
    /// not a known person (no cipher, in no list).
    async fn record_audit(&self, audit: &AuditRecord) -> Result<(), StoreError>;

    /// The encrypted ID number of a person, if known (`None` also for a person met only in an audited probe).
    async fn person_cipher(&self, key: &PersonKey) -> Result<Option<Vec<u8>>, StoreError>;

    /// Encrypted ID numbers of several persons.
    async fn person_ciphers(&self, keys: &[PersonKey]) -> Result<HashMap<PersonKey, Vec<u8>>, StoreError>;

    /// Current facts of a person in force on `as_of`.
    async fn person_facts(&self, key: &PersonKey, as_of: NaiveDate) -> Result<Vec<StoredFact>, StoreError>;

    /// Current facts in force on `as_of` of several persons.
    async fn facts_of_persons(&self, keys: &[PersonKey], as_of: NaiveDate) -> Result<Vec<StoredFact>, StoreError>;

    /// [`FactReads::facts_of_persons`] of the payload kinds `kinds` only (nothing for none): what a subsidy decision
    /// reads (assistance and employment, `domain::subsidy::qualifications`) without the other kinds' rows.
    async fn facts_of_persons_of_kinds(
        &self,
        keys: &[PersonKey],
        as_of: NaiveDate,
        kinds: &[crate::domain::fact::PayloadKind],
    ) -> Result<Vec<StoredFact>, StoreError>;

    /// The current facts of the payload kinds `kinds` (nothing for none) in force on `as_of` of the persons whose
    /// `person_id` lies in `(after, through]`, each with its person's `person_id`, in `person_id` order and, within a
    /// person, by kind, agency and fact id (the order of [`FactReads::facts_of_persons`]). A pass over the whole
    /// population in arrival order, one range at a time (the subsidy rosters of `hub::subsidy`), along the index
    /// `facts_current_person (person_id, kind)`: no search of the random-keyed person index per person. Reads only;
    /// errors: the database's, and [`StoreError::Corrupt`] for a row that does not parse.
    async fn facts_in_person_range(
        &self,
        as_of: NaiveDate,
        kinds: &[crate::domain::fact::PayloadKind],
        after: i64,
        through: i64,
    ) -> Result<Vec<(i64, StoredFact)>, StoreError>;

    /// The largest `person_id` given so far (0 when no person is known): where a pass of
    /// [`FactReads::facts_in_person_range`] ends.
    async fn last_person_id(&self) -> Result<i64, StoreError>;

    /// What a batch comparison (MatchRecipients, `hub::matching`) is made of: the current `assistance` and `student`
    /// facts in force on `as_of` of the persons `keys`, each with its payload **projected** to the stored columns a
    /// comparison answers with — `assistance`: `program` and `status` (every other field absent); `student`: no
    /// field — read from the fact's columns, not by parsing its payload JSON (the columns are written from the same
    /// payload in the same statement, `insert_fact_rows`). The policy's reduction (`AccessPolicy::redact`) keeps or
    /// drops each field on its own and decides visibility by agency, kind, division and the student condition only,
    /// so reducing the projection gives the same program and status as reducing the whole fact.
    ///
    /// All the keys are read in one read transaction (one snapshot, even when the keys need several statements:
    /// SQLite's `IN` lists are bounded), so a comparison never mixes two states of the store. Reads only; errors:
    /// the database's, and [`StoreError::Corrupt`] for a stored kind, program or status that is not a known code.
    async fn comparison_facts_of_persons(
        &self,
        keys: &[PersonKey],
        as_of: NaiveDate,
    ) -> Result<Vec<StoredFact>, StoreError>;

    /// Persons matching the filter as `(person_id, person_key)`, in arrival order (ascending `person_id`, the
    /// compact id of docs/storage-layout.md), those after `after` only, at most `limit`. A list's position is its
    /// last `person_id`.
    async fn list_persons(
        &self,
        filter: &PersonFilter,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, PersonKey)>, StoreError>;

    /// Number of persons matching the filter.
    async fn count_persons(&self, filter: &PersonFilter) -> Result<i64, StoreError>;

    /// The reference standards (dibao, tekun) of `year`, or of every year, by year, division and item.
    async fn list_standards(&self, year: Option<i64>) -> Result<Vec<StandardRow>, StoreError>;

    /// The GB/T 2260 divisions the hub knows (code, name, level), by code.
    async fn list_divisions(&self) -> Result<Vec<DivisionRow>, StoreError>;

    /// The newest audit event's log number `seq` (docs/audit-lanes.md): on SQLite the number of events (numbered from
    /// 1 without gaps); on PostgreSQL a sequence shared by the lanes, which may skip numbers (a rolled-back append);
    /// it only grows. One primary-key lookup, unlike `COUNT(*)`.
    async fn audit_chain_length(&self) -> Result<i64, StoreError>;

    /// Number of audit events (`COUNT(*)`: for tests and operators; metrics use `audit_chain_length`).
    async fn audit_count(&self) -> Result<i64, StoreError>;

    /// Number of stored fact versions (all, current or not).
    async fn fact_version_count(&self) -> Result<i64, StoreError>;
}

/// Reading and verifying the hash-chained audit log.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Events matching `filter` with `seq < before` (all if `None`), newest first, at most `limit`.
    async fn list_audit_events(
        &self,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditEventRow>, StoreError>;

    /// Recompute the chain from the stored rows ([`check_chain`]).
    async fn verify_audit_chain(&self) -> Result<ChainCheck, StoreError>;

    /// Every lane's newest committed event, in lane order (lanes without events left out), found from
    /// `audit_events` alone (not from `audit_lanes`) in one statement on a pooled connection: no write lock, so
    /// signing heads never waits for a push or a read's audit group (docs/audit-lanes.md "Signed heads").
    async fn audit_lane_heads(&self) -> Result<Vec<crate::domain::audit::LaneHead>, StoreError>;

    /// The stored hash of event `lane_seq` of lane `lane`, or `None` when there is no such event.
    async fn audit_event_hash(&self, lane: i32, lane_seq: i64) -> Result<Option<[u8; 32]>, StoreError>;

    /// Keep a signed head in `audit_signed_heads` (migration 0012). One row insert: on SQLite under the writer (a
    /// short interactive write), on PostgreSQL without the hub-wide lock.
    async fn keep_signed_head(&self, head: &crate::security::audit_head::SignedHead) -> Result<(), StoreError>;

    /// The newest kept signed head, if any.
    async fn newest_signed_head(&self) -> Result<Option<crate::security::audit_head::SignedHead>, StoreError>;
}

/// The benchmark floor of P1/P7 (`doudi bench`): the ingest statements without lookups, decisions or audit.
#[async_trait]
pub trait BenchFloor: Send + Sync {
    /// Insert `facts` (all current, first versions) and `persons` in one write transaction on the writer connection.
    async fn bench_insert_rows(&self, facts: &[PreparedFact], persons: &[NewPerson]) -> Result<(), StoreError>;

    /// The storage engine's own limit (P1's second floor, issue 16): append `blobs` to a minimal table
    /// `bench_blobs (id integer key in arrival order, body)` in one write transaction, creating the table on first use.
    /// Only `doudi bench` calls it, on a database of its own.
    async fn bench_append_blobs(&self, blobs: &[Vec<u8>]) -> Result<(), StoreError>;
}

/// The working-day calendar's notices, their versions, and the warning deadline changes a load makes (migration 0008).
#[async_trait]
pub trait CalendarStore: Send + Sync {
    /// Every version of every year's notice, by year and version.
    async fn calendar_notices(&self) -> Result<Vec<StoredNotice>, StoreError>;

    /// Write one load ([`NoticeLoad`]) in one write transaction: check the versions it was planned from, read the
    /// warnings received since `warnings_since`, run `plan` on them, and store the version, the year's rows, the
    /// deadline changes and the audit event. [`NoticeLoaded::Raced`] and nothing written when another notice was
    /// loaded meanwhile.
    async fn load_calendar_notice(&self, load: &NoticeLoad, plan: DeadlinePlan<'_>)
    -> Result<NoticeLoaded, StoreError>;

    /// The recorded deadline changes of the warnings with these ids (any agency), oldest first.
    async fn warning_deadline_changes(&self, warning_ids: &[String]) -> Result<Vec<StoredDeadlineChange>, StoreError>;
}

/// The change log behind WatchChanges (docs/change-feed.md): cursors in commit order, a published head.
#[async_trait]
pub trait ChangeLog: Send + Sync {
    /// The newest committed cursor (0 when the log is empty).
    async fn change_log_head(&self) -> Result<i64, StoreError>;

    /// The oldest cursor still in the log, `None` when it is empty. A retention purge
    /// ([`RetentionStore::purge_chunk`]) makes it rise, and older cursors answer OUT_OF_RANGE.
    async fn change_log_oldest(&self) -> Result<Option<i64>, StoreError>;

    /// A receiver of the newest committed cursor: it changes after every commit that appended changes.
    fn subscribe_changes(&self) -> tokio::sync::watch::Receiver<i64>;

    /// Changes with `after < cursor <= upto` that match `filter`, in cursor order, at most `limit`.
    async fn changes_after(
        &self,
        filter: &ChangeFilter,
        after: i64,
        upto: i64,
        limit: usize,
    ) -> Result<Vec<ChangeRow>, StoreError>;
}

/// Fund reports, early warnings and the working-day calendar in force (docs/spec/coordination.md).
#[async_trait]
pub trait CoordinationStore: Send + Sync {
    /// Store `r` as the next version of its (county, month, program); returns the stored version.
    async fn submit_fund_report(&self, r: &NewFundReport) -> Result<StoredFundReport, StoreError>;

    /// Every version of the month's reports (of one program, or all), by county, program, version.
    async fn fund_reports(&self, month: Month, program: Option<&str>) -> Result<Vec<StoredFundReport>, StoreError>;

    /// Sum, in fen, of the monthly benefits of the county's current assistance facts of `program`
    /// (and `residence`, if given) that are ACTIVE and in force on `on` (facts without a benefit add 0).
    /// One aggregate over the denormalized `benefit_fen` column, using `facts_current_program`; exact in `i128`
    /// ([`super::split_sum`]).
    async fn roster_benefit_fen(
        &self,
        county: &DivisionCode,
        program: &str,
        residence: Option<&str>,
        on: NaiveDate,
    ) -> Result<i128, StoreError>;

    /// Store warnings (new persons first) and the request's audit event in one transaction. A known
    /// (agency, warning_id) is DUPLICATE with the same content hash, CONFLICT otherwise; neither changes anything.
    async fn push_warnings(
        &self,
        warnings: &[NewWarning],
        persons: &[NewPerson],
        audit: &AuditRecord,
    ) -> Result<Vec<WarningInsert>, StoreError>;

    /// One warning.
    async fn warning(&self, agency: &AgencyCode, warning_id: &str) -> Result<Option<StoredWarning>, StoreError>;

    /// Apply a workflow step if the warning is still in `from_state`, with the audit event, in one transaction.
    /// Returns `false` (and writes nothing) when the state changed meanwhile.
    async fn update_warning(
        &self,
        agency: &AgencyCode,
        warning_id: &str,
        from_state: &str,
        u: &WarningUpdate,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError>;

    /// Warnings whose division starts with `prefix` (empty = all), by received_at, warning_id.
    async fn list_warnings(&self, prefix: &str) -> Result<Vec<StoredWarning>, StoreError>;

    /// The official calendar's rows (`work_calendar`).
    async fn work_calendar(&self) -> Result<Vec<CalendarEntry>, StoreError>;

    /// Number of stored fund report versions and warnings (tests: "nothing stored changed").
    async fn coordination_counts(&self) -> Result<(i64, i64), StoreError>;
}

/// The data key's check value and the resumable re-encryption of ID numbers (`doudi keys rotate`).
#[async_trait]
pub trait KeyRotation: Send + Sync {
    /// A `hub_meta` value (`None` when absent, or when the table does not exist yet).
    async fn meta(&self, name: &str) -> Option<Vec<u8>>;

    /// Begin (or resume) a rotation from the key with `old_check` to the key with `new_check`, recording the lookup
    /// key wrapped under the new key.
    async fn rotation_begin(
        &self,
        old_check: &[u8; 32],
        new_check: &[u8; 32],
        lookup_wrapped_new: &[u8],
    ) -> Result<RotationStart, StoreError>;

    /// Up to `limit` persons not yet at `generation`: key and stored cipher.
    async fn persons_to_rotate(&self, generation: i64, limit: usize) -> Result<Vec<(PersonKey, Vec<u8>)>, StoreError>;

    /// Store re-encrypted ciphers at `generation`, in one transaction (a row already at `generation` is left alone).
    async fn rotate_persons(&self, rows: &[(PersonKey, Vec<u8>)], generation: i64) -> Result<u64, StoreError>;

    /// Switch the database to the new key: its check value, the wrapped lookup key and the generation.
    async fn rotation_finish(&self) -> Result<(), StoreError>;
}

/// Medical policy versions, settlements and the findings of the three-tier cross-check (docs/spec/medical.md).
#[async_trait]
pub trait MedicalStore: Send + Sync {
    /// Every medical policy version, oldest first. A stored version that breaks a rule of
    /// [`PolicyParams::validate`] is an error (`Corrupt`), never skipped.
    async fn medical_policies(&self) -> Result<Vec<StoredPolicy>, StoreError>;

    /// Add a policy version. Returns `false` (nothing written) if its `version` label or its (pooling area,
    /// effective_from) is already taken: versions are never overwritten.
    async fn add_medical_policy(&self, p: &StoredPolicy) -> Result<bool, StoreError>;

    /// [`MedicalStore::add_medical_policy`] with its audit event, appended in the same transaction when the version
    /// was added (nothing is written when it was refused): `doudi.v1.Admin/AddPolicyVersion` and the direct command.
    async fn add_medical_policy_audited(&self, p: &StoredPolicy, audit: &AuditRecord) -> Result<bool, StoreError>;

    /// Store a batch of valid settlements (new persons first), recheck every person they touch, and append the
    /// audit event, in one transaction. Returns one [`SettlementInsert`] per settlement, in order, and the
    /// recheck's tally (with the checks of the accepted settlements). A settlement repeated inside the batch is
    /// decided against the first.
    async fn submit_settlements(
        &self,
        batch: &[NewSettlement],
        persons: &[NewPerson],
        policies: &[PolicyParams],
        default_area: &str,
        audit: &AuditRecord,
        now: DateTime<Utc>,
    ) -> Result<(Vec<SettlementInsert>, RecheckTally), StoreError>;

    /// Persons (keys, sorted) with a settlement settled in `[from, to]` whose division starts with `prefix`.
    async fn persons_with_settlements(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        prefix: &str,
    ) -> Result<Vec<PersonKey>, StoreError>;

    /// Recheck `persons` (their whole history) in one transaction, with the audit event.
    async fn recheck_persons(
        &self,
        persons: &[PersonKey],
        policies: &[PolicyParams],
        default_area: &str,
        audit: Option<&AuditRecord>,
        now: DateTime<Utc>,
        tally: &mut RecheckTally,
    ) -> Result<(), StoreError>;

    /// Findings matching `filter` after `after`, in (settled_on, settlement_id, code, agency) order.
    async fn list_findings(
        &self,
        filter: &FindingFilter,
        after: Option<&FindingCursor>,
        limit: usize,
    ) -> Result<Vec<StoredFinding>, StoreError>;

    /// Number of findings matching `filter`.
    async fn count_findings(&self, filter: &FindingFilter) -> Result<i64, StoreError>;

    /// Open findings per code (all settlements), for the demo and snapshots.
    async fn open_findings_by_code(&self) -> Result<BTreeMap<FindingCode, i64>, StoreError>;

    /// Totals paid by tier over all settlements, in fen: (settlements, basic, critical illness, assistance).
    async fn settlement_totals(&self) -> Result<(i64, i128, i128, i128), StoreError>;
}

/// Quarterly snapshots: freezing, reading, verifying (docs/snapshot-format.md).
#[async_trait]
pub trait SnapshotStore: Send + Sync {
    /// Freeze a quarter (see the module docs). The status rows are the fact versions in force on `as_of` that were
    /// current at `cutoff`: recorded at or before it and not superseded by then (a version recorded after `cutoff`
    /// leaves the one it replaced in the quarter).
    async fn create_snapshot(&self, input: SnapshotInput<'_>) -> Result<CreateOutcome, StoreError>;

    /// One snapshot's header.
    async fn snapshot(&self, quarter: Quarter) -> Result<Option<SnapshotHeader>, StoreError>;

    /// Every snapshot's header, oldest first.
    async fn snapshots(&self) -> Result<Vec<SnapshotHeader>, StoreError>;

    /// A JSON section's stored body.
    async fn snapshot_section(&self, quarter: Quarter, section: &str) -> Result<Option<String>, StoreError>;

    /// Coverage findings counted by (code, agency to act, county).
    async fn snapshot_coverage_counts(
        &self,
        quarter: Quarter,
    ) -> Result<Vec<(String, String, String, u64)>, StoreError>;

    /// Persons, households (distinct `household_id`) and monthly benefits (fen) of ACTIVE enrolments in force on
    /// `on`, by (county, program), from the current facts.
    async fn active_by_county_program(
        &self,
        on: NaiveDate,
    ) -> Result<HashMap<(String, String), (u64, u64, i128)>, StoreError>;

    /// Open medical findings of settlements settled in `[from, to]`, by code (every code, 0 where none).
    async fn findings_by_code_between(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<(String, u64)>, StoreError>;

    /// Recompute a snapshot from its stored rows and name what differs (`None`: no such snapshot).
    async fn verify_snapshot(&self, quarter: Quarter) -> Result<Option<Verification>, StoreError>;
}

/// Countersigned quarters (migration 0018, docs/countersign.md): each partner agency's signature of a frozen
/// snapshot's content hash. The hub checks a signature (certificate, CRL, agency, hash) before it reaches the store;
/// the store keeps every version. Written once for both backends (`store/sql/countersign.rs`).
#[async_trait]
pub trait CountersignStore: Send + Sync {
    /// Keep `sig` as the next version of its (quarter, agency) (`MAX(version) + 1`, 1 for the first) and append
    /// `audit(version)` (lane 0), in one write transaction. Reads `snapshots` in that transaction: returns `None`, and
    /// writes nothing, when the quarter has no snapshot or its stored content hash is not the one signed; else the
    /// version kept.
    async fn add_snapshot_signature(
        &self,
        sig: &NewSnapshotSignature,
        audit: &(dyn Fn(i64) -> AuditRecord + Send + Sync),
    ) -> Result<Option<i64>, StoreError>;

    /// The newest version of every agency's signature of `quarter`, by agency (byte order); empty when none (or no
    /// such quarter). One read statement, no transaction. `Corrupt` when a stored hash is not 32 bytes.
    async fn snapshot_signatures(&self, quarter: Quarter) -> Result<Vec<StoredSnapshotSignature>, StoreError>;
}

/// Answers to medical findings (migration 0019, docs/findings.md): the agency a finding names records IN_PROGRESS,
/// FIXED or DISPUTED; every answer is a new version, never overwritten. The hub checks who answers and whether a FIXED
/// claim holds (with [`FindingAnswerStore::finding`], [`FindingAnswerStore::fact_version_person`] and
/// [`FindingAnswerStore::settlement_person`]) before the store keeps it. Written once for both backends
/// (`store/sql/answers.rs`, expanded in each backend's `medical.rs`).
#[async_trait]
pub trait FindingAnswerStore: Send + Sync {
    /// The medical finding `id` (resolved or not), or `None`. Reads `medical_findings`: one statement, no transaction.
    async fn finding(&self, id: &crate::domain::answer::FindingId) -> Result<Option<StoredFinding>, StoreError>;

    /// The fact version (`agency`, `fact_id`, `source_version`) as stored: its person key and when the hub recorded
    /// it; `None` when no such version is stored. Reads `facts` joined to `persons`: one statement, no transaction.
    async fn fact_version_person(
        &self,
        agency: &str,
        fact_id: &str,
        source_version: i64,
    ) -> Result<Option<(PersonKey, DateTime<Utc>)>, StoreError>;

    /// The settlement (`agency`, `settlement_id`): its person key and when the hub received it; `None` when not
    /// stored. Reads `settlements`: one statement, no transaction.
    async fn settlement_person(
        &self,
        agency: &str,
        settlement_id: &str,
    ) -> Result<Option<(PersonKey, DateTime<Utc>)>, StoreError>;

    /// Keep `answer` (its `version` ignored) as the next version of its finding (`MAX(version) + 1`, 1 for the
    /// first) and append `audit(version)` (lane 0), in one write transaction; returns the version kept. Reads
    /// `medical_findings` in that transaction: returns `None`, and writes nothing, when the finding is not stored.
    async fn add_finding_answer(
        &self,
        answer: &FindingAnswer,
        audit: &(dyn Fn(i64) -> AuditRecord + Send + Sync),
    ) -> Result<Option<i64>, StoreError>;

    /// Every version of the answers to `id`, oldest first; empty when none. One read statement, no transaction.
    /// `Corrupt` for a stored state or fix that does not parse.
    async fn finding_answers(&self, id: &crate::domain::answer::FindingId) -> Result<Vec<FindingAnswer>, StoreError>;

    /// The latest answer of each finding of `ids` that has one (in no particular order); at most 1,000 ids. One read
    /// statement, no transaction.
    async fn latest_finding_answers(
        &self,
        ids: &[crate::domain::answer::FindingId],
    ) -> Result<Vec<FindingAnswer>, StoreError>;

    /// Section 11 of the summary (docs/findings.md): the medical findings of settlements settled in `[from, to]` and
    /// detected at or before `known_at` (the previous snapshot's cutoff), each with its latest answer as it stood at
    /// `at` (the newest version with `answered_at <= at`). Two read statements, no transaction.
    async fn medical_findings_as_of(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        known_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<Vec<(StoredFinding, Option<FindingAnswer>)>, StoreError>;

    /// What a medical finding's explanation is recomputed from (issue 19 item 3): every settlement of `person` (any
    /// agency) and their current `assistance` and `medical_insurance` fact versions — the inputs of the recheck. Two
    /// read statements, no transaction. `Corrupt` for a stored value that does not read back.
    async fn medical_inputs(&self, person: &PersonKey) -> Result<MedicalInputs, StoreError>;
}

/// Answers to the coverage findings of snapshots (migration 0020, docs/findings.md): the agency a coverage finding
/// names records IN_PROGRESS, FIXED (a fact version, checked by the hub) or DISPUTED; every answer is a new version,
/// never overwritten. The findings themselves are the snapshot's `coverage` rows (migration 0006), which never change.
/// Written once for both backends (`store/sql/coverage_answers.rs`, expanded in each backend's `coverage_answers.rs`).
#[async_trait]
pub trait CoverageAnswerStore: Send + Sync {
    /// The coverage finding `id` (a row of its snapshot's `coverage` section, with the snapshot's `as_of` and
    /// cutoff), or `None`. One read statement, no transaction.
    async fn coverage_finding(
        &self,
        id: &crate::domain::answer::CoverageFindingId,
    ) -> Result<Option<StoredCoverageFinding>, StoreError>;

    /// The fact version (`agency`, `fact_id`, `source_version`) as stored (person, `recorded_at`, `valid_from`);
    /// `None` when not stored. One read statement, no transaction.
    async fn fact_version_seen(
        &self,
        agency: &str,
        fact_id: &str,
        source_version: i64,
    ) -> Result<Option<FactVersionSeen>, StoreError>;

    /// Keep `answer` (its `version` ignored) as the next version of its finding (`MAX(version) + 1`) and append
    /// `audit(version)` (lane 0), in one write transaction; returns the version kept, or `None` (nothing written)
    /// when the finding is not a stored coverage row.
    async fn add_coverage_answer(
        &self,
        answer: &CoverageAnswer,
        audit: &(dyn Fn(i64) -> AuditRecord + Send + Sync),
    ) -> Result<Option<i64>, StoreError>;

    /// Every version of the answers to `id`, oldest first; empty when none. One read statement.
    async fn coverage_answers(
        &self,
        id: &crate::domain::answer::CoverageFindingId,
    ) -> Result<Vec<CoverageAnswer>, StoreError>;

    /// The coverage findings matching `filter`, each with its latest answer, in (code, person key) byte order, those
    /// after `after` only, at most `limit`. One read statement.
    async fn list_coverage_findings(
        &self,
        filter: &CoverageFindingFilter,
        after: Option<(&str, [u8; 32])>,
        limit: usize,
    ) -> Result<Vec<(StoredCoverageFinding, Option<CoverageAnswer>)>, StoreError>;

    /// Number of coverage findings matching `filter`. One read statement.
    async fn count_coverage_findings(&self, filter: &CoverageFindingFilter) -> Result<i64, StoreError>;

    /// Every coverage row of `quarter`'s snapshot (any order; empty when not frozen).
    async fn snapshot_coverage_rows(
        &self,
        quarter: Quarter,
    ) -> Result<Vec<crate::domain::snapshot::CoverageRow>, StoreError>;

    /// For every finding of `quarter` answered at or before `at`: its latest answer as it stood at `at` (the newest
    /// version with `answered_at <= at`), any order. One read statement.
    /// The status rows of `person` in `quarter`'s snapshot, each with the fact version it pins (payload, validity,
    /// `recorded_at`; joined on agency, fact id and source version), by agency and fact id: what a coverage finding's
    /// explanation is recomputed from. Empty when none. One read statement.
    async fn coverage_inputs(&self, quarter: Quarter, person: &[u8; 32]) -> Result<Vec<CoverageInput>, StoreError>;

    async fn coverage_answers_as_of(
        &self,
        quarter: Quarter,
        at: DateTime<Utc>,
    ) -> Result<Vec<CoverageAnswer>, StoreError>;
}

/// Retention (migration 0015, docs/retention.md): the periods per kind of record, legal holds, and the resumable purge.
/// Every write here is one write transaction with its audit event (lane 0). Written once for both backends
/// (`store/sql/retention.rs`).
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Every kind's period, by kind (`retention_policy`).
    async fn retention_policies(&self) -> Result<Vec<RetentionPolicy>, StoreError>;

    /// Set `kind`'s period to `days` with its source, and append `audit`, in one transaction. Returns the period as it
    /// was, or `None` (nothing written) when the table holds no such kind. The caller checks the floor
    /// ([`crate::domain::retention::check_period`]); the table's CHECK refuses a period under `min_days` as well.
    async fn set_retention(
        &self,
        kind: crate::domain::retention::RecordKind,
        days: i64,
        source: &str,
        set_by: &str,
        at: DateTime<Utc>,
        audit: &(dyn for<'p> Fn(&'p RetentionPolicy) -> AuditRecord + Send + Sync),
    ) -> Result<Option<RetentionPolicy>, StoreError>;

    /// Place a hold and append its audit event (`audit`, given the new hold's id) in one transaction; returns the id.
    async fn place_hold(
        &self,
        hold: &NewHold,
        audit: &(dyn Fn(i64) -> AuditRecord + Send + Sync),
    ) -> Result<i64, StoreError>;

    /// Release hold `id` (kept, with when, who and why) and append `audit` in one transaction. Returns the hold as it
    /// was, or `None` (nothing written) when there is no hold `id` in force.
    async fn release_hold(
        &self,
        id: i64,
        released_by: &str,
        reason: &str,
        at: DateTime<Utc>,
        audit: &(dyn for<'p> Fn(&'p StoredHold) -> AuditRecord + Send + Sync),
    ) -> Result<Option<StoredHold>, StoreError>;

    /// Every hold, in force or released, by id.
    async fn retention_holds(&self) -> Result<Vec<StoredHold>, StoreError>;

    /// How many records of `kind` a purge with this `cutoff` would purge now (reads only: `--dry-run`).
    async fn purge_due(
        &self,
        kind: crate::domain::retention::RecordKind,
        cutoff: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Purge at most `limit` records of `kind` past `cutoff`, not yet purged and not held, in one write transaction
    /// with its audit event (`audit`, given the count; appended only when the chunk purged something). Returns how
    /// many it purged: 0 when nothing is left. What a purge does per kind, and what it never touches, is
    /// docs/retention.md's; a chunk selects only rows not yet purged, so an interrupted purge resumes where it stopped.
    async fn purge_chunk(
        &self,
        kind: crate::domain::retention::RecordKind,
        cutoff: DateTime<Utc>,
        limit: usize,
        audit: PurgeAudit<'_>,
    ) -> Result<u64, StoreError>;
}

/// Separated administrators (migration 0016, docs/admin.md): administrative audit events and the change requests of the
/// two-person rule. Every write is one write transaction with its audit event (lane 0). Written once for both
/// backends (`store/sql/admin.rs`).
#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Append one administrative audit event in its own write transaction (lane 0, as the retention changes): for an
    /// action whose state is not in the database (a CRL file), or a read by an operator.
    async fn append_admin_event(&self, audit: &AuditRecord) -> Result<(), StoreError>;

    /// Store a change request and append its audit event (`audit`, given the new id) in one transaction; returns the
    /// id (positive, increasing).
    async fn request_change(
        &self,
        change: &crate::domain::admin::NewChange,
        audit: &(dyn Fn(i64) -> AuditRecord + Send + Sync),
    ) -> Result<i64, StoreError>;

    /// Every change request, by id ascending (a hub holds a handful: they are rare administrative acts).
    async fn admin_changes(&self) -> Result<Vec<crate::domain::admin::StoredChange>, StoreError>;

    /// Approve request `id` by `approver` at `at`, with its audit event (`audit`, given the request as approved), in
    /// one write transaction, after checking [`crate::domain::admin::check_approval`] on the row read in that
    /// transaction (so two approvals racing cannot both succeed). A refused approval is a value
    /// ([`crate::domain::admin::ApprovalRefusal`]: unknown id, self-approval, expired, not pending) and writes
    /// nothing.
    async fn approve_change(
        &self,
        id: i64,
        approver: &str,
        at: DateTime<Utc>,
        audit: &(dyn for<'c> Fn(&'c crate::domain::admin::StoredChange) -> AuditRecord + Send + Sync),
    ) -> Result<Result<crate::domain::admin::StoredChange, crate::domain::admin::ApprovalRefusal>, StoreError>;

    /// Mark approved request `id` applied by `by` at `at`, with its audit event, in one write transaction. Returns
    /// the request as applied, or `None` (nothing written) when it is not approved or is applied already.
    async fn apply_change(
        &self,
        id: i64,
        by: &str,
        at: DateTime<Utc>,
        audit: &(dyn for<'c> Fn(&'c crate::domain::admin::StoredChange) -> AuditRecord + Send + Sync),
    ) -> Result<Option<crate::domain::admin::StoredChange>, StoreError>;
}

/// Subsidy campaigns (issue 18; docs/subsidies.md, migration 0021): the monthly price indices development_reform
/// pushes (every version kept) and the linkage rule versions.
#[async_trait]
pub trait SubsidyStore: Send + Sync {
    /// Store a batch of validated price indices with `audit`, in one write transaction. Per row, in order: ACCEPTED
    /// (the month's first version), NEW_VERSION (values differ from the month's current version: version n + 1 is
    /// added, nothing is updated) or DUPLICATE (the same values: nothing written). A month twice in one batch is
    /// decided against the row before it. Nothing is written if any statement fails.
    async fn push_price_indices(
        &self,
        rows: &[crate::domain::subsidy::PriceIndex],
        agency: &AgencyCode,
        audit: &AuditRecord,
        now: DateTime<Utc>,
    ) -> Result<Vec<crate::domain::versioning::Decision>, StoreError>;

    /// Every stored version of the index months `from ..= to`, by month then version (the last of a month is the
    /// one in force). A stored value that does not parse is `Corrupt`.
    async fn price_index_versions(
        &self,
        from: crate::domain::calendar::Month,
        to: crate::domain::calendar::Month,
    ) -> Result<Vec<StoredPriceIndex>, StoreError>;

    /// Every linkage rule version, by `effective_from`. A stored version that breaks a rule of
    /// [`crate::domain::subsidy::LinkageRule::from_json`] is `Corrupt`, never skipped.
    async fn linkage_rules(&self) -> Result<Vec<StoredLinkageRule>, StoreError>;

    /// Add a rule version, with `audit` appended in the same transaction when it was added. `false` (nothing
    /// written) if its `version` or its `effective_from` is taken: versions are never overwritten.
    async fn add_linkage_rule(&self, r: &StoredLinkageRule, audit: Option<&AuditRecord>) -> Result<bool, StoreError>;

    /// Every fixed-amount campaign (migration 0022), by month then code. A stored campaign that breaks a rule of
    /// [`crate::domain::subsidy::FixedCampaign::from_json`] is `Corrupt`, never skipped.
    async fn fixed_campaigns(&self) -> Result<Vec<StoredFixedCampaign>, StoreError>;

    /// Add a campaign, with `audit` appended in the same transaction when it was added. `false` (nothing written) if
    /// its code is taken: campaigns are never overwritten.
    async fn add_fixed_campaign(&self, c: &StoredFixedCampaign, audit: &AuditRecord) -> Result<bool, StoreError>;
}

/// Everything the hub needs of a database: every area of the contract.
pub trait Storage:
    StoreAdmin
    + FactStore
    + FactReads
    + AuditLog
    + BenchFloor
    + CalendarStore
    + ChangeLog
    + CoordinationStore
    + KeyRotation
    + MedicalStore
    + SnapshotStore
    + RetentionStore
    + AdminStore
    + CountersignStore
    + FindingAnswerStore
    + CoverageAnswerStore
    + SubsidyStore
    + 'static
{
}

impl<T> Storage for T where
    T: StoreAdmin
        + FactStore
        + FactReads
        + AuditLog
        + BenchFloor
        + CalendarStore
        + ChangeLog
        + CoordinationStore
        + KeyRotation
        + MedicalStore
        + SnapshotStore
        + RetentionStore
        + AdminStore
        + CountersignStore
        + FindingAnswerStore
        + CoverageAnswerStore
        + SubsidyStore
        + 'static
{
}
