//! Resident identity number (公民身份号码), GB 11643-1999.
//!
//! Shape (GB 11643-1999; docs/spec/api.md "person"): 18 ASCII characters = 6-digit address code (GB/T 2260, as in force
//! when the number was issued) + birth date `YYYYMMDD` + 3-digit sequence (odd = male, even = female) + check character
//! (ISO 7064 MOD 11-2: weights `7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2`, `r = Σ dᵢ·wᵢ mod 11`, check = `"10X98765432"[r]`).
//!
//! Rules applied here (docs/domain/policy-reference.md): a lower-case `x` is accepted and stored upper-case; full-width
//! digits are rejected, not converted; the birth date must be a real calendar date, not after today (Asia/Shanghai) and
//! not before 1850. Address codes are *not* checked against today's division list: codes of abolished divisions stay
//! valid in old numbers.
//!
//! Privacy (docs/spec/security.md): logs and error messages never carry a full number. `Debug` prints only the masked
//! form ([`IdNumber::masked`]) and no error message echoes the input; `Display`, `as_str` and serde give the full
//! number for the wire and storage only.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::calendar::shanghai_date;

/// Today's Asia/Shanghai date by the system clock: the one read of the clock in the domain, for [`IdNumber::parse`],
/// [`FromStr`] and [`Deserialize`], whose signatures cannot take a date (client files, configuration, stored
/// payloads). The rule it serves, "a birth date is not after today", is a plausibility check of a document against
/// the real date, so it stays on the system clock; code with a date of its own calls [`IdNumber::parse_at`].
fn system_today() -> NaiveDate {
    shanghai_date(chrono::Utc::now())
}

/// GB 11643-1999 weights for positions 1–17.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character for each remainder `r = Σ dᵢ·wᵢ mod 11`.
const CHECK_CHARS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
/// Earliest accepted birth year.
pub const MIN_BIRTH_YEAR: i32 = 1850;

/// Why a string is not a valid resident ID number. Messages never contain the number itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    /// Not 18 characters long (counted in Unicode characters).
    #[error("must be 18 characters, got {0}")]
    Length(usize),
    /// One of characters 1–17 (1-based position) is not an ASCII digit `0`–`9`; full-width digits land here.
    #[error("character {position} is not an ASCII digit")]
    NotDigit {
        /// 1-based position of the first offending character.
        position: usize,
    },
    /// Character 18 is neither an ASCII digit nor `X`/`x`.
    #[error("character 18 must be a digit or X")]
    CheckCharacter,
    /// The check character does not match the first 17 digits.
    #[error("check character is {found}, expected {expected}")]
    CheckMismatch {
        /// The check character given (upper-cased).
        found: char,
        /// The check character computed from the first 17 digits.
        expected: char,
    },
    /// Characters 7–14 are not a real calendar date (e.g. `20230229`).
    #[error("birth date (characters 7-14) is not a calendar date")]
    BirthDateInvalid,
    /// The birth year is before [`MIN_BIRTH_YEAR`].
    #[error("birth year is before 1850")]
    BirthDateTooEarly,
    /// The birth date is after today.
    #[error("birth date is in the future")]
    BirthDateInFuture,
}

/// A validated 18-character resident ID number (GB 11643-1999), stored with an upper-case `X`.
///
/// Ordering is that of the string form. Construct with [`IdNumber::parse`], [`IdNumber::parse_at`], [`FromStr`],
/// serde, or [`IdNumber::from_parts`] (synthetic data).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdNumber {
    number: String,
    birth: NaiveDate,
}

impl IdNumber {
    /// Parses and validates `s`, taking "today" to be the current Asia/Shanghai date.
    ///
    /// # Errors
    /// See [`IdNumber::parse_at`].
    pub fn parse(s: &str) -> Result<IdNumber, IdNumberError> {
        IdNumber::parse_at(s, system_today())
    }

