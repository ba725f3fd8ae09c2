//! Amounts of money: non-negative decimal yuan, exact to the fen (0.01 yuan).
//!
//! Wire form (docs/spec/api.md "Conventions"): a string matching `^[0-9]{1,12}(\.[0-9]{1,2})?$`, e.g. `"607.00"` —
//! ASCII digits, at most 12 before the point and 1 or 2 after it, no sign, exponent, spaces, separators or leading or
//! trailing point. Anything else is `INVALID_ARGUMENT`. Leading zeros are accepted (`"007.50"` is 7.50). Output always
//! has exactly 2 decimals (`"607"` prints `"607.00"`). Never floating point (docs/spec/product.md).
//!
//! Arithmetic follows docs/spec/medical.md: half-up rounding to the fen (never banker's rounding), and `max(0, a − b)`
//! where a difference could go negative. Amounts are held as a whole number of fen in an `i128`, so no sum of stored
//! amounts can overflow (issue 23: 100,000 monthly benefits of 999,999,999,999.99 overflowed an `i64` of fen and failed
//! every county's reports): a sum of even 2^63 amounts of at most `i64::MAX` fen each fits. Sums may exceed the 12 wire
//! digits; they print, and read back from the hub's own JSON (`Money::parse_stored`, serde, up to 36 integer digits),
//! but are refused on the wire. Single amounts are also checked for plausibility where they are accepted
//! (`domain::money_limits`).

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign};
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Most integer digits accepted on the wire.
const MAX_INTEGER_DIGITS: usize = 12;

/// Most integer digits of a stored amount (10^36 yuan is 10^38 fen, below i128::MAX ≈ 1.7 × 10^38).
const MAX_STORED_INTEGER_DIGITS: usize = 36;

/// Why a money string or value was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The empty string.
    #[error("is empty")]
    Empty,
    /// Not ASCII digits with an optional point and 1–2 more digits (signs, exponents, spaces, separators, NaN,
    /// full-width digits, leading or trailing point).
    #[error("must be decimal yuan like 607.00: digits, optionally a point and 1 or 2 digits; no sign or exponent")]
    Format,
    /// More than 12 digits before the point.
    #[error("has more than 12 integer digits")]
    TooManyIntegerDigits,
    /// More than 2 digits after the point (finer than a fen).
    #[error("has more than 2 fractional digits")]
    TooManyFractionalDigits,
    /// A negative amount, e.g. from [`Money::from_fen`].
    #[error("must not be negative")]
    Negative,
}

/// A non-negative amount of money in yuan, exact to the fen. Ordered by value.
///
/// Built by [`FromStr`]/[`Money::parse`] (wire form), serde (the same string form) or [`Money::from_fen`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Money {
    fen: i128,
}

impl Money {
    /// 0.00 yuan.
    pub const ZERO: Money = Money { fen: 0 };
    /// The largest wire amount, 999,999,999,999.99 yuan.
    pub const MAX_WIRE: Money = Money { fen: 99_999_999_999_999 };

    /// Parses the strict wire form (docs/spec/api.md): `^[0-9]{1,12}(\.[0-9]{1,2})?$`.
    ///
    /// # Errors
    /// [`MoneyError::Empty`], [`MoneyError::TooManyIntegerDigits`], [`MoneyError::TooManyFractionalDigits`], or
    /// [`MoneyError::Format`] for any other deviation.
    pub fn parse(s: &str) -> Result<Money, MoneyError> {
        Money::parse_digits(s, MAX_INTEGER_DIGITS)
    }

    /// Parses what [`fmt::Display`] prints for any amount, sums beyond the 12 wire digits included (up to 36 digits):
    /// the form stored in the hub's own JSON (snapshot sections, summaries), which must read back whatever it holds.
    ///
    /// # Errors
    /// As [`Money::parse`], with [`MoneyError::TooManyIntegerDigits`] past 36 integer digits.
    pub fn parse_stored(s: &str) -> Result<Money, MoneyError> {
        Money::parse_digits(s, MAX_STORED_INTEGER_DIGITS)
    }

