//! Business time: calendar dates, months and quarters in Asia/Shanghai.
//!
//! Wire forms (docs/spec/api.md, "Conventions"): a date is `YYYY-MM-DD`, a month `YYYY-MM`, a quarter `YYYYQn`
//! (e.g. `2023Q2`); all are calendar values in Asia/Shanghai, while instants are UTC. Business dates are always
//! derived from an instant through [`SHANGHAI`], never through the host's local time zone.
//!
//! Parsing accepts four-digit years only (0000–9999), so `Display` → `FromStr` round-trips for those years.
//! Values built from dates outside that range (chrono allows ±262,142 years) still work but print a year that
//! does not parse.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The business time zone (China Standard Time, UTC+8 since 1991; it observed daylight saving time in 1940–1949 and
/// 1986–1991, which `chrono-tz` knows about).
pub const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;

/// Why a date, month or quarter string was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// Not of the shape `YYYY-MM-DD` (exactly 10 ASCII characters, zero-padded).
    #[error("must be a date YYYY-MM-DD")]
    DateFormat,
    /// The shape is right but the day does not exist, e.g. `2023-02-29`.
    #[error("is not a calendar date")]
    NoSuchDate,
    /// Not of the shape `YYYY-MM` with a month 01–12.
    #[error("must be a month YYYY-MM with MM from 01 to 12")]
    MonthFormat,
    /// Not of the shape `YYYYQn` with n 1–4 and an upper-case `Q`.
    #[error("must be a quarter YYYYQn with n from 1 to 4, e.g. 2023Q2")]
    QuarterFormat,
}

/// Parses a strict `YYYY-MM-DD` date (docs/spec/api.md): exactly 10 ASCII characters, zero-padded, and a real calendar
/// day.
///
/// # Errors
/// [`DateError::DateFormat`] for any other shape (signs, spaces, `2023-2-1`, full-width digits, …) and
/// [`DateError::NoSuchDate`] for a day that does not exist (`2023-02-29`, `2023-13-01`).
pub fn parse_date(s: &str) -> Result<NaiveDate, DateError> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(DateError::DateFormat);
    }
    let year = digits(&b[0..4]).ok_or(DateError::DateFormat)?;
    let month = digits(&b[5..7]).ok_or(DateError::DateFormat)?;
    let day = digits(&b[8..10]).ok_or(DateError::DateFormat)?;
    // `year` has at most 4 digits, so the cast cannot wrap.
    NaiveDate::from_ymd_opt(year as i32, month, day).ok_or(DateError::NoSuchDate)
}

/// The value of a run of ASCII digits (at most 9 of them), or `None` if any byte is not an ASCII digit.
fn digits(b: &[u8]) -> Option<u32> {
    debug_assert!(b.len() <= 9);
    b.iter().try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
}

/// The Asia/Shanghai calendar date of a UTC instant (e.g. `2024-03-31T16:30:00Z` → `2024-04-01`).
pub fn shanghai_date(instant: DateTime<Utc>) -> NaiveDate {
    instant.with_timezone(&SHANGHAI).date_naive()
}

/// The first instant of `date` in Asia/Shanghai, as UTC (e.g. `2023-07-01` → `2023-06-30T16:00:00Z`).
pub fn start_of_day_utc(date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_time(NaiveTime::MIN);
    match SHANGHAI.from_local_datetime(&midnight) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        // Local midnight was skipped: in Shanghai's history (1940s) clocks sprang forward from UTC+8 at 00:00, so
        // the day began at the instant of the change, which is midnight read at the standard offset UTC+8.
        LocalResult::None => (midnight - TimeDelta::hours(8)).and_utc(),
    }
}

/// The last day of `date`'s month.
fn month_end(date: NaiveDate) -> NaiveDate {
    (28..=31)
        .rev()
        .find_map(|day| date.with_day(day))
        // Infallible: every month has a 28th, and chrono's range ends on 31 December.
        .expect("every month has a 28th day")
}

/// Implements `Serialize`/`Deserialize` through `Display`/`FromStr`.
macro_rules! serde_via_str {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A calendar month, wire form `YYYY-MM` (docs/spec/api.md), e.g. `2023-07`.
///
/// Ordered chronologically. Built by [`FromStr`], [`Month::new`] or [`Month::of`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Month {
    first: NaiveDate,
    last: NaiveDate,
}

