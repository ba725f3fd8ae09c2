//! Countersigned quarters (issue 19 item 2; docs/countersign.md): a partner agency signs a frozen snapshot's content
//! hash with the private key of its own client certificate, the hub checks and keeps the signature, and anyone
//! holding the hub's CA certificate can check it again.
//!
//! - [`AgencySigner`]: the agency side (`doudi snapshot sign`): its client key (ECDSA P-256, PKCS#8 PEM, as
//!   `doudi certs init` writes it) and certificate, signing [`crate::domain::countersign::message`].
//! - [`verify`]: a signature checked with only the CA certificate(s): the content hash is the snapshot's, the signer
//!   certificate was issued by the CA to the agency's city office (`spiffe://<domain>/agency/<agency>`), was valid at
//!   the signing time, and the ECDSA P-256 / SHA-256 signature (DER) verifies over the message. The CRL is not read
//!   here: the hub checks revocation when the signature is submitted ([`Trust`]).
//! - [`Trust`]: the hub side: the certificate checked as a client certificate is at a handshake (CA, CRLs in force,
//!   stale-CRL policy) through the TLS configuration in force.
//! - [`SnapshotFile`], [`SignaturesFile`]: the two JSON files a snapshot export adds (`doudi export --snapshot`), which
//!   `doudi snapshot verify --offline DIR` checks.
//!
//! No SM2: `doudi certs init` issues ECDSA P-256 keys under every `crypto_suite` (the suite covers data at rest only),
//! so countersignatures are ECDSA P-256 only.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, UnparsedPublicKey};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};
use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::domain::agency::Principal;
use crate::domain::countersign::{ALGORITHM, FORMAT, message};
use crate::security::audit_head::signed_by;

/// One agency's signature of one quarter, as signed and as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Countersignature {
    /// `YYYYQn`.
    pub quarter: String,
    /// The signing agency's code.
    pub agency: String,
    /// The content hash signed (the snapshot's, when the signature is good).
    pub content_hash: [u8; 32],
    /// Microseconds since the Unix epoch, as signed.
    pub signed_at_micros: i64,
    /// ECDSA P-256 / SHA-256, DER.
    pub signature: Vec<u8>,
    /// The signer's certificate, DER.
    pub signer_cert_der: Vec<u8>,
}

impl Countersignature {
    /// The bytes the signature covers ([`message`]).
    pub fn message(&self) -> Vec<u8> {
        message(&self.quarter, &self.content_hash, &self.agency, self.signed_at_micros)
    }
}

/// The agency that a certificate's SPIFFE ID names as a city office (`spiffe://<domain>/agency/<code>`, no
/// `/division/`): in `trust_domain`, or in any trust domain when `None`.
///
/// # Errors
/// A sentence naming the IDs found, when none is an agency's city office.
pub fn signer_agency(cert: &X509Certificate<'_>, trust_domain: Option<&str>) -> Result<String, String> {
    let ids = crate::server::tls::spiffe_ids_of(cert).map_err(|e| e.to_string())?;
    for id in &ids {
        let td = match trust_domain {
            Some(td) => td,
            None => id.strip_prefix("spiffe://").and_then(|r| r.split_once('/')).map(|(td, _)| td).unwrap_or(""),
        };
        if let Ok(p) = Principal::from_spiffe(id, td)
            && p.county().is_none()
        {
            return Ok(p.agency().to_string());
        }
    }
    let want = trust_domain.unwrap_or("<domain>");
    Err(format!("it names {ids:?}, not an agency's city office (spiffe://{want}/agency/<code>)"))
}

/// The agency side: a client key and certificate that sign countersignatures.
pub struct AgencySigner {
    key: EcdsaKeyPair,
    cert_der: Vec<u8>,
    agency: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for AgencySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgencySigner").field("agency", &self.agency).finish_non_exhaustive()
    }
}

