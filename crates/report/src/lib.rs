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
//! No person-level data exists in a summary or a monthly report, so none can appear in their output
//! (docs/spec/security.md). The one person-level renderer is `findings_page` (a quarter's findings one by one, with
//! their explanations, as an agency read them from the hub): person keys, never ID numbers or names; the quarterly
//! HTML page links to those pages only when asked ([`render_quarterly_html`]).

mod charts;
#[cfg(test)]
mod chromium;
mod csv_doc;
pub mod example;
pub mod explanation;
pub mod findings_page;
mod html;
mod markdown;
mod table;
mod xlsx;

use doudi_domain::summary::{MonthlyReport, QuarterlySummary};

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
        Format::Html => render_quarterly_html(s, &FindingsLinks::default()),
    }
}

/// Where the quarterly HTML page links to the findings pages (`findings_page`, written by `doudi findings page`):
/// relative file names of files beside it; `None` = no link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindingsLinks {
    /// The quarter's own findings, linked from sections 4 (coverage) and 5 (medical), e.g. `findings-2023Q3.html`.
    pub this_quarter: Option<String>,
    /// The previous quarter's findings with their answers, linked from section 11, e.g. `findings-2023Q2.html`.
    pub previous_quarter: Option<String>,
}

impl FindingsLinks {
    /// Links to the first findings page of the summary's quarter and of its previous quarter (when it has one), by
    /// the file names `doudi findings page` writes ([`findings_page::file_name`]).
    pub fn beside(s: &QuarterlySummary) -> FindingsLinks {
        FindingsLinks {
            this_quarter: Some(findings_page::file_name(&s.quarter, 1)),
            previous_quarter: s.previous_quarter.as_deref().map(|q| findings_page::file_name(q, 1)),
        }
    }
}

/// The quarterly summary as one self-contained HTML page (as [`render_quarterly`] with [`Format::Html`]), with links
/// to the findings pages: sections 4 and 5 to `links.this_quarter`, section 11 to `links.previous_quarter`.
///
/// # Errors
/// As [`render_quarterly`].
pub fn render_quarterly_html(s: &QuarterlySummary, links: &FindingsLinks) -> anyhow::Result<Vec<u8>> {
    let charts = charts::quarterly(s)?;
    let mut section_links = Vec::new();
    if let Some(href) = &links.this_quarter {
        let text = format!("Finding by finding, each with its explanation 逐条问题及其计算说明: {href}",);
        for section in ["coverage", "medical"] {
            section_links.push(html::SectionLink { section, href: href.clone(), text: text.clone() });
        }
    }
    if let (Some(href), Some(previous)) = (&links.previous_quarter, &s.previous_quarter) {
        section_links.push(html::SectionLink {
            section: "findings_by_agency",
            href: href.clone(),
            text: format!(
                "{previous}'s findings one by one, with their answers and explanations 上季度问题逐条及答复、计算说明: \
                 {href}"
            ),
        });
    }
    Ok(html::render(&table::quarterly(s), &charts, &section_links).into_bytes())
}

/// Section `id` of the quarterly summary alone as Markdown (its `## n. …` heading, note and tables), e.g.
/// `findings_by_agency` for section 11; `None` when the summary has no such section.
pub fn render_quarterly_section_md(s: &QuarterlySummary, id: &str) -> Option<String> {
    let mut doc = table::quarterly(s);
    doc.sections.retain(|x| x.id == id);
    if doc.sections.is_empty() {
        return None;
    }
    Some(markdown::render_sections(&doc))
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
            Ok(html::render(&table::monthly(m), &charts, &[]).into_bytes())
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
    fn the_quarterly_page_links_to_the_findings_pages_only_when_asked() {
        let s = example::quarterly();
        let plain = String::from_utf8(render_quarterly(&s, Format::Html).unwrap()).unwrap();
        assert!(!plain.contains("findings-20"), "no link unless asked");
        let html = String::from_utf8(render_quarterly_html(&s, &FindingsLinks::beside(&s)).unwrap()).unwrap();
        // example::quarterly is 2023Q2 with a previous quarter 2023Q1: sections 4 and 5 link to 2023Q2's findings
        // pages, section 11 to 2023Q1's.
        let section = |id: &str| {
            let start = html.find(&format!("<section id=\"{id}\"")).unwrap_or_else(|| panic!("no section {id}"));
            &html[start..start + html[start..].find("</section>").unwrap()]
        };
        for id in ["coverage", "medical"] {
            assert!(section(id).contains("<p class=\"link\"><a href=\"findings-2023Q2.html\">"), "{id}");
        }
        assert!(section("findings_by_agency").contains("<a href=\"findings-2023Q1.html\">2023Q1&#39;s findings"));
        assert_eq!(html.matches("<p class=\"link\">").count(), 3);
        // Still no external reference: the links are relative file names.
        assert_eq!(html.matches("http").count(), html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count());
        let mut first = s.clone();
        first.previous_quarter = None;
        let links = FindingsLinks::beside(&first);
        assert_eq!(links.previous_quarter, None);
        assert_eq!(links.this_quarter.as_deref(), Some("findings-2023Q2.html"));
    }

    #[test]
    fn section_11_renders_alone_as_markdown() {
        let md = render_quarterly_section_md(&example::quarterly(), "findings_by_agency").unwrap();
        assert!(md.starts_with("## 11. Findings by agency 分部门整改情况\n"), "{md}");
        assert!(!md.contains("## 10."), "{md}");
        let mut none = example::quarterly();
        none.findings_by_agency.clear();
        none.medical_findings_by_agency.clear();
        assert_eq!(render_quarterly_section_md(&none, "findings_by_agency"), None);
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