    /// Parses and validates `s` as of `today`: 17 ASCII digits, then a digit or `X`/`x`; the GB 11643 check
    /// character; a real birth date from 1850 to `today`.
    ///
    /// # Errors
    /// The first rule broken, checked in this order: [`IdNumberError::Length`], [`IdNumberError::NotDigit`],
    /// [`IdNumberError::CheckCharacter`], [`IdNumberError::CheckMismatch`], [`IdNumberError::BirthDateInvalid`],
    /// [`IdNumberError::BirthDateTooEarly`], [`IdNumberError::BirthDateInFuture`].
    pub fn parse_at(s: &str, today: NaiveDate) -> Result<IdNumber, IdNumberError> {
        let len = s.chars().count();
        if len != 18 {
            return Err(IdNumberError::Length(len));
        }
        if let Some(i) = s.chars().take(17).position(|c| !c.is_ascii_digit()) {
            return Err(IdNumberError::NotDigit { position: i + 1 });
        }
        // The first 17 characters are ASCII (one byte each), so byte 17 starts the last character.
        let (digits, last) = s.split_at(17);
        let found = match last {
            "x" | "X" => 'X',
            d if d.len() == 1 && d.as_bytes()[0].is_ascii_digit() => char::from(d.as_bytes()[0]),
            _ => return Err(IdNumberError::CheckCharacter),
        };
        let expected = check_of_digits(digits.as_bytes());
        if found != expected {
            return Err(IdNumberError::CheckMismatch { found, expected });
        }
        let birth = birth_of_digits(digits.as_bytes()).ok_or(IdNumberError::BirthDateInvalid)?;
        if birth.year() < MIN_BIRTH_YEAR {
            return Err(IdNumberError::BirthDateTooEarly);
        }
        if birth > today {
            return Err(IdNumberError::BirthDateInFuture);
        }
        let mut number = String::with_capacity(18);
        number.push_str(digits);
        number.push(found);
        Ok(IdNumber { number, birth })
    }

    /// Builds the number for an address code, a birth date and a sequence number, computing the check character.
    /// Meant for synthetic data; the result parses back equal (given a `today` on or after `birth`).
    ///
    /// # Panics
    /// If `address` is not 6 ASCII digits, `seq` is above 999, or `birth`'s year is outside 1850–9999.
    pub fn from_parts(address: &str, birth: NaiveDate, seq: u16) -> IdNumber {
        assert!(
            address.len() == 6 && address.bytes().all(|b| b.is_ascii_digit()),
            "address code must be 6 ASCII digits"
        );
        assert!(seq <= 999, "sequence must be 0-999");
        assert!((MIN_BIRTH_YEAR..=9999).contains(&birth.year()), "birth year must be 1850-9999");
        let mut number = format!("{address}{}{seq:03}", birth.format("%Y%m%d"));
        number.push(check_of_digits(number.as_bytes()));
        IdNumber { number, birth }
    }

    /// The 18-character number, check character upper-case. Not for logs: use [`IdNumber::masked`].
    pub fn as_str(&self) -> &str {
        &self.number
    }

    /// The form for logs, traces and messages (docs/spec/security.md): the first 6 and last 4 characters with 8 `*`
    /// between, e.g. `621022********123X`. It hides the birth date.
    pub fn masked(&self) -> String {
        format!("{}********{}", &self.number[..6], &self.number[14..])
    }

    /// The birth date (characters 7–14).
    pub fn birth_date(&self) -> NaiveDate {
        self.birth
    }

    /// The address code (characters 1–6): the GB/T 2260 code in force at issue, possibly since abolished.
    pub fn address_code(&self) -> &str {
        &self.number[..6]
    }

    /// Whether the sequence number (characters 15–17) is odd, which GB 11643 assigns to men.
    pub fn is_male(&self) -> bool {
        self.number.as_bytes()[16] % 2 == 1
    }

    /// Age in full years on `date`; 0 if `date` is before the birth date. Someone born on 29 February becomes a
    /// year older on 1 March in common years.
    pub fn age_on(&self, date: NaiveDate) -> u32 {
        date.years_since(self.birth).unwrap_or(0)
    }
}

