//! Working days (工作日) under China's official calendar: weekends and public holidays are off, and make-up working
//! days (调休上班, usually a Saturday or Sunday next to a long holiday) are on
//! (docs/domain/policy-reference.md, "Working-day calendar"; docs/spec/coordination.md, "Early warnings").
//!
//! The rule: `working(d) = (d is Mon–Fri and d ∉ holidays) || d ∈ make-up days`.
//!
//! The calendar is **data, not code**. The State Council's General Office publishes each year's holidays in a notice
//! (国务院办公厅关于YYYY年部分节假日安排的通知), usually between October and December of the year before. Operators load
//! it with `doudi calendar add FILE --source …` (file format and validation: [`crate::holiday_notice`]);
//! migration `0003_calendar.sql` holds 2022–2026. Two families of methods:
//! - the strict ones ([`WorkCalendar::add_working_days`], [`WorkCalendar::working_days_between`], …) fail with
//!   [`CalendarError::YearNotCovered`] on a day of a year whose notice is not loaded (see
//!   [`WorkCalendar::covered_years`]);
//! - the `_or_provisional` ones never refuse: such days follow the **provisional rule** (Monday–Friday are working
//!   days) and the [`Reckoned`] result is flagged `provisional`. Intake, lists and reports use these (issue 15: a
//!   warning is never refused because next year's notice is late); the flag travels to the wire and the reports.
//!
//! [`builtin_entries`] holds the notices for 2022–2026 ([`BUILTIN_NOTICES`], [`CALENDAR_SOURCE`]); 2022 is
//! unconfirmed. The migration inserts exactly the same rows (a test checks it).
//!
//! Deadlines count from the day after the day of receipt, whatever that day is: received Thu 2023-09-28 → working
//! days 10-07 (Sat, make-up), 10-08 (Sun, make-up), 10-09 (Mon), so a 3-working-day visit is due 2023-10-09 and a
//! 5-working-day decision 2023-10-11. "Received" is the Asia/Shanghai date of the instant received
//! ([`WorkCalendar::due_date`]).
//!
//! This module does no I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, Utc, Weekday};
use serde::{Deserialize, Serialize};

use crate::calendar::{parse_date, shanghai_date};

/// Where the built-in data ([`BUILTIN_NOTICES`]) comes from.
pub const CALENDAR_SOURCE: &str = "国务院办公厅关于2022年、2023年、2024年、2025年、2026年部分节假日安排的通知 \
     (State Council General Office holiday notices for 2022–2026, as restated in docs/domain/policy-reference.md; \
     2023–2026 checked, 2022 unconfirmed). Extend the work_calendar table each year when the next notice is \
     published.";

/// What an entry of the official calendar says about a day. Days not listed follow the weekday rule.
///
/// Stored and serialized as `HOLIDAY` / `MAKEUP_WORKDAY` (the `work_calendar.kind` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DayKind {
    /// A public holiday (休): off, even on a weekday.
    #[serde(rename = "HOLIDAY")]
    Holiday,
    /// A make-up working day (班): on, even on a Saturday or Sunday.
    #[serde(rename = "MAKEUP_WORKDAY")]
    MakeUpWorkday,
}

impl DayKind {
    /// The stored form: `HOLIDAY` or `MAKEUP_WORKDAY`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DayKind::Holiday => "HOLIDAY",
            DayKind::MakeUpWorkday => "MAKEUP_WORKDAY",
        }
    }
}

impl fmt::Display for DayKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DayKind {
    type Err = CalendarError;

    /// Parses the stored form exactly (`HOLIDAY`, `MAKEUP_WORKDAY`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "HOLIDAY" => Ok(DayKind::Holiday),
            "MAKEUP_WORKDAY" => Ok(DayKind::MakeUpWorkday),
            other => Err(CalendarError::UnknownDayKind(other.to_owned())),
        }
    }
}

/// One day of the official calendar, e.g. `2023-01-23 Holiday 春节` or `2023-01-28 MakeUpWorkday 春节`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CalendarEntry {
    /// The calendar day (Asia/Shanghai business date).
    pub date: NaiveDate,
    /// Holiday or make-up working day.
    pub kind: DayKind,
    /// The festival the day belongs to, e.g. `春节` (also for its make-up working days).
    pub name: String,
}

impl CalendarEntry {
    /// An entry for `date`.
    pub fn new(date: NaiveDate, kind: DayKind, name: impl Into<String>) -> CalendarEntry {
        CalendarEntry { date, kind, name: name.into() }
    }
}

/// Why a calendar could not be built or could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// The same date was given as a holiday and as a make-up working day.
    #[error("{date} is listed both as a holiday and as a make-up working day")]
    ConflictingEntries {
        /// The date listed with both kinds.
        date: NaiveDate,
    },
    /// The computation needs a day of a year for which no State Council notice is loaded.
    #[error(
        "the working-day calendar has no data for {year}: load the State Council holiday notice for {year} into the \
         work_calendar table"
    )]
    YearNotCovered {
        /// The first uncovered year the computation needed.
        year: i32,
    },
    /// The walk left chrono's date range (only possible with calendar data near year 262142).
    #[error("date out of range")]
    DateOutOfRange,
    /// A stored kind other than `HOLIDAY` or `MAKEUP_WORKDAY`.
    #[error("unknown calendar day kind {0:?} (expected HOLIDAY or MAKEUP_WORKDAY)")]
    UnknownDayKind(String),
}

/// A value computed from the calendar, and whether any day it needed lay in a year whose notice is not loaded (then
/// those days followed the provisional Monday–Friday rule and the value may change when the notice is loaded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reckoned<T> {
    /// The date or count.
    pub value: T,
    /// Computed (partly) under the provisional rule.
    pub provisional: bool,
}

/// The official working-day calendar: the listed holidays and make-up working days of the loaded years.
///
/// Built with [`WorkCalendar::from_entries`] (from the `work_calendar` table, or [`builtin_entries`] in tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkCalendar {
    days: BTreeMap<NaiveDate, CalendarEntry>,
    covered: BTreeSet<i32>,
}

impl WorkCalendar {
    /// Builds a calendar from entries in any order.
    ///
    /// A date listed twice with the same kind is kept once (the first name wins).
    ///
    /// # Errors
    /// [`CalendarError::ConflictingEntries`] for a date listed both as a holiday and as a make-up working day.
    pub fn from_entries(entries: impl IntoIterator<Item = CalendarEntry>) -> Result<WorkCalendar, CalendarError> {
        let mut days = BTreeMap::new();
        for entry in entries {
            match days.get(&entry.date) {
                None => {
                    days.insert(entry.date, entry);
                }
                Some(existing) if existing.kind == entry.kind => {}
                Some(_) => return Err(CalendarError::ConflictingEntries { date: entry.date }),
            }
        }
        let covered = days
            .values()
            .filter(|e| e.kind == DayKind::Holiday && e.date.month() == 1 && e.date.day() == 1)
            .map(|e| e.date.year())
            .collect();
        Ok(WorkCalendar { days, covered })
    }

