//! The single writer's lock, with two queues (issue 17 item 1): interactive writes (a read's audit event, a PushFacts,
//! a warning, a fund report, every operator write) are handed the writer before any bulk write (a StreamFacts group)
//! that waits, so an interactive write waits for at most the transaction in progress, whose size the bulk path bounds
//! ([`MAX_BULK_FACTS`]), and the interactive writers queued before it; except that a bulk writer passed over by
//! [`BULK_AFTER`] interactive writers in a row goes next (without that, audited reads arriving steadily held a
//! 1,000-fact stream for seconds that takes 0.1 s alone). Within a queue, first come first served. Backend-neutral:
//! SQLite's writer connection uses it, and each PostgreSQL hub process queues its writers here before the hub-wide
//! advisory lock (so priorities hold within a replica; across replicas the advisory lock's queue decides).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Facts at which a bulk write transaction stops growing: a StreamFacts group (consecutive messages of one stream,
/// written in one transaction) takes messages while it holds fewer, so it holds at most this many plus one message
/// (`max_batch`). With the usual 2,000-fact messages a group is one message, about 30–50 ms of the SQLite writer at
/// the rates `doudi bench` measures: the wait of an interactive write that arrives just after one began. Groups of
/// 6,000 and 12,000 facts ingested no faster and tripled P6's p99 (README, figures of 2026-12-06, third session).
pub const MAX_BULK_FACTS: usize = 2_000;

/// Interactive writers handed the lock in a row, while a bulk writer waits, before that bulk writer goes next.
pub const BULK_AFTER: usize = 8;

/// Which queue a writer waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Waits for the writer in progress only (requests a person is waiting for).
    Interactive,
    /// Waits also for every interactive writer queued (bulk loads).
    Bulk,
}

#[derive(Default)]
struct State {
    held: bool,
    interactive: VecDeque<oneshot::Sender<()>>,
    bulk: VecDeque<oneshot::Sender<()>>,
    /// Interactive writers handed the lock in a row while a bulk writer waited ([`BULK_AFTER`]).
    passed_over: usize,
}

/// The writer lock: one holder at a time, interactive waiters first (module docs). Cancellation-safe: a waiter dropped
/// before or after being handed the lock passes it on.
#[derive(Default, Clone)]
pub struct WriteLock {
    state: Arc<Mutex<State>>,
}

/// Holds the writer until dropped; then the next waiter (interactive first) gets it.
pub struct WriteGuard {
    lock: WriteLock,
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        self.lock.release();
    }
}

/// A waiter's place in a queue: if it is dropped after the lock was handed to it, it passes the lock on.
struct Waiting {
    lock: WriteLock,
    rx: Option<oneshot::Receiver<()>>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            rx.close();
            if rx.try_recv().is_ok() {
                self.lock.release();
            }
        }
    }
}

impl WriteLock {
    /// Wait for the writer in `priority`'s queue.
    pub async fn lock(&self, priority: Priority) -> WriteGuard {
        loop {
            let rx = {
                let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if !s.held {
                    s.held = true;
                    return WriteGuard { lock: self.clone() };
                }
                let (tx, rx) = oneshot::channel();
                let queue = match priority {
                    Priority::Interactive => &mut s.interactive,
                    Priority::Bulk => &mut s.bulk,
                };
                queue.retain(|t| !t.is_closed()); // waiters cancelled meanwhile
                queue.push_back(tx);
                rx
            };
            let mut waiting = Waiting { lock: self.clone(), rx: Some(rx) };
            let handed = match waiting.rx.as_mut() {
                Some(rx) => rx.await.is_ok(),
                None => false,
            };
            // Handed the lock (or never will be): either way the waiter has nothing to pass on when dropped.
            waiting.rx = None;
            if handed {
                return WriteGuard { lock: self.clone() };
            }
        }
    }

