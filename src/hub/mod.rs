//! The application layer: what each RPC does, independent of protobuf. Handlers in `grpc/`
//! convert wire types and call these methods; these call the access policy (`domain::policy`),
//! the keys (`crypto`) and the store.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use crate::domain::agency::Principal;
use crate::domain::fact::{Fact, FieldError, PayloadKind, Program};
use crate::domain::id_number::IdNumber;
use crate::domain::policy::AccessPolicy;
use crate::domain::versioning::Decision;
use crate::security::crypto::{KeyError, Keys, PersonKey};
pub mod admin;
pub mod answers;
mod audit;
pub mod calendar;
mod coordination;
pub mod countersign;
pub mod coverage_findings;
pub mod explain;
mod matching;
mod medical;
pub mod snapshot;
pub mod subsidy;
mod watch;

pub use audit::AccessEventPage;
pub use coordination::{
    FundReportInput, FundReportLine, FundReportList, WarningFilter, WarningInput, WarningPage, WarningView,
};
pub use matching::EnrolmentView;
pub use medical::{
    DEFAULT_POOLING_AREA, FindingPage, FindingView, RecheckReport, SettlementInput, SettlementOutcome,
    SettlementResult, finding_id_of,
};
pub use watch::{ChangeView, WatchPage, WatchPlan, WatchRequest};

use crate::store::{AuditRecord, IngestBatch, NewPerson, PersonFilter, PreparedFact, Store, StoreError, StoredFact};

// The store's row types that the hub's methods take and return, named through the hub so that `grpc/` (which talks
// to the hub only) never imports `crate::store` (`.ci/check-invariants.sh`).
pub use crate::store::writer::{MAX_BULK_FACTS, Priority};
pub use crate::store::{
    Answer, AuditEventRow, AuditFilter, ChainCheck, CoverageAnswer, DivisionRow, FindingAnswer, FindingFilter,
    HoldTarget, OutcomeFilter, RecheckTally, SnapshotHeader, StandardRow, StoredFundReport, StoredPolicy, Verification,
    WarningInsert,
};

/// Errors of hub operations; `grpc::status` maps each to one gRPC code.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    ResourceExhausted(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    OutOfRange(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
}

impl HubError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> HubError {
        HubError::InvalidArgument { field: field.into(), reason: reason.into() }
    }
}

/// Outcome of one pushed fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FactOutcome {
    Stored(Decision),
    Rejected { field: String, reason: String },
}

/// Result of one pushed fact (`index` = position in the request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactResult {
    pub index: usize,
    pub fact_id: String,
    pub outcome: FactOutcome,
}

/// A push checked and prepared ([`Hub::prepare_push`]), to be stored by [`Hub::store_pushes`].
pub struct PreparedPush {
    /// One result per fact of the request, in order: rejections final, the others ACCEPTED until stored.
    results: Vec<FactResult>,
    prepared: Vec<PreparedFact>,
    /// The slot in `results` of each of `prepared`.
    prepared_at: Vec<usize>,
    persons: Vec<NewPerson>,
    audit: AuditRecord,
}

impl PreparedPush {
    /// Facts of the request (stored and rejected).
    pub fn len(&self) -> usize {
        self.results.len()
    }

    /// Whether the request held no fact.
    pub fn is_empty(&self) -> bool {
        self.results.is_empty()
    }

    /// Split into consecutive parts holding at most `max` facts to store each (a StreamFacts message larger than a
    /// bulk transaction, `writer::MAX_BULK_FACTS`, docs/storage-layout.md "Write path"), in order; a push within
    /// `max` is returned whole. Each part keeps its facts' results (their index counted from the part's first fact, as
    /// a StreamFacts offset counts them), the persons
    /// its facts need, and its own audit event: the message's, with the part's persons and `part I of N` in its
    /// outcome. Parts are stored one transaction each, so after a failure the facts of the parts before are stored.
    pub fn split(self, max: usize) -> Vec<PreparedPush> {
        let max = max.max(1);
        if self.prepared.len() <= max {
            return vec![self];
        }
        let PreparedPush { mut results, prepared, prepared_at, persons, audit } = self;
        let n = prepared.len().div_ceil(max);
        let persons: HashMap<PersonKey, NewPerson> = persons.into_iter().map(|p| (p.person_key, p)).collect();
        // Part i covers the results from its first stored fact's slot (0 for the first part) to the next part's.
        let starts: Vec<usize> = (0..n)
            .map(|i| if i == 0 { 0 } else { prepared_at[i * max] })
            .chain(std::iter::once(results.len()))
            .collect();
        let mut prepared = prepared.into_iter();
        let mut parts = Vec::with_capacity(n);
        for i in (0..n).rev() {
            let mut part_results = results.split_off(starts[i]);
            // A part's results are numbered from its first fact: the stream adds the facts stored before it.
            part_results.iter_mut().for_each(|r| r.index -= starts[i]);
            parts.push((i, part_results));
        }
        parts.reverse();
        parts
            .into_iter()
            .map(|(i, part_results)| {
                let start = starts[i];
                let facts: Vec<PreparedFact> = prepared.by_ref().take(max).collect();
                let at: Vec<usize> = prepared_at[i * max..(i * max + facts.len())].iter().map(|s| s - start).collect();
                let mut keys: Vec<PersonKey> = Vec::new();
                let mut seen: HashSet<PersonKey> = HashSet::new();
                for f in &facts {
                    if seen.insert(f.person_key) {
                        keys.push(f.person_key);
                    }
                }
                let part_persons: Vec<NewPerson> = keys.iter().filter_map(|k| persons.get(k).cloned()).collect();
                let rejected = part_results.len() - facts.len();
                let audit = AuditRecord {
                    outcome: format!("OK stored={} rejected={rejected} part {} of {n}", facts.len(), i + 1),
                    person_keys: keys,
                    ..audit.clone()
                };
                PreparedPush { results: part_results, prepared: facts, prepared_at: at, persons: part_persons, audit }
            })
            .collect()
    }
}