    /// The built-in 2022–2026 calendar ([`builtin_entries`]); production code loads the `work_calendar` table.
    pub fn builtin() -> WorkCalendar {
        WorkCalendar::from_entries(builtin_entries()).expect("the built-in calendar has no conflicting entries")
    }

    /// The years whose State Council notice is loaded, ascending.
    ///
    /// A year counts as covered when its 1 January is listed as a holiday: every annual notice lists New Year's Day
    /// (元旦), so this marks the notice as loaded. A year with no entries is not covered, and neither is a year whose
    /// only entries come from the next year's notice (2022-12-31 is in the 2023 notice, so a calendar holding only
    /// the 2023 notice covers 2023, not 2022).
    pub fn covered_years(&self) -> &BTreeSet<i32> {
        &self.covered
    }

    /// Whether the notice for `year` is loaded (see [`WorkCalendar::covered_years`]).
    pub fn covers(&self, year: i32) -> bool {
        self.covered.contains(&year)
    }

    /// The entry listed for `date`, if any.
    pub fn entry(&self, date: NaiveDate) -> Option<&CalendarEntry> {
        self.days.get(&date)
    }

    /// All entries, in date order.
    pub fn entries(&self) -> impl Iterator<Item = &CalendarEntry> {
        self.days.values()
    }

    /// Whether `date` is a working day: `(Mon–Fri and not a holiday) or a make-up working day`.
    ///
    /// # Errors
    /// [`CalendarError::YearNotCovered`] if `date`'s year is not covered.
    pub fn is_working(&self, date: NaiveDate) -> Result<bool, CalendarError> {
        self.check_covered(date.year())?;
        Ok(self.is_working_unchecked(date))
    }

    /// The `n`-th working day after the day `date`, counting from the next day: `date` itself never counts, whether
    /// or not it is a working day. For `n ≥ 1` the result is the earliest `t` with
    /// `working_days_between(date, t) == n`; `n = 0` returns `date`.
    ///
    /// Examples (docs/domain/policy-reference.md): from Thu 2023-09-28, 3 → 2023-10-09 and 5 → 2023-10-11; from Thu
    /// 2024-02-08, 3 → 2024-02-19 and 5 → 2024-02-21.
    ///
    /// # Errors
    /// [`CalendarError::YearNotCovered`] as soon as the walk reaches a day of a year that is not covered (never a
    /// silently wrong date); [`CalendarError::DateOutOfRange`] past the end of chrono's range.
    pub fn add_working_days(&self, date: NaiveDate, n: u32) -> Result<NaiveDate, CalendarError> {
        let mut day = date;
        let mut left = n;
        // Terminates: every step either stays in one of the finitely many covered years or returns an error.
        while left > 0 {
            day = day.succ_opt().ok_or(CalendarError::DateOutOfRange)?;
            self.check_covered(day.year())?;
            if self.is_working_unchecked(day) {
                left -= 1;
            }
        }
        Ok(day)
    }

    /// The deadline of something received at the instant `received`: `n` working days after its Asia/Shanghai date
    /// ([`WorkCalendar::add_working_days`]). E.g. received `2023-09-27T16:30:00Z` (Thu 2023-09-28 00:30 in
    /// Shanghai) with `n = 3` → 2023-10-09.
    ///
    /// # Errors
    /// As [`WorkCalendar::add_working_days`].
    pub fn due_date(&self, received: DateTime<Utc>, n: u32) -> Result<NaiveDate, CalendarError> {
        self.add_working_days(shanghai_date(received), n)
    }

    /// The number of working days `d` with `from < d ≤ to` (a half-open interval: `from` excluded, `to` included);
    /// `0` when `from == to`; when `to < from`, the negative of `working_days_between(to, from)`.
    ///
    /// Lateness: an item due on `D` and still open on `T` is late by `working_days_between(D, T)` working days
    /// (positive only when `T` is after `D`). It can be `0` although `T > D`, when every day after `D` up to `T` is
    /// off (due Fri, still open Sat): decide "overdue" by `T > D` and use this count for "how many working days late".
    /// E.g. due 2023-10-09, open on 2023-10-12 → 3; open on 2023-10-09 → 0.
    ///
    /// Consistent with [`WorkCalendar::add_working_days`]: `working_days_between(d, add_working_days(d, n)) == n`.
    ///
    /// # Errors
    /// [`CalendarError::YearNotCovered`] if any day of the interval lies in a year that is not covered (the earliest
    /// such year is reported).
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> Result<i64, CalendarError> {
        let (lo, hi, sign) = match from.cmp(&to) {
            std::cmp::Ordering::Equal => return Ok(0),
            std::cmp::Ordering::Less => (from, to, 1),
            std::cmp::Ordering::Greater => (to, from, -1),
        };
        // `lo < hi`, so the day after `lo` exists.
        let first = lo.succ_opt().ok_or(CalendarError::DateOutOfRange)?;
        for year in first.year()..=hi.year() {
            self.check_covered(year)?;
        }
        let weekdays = weekdays_through(hi) - weekdays_through(lo);
        Ok(sign * (weekdays + self.adjustment(first, hi)))
    }

    /// [`WorkCalendar::add_working_days`] that never refuses an uncovered year: days of a year whose notice is not
    /// loaded follow the **provisional rule** (Monday–Friday are working days; an entry listed for such a day by
    /// another year's notice still applies), and the result says so (`provisional = true`). Issue 15: intake and
    /// reports must not depend on next year's notice being loaded yet.
    ///
    /// E.g. with 2022–2026 loaded, from Mon 2026-12-28 with `n = 5`: 12-29, 12-30, 12-31, Fri 2027-01-01, Mon
    /// 2027-01-04 → `2027-01-04`, provisional.
    ///
    /// # Errors
    /// [`CalendarError::DateOutOfRange`] past the end of chrono's range only.
    pub fn add_working_days_or_provisional(
        &self,
        date: NaiveDate,
        n: u32,
    ) -> Result<Reckoned<NaiveDate>, CalendarError> {
        let mut day = date;
        let mut left = n;
        let mut provisional = false;
        while left > 0 {
            day = day.succ_opt().ok_or(CalendarError::DateOutOfRange)?;
            provisional |= !self.covers(day.year());
            if self.is_working_unchecked(day) {
                left -= 1;
            }
        }
        Ok(Reckoned { value: day, provisional })
    }

