//! A TLCP gateway in front of the hub without losing the agency's identity (issue 20 item 6; SECURITY.md "A TLCP
//! gateway in front of the hub").
//!
//! A gateway that terminates TLCP (SM2 certificates on the wire) and runs mutual TLS to the hub presents its own
//! certificate; the agency's certificate it received comes along in Envoy's `x-forwarded-client-cert` header (XFCC).
//! The hub accepts that header **only** on a connection whose client certificate is a pinned gateway's
//! (`gateway_identities`: a SPIFFE ID of its certificate, or the SHA-256 fingerprint of the certificate), and then:
//!
//! - reads the **last** element of the header (the one the gateway itself appended for the connection it
//!   terminated; earlier elements were written by hops the hub does not know, or by the client itself);
//! - takes the certificate from `Cert` (URL-encoded PEM), with the intermediates of `Chain` when present; `Hash`, when
//!   present, must be the SHA-256 of that certificate;
//! - verifies the chain with the client-certificate verifier of the TLS configuration in force
//!   ([`crate::server::tls::ReloadableServerConfig::verify_forwarded`]): the same CA, CRLs and `crl_stale` policy as a peer
//!   connecting directly, at the time of each request;
//! - derives the caller from the forwarded certificate's SPIFFE ID exactly as for a direct peer
//!   ([`super::auth::Authenticator::principal`]), with the gateway recorded as [`Principal::via`] (the audit
//!   event's `via`).
//!
//! On a gateway connection a request without the header, or with one that does not parse or verify, is
//! UNAUTHENTICATED naming the header and the reason: the gateway itself has no rights. From any other peer the header
//! is ignored (the peer's own certificate is the identity) and counted in
//! `doudi_forwarded_client_cert_ignored_total`.
//!
//! [`Principal::via`]: crate::domain::agency::Principal::via

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use sha2::{Digest as _, Sha256};

use crate::server::tls::{ReloadableServerConfig, peer_spiffe_ids};

/// The header a gateway forwards the client certificate in (Envoy's name, lower case as in HTTP/2).
pub const XFCC_HEADER: &str = "x-forwarded-client-cert";

/// One entry of `gateway_identities`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayPin {
    /// A SPIFFE ID the gateway's certificate carries (any certificate of the hub's CA with it).
    Spiffe(String),
    /// The SHA-256 of the gateway's certificate (DER): exactly that certificate.
    Sha256([u8; 32]),
}

impl GatewayPin {
    /// `spiffe://…` or `sha256:<64 hex digits>` (colons between bytes allowed, either case).
    ///
    /// # Errors
    /// A message saying which forms are accepted.
    pub fn parse(s: &str) -> Result<GatewayPin, String> {
        let s = s.trim();
        if s.starts_with("spiffe://") && s.len() > "spiffe://".len() {
            return Ok(GatewayPin::Spiffe(s.to_owned()));
        }
        if let Some(hex_digits) = s.strip_prefix("sha256:") {
            let digits: String = hex_digits.chars().filter(|c| *c != ':').collect();
            if let Ok(bytes) = hex::decode(&digits)
                && let Ok(fp) = <[u8; 32]>::try_from(bytes)
            {
                return Ok(GatewayPin::Sha256(fp));
            }
        }
        Err(format!("{s:?} is neither a SPIFFE ID (spiffe://…) nor a certificate fingerprint (sha256:<64 hex digits>)"))
    }
}

/// The pinned gateways and the verifier for what they forward.
#[derive(Clone)]
pub struct Gateways {
    pins: Vec<GatewayPin>,
    tls: ReloadableServerConfig,
}

impl std::fmt::Debug for Gateways {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateways").field("pins", &self.pins).finish_non_exhaustive()
    }
}

impl Gateways {
    /// `pins` (from `gateway_identities`), checking forwarded certificates with `tls`'s verifier (built by
    /// [`ReloadableServerConfig::from_files`]).
    pub fn new(pins: Vec<GatewayPin>, tls: ReloadableServerConfig) -> Gateways {
        Gateways { pins, tls }
    }

