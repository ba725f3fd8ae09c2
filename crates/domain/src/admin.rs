//! Separated administrators (issue 20 item 1, docs/admin.md): operator roles read from the operator certificate, which
//! role may call which `doudi.v1.Admin` RPC, the two-person rule of access-matrix changes and data-key rotation, and
//! the audit event every administrative action writes (who, what, the state's hash before and after).
//!
//! - **Identity.** An operator certificate's URI SAN is `spiffe://<trust-domain>/operator/<role>/<name>` with role
//!   `system`, `security` or `audit` (GB/T 22239-2019 level 3, 8.1.4.2 "应对管理用户进行分权": system, security and
//!   audit administrators separated) and name `^[a-z0-9][a-z0-9_-]{0,39}$` ([`OperatorId::from_spiffe`]).
//! - **One role per RPC.** [`RPCS`] lists every Admin method with the only role allowed to call it.
//! - **Two persons.** A change of [`ChangeKind`] is requested by one security administrator and approved by a
//!   different one before it takes effect ([`check_approval`]); a request not approved within its time to live
//!   (`admin_change_ttl_secs`, default [`DEFAULT_CHANGE_TTL_SECS`]) expires and can no longer be approved.
//! - **Audit form.** `AdminEventRecord::record` (in the hub crate's `store::rows`): agency [`OPERATOR_AGENCY`], method the RPC path (or the command for the
//!   direct, break-glass path), purpose `by=<operator>; role=<role>; <arguments>`, outcome
//!   `OK <what happened>; before=<hash>; after=<hash>`. A hash is [`state_hash`] of the changed state's canonical
//!   fields (`sha256:<64 hex>`), or [`NO_STATE`] when there was none (an addition's before, a read's both).

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// The agency of every administrative audit event (as `doudi calendar add` and the retention commands always had).
pub const OPERATOR_AGENCY: &str = "operator";

/// The hash written for a state that does not exist (before an addition), or is not changed (a read).
pub const NO_STATE: &str = "none";

/// The tag that starts the bytes [`state_hash`] hashes, naming their version.
pub const STATE_FORMAT: &str = "doudi-admin-state-v1";

/// How long a change request waits for its approval by default: 24 hours (docs/admin.md "Two persons"): long enough
/// for a second administrator on the next working day's shift to see it, short enough that a forgotten request cannot
/// be approved weeks later by someone who no longer knows why it was made.
pub const DEFAULT_CHANGE_TTL_SECS: u64 = 86_400;

/// An operator's role (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// 系统管理员: configuration, the working-day calendar, medical policy versions, retention settings.
    System,
    /// 安全管理员: the access matrix, certificates and revocation, data-key rotation.
    Security,
    /// 审计管理员: reads and exports the audit, verifies its chain, lists refusals; changes nothing.
    Audit,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 3] = [Role::System, Role::Security, Role::Audit];

    /// The name in SPIFFE IDs, audit events and messages: `system`, `security`, `audit`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::Security => "security",
            Role::Audit => "audit",
        }
    }

    /// The role named `s`, if any.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// What the role administers, for messages ("the security administrator (…)").
    pub fn describe(self) -> &'static str {
        match self {
            Role::System => "system administrator: configuration, calendar, policy versions, retention settings",
            Role::Security => "security administrator: access matrix, certificates and revocation, data-key rotation",
            Role::Audit => "audit administrator: reads and verifies the audit, lists refusals; changes nothing",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a SPIFFE ID is not an operator's. Messages do not echo the presented ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    /// Not `spiffe://<trust domain>/operator/<role>/<name>` of the configured trust domain.
    #[error("is not spiffe://<trust domain>/operator/<role>/<name> of this hub's trust domain")]
    NotOperator,
    /// The role segment is not `system`, `security` or `audit`.
    #[error("role must be system, security or audit")]
    Role,
    /// The name segment is not `^[a-z0-9][a-z0-9_-]{{0,39}}$`.
    #[error("name must be 1-40 characters of a-z, 0-9, '_' and '-', starting with a letter or digit")]
    Name,
}

