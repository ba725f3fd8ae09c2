//! Keys, certificates and signatures: ID numbers protected at rest ([`crypto`]) and their key rotation ([`rotation`]),
//! the certificate authority tooling ([`certs`]) and revocation that fails safe ([`cert_watch`]), the hub's signed
//! audit heads ([`audit_head`]) and partner agencies' countersignatures of frozen quarters ([`countersign`]).

pub mod audit_head;
pub mod cert_watch;
pub mod certs;
pub mod countersign;
pub mod crypto;
pub mod rotation;
