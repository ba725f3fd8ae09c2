//! Signed audit heads (issue 20 item 5; docs/audit-lanes.md "Signed heads").
//!
//! The hub signs the heads of every audit lane with a key of its own, **the audit signer**: an ECDSA P-256 key
//! (`audit-signing.key`, PKCS#8 PEM) whose certificate (`audit-signing.pem`) the hub's CA issued with the URI SAN
//! `spiffe://<trust-domain>/hub/audit-signer` ([`signer_spiffe_id`]). `doudi certs init` writes both;
//! `doudi certs audit-signer` adds them to an existing PKI. The key is not the TLS server key: an audit signature
//! outlives a server certificate's renewal, and the role is named in the certificate, so a verifier holding only
//! `ca.pem` knows the key signs audit heads for this hub.
//!
//! What is signed is [`crate::domain::audit::head_message`] (`doudi-audit-head-v1`): the signing time and every
//! lane's `(lane, position, hash)` in lane order, length-prefixed. The signature is ECDSA P-256 with SHA-256 over
//! those bytes, DER-encoded (ASN.1 `Ecdsa-Sig-Value`, what `openssl dgst -sha256 -verify` reads). A signed head is
//! kept by agencies as a JSON file ([`SignedHead::to_json`]); [`verify`] checks it with only the CA certificate,
//! and [`check_against`] proves the hub's chain still contains it.

use std::path::Path;

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, UnparsedPublicKey};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};
use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};

use crate::domain::audit::{HEAD_FORMAT, LaneHead, head_message};
use crate::store::{ChainCheck, Store, StoreError};

/// The signature algorithm of a signed head, as the JSON file names it.
pub const ALGORITHM: &str = "ecdsa-p256-sha256";

/// The path of the audit signer's SPIFFE ID.
pub const SIGNER_PATH: &str = "/hub/audit-signer";

/// The audit signer's SPIFFE ID: `spiffe://<trust_domain>/hub/audit-signer`.
pub fn signer_spiffe_id(trust_domain: &str) -> String {
    format!("spiffe://{trust_domain}{SIGNER_PATH}")
}

/// Why a signed head, its signer or its file was refused. The message says what and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HeadError(pub String);

fn err(msg: impl Into<String>) -> HeadError {
    HeadError(msg.into())
}

/// A signed audit head: when, every lane's head, the signature over [`head_message`] and the signer's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHead {
    /// Microseconds since the Unix epoch, as signed.
    pub signed_at_micros: i64,
    /// Every lane's newest event at signing, in lane order.
    pub heads: Vec<LaneHead>,
    /// ECDSA P-256 / SHA-256 signature, DER.
    pub signature: Vec<u8>,
    /// The audit signer's certificate (PEM), issued by the hub's CA.
    pub signer_cert_pem: String,
}

/// The JSON file of a signed head (`doudi audit head --save FILE`).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadFile {
    format: String,
    algorithm: String,
    /// Informational (RFC 3339, UTC); `signed_at_micros` is what is signed.
    signed_at: String,
    signed_at_micros: i64,
    heads: Vec<HeadFileLane>,
    /// Standard base64 of the DER signature.
    signature: String,
    signer_certificate: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadFileLane {
    lane: i32,
    seq: i64,
    hash: String,
}

impl SignedHead {
    /// The bytes the signature covers ([`head_message`]).
    pub fn message(&self) -> Vec<u8> {
        head_message(self.signed_at_micros, &self.heads)
    }

    /// The JSON file form (pretty, one field per line).
    pub fn to_json(&self) -> String {
        let file = HeadFile {
            format: HEAD_FORMAT.into(),
            algorithm: ALGORITHM.into(),
            signed_at: crate::store::from_micros(self.signed_at_micros)
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            signed_at_micros: self.signed_at_micros,
            heads: self
                .heads
                .iter()
                .map(|h| HeadFileLane { lane: h.lane, seq: h.seq, hash: hex::encode(h.hash) })
                .collect(),
            signature: base64::engine::general_purpose::STANDARD.encode(&self.signature),
            signer_certificate: self.signer_cert_pem.clone(),
        };
        serde_json::to_string_pretty(&file).expect("plain data serializes") + "\n"
    }

