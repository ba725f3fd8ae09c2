//! The table model shared by the Markdown, CSV, XLSX and HTML renderers: a document is a title, a key-value table of
//! the report's dates and one section per part of docs/spec/coordination.md, each section one or more tables of typed
//! cells.

use std::collections::BTreeMap;

use chrono::SecondsFormat;

use doudi_domain::money::Money;
use doudi_domain::summary::{CodeCount, Count};
use doudi_domain::summary::{CountyProgramRow, FundReportSection, MonthlyReport, QuarterlySummary, WarningSection};

mod campaigns;

/// A rendered document before formatting.
pub(crate) struct Document {
    /// "Quarterly summary 季度调度汇总 2023Q2".
    pub title: String,
    /// The `report` key-value table: period, dates, cutoff.
    pub meta: Table,
    pub sections: Vec<Section>,
}

/// One numbered section ("## 1. Headline 概况").
pub(crate) struct Section {
    pub number: u8,
    /// Stable id: the HTML anchor and the key charts are attached to, e.g. `by_county_program`.
    pub id: &'static str,
    pub en: &'static str,
    pub zh: &'static str,
    /// A sentence shown under the heading in Markdown and HTML.
    pub note: Option<&'static str>,
    pub tables: Vec<Table>,
}

impl Section {
    /// "1. Headline 概况".
    pub fn heading(&self) -> String {
        format!("{}. {} {}", self.number, self.en, self.zh)
    }

    /// The XLSX sheet name, "1 Headline 概况" (at most 31 characters, none of `[]:*?/\`).
    pub fn sheet_name(&self) -> String {
        format!("{} {} {}", self.number, self.en, self.zh)
    }
}

/// One table. `key` is the CSV `section` value of its rows.
pub(crate) struct Table {
    pub key: &'static str,
    /// Shown above the table when a section has several ("Findings by code 按问题代码").
    pub caption: Option<&'static str>,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// Whether column `i` holds numbers (right-aligned): every non-missing cell in it is numeric, and one exists.
    pub fn is_numeric_column(&self, i: usize) -> bool {
        let mut any = false;
        for row in &self.rows {
            match row.get(i) {
                Some(Cell::Missing) | None => {}
                Some(c) if c.is_numeric() => any = true,
                Some(_) => return false,
            }
        }
        any
    }
}

/// A column: `field` is the CSV header (the JSON field name), `label` the bilingual heading.
#[derive(Clone, Copy)]
pub(crate) struct Column {
    pub field: &'static str,
    pub label: &'static str,
}

const fn col(field: &'static str, label: &'static str) -> Column {
    Column { field, label }
}

/// One typed cell.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Text(String),
    /// The indicator of a key-value row: CSV writes `field`, the others `label`.
    Key {
        field: &'static str,
        label: &'static str,
    },
    /// A count, possibly suppressed ("<5").
    Count(Count),
    /// A calendar year (a number, shown without a thousands separator).
    Year(i32),
    /// Yuan.
    Money(Money),
    /// Whole percent, e.g. a clearance rate of 84%.
    Percent(i64),
    /// A signed change in whole percent, e.g. +3%.
    Change(i64),
    /// No value (`None` in the summary).
    Missing,
}

/// The text shown for a suppressed count (docs/spec/coordination.md, docs/spec/security.md: HIV_AFFECTED_CHILD counts
/// under 5).
pub(crate) const SUPPRESSED: &str = "<5";

impl Cell {
    pub fn int(v: u64) -> Cell {
        Cell::Count(Count::Value(v))
    }

    fn text(s: &str) -> Cell {
        Cell::Text(s.to_owned())
    }

    fn opt_money(m: Option<Money>) -> Cell {
        m.map_or(Cell::Missing, Cell::Money)
    }

    fn opt_count(c: Option<Count>) -> Cell {
        c.map_or(Cell::Missing, Cell::Count)
    }

    /// Whether the cell is a number (or a suppressed count, which stands for one).
    pub fn is_numeric(&self) -> bool {
        matches!(self, Cell::Count(_) | Cell::Year(_) | Cell::Money(_) | Cell::Percent(_) | Cell::Change(_))
    }

