//! The administrative actions of `doudi.v1.Admin` (issue 20 item 1, docs/admin.md): input rules, the action, and its
//! audit event ([`crate::domain::admin::AdminEvent`]: who, what, the state's hash before and after). The gRPC layer
//! (`grpc::admin`) has already checked the caller's role; the direct, break-glass commands call the same functions
//! with [`Actor::direct`] where they can.
//!
//! Errors are [`HubError`]s naming the field and the reason (INVALID_ARGUMENT), or the rule refused (NOT_FOUND,
//! ALREADY_EXISTS, FAILED_PRECONDITION, PERMISSION_DENIED for self-approval).

use std::path::Path;

use chrono::{DateTime, Utc};

use super::HubError;
use crate::domain::admin::{
    Actor, AdminEvent, ApprovalRefusal, ChangeKind, NO_STATE, NewChange, StoredChange, bytes_hash, state_hash,
};
use crate::domain::medical::PolicyParams;
use crate::domain::policy::AccessPolicy;
use crate::store::AdminEventRecord as _;
use crate::store::{AuditEventRow, AuditFilter, ChainCheck, Store, StoreError, StoredPolicy};

/// Largest text a request may carry in one field (a policy version's JSON, a notice, a certificate): 64 KiB.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// Largest access matrix a change request may carry: 256 KiB (the built-in one is under 8 KiB).
pub const MAX_MATRIX_BYTES: usize = 256 * 1024;

/// The migration that made `admin_changes` (0016).
pub const CHANGES_MIGRATION: i64 = 16;

/// Longest reason or source, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// Longest source of a policy version or calendar notice, in characters.
pub const MAX_SOURCE_CHARS: usize = 200;

/// One line of 1..=`max` characters without control characters (audited and printed).
pub(crate) fn line(field: &str, text: &str, max: usize) -> Result<String, HubError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(HubError::invalid(field, "is empty"));
    }
    if t.chars().count() > max {
        return Err(HubError::invalid(field, format!("is longer than {max} characters")));
    }
    if t.chars().any(char::is_control) {
        return Err(HubError::invalid(field, "contains a control character (one line of text)"));
    }
    Ok(t.to_owned())
}

pub(crate) fn bounded(field: &str, text: &str, max: usize) -> Result<(), HubError> {
    if text.len() > max {
        return Err(HubError::invalid(field, format!("is {} bytes, more than {max}", text.len())));
    }
    Ok(())
}

/// Append a read's event: the state read hashes the same before and after.
async fn audit_read(store: &Store, actor: &Actor, args: String, detail: String, seen: String) -> Result<(), HubError> {
    let e = AdminEvent { actor, command: "", args, detail, before: seen.clone(), after: seen };
    store.append_admin_event(&e.record()).await?;
    Ok(())
}

/// An anyhow error of an `ops` function: a store error keeps its kind (UNAVAILABLE when transient), anything else is
/// a precondition the message explains.
fn from_anyhow(e: anyhow::Error) -> HubError {
    match e.downcast::<StoreError>() {
        Ok(s) => HubError::Store(s),
        Err(e) => HubError::FailedPrecondition(format!("{e:#}")),
    }
}

// ---- system administrator ------------------------------------------------------------------------------------

/// What AddPolicyVersion added.
#[derive(Debug, Clone)]
pub struct PolicyAdded {
    pub params: PolicyParams,
    /// `field: reason` of each value below a national floor (added all the same).
    pub warnings: Vec<String>,
}

/// The hash of a stored policy version: its JSON, source and example flag.
fn policy_hash(json: &str, source: &str, example: bool) -> String {
    state_hash(&[json, source, if example { "example" } else { "final" }])
}