impl AgencySigner {
    /// The signer from the agency's client key (PKCS#8 PEM, ECDSA P-256) and certificate (PEM; the first
    /// CERTIFICATE block is the agency's).
    ///
    /// # Errors
    /// A sentence saying what is wrong: not a P-256 PKCS#8 key, no certificate, a key that is not the certificate's,
    /// a certificate that names no agency's city office (a county office does not countersign the city's quarter).
    pub fn from_pem(key_pem: &[u8], cert_pem: &[u8]) -> Result<AgencySigner, String> {
        let der = PrivatePkcs8KeyDer::from_pem_slice(key_pem)
            .map_err(|e| format!("the client key is not a PKCS#8 PEM key: {e}"))?;
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, der.secret_pkcs8_der(), &rng)
            .map_err(|e| format!("the client key is not an ECDSA P-256 key: {e}"))?;
        let cert = crate::security::audit_head::first_cert(cert_pem, "the client certificate").map_err(|e| e.0)?;
        let (_, x509) = X509Certificate::from_der(cert.as_ref())
            .map_err(|e| format!("the client certificate does not parse: {e}"))?;
        if x509.public_key().subject_public_key.data.as_ref() != key.public_key().as_ref() {
            return Err("the client key does not belong to the client certificate".into());
        }
        let agency =
            signer_agency(&x509, None).map_err(|e| format!("the client certificate cannot countersign: {e}"))?;
        Ok(AgencySigner { key, cert_der: cert.as_ref().to_vec(), agency, rng })
    }

    /// The agency the certificate names.
    pub fn agency(&self) -> &str {
        &self.agency
    }

    /// Sign `content_hash` of `quarter` as of `signed_at_micros`.
    pub fn sign(&self, quarter: &str, content_hash: [u8; 32], signed_at_micros: i64) -> Countersignature {
        let mut s = Countersignature {
            quarter: quarter.to_owned(),
            agency: self.agency.clone(),
            content_hash,
            signed_at_micros,
            signature: Vec::new(),
            signer_cert_der: self.cert_der.clone(),
        };
        let sig = self.key.sign(&self.rng, &s.message()).expect("ECDSA signing with the system RNG does not fail");
        s.signature = sig.as_ref().to_vec();
        s
    }
}

/// Which part of a countersignature a check refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The hash signed is not the snapshot's.
    #[error("{0}")]
    ContentHash(String),
    /// The signer certificate does not parse, was not issued by the CA, names another agency or was not valid at the
    /// signing time.
    #[error("{0}")]
    Certificate(String),
    /// The signature does not verify over the message under the certificate's key.
    #[error("{0}")]
    Signature(String),
}

/// Check `sig` with only the CA certificate(s) in `ca_pem` against the snapshot's `content_hash`: the hash signed is
/// that one; the signer certificate parses, was issued by one of the CAs, names `sig.agency`'s city office (in
/// `trust_domain`, or any when `None`) and was valid at `sig.signed_at_micros`; the signature verifies over
/// [`Countersignature::message`] under its P-256 key. Revocation is not checked here (see the module docs).
///
/// # Errors
/// The first check that fails, as a sentence naming it, classed by what it concerns ([`Failure`]).
pub fn verify(
    sig: &Countersignature,
    content_hash: &[u8; 32],
    ca_pem: &[u8],
    trust_domain: Option<&str>,
) -> Result<(), Failure> {
    if sig.content_hash != *content_hash {
        return Err(Failure::ContentHash(format!(
            "it signs content hash {}, the snapshot's is {}",
            hex::encode(sig.content_hash),
            hex::encode(content_hash)
        )));
    }
    let cert = |m: String| Failure::Certificate(m);
    let (_, signer) = X509Certificate::from_der(&sig.signer_cert_der)
        .map_err(|e| cert(format!("the signer certificate does not parse: {e}")))?;
    let cas: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(ca_pem).filter_map(Result::ok).collect();
    if cas.is_empty() {
        return Err(cert("the CA file holds no certificate".into()));
    }
    let issued = cas.iter().any(|der| {
        X509Certificate::from_der(der.as_ref())
            .map(|(_, ca)| ca.subject().as_raw() == signer.issuer().as_raw() && signed_by(&signer, &ca))
            .unwrap_or(false)
    });
    if !issued {
        return Err(cert(format!("the signer certificate ({}) was not issued by the CA", signer.subject())));
    }
    let named = signer_agency(&signer, trust_domain).map_err(|e| cert(format!("the signer certificate: {e}")))?;
    if named != sig.agency {
        return Err(cert(format!("the signer certificate names agency {named}, the signature says {}", sig.agency)));
    }
    let at = sig.signed_at_micros.div_euclid(1_000_000);
    let validity = signer.validity();
    if at < validity.not_before.timestamp() || at > validity.not_after.timestamp() {
        return Err(cert(format!(
            "the signer certificate was not valid at the signing time {} (valid {} to {})",
            crate::store::from_micros(sig.signed_at_micros).to_rfc3339(),
            validity.not_before,
            validity.not_after
        )));
    }
    let key = signer.public_key().subject_public_key.data.as_ref();
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, key).verify(&sig.message(), &sig.signature).map_err(
        |_| Failure::Signature("the signature does not verify: altered after signing, or made by another key".into()),
    )
}

