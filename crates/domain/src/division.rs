//! Administrative division codes (行政区划代码), GB/T 2260, extended to townships and villages.
//!
//! Shape (docs/spec/api.md "place"): 6 digits for a province (`PP0000`), city (`PPCC00`) or county (`PPCCDD`); 9 digits
//! for a township and 12 for a village, whose first 6 digits are a known county. The level of a 6-digit code follows
//! GB/T 2260's structure: `…0000` is a province, `…00` a city, anything else a county.
//!
//! Which codes exist is reference data (docs/domain/policy-reference.md): [`DivisionCode::parse_with`] takes it as a
//! predicate, [`DivisionCode::parse`] uses the built-in default, Gansu (620000), Qingyang (621000) and its eight
//! counties. `621001` (市辖区) is a statistical placeholder, not a place, and is not known.
//!
//! Known limitation: prefecture-level cities without counties (e.g. 东莞市 441900) have townships directly under a
//! city code; such township codes are rejected, as docs/spec/api.md requires a county prefix.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Gansu province (甘肃省).
pub const GANSU: &str = "620000";
/// Qingyang city (庆阳市).
pub const QINGYANG: &str = "621000";

/// The eight county-level divisions of Qingyang (GB/T 2260): code and Chinese name.
pub const QINGYANG_COUNTIES: [(&str, &str); 8] = [
    ("621002", "西峰区"),
    ("621021", "庆城县"),
    ("621022", "环县"),
    ("621023", "华池县"),
    ("621024", "合水县"),
    ("621025", "正宁县"),
    ("621026", "宁县"),
    ("621027", "镇原县"),
];

/// The Chinese name of a built-in division (Gansu, Qingyang or one of its counties), e.g. `"621022"` → `"环县"`;
/// `None` for any other code.
pub fn division_name(code: &str) -> Option<&'static str> {
    match code {
        GANSU => Some("甘肃省"),
        QINGYANG => Some("庆阳市"),
        _ => QINGYANG_COUNTIES.iter().find(|(c, _)| *c == code).map(|(_, name)| *name),
    }
}

/// Whether a 6-digit code is in the built-in reference set.
fn is_builtin(code: &str) -> bool {
    division_name(code).is_some()
}

/// Why a string is not a valid division code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DivisionError {
    /// Not 6, 9 or 12 ASCII digits.
    #[error("must be 6, 9 or 12 ASCII digits")]
    Format,
    /// A 6-digit code that is not a known province, city or county.
    #[error("{0} is not a known division")]
    Unknown(String),
    /// A 9- or 12-digit code whose first 6 digits are not a known county.
    #[error("first 6 digits {0} are not a known county")]
    UnknownCounty(String),
    /// A valid code that is not a county where one is required ([`DivisionCode::parse_county`]).
    #[error("{0} is not one of Qingyang's eight counties")]
    NotCounty(String),
}

/// Level of a division in the GB/T 2260 hierarchy, from the top.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DivisionLevel {
    /// `PP0000`, e.g. 620000 甘肃省.
    Province,
    /// `PPCC00`, e.g. 621000 庆阳市.
    City,
    /// `PPCCDD`, e.g. 621022 环县.
    County,
    /// 9 digits: county + 3.
    Township,
    /// 12 digits: township + 3.
    Village,
}

impl DivisionLevel {
    /// `"province"`, `"city"`, `"county"`, `"township"` or `"village"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DivisionLevel::Province => "province",
            DivisionLevel::City => "city",
            DivisionLevel::County => "county",
            DivisionLevel::Township => "township",
            DivisionLevel::Village => "village",
        }
    }

    /// How many leading digits a code of this level shares with everything below it.
    fn prefix_len(self) -> usize {
        match self {
            DivisionLevel::Province => 2,
            DivisionLevel::City => 4,
            DivisionLevel::County => 6,
            DivisionLevel::Township => 9,
            DivisionLevel::Village => 12,
        }
    }
}

impl fmt::Display for DivisionLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Level of a code already known to be 6, 9 or 12 ASCII digits.
fn level_of(code: &str) -> DivisionLevel {
    match code.len() {
        12 => DivisionLevel::Village,
        9 => DivisionLevel::Township,
        _ if code.ends_with("0000") => DivisionLevel::Province,
        _ if code.ends_with("00") => DivisionLevel::City,
        _ => DivisionLevel::County,
    }
}

/// A validated division code: a known province, city or county (6 digits), or a township (9) or village (12) in a
/// known county. Ordered as strings, so a division sorts just before everything it contains.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DivisionCode(String);