    fn parse_digits(s: &str, max_integer_digits: usize) -> Result<Money, MoneyError> {
        if s.is_empty() {
            return Err(MoneyError::Empty);
        }
        let (int, frac) = match s.split_once('.') {
            Some((int, frac)) => (int, Some(frac)),
            None => (s, None),
        };
        let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(int) || !frac.is_none_or(all_digits) {
            return Err(MoneyError::Format);
        }
        if int.len() > max_integer_digits {
            return Err(MoneyError::TooManyIntegerDigits);
        }
        let frac = frac.unwrap_or("");
        if frac.len() > 2 {
            return Err(MoneyError::TooManyFractionalDigits);
        }
        let value =
            |p: &str| p.bytes().try_fold(0i128, |acc, b| acc.checked_mul(10)?.checked_add(i128::from(b - b'0')));
        // On the wire at most 12 + 2 digits; the stored form at most 36 + 2, below i128::MAX.
        let fen = value(int)
            .and_then(|i| i.checked_mul(100))
            .and_then(|i| i.checked_add(value(frac)? * if frac.len() == 1 { 10 } else { 1 }))
            .ok_or(MoneyError::TooManyIntegerDigits)?;
        Ok(Money { fen })
    }

    /// The amount of `fen` hundredths of a yuan (`from_fen(60700)` is 607.00).
    ///
    /// # Errors
    /// [`MoneyError::Negative`] if `fen < 0`.
    pub const fn from_fen(fen: i128) -> Result<Money, MoneyError> {
        if fen < 0 { Err(MoneyError::Negative) } else { Ok(Money { fen }) }
    }

    /// The amount in fen (607.00 → 60700), never negative.
    pub const fn to_fen(self) -> i128 {
        self.fen
    }

    /// The amount in fen as an `i64`, or `None` past `i64::MAX` fen (a sum; every single accepted amount fits).
    pub fn to_fen_i64(self) -> Option<i64> {
        i64::try_from(self.fen).ok()
    }

    /// The amount as a decimal number of yuan with scale 2 (607.00), or `None` past rust_decimal's 96-bit mantissa
    /// (about 7.9 × 10^26 yuan).
    pub fn checked_decimal(self) -> Option<Decimal> {
        Decimal::try_from_i128_with_scale(self.fen, 2).ok()
    }

    /// The amount as a decimal number of yuan with scale 2 (607.00).
    ///
    /// # Panics
    /// Past about 7.9 × 10^26 yuan (rust_decimal's 96-bit mantissa), far beyond any sum of accepted amounts; use
    /// [`Money::checked_decimal`] where that matters.
    pub fn as_decimal(self) -> Decimal {
        self.checked_decimal().expect("amount within rust_decimal's range")
    }

    /// Whether the amount is 0.00.
    pub const fn is_zero(self) -> bool {
        self.fen == 0
    }

    /// `self + rhs`, or `None` past i128 fen (about 1.7 × 10^36 yuan).
    pub fn checked_add(self, rhs: Money) -> Option<Money> {
        self.fen.checked_add(rhs.fen).map(|fen| Money { fen })
    }

    /// `self − rhs`, or `None` if that would be negative.
    pub fn checked_sub(self, rhs: Money) -> Option<Money> {
        (self >= rhs).then(|| Money { fen: self.fen - rhs.fen })
    }

    /// `max(0, self − rhs)`, the difference used throughout docs/spec/medical.md (e.g. `after_basic`).
    pub fn saturating_sub_zero(self, rhs: Money) -> Money {
        self.checked_sub(rhs).unwrap_or(Money::ZERO)
    }

    /// `self × ratio`, rounded half-up to the fen (0.125 → 0.13; docs/spec/medical.md step 5), or `None` if `ratio` is
    /// negative or the product is too large.
    pub fn checked_mul_ratio_half_up(self, ratio: Decimal) -> Option<Money> {
        if ratio.is_sign_negative() && !ratio.is_zero() {
            return None;
        }
        let mut product = self
            .checked_decimal()?
            .checked_mul(ratio)?
            .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
        product.rescale(2);
        let fen = product.mantissa();
        // `-0.00` can arise from `0 × −0`; its mantissa is 0.
        Money::from_fen(fen).ok()
    }

