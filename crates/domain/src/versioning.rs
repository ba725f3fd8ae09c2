//! The outcome rules of a pushed fact against what is stored (docs/spec/api.md, `PushFacts`):
//!
//! - no stored version of `(agency, fact_id)` → ACCEPTED;
//! - same content as the current version → DUPLICATE (nothing changes);
//! - other content and a higher `source_version` → NEW_VERSION (the old version stays in history);
//! - other content and a lower or equal `source_version` → STALE (nothing changes).

/// Decision for one valid fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Accepted,
    NewVersion,
    Duplicate,
    Stale,
}

impl Decision {
    /// Whether the fact is written.
    pub fn writes(self) -> bool {
        matches!(self, Decision::Accepted | Decision::NewVersion)
    }
}

/// The current stored version of a record: its `source_version` and content hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentVersion {
    pub source_version: u64,
    pub content_hash: [u8; 32],
}

/// Apply the rules above.
pub fn decide(current: Option<CurrentVersion>, source_version: u64, content_hash: &[u8; 32]) -> Decision {
    match current {
        None => Decision::Accepted,
        Some(c) if &c.content_hash == content_hash => Decision::Duplicate,
        Some(c) if source_version > c.source_version => Decision::NewVersion,
        Some(_) => Decision::Stale,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: [u8; 32] = [1; 32];
    const B: [u8; 32] = [2; 32];

    #[test]
    fn the_four_outcomes() {
        assert_eq!(decide(None, 1, &A), Decision::Accepted);
        let cur = Some(CurrentVersion { source_version: 5, content_hash: A });
        assert_eq!(decide(cur, 5, &A), Decision::Duplicate);
        assert_eq!(decide(cur, 9, &A), Decision::Duplicate, "same content, any version");
        assert_eq!(decide(cur, 6, &B), Decision::NewVersion);
        assert_eq!(decide(cur, 5, &B), Decision::Stale, "equal version, other content");
        assert_eq!(decide(cur, 4, &B), Decision::Stale, "lower version, other content");
    }

    // Model: applying any sequence of pushes leaves the stored version equal to the highest
    // version among the written ones, and the stored content that of that version: an older
    // version never overwrites a newer one; pushing the same thing twice changes nothing.
    proptest! {
        #[test]
        fn newest_version_wins(pushes in proptest::collection::vec((0u64..20, 0u8..3), 1..40)) {
            let mut current: Option<CurrentVersion> = None;
            for (v, c) in &pushes {
                let h = [*c; 32];
                let d = decide(current, *v, &h);
                if let Some(cur) = current {
                    prop_assert!(!(d.writes() && *v <= cur.source_version));
                }
                if d.writes() {
                    current = Some(CurrentVersion { source_version: *v, content_hash: h });
                }
                // idempotence: the same push again is a duplicate
                prop_assert_eq!(decide(current, *v, &current.unwrap().content_hash), Decision::Duplicate);
            }
            let first = pushes[0];
            let max_written = current.unwrap().source_version;
            prop_assert!(max_written >= first.0);
        }
    }
}