/// Add a medical policy version (`params_json`: the shape `doudi policy show --json` prints), audited in the same
/// transaction. Errors: INVALID_ARGUMENT for `params_json` (too large, not JSON of the shape, a rule of
/// [`PolicyParams::validate`], named `params_json.<field>`) or `source`; ALREADY_EXISTS when the label or the
/// (pooling area, first day) is taken.
pub async fn add_policy_version(
    store: &Store,
    actor: &Actor,
    params_json: &str,
    source: &str,
    example: bool,
) -> Result<PolicyAdded, HubError> {
    bounded("params_json", params_json, MAX_TEXT_BYTES)?;
    let params: PolicyParams = serde_json::from_str(params_json)
        .map_err(|e| HubError::invalid("params_json", format!("not a policy version: {e}")))?;
    params.validate().map_err(|e| HubError::invalid(format!("params_json.{}", e.field), e.reason))?;
    let source = line("source", source, MAX_SOURCE_CHARS)?;
    let warnings = params.national_floor_warnings().into_iter().map(|w| format!("{}: {}", w.field, w.reason)).collect();
    let json = serde_json::to_string(&params).map_err(|e| HubError::invalid("params_json", e.to_string()))?;
    let audit = AdminEvent {
        actor,
        command: "doudi policy add",
        args: format!(
            "version={}; pooling_area={}; effective_from={}; source={source}; example={example}",
            params.version, params.pooling_area, params.effective_from
        ),
        detail: format!("policy version {} added", params.version),
        before: NO_STATE.to_owned(),
        after: policy_hash(&json, &source, example),
    }
    .record();
    let stored = StoredPolicy { params: params.clone(), example, source };
    if !store.add_medical_policy_audited(&stored, &audit).await? {
        return Err(HubError::AlreadyExists(format!(
            "version {:?} or pooling area {} from {} is already held (versions are never overwritten)",
            params.version, params.pooling_area, params.effective_from
        )));
    }
    Ok(PolicyAdded { params, warnings })
}

/// Every medical policy version, oldest first; audited as a read (the hash of what was listed).
async fn list_policy_versions(store: &Store, actor: &Actor) -> Result<Vec<StoredPolicy>, HubError> {
    let all = store.medical_policies().await?;
    let mut fields = Vec::new();
    for p in &all {
        let json = serde_json::to_string(&p.params).map_err(|e| HubError::invalid("params", e.to_string()))?;
        fields.push(policy_hash(&json, &p.source, p.example));
    }
    let seen = state_hash(&fields.iter().map(String::as_str).collect::<Vec<_>>());
    audit_read(store, actor, String::new(), format!("listed {} policy versions", all.len()), seen).await?;
    Ok(all)
}

/// Load a year's holiday notice ([`super::calendar::load_notice`], audited there with the year's hash before and
/// after). `format`: `toml` or `json`. Errors: INVALID_ARGUMENT for `notice` (too large, unreadable, a date or rule
/// of the notice), `format`, `source`, `correction`; as `load_notice` otherwise.
async fn add_calendar_notice(
    store: &Store,
    actor: &Actor,
    notice: &str,
    format: &str,
    source: &str,
    correction: Option<&str>,
    now: DateTime<Utc>,
) -> Result<super::calendar::LoadReport, HubError> {
    use crate::domain::holiday_notice::{FileFormat, NoticeFile};
    bounded("notice", notice, MAX_TEXT_BYTES)?;
    let format = match format {
        "toml" => FileFormat::Toml,
        "json" => FileFormat::Json,
        other => return Err(HubError::invalid("format", format!("{other:?}: must be \"toml\" or \"json\""))),
    };
    let file = NoticeFile::parse(notice, format).map_err(|e| HubError::invalid("notice", e.to_string()))?;
    super::calendar::load_notice(store, &file, source, correction, actor, now).await
}

/// Retention periods and holds; audited as a read.
async fn retention_settings(
    store: &Store,
    actor: &Actor,
) -> Result<(Vec<crate::store::RetentionPolicy>, Vec<crate::store::StoredHold>), HubError> {
    let periods = store.retention_policies().await?;
    let holds = store.retention_holds().await?;
    let mut fields: Vec<String> =
        periods.iter().map(|p| format!("{} {} {} {}", p.kind.as_str(), p.days, p.min_days, p.source)).collect();
    fields.extend(holds.iter().map(|h| format!("hold {} {}", h.id, h.released.is_some())));
    let seen = state_hash(&fields.iter().map(String::as_str).collect::<Vec<_>>());
    let detail = format!("listed {} periods and {} holds", periods.len(), holds.len());
    audit_read(store, actor, String::new(), detail, seen).await?;
    Ok((periods, holds))
}

