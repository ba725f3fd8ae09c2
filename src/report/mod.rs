//! Rendering of the quarterly summary (调度汇总) and the monthly report (每月报告) of docs/spec/coordination.md to Markdown,
//! CSV, JSON, XLSX and HTML.
//!
//! Rendering is independent of how the summary is computed: it takes a [`QuarterlySummary`] or a [`MonthlyReport`]
//! (plain data, `domain::summary`) and returns the bytes of one file. Every format except JSON is drawn from one
//! table model (`table.rs`): each section of docs/spec/coordination.md becomes one or more tables whose cells are typed
//! (text, count, possibly suppressed count, money, whole percent), and each format writes those cells in its own way:
//!
//! | format | money | count | suppressed count | missing value |
//! | --- | --- | --- | --- | --- |
//! | Markdown, HTML | `1,008,705.50` (yuan, 2 decimals, thousands separated) | `2,452` | `<5` | `—` |
//! | CSV | `1008705.50` | `2452` | `<5` | empty field |
//! | XLSX | number cell, format `#,##0.00` | number cell, format `#,##0` | text cell `<5` | empty cell |
//! | JSON | the struct as serialized by serde (money as the decimal string `"1008705.50"`) | | `"suppressed"` | `null` |
//!
//! Layout of each format:
//! - **Markdown**: a title and a list of the summary's dates, then one `## n. English 中文` heading per section with
//!   its tables (numeric columns right-aligned).
//! - **CSV** (one document, RFC 4180 quoting by the `csv` crate): one block per table, blocks separated by one blank
//!   line. A block starts with its own header row, whose first field is `section`; every data row starts with the
//!   table's key (`report`, `headline`, `by_county_program`, `change`, `coverage`, `medical`,
//!   `medical_findings_by_code`, `medical_findings_by_county`, `fund_reports`, `fund_report_totals`, `warnings`,
//!   `warnings_by_county`, `late_corrections`, `standards`, `snapshot`), so `grep '^coverage,'` picks one table.
//!   Other header fields are the snake_case names of the JSON fields; key-value tables (headline, medical, warnings,
//!   snapshot, report) have the columns `section,indicator,value` with the JSON field name as `indicator` (dotted
//!   for a nested field: `paid.basic`).
//! - **JSON**: `serde_json::to_vec_pretty` of the struct, the same shape as the gRPC-independent domain type.
//! - **XLSX** (`rust_xlsxwriter`): a first sheet `0 Report 报告` with the dates, then one sheet per section named
//!   `n English 中文`; bold header rows; a section with several tables stacks them, each under a bold caption row
//!   and separated by one empty row. Numbers are number cells, never text.
//! - **HTML**: one self-contained file (inline CSS, inline SVG, no script, no external font, image or link) with the
//!   section tables and, for the quarterly summary, three charts drawn with `plotters`' SVG backend (see
//!   `charts.rs`); the monthly report has the county × program chart.
//!
//! No person-level data exists in the input, so none can appear in the output (docs/spec/security.md).

mod charts;
mod csv_doc;
pub mod example;
mod html;
mod markdown;
mod table;
mod xlsx;

use crate::domain::summary::{MonthlyReport, QuarterlySummary};

/// An output format of `doudi report quarterly|monthly --format …` (docs/spec/coordination.md "Quarterly summary").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Format {
    /// Markdown (UTF-8), one table per section.
    Md,
    /// One CSV document (UTF-8): blocks of `section,…` rows separated by blank lines.
    Csv,
    /// Pretty-printed JSON of the summary struct.
    Json,
    /// An Excel workbook: one sheet per section, numeric cells.
    Xlsx,
    /// One self-contained HTML file with inline SVG charts.
    Html,
}

impl Format {
    /// The usual file extension, without the dot: `md`, `csv`, `json`, `xlsx`, `html`.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Md => "md",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Xlsx => "xlsx",
            Format::Html => "html",
        }
    }

    /// The media type of the rendered bytes (UTF-8 for the text formats).
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Md => "text/markdown; charset=utf-8",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Html => "text/html; charset=utf-8",
        }
    }
}

