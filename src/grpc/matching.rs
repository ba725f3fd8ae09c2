//! `RecipientExchange.MatchRecipients` (batch comparison, 比对; docs/spec/api.md "MatchRecipients"): a bidirectional
//! stream, one response message per request message, answered in order by a task of the call's own.
//!
//! Limits, in the order they are checked for each message: at most `max_batch` ID numbers in it (INVALID_ARGUMENT,
//! `id_numbers`); at most `match_max_ids_per_call` in the call so far (RESOURCE_EXHAUSTED, QUOTA_EXCEEDED); the
//! agency's daily budget (`Authenticator::charge_match`). A refused message is not compared and ends the call; the
//! answers sent before stand. While the hub shuts down, a call ends with UNAVAILABLE after the message in hand, saying
//! how many ID numbers were answered.

use std::pin::Pin;
use std::task::{Context, Poll};

use chrono::NaiveDate;
use tokio::sync::mpsc;
use tonic::{Code, Status, Streaming};

use super::auth::Authenticator;
use super::convert::{date_in, program_out};
use super::pb;
use super::status::{ErrorReason, Refusal, invalid, shutting_down};
use crate::domain::agency::Principal;
use crate::domain::id_number::IdNumber;
use crate::hub::Hub;
use crate::server::lifetime::Trigger;

/// The method name written to the audit log.
pub const MATCH: &str = "/doudi.v1.RecipientExchange/MatchRecipients";

/// ErrorInfo metadata key of a refusal in the middle of a call: ID numbers answered before it.
pub const IDS_ANSWERED: &str = "ids_answered";

/// Characters of a resident ID number (GB 11643): an invalid one is echoed cut to this length.
const ID_NUMBER_CHARS: usize = 18;

/// Response messages answered and not yet taken by the transport, per call: the next message is compared while the
/// one before is on its way.
const RESPONSES_AHEAD: usize = 2;