    /// `self × ratio`, rounded half-up to the fen: `1.00 × 0.125 = 0.13`, `0.05 × 0.5 = 0.03` (docs/spec/medical.md
    /// step 5; never banker's rounding). E.g. `6,750.00 × 0.70 = 4,725.00`.
    ///
    /// # Panics
    /// If `ratio` is negative or the product exceeds rust_decimal's range (about 7.9 × 10^26 yuan); use
    /// [`Money::checked_mul_ratio_half_up`] for untrusted ratios.
    pub fn mul_ratio_half_up(self, ratio: Decimal) -> Money {
        self.checked_mul_ratio_half_up(ratio).expect("ratio must be non-negative and the product within range")
    }
}

impl fmt::Display for Money {
    /// Yuan with exactly 2 decimals: `607.00`, `0.05`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.fen / 100, self.fen % 100)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Money({self})")
    }
}

impl FromStr for Money {
    type Err = MoneyError;

    /// Same as [`Money::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Money::parse(s)
    }
}

/// # Panics
/// Past i128 fen (about 1.7 × 10^36 yuan), like integer overflow; use [`Money::checked_add`] where sums are
/// unbounded.
impl Add for Money {
    type Output = Money;

    fn add(self, rhs: Money) -> Money {
        self.checked_add(rhs).expect("money overflow: sum above i128::MAX fen")
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        *self = *self + rhs;
    }
}

impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