impl Month {
    /// The month `month` (1–12) of `year`; `None` if `month` is out of range or the year is outside chrono's range.
    pub fn new(year: i32, month: u32) -> Option<Month> {
        NaiveDate::from_ymd_opt(year, month, 1).map(Month::of)
    }

    /// The month containing `date`.
    pub fn of(date: NaiveDate) -> Month {
        Month {
            // Infallible: every month has a first day, and chrono's range starts on 1 January.
            first: date.with_day(1).expect("every month has a first day"),
            last: month_end(date),
        }
    }

    /// The month containing `instant`'s Asia/Shanghai date.
    pub fn of_instant(instant: DateTime<Utc>) -> Month {
        Month::of(shanghai_date(instant))
    }

    /// The year, e.g. 2023.
    pub fn year(&self) -> i32 {
        self.first.year()
    }

    /// The month number, 1–12.
    pub fn month(&self) -> u32 {
        self.first.month()
    }

    /// The first day of the month.
    pub fn first_day(&self) -> NaiveDate {
        self.first
    }

    /// The last day of the month (`2024-02` → `2024-02-29`).
    pub fn last_day(&self) -> NaiveDate {
        self.last
    }

    /// Whether `date` lies in this month.
    pub fn contains(&self, date: NaiveDate) -> bool {
        (self.first..=self.last).contains(&date)
    }

    /// The following month (`2023-12` → `2024-01`).
    ///
    /// # Panics
    /// After December of year 262142, the end of chrono's range.
    pub fn next(&self) -> Month {
        Month::of(self.last.succ_opt().expect("no month after the end of chrono's date range"))
    }

    /// The preceding month (`2024-01` → `2023-12`).
    ///
    /// # Panics
    /// Before January of year −262143, the start of chrono's range.
    pub fn prev(&self) -> Month {
        Month::of(self.first.pred_opt().expect("no month before the start of chrono's date range"))
    }

    /// The first instant of the month in Asia/Shanghai, as UTC.
    pub fn start_instant_utc(&self) -> DateTime<Utc> {
        start_of_day_utc(self.first)
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year(), self.month())
    }
}

impl FromStr for Month {
    type Err = DateError;

    /// Parses `YYYY-MM`: exactly 7 ASCII characters, month 01–12.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        if b.len() != 7 || b[4] != b'-' {
            return Err(DateError::MonthFormat);
        }
        let year = digits(&b[0..4]).ok_or(DateError::MonthFormat)?;
        let month = digits(&b[5..7]).ok_or(DateError::MonthFormat)?;
        // `year` has at most 4 digits, so the cast cannot wrap.
        Month::new(year as i32, month).ok_or(DateError::MonthFormat)
    }
}

serde_via_str!(Month);

/// A calendar quarter, wire form `YYYYQn` (docs/spec/api.md), e.g. `2023Q2` = April–June 2023. Only an upper-case `Q`
/// is accepted.
///
/// Ordered chronologically. Built by [`FromStr`], [`Quarter::new`], [`Quarter::of`] or [`Quarter::of_instant`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Quarter {
    first: NaiveDate,
    last: NaiveDate,
}

impl Quarter {
    /// Quarter `number` (1–4) of `year`; `None` if `number` is out of range or the year is outside chrono's range.
    pub fn new(year: i32, number: u32) -> Option<Quarter> {
        if !(1..=4).contains(&number) {
            return None;
        }
        NaiveDate::from_ymd_opt(year, number * 3 - 2, 1).map(Quarter::of)
    }

    /// The quarter containing `date`.
    pub fn of(date: NaiveDate) -> Quarter {
        let first_month = (date.month0() / 3) * 3 + 1;
        // Infallible: day 1 exists in every month, and chrono's range covers whole years.
        let first =
            date.with_day(1).and_then(|d| d.with_month(first_month)).expect("the first day of a quarter exists");
        let last = first.with_month(first_month + 2).expect("the third month of a quarter exists");
        Quarter { first, last: month_end(last) }
    }

    /// The quarter containing `instant`'s Asia/Shanghai date (`2024-03-31T16:30:00Z` is in `2024Q2`).
    pub fn of_instant(instant: DateTime<Utc>) -> Quarter {
        Quarter::of(shanghai_date(instant))
    }

    /// The year, e.g. 2023.
    pub fn year(&self) -> i32 {
        self.first.year()
    }

    /// The quarter number, 1–4.
    pub fn number(&self) -> u32 {
        self.first.month0() / 3 + 1
    }