/// The agency a certificate (DER) names as a city office (see [`signer_agency`]).
///
/// # Errors
/// `Err(Err(_))` when the bytes are not an X.509 certificate; `Err(Ok(_))` when it names no agency's city office.
pub fn certificate_agency(der: &[u8], trust_domain: Option<&str>) -> Result<String, Result<String, String>> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| Err(format!("not a DER X.509 certificate: {e}")))?;
    signer_agency(&cert, trust_domain).map_err(Ok)
}

/// The hub's side of the checks it makes when a signature is submitted, beyond [`verify`]: the certificate as a
/// client certificate at a handshake now (issued by the CA, not revoked by a CRL in force, the stale-CRL policy),
/// and the CA file for [`verify`] (read at each use, so a CA reload is seen).
#[derive(Clone, Debug)]
pub struct Trust {
    pub tls: crate::server::tls::ReloadableServerConfig,
    pub ca_path: PathBuf,
    pub trust_domain: String,
}

impl Trust {
    /// The CA certificate(s), PEM, as the file holds them now.
    ///
    /// # Errors
    /// The file's read error, naming it.
    pub fn ca_pem(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.ca_path).map_err(|e| format!("{}: {e}", self.ca_path.display()))
    }

    /// The certificate (DER) checked as a client certificate would be at a handshake now.
    ///
    /// # Errors
    /// rustls' reason, e.g. `InvalidCertificate(Revoked)` or `InvalidCertificate(UnknownIssuer)`.
    pub fn check_now(&self, cert_der: &[u8]) -> Result<(), rustls::Error> {
        self.tls.verify_forwarded(&[CertificateDer::from(cert_der)])
    }
}

/// `snapshot-QUARTER.json` of a snapshot export: the header whose lines give the content hash
/// (docs/snapshot-format.md "Content hash"), so the hash is recomputed offline from the section hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotFile {
    /// `doudi-snapshot-v1`, or `doudi-snapshot-v2` when the section hashes include an optional section
    /// (`campaigns`; docs/snapshot-format.md "Format v2").
    pub format: String,
    pub quarter: String,
    pub as_of: String,
    /// Microseconds since the Unix epoch, as hashed.
    pub knowledge_cutoff_micros: i64,
    #[serde(default)]
    pub previous_quarter: String,
    pub previous_hash: String,
    /// Section name → hex SHA-256.
    pub section_hashes: BTreeMap<String, String>,
    /// Hex SHA-256 as the hub stored it.
    pub content_hash: String,
}

impl SnapshotFile {
    /// The content hash recomputed from the header and section hashes.
    ///
    /// # Errors
    /// A section hash that is not 64 hex characters, naming it.
    pub fn recompute(&self) -> Result<[u8; 32], String> {
        let mut sections = BTreeMap::new();
        for (name, h) in &self.section_hashes {
            sections.insert(name.clone(), hex32(h).ok_or_else(|| format!("section {name}: {h:?} is not a hash"))?);
        }
        Ok(crate::domain::snapshot::content_hash(&self.quarter, &self.as_of, self.knowledge_cutoff_micros, &sections))
    }
}

/// `signatures-QUARTER.json` of a snapshot export: one entry per partner agency, as the hub reported them
/// (ListSnapshotSignatures); an entry without a signature is an agency that has not signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignaturesFile {
    /// `doudi-snapshot-countersign-v1`.
    pub format: String,
    /// `ecdsa-p256-sha256`.
    pub algorithm: String,
    pub quarter: String,
    /// Hex: the snapshot's content hash.
    pub content_hash: String,
    pub agencies: Vec<SignatureEntry>,
}

/// One agency's entry of [`SignaturesFile`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureEntry {
    pub agency: String,
    /// What the hub reported at export: `VALID`, `MISSING` or `INVALID` (informational: the verifier checks again).
    pub hub_status: String,
    /// The signed content hash (hex); absent when missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    /// Informational (RFC 3339, UTC); `signed_at_micros` is what is signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_at_micros: Option<i64>,
    /// The signature's version (1 for the first; a re-sign adds one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Standard base64 of the DER signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// The signer's certificate, PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer_certificate: Option<String>,
}