/// Set a kind's retention period ([`crate::ops::retention::set_period`], audited there). Returns the days before.
/// Errors: INVALID_ARGUMENT for `kind`, `days` (below the kind's floor, or over 36,500), `source`.
async fn set_retention_period(
    store: &Store,
    actor: &Actor,
    kind: &str,
    days: i64,
    source: &str,
    now: DateTime<Utc>,
) -> Result<i64, HubError> {
    use crate::domain::retention::{RecordKind, check_period};
    let k = RecordKind::parse(kind).ok_or_else(|| {
        HubError::invalid("kind", format!("{kind:?}: one of audit_persons, change_log, fact_version, settlement"))
    })?;
    check_period(k, days).map_err(|e| HubError::invalid("days", e.to_string()))?;
    if days > 36_500 {
        return Err(HubError::invalid("days", "more than 36,500 days (a hundred years)"));
    }
    let source = line("source", source, MAX_SOURCE_CHARS)?;
    crate::ops::retention::set_period(store, k, days, &source, actor, now).await.map_err(from_anyhow)
}

/// Place a legal hold on a person (by ID number: only its person key is kept) or a quarter, audited. Errors:
/// INVALID_ARGUMENT unless exactly one of `id_number` and `quarter` is given and valid, or for `reason`.
async fn place_legal_hold(
    store: &Store,
    keys: &crate::security::crypto::Keys,
    actor: &Actor,
    id_number: &str,
    quarter: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<i64, HubError> {
    use crate::store::HoldTarget;
    let target = match (id_number.is_empty(), quarter.is_empty()) {
        (false, true) => {
            let id =
                crate::domain::id_number::IdNumber::parse_at(id_number, crate::domain::calendar::shanghai_date(now))
                    .map_err(|e| HubError::invalid("id_number", format!("{e}")))?;
            HoldTarget::Person(keys.person_key(&id))
        }
        (true, false) => HoldTarget::Quarter(
            quarter.parse().map_err(|e| HubError::invalid("quarter", format!("{quarter:?}: {e} (YYYYQn)")))?,
        ),
        _ => return Err(HubError::invalid("id_number", "give exactly one of id_number and quarter")),
    };
    let reason = line("reason", reason, MAX_REASON_CHARS)?;
    crate::ops::retention::place_hold(store, target, &reason, actor, now).await.map_err(from_anyhow)
}

/// Release hold `hold_id`, audited. Errors: INVALID_ARGUMENT for `hold_id` (not positive) or `reason`; NOT_FOUND
/// when no such hold is in force.
async fn release_legal_hold(
    store: &Store,
    actor: &Actor,
    hold_id: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), HubError> {
    if hold_id <= 0 {
        return Err(HubError::invalid("hold_id", "must be positive"));
    }
    let reason = line("reason", reason, MAX_REASON_CHARS)?;
    match crate::ops::retention::release_hold(store, hold_id, &reason, actor, now).await.map_err(from_anyhow)? {
        Some(_) => Ok(()),
        None => Err(HubError::NotFound(format!("no legal hold {hold_id} in force (GetRetentionSettings lists them)"))),
    }
}

/// Purge what is due ([`crate::ops::retention::purge`]: each chunk its own transaction and event), then one event
/// for the call with the counts due before and after as its hashes. Errors: INVALID_ARGUMENT for a negative
/// `chunk_size` or `max_chunks`.
async fn purge_expired(
    store: &Store,
    actor: &Actor,
    dry_run: bool,
    chunk_size: i32,
    max_chunks: i32,
    now: DateTime<Utc>,
) -> Result<crate::ops::retention::PurgeReport, HubError> {
    use crate::ops::retention::{DEFAULT_CHUNK, PurgeReport, purge};
    let chunk = usize::try_from(chunk_size).map_err(|_| HubError::invalid("chunk_size", "must not be negative"))?;
    let max = usize::try_from(max_chunks).map_err(|_| HubError::invalid("max_chunks", "must not be negative"))?;
    let chunk = if chunk == 0 { DEFAULT_CHUNK } else { chunk };
    let max = (max > 0).then_some(max);
    let due_hash = |r: &PurgeReport| {
        let fields: Vec<String> = r.counts.iter().map(|c| format!("{} {}", c.kind.as_str(), c.purged)).collect();
        state_hash(&fields.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let before = purge(store, now, chunk, None, true, actor).await.map_err(from_anyhow)?;
    let report = if dry_run {
        before.clone()
    } else {
        purge(store, now, chunk, max, false, actor).await.map_err(from_anyhow)?
    };
    let after = if dry_run {
        before.clone()
    } else {
        purge(store, now, chunk, None, true, actor).await.map_err(from_anyhow)?
    };
    let counts: Vec<String> = report.counts.iter().map(|c| format!("{}={}", c.kind.as_str(), c.purged)).collect();
    let e = AdminEvent {
        actor,
        command: "doudi retention purge",
        args: format!("dry_run={dry_run}; chunk_size={chunk}; max_chunks={}", max.unwrap_or(0)),
        detail: format!(
            "{} {}{} (counts due before and after)",
            if dry_run { "due" } else { "purged" },
            counts.join(" "),
            if report.interrupted { "; interrupted at max_chunks" } else { "" }
        ),
        before: due_hash(&before),
        after: due_hash(&after),
    };
    store.append_admin_event(&e.record()).await?;
    Ok(report)
}

// ---- security administrator ----------------------------------------------------------------------------------

/// Read a file of the certificate directory, `None` when it does not exist.
fn read_opt(path: &Path) -> Result<Option<Vec<u8>>, HubError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(HubError::FailedPrecondition(format!("{}: {e}", path.display()))),
    }
}

/// The CA key must be in `certs_dir` for the hub to sign a CRL.
fn require_ca_key(certs_dir: &Path) -> Result<(), HubError> {
    let key = certs_dir.join(crate::security::certs::files::CA_KEY);
    if !key.exists() {
        return Err(HubError::FailedPrecondition(format!(
            "{} does not exist: the hub cannot sign a CRL (an offline CA): revoke on the CA's machine with `doudi \
             certs revoke NAME --dir DIR` and install the CRL",
            key.display()
        )));
    }
    Ok(())
}

fn certs_error(field: &str, e: crate::security::certs::CertsError) -> HubError {
    match e {
        crate::security::certs::CertsError::Invalid { what, reason } => {
            HubError::invalid(field, format!("{what}: {reason}"))
        }
        other => HubError::FailedPrecondition(other.to_string()),
    }
}

/// The state a revocation changes: the revoked serials and the CRL.
fn crl_state(certs_dir: &Path) -> Result<String, HubError> {
    let serials = read_opt(&certs_dir.join(crate::security::certs::files::REVOKED_SERIALS))?;
    let crl = read_opt(&certs_dir.join(crate::security::certs::files::CRL))?;
    Ok(state_hash(&[&bytes_hash(serials.as_deref()), &bytes_hash(crl.as_deref())]))
}

/// Revoke `certificate_pem` with the CA in `certs_dir` ([`crate::security::certs::revoke_pem`]), then append the event (the
/// files are not in the database: if the append fails, the revocation stands and the error says so). The caller
/// reloads the TLS configuration. Errors: INVALID_ARGUMENT for `certificate_pem`; FAILED_PRECONDITION without
/// `ca.key`.
async fn revoke_certificate(
    store: &Store,
    actor: &Actor,
    certs_dir: &Path,
    certificate_pem: &str,
) -> Result<crate::security::certs::Revocation, HubError> {
    bounded("certificate_pem", certificate_pem, MAX_TEXT_BYTES)?;
    require_ca_key(certs_dir)?;
    let der = {
        use rustls::pki_types::pem::PemObject as _;
        rustls::pki_types::CertificateDer::from_pem_slice(certificate_pem.as_bytes())
            .map_err(|e| HubError::invalid("certificate_pem", format!("not a PEM certificate: {e}")))?
    };
    let subject = crate::server::tls::peer_spiffe_ids(der.as_ref()).unwrap_or_default().join(",");
    let before = crl_state(certs_dir)?;
    let r = crate::security::certs::revoke_pem(certs_dir, certificate_pem.as_bytes(), "certificate_pem")
        .map_err(|e| certs_error("certificate_pem", e))?;
    let after = crl_state(certs_dir)?;
    let e = AdminEvent {
        actor,
        command: "doudi certs revoke",
        args: format!("serial={}; subject={}", r.serial_hex, if subject.is_empty() { "-" } else { &subject }),
        detail: format!(
            "certificate {} {}; the CRL lists {}",
            r.serial_hex,
            if r.newly_revoked { "revoked" } else { "was revoked already" },
            r.revoked_count
        ),
        before,
        after,
    };
    store.append_admin_event(&e.record()).await.map_err(|err| {
        tracing::error!(error = %err, serial = %r.serial_hex, "certificate revoked, but its audit event was not written");
        HubError::Store(err)
    })?;
    Ok(r)
}

/// Rewrite the CRL with a fresh nextUpdate ([`crate::security::certs::rebuild_crl`]), audited. Returns how many serials it
/// lists and its nextUpdate. Errors: FAILED_PRECONDITION without `ca.key`.
async fn refresh_crl(
    store: &Store,
    actor: &Actor,
    certs_dir: &Path,
    now: DateTime<Utc>,
) -> Result<(usize, DateTime<Utc>), HubError> {
    require_ca_key(certs_dir)?;
    let before = crl_state(certs_dir)?;
    let n = crate::security::certs::rebuild_crl(certs_dir).map_err(|e| certs_error("certs_dir", e))?;
    let next_update = now + chrono::Duration::days(crate::security::certs::CRL_VALIDITY_DAYS);
    let after = crl_state(certs_dir)?;
    let e = AdminEvent {
        actor,
        command: "doudi certs refresh-crl",
        args: String::new(),
        detail: format!(
            "CRL rewritten: {n} revoked serials, next update in {} days",
            crate::security::certs::CRL_VALIDITY_DAYS
        ),
        before,
        after,
    };
    store.append_admin_event(&e.record()).await?;
    Ok((n, next_update))
}

/// What a change request asks for, as checked input.
#[derive(Debug, Clone)]
pub enum ChangeInput<'a> {
    AccessMatrix(&'a str),
    /// The new key's check value, hex.
    DataKeyRotation(&'a str),
}

/// Store a change request under the two-person rule, audited; it expires `ttl` after now. Errors: INVALID_ARGUMENT
/// for `access_matrix_toml` (empty, too large, not a valid matrix: the parser's reason), `new_key_check` (not 64
/// lower-hex characters, or the data key in use), `reason`.
async fn request_change(
    store: &Store,
    current_key_check: &[u8; 32],
    actor: &Actor,
    input: ChangeInput<'_>,
    reason: &str,
    ttl: std::time::Duration,
    now: DateTime<Utc>,
) -> Result<StoredChange, HubError> {
    let (kind, payload) = match input {
        ChangeInput::AccessMatrix(toml) => {
            if toml.trim().is_empty() {
                return Err(HubError::invalid("access_matrix_toml", "is empty: give the whole matrix"));
            }
            bounded("access_matrix_toml", toml, MAX_MATRIX_BYTES)?;
            AccessPolicy::from_toml(toml)
                .map_err(|e| HubError::invalid("access_matrix_toml", format!("not a valid access matrix: {e}")))?;
            (ChangeKind::AccessMatrix, toml.to_owned())
        }
        ChangeInput::DataKeyRotation(check) => {
            if check.len() != 64 || !check.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                return Err(HubError::invalid(
                    "new_key_check",
                    "must be 64 lower-hex characters (a SHA-256 check value)",
                ));
            }
            if check == hex::encode(current_key_check) {
                return Err(HubError::invalid("new_key_check", "is the check value of the data key in use"));
            }
            (ChangeKind::DataKeyRotation, check.to_owned())
        }
    };
    let reason = line("reason", reason, MAX_REASON_CHARS)?;
    let now = crate::store::from_micros(crate::store::to_micros(now));
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(1)).max(chrono::Duration::seconds(1));
    let new =
        NewChange { kind, payload, reason, requested_by: actor.by.clone(), requested_at: now, expires_at: now + ttl };
    let stored = |id: i64| StoredChange {
        id,
        kind: new.kind,
        payload: new.payload.clone(),
        reason: new.reason.clone(),
        requested_by: new.requested_by.clone(),
        requested_at: new.requested_at,
        expires_at: new.expires_at,
        approved: None,
        applied: None,
    };
    let audit = |id: i64| {
        let c = stored(id);
        AdminEvent {
            actor,
            command: "doudi admin request",
            args: format!("kind={}; reason={}", c.kind.as_str(), c.reason),
            detail: format!(
                "change {id} requested; waits for a second security administrator until {}",
                c.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            before: NO_STATE.to_owned(),
            after: c.content_hash(),
        }
        .record()
    };
    let id = store.request_change(&new, &audit).await?;
    Ok(stored(id))
}

/// Approve change `id` (the two-person rule, [`crate::domain::admin::check_approval`] in the store's transaction),
/// audited with the request's hash before and after. `content_hash`, when not empty, must be the request's. Errors:
/// INVALID_ARGUMENT for `change_id` not positive; NOT_FOUND unknown; PERMISSION_DENIED self-approval;
/// FAILED_PRECONDITION expired, not pending, or another content hash.
async fn approve_change(
    store: &Store,
    actor: &Actor,
    id: i64,
    content_hash: &str,
    now: DateTime<Utc>,
) -> Result<StoredChange, HubError> {
    if id <= 0 {
        return Err(HubError::invalid("change_id", "must be positive"));
    }
    if !content_hash.is_empty()
        && let Some(c) = store.admin_changes().await?.into_iter().find(|c| c.id == id)
        && c.content_hash() != content_hash
    {
        return Err(HubError::FailedPrecondition(format!(
            "change {id} has content hash {}, not the {content_hash} given: read it again before approving",
            c.content_hash()
        )));
    }
    let audit = |c: &StoredChange| {
        let mut pending = c.clone();
        pending.approved = None;
        AdminEvent {
            actor,
            command: "doudi admin approve",
            args: format!("change_id={id}; kind={}; requested_by={}", c.kind.as_str(), c.requested_by),
            detail: format!("change {id} approved by a second security administrator"),
            before: pending.content_hash(),
            after: c.content_hash(),
        }
        .record()
    };
    match store.approve_change(id, &actor.by, now, &audit).await? {
        Ok(c) => Ok(c),
        Err(r @ ApprovalRefusal::Unknown(_)) => Err(HubError::NotFound(r.to_string())),
        Err(r @ ApprovalRefusal::SelfApproval(..)) => Err(HubError::PermissionDenied(r.to_string())),
        Err(r) => Err(HubError::FailedPrecondition(r.to_string())),
    }
}

/// Change requests, newest first (pending ones only unless `all`); audited as a read.
async fn list_changes(
    store: &Store,
    actor: &Actor,
    all: bool,
    now: DateTime<Utc>,
) -> Result<Vec<StoredChange>, HubError> {
    let mut changes: Vec<StoredChange> = store
        .admin_changes()
        .await?
        .into_iter()
        .filter(|c| all || c.state(now) == crate::domain::admin::ChangeState::Pending)
        .collect();
    changes.reverse();
    let hashes: Vec<String> = changes.iter().map(StoredChange::content_hash).collect();
    let seen = state_hash(&hashes.iter().map(String::as_str).collect::<Vec<_>>());
    audit_read(store, actor, format!("all={all}"), format!("listed {} change requests", changes.len()), seen).await?;
    Ok(changes)
}

/// The newest approved access matrix in the database, if any: what a starting hub uses instead of
/// `access_policy_file` (docs/admin.md "Access matrix").
///
/// # Errors
/// A store error, or a stored matrix that no longer parses (it was checked when requested).
pub async fn approved_access_matrix(store: &Store) -> anyhow::Result<Option<(StoredChange, AccessPolicy)>> {
    let newest = store
        .admin_changes()
        .await?
        .into_iter()
        .filter(|c| c.kind == ChangeKind::AccessMatrix && c.approved.is_some())
        .max_by_key(|c| c.approved.as_ref().map(|(_, at)| *at));
    match newest {
        Some(c) => {
            let p = AccessPolicy::from_toml(&c.payload)
                .map_err(|e| anyhow::anyhow!("the access matrix of approved change {}: {e}", c.id))?;
            Ok(Some((c, p)))
        }
        None => Ok(None),
    }
}

// ---- audit administrator -------------------------------------------------------------------------------------

/// Audit events matching `filter`, newest first, `page_size` (1..=1,000, 0 = 100) after `page_token` (the `seq`
/// to continue below, as decimal; "" = the newest); audited as a read. Returns the events and the next token.
/// Errors: INVALID_ARGUMENT for `page_size`, `page_token`.
async fn list_audit_events(
    store: &Store,
    actor: &Actor,
    filter: AuditFilter,
    page_size: i32,
    page_token: &str,
) -> Result<(Vec<AuditEventRow>, String), HubError> {
    let size = match page_size {
        0 => 100,
        1..=1000 => page_size as usize,
        _ => return Err(HubError::invalid("page_size", "must be 0 (100) or 1 to 1,000")),
    };
    let before = if page_token.is_empty() {
        None
    } else {
        Some(
            page_token
                .parse::<i64>()
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| HubError::invalid("page_token", "not a token from a previous response"))?,
        )
    };
    let mut rows = store.list_audit_events(&filter, before, size + 1).await?;
    let next = if rows.len() > size {
        rows.truncate(size);
        rows.last().map(|r| r.seq.to_string()).unwrap_or_default()
    } else {
        String::new()
    };
    let hashes: Vec<String> = rows.iter().map(|r| hex::encode(r.hash)).collect();
    let seen = state_hash(&hashes.iter().map(String::as_str).collect::<Vec<_>>());
    let args = format!(
        "agency={}; outcome={}; page_token={page_token}",
        filter.agency.as_deref().unwrap_or(""),
        filter.outcome.map(|o| format!("{o:?}")).unwrap_or_default()
    );
    audit_read(store, actor, args, format!("listed {} audit events", rows.len()), seen).await?;
    Ok((rows, next))
}

