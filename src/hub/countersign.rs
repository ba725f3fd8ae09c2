//! Countersigned quarters (issue 19 item 2; docs/countersign.md): `SignSnapshot` (the checks before a partner agency's
//! signature of a frozen quarter is kept, with its audit event) and every partner agency's signature as a verifier
//! finds it (`ListSnapshotSignatures`, `VerifySnapshot`, `doudi snapshot verify`).

use chrono::Duration;

use super::{Hub, HubError, audit_of};
use crate::domain::agency::{AgencyCode, Principal};
use crate::domain::calendar::Quarter;
use crate::domain::countersign::SignatureStatus;
use crate::domain::policy::CityWideAction;
use crate::security::countersign::{Countersignature, Failure};
use crate::store::{NewSnapshotSignature, SnapshotHeader, Store, StoreError, StoredSnapshotSignature};

/// How far ahead of the hub's clock `signed_at` may be (clocks of partner systems drift).
pub const SIGNED_AT_LEEWAY: Duration = Duration::minutes(5);

/// Longest accepted signature: an ECDSA P-256 DER signature is at most 72 bytes.
pub const MAX_SIGNATURE_BYTES: usize = 80;

/// Longest accepted signer certificate (DER).
pub const MAX_CERTIFICATE_BYTES: usize = 16 * 1024;

/// A `SignSnapshot` request, decoded.
#[derive(Debug, Clone)]
pub struct SignInput {
    pub quarter: Quarter,
    /// The content hash as signed.
    pub content_hash: [u8; 32],
    /// Microseconds since the Unix epoch, as signed.
    pub signed_at_micros: i64,
    /// ECDSA P-256 / SHA-256, DER.
    pub signature: Vec<u8>,
    /// The signer's certificate, DER.
    pub signer_cert_der: Vec<u8>,
}

/// One agency's countersignature as a verifier finds it: its status and, unless missing, the newest one kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgencySignature {
    pub agency: String,
    pub status: SignatureStatus,
    pub stored: Option<StoredSnapshotSignature>,
}

