//! The exchange file formats of `doudi push` and `doudi export` (docs/file-exchange.md).
//!
//! One file holds one payload kind. Its columns are [`BASE_COLUMNS`], then the payload's fields by their proto
//! names ([`payload_columns`]), optionally preceded by a `kind` column. CSV has a header row naming the columns
//! (any order); JSON Lines has one flat object per line with the same keys. Values are text as in the proto
//! (money `"607.00"`, dates `YYYY-MM-DD`); enums by their proto value name with or without the enum's prefix
//! (`DIBAO` or `PROGRAM_DIBAO`, any case); booleans `true`/`false` (also `1`/`0`); empty = not given.
//!
//! The client only turns text into a `Fact` message: whatever is left to judge (check digits, money, dates,
//! required fields, who may push what) is the hub's, which answers REJECTED with the field and the reason.

use std::collections::HashMap;

use crate::domain::fact::PayloadKind;
use crate::grpc::pb;

/// The columns every kind has, in file order.
pub const BASE_COLUMNS: [&str; 6] =
    ["fact_id", "source_version", "id_number", "division_code", "valid_from", "valid_to"];

/// Base columns a file must have (`valid_to` may be left out: open-ended).
pub const REQUIRED_COLUMNS: [&str; 5] = ["fact_id", "source_version", "id_number", "division_code", "valid_from"];

/// The optional first column naming the payload kind.
pub const KIND_COLUMN: &str = "kind";

/// The payload fields of `kind`, by their proto names, in proto order.
pub fn payload_columns(kind: PayloadKind) -> &'static [&'static str] {
    crate::domain::policy::known_fields(kind)
}

/// Every column of a `kind` file as `doudi export` writes it: `kind`, the base columns, the payload fields.
pub fn all_columns(kind: PayloadKind) -> Vec<&'static str> {
    let mut c = vec![KIND_COLUMN];
    c.extend(BASE_COLUMNS);
    c.extend(payload_columns(kind));
    c
}

/// Whether `column` belongs in a `kind` file.
pub fn is_column_of(kind: PayloadKind, column: &str) -> bool {
    column == KIND_COLUMN || BASE_COLUMNS.contains(&column) || payload_columns(kind).contains(&column)
}

/// Parse a payload kind name (`assistance`, `education_aid`, …).
pub fn parse_kind(s: &str) -> Result<PayloadKind, String> {
    PayloadKind::parse(s.trim()).ok_or_else(|| {
        format!(
            "unknown kind {s:?} (one of {})",
            PayloadKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
        )
    })
}

/// What is wrong with one row, before anything is sent: the column and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub field: String,
    pub reason: String,
}

impl RowError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> RowError {
        RowError { field: field.into(), reason: reason.into() }
    }
}

macro_rules! enum_codec {
    ($parse:ident, $show:ident, $ty:ty, $prefix:literal) => {
        /// Parse a value name (with or without the prefix, any case); empty = unspecified (0).
        pub fn $parse(v: &str, field: &str) -> Result<i32, RowError> {
            if v.is_empty() {
                return Ok(0);
            }
            let up = v.to_ascii_uppercase();
            let full = if up.starts_with($prefix) { up } else { format!("{}{}", $prefix, up) };
            match <$ty>::from_str_name(&full) {
                Some(e) if e as i32 != 0 => Ok(e as i32),
                _ => {
                    let names: Vec<String> = (1..64)
                        .filter_map(|i| <$ty>::try_from(i).ok())
                        .map(|e| e.as_str_name().trim_start_matches($prefix).to_owned())
                        .collect();
                    Err(RowError::new(field, format!("unknown value {v:?} (one of {})", names.join(", "))))
                }
            }
        }
        /// The value name without its prefix; empty for unspecified.
        pub fn $show(v: i32) -> String {
            <$ty>::try_from(v)
                .ok()
                .filter(|e| *e as i32 != 0)
                .map(|e| e.as_str_name().trim_start_matches($prefix).to_owned())
                .unwrap_or_default()
        }
    };
}