impl DivisionCode {
    /// Parses `s` against the built-in reference set (Gansu, Qingyang and its eight counties).
    ///
    /// # Errors
    /// See [`DivisionCode::parse_with`].
    pub fn parse(s: &str) -> Result<DivisionCode, DivisionError> {
        DivisionCode::parse_with(s, is_builtin)
    }

    /// Parses `s` against reference data: `is_known` answers whether a 6-digit code is a division in force
    /// (province, city or county). A 6-digit `s` must itself be known; a 9- or 12-digit `s` needs its first 6
    /// digits to be known and county-shaped.
    ///
    /// # Errors
    /// [`DivisionError::Format`] unless `s` is 6, 9 or 12 ASCII digits; [`DivisionError::Unknown`] for an unknown
    /// 6-digit code; [`DivisionError::UnknownCounty`] for a longer code whose first 6 digits are not a known county.
    pub fn parse_with(s: &str, is_known: impl Fn(&str) -> bool) -> Result<DivisionCode, DivisionError> {
        if !matches!(s.len(), 6 | 9 | 12) || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DivisionError::Format);
        }
        let prefix = &s[..6];
        if s.len() == 6 {
            if !is_known(prefix) {
                return Err(DivisionError::Unknown(s.to_owned()));
            }
        } else if level_of(prefix) != DivisionLevel::County || !is_known(prefix) {
            return Err(DivisionError::UnknownCounty(prefix.to_owned()));
        }
        Ok(DivisionCode(s.to_owned()))
    }

    /// Parses `s` as [`DivisionCode::parse`] does and requires a county (6 digits, e.g. 621022): what a fund report is
    /// made for.
    ///
    /// # Errors
    /// As [`DivisionCode::parse`]; [`DivisionError::NotCounty`] for a province, city, township or village.
    pub fn parse_county(s: &str) -> Result<DivisionCode, DivisionError> {
        let d = DivisionCode::parse(s)?;
        if d.level() != DivisionLevel::County {
            return Err(DivisionError::NotCounty(s.to_owned()));
        }
        Ok(d)
    }

    /// The code's digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The level, from the code's length and, for 6 digits, its trailing zeros.
    pub fn level(&self) -> DivisionLevel {
        level_of(&self.0)
    }

    /// The county this division lies in (the first 6 digits), or `None` for a city or province.
    pub fn county(&self) -> Option<&str> {
        (self.level() >= DivisionLevel::County).then(|| &self.0[..6])
    }

    /// Whether `other` lies within this division, by GB/T 2260 prefix: a province contains every code with its first
    /// 2 digits, a city its first 4, a county its first 6, a township its first 9; a village contains only itself.
    /// Every code contains itself.
    pub fn contains(&self, other: &DivisionCode) -> bool {
        let n = self.level().prefix_len();
        other.0.len() >= self.0.len() && other.0[..n] == self.0[..n]
    }
}

impl fmt::Display for DivisionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for DivisionCode {
    type Err = DivisionError;

    /// Same as [`DivisionCode::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DivisionCode::parse(s)
    }
}