impl Hub {
    /// `SignSnapshot`: check a partner agency's signature of a frozen quarter and keep it as the agency's next version,
    /// with its audit event (outcome `OK <quarter> <content hash> v<version>`), in one transaction.
    ///
    /// Rules (docs/countersign.md "What the hub checks"): the caller's agency pushes facts (the partners: access
    /// policy) and is a city office (`sign_snapshot` is city-wide); the quarter is frozen; `content_hash` is the
    /// snapshot's; `signed_at` is not more than [`SIGNED_AT_LEEWAY`] ahead of the hub's clock nor before the knowledge
    /// cutoff; the signer certificate names the caller's agency, passes the checks of a client certificate at a
    /// handshake now (CA, CRLs in force) and of [`crate::security::countersign::verify`] (valid at `signed_at`, signature).
    ///
    /// Errors: PERMISSION_DENIED for an agency that pushes nothing or a county office, and naming
    /// `signer_certificate` for a certificate not issued by the CA, revoked, another agency's or not valid at
    /// `signed_at`; FAILED_PRECONDITION for a quarter not frozen or a hub without a CA to check against;
    /// INVALID_ARGUMENT naming `content_hash`, `signed_at`, `signature` or `signer_certificate`.
    pub async fn sign_snapshot(
        &self,
        principal: &Principal,
        method: &str,
        input: SignInput,
    ) -> Result<StoredSnapshotSignature, HubError> {
        let partners = self.policy.partner_agencies();
        if !partners.contains(principal.agency()) {
            return Err(HubError::PermissionDenied(format!(
                "agency {} pushes no facts, so the snapshot holds no figures of its own to countersign; the partner \
                 agencies are {}",
                principal.agency(),
                partners.iter().map(AgencyCode::to_string).collect::<Vec<_>>().join(", ")
            )));
        }
        self.require_city_office(principal, CityWideAction::SignSnapshot)?;
        if input.signature.is_empty() {
            return Err(HubError::invalid("signature", "is required (ECDSA P-256 / SHA-256, DER)"));
        }
        if input.signature.len() > MAX_SIGNATURE_BYTES {
            return Err(HubError::invalid(
                "signature",
                format!("is {} bytes; an ECDSA P-256 DER signature is at most 72", input.signature.len()),
            ));
        }
        if input.signer_cert_der.is_empty() {
            return Err(HubError::invalid("signer_certificate", "is required (the signer's certificate, DER)"));
        }
        if input.signer_cert_der.len() > MAX_CERTIFICATE_BYTES {
            return Err(HubError::invalid(
                "signer_certificate",
                format!("is {} bytes, more than {MAX_CERTIFICATE_BYTES}", input.signer_cert_der.len()),
            ));
        }
        let Some(trust) = &self.signer_trust else {
            return Err(HubError::FailedPrecondition(
                "this hub has no CA configured to check signer certificates against".into(),
            ));
        };
        let q = input.quarter.to_string();
        let header = self.store.snapshot(input.quarter).await?.ok_or_else(|| {
            HubError::FailedPrecondition(format!(
                "quarter {q} is not frozen: only a frozen snapshot is countersigned (CreateSnapshot freezes a \
                 finished quarter)"
            ))
        })?;
        if input.content_hash != header.content_hash {
            return Err(HubError::invalid(
                "content_hash",
                format!(
                    "{} is not the content hash of snapshot {q} ({}): sign the hash GetSnapshot returns",
                    hex::encode(input.content_hash),
                    hex::encode(header.content_hash)
                ),
            ));
        }
        let signed_at = crate::store::from_micros(input.signed_at_micros);
        // Real time (system time): whether a signature claims to be from the future is a security check.
        let now = self.clock.system_now();
        if signed_at > now + SIGNED_AT_LEEWAY {
            return Err(HubError::invalid(
                "signed_at",
                format!("{} is in the future (the hub's clock says {})", signed_at.to_rfc3339(), now.to_rfc3339()),
            ));
        }
        if signed_at < header.knowledge_cutoff {
            return Err(HubError::invalid(
                "signed_at",
                format!(
                    "{} is before snapshot {q} was taken ({}): a quarter is signed after it is frozen",
                    signed_at.to_rfc3339(),
                    header.knowledge_cutoff.to_rfc3339()
                ),
            ));
        }
        let denied = |m: String| HubError::PermissionDenied(format!("signer_certificate: {m}"));
        let agency =
            match crate::security::countersign::certificate_agency(&input.signer_cert_der, Some(&trust.trust_domain)) {
                Ok(a) => a,
                Err(Err(e)) => return Err(HubError::invalid("signer_certificate", e)),
                Err(Ok(e)) => return Err(denied(e)),
            };
        if agency != principal.agency().as_str() {
            return Err(denied(format!(
                "the certificate is agency {agency}'s and the caller is {}: an agency countersigns with its own \
                 certificates only",
                principal.agency()
            )));
        }
        trust.check_now(&input.signer_cert_der).map_err(|e| match e {
            rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked) => {
                denied("the certificate is revoked (a CRL in force lists it): a revoked key cannot countersign".into())
            }
            other => denied(format!("refused as a client certificate of this hub: {other}")),
        })?;
        let ca_pem = trust.ca_pem().map_err(|e| HubError::FailedPrecondition(format!("the hub's CA: {e}")))?;
        let sig = Countersignature {
            quarter: q.clone(),
            agency: agency.clone(),
            content_hash: input.content_hash,
            signed_at_micros: input.signed_at_micros,
            signature: input.signature,
            signer_cert_der: input.signer_cert_der,
        };
        crate::security::countersign::verify(&sig, &header.content_hash, &ca_pem, Some(&trust.trust_domain)).map_err(
            |f| match f {
                Failure::ContentHash(m) => HubError::invalid("content_hash", m),
                Failure::Certificate(m) => denied(m),
                Failure::Signature(m) => HubError::invalid(
                    "signature",
                    format!("{m} (the message is docs/countersign.md's, with signed_at in microseconds)"),
                ),
            },
        )?;
        let recorded_at = crate::store::from_micros(crate::store::to_micros(now));
        let hash = hex::encode(header.content_hash);
        let audit =
            |version: i64| audit_of(principal, method, String::new(), format!("OK {q} {hash} v{version}"), Vec::new());
        let new = NewSnapshotSignature { signature: sig, recorded_at, recorded_by: principal.spiffe_id().to_owned() };
        let version = self.store.add_snapshot_signature(&new, &audit).await?.ok_or_else(|| {
            HubError::FailedPrecondition(format!("snapshot {q} changed while the signature was checked"))
        })?;
        Ok(StoredSnapshotSignature { signature: new.signature, version, recorded_at, recorded_by: new.recorded_by })
    }

    /// `ListSnapshotSignatures`: every partner agency's signature of `quarter`, checked again now with the hub's CA.
    /// Aggregates right. Errors: NOT_FOUND for a quarter not frozen; FAILED_PRECONDITION without a CA.
    pub async fn snapshot_signatures(
        &self,
        principal: &Principal,
        quarter: Quarter,
    ) -> Result<(SnapshotHeader, Vec<AgencySignature>), HubError> {
        if !self.policy.may_read_aggregates(principal.agency()) {
            return Err(HubError::PermissionDenied(format!("agency {} may not read aggregates", principal.agency())));
        }
        let q = quarter.to_string();
        let header =
            self.store.snapshot(quarter).await?.ok_or_else(|| {
                HubError::NotFound(format!("quarter {q} has no snapshot (CreateSnapshot freezes it)"))
            })?;
        let sigs = self.signatures_of(&header).await?;
        Ok((header, sigs))
    }

    /// Every partner agency's signature of the snapshot `header`, checked with the hub's CA.
    pub(crate) async fn signatures_of(&self, header: &SnapshotHeader) -> Result<Vec<AgencySignature>, HubError> {
        let Some(trust) = &self.signer_trust else {
            return Err(HubError::FailedPrecondition("this hub has no CA configured to check signatures with".into()));
        };
        let ca_pem = trust.ca_pem().map_err(|e| HubError::FailedPrecondition(format!("the hub's CA: {e}")))?;
        Ok(signature_report(&self.store, &self.policy.partner_agencies(), header, &ca_pem, Some(&trust.trust_domain))
            .await?)
    }
}