/// Recompute the audit chain; audited as a read (the head's hash as the state).
async fn verify_audit_log(store: &Store, actor: &Actor) -> Result<ChainCheck, HubError> {
    let c = store.verify_audit_chain().await?;
    let seen = format!("sha256:{}", hex::encode(c.head));
    let detail = match &c.first_broken {
        None => format!("chain verified: {} events valid", c.checked),
        Some((seq, why)) => format!("chain BROKEN at event {seq} of lane {}: {why}", c.first_broken_lane),
    };
    audit_read(store, actor, String::new(), detail, seen).await?;
    Ok(c)
}

/// The administrative actions as the hub's methods: the Admin service's one way in (`grpc::admin` has checked the
/// caller's role and passes its [`Actor`]); each takes the store and keys from the hub and "now" from its clock. Shapes
/// and errors: the functions of the same name above.
impl super::Hub {
    /// [`add_policy_version`].
    pub async fn add_policy_version(
        &self,
        actor: &Actor,
        params_json: &str,
        source: &str,
        example: bool,
    ) -> Result<PolicyAdded, HubError> {
        add_policy_version(&self.store, actor, params_json, source, example).await
    }

    /// [`list_policy_versions`].
    pub async fn list_policy_versions(&self, actor: &Actor) -> Result<Vec<StoredPolicy>, HubError> {
        list_policy_versions(&self.store, actor).await
    }

