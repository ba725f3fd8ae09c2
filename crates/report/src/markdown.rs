//! Markdown: `# title`, a list of the report's dates, then `## n. English 中文` per section with its tables
//! (GitHub-flavoured pipe tables, numeric columns right-aligned).

use std::fmt::Write as _;

use super::table::{Cell, Document, Table};

/// Escapes what would break a pipe table or start inline markup: `|`, `\`, `*`, `` ` ``, `[`, `]`, a `<` that could
/// open an HTML tag (not the `<5` of a suppressed count: CommonMark tags start with a letter) and line breaks.
/// Underscores inside codes such as `RURAL_DIBAO` are left alone: intraword `_` is not emphasis in CommonMark.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '<' if chars.peek().is_some_and(char::is_ascii_digit) => out.push(ch),
            '|' | '\\' | '*' | '`' | '<' | '[' | ']' => {
                out.push('\\');
                out.push(ch);
            }
            '\n' | '\r' => out.push(' '),
            _ => out.push(ch),
        }
    }
    out
}

fn table(out: &mut String, t: &Table) {
    if let Some(caption) = t.caption {
        let _ = writeln!(out, "**{}**\n", escape(caption));
    }
    out.push('|');
    for c in &t.columns {
        let _ = write!(out, " {} |", escape(c.label));
    }
    out.push_str("\n|");
    for i in 0..t.columns.len() {
        out.push_str(if t.is_numeric_column(i) { " ---: |" } else { " --- |" });
    }
    out.push('\n');
    if t.rows.is_empty() {
        out.push('|');
        for i in 0..t.columns.len() {
            out.push_str(if i == 0 { " None 无 |" } else { " |" });
        }
        out.push('\n');
    }
    for row in &t.rows {
        out.push('|');
        for cell in row {
            let _ = write!(out, " {} |", escape(&cell.display()));
        }
        out.push('\n');
    }
    out.push('\n');
}

/// The whole document as Markdown.
pub(crate) fn render(doc: &Document) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", escape(&doc.title));
    for row in &doc.meta.rows {
        if let [Cell::Key { label, .. }, value] = row.as_slice() {
            let _ = writeln!(out, "- {}: {}", escape(label), escape(&value.display()));
        }
    }
    out.push('\n');
    out.push_str(&render_sections(doc));
    out
}

/// The document's sections alone (no title, no dates), each `## n. English 中文` with its note and tables, ending
/// with one newline.
pub(crate) fn render_sections(doc: &Document) -> String {
    let mut out = String::new();
    for s in &doc.sections {
        let _ = writeln!(out, "## {}\n", escape(&s.heading()));
        if let Some(note) = s.note {
            let _ = writeln!(out, "{}\n", escape(note));
        }
        for t in &s.tables {
            table(&mut out, t);
        }
    }
    // One trailing newline.
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::{Format, example, render_monthly, render_quarterly};

    #[test]
    fn quarterly_markdown_has_every_section_and_the_hand_calculated_figures() {
        let md = String::from_utf8(render_quarterly(&example::quarterly(), Format::Md).unwrap()).unwrap();
        assert!(md.starts_with("# Quarterly summary 季度调度汇总 2023Q2\n"));
        for heading in [
            "## 1. Headline 概况",
            "## 2. County × program 分县分项目",
            "## 3. Change on last quarter 季度变化",
            "## 4. Coverage findings 覆盖核查",
            "## 5. Medical three tiers 医疗三重保障",
            "## 6. Fund reports 资金发放月报告",
            "## 7. Early warnings 动态监测预警",
            "## 8. Late corrections 迟到更正",
            "## 9. Standards 保障标准",
            "## 10. Snapshot 快照",
        ] {
            assert!(md.contains(&format!("\n{heading}\n")), "missing {heading}");
        }
        // Headline: 1,204 + 987 + 143 + 118 = 2,452 persons; 451,290.00 + 372,105.50 + 101,530.00 + 83,780.00 yuan.
        assert!(md.contains("| Dibao + tekun persons 低保和特困人数 | 2,452 |"));
        assert!(md.contains("| Monthly benefits, dibao + tekun (yuan) 月保障金合计（元） | 1,008,705.50 |"));
        // The suppressed HIV_AFFECTED_CHILD cell of 环县.
        assert!(md.contains("| 621022 | 环县 | HIV_AFFECTED_CHILD | <5 | <5 | 0.00 |"));
        assert!(md.contains("| 621027 | 镇原县 | DIBAO | 987 | 436 | 372,105.50 |"));
        // Fund totals: 380,000.00 + 301,500.00 = 681,500.00 yuan for 1,010 + 820 = 1,830 recipients.
        assert!(md.contains("| 2023-04 | RURAL_DIBAO | 681,500.00 | 1,830 | 2 |"));
        // A missing report shows dashes; the standards' changes are signed.
        assert!(md.contains("| 2023-06 | 621027 | 镇原县 | RURAL_DIBAO | MISSING | — | — | 301,500.00 | — |"));
        assert!(md.contains("| URBAN_DIBAO_STANDARD | 城市低保标准 | 2022 | 680.00 | 2023 | 700.00 | +3% |"));
        assert!(md.contains("| Clearance rate 办结率 | 84% |"));
        // Numeric columns are right-aligned.
        assert!(md.contains("| --- | --- | --- | ---: | ---: | ---: |"));
    }

    #[test]
    fn monthly_markdown_has_its_four_sections() {
        let md = String::from_utf8(render_monthly(&example::monthly(), Format::Md).unwrap()).unwrap();
        assert!(md.starts_with("# Monthly report to the leading group 每月报告 2023-07\n"));
        assert!(md.contains("- Month 月份: 2023-07\n"));
        for heading in [
            "## 1. County × program 分县分项目",
            "## 2. Fund reports 资金发放月报告",
            "## 3. Early warnings 动态监测预警",
            "## 4. Medical findings 医疗核查问题",
        ] {
            assert!(md.contains(heading), "missing {heading}");
        }
        assert!(md.contains("| 2023-07 | 621027 | 镇原县 | TEKUN | MISSING | — | — | 83,780.00 | — |"));
        assert!(md.contains("| Clearance rate 办结率 | 69% |"));
    }
}