    /// Read the JSON file form; the format and algorithm must be the ones this release signs.
    pub fn from_json(text: &str) -> Result<SignedHead, HeadError> {
        let f: HeadFile = serde_json::from_str(text).map_err(|e| err(format!("not a signed audit head: {e}")))?;
        if f.format != HEAD_FORMAT {
            return Err(err(format!("format {:?} is not {HEAD_FORMAT}", f.format)));
        }
        if f.algorithm != ALGORITHM {
            return Err(err(format!("algorithm {:?} is not {ALGORITHM}", f.algorithm)));
        }
        let mut heads = Vec::with_capacity(f.heads.len());
        for h in f.heads {
            let hash = hex::decode(&h.hash)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| err(format!("lane {}: hash {:?} is not 64 hex characters", h.lane, h.hash)))?;
            heads.push(LaneHead { lane: h.lane, seq: h.seq, hash });
        }
        heads.sort();
        if heads.windows(2).any(|w| w[0].lane == w[1].lane) {
            return Err(err("a lane is named twice"));
        }
        let signature = base64::engine::general_purpose::STANDARD
            .decode(f.signature.trim())
            .map_err(|e| err(format!("signature is not base64: {e}")))?;
        Ok(SignedHead { signed_at_micros: f.signed_at_micros, heads, signature, signer_cert_pem: f.signer_certificate })
    }
}

/// The hub's audit signer: its key and certificate.
pub struct HeadSigner {
    key: EcdsaKeyPair,
    cert_pem: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for HeadSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeadSigner")
    }
}

impl HeadSigner {
    /// The signer from its PKCS#8 key and certificate (both PEM); the key must be the certificate's.
    pub fn from_pem(key_pem: &str, cert_pem: &str) -> Result<HeadSigner, HeadError> {
        let der = PrivatePkcs8KeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| err(format!("the audit signing key is not a PKCS#8 PEM key: {e}")))?;
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, der.secret_pkcs8_der(), &rng)
            .map_err(|e| err(format!("the audit signing key is not an ECDSA P-256 key: {e}")))?;
        let cert = first_cert(cert_pem.as_bytes(), "the audit signing certificate")?;
        let (_, x509) = X509Certificate::from_der(cert.as_ref())
            .map_err(|e| err(format!("the audit signing certificate does not parse: {e}")))?;
        if x509.public_key().subject_public_key.data.as_ref() != key.public_key().as_ref() {
            return Err(err("the audit signing key does not belong to the audit signing certificate"));
        }
        Ok(HeadSigner { key, cert_pem: cert_pem.to_owned(), rng })
    }

    /// The signer in `dir` (`audit-signing.key`, `audit-signing.pem`), or `None` when the key file is absent.
    pub fn load(dir: &Path) -> Result<Option<HeadSigner>, HeadError> {
        let key_path = dir.join(crate::security::certs::files::AUDIT_SIGNER_KEY);
        let cert_path = dir.join(crate::security::certs::files::AUDIT_SIGNER_CERT);
        let key_pem = match std::fs::read_to_string(&key_path) {
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(format!("{}: {e}", key_path.display()))),
        };
        let cert_pem = std::fs::read_to_string(&cert_path).map_err(|e| err(format!("{}: {e}", cert_path.display())))?;
        HeadSigner::from_pem(&key_pem, &cert_pem).map(Some).map_err(|e| err(format!("{}: {e}", dir.display())))
    }

    /// The signer's certificate (PEM).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Sign `heads` as of `signed_at_micros`.
    pub fn sign(&self, signed_at_micros: i64, heads: &[LaneHead]) -> SignedHead {
        let mut heads = heads.to_vec();
        heads.sort();
        let message = head_message(signed_at_micros, &heads);
        let sig = self.key.sign(&self.rng, &message).expect("ECDSA signing with the system RNG does not fail");
        SignedHead { signed_at_micros, heads, signature: sig.as_ref().to_vec(), signer_cert_pem: self.cert_pem.clone() }
    }
}

pub(crate) fn first_cert(pem: &[u8], what: &str) -> Result<CertificateDer<'static>, HeadError> {
    match CertificateDer::pem_slice_iter(pem).next() {
        Some(Ok(der)) => Ok(der),
        Some(Err(e)) => Err(err(format!("{what}: bad PEM: {e}"))),
        None => Err(err(format!("{what}: no CERTIFICATE block"))),
    }
}