    /// [`add_calendar_notice`], loaded at the hub's now.
    pub async fn add_calendar_notice(
        &self,
        actor: &Actor,
        notice: &str,
        format: &str,
        source: &str,
        correction: Option<&str>,
    ) -> Result<super::calendar::LoadReport, HubError> {
        add_calendar_notice(&self.store, actor, notice, format, source, correction, self.clock.now()).await
    }

    /// [`retention_settings`].
    pub async fn retention_settings(
        &self,
        actor: &Actor,
    ) -> Result<(Vec<crate::store::RetentionPolicy>, Vec<crate::store::StoredHold>), HubError> {
        retention_settings(&self.store, actor).await
    }

    /// [`set_retention_period`], set at system time (retention's records and cutoffs are all on the store's time of
    /// record, [`super::Clock::system_now`]).
    pub async fn set_retention_period(
        &self,
        actor: &Actor,
        kind: &str,
        days: i64,
        source: &str,
    ) -> Result<i64, HubError> {
        set_retention_period(&self.store, actor, kind, days, source, self.clock.system_now()).await
    }

    /// [`place_legal_hold`] with the hub's keys, placed at system time.
    pub async fn place_legal_hold(
        &self,
        actor: &Actor,
        id_number: &str,
        quarter: &str,
        reason: &str,
    ) -> Result<i64, HubError> {
        place_legal_hold(&self.store, &self.keys, actor, id_number, quarter, reason, self.clock.system_now()).await
    }

