//! Who is calling: the agency read from the client certificate's SPIFFE URI SAN (docs/spec/security.md).
//!
//! The TLS layer has already verified the chain and revocation; here the certificate's
//! `spiffe://<trust-domain>/agency/<code>[/division/<county>]` is parsed and the agency must be
//! known to the access policy, else UNAUTHENTICATED. On the connection of a pinned gateway the certificate read is
//! the one the gateway forwards, verified here (`super::gateway`).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Code, Request, Status};

use super::gateway::{Gateways, XFCC_HEADER};
use super::status::{DEFAULT_RETRY, ErrorReason, Refusal, internal};
use crate::domain::agency::Principal;
use crate::domain::policy::AccessPolicy;
use crate::server::tls::peer_spiffe_ids;

/// Per-agency limits (docs/spec/security.md "Abuse and faults"): a request-rate quota and a number of concurrent
/// streams.
pub struct AgencyLimits {
    rate: DefaultKeyedRateLimiter<String>,
    per_second: u32,
    max_streams: usize,
    streams: Mutex<HashMap<String, Arc<Semaphore>>>,
    max_watches: usize,
    watches: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// MatchRecipients: ID numbers each agency may compare per day (GCRA, refilled evenly), and that number.
    matches: Option<(DefaultKeyedRateLimiter<String>, u32)>,
}

impl AgencyLimits {
    /// `per_second` requests a second per agency with bursts of `burst` (GCRA: the bucket refills evenly), and
    /// `max_streams` concurrent client streams (StreamFacts) per agency. 0 disables a limit.
    pub fn new(per_second: u32, burst: u32, max_streams: usize) -> AgencyLimits {
        let quota = Quota::per_second(NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MAX))
            .allow_burst(NonZeroU32::new(burst.max(1)).expect("at least 1"));
        AgencyLimits {
            rate: RateLimiter::keyed(quota),
            per_second,
            max_streams,
            streams: Mutex::new(HashMap::new()),
            max_watches: 0,
            watches: Mutex::new(HashMap::new()),
            matches: None,
        }
    }

    /// At most `per_day` ID numbers compared by MatchRecipients per agency and day, refilled evenly (a GCRA bucket of
    /// `per_day` that gains one every 86,400 / `per_day` seconds: a day's budget may be used at once, then refills);
    /// 0 = no limit.
    pub fn with_match_budget(mut self, per_day: u32) -> AgencyLimits {
        self.matches = NonZeroU32::new(per_day).map(|n| {
            let every = std::time::Duration::from_secs(86_400) / n.get();
            let quota = Quota::with_period(every.max(std::time::Duration::from_nanos(1)))
                .expect("a positive period")
                .allow_burst(n);
            (RateLimiter::keyed(quota), n.get())
        });
        self
    }

    /// At most `max_watches` concurrent WatchChanges per agency (0 = no limit), counted apart from StreamFacts.
    pub fn with_max_watches(mut self, max_watches: usize) -> AgencyLimits {
        self.max_watches = max_watches;
        self
    }

    fn unlimited() -> AgencyLimits {
        AgencyLimits::new(0, u32::MAX, 0)
    }
}

/// Turns a request's peer certificate (or, on a pinned gateway's connection, the client certificate it forwards)
/// into a [`Principal`], and applies the per-agency limits.
#[derive(Clone)]
pub struct Authenticator {
    trust_domain: Arc<str>,
    policy: Arc<AccessPolicy>,
    limits: Arc<AgencyLimits>,
    gateways: Option<Arc<Gateways>>,
    ignored_forwarded: prometheus::IntCounter,
}

impl Authenticator {
    pub fn new(trust_domain: &str, policy: Arc<AccessPolicy>) -> Authenticator {
        Authenticator {
            trust_domain: trust_domain.into(),
            policy,
            limits: Arc::new(AgencyLimits::unlimited()),
            gateways: None,
            ignored_forwarded: prometheus::IntCounter::new(
                "doudi_forwarded_client_cert_ignored_total",
                "requests carrying x-forwarded-client-cert from a peer that is not a pinned gateway \
                 (gateway_identities): the header was ignored and the peer's own certificate used",
            )
            .expect("valid metric"),
        }
    }

    /// Accept the client certificate that these pinned gateways forward (`grpc::gateway`); none when empty.
    pub fn with_gateways(mut self, gateways: Gateways) -> Authenticator {
        self.gateways = Some(Arc::new(gateways));
        self
    }

