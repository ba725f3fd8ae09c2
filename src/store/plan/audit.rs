//! The audit chain check, the same on both backends: recompute every lane's chain from the stored rows and check the
//! checkpoints that tie the lanes together (`domain::audit` holds the canonical form and the lanes).

use std::collections::{BTreeMap, HashMap};

use futures::{Stream, TryStreamExt};

use crate::domain::audit::{
    CHECKPOINT_AGENCY, CHECKPOINT_METHOD, EventContent, GENESIS, LaneHead, event_hash, lane_genesis, parse_heads,
    persons_hash,
};
use crate::store::{ChainCheck, StoreError, corrupt};

/// A stored 32-byte hash.
pub(crate) fn h32(v: Vec<u8>) -> Result<[u8; 32], StoreError> {
    v.try_into().map_err(|_| corrupt("audit_events", "hash length"))
}

/// One stored audit event as the chain check reads it (`at` in microseconds since the Unix epoch, as hashed).
pub(crate) struct ChainEvent {
    pub seq: i64,
    pub lane: i32,
    pub lane_seq: i64,
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
    /// The pinned gateway the call came through ("" for a direct peer; `domain::audit`).
    pub via: String,
    /// A retention purge deleted the event's persons (`purged_at` set, migration 0015): the stored `persons_hash` and
    /// `person_count` stand for them (docs/retention.md).
    pub purged: bool,
}

/// A lane's state during the check: the position and hash its next event must follow.
struct LaneState {
    next: i64,
    prev: [u8; 32],
}

