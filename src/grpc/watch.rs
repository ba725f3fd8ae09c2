//! WatchChanges delivery (docs/change-feed.md): one task per watch reads the change log from its cursor in pages
//! (bounded memory: one page and a bounded channel per watcher), woken by the store's head notifier after each
//! commit; heartbeats on idle streams; an explicit status — never a silent gap, never a clean end — when the
//! watcher falls behind, when the hub shuts down, or on an internal error. The task ends when the client goes
//! away (its response stream is dropped, which also aborts the task).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tonic::{Code, Status};

use super::convert::{payload_kind_out, timestamp, visible_fact_out};
use super::pb;
use super::status::{DEFAULT_RETRY, ErrorReason, Refusal, internal};
use crate::hub::{ChangeView, Hub, WatchPlan};
use crate::server::lifetime::Trigger;

/// Metadata key of the cursor to resume from, in the trailers of every status that ends a watch.
pub const RESUME_CURSOR: &str = "doudi-resume-cursor";

/// Delivery settings (configuration `watch_*`).
#[derive(Debug, Clone, Copy)]
pub struct WatchSettings {
    /// A heartbeat after this long without a message.
    pub heartbeat: Duration,
    /// While the watcher's buffer has been full for a second: end it (ABORTED) when the log is more than this many
    /// changes ahead of what it has queued.
    pub max_lag: i64,
    /// While the watcher's buffer is full: end it (ABORTED) after this long.
    pub send_timeout: Duration,
    /// Log rows read per query.
    pub page: usize,
    /// Changes queued per watcher ahead of the transport.
    pub buffer: usize,
}

impl Default for WatchSettings {
    fn default() -> Self {
        WatchSettings {
            heartbeat: Duration::from_secs(15),
            max_lag: 100_000,
            send_timeout: Duration::from_secs(30),
            page: 500,
            buffer: 64,
        }
    }
}

/// `ErrorInfo.metadata` key of the cursor to resume from (errors.proto).
pub const RESUME_CURSOR_INFO: &str = "resume_cursor";

/// A status that ends a watch, naming the cursor to resume from in the message, in the `doudi-resume-cursor`
/// trailer and in `ErrorInfo.metadata["resume_cursor"]`. `reason` WATCH_TOO_SLOW (ABORTED) or HUB_SHUTTING_DOWN /
/// STORAGE_UNAVAILABLE (UNAVAILABLE, with RetryInfo 1 s).
pub fn resume_status(code: Code, reason: ErrorReason, cursor: i64, why: &str) -> Status {
    let mut r = Refusal::new(code, reason, format!("{why}; resume from cursor {cursor}"))
        .info(RESUME_CURSOR_INFO, cursor)
        .trailer(RESUME_CURSOR, cursor);
    if code == Code::Unavailable {
        r = r.retry_after(DEFAULT_RETRY);
    }
    r.into()
}

/// The response stream of one watch: the changes the task queued, then the status it ended with.
pub struct WatchStream {
    rx: mpsc::Receiver<pb::Change>,
    end: Option<oneshot::Receiver<Status>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WatchStream {
    /// The client went away (or the connection was cut): stop reading the log at once.
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl futures::Stream for WatchStream {
    type Item = Result<pb::Change, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(c) = std::task::ready!(this.rx.poll_recv(cx)) {
            return Poll::Ready(Some(Ok(c)));
        }
        // The task has stopped queuing: its status comes after everything it queued.
        let Some(end) = this.end.as_mut() else { return Poll::Ready(None) };
        let status = match std::task::ready!(Pin::new(end).poll(cx)) {
            Ok(s) => s,
            Err(_) => internal("the watch ended unexpectedly; resume from the last cursor received"),
        };
        this.end = None;
        Poll::Ready(Some(Err(status)))
    }
}

use std::future::Future as _;

/// Start delivering `plan` (already checked and audited). `head` must have been subscribed before the plan's
/// starting cursor was read, so no commit between the two is missed. `permit` is held until the watch ends.
pub fn spawn<P: Send + 'static>(
    hub: Hub,
    plan: WatchPlan,
    settings: WatchSettings,
    head: watch::Receiver<i64>,
    draining: Trigger,
    permit: P,
) -> WatchStream {
    let (tx, rx) = mpsc::channel(settings.buffer.max(1));
    let (end_tx, end_rx) = oneshot::channel();
    let position = plan.start;
    let mut w = Watcher { hub, plan, settings, head, draining, tx, position, last_sent: Instant::now() };
    let task = tokio::spawn(async move {
        let _permit = permit;
        if let Some(status) = w.run().await.err() {
            let _ = end_tx.send(status);
        }
        // `w.tx` drops here, after the status is in place: the stream yields the queue, then the status.
    });
    WatchStream { rx, end: Some(end_rx), task }
}

struct Watcher {
    hub: Hub,
    plan: WatchPlan,
    settings: WatchSettings,
    head: watch::Receiver<i64>,
    draining: Trigger,
    tx: mpsc::Sender<pb::Change>,
    /// Every change up to this cursor that the caller may see has been queued.
    position: i64,
    last_sent: Instant,
}

/// Why a watch stopped: `Ok(())` = the client went away (nothing to say), `Err(status)` = tell it.
type Ended = Result<(), Status>;