    /// The first day (`2023Q2` → `2023-04-01`).
    pub fn first_day(&self) -> NaiveDate {
        self.first
    }

    /// The last day (`2023Q2` → `2023-06-30`): a snapshot's `as_of` (docs/spec/coordination.md).
    pub fn last_day(&self) -> NaiveDate {
        self.last
    }

    /// Whether `date` lies in this quarter.
    pub fn contains(&self, date: NaiveDate) -> bool {
        (self.first..=self.last).contains(&date)
    }

    /// The three months of the quarter, in order.
    pub fn months(&self) -> [Month; 3] {
        let first = Month::of(self.first);
        let second = first.next();
        [first, second, second.next()]
    }

    /// The following quarter (`2023Q4` → `2024Q1`).
    ///
    /// # Panics
    /// After the last quarter of year 262142, the end of chrono's range.
    pub fn next(&self) -> Quarter {
        Quarter::of(self.last.succ_opt().expect("no quarter after the end of chrono's date range"))
    }

    /// The preceding quarter (`2024Q1` → `2023Q4`).
    ///
    /// # Panics
    /// Before the first quarter of year −262143, the start of chrono's range.
    pub fn prev(&self) -> Quarter {
        Quarter::of(self.first.pred_opt().expect("no quarter before the start of chrono's date range"))
    }

    /// The first instant of the quarter in Asia/Shanghai, as UTC (`2023Q2` → `2023-03-31T16:00:00Z`).
    pub fn start_instant_utc(&self) -> DateTime<Utc> {
        start_of_day_utc(self.first)
    }

    /// The end of the quarter, exclusive: the first instant of the next quarter's first day in Asia/Shanghai, as UTC
    /// (`2023Q2` → `2023-06-30T16:00:00Z`).
    ///
    /// # Panics
    /// For the last quarter of chrono's range (year 262142).
    pub fn end_instant_utc(&self) -> DateTime<Utc> {
        start_of_day_utc(self.next().first)
    }
}

impl fmt::Display for Quarter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}Q{}", self.year(), self.number())
    }
}

impl FromStr for Quarter {
    type Err = DateError;

    /// Parses `YYYYQn`: exactly 6 ASCII characters, upper-case `Q`, n from 1 to 4.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        if b.len() != 6 || b[4] != b'Q' {
            return Err(DateError::QuarterFormat);
        }
        let year = digits(&b[0..4]).ok_or(DateError::QuarterFormat)?;
        let number = digits(&b[5..6]).ok_or(DateError::QuarterFormat)?;
        // `year` has at most 4 digits, so the cast cannot wrap.
        Quarter::new(year as i32, number).ok_or(DateError::QuarterFormat)
    }
}