    /// For readers (Markdown, HTML): thousands separators, `%`, `<5`, `—` for a missing value.
    pub fn display(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Key { label, .. } => (*label).to_owned(),
            Cell::Count(Count::Value(v)) => group_thousands(&v.to_string()),
            Cell::Count(Count::Suppressed) => SUPPRESSED.to_owned(),
            Cell::Year(y) => y.to_string(),
            Cell::Money(m) => yuan(*m),
            Cell::Percent(p) => format!("{p}%"),
            Cell::Change(p) => format!("{p:+}%"),
            Cell::Missing => "—".to_owned(),
        }
    }

    /// For machines (CSV): plain numbers (`1008705.50`, `2452`, `3`), `<5`, empty for a missing value.
    pub fn plain(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Key { field, .. } => (*field).to_owned(),
            Cell::Count(Count::Value(v)) => v.to_string(),
            Cell::Count(Count::Suppressed) => SUPPRESSED.to_owned(),
            Cell::Year(y) => y.to_string(),
            Cell::Money(m) => m.to_string(),
            Cell::Percent(p) | Cell::Change(p) => p.to_string(),
            Cell::Missing => String::new(),
        }
    }
}

/// Yuan with 2 decimals and thousands separators: `1008705.50` → `1,008,705.50`.
pub(crate) fn yuan(m: Money) -> String {
    let plain = m.to_string();
    let (int, frac) = plain.split_once('.').unwrap_or((&plain, "00"));
    format!("{}.{}", group_thousands(int), frac)
}