/// Whether `issuer` signed `cert` (ECDSA P-256/P-384 or RSA PKCS#1 with SHA-256/384).
pub(crate) fn signed_by(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    use x509_parser::oid_registry as oid;
    let alg = &cert.signature_algorithm.algorithm;
    let algs: &[&'static dyn signature::VerificationAlgorithm] = if *alg == oid::OID_SIG_ECDSA_WITH_SHA256 {
        &[&signature::ECDSA_P256_SHA256_ASN1, &signature::ECDSA_P384_SHA256_ASN1]
    } else if *alg == oid::OID_SIG_ECDSA_WITH_SHA384 {
        &[&signature::ECDSA_P384_SHA384_ASN1, &signature::ECDSA_P256_SHA384_ASN1]
    } else if *alg == oid::OID_PKCS1_SHA256WITHRSA {
        &[&signature::RSA_PKCS1_2048_8192_SHA256]
    } else if *alg == oid::OID_PKCS1_SHA384WITHRSA {
        &[&signature::RSA_PKCS1_2048_8192_SHA384]
    } else {
        return false;
    };
    let key = issuer.public_key().subject_public_key.data.as_ref();
    let tbs = cert.tbs_certificate.as_ref();
    let sig = cert.signature_value.data.as_ref();
    algs.iter().any(|a| UnparsedPublicKey::new(*a, key).verify(tbs, sig).is_ok())
}

