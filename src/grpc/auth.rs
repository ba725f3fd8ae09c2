//! Who is calling: the agency read from the client certificate's SPIFFE URI SAN (security.md).
//!
//! The TLS layer has already verified the chain and revocation; here the certificate's
//! `spiffe://<trust-domain>/agency/<code>[/division/<county>]` is parsed and the agency must be
//! known to the access policy, else UNAUTHENTICATED.

use std::sync::Arc;

use tonic::{Request, Status};

use crate::domain::agency::Principal;
use crate::domain::policy::AccessPolicy;
use crate::tls::peer_spiffe_ids;

/// Turns a request's peer certificate into a [`Principal`].
#[derive(Clone)]
pub struct Authenticator {
    trust_domain: Arc<str>,
    policy: Arc<AccessPolicy>,
}

impl Authenticator {
    pub fn new(trust_domain: &str, policy: Arc<AccessPolicy>) -> Authenticator {
        Authenticator { trust_domain: trust_domain.into(), policy }
    }

    /// The caller. Errors: UNAUTHENTICATED without a certificate, without a SPIFFE ID of the
    /// trust domain, or with an agency the policy does not know.
    pub fn principal<T>(&self, req: &Request<T>) -> Result<Principal, Status> {
        let certs =
            req.peer_certs().ok_or_else(|| Status::unauthenticated("a client certificate is required (mutual TLS)"))?;
        let leaf =
            certs.first().ok_or_else(|| Status::unauthenticated("a client certificate is required (mutual TLS)"))?;
        let ids = peer_spiffe_ids(leaf.as_ref())
            .map_err(|_| Status::unauthenticated("the client certificate could not be read"))?;
        let mut last_err = String::from("the client certificate carries no SPIFFE ID");
        for id in ids {
            match Principal::from_spiffe(&id, &self.trust_domain) {
                Ok(p) if self.policy.is_known(p.agency()) => return Ok(p),
                Ok(p) => last_err = format!("agency {} is not known to this hub", p.agency()),
                Err(e) => last_err = format!("SPIFFE ID {id}: {e}"),
            }
        }
        Err(Status::unauthenticated(last_err))
    }
}
