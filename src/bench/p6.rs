//! P6 (change feed latency under P1's load: push-to-`WatchChanges` delivery p99 ≤ 100 ms) — not measured yet: the
//! change feed (`WatchChanges`, the `change_log` table) is being built in parallel.
//!
//! Where it goes: [`super::sized`] runs P1 on a [`super::hub::ChildHub`]; P6 opens a `WatchChanges` stream on that
//! hub (as an agency that may read the pushed kinds) *before* [`super::load::stream`] starts, stamps each
//! StreamFacts message's send time by its first `fact_id`, and records, for each change delivered, the delay from
//! that send time; the figure is the p99 of those delays, printed with [`super::Figure`] like the others
//! (`id: "P6"`, unit ms, no floor, target 100, `ratio` = p99 / 100).

/// Why `--only P6` is refused today.
pub const NOT_YET: &str =
    "P6 (change feed latency) is not measured yet: it needs WatchChanges; see src/bench/p6.rs for where it plugs in";