/// Check a signed head with only the CA certificate(s) in `ca_pem`:
/// - its signer certificate was issued by one of them, was valid at the signing time, and names the audit signer
///   (`spiffe://<trust_domain>/hub/audit-signer`; any trust domain when `trust_domain` is `None`);
/// - its signature over [`SignedHead::message`] verifies under that certificate's P-256 key.
pub fn verify(head: &SignedHead, ca_pem: &[u8], trust_domain: Option<&str>) -> Result<(), HeadError> {
    let cert = first_cert(head.signer_cert_pem.as_bytes(), "the signer certificate")?;
    let (_, signer) = X509Certificate::from_der(cert.as_ref())
        .map_err(|e| err(format!("the signer certificate does not parse: {e}")))?;
    let cas: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(ca_pem).filter_map(Result::ok).collect();
    if cas.is_empty() {
        return Err(err("the CA file holds no certificate"));
    }
    let issued = cas.iter().any(|der| {
        X509Certificate::from_der(der.as_ref())
            .map(|(_, ca)| ca.subject().as_raw() == signer.issuer().as_raw() && signed_by(&signer, &ca))
            .unwrap_or(false)
    });
    if !issued {
        return Err(err(format!(
            "the signer certificate ({}) was not issued by the CA: the head was not signed by this hub's audit signer",
            signer.subject()
        )));
    }
    let uris: Vec<String> = signer
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|g| match g {
                    GeneralName::URI(u) => Some((*u).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let named = uris.iter().any(|u| match trust_domain {
        Some(td) => *u == signer_spiffe_id(td),
        None => u
            .strip_prefix("spiffe://")
            .and_then(|rest| rest.strip_suffix(SIGNER_PATH))
            .is_some_and(|td| !td.is_empty() && !td.contains('/')),
    });
    if !named {
        let want =
            trust_domain.map(signer_spiffe_id).unwrap_or_else(|| format!("spiffe://<trust-domain>{SIGNER_PATH}"));
        return Err(err(format!("the signer certificate is not the audit signer: it names {uris:?}, not {want}")));
    }
    let at = head.signed_at_micros.div_euclid(1_000_000);
    let validity = signer.validity();
    if at < validity.not_before.timestamp() || at > validity.not_after.timestamp() {
        return Err(err(format!(
            "the signer certificate was not valid at the signing time {} (valid {} to {})",
            crate::store::from_micros(head.signed_at_micros).to_rfc3339(),
            validity.not_before,
            validity.not_after
        )));
    }
    let key = signer.public_key().subject_public_key.data.as_ref();
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, key)
        .verify(&head.message(), &head.signature)
        .map_err(|_| err("the signature does not verify: the head was altered after signing, or signed by another key"))
}

/// What [`check_against`] found.
#[derive(Debug, Clone)]
pub struct AgainstCheck {
    /// The chain as verified now.
    pub chain: ChainCheck,
    /// The first problem: `(lane, position in the lane, why)`; `None` when the chain verifies and holds every saved
    /// head.
    pub problem: Option<(i32, i64, String)>,
}

/// Prove the chain still contains `saved` (a head signed earlier; check its signature with [`verify`] first): the
/// chain verifies up to its current heads, and for every saved lane the event at the saved position exists and has
/// the saved hash. Since every event links to the one before in its lane, the lane's first `seq` events are then
/// those that were signed: nothing was cut off or rewritten since.
pub async fn check_against(store: &Store, saved: &SignedHead) -> Result<AgainstCheck, StoreError> {
    let chain = store.verify_audit_chain().await?;
    if let Some((seq, why)) = &chain.first_broken {
        let lane = chain.first_broken_lane;
        let problem = Some((lane, *seq, format!("the chain does not verify at event {seq} of lane {lane}: {why}")));
        return Ok(AgainstCheck { chain, problem });
    }
    for h in &saved.heads {
        let ends = chain.heads.iter().find(|c| c.lane == h.lane).map(|c| c.seq).unwrap_or(0);
        if ends < h.seq {
            let why = format!(
                "lane {} was cut short: the saved head names its event {} (hash {}), and lane {} now ends at {ends}",
                h.lane,
                h.seq,
                hex::encode(h.hash),
                h.lane
            );
            return Ok(AgainstCheck { chain, problem: Some((h.lane, ends + 1, why)) });
        }
        match store.audit_event_hash(h.lane, h.seq).await? {
            Some(stored) if stored == h.hash => {}
            Some(stored) => {
                let why = format!(
                    "lane {} was rewritten: its event {} has hash {}, the saved head signed {}",
                    h.lane,
                    h.seq,
                    hex::encode(stored),
                    hex::encode(h.hash)
                );
                return Ok(AgainstCheck { chain, problem: Some((h.lane, h.seq, why)) });
            }
            None => {
                let why = format!("event {} of lane {} is missing (the saved head names it)", h.seq, h.lane);
                return Ok(AgainstCheck { chain, problem: Some((h.lane, h.seq, why)) });
            }
        }
    }
    Ok(AgainstCheck { chain, problem: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::certs::Ca;

    fn heads() -> Vec<LaneHead> {
        vec![LaneHead { lane: 1, seq: 4, hash: [7; 32] }, LaneHead { lane: 0, seq: 9, hash: [3; 32] }]
    }

    #[test]
    fn a_signed_head_verifies_with_the_ca_and_survives_its_file() {
        crate::server::tls::install_crypto_provider();
        let ca = Ca::generate("test CA").unwrap();
        let issued = ca.issue_audit_signer("example.test").unwrap();
        let signer = HeadSigner::from_pem(&issued.key_pem, &issued.cert_pem).unwrap();
        let now = crate::store::to_micros(chrono::Utc::now());
        let h = signer.sign(now, &heads());
        assert_eq!(h.heads[0].lane, 0, "lane order");
        verify(&h, ca.cert_pem().as_bytes(), Some("example.test")).unwrap();
        verify(&h, ca.cert_pem().as_bytes(), None).unwrap();
        let back = SignedHead::from_json(&h.to_json()).unwrap();
        assert_eq!(back, h);

        // Another trust domain, another CA, an altered head: refused, saying why.
        let e = verify(&h, ca.cert_pem().as_bytes(), Some("other.test")).unwrap_err();
        assert!(e.0.contains("not the audit signer"), "{e}");
        let other = Ca::generate("other CA").unwrap();
        let e = verify(&h, other.cert_pem().as_bytes(), None).unwrap_err();
        assert!(e.0.contains("not issued by the CA"), "{e}");
        let mut altered = h.clone();
        altered.heads[1].seq += 1;
        let e = verify(&altered, ca.cert_pem().as_bytes(), None).unwrap_err();
        assert!(e.0.contains("signature does not verify"), "{e}");

        // A key of another signer cannot pose as this one's certificate.
        let stranger = other.issue_audit_signer("example.test").unwrap();
        assert!(HeadSigner::from_pem(&stranger.key_pem, &issued.cert_pem).is_err());
        // An agency certificate of the same CA is not the audit signer.
        let agency = ca.issue_client("example.test", "education", None).unwrap();
        let mut posing = h.clone();
        posing.signer_cert_pem = agency.cert_pem;
        let e = verify(&posing, ca.cert_pem().as_bytes(), None).unwrap_err();
        assert!(e.0.contains("not the audit signer"), "{e}");
    }

    #[test]
    fn files_of_another_format_or_with_bad_fields_are_refused() {
        for bad in [
            "{}",
            r#"{"format":"doudi-audit-head-v2","algorithm":"ecdsa-p256-sha256","signed_at":"","signed_at_micros":0,"heads":[],"signature":"","signer_certificate":""}"#,
            r#"{"format":"doudi-audit-head-v1","algorithm":"ecdsa-p256-sha256","signed_at":"","signed_at_micros":0,"heads":[{"lane":0,"seq":1,"hash":"00"}],"signature":"","signer_certificate":""}"#,
        ] {
            assert!(SignedHead::from_json(bad).is_err(), "{bad}");
        }
    }
}