enum_codec!(program_in, program_out, pb::Program, "PROGRAM_");
enum_codec!(residence_in, residence_out, pb::Residence, "RESIDENCE_");
enum_codec!(urban_mode_in, urban_mode_out, pb::UrbanMode, "URBAN_MODE_");
enum_codec!(support_mode_in, support_mode_out, pb::SupportMode, "SUPPORT_MODE_");
enum_codec!(assistance_status_in, assistance_status_out, pb::AssistanceStatus, "ASSISTANCE_STATUS_");
enum_codec!(employment_status_in, employment_status_out, pb::EmploymentStatus, "EMPLOYMENT_STATUS_");
enum_codec!(unemployment_benefit_in, unemployment_benefit_out, pb::UnemploymentBenefit, "UNEMPLOYMENT_BENEFIT_");
enum_codec!(stage_in, stage_out, pb::Stage, "STAGE_");
enum_codec!(aid_type_in, aid_type_out, pb::AidType, "AID_TYPE_");
enum_codec!(scheme_in, scheme_out, pb::Scheme, "SCHEME_");
enum_codec!(premium_subsidy_in, premium_subsidy_out, pb::PremiumSubsidy, "PREMIUM_SUBSIDY_");
enum_codec!(category_in, category_out, pb::DisabilityCategory, "DISABILITY_CATEGORY_");

fn uint<T: std::str::FromStr>(v: &str, field: &str) -> Result<Option<T>, RowError> {
    if v.is_empty() {
        return Ok(None);
    }
    v.parse::<T>().map(Some).map_err(|_| RowError::new(field, format!("{v:?} is not a whole number")))
}

fn boolean(v: &str, field: &str) -> Result<bool, RowError> {
    match v.to_ascii_lowercase().as_str() {
        "" | "false" | "0" => Ok(false),
        "true" | "1" => Ok(true),
        _ => Err(RowError::new(field, format!("{v:?} is not true or false"))),
    }
}

fn bool_out(b: bool) -> String {
    if b { "true".into() } else { "false".into() }
}

/// Build the `Fact` message of one row of a `kind` file; `get(column)` gives the (trimmed) cell, empty if the
/// column is absent.
pub fn build_fact<'a>(kind: PayloadKind, get: impl Fn(&str) -> &'a str) -> Result<pb::Fact, RowError> {
    use pb::fact::Payload as P;
    let source_version = match get("source_version") {
        "" => return Err(RowError::new("source_version", "is required (a whole number that rises with each change)")),
        v => uint::<u64>(v, "source_version")?.unwrap_or_default(),
    };
    let payload = match kind {
        PayloadKind::Assistance => P::Assistance(pb::Assistance {
            program: program_in(get("program"), "program")?,
            residence: residence_in(get("residence"), "residence")?,
            rural_class: uint::<u32>(get("rural_class"), "rural_class")?,
            urban_mode: urban_mode_in(get("urban_mode"), "urban_mode")?,
            support_mode: support_mode_in(get("support_mode"), "support_mode")?,
            household_id: get("household_id").to_owned(),
            monthly_benefit: get("monthly_benefit").to_owned(),
            status: assistance_status_in(get("status"), "status")?,
        }),
        PayloadKind::Employment => P::Employment(pb::Employment {
            status: employment_status_in(get("status"), "status")?,
            unemployment_benefit: unemployment_benefit_in(get("unemployment_benefit"), "unemployment_benefit")?,
        }),
        PayloadKind::Pension => P::Pension(pb::Pension {
            enrolled: boolean(get("enrolled"), "enrolled")?,
            premium_paid_by_government: boolean(get("premium_paid_by_government"), "premium_paid_by_government")?,
            receiving: boolean(get("receiving"), "receiving")?,
            monthly_pension: get("monthly_pension").to_owned(),
        }),
        PayloadKind::Student => P::Student(pb::Student {
            stage: stage_in(get("stage"), "stage")?,
            school_code: get("school_code").to_owned(),
        }),
        PayloadKind::EducationAid => P::EducationAid(pb::EducationAid {
            aid_type: aid_type_in(get("aid_type"), "aid_type")?,
            annual_amount: get("annual_amount").to_owned(),
        }),
        PayloadKind::MedicalInsurance => P::MedicalInsurance(pb::MedicalInsurance {
            scheme: scheme_in(get("scheme"), "scheme")?,
            year: uint::<u32>(get("year"), "year")?.unwrap_or_default(),
            premium_subsidy: premium_subsidy_in(get("premium_subsidy"), "premium_subsidy")?,
            subsidy_amount: get("subsidy_amount").to_owned(),
        }),
        PayloadKind::Disability => P::Disability(pb::Disability {
            category: category_in(get("category"), "category")?,
            grade: uint::<u32>(get("grade"), "grade")?.unwrap_or_default(),
            certificate_no: get("certificate_no").to_owned(),
        }),
        PayloadKind::DisabilitySubsidy => P::DisabilitySubsidy(pb::DisabilitySubsidy {
            living_subsidy: get("living_subsidy").to_owned(),
            nursing_subsidy: get("nursing_subsidy").to_owned(),
        }),
    };
    Ok(pb::Fact {
        fact_id: get("fact_id").to_owned(),
        source_version,
        id_number: get("id_number").to_owned(),
        division_code: get("division_code").to_owned(),
        valid_from: get("valid_from").to_owned(),
        valid_to: get("valid_to").to_owned(),
        payload: Some(payload),
        ..Default::default()
    })
}