/// Recompute every lane's chain from the stored rows, whatever the backend (`domain::audit` holds the canonical form
/// and the lanes): `events` in `seq` order (the log's order; each lane's events come in their lane order), `persons`
/// as `(seq, person_key)` sorted by `seq` then key, `newest_checkpoints` the newest checkpoint event of each lane as
/// `(lane, lane_seq, purpose)`. Checks each event's hash from the previous stored hash of its lane and its canonical
/// content, its persons hash and count from `audit_persons` (of a purged event without person rows left: the stored
/// ones, docs/retention.md), `lane_seq` without gaps from 1 in every lane; then that
/// every lane reaches the newest event any checkpoint names in it, and that the heads named by each lane's newest
/// checkpoint are the stored events with those hashes. A purged event must be older than `purged_before` (microseconds),
/// the newest cutoff of the audit purges recorded in the log (`domain::retention::purge_cutoff`; `None`: no purge
/// recorded): an event marked purged outside a recorded purge is broken. Stops at the first broken event. (Deleting the newest events
/// of a lane after every checkpoint that names them leaves valid shorter lanes: compare `heads` with a copy kept
/// elsewhere to detect that.)
pub(crate) async fn check_chain<E, P>(
    mut events: E,
    mut persons: P,
    newest_checkpoints: Vec<(i32, i64, String)>,
    purged_before: Option<i64>,
) -> Result<ChainCheck, StoreError>
where
    E: Stream<Item = Result<ChainEvent, StoreError>> + Unpin,
    P: Stream<Item = Result<(i64, Vec<u8>), StoreError>> + Unpin,
{
    let mut pending: Option<(i64, [u8; 32])> = None;
    let mut lanes: BTreeMap<i32, LaneState> = BTreeMap::new();
    let mut checked = 0i64;
    let mut last_seq = 0i64;
    let mut checkpoint: Option<LaneHead> = None;
    // The newest position any checkpoint names in each lane, and which checkpoint named it.
    let mut named: BTreeMap<i32, (i64, i32, i64)> = BTreeMap::new();
    // The heads each lane's newest checkpoint names: (named lane, seq) → (expected hash, naming lane, its seq).
    let mut claims: HashMap<(i32, i64), ([u8; 32], i32, i64)> = HashMap::new();
    for (lane, lane_seq, purpose) in &newest_checkpoints {
        // An altered purpose is found by the pass (content altered); a checkpoint not in the form names nothing.
        for h in parse_heads(purpose).unwrap_or_default() {
            if h.lane != *lane {
                claims.insert((h.lane, h.seq), (h.hash, *lane, *lane_seq));
            }
        }
    }
    let mut found: HashMap<(i32, i64), [u8; 32]> = HashMap::new();
    let result = |lanes: &BTreeMap<i32, LaneState>, checked, broken: Option<(i32, i64, String)>, checkpoint| {
        let heads: Vec<LaneHead> = lanes
            .iter()
            .filter(|(_, s)| s.next > 1)
            .map(|(lane, s)| LaneHead { lane: *lane, seq: s.next - 1, hash: s.prev })
            .collect();
        let head = lanes.get(&0).map(|s| s.prev).unwrap_or(GENESIS);
        let (first_broken_lane, first_broken) = match broken {
            Some((lane, seq, why)) => (lane, Some((seq, why))),
            None => (0, None),
        };
        Ok(ChainCheck { checked, first_broken, first_broken_lane, head, heads, checkpoint })
    };
    while let Some(e) = events.try_next().await? {
        let seq = e.seq;
        checked += 1;
        // The persons of this event (the persons stream is sorted by seq).
        let mut keys: Vec<[u8; 32]> = Vec::new();
        loop {
            if let Some((s, k)) = pending {
                if s < seq {
                    let why = format!("audit_persons rows of log seq {s}, which is not in the chain");
                    return result(&lanes, checked, Some((e.lane, e.lane_seq, why)), checkpoint);
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
        if seq <= last_seq {
            let why = format!("log seq {seq} is stored twice");
            return result(&lanes, checked, Some((e.lane, e.lane_seq, why)), checkpoint);
        }
        last_seq = seq;
        let of_lane = |lane: i32| if lane == 0 { String::new() } else { format!(" of lane {lane}") };
        let st = lanes.entry(e.lane).or_insert(LaneState { next: 1, prev: lane_genesis(e.lane) });
        let (next, prev) = (st.next, st.prev);
        if e.lane_seq != next {
            let why = if e.lane_seq > next {
                format!("event {next}{} is missing (the next stored is {})", of_lane(e.lane), e.lane_seq)
            } else {
                format!(
                    "event {}{} is out of order (log seq {seq}, after event {})",
                    e.lane_seq,
                    of_lane(e.lane),
                    next - 1
                )
            };
            return result(&lanes, checked, Some((e.lane, next, why)), checkpoint);
        }
        let broken_here = |why: &str| Some((e.lane, e.lane_seq, why.to_string()));
        let prev_hash = h32(e.prev_hash)?;
        if prev_hash != prev {
            let why = "link broken: prev_hash is not the hash of the event before";
            return result(&lanes, checked, broken_here(why), checkpoint);
        }
        let stored_persons = h32(e.persons_hash)?;
        let content = EventContent {
            seq: e.lane_seq,
            at_micros: e.at_micros,
            agency: &e.agency,
            division: &e.division,
            method: &e.method,
            purpose: &e.purpose,
            outcome: &e.outcome,
            person_count: e.person_count,
            persons_hash: stored_persons,
            via: &e.via,
        };
        let hash = h32(e.hash)?;
        if event_hash(&prev_hash, &content) != hash {
            let why = "content altered: the event no longer hashes to its stored hash";
            return result(&lanes, checked, broken_here(why), checkpoint);
        }
        // A purged event whose persons are all gone is a tombstone: its persons hash and count are the stored ones,
        // which the event's own hash covers (checked above). Any person row left is checked as usual.
        if e.purged && purged_before.is_none_or(|before| e.at_micros >= before) {
            let why = "purged without a purge: no recorded retention purge of the audit reaches this event's time";
            return result(&lanes, checked, broken_here(why), checkpoint);
        }
        let tombstone = e.purged && keys.is_empty();
        if !tombstone && (persons_hash(&mut keys) != stored_persons || keys.len() as i64 != e.person_count) {
            let why = "persons altered: the persons recorded for the event were changed";
            return result(&lanes, checked, broken_here(why), checkpoint);
        }
        if e.method == CHECKPOINT_METHOD && e.agency == CHECKPOINT_AGENCY {
            for h in parse_heads(&e.purpose).unwrap_or_default() {
                let n = named.entry(h.lane).or_insert((0, e.lane, e.lane_seq));
                if h.seq > n.0 {
                    *n = (h.seq, e.lane, e.lane_seq);
                }
            }
            checkpoint = Some(LaneHead { lane: e.lane, seq: e.lane_seq, hash });
        }
        if claims.contains_key(&(e.lane, e.lane_seq)) {
            found.insert((e.lane, e.lane_seq), hash);
        }
        if let Some(st) = lanes.get_mut(&e.lane) {
            st.prev = hash;
            st.next += 1;
        }
    }
    if let Some((s, _)) = pending {
        let why = format!("audit_persons rows of log seq {s}, which is not in the chain");
        let (lane, at) = lanes.iter().next_back().map(|(l, st)| (*l, st.next)).unwrap_or((0, 1));
        return result(&lanes, checked, Some((lane, at, why)), checkpoint);
    }
    // Every lane reaches what checkpoints name in it.
    for (lane, (seq, by_lane, by_seq)) in &named {
        let ends = lanes.get(lane).map(|s| s.next - 1).unwrap_or(0);
        if ends < *seq {
            let why = format!(
                "event {} of lane {lane} is missing: checkpoint {by_seq} of lane {by_lane} names lane {lane} at event \
                 {seq}, and lane {lane} ends at {ends}",
                ends + 1
            );
            return result(&lanes, checked, Some((*lane, ends + 1, why)), checkpoint);
        }
    }
    // The newest checkpoint of each lane names the stored events, with their hashes.
    let mut claims: Vec<_> = claims.into_iter().collect();
    claims.sort_by_key(|(k, _)| *k);
    for ((lane, seq), (hash, by_lane, by_seq)) in claims {
        if found.get(&(lane, seq)) != Some(&hash) {
            let why = format!(
                "lane {lane} was rewritten: checkpoint {by_seq} of lane {by_lane} names its event {seq} with hash {}, \
                 which is not the stored one",
                hex::encode(hash)
            );
            return result(&lanes, checked, Some((lane, seq, why)), checkpoint);
        }
    }
    result(&lanes, checked, None, checkpoint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::format_heads;

    /// Build lane events by hand from the documented form (`domain::audit`): `(lane, method, purpose)` in log order.
    fn events(spec: &[(i32, &str, String)]) -> Vec<ChainEvent> {
        let mut heads: BTreeMap<i32, (i64, [u8; 32])> = BTreeMap::new();
        let mut out = Vec::new();
        for (i, (lane, method, purpose)) in spec.iter().enumerate() {
            let (n, prev) = *heads.entry(*lane).or_insert((0, lane_genesis(*lane)));
            let content = EventContent {
                seq: n + 1,
                at_micros: 1_000 + i as i64,
                agency: if *method == CHECKPOINT_METHOD { CHECKPOINT_AGENCY } else { "education" },
                division: "",
                method,
                purpose,
                outcome: "OK",
                person_count: 0,
                persons_hash: persons_hash(&mut Vec::new()),
                via: "",
            };
            let hash = event_hash(&prev, &content);
            out.push(ChainEvent {
                seq: 10 + 2 * i as i64, // log numbers with gaps, as a sequence gives them
                lane: *lane,
                lane_seq: n + 1,
                at_micros: content.at_micros,
                agency: content.agency.to_string(),
                division: String::new(),
                method: method.to_string(),
                purpose: purpose.clone(),
                outcome: "OK".into(),
                person_count: 0,
                persons_hash: content.persons_hash.to_vec(),
                prev_hash: prev.to_vec(),
                hash: hash.to_vec(),
                via: String::new(),
                purged: false,
            });
            heads.insert(*lane, (n + 1, hash));
        }
        out
    }

    async fn check(events: Vec<ChainEvent>) -> ChainCheck {
        let newest: BTreeMap<i32, (i64, String)> = events
            .iter()
            .filter(|e| e.method == CHECKPOINT_METHOD)
            .map(|e| (e.lane, (e.lane_seq, e.purpose.clone())))
            .collect();
        let newest = newest.into_iter().map(|(l, (s, p))| (l, s, p)).collect();
        let events = futures::stream::iter(events.into_iter().map(Ok));
        let persons = futures::stream::iter(Vec::<Result<(i64, Vec<u8>), StoreError>>::new());
        check_chain(events, persons, newest, None).await.unwrap()
    }

    fn head(e: &ChainEvent) -> LaneHead {
        LaneHead { lane: e.lane, seq: e.lane_seq, hash: e.hash.clone().try_into().unwrap() }
    }

    #[tokio::test]
    async fn lanes_interleave_and_a_checkpoint_finds_a_cut_lane() {
        // Lane 0: two events; lane 1: one read, then a checkpoint naming lane 0 at 2 and itself at 1; lane 2: one read.
        let mut spec = vec![(0, "push", String::new()), (1, "read", String::new()), (0, "push", String::new())];
        let built = events(&spec);
        let named = format_heads(&[head(&built[2]), head(&built[1])]);
        spec.push((1, CHECKPOINT_METHOD, named));
        spec.push((2, "read", String::new()));
        let all = events(&spec);
        let c = check(events(&spec)).await;
        assert_eq!((c.checked, c.first_broken.clone()), (5, None));
        assert_eq!(c.heads, vec![head(&all[2]), head(&all[3]), head(&all[4])]);
        assert_eq!(c.head, head(&all[2]).hash);
        assert_eq!(c.checkpoint, Some(head(&all[3])));

        // Lane 0's second event deleted: lane 0 alone is a valid chain of one, but the checkpoint names it at 2.
        let mut cut = events(&spec);
        cut.remove(2);
        let c = check(cut).await;
        let (at, why) = c.first_broken.unwrap();
        assert_eq!((c.first_broken_lane, at), (0, 2), "{why}");
        assert!(why.contains("checkpoint 2 of lane 1 names lane 0 at event 2"), "{why}");

        // Lane 0 rewritten from its second event (a different event with a valid hash in its place).
        let mut spec2 = spec.clone();
        spec2[2] = (0, "other", String::new());
        let mut rewritten = events(&spec2);
        // Keep the checkpoint as it was stored (it names the original second event).
        rewritten[3] = events(&spec)[3].clone_event();
        let c = check(rewritten).await;
        let (at, why) = c.first_broken.unwrap();
        assert_eq!((c.first_broken_lane, at), (0, 2), "{why}");
        assert!(why.contains("rewritten"), "{why}");

        // A gap inside lane 2 is named in lane 2's numbering.
        let mut spec3 = spec.clone();
        spec3.push((2, "read", String::new()));
        spec3.push((2, "read", String::new()));
        let mut gap = events(&spec3);
        gap.remove(5);
        let c = check(gap).await;
        let (at, why) = c.first_broken.unwrap();
        assert_eq!((c.first_broken_lane, at), (2, 2), "{why}");
        assert!(why.starts_with("event 2 of lane 2 is missing"), "{why}");
    }

    /// A purged event (retention, docs/retention.md) without person rows left verifies from its stored persons hash;
    /// one whose row is altered, or with some of its person rows still there but not all, does not.
    #[tokio::test]
    async fn a_purged_event_stands_on_its_stored_persons_hash() {
        let key = [7u8; 32];
        let content = EventContent {
            seq: 1,
            at_micros: 1_000,
            agency: "education",
            division: "",
            method: "read",
            purpose: "",
            outcome: "OK",
            person_count: 2,
            persons_hash: persons_hash(&mut vec![key, [8u8; 32]]),
            via: "",
        };
        let hash = event_hash(&GENESIS, &content);
        let event = |purged: bool, person_count: i64| ChainEvent {
            seq: 1,
            lane: 0,
            lane_seq: 1,
            at_micros: 1_000,
            agency: "education".into(),
            division: String::new(),
            method: "read".into(),
            purpose: String::new(),
            outcome: "OK".into(),
            person_count,
            persons_hash: content.persons_hash.to_vec(),
            prev_hash: GENESIS.to_vec(),
            hash: hash.to_vec(),
            via: String::new(),
            purged,
        };
        let run = |e: ChainEvent, persons: Vec<(i64, Vec<u8>)>| async move {
            let events = futures::stream::iter(vec![Ok(e)]);
            let persons = futures::stream::iter(persons.into_iter().map(Ok).collect::<Vec<Result<_, StoreError>>>());
            check_chain(events, persons, Vec::new(), Some(2_000)).await.unwrap().first_broken
        };
        // Purged, no person rows: valid. Not purged, no person rows: persons altered.
        assert_eq!(run(event(true, 2), vec![]).await, None);
        let broken = run(event(false, 2), vec![]).await.unwrap();
        assert!(broken.1.starts_with("persons altered"), "{broken:?}");
        // Purged but one of its two person rows left: checked as usual, and it fails.
        let broken = run(event(true, 2), vec![(1, key.to_vec())]).await.unwrap();
        assert!(broken.1.starts_with("persons altered"), "{broken:?}");
        // Purged and its count altered: the event's own hash no longer matches.
        let broken = run(event(true, 3), vec![]).await.unwrap();
        assert!(broken.1.starts_with("content altered"), "{broken:?}");
        // Marked purged with no recorded purge reaching its time (1,000 µs): broken.
        for before in [None, Some(1_000)] {
            let events = futures::stream::iter(vec![Ok(event(true, 2))]);
            let persons = futures::stream::iter(Vec::<Result<(i64, Vec<u8>), StoreError>>::new());
            let broken = check_chain(events, persons, Vec::new(), before).await.unwrap().first_broken.unwrap();
            assert!(broken.1.starts_with("purged without a purge"), "{broken:?}");
        }
    }

    impl ChainEvent {
        fn clone_event(&self) -> ChainEvent {
            ChainEvent {
                seq: self.seq,
                lane: self.lane,
                lane_seq: self.lane_seq,
                at_micros: self.at_micros,
                agency: self.agency.clone(),
                division: self.division.clone(),
                method: self.method.clone(),
                purpose: self.purpose.clone(),
                outcome: self.outcome.clone(),
                person_count: self.person_count,
                persons_hash: self.persons_hash.clone(),
                prev_hash: self.prev_hash.clone(),
                hash: self.hash.clone(),
                via: self.via.clone(),
                purged: self.purged,
            }
        }
    }
}