impl<'a> Sum<&'a Money> for Money {
    fn sum<I: Iterator<Item = &'a Money>>(iter: I) -> Money {
        iter.copied().sum()
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Deserializes from the string form only (not from JSON numbers), as [`Money::parse_stored`]: serde reads the hub's
/// own JSON (snapshot sections, summaries, policy files), where sums may exceed the 12 wire digits; wire input is
/// parsed with [`Money::parse`].
impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Money::parse_stored(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn money(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn accepts_the_wire_grammar() {
        assert_eq!(money("607").to_string(), "607.00");
        assert_eq!(money("607.00").to_fen(), 60700);
        assert_eq!(money("607.5").to_string(), "607.50");
        assert_eq!(money("0.05").to_string(), "0.05");
        assert_eq!(money("0").to_string(), "0.00");
        assert_eq!(money("007.50"), money("7.5"));
        assert_eq!(money("999999999999.99"), Money::MAX_WIRE);
        assert_eq!(money("000000000000.01").to_fen(), 1);
    }

    #[test]
    fn rejects_everything_else() {
        use MoneyError::*;
        let cases = [
            ("1e3", Format),
            ("+5", Format),
            ("-5", Format),
            ("0.005", TooManyFractionalDigits),
            ("NaN", Format),
            ("", Empty),
            (" 1", Format),
            ("1 ", Format),
            ("1.", Format),
            (".5", Format),
            (".", Format),
            ("１２", Format),
            ("1234567890123", TooManyIntegerDigits),
            ("1234567890123.00", TooManyIntegerDigits),
            ("1,000", Format),
            ("1.2.3", Format),
            ("1.-5", Format),
            ("0x10", Format),
            ("Infinity", Format),
            ("1_000", Format),
            ("1.5e2", Format),
        ];
        for (s, error) in cases {
            assert_eq!(Money::parse(s), Err(error), "{s:?}");
        }
    }

    #[test]
    fn error_messages_are_short_reasons() {
        assert_eq!(MoneyError::TooManyFractionalDigits.to_string(), "has more than 2 fractional digits");
        assert_eq!(MoneyError::Negative.to_string(), "must not be negative");
    }

    #[test]
    fn fen_conversions() {
        assert_eq!(Money::from_fen(60700), Ok(money("607.00")));
        assert_eq!(Money::from_fen(0), Ok(Money::ZERO));
        assert_eq!(Money::from_fen(-1), Err(MoneyError::Negative));
        assert_eq!(money("12.34").as_decimal(), dec("12.34"));
        assert_eq!(money("12").as_decimal().to_string(), "12.00");
        assert!(Money::ZERO.is_zero() && !money("0.01").is_zero());
    }

    #[test]
    fn addition_and_subtraction() {
        assert_eq!(money("1.10") + money("2.95"), money("4.05"));
        let mut total = Money::ZERO;
        total += money("0.01");
        assert_eq!(total, money("0.01"));
        assert_eq!([money("1"), money("2.5"), money("0.05")].iter().sum::<Money>(), money("3.55"));
        assert_eq!(Vec::<Money>::new().into_iter().sum::<Money>(), Money::ZERO);
        assert_eq!(money("5").checked_sub(money("3.5")), Some(money("1.5")));
        assert_eq!(money("5").checked_sub(money("5")), Some(Money::ZERO));
        assert_eq!(money("3").checked_sub(money("3.01")), None);
        assert_eq!(money("3").saturating_sub_zero(money("5")), Money::ZERO);
        assert_eq!(money("25000").saturating_sub_zero(money("15000")), money("10000"));
        assert_eq!(Money::from_fen(i128::MAX).unwrap().checked_add(money("0.01")), None);
        // Issue 23: 100,000 × 999,999,999,999.99 = 99,999,999,999,999,000.00 yuan (past i64 fen) is exact.
        let sum: Money = std::iter::repeat_n(Money::MAX_WIRE, 100_000).sum();
        assert_eq!(sum.to_string(), "99999999999999000.00");
    }

    #[test]
    fn min_and_max_order_by_value() {
        assert_eq!(money("9.99").min(money("10")), money("9.99"));
        assert_eq!(money("9.99").max(money("10")), money("10"));
        assert!(money("100") > money("99.99"));
    }

    #[test]
    fn ratios_round_half_up_not_to_even() {
        assert_eq!(money("1.00").mul_ratio_half_up(dec("0.125")), money("0.13"));
        // 0.005 midpoints: banker's rounding would give 0.02, 0.04 and 0.12.
        assert_eq!(money("0.05").mul_ratio_half_up(dec("0.5")), money("0.03"));
        assert_eq!(money("0.09").mul_ratio_half_up(dec("0.5")), money("0.05"));
        assert_eq!(money("0.25").mul_ratio_half_up(dec("0.5")), money("0.13"));
        assert_eq!(money("0.01").mul_ratio_half_up(dec("0.4999")), Money::ZERO);
        assert_eq!(money("0.01").mul_ratio_half_up(dec("0.5")), money("0.01"));
    }

    #[test]
    fn ratios_from_the_worked_examples() {
        // docs/spec/medical.md examples A, B, D, E.
        assert_eq!(money("5000").mul_ratio_half_up(dec("0.65")), money("3250.00"));
        assert_eq!(money("6750").mul_ratio_half_up(dec("0.70")), money("4725.00"));
        assert_eq!(money("2000").mul_ratio_half_up(dec("0.65")), money("1300.00"));
        assert_eq!(money("18000").mul_ratio_half_up(dec("0.65")), money("11700.00"));
        assert_eq!(money("20000").mul_ratio_half_up(dec("0.5")), money("10000.00"));
        assert_eq!(money("607").mul_ratio_half_up(dec("1.3")), money("789.10"));
        assert_eq!(money("607").mul_ratio_half_up(Decimal::ONE), money("607"));
        assert_eq!(money("607").mul_ratio_half_up(Decimal::ZERO), Money::ZERO);
    }

    #[test]
    fn bad_ratios_are_refused() {
        assert_eq!(money("1").checked_mul_ratio_half_up(dec("-0.1")), None);
        assert_eq!(Money::from_fen(i128::MAX).unwrap().checked_mul_ratio_half_up(dec("2")), None);
        assert_eq!(money("1").checked_mul_ratio_half_up(dec("-0")), Some(Money::ZERO));
    }

    #[test]
    #[should_panic(expected = "ratio must be non-negative")]
    fn negative_ratio_panics_in_the_unchecked_form() {
        let _ = money("1").mul_ratio_half_up(dec("-0.5"));
    }

    #[test]
    fn serde_uses_the_strict_string_form() {
        assert_eq!(serde_json::to_string(&money("607")).unwrap(), "\"607.00\"");
        assert_eq!(serde_json::from_str::<Money>("\"607.5\"").unwrap(), money("607.50"));
        assert!(serde_json::from_str::<Money>("\"1e3\"").is_err());
        assert!(serde_json::from_str::<Money>("607.5").is_err());
        assert_eq!(format!("{:?}", money("3")), "Money(3.00)");
    }

    #[test]
    fn sums_beyond_the_wire_digits_read_back_from_stored_json_only() {
        let sum = Money::MAX_WIRE + Money::MAX_WIRE;
        let json = serde_json::to_string(&sum).unwrap();
        assert_eq!(json, "\"1999999999999.98\"");
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), sum);
        assert_eq!(Money::parse("1999999999999.98"), Err(MoneyError::TooManyIntegerDigits));
        let max = Money::from_fen(i128::from(i64::MAX)).unwrap();
        assert_eq!(Money::parse_stored(&max.to_string()), Ok(max));
        // Issue 23: past i64 fen (92,233,720,368,547,758.07 yuan) a stored sum still reads back; 36 digits at most.
        assert_eq!(Money::parse_stored("92233720368547758.08").unwrap().to_fen(), i128::from(i64::MAX) + 1);
        let nines = "9".repeat(36);
        assert_eq!(Money::parse_stored(&format!("{nines}.99")).unwrap().to_string(), format!("{nines}.99"));
        assert_eq!(Money::parse_stored(&format!("1{}", "0".repeat(36))), Err(MoneyError::TooManyIntegerDigits));
    }