/// An authenticated operator: role, name and the SPIFFE ID presented.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OperatorId {
    pub role: Role,
    pub name: String,
    pub spiffe_id: String,
}

/// Whether `name` is a valid operator name (`^[a-z0-9][a-z0-9_-]{0,39}$`).
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    (1..=40).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
}

impl OperatorId {
    /// The canonical SPIFFE ID of an operator: `spiffe://<trust_domain>/operator/<role>/<name>`.
    ///
    /// # Errors
    /// [`OperatorError::Name`] for an invalid name.
    pub fn new(trust_domain: &str, role: Role, name: &str) -> Result<OperatorId, OperatorError> {
        if !valid_name(name) {
            return Err(OperatorError::Name);
        }
        Ok(OperatorId {
            role,
            name: name.to_owned(),
            spiffe_id: format!("spiffe://{trust_domain}/operator/{}/{name}", role.as_str()),
        })
    }

    /// Reads `spiffe://<trust_domain>/operator/<role>/<name>` exactly: no other segments, query, fragment or port.
    ///
    /// # Errors
    /// See [`OperatorError`].
    pub fn from_spiffe(uri: &str, trust_domain: &str) -> Result<OperatorId, OperatorError> {
        let rest = uri.strip_prefix("spiffe://").ok_or(OperatorError::NotOperator)?;
        let (domain, path) = rest.split_once('/').ok_or(OperatorError::NotOperator)?;
        if trust_domain.is_empty() || domain != trust_domain {
            return Err(OperatorError::NotOperator);
        }
        let segments: Vec<&str> = path.split('/').collect();
        let ["operator", role, name] = segments.as_slice() else { return Err(OperatorError::NotOperator) };
        let role = Role::parse(role).ok_or(OperatorError::Role)?;
        if !valid_name(name) {
            return Err(OperatorError::Name);
        }
        Ok(OperatorId { role, name: (*name).to_owned(), spiffe_id: uri.to_owned() })
    }
}

/// Every `doudi.v1.Admin` RPC and the one role allowed to call it (docs/admin.md's table is this list).
pub const RPCS: [(&str, Role); 17] = [
    ("AddPolicyVersion", Role::System),
    ("ListPolicyVersions", Role::System),
    ("AddLinkageRule", Role::System),
    ("AddFixedCampaign", Role::System),
    ("AddCalendarNotice", Role::System),
    ("GetRetentionSettings", Role::System),
    ("SetRetentionPeriod", Role::System),
    ("PlaceLegalHold", Role::System),
    ("ReleaseLegalHold", Role::System),
    ("PurgeExpiredRecords", Role::System),
    ("RevokeCertificate", Role::Security),
    ("RefreshCrl", Role::Security),
    ("RequestChange", Role::Security),
    ("ApproveChange", Role::Security),
    ("ListChanges", Role::Security),
    ("ListAuditEvents", Role::Audit),
    ("VerifyAuditLog", Role::Audit),
];

/// The role allowed to call Admin RPC `rpc` (its bare name, e.g. `RequestChange`), `None` for an unknown name.
pub fn role_of(rpc: &str) -> Option<Role> {
    RPCS.iter().find(|(name, _)| *name == rpc).map(|(_, r)| *r)
}

/// The full method path of Admin RPC `rpc`: `/doudi.v1.Admin/<rpc>`, what its audit event's method is.
pub fn method_path(rpc: &str) -> String {
    format!("/doudi.v1.Admin/{rpc}")
}

