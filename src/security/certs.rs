//! Certificate authority tooling for `doudi certs init` / `doudi certs revoke` (rcgen).
//!
//! The hub authenticates agencies by mutual TLS (docs/spec/security.md, "Transport and identity"): every
//! client certificate is issued by the hub's CA, carries the clientAuth extended key usage and names
//! its agency in a URI SAN of the form `spiffe://<trust-domain>/agency/<agency_code>`, or, for a
//! county office, `spiffe://<trust-domain>/agency/<agency_code>/division/<6-digit county code>`.
//! Revocation is by CRL (`ca.crl`), rebuilt from `revoked-serials.txt` whenever a certificate is
//! revoked, and re-read by the server without a restart (see `crate::server::tls`).
//!
//! Keys are ECDSA P-256 (rcgen's default), signed with SHA-256. Serial numbers are 16 random bytes
//! (positive, 0x40..=0x7f in the first byte, so the DER integer is always exactly 16 bytes and the hex
//! form is stable). Validity is backdated by one day to tolerate clock skew.

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rcgen::string::{BmpString, Ia5String, PrintableString, TeletexString, UniversalString};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SanType,
    SerialNumber,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use time::OffsetDateTime;
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::prelude::{FromDer as _, ParsedExtension, X509Certificate, X509Name};

/// Trust domain used when none is configured (the SPIFFE ID authority part).
pub const DEFAULT_TRUST_DOMAIN: &str = "doudi.qingyang.gov.cn";

/// The agency codes of the exchange (docs/spec/security.md, access matrix columns), in the order the
/// demo certificates are written by [`init`].
pub const AGENCIES: [&str; 7] = [
    "civil_affairs",
    "human_resources",
    "education",
    "medical_insurance",
    "disability_federation",
    "leading_group",
    "development_reform",
];

/// The operators [`init`] issues (docs/admin.md): one system administrator, two security administrators (the
/// two-person rule needs a second one to approve a matrix change or a data-key rotation) and one audit administrator.
/// Their files are `operator-<name>.pem` / `.key` ([`operator_file_base`]).
pub const OPERATORS: [(crate::domain::admin::Role, &str); 4] = [
    (crate::domain::admin::Role::System, "system-admin"),
    (crate::domain::admin::Role::Security, "security-admin"),
    (crate::domain::admin::Role::Security, "security-admin-2"),
    (crate::domain::admin::Role::Audit, "audit-admin"),
];

/// The file base of operator `name`'s certificate and key: `operator-<name>` (`.pem`, `.key`); `doudi … --operator
/// NAME` reads them from `--certs-dir`.
pub fn operator_file_base(name: &str) -> String {
    format!("operator-{name}")
}

/// County code of the demo county office written by [`init`]: 环县 (Huan County, Qingyang), 621022.
pub const DEMO_COUNTY: &str = "621022";

/// Validity of issued server and client certificates, in days after "now" (825 days, the CA/B
/// Forum's historical maximum for leaf certificates).
pub const LEAF_VALIDITY_DAYS: i64 = 825;

/// Validity of a generated CA certificate, in days after "now" (10 years).
pub const CA_VALIDITY_DAYS: i64 = 3650;

/// How far ahead the `nextUpdate` field of CRLs written by [`init`], [`revoke`] and
/// [`rebuild_crl`] lies, in days. Past it the CRL is stale: the hub refuses the certificates of
/// its CA at the handshake (`crl_stale = "refuse"`, the default; `crate::security::cert_watch`) until a
/// fresh CRL is in place, e.g. from `doudi certs refresh-crl`.
pub const CRL_VALIDITY_DAYS: i64 = 365;

/// File names written by [`init`] and read by [`revoke`] / [`rebuild_crl`].
pub mod files {
    /// CA certificate (PEM).
    pub const CA_CERT: &str = "ca.pem";
    /// CA private key (PKCS#8 PEM, mode 0600).
    pub const CA_KEY: &str = "ca.key";
    /// Server certificate for `localhost`, `127.0.0.1`, `::1` (PEM).
    pub const SERVER_CERT: &str = "server.pem";
    /// Server private key (PKCS#8 PEM, mode 0600).
    pub const SERVER_KEY: &str = "server.key";
    /// Certificate revocation list (PEM, `X509 CRL`).
    pub const CRL: &str = "ca.crl";
    /// Revoked serial numbers, lowercase hex without separators, one per line.
    pub const REVOKED_SERIALS: &str = "revoked-serials.txt";
    /// Base name of the demo certificate that is listed in the CRL (`revoked.pem`, `revoked.key`).
    pub const REVOKED_BASE: &str = "revoked";
    /// The audit signer's certificate (PEM): the key that signs audit heads (`crate::security::audit_head`).
    pub const AUDIT_SIGNER_CERT: &str = "audit-signing.pem";
    /// The audit signer's private key (PKCS#8 PEM, mode 0600).
    pub const AUDIT_SIGNER_KEY: &str = "audit-signing.key";
}

/// Errors of the certificate tooling. Every message names the file (or the input) and the reason.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// An input (PEM text, file content, name, code) is not acceptable.
    #[error("{what}: {reason}")]
    Invalid {
        /// What was being read, e.g. `ca.pem` or `agency code`.
        what: String,
        /// Why it was refused.
        reason: String,
    },
    /// rcgen refused to build or sign something.
    #[error("{what}: {source}")]
    Rcgen {
        /// What was being built.
        what: String,
        /// rcgen's error.
        source: rcgen::Error,
    },
    /// `init` would replace an existing CA key.
    #[error(
        "{}: already exists; refusing to replace the CA key without --force \
         (every certificate the old CA issued would stop working)",
        .0.display()
    )]
    WouldOverwrite(PathBuf),
    /// `certs audit-signer` would replace an existing audit signing key.
    #[error(
        "{}: already exists; refusing to replace the audit signing key without --force \
         (heads signed with the old key still verify against the CA)",
        .0.display()
    )]
    SignerExists(PathBuf),
}

fn invalid(what: impl Into<String>, reason: impl fmt::Display) -> CertsError {
    CertsError::Invalid { what: what.into(), reason: reason.to_string() }
}

fn rcgen_err(what: impl Into<String>) -> impl FnOnce(rcgen::Error) -> CertsError {
    let what = what.into();
    move |source| CertsError::Rcgen { what, source }
}

/// A certificate and its private key, as issued by [`Ca`].
#[derive(Clone)]
pub struct Issued {
    /// The certificate, PEM (`CERTIFICATE`).
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM (`PRIVATE KEY`). Keep secret.
    pub key_pem: String,
    /// The certificate's serial number (what a CRL lists).
    pub serial: SerialNumber,
}

impl Issued {
    /// The serial number as lowercase hex without separators (the `revoked-serials.txt` form).
    pub fn serial_hex(&self) -> String {
        to_hex(&self.serial.to_bytes())
    }
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("serial", &self.serial_hex())
            .field("key_pem", &"[elided]")
            .finish_non_exhaustive()
    }
}