/// The GB 11643 check character for the first 17 characters of a number, or `None` unless `first17` is exactly
/// 17 ASCII digits. E.g. `check_char("11010519491231002") == Some('X')`.
pub fn check_char(first17: &str) -> Option<char> {
    (first17.len() == 17 && first17.bytes().all(|b| b.is_ascii_digit())).then(|| check_of_digits(first17.as_bytes()))
}

/// Check character of 17 ASCII digits (the caller has checked them).
fn check_of_digits(digits: &[u8]) -> char {
    debug_assert!(digits.len() == 17 && digits.iter().all(u8::is_ascii_digit));
    let sum: u32 = digits.iter().zip(WEIGHTS).map(|(&d, w)| u32::from(d - b'0') * w).sum();
    CHECK_CHARS[(sum % 11) as usize]
}

/// The date in digits 7–14 (`YYYYMMDD`) of 17 ASCII digits, if it is a calendar date.
fn birth_of_digits(digits: &[u8]) -> Option<NaiveDate> {
    let num = |range: std::ops::Range<usize>| digits[range].iter().fold(0u32, |acc, &d| acc * 10 + u32::from(d - b'0'));
    // At most 4 digits, so the cast cannot wrap.
    NaiveDate::from_ymd_opt(num(6..10) as i32, num(10..12), num(12..14))
}

/// Prints the masked form only, never the full number.
impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IdNumber").field(&self.masked()).finish()
    }
}

/// The full 18-character number (wire and storage form). Use [`IdNumber::masked`] for anything logged.
impl fmt::Display for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.number)
    }
}

impl FromStr for IdNumber {
    type Err = IdNumberError;

    /// Same as [`IdNumber::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IdNumber::parse(s)
    }
}

impl Serialize for IdNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.number)
    }
}

