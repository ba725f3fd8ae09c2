//! Countersigning a frozen quarter (issue 19 item 2; docs/countersign.md): the message a partner agency signs, and
//! what a verifier reports per agency. Pure: the signing and the certificate checks are in `crate::security::countersign`.
//!
//! The message is the UTF-8 text
//!
//! ```text
//! doudi-snapshot-countersign-v1\n
//! quarter=2023Q2\n
//! content_hash=<64 lowercase hex: the snapshot's content hash, docs/snapshot-format.md>\n
//! agency=<agency code, e.g. education>\n
//! signed_at=<microseconds since the Unix epoch, UTC, decimal>\n
//! ```
//!
//! Every value is of a closed alphabet (`YYYYQn`, hex, `[a-z0-9_]`, an optional `-` and digits), so no value can
//! hold a newline or an `=`, and the text is read back unambiguously. The first line separates the signature from
//! every other message a doudi key signs (an audit head, `doudi-audit-head-v1`).

/// The first line of the message: the format and its version.
pub const FORMAT: &str = "doudi-snapshot-countersign-v1";

/// The signature algorithm, as the export file names it: ECDSA over P-256 with SHA-256, DER-encoded (ASN.1
/// `Ecdsa-Sig-Value`), which `openssl dgst -sha256 -verify` reads.
pub const ALGORITHM: &str = "ecdsa-p256-sha256";

/// The bytes an agency signs for `quarter` (`YYYYQn`), the snapshot's `content_hash`, its `agency` code and the
/// signing time `signed_at_micros` (microseconds since the Unix epoch): see the module docs.
pub fn message(quarter: &str, content_hash: &[u8; 32], agency: &str, signed_at_micros: i64) -> Vec<u8> {
    format!(
        "{FORMAT}\nquarter={quarter}\ncontent_hash={}\nagency={agency}\nsigned_at={signed_at_micros}\n",
        hex::encode(content_hash)
    )
    .into_bytes()
}

/// One partner agency's countersignature of a quarter, as a verifier finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureStatus {
    /// The newest signature verifies over this snapshot's content hash with a certificate the CA issued to the
    /// agency, valid at the signing time.
    Valid,
    /// The agency has not signed.
    Missing,
    /// The newest signature does not verify, or its certificate does not fit; the reason says which.
    Invalid(String),
}

impl SignatureStatus {
    /// `VALID`, `MISSING` or `INVALID`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SignatureStatus::Valid => "VALID",
            SignatureStatus::Missing => "MISSING",
            SignatureStatus::Invalid(_) => "INVALID",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_the_documented_text() {
        // docs/countersign.md, "The message": the worked example there, byte for byte.
        let hash = [0xab; 32];
        let m = message("2023Q2", &hash, "education", 1_701_400_000_000_000);
        let want = "doudi-snapshot-countersign-v1\nquarter=2023Q2\ncontent_hash=abababababababababababababababab\
                    abababababababababababababababab\nagency=education\nsigned_at=1701400000000000\n";
        assert_eq!(String::from_utf8(m).unwrap(), want);
    }
}
