//! One year's State Council holiday notice (国务院办公厅关于YYYY年部分节假日安排的通知) as an operator loads it with
//! `doudi calendar add FILE --source "国办发明电〔YYYY〕N号"` (docs/operations.md, "Each autumn: next year's
//! calendar"), and the rules a notice must satisfy before it may change the working-day calendar.
//!
//! The file is TOML or JSON (chosen by the extension `.toml` / `.json`; otherwise by the first character `{`):
//!
//! ```toml
//! year = 2027
//! holidays = [
//!   { name = "元旦", first = "2027-01-01", last = "2027-01-03" },   # a block of days off, inclusive
//!   { name = "清明节", first = "2027-04-05" },                      # `last` defaults to `first`
//! ]
//! make_up_workdays = [
//!   { name = "春节", date = "2027-02-07" },                          # 调休上班: a Saturday or Sunday worked
//! ]
//! ```
//!
//! Validation ([`NoticeFile::entries`]), each error naming the field, the date and the rule:
//! - every date is of the notice's `year`, except the end of the year before when it belongs to the New Year
//!   (元旦) block that runs into 1 January: holidays contiguous with 1 January (the 2023 notice makes Sat
//!   2022-12-31 a holiday) and make-up days of that block in the last 7 days of December (the 2019 notice made
//!   Sat 2018-12-29 a make-up day);
//! - a make-up working day is a Saturday or a Sunday (on a weekday it would change nothing);
//! - no day is both a holiday and a make-up working day, and no day is listed twice;
//! - 1 January of `year` is a holiday: every annual notice lists 元旦, and a year counts as loaded by it
//!   ([`crate::workdays::WorkCalendar::covered_years`]);
//! - a holiday block runs forwards (`first ≤ last`) and is at most 31 days; names are not empty.
//!
//! This module does no I/O.

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

use crate::calendar::parse_date;
use crate::workdays::{CalendarEntry, DayKind};

/// The longest festival name (the longest so far, 中秋节、国庆节, has 7).
pub const MAX_NAME_CHARS: usize = 32;

/// The longest holiday block a file may give, in days (and the longest `NoticeFile::from_entries` writes).
pub const MAX_BLOCK_DAYS: i64 = 31;

/// The years a notice may be for.
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// A block of consecutive holidays of one festival.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolidayBlock {
    /// The festival, e.g. `春节`.
    pub name: String,
    /// First day off, `YYYY-MM-DD`.
    pub first: String,
    /// Last day off (inclusive), `YYYY-MM-DD`; absent = `first`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
}

/// A make-up working day (调休上班).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MakeUpDay {
    /// The festival whose days off it makes up, e.g. `春节`.
    pub name: String,
    /// The day, `YYYY-MM-DD` (a Saturday or Sunday).
    pub date: String,
}

/// One year's notice as written in a file (module docs for the format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeFile {
    /// The year the notice is for.
    pub year: i32,
    /// Holiday blocks.
    #[serde(default)]
    pub holidays: Vec<HolidayBlock>,
    /// Make-up working days.
    #[serde(default)]
    pub make_up_workdays: Vec<MakeUpDay>,
}

