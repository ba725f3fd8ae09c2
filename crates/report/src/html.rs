//! HTML: one self-contained page (inline CSS, inline SVG charts; no script, no external stylesheet, font, image or
//! link), so it opens the same offline, from a mail attachment or a USB stick. The one kind of link it may hold is
//! to the findings pages (`findings_page.rs`) by a relative file name, when asked ([`super::FindingsLinks`]): the
//! files that sit beside it.
//!
//! Layout: `<header>` with the `<h1>` title, the report's dates as a `<dl>` and a table of contents (in-page
//! links); `<main>` with one `<section>` per part of the summary: an `<h2>` "n. English 中文", an optional note,
//! the section's chart as a `<figure>` (`<svg role="img" aria-label=…>` and a `<figcaption>`), then its tables
//! (`<caption>` when a section has several, `<th scope>` headers, numbers right-aligned with tabular figures).

use std::fmt::Write as _;

use super::charts::Chart;
use super::table::{Cell, Document, Table};
use doudi_domain::summary::Count;

/// Escapes text for HTML content and double- or single-quoted attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

/// The page style, shared with the findings pages (`findings_page.rs`).
pub(crate) const CSS: &str = r#"
:root { color-scheme: light; --ink: #222; --muted: #595959; --rule: #d0d7de; --band: #f6f8fa; --accent: #0072b2; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1240px; padding: 24px; color: var(--ink); background: #fff; line-height: 1.5;
  font-family: system-ui, -apple-system, "Segoe UI", "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei",
  "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", sans-serif; }
