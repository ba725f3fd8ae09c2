//! The audit chain check, the same on both backends: recompute every event's hash from the stored rows
//! (`domain::audit` holds the canonical form).

use futures::{Stream, TryStreamExt};

use crate::domain::audit::{EventContent, GENESIS, event_hash, persons_hash};
use crate::store::{ChainCheck, StoreError, corrupt};

/// A stored 32-byte hash.
pub(crate) fn h32(v: Vec<u8>) -> Result<[u8; 32], StoreError> {
    v.try_into().map_err(|_| corrupt("audit_events", "hash length"))
}

/// One stored audit event as the chain check reads it (`at` in microseconds since the Unix epoch, as hashed).
pub(crate) struct ChainEvent {
    pub seq: i64,
    pub at_micros: i64,
    pub agency: String,
    pub division: String,
    pub method: String,
    pub purpose: String,
    pub outcome: String,
    pub person_count: i64,
    pub persons_hash: Vec<u8>,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// Recompute the chain from the stored rows, whatever the backend: `events` in `seq` order, `persons` as
/// `(seq, person_key)` sorted by `seq` then key. Each event's hash from the previous stored hash and its canonical
/// content; its persons hash and count from `audit_persons`; `seq` without gaps from 1. Stops at the first broken
/// event. (Deleting the newest events leaves a valid shorter chain: compare `head` with a copy kept elsewhere to
/// detect that.)
pub(crate) async fn check_chain<E, P>(mut events: E, mut persons: P) -> Result<ChainCheck, StoreError>
where
    E: Stream<Item = Result<ChainEvent, StoreError>> + Unpin,
    P: Stream<Item = Result<(i64, Vec<u8>), StoreError>> + Unpin,
{
    let mut pending: Option<(i64, [u8; 32])> = None;
    let mut expected_seq = 1i64;
    let mut prev = GENESIS;
    let mut checked = 0i64;
    let broken = |seq: i64, why: String, checked: i64, head: [u8; 32]| {
        Ok(ChainCheck { checked, first_broken: Some((seq, why)), head })
    };
    while let Some(e) = events.try_next().await? {
        let seq = e.seq;
        checked += 1;
        // The persons of this event (the persons stream is sorted by seq).
        let mut keys: Vec<[u8; 32]> = Vec::new();
        loop {
            if let Some((s, k)) = pending {
                if s < seq {
                    return broken(
                        s,
                        format!("audit_persons rows of event {s}, which is not in the chain"),
                        checked,
                        prev,
                    );
                }
                if s > seq {
                    break;
                }
                keys.push(k);
                pending = None;
            }
            match persons.try_next().await? {
                Some((s, k)) => pending = Some((s, h32(k)?)),
                None => break,
            }
        }
        if seq != expected_seq {
            return broken(
                expected_seq,
                format!("event {expected_seq} is missing (the next stored is {seq})"),
                checked,
                prev,
            );
        }
        let prev_hash = h32(e.prev_hash)?;
        if prev_hash != prev {
            return broken(seq, "link broken: prev_hash is not the hash of the event before".into(), checked, prev);
        }
        let stored_persons = h32(e.persons_hash)?;
        let content = EventContent {
            seq,
            at_micros: e.at_micros,
            agency: &e.agency,
            division: &e.division,
            method: &e.method,
            purpose: &e.purpose,
            outcome: &e.outcome,
            person_count: e.person_count,
            persons_hash: stored_persons,
        };
        let hash = h32(e.hash)?;
        if event_hash(&prev_hash, &content) != hash {
            return broken(seq, "content altered: the event no longer hashes to its stored hash".into(), checked, prev);
        }
        if persons_hash(&mut keys) != stored_persons || keys.len() as i64 != e.person_count {
            return broken(
                seq,
                "persons altered: the persons recorded for the event were changed".into(),
                checked,
                prev,
            );
        }
        prev = hash;
        expected_seq += 1;
    }
    if let Some((s, _)) = pending {
        return broken(s, format!("audit_persons rows of event {s}, which is not in the chain"), checked, prev);
    }
    Ok(ChainCheck { checked, first_broken: None, head: prev })
}