/// A fact as a caller may see it.
#[derive(Debug, Clone)]
pub struct VisibleFact {
    pub fact: StoredFact,
    pub omitted_fields: Vec<String>,
}

/// What a caller may see of one person.
#[derive(Debug, Clone)]
pub struct RecipientView {
    pub id_number: IdNumber,
    pub facts: Vec<VisibleFact>,
    /// GetRecipient with a page size: the token for the next page; empty on the last page.
    pub next_page_token: String,
}

/// One page of `ListRecipients`.
#[derive(Debug, Clone)]
pub struct RecipientPage {
    pub recipients: Vec<RecipientView>,
    pub next_page_token: String,
    pub total_size: i64,
    pub omitted_count: i64,
}

/// Limits on requests (docs/spec/security.md, "Abuse and faults"); configurable.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most facts in one PushFacts request or one StreamFacts message.
    pub max_batch: usize,
    /// Largest `page_size` of a list.
    pub max_page_size: usize,
    /// Most facts one GetRecipient response carries (`max_recipient_facts`; issue 23 item 6).
    pub max_recipient_facts: usize,
    /// Most ID numbers one MatchRecipients call compares (`match_max_ids_per_call`); 0 = no limit.
    pub match_max_ids_per_call: usize,
    /// Largest accepted difference between a roster program's fund report and its expected amount
    /// before `DISBURSEMENT_MISMATCH` (docs/spec/coordination.md; default 1.00 yuan).
    pub fund_report_tolerance: crate::domain::money::Money,
    /// Measurement only (`doudi bench --only P1-audit`): store pushed facts **without** their audit event, to
    /// measure what the audit chain costs. Never set by the server (no configuration key reaches it).
    #[doc(hidden)]
    pub bench_skip_ingest_audit: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_batch: 10_000,
            max_page_size: 1_000,
            max_recipient_facts: 1_000,
            match_max_ids_per_call: 250_000,
            fund_report_tolerance: crate::domain::money::Money::from_fen(100).expect("in range"),
            bench_skip_ingest_audit: false,
        }
    }
}

/// Longest accepted `purpose`, in characters.
pub const MAX_PURPOSE_LEN: usize = 200;

/// The hub: storage, keys and policy. Its fields are private: `grpc/` and the other callers reach the store, the keys,
/// the policy and the clock only through the hub's methods (docs: ARCHITECTURE.md, invariants). Build one with
/// [`Hub::new`] and the `with_*` settings.
#[derive(Clone)]
pub struct Hub {
    store: Store,
    keys: Keys,
    policy: Arc<AccessPolicy>,
    limits: Limits,
    clock: Clock,
    /// Parameters of the coverage rules (docs/spec/coordination.md; `coverage_params_file` replaces the defaults).
    coverage: Arc<crate::domain::coverage::CoverageParams>,
    /// Small PushFacts of concurrent requests, committed together ([`Hub::push_facts`]).
    pushes: PushGroup,
    /// The audit signer (`certs_dir/audit-signing.key`), when the hub has one: signs audit heads
    /// ([`Hub::signed_head`], docs/audit-lanes.md "Signed heads").
    head_signer: Option<Arc<crate::security::audit_head::HeadSigner>>,
    /// Refusals waiting to be written as aggregated audit events (issue 20 item 2, `crate::server::refusals`).
    refusals: Arc<crate::server::refusals::RefusalLog>,
    /// What countersignatures of frozen quarters are checked against (the CA, the CRLs in force; docs/countersign.md);
    /// `None` without a TLS configuration (report commands): SignSnapshot is then FAILED_PRECONDITION.
    signer_trust: Option<Arc<crate::security::countersign::Trust>>,
}

impl Hub {
    /// A hub on `store` with `keys`, the access `policy` and `limits`; the system clock, the default coverage
    /// parameters, no audit signer, an empty refusal log (the default per-minute cap) and no countersignature trust
    /// until set with the `with_*` methods.
    pub fn new(store: Store, keys: Keys, policy: Arc<AccessPolicy>, limits: Limits) -> Hub {
        Hub {
            store,
            keys,
            policy,
            limits,
            clock: Clock::default(),
            coverage: Arc::default(),
            pushes: PushGroup::default(),
            head_signer: None,
            refusals: Arc::default(),
            signer_trust: None,
        }
    }

    /// The parameters of the coverage rules (`coverage_params_file`).
    pub fn with_coverage(self, coverage: Arc<crate::domain::coverage::CoverageParams>) -> Hub {
        Hub { coverage, ..self }
    }

    /// The audit signer that signs audit heads (`certs_dir/audit-signing.key`), if any.
    pub fn with_head_signer(self, head_signer: Option<Arc<crate::security::audit_head::HeadSigner>>) -> Hub {
        Hub { head_signer, ..self }
    }

    /// The log of refusals the server records (`crate::server::refusals`).
    pub fn with_refusals(self, refusals: Arc<crate::server::refusals::RefusalLog>) -> Hub {
        Hub { refusals, ..self }
    }

