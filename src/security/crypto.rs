//! Protection of ID numbers at rest (docs/spec/security.md, "What is stored and logged").
//!
//! The data key is 32 random bytes given in standard base64 (`DOUDI_DATA_KEY` or the config
//! file). Under the default suite ([`CryptoSuite::Aes`]) the working keys are derived from it with HKDF-SHA256
//! under distinct labels (the national suite [`CryptoSuite::Sm`] uses HKDF-SM3, SM4-GCM and HMAC-SM3 instead):
//! - the *encryption* key: AES-256-GCM, random 96-bit nonce, the person key as associated data;
//!   stored form = `nonce (12 bytes) || ciphertext+tag`;
//! - the *lookup* key: HMAC-SHA256 over the normalized (upper-case) ID number gives the 32-byte
//!   person key by which every table refers to a person.

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, KeyInit, Payload as AeadPayload};
use aes_gcm::{Aes256Gcm, AesGcm, Nonce};
use base64::Engine as _;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sm3::Sm3;
use sm4::Sm4;

use crate::domain::id_number::IdNumber;

const ENCRYPTION_LABEL: &[u8] = b"doudi/v1/id-number-encryption";
const LOOKUP_LABEL: &[u8] = b"doudi/v1/id-number-lookup";
const TOKEN_LABEL: &[u8] = b"doudi/v1/page-token";
const CHECK_LABEL: &[u8] = b"doudi/v1/key-check";

/// Errors of key handling.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("data key is not standard base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("data key must be 32 bytes, got {0}")]
    Length(usize),
    #[error("stored ID number could not be decrypted (wrong data key or altered row)")]
    Decrypt,
    #[error("stored ID number is not a valid ID number")]
    Corrupt,
}

/// A 32-byte person key: HMAC-SHA256(lookup key, ID number).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersonKey(pub [u8; 32]);

impl PersonKey {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// Short hex form for logs (first 8 bytes): identifies a person without revealing them.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..8])
    }
    pub fn from_slice(b: &[u8]) -> Option<PersonKey> {
        <[u8; 32]>::try_from(b).ok().map(PersonKey)
    }
}

impl std::fmt::Debug for PersonKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PersonKey({})", self.short())
    }
}

/// The algorithms at the data layer (docs/spec/security.md): AES-256-GCM with HMAC-SHA256 and HKDF-SHA256 (default), or
/// the national algorithms SM4-GCM (GB/T 32907, 128-bit key) with HMAC-SM3 and HKDF-SM3 (GB/T 32905) for deployments
/// that must use them. Chosen once per database: the data-key check value differs between suites, so a hub started
/// with the other suite refuses the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CryptoSuite {
    #[default]
    Aes,
    Sm,
}

type Sm4Gcm = AesGcm<Sm4, U12>;

/// An AEAD under one of the suites (96-bit nonces).
#[derive(Clone)]
enum Cipher {
    Aes(Box<Aes256Gcm>),
    Sm4(Box<Sm4Gcm>),
}

impl Cipher {
    fn new(suite: CryptoSuite, key: &[u8; 32]) -> Cipher {
        match suite {
            CryptoSuite::Aes => Cipher::Aes(Box::new(Aes256Gcm::new_from_slice(key).expect("32-byte key"))),
            CryptoSuite::Sm => Cipher::Sm4(Box::new(Sm4Gcm::new_from_slice(&key[..16]).expect("16-byte key"))),
        }
    }

    fn encrypt(&self, nonce: &[u8], msg: &[u8], aad: &[u8]) -> Vec<u8> {
        let n = Nonce::from_slice(nonce);
        let p = AeadPayload { msg, aad };
        match self {
            Cipher::Aes(c) => c.encrypt(n, p),
            Cipher::Sm4(c) => c.encrypt(n, p),
        }
        .expect("GCM encryption of a short message cannot fail")
    }