/// A certificate authority: its certificate and signing key.
///
/// Made by [`Ca::generate`] or loaded from PEM by [`Ca::load`] / [`Ca::load_files`]. Loading
/// rebuilds the issuer (subject name with its exact string encodings, key usages, subject key
/// identifier) from the certificate itself, so certificates issued later chain to it.
pub struct Ca {
    cert_pem: String,
    key_pem: String,
    /// Raw DER of the CA subject name, to check that a certificate was issued by this CA.
    subject_der: Vec<u8>,
    key_id_method: KeyIdMethod,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca").field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

impl Ca {
    /// Generates a new self-signed CA (ECDSA P-256) named `CN=<common_name>, O=doudi`, valid from
    /// one day ago for [`CA_VALIDITY_DAYS`], allowed to sign certificates and CRLs, path length 0.
    ///
    /// # Errors
    /// [`CertsError::Rcgen`] if key generation or signing fails.
    pub fn generate(common_name: &str) -> Result<Ca, CertsError> {
        let key = KeyPair::generate().map_err(rcgen_err("CA key"))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::OrganizationName, "doudi");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        params.serial_number = Some(random_serial()?);
        let (not_before, not_after) = validity(CA_VALIDITY_DAYS);
        params.not_before = not_before;
        params.not_after = not_after;
        let cert = params.self_signed(&key).map_err(rcgen_err("CA certificate"))?;
        // One code path for generated and loaded CAs: the issuer is always rebuilt from the
        // certificate, which is what `revoke` will do later from the files.
        Ca::load(&cert.pem(), &key.serialize_pem())
    }

    /// Loads a CA from its certificate and private key (both PEM).
    ///
    /// # Errors
    /// [`CertsError::Invalid`] when the PEM holds no certificate or key, the certificate is not a CA
    /// certificate, its subject uses an unsupported string type, or the key does not belong to it.
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Ca, CertsError> {
        Ca::load_named(cert_pem, key_pem, "CA certificate", "CA key")
    }

    /// Loads a CA from two PEM files (typically `ca.pem` and `ca.key`); errors name the file.
    ///
    /// # Errors
    /// [`CertsError::Io`] when a file cannot be read, otherwise as [`Ca::load`].
    pub fn load_files(cert_path: &Path, key_path: &Path) -> Result<Ca, CertsError> {
        let cert_pem = read_to_string(cert_path)?;
        let key_pem = read_to_string(key_path)?;
        Ca::load_named(&cert_pem, &key_pem, &cert_path.display().to_string(), &key_path.display().to_string())
    }