/// Renders a quarterly summary as the bytes of one file in format `f` (layouts in the module docs).
///
/// # Errors
/// Only from the underlying writers (CSV, XLSX packaging, chart drawing); none is expected for a well-formed summary.
pub fn render_quarterly(s: &QuarterlySummary, f: Format) -> anyhow::Result<Vec<u8>> {
    match f {
        Format::Json => Ok(serde_json::to_vec_pretty(s)?),
        Format::Md => Ok(markdown::render(&table::quarterly(s)).into_bytes()),
        Format::Csv => csv_doc::render(&table::quarterly(s)),
        Format::Xlsx => xlsx::render(&table::quarterly(s)),
        Format::Html => {
            let charts = charts::quarterly(s)?;
            Ok(html::render(&table::quarterly(s), &charts).into_bytes())
        }
    }
}

/// Renders a monthly report to the leading group as the bytes of one file in format `f` (layouts in the module
/// docs; the HTML has the county × program chart only).
///
/// # Errors
/// As [`render_quarterly`].
pub fn render_monthly(m: &MonthlyReport, f: Format) -> anyhow::Result<Vec<u8>> {
    match f {
        Format::Json => Ok(serde_json::to_vec_pretty(m)?),
        Format::Md => Ok(markdown::render(&table::monthly(m)).into_bytes()),
        Format::Csv => csv_doc::render(&table::monthly(m)),
        Format::Xlsx => xlsx::render(&table::monthly(m)),
        Format::Html => {
            let charts = charts::monthly(m)?;
            Ok(html::render(&table::monthly(m), &charts).into_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    use super::*;

    #[test]
    fn json_is_the_struct_and_reads_back() {
        let s = example::quarterly();
        let bytes = render_quarterly(&s, Format::Json).unwrap();
        assert_eq!(serde_json::from_slice::<QuarterlySummary>(&bytes).unwrap(), s);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("\n  \"quarter\": \"2023Q2\",\n"), "pretty-printed");
        assert!(text.contains("\"monthly_benefit_total\": \"1008705.50\""));
        assert!(text.contains("\"persons\": \"suppressed\""));
        let m = example::monthly();
        assert_eq!(serde_json::from_slice::<MonthlyReport>(&render_monthly(&m, Format::Json).unwrap()).unwrap(), m);
    }

    #[test]
    fn the_summary_lists_who_countersigned_and_when() {
        // example::quarterly: civil_affairs signed on 2023-07-06 01:30 UTC (version 1), education re-signed on
        // 2023-07-10 08:00 UTC (version 2).
        let md = String::from_utf8(render_quarterly(&example::quarterly(), Format::Md).unwrap()).unwrap();
        assert!(md.contains("Countersigned by 部门会签"), "{md}");
        assert!(md.contains("| civil_affairs | 2023-07-06T01:30:00Z |"), "{md}");
        assert!(md.contains("| education | 2023-07-10T08:00:00Z |"), "{md}");
        let csv = String::from_utf8(render_quarterly(&example::quarterly(), Format::Csv).unwrap()).unwrap();
        assert!(csv.lines().any(|l| l.starts_with("countersignatures,") && l.contains("education")), "{csv}");
        let mut none = example::quarterly();
        none.countersignatures.clear();
        let json = String::from_utf8(render_quarterly(&none, Format::Json).unwrap()).unwrap();
        assert!(!json.contains("countersignatures"), "absent when nobody signed");
    }

    #[test]
    fn formats_parse_from_the_command_line_names() {
        for (name, f) in [
            ("md", Format::Md),
            ("csv", Format::Csv),
            ("json", Format::Json),
            ("xlsx", Format::Xlsx),
            ("html", Format::Html),
        ] {
            assert_eq!(Format::from_str(name, false).unwrap(), f);
            assert_eq!(f.extension(), name);
        }
    }
}