    fn decrypt(&self, nonce: &[u8], msg: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        let n = Nonce::from_slice(nonce);
        let p = AeadPayload { msg, aad };
        match self {
            Cipher::Aes(c) => c.decrypt(n, p),
            Cipher::Sm4(c) => c.decrypt(n, p),
        }
        .ok()
    }
}

/// The keyed hash that makes person keys.
#[derive(Clone)]
enum Lookup {
    Sha256(Hmac<Sha256>),
    Sm3(Hmac<Sm3>),
}

impl Lookup {
    fn new(suite: CryptoSuite, raw: &[u8; 32]) -> Lookup {
        match suite {
            CryptoSuite::Aes => Lookup::Sha256(<Hmac<Sha256> as Mac>::new_from_slice(raw).expect("any key length")),
            CryptoSuite::Sm => Lookup::Sm3(<Hmac<Sm3> as Mac>::new_from_slice(raw).expect("any key length")),
        }
    }

    fn mac(&self, data: &[u8]) -> [u8; 32] {
        match self {
            Lookup::Sha256(m) => {
                let mut m = m.clone();
                m.update(data);
                m.finalize().into_bytes().into()
            }
            Lookup::Sm3(m) => {
                let mut m = m.clone();
                m.update(data);
                m.finalize().into_bytes().into()
            }
        }
    }
}

/// Keys derived from the data key.
#[derive(Clone)]
pub struct Keys {
    suite: CryptoSuite,
    cipher: Cipher,
    lookup: Lookup,
    /// The lookup key's bytes, for wrapping it when the data key is rotated (the person keys must not change).
    lookup_raw: [u8; 32],
    token: Cipher,
    check: [u8; 32],
}

/// Associated data of a wrapped lookup key.
const WRAP_AAD: &[u8] = b"doudi/v1/wrapped-lookup-key";

impl Keys {
    /// Parse a base64 data key (32 bytes) and derive the working keys.
    pub fn from_base64(data_key: &str) -> Result<Keys, KeyError> {
        Keys::from_base64_with(data_key, CryptoSuite::Aes)
    }

    /// As [`Self::from_base64`] under `suite`.
    pub fn from_base64_with(data_key: &str, suite: CryptoSuite) -> Result<Keys, KeyError> {
        let raw = base64::engine::general_purpose::STANDARD.decode(data_key.trim())?;
        if raw.len() != 32 {
            return Err(KeyError::Length(raw.len()));
        }
        Ok(Keys::from_bytes(&raw, suite))
    }

    fn from_bytes(raw: &[u8], suite: CryptoSuite) -> Keys {
        let mut enc = [0u8; 32];
        let mut look = [0u8; 32];
        let mut tok = [0u8; 32];
        let mut check = [0u8; 32];
        // 32-byte outputs are far below HKDF's 8160-byte limit (SHA-256 and SM3 both give 32-byte blocks).
        let labels: [(&[u8], &mut [u8; 32]); 4] = [
            (ENCRYPTION_LABEL, &mut enc),
            (LOOKUP_LABEL, &mut look),
            (TOKEN_LABEL, &mut tok),
            (CHECK_LABEL, &mut check),
        ];
        match suite {
            CryptoSuite::Aes => {
                let hk = Hkdf::<Sha256>::new(None, raw);
                for (label, out) in labels {
                    hk.expand(label, out).expect("hkdf length");
                }
            }
            CryptoSuite::Sm => {
                let hk = Hkdf::<Sm3>::new(None, raw);
                for (label, out) in labels {
                    hk.expand(label, out).expect("hkdf length");
                }
            }
        }
        Keys {
            suite,
            cipher: Cipher::new(suite, &enc),
            lookup: Lookup::new(suite, &look),
            lookup_raw: look,
            token: Cipher::new(suite, &tok),
            check,
        }
    }

    /// The suite these keys use.
    pub fn suite(&self) -> CryptoSuite {
        self.suite
    }