    fn load_named(cert_pem: &str, key_pem: &str, cert_what: &str, key_what: &str) -> Result<Ca, CertsError> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| invalid(key_what, e))?;
        let der = first_cert_der(cert_pem.as_bytes(), cert_what)?;
        let (_, x509) = X509Certificate::from_der(der.as_ref())
            .map_err(|e| invalid(cert_what, format!("not an X.509 certificate: {e}")))?;
        if !x509.is_ca() {
            return Err(invalid(cert_what, "not a CA certificate (basicConstraints cA is not set)"));
        }
        if x509.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(invalid(key_what, format!("does not belong to the certificate in {cert_what}")));
        }
        let distinguished_name = dn_from_x509(x509.subject(), cert_what)?;
        let key_usages = match x509.key_usage() {
            Ok(Some(ku)) => key_usages_from_x509(ku.value),
            Ok(None) => Vec::new(),
            Err(e) => return Err(invalid(cert_what, format!("bad keyUsage extension: {e}"))),
        };
        let key_id_method = x509
            .iter_extensions()
            .find_map(|ext| match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => Some(KeyIdMethod::PreSpecified(id.0.to_vec())),
                _ => None,
            })
            .unwrap_or(KeyIdMethod::Sha256);
        let subject_der = x509.subject().as_raw().to_vec();

        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name;
        params.key_usages = key_usages;
        params.key_identifier_method = key_id_method.clone();
        Ok(Ca {
            cert_pem: cert_pem.to_owned(),
            key_pem: key.serialize_pem(),
            subject_der,
            key_id_method,
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key, PKCS#8 PEM. Keep secret.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Issues a server certificate (serverAuth) for the given names: each entry that parses as an
    /// IP address (v4 or v6) becomes an IP SAN, every other entry a DNS SAN. The common name is the
    /// first entry. Valid from one day ago for [`LEAF_VALIDITY_DAYS`].
    ///
    /// # Errors
    /// [`CertsError::Invalid`] for an empty list or a name that is neither an IP address nor a
    /// valid DNS name; [`CertsError::Rcgen`] if signing fails.
    pub fn issue_server(&self, dns_and_ips: &[&str]) -> Result<Issued, CertsError> {
        let Some(first) = dns_and_ips.first() else {
            return Err(invalid("server names", "at least one DNS name or IP address is needed"));
        };
        let mut sans = Vec::with_capacity(dns_and_ips.len());
        for name in dns_and_ips {
            sans.push(match name.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => {
                    rustls::pki_types::DnsName::try_from(*name).map_err(|_| {
                        invalid(format!("server name {name:?}"), "neither an IP address nor a DNS name")
                    })?;
                    SanType::DnsName(
                        Ia5String::try_from(*name).map_err(|e| invalid(format!("server name {name:?}"), e))?,
                    )
                }
            });
        }
        let mut params = Self::leaf_params(first)?;
        params.subject_alt_names = sans;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(&params, "server certificate")
    }

    /// Issues an agency's client certificate (clientAuth) with the URI SAN given by [`spiffe_id`]
    /// and common name `<agency>` or `<agency>-<county>`. Valid from one day ago for
    /// [`LEAF_VALIDITY_DAYS`].
    ///
    /// The agency need not be one of [`AGENCIES`] (tests mint certificates for unknown agencies to
    /// check that the hub refuses them); it must only be a well-formed code.
    ///
    /// # Errors
    /// [`CertsError::Invalid`] for a malformed trust domain, agency code or county code (see
    /// [`spiffe_id`]); [`CertsError::Rcgen`] if signing fails.
    pub fn issue_client(&self, trust_domain: &str, agency: &str, county: Option<&str>) -> Result<Issued, CertsError> {
        let uri = spiffe_id(trust_domain, agency, county)?;
        let cn = match county {
            Some(county) => format!("{agency}-{county}"),
            None => agency.to_owned(),
        };
        self.issue_client_with_uris(&cn, &[&uri])
    }

    /// Issues an operator's client certificate (clientAuth, docs/admin.md) with the URI SAN
    /// `spiffe://<trust_domain>/operator/<role>/<name>` and common name `operator <name> (<role>)`. Valid from one day
    /// ago for [`LEAF_VALIDITY_DAYS`].
    ///
    /// # Errors
    /// [`CertsError::Invalid`] for a malformed trust domain or name (`^[a-z0-9][a-z0-9_-]{0,39}$`);
    /// [`CertsError::Rcgen`] if signing fails.
    pub fn issue_operator(
        &self,
        trust_domain: &str,
        role: crate::domain::admin::Role,
        name: &str,
    ) -> Result<Issued, CertsError> {
        spiffe_id(trust_domain, AGENCIES[0], None)?;
        let id = crate::domain::admin::OperatorId::new(trust_domain, role, name)
            .map_err(|e| invalid(format!("operator name {name:?}"), e))?;
        self.issue_client_with_uris(&format!("operator {name} ({role})"), &[&id.spiffe_id])
    }

    /// Issues a client certificate (clientAuth) with the given common name and URI SANs, without
    /// checking them: for tests that need a certificate chaining to the CA but carrying no SPIFFE
    /// ID, a foreign trust domain or a malformed path.
    ///
    /// # Errors
    /// [`CertsError::Invalid`] for a URI that is not ASCII; [`CertsError::Rcgen`] if signing fails.
    pub fn issue_client_with_uris(&self, common_name: &str, uris: &[&str]) -> Result<Issued, CertsError> {
        let mut params = Self::leaf_params(common_name)?;
        params.subject_alt_names = uris
            .iter()
            .map(|uri| Ia5String::try_from(*uri).map(SanType::URI).map_err(|e| invalid(format!("URI SAN {uri:?}"), e)))
            .collect::<Result<_, _>>()?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(&params, "client certificate")
    }

    /// Issues the hub's audit signer (`crate::security::audit_head`): an ECDSA P-256 key with a certificate whose URI SAN is
    /// `spiffe://<trust_domain>/hub/audit-signer`, common name `doudi audit signer`, key usages digitalSignature and
    /// contentCommitment (non-repudiation), no extended key usage. Its SPIFFE ID names no agency, so the hub refuses
    /// it as a client certificate (UNAUTHENTICATED). Valid from one day ago for [`CA_VALIDITY_DAYS`]: signed heads
    /// are kept for years, and a verifier checks the certificate's validity at the signing time.
    ///
    /// # Errors
    /// [`CertsError::Invalid`] for a malformed trust domain; [`CertsError::Rcgen`] if signing fails.
    pub fn issue_audit_signer(&self, trust_domain: &str) -> Result<Issued, CertsError> {
        spiffe_id(trust_domain, AGENCIES[0], None)?;
        let uri = crate::security::audit_head::signer_spiffe_id(trust_domain);
        let mut params = Self::leaf_params("doudi audit signer")?;
        params.subject_alt_names =
            vec![SanType::URI(Ia5String::try_from(uri.as_str()).map_err(|e| invalid(format!("URI SAN {uri:?}"), e))?)];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::ContentCommitment];
        let (not_before, not_after) = validity(CA_VALIDITY_DAYS);
        params.not_before = not_before;
        params.not_after = not_after;
        self.sign(&params, "audit signer certificate")
    }

    /// A CRL signed by this CA listing `revoked_serials`, with `thisUpdate` now and `nextUpdate` at
    /// `next_update`; the CRL number is the current Unix time in milliseconds, so later CRLs have
    /// larger numbers. PEM (`X509 CRL`), as `crate::server::tls` reads it.
    ///
    /// # Errors
    /// [`CertsError::Rcgen`] if `next_update` is not after now or signing fails.
    pub fn crl_pem(&self, revoked_serials: &[SerialNumber], next_update: SystemTime) -> Result<String, CertsError> {
        self.crl_pem_dated(revoked_serials, SystemTime::now(), next_update)
    }

    /// As [`Ca::crl_pem`] with `thisUpdate` at `this_update` (and the revocation times too): lets a test or a
    /// drill make a CRL already past its `nextUpdate` (a stale CRL, refused by `crl_stale = "refuse"`).
    ///
    /// # Errors
    /// [`CertsError::Rcgen`] if `next_update` is not after `this_update` or signing fails.
    pub fn crl_pem_dated(
        &self,
        revoked_serials: &[SerialNumber],
        this_update: SystemTime,
        next_update: SystemTime,
    ) -> Result<String, CertsError> {
        let now = OffsetDateTime::from(this_update);
        let now_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let params = CertificateRevocationListParams {
            this_update: now,
            next_update: OffsetDateTime::from(next_update),
            crl_number: SerialNumber::from_slice(&now_ms.to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs: revoked_serials
                .iter()
                .map(|serial| RevokedCertParams {
                    serial_number: serial.clone(),
                    revocation_time: now,
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: self.key_id_method.clone(),
        };
        params.signed_by(&self.issuer).map_err(rcgen_err("CRL"))?.pem().map_err(rcgen_err("CRL"))
    }

    /// The serial number of `cert_pem` (first certificate in it), after checking that this CA issued
    /// it (by issuer name). `what` names the input in errors.
    fn serial_of_issued(&self, cert_pem: &[u8], what: &str) -> Result<SerialNumber, CertsError> {
        let der = first_cert_der(cert_pem, what)?;
        let (_, x509) = X509Certificate::from_der(der.as_ref())
            .map_err(|e| invalid(what, format!("not an X.509 certificate: {e}")))?;
        if x509.issuer().as_raw() != self.subject_der.as_slice() {
            return Err(invalid(what, format!("was not issued by this CA (issuer is {})", x509.issuer())));
        }
        Ok(SerialNumber::from_slice(strip_leading_zeros(x509.raw_serial())))
    }

    fn leaf_params(common_name: &str) -> Result<CertificateParams, CertsError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::OrganizationName, "doudi");
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial()?);
        let (not_before, not_after) = validity(LEAF_VALIDITY_DAYS);
        params.not_before = not_before;
        params.not_after = not_after;
        Ok(params)
    }

    fn sign(&self, params: &CertificateParams, what: &str) -> Result<Issued, CertsError> {
        let key = KeyPair::generate().map_err(rcgen_err(format!("{what} key")))?;
        let cert = params.signed_by(&key, &self.issuer).map_err(rcgen_err(what))?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial: params.serial_number.clone().unwrap_or_else(|| SerialNumber::from_slice(&[])),
        })
    }
}