h1 { font-size: 1.6rem; margin: 0 0 8px; }
h2 { font-size: 1.25rem; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--accent); }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; margin: 8px 0 16px; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; font-variant-numeric: tabular-nums; }
nav ol { columns: 2; margin: 0; padding-left: 20px; }
nav a { color: var(--accent); }
p.note { color: var(--muted); margin: 4px 0 12px; }
p.link { margin: 4px 0 12px; }
p.link a { color: var(--accent); }
div.table { overflow-x: auto; margin: 8px 0 20px; }
table { border-collapse: collapse; font-size: 0.92rem; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { border: 1px solid var(--rule); padding: 4px 10px; vertical-align: top; }
thead th { background: var(--band); text-align: left; }
tbody tr:nth-child(even) { background: #fbfcfd; }
tbody th { text-align: left; font-weight: normal; }
tbody td, tbody th { white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.suppressed { color: var(--muted); font-style: italic; }
td.missing { color: var(--muted); text-align: center; }
td.hash { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 0.85rem;
  white-space: normal; word-break: break-all; }
figure { margin: 12px 0 20px; }
figure svg { display: block; max-width: 100%; height: auto; border: 1px solid var(--rule); }
figure svg text { font-family: system-ui, "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif; }
figcaption { color: var(--muted); font-size: 0.9rem; margin-top: 6px; }
footer { margin-top: 40px; color: var(--muted); font-size: 0.85rem; border-top: 1px solid var(--rule); }
@media print { body { max-width: none; padding: 0; } nav { display: none; } section { break-inside: avoid-page; } }
"#;

fn cell(out: &mut String, c: &Cell, numeric_column: bool) {
    let text = escape(&c.display());
    let _ = match c {
        Cell::Count(Count::Suppressed) => {
            write!(out, "<td class=\"num suppressed\" title=\"fewer than 5, withheld 少于5人不予公布\">{text}</td>")
        }
        Cell::Missing => write!(out, "<td class=\"missing\">{text}</td>"),
        c if c.is_numeric() || numeric_column => write!(out, "<td class=\"num\">{text}</td>"),
        Cell::Text(s) if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
            write!(out, "<td class=\"hash\">{text}</td>")
        }
        _ => write!(out, "<td>{text}</td>"),
    };
}

fn table(out: &mut String, t: &Table, with_caption: bool) {
    out.push_str("<div class=\"table\">\n<table>\n");
    if let (true, Some(caption)) = (with_caption, t.caption) {
        let _ = writeln!(out, "<caption>{}</caption>", escape(caption));
    }
    let numeric: Vec<bool> = (0..t.columns.len()).map(|i| t.is_numeric_column(i)).collect();
    out.push_str("<thead><tr>");
    for (c, is_num) in t.columns.iter().zip(&numeric) {
        let class = if *is_num { " class=\"num\"" } else { "" };
        let _ = write!(out, "<th scope=\"col\"{class}>{}</th>", escape(c.label));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    if t.rows.is_empty() {
        let _ = writeln!(out, "<tr><td colspan=\"{}\" class=\"missing\">None 无</td></tr>", t.columns.len());
    }
    for row in &t.rows {
        out.push_str("<tr>");
        for (i, c) in row.iter().enumerate() {
            match c {
                // The indicator of a key-value row heads its row.
                Cell::Key { label, .. } => {
                    let _ = write!(out, "<th scope=\"row\">{}</th>", escape(label));
                }
                _ => cell(out, c, numeric.get(i).copied().unwrap_or(false)),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</div>\n");
}

/// A link shown under a section's heading (the quarterly page's links to the findings pages).
pub(crate) struct SectionLink {
    /// The section's id, e.g. `coverage`.
    pub section: &'static str,
    /// A relative file name, e.g. `findings-2023Q2.html` (never a URL with a scheme: the page stays self-contained).
    pub href: String,
    pub text: String,
}

/// The whole document as one HTML page; each chart goes into the section whose id it names, each link under its
/// section's heading.
pub(crate) fn render(doc: &Document, charts: &[Chart], links: &[SectionLink]) -> String {
    let mut out = String::new();
    let title = escape(&doc.title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{title}</title>\n\
         <style>{CSS}</style>\n</head>\n<body>\n<header>\n<h1>{title}</h1>\n<dl class=\"meta\">\n"
    );
    for row in &doc.meta.rows {
        if let [Cell::Key { label, .. }, value] = row.as_slice() {
            let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", escape(label), escape(&value.display()));
        }
    }
    out.push_str("</dl>\n<nav aria-label=\"Contents 目录\">\n<ol>\n");
    for s in &doc.sections {
        let _ = writeln!(out, "<li><a href=\"#{}\">{}</a></li>", s.id, escape(&format!("{} {}", s.en, s.zh)));
    }
    out.push_str("</ol>\n</nav>\n</header>\n<main>\n");
    for s in &doc.sections {
        let _ = write!(
            out,
            "<section id=\"{id}\" aria-labelledby=\"h-{id}\">\n<h2 id=\"h-{id}\">{}</h2>\n",
            escape(&s.heading()),
            id = s.id
        );
        if let Some(note) = s.note {
            let _ = writeln!(out, "<p class=\"note\">{}</p>", escape(note));
        }
        for l in links.iter().filter(|l| l.section == s.id) {
            let _ = writeln!(out, "<p class=\"link\"><a href=\"{}\">{}</a></p>", escape(&l.href), escape(&l.text));
        }
        for c in charts.iter().filter(|c| c.section == s.id) {
            let _ = writeln!(out, "<figure>\n{}<figcaption>{}</figcaption>\n</figure>", c.svg, escape(&c.caption));
        }
        let several = s.tables.len() > 1;
        for t in &s.tables {
            table(&mut out, t, several);
        }
        out.push_str("</section>\n");
    }
    out.push_str(
        "</main>\n<footer>\n<p>Aggregates only: no person-level data. 仅含汇总数据，不含个人信息。 \
         Money in yuan 金额单位：元。 Produced by doudi (兜底).</p>\n</footer>\n</body>\n</html>\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use crate::chromium::{find_chromium, run_chromium};
    use crate::{Format, example, render_monthly, render_quarterly};

    const HEADINGS: [&str; 10] = [
        "1. Headline 概况",
        "2. County × program 分县分项目",
        "3. Change on last quarter 季度变化",
        "4. Coverage findings 覆盖核查",
        "5. Medical three tiers 医疗三重保障",
        "6. Fund reports 资金发放月报告",
        "7. Early warnings 动态监测预警",
        "8. Late corrections 迟到更正",
        "9. Standards 保障标准",
        "10. Snapshot 快照",
    ];

    fn quarterly_html() -> String {
        String::from_utf8(render_quarterly(&example::quarterly(), Format::Html).unwrap()).unwrap()
    }

    #[test]
    fn the_page_is_self_contained() {
        let html = quarterly_html();
        for forbidden in ["<script", "<link", "<img", "<iframe", "<object", "src=", "url(", "@import", "@font-face"] {
            assert!(!html.contains(forbidden), "the page must not contain {forbidden}");
        }
        // The only URL-looking text is the SVG namespace name, which is never fetched.
        assert_eq!(html.matches("http").count(), html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count());
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">"));
    }

    #[test]
    fn the_page_has_every_section_three_accessible_charts_and_the_figures() {
        let html = quarterly_html();
        for h in HEADINGS {
            assert!(html.contains(&format!("\">{h}</h2>")), "missing {h}");
        }
        assert_eq!(html.matches("<figure>").count(), 3);
        assert_eq!(html.matches("<figcaption>").count(), 3);
        assert_eq!(html.matches("<svg role=\"img\" aria-label=\"").count(), 3);
        // Each chart sits in its section: figure 1 in section 2, figure 2 in section 3, figure 3 in section 5.
        let at = |s: &str| html.find(s).unwrap_or_else(|| panic!("missing {s}"));
        assert!(
            at("<h2 id=\"h-by_county_program\">") < at("Figure 1.") && at("Figure 1.") < at("<h2 id=\"h-change\">")
        );
        assert!(at("<h2 id=\"h-change\">") < at("Figure 2.") && at("Figure 2.") < at("<h2 id=\"h-coverage\">"));
        assert!(at("<h2 id=\"h-medical\">") < at("Figure 3.") && at("Figure 3.") < at("<h2 id=\"h-fund_reports\">"));
        // Hand-calculated figures (example::quarterly) in the tables; the suppressed cell is escaped.
        assert!(
            html.contains("<th scope=\"row\">Dibao + tekun persons 低保和特困人数</th><td class=\"num\">2,452</td>")
        );
        assert!(html.contains("<td class=\"num\">1,008,705.50</td>"));
        assert!(html.contains("<td>HIV_AFFECTED_CHILD</td><td class=\"num suppressed\""));
        assert!(html.contains(">&lt;5</td>"));
        assert!(html.contains("<caption>Totals by month and program 分月分项目合计</caption>"));
        assert!(html.contains("<td>2023-04</td><td>RURAL_DIBAO</td><td class=\"num\">681,500.00</td>"));
    }

    #[test]
    fn text_is_escaped() {
        let mut s = example::quarterly();
        s.by_county_program[0].county_name = "<b>&\"x\"</b>".into();
        let html = String::from_utf8(render_quarterly(&s, Format::Html).unwrap()).unwrap();
        assert!(!html.contains("<b>&"));
        assert!(html.contains("<td>&lt;b&gt;&amp;&quot;x&quot;&lt;/b&gt;</td>"));
    }

    #[test]
    fn the_monthly_page_has_the_county_chart() {
        let html = String::from_utf8(render_monthly(&example::monthly(), Format::Html).unwrap()).unwrap();
        assert_eq!(html.matches("<svg role=\"img\"").count(), 1);
        assert!(html.contains("<h1>Monthly report to the leading group 每月报告 2023-07</h1>"));
        assert!(html.contains(">4. Medical findings 医疗核查问题</h2>"));
    }

    /// Renders the example summary, loads it in headless Chromium and checks the DOM Chromium built from it: the
    /// ten section headings, three SVG charts with their roles and captions, and a screenshot that is a PNG.
    /// Chromium is installed by `.ci/install-chromium.sh`; without it the test says so and passes.
    #[test]
    fn headless_chromium_renders_the_headings_and_three_charts() {
        let Some(chromium) = find_chromium() else {
            println!("skipped: chromium not installed");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let page = dir.path().join("summary-2023Q2.html");
        std::fs::write(&page, quarterly_html()).unwrap();
        let url = format!("file://{}", page.display());
        let profile = dir.path().join("profile");

        let dom = run_chromium(&chromium, &profile, &["--dump-dom".to_owned(), url.clone()]);
        assert!(
            dom.contains("<h1>Quarterly summary 季度调度汇总 2023Q2</h1>"),
            "no title in: {}",
            &dom[..dom.len().min(500)]
        );
        for h in HEADINGS {
            assert!(dom.contains(&format!("\">{h}</h2>")), "rendered DOM lacks the heading {h}");
        }
        assert_eq!(dom.matches("<svg ").count(), 3, "three inline SVG charts");
        assert_eq!(dom.matches("role=\"img\"").count(), 3);
        assert_eq!(dom.matches("<figcaption>").count(), 3);
        assert!(dom.contains("aria-label=\"Bar chart: persons of DIBAO and TEKUN by county on 2023-06-30."));
        assert!(dom.contains("55.0% · 1,024,320.00"));
        assert!(dom.contains("<td class=\"num\">1,008,705.50</td>"));

        let shot = dir.path().join("summary.png");
        run_chromium(
            &chromium,
            &profile,
            &[format!("--screenshot={}", shot.display()), "--window-size=1200,2400".to_owned(), url],
        );
        let png = std::fs::read(&shot).expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "{} bytes", png.len());
    }
}