/// The kind of a payload.
pub fn payload_kind(p: &pb::fact::Payload) -> PayloadKind {
    use pb::fact::Payload as P;
    match p {
        P::Assistance(_) => PayloadKind::Assistance,
        P::Employment(_) => PayloadKind::Employment,
        P::Pension(_) => PayloadKind::Pension,
        P::Student(_) => PayloadKind::Student,
        P::EducationAid(_) => PayloadKind::EducationAid,
        P::MedicalInsurance(_) => PayloadKind::MedicalInsurance,
        P::Disability(_) => PayloadKind::Disability,
        P::DisabilitySubsidy(_) => PayloadKind::DisabilitySubsidy,
    }
}

/// The payload's values in [`payload_columns`] order.
pub fn payload_values(p: &pb::fact::Payload) -> Vec<String> {
    use pb::fact::Payload as P;
    match p {
        P::Assistance(a) => vec![
            program_out(a.program),
            residence_out(a.residence),
            a.rural_class.map(|c| c.to_string()).unwrap_or_default(),
            urban_mode_out(a.urban_mode),
            support_mode_out(a.support_mode),
            a.household_id.clone(),
            a.monthly_benefit.clone(),
            assistance_status_out(a.status),
        ],
        P::Employment(e) => vec![employment_status_out(e.status), unemployment_benefit_out(e.unemployment_benefit)],
        P::Pension(p) => vec![
            bool_out(p.enrolled),
            bool_out(p.premium_paid_by_government),
            bool_out(p.receiving),
            p.monthly_pension.clone(),
        ],
        P::Student(s) => vec![stage_out(s.stage), s.school_code.clone()],
        P::EducationAid(e) => vec![aid_type_out(e.aid_type), e.annual_amount.clone()],
        P::MedicalInsurance(m) => vec![
            scheme_out(m.scheme),
            if m.year == 0 { String::new() } else { m.year.to_string() },
            premium_subsidy_out(m.premium_subsidy),
            m.subsidy_amount.clone(),
        ],
        P::Disability(d) => vec![
            category_out(d.category),
            if d.grade == 0 { String::new() } else { d.grade.to_string() },
            d.certificate_no.clone(),
        ],
        P::DisabilitySubsidy(s) => vec![s.living_subsidy.clone(), s.nursing_subsidy.clone()],
    }
}

/// A fact as a row of its kind's file: the values of [`all_columns`]. `None` for a fact without payload.
pub fn fact_row(f: &pb::Fact) -> Option<(PayloadKind, Vec<String>)> {
    let p = f.payload.as_ref()?;
    let kind = payload_kind(p);
    let mut row = vec![
        kind.as_str().to_owned(),
        f.fact_id.clone(),
        f.source_version.to_string(),
        f.id_number.clone(),
        f.division_code.clone(),
        f.valid_from.clone(),
        f.valid_to.clone(),
    ];
    row.extend(payload_values(p));
    Some((kind, row))
}

/// A fact as a flat JSON object (the JSON Lines form): every non-empty column, as strings.
pub fn fact_json(f: &pb::Fact) -> Option<serde_json::Map<String, serde_json::Value>> {
    let (kind, row) = fact_row(f)?;
    Some(
        all_columns(kind)
            .into_iter()
            .zip(row)
            .filter(|(_, v)| !v.is_empty())
            .map(|(c, v)| (c.to_owned(), serde_json::Value::String(v)))
            .collect(),
    )
}

/// Input file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Csv,
    Jsonl,
}

impl FileFormat {
    /// From the file name: `.csv` → CSV, `.jsonl`/`.ndjson` → JSON Lines.
    pub fn from_path(p: &std::path::Path) -> Option<FileFormat> {
        match p.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(FileFormat::Csv),
            "jsonl" | "ndjson" => Some(FileFormat::Jsonl),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::Jsonl => "jsonl",
        }
    }
}