    /// [`release_legal_hold`], released at system time.
    pub async fn release_legal_hold(&self, actor: &Actor, hold_id: i64, reason: &str) -> Result<(), HubError> {
        release_legal_hold(&self.store, actor, hold_id, reason, self.clock.system_now()).await
    }

    /// [`purge_expired`], with the cutoffs counted back from system time (they are compared with the rows' time of
    /// record).
    pub async fn purge_expired(
        &self,
        actor: &Actor,
        dry_run: bool,
        chunk_size: i32,
        max_chunks: i32,
    ) -> Result<crate::ops::retention::PurgeReport, HubError> {
        purge_expired(&self.store, actor, dry_run, chunk_size, max_chunks, self.clock.system_now()).await
    }

    /// [`revoke_certificate`] with the CA in `certs_dir`.
    pub async fn revoke_certificate(
        &self,
        actor: &Actor,
        certs_dir: &Path,
        certificate_pem: &str,
    ) -> Result<crate::security::certs::Revocation, HubError> {
        revoke_certificate(&self.store, actor, certs_dir, certificate_pem).await
    }

    /// [`refresh_crl`] with the CA in `certs_dir`: the serials listed and the CRL's nextUpdate (real time).
    pub async fn refresh_crl(&self, actor: &Actor, certs_dir: &Path) -> Result<(usize, DateTime<Utc>), HubError> {
        // System time: a CRL is signed and checked against real time (`security::certs`), so its nextUpdate is real
        // time too, whatever a test or the demo fixed the business clock at.
        refresh_crl(&self.store, actor, certs_dir, self.clock.system_now()).await
    }