/// What a change request changes, needing two security administrators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// A new access matrix (the `access_policy.toml` form): in force from each hub's next start once approved.
    AccessMatrix,
    /// Rotation to a new data key, named by its check value: `doudi keys rotate` runs only once it is approved.
    DataKeyRotation,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 2] = [ChangeKind::AccessMatrix, ChangeKind::DataKeyRotation];

    /// The name stored in `admin_changes.kind`: `access_matrix`, `data_key_rotation`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::AccessMatrix => "access_matrix",
            ChangeKind::DataKeyRotation => "data_key_rotation",
        }
    }

    /// The kind named `s`, if any.
    pub fn parse(s: &str) -> Option<ChangeKind> {
        ChangeKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A change request as stored (`admin_changes`, migration 0016).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChange {
    pub id: i64,
    pub kind: ChangeKind,
    /// The access matrix (TOML), or the new data key's check value (64 lower-hex characters).
    pub payload: String,
    /// Why, as the requester said.
    pub reason: String,
    /// The requester's SPIFFE ID.
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    /// Past this, the request can no longer be approved.
    pub expires_at: DateTime<Utc>,
    /// The approver's SPIFFE ID and when.
    pub approved: Option<(String, DateTime<Utc>)>,
    /// Who applied an approved change and when (data-key rotation: when `doudi keys rotate` finished).
    pub applied: Option<(String, DateTime<Utc>)>,
}

/// A change request to store (`admin_changes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChange {
    pub kind: ChangeKind,
    /// As [`StoredChange::payload`].
    pub payload: String,
    pub reason: String,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeState {
    /// Waiting for a second security administrator.
    Pending,
    /// Not approved before `expires_at`.
    Expired,
    /// Approved; an access matrix is in force from each hub's next start, a rotation may run.
    Approved,
    /// Approved and carried out.
    Applied,
}

impl ChangeState {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeState::Pending => "PENDING",
            ChangeState::Expired => "EXPIRED",
            ChangeState::Approved => "APPROVED",
            ChangeState::Applied => "APPLIED",
        }
    }
}

impl StoredChange {
    /// The request's state at `now`.
    pub fn state(&self, now: DateTime<Utc>) -> ChangeState {
        match (&self.approved, &self.applied) {
            (_, Some(_)) => ChangeState::Applied,
            (Some(_), None) => ChangeState::Approved,
            (None, _) if now >= self.expires_at => ChangeState::Expired,
            (None, _) => ChangeState::Pending,
        }
    }

    /// [`state_hash`] of the request's content (kind, payload, reason, requester, times): the audit's before/after.
    pub fn content_hash(&self) -> String {
        state_hash(&[
            self.kind.as_str(),
            &self.payload,
            &self.reason,
            &self.requested_by,
            &self.requested_at.timestamp_micros().to_string(),
            &self.expires_at.timestamp_micros().to_string(),
            self.approved.as_ref().map_or("", |(by, _)| by.as_str()),
        ])
    }
}

/// Why an approval is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalRefusal {
    /// No request with that id.
    #[error("there is no change request {0}")]
    Unknown(i64),
    /// The approver made the request (the two-person rule).
    #[error(
        "change request {0} was requested by you ({1}): a change of the access matrix or the data key needs a second, \
         different security administrator to approve it"
    )]
    SelfApproval(i64, String),
    /// Past its time to live.
    #[error("change request {0} expired at {1} without approval: request it again")]
    Expired(i64, DateTime<Utc>),
    /// Approved already (or applied).
    #[error("change request {0} is {1}, not PENDING: nothing to approve")]
    NotPending(i64, &'static str),
}

/// Whether `approver` may approve `change` at `now` (the two-person rule, docs/admin.md): it must be pending (not
/// approved, not applied, not expired) and requested by someone else.
///
/// # Errors
/// [`ApprovalRefusal::SelfApproval`], [`ApprovalRefusal::Expired`], [`ApprovalRefusal::NotPending`].
pub fn check_approval(change: &StoredChange, approver: &str, now: DateTime<Utc>) -> Result<(), ApprovalRefusal> {
    match change.state(now) {
        ChangeState::Pending => {}
        ChangeState::Expired => return Err(ApprovalRefusal::Expired(change.id, change.expires_at)),
        s => return Err(ApprovalRefusal::NotPending(change.id, s.as_str())),
    }
    if change.requested_by == approver {
        return Err(ApprovalRefusal::SelfApproval(change.id, approver.to_owned()));
    }
    Ok(())
}

