//! Fuzz properties of the parsers that read what clients send (issue 7 item 6): the ID number (GB 11643), money
//! (docs/spec/api.md's wire grammar), business dates, and the wire-to-domain fact conversion. Each function takes
//! arbitrary bytes, must never panic, and panics only when a property fails. They are driven by the cargo-fuzz targets
//! in `fuzz/` (`scripts/fuzz.sh`, libFuzzer) and, on every `cargo test`, by a seed corpus and random inputs
//! (`tests` below), so a crash found by the fuzzer becomes a seed here.

use chrono::NaiveDate;
use prost::Message as _;

use crate::domain::calendar::parse_date;
use crate::domain::id_number::IdNumber;
use crate::domain::money::Money;
use crate::grpc::convert::{fact_in, fact_out};
use crate::grpc::pb;

/// A fixed "today" so that the properties do not depend on the day the fuzzer runs.
fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 29).expect("valid date")
}

/// ID numbers: a parsed number is 18 characters, re-parses to itself, and its masked form keeps only the
/// first 6 and last 4 characters.
pub fn id_number(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    if let Ok(id) = IdNumber::parse_at(&s, today()) {
        assert_eq!(id.as_str().chars().count(), 18, "{s:?}");
        assert_eq!(IdNumber::parse_at(id.as_str(), today()).as_ref(), Ok(&id), "{s:?} does not re-parse");
        let masked = id.masked();
        assert_eq!(masked.chars().count(), 18);
        assert_eq!(&masked[..6], &id.as_str()[..6]);
        assert_eq!(&masked[6..14], "********");
    }
}

/// Money: a parsed amount prints in the wire grammar and re-parses to the same number of fen.
pub fn money(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    if let Ok(m) = Money::parse(&s) {
        let printed = m.to_string();
        assert_eq!(Money::parse(&printed), Ok(m), "{s:?} printed as {printed:?}");
        assert!(m.to_fen() <= Money::MAX_WIRE.to_fen(), "{s:?}");
    }
}

/// Dates: a parsed date formats back to exactly the input (`YYYY-MM-DD`, nothing else accepted).
pub fn date(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    if let Ok(d) = parse_date(&s) {
        assert_eq!(d.format("%Y-%m-%d").to_string(), s, "{s:?}");
    }
}

/// Facts: any bytes decoded as a PushFactsRequest; each fact converted to the domain and validated without
/// panicking, and a fact that converts converts back to the wire and again to the same domain fact.
pub fn fact(data: &[u8]) {
    let Ok(req) = pb::PushFactsRequest::decode(data) else { return };
    for f in req.facts {
        if let Ok(fact) = fact_in(f) {
            let _ = fact.validate();
            let again = fact_in(fact_out(&fact)).expect("a converted fact converts again");
            assert_eq!(again, fact);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Seeds: the valid forms and the edges each parser must refuse (from docs/spec/api.md and
    /// docs/domain/policy-reference.md).
    const SEEDS: &[&str] = &[
        "621022198512310039",
        "11010519491231002X",
        "11010519491231002x",
        "621022198512310038",
        "６２１０２２１９８５１２３１００３９",
        "0.00",
        "442.00",
        "999999999999.99",
        "1000000000000",
        "1.",
        ".5",
        "-1",
        "2023-01-01",
        "2023-02-29",
        "2024-02-29",
        "2023-2-1",
        "0000-01-01",
        "",
    ];

    #[test]
    fn seeds_hold_every_property() {
        for s in SEEDS {
            id_number(s.as_bytes());
            money(s.as_bytes());
            date(s.as_bytes());
            fact(s.as_bytes());
        }
    }

    #[test]
    fn a_wire_fact_round_trips() {
        // A rural dibao fact (the README's grpcurl example), encoded, must pass the fact property.
        let f = pb::Fact {
            fact_id: "MZ-1".into(),
            source_version: 1,
            id_number: "621022198512310039".into(),
            division_code: "621022101203".into(),
            valid_from: "2023-01-01".into(),
            payload: Some(pb::fact::Payload::Assistance(pb::Assistance {
                program: pb::Program::Dibao as i32,
                residence: pb::Residence::Rural as i32,
                rural_class: Some(2),
                monthly_benefit: "442.00".into(),
                status: pb::AssistanceStatus::Active as i32,
                ..Default::default()
            })),
            ..Default::default()
        };
        assert!(fact_in(f.clone()).is_ok());
        fact(&pb::PushFactsRequest { facts: vec![f] }.encode_to_vec());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]
        #[test]
        fn arbitrary_bytes_hold_every_property(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            id_number(&data);
            money(&data);
            date(&data);
            fact(&data);
        }

        #[test]
        fn near_valid_text_holds_every_property(s in "[0-9Xx.-]{0,20}") {
            id_number(s.as_bytes());
            money(s.as_bytes());
            date(s.as_bytes());
        }
    }
}
