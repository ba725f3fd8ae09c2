//! `doudi.v1.Admin` handlers (docs/admin.md): the operator read from the client certificate, its role checked against
//! the one RPC's role ([`crate::domain::admin::RPCS`]), then glue to [`crate::hub::admin`].
//!
//! Who may call: an operator certificate of the hub's CA (`spiffe://<trust-domain>/operator/<role>/<name>`) whose
//! role is the RPC's. Another role, or an agency, is PERMISSION_DENIED naming the role required (reason
//! PERMISSION_DENIED_BY_POLICY, ErrorInfo metadata `required_role`); the observe layer puts that refusal on record
//! (`crate::server::refusals`). A certificate naming neither is UNAUTHENTICATED. Operators are not charged to the agencies'
//! quotas and are not accepted through a gateway's forwarded certificate: they connect directly.

use std::path::PathBuf;
use std::sync::Arc;

use tonic::{Code, Request, Response, Status};

use super::convert::timestamp;
use super::pb::{self, admin_server::Admin};
use super::status::{ErrorReason, Refusal, invalid};
use crate::domain::admin::{Actor, ChangeKind, ChangeState, OperatorId, Role, StoredChange, role_of};
use crate::domain::agency::Principal;
use crate::hub::Hub;
use crate::hub::admin as ops;
use crate::hub::{AuditFilter, OutcomeFilter};

/// The Admin service of one hub.
#[derive(Clone)]
pub struct AdminService {
    pub hub: Hub,
    pub trust_domain: Arc<str>,
    /// The hub's certificate directory (`ca.pem`, `ca.key`, `revoked-serials.txt`, `ca.crl`).
    pub certs_dir: PathBuf,
    /// Reloaded after a revocation or a CRL refresh, so the next handshake uses the new CRL.
    pub tls: Option<(crate::server::tls::ReloadableServerConfig, crate::server::tls::TlsFiles)>,
    /// How long a change request waits for its approval (`admin_change_ttl_secs`).
    pub change_ttl: std::time::Duration,
}

/// PERMISSION_DENIED naming the role `rpc` needs.
fn denied(rpc: &str, role: Role, who: String) -> Status {
    Refusal::new(
        Code::PermissionDenied,
        ErrorReason::PermissionDeniedByPolicy,
        format!("doudi.v1.Admin/{rpc} is allowed to the {role} administrator only ({}); {who}", role.describe()),
    )
    .info("required_role", role.as_str())
    .info("method", format!("/doudi.v1.Admin/{rpc}"))
    .into()
}

fn unauthenticated(message: String) -> Status {
    Refusal::new(Code::Unauthenticated, ErrorReason::ClientCertificateRejected, message).into()
}

impl AdminService {
    /// The operator calling `rpc` (its bare name), if its role is the RPC's (module docs).
    fn operator<T>(&self, req: &Request<T>, rpc: &str) -> Result<(OperatorId, Actor), Status> {
        let required = role_of(rpc).ok_or_else(|| Status::unimplemented(format!("unknown Admin RPC {rpc}")))?;
        let leaf = req
            .peer_certs()
            .and_then(|c| c.first().cloned())
            .ok_or_else(|| unauthenticated("a client certificate is required (mutual TLS)".into()))?;
        let ids = crate::server::tls::peer_spiffe_ids(leaf.as_ref())
            .map_err(|_| unauthenticated("the client certificate could not be read".into()))?;
        for id in &ids {
            if let Ok(op) = OperatorId::from_spiffe(id, &self.trust_domain) {
                if op.role != required {
                    return Err(denied(rpc, required, format!("you are the {} administrator {}", op.role, op.name)));
                }
                let actor = Actor::operator(&op, rpc);
                return Ok((op, actor));
            }
        }
        for id in &ids {
            if let Ok(p) = Principal::from_spiffe(id, &self.trust_domain)
                && self.hub.is_known_agency(p.agency())
            {
                return Err(denied(
                    rpc,
                    required,
                    format!(
                        "agency {} has no administrative rights (operators have certificates of their own)",
                        p.agency()
                    ),
                ));
            }
        }
        Err(unauthenticated(
            "the client certificate names no operator (spiffe://<trust domain>/operator/<role>/<name>) and no agency \
             of this hub"
                .into(),
        ))
    }