/// The SPIFFE ID of an agency (or county office): `spiffe://<trust_domain>/agency/<agency>` or
/// `spiffe://<trust_domain>/agency/<agency>/division/<county>` (docs/spec/security.md).
///
/// # Errors
/// [`CertsError::Invalid`] unless the trust domain is non-empty and made of `a-z 0-9 . - _`, the
/// agency code is non-empty and made of `a-z 0-9 _`, and the county code is exactly six ASCII digits.
pub fn spiffe_id(trust_domain: &str, agency: &str, county: Option<&str>) -> Result<String, CertsError> {
    let td_ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_');
    if trust_domain.is_empty() || !trust_domain.chars().all(td_ok) {
        return Err(invalid(
            format!("trust domain {trust_domain:?}"),
            "must be non-empty and use only lowercase letters, digits, '.', '-' and '_'",
        ));
    }
    let agency_ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    if agency.is_empty() || !agency.chars().all(agency_ok) {
        return Err(invalid(
            format!("agency code {agency:?}"),
            "must be non-empty and use only lowercase letters, digits and '_'",
        ));
    }
    match county {
        None => Ok(format!("spiffe://{trust_domain}/agency/{agency}")),
        Some(county) if county.len() == 6 && county.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(format!("spiffe://{trust_domain}/agency/{agency}/division/{county}"))
        }
        Some(county) => Err(invalid(format!("county code {county:?}"), "must be exactly six digits (GB/T 2260)")),
    }
}

/// What [`init`] wrote.
#[derive(Debug, Clone)]
pub struct InitReport {
    /// The output directory.
    pub dir: PathBuf,
    /// The trust domain in the client certificates' SPIFFE IDs.
    pub trust_domain: String,
    /// Every file written, in the order written.
    pub files: Vec<PathBuf>,
    /// Serial (lowercase hex) of `revoked.pem`, the certificate listed in `ca.crl`.
    pub revoked_serial: String,
}

/// Writes a demo PKI into `out` (created if missing):
///
/// - `ca.pem`, `ca.key` — a new CA;
/// - `server.pem`, `server.key` — serverAuth for `localhost`, `127.0.0.1`, `::1`;
/// - `<agency>.pem`, `<agency>.key` for each of [`AGENCIES`];
/// - `civil_affairs-621022.pem/.key` — the county office of 环县
///   (`…/agency/civil_affairs/division/621022`);
/// - `operator-<name>.pem/.key` for each of [`OPERATORS`] (`…/operator/<role>/<name>`, docs/admin.md);
/// - `revoked.pem/.key` — a `civil_affairs` certificate listed in the CRL;
/// - `ca.crl` — PEM CRL listing the revoked serial, next update in [`CRL_VALIDITY_DAYS`];
/// - `revoked-serials.txt` — that serial in hex, for [`revoke`] / [`rebuild_crl`];
/// - `audit-signing.pem`, `audit-signing.key` — the hub's audit signer ([`Ca::issue_audit_signer`]).
///
/// Key files are written with mode 0600 on Unix.
///
/// # Errors
/// [`CertsError::WouldOverwrite`] if `out/ca.key` exists and `force` is false; [`CertsError::Invalid`]
/// for a malformed trust domain; [`CertsError::Io`] naming the file that could not be written.
pub fn init(out: &Path, trust_domain: &str, force: bool) -> Result<InitReport, CertsError> {
    spiffe_id(trust_domain, AGENCIES[0], None)?;
    let ca_key_path = out.join(files::CA_KEY);
    if !force && ca_key_path.exists() {
        return Err(CertsError::WouldOverwrite(ca_key_path));
    }
    fs::create_dir_all(out).map_err(|source| CertsError::Io { path: out.to_path_buf(), source })?;

    let mut written = Vec::new();
    let mut write = |name: &str, contents: &str, secret: bool| -> Result<(), CertsError> {
        let path = out.join(name);
        write_file(&path, contents.as_bytes(), secret)?;
        written.push(path);
        Ok(())
    };

    let ca = Ca::generate("doudi demo CA")?;
    write(files::CA_CERT, ca.cert_pem(), false)?;
    write(files::CA_KEY, ca.key_pem(), true)?;

    let server = ca.issue_server(&["localhost", "127.0.0.1", "::1"])?;
    write(files::SERVER_CERT, &server.cert_pem, false)?;
    write(files::SERVER_KEY, &server.key_pem, true)?;

    let mut write_pair = |base: &str, issued: &Issued| -> Result<(), CertsError> {
        write(&format!("{base}.pem"), &issued.cert_pem, false)?;
        write(&format!("{base}.key"), &issued.key_pem, true)
    };
    for agency in AGENCIES {
        write_pair(agency, &ca.issue_client(trust_domain, agency, None)?)?;
    }
    write_pair(
        &format!("civil_affairs-{DEMO_COUNTY}"),
        &ca.issue_client(trust_domain, "civil_affairs", Some(DEMO_COUNTY))?,
    )?;
    for (role, name) in OPERATORS {
        write_pair(&operator_file_base(name), &ca.issue_operator(trust_domain, role, name)?)?;
    }
    let revoked = ca.issue_client(trust_domain, "civil_affairs", None)?;
    write_pair(files::REVOKED_BASE, &revoked)?;

    let serials = vec![revoked.serial.clone()];
    write(files::REVOKED_SERIALS, &serials_file_text(&serials), false)?;
    write(files::CRL, &ca.crl_pem(&serials, crl_next_update())?, false)?;
    let signer = ca.issue_audit_signer(trust_domain)?;
    write(files::AUDIT_SIGNER_CERT, &signer.cert_pem, false)?;
    write(files::AUDIT_SIGNER_KEY, &signer.key_pem, true)?;

    Ok(InitReport {
        dir: out.to_path_buf(),
        trust_domain: trust_domain.to_owned(),
        files: written,
        revoked_serial: revoked.serial_hex(),
    })
}

/// Issues the hub's audit signer ([`Ca::issue_audit_signer`]) with the CA in `dir` (`ca.pem`, `ca.key`) and writes
/// `dir/audit-signing.pem` and `dir/audit-signing.key` (mode 0600): for a PKI made before `doudi certs init` wrote
/// them. Returns the certificate's path.
///
/// # Errors
/// [`CertsError::WouldOverwrite`] if `dir/audit-signing.key` exists and `force` is false (heads signed with the old
/// key still verify against the CA, but the hub would sign with the new one); otherwise as [`revoke`].
pub fn add_audit_signer(dir: &Path, trust_domain: &str, force: bool) -> Result<PathBuf, CertsError> {
    let key_path = dir.join(files::AUDIT_SIGNER_KEY);
    if !force && key_path.exists() {
        return Err(CertsError::SignerExists(key_path));
    }
    let ca = Ca::load_files(&dir.join(files::CA_CERT), &dir.join(files::CA_KEY))?;
    let signer = ca.issue_audit_signer(trust_domain)?;
    let cert_path = dir.join(files::AUDIT_SIGNER_CERT);
    write_file(&cert_path, signer.cert_pem.as_bytes(), false)?;
    write_file(&key_path, signer.key_pem.as_bytes(), true)?;
    Ok(cert_path)
}