impl Watcher {
    /// Runs until the client goes away (`Ok`) or the watch must end with a status (`Err`).
    async fn run(&mut self) -> Ended {
        // The first message says where the watch starts (useful "from now": the client can resume from it).
        self.send(self.heartbeat()).await?;
        loop {
            if self.draining.is_fired() {
                return Err(self.shutting_down());
            }
            let head = *self.head.borrow_and_update();
            if head > self.position {
                let page = self
                    .hub
                    .watch_page(&self.plan, self.position, head, self.settings.page)
                    .await
                    .map_err(|e| self.internal(e))?;
                for change in page.changes {
                    let cursor = change.cursor();
                    self.send(change_out(&change)).await?;
                    self.position = cursor;
                }
                self.position = page.examined_upto;
                if self.last_sent.elapsed() >= self.settings.heartbeat {
                    self.send(self.heartbeat()).await?;
                }
                continue;
            }
            let next_beat = self.last_sent + self.settings.heartbeat;
            tokio::select! {
                biased;
                () = self.draining.fired() => return Err(self.shutting_down()),
                () = self.tx.closed() => return Ok(()),
                r = self.head.changed() => {
                    if r.is_err() {
                        return Err(self.shutting_down());
                    }
                }
                () = tokio::time::sleep_until(next_beat) => self.send(self.heartbeat()).await?,
            }
        }
    }

    fn heartbeat(&self) -> pb::Change {
        pb::Change { cursor: self.position, heartbeat: true, ..Default::default() }
    }

    fn shutting_down(&self) -> Status {
        resume_status(
            Code::Unavailable,
            ErrorReason::HubShuttingDown,
            self.position,
            "the hub is shutting down: reconnect",
        )
    }

    fn internal(&self, e: crate::hub::HubError) -> Status {
        let s: Status = e.into();
        resume_status(
            Code::Unavailable,
            ErrorReason::StorageUnavailable,
            self.position,
            &format!("the change log could not be read ({})", s.message()),
        )
    }

    /// Queue one message. While the buffer is full: end with UNAVAILABLE at shutdown; with ABORTED after
    /// `send_timeout`, or sooner — once it has been full for [`LAG_GRACE`] — when the log is more than `max_lag`
    /// changes ahead of what was queued. A buffer that is full for a moment (a catch-up read outpacing the network) is
    /// not a laggard. A vanished client ends the watch quietly.
    async fn send(&mut self, msg: pb::Change) -> Ended {
        let blocked_since = Instant::now();
        let deadline = blocked_since + self.settings.send_timeout;
        let mut lag_check = blocked_since + LAG_GRACE.min(self.settings.send_timeout);
        loop {
            tokio::select! {
                biased;
                permit = self.tx.reserve() => {
                    let Ok(permit) = permit else { return Err(Status::cancelled("client gone")) };
                    permit.send(msg);
                    self.last_sent = Instant::now();
                    return Ok(());
                }
                () = self.draining.fired() => return Err(self.shutting_down()),
                () = tokio::time::sleep_until(deadline) => {
                    return Err(resume_status(
                        Code::Aborted,
                        ErrorReason::WatchTooSlow,
                        self.position,
                        &format!(
                            "the watcher is too slow: its send buffer stayed full for {} s (watch_send_timeout_secs)",
                            self.settings.send_timeout.as_secs_f64()
                        ),
                    ));
                }
                () = tokio::time::sleep_until(lag_check) => {
                    let lag = *self.head.borrow() - self.position;
                    if lag > self.settings.max_lag {
                        return Err(resume_status(
                            Code::Aborted,
                            ErrorReason::WatchTooSlow,
                            self.position,
                            &format!(
                                "the watcher fell {lag} changes behind the log (more than watch_max_lag {}) while \
                                 its send buffer was full",
                                self.settings.max_lag
                            ),
                        ));
                    }
                    lag_check = Instant::now() + LAG_POLL;
                }
            }
        }
    }
}

/// How long a watcher's buffer must stay full before its lag is held against it.
const LAG_GRACE: Duration = Duration::from_secs(1);
/// How often the lag is checked after that, while the buffer stays full.
const LAG_POLL: Duration = Duration::from_millis(250);

/// A change as the caller may see it → wire form.
pub fn change_out(c: &ChangeView) -> pb::Change {
    match c {
        ChangeView::Fact { cursor, fact, id_number, id_masked, superseded_version } => pb::Change {
            cursor: *cursor,
            heartbeat: false,
            r#type: if superseded_version.is_some() { pb::ChangeType::NewVersion } else { pb::ChangeType::Created }
                as i32,
            agency: fact.fact.agency.clone(),
            kind: payload_kind_out(fact.fact.kind()) as i32,
            id_number_masked: id_masked.clone(),
            fact: Some(visible_fact_out(id_number, fact)),
            superseded_version: superseded_version.unwrap_or_default(),
            committed_at: Some(timestamp(fact.fact.recorded_at)),
        },
        ChangeView::LeftScope {
            cursor,
            agency,
            fact_id,
            source_version,
            kind,
            id_masked,
            superseded_version,
            committed_at,
        } => pb::Change {
            cursor: *cursor,
            heartbeat: false,
            r#type: pb::ChangeType::LeftScope as i32,
            agency: agency.clone(),
            kind: payload_kind_out(*kind) as i32,
            id_number_masked: id_masked.clone(),
            fact: Some(pb::Fact {
                fact_id: fact_id.clone(),
                source_version: *source_version,
                agency: agency.clone(),
                ..Default::default()
            }),
            superseded_version: *superseded_version,
            committed_at: Some(timestamp(*committed_at)),
        },
    }
}