    /// The CRL the hub writes (`certs_dir/ca.crl`) must be one it reads, else a revocation would not take effect.
    fn crl_in_force(&self) -> Result<(), Status> {
        let written = self.certs_dir.join(crate::security::certs::files::CRL);
        match &self.tls {
            Some((_, files)) if !files.crls.contains(&written) => Err(Refusal::new(
                Code::FailedPrecondition,
                ErrorReason::PreconditionFailed,
                format!(
                    "the hub reads its CRLs from tls_crls, not {}: revoke with the CA that issues those CRLs",
                    written.display()
                ),
            )
            .into()),
            _ => Ok(()),
        }
    }

    fn reload_tls(&self) {
        if let Some((config, files)) = &self.tls {
            match config.reload_from(files) {
                Ok(()) => tracing::info!("TLS configuration and CRLs reloaded after an Admin action"),
                Err(e) => {
                    tracing::warn!(error = %e, "TLS reload failed; the CRL is picked up by the next poll or SIGHUP")
                }
            }
        }
    }
}

fn change_kind_to_pb(k: ChangeKind) -> pb::ChangeKind {
    match k {
        ChangeKind::AccessMatrix => pb::ChangeKind::AccessMatrix,
        ChangeKind::DataKeyRotation => pb::ChangeKind::DataKeyRotation,
    }
}

/// A change request on the wire, its state as at `now` (the hub's clock).
fn change_to_pb(c: &StoredChange, now: chrono::DateTime<chrono::Utc>) -> pb::AdminChange {
    let state = match c.state(now) {
        ChangeState::Pending => pb::ChangeState::Pending,
        ChangeState::Expired => pb::ChangeState::Expired,
        ChangeState::Approved => pb::ChangeState::Approved,
        ChangeState::Applied => pb::ChangeState::Applied,
    };
    pb::AdminChange {
        id: c.id,
        kind: change_kind_to_pb(c.kind) as i32,
        state: state as i32,
        content_hash: c.content_hash(),
        payload: c.payload.clone(),
        reason: c.reason.clone(),
        requested_by: c.requested_by.clone(),
        request_time: Some(timestamp(c.requested_at)),
        expire_time: Some(timestamp(c.expires_at)),
        approved_by: c.approved.as_ref().map(|(by, _)| by.clone()).unwrap_or_default(),
        approve_time: c.approved.as_ref().map(|(_, at)| timestamp(*at)),
        applied_by: c.applied.as_ref().map(|(by, _)| by.clone()).unwrap_or_default(),
        apply_time: c.applied.as_ref().map(|(_, at)| timestamp(*at)),
    }
}