    /// What countersignatures are checked against (the CA and the CRLs in force).
    pub fn with_signer_trust(self, signer_trust: Option<Arc<crate::security::countersign::Trust>>) -> Hub {
        Hub { signer_trust, ..self }
    }

    /// The store, for what runs beside the handlers and is not a request: the server's start (migrations, the data
    /// key check), its background tasks (checkpoints, reminders, refusal flushes, metrics), the operator commands and
    /// tools, and tests. `grpc/` never uses it (`.ci/check-invariants.sh`): it calls the hub's methods.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The hub's keys (person keys, the data key's check value), for the server's start, tools and tests.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The hub's clock: every read of "now" of the hub goes through it. Fixing it ([`Clock::set`]) is for tests and
    /// the demo; clones of the hub share it.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The current instant by the hub's clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Today's business date (Asia/Shanghai) by the hub's clock: the default `as_of` of reads.
    pub fn today(&self) -> NaiveDate {
        crate::domain::calendar::shanghai_date(self.clock.now())
    }

    /// The limits on requests in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The refusal log the server feeds and flushes (`crate::server::refusals`).
    pub fn refusals(&self) -> &Arc<crate::server::refusals::RefusalLog> {
        &self.refusals
    }

    /// Whether the hub has an audit signer (else GetSignedHead is FAILED_PRECONDITION and heads are not signed).
    pub fn has_head_signer(&self) -> bool {
        self.head_signer.is_some()
    }

    /// The access rules of `agency` in force (WhoAmI), empty for an agency the matrix does not name.
    pub fn access_rules(&self, agency: &crate::domain::agency::AgencyCode) -> crate::domain::policy::AgencyRules {
        self.policy.rules(agency).cloned().unwrap_or_default()
    }

    /// Whether the access matrix in force names `agency`.
    pub fn is_known_agency(&self, agency: &crate::domain::agency::AgencyCode) -> bool {
        self.policy.is_known(agency)
    }

    /// The divisions of the reference data (ListDivisions). Errors: the store's.
    pub async fn list_divisions(&self) -> Result<Vec<DivisionRow>, HubError> {
        Ok(self.store.list_divisions().await?)
    }

    /// The standards of `year` (every year when `None`) of the reference data (ListStandards). Errors: the store's.
    pub async fn list_standards(&self, year: Option<i64>) -> Result<Vec<StandardRow>, HubError> {
        Ok(self.store.list_standards(year).await?)
    }

    /// A receiver of the change log's head (the newest cursor written), for WatchChanges' delivery to wait on.
    pub fn subscribe_changes(&self) -> tokio::sync::watch::Receiver<i64> {
        self.store.subscribe_changes()
    }
}

/// Small pushes at most in one group-committed transaction (`store::group`); each at most [`SMALL_PUSH_FACTS`] facts,
/// so a group holds at most 2,000 facts, the bound a bulk transaction keeps (`writer::MAX_BULK_FACTS`).
const MAX_PUSH_GROUP: usize = 8;

/// A PushFacts of at most this many facts is group-committed with other small pushes; a larger one is its own
/// transaction.
pub const SMALL_PUSH_FACTS: usize = 250;

/// The queue of small pushes committed in groups (shared by a hub's clones).
#[derive(Clone)]
pub struct PushGroup(Arc<crate::store::group::GroupCommit<PreparedPush, Vec<FactResult>>>);

impl Default for PushGroup {
    fn default() -> Self {
        PushGroup(Arc::new(crate::store::group::GroupCommit::new(MAX_PUSH_GROUP)))
    }
}

/// The hub's clock: every read of "now" in the hub goes through it (`.ci/check-invariants.sh`), in one of two kinds.
///
/// - [`Clock::now`], business time: the instant the hub stamps on fund reports (`submitted_at`), findings and change
///   requests, checks warnings and deadlines against, and whose Asia/Shanghai date is the default `as_of` of reads
///   ([`Hub::today`]). The system clock unless fixed; fixing it is for tests and the demo (which replays 2023).
/// - [`Clock::system_now`], system time: always the system clock. The time of record that the store stamps on rows
///   (`recorded_at`, `superseded_at`) and everything compared with it (snapshot cutoffs, the answer log, retention
///   cutoffs and holds), and real time where security needs it (signatures of audit heads, countersignatures'
///   `signed_at`, a CRL's nextUpdate). A fixed business clock must not move these: a cutoff before the rows it cuts
///   would freeze an empty quarter, and a signature would lie about when it was made.
///
/// Clones share the setting.
#[derive(Clone, Default)]
pub struct Clock(Arc<std::sync::RwLock<Option<chrono::DateTime<chrono::Utc>>>>);

impl Clock {
    /// The current instant (the fixed one if set).
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.read().ok().and_then(|g| *g).unwrap_or_else(chrono::Utc::now)
    }

    /// The system clock's instant, never the fixed one (system time: see the type's documentation).
    pub fn system_now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }

    /// Fix the clock at `t`, or return to the system clock with `None`.
    pub fn set(&self, t: Option<chrono::DateTime<chrono::Utc>>) {
        if let Ok(mut g) = self.0.write() {
            *g = t;
        }
    }
}