/// `sha256:<hex>` of [`STATE_FORMAT`] followed by each field as `<byte length>:<UTF-8 bytes>;` (the audit chain's
/// unambiguous form, `domain::audit`): the before/after hash of an administrative event.
pub fn state_hash(fields: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(STATE_FORMAT.as_bytes());
    for f in fields {
        h.update(f.len().to_string().as_bytes());
        h.update(b":");
        h.update(f.as_bytes());
        h.update(b";");
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// `sha256:<hex>` of a file's bytes (a CRL, the revoked-serials list), [`NO_STATE`] for `None` (no such file).
pub fn bytes_hash(bytes: Option<&[u8]>) -> String {
    match bytes {
        Some(b) => format!("sha256:{}", hex::encode(Sha256::digest(b))),
        None => NO_STATE.to_owned(),
    }
}

/// Who takes an administrative action, and through which door: an operator over the Admin service (its SPIFFE ID and
/// role, the RPC's path as method), or a command on the database directly (break-glass: `direct-database:$USER`, the
/// command as method).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The operator's SPIFFE ID, or `direct-database:<user>`.
    pub by: String,
    /// The operator's role; `None` on the direct path.
    pub role: Option<Role>,
    /// The RPC's method path (`/doudi.v1.Admin/…`); `None` on the direct path (the command's name is used).
    pub method: Option<String>,
}

impl Actor {
    /// An operator calling Admin RPC `rpc`.
    pub fn operator(op: &OperatorId, rpc: &str) -> Actor {
        Actor { by: op.spiffe_id.clone(), role: Some(op.role), method: Some(method_path(rpc)) }
    }

    /// A command run on the database directly by `user` (the break-glass path, docs/operations.md).
    pub fn direct(user: &str) -> Actor {
        Actor { by: format!("direct-database:{user}"), role: None, method: None }
    }

    /// The audit method: the RPC path, or `command` (e.g. `doudi retention set`) on the direct path.
    pub fn method_or(&self, command: &str) -> String {
        self.method.clone().unwrap_or_else(|| command.to_owned())
    }

    /// `by=<who>; role=<role>` (`role=direct-database` on the direct path): how every event's purpose starts.
    pub fn who(&self) -> String {
        format!("by={}; role={}", self.by, self.role.map_or("direct-database", Role::as_str))
    }
}

/// One administrative action's audit event (module docs).
#[derive(Debug, Clone)]
pub struct AdminEvent<'a> {
    pub actor: &'a Actor,
    /// The command's name on the direct path (the RPC path is the actor's).
    pub command: &'a str,
    /// The arguments, summarised (never an ID number or a key).
    pub args: String,
    /// What happened, e.g. `revoked serial 4a…`.
    pub detail: String,
    pub before: String,
    pub after: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const TD: &str = "doudi.qingyang.gov.cn";

    #[test]
    fn operator_ids_parse_exactly() {
        let op = OperatorId::from_spiffe("spiffe://doudi.qingyang.gov.cn/operator/security/bob", TD).unwrap();
        assert_eq!((op.role, op.name.as_str()), (Role::Security, "bob"));
        assert_eq!(OperatorId::new(TD, Role::Security, "bob").unwrap(), op);
        for bad in [
            "spiffe://doudi.qingyang.gov.cn/operator/root/bob",
            "spiffe://other.example/operator/audit/bob",
            "spiffe://doudi.qingyang.gov.cn/operator/audit",
            "spiffe://doudi.qingyang.gov.cn/operator/audit/bob/x",
            "spiffe://doudi.qingyang.gov.cn/operator/audit/Bob",
            "spiffe://doudi.qingyang.gov.cn/operator/audit/-bob",
            "spiffe://doudi.qingyang.gov.cn/agency/civil_affairs",
            "https://doudi.qingyang.gov.cn/operator/audit/bob",
        ] {
            assert!(OperatorId::from_spiffe(bad, TD).is_err(), "{bad}");
        }
        assert_eq!(OperatorId::new(TD, Role::Audit, &"a".repeat(41)), Err(OperatorError::Name));
        assert!(OperatorId::new(TD, Role::Audit, &"a".repeat(40)).is_ok());
    }

    #[test]
    fn every_rpc_has_exactly_one_role_and_each_role_some() {
        let mut names: Vec<&str> = RPCS.iter().map(|(n, _)| *n).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), RPCS.len(), "an RPC listed twice");
        for role in Role::ALL {
            assert!(RPCS.iter().any(|(_, r)| *r == role), "{role} has no RPC");
        }
        // The issue's split: matrix/certificates/keys are security's, the calendar and policy system's.
        assert_eq!(role_of("RequestChange"), Some(Role::Security));
        assert_eq!(role_of("RevokeCertificate"), Some(Role::Security));
        assert_eq!(role_of("AddCalendarNotice"), Some(Role::System));
        assert_eq!(role_of("ListAuditEvents"), Some(Role::Audit));
        assert_eq!(role_of("Nope"), None);
    }

    fn change(requested_by: &str, expires_in: i64) -> StoredChange {
        let at = DateTime::parse_from_rfc3339("2026-03-02T08:00:00Z").unwrap().with_timezone(&Utc);
        StoredChange {
            id: 7,
            kind: ChangeKind::AccessMatrix,
            payload: "x".into(),
            reason: "r".into(),
            requested_by: requested_by.into(),
            requested_at: at,
            expires_at: at + chrono::Duration::seconds(expires_in),
            approved: None,
            applied: None,
        }
    }

    #[test]
    fn approval_needs_another_person_before_expiry() {
        let c = change("alice", 86_400);
        let now = c.requested_at + chrono::Duration::hours(1);
        assert_eq!(check_approval(&c, "alice", now), Err(ApprovalRefusal::SelfApproval(7, "alice".into())));
        assert_eq!(check_approval(&c, "bob", now), Ok(()));
        // At exactly expires_at the request is expired (state: now >= expires_at).
        assert_eq!(check_approval(&c, "bob", c.expires_at), Err(ApprovalRefusal::Expired(7, c.expires_at)));
        let mut approved = c.clone();
        approved.approved = Some(("bob".into(), now));
        assert_eq!(check_approval(&approved, "carol", now), Err(ApprovalRefusal::NotPending(7, "APPROVED")));
        assert_eq!(approved.state(approved.expires_at + chrono::Duration::days(9)), ChangeState::Approved);
    }

    #[test]
    fn state_hash_is_length_prefixed() {
        // The same text split differently between fields must not hash alike.
        assert_ne!(state_hash(&["ab", "c"]), state_hash(&["a", "bc"]));
        // By hand: SHA-256 of "doudi-admin-state-v1" "1:a;" is the hash of the 24 bytes below.
        let expected = format!("sha256:{}", hex::encode(Sha256::digest(b"doudi-admin-state-v11:a;")));
        assert_eq!(state_hash(&["a"]), expected);
        assert_eq!(bytes_hash(None), NO_STATE);
    }

    #[test]
    fn events_name_who_what_and_both_hashes() {
        // The audit row these parts make: `store::rows::tests::an_admin_event_records_who_what_and_both_hashes`.
        let op = OperatorId::new(TD, Role::Security, "alice").unwrap();
        let actor = Actor::operator(&op, "RefreshCrl");
        assert_eq!(actor.method_or("doudi certs refresh-crl"), "/doudi.v1.Admin/RefreshCrl");
        assert_eq!(actor.who(), "by=spiffe://doudi.qingyang.gov.cn/operator/security/alice; role=security");
        let direct = Actor::direct("root");
        assert_eq!(direct.method_or("doudi certs refresh-crl"), "doudi certs refresh-crl");
        assert_eq!(direct.who(), "by=direct-database:root; role=direct-database");
    }
}