/// `"1234567"` → `"1,234,567"` (ASCII digits only).
pub(crate) fn group_thousands(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn kv_table(key: &'static str, caption: Option<&'static str>, rows: Vec<(&'static str, &'static str, Cell)>) -> Table {
    Table {
        key,
        caption,
        columns: vec![col("indicator", "Indicator 指标"), col("value", "Value 数值")],
        rows: rows.into_iter().map(|(field, label, v)| vec![Cell::Key { field, label }, v]).collect(),
    }
}

/// County code → name, from the county × program rows (the only section that carries names).
fn county_names(rows: &[CountyProgramRow]) -> BTreeMap<&str, &str> {
    rows.iter().map(|r| (r.county_code.as_str(), r.county_name.as_str())).collect()
}

fn county_name(names: &BTreeMap<&str, &str>, code: &str) -> Cell {
    names.get(code).map_or(Cell::Missing, |n| Cell::text(n))
}

const SUPPRESSION_NOTE: &str =
    "<5: fewer than 5 persons, withheld to protect a small group 少于5人，不予公布 (HIV_AFFECTED_CHILD).";

fn county_program_section(number: u8, rows: &[CountyProgramRow]) -> Section {
    Section {
        number,
        id: "by_county_program",
        en: "County × program",
        zh: "分县分项目",
        note: Some(SUPPRESSION_NOTE),
        tables: vec![Table {
            key: "by_county_program",
            caption: None,
            columns: vec![
                col("county_code", "County code 县区代码"),
                col("county_name", "County 县区"),
                col("program", "Program 项目"),
                col("persons", "Persons 人数"),
                col("households", "Households 户数"),
                col("monthly_benefit", "Monthly benefit (yuan) 月保障金（元）"),
            ],
            rows: rows
                .iter()
                .map(|r| {
                    vec![
                        Cell::text(&r.county_code),
                        Cell::text(&r.county_name),
                        Cell::text(&r.program),
                        Cell::Count(r.persons),
                        Cell::Count(r.households),
                        Cell::Money(r.monthly_benefit),
                    ]
                })
                .collect(),
        }],
    }
}

fn fund_report_section(number: u8, f: &FundReportSection, names: &BTreeMap<&str, &str>) -> Section {
    let rows = Table {
        key: "fund_reports",
        caption: Some("Reports by month, county and program 分月分县报告"),
        columns: vec![
            col("month", "Month 月份"),
            col("county_code", "County code 县区代码"),
            col("county_name", "County 县区"),
            col("program", "Program 项目"),
            col("status", "Status 状态"),
            col("amount", "Amount (yuan) 金额（元）"),
            col("recipients", "Recipients 人数"),
            col("expected", "Expected (yuan) 应发（元）"),
            col("finding", "Finding 问题"),
        ],
        rows: f
            .rows
            .iter()
            .map(|r| {
                vec![
                    Cell::text(&r.month),
                    Cell::text(&r.county_code),
                    county_name(names, &r.county_code),
                    Cell::text(&r.program),
                    Cell::text(&r.status),
                    Cell::opt_money(r.amount),
                    r.recipients.map_or(Cell::Missing, Cell::int),
                    Cell::opt_money(r.expected),
                    if r.finding.is_empty() { Cell::Missing } else { Cell::text(&r.finding) },
                ]
            })
            .collect(),
    };
    let totals = Table {
        key: "fund_report_totals",
        caption: Some("Totals by month and program 分月分项目合计"),
        columns: vec![
            col("month", "Month 月份"),
            col("program", "Program 项目"),
            col("amount", "Amount (yuan) 金额（元）"),
            col("recipients", "Recipients 人数"),
            col("counties", "Counties reported 报告县数"),
        ],
        rows: f
            .totals
            .iter()
            .map(|t| {
                vec![
                    Cell::text(&t.month),
                    Cell::text(&t.program),
                    Cell::Money(t.amount),
                    Cell::int(t.recipients),
                    Cell::int(t.counties),
                ]
            })
            .collect(),
    };
    Section {
        number,
        id: "fund_reports",
        en: "Fund reports",
        zh: "资金发放月报告",
        note: Some(
            "Due by the 15th of the month (Asia/Shanghai): ON_TIME, LATE after it, MISSING if none by month end.",
        ),
        tables: vec![rows, totals],
    }
}

fn warning_section(number: u8, w: &WarningSection, names: &BTreeMap<&str, &str>) -> Section {
    let mut rows = vec![
        ("received", "Received 收到预警", Cell::int(w.received)),
        (
            "visited_within_3_working_days",
            "Visited within 3 working days 3个工作日内入户",
            Cell::int(w.visited_within_3_working_days),
        ),
        (
            "decided_within_5_working_days",
            "Decided within 5 working days 5个工作日内认定",
            Cell::int(w.decided_within_5_working_days),
        ),
        ("overdue", "Overdue 逾期未办", Cell::int(w.overdue)),
        ("assisted", "Assisted 纳入救助", Cell::int(w.assisted)),
        ("closed", "Closed 已办结", Cell::int(w.closed)),
        ("clearance_rate_pct", "Clearance rate 办结率", w.clearance_rate_pct.map_or(Cell::Missing, Cell::Percent)),
    ];
    if w.provisional > 0 {
        rows.push((
            "provisional",
            "Provisional deadlines (holiday notice not loaded) 期限为暂定（节假日安排未载入）",
            Cell::int(w.provisional),
        ));
    }
    let summary = kv_table("warnings", Some("Workflow 处置情况"), rows);
    let by_county = Table {
        key: "warnings_by_county",
        caption: Some("Received by county 分县收到"),
        columns: vec![
            col("county_code", "County code 县区代码"),
            col("county_name", "County 县区"),
            col("count", "Received 收到"),
        ],
        rows: w
            .by_county
            .iter()
            .map(|c| vec![Cell::text(&c.county_code), county_name(names, &c.county_code), Cell::int(c.count)])
            .collect(),
    };
    Section {
        number,
        id: "warnings",
        en: "Early warnings",
        zh: "动态监测预警",
        note: (w.provisional > 0).then_some(
            "Provisional: some deadlines fall in a year whose State Council holiday notice the hub does not hold yet; \
             they follow Monday–Friday until it is loaded (doudi calendar add) and may move then.",
        ),
        tables: vec![summary, by_county],
    }
}

fn findings_by_code_table(key: &'static str, caption: Option<&'static str>, rows: &[CodeCount]) -> Table {
    Table {
        key,
        caption,
        columns: vec![col("code", "Finding code 问题代码"), col("count", "Count 数量")],
        rows: rows.iter().map(|c| vec![Cell::text(&c.code), Cell::int(c.count)]).collect(),
    }
}

/// The quarterly summary as a document: sections 1–10 of docs/spec/coordination.md "Quarterly summary", when there is
/// a previous quarter section 11 (docs/findings.md), and when the quarter has a campaign month section 12
/// (docs/subsidies.md).
pub(crate) fn quarterly(s: &QuarterlySummary) -> Document {
    let names = county_names(&s.by_county_program);
    let h = &s.headline;
    let meta = kv_table(
        "report",
        None,
        vec![
            ("quarter", "Quarter 季度", Cell::text(&s.quarter)),
            ("as_of", "As of (Asia/Shanghai) 截至", Cell::Text(s.as_of.to_string())),
            (
                "knowledge_cutoff",
                "Knowledge cutoff (UTC) 数据截止时点",
                Cell::Text(s.knowledge_cutoff.to_rfc3339_opts(SecondsFormat::Secs, true)),
            ),
            (
                "previous_quarter",
                "Previous quarter 上一季度",
                s.previous_quarter.as_deref().map_or(Cell::Missing, Cell::text),
            ),
        ],
    );
    let headline = kv_table(
        "headline",
        None,
        vec![
            ("dibao_tekun_persons", "Dibao + tekun persons 低保和特困人数", Cell::int(h.dibao_tekun_persons)),
            ("dibao_persons", "Dibao persons 低保人数", Cell::int(h.dibao_persons)),
            ("tekun_persons", "Tekun persons 特困人数", Cell::int(h.tekun_persons)),
            ("all_persons", "All assisted persons 救助对象总人数", Cell::int(h.all_persons)),
            ("dibao_households", "Dibao households 低保户数", Cell::int(h.dibao_households)),
            (
                "monthly_benefit_total",
                "Monthly benefits, dibao + tekun (yuan) 月保障金合计（元）",
                Cell::Money(h.monthly_benefit_total),
            ),
            ("coverage_findings", "Open coverage findings 覆盖核查问题", Cell::int(h.coverage_findings)),
            ("medical_findings", "Medical findings 医疗核查问题", Cell::int(h.medical_findings)),
            ("warnings_received", "Warnings received 收到预警", Cell::int(h.warnings_received)),
            ("fund_reports_on_time", "Fund reports on time 资金报告按时", Cell::int(h.fund_reports_on_time)),
            ("fund_reports_late", "Fund reports late 资金报告逾期", Cell::int(h.fund_reports_late)),
            ("fund_reports_missing", "Fund reports missing 资金报告缺报", Cell::int(h.fund_reports_missing)),
        ],
    );
    let change = Table {
        key: "change",
        caption: None,
        columns: vec![
            col("program", "Program 项目"),
            col("previous", "Previous quarter 上季度"),
            col("current", "This quarter 本季度"),
            col("entries", "Entries 新增"),
            col("exits", "Exits 退出"),
        ],
        rows: s
            .change
            .iter()
            .map(|c| {
                vec![
                    Cell::text(&c.program),
                    Cell::opt_count(c.previous),
                    Cell::Count(c.current),
                    Cell::Count(c.entries),
                    Cell::Count(c.exits),
                ]
            })
            .collect(),
    };
    let coverage = Table {
        key: "coverage",
        caption: None,
        columns: vec![
            col("code", "Rule 规则"),
            col("agency_to_act", "Agency to act 责任部门"),
            col("county_code", "County code 县区代码"),
            col("county_name", "County 县区"),
            col("count", "Findings 问题数"),
        ],
        rows: s
            .coverage
            .iter()
            .map(|c| {
                vec![
                    Cell::text(&c.code),
                    Cell::text(&c.agency_to_act),
                    Cell::text(&c.county_code),
                    county_name(&names, &c.county_code),
                    Cell::int(c.count),
                ]
            })
            .collect(),
    };
    let m = &s.medical;
    let medical = kv_table(
        "medical",
        Some("Settlements and amounts by tier 结算与分层支付"),
        vec![
            ("settlements", "Settlements 结算笔数", Cell::int(m.settlements)),
            ("persons", "Persons with a settlement 结算人数", Cell::int(m.persons)),
            ("persons_assisted", "Persons assisted 获医疗救助人数", Cell::int(m.persons_assisted)),
            ("total_cost", "Total cost (yuan) 医疗总费用（元）", Cell::Money(m.total_cost)),
            ("paid.basic", "Basic insurance paid (yuan) 基本医保支付（元）", Cell::Money(m.paid.basic)),
            (
                "paid.critical_illness",
                "Critical illness insurance paid (yuan) 大病保险支付（元）",
                Cell::Money(m.paid.critical_illness),
            ),
            (
                "paid.medical_assistance",
                "Medical assistance paid (yuan) 医疗救助支付（元）",
                Cell::Money(m.paid.medical_assistance),
            ),
            ("out_of_pocket", "Out of pocket (yuan) 个人自付（元）", Cell::Money(m.out_of_pocket)),
        ],
    );
    let medical_by_county = Table {
        key: "medical_findings_by_county",
        caption: Some("Findings by county 分县问题"),
        columns: vec![
            col("county_code", "County code 县区代码"),
            col("county_name", "County 县区"),
            col("code", "Finding code 问题代码"),
            col("count", "Count 数量"),
        ],
        rows: m
            .findings_by_county
            .iter()
            .map(|c| {
                vec![
                    Cell::text(&c.county_code),
                    county_name(&names, &c.county_code),
                    Cell::text(&c.code),
                    Cell::int(c.count),
                ]
            })
            .collect(),
    };
    let late = Table {
        key: "late_corrections",
        caption: None,
        columns: vec![
            col("agency", "Agency 部门"),
            col("kind", "Kind 数据类别"),
            col("facts", "Fact versions 记录版本数"),
            col("persons", "Persons 人数"),
        ],
        rows: s
            .late_corrections
            .iter()
            .map(|l| vec![Cell::text(&l.agency), Cell::text(&l.kind), Cell::int(l.facts), Cell::int(l.persons)])
            .collect(),
    };
    let standards = Table {
        key: "standards",
        caption: None,
        columns: vec![
            col("item", "Item 项目"),
            col("name", "Name 名称"),
            col("previous_year", "Previous year 上年"),
            col("previous", "Previous (yuan) 上年标准（元）"),
            col("current_year", "Year 本年"),
            col("current", "Current (yuan) 本年标准（元）"),
            col("change_pct", "Change 变化"),
        ],
        rows: s
            .standards
            .iter()
            .map(|st| {
                vec![
                    Cell::text(&st.item),
                    Cell::text(&st.name),
                    Cell::Year(st.previous_year),
                    Cell::opt_money(st.previous),
                    Cell::Year(st.current_year),
                    Cell::Money(st.current),
                    st.change_pct.map_or(Cell::Missing, Cell::Change),
                ]
            })
            .collect(),
    };
    let opt_hash = |h: &str| if h.is_empty() { Cell::Missing } else { Cell::text(h) };
    let snapshot = kv_table(
        "snapshot",
        None,
        vec![
            ("content_hash", "Content hash (SHA-256) 内容哈希", opt_hash(&s.snapshot.content_hash)),
            ("previous_hash", "Previous snapshot's hash 上一快照哈希", opt_hash(&s.snapshot.previous_hash)),
        ],
    );
    let mut snapshot_tables = vec![snapshot];
    if !s.countersignatures.is_empty() {
        // Who countersigned the quarter and when (docs/countersign.md); only the agencies that signed.
        snapshot_tables.push(Table {
            key: "countersignatures",
            caption: Some("Countersigned by 部门会签"),
            columns: vec![
                col("agency", "Agency 部门"),
                col("signed_at", "Signed at (UTC) 签署时间"),
                col("version", "Version 版本"),
            ],
            rows: s
                .countersignatures
                .iter()
                .map(|c| {
                    vec![
                        Cell::text(&c.agency),
                        Cell::text(&c.signed_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                        Cell::int(c.version.max(0) as u64),
                    ]
                })
                .collect(),
        });
    }
    let section = |number, id, en, zh, note, tables| Section { number, id, en, zh, note, tables };
    // Section 11 (docs/findings.md): what became of the previous quarter's findings, per agency (coverage, medical).
    let by_agency = |key: &'static str, caption: &'static str, rows: &[doudi_domain::summary::AgencyFindings]| Table {
        key,
        caption: Some(caption),
        columns: vec![
            col("agency", "Agency 部门"),
            col("raised_in", "Raised in 发现季度"),
            col("findings", "Findings 问题数"),
            col("fixed", "Fixed 已整改"),
            col("confirmed_fixed", "Confirmed fixed 经核实整改"),
            col("disputed", "Disputed 有异议"),
            col("in_progress", "In progress 整改中"),
            col("unanswered", "Unanswered 未答复"),
            col("still_open", "Still open 仍存在"),
            col("median_days_to_fix", "Median days to fix 整改天数中位数"),
        ],
        rows: rows
            .iter()
            .map(|a| {
                vec![
                    Cell::text(&a.agency),
                    Cell::text(&a.raised_in),
                    Cell::int(a.findings),
                    Cell::int(a.fixed),
                    Cell::int(a.confirmed_fixed),
                    Cell::int(a.disputed),
                    Cell::int(a.in_progress),
                    Cell::int(a.unanswered),
                    Cell::int(a.still_open),
                    a.median_days_to_fix.map_or(Cell::Missing, |d| Cell::int(d.max(0) as u64)),
                ]
            })
            .collect(),
    };
    let mut by_agency_tables = Vec::new();
    if !s.findings_by_agency.is_empty() {
        by_agency_tables.push(by_agency("findings_by_agency", "Coverage findings 覆盖核查问题", &s.findings_by_agency));
    }
    if !s.medical_findings_by_agency.is_empty() {
        by_agency_tables.push(by_agency(
            "medical_findings_by_agency",
            "Medical findings 医疗救助问题",
            &s.medical_findings_by_agency,
        ));
    }
    let mut sections = Vec::new();
    if !by_agency_tables.is_empty() {
        sections.push(section(
            11,
            "findings_by_agency",
            "Findings by agency",
            "分部门整改情况",
            Some(
                "The previous quarter's findings; answers as they stood at this snapshot's cutoff; confirmed fixed = \
                 coverage: not raised again by this snapshot, medical: resolved by a recheck by its cutoff.",
            ),
            by_agency_tables,
        ));
    }
    // Section 12 (docs/subsidies.md): the subsidy campaigns of the quarter, when it has a campaign month.
    if let Some(c) = &s.campaigns {
        sections.push(campaigns::section(12, c, &names));
    }
    Document {
        title: format!("Quarterly summary 季度调度汇总 {}", s.quarter),
        meta,
        sections: vec![
            section(1, "headline", "Headline", "概况", None, vec![headline]),
            county_program_section(2, &s.by_county_program),
            section(
                3,
                "change",
                "Change on last quarter",
                "季度变化",
                Some("Persons at the previous and this snapshot, city level 全市."),
                vec![change],
            ),
            section(4, "coverage", "Coverage findings", "覆盖核查", None, vec![coverage]),
            section(
                5,
                "medical",
                "Medical three tiers",
                "医疗三重保障",
                Some("Settlements settled in the quarter; findings open at the cutoff."),
                vec![
                    medical,
                    findings_by_code_table(
                        "medical_findings_by_code",
                        Some("Findings by code 按问题代码"),
                        &m.findings_by_code,
                    ),
                    medical_by_county,
                ],
            ),
            fund_report_section(6, &s.fund_reports, &names),
            warning_section(7, &s.warnings, &names),
            section(
                8,
                "late_corrections",
                "Late corrections",
                "迟到更正",
                Some("Facts recorded after the previous snapshot's cutoff that changed the previous quarter."),
                vec![late],
            ),
            section(9, "standards", "Standards", "保障标准", None, vec![standards]),
            section(10, "snapshot", "Snapshot", "快照", None, snapshot_tables),
        ]
        .into_iter()
        .chain(sections)
        .collect(),
    }
}

/// The monthly report as a document (docs/spec/coordination.md "Monthly report"): persons by county × program, fund
/// reports, warnings and medical findings of the month.
pub(crate) fn monthly(m: &MonthlyReport) -> Document {
    let names = county_names(&m.by_county_program);
    let meta = kv_table(
        "report",
        None,
        vec![
            ("month", "Month 月份", Cell::text(&m.month)),
            ("as_of", "As of (Asia/Shanghai) 截至", Cell::Text(m.as_of.to_string())),
        ],
    );
    Document {
        title: format!("Monthly report to the leading group 每月报告 {}", m.month),
        meta,
        sections: vec![
            county_program_section(1, &m.by_county_program),
            fund_report_section(2, &m.fund_reports, &names),
            warning_section(3, &m.warnings, &names),
            Section {
                number: 4,
                id: "medical",
                en: "Medical findings",
                zh: "医疗核查问题",
                note: Some("Findings of settlements settled in the month."),
                tables: vec![findings_by_code_table("medical_findings_by_code", None, &m.medical_findings_by_code)],
            },
            Section {
                number: 5,
                id: "campaigns",
                en: "Subsidy campaigns",
                zh: "补贴发放",
                note: Some(
                    "Persons and amounts owed for the month as the hub decides them (docs/subsidies.md), against the \
                     county's report of the program.",
                ),
                tables: vec![Table {
                    key: "campaigns",
                    caption: None,
                    columns: vec![
                        col("campaign", "Campaign 项目"),
                        col("program", "Program 资金项目"),
                        col("triggered", "Triggered 启动"),
                        col("county_code", "County code 县区代码"),
                        col("county_name", "County 县区"),
                        col("persons", "Persons owed 应发人数"),
                        col("amount_owed", "Owed (yuan) 应发（元）"),
                        col("amount_reported", "Reported (yuan) 已报（元）"),
                        col("finding", "Finding 问题"),
                    ],
                    rows: m
                        .campaigns
                        .iter()
                        .map(|r| {
                            vec![
                                Cell::text(&r.campaign),
                                Cell::text(&r.program),
                                Cell::text(if r.triggered { "yes" } else { "no" }),
                                Cell::text(&r.county_code),
                                county_name(&names, &r.county_code),
                                Cell::int(r.persons),
                                Cell::Money(r.amount_owed),
                                Cell::opt_money(r.amount_reported),
                                if r.finding.is_empty() { Cell::Missing } else { Cell::text(&r.finding) },
                            ]
                        })
                        .collect(),
                }],
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_counts_are_grouped_by_thousands() {
        let m = |s: &str| Money::parse(s).unwrap();
        assert_eq!(yuan(m("1008705.5")), "1,008,705.50");
        assert_eq!(yuan(m("0.05")), "0.05");
        assert_eq!(yuan(m("999")), "999.00");
        assert_eq!(yuan(m("1000")), "1,000.00");
        assert_eq!(Cell::int(2452).display(), "2,452");
        assert_eq!(Cell::int(2452).plain(), "2452");
        assert_eq!(Cell::Count(Count::Suppressed).display(), "<5");
        assert_eq!(Cell::Count(Count::Suppressed).plain(), "<5");
        assert_eq!(Cell::Change(3).display(), "+3%");
        assert_eq!(Cell::Change(-2).display(), "-2%");
        assert_eq!(Cell::Percent(84).display(), "84%");
        assert_eq!(Cell::Year(2023).display(), "2023");
        assert_eq!(Cell::Missing.plain(), "");
    }

    #[test]
    fn every_sheet_name_is_valid_for_excel() {
        let docs =
            [quarterly(&super::super::example::quarterly_with_campaigns()), monthly(&super::super::example::monthly())];
        for s in docs.iter().flat_map(|d| &d.sections) {
            let name = s.sheet_name();
            assert!(name.chars().count() <= 31, "{name}");
            assert!(!name.contains(['[', ']', ':', '*', '?', '/', '\\']), "{name}");
        }
    }
}
