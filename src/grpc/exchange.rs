//! `doudi.v1.RecipientExchange` handlers (docs/spec/api.md).

use std::sync::Arc;

use tonic::{Request, Response, Status, Streaming};

use super::auth::Authenticator;
use super::convert::{date_in, fact_in, id_number_in, payload_kind_in, program_filter, recipient_out};
use super::observe::agency_label;
use super::pb::{self, recipient_exchange_server::RecipientExchange};
use super::status::{Refusal, invalid, shutting_down};
use crate::domain::agency::Principal;
use crate::domain::versioning::Decision;
use crate::hub::{FactOutcome, FactResult, Hub, PreparedPush, WatchRequest};
use crate::hub::{MAX_BULK_FACTS, Priority};
use crate::server::metrics::Metrics;

/// Most rejected facts listed in a StreamFacts response (docs/spec/api.md).
pub const STREAM_REJECTIONS_LISTED: usize = 1_000;

/// Facts of StreamFacts messages prepared and waiting while the group before them is stored, per stream (one more
/// message is being prepared beside them): the CPU part of the next messages overlaps the writer's work on this group.
/// Each holds its facts prepared (about 1 KiB a fact in a release build), so this bounds a stream's memory: with the
/// usual 2,000-fact messages it is one message waiting, as when the bound was one message (with 3 messages the CI
/// memory check, `tests/api/bench_memory.rs`, five streams, peaked at 100 MiB, with 1 at 93 MiB, without read-ahead at
/// 82 MiB). Counted in facts, not messages, so that small messages wait in numbers a group can take: with one message
/// waiting, the group after it only ever held that one (the reader's next message is still on its way when the group
/// is formed).
const READ_AHEAD_FACTS: usize = MAX_BULK_FACTS;

/// What the reader of a StreamFacts stream hands on, in the stream's order.
enum Ahead {
    /// A message, checked and prepared.
    Push(PreparedPush),
    /// A message refused as a whole (`Hub::prepare_push`: permission, batch size); the stream ends there.
    Refused(crate::hub::HubError),
    /// The client's stream failed: a malformed or oversized message (`Ok`, the refusal of `limits::client_fault`),
    /// or a reset or transport error (`Err`, tonic's status); the stream ends there.
    ClientFault(Result<Refusal, Status>),
    /// The client ended the stream. Said explicitly, so that a reader that stops without it (it panicked) fails the
    /// call instead of ending it as if complete.
    End,
}