/// Deserializes from the string form, validating it as [`IdNumber::parse`] does.
impl<'de> Deserialize<'de> for IdNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        IdNumber::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn today() -> NaiveDate {
        date(2025, 6, 1)
    }

    fn parse(s: &str) -> Result<IdNumber, IdNumberError> {
        IdNumber::parse_at(s, today())
    }

    #[test]
    fn reference_vectors_are_valid() {
        for s in [
            "11010519491231002X",
            "440524188001010014",
            "53010219200508011X",
            "621002199001010017",
            "621027200002290025",
            "621022198512310039",
        ] {
            let id = parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(id.as_str(), s);
            assert_eq!(id.to_string(), s);
        }
    }

    #[test]
    fn reference_vectors_are_invalid() {
        assert_eq!(parse("110105194912310021"), Err(IdNumberError::CheckMismatch { found: '1', expected: 'X' }));
        assert!(matches!(parse("110105195001010014"), Err(IdNumberError::CheckMismatch { found: '4', .. })));
    }

    #[test]
    fn error_message_names_found_and_expected() {
        assert_eq!(parse("110105194912310021").unwrap_err().to_string(), "check character is 1, expected X");
    }

    #[test]
    fn lower_case_x_is_stored_upper_case() {
        let id = parse("11010519491231002x").unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(id, parse("11010519491231002X").unwrap());
    }

    #[test]
    fn wrong_lengths_are_rejected() {
        assert_eq!(parse("11010519491231002"), Err(IdNumberError::Length(17)));
        assert_eq!(parse("11010519491231002X0"), Err(IdNumberError::Length(19)));
        assert_eq!(parse(""), Err(IdNumberError::Length(0)));
        assert_eq!(parse(" 11010519491231002X"), Err(IdNumberError::Length(19)));
    }

    #[test]
    fn full_width_digits_are_rejected_not_converted() {
        // '６' (U+FF16) in place of the '6' at position 2.
        assert_eq!(parse("6２1002199001010017"), Err(IdNumberError::NotDigit { position: 2 }));
        assert_eq!(parse("62100219900101001７"), Err(IdNumberError::CheckCharacter));
        assert_eq!(
            parse("621002199001010017".replace('6', "６").as_str()),
            Err(IdNumberError::NotDigit { position: 1 })
        );
    }

    #[test]
    fn other_characters_are_rejected() {
        assert_eq!(parse("X21002199001010017"), Err(IdNumberError::NotDigit { position: 1 }));
        assert_eq!(parse("6210021990010100X7"), Err(IdNumberError::NotDigit { position: 17 }));
        assert_eq!(parse("62100219900101001Y"), Err(IdNumberError::CheckCharacter));
        assert_eq!(parse("62100219900101001 "), Err(IdNumberError::CheckCharacter));
    }

    #[test]
    fn impossible_birth_date_is_rejected_even_with_a_correct_check() {
        let first17 = "62102220230229001";
        let s = format!("{first17}{}", check_char(first17).unwrap());
        assert_eq!(parse(&s), Err(IdNumberError::BirthDateInvalid));
        assert_eq!(
            parse(&format!("62102220231301001{}", check_char("62102220231301001").unwrap())),
            Err(IdNumberError::BirthDateInvalid)
        );
    }

    #[test]
    fn birth_date_range() {
        let early = format!("62102218491231001{}", check_char("62102218491231001").unwrap());
        assert_eq!(parse(&early), Err(IdNumberError::BirthDateTooEarly));
        let future = IdNumber::from_parts("621022", date(2025, 6, 2), 1);
        assert_eq!(parse(future.as_str()), Err(IdNumberError::BirthDateInFuture));
        let born_today = IdNumber::from_parts("621022", today(), 1);
        assert_eq!(parse(born_today.as_str()), Ok(born_today));
        assert!(IdNumber::parse("11010519491231002X").is_ok());
        let next_century = IdNumber::from_parts("621022", date(2999, 1, 1), 1);
        assert_eq!(IdNumber::parse(next_century.as_str()), Err(IdNumberError::BirthDateInFuture));
    }

    #[test]
    fn unknown_and_abolished_address_codes_are_accepted() {
        // 110105 and 440524 are not Qingyang codes; 621001 is a placeholder, 999999 no code at all.
        for address in ["621001", "999999", "000000"] {
            let id = IdNumber::from_parts(address, date(1990, 1, 1), 17);
            assert_eq!(parse(id.as_str()), Ok(id));
        }
    }

    #[test]
    fn accessors() {
        let id = parse("11010519491231002X").unwrap();
        assert_eq!(id.address_code(), "110105");
        assert_eq!(id.birth_date(), date(1949, 12, 31));
        assert!(!id.is_male()); // sequence 002
        assert!(parse("621022198512310039").unwrap().is_male()); // sequence 003
        assert_eq!(id.masked(), "110105********002X");
        assert_eq!(id.age_on(date(2023, 12, 30)), 73);
        assert_eq!(id.age_on(date(2023, 12, 31)), 74);
        assert_eq!(id.age_on(date(1949, 12, 30)), 0);
    }

    #[test]
    fn age_of_a_leap_day_birth() {
        let id = parse("621027200002290025").unwrap();
        assert_eq!(id.age_on(date(2001, 2, 28)), 0);
        assert_eq!(id.age_on(date(2001, 3, 1)), 1);
        assert_eq!(id.age_on(date(2004, 2, 29)), 4);
        assert_eq!(id.age_on(date(2016, 2, 28)), 15);
    }

    #[test]
    fn debug_never_shows_the_full_number() {
        let id = parse("621022198512310039").unwrap();
        let debug = format!("{id:?} {:?} {:#?}", Some(&id), vec![id.clone()]);
        assert!(!debug.contains("621022198512310039"), "{debug}");
        assert!(!debug.contains("19851231"), "{debug}");
        assert_eq!(format!("{id:?}"), "IdNumber(\"621022********0039\")");
    }

    #[test]
    fn errors_never_echo_the_number() {
        let first17 = "62102220230229001";
        let s = format!("{first17}{}", check_char(first17).unwrap());
        let message = parse(&s).unwrap_err().to_string();
        assert!(!message.contains("2023") && !message.contains(first17), "{message}");
    }

    #[test]
    fn check_char_validates_its_input() {
        assert_eq!(check_char("11010519491231002"), Some('X'));
        assert_eq!(check_char("44052418800101001"), Some('4'));
        assert_eq!(check_char("1101051949123100"), None);
        assert_eq!(check_char("110105194912310020"), None);
        assert_eq!(check_char("1101051949123100a"), None);
    }

    #[test]
    fn from_parts_builds_the_reference_numbers() {
        assert_eq!(IdNumber::from_parts("110105", date(1949, 12, 31), 2).as_str(), "11010519491231002X");
        assert_eq!(IdNumber::from_parts("621027", date(2000, 2, 29), 2).as_str(), "621027200002290025");
        assert_eq!(IdNumber::from_parts("621022", date(1985, 12, 31), 3).as_str(), "621022198512310039");
    }

    #[test]
    #[should_panic(expected = "address code")]
    fn from_parts_rejects_a_bad_address() {
        let _ = IdNumber::from_parts("62102", date(1990, 1, 1), 1);
    }

    #[test]
    fn serde_uses_the_full_string_and_validates() {
        let id = parse("11010519491231002X").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"11010519491231002X\"");
        assert_eq!(serde_json::from_str::<IdNumber>("\"11010519491231002x\"").unwrap(), id);
        assert!(serde_json::from_str::<IdNumber>("\"110105194912310021\"").is_err());
        assert_eq!("11010519491231002X".parse::<IdNumber>(), Ok(id));
    }

    fn parts() -> impl Strategy<Value = (String, NaiveDate, u16)> {
        let days = (today() - date(MIN_BIRTH_YEAR, 1, 1)).num_days();
        ("[0-9]{6}", 0..=days, 0u16..=999)
            .prop_map(|(address, n, seq)| (address, date(MIN_BIRTH_YEAR, 1, 1) + chrono::TimeDelta::days(n), seq))
    }

    proptest! {
        #[test]
        fn from_parts_parses_back_equal((address, birth, seq) in parts()) {
            let id = IdNumber::from_parts(&address, birth, seq);
            prop_assert_eq!(parse(id.as_str()), Ok(id.clone()));
            prop_assert_eq!(id.address_code(), address.as_str());
            prop_assert_eq!(id.birth_date(), birth);
            prop_assert_eq!(id.is_male(), seq % 2 == 1);
        }

        #[test]
        fn any_single_substitution_is_detected(
            (address, birth, seq) in parts(),
            position in 0usize..18,
            offset in 1u8..11,
        ) {
            let id = IdNumber::from_parts(&address, birth, seq);
            let alphabet = b"0123456789X";
            let mut bytes = id.as_str().as_bytes().to_vec();
            let current = alphabet.iter().position(|&c| c == bytes[position]).unwrap();
            let size = if position == 17 { 11 } else { 10 };
            let replacement = alphabet[(current + usize::from(offset)) % size];
            prop_assume!(replacement != bytes[position]);
            bytes[position] = replacement;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert!(parse(&changed).is_err(), "{} accepted", changed);
        }

        #[test]
        fn masked_hides_the_birth_date((address, birth, seq) in parts()) {
            let id = IdNumber::from_parts(&address, birth, seq);
            let masked = id.masked();
            prop_assert_eq!(masked.len(), 18);
            prop_assert_eq!(&masked[6..14], "********");
            prop_assert_eq!(&masked[..6], &id.as_str()[..6]);
            prop_assert_eq!(&masked[14..], &id.as_str()[14..]);
            prop_assert!(!masked.contains(&id.as_str()[6..14]));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,20}|[0-9xX]{18}") {
            let _ = parse(&s);
        }
    }
}