    /// [`WorkCalendar::due_date`] under the provisional rule where needed
    /// ([`WorkCalendar::add_working_days_or_provisional`]).
    ///
    /// # Errors
    /// [`CalendarError::DateOutOfRange`] only.
    pub fn due_date_or_provisional(
        &self,
        received: DateTime<Utc>,
        n: u32,
    ) -> Result<Reckoned<NaiveDate>, CalendarError> {
        self.add_working_days_or_provisional(shanghai_date(received), n)
    }

    /// [`WorkCalendar::working_days_between`] under the provisional rule where needed: `provisional` is true when a
    /// day of the interval `(from, to]` lies in a year that is not covered.
    ///
    /// # Errors
    /// [`CalendarError::DateOutOfRange`] only.
    pub fn working_days_between_or_provisional(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Reckoned<i64>, CalendarError> {
        let (lo, hi) = if from <= to { (from, to) } else { (to, from) };
        if lo == hi {
            return Ok(Reckoned { value: 0, provisional: false });
        }
        let first = lo.succ_opt().ok_or(CalendarError::DateOutOfRange)?;
        let provisional = (first.year()..=hi.year()).any(|y| !self.covers(y));
        let sign = if from <= to { 1 } else { -1 };
        let weekdays = weekdays_through(hi) - weekdays_through(lo);
        Ok(Reckoned { value: sign * (weekdays + self.adjustment(first, hi)), provisional })
    }

    /// The last day of the run of covered years that contains `today`'s year; when that year is not covered, the
    /// last day of the newest covered year before it; `None` when no earlier year is covered.
    /// E.g. 2022–2026 loaded, today 2026-12-06 → 2026-12-31.
    pub fn covered_until(&self, today: NaiveDate) -> Option<NaiveDate> {
        let mut year = today.year();
        if self.covers(year) {
            while self.covers(year + 1) {
                year += 1;
            }
        } else {
            year = *self.covered.range(..year).next_back()?;
        }
        NaiveDate::from_ymd_opt(year, 12, 31)
    }

    /// The operator's reminder (issue 15, item 4): from 1 November, while next year's notice is not loaded (or at any
    /// time while this year's is not), a sentence saying which year to load; `None` when nothing is due.
    pub fn missing_notice_reminder(&self, today: NaiveDate) -> Option<String> {
        let year = today.year();
        if !self.covers(year) {
            return Some(format!(
                "the working-day calendar has no notice for {year} (today is {today}): deadlines are provisional \
                 (Monday–Friday); load it with `doudi calendar add FILE --source \"…\"`"
            ));
        }
        if today.month() >= 11 && !self.covers(year + 1) {
            return Some(format!(
                "the working-day calendar holds no notice for {next} yet: deadlines that reach {next} will be \
                 provisional (Monday–Friday) until it is loaded; load the State Council notice for {next} with \
                 `doudi calendar add FILE --source \"…\"` as soon as it is published",
                next = year + 1
            ));
        }
        None
    }

    fn adjustment(&self, first: NaiveDate, hi: NaiveDate) -> i64 {
        self.days
            .range(first..=hi)
            .map(|(&date, entry)| match (entry.kind, is_weekend(date)) {
                (DayKind::Holiday, false) => -1,
                (DayKind::MakeUpWorkday, true) => 1,
                _ => 0,
            })
            .sum()
    }

    fn check_covered(&self, year: i32) -> Result<(), CalendarError> {
        if self.covers(year) { Ok(()) } else { Err(CalendarError::YearNotCovered { year }) }
    }

    fn is_working_unchecked(&self, date: NaiveDate) -> bool {
        match self.days.get(&date).map(|e| e.kind) {
            Some(DayKind::Holiday) => false,
            Some(DayKind::MakeUpWorkday) => true,
            None => !is_weekend(date),
        }
    }
}

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The number of Mondays–Fridays in `(0000-12-31, date]` (negative before it), so that the weekdays in `(a, b]` are
/// `weekdays_through(b) - weekdays_through(a)`. Day 1 of the common era, 0001-01-01, is a Monday.
fn weekdays_through(date: NaiveDate) -> i64 {
    let k = i64::from(date.num_days_from_ce());
    5 * k.div_euclid(7) + k.rem_euclid(7).min(5)
}

/// One State Council holiday notice: the holidays and make-up working days of one year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notice {
    /// The year the notice is for (`work_calendar.year`); its first holiday block may start in the year before
    /// (the 2023 notice starts on 2022-12-31).
    pub year: i32,
    /// The notice's title (`work_calendar.source`), or `unconfirmed` when the data has not been checked against it.
    pub source: &'static str,
    /// Holiday blocks: first day, last day (inclusive, `YYYY-MM-DD`), festival name.
    pub holidays: &'static [(&'static str, &'static str, &'static str)],
    /// Make-up working days: date (`YYYY-MM-DD`), festival name.
    pub make_up_workdays: &'static [(&'static str, &'static str)],
}

impl Notice {
    /// The notice's entries, one per day (holiday blocks expanded), holidays first.
    pub fn entries(&self) -> Vec<CalendarEntry> {
        let date = |s: &str| parse_date(s).expect("built-in calendar dates are valid YYYY-MM-DD");
        let mut entries = Vec::new();
        for &(first, last, name) in self.holidays {
            let last = date(last);
            let mut day = date(first);
            while day <= last {
                entries.push(CalendarEntry::new(day, DayKind::Holiday, name));
                day = day.succ_opt().expect("built-in calendar dates are far from the end of chrono's range");
            }
        }
        for &(day, name) in self.make_up_workdays {
            entries.push(CalendarEntry::new(date(day), DayKind::MakeUpWorkday, name));
        }
        entries
    }
}