/// The reader of a StreamFacts stream: a task that receives messages and prepares them ([`Hub::prepare_push`]: the
/// CPU part of a push) at most [`READ_AHEAD_FACTS`] facts ahead, until the stream ends, fails or the receiver is
/// dropped (the handler returned: the task is aborted with it).
struct ReadAhead {
    /// Each item with its share of the [`READ_AHEAD_FACTS`] budget, given back when the handler takes the item.
    rx: tokio::sync::mpsc::UnboundedReceiver<(Ahead, Option<tokio::sync::OwnedSemaphorePermit>)>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn read_ahead(hub: Hub, principal: Principal, mut stream: Streaming<pb::PushFactsRequest>) -> ReadAhead {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let budget = std::sync::Arc::new(tokio::sync::Semaphore::new(READ_AHEAD_FACTS));
    let task = tokio::spawn(async move {
        loop {
            let item = match stream.message().await {
                Ok(Some(msg)) if msg.facts.is_empty() => continue,
                Ok(Some(msg)) => {
                    let facts = msg.facts.into_iter().map(fact_in).collect();
                    match hub.prepare_push(&principal, STREAM, facts) {
                        Ok(p) => Ahead::Push(p),
                        Err(e) => Ahead::Refused(e),
                    }
                }
                Ok(None) => Ahead::End,
                Err(s) => Ahead::ClientFault(super::limits::client_fault(s)),
            };
            let last = !matches!(item, Ahead::Push(_));
            // Waits while the facts waiting before it fill the budget (a message larger than the budget waits for
            // all of it).
            let share = match &item {
                Ahead::Push(p) => match budget.clone().acquire_many_owned(p.len().min(READ_AHEAD_FACTS) as u32).await {
                    Ok(permit) => Some(permit),
                    Err(_) => return,
                },
                _ => None,
            };
            if tx.send((item, share)).is_err() || last {
                return;
            }
        }
    });
    ReadAhead { rx, task }
}

pub struct ExchangeService {
    pub hub: Hub,
    pub auth: Authenticator,
    /// Fired when the hub starts shutting down: open StreamFacts streams end with UNAVAILABLE after the batch
    /// in hand (which is committed), saying what was processed so the client resumes on another connection.
    pub draining: crate::server::lifetime::Trigger,
    pub metrics: Arc<Metrics>,
    /// Delivery settings of WatchChanges (heartbeat, lag, send timeout).
    pub watch: super::watch::WatchSettings,
}

impl ExchangeService {
    /// Count each fact's outcome in `doudi_facts_ingested_total`.
    fn count_outcomes(&self, agency: &str, counts: &pb::OutcomeCounts) {
        for (outcome, n) in [
            ("ACCEPTED", counts.accepted),
            ("NEW_VERSION", counts.new_version),
            ("DUPLICATE", counts.duplicate),
            ("STALE", counts.stale),
            ("REJECTED", counts.rejected),
        ] {
            if n > 0 {
                self.metrics.facts.with_label_values(&[agency, outcome]).inc_by(n);
            }
        }
    }
}

fn result_out(r: &FactResult, offset: usize) -> pb::FactResult {
    let (outcome, field, reason) = match &r.outcome {
        FactOutcome::Stored(Decision::Accepted) => (pb::FactOutcome::Accepted, "", ""),
        FactOutcome::Stored(Decision::NewVersion) => (pb::FactOutcome::NewVersion, "", ""),
        FactOutcome::Stored(Decision::Duplicate) => (pb::FactOutcome::Duplicate, "", ""),
        FactOutcome::Stored(Decision::Stale) => (pb::FactOutcome::Stale, "", ""),
        FactOutcome::Rejected { field, reason } => (pb::FactOutcome::Rejected, field.as_str(), reason.as_str()),
    };
    let index = r.index + offset;
    pb::FactResult {
        index: index as u32,
        fact_id: r.fact_id.clone(),
        outcome: outcome as i32,
        field: if field.is_empty() { String::new() } else { format!("facts[{index}].{field}") },
        reason: reason.to_owned(),
    }
}

fn count(counts: &mut pb::OutcomeCounts, r: &FactResult) {
    match &r.outcome {
        FactOutcome::Stored(Decision::Accepted) => counts.accepted += 1,
        FactOutcome::Stored(Decision::NewVersion) => counts.new_version += 1,
        FactOutcome::Stored(Decision::Duplicate) => counts.duplicate += 1,
        FactOutcome::Stored(Decision::Stale) => counts.stale += 1,
        FactOutcome::Rejected { .. } => counts.rejected += 1,
    }
}

/// `ErrorInfo.metadata` key of a StreamFacts refusal: how many facts of the stream were processed before it
/// (errors.proto); the client resends from that one.
pub const FACTS_PROCESSED: &str = "facts_processed";

const PUSH: &str = "/doudi.v1.RecipientExchange/PushFacts";
const STREAM: &str = "/doudi.v1.RecipientExchange/StreamFacts";
const GET: &str = "/doudi.v1.RecipientExchange/GetRecipient";
const LIST: &str = "/doudi.v1.RecipientExchange/ListRecipients";
const WATCH: &str = "/doudi.v1.RecipientExchange/WatchChanges";

#[tonic::async_trait]
impl RecipientExchange for ExchangeService {
    type WatchChangesStream = super::watch::WatchStream;
    type MatchRecipientsStream = super::matching::MatchStream;

    async fn match_recipients(
        &self,
        req: Request<Streaming<pb::MatchRecipientsRequest>>,
    ) -> Result<Response<Self::MatchRecipientsStream>, Status> {
        let principal = self.auth.principal(&req)?;
        if self.draining.is_fired() {
            return Err(shutting_down("the hub is shutting down: compare on another connection or hub").into());
        }
        // Refused before a message is read when the agency may never compare; the purpose comes with the first one.
        self.hub.check_match_access(&principal)?;
        let permit = self.auth.stream_permit(&principal)?;
        let call = super::matching::MatchCall {
            hub: self.hub.clone(),
            auth: self.auth.clone(),
            principal,
            draining: self.draining.clone(),
            permit,
        };
        Ok(Response::new(super::matching::spawn(call, req.into_inner())))
    }

    async fn watch_changes(
        &self,
        req: Request<pb::WatchChangesRequest>,
    ) -> Result<Response<Self::WatchChangesStream>, Status> {
        let principal = self.auth.principal(&req)?;
        if self.draining.is_fired() {
            return Err(shutting_down("the hub is shutting down: watch on another connection or hub").into());
        }
        let permit = self.auth.watch_permit(&principal)?;
        let r = req.into_inner();
        let kinds = r
            .kinds
            .iter()
            .enumerate()
            .map(|(i, k)| payload_kind_in(*k, &format!("kinds[{i}]")))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(&e.field, e.reason))?;
        let division = if r.division_code.is_empty() {
            None
        } else {
            Some(r.division_code.parse().map_err(|e| invalid("division_code", e))?)
        };
        // Subscribed before the starting cursor is read, so a commit in between still wakes the watcher.
        let head = self.hub.subscribe_changes();
        let request = WatchRequest { after_cursor: r.after_cursor, kinds, division, purpose: r.purpose };
        let plan = self.hub.start_watch(&principal, WATCH, request).await?;
        tracing::info!(agency = %principal.agency(), after_cursor = plan.start, "WatchChanges started");
        Ok(Response::new(super::watch::spawn(self.hub.clone(), plan, self.watch, head, self.draining.clone(), permit)))
    }