impl SignaturesFile {
    /// The file for `quarter` of `content_hash` with `entries`.
    pub fn new(quarter: &str, content_hash: &[u8; 32], agencies: Vec<SignatureEntry>) -> SignaturesFile {
        SignaturesFile {
            format: FORMAT.into(),
            algorithm: ALGORITHM.into(),
            quarter: quarter.to_owned(),
            content_hash: hex::encode(content_hash),
            agencies,
        }
    }
}

impl SignatureEntry {
    /// The entry of a stored signature.
    pub fn signed(s: &Countersignature, hub_status: &str, version: i64) -> SignatureEntry {
        SignatureEntry {
            agency: s.agency.clone(),
            hub_status: hub_status.to_owned(),
            content_hash: Some(hex::encode(s.content_hash)),
            signed_at: Some(
                crate::store::from_micros(s.signed_at_micros).to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            ),
            signed_at_micros: Some(s.signed_at_micros),
            version: Some(version),
            signature: Some(base64::engine::general_purpose::STANDARD.encode(&s.signature)),
            signer_certificate: Some(cert_pem(&s.signer_cert_der)),
        }
    }

    /// The signature this entry holds for `quarter` (`None`: the agency has not signed).
    ///
    /// # Errors
    /// A field that does not read (base64, PEM, hex), naming it.
    pub fn countersignature(&self, quarter: &str) -> Result<Option<Countersignature>, String> {
        let (Some(hash), Some(at), Some(sig), Some(cert)) =
            (&self.content_hash, self.signed_at_micros, &self.signature, &self.signer_certificate)
        else {
            return Ok(None);
        };
        let content_hash = hex32(hash).ok_or_else(|| format!("content_hash {hash:?} is not a hash"))?;
        let signature = base64::engine::general_purpose::STANDARD
            .decode(sig.trim())
            .map_err(|e| format!("signature is not base64: {e}"))?;
        let der = crate::security::audit_head::first_cert(cert.as_bytes(), "signer_certificate").map_err(|e| e.0)?;
        Ok(Some(Countersignature {
            quarter: quarter.to_owned(),
            agency: self.agency.clone(),
            content_hash,
            signed_at_micros: at,
            signature,
            signer_cert_der: der.as_ref().to_vec(),
        }))
    }
}