/// The response stream of one call: the answers the task queued, then (on a refusal) its status.
pub struct MatchStream {
    rx: mpsc::Receiver<Result<pb::MatchRecipientsResponse, Status>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MatchStream {
    /// The client went away (or cancelled, or its deadline passed): stop comparing at once.
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl futures::Stream for MatchStream {
    type Item = Result<pb::MatchRecipientsResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// What one call needs besides its messages.
pub struct MatchCall {
    pub hub: Hub,
    pub auth: Authenticator,
    pub principal: Principal,
    pub draining: Trigger,
    /// Held until the call ends (a client stream of the agency's `max_streams_per_agency`).
    pub permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// Start answering `stream`. The access checks that need no message (`Hub::start_match` without a purpose) are made
/// by the caller before.
pub fn spawn(call: MatchCall, stream: Streaming<pb::MatchRecipientsRequest>) -> MatchStream {
    let (tx, rx) = mpsc::channel(RESPONSES_AHEAD);
    let task = tokio::spawn(async move {
        if let Err(status) = run(&call, stream, tx.clone()).await {
            // After every answer queued before it; lost only if the client has gone.
            let _ = tx.send(Err(status)).await;
        }
        drop(call.permit);
    });
    MatchStream { rx, task }
}

/// The call's settings, fixed by its first message.
struct Settings {
    purpose: String,
    as_of: NaiveDate,
    /// As sent, to compare with later messages.
    purpose_sent: String,
    as_of_sent: String,
}

async fn run(
    call: &MatchCall,
    mut stream: Streaming<pb::MatchRecipientsRequest>,
    tx: mpsc::Sender<Result<pb::MatchRecipientsResponse, Status>>,
) -> Result<(), Status> {
    let hub = &call.hub;
    let mut settings: Option<Settings> = None;
    let mut answered = 0usize;
    let draining = call.draining.fired();
    tokio::pin!(draining);
    loop {
        let msg = tokio::select! {
            biased;
            () = &mut draining => {
                return Err(shutting_down(format!(
                    "the hub is shutting down: {answered} ID numbers were answered; send the rest on another \
                     connection or hub"
                ))
                .info(IDS_ANSWERED, answered)
                .into());
            }
            m = stream.message() => m,
        };
        let msg = match msg {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(()),
            Err(s) => return Err(super::limits::client_fault_status(s)),
        };
        let mid = |r: Refusal| -> Status { r.info(IDS_ANSWERED, answered).into() };
        let s = match &settings {
            Some(s) => {
                if !msg.purpose.is_empty() && msg.purpose != s.purpose_sent {
                    return Err(mid(Refusal::invalid(
                        "purpose",
                        "differs from the first message's: a call has one purpose (leave it empty after the first)",
                    )));
                }
                if !msg.as_of.is_empty() && msg.as_of != s.as_of_sent {
                    return Err(mid(Refusal::invalid(
                        "as_of",
                        "differs from the first message's: a call compares on one date (leave it empty after the first)",
                    )));
                }
                s
            }
            None => {
                let purpose = hub.start_match(&call.principal, &msg.purpose)?;
                let as_of = date_in(&msg.as_of, "as_of", hub.today()).map_err(|e| invalid(&e.field, e.reason))?;
                settings.insert(Settings {
                    purpose,
                    as_of,
                    purpose_sent: msg.purpose.clone(),
                    as_of_sent: msg.as_of.clone(),
                })
            }
        };
        let n = msg.id_numbers.len();
        let max_batch = hub.limits().max_batch;
        if n > max_batch {
            return Err(mid(Refusal::invalid(
                "id_numbers",
                format!(
                    "{n} ID numbers in one message, more than max_batch ({max_batch}): send them in several messages"
                ),
            )));
        }
        let max = hub.limits().match_max_ids_per_call;
        if max > 0 && answered + n > max {
            return Err(mid(Refusal::new(
                Code::ResourceExhausted,
                ErrorReason::QuotaExceeded,
                format!(
                    "a MatchRecipients call compares at most {max} ID numbers (match_max_ids_per_call); {answered} \
                     were answered, this message of {n} would pass the limit: compare the rest in another call"
                ),
            )
            .info("limit", max)));
        }
        call.auth.charge_match(&call.principal, n).map_err(|r| mid(*r))?;
        let response = answer(call, s, msg.id_numbers, answered).await.map_err(|e| mid(Refusal::from(e)))?;
        answered += n;
        if tx.send(Ok(response)).await.is_err() {
            // The client stopped reading: the stream was dropped and this task is being aborted.
            return Ok(());
        }
    }
}

/// Compare one message's ID numbers: the invalid ones answered at once, the others by `Hub::match_recipients`.
async fn answer(
    call: &MatchCall,
    s: &Settings,
    id_numbers: Vec<String>,
    offset: usize,
) -> Result<pb::MatchRecipientsResponse, crate::hub::HubError> {
    let mut results: Vec<pb::MatchResult> = Vec::with_capacity(id_numbers.len());
    let mut valid: Vec<IdNumber> = Vec::with_capacity(id_numbers.len());
    let mut valid_at: Vec<usize> = Vec::with_capacity(id_numbers.len());
    for (i, raw) in id_numbers.into_iter().enumerate() {
        let mut r = pb::MatchResult { index: (offset + i) as u64, ..Default::default() };
        match raw.parse::<IdNumber>() {
            Ok(id) => {
                valid.push(id);
                valid_at.push(i);
            }
            Err(e) => {
                r.outcome = pb::MatchOutcome::Invalid as i32;
                r.field = format!("id_numbers[{i}]");
                r.reason = if raw.is_empty() { "is required".to_owned() } else { e.to_string() };
            }
        }
        // Echoed as sent; an invalid one is cut to a length an ID number could have (it may be anything).
        r.id_number = raw.chars().take(ID_NUMBER_CHARS).collect();
        results.push(r);
    }
    let invalid = results.len() - valid.len();
    let answers = call.hub.match_recipients(&call.principal, MATCH, &valid, s.as_of, &s.purpose, invalid).await?;
    for (i, enrolments) in valid_at.into_iter().zip(answers) {
        let r = &mut results[i];
        if enrolments.is_empty() {
            r.outcome = pb::MatchOutcome::NotEnrolled as i32;
        } else {
            r.outcome = pb::MatchOutcome::Enrolled as i32;
            r.enrolments = enrolments
                .into_iter()
                .map(|e| pb::Enrolment {
                    program: program_out(Some(e.program)),
                    since: e.since.format("%Y-%m-%d").to_string(),
                    division_code: e.division_code,
                })
                .collect();
        }
    }
    Ok(pb::MatchRecipientsResponse { results })
}