    proptest! {
        #[test]
        fn display_parse_round_trips(fen in 0i64..=99_999_999_999_999) {
            let m = Money::from_fen(fen.into()).unwrap();
            let shown = m.to_string();
            prop_assert_eq!(Money::parse(&shown), Ok(m));
            prop_assert_eq!(shown.parse::<Decimal>().unwrap(), m.as_decimal());
            prop_assert_eq!(m.to_fen(), i128::from(fen));
        }

        #[test]
        fn every_amount_round_trips_through_serde(fen in 0i128..=i128::MAX / 100) {
            let m = Money::from_fen(fen).unwrap();
            prop_assert_eq!(serde_json::from_str::<Money>(&serde_json::to_string(&m).unwrap()).unwrap(), m);
        }

        #[test]
        fn parse_agrees_with_decimal(s in "[0-9]{1,12}(\\.[0-9]{1,2})?") {
            let m = Money::parse(&s).unwrap();
            prop_assert_eq!(m.as_decimal(), s.parse::<Decimal>().unwrap());
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,20}|[-+0-9.eE ]{0,20}") {
            let _ = Money::parse(&s);
        }

        #[test]
        fn saturating_sub_is_max_zero(a in 0i64..=99_999_999_999_999, b in 0i64..=99_999_999_999_999) {
            let (x, y) = (Money::from_fen(a.into()).unwrap(), Money::from_fen(b.into()).unwrap());
            prop_assert_eq!(x.saturating_sub_zero(y).to_fen(), i128::from((a - b).max(0)));
            prop_assert_eq!(x.checked_sub(y).map(Money::to_fen), (a >= b).then_some(i128::from(a - b)));
        }

        #[test]
        fn ratio_products_round_half_up(fen in 0i64..=99_999_999_999_999, permille in 0i64..=2000) {
            let m = Money::from_fen(fen.into()).unwrap();
            let got = m.mul_ratio_half_up(Decimal::new(permille, 3)).to_fen();
            // Exact integer reference: fen × permille / 1000, halves rounded up.
            let exact = i128::from(fen) * i128::from(permille);
            prop_assert_eq!(got, (exact + 500) / 1000);
        }
    }
}
