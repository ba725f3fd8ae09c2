//! The findings page of a quarter (docs/findings.md "The findings page"): finding by finding, each row linked to its
//! explanation on the same page, in pages of a set size so that 14,000 findings stay usable in a browser.
//!
//! Each page is one self-contained HTML file (the quarterly page's inline CSS, no script, no external stylesheet,
//! font, image or link; the only links are to anchors of the page and to its sibling pages): a header with the
//! quarter, who read the findings and when, the filters, the counts by agency and answer over every page, and the
//! pager; the list (`id="list"`: one row per finding: number, finding id, person key shortened, code, agency to act,
//! county, answer, status, whether the explanation agrees); then one `<article id="f-…">` per finding with its
//! explanation as `ExplainFinding` returned it (inputs, parameters, steps, test, each line in Chinese and English
//! with its value, as `doudi findings explain` prints it), and a link back to the list.
//!
//! Pure: the caller (`cli::findings_page`, which reads the hub as an agency) gathers the rows and their explanations;
//! this module only lays them out. Person-level: the page carries person keys (pseudonyms, docs/spec/security.md),
//! never ID numbers or names.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

use super::explanation::{blocks, or_dash};
use super::html::{CSS, escape};
use super::table::group_thousands;
use doudi_domain::explain::Explanation;

/// Which kind of finding a row is (docs/findings.md "Which findings").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FindingKind {
    /// A row of the quarter's snapshot's coverage section (`coverage/<quarter>/<code>/<person key>`).
    Coverage,
    /// A medical finding of a settlement settled in the quarter (`medical/<agency>/<settlement_id>/<code>`).
    Medical,
}

impl FindingKind {
    /// "coverage 覆盖核查" / "medical 医疗救助".
    pub fn label(self) -> &'static str {
        match self {
            FindingKind::Coverage => "coverage 覆盖核查",
            FindingKind::Medical => "medical 医疗救助",
        }
    }
}

/// The latest answer to a finding as the list returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerView {
    /// `IN_PROGRESS`, `FIXED` or `DISPUTED`.
    pub state: String,
    /// 1, 2, 3, …
    pub version: i64,
    pub answered_at: Option<DateTime<Utc>>,
    /// DISPUTED's reason or the note ("" when none).
    pub reason: String,
    /// FIXED: the fix the hub checked, `agency/fact_id/source_version` or `settlement <id>`; "" otherwise.
    pub fixed_by: String,
}

/// One finding of the page.
#[derive(Debug, Clone)]
pub struct FindingRow {
    pub finding_id: String,
    pub kind: FindingKind,
    /// 64 lower-case hex digits.
    pub person_key: String,
    /// Rule or finding code, e.g. `UNINSURED`, `ASSISTANCE_MISSED`.
    pub code: String,
    pub agency_to_act: String,
    /// Coverage: the county of the person's status rows; medical: the settlement's division.
    pub division_code: String,
    /// Medical: `open`, or `resolved <date>` once a recheck stopped finding it; coverage: none (a snapshot row).
    pub status: Option<String>,
    /// The latest answer; `None` while unanswered.
    pub answer: Option<AnswerView>,
    /// The explanation, or why the hub could not give it (the status message).
    pub explanation: Result<Explanation, String>,
}

/// Everything a set of findings pages shows.
#[derive(Debug, Clone)]
pub struct FindingsReport {
    /// YYYYQn.
    pub quarter: String,
    /// When the findings were read.
    pub generated_at: DateTime<Utc>,
    /// Who read them (the agency's certificate name, e.g. `civil_affairs` or `medical_insurance-621022`).
    pub read_by: String,
    /// The filters applied, as (label, value), e.g. ("Agency to act 责任部门", "medical_insurance").
    pub filters: Vec<(String, String)>,
    /// Sentences shown under the header, e.g. why a kind of finding is absent, or that a limit cut the list.
    pub notes: Vec<String>,
    /// In order of the list: coverage findings by (code, person key), then medical findings by (settled on,
    /// settlement id, code).
    pub rows: Vec<FindingRow>,
}