/// Issues operator `name` with `role` ([`Ca::issue_operator`]) with the CA in `dir` and writes
/// `dir/operator-<name>.pem` and `.key` (mode 0600): a second security administrator, or a replacement. Returns the
/// certificate's path.
///
/// # Errors
/// [`CertsError::Invalid`] when `dir/operator-<name>.pem` exists (names are unique across roles: revoke the old
/// certificate and choose another name), or for a malformed name; otherwise as [`revoke`].
pub fn add_operator(
    dir: &Path,
    trust_domain: &str,
    role: crate::domain::admin::Role,
    name: &str,
) -> Result<PathBuf, CertsError> {
    let base = operator_file_base(name);
    let cert_path = dir.join(format!("{base}.pem"));
    if cert_path.exists() {
        return Err(invalid(
            cert_path.display().to_string(),
            "already exists: operator names are unique; revoke that certificate and issue under another name",
        ));
    }
    let ca = Ca::load_files(&dir.join(files::CA_CERT), &dir.join(files::CA_KEY))?;
    let issued = ca.issue_operator(trust_domain, role, name)?;
    write_file(&cert_path, issued.cert_pem.as_bytes(), false)?;
    write_file(&dir.join(format!("{base}.key")), issued.key_pem.as_bytes(), true)?;
    Ok(cert_path)
}

/// Issues the client certificate of `agency` (or of its county office `county`) with the CA in `dir` (`ca.pem`,
/// `ca.key`; [`Ca::issue_client`]) and writes `dir/<agency>.pem` and `.key` (`<agency>-<county>` for a county office;
/// key mode 0600): an agency that joined after `doudi certs init` made the PKI (docs/operations.md §5), such as
/// `development_reform` (issue 18) in a directory made before it. Returns the certificate's path. The access matrix
/// must know the agency for the hub to accept it.
///
/// # Errors
/// [`CertsError::Invalid`] when the certificate file exists (revoke it and issue a replacement under a new file
/// name, or remove it first) or for a malformed agency or county code ([`spiffe_id`]); otherwise as [`revoke`].
pub fn add_agency(dir: &Path, trust_domain: &str, agency: &str, county: Option<&str>) -> Result<PathBuf, CertsError> {
    spiffe_id(trust_domain, agency, county)?;
    let base = match county {
        Some(c) => format!("{agency}-{c}"),
        None => agency.to_owned(),
    };
    let cert_path = dir.join(format!("{base}.pem"));
    if cert_path.exists() {
        return Err(invalid(cert_path.display().to_string(), "already exists: not overwritten"));
    }
    let ca = Ca::load_files(&dir.join(files::CA_CERT), &dir.join(files::CA_KEY))?;
    let issued = ca.issue_client(trust_domain, agency, county)?;
    write_file(&cert_path, issued.cert_pem.as_bytes(), false)?;
    write_file(&dir.join(format!("{base}.key")), issued.key_pem.as_bytes(), true)?;
    Ok(cert_path)
}

/// What [`revoke_pem`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// The certificate's serial, lowercase hex (the `revoked-serials.txt` form).
    pub serial_hex: String,
    /// False when the serial was listed already (the CRL is rewritten all the same).
    pub newly_revoked: bool,
    /// Serials the CRL lists now.
    pub revoked_count: usize,
}

/// Revokes the certificate `cert_pem` (its first CERTIFICATE block): checks that the CA in `dir/ca.pem` issued it,
/// appends its serial to `dir/revoked-serials.txt` (once) and rewrites `dir/ca.crl` signed with `dir/ca.key`.
/// `what` names the certificate in errors.
///
/// # Errors
/// As [`revoke`].
pub fn revoke_pem(dir: &Path, cert_pem: &[u8], what: &str) -> Result<Revocation, CertsError> {
    let ca = Ca::load_files(&dir.join(files::CA_CERT), &dir.join(files::CA_KEY))?;
    let serial = ca.serial_of_issued(cert_pem, what)?;
    let serials_path = dir.join(files::REVOKED_SERIALS);
    let mut serials = read_serials(&serials_path)?;
    let serial_hex = to_hex(&serial.to_bytes());
    let newly_revoked = !serials.contains(&serial);
    if newly_revoked {
        serials.push(serial.clone());
        write_file(&serials_path, serials_file_text(&serials).as_bytes(), false)?;
        tracing::info!(cert = %what, serial = %serial_hex, "revoked");
    } else {
        tracing::info!(cert = %what, serial = %serial_hex, "already revoked; rewriting the CRL");
    }
    write_file(&dir.join(files::CRL), ca.crl_pem(&serials, crl_next_update())?.as_bytes(), false)?;
    Ok(Revocation { serial_hex, newly_revoked, revoked_count: serials.len() })
}

/// Revokes the certificate `dir/<cert_file_name>` (an absolute path is used as is): checks that the
/// CA in `dir/ca.pem` issued it, appends its serial to `dir/revoked-serials.txt` (once) and rewrites
/// `dir/ca.crl` signed with `dir/ca.key`. A running server picks the CRL up on its next reload.
///
/// # Errors
/// [`CertsError::Io`] naming the file that could not be read or written; [`CertsError::Invalid`] if
/// the certificate is unreadable or was issued by another CA, or the serial list is malformed.
pub fn revoke(dir: &Path, cert_file_name: &str) -> Result<(), CertsError> {
    let cert_path = dir.join(cert_file_name);
    let cert_pem = fs::read(&cert_path).map_err(|source| CertsError::Io { path: cert_path.clone(), source })?;
    revoke_pem(dir, &cert_pem, &cert_path.display().to_string()).map(|_| ())
}

/// Rewrites `dir/ca.crl` from `dir/revoked-serials.txt` (a missing list means an empty CRL), signed
/// with `dir/ca.key`, with a fresh `nextUpdate`. Returns how many serials the CRL lists.
///
/// # Errors
/// As [`revoke`].
pub fn rebuild_crl(dir: &Path) -> Result<usize, CertsError> {
    let ca = Ca::load_files(&dir.join(files::CA_CERT), &dir.join(files::CA_KEY))?;
    let serials = read_serials(&dir.join(files::REVOKED_SERIALS))?;
    write_file(&dir.join(files::CRL), ca.crl_pem(&serials, crl_next_update())?.as_bytes(), false)?;
    Ok(serials.len())
}

/// Serial number of the first certificate in a PEM file, lowercase hex without separators and
/// without leading zero bytes (the `revoked-serials.txt` form).
///
/// # Errors
/// [`CertsError::Io`] or [`CertsError::Invalid`] naming the file.
pub fn cert_file_serial_hex(path: &Path) -> Result<String, CertsError> {
    let pem = fs::read(path).map_err(|source| CertsError::Io { path: path.to_path_buf(), source })?;
    let what = path.display().to_string();
    let der = first_cert_der(&pem, &what)?;
    let (_, x509) = X509Certificate::from_der(der.as_ref())
        .map_err(|e| invalid(&what, format!("not an X.509 certificate: {e}")))?;
    Ok(to_hex(strip_leading_zeros(x509.raw_serial())))
}

// ---------------------------------------------------------------------------------------------
// helpers

fn crl_next_update() -> SystemTime {
    SystemTime::now() + std::time::Duration::from_secs(CRL_VALIDITY_DAYS as u64 * 86_400)
}

