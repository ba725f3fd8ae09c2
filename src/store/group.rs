//! Group commit (issue 17 item 1): small writes of concurrent requests, handed in one by one, committed together in
//! one transaction; each caller is answered only after the transaction holding its write has committed.
//!
//! Used for the audit events of reads ([`crate::store::FactReads::record_audit`]): 32 concurrent GetRecipient calls
//! were 32 write transactions queued on the one writer (SQLite's writer connection, PostgreSQL's advisory lock), each
//! with its own commit and fsync; now whatever arrived while one transaction ran is the next transaction.
//!
//! Leader and followers, no background task: a caller queues its item, then waits for the leader's turn
//! (`leader`, a FIFO mutex). Whoever holds the turn takes everything queued (at most `max` items) and commits it,
//! then returns at once if its own item was among them; the other callers whose items it committed find their answer
//! when their turn comes and return at once. The commit runs in a spawned task which answers every caller of its group
//! itself, so a caller whose request is cancelled while it leads (tonic drops the handler's future when the client
//! goes away) cancels neither the commit nor the other callers' answers. An item is committed at most once; a group's
//! failure is every one of its callers' failure (the transaction rolled back: none of its items is stored).

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::StoreError;

/// Audit events in one group-committed transaction at most: about 2 ms of the SQLite writer, so a group stays within
/// the bound interactive writes wait for (`writer::MAX_BULK_FACTS`).
pub(crate) const MAX_AUDIT_GROUP: usize = 256;

type Answer<O> = Result<O, Arc<StoreError>>;

/// A queue of items committed in groups (module docs); each item's commit gives its caller an `O`.
pub(crate) struct GroupCommit<T, O = ()> {
    pending: Mutex<Vec<(T, oneshot::Sender<Answer<O>>)>>,
    leader: tokio::sync::Mutex<()>,
    max: usize,
}

impl<T: Send + 'static> GroupCommit<T, ()> {
    /// Queue `item` and return once a transaction holding it has committed (`Ok`) or failed (the error of that
    /// transaction, shared by its group: [`StoreError::Group`]). `commit` writes and commits one group, in the order
    /// the items were queued; it is called by whichever caller leads, so every caller passes the same kind of closure.
    pub(crate) async fn submit<F, Fut>(&self, item: T, commit: F) -> Result<(), StoreError>
    where
        F: Fn(Vec<T>) -> Fut,
        Fut: Future<Output = Result<(), StoreError>> + Send + 'static,
    {
        self.submit_each(item, |items| {
            let n = items.len();
            let work = commit(items);
            async move { work.await.map(|()| vec![(); n]) }
        })
        .await
    }
}

impl<T: Send + 'static, O: Send + 'static> GroupCommit<T, O> {
    /// A queue whose transactions hold at most `max` items (at least 1).
    pub(crate) fn new(max: usize) -> Self {
        GroupCommit { pending: Mutex::new(Vec::new()), leader: tokio::sync::Mutex::new(()), max: max.max(1) }
    }

