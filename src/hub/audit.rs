//! The audit log read back (docs/spec/security.md): `ListAccessEvents`, `VerifyAuditChain` and `GetSignedHead`
//! (signed audit heads, docs/audit-lanes.md "Signed heads").

use sha2::{Digest, Sha256};

use super::{Hub, HubError, check_purpose, division_of, via_of};
use crate::domain::agency::Principal;
use crate::domain::id_number::IdNumber;
use crate::domain::policy::{AuditRight, CityWideAction};
use crate::security::audit_head::SignedHead;
use crate::store::{AuditEventRow, AuditFilter, AuditRecord, ChainCheck};

/// The refusal when the hub has no audit signer.
fn no_signer() -> HubError {
    HubError::FailedPrecondition(format!(
        "this hub has no audit signer ({} in its certs_dir): make one with `doudi certs audit-signer --dir CERTS_DIR` \
         and restart the hub",
        crate::security::certs::files::AUDIT_SIGNER_KEY
    ))
}

/// One page of `ListAccessEvents`.
#[derive(Debug, Clone)]
pub struct AccessEventPage {
    pub events: Vec<AuditEventRow>,
    pub next_page_token: String,
}

impl Hub {
    /// `ListAccessEvents`: newest first. With `read_access_events` (civil_affairs) every agency's events and a
    /// person filter; without it only the caller's own agency, and no person filter (PERMISSION_DENIED).
    /// The every-agency listing is city-wide (issue 23): a county office of an agency holding the right lists only
    /// its own agency's events, and by person or another agency it is refused naming the city-wide action.
    /// A person-filtered listing is audited with that person. `filter.outcome` narrows the listing to refusals on
    /// record or to answered events (docs/refusals.md); refusals of unknown peers (agency `unknown`) are seen only by
    /// the holders of the right, an agency's own refusals by that agency too.
    #[allow(clippy::too_many_arguments)]
    pub async fn list_access_events(
        &self,
        principal: &Principal,
        method: &str,
        person: Option<&IdNumber>,
        mut filter: AuditFilter,
        page_size: usize,
        page_token: &str,
        purpose: &str,
    ) -> Result<AccessEventPage, HubError> {
        let purpose = check_purpose(purpose)?;
        let agency = principal.agency().to_string();
        let reads_all = self.policy.may_audit(principal.agency(), AuditRight::ReadAccessEvents);
        if reads_all && (person.is_some() || filter.agency.as_ref().is_some_and(|a| *a != agency)) {
            // A county office holding the right is refused by person or for another agency (city-wide).
            self.require_city_office(principal, CityWideAction::ListEveryAgencysAccessEvents)?;
        }
        let reads_all =
            reads_all && self.policy.check_city_wide(principal, CityWideAction::ListEveryAgencysAccessEvents).is_ok();
        if !reads_all {
            if person.is_some() {
                return Err(HubError::PermissionDenied(format!(
                    "agency {agency} may not list access events by person (civil_affairs only)"
                )));
            }
            match &filter.agency {
                Some(a) if *a != agency => {
                    return Err(HubError::PermissionDenied(format!(
                        "agency {agency} may list only its own access events, not {a}'s"
                    )));
                }
                _ => filter.agency = Some(agency.clone()),
            }
        }
        filter.person = person.map(|id| self.keys.person_key(id));
        let page_size = self.page_size(page_size)?;
        let fingerprint: Vec<u8> = {
            let mut h = Sha256::new();
            h.update(format!(
                "audit|{:?}|{:?}|{:?}|{:?}{}",
                filter.person.map(|k| k.short()),
                filter.agency,
                filter.from,
                filter.to,
                // Absent without an outcome filter, so tokens issued before it keep working.
                filter.outcome.map(|o| format!("|{o:?}")).unwrap_or_default()
            ));
            h.finalize()[..8].to_vec()
        };
        let context = format!("{}|ListAccessEvents", principal.spiffe_id());
        let before = if page_token.is_empty() {
            None
        } else {
            let bad = || HubError::invalid("page_token", "is not a token this list returned to this caller");
            let raw = self.keys.open_token(page_token, context.as_bytes()).ok_or_else(bad)?;
            if raw.len() != 16 {
                return Err(bad());
            }
            if raw[8..] != fingerprint[..] {
                return Err(HubError::invalid("page_token", "was issued for other filter values"));
            }
            Some(i64::from_be_bytes(raw[..8].try_into().expect("8 bytes")))
        };
        let mut events = self.store.list_audit_events(&filter, before, page_size + 1).await?;
        let more = events.len() > page_size;
        events.truncate(page_size);
        let next_page_token = match (more, events.last()) {
            (true, Some(last)) => {
                let mut raw = last.seq.to_be_bytes().to_vec();
                raw.extend_from_slice(&fingerprint);
                self.keys.seal_token(&raw, context.as_bytes())
            }
            _ => String::new(),
        };
        if let Some(k) = filter.person {
            self.store
                .record_audit(&AuditRecord {
                    agency,
                    division: division_of(principal),
                    via: via_of(principal),
                    method: method.to_owned(),
                    purpose,
                    outcome: format!("OK listed={}", events.len()),
                    person_keys: vec![k],
                })
                .await?;
        }
        Ok(AccessEventPage { events, next_page_token })
    }

    /// `VerifyAuditChain`: every agency may ask.
    pub async fn verify_audit_chain(&self) -> Result<ChainCheck, HubError> {
        Ok(self.store.verify_audit_chain().await?)
    }

    /// `GetSignedHead`: every agency may ask (no person data). With `fresh`, or when none is kept yet, the heads are
    /// signed now ([`Hub::sign_heads`]); otherwise the newest kept signed head is returned.
    /// FAILED_PRECONDITION when the hub has no audit signer.
    pub async fn signed_head(&self, fresh: bool) -> Result<SignedHead, HubError> {
        if self.head_signer.is_none() {
            return Err(no_signer());
        }
        if !fresh && let Some(kept) = self.store.newest_signed_head().await? {
            return Ok(kept);
        }
        Ok(self.sign_heads(true).await?.0)
    }

    /// Sign every lane's committed head now and keep it, unless the newest kept signed head already names the same
    /// heads. With `always`, a head is signed (and returned) even then, but not kept. Returns the signed head (or the
    /// newest kept one when nothing changed and not `always`) and whether a row was added. The heads are read in one
    /// statement on a pooled connection ([`crate::store::AuditLog::audit_lane_heads`]): no write lock, so signing
    /// never holds up reads or pushes.
    pub async fn sign_heads(&self, always: bool) -> Result<(SignedHead, bool), HubError> {
        let signer = self.head_signer.as_ref().ok_or_else(no_signer)?;
        let heads = self.store.audit_lane_heads().await?;
        let newest = self.store.newest_signed_head().await?;
        let unchanged = newest.as_ref().is_some_and(|n| n.heads == heads);
        if unchanged && !always {
            return Ok((newest.expect("checked"), false));
        }
        // The real time, not the hub's business clock (which tests may fix): a signature attests when it was made.
        let now = crate::store::to_micros(self.clock.system_now());
        let signed = signer.sign(now, &heads);
        if !unchanged {
            self.store.keep_signed_head(&signed).await?;
        }
        Ok((signed, !unchanged))
    }
}