/// The file name of page `page` (1-based) of a quarter's findings: `findings-2023Q2.html`, then
/// `findings-2023Q2-p2.html`, … The quarterly page links to the first.
pub fn file_name(quarter: &str, page: usize) -> String {
    if page <= 1 { format!("findings-{quarter}.html") } else { format!("findings-{quarter}-p{page}.html") }
}

/// The anchor of a finding's explanation: `f-` and the first 16 hex digits of SHA-256 of its id (stable across
/// pages and runs, and free of the `/` and other characters a settlement id may hold).
pub fn anchor(finding_id: &str) -> String {
    format!("f-{}", &hex::encode(Sha256::digest(finding_id.as_bytes()))[..16])
}

/// Escaped text with a line-break opportunity (`<wbr>`) after each `/` and `_`, so that long ids and codes wrap
/// at their parts in a narrow column.
fn breakable(s: &str) -> String {
    escape(s).replace('/', "/<wbr>").replace('_', "_<wbr>")
}

/// The person key as shown in the list: its first 12 hex digits and `…` (the full key is in the explanation).
fn short_key(key: &str) -> String {
    if key.len() > 12 { format!("{}…", &key[..12]) } else { key.to_owned() }
}

/// The finding id as shown in the list: a coverage id with its person key shortened.
fn short_id(row: &FindingRow) -> String {
    match row.kind {
        FindingKind::Coverage => match row.finding_id.rsplit_once('/') {
            Some((head, key)) => format!("{head}/{}", short_key(key)),
            None => row.finding_id.clone(),
        },
        FindingKind::Medical => row.finding_id.clone(),
    }
}

fn answer_state(a: Option<&AnswerView>) -> &'static str {
    match a.map(|a| a.state.as_str()) {
        None => "UNANSWERED",
        Some("IN_PROGRESS") => "IN_PROGRESS",
        Some("FIXED") => "FIXED",
        Some("DISPUTED") => "DISPUTED",
        Some(_) => "OTHER",
    }
}

fn answer_label(state: &str) -> &'static str {
    match state {
        "UNANSWERED" => "unanswered 未答复",
        "IN_PROGRESS" => "in progress 整改中",
        "FIXED" => "fixed 已整改",
        "DISPUTED" => "disputed 有异议",
        _ => "other 其他",
    }
}

const EXTRA_CSS: &str = r#"
nav.pager { margin: 12px 0; }
nav.pager a, nav.pager span { margin-right: 8px; }
nav.pager span.here { font-weight: 600; }
td.id, td.key { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 0.85rem; }
#list tbody td { white-space: normal; }
#list td.id { overflow-wrap: anywhere; min-width: 12em; max-width: 20em; }