    /// The gateway `leaf` (a peer's end-entity certificate, DER) is, as the audit names it: the pinned SPIFFE ID it
    /// carries, or `sha256:<hex>` of the certificate when pinned by fingerprint; `None` for any other peer.
    pub fn gateway_of(&self, leaf: &[u8]) -> Option<String> {
        let mut ids: Option<Vec<String>> = None;
        let mut fingerprint: Option<[u8; 32]> = None;
        for pin in &self.pins {
            match pin {
                GatewayPin::Spiffe(id) => {
                    let ids = ids.get_or_insert_with(|| peer_spiffe_ids(leaf).unwrap_or_default());
                    if ids.iter().any(|i| i == id) {
                        return Some(id.clone());
                    }
                }
                GatewayPin::Sha256(fp) => {
                    let have = fingerprint.get_or_insert_with(|| Sha256::digest(leaf).into());
                    if have == fp {
                        return Some(format!("sha256:{}", hex::encode(fp)));
                    }
                }
            }
        }
        None
    }

    /// The client certificate chain (end-entity first) the gateway forwarded in `header`, verified.
    ///
    /// # Errors
    /// Why it is not acceptable, for the UNAUTHENTICATED message.
    pub fn forwarded_chain(&self, header: &str) -> Result<Vec<CertificateDer<'static>>, String> {
        let chain = forwarded_chain(header)?;
        self.tls.verify_forwarded(&chain).map_err(|e| format!("the forwarded certificate was refused: {e}"))?;
        Ok(chain)
    }
}

/// The certificate chain (end-entity first) of the last element of an XFCC header value, not verified: `Cert` is
/// required; `Chain`, when present, must start with it (its further certificates are the intermediates); `Hash`,
/// when present, must be the SHA-256 (hex) of the certificate.
///
/// # Errors
/// A message naming what is missing or malformed.
pub fn forwarded_chain(header: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let elements = parse_xfcc(header)?;
    let last = elements.last().ok_or("the header is empty")?;
    let field = |key: &str| last.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str());
    let cert_field = field("Cert").ok_or("its last element has no Cert (the URL-encoded PEM certificate)")?;
    let cert = pem_certs(cert_field, "Cert")?;
    let [leaf] = <[_; 1]>::try_from(cert).map_err(|_| "Cert holds more than one certificate".to_owned())?;
    if let Some(hash) = field("Hash") {
        let actual = hex::encode(Sha256::digest(leaf.as_ref()));
        if !actual.eq_ignore_ascii_case(hash.trim()) {
            return Err("Hash is not the SHA-256 of the certificate in Cert".into());
        }
    }
    let mut chain = vec![leaf];
    if let Some(chain_field) = field("Chain") {
        let mut forwarded = pem_certs(chain_field, "Chain")?.into_iter();
        if forwarded.next().as_ref() != Some(&chain[0]) {
            return Err("Chain does not start with the certificate in Cert".into());
        }
        chain.extend(forwarded);
    }
    Ok(chain)
}

fn pem_certs(value: &str, key: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .map_err(|_| format!("{key} is not URL-encoded UTF-8"))?;
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{key} is not a PEM certificate: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{key} holds no PEM certificate"));
    }
    Ok(certs)
}