/// The State Council notices for 2022–2026, as restated in docs/domain/policy-reference.md ("Working-day calendar"):
/// 2023–2026 checked, 2022 unconfirmed (its `source` is `unconfirmed`). The same rows are in `0003_calendar.sql`.
pub const BUILTIN_NOTICES: &[Notice] = &[
    Notice {
        year: 2022,
        source: "unconfirmed",
        holidays: &[
            ("2022-01-01", "2022-01-03", "元旦"),
            ("2022-01-31", "2022-02-06", "春节"),
            ("2022-04-03", "2022-04-05", "清明节"),
            ("2022-04-30", "2022-05-04", "劳动节"),
            ("2022-06-03", "2022-06-05", "端午节"),
            ("2022-09-10", "2022-09-12", "中秋节"),
            ("2022-10-01", "2022-10-07", "国庆节"),
        ],
        make_up_workdays: &[
            ("2022-01-29", "春节"),
            ("2022-01-30", "春节"),
            ("2022-04-02", "清明节"),
            ("2022-04-24", "劳动节"),
            ("2022-05-07", "劳动节"),
            ("2022-10-08", "国庆节"),
            ("2022-10-09", "国庆节"),
        ],
    },
    Notice {
        year: 2023,
        source: "国务院办公厅关于2023年部分节假日安排的通知",
        holidays: &[
            // The 2023 notice's New Year block starts on Saturday 2022-12-31.
            ("2022-12-31", "2023-01-02", "元旦"),
            ("2023-01-21", "2023-01-27", "春节"),
            ("2023-04-05", "2023-04-05", "清明节"),
            ("2023-04-29", "2023-05-03", "劳动节"),
            ("2023-06-22", "2023-06-24", "端午节"),
            ("2023-09-29", "2023-10-06", "中秋节、国庆节"),
        ],
        make_up_workdays: &[
            ("2023-01-28", "春节"),
            ("2023-01-29", "春节"),
            ("2023-04-23", "劳动节"),
            ("2023-05-06", "劳动节"),
            ("2023-06-25", "端午节"),
            ("2023-10-07", "中秋节、国庆节"),
            ("2023-10-08", "中秋节、国庆节"),
        ],
    },
    Notice {
        year: 2024,
        source: "国务院办公厅关于2024年部分节假日安排的通知",
        holidays: &[
            ("2024-01-01", "2024-01-01", "元旦"),
            ("2024-02-10", "2024-02-17", "春节"),
            ("2024-04-04", "2024-04-06", "清明节"),
            ("2024-05-01", "2024-05-05", "劳动节"),
            ("2024-06-10", "2024-06-10", "端午节"),
            ("2024-09-15", "2024-09-17", "中秋节"),
            ("2024-10-01", "2024-10-07", "国庆节"),
        ],
        make_up_workdays: &[
            ("2024-02-04", "春节"),
            ("2024-02-18", "春节"),
            ("2024-04-07", "清明节"),
            ("2024-04-28", "劳动节"),
            ("2024-05-11", "劳动节"),
            ("2024-09-14", "中秋节"),
            ("2024-09-29", "国庆节"),
            ("2024-10-12", "国庆节"),
        ],
    },
    Notice {
        year: 2025,
        source: "国务院办公厅关于2025年部分节假日安排的通知",
        holidays: &[
            ("2025-01-01", "2025-01-01", "元旦"),
            ("2025-01-28", "2025-02-04", "春节"),
            ("2025-04-04", "2025-04-06", "清明节"),
            ("2025-05-01", "2025-05-05", "劳动节"),
            ("2025-05-31", "2025-06-02", "端午节"),
            ("2025-10-01", "2025-10-08", "国庆节、中秋节"),
        ],
        make_up_workdays: &[
            ("2025-01-26", "春节"),
            ("2025-02-08", "春节"),
            ("2025-04-27", "劳动节"),
            ("2025-09-28", "国庆节、中秋节"),
            ("2025-10-11", "国庆节、中秋节"),
        ],
    },
    Notice {
        year: 2026,
        source: "国务院办公厅关于2026年部分节假日安排的通知",
        holidays: &[
            ("2026-01-01", "2026-01-03", "元旦"),
            ("2026-02-15", "2026-02-23", "春节"),
            ("2026-04-04", "2026-04-06", "清明节"),
            ("2026-05-01", "2026-05-05", "劳动节"),
            ("2026-06-19", "2026-06-21", "端午节"),
            ("2026-09-25", "2026-09-27", "中秋节"),
            ("2026-10-01", "2026-10-07", "国庆节"),
        ],
        make_up_workdays: &[
            ("2026-01-04", "元旦"),
            ("2026-02-14", "春节"),
            ("2026-02-28", "春节"),
            ("2026-05-09", "劳动节"),
            ("2026-09-20", "国庆节"),
            ("2026-10-10", "国庆节"),
        ],
    },
];

