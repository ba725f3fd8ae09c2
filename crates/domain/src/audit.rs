//! The audit hash chain (docs/spec/security.md, "What is stored and logged").
//!
//! Canonical content of event `seq`: the ASCII tag `doudi-audit-v2`, then each field as
//! `<byte length in decimal>:<UTF-8 bytes>;` in this order: `seq` (decimal), `at` (microseconds since
//! the Unix epoch, decimal), `agency`, `division`, `method`, `purpose`, `outcome`, `person_count`
//! (decimal), `persons_hash` (lower hex). Length prefixes make the form unambiguous: no text moved
//! between two fields gives the same bytes.
//! `persons_hash` = SHA-256 over the touched 32-byte person keys, sorted and de-duplicated,
//! concatenated. `hash` = SHA-256(`prev_hash` (32 bytes) || canonical content); the first event's
//! `prev_hash` is 32 zero bytes.
//!
//! **Through a gateway** (issue 20 item 6, SECURITY.md "A TLCP gateway in front of the hub"). An event of a call that
//! came through a pinned gateway also records the gateway (`via`: its SPIFFE ID or `sha256:<hex>` of its certificate).
//! Its canonical content starts with the tag `doudi-audit-v3` instead, and has a tenth field, `via`, after
//! `persons_hash`, in the same `<length>:<bytes>;` form. An event without a gateway (`via` empty) keeps the v2 form
//! above, so every event stored before hashes as it did.
//!
//! **Lanes** (issue 17 item 2, docs/audit-lanes.md). The log is a set of such chains, "lanes", numbered from 0, each
//! appended by one writer at a time. Within a lane the form above is unchanged, with `seq` the event's position in
//! its lane (1, 2, … without gaps). Lane 0 is the chain as it was before lanes (its first `prev_hash` is 32 zero
//! bytes, [`GENESIS`]), so every event stored before keeps its hash; the first event of lane `n` ≥ 1 links to
//! [`lane_genesis`]`(n)` = SHA-256(`doudi-audit-lane` || `n` as 4 bytes big-endian), so a lane's events cannot be
//! passed off as another lane's. A **checkpoint** is an ordinary event of a lane with agency `hub`, method
//! [`CHECKPOINT_METHOD`] and as purpose the heads of every lane at its commit ([`format_heads`]:
//! `lane:seq:hash` in lane order, separated by spaces, hashes in lower hex): deleting the newest events of a lane
//! that a later checkpoint of another lane names is then detected.
//!
//! **Signed heads** (issue 20 item 5, docs/audit-lanes.md "Signed heads"). The hub signs the heads of every lane
//! with a key of its own; what it signs is [`head_message`]: the ASCII tag [`HEAD_FORMAT`] (`doudi-audit-head-v1`),
//! then, each as `<byte length in decimal>:<ASCII bytes>;` as above: the signing time (microseconds since the Unix
//! epoch, decimal), the number of lanes (decimal), and for every lane in ascending lane order its number, its head's
//! position in the lane (both decimal) and the head's hash (64 lower-hex characters).

use sha2::{Digest, Sha256};

/// `prev_hash` of the first event.
pub const GENESIS: [u8; 32] = [0u8; 32];

/// The `prev_hash` of the first event of lane `lane` (module docs): [`GENESIS`] for lane 0.
pub fn lane_genesis(lane: i32) -> [u8; 32] {
    if lane == 0 {
        return GENESIS;
    }
    let mut h = Sha256::new();
    h.update(b"doudi-audit-lane");
    h.update(lane.to_be_bytes());
    h.finalize().into()
}

/// The method of a checkpoint event (module docs).
pub const CHECKPOINT_METHOD: &str = "audit.checkpoint";

/// The agency of a checkpoint event: the hub itself.
pub const CHECKPOINT_AGENCY: &str = "hub";

/// The newest event of a lane: its lane, position in the lane (`seq`) and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LaneHead {
    pub lane: i32,
    pub seq: i64,
    pub hash: [u8; 32],
}

impl std::fmt::Display for LaneHead {
    /// `lane:seq:hash` (hash in lower hex), the form a checkpoint's purpose and `doudi audit verify` print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.lane, self.seq, hex::encode(self.hash))
    }
}