    async fn push_facts(&self, req: Request<pb::PushFactsRequest>) -> Result<Response<pb::PushFactsResponse>, Status> {
        let principal = self.auth.principal(&req)?;
        let facts = req.into_inner().facts.into_iter().map(fact_in).collect();
        let results = self.hub.push_facts(&principal, PUSH, facts).await?;
        let mut counts = pb::OutcomeCounts::default();
        results.iter().for_each(|r| count(&mut counts, r));
        self.count_outcomes(&agency_label(&principal), &counts);
        tracing::info!(agency = %principal.agency(), accepted = counts.accepted, new_version = counts.new_version,
            duplicate = counts.duplicate, stale = counts.stale, rejected = counts.rejected, "PushFacts");
        Ok(Response::new(pb::PushFactsResponse {
            results: results.iter().map(|r| result_out(r, 0)).collect(),
            counts: Some(counts),
            results_truncated: false,
        }))
    }

    async fn stream_facts(
        &self,
        req: Request<Streaming<pb::PushFactsRequest>>,
    ) -> Result<Response<pb::PushFactsResponse>, Status> {
        let principal = self.auth.principal(&req)?;
        let _permit = self.auth.stream_permit(&principal)?;
        let agency = agency_label(&principal);
        let _open = self.metrics.stream_opened(&agency);
        let stream = req.into_inner();
        let mut counts = pb::OutcomeCounts::default();
        let mut rejected = Vec::new();
        let mut truncated = false;
        let mut offset = 0usize;
        let draining = self.draining.fired();
        tokio::pin!(draining);
        // Messages are read and prepared ahead (`read_ahead`) while the writer stores the ones before; the loop stores
        // what is ready, in order, as one group (docs/storage-layout.md, "Write path").
        let mut ahead = read_ahead(self.hub.clone(), principal.clone(), stream);
        let mut pending: Option<Ahead> = None;
        // The parts of a message larger than one bulk transaction not stored yet (`PreparedPush::split`).
        let mut parts: std::collections::VecDeque<PreparedPush> = std::collections::VecDeque::new();
        loop {
            let first = match pending.take().or_else(|| parts.pop_front().map(Ahead::Push)) {
                Some(item) => Some(item),
                None => tokio::select! {
                    biased;
                    () = &mut draining => {
                        tracing::info!(agency = %principal.agency(), facts = offset, "StreamFacts ended: hub shutting down");
                        return Err(shutting_down(format!(
                            "the hub is shutting down: reconnect and resend from fact {offset}; the {offset} facts before \
                             it were processed (accepted {}, new_version {}, duplicate {}, stale {}, rejected {})",
                            counts.accepted, counts.new_version, counts.duplicate, counts.stale, counts.rejected
                        ))
                        .info(FACTS_PROCESSED, offset)
                        .into());
                    }
                    item = ahead.rx.recv() => item.map(|(item, _share)| item),
                },
            };
            let mut group: Vec<PreparedPush> = Vec::new();
            let mut facts = 0usize;
            let mut next = first;
            loop {
                match next {
                    Some(Ahead::Push(p)) => {
                        // A message larger than one bulk transaction is stored in parts, one group each.
                        let mut split = p.split(MAX_BULK_FACTS).into_iter();
                        let p = split.next().expect("a push has at least one part");
                        parts.extend(split);
                        facts += p.len();
                        group.push(p);
                    }
                    Some(other) => {
                        pending = Some(other);
                        break;
                    }
                    None => break,
                }
                if facts >= MAX_BULK_FACTS || !parts.is_empty() {
                    break;
                }
                next = match ahead.rx.try_recv() {
                    Ok((item, _share)) => Some(item),
                    Err(_) => break,
                };
            }
            if group.is_empty() {
                match pending.take() {
                    // Refused before storing: what came before is committed.
                    Some(Ahead::Refused(e)) => return Err(Refusal::from(e).info(FACTS_PROCESSED, offset).into()),
                    // Say what was committed before the bad message, so the client can resume.
                    Some(Ahead::ClientFault(fault)) => {
                        let processed = |m: &str| {
                            format!(
                                "message after fact {offset}: {m}; the {offset} facts before it were processed \
                                 (accepted {}, new_version {}, duplicate {}, stale {}, rejected {})",
                                counts.accepted, counts.new_version, counts.duplicate, counts.stale, counts.rejected
                            )
                        };
                        let s = match fault {
                            Ok(refusal) => Status::from(refusal.rephrase(processed).info(FACTS_PROCESSED, offset)),
                            Err(s) => Status::new(s.code(), processed(s.message())),
                        };
                        tracing::warn!(agency = %principal.agency(), code = ?s.code(), facts = offset, message = s.message(),
                            "StreamFacts: refused a client's message");
                        return Err(s);
                    }
                    Some(Ahead::End) => break,
                    // The reader stopped without saying why (a bug: it panicked): what came before is committed.
                    Some(Ahead::Push(_)) | None => {
                        tracing::error!(agency = %principal.agency(), facts = offset, "StreamFacts: the stream's reader stopped");
                        return Err(Refusal::new(
                            tonic::Code::Internal,
                            super::status::ErrorReason::InternalError,
                            format!(
                                "the hub failed reading the stream after fact {offset}; the {offset} facts before it \
                                 were processed (accepted {}, new_version {}, duplicate {}, stale {}, rejected {}): \
                                 resend from fact {offset}",
                                counts.accepted, counts.new_version, counts.duplicate, counts.stale, counts.rejected
                            ),
                        )
                        .info(FACTS_PROCESSED, offset)
                        .into());
                    }
                }
            }
            let stored = self
                .hub
                .store_pushes(group, Priority::Bulk)
                .await
                .map_err(|e| Refusal::from(e).info(FACTS_PROCESSED, offset))?;
            for results in stored {
                let n = results.len();
                let mut batch = pb::OutcomeCounts::default();
                results.iter().for_each(|r| count(&mut batch, r));
                self.count_outcomes(&agency, &batch);
                for r in &results {
                    count(&mut counts, r);
                    if matches!(r.outcome, FactOutcome::Rejected { .. }) {
                        if rejected.len() < STREAM_REJECTIONS_LISTED {
                            rejected.push(result_out(r, offset));
                        } else {
                            truncated = true;
                        }
                    }
                }
                offset += n;
            }
        }
        tracing::info!(agency = %principal.agency(), facts = offset, accepted = counts.accepted, new_version = counts.new_version,
            duplicate = counts.duplicate, stale = counts.stale, rejected = counts.rejected, "StreamFacts");
        Ok(Response::new(pb::PushFactsResponse {
            results: rejected,
            counts: Some(counts),
            results_truncated: truncated,
        }))
    }