/// Check `purpose` and return the form to audit: at most [`MAX_PURPOSE_LEN`] characters, no control
/// characters, and any run that looks like an ID number (17 digits + digit or X) masked, so free
/// text cannot carry a full ID number into the audit log.
pub(crate) fn check_purpose(purpose: &str) -> Result<String, HubError> {
    if purpose.chars().count() > MAX_PURPOSE_LEN {
        return Err(HubError::invalid("purpose", format!("is longer than {MAX_PURPOSE_LEN} characters")));
    }
    if purpose.chars().any(char::is_control) {
        return Err(HubError::invalid("purpose", "contains a control character"));
    }
    Ok(mask_id_like(purpose))
}

/// Replace every run of 17 ASCII digits followed by a digit, `X` or `x` with its masked form.
pub(crate) fn mask_id_like(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let run = chars[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        let end = i + run;
        let has_check = run >= 17 && (run >= 18 || matches!(chars.get(end), Some('X' | 'x')));
        if run >= 17 && has_check {
            let len = if run >= 18 { run } else { 18 };
            let s: String = chars[i..i + len].iter().collect();
            out.push_str(&s[..6]);
            out.push_str(&"*".repeat(len - 10));
            out.push_str(&s[len - 4..]);
            i += len;
        } else if run > 0 {
            out.extend(&chars[i..end]);
            i = end;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// A division code with its name where known, e.g. "621022 (环县)".
pub(crate) fn named(code: &str) -> String {
    match crate::domain::division::division_name(code) {
        Some(name) => format!("{code} ({name})"),
        None => code.to_owned(),
    }
}

/// The division prefix a caller may list: a county office is always limited to its county (a narrower
/// `requested` code inside it is kept); others get `requested` or everything (`""`).
///
/// Errors: PERMISSION_DENIED when `requested` lies outside the caller's county.
pub(crate) fn scoped_prefix(
    principal: &Principal,
    requested: Option<crate::domain::division::DivisionCode>,
) -> Result<String, HubError> {
    Ok(match (principal.county(), requested) {
        (None, None) => String::new(),
        (None, Some(d)) => d.as_str().to_owned(),
        (Some(c), None) => c.as_str().to_owned(),
        (Some(c), Some(d)) if c.contains(&d) => d.as_str().to_owned(),
        (Some(c), Some(d)) if d.contains(c) => c.as_str().to_owned(),
        (Some(c), Some(d)) => {
            return Err(HubError::PermissionDenied(format!(
                "division_code {} lies outside the caller's county {}",
                named(d.as_str()),
                named(c.as_str())
            )));
        }
    })
}

/// The stored-code prefix of a listing prefix: the city code (621000) and the province (620000) mean
/// "everything under them", since person-level codes are stored at county level or below.
pub(crate) fn storage_prefix(prefix: String) -> String {
    match prefix.as_str() {
        "621000" => "6210".to_owned(),
        "620000" => "62".to_owned(),
        _ => prefix,
    }
}

/// The audit event of `principal`'s call of `method` (the caller's agency, county and gateway from its certificate).
pub(crate) fn audit_of(
    principal: &Principal,
    method: &str,
    purpose: String,
    outcome: String,
    person_keys: Vec<PersonKey>,
) -> AuditRecord {
    AuditRecord {
        agency: principal.agency().to_string(),
        division: division_of(principal),
        via: via_of(principal),
        method: method.to_owned(),
        purpose,
        outcome,
        person_keys,
    }
}

pub(crate) fn division_of(p: &Principal) -> String {
    p.county().map(|c| c.as_str().to_owned()).unwrap_or_default()
}

/// The audit event's `via` for `p`: the pinned gateway the call came through, "" for a direct peer.
pub(crate) fn via_of(p: &Principal) -> String {
    p.via().unwrap_or_default().to_owned()
}

impl Hub {
    /// The person key of `id`, adding the encrypted person row to `persons` the first time `seen` meets it (a
    /// batch stores each new person once, with its write).
    pub(crate) fn person_row(
        &self,
        id: &IdNumber,
        seen: &mut HashSet<PersonKey>,
        persons: &mut Vec<NewPerson>,
    ) -> PersonKey {
        let key = self.keys.person_key(id);
        if seen.insert(key) {
            persons.push(NewPerson { person_key: key, id_cipher: self.keys.encrypt(id, &key), id_masked: id.masked() });
        }
        key
    }

    /// A hub for the report commands on the hub's own database (no server, no caller): reads aggregates only and
    /// decrypts nothing, so its data key is a throwaway one when the configuration has none.
    pub fn for_reports(store: Store, config: &crate::config::Config) -> Result<Hub, HubError> {
        use secrecy::ExposeSecret as _;
        let keys = match &config.data_key {
            Some(k) => Keys::from_base64_with(k.expose_secret(), config.crypto_suite)?,
            None => Keys::from_base64_with(&Keys::generate_base64(), config.crypto_suite)?,
        };
        let fund_report_tolerance = config
            .fund_report_tolerance
            .parse()
            .map_err(|e| HubError::invalid("fund_report_tolerance", format!("{e}")))?;
        Ok(Hub::new(
            store,
            keys,
            Arc::new(AccessPolicy::default()),
            Limits { max_batch: config.max_batch, fund_report_tolerance, ..Limits::default() },
        ))
    }

    /// A list's page size: 0 means 100; above `max_page_size` is INVALID_ARGUMENT naming `page_size`.
    pub(crate) fn page_size(&self, requested: usize) -> Result<usize, HubError> {
        match requested {
            0 => Ok(100),
            n if n > self.limits.max_page_size => {
                Err(HubError::invalid("page_size", format!("{n} exceeds the maximum of {}", self.limits.max_page_size)))
            }
            n => Ok(n),
        }
    }

    /// Store a batch of facts (PushFacts): [`Hub::prepare_push`], then [`Hub::store_pushes`] as an interactive write.
    /// A push of at most [`SMALL_PUSH_FACTS`] facts is group-committed (`store::group`): the small pushes of
    /// concurrent requests are stored in one transaction, in the order they were queued, each decided as if pushed
    /// alone in that order and each with its own audit event; each request is answered once that transaction has
    /// committed. A larger push is its own transaction. A small push whose client goes away after it was queued is
    /// still stored, with its audit event, by the group that takes it (a retry then finds its facts DUPLICATE), as a
    /// read's audit event is (`store::group`).
    ///
    /// `facts` holds each fact as parsed from the wire: `Err` for a fact that failed parsing
    /// (its field path relative to the fact). Each fact is also checked for ownership
    /// (only the owner of a kind may push it), county scope and the cross-field rules; the valid
    /// ones are stored together with the audit event in one transaction.
    ///
    /// Errors: PERMISSION_DENIED when the caller owns none of the kinds it pushed (or none at
    /// all); INVALID_ARGUMENT for an empty batch or one over `max_batch`; a failed group fails each of its pushes
    /// (nothing of any of them stored).
    pub async fn push_facts(
        &self,
        principal: &Principal,
        method: &str,
        facts: Vec<Result<Fact, FieldError>>,
    ) -> Result<Vec<FactResult>, HubError> {
        let push = self.prepare_push(principal, method, facts)?;
        if push.len() > SMALL_PUSH_FACTS {
            let mut results = self.store_pushes(vec![push], Priority::Interactive).await?;
            return results
                .pop()
                .ok_or_else(|| HubError::Store(crate::store::corrupt("facts", "no results for the push")));
        }
        let hub = self.clone();
        Ok(self
            .pushes
            .0
            .submit_each(push, move |group| {
                let hub = hub.clone();
                async move { hub.store_pushes_in(group, Priority::Interactive).await }
            })
            .await?)
    }

    /// Check and prepare a batch of facts for storing (a PushFacts, or one StreamFacts message), without touching the
    /// store: the CPU part of a push (validation, person keys, encryption, payload JSON and hashes), which a stream
    /// runs for its next messages while the writer stores the ones before. Errors as [`Hub::push_facts`].
    pub fn prepare_push(
        &self,
        principal: &Principal,
        method: &str,
        facts: Vec<Result<Fact, FieldError>>,
    ) -> Result<PreparedPush, HubError> {
        if facts.is_empty() {
            return Err(HubError::invalid("facts", "is empty"));
        }
        if facts.len() > self.limits.max_batch {
            return Err(HubError::invalid(
                "facts",
                format!(
                    "{} facts exceed the batch limit of {}; use StreamFacts for larger loads",
                    facts.len(),
                    self.limits.max_batch
                ),
            ));
        }
        let agency = principal.agency();
        let kinds: HashSet<PayloadKind> =
            facts.iter().filter_map(|f| f.as_ref().ok()).map(|f| f.payload.kind()).collect();
        if !kinds.is_empty() && kinds.iter().all(|k| !self.policy.may_push(agency, *k)) {
            let mut names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
            names.sort_unstable();
            return Err(HubError::PermissionDenied(format!("agency {agency} may not push {}", names.join(", "))));
        }

        let mut results: Vec<FactResult> = Vec::with_capacity(facts.len());
        let mut prepared: Vec<PreparedFact> = Vec::with_capacity(facts.len());
        let mut prepared_at: Vec<usize> = Vec::with_capacity(facts.len());
        let mut persons: Vec<NewPerson> = Vec::new();
        let mut seen: HashSet<PersonKey> = HashSet::new();
        for (index, f) in facts.into_iter().enumerate() {
            let fact = match f {
                Ok(fact) => fact,
                Err(e) => {
                    results.push(FactResult {
                        index,
                        fact_id: String::new(),
                        outcome: FactOutcome::Rejected { field: e.field, reason: e.reason },
                    });
                    continue;
                }
            };
            let reject = |field: &str, reason: String| FactResult {
                index,
                fact_id: fact.fact_id.clone(),
                outcome: FactOutcome::Rejected { field: field.to_owned(), reason },
            };
            let kind = fact.payload.kind();
            if !self.policy.may_push(agency, kind) {
                results.push(reject(
                    kind.as_str(),
                    format!(
                        "permission denied: {agency} may not push {kind}; its owner is {}",
                        self.policy.owner(kind)
                    ),
                ));
                continue;
            }
            if !principal.in_scope(&fact.division_code) {
                results.push(reject(
                    "division_code",
                    format!(
                        "{} lies outside the caller's county {}",
                        named(fact.division_code.as_str()),
                        named(&division_of(principal))
                    ),
                ));
                continue;
            }
            if let Err(e) = fact.validate() {
                results.push(reject(&e.field, e.reason));
                continue;
            }
            let key = self.person_row(&fact.id_number, &mut seen, &mut persons);
            results.push(FactResult {
                index,
                fact_id: fact.fact_id.clone(),
                outcome: FactOutcome::Stored(Decision::Accepted),
            });
            prepared_at.push(results.len() - 1);
            prepared.push(PreparedFact::new(agency.clone(), fact, key));
        }

        let rejected = results.len() - prepared.len();
        let audit = AuditRecord {
            agency: agency.to_string(),
            division: division_of(principal),
            via: via_of(principal),
            method: method.to_owned(),
            purpose: String::new(),
            outcome: format!("OK stored={} rejected={rejected}", prepared.len()),
            person_keys: seen.into_iter().collect(),
        };
        Ok(PreparedPush { results, prepared, prepared_at, persons, audit })
    }

    /// Store prepared pushes, in order, in one transaction (a StreamFacts group is several consecutive messages of one
    /// stream: `priority` [`Priority::Bulk`]); each push's audit event is written with them (a push with nothing to
    /// store only its event: the attempt is on record). Returns each push's results, in order: its rejections as
    /// prepared and the decision of each stored fact. On an error nothing of any push is stored.
    pub async fn store_pushes(
        &self,
        pushes: Vec<PreparedPush>,
        priority: Priority,
    ) -> Result<Vec<Vec<FactResult>>, HubError> {
        Ok(self.store_pushes_in(pushes, priority).await?)
    }

    /// [`Hub::store_pushes`] with the store's error.
    async fn store_pushes_in(
        &self,
        pushes: Vec<PreparedPush>,
        priority: Priority,
    ) -> Result<Vec<Vec<FactResult>>, StoreError> {
        let skip_audit = self.limits.bench_skip_ingest_audit;
        let batches: Vec<IngestBatch<'_>> = pushes
            .iter()
            .map(|p| IngestBatch {
                facts: &p.prepared,
                persons: &p.persons,
                audit: (p.prepared.is_empty() || !skip_audit).then_some(&p.audit),
            })
            .collect();
        let decided = self.store.ingest_batches(&batches, priority).await?;
        drop(batches);
        let mut out = Vec::with_capacity(pushes.len());
        for (p, decisions) in pushes.into_iter().zip(decided) {
            let mut results = p.results;
            for (slot, d) in p.prepared_at.into_iter().zip(decisions) {
                results[slot].outcome = FactOutcome::Stored(d);
            }
            out.push(results);
        }
        Ok(out)
    }

    /// One person's facts in force on `as_of`, reduced by the policy; the read is audited.
    ///
    /// `page_size` 0: every visible fact, if there are at most [`Limits::max_recipient_facts`]; otherwise
    /// RESOURCE_EXHAUSTED naming the count and the limit (issue 23 item 6: 20,000 facts made a 4.25 MB response, over
    /// most clients' 4 MiB). With a page size (reduced to the limit): that many facts in (kind, agency, fact_id) order
    /// after the sealed `page_token`'s position, and the next token while more remain.
    ///
    /// Errors: NOT_FOUND when nothing is left for the caller (also when the hub holds nothing),
    /// so a refusal never reveals that a person is assisted; INVALID_ARGUMENT for a token not issued for this caller,
    /// person and date.
    #[allow(clippy::too_many_arguments)]
    pub async fn get_recipient(
        &self,
        principal: &Principal,
        method: &str,
        id: &IdNumber,
        as_of: NaiveDate,
        purpose: &str,
        page_size: usize,
        page_token: &str,
    ) -> Result<RecipientView, HubError> {
        let purpose = check_purpose(purpose)?;
        if !self.policy.reads_person_data(principal.agency()) {
            return Err(HubError::PermissionDenied(format!(
                "agency {} may not read person-level data (aggregates only)",
                principal.agency()
            )));
        }
        let key = self.keys.person_key(id);
        let fingerprint = recipient_fingerprint(&key, as_of);
        let after = decode_fact_token(&self.keys, principal, page_token, &fingerprint)?;
        let facts = self.store.person_facts(&key, as_of).await?;
        let mut visible = self.visible_facts(principal, facts);
        let limit = self.limits.max_recipient_facts;
        if page_size == 0 && after.is_none() && visible.len() > limit {
            return Err(HubError::ResourceExhausted(format!(
                "{} has {} facts the caller may read as of {as_of}, more than one GetRecipient response carries \
                 (max_recipient_facts = {limit}); ask with page_size (1 to {limit}) and follow next_page_token",
                id.masked(),
                visible.len()
            )));
        }
        let mut next_page_token = String::new();
        if page_size > 0 || after.is_some() {
            let size = if page_size == 0 { limit } else { page_size.min(limit) };
            visible.sort_by(|a, b| fact_order(&a.fact).cmp(&fact_order(&b.fact)));
            if let Some(after) = &after {
                visible.retain(|v| fact_order(&v.fact) > (after.0.as_str(), after.1.as_str(), after.2.as_str()));
            }
            if visible.len() > size {
                visible.truncate(size);
                let last = fact_order(&visible[size - 1].fact);
                next_page_token = encode_fact_token(&self.keys, principal, last, &fingerprint);
            }
        }
        // The person key is recorded even when nothing is found: probing is what an auditor looks for.
        let audit = audit_of(
            principal,
            method,
            purpose,
            if visible.is_empty() { "NOT_FOUND".into() } else { "OK".into() },
            vec![key],
        );
        if visible.is_empty() {
            self.store.record_audit(&audit).await?;
            return Err(HubError::NotFound(format!("no data the caller may read about {} as of {as_of}", id.masked())));
        }
        self.store.record_audit(&audit).await?;
        Ok(RecipientView { id_number: id.clone(), facts: with_holder(visible, id), next_page_token })
    }

    /// Apply the access policy to one person's facts.
    fn visible_facts(&self, principal: &Principal, facts: Vec<StoredFact>) -> Vec<VisibleFact> {
        let is_student = self.is_student(&facts);
        facts.into_iter().filter_map(|f| self.visible_fact(principal, f, is_student)).collect()
    }

    /// Whether a person's facts (those in force on the date read) include a `student` fact from the owner of that
    /// kind: the condition of education's view of assistance (docs/spec/security.md).
    pub(crate) fn is_student(&self, facts: &[StoredFact]) -> bool {
        let student_owner = self.policy.owner(PayloadKind::Student);
        facts.iter().any(|f| f.kind() == PayloadKind::Student && f.agency == student_owner.as_str())
    }

    /// The one reduction of a fact for a reader (GetRecipient, ListRecipients, WatchChanges): `None` when the caller
    /// may see nothing of it, else the fact with only the fields it may read.
    pub(crate) fn visible_fact(&self, principal: &Principal, f: StoredFact, is_student: bool) -> Option<VisibleFact> {
        let division = f.division_code.parse().ok()?;
        let r = self.policy.redact(principal, &division, &f.payload, is_student)?;
        Some(VisibleFact { fact: StoredFact { payload: r.payload, ..f }, omitted_fields: r.omitted_fields })
    }

    /// Persons with facts in force on `as_of`, filtered, one page at a time.
    #[allow(clippy::too_many_arguments)]
    pub async fn list_recipients(
        &self,
        principal: &Principal,
        method: &str,
        division_prefix: Option<crate::domain::division::DivisionCode>,
        program: Option<Program>,
        as_of: NaiveDate,
        page_size: usize,
        page_token: &str,
        purpose: &str,
    ) -> Result<RecipientPage, HubError> {
        let purpose = check_purpose(purpose)?;
        let agency = principal.agency();
        if !self.policy.reads_person_data(agency) {
            return Err(HubError::PermissionDenied(format!(
                "agency {agency} may not read person-level data (aggregates only)"
            )));
        }
        if program.is_some() && !self.policy.may_ever_read_field(agency, PayloadKind::Assistance, "program") {
            return Err(HubError::PermissionDenied(format!(
                "agency {agency} may not filter by program: it may not read assistance.program"
            )));
        }
        let prefix = scoped_prefix(principal, division_prefix)?;
        // HIV-affected children: never an aggregate below county level (docs/domain/policy-reference.md, the
        // AIDS regulation), so no list filtered by that program on a township or village.
        if program == Some(Program::HivAffectedChild) && prefix.len() > 6 {
            return Err(HubError::PermissionDenied(
                "program HIV_AFFECTED_CHILD may not be listed below county level (division_code has more than 6 digits)"
                    .into(),
            ));
        }
        let prefix = storage_prefix(prefix);
        let page_size = self.page_size(page_size)?;
        let filter = PersonFilter { division_prefix: prefix, program: program.map(|p| p.as_str().to_owned()), as_of };
        let fingerprint = filter_fingerprint(&filter);
        let after = decode_page_token(&self.keys, principal, page_token, &fingerprint)?;

        let mut listed = self.store.list_persons(&filter, after, page_size + 1).await?;
        let more = listed.len() > page_size;
        listed.truncate(page_size);
        let next_page_token = match (more, listed.last()) {
            (true, Some((last, _))) => encode_page_token(&self.keys, principal, *last, &fingerprint),
            _ => String::new(),
        };
        let keys: Vec<PersonKey> = listed.into_iter().map(|(_, k)| k).collect();
        let total_size = self.store.count_persons(&filter).await?;

        let mut by_person: BTreeMap<PersonKey, Vec<StoredFact>> = BTreeMap::new();
        for f in self.store.facts_of_persons(&keys, as_of).await? {
            by_person.entry(f.person_key).or_default().push(f);
        }
        let mut views: Vec<(PersonKey, Vec<VisibleFact>)> = Vec::with_capacity(keys.len());
        let mut omitted = 0i64;
        for k in &keys {
            let visible = self.visible_facts(principal, by_person.remove(k).unwrap_or_default());
            // With a program filter, a person is listed only if the caller may see that
            // enrolment: appearing in a filtered list must not reveal what the caller may not read.
            let shows_program = |v: &VisibleFact| match (&v.fact.payload, program) {
                (_, None) => true,
                (crate::domain::fact::Payload::Assistance(a), Some(p)) => a.program == Some(p),
                _ => false,
            };
            if !visible.iter().any(shows_program) {
                omitted += 1;
            } else {
                views.push((*k, visible));
            }
        }
        let visible_keys: Vec<PersonKey> = views.iter().map(|(k, _)| *k).collect();
        let ciphers = self.store.person_ciphers(&visible_keys).await?;
        let mut recipients = Vec::with_capacity(views.len());
        for (k, facts) in views {
            let cipher = ciphers.get(&k).ok_or(KeyError::Decrypt)?;
            let id = self.keys.decrypt(cipher, &k)?;
            recipients.push(RecipientView {
                facts: with_holder(facts, &id),
                id_number: id,
                next_page_token: String::new(),
            });
        }
        self.store
            .record_audit(&AuditRecord {
                agency: agency.to_string(),
                division: division_of(principal),
                via: via_of(principal),
                method: method.to_owned(),
                purpose,
                outcome: format!("OK listed={} omitted={omitted}", recipients.len()),
                person_keys: visible_keys,
            })
            .await?;
        Ok(RecipientPage { recipients, next_page_token, total_size, omitted_count: omitted })
    }
}

/// Restore what the stored form left out (certificate numbers) for the holder `id`.
pub(crate) fn with_holder(facts: Vec<VisibleFact>, id: &IdNumber) -> Vec<VisibleFact> {
    facts
        .into_iter()
        .map(|v| VisibleFact { fact: StoredFact { payload: v.fact.payload.with_holder(id), ..v.fact }, ..v })
        .collect()
}

pub(crate) fn filter_fingerprint(f: &PersonFilter) -> [u8; 8] {
    let mut h = Sha256::new();
    h.update(f.division_prefix.as_bytes());
    h.update(b"|");
    h.update(f.program.as_deref().unwrap_or("").as_bytes());
    h.update(b"|");
    h.update(f.as_of.to_string().as_bytes());
    let d = h.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    out
}

/// A fact's place in GetRecipient's pages: (kind, agency, fact_id), the store's order.
fn fact_order(f: &StoredFact) -> (&'static str, &str, &str) {
    (f.kind().as_str(), f.agency.as_str(), f.fact_id.as_str())
}

/// What a GetRecipient page token is bound to besides the caller: the person and the date.
fn recipient_fingerprint(key: &PersonKey, as_of: NaiveDate) -> [u8; 8] {
    let mut h = Sha256::new();
    h.update(b"recipient|");
    h.update(key.as_bytes());
    h.update(as_of.to_string().as_bytes());
    let d = h.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    out
}

/// GetRecipient page token: `fingerprint (8) || kind, agency, fact_id` (each u16-length-prefixed), sealed for this
/// caller like the list tokens.
fn encode_fact_token(keys: &Keys, p: &Principal, last: (&str, &str, &str), fingerprint: &[u8; 8]) -> String {
    let mut raw = fingerprint.to_vec();
    for part in [last.0, last.1, last.2] {
        raw.extend_from_slice(&(part.len() as u16).to_be_bytes());
        raw.extend_from_slice(part.as_bytes());
    }
    keys.seal_token(&raw, &token_context(p))
}

fn decode_fact_token(
    keys: &Keys,
    p: &Principal,
    token: &str,
    fingerprint: &[u8; 8],
) -> Result<Option<(String, String, String)>, HubError> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || HubError::invalid("page_token", "is not a token GetRecipient returned to this caller");
    let raw = keys.open_token(token, &token_context(p)).ok_or_else(bad)?;
    if raw.len() < 8 || raw[..8] != fingerprint[..] {
        return Err(HubError::invalid("page_token", "was issued for another id_number or as_of"));
    }
    let mut rest = &raw[8..];
    let mut parts = Vec::with_capacity(3);
    for _ in 0..3 {
        if rest.len() < 2 {
            return Err(bad());
        }
        let n = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        let part = rest.get(2..2 + n).ok_or_else(bad)?;
        parts.push(String::from_utf8(part.to_vec()).map_err(|_| bad())?);
        rest = &rest[2 + n..];
    }
    let fact_id = parts.pop().unwrap_or_default();
    let agency = parts.pop().unwrap_or_default();
    let kind = parts.pop().unwrap_or_default();
    Ok(Some((kind, agency, fact_id)))
}

/// The context a page token is bound to: the caller's SPIFFE ID.
fn token_context(p: &Principal) -> Vec<u8> {
    p.spiffe_id().as_bytes().to_vec()
}

/// Page token: `last person_id (8, big-endian) || filter fingerprint (8)`, sealed by [`Keys::seal_token`]
/// for this caller, so it reveals nothing and cannot be altered or passed to another agency. (Tokens of releases
/// before migration 0010 carried a person key; they are refused as not issued by this list, and the list starts
/// again from its first page.)
pub(crate) fn encode_page_token(keys: &Keys, p: &Principal, last: i64, fingerprint: &[u8; 8]) -> String {
    let mut raw = Vec::with_capacity(16);
    raw.extend_from_slice(&last.to_be_bytes());
    raw.extend_from_slice(fingerprint);
    keys.seal_token(&raw, &token_context(p))
}

pub(crate) fn decode_page_token(
    keys: &Keys,
    p: &Principal,
    token: &str,
    fingerprint: &[u8; 8],
) -> Result<Option<i64>, HubError> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || HubError::invalid("page_token", "is not a token this list returned to this caller");
    let raw = keys.open_token(token, &token_context(p)).ok_or_else(bad)?;
    if raw.len() != 16 {
        return Err(bad());
    }
    if &raw[8..] != fingerprint {
        return Err(HubError::invalid(
            "page_token",
            "was issued for other filter values (division_code, program, as_of)",
        ));
    }
    Ok(Some(i64::from_be_bytes(raw[..8].try_into().map_err(|_| bad())?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_like_runs_in_free_text_are_masked() {
        assert_eq!(mask_id_like("checking 621022198512310039 now"), "checking 621022********0039 now");
        assert_eq!(mask_id_like("11010519491231002x"), "110105********002x");
        assert_eq!(mask_id_like("case 2023-07 #12345"), "case 2023-07 #12345", "short numbers stay");
        assert_eq!(mask_id_like("复核 621022198512310039"), "复核 621022********0039");
    }

    #[test]
    fn purpose_refuses_control_characters() {
        assert!(check_purpose("case review\nOK").is_err());
        assert!(check_purpose(&"x".repeat(MAX_PURPOSE_LEN + 1)).is_err());
        assert_eq!(check_purpose("年度复核").unwrap(), "年度复核");
    }
}