/// Every partner agency's newest signature of the snapshot `header` (and any other agency's that signed), in agency
/// code order, each checked with [`crate::security::countersign::verify`] against the stored content hash and `ca_pem`:
/// VALID, INVALID with the reason, or MISSING. Used by the hub and by `doudi snapshot verify` on the hub's database.
pub async fn signature_report(
    store: &Store,
    partners: &[AgencyCode],
    header: &SnapshotHeader,
    ca_pem: &[u8],
    trust_domain: Option<&str>,
) -> Result<Vec<AgencySignature>, StoreError> {
    let quarter: crate::domain::calendar::Quarter = header
        .quarter
        .parse()
        .map_err(|_| crate::store::corrupt("snapshots", format!("quarter {:?}", header.quarter)))?;
    let stored = store.snapshot_signatures(quarter).await?;
    let mut agencies: Vec<String> = partners.iter().map(AgencyCode::to_string).collect();
    agencies.extend(stored.iter().map(|s| s.signature.agency.clone()));
    agencies.sort();
    agencies.dedup();
    Ok(agencies
        .into_iter()
        .map(|agency| match stored.iter().find(|s| s.signature.agency == agency) {
            None => AgencySignature { agency, status: SignatureStatus::Missing, stored: None },
            Some(s) => {
                let status = match crate::security::countersign::verify(
                    &s.signature,
                    &header.content_hash,
                    ca_pem,
                    trust_domain,
                ) {
                    Ok(()) => SignatureStatus::Valid,
                    Err(e) => SignatureStatus::Invalid(e.to_string()),
                };
                AgencySignature { agency, status, stored: Some(s.clone()) }
            }
        })
        .collect())
}