/// `(now - 1 day, now + days)`.
fn validity(days: i64) -> (OffsetDateTime, OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    (now - time::Duration::days(1), now + time::Duration::days(days))
}

/// 16 random bytes from the ring provider's CSPRNG; first byte forced into 0x40..=0x7f so the
/// integer is positive, has no leading zero byte and encodes in exactly 16 bytes.
fn random_serial() -> Result<SerialNumber, CertsError> {
    let mut bytes = [0u8; 16];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| invalid("serial number", "the system random number generator failed"))?;
    bytes[0] = (bytes[0] & 0x3f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len().saturating_sub(1));
    &bytes[first..]
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.is_empty() || !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok())).collect()
}

fn serials_file_text(serials: &[SerialNumber]) -> String {
    serials.iter().map(|s| format!("{}\n", to_hex(&s.to_bytes()))).collect()
}

/// Reads `revoked-serials.txt`: hex serials (colons allowed), one per line; blank lines and lines
/// starting with `#` are skipped. A missing file is an empty list.
fn read_serials(path: &Path) -> Result<Vec<SerialNumber>, CertsError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CertsError::Io { path: path.to_path_buf(), source });
        }
    };
    let mut serials: Vec<SerialNumber> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bytes = from_hex(&line.replace(':', "")).ok_or_else(|| {
            invalid(format!("{} line {}", path.display(), n + 1), format!("{line:?} is not a hex serial number"))
        })?;
        let serial = SerialNumber::from_slice(strip_leading_zeros(&bytes));
        if !serials.contains(&serial) {
            serials.push(serial);
        }
    }
    Ok(serials)
}

fn read_to_string(path: &Path) -> Result<String, CertsError> {
    fs::read_to_string(path).map_err(|source| CertsError::Io { path: path.to_path_buf(), source })
}

/// Writes `contents` to `path`, replacing it; with `secret`, the file is mode 0600 on Unix (also
/// when it already existed with wider permissions).
fn write_file(path: &Path, contents: &[u8], secret: bool) -> Result<(), CertsError> {
    let io_err = |source| CertsError::Io { path: path.to_path_buf(), source };
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(0o600);
        // Narrow an existing file before new key material goes into it.
        if path.exists() {
            fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io_err)?;
        }
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(io_err)?;
    file.write_all(contents).map_err(io_err)?;
    file.sync_all().map_err(io_err)
}

fn first_cert_der(pem: &[u8], what: &str) -> Result<CertificateDer<'static>, CertsError> {
    match CertificateDer::pem_slice_iter(pem).next() {
        Some(Ok(der)) => Ok(der),
        Some(Err(e)) => Err(invalid(what, format!("bad PEM: {e}"))),
        None => Err(invalid(what, "no CERTIFICATE block found")),
    }
}

/// Rebuilds an rcgen name from a parsed one, keeping each attribute's string type so that the
/// encoding (and so the issuer name in issued certificates) is byte-for-byte the same.
fn dn_from_x509(name: &X509Name<'_>, what: &str) -> Result<DistinguishedName, CertsError> {
    let mut dn = DistinguishedName::new();
    for rdn in name.iter() {
        let mut attrs = rdn.iter();
        let (Some(attr), None) = (attrs.next(), attrs.next()) else {
            return Err(invalid(what, "subject has an empty or multi-valued RDN, which is not supported"));
        };
        let oid: Vec<u64> =
            attr.attr_type().iter().ok_or_else(|| invalid(what, "subject attribute OID too large"))?.collect();
        let data = attr.attr_value().data;
        let text = || std::str::from_utf8(data).map_err(|_| invalid(what, "subject attribute is not valid text"));
        let bad = |e: rcgen::Error| invalid(what, format!("subject attribute: {e}"));
        let value = match attr.attr_value().header.tag() {
            Tag::Utf8String => DnValue::Utf8String(text()?.to_owned()),
            Tag::PrintableString => DnValue::PrintableString(PrintableString::try_from(text()?).map_err(bad)?),
            Tag::Ia5String => DnValue::Ia5String(Ia5String::try_from(text()?).map_err(bad)?),
            Tag::T61String => DnValue::TeletexString(TeletexString::try_from(text()?).map_err(bad)?),
            Tag::BmpString => DnValue::BmpString(BmpString::from_utf16be(data.to_vec()).map_err(bad)?),
            Tag::UniversalString => {
                DnValue::UniversalString(UniversalString::from_utf32be(data.to_vec()).map_err(bad)?)
            }
            other => {
                return Err(invalid(what, format!("subject attribute has unsupported type {other}")));
            }
        };
        dn.push(DnType::from_oid(&oid), value);
    }
    Ok(dn)
}