    /// Hand the lock to the first live waiter, interactive first (bulk first once [`BULK_AFTER`] interactive writers
    /// in a row went before a waiting bulk writer: interactive writers that keep coming would shut bulk loads out), or
    /// mark it free.
    fn release(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let bulk_first = s.passed_over >= BULK_AFTER;
            let next = match bulk_first {
                true => s.bulk.pop_front().map(|t| (t, false)).or_else(|| s.interactive.pop_front().map(|t| (t, true))),
                false => {
                    s.interactive.pop_front().map(|t| (t, true)).or_else(|| s.bulk.pop_front().map(|t| (t, false)))
                }
            };
            let Some((tx, interactive)) = next else { break };
            if tx.send(()).is_ok() {
                s.passed_over = match interactive && s.bulk.iter().any(|t| !t.is_closed()) {
                    true => s.passed_over + 1,
                    false => 0,
                };
                return;
            }
        }
        s.passed_over = 0;
        s.held = false;
    }

    /// Live waiters in each queue `(interactive, bulk)` (for tests and metrics; a cancelled waiter is not counted).
    pub fn waiting(&self) -> (usize, usize) {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let live = |q: &VecDeque<oneshot::Sender<()>>| q.iter().filter(|t| !t.is_closed()).count();
        (live(&s.interactive), live(&s.bulk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// With the lock held and two bulk writers queued before an interactive one, the interactive writer goes next,
    /// then the bulk writers in arrival order.
    #[tokio::test]
    async fn interactive_waiters_go_before_bulk_waiters() {
        let lock = WriteLock::default();
        let order = Arc::new(Mutex::new(Vec::new()));
        let held = lock.lock(Priority::Bulk).await;
        let mut tasks = Vec::new();
        for (name, p) in
            [("bulk-1", Priority::Bulk), ("bulk-2", Priority::Bulk), ("interactive", Priority::Interactive)]
        {
            let (l, order) = (lock.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _g = l.lock(p).await;
                order.lock().unwrap().push(name);
            }));
            // Queue them in this order.
            while lock.waiting().0 + lock.waiting().1 < tasks.len() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec!["interactive", "bulk-1", "bulk-2"]);
    }

    /// A waiter cancelled while queued, and one cancelled just after being handed the lock, both pass it on: the
    /// writer queued after them still gets it.
    #[tokio::test]
    async fn a_cancelled_waiter_passes_the_lock_on() {
        let lock = WriteLock::default();
        let held = lock.lock(Priority::Interactive).await;
        let cancelled = tokio::spawn({
            let lock = lock.clone();
            async move {
                let _g = lock.lock(Priority::Interactive).await;
            }
        });
        while lock.waiting().0 < 1 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        cancelled.abort();
        let _ = cancelled.await;
        // Queued and then dropped without being polled again after the hand-over.
        let handed_then_dropped = {
            let lock = lock.clone();
            let mut fut = Box::pin(async move { lock.lock(Priority::Bulk).await });
            // Poll once so it queues.
            assert!(futures::poll!(fut.as_mut()).is_pending());
            fut
        };
        assert_eq!(lock.waiting(), (0, 1), "the aborted waiter is no longer waiting");
        drop(held); // hands the lock to the queued (not polled) bulk waiter
        drop(handed_then_dropped); // which passes it on
        let got = tokio::time::timeout(Duration::from_secs(2), lock.lock(Priority::Interactive)).await;
        assert!(got.is_ok(), "the lock was lost");
    }

    /// Many writers of both queues, a third of them aborted at random moments (queued, handed the lock, holding it):
    /// never two holders at once, every writer not aborted gets the lock, and the lock is free at the end (no waiter
    /// left, a new writer gets it at once).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn aborted_writers_never_lose_or_share_the_lock() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let lock = WriteLock::default();
        let inside = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        for round in 0..20u64 {
            let mut tasks = Vec::new();
            for i in 0..60u64 {
                let (l, inside, done) = (lock.clone(), inside.clone(), done.clone());
                let p = if (i + round) % 3 == 0 { Priority::Interactive } else { Priority::Bulk };
                tasks.push(tokio::spawn(async move {
                    /// Counts a holder out when dropped (also when its task is aborted while it holds the lock),
                    /// before the guard declared before it passes the lock on.
                    struct Inside(Arc<AtomicUsize>);
                    impl Drop for Inside {
                        fn drop(&mut self) {
                            self.0.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                    let _g = l.lock(p).await;
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders at once");
                    let _in = Inside(inside);
                    if i % 4 == 0 {
                        tokio::task::yield_now().await;
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                }));
            }
            let mut kept = 0;
            for (i, t) in tasks.into_iter().enumerate() {
                // Every third writer is aborted, after a varying number of yields of this task.
                if i % 3 == 1 {
                    for _ in 0..(i % 5) {
                        tokio::task::yield_now().await;
                    }
                    t.abort();
                    match t.await {
                        Ok(()) => kept += 1, // finished before the abort
                        Err(e) => assert!(e.is_cancelled(), "a writer panicked: {e}"),
                    }
                } else {
                    let got = tokio::time::timeout(Duration::from_secs(10), t).await;
                    got.expect("a writer waited forever: the lock was lost").expect("a writer panicked");
                    kept += 1;
                }
            }
            assert!(kept >= 40, "round {round}: the 40 writers not aborted all got the lock ({kept})");
            assert_eq!(inside.load(Ordering::SeqCst), 0);
            assert_eq!(lock.waiting(), (0, 0), "round {round}: no live waiter left");
            let free = tokio::time::timeout(Duration::from_secs(2), lock.lock(Priority::Bulk)).await;
            assert!(free.is_ok(), "round {round}: the lock was lost");
        }
        assert!(done.load(Ordering::SeqCst) >= 20 * 40);
    }

    /// A bulk writer is not shut out by interactive writers that keep coming: with the lock held, one bulk writer
    /// queued and then 20 interactive ones, the bulk writer goes after the first [`BULK_AFTER`] interactive ones
    /// (8), then the 12 others.
    #[tokio::test]
    async fn a_bulk_waiter_goes_after_at_most_bulk_after_interactive_ones() {
        let lock = WriteLock::default();
        let order = Arc::new(Mutex::new(Vec::new()));
        let held = lock.lock(Priority::Interactive).await;
        let mut tasks = Vec::new();
        let writers = std::iter::once(("bulk".to_owned(), Priority::Bulk))
            .chain((0..20).map(|i| (format!("i{i}"), Priority::Interactive)));
        for (name, p) in writers {
            let (l, order) = (lock.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _g = l.lock(p).await;
                order.lock().unwrap().push(name);
            }));
            while lock.waiting().0 + lock.waiting().1 < tasks.len() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        let expected: Vec<String> = (0..8)
            .map(|i| format!("i{i}"))
            .chain(std::iter::once("bulk".to_owned()))
            .chain((8..20).map(|i| format!("i{i}")))
            .collect();
        assert_eq!(*order.lock().unwrap(), expected);
    }
}