    /// [`GroupCommit::submit`] where the commit of a group returns one output per item, in order, and each caller
    /// gets its own item's (a group's commit that returns fewer outputs than items leaves the rest `lost`).
    pub(crate) async fn submit_each<F, Fut>(&self, item: T, commit: F) -> Result<O, StoreError>
    where
        F: Fn(Vec<T>) -> Fut,
        Fut: Future<Output = Result<Vec<O>, StoreError>> + Send + 'static,
    {
        let (tx, mut rx) = oneshot::channel();
        self.lock_pending().push((item, tx));
        loop {
            let turn = self.leader.lock().await;
            if let Some(answer) = answered(&mut rx) {
                return answer;
            }
            let group: Vec<_> = {
                let mut pending = self.lock_pending();
                let n = pending.len().min(self.max);
                pending.drain(..n).collect()
            };
            if group.is_empty() {
                // Ours was taken by a leader that was cancelled while its commit (a spawned task) still runs: that
                // task answers us.
                drop(turn);
                return match rx.await {
                    Ok(answer) => answer.map_err(StoreError::Group),
                    Err(_) => Err(lost()),
                };
            }
            let (items, callers): (Vec<T>, Vec<_>) = group.into_iter().unzip();
            let work = commit(items);
            let done = tokio::spawn(async move {
                match work.await {
                    Ok(outs) => {
                        for (caller, out) in callers.into_iter().zip(outs) {
                            let _ = caller.send(Ok(out));
                        }
                    }
                    Err(e) => {
                        let e = Arc::new(e);
                        for caller in callers {
                            let _ = caller.send(Err(e.clone()));
                        }
                    }
                }
            });
            // A panic in the commit drops its callers' senders: they get `lost()`.
            let _ = done.await;
            drop(turn);
            // Ours was in that group unless `max` items were queued before it: answered now. Queueing for the turn
            // again would put this caller behind the next group's leader, answered only after that commit too.
            if let Some(answer) = answered(&mut rx) {
                return answer;
            }
        }
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Vec<(T, oneshot::Sender<Answer<O>>)>> {
        // The lock is held only to push or drain; a panic there cannot leave the queue half-changed.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The answer in `rx` if it came (a closed channel: the commit holding the item ended without one), `None` while the
/// item waits.
fn answered<O>(rx: &mut oneshot::Receiver<Answer<O>>) -> Option<Result<O, StoreError>> {
    match rx.try_recv() {
        Ok(answer) => Some(answer.map_err(StoreError::Group)),
        Err(oneshot::error::TryRecvError::Closed) => Some(Err(lost())),
        Err(oneshot::error::TryRecvError::Empty) => None,
    }
}

/// The commit holding an item ended without an answer (it panicked).
fn lost() -> StoreError {
    StoreError::Group(Arc::new(crate::store::corrupt("group commit", "the transaction ended without an answer")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tokio::sync::Notify;

    type Commit = std::pin::Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>>;

    /// A log of committed groups; its commit sleeps so that callers pile up behind it.
    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<Vec<u32>>>>);

    impl Log {
        fn commit(&self, fail_on: Option<u32>) -> impl Fn(Vec<u32>) -> Commit + use<> {
            let log = self.clone();
            move |items: Vec<u32>| {
                let log = log.clone();
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    if fail_on.is_some_and(|f| items.contains(&f)) {
                        return Err(crate::store::corrupt("test", "refused"));
                    }
                    log.0.lock().unwrap().push(items);
                    Ok(())
                })
            }
        }
        fn groups(&self) -> Vec<Vec<u32>> {
            self.0.lock().unwrap().clone()
        }
    }

    #[tokio::test]
    async fn concurrent_items_share_transactions_and_each_is_committed_once() {
        let g = Arc::new(GroupCommit::<u32>::new(1000));
        let log = Log::default();
        let mut tasks = Vec::new();
        for i in 0..50u32 {
            let (g, log) = (g.clone(), log.clone());
            tasks.push(tokio::spawn(async move { g.submit(i, log.commit(None)).await }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let groups = log.groups();
        let mut all: Vec<u32> = groups.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..50).collect::<Vec<_>>(), "every item exactly once");
        // 50 callers arriving together while a 20 ms commit runs: the first commits alone, the rest pile up
        // behind it, so far fewer than 50 transactions.
        assert!(groups.len() < 10, "{} transactions for 50 items", groups.len());
    }

    #[tokio::test]
    async fn a_group_is_at_most_max_items() {
        let g = Arc::new(GroupCommit::<u32>::new(4));
        let log = Log::default();
        let mut tasks = Vec::new();
        for i in 0..20u32 {
            let (g, log) = (g.clone(), log.clone());
            tasks.push(tokio::spawn(async move { g.submit(i, log.commit(None)).await }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let groups = log.groups();
        assert!(groups.iter().all(|g| g.len() <= 4), "{groups:?}");
        assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), 20);
    }

    #[tokio::test]
    async fn a_failed_group_fails_each_of_its_callers_and_no_other() {
        let g = Arc::new(GroupCommit::<u32>::new(1000));
        let log = Log::default();
        // 0 commits alone (the first leader); 1..10 queue behind it and form one group, which fails on 5.
        let first = {
            let (g, log) = (g.clone(), log.clone());
            tokio::spawn(async move { g.submit(0, log.commit(Some(5))).await })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        let mut rest = Vec::new();
        for i in 1..10u32 {
            let (g, log) = (g.clone(), log.clone());
            rest.push(tokio::spawn(async move { g.submit(i, log.commit(Some(5))).await }));
        }
        assert!(first.await.unwrap().is_ok());
        for t in rest {
            let e = t.await.unwrap().unwrap_err();
            assert!(e.to_string().contains("refused"), "{e}");
        }
        assert_eq!(log.groups(), vec![vec![0]]);
    }

    /// A leader whose own item was in the group it committed returns as soon as that commit is done: it does not queue
    /// for the turn again behind the next group's commit. Item 0's commit runs until released; item 1 is queued
    /// meanwhile, so it leads the next group, whose commit never ends until the test opens it, after the leader of 0
    /// has returned.
    #[tokio::test]
    async fn a_leader_returns_once_its_own_group_has_committed() {
        let g = Arc::new(GroupCommit::<u32>::new(1000));
        let (started, release, gate) = (Arc::new(Notify::new()), Arc::new(Notify::new()), Arc::new(Notify::new()));
        let commit = {
            let (started, release, gate) = (started.clone(), release.clone(), gate.clone());
            move |items: Vec<u32>| -> Commit {
                let (started, release, gate) = (started.clone(), release.clone(), gate.clone());
                Box::pin(async move {
                    if items == [0] {
                        started.notify_one();
                        release.notified().await;
                    } else {
                        gate.notified().await;
                    }
                    Ok(())
                })
            }
        };
        let leader = tokio::spawn({
            let (g, commit) = (g.clone(), commit.clone());
            async move { g.submit(0, commit).await }
        });
        started.notified().await;
        let next = tokio::spawn({
            let g = g.clone();
            async move { g.submit(1, commit).await }
        });
        while g.lock_pending().len() != 1 {
            tokio::task::yield_now().await;
        }
        release.notify_one();
        let answer = tokio::time::timeout(Duration::from_secs(5), leader).await;
        answer.expect("the leader of 0 waited for the next group's commit").unwrap().unwrap();
        gate.notify_one();
        next.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_cancelled_leader_neither_cancels_the_commit_nor_the_others_answers() {
        let g = Arc::new(GroupCommit::<u32>::new(1000));
        let log = Log::default();
        let calls = Arc::new(AtomicUsize::new(0));
        // The leader's commit takes 20 ms; the leader's future is dropped after 5 ms.
        let leader = {
            let (g, log) = (g.clone(), log.clone());
            tokio::spawn(async move { g.submit(0, log.commit(None)).await })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        leader.abort();
        let mut rest = Vec::new();
        for i in 1..5u32 {
            let (g, log, calls) = (g.clone(), log.clone(), calls.clone());
            rest.push(tokio::spawn(async move {
                calls.fetch_add(1, Ordering::Relaxed);
                g.submit(i, log.commit(None)).await
            }));
        }
        for t in rest {
            t.await.unwrap().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        let mut all: Vec<u32> = log.groups().into_iter().flatten().collect();
        all.sort_unstable();
        assert_eq!(all, vec![0, 1, 2, 3, 4], "the cancelled leader's item was still committed, once");
    }
}