td.state-FIXED { color: #1a7f37; } td.state-DISPUTED { color: #9a6700; } td.state-UNANSWERED { color: var(--muted); }
td.no { color: #cf222e; font-weight: 600; }
article.explanation { border-top: 2px solid var(--accent); margin: 28px 0 8px; padding-top: 4px; }
article.explanation h3 { font-size: 1.05rem; margin: 4px 0 8px; word-break: break-all; }
article.explanation h4 { font-size: 0.95rem; margin: 12px 0 4px; }
article.explanation td.text { white-space: normal; min-width: 16em; }
article.explanation p.error { color: #cf222e; }
p.back { font-size: 0.85rem; }
"#;

/// Renders the report as pages of `page_size` findings (at least one page; `page_size` 0 counts as 1): each
/// (file name, HTML).
pub fn render(r: &FindingsReport, page_size: usize) -> Vec<(String, String)> {
    let size = page_size.max(1);
    let pages = r.rows.len().div_ceil(size).max(1);
    (1..=pages)
        .map(|p| {
            let start = (p - 1) * size;
            let end = (start + size).min(r.rows.len());
            (file_name(&r.quarter, p), page(r, p, pages, start, &r.rows[start..end]))
        })
        .collect()
}

fn pager(out: &mut String, quarter: &str, page: usize, pages: usize) {
    if pages <= 1 {
        return;
    }
    out.push_str("<nav class=\"pager\" aria-label=\"Pages 分页\">");
    if page > 1 {
        let _ = write!(out, "<a href=\"{}\" rel=\"prev\">« previous 上一页</a>", file_name(quarter, page - 1));
    }
    for p in 1..=pages {
        if p == page {
            let _ = write!(out, "<span class=\"here\" aria-current=\"page\">{p}</span>");
        } else {
            let _ = write!(out, "<a href=\"{}\">{p}</a>", file_name(quarter, p));
        }
    }
    if page < pages {
        let _ = write!(out, "<a href=\"{}\" rel=\"next\">next 下一页 »</a>", file_name(quarter, page + 1));
    }
    out.push_str("</nav>\n");
}

/// Counts over every page: (kind, agency to act) → findings and the count per answer state.
fn counts_table(out: &mut String, rows: &[FindingRow]) {
    const STATES: [&str; 4] = ["UNANSWERED", "IN_PROGRESS", "FIXED", "DISPUTED"];
    let mut by: BTreeMap<(FindingKind, &str), [u64; 5]> = BTreeMap::new();
    for row in rows {
        let c = by.entry((row.kind, row.agency_to_act.as_str())).or_default();
        c[0] += 1;
        if let Some(i) = STATES.iter().position(|s| *s == answer_state(row.answer.as_ref())) {
            c[i + 1] += 1;
        }
    }
    out.push_str(
        "<div class=\"table\">\n<table>\n<caption>Findings by agency and answer, every page 分部门、分答复状态（全部页）\
         </caption>\n<thead><tr><th scope=\"col\">Kind 类别</th><th scope=\"col\">Agency to act 责任部门</th>\
         <th scope=\"col\" class=\"num\">Findings 问题数</th>",
    );
    for s in STATES {
        let _ = write!(out, "<th scope=\"col\" class=\"num\">{}</th>", answer_label(s));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    if by.is_empty() {
        out.push_str("<tr><td colspan=\"7\" class=\"missing\">None 无</td></tr>\n");
    }
    for ((kind, agency), c) in &by {
        let _ = write!(out, "<tr><td>{}</td><td>{}</td>", kind.label(), escape(agency));
        for n in c {
            let _ = write!(out, "<td class=\"num\">{}</td>", group_thousands(&n.to_string()));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</div>\n");
}

fn list(out: &mut String, rows: &[FindingRow], first: usize) {
    out.push_str(
        "<div class=\"table\">\n<table id=\"list\">\n<caption>Findings 问题清单 (each links to its explanation \
         每条链接至其计算说明)</caption>\n<thead><tr><th scope=\"col\" class=\"num\">#</th>\
         <th scope=\"col\">Finding 问题编号</th><th scope=\"col\">Person key 人员密钥</th>\
         <th scope=\"col\">Code 问题代码</th><th scope=\"col\">Agency to act 责任部门</th>\
         <th scope=\"col\">County 区划</th><th scope=\"col\">Answer 答复</th><th scope=\"col\">Status 状态</th>\
         <th scope=\"col\">Explanation agrees 说明与存储一致</th></tr></thead>\n<tbody>\n",
    );
    if rows.is_empty() {
        out.push_str("<tr><td colspan=\"9\" class=\"missing\">None 无</td></tr>\n");
    }
    for (i, row) in rows.iter().enumerate() {
        let state = answer_state(row.answer.as_ref());
        let answer = match &row.answer {
            None => answer_label(state).to_owned(),
            Some(a) => format!(
                "{} v{}{}",
                answer_label(state),
                a.version,
                a.answered_at.map(|t| format!(" {}", t.format("%Y-%m-%d"))).unwrap_or_default()
            ),
        };
        let agrees = match &row.explanation {
            Ok(e) if e.matches_stored => "<td>yes 是</td>",
            Ok(_) => "<td class=\"no\">no 否</td>",
            Err(_) => "<td class=\"no\">not explained 无法说明</td>",
        };
        let _ = writeln!(
            out,
            "<tr><td class=\"num\">{n}</td><td class=\"id\"><a href=\"#{anchor}\" title=\"{id}\">{short}</a></td>\
             <td class=\"key\" title=\"{key}\">{short_key}</td><td class=\"code\">{code}</td><td>{agency}</td><td>{division}</td>\
             <td class=\"state-{state}\">{answer}</td><td>{status}</td>{agrees}</tr>",
            n = first + i + 1,
            anchor = anchor(&row.finding_id),
            id = escape(&row.finding_id),
            short = breakable(&short_id(row)),
            key = escape(&row.person_key),
            short_key = escape(&short_key(&row.person_key)),
            code = breakable(&row.code),
            agency = breakable(&row.agency_to_act),
            division = escape(&row.division_code),
            answer = escape(&answer),
            status = escape(row.status.as_deref().unwrap_or("—")),
        );
    }
    out.push_str("</tbody>\n</table>\n</div>\n");
}

fn explanation(out: &mut String, row: &FindingRow, n: usize) {
    let _ = write!(
        out,
        "<article class=\"explanation\" id=\"{}\">\n<h3>{n}. {}</h3>\n<dl class=\"meta\">\n",
        anchor(&row.finding_id),
        escape(&row.finding_id)
    );
    let mut meta = |dt: &str, dd: &str| {
        let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", escape(dt), escape(dd));
    };
    meta("Kind 类别", row.kind.label());
    meta("Code 问题代码", &row.code);
    meta("Agency to act 责任部门", &row.agency_to_act);
    meta("Person key 人员密钥", &row.person_key);
    meta("County 区划", &row.division_code);
    if let Some(s) = &row.status {
        meta("Status 状态", s);
    }
    match &row.answer {
        None => meta("Answer 答复", answer_label("UNANSWERED")),
        Some(a) => {
            let at = a.answered_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)).unwrap_or_default();
            meta("Answer 答复", &format!("{} (version {}, {at})", answer_label(&a.state), a.version));
            if !a.fixed_by.is_empty() {
                meta("Fixed by 整改依据", &a.fixed_by);
            }
            if !a.reason.is_empty() {
                meta("Reason or note 理由或说明", &a.reason);
            }
        }
    }
    out.push_str("</dl>\n");
    match &row.explanation {
        Err(why) => {
            let _ = writeln!(
                out,
                "<p class=\"error\">The hub could not explain this finding 中心无法说明此问题: {}</p>",
                escape(why)
            );
        }
        Ok(e) => {
            for (title, lines) in blocks(e) {
                let _ = write!(
                    out,
                    "<h4>{}</h4>\n<div class=\"table\">\n<table>\n<thead><tr><th scope=\"col\">Name 名称</th>\
                     <th scope=\"col\">Value 数值</th><th scope=\"col\">中文</th><th scope=\"col\">English</th>\
                     </tr></thead>\n<tbody>\n",
                    escape(title)
                );
                for l in lines {
                    let value_class = if l.value.len() == 64 && l.value.bytes().all(|b| b.is_ascii_hexdigit()) {
                        "hash"
                    } else {
                        "num"
                    };
                    let _ = writeln!(
                        out,
                        "<tr><th scope=\"row\">{}</th><td class=\"{value_class}\">{}</td><td class=\"text\">{}</td>\
                         <td class=\"text\">{}</td></tr>",
                        escape(&l.name),
                        escape(&l.value),
                        escape(&l.zh),
                        escape(&l.en)
                    );
                }
                out.push_str("</tbody>\n</table>\n</div>\n");
            }
            let _ = writeln!(
                out,
                "<p>重算 Recomputed: expected 应付 {} / actual 实付 {}; 存储 stored: {} / {}<br>\
                 与存储一致 Agrees with the stored finding: {}</p>",
                escape(or_dash(&e.recomputed_expected)),
                escape(or_dash(&e.recomputed_actual)),
                escape(or_dash(&e.stored_expected)),
                escape(or_dash(&e.stored_actual)),
                if e.matches_stored { "是 yes" } else { "否 no" }
            );
        }
    }
    out.push_str("<p class=\"back\"><a href=\"#list\">↑ Back to the list 返回列表</a></p>\n</article>\n");
}

fn page(r: &FindingsReport, page: usize, pages: usize, start: usize, rows: &[FindingRow]) -> String {
    let mut out = String::new();
    let title = escape(&format!("Findings 问题清单 {}", r.quarter));
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{title} ({page}/{pages})\
         </title>\n<style>{CSS}{EXTRA_CSS}</style>\n</head>\n<body>\n<header>\n<h1>{title}</h1>\n<dl class=\"meta\">\n"
    );
    let mut meta = |dt: &str, dd: &str| {
        let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", escape(dt), escape(dd));
    };
    meta("Quarter 季度", &r.quarter);
    meta("Read at (UTC) 读取时间", &r.generated_at.to_rfc3339_opts(SecondsFormat::Secs, true));
    meta("Read by 读取部门", &r.read_by);
    for (label, value) in &r.filters {
        meta(label, value);
    }
    let shown = if rows.is_empty() {
        format!("none of {}", r.rows.len())
    } else {
        format!(
            "{}–{} of {}",
            group_thousands(&(start + 1).to_string()),
            group_thousands(&(start + rows.len()).to_string()),
            group_thousands(&r.rows.len().to_string())
        )
    };
    meta("Findings on this page 本页问题", &shown);
    meta("Page 页", &format!("{page} of {pages}"));
    out.push_str("</dl>\n");
    for n in &r.notes {
        let _ = writeln!(out, "<p class=\"note\">{}</p>", escape(n));
    }
    out.push_str(
        "<p class=\"note\">Answers as the hub held them when read; each explanation is recomputed by the hub from \
         stored data only (ExplainFinding). 答复为读取时的状态；计算说明由中心仅依据存储数据重算。</p>\n",
    );
    counts_table(&mut out, &r.rows);
    pager(&mut out, &r.quarter, page, pages);
    out.push_str("</header>\n<main>\n");
    list(&mut out, rows, start);
    out.push_str("<section aria-label=\"Explanations 计算说明\">\n<h2>Explanations 计算说明</h2>\n");
    for (i, row) in rows.iter().enumerate() {
        explanation(&mut out, row, start + i + 1);
    }
    out.push_str("</section>\n");
    pager(&mut out, &r.quarter, page, pages);
    out.push_str(
        "</main>\n<footer>\n<p>Person-level: person keys (pseudonyms), no ID numbers or names. 含个人层面数据：\
         仅人员密钥（化名），不含身份证号或姓名。 Amounts in yuan 金额单位：元。 Produced by doudi (兜底).</p>\n\
         </footer>\n</body>\n</html>\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;
    use doudi_domain::explain::Line;

    fn line(name: &str, en: &str, zh: &str, value: &str) -> Line {
        Line { name: name.into(), en: en.into(), zh: zh.into(), value: value.into() }
    }

    fn explanation(id: &str, code: &str, agency: &str, expected_ma: &str) -> Explanation {
        Explanation {
            finding_id: id.into(),
            code: code.into(),
            agency_to_act: agency.into(),
            inputs: vec![line(
                "fact_version",
                "fact version civil_affairs/AS-1/1",
                "事实版本 civil_affairs/AS-1/1",
                &"ab".repeat(32),
            )],
            parameters: vec![line("tolerance", "tolerance", "容差", "1.00")],
            steps: vec![line(
                "expected_ma",
                &format!("assistance owed = {expected_ma}"),
                &format!("医疗救助应付 = {expected_ma}"),
                expected_ma,
            )],
            test: line("test", "owed > tolerance & nothing paid", "应付 > 容差，且未支付", "raised"),
            recomputed_expected: Some(expected_ma.into()),
            recomputed_actual: Some("0.00".into()),
            stored_expected: Some(expected_ma.into()),
            stored_actual: Some("0.00".into()),
            raised: true,
            matches_stored: true,
        }
    }

    fn key(n: u8) -> String {
        format!("{n:02x}").repeat(32)
    }

    /// Five findings: two coverage (one FIXED), three medical (one DISPUTED with markup in its reason, one the hub
    /// would not explain, one whose settlement id holds `/` and `&`).
    fn report() -> FindingsReport {
        let coverage = |n: u8, code: &str, agency: &str, answer: Option<AnswerView>| {
            let id = format!("coverage/2023Q2/{code}/{}", key(n));
            FindingRow {
                explanation: Ok(explanation(&id, code, agency, "0.00")),
                finding_id: id,
                kind: FindingKind::Coverage,
                person_key: key(n),
                code: code.into(),
                agency_to_act: agency.into(),
                division_code: "621022".into(),
                status: None,
                answer,
            }
        };
        let medical = |n: u8, settlement: &str, code: &str, answer: Option<AnswerView>| {
            let id = format!("medical/medical_insurance/{settlement}/{code}");
            FindingRow {
                explanation: Ok(explanation(&id, code, "medical_insurance", &format!("{n}300.00"))),
                finding_id: id,
                kind: FindingKind::Medical,
                person_key: key(n),
                code: code.into(),
                agency_to_act: "medical_insurance".into(),
                division_code: "621022100200".into(),
                status: Some("open 未消除".into()),
                answer,
            }
        };
        let at = Utc.with_ymd_and_hms(2023, 7, 12, 2, 0, 0).unwrap();
        let fixed = AnswerView {
            state: "FIXED".into(),
            version: 2,
            answered_at: Some(at),
            reason: String::new(),
            fixed_by: "medical_insurance/MI-1/1".into(),
        };
        let disputed = AnswerView {
            state: "DISPUTED".into(),
            version: 1,
            answered_at: Some(at),
            reason: "<script>alert(1)</script> re-sent".into(),
            fixed_by: String::new(),
        };
        let mut unexplained = medical(3, "S-3", "NOT_INSURED", None);
        unexplained.explanation = Err("FailedPrecondition: no policy version in force".into());
        FindingsReport {
            quarter: "2023Q2".into(),
            generated_at: at,
            read_by: "civil_affairs".into(),
            filters: vec![("Division 区划".into(), "621022".into())],
            notes: vec!["a note <b>".into()],
            rows: vec![
                coverage(1, "UNINSURED", "medical_insurance", Some(fixed)),
                coverage(2, "STUDENT_AID_MISSING", "education", None),
                medical(4, "B-621022", "ASSISTANCE_MISSED", Some(disputed)),
                unexplained,
                medical(5, "H/2023&1", "UNDER_ASSISTED", None),
            ],
        }
    }

    /// The `#f-…` hrefs of the list's rows, in order.
    fn row_links(html: &str) -> Vec<String> {
        let list = &html[html.find("<table id=\"list\">").unwrap()..];
        let list = &list[..list.find("</table>").unwrap()];
        list.split("<a href=\"#").skip(1).map(|s| s[..s.find('"').unwrap()].to_owned()).collect()
    }

    /// The article with id `anchor`, or panics.
    fn article<'a>(html: &'a str, anchor: &str) -> &'a str {
        let start = html
            .find(&format!("<article class=\"explanation\" id=\"{anchor}\">"))
            .unwrap_or_else(|| panic!("no article {anchor}"));
        let rest = &html[start..];
        &rest[..rest.find("</article>").unwrap()]
    }

    #[test]
    fn every_row_links_to_its_explanation_on_the_same_page() {
        let r = report();
        let pages = render(&r, 2);
        // 5 findings, 2 a page: 3 pages.
        let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["findings-2023Q2.html", "findings-2023Q2-p2.html", "findings-2023Q2-p3.html"]);
        let mut seen = Vec::new();
        for (_, html) in &pages {
            for a in row_links(html) {
                let row = r.rows.iter().find(|row| anchor(&row.finding_id) == a).expect("a link names a finding");
                let art = article(html, &a);
                assert!(art.contains(&format!(". {}</h3>", escape(&row.finding_id))), "{art}");
                match &row.explanation {
                    Ok(e) => {
                        for l in e.inputs.iter().chain(&e.parameters).chain(&e.steps).chain([&e.test]) {
                            let class = if l.value.len() == 64 { "hash" } else { "num" };
                            assert!(
                                art.contains(&format!(
                                    "<tr><th scope=\"row\">{}</th><td class=\"{class}\">{}</td><td class=\"text\">{}\
                                     </td><td class=\"text\">{}</td></tr>",
                                    escape(&l.name),
                                    escape(&l.value),
                                    escape(&l.zh),
                                    escape(&l.en)
                                )),
                                "{} lacks {l:?}",
                                row.finding_id
                            );
                        }
                    }
                    Err(why) => assert!(art.contains(&escape(why)), "{art}"),
                }
                seen.push(row.finding_id.clone());
            }
        }
        let all: Vec<String> = r.rows.iter().map(|row| row.finding_id.clone()).collect();
        assert_eq!(seen, all, "each finding once, in order, over the pages");
        // The worked amount of the fixture's ASSISTANCE_MISSED row (n = 4: "4300.00") and its test.
        let b = article(&pages[1].1, &anchor("medical/medical_insurance/B-621022/ASSISTANCE_MISSED"));
        assert!(b.contains("<th scope=\"row\">expected_ma</th><td class=\"num\">4300.00</td>"), "{b}");
        assert!(b.contains("重算 Recomputed: expected 应付 4300.00 / actual 实付 0.00; 存储 stored: 4300.00 / 0.00"));
        assert!(b.contains("<a href=\"#list\">"), "a way back to the list");
    }

    #[test]
    fn the_pages_link_each_other_and_nothing_outside() {
        let pages = render(&report(), 2);
        let names: Vec<String> = pages.iter().map(|(n, _)| n.clone()).collect();
        for (name, html) in &pages {
            for forbidden in ["<script", "<link", "<img", "<iframe", "src=", "url(", "@import", "http"] {
                assert!(!html.contains(forbidden), "{name} contains {forbidden}");
            }
            for href in html.split("href=\"").skip(1).map(|s| &s[..s.find('"').unwrap()]) {
                if let Some(a) = href.strip_prefix('#') {
                    assert!(html.contains(&format!("id=\"{a}\"")), "{name}: #{a} resolves on the page");
                } else {
                    assert!(names.iter().any(|n| n == href), "{name}: {href} is a page of the set");
                }
            }
        }
        // Page 2 of 3 links back and forth.
        let p2 = &pages[1].1;
        assert!(p2.contains("<a href=\"findings-2023Q2.html\" rel=\"prev\">"));
        assert!(p2.contains("<a href=\"findings-2023Q2-p3.html\" rel=\"next\">"));
        assert!(p2.contains("<span class=\"here\" aria-current=\"page\">2</span>"));
        assert!(p2.contains("<dt>Findings on this page 本页问题</dt><dd>3–4 of 5</dd>"));
    }

    #[test]
    fn rows_show_the_short_key_the_answer_and_whether_the_explanation_agrees() {
        let r = report();
        let html = &render(&r, 10)[0].1;
        let row = |n: usize| {
            let i = html.find(&format!("<tr><td class=\"num\">{n}</td>")).unwrap();
            &html[i..i + html[i..].find("</tr>").unwrap()]
        };
        // Row 1: coverage, the person key shortened to 12 hex digits in the id and the key column, FIXED v2.
        let r1 = row(1);
        assert!(r1.contains(">coverage/<wbr>2023Q2/<wbr>UNINSURED/<wbr>010101010101…</a>"), "{r1}");
        assert!(r1.contains(&format!("<td class=\"key\" title=\"{}\">010101010101…</td>", key(1))), "{r1}");
        assert!(r1.contains("<td class=\"state-FIXED\">fixed 已整改 v2 2023-07-12</td>"), "{r1}");
        assert!(r1.contains("<td>yes 是</td>"), "{r1}");
        assert!(row(2).contains("<td class=\"state-UNANSWERED\">unanswered 未答复</td>"));
        assert!(row(4).contains("<td class=\"no\">not explained 无法说明</td>"));
        // The counts over every page, by hand: coverage education 1 (unanswered), coverage medical_insurance 1
        // (fixed), medical medical_insurance 3 (2 unanswered, 1 disputed).
        assert!(html.contains(
            "<tr><td>coverage 覆盖核查</td><td>education</td><td class=\"num\">1</td><td class=\"num\">1</td>\
             <td class=\"num\">0</td><td class=\"num\">0</td><td class=\"num\">0</td></tr>"
        ));
        assert!(html.contains(
            "<tr><td>medical 医疗救助</td><td>medical_insurance</td><td class=\"num\">3</td><td class=\"num\">2</td>\
             <td class=\"num\">0</td><td class=\"num\">0</td><td class=\"num\">1</td></tr>"
        ));
    }

    #[test]
    fn text_is_escaped() {
        let html: String = render(&report(), 10).into_iter().map(|(_, h)| h).collect();
        assert!(!html.contains("<script>") && !html.contains("<b>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; re-sent"));
        assert!(html.contains("<p class=\"note\">a note &lt;b&gt;</p>"));
        assert!(html.contains("<h3>5. medical/medical_insurance/H/2023&amp;1/UNDER_ASSISTED</h3>"));
        assert!(
            html.contains(">medical/<wbr>medical_<wbr>insurance/<wbr>H/<wbr>2023&amp;1/<wbr>UNDER_<wbr>ASSISTED</a>")
        );
    }

    #[test]
    fn an_empty_report_is_one_page_saying_none() {
        let mut r = report();
        r.rows.clear();
        let pages = render(&r, 0);
        assert_eq!(pages.len(), 1);
        assert_eq!(pages[0].0, "findings-2023Q2.html");
        assert!(pages[0].1.contains("<tr><td colspan=\"9\" class=\"missing\">None 无</td></tr>"));
        assert!(pages[0].1.contains("<dd>none of 0</dd>"));
    }

    #[test]
    fn anchors_are_stable_and_safe() {
        let a = anchor("medical/medical_insurance/H/2023&1/UNDER_ASSISTED");
        assert_eq!(a, anchor("medical/medical_insurance/H/2023&1/UNDER_ASSISTED"));
        assert_ne!(a, anchor("medical/medical_insurance/H/2023&1/OVER_ASSISTED"));
        assert_eq!(a.len(), 18);
        assert!(a.starts_with("f-") && a[2..].bytes().all(|b| b.is_ascii_hexdigit()));
        // SHA-256("abc") starts ba7816bf8f01cfea (FIPS 180-2, appendix B.1).
        assert_eq!(anchor("abc"), "f-ba7816bf8f01cfea");
    }

    /// Page 1 of the fixture in headless Chromium: the DOM it builds has the rows and, for each row's link, the
    /// element it points to. Without Chromium (`.ci/install-chromium.sh`) the test says so and passes.
    #[test]
    fn headless_chromium_finds_every_rows_explanation() {
        let Some(chromium) = crate::chromium::find_chromium() else {
            println!("skipped: chromium not installed");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let pages = render(&report(), 3);
        for (name, html) in &pages {
            std::fs::write(dir.path().join(name), html).unwrap();
        }
        let url = format!("file://{}", dir.path().join(&pages[0].0).display());
        let dom =
            crate::chromium::run_chromium(&chromium, &dir.path().join("profile"), &["--dump-dom".to_owned(), url]);
        assert!(dom.contains("<h1>Findings 问题清单 2023Q2</h1>"), "{}", &dom[..dom.len().min(400)]);
        let links = row_links(&dom);
        assert_eq!(links.len(), 3, "three rows on page 1");
        for a in &links {
            assert!(dom.contains(&format!("<article class=\"explanation\" id=\"{a}\">")), "#{a} in the DOM");
        }
        assert!(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "the reason stays text");
    }
}