    /// The lookup key wrapped (AES-256-GCM, `nonce || ciphertext`) under this data key's encryption key: stored
    /// in the database when the data key is rotated, so that the person keys (HMAC of the ID number under the
    /// *original* lookup key) stay what they were.
    pub fn wrap_lookup(&self) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let ct = self.cipher.encrypt(&nonce, &self.lookup_raw, WRAP_AAD);
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        out
    }

    /// These keys with the lookup key unwrapped from `wrapped` (made by [`Self::wrap_lookup`] under this data key).
    ///
    /// # Errors
    /// [`KeyError::Decrypt`] if `wrapped` was not made under this data key or was altered.
    pub fn with_wrapped_lookup(mut self, wrapped: &[u8]) -> Result<Keys, KeyError> {
        if wrapped.len() < 12 + 16 {
            return Err(KeyError::Decrypt);
        }
        let (nonce, ct) = wrapped.split_at(12);
        let raw = self.cipher.decrypt(nonce, ct, WRAP_AAD).ok_or(KeyError::Decrypt)?;
        let raw: [u8; 32] = raw.try_into().map_err(|_| KeyError::Corrupt)?;
        self.lookup = Lookup::new(self.suite, &raw);
        self.lookup_raw = raw;
        Ok(self)
    }

    /// These keys with `other`'s lookup key (the one the database's person keys were made with).
    pub fn with_lookup_of(mut self, other: &Keys) -> Keys {
        self.lookup = other.lookup.clone();
        self.lookup_raw = other.lookup_raw;
        self
    }

    /// A fresh random data key in standard base64 (for `doudi keys generate` and the demo).
    pub fn generate_base64() -> String {
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        base64::engine::general_purpose::STANDARD.encode(raw)
    }

    /// A value derived from the data key under its own label, stored in the database when it is
    /// created: starting on a database with another key is refused instead of silently finding
    /// nobody (person keys would all differ). Reveals nothing about the key.
    pub fn check_value(&self) -> [u8; 32] {
        self.check
    }

    /// The person key of an ID number.
    pub fn person_key(&self, id: &IdNumber) -> PersonKey {
        PersonKey(self.lookup.mac(id.as_str().as_bytes()))
    }

    /// Encrypt an ID number for storage: `nonce || ciphertext`.
    pub fn encrypt(&self, id: &IdNumber, key: &PersonKey) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let ct = self.cipher.encrypt(&nonce, id.as_str().as_bytes(), key.as_bytes());
        let mut out = Vec::with_capacity(12 + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Seal an opaque token (a list cursor): AES-256-GCM under the token key, bound to `context`
    /// (e.g. the caller's identity), URL-safe base64. The caller learns nothing from it and cannot
    /// alter it or use another caller's.
    pub fn seal_token(&self, plaintext: &[u8], context: &[u8]) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let ct = self.token.encrypt(&nonce, plaintext, context);
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)
    }

    /// Open a token made by [`Self::seal_token`] with the same `context`; `None` if it was altered,
    /// made for another context or is not a token.
    pub fn open_token(&self, token: &str, context: &[u8]) -> Option<Vec<u8>> {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).ok()?;
        if raw.len() < 12 + 16 {
            return None;
        }
        let (nonce, ct) = raw.split_at(12);
        self.token.decrypt(nonce, ct, context)
    }

    /// Decrypt a stored ID number and check it belongs to `key`.
    pub fn decrypt(&self, stored: &[u8], key: &PersonKey) -> Result<IdNumber, KeyError> {
        if stored.len() < 12 + 16 {
            return Err(KeyError::Decrypt);
        }
        let (nonce, ct) = stored.split_at(12);
        let pt = self.cipher.decrypt(nonce, ct, key.as_bytes()).ok_or(KeyError::Decrypt)?;
        let s = std::str::from_utf8(&pt).map_err(|_| KeyError::Corrupt)?;
        // Stored numbers were valid when written; re-parse without the "not in the future" check.
        let id: IdNumber = s.parse().map_err(|_| KeyError::Corrupt)?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap()
    }

    #[test]
    fn round_trip_and_binding() {
        let k = keys();
        let id: IdNumber = "621022198512310039".parse().unwrap();
        let pk = k.person_key(&id);
        let stored = k.encrypt(&id, &pk);
        assert!(!stored.windows(18).any(|w| w == id.as_str().as_bytes()), "no plaintext at rest");
        assert_eq!(k.decrypt(&stored, &pk).unwrap(), id);
        // bound to its person key: moving a ciphertext to another row fails
        let other = k.person_key(&"621002199001010017".parse().unwrap());
        assert!(k.decrypt(&stored, &other).is_err());
        // two encryptions differ (random nonce) but decrypt alike
        assert_ne!(k.encrypt(&id, &pk), stored);
    }

    #[test]
    fn person_key_is_keyed_and_normalized() {
        let k = keys();
        let a: IdNumber = "11010519491231002x".parse().unwrap();
        let b: IdNumber = "11010519491231002X".parse().unwrap();
        assert_eq!(k.person_key(&a), k.person_key(&b));
        let k2 = Keys::from_base64(&Keys::generate_base64()).unwrap();
        assert_ne!(k.person_key(&a), k2.person_key(&a));
    }

    #[test]
    fn tokens_are_opaque_and_bound_to_their_context() {
        let k = keys();
        let t = k.seal_token(b"cursor-bytes", b"education|");
        assert!(!t.contains("cursor"));
        assert_eq!(k.open_token(&t, b"education|").unwrap(), b"cursor-bytes");
        assert!(k.open_token(&t, b"civil_affairs|").is_none(), "another caller cannot use it");
        let mut bytes: Vec<char> = t.chars().collect();
        bytes[20] = if bytes[20] == 'A' { 'B' } else { 'A' };
        assert!(k.open_token(&bytes.into_iter().collect::<String>(), b"education|").is_none(), "tampering fails");
        assert!(k.open_token("", b"education|").is_none());
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(matches!(Keys::from_base64("AAEC"), Err(KeyError::Length(3))));
        assert!(matches!(Keys::from_base64("not base64!"), Err(KeyError::Base64(_))));
    }

    /// docs/domain/policy-reference.md's test vectors for the national algorithms.
    #[test]
    fn sm3_and_sm4_test_vectors() {
        use sha2::Digest as _;
        assert_eq!(
            hex::encode(Sm3::digest(b"abc")),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
        use sm4::cipher::{BlockEncrypt, KeyInit as _};
        let kp = hex::decode("0123456789abcdeffedcba9876543210").unwrap();
        let c = Sm4::new_from_slice(&kp).unwrap();
        let mut block = sm4::cipher::generic_array::GenericArray::clone_from_slice(&kp);
        c.encrypt_block(&mut block);
        assert_eq!(hex::encode(block), "681edf34d206965e86b3e94f536e4246");
    }

    #[test]
    fn the_sm_suite_round_trips_and_differs_from_aes() {
        let data_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let sm = Keys::from_base64_with(data_key, CryptoSuite::Sm).unwrap();
        let aes = Keys::from_base64(data_key).unwrap();
        let id: IdNumber = "11010519491231002X".parse().unwrap();
        let k = sm.person_key(&id);
        assert_ne!(k, aes.person_key(&id), "HMAC-SM3 and HMAC-SHA256 give other person keys");
        assert_ne!(sm.check_value(), aes.check_value(), "a database refuses the other suite");
        let stored = sm.encrypt(&id, &k);
        assert_eq!(sm.decrypt(&stored, &k).unwrap(), id);
        assert!(aes.decrypt(&stored, &k).is_err(), "SM4-GCM ciphertext does not open with AES-GCM");
        let t = sm.seal_token(b"cursor", b"ctx");
        assert_eq!(sm.open_token(&t, b"ctx").unwrap(), b"cursor");
        let wrapped = sm.wrap_lookup();
        let again = Keys::from_base64_with(data_key, CryptoSuite::Sm).unwrap().with_wrapped_lookup(&wrapped).unwrap();
        assert_eq!(again.person_key(&id), k);
    }
}