/// Text encoding of an input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TextEncoding {
    #[value(name = "utf-8", alias = "utf8")]
    Utf8,
    Gbk,
    Gb18030,
}

impl TextEncoding {
    fn encoding(self) -> &'static encoding_rs::Encoding {
        match self {
            TextEncoding::Utf8 => encoding_rs::UTF_8,
            TextEncoding::Gbk => encoding_rs::GBK,
            TextEncoding::Gb18030 => encoding_rs::GB18030,
        }
    }

    /// Decode a whole file; a UTF-8 byte-order mark (as Excel writes) is dropped. Bytes that are not valid in the
    /// encoding are an error naming the line.
    pub fn decode(self, bytes: &[u8]) -> Result<String, String> {
        let bytes =
            if self == TextEncoding::Utf8 { bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes) } else { bytes };
        let (text, had_errors) = self.encoding().decode_without_bom_handling(bytes);
        if had_errors {
            let line = text.lines().position(|l| l.contains('\u{FFFD}')).map(|i| i + 1).unwrap_or(1);
            let hint = if self == TextEncoding::Utf8 {
                " (a file saved by Excel or WPS as \"CSV\" is usually GBK: try --encoding gbk)"
            } else {
                ""
            };
            return Err(format!("line {line} is not valid {}{hint}", self.encoding().name()));
        }
        Ok(text.into_owned())
    }

    /// Encode text for a file written next to the input (the rejects file): GBK input gets GB18030, which
    /// reads as GBK for every character GBK has.
    pub fn encode(self, text: &str) -> Vec<u8> {
        match self {
            TextEncoding::Utf8 => text.as_bytes().to_vec(),
            TextEncoding::Gbk | TextEncoding::Gb18030 => encoding_rs::GB18030.encode(text).0.into_owned(),
        }
    }
}

/// One data row of an input file: its number (the line in the file, the CSV header being line 1) and either
/// the fact to send or why it cannot be read.
#[derive(Debug, Clone)]
pub struct Row {
    pub row: u64,
    pub fact: Result<pb::Fact, RowError>,
    /// The fact_id cell, if any (for the rejects file).
    pub fact_id: String,
}

/// A parsed input file.
#[derive(Debug, Clone)]
pub struct ParsedFile {
    pub kind: Option<PayloadKind>,
    pub rows: Vec<Row>,
}

/// Parse the text of a CSV or JSON Lines file holding one payload kind (`kind` from `--kind`, else from the
/// `kind` column of the first row that names a valid one). `Err` for a file-level problem (header), in which
/// case nothing may be sent.
pub fn parse(text: &str, format: FileFormat, kind: Option<PayloadKind>) -> Result<ParsedFile, String> {
    match format {
        FileFormat::Csv => parse_csv(text, kind),
        FileFormat::Jsonl => parse_jsonl(text, kind),
    }
}

/// Decide a row's kind: the file's, or the row's `kind` cell (then it becomes the file's).
fn row_kind(file_kind: &mut Option<PayloadKind>, cell: &str) -> Result<PayloadKind, RowError> {
    let cell = cell.trim();
    match (*file_kind, cell) {
        (Some(k), "") => Ok(k),
        (None, "") => Err(RowError::new(KIND_COLUMN, "is empty, and no --kind was given")),
        (fk, c) => {
            let k = parse_kind(c).map_err(|e| RowError::new(KIND_COLUMN, e))?;
            match fk {
                Some(f) if f != k => Err(RowError::new(
                    KIND_COLUMN,
                    format!("is {k}, but this file holds {f} facts (one file holds one payload kind)"),
                )),
                _ => {
                    *file_kind = Some(k);
                    Ok(k)
                }
            }
        }
    }
}