fn micros(t: Option<&prost_types::Timestamp>, field: &str) -> Result<Option<i64>, Status> {
    let Some(t) = t else { return Ok(None) };
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err(invalid(field, "nanos out of range"));
    }
    t.seconds
        .checked_mul(1_000_000)
        .and_then(|s| s.checked_add(i64::from(t.nanos / 1_000)))
        .map(Some)
        .ok_or_else(|| invalid(field, "is out of range"))
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn add_policy_version(
        &self,
        req: Request<pb::AddPolicyVersionRequest>,
    ) -> Result<Response<pb::AddPolicyVersionResponse>, Status> {
        let (_, actor) = self.operator(&req, "AddPolicyVersion")?;
        let r = req.into_inner();
        let added = self.hub.add_policy_version(&actor, &r.params_json, &r.source, r.example).await?;
        Ok(Response::new(pb::AddPolicyVersionResponse {
            version: added.params.version.clone(),
            pooling_area: added.params.pooling_area.clone(),
            effective_from: added.params.effective_from.to_string(),
            warnings: added.warnings,
        }))
    }

    async fn add_linkage_rule(
        &self,
        req: Request<pb::AddLinkageRuleRequest>,
    ) -> Result<Response<pb::AddLinkageRuleResponse>, Status> {
        let (_, actor) = self.operator(&req, "AddLinkageRule")?;
        let r = req.into_inner();
        let rule = self.hub.add_linkage_rule(&actor, &r.rule_json, &r.source).await?;
        Ok(Response::new(pb::AddLinkageRuleResponse {
            version: rule.version,
            effective_from: rule.effective_from.to_string(),
        }))
    }

    async fn add_fixed_campaign(
        &self,
        req: Request<pb::AddFixedCampaignRequest>,
    ) -> Result<Response<pb::AddFixedCampaignResponse>, Status> {
        let (_, actor) = self.operator(&req, "AddFixedCampaign")?;
        let r = req.into_inner();
        let c = self.hub.add_fixed_campaign(&actor, &r.campaign_json, &r.source).await?;
        Ok(Response::new(pb::AddFixedCampaignResponse { code: c.code, month: c.month.to_string() }))
    }

    async fn list_policy_versions(
        &self,
        req: Request<pb::ListPolicyVersionsRequest>,
    ) -> Result<Response<pb::ListPolicyVersionsResponse>, Status> {
        let (_, actor) = self.operator(&req, "ListPolicyVersions")?;
        let all = self.hub.list_policy_versions(&actor).await?;
        let mut versions = Vec::with_capacity(all.len());
        for p in all {
            versions.push(pb::PolicyVersion {
                params_json: serde_json::to_string(&p.params).map_err(|e| Status::internal(e.to_string()))?,
                source: p.source,
                example: p.example,
            });
        }
        Ok(Response::new(pb::ListPolicyVersionsResponse { versions }))
    }

    async fn add_calendar_notice(
        &self,
        req: Request<pb::AddCalendarNoticeRequest>,
    ) -> Result<Response<pb::AddCalendarNoticeResponse>, Status> {
        let (_, actor) = self.operator(&req, "AddCalendarNotice")?;
        let r = req.into_inner();
        let correction = (!r.correction.is_empty()).then_some(r.correction.as_str());
        let report = self.hub.add_calendar_notice(&actor, &r.notice, &r.format, &r.source, correction).await?;
        let (version, changed) = match report.outcome {
            crate::hub::calendar::LoadOutcome::Loaded { version } => (version, true),
            crate::hub::calendar::LoadOutcome::Unchanged { version } => (version, false),
        };
        Ok(Response::new(pb::AddCalendarNoticeResponse {
            year: report.year,
            version: i32::try_from(version).unwrap_or(i32::MAX),
            changed,
            holidays: i32::try_from(report.holidays).unwrap_or(i32::MAX),
            make_up_workdays: i32::try_from(report.make_up_workdays).unwrap_or(i32::MAX),
            deadlines_moved: i32::try_from(report.changes.len()).unwrap_or(i32::MAX),
        }))
    }

    async fn get_retention_settings(
        &self,
        req: Request<pb::GetRetentionSettingsRequest>,
    ) -> Result<Response<pb::GetRetentionSettingsResponse>, Status> {
        let (_, actor) = self.operator(&req, "GetRetentionSettings")?;
        let (periods, holds) = self.hub.retention_settings(&actor).await?;
        Ok(Response::new(pb::GetRetentionSettingsResponse {
            periods: periods
                .into_iter()
                .map(|p| pb::RetentionPeriod {
                    kind: p.kind.as_str().to_owned(),
                    days: p.days,
                    min_days: p.min_days,
                    source: p.source,
                    set_by: p.set_by,
                    set_time: Some(timestamp(p.set_at)),
                })
                .collect(),
            holds: holds
                .into_iter()
                .map(|h| {
                    let target = match &h.target {
                        crate::hub::HoldTarget::Person(_) => "a person".to_owned(),
                        crate::hub::HoldTarget::Quarter(q) => format!("quarter {q}"),
                    };
                    let (release_time, released_by, release_reason) = match h.released {
                        Some((at, by, why)) => (Some(timestamp(at)), by, why),
                        None => (None, String::new(), String::new()),
                    };
                    pb::LegalHold {
                        id: h.id,
                        target,
                        reason: h.reason,
                        placed_by: h.placed_by,
                        place_time: Some(timestamp(h.placed_at)),
                        release_time,
                        released_by,
                        release_reason,
                    }
                })
                .collect(),
        }))
    }

    async fn set_retention_period(
        &self,
        req: Request<pb::SetRetentionPeriodRequest>,
    ) -> Result<Response<pb::SetRetentionPeriodResponse>, Status> {
        let (_, actor) = self.operator(&req, "SetRetentionPeriod")?;
        let r = req.into_inner();
        let before = self.hub.set_retention_period(&actor, &r.kind, r.days, &r.source).await?;
        Ok(Response::new(pb::SetRetentionPeriodResponse { days_before: before, days_after: r.days }))
    }

    async fn place_legal_hold(
        &self,
        req: Request<pb::PlaceLegalHoldRequest>,
    ) -> Result<Response<pb::PlaceLegalHoldResponse>, Status> {
        let (_, actor) = self.operator(&req, "PlaceLegalHold")?;
        let r = req.into_inner();
        let id = self.hub.place_legal_hold(&actor, &r.id_number, &r.quarter, &r.reason).await?;
        Ok(Response::new(pb::PlaceLegalHoldResponse { hold_id: id }))
    }

    async fn release_legal_hold(
        &self,
        req: Request<pb::ReleaseLegalHoldRequest>,
    ) -> Result<Response<pb::ReleaseLegalHoldResponse>, Status> {
        let (_, actor) = self.operator(&req, "ReleaseLegalHold")?;
        let r = req.into_inner();
        self.hub.release_legal_hold(&actor, r.hold_id, &r.reason).await?;
        Ok(Response::new(pb::ReleaseLegalHoldResponse {}))
    }

    async fn purge_expired_records(
        &self,
        req: Request<pb::PurgeExpiredRecordsRequest>,
    ) -> Result<Response<pb::PurgeExpiredRecordsResponse>, Status> {
        let (_, actor) = self.operator(&req, "PurgeExpiredRecords")?;
        let r = req.into_inner();
        let report = self.hub.purge_expired(&actor, r.dry_run, r.chunk_size, r.max_chunks).await?;
        Ok(Response::new(pb::PurgeExpiredRecordsResponse {
            counts: report
                .counts
                .iter()
                .map(|c| pb::PurgeCount {
                    kind: c.kind.as_str().to_owned(),
                    days: c.days,
                    cutoff: Some(timestamp(c.cutoff)),
                    purged: i64::try_from(c.purged).unwrap_or(i64::MAX),
                    chunks: i64::try_from(c.chunks).unwrap_or(i64::MAX),
                })
                .collect(),
            interrupted: report.interrupted,
        }))
    }

    async fn revoke_certificate(
        &self,
        req: Request<pb::RevokeCertificateRequest>,
    ) -> Result<Response<pb::RevokeCertificateResponse>, Status> {
        let (_, actor) = self.operator(&req, "RevokeCertificate")?;
        self.crl_in_force()?;
        let r = req.into_inner();
        let done = self.hub.revoke_certificate(&actor, &self.certs_dir, &r.certificate_pem).await;
        // The CRL file may have changed even when its audit event failed: reload either way.
        self.reload_tls();
        let done = done?;
        Ok(Response::new(pb::RevokeCertificateResponse {
            serial: done.serial_hex,
            newly_revoked: done.newly_revoked,
            revoked_count: i32::try_from(done.revoked_count).unwrap_or(i32::MAX),
        }))
    }

    async fn refresh_crl(
        &self,
        req: Request<pb::RefreshCrlRequest>,
    ) -> Result<Response<pb::RefreshCrlResponse>, Status> {
        let (_, actor) = self.operator(&req, "RefreshCrl")?;
        self.crl_in_force()?;
        let done = self.hub.refresh_crl(&actor, &self.certs_dir).await;
        self.reload_tls();
        let (n, next_update) = done?;
        Ok(Response::new(pb::RefreshCrlResponse {
            revoked_count: i32::try_from(n).unwrap_or(i32::MAX),
            next_update: Some(timestamp(next_update)),
        }))
    }

    async fn request_change(
        &self,
        req: Request<pb::RequestChangeRequest>,
    ) -> Result<Response<pb::RequestChangeResponse>, Status> {
        let (_, actor) = self.operator(&req, "RequestChange")?;
        let r = req.into_inner();
        let input = match pb::ChangeKind::try_from(r.kind) {
            Ok(pb::ChangeKind::AccessMatrix) => {
                if !r.new_key_check.is_empty() {
                    return Err(invalid("new_key_check", "must be empty for CHANGE_KIND_ACCESS_MATRIX"));
                }
                ops::ChangeInput::AccessMatrix(&r.access_matrix_toml)
            }
            Ok(pb::ChangeKind::DataKeyRotation) => {
                if !r.access_matrix_toml.is_empty() {
                    return Err(invalid("access_matrix_toml", "must be empty for CHANGE_KIND_DATA_KEY_ROTATION"));
                }
                ops::ChangeInput::DataKeyRotation(&r.new_key_check)
            }
            _ => {
                return Err(invalid("kind", "must be CHANGE_KIND_ACCESS_MATRIX or CHANGE_KIND_DATA_KEY_ROTATION"));
            }
        };
        let c = self.hub.request_change(&actor, input, &r.reason, self.change_ttl).await?;
        Ok(Response::new(pb::RequestChangeResponse { change: Some(change_to_pb(&c, self.hub.now())) }))
    }

    async fn approve_change(
        &self,
        req: Request<pb::ApproveChangeRequest>,
    ) -> Result<Response<pb::ApproveChangeResponse>, Status> {
        let (_, actor) = self.operator(&req, "ApproveChange")?;
        let r = req.into_inner();
        let c = self.hub.approve_change(&actor, r.change_id, &r.content_hash).await?;
        Ok(Response::new(pb::ApproveChangeResponse { change: Some(change_to_pb(&c, self.hub.now())) }))
    }

    async fn list_changes(
        &self,
        req: Request<pb::ListChangesRequest>,
    ) -> Result<Response<pb::ListChangesResponse>, Status> {
        let (_, actor) = self.operator(&req, "ListChanges")?;
        let all = req.into_inner().all;
        let changes = self.hub.list_changes(&actor, all).await?;
        let now = self.hub.now();
        Ok(Response::new(pb::ListChangesResponse { changes: changes.iter().map(|c| change_to_pb(c, now)).collect() }))
    }

    async fn list_audit_events(
        &self,
        req: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let (_, actor) = self.operator(&req, "ListAuditEvents")?;
        let r = req.into_inner();
        let filter = AuditFilter {
            person: None,
            agency: (!r.agency.is_empty()).then(|| r.agency.clone()),
            from: micros(r.from.as_ref(), "from")?,
            to: micros(r.to.as_ref(), "to")?,
            outcome: if r.outcome.is_empty() {
                None
            } else {
                Some(OutcomeFilter::parse(&r.outcome).ok_or_else(|| {
                    invalid(
                        "outcome",
                        "must be REFUSED, ANSWERED, PERMISSION_DENIED, UNAUTHENTICATED, RESOURCE_EXHAUSTED or HANDSHAKE",
                    )
                })?)
            },
        };
        if r.agency.len() > 64 {
            return Err(invalid("agency", "is longer than 64 characters"));
        }
        let (rows, next) = self.hub.list_audit_events(&actor, filter, r.page_size, &r.page_token).await?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            events: rows.into_iter().map(super::audit::access_event).collect(),
            next_page_token: next,
        }))
    }

    async fn verify_audit_log(
        &self,
        req: Request<pb::VerifyAuditLogRequest>,
    ) -> Result<Response<pb::VerifyAuditLogResponse>, Status> {
        let (_, actor) = self.operator(&req, "VerifyAuditLog")?;
        let c = self.hub.verify_audit_log(&actor).await?;
        Ok(Response::new(pb::VerifyAuditLogResponse { result: Some(super::audit::chain_to_pb(&c)) }))
    }
}