    /// `doudi_forwarded_client_cert_ignored_total`, for the hub's metrics registry.
    pub fn ignored_forwarded_counter(&self) -> prometheus::IntCounter {
        self.ignored_forwarded.clone()
    }

    /// These limits instead of none.
    pub fn with_limits(mut self, limits: AgencyLimits) -> Authenticator {
        self.limits = Arc::new(limits);
        self
    }

    /// Count one request of `p` against its agency's quota. Over it: RESOURCE_EXHAUSTED, reason QUOTA_EXCEEDED, with
    /// the wait in the message, in `RetryInfo` and in the `retry-after-ms` trailer (`super::status`).
    fn charge(&self, p: &Principal) -> Result<(), Status> {
        if self.limits.per_second == 0 {
            return Ok(());
        }
        let agency = p.agency().to_string();
        match self.limits.rate.check_key(&agency) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait =
                    not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
                let ms = wait.as_millis().max(1) as u64;
                let per_second = self.limits.per_second;
                Err(Refusal::new(
                    Code::ResourceExhausted,
                    ErrorReason::QuotaExceeded,
                    format!("agency {agency} is over its quota of {per_second} requests per second; retry in {ms} ms"),
                )
                .info("agency", &agency)
                .info("quota_per_second", per_second)
                .quota(format!("agency:{agency}"), format!("{per_second} requests per second (rate_per_agency)"))
                .retry_after(std::time::Duration::from_millis(ms))
                .into())
            }
        }
    }

    /// Count `n` ID numbers of a MatchRecipients message against `p`'s agency's daily budget
    /// (`match_ids_per_agency_per_day`). Over it: RESOURCE_EXHAUSTED, reason QUOTA_EXCEEDED, with the wait until `n`
    /// more are allowed (RetryInfo, `retry-after-ms`) and a QuotaFailure; nothing of the message is compared.
    pub fn charge_match(&self, p: &Principal, n: usize) -> Result<(), Box<Refusal>> {
        let Some((limiter, per_day)) = &self.limits.matches else { return Ok(()) };
        let agency = p.agency().to_string();
        let refuse = |wait: Option<std::time::Duration>| -> Refusal {
            let mut r = Refusal::new(
                Code::ResourceExhausted,
                ErrorReason::QuotaExceeded,
                format!(
                    "agency {agency} is over its budget of {per_day} ID numbers compared per day \
                     (match_ids_per_agency_per_day){}",
                    match wait {
                        Some(w) => format!("; {n} more may be compared in {} s", w.as_secs().max(1)),
                        None => format!("; a message of {n} ID numbers is more than the whole budget"),
                    }
                ),
            )
            .info("agency", &agency)
            .info("quota_per_day", per_day)
            .quota(format!("agency:{agency}"), format!("{per_day} ID numbers compared per day (MatchRecipients)"));
            if let Some(w) = wait {
                r = r.retry_after(w.max(std::time::Duration::from_millis(1)));
            }
            r
        };
        let Some(cells) = u32::try_from(n).ok().and_then(NonZeroU32::new) else { return Ok(()) };
        match limiter.check_key_n(&agency, cells) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(Box::new(refuse(Some(
                not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default())),
            )))),
            Err(_) => Err(Box::new(refuse(None))),
        }
    }

    /// A permit for one more concurrent client stream (StreamFacts or MatchRecipients) of `p`'s agency, held while the
    /// stream runs. Over the limit:
    /// RESOURCE_EXHAUSTED, reason CONCURRENCY_LIMIT_EXCEEDED, retry after 1 s.
    pub fn stream_permit(&self, p: &Principal) -> Result<Option<OwnedSemaphorePermit>, Status> {
        Self::permit(p, &self.limits.streams, self.limits.max_streams, "client streams (StreamFacts, MatchRecipients)")
    }

    /// A permit for one more concurrent WatchChanges of `p`'s agency (`max_watches_per_agency`), held while the watch
    /// runs. Over the limit: RESOURCE_EXHAUSTED, reason CONCURRENCY_LIMIT_EXCEEDED, retry after 1 s.
    pub fn watch_permit(&self, p: &Principal) -> Result<Option<OwnedSemaphorePermit>, Status> {
        Self::permit(p, &self.limits.watches, self.limits.max_watches, "watches (WatchChanges)")
    }

    fn permit(
        p: &Principal,
        map: &Mutex<HashMap<String, Arc<Semaphore>>>,
        max: usize,
        what: &str,
    ) -> Result<Option<OwnedSemaphorePermit>, Status> {
        if max == 0 {
            return Ok(None);
        }
        let agency = p.agency().to_string();
        let sem = {
            let mut map = map.lock().map_err(|_| internal("stream limits unavailable"))?;
            map.entry(agency.clone()).or_insert_with(|| Arc::new(Semaphore::new(max))).clone()
        };
        sem.try_acquire_owned().map(Some).map_err(|_| {
            Refusal::new(
                Code::ResourceExhausted,
                ErrorReason::ConcurrencyLimitExceeded,
                format!("agency {agency} already has {max} {what} open (the limit); retry when one has finished"),
            )
            .info("agency", &agency)
            .info("limit", max)
            .retry_after(DEFAULT_RETRY)
            .into()
        })
    }

    /// The caller. Errors: UNAUTHENTICATED (reason CLIENT_CERTIFICATE_REJECTED) without a certificate, without a
    /// SPIFFE ID of the trust domain, or with an agency the policy does not know; on a pinned gateway's connection,
    /// also without a forwarded client certificate ([`XFCC_HEADER`]) or with one that does not parse or verify;
    /// RESOURCE_EXHAUSTED (QUOTA_EXCEEDED) over the agency's quota.
    ///
    /// On a pinned gateway's connection the caller is the agency of the forwarded certificate, with the gateway as
    /// [`Principal::via`]; from any other peer the header is ignored (and counted).
    pub fn principal<T>(&self, req: &Request<T>) -> Result<Principal, Status> {
        let certs = req.peer_certs().ok_or_else(|| unauthenticated("a client certificate is required (mutual TLS)"))?;
        let leaf = certs.first().ok_or_else(|| unauthenticated("a client certificate is required (mutual TLS)"))?;
        let forwarded = req.metadata().get_all(XFCC_HEADER);
        if let Some(via) = self.gateways.as_ref().and_then(|g| g.gateway_of(leaf.as_ref())) {
            let gateways = self.gateways.as_ref().expect("a gateway was found");
            let mut values = Vec::new();
            for v in forwarded.iter() {
                values.push(v.to_str().map_err(|_| {
                    unauthenticated(format!("{XFCC_HEADER} from gateway {via}: not a visible-ASCII header value"))
                })?);
            }
            if values.is_empty() {
                return Err(unauthenticated(format!(
                    "this connection is gateway {via}'s (gateway_identities): every request must carry the client \
                     certificate it forwards in {XFCC_HEADER}, and this one has none; the gateway itself has no rights"
                )));
            }
            // Several header lines are one list (RFC 9110 §5.3); its last element is the gateway's own.
            let chain = gateways
                .forwarded_chain(&values.join(","))
                .map_err(|why| unauthenticated(format!("{XFCC_HEADER} from gateway {via}: {why}")))?;
            return self.principal_of(chain[0].as_ref(), Some(via));
        }
        if forwarded.iter().next().is_some() {
            self.ignored_forwarded.inc();
            tracing::debug!(
                "{XFCC_HEADER} from a peer that is not a pinned gateway: ignored, the peer's own certificate is used"
            );
        }
        self.principal_of(leaf.as_ref(), None)
    }

    /// The principal a client certificate (DER) names, through the gateway `via` if any, charged to its quota.
    fn principal_of(&self, leaf: &[u8], via: Option<String>) -> Result<Principal, Status> {
        let through = via.as_deref().map(|g| format!(" (forwarded by gateway {g})")).unwrap_or_default();
        let ids = peer_spiffe_ids(leaf)
            .map_err(|_| unauthenticated(format!("the client certificate{through} could not be read")))?;
        let mut last_err = format!("the client certificate{through} carries no SPIFFE ID");
        for id in ids {
            match Principal::from_spiffe(&id, &self.trust_domain) {
                Ok(p) if self.policy.is_known(p.agency()) => {
                    let p = match &via {
                        Some(g) => p.with_via(g.clone()),
                        None => p,
                    };
                    self.charge(&p)?;
                    return Ok(p);
                }
                Ok(p) => last_err = format!("agency {} is not known to this hub{through}", p.agency()),
                Err(e) => last_err = format!("SPIFFE ID {id}{through}: {e}"),
            }
        }
        Err(unauthenticated(last_err))
    }
}

/// UNAUTHENTICATED, reason CLIENT_CERTIFICATE_REJECTED.
fn unauthenticated(message: impl Into<String>) -> Status {
    Refusal::new(Code::Unauthenticated, ErrorReason::ClientCertificateRejected, message).into()
}