fn key_usages_from_x509(ku: &x509_parser::extensions::KeyUsage) -> Vec<KeyUsagePurpose> {
    let table = [
        (ku.digital_signature(), KeyUsagePurpose::DigitalSignature),
        (ku.non_repudiation(), KeyUsagePurpose::ContentCommitment),
        (ku.key_encipherment(), KeyUsagePurpose::KeyEncipherment),
        (ku.data_encipherment(), KeyUsagePurpose::DataEncipherment),
        (ku.key_agreement(), KeyUsagePurpose::KeyAgreement),
        (ku.key_cert_sign(), KeyUsagePurpose::KeyCertSign),
        (ku.crl_sign(), KeyUsagePurpose::CrlSign),
        (ku.encipher_only(), KeyUsagePurpose::EncipherOnly),
        (ku.decipher_only(), KeyUsagePurpose::DecipherOnly),
    ];
    table.into_iter().filter_map(|(set, purpose)| set.then_some(purpose)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::extensions::GeneralName;

    fn parse(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).expect("PEM certificate")
    }

    fn uris(der: &CertificateDer<'_>) -> Vec<String> {
        let (_, x509) = X509Certificate::from_der(der.as_ref()).unwrap();
        x509.subject_alternative_name()
            .unwrap()
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
            .unwrap_or_default()
    }

    #[test]
    fn init_issues_one_operator_per_role_and_a_second_security_administrator() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path(), "td.test", false).unwrap();
        let uri_of = |base: &str| uris(&parse(&fs::read_to_string(dir.path().join(format!("{base}.pem"))).unwrap()));
        assert_eq!(uri_of("operator-system-admin"), vec!["spiffe://td.test/operator/system/system-admin"]);
        assert_eq!(uri_of("operator-security-admin"), vec!["spiffe://td.test/operator/security/security-admin"]);
        assert_eq!(uri_of("operator-security-admin-2"), vec!["spiffe://td.test/operator/security/security-admin-2"]);
        assert_eq!(uri_of("operator-audit-admin"), vec!["spiffe://td.test/operator/audit/audit-admin"]);
        // A further operator, issued later with the same CA; a taken name is refused.
        let bob = add_operator(dir.path(), "td.test", crate::domain::admin::Role::Security, "bob").unwrap();
        assert_eq!(uris(&parse(&fs::read_to_string(&bob).unwrap())), vec!["spiffe://td.test/operator/security/bob"]);
        assert!(add_operator(dir.path(), "td.test", crate::domain::admin::Role::Audit, "bob").is_err());
        assert!(add_operator(dir.path(), "td.test", crate::domain::admin::Role::Audit, "Bob!").is_err());
    }

    /// An agency added to an existing PKI (how certs-example got development_reform): issued by the same CA, with its
    /// SPIFFE ID; the other files untouched; an existing file or a malformed code refused.
    #[test]
    fn add_agency_issues_one_more_client_certificate_with_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path(), "td.test", false).unwrap();
        fs::remove_file(dir.path().join("development_reform.pem")).unwrap();
        fs::remove_file(dir.path().join("development_reform.key")).unwrap();
        let ca_before = fs::read(dir.path().join("ca.pem")).unwrap();
        let crl_before = fs::read(dir.path().join("ca.crl")).unwrap();
        let cert = add_agency(dir.path(), "td.test", "development_reform", None).unwrap();
        assert_eq!(cert, dir.path().join("development_reform.pem"));
        let pem = fs::read_to_string(&cert).unwrap();
        assert_eq!(uris(&parse(&pem)), vec!["spiffe://td.test/agency/development_reform"]);
        // A client certificate of this CA, as the hub's verifier checks it at the handshake.
        let mut roots = rustls::RootCertStore::empty();
        roots.add(parse(&String::from_utf8(ca_before.clone()).unwrap())).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            std::sync::Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        verifier.verify_client_cert(&parse(&pem), &[], rustls::pki_types::UnixTime::now()).unwrap();
        assert!(dir.path().join("development_reform.key").exists());
        assert_eq!(fs::read(dir.path().join("ca.pem")).unwrap(), ca_before);
        assert_eq!(fs::read(dir.path().join("ca.crl")).unwrap(), crl_before);
        let county = add_agency(dir.path(), "td.test", "education", Some("621022")).unwrap();
        assert_eq!(
            uris(&parse(&fs::read_to_string(county).unwrap())),
            vec!["spiffe://td.test/agency/education/division/621022"]
        );
        assert!(add_agency(dir.path(), "td.test", "development_reform", None).is_err(), "never overwritten");
        assert!(add_agency(dir.path(), "td.test", "Bad-Code", None).is_err());
        assert!(add_agency(dir.path(), "td.test", "education", Some("6210")).is_err());
    }

    #[test]
    fn init_writes_every_file_and_they_parse() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("pki");
        let report = init(&out, DEFAULT_TRUST_DOMAIN, false).unwrap();

        let mut expected: Vec<String> =
            ["ca.pem", "ca.key", "server.pem", "server.key"].iter().map(|s| s.to_string()).collect();
        for base in AGENCIES
            .iter()
            .map(|a| a.to_string())
            .chain(["civil_affairs-621022".to_string()])
            .chain(OPERATORS.iter().map(|(_, n)| operator_file_base(n)))
            .chain(["revoked".to_string()])
        {
            expected.push(format!("{base}.pem"));
            expected.push(format!("{base}.key"));
        }
        expected.push("revoked-serials.txt".into());
        expected.push("ca.crl".into());
        expected.push("audit-signing.pem".into());
        expected.push("audit-signing.key".into());
        assert_eq!(report.files.len(), expected.len());
        for name in &expected {
            let path = out.join(name);
            assert!(path.is_file(), "{name} missing");
            assert!(report.files.contains(&path), "{name} not reported");
            let text = fs::read_to_string(&path).unwrap();
            if name.ends_with(".pem") {
                let der = parse(&text);
                X509Certificate::from_der(der.as_ref()).expect(name);
            } else if name.ends_with(".key") {
                KeyPair::from_pem(&text).expect(name);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt as _;
                    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                    assert_eq!(mode, 0o600, "{name} mode {mode:o}");
                }
            }
        }

        // The CA loads back from its files.
        Ca::load_files(&out.join("ca.pem"), &out.join("ca.key")).unwrap();

        // The CRL parses and lists exactly the revoked certificate's serial.
        let crl_pem = fs::read(out.join("ca.crl")).unwrap();
        let crl_der = rustls::pki_types::CertificateRevocationListDer::from_pem_slice(&crl_pem).unwrap();
        let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(crl_der.as_ref()).unwrap();
        let listed: Vec<String> =
            crl.iter_revoked_certificates().map(|r| to_hex(strip_leading_zeros(r.raw_serial()))).collect();
        let revoked_serial = cert_file_serial_hex(&out.join("revoked.pem")).unwrap();
        assert_eq!(listed, vec![revoked_serial.clone()]);
        assert_eq!(report.revoked_serial, revoked_serial);
        assert_eq!(fs::read_to_string(out.join("revoked-serials.txt")).unwrap(), format!("{revoked_serial}\n"));

        // Server certificate: DNS localhost, IPs 127.0.0.1 and ::1, serverAuth.
        let server = parse(&fs::read_to_string(out.join("server.pem")).unwrap());
        let (_, x509) = X509Certificate::from_der(server.as_ref()).unwrap();
        let names: Vec<String> = x509
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .map(|g| match g {
                GeneralName::DNSName(d) => format!("dns:{d}"),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => format!("ip:{}", IpAddr::from(<[u8; 4]>::try_from(*b).unwrap())),
                    16 => format!("ip:{}", IpAddr::from(<[u8; 16]>::try_from(*b).unwrap())),
                    _ => panic!("bad IP SAN {b:?}"),
                },
                other => format!("other:{other}"),
            })
            .collect();
        assert_eq!(names, vec!["dns:localhost", "ip:127.0.0.1", "ip:::1"]);
        let eku = x509.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);

        // Every serial differs.
        let mut serials: Vec<String> = expected
            .iter()
            .filter(|n| n.ends_with(".pem"))
            .map(|n| cert_file_serial_hex(&out.join(n)).unwrap())
            .collect();
        let count = serials.len();
        serials.sort();
        serials.dedup();
        assert_eq!(serials.len(), count);
    }

    #[test]
    fn init_refuses_to_replace_a_ca_key_without_force() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path(), DEFAULT_TRUST_DOMAIN, false).unwrap();
        let before = fs::read_to_string(dir.path().join("ca.key")).unwrap();
        let err = init(dir.path(), DEFAULT_TRUST_DOMAIN, false).unwrap_err();
        assert!(matches!(err, CertsError::WouldOverwrite(_)), "{err}");
        assert!(err.to_string().contains("ca.key"), "{err}");
        assert_eq!(fs::read_to_string(dir.path().join("ca.key")).unwrap(), before);
        init(dir.path(), DEFAULT_TRUST_DOMAIN, true).unwrap();
        assert_ne!(fs::read_to_string(dir.path().join("ca.key")).unwrap(), before);
    }

    #[test]
    fn client_certificates_carry_the_exact_spiffe_uri() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path(), "example.test", false).unwrap();
        for agency in AGENCIES {
            let der = parse(&fs::read_to_string(dir.path().join(format!("{agency}.pem"))).unwrap());
            assert_eq!(uris(&der), vec![format!("spiffe://example.test/agency/{agency}")]);
            let (_, x509) = X509Certificate::from_der(der.as_ref()).unwrap();
            let eku = x509.extended_key_usage().unwrap().unwrap().value;
            assert!(eku.client_auth && !eku.server_auth);
            let cn = x509.subject().iter_common_name().next().unwrap().as_str().unwrap();
            assert_eq!(cn, agency);
            assert!(!x509.is_ca());
        }
        let county = parse(&fs::read_to_string(dir.path().join("civil_affairs-621022.pem")).unwrap());
        assert_eq!(uris(&county), vec!["spiffe://example.test/agency/civil_affairs/division/621022".to_string()]);
        let (_, x509) = X509Certificate::from_der(county.as_ref()).unwrap();
        assert_eq!(x509.subject().iter_common_name().next().unwrap().as_str().unwrap(), "civil_affairs-621022");
    }

    #[test]
    fn client_validity_is_one_day_back_and_825_days_ahead() {
        let ca = Ca::generate("test CA").unwrap();
        let issued = ca.issue_client(DEFAULT_TRUST_DOMAIN, "education", None).unwrap();
        let der = parse(&issued.cert_pem);
        let (_, x509) = X509Certificate::from_der(der.as_ref()).unwrap();
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let nb = x509.validity().not_before.timestamp();
        let na = x509.validity().not_after.timestamp();
        // 1 day = 86 400 s; 825 days = 71 280 000 s; allow 60 s for the test's own run time.
        assert!((now - 86_400 - nb).abs() <= 60, "not_before {nb}, now {now}");
        assert!((na - (now + 71_280_000)).abs() <= 60, "not_after {na}, now {now}");
        assert_eq!(to_hex(strip_leading_zeros(x509.raw_serial())), issued.serial_hex());
        assert_eq!(issued.serial.len(), 16);
    }

    #[test]
    fn loaded_ca_issues_certificates_that_chain_to_it() {
        let ca = Ca::generate("loaded CA").unwrap();
        let loaded = Ca::load(ca.cert_pem(), ca.key_pem()).unwrap();
        let issued = loaded.issue_client(DEFAULT_TRUST_DOMAIN, "education", None).unwrap();
        let ca_der = parse(ca.cert_pem());
        let (_, ca_cert) = X509Certificate::from_der(ca_der.as_ref()).unwrap();
        let der = parse(&issued.cert_pem);
        let (_, leaf) = X509Certificate::from_der(der.as_ref()).unwrap();
        assert_eq!(leaf.issuer().as_raw(), ca_cert.subject().as_raw());
        // Authority key identifier equals the CA's subject key identifier.
        let ski = ca_cert
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
                _ => None,
            })
            .unwrap();
        let aki = leaf
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(a) => a.key_identifier.as_ref().map(|k| k.0.to_vec()),
                _ => None,
            })
            .unwrap();
        assert_eq!(aki, ski);
    }

    #[test]
    fn load_refuses_a_key_of_another_ca_and_a_leaf_certificate() {
        let a = Ca::generate("A").unwrap();
        let b = Ca::generate("B").unwrap();
        let err = Ca::load(a.cert_pem(), b.key_pem()).unwrap_err();
        assert!(err.to_string().contains("does not belong"), "{err}");
        let leaf = a.issue_server(&["localhost"]).unwrap();
        let err = Ca::load(&leaf.cert_pem, &leaf.key_pem).unwrap_err();
        assert!(err.to_string().contains("not a CA certificate"), "{err}");
    }

    #[test]
    fn malformed_identities_are_refused() {
        let ca = Ca::generate("test CA").unwrap();
        for (td, agency, county) in [
            ("", "education", None),
            ("Upper.case", "education", None),
            ("a/b", "education", None),
            (DEFAULT_TRUST_DOMAIN, "", None),
            (DEFAULT_TRUST_DOMAIN, "edu/cation", None),
            (DEFAULT_TRUST_DOMAIN, "civil_affairs", Some("62102")),
            (DEFAULT_TRUST_DOMAIN, "civil_affairs", Some("62102x")),
        ] {
            assert!(ca.issue_client(td, agency, county).is_err(), "{td:?} {agency:?} {county:?} accepted");
        }
        assert!(ca.issue_server(&[]).is_err());
        assert!(ca.issue_server(&["not a name"]).is_err());
    }

    #[test]
    fn revoke_appends_the_serial_and_rewrites_the_crl() {
        let dir = tempfile::tempdir().unwrap();
        let report = init(dir.path(), DEFAULT_TRUST_DOMAIN, false).unwrap();
        let edu = cert_file_serial_hex(&dir.path().join("education.pem")).unwrap();
        revoke(dir.path(), "education.pem").unwrap();
        revoke(dir.path(), "education.pem").unwrap(); // idempotent
        assert_eq!(
            fs::read_to_string(dir.path().join("revoked-serials.txt")).unwrap(),
            format!("{}\n{edu}\n", report.revoked_serial)
        );
        let crl_pem = fs::read(dir.path().join("ca.crl")).unwrap();
        let crl_der = rustls::pki_types::CertificateRevocationListDer::from_pem_slice(&crl_pem).unwrap();
        let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(crl_der.as_ref()).unwrap();
        let listed: Vec<String> =
            crl.iter_revoked_certificates().map(|r| to_hex(strip_leading_zeros(r.raw_serial()))).collect();
        assert_eq!(listed, vec![report.revoked_serial.clone(), edu]);
        assert_eq!(rebuild_crl(dir.path()).unwrap(), 2);

        // A certificate from another CA is refused, naming the file.
        let other = Ca::generate("other").unwrap();
        let stranger = other.issue_client(DEFAULT_TRUST_DOMAIN, "education", None).unwrap();
        fs::write(dir.path().join("stranger.pem"), &stranger.cert_pem).unwrap();
        let err = revoke(dir.path(), "stranger.pem").unwrap_err();
        assert!(err.to_string().contains("stranger.pem"), "{err}");
        assert!(err.to_string().contains("not issued by this CA"), "{err}");
        let err = revoke(dir.path(), "missing.pem").unwrap_err();
        assert!(err.to_string().contains("missing.pem"), "{err}");
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(to_hex(&[0x00, 0x7f, 0xab]), "007fab");
        assert_eq!(from_hex("007fab"), Some(vec![0x00, 0x7f, 0xab]));
        assert_eq!(from_hex("0"), None);
        assert_eq!(from_hex("zz"), None);
        assert_eq!(strip_leading_zeros(&[0, 0, 1]), &[1]);
        assert_eq!(strip_leading_zeros(&[0]), &[0]);
    }
}