fn parse_csv(text: &str, mut kind: Option<PayloadKind>) -> Result<ParsedFile, String> {
    // The csv crate counts lines one short after a CRLF record end (as Windows programs write); with LF only, a
    // record's line is its line in the file.
    let text = text.replace("\r\n", "\n");
    let mut rdr = csv::ReaderBuilder::new().flexible(true).has_headers(true).from_reader(text.as_bytes());
    let header: Vec<String> =
        rdr.headers().map_err(|e| format!("header: {e}"))?.iter().map(|h| h.trim().to_owned()).collect();
    let known = |c: &str| {
        c == KIND_COLUMN
            || BASE_COLUMNS.contains(&c)
            || PayloadKind::ALL.iter().any(|k| payload_columns(*k).contains(&c))
    };
    for (i, h) in header.iter().enumerate() {
        if !known(h) {
            return Err(format!(
                "column {} {h:?} of the header is not a column of any fact kind (docs/file-exchange.md lists them)",
                i + 1
            ));
        }
        if header[..i].contains(h) {
            return Err(format!("column {} {h:?} of the header appears twice", i + 1));
        }
    }
    for r in REQUIRED_COLUMNS {
        if !header.iter().any(|h| h == r) {
            return Err(format!("the header has no {r:?} column (required: {})", REQUIRED_COLUMNS.join(", ")));
        }
    }
    if kind.is_none() && !header.iter().any(|h| h == KIND_COLUMN) {
        return Err("which kind of fact does the file hold? give a \"kind\" column or --kind".into());
    }
    let kind_col = header.iter().position(|h| h == KIND_COLUMN);
    let index: HashMap<&str, usize> = header.iter().enumerate().map(|(i, h)| (h.as_str(), i)).collect();
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let more = rdr.read_record(&mut record);
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        match more {
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(line);
                rows.push(Row { row: line, fact_id: String::new(), fact: Err(RowError::new("row", e.to_string())) });
                continue;
            }
            Ok(true) => {}
        }
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let cell = |i: usize| record.get(i).map(str::trim).unwrap_or("");
        let fact_id = index.get("fact_id").map(|i| cell(*i)).unwrap_or("").to_owned();
        let fact = (|| {
            if record.len() > header.len() {
                return Err(RowError::new(
                    format!("column {}", header.len() + 1),
                    format!("the row has {} cells but the header names {} columns", record.len(), header.len()),
                ));
            }
            if record.len() < header.len() {
                return Err(RowError::new(
                    format!("column {}", record.len() + 1),
                    format!("the row has {} cells but the header names {} columns", record.len(), header.len()),
                ));
            }
            let k = row_kind(&mut kind, kind_col.map(cell).unwrap_or(""))?;
            for (i, h) in header.iter().enumerate() {
                if !is_column_of(k, h) && !cell(i).is_empty() {
                    return Err(RowError::new(h.clone(), format!("is not a field of {k} facts")));
                }
            }
            build_fact(k, |c| index.get(c).map(|i| cell(*i)).unwrap_or(""))
        })();
        rows.push(Row { row: line, fact_id, fact });
    }
    Ok(ParsedFile { kind, rows })
}

fn parse_jsonl(text: &str, mut kind: Option<PayloadKind>) -> Result<ParsedFile, String> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let row = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let obj: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(line) {
            Ok(o) => o,
            Err(e) => {
                rows.push(Row {
                    row,
                    fact_id: String::new(),
                    fact: Err(RowError::new("row", format!("not a JSON object: {e}"))),
                });
                continue;
            }
        };
        let mut cells: HashMap<&str, String> = HashMap::new();
        let mut bad = None;
        for (k, v) in &obj {
            let s = match v {
                serde_json::Value::String(s) => s.trim().to_owned(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Null => String::new(),
                _ => {
                    bad.get_or_insert(RowError::new(k.clone(), "must be a string, a number, a boolean or null"));
                    continue;
                }
            };
            cells.insert(k.as_str(), s);
        }
        let fact_id = cells.get("fact_id").cloned().unwrap_or_default();
        let fact = (|| {
            if let Some(e) = bad {
                return Err(e);
            }
            let k = row_kind(&mut kind, cells.get(KIND_COLUMN).map(String::as_str).unwrap_or(""))?;
            for (c, v) in &cells {
                if !is_column_of(k, c) {
                    let known_elsewhere = PayloadKind::ALL.iter().any(|k| payload_columns(*k).contains(c));
                    if known_elsewhere && v.is_empty() {
                        continue;
                    }
                    return Err(RowError::new(
                        *c,
                        if known_elsewhere {
                            format!("is not a field of {k} facts")
                        } else {
                            format!("unknown column (the columns of {k} facts: {})", all_columns(k).join(", "))
                        },
                    ));
                }
            }
            for r in REQUIRED_COLUMNS {
                if cells.get(r).is_none_or(|v| v.is_empty()) && r != "source_version" {
                    return Err(RowError::new(r, "is required"));
                }
            }
            build_fact(k, |c| cells.get(c).map(String::as_str).unwrap_or(""))
        })();
        rows.push(Row { row, fact_id, fact });
    }
    Ok(ParsedFile { kind, rows })
}