    async fn get_recipient(&self, req: Request<pb::GetRecipientRequest>) -> Result<Response<pb::Recipient>, Status> {
        let principal = self.auth.principal(&req)?;
        let r = req.into_inner();
        let id = id_number_in(&r.id_number, "id_number").map_err(|e| invalid(&e.field, e.reason))?;
        let as_of = date_in(&r.as_of, "as_of", self.hub.today()).map_err(|e| invalid(&e.field, e.reason))?;
        if r.page_size < 0 {
            return Err(invalid("page_size", "must not be negative"));
        }
        let view = self
            .hub
            .get_recipient(&principal, GET, &id, as_of, &r.purpose, r.page_size as usize, &r.page_token)
            .await?;
        Ok(Response::new(recipient_out(&view, as_of)))
    }

    async fn list_recipients(
        &self,
        req: Request<pb::ListRecipientsRequest>,
    ) -> Result<Response<pb::ListRecipientsResponse>, Status> {
        let principal = self.auth.principal(&req)?;
        let r = req.into_inner();
        let as_of = date_in(&r.as_of, "as_of", self.hub.today()).map_err(|e| invalid(&e.field, e.reason))?;
        let division = if r.division_code.is_empty() {
            None
        } else {
            Some(r.division_code.parse().map_err(|e| invalid("division_code", e))?)
        };
        let program = program_filter(r.program).map_err(|e| invalid(&e.field, e.reason))?;
        if r.page_size < 0 {
            return Err(invalid("page_size", "must not be negative"));
        }
        let page = self
            .hub
            .list_recipients(
                &principal,
                LIST,
                division,
                program,
                as_of,
                r.page_size as usize,
                &r.page_token,
                &r.purpose,
            )
            .await?;
        Ok(Response::new(pb::ListRecipientsResponse {
            recipients: page.recipients.iter().map(|v| recipient_out(v, as_of)).collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size,
            omitted_count: page.omitted_count,
        }))
    }
}