/// An XFCC header value as Envoy writes it: elements separated by `,`, each `key=value` pairs separated by `;`; a
/// value may be double-quoted (then `,`, `;` and `=` are literal inside, and `\"` / `\\` are escapes). Keys are
/// kept as written.
///
/// # Errors
/// A pair without `=`, or an unterminated quote.
pub fn parse_xfcc(header: &str) -> Result<Vec<Vec<(String, String)>>, String> {
    let mut elements = Vec::new();
    let mut element: Vec<(String, String)> = Vec::new();
    let mut key = String::new();
    // The value once '=' is seen, and whether it was quoted.
    let mut value: Option<(String, bool)> = None;
    let mut chars = header.chars();
    let end_pair = |key: &mut String, value: &mut Option<(String, bool)>, element: &mut Vec<_>| {
        let k = std::mem::take(key).trim().to_owned();
        match value.take() {
            Some((v, quoted)) => element.push((k, if quoted { v } else { v.trim().to_owned() })),
            None if k.is_empty() => {}
            None => return Err(format!("{k:?} has no value (key=value expected)")),
        }
        Ok(())
    };
    while let Some(c) = chars.next() {
        match (c, &mut value) {
            ('"', Some((v, quoted))) => {
                *quoted = true;
                loop {
                    match chars.next() {
                        Some('\\') => v.push(chars.next().ok_or("unterminated quoted value")?),
                        Some('"') => break,
                        Some(c) => v.push(c),
                        None => return Err(format!("the quoted value of {:?} is not terminated", key.trim())),
                    }
                }
            }
            ('=', None) => value = Some((String::new(), false)),
            (';', _) => end_pair(&mut key, &mut value, &mut element)?,
            (',', _) => {
                end_pair(&mut key, &mut value, &mut element)?;
                if !element.is_empty() {
                    elements.push(std::mem::take(&mut element));
                }
            }
            (c, Some((v, quoted))) => {
                if !(*quoted && c.is_whitespace()) {
                    v.push(c);
                }
            }
            (c, None) => key.push(c),
        }
    }
    end_pair(&mut key, &mut value, &mut element)?;
    if !element.is_empty() {
        elements.push(element);
    }
    Ok(elements)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn envoy_forms_parse() {
        // Examples of Envoy's documentation (x-forwarded-client-cert).
        let h = r#"By=http://frontend.lyft.com;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com"#;
        assert_eq!(
            parse_xfcc(h).unwrap(),
            vec![kv(&[
                ("By", "http://frontend.lyft.com"),
                ("Hash", "468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688"),
                ("Subject", "/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client"),
                ("URI", "http://testclient.lyft.com"),
            ])]
        );
        let h = "By=http://frontend.lyft.com;Hash=aa;URI=http://testclient.lyft.com,By=http://backend.lyft.com;Hash=bb;URI=http://frontend.lyft.com";
        let e = parse_xfcc(h).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1], kv(&[("By", "http://backend.lyft.com"), ("Hash", "bb"), ("URI", "http://frontend.lyft.com")]));
        // Quotes protect separators; escapes.
        let e = parse_xfcc(r#"Subject="a,b;c=d \"q\"";DNS=x"#).unwrap();
        assert_eq!(e, vec![kv(&[("Subject", r#"a,b;c=d "q""#), ("DNS", "x")])]);
        assert!(parse_xfcc(r#"Subject="open"#).is_err());
        assert!(parse_xfcc("garbage").is_err());
        assert!(parse_xfcc("").unwrap().is_empty());
    }

    #[test]
    fn pins_parse() {
        assert_eq!(
            GatewayPin::parse("spiffe://td/gateway/tlcp").unwrap(),
            GatewayPin::Spiffe("spiffe://td/gateway/tlcp".into())
        );
        let hex64 = "ab".repeat(32);
        assert_eq!(GatewayPin::parse(&format!("sha256:{hex64}")).unwrap(), GatewayPin::Sha256([0xab; 32]));
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(GatewayPin::parse(&format!("sha256:{colons}")).unwrap(), GatewayPin::Sha256([0xab; 32]));
        assert!(GatewayPin::parse("sha256:abcd").is_err());
        assert!(GatewayPin::parse("gateway").is_err());
        assert!(GatewayPin::parse("spiffe://").is_err());
    }

    #[test]
    fn the_chain_is_the_last_elements_cert_and_hash_must_match() {
        let ca = crate::security::certs::Ca::generate("test CA").unwrap();
        let a = ca.issue_client_with_uris("a", &["spiffe://td/agency/education"]).unwrap();
        let b = ca.issue_client_with_uris("b", &["spiffe://td/agency/civil_affairs"]).unwrap();
        let der = |pem: &str| CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let enc =
            |pem: &str| percent_encoding::utf8_percent_encode(pem, percent_encoding::NON_ALPHANUMERIC).to_string();
        let h = format!("Cert=\"{}\",By=spiffe://td/gateway/g;Cert=\"{}\"", enc(&a.cert_pem), enc(&b.cert_pem));
        assert_eq!(forwarded_chain(&h).unwrap(), vec![der(&b.cert_pem)]);
        let hash = hex::encode(Sha256::digest(der(&b.cert_pem).as_ref()));
        let h = format!("Hash={hash};Cert=\"{}\";Chain=\"{}\"", enc(&b.cert_pem), enc(&b.cert_pem));
        assert_eq!(forwarded_chain(&h).unwrap(), vec![der(&b.cert_pem)]);
        let h = format!("Hash={};Cert=\"{}\"", "00".repeat(32), enc(&b.cert_pem));
        assert!(forwarded_chain(&h).unwrap_err().contains("Hash"));
        let h = format!("Cert=\"{}\";Chain=\"{}\"", enc(&b.cert_pem), enc(&a.cert_pem));
        assert!(forwarded_chain(&h).unwrap_err().contains("Chain"));
        assert!(forwarded_chain("By=spiffe://td/gateway/g").unwrap_err().contains("no Cert"));
        assert!(forwarded_chain("Cert=garbage").unwrap_err().contains("Cert"));
    }
}