/// Why a notice file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoticeError {
    /// The file is not valid TOML / JSON of the expected shape.
    #[error("not a holiday notice file ({format}): {detail}")]
    Parse {
        /// `TOML` or `JSON`.
        format: &'static str,
        /// The parser's message (with line and column).
        detail: String,
    },
    /// `year` outside [`YEARS`].
    #[error("year: {0} is outside 2000..=2100")]
    Year(i32),
    /// A date that is not `YYYY-MM-DD`.
    #[error("{field}: {value:?} is not a date (YYYY-MM-DD)")]
    BadDate {
        /// E.g. `holidays[2].first`.
        field: String,
        /// The text given.
        value: String,
    },
    /// A festival name over [`MAX_NAME_CHARS`] characters or with a control character.
    #[error("{field}: a festival name is one line of at most 32 characters, e.g. 中秋节、国庆节")]
    BadName {
        /// E.g. `holidays[0].name`.
        field: String,
    },
    /// An empty festival name.
    #[error("{field}: is empty (name the festival, e.g. 春节)")]
    EmptyName {
        /// E.g. `holidays[0].name`.
        field: String,
    },
    /// `last` before `first`, or a block over 31 days.
    #[error("{field}: {first} … {last} is not a block of 1 to 31 days")]
    BadBlock {
        /// E.g. `holidays[1]`.
        field: String,
        /// First day.
        first: NaiveDate,
        /// Last day.
        last: NaiveDate,
    },
    /// A date outside the notice's year (and not in the New Year block that runs into it).
    #[error(
        "{field}: {date} lies outside {year}: a notice lists days of its own year, and days of {prev} only in the \
         New Year (元旦) block that runs into 1 January",
        prev = year - 1
    )]
    OutsideYear {
        /// E.g. `make_up_workdays[3].date`.
        field: String,
        /// The date.
        date: NaiveDate,
        /// The notice's year.
        year: i32,
    },
    /// A make-up working day on a weekday.
    #[error("{field}: {date} is a {weekday}: a make-up working day (调休上班) is a Saturday or Sunday")]
    MakeUpOnWeekday {
        /// E.g. `make_up_workdays[0].date`.
        field: String,
        /// The date.
        date: NaiveDate,
        /// Its weekday.
        weekday: Weekday,
    },
    /// The same date as a holiday and as a make-up working day.
    #[error("{field}: {date} is listed both as a holiday and as a make-up working day")]
    HolidayOnMakeUpDay {
        /// The make-up day's field.
        field: String,
        /// The date.
        date: NaiveDate,
    },
    /// The same date listed twice with the same kind.
    #[error("{field}: {date} is listed twice")]
    ListedTwice {
        /// The second listing's field.
        field: String,
        /// The date.
        date: NaiveDate,
    },
    /// 1 January is not a holiday.
    #[error("holidays: 1 January {0} is not listed: every annual notice makes it a holiday (元旦)")]
    NoNewYear(i32),
}

/// Which syntax a notice file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// TOML.
    Toml,
    /// JSON.
    Json,
}

impl FileFormat {
    /// By extension (`.json` / `.toml`, any case), else JSON when the text starts with `{`, else TOML.
    pub fn detect(path: &std::path::Path, text: &str) -> FileFormat {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("json") => FileFormat::Json,
            Some("toml") => FileFormat::Toml,
            _ if text.trim_start_matches('\u{feff}').trim_start().starts_with('{') => FileFormat::Json,
            _ => FileFormat::Toml,
        }
    }
}