serde_via_str!(Quarter);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn q(s: &str) -> Quarter {
        s.parse().unwrap()
    }

    fn m(s: &str) -> Month {
        s.parse().unwrap()
    }

    #[test]
    fn parse_date_accepts_real_dates() {
        assert_eq!(d("2023-06-30"), NaiveDate::from_ymd_opt(2023, 6, 30).unwrap());
        assert_eq!(d("2024-02-29"), NaiveDate::from_ymd_opt(2024, 2, 29).unwrap());
        assert_eq!(d("2000-02-29"), NaiveDate::from_ymd_opt(2000, 2, 29).unwrap());
    }

    #[test]
    fn parse_date_rejects_bad_shapes() {
        for s in [
            "",
            "2023-6-30",
            "2023-06-3",
            "23-06-30",
            "2023/06/30",
            "20230630",
            " 2023-06-30",
            "2023-06-30 ",
            "+2023-06-30",
            "2023-06-30T00:00:00",
            "２０２３-06-30",
            "2023-0a-30",
            "2023--6-30",
            "-023-06-30",
        ] {
            assert_eq!(parse_date(s), Err(DateError::DateFormat), "{s:?}");
        }
    }

    #[test]
    fn parse_date_rejects_days_that_do_not_exist() {
        for s in ["2023-02-29", "1900-02-29", "2023-04-31", "2023-13-01", "2023-00-10", "2023-01-00", "2023-01-32"] {
            assert_eq!(parse_date(s), Err(DateError::NoSuchDate), "{s:?}");
        }
    }

    #[test]
    fn error_messages_are_short_reasons() {
        assert_eq!(DateError::NoSuchDate.to_string(), "is not a calendar date");
        assert_eq!(DateError::DateFormat.to_string(), "must be a date YYYY-MM-DD");
    }

    #[test]
    fn shanghai_date_is_utc_plus_8() {
        assert_eq!(shanghai_date(utc("2024-03-31T15:59:59Z")), d("2024-03-31"));
        assert_eq!(shanghai_date(utc("2024-03-31T16:00:00Z")), d("2024-04-01"));
        assert_eq!(shanghai_date(utc("2023-12-31T16:30:00Z")), d("2024-01-01"));
    }

    #[test]
    fn start_of_day_is_16_00_utc_the_day_before() {
        assert_eq!(start_of_day_utc(d("2023-07-01")), utc("2023-06-30T16:00:00Z"));
        // Daylight saving time in 1988 (UTC+9): midnight is 15:00 UTC.
        assert_eq!(start_of_day_utc(d("1988-07-01")), utc("1988-06-30T15:00:00Z"));
        // 1 June 1940: clocks sprang forward at midnight, so the day began at 1940-05-31T16:00:00Z.
        assert_eq!(start_of_day_utc(d("1940-06-01")), utc("1940-05-31T16:00:00Z"));
        assert_eq!(shanghai_date(start_of_day_utc(d("1940-06-01"))), d("1940-06-01"));
    }

    #[test]
    fn month_parse_and_display() {
        assert_eq!(m("2023-07").to_string(), "2023-07");
        assert_eq!(m("2023-07").year(), 2023);
        assert_eq!(m("2023-07").month(), 7);
        for s in ["2023-7", "2023-13", "2023-00", "2023/07", "202307", "2023-07-01", " 2023-07", "2023-0７", ""] {
            assert_eq!(s.parse::<Month>(), Err(DateError::MonthFormat), "{s:?}");
        }
    }

    #[test]
    fn month_bounds_and_neighbours() {
        assert_eq!(m("2024-02").first_day(), d("2024-02-01"));
        assert_eq!(m("2024-02").last_day(), d("2024-02-29"));
        assert_eq!(m("2023-02").last_day(), d("2023-02-28"));
        assert_eq!(m("2023-12").last_day(), d("2023-12-31"));
        assert_eq!(m("2023-12").next(), m("2024-01"));
        assert_eq!(m("2024-01").prev(), m("2023-12"));
        assert_eq!(Month::of(d("2023-07-15")), m("2023-07"));
        assert!(m("2023-07").contains(d("2023-07-31")));
        assert!(!m("2023-07").contains(d("2023-08-01")));
        assert!(!m("2023-07").contains(d("2023-06-30")));
        assert!(m("2023-07") < m("2023-08") && m("2023-12") < m("2024-01"));
        assert_eq!(Month::of_instant(utc("2023-07-31T16:00:00Z")), m("2023-08"));
        assert_eq!(m("2023-07").start_instant_utc(), utc("2023-06-30T16:00:00Z"));
        assert_eq!(Month::new(2023, 13), None);
        assert_eq!(Month::new(2023, 0), None);
    }

    #[test]
    fn quarter_parse_and_display() {
        assert_eq!(q("2023Q2").to_string(), "2023Q2");
        assert_eq!(q("2023Q2").year(), 2023);
        assert_eq!(q("2023Q2").number(), 2);
        for s in ["2023q2", "2023Q0", "2023Q5", "2023-Q2", "23Q2", "2023Q", "2023Q22", " 2023Q2", "2023Ｑ2", ""] {
            assert_eq!(s.parse::<Quarter>(), Err(DateError::QuarterFormat), "{s:?}");
        }
    }

    #[test]
    fn quarter_bounds() {
        assert_eq!(q("2023Q2").first_day(), d("2023-04-01"));
        assert_eq!(q("2023Q2").last_day(), d("2023-06-30"));
        assert_eq!(q("2023Q1").last_day(), d("2023-03-31"));
        assert_eq!(q("2023Q3").last_day(), d("2023-09-30"));
        assert_eq!(q("2023Q4").first_day(), d("2023-10-01"));
        assert_eq!(q("2023Q4").last_day(), d("2023-12-31"));
        assert!(q("2023Q2").contains(d("2023-04-01")) && q("2023Q2").contains(d("2023-06-30")));
        assert!(!q("2023Q2").contains(d("2023-03-31")) && !q("2023Q2").contains(d("2023-07-01")));
    }

    #[test]
    fn quarter_of_dates_and_instants() {
        assert_eq!(Quarter::of(d("2023-05-17")), q("2023Q2"));
        assert_eq!(Quarter::of(d("2023-12-31")), q("2023Q4"));
        assert_eq!(Quarter::of(d("2024-01-01")), q("2024Q1"));
        assert_eq!(Quarter::of_instant(utc("2024-03-31T16:30:00Z")), q("2024Q2"));
        assert_eq!(Quarter::of_instant(utc("2024-03-31T15:59:59Z")), q("2024Q1"));
    }

    #[test]
    fn quarter_neighbours_and_months() {
        assert_eq!(q("2023Q4").next(), q("2024Q1"));
        assert_eq!(q("2024Q1").prev(), q("2023Q4"));
        assert_eq!(q("2023Q2").next(), q("2023Q3"));
        assert_eq!(q("2023Q2").months(), [m("2023-04"), m("2023-05"), m("2023-06")]);
        assert_eq!(q("2023Q4").months(), [m("2023-10"), m("2023-11"), m("2023-12")]);
        assert!(q("2023Q4") < q("2024Q1"));
        assert_eq!(Quarter::new(2023, 0), None);
        assert_eq!(Quarter::new(2023, 5), None);
    }

    #[test]
    fn quarter_instants() {
        assert_eq!(q("2023Q2").start_instant_utc(), utc("2023-03-31T16:00:00Z"));
        assert_eq!(q("2023Q2").end_instant_utc(), utc("2023-06-30T16:00:00Z"));
        assert_eq!(q("2023Q4").end_instant_utc(), utc("2023-12-31T16:00:00Z"));
        assert_eq!(Quarter::of_instant(q("2023Q2").end_instant_utc()), q("2023Q3"));
    }

    #[test]
    fn serde_uses_the_string_forms() {
        assert_eq!(serde_json::to_string(&q("2023Q2")).unwrap(), "\"2023Q2\"");
        assert_eq!(serde_json::from_str::<Quarter>("\"2023Q2\"").unwrap(), q("2023Q2"));
        assert!(serde_json::from_str::<Quarter>("\"2023q2\"").is_err());
        assert_eq!(serde_json::to_string(&m("2023-07")).unwrap(), "\"2023-07\"");
        assert_eq!(serde_json::from_str::<Month>("\"2023-07\"").unwrap(), m("2023-07"));
        assert!(serde_json::from_str::<Month>("\"2023-7\"").is_err());
    }

    fn any_date() -> impl Strategy<Value = NaiveDate> {
        // 0000-01-01 ..= 9999-12-31
        let lo = NaiveDate::from_ymd_opt(0, 1, 1).unwrap();
        (0i64..=3_652_424).prop_map(move |n| lo + TimeDelta::days(n))
    }

    proptest! {
        #[test]
        fn quarter_of_contains_the_date(date in any_date()) {
            let quarter = Quarter::of(date);
            prop_assert!(quarter.contains(date));
            prop_assert!(quarter.months().iter().any(|month| month.contains(date)));
            prop_assert_eq!(quarter.months()[0].first_day(), quarter.first_day());
            prop_assert_eq!(quarter.months()[2].last_day(), quarter.last_day());
        }

        #[test]
        fn month_of_contains_the_date(date in any_date()) {
            let month = Month::of(date);
            prop_assert!(month.contains(date));
            prop_assert_eq!(month.last_day().succ_opt().map(Month::of), Some(month.next()));
        }

        #[test]
        fn display_parse_round_trips(date in any_date()) {
            let quarter = Quarter::of(date);
            prop_assert_eq!(quarter.to_string().parse::<Quarter>(), Ok(quarter));
            let month = Month::of(date);
            prop_assert_eq!(month.to_string().parse::<Month>(), Ok(month));
            prop_assert_eq!(parse_date(&date.format("%Y-%m-%d").to_string()), Ok(date));
        }

        #[test]
        fn instants_map_to_their_quarter(secs in 0i64..=4_102_444_800) {
            let instant = DateTime::from_timestamp(secs, 0).unwrap();
            let quarter = Quarter::of_instant(instant);
            prop_assert!(quarter.start_instant_utc() <= instant && instant < quarter.end_instant_utc());
        }

        #[test]
        fn parsers_never_panic(s in "\\PC{0,12}") {
            let _ = parse_date(&s);
            let _ = s.parse::<Month>();
            let _ = s.parse::<Quarter>();
        }
    }
}