/// A checkpoint's purpose: `heads` sorted by lane, each as [`LaneHead`]'s `Display`, separated by single spaces.
pub fn format_heads(heads: &[LaneHead]) -> String {
    let mut heads = heads.to_vec();
    heads.sort();
    heads.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(" ")
}

/// The heads a checkpoint's purpose names ([`format_heads`]), or `None` when it is not in that form.
pub fn parse_heads(purpose: &str) -> Option<Vec<LaneHead>> {
    purpose
        .split(' ')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut it = p.splitn(3, ':');
            let lane = it.next()?.parse().ok()?;
            let seq = it.next()?.parse().ok()?;
            let hash = hex::decode(it.next()?).ok()?.try_into().ok()?;
            Some(LaneHead { lane, seq, hash })
        })
        .collect()
}

/// The tag that starts a signed head's message, and names its version.
pub const HEAD_FORMAT: &str = "doudi-audit-head-v1";

/// The bytes a signed audit head signs (module docs): [`HEAD_FORMAT`], then `signed_at_micros`, the number of lanes
/// and each lane's `(lane, seq, hash)` in ascending lane order (`heads` is sorted here), every field length-prefixed.
pub fn head_message(signed_at_micros: i64, heads: &[LaneHead]) -> Vec<u8> {
    let mut heads = heads.to_vec();
    heads.sort();
    let mut out = HEAD_FORMAT.as_bytes().to_vec();
    let mut field = |f: &str| {
        out.extend_from_slice(f.len().to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(f.as_bytes());
        out.push(b';');
    };
    field(&signed_at_micros.to_string());
    field(&heads.len().to_string());
    for h in &heads {
        field(&h.lane.to_string());
        field(&h.seq.to_string());
        field(&hex::encode(h.hash));
    }
    out
}

/// SHA-256 over sorted, de-duplicated person keys.
pub fn persons_hash(keys: &mut Vec<[u8; 32]>) -> [u8; 32] {
    keys.sort_unstable();
    keys.dedup();
    let mut h = Sha256::new();
    for k in keys.iter() {
        h.update(k);
    }
    h.finalize().into()
}

/// The fields of one event that the hash covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventContent<'a> {
    pub seq: i64,
    pub at_micros: i64,
    pub agency: &'a str,
    pub division: &'a str,
    pub method: &'a str,
    pub purpose: &'a str,
    pub outcome: &'a str,
    pub person_count: i64,
    pub persons_hash: [u8; 32],
    /// The pinned gateway the call came through; "" for a direct peer (then the v2 form).
    pub via: &'a str,
}