impl NoticeFile {
    /// Parse a notice file's text.
    ///
    /// # Errors
    /// [`NoticeError::Parse`] with the parser's position and reason (unknown keys are refused).
    pub fn parse(text: &str, format: FileFormat) -> Result<NoticeFile, NoticeError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let short = |e: String| -> String {
            // Parsers quote the offending line; keep a refusal readable whatever the file holds.
            if e.chars().count() > 600 { e.chars().take(600).collect::<String>() + " …" } else { e }
        };
        match format {
            FileFormat::Json => {
                serde_json::from_str(text).map_err(|e| NoticeError::Parse { format: "JSON", detail: e.to_string() })
            }
            FileFormat::Toml => {
                toml::from_str(text).map_err(|e| NoticeError::Parse { format: "TOML", detail: short(e.to_string()) })
            }
        }
    }

    /// The notice's days, one entry per day (blocks expanded), in date order, after every rule of the module docs.
    ///
    /// # Errors
    /// The first rule broken, as a [`NoticeError`] naming the field and the date.
    pub fn entries(&self) -> Result<Vec<CalendarEntry>, NoticeError> {
        let year = self.year;
        if !YEARS.contains(&year) {
            return Err(NoticeError::Year(year));
        }
        let date = |field: String, value: &str| {
            parse_date(value).map_err(|_| NoticeError::BadDate { field, value: value.to_owned() })
        };
        let name = |field: String, value: &str| {
            let v = value.trim();
            if v.is_empty() {
                Err(NoticeError::EmptyName { field })
            } else if v.chars().count() > MAX_NAME_CHARS || v.chars().any(char::is_control) {
                Err(NoticeError::BadName { field })
            } else {
                Ok(v.to_owned())
            }
        };
        // date → (entry, field that listed it)
        let mut days: BTreeMap<NaiveDate, (CalendarEntry, String)> = BTreeMap::new();
        for (i, h) in self.holidays.iter().enumerate() {
            let field = format!("holidays[{i}]");
            let festival = name(format!("{field}.name"), &h.name)?;
            let first = date(format!("{field}.first"), &h.first)?;
            let last = match &h.last {
                Some(l) => date(format!("{field}.last"), l)?,
                None => first,
            };
            let len = (last - first).num_days();
            if !(0..MAX_BLOCK_DAYS).contains(&len) {
                return Err(NoticeError::BadBlock { field, first, last });
            }
            for day in first.iter_days().take(len as usize + 1) {
                let entry = CalendarEntry::new(day, DayKind::Holiday, festival.clone());
                if days.insert(day, (entry, field.clone())).is_some() {
                    return Err(NoticeError::ListedTwice { field, date: day });
                }
            }
        }
        for (i, m) in self.make_up_workdays.iter().enumerate() {
            let field = format!("make_up_workdays[{i}]");
            let festival = name(format!("{field}.name"), &m.name)?;
            let day = date(format!("{field}.date"), &m.date)?;
            let field = format!("{field}.date");
            if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
                return Err(NoticeError::MakeUpOnWeekday { field, date: day, weekday: day.weekday() });
            }
            match days.get(&day).map(|(e, _)| e.kind) {
                Some(DayKind::Holiday) => return Err(NoticeError::HolidayOnMakeUpDay { field, date: day }),
                Some(DayKind::MakeUpWorkday) => return Err(NoticeError::ListedTwice { field, date: day }),
                None => {}
            }
            days.insert(day, (CalendarEntry::new(day, DayKind::MakeUpWorkday, festival), field));
        }
        let new_year = NaiveDate::from_ymd_opt(year, 1, 1).expect("1 January of a year in 2000..=2100");
        let new_year_name = match days.get(&new_year) {
            Some((e, _)) if e.kind == DayKind::Holiday => e.name.clone(),
            _ => return Err(NoticeError::NoNewYear(year)),
        };
        for (&day, (entry, field)) in &days {
            if day.year() == year {
                continue;
            }
            let in_new_year_block = day.year() == year - 1
                && match entry.kind {
                    // Every day from `day` to 1 January is a holiday of this notice.
                    DayKind::Holiday => day
                        .iter_days()
                        .take_while(|d| *d <= new_year)
                        .all(|d| days.get(&d).is_some_and(|(e, _)| e.kind == DayKind::Holiday)),
                    DayKind::MakeUpWorkday => entry.name == new_year_name && new_year - Days::new(7) <= day,
                };
            if !in_new_year_block {
                return Err(NoticeError::OutsideYear { field: field.clone(), date: day, year });
            }
        }
        Ok(days.into_values().map(|(e, _)| e).collect())
    }

    /// The file form of `entries` (any order; one notice's days): holidays of one name on consecutive days become
    /// one block. `NoticeFile::from_entries(y, &f.entries()?)` lists the same days as `f`.
    pub fn from_entries(year: i32, entries: &[CalendarEntry]) -> NoticeFile {
        let mut sorted: Vec<&CalendarEntry> = entries.iter().collect();
        sorted.sort_by_key(|e| e.date);
        let mut holidays: Vec<(NaiveDate, NaiveDate, String)> = Vec::new();
        let mut make_up_workdays = Vec::new();
        for e in sorted {
            match e.kind {
                DayKind::Holiday => match holidays.last_mut() {
                    Some((first, last, name))
                        if *name == e.name
                            && last.succ_opt() == Some(e.date)
                            && (e.date - *first).num_days() < MAX_BLOCK_DAYS =>
                    {
                        *last = e.date
                    }
                    _ => holidays.push((e.date, e.date, e.name.clone())),
                },
                DayKind::MakeUpWorkday => {
                    make_up_workdays.push(MakeUpDay { name: e.name.clone(), date: e.date.to_string() })
                }
            }
        }
        NoticeFile {
            year,
            holidays: holidays
                .into_iter()
                .map(|(first, last, name)| HolidayBlock {
                    name,
                    first: first.to_string(),
                    last: (last != first).then(|| last.to_string()),
                })
                .collect(),
            make_up_workdays,
        }
    }

    /// As TOML, the format `doudi calendar add` reads.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a notice file serializes to TOML")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workdays::BUILTIN_NOTICES;

    fn d(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    /// A 2027 test notice: 1 January a holiday (Fri), a Spring Festival block with two make-up days.
    const TEST_2027: &str = r#"
year = 2027
holidays = [
  { name = "元旦", first = "2027-01-01", last = "2027-01-03" },
  { name = "春节", first = "2027-02-06", last = "2027-02-12" },
]
make_up_workdays = [
  { name = "春节", date = "2027-01-31" },
  { name = "春节", date = "2027-02-20" },
]
"#;

    fn test_notice() -> NoticeFile {
        NoticeFile::parse(TEST_2027, FileFormat::Toml).unwrap()
    }

    #[test]
    fn parses_and_expands_blocks() {
        let e = test_notice().entries().unwrap();
        // 3 + 7 holiday days and 2 make-up days.
        assert_eq!(e.len(), 12);
        assert_eq!(e[0], CalendarEntry::new(d("2027-01-01"), DayKind::Holiday, "元旦"));
        // 2027-01-31 is a Sunday, 2027-02-20 a Saturday.
        assert_eq!(e[3], CalendarEntry::new(d("2027-01-31"), DayKind::MakeUpWorkday, "春节"));
        assert_eq!(e.iter().filter(|x| x.kind == DayKind::Holiday).count(), 10);
    }

    #[test]
    fn json_and_toml_read_the_same() {
        let json = r#"{"year": 2027, "holidays": [{"name": "元旦", "first": "2027-01-01", "last": "2027-01-03"},
            {"name": "春节", "first": "2027-02-06", "last": "2027-02-12"}],
            "make_up_workdays": [{"name": "春节", "date": "2027-01-31"}, {"name": "春节", "date": "2027-02-20"}]}"#;
        let f = std::path::Path::new("x.json");
        assert_eq!(FileFormat::detect(f, json), FileFormat::Json);
        assert_eq!(FileFormat::detect(std::path::Path::new("2027"), json), FileFormat::Json);
        assert_eq!(NoticeFile::parse(json, FileFormat::Json).unwrap(), test_notice());
    }

    fn err(toml: &str) -> String {
        match NoticeFile::parse(toml, FileFormat::Toml) {
            Err(e) => e.to_string(),
            Ok(f) => f.entries().unwrap_err().to_string(),
        }
    }

    #[test]
    fn a_date_outside_the_year_is_refused() {
        let e = err(r#"year = 2027
holidays = [{ name = "元旦", first = "2027-01-01" }, { name = "国庆节", first = "2028-10-01" }]"#);
        assert!(e.contains("holidays[1]: 2028-10-01 lies outside 2027"), "{e}");
        // A day of 2026 not joined to 1 January.
        let e = err(r#"year = 2027
holidays = [{ name = "元旦", first = "2026-12-30" }, { name = "元旦", first = "2027-01-01" }]"#);
        assert!(e.contains("2026-12-30 lies outside 2027"), "{e}");
    }

    #[test]
    fn the_new_year_block_may_start_in_the_year_before() {
        // The 2023 notice: 2022-12-31 (Sat) … 2023-01-02.
        let f = NoticeFile::parse(
            r#"year = 2023
holidays = [{ name = "元旦", first = "2022-12-31", last = "2023-01-02" }]"#,
            FileFormat::Toml,
        )
        .unwrap();
        assert_eq!(f.entries().unwrap()[0].date, d("2022-12-31"));
        // The 2019 notice: 2018-12-30 … 2019-01-01 off, Sat 2018-12-29 worked.
        let f = NoticeFile::parse(
            r#"year = 2019
holidays = [{ name = "元旦", first = "2018-12-30", last = "2019-01-01" }]
make_up_workdays = [{ name = "元旦", date = "2018-12-29" }]"#,
            FileFormat::Toml,
        )
        .unwrap();
        assert_eq!(f.entries().unwrap().len(), 4);
        // A make-up day of another festival in December of the year before is not part of the block.
        let e = err(r#"year = 2019
holidays = [{ name = "元旦", first = "2018-12-30", last = "2019-01-01" }]
make_up_workdays = [{ name = "春节", date = "2018-12-29" }]"#);
        assert!(e.contains("make_up_workdays[0].date: 2018-12-29 lies outside 2019"), "{e}");
    }

    #[test]
    fn a_make_up_day_on_a_weekday_is_refused() {
        // 2027-02-08 is a Monday.
        let e = err(r#"year = 2027
holidays = [{ name = "元旦", first = "2027-01-01" }]
make_up_workdays = [{ name = "春节", date = "2027-02-08" }]"#);
        assert_eq!(
            e,
            "make_up_workdays[0].date: 2027-02-08 is a Mon: a make-up working day (调休上班) is a Saturday or Sunday"
        );
    }

    #[test]
    fn a_holiday_on_a_make_up_day_is_refused() {
        // 2027-02-06 is a Saturday inside the 春节 block.
        let e = err(r#"year = 2027
holidays = [{ name = "元旦", first = "2027-01-01" }, { name = "春节", first = "2027-02-06", last = "2027-02-12" }]
make_up_workdays = [{ name = "春节", date = "2027-02-06" }]"#);
        assert_eq!(e, "make_up_workdays[0].date: 2027-02-06 is listed both as a holiday and as a make-up working day");
    }

    #[test]
    fn other_refusals_name_the_field() {
        let e = err(r#"year = 2027
holidays = [{ name = "元旦", first = "2027-01-01" }, { name = "春节", first = "2027-02-12", last = "2027-02-06" }]"#);
        assert!(e.starts_with("holidays[1]: 2027-02-12 … 2027-02-06"), "{e}");
        let e = err(r#"year = 2027
holidays = [{ name = "元旦", first = "2027-01-01" }, { name = " ", first = "2027-02-06" }]"#);
        assert_eq!(e, "holidays[1].name: is empty (name the festival, e.g. 春节)");
        let e = err(r#"year = 2027
holidays = [{ name = "元旦", first = "2027-1-1" }]"#);
        assert_eq!(e, "holidays[0].first: \"2027-1-1\" is not a date (YYYY-MM-DD)");
        let e = err(r#"year = 2027
holidays = [{ name = "春节", first = "2027-02-06" }]"#);
        assert_eq!(e, "holidays: 1 January 2027 is not listed: every annual notice makes it a holiday (元旦)");
        let e = err(r#"year = 2027
holidays = [{ name = "元旦", first = "2027-01-01", last = "2027-01-03" }, { name = "x", first = "2027-01-03" }]"#);
        assert_eq!(e, "holidays[1]: 2027-01-03 is listed twice");
        let e = err("year = 1999\nholidays = []");
        assert_eq!(e, "year: 1999 is outside 2000..=2100");
        let e = err("year = 2027\nholiday = []");
        assert!(e.starts_with("not a holiday notice file (TOML)") && e.contains("holiday"), "{e}");
    }

    #[test]
    fn names_are_one_short_line_and_a_byte_order_mark_is_ignored() {
        let e = err(&format!("year = 2027\nholidays = [{{ name = \"{}\", first = \"2027-01-01\" }}]", "节".repeat(33)));
        assert!(e.starts_with("holidays[0].name: a festival name is one line of at most 32 characters"), "{e}");
        let e = err("year = 2027\nholidays = [{ name = \"元旦\\nFAKE\", first = \"2027-01-01\" }]");
        assert!(e.starts_with("holidays[0].name: a festival name is one line"), "{e}");
        let json = "\u{feff}{\"year\": 2027, \"holidays\": [{\"name\": \"元旦\", \"first\": \"2027-01-01\"}]}";
        assert_eq!(FileFormat::detect(std::path::Path::new("notice"), json), FileFormat::Json);
        assert_eq!(NoticeFile::parse(json, FileFormat::Json).unwrap().entries().unwrap().len(), 1);
    }

    #[test]
    fn long_runs_of_one_festival_are_written_as_blocks_a_file_may_hold() {
        // 41 consecutive days named 元旦 (two valid blocks in the file) are written back as 31 + 10 days.
        let f = NoticeFile::parse(
            r#"year = 2032
holidays = [{ name = "元旦", first = "2032-01-01", last = "2032-01-31" }, { name = "元旦", first = "2032-02-01", last = "2032-02-10" }]"#,
            FileFormat::Toml,
        )
        .unwrap();
        let entries = f.entries().unwrap();
        let back = NoticeFile::from_entries(2032, &entries);
        assert_eq!(back.holidays.len(), 2);
        assert_eq!(
            (back.holidays[0].last.as_deref(), back.holidays[1].first.as_str()),
            (Some("2032-01-31"), "2032-02-01")
        );
        assert_eq!(NoticeFile::parse(&back.to_toml(), FileFormat::Toml).unwrap().entries().unwrap(), entries);
    }

    #[test]
    fn builtin_notices_round_trip_through_the_file_form() {
        for n in BUILTIN_NOTICES {
            let mut expected = n.entries();
            expected.sort_by_key(|e| e.date);
            let file = NoticeFile::from_entries(n.year, &expected);
            let text = file.to_toml();
            let again = NoticeFile::parse(&text, FileFormat::Toml).unwrap();
            assert_eq!(again.entries().unwrap(), expected, "{}", n.year);
        }
    }
}