/// Every entry of [`BUILTIN_NOTICES`] (2022–2026; 2022 unconfirmed), one per day, notice by notice.
pub fn builtin_entries() -> Vec<CalendarEntry> {
    BUILTIN_NOTICES.iter().flat_map(Notice::entries).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;
    use proptest::prelude::*;

    /// The migration, at the same relative path as in the main crate (`crates/domain/src/` → `migrations/sqlite/`).
    const MIGRATION_SQL: &str = include_str!("../../../migrations/sqlite/0003_calendar.sql");
    /// The PostgreSQL twin (same rows, PostgreSQL column types).
    const MIGRATION_SQL_PG: &str = include_str!("../../../migrations/postgres/0003_calendar.sql");

    fn d(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    fn cal() -> WorkCalendar {
        WorkCalendar::builtin()
    }

    /// Working days in `(from, to]`, one day at a time (the reference for the arithmetic version).
    fn naive_between(c: &WorkCalendar, from: NaiveDate, to: NaiveDate) -> i64 {
        let (lo, hi, sign) = if from <= to { (from, to, 1) } else { (to, from, -1) };
        let mut n = 0;
        let mut day = lo;
        while day < hi {
            day = day.succ_opt().unwrap();
            if c.is_working(day).unwrap() {
                n += 1;
            }
        }
        sign * n
    }

    #[test]
    fn worked_deadline_national_day_2023() {
        let c = cal();
        // Received Thu 2023-09-28: 09-29..10-06 holiday, 10-07 (Sat) and 10-08 (Sun) make-up, then 10-09 (Mon).
        assert_eq!(c.add_working_days(d("2023-09-28"), 1), Ok(d("2023-10-07")));
        assert_eq!(c.add_working_days(d("2023-09-28"), 2), Ok(d("2023-10-08")));
        assert_eq!(c.add_working_days(d("2023-09-28"), 3), Ok(d("2023-10-09")));
        assert_eq!(c.add_working_days(d("2023-09-28"), 5), Ok(d("2023-10-11")));
    }

    #[test]
    fn worked_deadline_spring_festival_2024() {
        let c = cal();
        // Received Thu 2024-02-08: 02-09 (Fri, New Year's Eve is not a holiday), 02-10..02-17 holiday,
        // 02-18 (Sun) make-up, 02-19 (Mon).
        assert_eq!(c.add_working_days(d("2024-02-08"), 1), Ok(d("2024-02-09")));
        assert_eq!(c.add_working_days(d("2024-02-08"), 2), Ok(d("2024-02-18")));
        assert_eq!(c.add_working_days(d("2024-02-08"), 3), Ok(d("2024-02-19")));
        assert_eq!(c.add_working_days(d("2024-02-08"), 5), Ok(d("2024-02-21")));
    }

    #[test]
    fn due_date_uses_the_shanghai_date_of_the_instant() {
        let c = cal();
        let received = DateTime::parse_from_rfc3339("2023-09-27T16:30:00Z").unwrap().with_timezone(&Utc);
        // 00:30 on Thu 2023-09-28 in Shanghai (still Wednesday in UTC).
        assert_eq!(c.due_date(received, 3), Ok(d("2023-10-09")));
        assert_eq!(c.due_date(received, 5), Ok(d("2023-10-11")));
        let earlier = DateTime::parse_from_rfc3339("2023-09-27T15:59:59Z").unwrap().with_timezone(&Utc);
        // 23:59:59 on Wed 2023-09-27 in Shanghai: 09-28, 10-07, 10-08.
        assert_eq!(c.due_date(earlier, 3), Ok(d("2023-10-08")));
    }

    #[test]
    fn plain_week() {
        let c = cal();
        // Mon 2023-03-13 .. Sun 2023-03-19: no entries.
        for day in ["2023-03-13", "2023-03-14", "2023-03-15", "2023-03-16", "2023-03-17"] {
            assert_eq!(c.is_working(d(day)), Ok(true), "{day}");
        }
        assert_eq!(c.add_working_days(d("2023-03-13"), 1), Ok(d("2023-03-14")));
        assert_eq!(c.add_working_days(d("2023-03-13"), 4), Ok(d("2023-03-17")));
        // Friday + 1 → next Monday.
        assert_eq!(c.add_working_days(d("2023-03-17"), 1), Ok(d("2023-03-20")));
        assert_eq!(c.add_working_days(d("2023-03-13"), 5), Ok(d("2023-03-20")));
        assert_eq!(c.working_days_between(d("2023-03-12"), d("2023-03-19")), Ok(5));
        assert_eq!(c.add_working_days(d("2023-03-15"), 0), Ok(d("2023-03-15")));
    }

    #[test]
    fn weekend_is_off_and_counts_from_the_next_day() {
        let c = cal();
        assert_eq!(c.is_working(d("2023-03-18")), Ok(false));
        assert_eq!(c.is_working(d("2023-03-19")), Ok(false));
        // Received on Saturday or Sunday: the first working day is Monday.
        assert_eq!(c.add_working_days(d("2023-03-18"), 1), Ok(d("2023-03-20")));
        assert_eq!(c.add_working_days(d("2023-03-19"), 1), Ok(d("2023-03-20")));
        assert_eq!(c.add_working_days(d("2023-03-18"), 3), Ok(d("2023-03-22")));
        assert_eq!(c.working_days_between(d("2023-03-17"), d("2023-03-19")), Ok(0));
    }

    #[test]
    fn make_up_saturday_is_working() {
        let c = cal();
        assert_eq!(d("2023-05-06").weekday(), Weekday::Sat);
        assert_eq!(c.is_working(d("2023-05-06")), Ok(true));
        assert_eq!(c.entry(d("2023-05-06")).map(|e| e.kind), Some(DayKind::MakeUpWorkday));
        // Fri 2023-05-05 + 1 → the make-up Saturday.
        assert_eq!(c.add_working_days(d("2023-05-05"), 1), Ok(d("2023-05-06")));
        // A make-up Sunday too.
        assert_eq!(d("2024-02-18").weekday(), Weekday::Sun);
        assert_eq!(c.is_working(d("2024-02-18")), Ok(true));
        // The Saturday next to it is not listed, so off.
        assert_eq!(c.is_working(d("2023-05-13")), Ok(false));
    }

    #[test]
    fn every_2023_holiday_is_off() {
        let c = cal();
        let holidays: Vec<NaiveDate> = BUILTIN_NOTICES
            .iter()
            .find(|n| n.year == 2023)
            .unwrap()
            .entries()
            .into_iter()
            .filter(|e| e.kind == DayKind::Holiday)
            .map(|e| e.date)
            .collect();
        // 3 + 7 + 1 + 5 + 3 + 8 days, from 2022-12-31.
        assert_eq!(holidays.len(), 27);
        assert_eq!(holidays[0], d("2022-12-31"));
        for day in holidays {
            assert_eq!(c.is_working(day), Ok(false), "{day}");
        }
        // A weekday holiday: Wed 2023-04-05 (清明节).
        assert_eq!(c.entry(d("2023-04-05")).map(|e| e.name.as_str()), Some("清明节"));
        assert_eq!(c.add_working_days(d("2023-04-04"), 1), Ok(d("2023-04-06")));
    }

    #[test]
    fn working_days_in_2023() {
        // 2023 has 365 days and starts on a Sunday: 52 weeks (104 weekend days) + Sun 12-31 = 105 weekend days, so
        // 260 weekdays. Holidays dated in 2023 that fall on Mon–Fri (2022-12-31 is in 2022 and a Saturday anyway):
        //   元旦   01-01 Sun, 01-02 Mon                               → 1
        //   春节   01-21 Sat .. 01-27 Fri: 01-23..01-27                → 5
        //   清明节 04-05 Wed                                          → 1
        //   劳动节 04-29 Sat .. 05-03 Wed: 05-01, 05-02, 05-03        → 3
        //   端午节 06-22 Thu .. 06-24 Sat: 06-22, 06-23               → 2
        //   中秋节、国庆节 09-29 Fri .. 10-06 Fri: 09-29, 10-02..10-06 → 6
        //   total 18.
        // Make-up days, all on weekends: 01-28 Sat, 01-29 Sun, 04-23 Sun, 05-06 Sat, 06-25 Sun, 10-07 Sat,
        // 10-08 Sun → 7.
        // Working days: 365 − 105 − 18 + 7 = 249.
        let c = cal();
        let days_2023: Vec<NaiveDate> = d("2023-01-01").iter_days().take_while(|day| day.year() == 2023).collect();
        assert_eq!(days_2023.len(), 365);
        assert_eq!(days_2023.iter().filter(|day| is_weekend(**day)).count(), 105);
        let weekday_holidays =
            c.entries().filter(|e| e.date.year() == 2023 && e.kind == DayKind::Holiday && !is_weekend(e.date)).count();
        assert_eq!(weekday_holidays, 18);
        let make_up = c.entries().filter(|e| e.date.year() == 2023 && e.kind == DayKind::MakeUpWorkday).count();
        assert_eq!(make_up, 7);
        assert!(c.entries().filter(|e| e.kind == DayKind::MakeUpWorkday).all(|e| is_weekend(e.date)));
        assert_eq!(days_2023.iter().filter(|day| c.is_working(**day).unwrap()).count(), 249);
        assert_eq!(c.working_days_between(d("2022-12-31"), d("2023-12-31")), Ok(249));
    }

    #[test]
    fn lateness_examples() {
        let c = cal();
        // Visit due 2023-10-09 (received 2023-09-28).
        assert_eq!(c.working_days_between(d("2023-10-09"), d("2023-10-09")), Ok(0));
        assert_eq!(c.working_days_between(d("2023-10-09"), d("2023-10-12")), Ok(3));
        // Open on Saturday 2023-10-14: 10-10..10-13.
        assert_eq!(c.working_days_between(d("2023-10-09"), d("2023-10-14")), Ok(4));
        // Not yet due: negative.
        assert_eq!(c.working_days_between(d("2023-10-09"), d("2023-09-28")), Ok(-3));
        // Due Thu 2023-09-28, open on 2023-10-07: only the make-up Saturday counts.
        assert_eq!(c.working_days_between(d("2023-09-28"), d("2023-10-07")), Ok(1));
        // Due Fri, open on Saturday: overdue by date, 0 working days late.
        assert_eq!(c.working_days_between(d("2023-03-17"), d("2023-03-18")), Ok(0));
    }

    #[test]
    fn errors_when_leaving_the_covered_years() {
        let c = cal();
        assert_eq!(c.covered_years().iter().copied().collect::<Vec<_>>(), vec![2022, 2023, 2024, 2025, 2026]);
        let not_covered_2027 = Err(CalendarError::YearNotCovered { year: 2027 });
        // Thu 2026-12-31 is the last covered day.
        assert_eq!(c.add_working_days(d("2026-12-30"), 1), Ok(d("2026-12-31")));
        assert_eq!(c.add_working_days(d("2026-12-30"), 2), not_covered_2027);
        assert_eq!(c.add_working_days(d("2026-12-20"), 20), not_covered_2027);
        assert_eq!(c.add_working_days(d("2026-12-31"), 1), not_covered_2027);
        assert_eq!(c.is_working(d("2027-01-04")), Err(CalendarError::YearNotCovered { year: 2027 }));
        assert_eq!(
            c.working_days_between(d("2026-12-01"), d("2027-01-05")),
            Err(CalendarError::YearNotCovered { year: 2027 })
        );
        // December 2026 (Tue 1 .. Thu 31) has 23 weekdays and no entries; (12-01, 12-31] holds 22 of them.
        assert_eq!(c.working_days_between(d("2026-12-31"), d("2026-12-01")), Ok(-22));
        // Before 2022: the start day itself does not need to be covered, the days walked do.
        assert_eq!(c.add_working_days(d("2021-12-31"), 1), Ok(d("2022-01-04")));
        assert_eq!(c.working_days_between(d("2021-12-31"), d("2022-01-05")), Ok(2));
        assert_eq!(
            c.working_days_between(d("2021-12-30"), d("2022-01-05")),
            Err(CalendarError::YearNotCovered { year: 2021 })
        );
        assert_eq!(c.is_working(d("2021-06-01")), Err(CalendarError::YearNotCovered { year: 2021 }));
        // Huge n: stops at the first uncovered year, never loops or wraps.
        assert_eq!(c.add_working_days(d("2023-01-01"), u32::MAX), not_covered_2027);
        let err = CalendarError::YearNotCovered { year: 2027 }.to_string();
        assert!(err.contains("no data for 2027"), "{err}");
    }

    #[test]
    fn provisional_rule_past_the_loaded_years() {
        let c = cal();
        // Thu 2026-12-31 + 1: Fri 2027-01-01 under the Monday–Friday rule.
        let r = c.add_working_days_or_provisional(d("2026-12-31"), 1).unwrap();
        assert_eq!((r.value, r.provisional), (d("2027-01-01"), true));
        // Inside the loaded years the strict and provisional answers agree and are not flagged.
        let r = c.add_working_days_or_provisional(d("2023-09-28"), 5).unwrap();
        assert_eq!((r.value, r.provisional), (d("2023-10-11"), false));
        // (2026-12-31, 2027-01-08]: Fri 1, Mon 4 … Fri 8 = 6 weekdays.
        let r = c.working_days_between_or_provisional(d("2026-12-31"), d("2027-01-08")).unwrap();
        assert_eq!((r.value, r.provisional), (6, true));
        let r = c.working_days_between_or_provisional(d("2027-01-08"), d("2026-12-31")).unwrap();
        assert_eq!(r.value, -6);
        assert!(!c.working_days_between_or_provisional(d("2026-12-01"), d("2026-12-31")).unwrap().provisional);
    }

    #[test]
    fn covered_until_and_the_reminder_from_1_november() {
        let c = cal();
        assert_eq!(c.covered_until(d("2026-12-06")), Some(d("2026-12-31")));
        assert_eq!(c.covered_until(d("2023-03-01")), Some(d("2026-12-31")));
        // 2027 not loaded: the newest covered year before it.
        assert_eq!(c.covered_until(d("2027-02-01")), Some(d("2026-12-31")));
        assert_eq!(c.covered_until(d("2021-06-01")), None);
        assert_eq!(c.missing_notice_reminder(d("2026-10-31")), None);
        let r = c.missing_notice_reminder(d("2026-11-01")).unwrap();
        assert!(r.contains("no notice for 2027 yet"), "{r}");
        assert_eq!(c.missing_notice_reminder(d("2025-11-15")), None, "2026 is loaded");
        let r = c.missing_notice_reminder(d("2027-01-02")).unwrap();
        assert!(r.contains("no notice for 2027 (today is 2027-01-02)"), "{r}");
    }

    #[test]
    fn a_year_is_covered_only_by_its_own_notice() {
        // Only the 2023 notice: its 2022-12-31 entry does not make 2022 covered.
        let only_2023 = WorkCalendar::from_entries(BUILTIN_NOTICES[1].entries()).unwrap();
        assert_eq!(only_2023.covered_years().iter().copied().collect::<Vec<_>>(), vec![2023]);
        assert!(!only_2023.covers(2022));
        assert_eq!(only_2023.add_working_days(d("2022-12-29"), 1), Err(CalendarError::YearNotCovered { year: 2022 }));
        assert_eq!(only_2023.add_working_days(d("2022-12-31"), 1), Ok(d("2023-01-03")));
        // An empty calendar covers nothing; n = 0 inspects no day.
        let empty = WorkCalendar::default();
        assert!(empty.covered_years().is_empty());
        assert_eq!(empty.add_working_days(d("2023-03-15"), 1), Err(CalendarError::YearNotCovered { year: 2023 }));
        assert_eq!(empty.add_working_days(d("2023-03-15"), 0), Ok(d("2023-03-15")));
        assert_eq!(empty.working_days_between(d("2023-03-15"), d("2023-03-15")), Ok(0));
        // Entries in a year without its 1 January holiday: not covered.
        let partial = WorkCalendar::from_entries([CalendarEntry::new(d("2023-04-05"), DayKind::Holiday, "清明节")]);
        assert!(partial.unwrap().covered_years().is_empty());
    }

    #[test]
    fn from_entries_rejects_conflicts_and_merges_duplicates() {
        let day = d("2023-05-06");
        let conflict = WorkCalendar::from_entries([
            CalendarEntry::new(day, DayKind::MakeUpWorkday, "劳动节"),
            CalendarEntry::new(day, DayKind::Holiday, "劳动节"),
        ]);
        assert_eq!(conflict, Err(CalendarError::ConflictingEntries { date: day }));
        let mut entries = builtin_entries();
        entries.push(CalendarEntry::new(d("2023-10-01"), DayKind::MakeUpWorkday, "x"));
        assert_eq!(
            WorkCalendar::from_entries(entries),
            Err(CalendarError::ConflictingEntries { date: d("2023-10-01") })
        );
        let twice = WorkCalendar::from_entries([
            CalendarEntry::new(day, DayKind::MakeUpWorkday, "劳动节"),
            CalendarEntry::new(day, DayKind::MakeUpWorkday, "Labour Day"),
        ])
        .unwrap();
        assert_eq!(twice.entries().count(), 1);
        assert_eq!(twice.entry(day).unwrap().name, "劳动节");
        // Order does not matter.
        let mut reversed = builtin_entries();
        reversed.reverse();
        assert_eq!(WorkCalendar::from_entries(reversed).unwrap(), cal());
    }

    #[test]
    fn builtin_table_matches_policy_reference() {
        let c = cal();
        // Entries per notice: holiday days + make-up days (docs/domain/policy-reference.md's table, blocks expanded).
        let counts: Vec<(i32, usize, usize)> = BUILTIN_NOTICES
            .iter()
            .map(|n| {
                let e = n.entries();
                let holidays = e.iter().filter(|e| e.kind == DayKind::Holiday).count();
                (n.year, holidays, e.len() - holidays)
            })
            .collect();
        assert_eq!(counts, vec![(2022, 31, 7), (2023, 27, 7), (2024, 28, 8), (2025, 28, 5), (2026, 33, 6)]);
        assert_eq!(c.entries().count(), 31 + 7 + 27 + 7 + 28 + 8 + 28 + 5 + 33 + 6);
        // Every entry lies in its notice's year, except the 2023 notice's 2022-12-31.
        for notice in BUILTIN_NOTICES {
            for e in notice.entries() {
                assert!(e.date.year() == notice.year || e.date == d("2022-12-31") && notice.year == 2023, "{e:?}");
            }
        }
        assert_eq!(c.entry(d("2022-12-31")).map(|e| e.name.as_str()), Some("元旦"));
        // New Year's Eve 2024 (02-09) is not a holiday; 2026's Spring Festival is nine days.
        assert_eq!(c.entry(d("2024-02-09")), None);
        assert!((0..9).all(|i| c.is_working(d("2026-02-15") + TimeDelta::days(i)) == Ok(false)));
        assert_eq!(c.is_working(d("2026-02-24")), Ok(true));
        assert!(CALENDAR_SOURCE.contains("2022 unconfirmed"));
        assert_eq!(BUILTIN_NOTICES[0].source, "unconfirmed");
    }

    #[test]
    fn day_kind_string_forms() {
        for kind in [DayKind::Holiday, DayKind::MakeUpWorkday] {
            assert_eq!(kind.as_str().parse::<DayKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{}\"", kind.as_str()));
        }
        assert_eq!("holiday".parse::<DayKind>(), Err(CalendarError::UnknownDayKind("holiday".into())));
        let entry = CalendarEntry::new(d("2023-01-23"), DayKind::Holiday, "春节");
        let json = serde_json::to_string(&entry).unwrap();
        assert_eq!(json, r#"{"date":"2023-01-23","kind":"HOLIDAY","name":"春节"}"#);
        assert_eq!(serde_json::from_str::<CalendarEntry>(&json).unwrap(), entry);
    }

    #[test]
    fn weekday_count_matches_a_day_by_day_count() {
        for (a, b) in [("2023-01-01", "2023-12-31"), ("2024-02-26", "2024-03-04"), ("0001-01-01", "0001-01-08")] {
            let (a, b) = (d(a), d(b));
            let naive = a.iter_days().skip(1).take_while(|day| *day <= b).filter(|day| !is_weekend(*day)).count();
            assert_eq!(weekdays_through(b) - weekdays_through(a), naive as i64, "{a} {b}");
        }
        assert_eq!(d("0001-01-01").weekday(), Weekday::Mon);
        assert_eq!(weekdays_through(d("0001-01-01")), 1);
        assert_eq!(weekdays_through(d("0000-12-31")), 0);
        // (0000-12-29 Fri, 0000-12-31 Sun] holds no weekday; (0000-12-28, 0000-12-31] holds Friday.
        assert_eq!(weekdays_through(d("0000-12-29")), 0);
        assert_eq!(weekdays_through(d("0000-12-28")), -1);
    }

    // ---- The migration holds exactly the built-in data. ----

    #[derive(Debug, Clone, PartialEq)]
    enum Token {
        Str(String),
        Int(i64),
        Word(String),
        Punct(char),
    }

    /// A small SQL lexer: `--` comments, `'…'` strings with `''` escapes, integers, words, punctuation.
    fn lex(sql: &str) -> Vec<Token> {
        let mut tokens = Vec::new();
        let mut chars = sql.chars().peekable();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                chars.next();
            } else if c == '-' && sql_peek2(&chars) == Some('-') {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            } else if c == '\'' {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next().expect("unterminated SQL string") {
                        '\'' if chars.peek() == Some(&'\'') => {
                            chars.next();
                            s.push('\'');
                        }
                        '\'' => break,
                        c => s.push(c),
                    }
                }
                tokens.push(Token::Str(s));
            } else if c.is_ascii_digit() {
                let mut s = String::new();
                while let Some(&c) = chars.peek().filter(|c| c.is_ascii_digit()) {
                    s.push(c);
                    chars.next();
                }
                tokens.push(Token::Int(s.parse().unwrap()));
            } else if c.is_alphanumeric() || c == '_' {
                let mut s = String::new();
                while let Some(&c) = chars.peek().filter(|c| c.is_alphanumeric() || **c == '_') {
                    s.push(c);
                    chars.next();
                }
                tokens.push(Token::Word(s.to_ascii_uppercase()));
            } else {
                tokens.push(Token::Punct(c));
                chars.next();
            }
        }
        tokens
    }

    fn sql_peek2(chars: &std::iter::Peekable<std::str::Chars<'_>>) -> Option<char> {
        chars.clone().nth(1)
    }

    /// The `(date, kind, name, year, source)` rows of every `INSERT INTO work_calendar … VALUES …;` statement.
    fn migration_rows(sql: &str) -> Vec<(String, String, String, i64, String)> {
        let tokens = lex(sql);
        let word = |w: &str| Token::Word(w.to_owned());
        let mut rows = Vec::new();
        let mut inserts = 0;
        let mut i = 0;
        while i < tokens.len() {
            if tokens[i..].starts_with(&[word("INSERT"), word("INTO"), word("WORK_CALENDAR")]) {
                inserts += 1;
                i += 3;
                let columns = ["DATE", "KIND", "NAME", "YEAR", "SOURCE"];
                let mut expected = vec![Token::Punct('(')];
                for (k, c) in columns.iter().enumerate() {
                    if k > 0 {
                        expected.push(Token::Punct(','));
                    }
                    expected.push(word(c));
                }
                expected.extend([Token::Punct(')'), word("VALUES")]);
                assert_eq!(tokens[i..i + expected.len()], expected[..], "column list of INSERT #{inserts}");
                i += expected.len();
                loop {
                    match &tokens[i..i + 12] {
                        [
                            Token::Punct('('),
                            Token::Str(date),
                            Token::Punct(','),
                            Token::Str(kind),
                            Token::Punct(','),
                            Token::Str(name),
                            Token::Punct(','),
                            Token::Int(year),
                            Token::Punct(','),
                            Token::Str(source),
                            Token::Punct(')'),
                            sep,
                        ] => {
                            rows.push((date.clone(), kind.clone(), name.clone(), *year, source.clone()));
                            i += 12;
                            match sep {
                                Token::Punct(',') => {}
                                Token::Punct(';') => break,
                                other => panic!("unexpected {other:?} after a row"),
                            }
                        }
                        other => panic!("malformed row: {other:?}"),
                    }
                }
            } else {
                assert_ne!(tokens[i], word("INSERT"), "an INSERT into another table");
                i += 1;
            }
        }
        assert!(inserts > 0, "no INSERT INTO work_calendar");
        rows
    }

    #[test]
    fn migration_rows_equal_the_builtin_data() {
        assert!(MIGRATION_SQL.contains("CREATE TABLE work_calendar ("));
        let mut rows = migration_rows(MIGRATION_SQL);
        let mut expected: Vec<(String, String, String, i64, String)> = BUILTIN_NOTICES
            .iter()
            .flat_map(|n| {
                n.entries().into_iter().map(move |e| {
                    let date = e.date.format("%Y-%m-%d").to_string();
                    (date, e.kind.as_str().to_owned(), e.name, i64::from(n.year), n.source.to_owned())
                })
            })
            .collect();
        rows.sort();
        expected.sort();
        assert_eq!(rows, expected);
        // And the rows build the same calendar.
        let entries = rows
            .iter()
            .map(|(date, kind, name, _, _)| CalendarEntry::new(d(date), kind.parse().unwrap(), name.clone()));
        assert_eq!(WorkCalendar::from_entries(entries).unwrap(), cal());
        // The PostgreSQL migration inserts exactly the same rows.
        assert!(MIGRATION_SQL_PG.contains("CREATE TABLE work_calendar ("));
        let mut pg_rows = migration_rows(MIGRATION_SQL_PG);
        pg_rows.sort();
        assert_eq!(pg_rows, expected);
    }

    #[test]
    fn lexer_handles_comments_and_escapes() {
        let sql = "-- a comment with 'quote\nINSERT INTO work_calendar (date, kind, name, year, source) VALUES\n  \
                   ('2023-01-01', 'HOLIDAY', 'it''s', 2023, 'x'), -- trailing\n  ('2023-01-02', 'HOLIDAY', 'y', 2023, \
                   'x');";
        let rows = migration_rows(sql);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].2, "it's");
    }

    // ---- Properties over the built-in years. ----

    fn date_in(first: &str, last: &str) -> impl Strategy<Value = NaiveDate> {
        let first = d(first);
        let span = (d(last) - first).num_days();
        (0..=span).prop_map(move |n| first + TimeDelta::days(n))
    }

    proptest! {
        #[test]
        fn deadline_properties(date in date_in("2022-01-01", "2026-11-30"), n in 1u32..=20) {
            let c = cal();
            let due = c.add_working_days(date, n).unwrap();
            prop_assert!(c.is_working(due).unwrap());
            prop_assert!(due > date);
            prop_assert!(due >= date + TimeDelta::days(i64::from(n)));
            prop_assert_eq!(c.working_days_between(date, due), Ok(i64::from(n)));
            // The earliest such day: the day before has one working day fewer.
            prop_assert_eq!(c.working_days_between(date, due.pred_opt().unwrap()), Ok(i64::from(n) - 1));
            prop_assert_eq!(c.working_days_between(due, date), Ok(-i64::from(n)));
        }

        #[test]
        fn between_matches_a_day_by_day_count(
            a in date_in("2022-01-01", "2026-12-31"),
            b in date_in("2022-01-01", "2026-12-31"),
        ) {
            let c = cal();
            prop_assert_eq!(c.working_days_between(a, b), Ok(naive_between(&c, a, b)));
        }

        #[test]
        fn between_is_additive(
            a in date_in("2022-01-01", "2026-12-31"),
            b in date_in("2022-01-01", "2026-12-31"),
            m in date_in("2022-01-01", "2026-12-31"),
        ) {
            let c = cal();
            let whole = c.working_days_between(a, b).unwrap();
            let parts = c.working_days_between(a, m).unwrap() + c.working_days_between(m, b).unwrap();
            prop_assert_eq!(whole, parts);
        }

        #[test]
        fn never_a_wrong_date_past_the_data(date in date_in("2026-06-01", "2026-12-31"), n in 1u32..=400) {
            let c = cal();
            match c.add_working_days(date, n) {
                Ok(due) => prop_assert_eq!(due.year(), 2026),
                Err(e) => prop_assert_eq!(e, CalendarError::YearNotCovered { year: 2027 }),
            }
        }
    }
}