impl Serialize for DivisionCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Deserializes from the string form, validating it against the built-in set as [`DivisionCode::parse`] does.
impl<'de> Deserialize<'de> for DivisionCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        DivisionCode::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn code(s: &str) -> DivisionCode {
        DivisionCode::parse(s).unwrap()
    }

    #[test]
    fn built_in_codes_parse_with_their_level() {
        assert_eq!(code("620000").level(), DivisionLevel::Province);
        assert_eq!(code("621000").level(), DivisionLevel::City);
        for (c, _) in QINGYANG_COUNTIES {
            assert_eq!(code(c).level(), DivisionLevel::County);
            assert_eq!(code(c).county(), Some(c));
        }
        assert_eq!(code("621022101").level(), DivisionLevel::Township);
        assert_eq!(code("621022101201").level(), DivisionLevel::Village);
        assert_eq!(code("621022101201").as_str(), "621022101201");
    }

    #[test]
    fn placeholder_and_unknown_codes_are_rejected() {
        assert_eq!(DivisionCode::parse("621001"), Err(DivisionError::Unknown("621001".into())));
        assert_eq!(DivisionCode::parse("621028"), Err(DivisionError::Unknown("621028".into())));
        assert_eq!(DivisionCode::parse("110105"), Err(DivisionError::Unknown("110105".into())));
        assert_eq!(DivisionCode::parse("621001101"), Err(DivisionError::UnknownCounty("621001".into())));
        assert_eq!(DivisionCode::parse("110105001"), Err(DivisionError::UnknownCounty("110105".into())));
        assert_eq!(
            DivisionCode::parse("621001101").unwrap_err().to_string(),
            "first 6 digits 621001 are not a known county"
        );
    }

    #[test]
    fn townships_need_a_county_not_a_city() {
        assert_eq!(DivisionCode::parse("621000101"), Err(DivisionError::UnknownCounty("621000".into())));
        assert_eq!(DivisionCode::parse("620000101001"), Err(DivisionError::UnknownCounty("620000".into())));
        // Even if reference data claims the city prefix is known, it is not a county.
        assert!(DivisionCode::parse_with("621000101", |_| true).is_err());
    }

    #[test]
    fn bad_shapes_are_rejected() {
        for s in [
            "",
            "62102",
            "6210221",
            "62102210",
            "6210221010",
            "6210221012011",
            "62102a",
            "６２１０２２",
            " 621022",
            "-62102",
        ] {
            assert_eq!(DivisionCode::parse(s), Err(DivisionError::Format), "{s:?}");
        }
    }

    #[test]
    fn parse_with_uses_the_given_reference_data() {
        let beijing = |c: &str| matches!(c, "110000" | "110105");
        assert_eq!(DivisionCode::parse_with("110105", beijing).unwrap().level(), DivisionLevel::County);
        assert_eq!(DivisionCode::parse_with("110000", beijing).unwrap().level(), DivisionLevel::Province);
        assert!(DivisionCode::parse_with("110105001", beijing).is_ok());
        assert!(DivisionCode::parse_with("621022", beijing).is_err());
    }

    #[test]
    fn county_is_none_above_county_level() {
        assert_eq!(code("620000").county(), None);
        assert_eq!(code("621000").county(), None);
        assert_eq!(code("621022101").county(), Some("621022"));
        assert_eq!(code("621022101201").county(), Some("621022"));
    }

    #[test]
    fn containment_by_prefix() {
        let all = [
            "620000",
            "621000",
            "621002",
            "621022",
            "621027",
            "621022101",
            "621022102",
            "621022101201",
            "621022102001",
        ];
        let contains = |a: &str, b: &str| code(a).contains(&code(b));
        for c in all {
            assert!(contains("620000", c) && contains(c, c));
        }
        for c in &all[1..] {
            assert!(contains("621000", c));
            assert!(!contains(c, "621000") || *c == "621000");
        }
        assert!(contains("621022", "621022101") && contains("621022", "621022101201"));
        assert!(!contains("621022", "621027") && !contains("621022", "621002"));
        assert!(contains("621022101", "621022101201") && !contains("621022101", "621022102001"));
        assert!(!contains("621022101", "621022") && !contains("621022101201", "621022101"));
        assert!(!contains("621022101201", "621022102001"));
    }

    #[test]
    fn names() {
        assert_eq!(division_name("620000"), Some("甘肃省"));
        assert_eq!(division_name("621000"), Some("庆阳市"));
        assert_eq!(division_name("621022"), Some("环县"));
        assert_eq!(division_name("621027"), Some("镇原县"));
        assert_eq!(division_name("621001"), None);
        assert_eq!(DivisionLevel::City.to_string(), "city");
    }

    #[test]
    fn serde_uses_the_string_form_and_validates() {
        assert_eq!(serde_json::to_string(&code("621022101")).unwrap(), "\"621022101\"");
        assert_eq!(serde_json::from_str::<DivisionCode>("\"621022\"").unwrap(), code("621022"));
        assert!(serde_json::from_str::<DivisionCode>("\"621001\"").is_err());
        assert_eq!(serde_json::to_string(&DivisionLevel::Township).unwrap(), "\"township\"");
        assert_eq!("621022".parse::<DivisionCode>(), Ok(code("621022")));
    }

    fn county() -> impl Strategy<Value = &'static str> {
        prop::sample::select(QINGYANG_COUNTIES.map(|(c, _)| c).to_vec())
    }

    proptest! {
        #[test]
        fn townships_and_villages_of_known_counties(c in county(), township in "[0-9]{3}", village in "[0-9]{3}") {
            let t = code(&format!("{c}{township}"));
            let v = code(&format!("{c}{township}{village}"));
            prop_assert_eq!(v.county(), Some(c));
            for outer in [code(GANSU), code(QINGYANG), code(c), t.clone(), v.clone()] {
                prop_assert!(outer.contains(&v));
            }
            prop_assert!(!v.contains(&t) && !t.contains(&code(c)));
            prop_assert_eq!(v.to_string().parse::<DivisionCode>(), Ok(v));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,13}|[0-9]{6,12}") {
            let _ = DivisionCode::parse(&s);
            let _ = DivisionCode::parse_with(&s, |_| true);
        }
    }
}
