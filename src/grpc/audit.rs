//! `doudi.v1.Audit` handlers.

use tonic::{Request, Response, Status};

use super::auth::Authenticator;
use super::convert::{id_number_in, timestamp};
use super::pb::{self, audit_server::Audit};
use super::status::invalid;
use crate::hub::Hub;
use crate::hub::{AuditFilter, OutcomeFilter};

pub struct AuditService {
    pub hub: Hub,
    pub auth: Authenticator,
}

const LIST: &str = "/doudi.v1.Audit/ListAccessEvents";

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
impl Audit for AuditService {
    async fn who_am_i(&self, req: Request<pb::WhoAmIRequest>) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let p = self.auth.principal(&req)?;
        let rules = self.hub.access_rules(p.agency());
        Ok(Response::new(pb::WhoAmIResponse {
            agency: p.agency().to_string(),
            division_code: p.county().map(|c| c.as_str().to_owned()).unwrap_or_default(),
            spiffe_id: p.spiffe_id().to_owned(),
            push_kinds: rules.push.iter().map(|k| k.as_str().to_owned()).collect(),
            read_permissions: rules
                .read
                .iter()
                .map(|(kind, rule)| pb::ReadPermission {
                    kind: kind.as_str().to_owned(),
                    fields: rule.field_list().map(|f| f.to_vec()).unwrap_or_default(),
                    all_fields: rule.field_list().is_none(),
                    condition: rule.condition.map(|c| c.as_str().to_owned()).unwrap_or_default(),
                })
                .collect(),
            read_aggregates: rules.aggregates,
            via: p.via().unwrap_or_default().to_owned(),
        }))
    }

    async fn list_access_events(
        &self,
        req: Request<pb::ListAccessEventsRequest>,
    ) -> Result<Response<pb::ListAccessEventsResponse>, Status> {
        let principal = self.auth.principal(&req)?;
        let r = req.into_inner();
        let person = if r.id_number.is_empty() {
            None
        } else {
            Some(id_number_in(&r.id_number, "id_number").map_err(|e| invalid(&e.field, e.reason))?)
        };
        if r.page_size < 0 {
            return Err(invalid("page_size", "must not be negative"));
        }
        let filter = AuditFilter {
            person: None,
            agency: if r.agency.is_empty() {
                None
            } else {
                let a: crate::domain::agency::AgencyCode =
                    r.agency.parse().map_err(|e| invalid("agency", format!("{e}")))?;
                Some(a.to_string())
            },
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
        let page = self
            .hub
            .list_access_events(
                &principal,
                LIST,
                person.as_ref(),
                filter,
                r.page_size as usize,
                &r.page_token,
                &r.purpose,
            )
            .await?;
        Ok(Response::new(pb::ListAccessEventsResponse {
            events: page.events.into_iter().map(access_event).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn verify_audit_chain(
        &self,
        req: Request<pb::VerifyAuditChainRequest>,
    ) -> Result<Response<pb::VerifyAuditChainResponse>, Status> {
        self.auth.principal(&req)?;
        let c = self.hub.verify_audit_chain().await?;
        Ok(Response::new(chain_to_pb(&c)))
    }

    async fn get_signed_head(
        &self,
        req: Request<pb::GetSignedHeadRequest>,
    ) -> Result<Response<pb::GetSignedHeadResponse>, Status> {
        self.auth.principal(&req)?;
        let h = self.hub.signed_head(req.into_inner().fresh).await?;
        Ok(Response::new(signed_head_to_pb(&h)))
    }
}

/// A chain check on the wire (also `doudi.v1.Admin/VerifyAuditLog`'s result).
pub fn chain_to_pb(c: &crate::hub::ChainCheck) -> pb::VerifyAuditChainResponse {
    let (seq, reason) = c.first_broken.clone().unwrap_or((0, String::new()));
    pb::VerifyAuditChainResponse {
        valid: c.first_broken.is_none(),
        events_checked: c.checked,
        first_broken_seq: seq,
        reason,
        head_hash: hex::encode(c.head),
        first_broken_lane: c.first_broken_lane,
        heads: c.heads.iter().map(lane_head).collect(),
        checkpoint: c.checkpoint.as_ref().map(lane_head),
    }
}

/// A signed head on the wire.
pub fn signed_head_to_pb(h: &crate::security::audit_head::SignedHead) -> pb::GetSignedHeadResponse {
    pb::GetSignedHeadResponse {
        format: crate::domain::audit::HEAD_FORMAT.into(),
        signed_at: Some(super::convert::timestamp_micros(h.signed_at_micros)),
        heads: h.heads.iter().map(lane_head).collect(),
        message: h.message(),
        algorithm: crate::security::audit_head::ALGORITHM.into(),
        signature: h.signature.clone(),
        signer_certificate: h.signer_cert_pem.clone(),
    }
}

/// A signed head from the wire (`doudi audit head`): the format and algorithm must be this release's, and the
/// `message` the one the fields give (it is rebuilt from them; the signature is checked by `audit_head::verify`).
pub fn signed_head_from_pb(r: &pb::GetSignedHeadResponse) -> Result<crate::security::audit_head::SignedHead, String> {
    if r.format != crate::domain::audit::HEAD_FORMAT || r.algorithm != crate::security::audit_head::ALGORITHM {
        return Err(format!("format {:?} / algorithm {:?} is not what this release verifies", r.format, r.algorithm));
    }
    let at = r.signed_at.as_ref().ok_or("signed_at is missing")?;
    let signed_at_micros = micros(Some(at), "signed_at").map_err(|s| s.message().to_owned())?.unwrap_or_default();
    let mut heads = Vec::with_capacity(r.heads.len());
    for h in &r.heads {
        let hash = hex::decode(&h.hash)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| format!("lane {}: hash {:?} is not 64 hex characters", h.lane, h.hash))?;
        heads.push(crate::domain::audit::LaneHead { lane: h.lane, seq: h.seq, hash });
    }
    let head = crate::security::audit_head::SignedHead {
        signed_at_micros,
        heads,
        signature: r.signature.clone(),
        signer_cert_pem: r.signer_certificate.clone(),
    };
    if head.message() != r.message {
        return Err("message is not the documented form of the other fields".into());
    }
    Ok(head)
}

/// A lane's head on the wire.
/// An audit event as `ListAccessEvents` and `Admin.ListAuditEvents` answer it.
pub(crate) fn access_event(e: crate::hub::AuditEventRow) -> pb::AccessEvent {
    pb::AccessEvent {
        seq: e.seq,
        at: Some(timestamp(e.at)),
        agency: e.agency,
        division_code: e.division,
        method: e.method,
        purpose: e.purpose,
        outcome: e.outcome,
        person_count: e.person_count,
        hash: hex::encode(e.hash),
        lane: e.lane,
        lane_seq: e.lane_seq,
        via: e.via,
    }
}

fn lane_head(h: &crate::domain::audit::LaneHead) -> pb::AuditLaneHead {
    pb::AuditLaneHead { lane: h.lane, seq: h.seq, hash: hex::encode(h.hash) }
}