    /// [`request_change`] against the data key in use, requested at the hub's now.
    pub async fn request_change(
        &self,
        actor: &Actor,
        input: ChangeInput<'_>,
        reason: &str,
        ttl: std::time::Duration,
    ) -> Result<StoredChange, HubError> {
        request_change(&self.store, &self.keys.check_value(), actor, input, reason, ttl, self.clock.now()).await
    }

    /// [`approve_change`] at the hub's now.
    pub async fn approve_change(&self, actor: &Actor, id: i64, content_hash: &str) -> Result<StoredChange, HubError> {
        approve_change(&self.store, actor, id, content_hash, self.clock.now()).await
    }

    /// [`list_changes`], each request's state as at the hub's now.
    pub async fn list_changes(&self, actor: &Actor, all: bool) -> Result<Vec<StoredChange>, HubError> {
        list_changes(&self.store, actor, all, self.clock.now()).await
    }

    /// [`list_audit_events`].
    pub async fn list_audit_events(
        &self,
        actor: &Actor,
        filter: AuditFilter,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<AuditEventRow>, String), HubError> {
        list_audit_events(&self.store, actor, filter, page_size, page_token).await
    }

    /// [`verify_audit_log`].
    pub async fn verify_audit_log(&self, actor: &Actor) -> Result<ChainCheck, HubError> {
        verify_audit_log(&self.store, actor).await
    }

    /// [`super::subsidy::add_linkage_rule`].
    pub async fn add_linkage_rule(
        &self,
        actor: &Actor,
        rule_json: &str,
        source: &str,
    ) -> Result<crate::domain::subsidy::LinkageRule, HubError> {
        super::subsidy::add_linkage_rule(&self.store, actor, rule_json, source).await
    }

    /// [`super::subsidy::add_fixed_campaign`].
    pub async fn add_fixed_campaign(
        &self,
        actor: &Actor,
        campaign_json: &str,
        source: &str,
    ) -> Result<crate::domain::subsidy::FixedCampaign, HubError> {
        super::subsidy::add_fixed_campaign(&self.store, actor, campaign_json, source).await
    }
}