/// A certificate (DER) as PEM.
pub fn cert_pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// 64 hex characters as 32 bytes.
pub fn hex32(s: &str) -> Option<[u8; 32]> {
    hex::decode(s).ok().and_then(|b| <[u8; 32]>::try_from(b).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::certs::Ca;

    const TD: &str = "example.test";

    #[test]
    fn a_countersignature_verifies_with_the_ca_and_says_what_is_wrong_otherwise() {
        crate::server::tls::install_crypto_provider();
        let ca = Ca::generate("test CA").unwrap();
        let edu = ca.issue_client(TD, "education", None).unwrap();
        let signer = AgencySigner::from_pem(edu.key_pem.as_bytes(), edu.cert_pem.as_bytes()).unwrap();
        assert_eq!(signer.agency(), "education");
        let hash = [7u8; 32];
        let now = crate::store::to_micros(chrono::Utc::now());
        let s = signer.sign("2023Q2", hash, now);
        verify(&s, &hash, ca.cert_pem().as_bytes(), Some(TD)).unwrap();
        verify(&s, &hash, ca.cert_pem().as_bytes(), None).unwrap();

        let check = |s: &Countersignature, ca: &Ca| verify(s, &hash, ca.cert_pem().as_bytes(), None);
        let e = verify(&s, &[8; 32], ca.cert_pem().as_bytes(), None).unwrap_err();
        assert!(matches!(&e, Failure::ContentHash(m) if m.contains("signs content hash 0707")), "{e}");
        let other = Ca::generate("other CA").unwrap();
        let e = check(&s, &other).unwrap_err();
        assert!(matches!(&e, Failure::Certificate(m) if m.contains("not issued by the CA")), "{e}");
        let mut t = s.clone();
        t.signature[10] ^= 1;
        assert!(matches!(check(&t, &ca), Err(Failure::Signature(_))));
        let mut t = s.clone();
        t.signed_at_micros += 1;
        assert!(matches!(check(&t, &ca), Err(Failure::Signature(_))));
        let mut t = s.clone();
        t.agency = "civil_affairs".into();
        let e = check(&t, &ca).unwrap_err();
        assert!(matches!(&e, Failure::Certificate(m) if m.contains("names agency education")), "{e}");
        // Before the certificate's notBefore (issued "now"): not valid at the signing time.
        let early = signer.sign("2023Q2", hash, now - 10 * 86_400 * 1_000_000);
        let e = check(&early, &ca).unwrap_err();
        assert!(matches!(&e, Failure::Certificate(m) if m.contains("not valid at")), "{e}");

        // A county office's certificate, or the key of another certificate, cannot sign.
        let county = ca.issue_client(TD, "civil_affairs", Some("621022")).unwrap();
        let e = AgencySigner::from_pem(county.key_pem.as_bytes(), county.cert_pem.as_bytes()).unwrap_err();
        assert!(e.contains("city office"), "{e}");
        assert!(AgencySigner::from_pem(county.key_pem.as_bytes(), edu.cert_pem.as_bytes()).is_err());
    }

    /// Checked independently of this module: the message rebuilt by hand from docs/countersign.md and the signature
    /// verified by ring directly with the certificate's public key, and, where `openssl` is installed, by
    /// `openssl dgst -sha256 -verify` as the document tells a third party to do.
    #[test]
    fn the_signature_verifies_by_hand_and_with_openssl() {
        crate::server::tls::install_crypto_provider();
        let ca = Ca::generate("test CA").unwrap();
        let mi = ca.issue_client(TD, "medical_insurance", None).unwrap();
        let signer = AgencySigner::from_pem(mi.key_pem.as_bytes(), mi.cert_pem.as_bytes()).unwrap();
        let hash: [u8; 32] = core::array::from_fn(|i| i as u8);
        let s = signer.sign("2023Q2", hash, 1_701_400_000_123_456);
        let by_hand = "doudi-snapshot-countersign-v1\nquarter=2023Q2\n\
             content_hash=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n\
             agency=medical_insurance\nsigned_at=1701400000123456\n";
        let (_, cert) = X509Certificate::from_der(&s.signer_cert_der).unwrap();
        let key = cert.public_key().subject_public_key.data.to_vec();
        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &key)
            .verify(by_hand.as_bytes(), &s.signature)
            .unwrap();

        let has_openssl =
            std::process::Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success());
        if !has_openssl {
            eprintln!("openssl is not installed: the by-hand check above stands alone");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        std::fs::write(p("msg.txt"), by_hand).unwrap();
        std::fs::write(p("sig.der"), &s.signature).unwrap();
        std::fs::write(p("signer.pem"), cert_pem(&s.signer_cert_der)).unwrap();
        let pubkey = std::process::Command::new("openssl")
            .args(["x509", "-in"])
            .arg(p("signer.pem"))
            .args(["-pubkey", "-noout", "-out"])
            .arg(p("pub.pem"))
            .status()
            .unwrap();
        assert!(pubkey.success());
        let run = |msg: &std::path::Path| {
            std::process::Command::new("openssl")
                .args(["dgst", "-sha256", "-verify"])
                .arg(p("pub.pem"))
                .arg("-signature")
                .arg(p("sig.der"))
                .arg(msg)
                .output()
                .unwrap()
        };
        let ok = run(&p("msg.txt"));
        assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));
        assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "Verified OK");
        std::fs::write(p("other.txt"), by_hand.replace("2023Q2", "2023Q3")).unwrap();
        assert!(!run(&p("other.txt")).status.success(), "another quarter must not verify");
    }

    #[test]
    fn an_export_entry_reads_back_the_signature() {
        crate::server::tls::install_crypto_provider();
        let ca = Ca::generate("test CA").unwrap();
        let edu = ca.issue_client(TD, "education", None).unwrap();
        let signer = AgencySigner::from_pem(edu.key_pem.as_bytes(), edu.cert_pem.as_bytes()).unwrap();
        let s = signer.sign("2023Q2", [1; 32], crate::store::to_micros(chrono::Utc::now()));
        let e = SignatureEntry::signed(&s, "VALID", 2);
        let f = SignaturesFile::new("2023Q2", &[1; 32], vec![e.clone()]);
        let back: SignaturesFile = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
        assert_eq!(back.agencies[0].countersignature("2023Q2").unwrap(), Some(s));
        let missing = SignatureEntry {
            agency: "education".into(),
            hub_status: "MISSING".into(),
            content_hash: None,
            signed_at: None,
            signed_at_micros: None,
            version: None,
            signature: None,
            signer_certificate: None,
        };
        assert_eq!(missing.countersignature("2023Q2").unwrap(), None);
    }
}