/// Write one kind's facts as a file `doudi push` accepts.
pub fn write_facts(
    out: &mut dyn std::io::Write,
    format: FileFormat,
    kind: PayloadKind,
    facts: &[pb::Fact],
) -> anyhow::Result<()> {
    match format {
        FileFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(all_columns(kind))?;
            for f in facts {
                if let Some((_, row)) = fact_row(f) {
                    w.write_record(&row)?;
                }
            }
            w.flush()?;
        }
        FileFormat::Jsonl => {
            for f in facts {
                if let Some(obj) = fact_json(f) {
                    serde_json::to_writer(&mut *out, &obj)?;
                    out.write_all(b"\n")?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "kind,fact_id,source_version,id_number,division_code,valid_from,valid_to,program,residence,rural_class,urban_mode,support_mode,household_id,monthly_benefit,status";

    #[test]
    fn csv_row_to_fact_and_back() {
        let text = format!(
            "{HEADER}\nassistance,MZ-1,3,621022198512310039,621022101203,2023-01-01,,dibao,Rural,2,,,环县-户-1,442.00,ACTIVE\n"
        );
        let p = parse(&text, FileFormat::Csv, None).unwrap();
        assert_eq!(p.kind, Some(PayloadKind::Assistance));
        assert_eq!(p.rows.len(), 1);
        assert_eq!(p.rows[0].row, 2);
        let f = p.rows[0].fact.clone().unwrap();
        let Some(pb::fact::Payload::Assistance(a)) = &f.payload else { panic!() };
        assert_eq!(a.program, pb::Program::Dibao as i32);
        assert_eq!(a.residence, pb::Residence::Rural as i32);
        assert_eq!(a.rural_class, Some(2));
        assert_eq!(a.household_id, "环县-户-1");
        assert_eq!(f.source_version, 3);
        let (_, row) = fact_row(&f).unwrap();
        assert_eq!(
            row.join(","),
            "assistance,MZ-1,3,621022198512310039,621022101203,2023-01-01,,DIBAO,RURAL,2,,,环县-户-1,442.00,ACTIVE"
        );
    }

    #[test]
    fn row_errors_name_the_column() {
        let text = format!(
            "{HEADER}\nassistance,A,1,x,621022,2023-01-01,,DIBAOO,,,,,,,ACTIVE\nassistance,B,one,x,621022,2023-01-01,,DIBAO,,,,,,,ACTIVE,extra\nstudent,C,1,x,621022,2023-01-01,,,,,,,,,\n"
        );
        let p = parse(&text, FileFormat::Csv, None).unwrap();
        let errs: Vec<_> = p.rows.iter().map(|r| (r.row, r.fact.clone().unwrap_err().field)).collect();
        assert_eq!(errs, vec![(2, "program".to_owned()), (3, "column 16".to_owned()), (4, "kind".to_owned())]);
        assert!(p.rows[0].fact.clone().unwrap_err().reason.contains("TEKUN"));
    }

    #[test]
    fn unknown_header_column_refuses_the_file() {
        let e = parse(
            "fact_id,source_version,id_number,division_code,valid_from,备注\n",
            FileFormat::Csv,
            Some(PayloadKind::Assistance),
        )
        .unwrap_err();
        assert!(e.contains("column 6 \"备注\""), "{e}");
    }

    #[test]
    fn jsonl_unknown_key_is_a_row_error() {
        let text = "{\"kind\":\"employment\",\"fact_id\":\"E1\",\"source_version\":1,\"id_number\":\"x\",\"division_code\":\"621022\",\"valid_from\":\"2023-01-01\",\"status\":\"FLEXIBLE\",\"note\":\"?\"}\n";
        let p = parse(text, FileFormat::Jsonl, None).unwrap();
        assert_eq!(p.rows[0].fact.clone().unwrap_err().field, "note");
    }

    #[test]
    fn gbk_decodes_and_bad_utf8_names_the_line() {
        let (gbk, _, _) = encoding_rs::GBK.encode("a\n环县\n");
        assert_eq!(TextEncoding::Gbk.decode(&gbk).unwrap(), "a\n环县\n");
        let e = TextEncoding::Utf8.decode(&gbk).unwrap_err();
        assert!(e.starts_with("line 2 is not valid UTF-8"), "{e}");
    }
}