/// The canonical bytes of an event (see the module docs): the v2 form, or v3 with `via` when it is not empty.
pub fn canonical(e: &EventContent<'_>) -> Vec<u8> {
    let mut out = if e.via.is_empty() { b"doudi-audit-v2".to_vec() } else { b"doudi-audit-v3".to_vec() };
    let fields: [&str; 9] = [
        &e.seq.to_string(),
        &e.at_micros.to_string(),
        e.agency,
        e.division,
        e.method,
        e.purpose,
        e.outcome,
        &e.person_count.to_string(),
        &hex::encode(e.persons_hash),
    ];
    for f in fields {
        out.extend_from_slice(f.len().to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(f.as_bytes());
        out.push(b';');
    }
    if !e.via.is_empty() {
        out.extend_from_slice(e.via.len().to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(e.via.as_bytes());
        out.push(b';');
    }
    out
}

/// `SHA-256(prev_hash || canonical content)`.
pub fn event_hash(prev_hash: &[u8; 32], e: &EventContent<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev_hash);
    h.update(canonical(e));
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_an_independent_computation() {
        // Independent computation of the documented form with sha2 directly.
        let e = EventContent {
            seq: 1,
            at_micros: 1_700_000_000_000_000,
            agency: "civil_affairs",
            division: "",
            method: "/doudi.v1.RecipientExchange/GetRecipient",
            purpose: "复核",
            outcome: "OK",
            person_count: 0,
            persons_hash: persons_hash(&mut Vec::new()),
            via: "",
        };
        // "复核" is 6 bytes in UTF-8; the last field is the SHA-256 of the empty string.
        let text = "doudi-audit-v21:1;16:1700000000000000;13:civil_affairs;0:;40:/doudi.v1.RecipientExchange/GetRecipient;\
                    6:复核;2:OK;1:0;64:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855;";
        let mut h = Sha256::new();
        h.update([0u8; 32]);
        h.update(text.as_bytes());
        let expected: [u8; 32] = h.finalize().into();
        assert_eq!(event_hash(&GENESIS, &e), expected);

        // Through a gateway: the v3 tag and a tenth field.
        let via = EventContent { via: "spiffe://td/gateway/tlcp", ..e };
        let text = "doudi-audit-v31:1;16:1700000000000000;13:civil_affairs;0:;40:/doudi.v1.RecipientExchange/GetRecipient;\
                    6:复核;2:OK;1:0;64:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855;\
                    24:spiffe://td/gateway/tlcp;";
        let mut h = Sha256::new();
        h.update([0u8; 32]);
        h.update(text.as_bytes());
        let expected: [u8; 32] = h.finalize().into();
        assert_eq!(event_hash(&GENESIS, &via), expected);
    }

    #[test]
    fn moving_text_between_fields_changes_the_hash() {
        let base = EventContent {
            seq: 2,
            at_micros: 1,
            agency: "education",
            division: "",
            method: "/m",
            purpose: "case review\nOK",
            outcome: "",
            person_count: 0,
            persons_hash: [0; 32],
            via: "",
        };
        let moved = EventContent { purpose: "case review", outcome: "OK", ..base.clone() };
        assert_ne!(event_hash(&GENESIS, &base), event_hash(&GENESIS, &moved));
    }

    #[test]
    fn lane_genesis_is_zero_for_lane_0_and_the_documented_hash_otherwise() {
        assert_eq!(lane_genesis(0), [0u8; 32]);
        // Independently: SHA-256 of the ASCII tag followed by 00 00 00 02.
        let mut h = Sha256::new();
        h.update(b"doudi-audit-lane\x00\x00\x00\x02");
        let expected: [u8; 32] = h.finalize().into();
        assert_eq!(lane_genesis(2), expected);
        assert_ne!(lane_genesis(1), lane_genesis(2));
    }

    #[test]
    fn checkpoint_heads_round_trip_in_lane_order() {
        let a = LaneHead { lane: 1, seq: 40, hash: [0xab; 32] };
        let b = LaneHead { lane: 0, seq: 812, hash: [0x01; 32] };
        let text = format_heads(&[a, b]);
        assert_eq!(text, format!("0:812:{} 1:40:{}", "01".repeat(32), "ab".repeat(32)));
        assert_eq!(parse_heads(&text), Some(vec![b, a]));
        assert_eq!(parse_heads("0:812"), None);
        assert_eq!(parse_heads("x:1:00"), None);
    }

    #[test]
    fn the_head_message_is_the_documented_bytes() {
        // Two lanes given out of order; hand-written bytes of the documented form.
        let heads = [LaneHead { lane: 1, seq: 40, hash: [0xab; 32] }, LaneHead { lane: 0, seq: 7, hash: [0x01; 32] }];
        let expected = format!(
            "doudi-audit-head-v116:1700000000000000;1:2;1:0;1:7;64:{};1:1;2:40;64:{};",
            "01".repeat(32),
            "ab".repeat(32)
        );
        assert_eq!(head_message(1_700_000_000_000_000, &heads), expected.as_bytes());
        // No lanes at all (an empty log): the tag, the time and a count of 0.
        assert_eq!(head_message(5, &[]), b"doudi-audit-head-v11:5;1:0;");
        // A negative time keeps its sign in the decimal form; a different time, position or hash changes the bytes.
        assert_eq!(head_message(-1, &[]), b"doudi-audit-head-v12:-1;1:0;");
        let moved = [LaneHead { lane: 1, seq: 41, hash: [0xab; 32] }, heads[1]];
        assert_ne!(head_message(1_700_000_000_000_000, &heads), head_message(1_700_000_000_000_000, &moved));
    }

    #[test]
    fn order_and_duplicates_of_keys_do_not_matter() {
        let a = [1u8; 32];
        let b = [2u8; 32];
        assert_eq!(persons_hash(&mut vec![a, b, a]), persons_hash(&mut vec![b, a]));
        assert_ne!(persons_hash(&mut vec![a]), persons_hash(&mut vec![b]));
    }
}
