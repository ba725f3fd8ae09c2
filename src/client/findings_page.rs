//! `doudi findings page QUARTER -o DIR`: a quarter's findings as the findings pages (`report::findings_page`,
//! docs/findings.md "The findings page"), read from the hub as the calling agency: the coverage findings of the
//! quarter's snapshot (`ListCoverageFindings`) and the medical findings of the settlements settled in the quarter
//! (`ListFindings`, resolved ones included), filtered, each explained by the hub (`ExplainFinding`).
//!
//! The hub decides what the caller sees (an agency the findings naming it, civil_affairs every agency's, a county
//! office its county) and audits every list and every explanation; nothing is computed on this side but the filter
//! on the agency to act and the layout.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use futures::StreamExt as _;

use super::ConnectArgs;
use crate::client::Clients;
use crate::domain::calendar::Quarter;
use crate::grpc::pb;
use crate::report::findings_page::{self, AnswerView, FindingKind, FindingRow, FindingsReport};

/// Explanations asked for at once.
const CONCURRENT_EXPLAINS: usize = 8;
/// Findings per list request (the hub's maximum page size).
const LIST_PAGE: i32 = 1_000;

/// Which kinds of finding a page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KindArg {
    /// Coverage and medical findings.
    All,
    /// Only the coverage findings of the quarter's snapshot.
    Coverage,
    /// Only the medical findings of settlements settled in the quarter.
    Medical,
}

/// Findings by their latest answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AnswerArg {
    Unanswered,
    InProgress,
    Fixed,
    Disputed,
}

impl AnswerArg {
    fn wire(self) -> pb::AnswerFilter {
        match self {
            AnswerArg::Unanswered => pb::AnswerFilter::Unanswered,
            AnswerArg::InProgress => pb::AnswerFilter::InProgress,
            AnswerArg::Fixed => pb::AnswerFilter::Fixed,
            AnswerArg::Disputed => pb::AnswerFilter::Disputed,
        }
    }

    fn name(self) -> &'static str {
        match self {
            AnswerArg::Unanswered => "unanswered",
            AnswerArg::InProgress => "in-progress",
            AnswerArg::Fixed => "fixed",
            AnswerArg::Disputed => "disputed",
        }
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct PageArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The quarter, YYYYQn (its snapshot must be frozen), e.g. 2023Q2.
    pub quarter: String,
    /// Directory the pages are written into (created): findings-QUARTER.html, findings-QUARTER-p2.html, …
    #[arg(short, long)]
    pub output: PathBuf,
    /// Only findings naming this agency to act, e.g. medical_insurance (`--agency` is the caller, as everywhere).
    #[arg(id = "agency_to_act", long = "agency-to-act", value_name = "AGENCY")]
    pub agency: Option<String>,
    /// Only findings in this GB/T 2260 division (a county, e.g. 621022; 621000 = the whole city).
    #[arg(long)]
    pub division: Option<String>,
    /// Only this rule or finding code, e.g. UNINSURED or ASSISTANCE_MISSED.
    #[arg(long)]
    pub code: Option<String>,
    /// Which kinds of finding.
    #[arg(long, value_enum, default_value = "all")]
    pub kind: KindArg,
    /// Only findings by their latest answer.
    #[arg(long, value_enum)]
    pub answer: Option<AnswerArg>,
    /// Findings per page (each page one file).
    #[arg(long, default_value_t = 200)]
    pub page_size: usize,
    /// At most this many findings (the first in list order); each is one ExplainFinding call.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Why you read them (written to the hub's audit log with every list and explanation).
    #[arg(long, default_value = "")]
    pub purpose: String,
}

/// What to read, decoded from the flags (the demo builds it directly).
#[derive(Debug, Clone)]
pub struct Selection {
    pub quarter: Quarter,
    pub agency: Option<String>,
    pub division: Option<String>,
    pub code: Option<String>,
    pub kind: KindArg,
    pub answer: Option<AnswerArg>,
    pub limit: Option<usize>,
    /// Audited with every call; at most 200 characters.
    pub purpose: String,
}

impl Selection {
    /// Every finding of `quarter`, as the caller may see them.
    pub fn quarter(quarter: Quarter, purpose: &str) -> Selection {
        Selection {
            quarter,
            agency: None,
            division: None,
            code: None,
            kind: KindArg::All,
            answer: None,
            limit: None,
            purpose: purpose.to_owned(),
        }
    }

    fn filters(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut add = |label: &str, v: Option<&str>| {
            if let Some(v) = v {
                out.push((label.to_owned(), v.to_owned()));
            }
        };
        add("Agency to act 责任部门", self.agency.as_deref());
        add("Division 区划", self.division.as_deref());
        add("Code 问题代码", self.code.as_deref());
        add(
            "Kind 类别",
            match self.kind {
                KindArg::All => None,
                KindArg::Coverage => Some("coverage"),
                KindArg::Medical => Some("medical"),
            },
        );
        add("Answer 答复", self.answer.map(AnswerArg::name));
        add("Limit 上限", self.limit.map(|n| n.to_string()).as_deref());
        out
    }
}

fn answer_view(a: &pb::FindingAnswer) -> AnswerView {
    let state = pb::AnswerState::try_from(a.state)
        .map(|s| s.as_str_name().trim_start_matches("ANSWER_STATE_").to_owned())
        .unwrap_or_else(|_| a.state.to_string());
    let fixed_by = match a.fixed_by.as_ref().and_then(|f| f.fix.as_ref()) {
        Some(pb::finding_fix::Fix::FactVersion(v)) => format!("{}/{}/{}", v.agency, v.fact_id, v.source_version),
        Some(pb::finding_fix::Fix::SettlementId(s)) => format!("settlement {s}"),
        None => String::new(),
    };
    AnswerView {
        state,
        version: a.version,
        answered_at: a
            .answered_at
            .as_ref()
            .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))),
        reason: a.reason.clone(),
        fixed_by,
    }
}

/// The coverage findings of the quarter, as the caller may see them, filtered.
async fn coverage_rows(c: &mut Clients, sel: &Selection, code: &str) -> anyhow::Result<Vec<FindingRow>> {
    let mut req = pb::ListCoverageFindingsRequest {
        quarter: sel.quarter.to_string(),
        code: code.to_owned(),
        division_code: sel.division.clone().unwrap_or_default(),
        answer: sel.answer.map_or(pb::AnswerFilter::Unspecified, AnswerArg::wire) as i32,
        page_size: LIST_PAGE,
        page_token: String::new(),
        purpose: sel.purpose.clone(),
    };
    let mut rows = Vec::new();
    loop {
        let page = c
            .coordination
            .list_coverage_findings(req.clone())
            .await
            .map_err(|s| anyhow::anyhow!("ListCoverageFindings: {}", super::status_text(&s)))?
            .into_inner();
        for f in page.findings {
            if sel.agency.as_deref().is_some_and(|a| a != f.agency_to_act) {
                continue;
            }
            rows.push(FindingRow {
                kind: FindingKind::Coverage,
                person_key: f.person_key,
                code: f.code,
                agency_to_act: f.agency_to_act,
                division_code: f.county_code,
                status: None,
                answer: f.answer.as_ref().map(answer_view),
                explanation: Err(String::new()), // asked for below, once the rows are filtered
                finding_id: f.finding_id,
            });
        }
        if page.next_page_token.is_empty() {
            return Ok(rows);
        }
        req.page_token = page.next_page_token;
    }
}

/// The medical findings of the settlements settled in the quarter (resolved ones included), filtered. `Err` with
/// the status when the caller may not read medical findings.
async fn medical_rows(
    c: &mut Clients,
    sel: &Selection,
    code: pb::FindingCode,
) -> anyhow::Result<Result<Vec<FindingRow>, tonic::Status>> {
    let mut req = pb::ListFindingsRequest {
        from_date: sel.quarter.first_day().to_string(),
        to_date: sel.quarter.last_day().to_string(),
        division_code: sel.division.clone().unwrap_or_default(),
        code: code as i32,
        page_size: LIST_PAGE,
        page_token: String::new(),
        include_resolved: true,
        purpose: sel.purpose.clone(),
        answer: sel.answer.map_or(pb::AnswerFilter::Unspecified, AnswerArg::wire) as i32,
    };
    let mut rows = Vec::new();
    loop {
        let page = match c.medical.list_findings(req.clone()).await {
            Ok(p) => p.into_inner(),
            Err(s) if s.code() == tonic::Code::PermissionDenied => return Ok(Err(s)),
            Err(s) => anyhow::bail!("ListFindings: {}", super::status_text(&s)),
        };
        for f in page.findings {
            if sel.agency.as_deref().is_some_and(|a| a != f.agency_to_act) {
                continue;
            }
            let code = pb::FindingCode::try_from(f.code)
                .map(|c| c.as_str_name().trim_start_matches("FINDING_CODE_").to_owned())
                .unwrap_or_else(|_| f.code.to_string());
            let status = match &f.resolved_at {
                Some(t) => format!(
                    "resolved 已消除 {}",
                    chrono::DateTime::from_timestamp(t.seconds, 0)
                        .map(|t| t.date_naive().to_string())
                        .unwrap_or_default()
                ),
                None => "open 未消除".to_owned(),
            };
            rows.push(FindingRow {
                kind: FindingKind::Medical,
                person_key: f.person_key,
                code,
                agency_to_act: f.agency_to_act,
                division_code: f.division_code,
                status: Some(status),
                answer: f.answer.as_ref().map(answer_view),
                explanation: Err(String::new()), // asked for below, once the rows are filtered
                finding_id: f.finding_id,
            });
        }
        if page.next_page_token.is_empty() {
            return Ok(Ok(rows));
        }
        req.page_token = page.next_page_token;
    }
}

/// Reads the selected findings of the quarter and their explanations from the hub as the caller of `c` (`read_by`
/// names it on the page). A `--code` names a coverage rule or a medical finding code and selects that kind; an
/// unknown code, or a code of the kind `--kind` leaves out, is an error. Medical findings the caller may not read are left out with a note (an error when only
/// medical findings were asked for). Each explanation the hub refuses is kept as its status message on the row.
///
/// # Errors
/// A list refused (e.g. NOT_FOUND: the quarter is not frozen), a code as above, a transport failure.
pub async fn gather(c: &mut Clients, read_by: &str, sel: &Selection) -> anyhow::Result<FindingsReport> {
    let (coverage_code, medical_code) = match sel.code.as_deref() {
        None => (Some(String::new()), Some(pb::FindingCode::Unspecified)),
        Some(code) if crate::domain::coverage::agency_to_act(code).is_some() => (Some(code.to_owned()), None),
        Some(code) => match pb::FindingCode::from_str_name(&format!("FINDING_CODE_{code}")) {
            Some(c) if c != pb::FindingCode::Unspecified => (None, Some(c)),
            _ => anyhow::bail!(
                "--code {code}: neither a coverage rule (docs/spec/coordination.md) nor a medical finding code \
                 (docs/spec/medical.md)"
            ),
        },
    };
    match (sel.kind, &coverage_code, medical_code, sel.code.as_deref()) {
        (KindArg::Coverage, None, _, Some(code)) => {
            anyhow::bail!("--code {code}: a medical finding code, but --kind coverage")
        }
        (KindArg::Medical, _, None, Some(code)) => anyhow::bail!("--code {code}: a coverage rule, but --kind medical"),
        _ => {}
    }
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    if matches!(sel.kind, KindArg::All | KindArg::Coverage)
        && let Some(code) = &coverage_code
    {
        rows.extend(coverage_rows(c, sel, code).await?);
    }
    if matches!(sel.kind, KindArg::All | KindArg::Medical)
        && let Some(code) = medical_code
    {
        match medical_rows(c, sel, code).await? {
            Ok(r) => rows.extend(r),
            Err(s) if sel.kind == KindArg::Medical => anyhow::bail!("ListFindings: {}", super::status_text(&s)),
            Err(s) => notes.push(format!(
                "Medical findings are not shown: the hub does not let {read_by} read them 无权读取医疗救助问题 ({})",
                s.message()
            )),
        }
    }
    if let Some(limit) = sel.limit
        && rows.len() > limit
    {
        notes.push(format!(
            "Limited to the first {limit} of {} findings matching the filter 仅列出前 {limit} 条 (--limit).",
            rows.len()
        ));
        rows.truncate(limit);
    }
    let medical = c.medical.clone();
    let purpose = sel.purpose.clone();
    let explained: Vec<Result<crate::domain::explain::Explanation, String>> =
        futures::stream::iter(rows.iter().map(|r| r.finding_id.clone()).collect::<Vec<_>>())
            .map(|finding_id| {
                let mut medical = medical.clone();
                let purpose = purpose.clone();
                async move {
                    medical
                        .explain_finding(pb::ExplainFindingRequest { finding_id, purpose })
                        .await
                        .map(|r| crate::grpc::medical::explanation_in(&r.into_inner()))
                        .map_err(|s| super::status_text(&s))
                }
            })
            .buffered(CONCURRENT_EXPLAINS)
            .collect()
            .await;
    for (row, e) in rows.iter_mut().zip(explained) {
        row.explanation = e;
    }
    Ok(FindingsReport {
        quarter: sel.quarter.to_string(),
        generated_at: chrono::Utc::now(),
        read_by: read_by.to_owned(),
        filters: sel.filters(),
        notes,
        rows,
    })
}

/// Writes the report's pages of `page_size` findings into `dir` (created); returns their paths, first page first.
pub fn write(report: &FindingsReport, dir: &Path, page_size: usize) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut paths = Vec::new();
    for (name, html) in findings_page::render(report, page_size) {
        let path = dir.join(name);
        std::fs::write(&path, html).with_context(|| format!("writing {}", path.display()))?;
        paths.push(path);
    }
    Ok(paths)
}

/// Run `doudi findings page`.
pub async fn run(a: PageArgs) -> anyhow::Result<()> {
    let quarter: Quarter =
        a.quarter.parse().map_err(|e| anyhow::anyhow!("quarter {:?}: {e} (expected YYYYQn)", a.quarter))?;
    if a.page_size == 0 {
        anyhow::bail!("--page-size: must be at least 1");
    }
    let purpose = if a.purpose.is_empty() { format!("findings page {quarter}") } else { a.purpose.clone() };
    let sel = Selection {
        quarter,
        agency: a.agency.clone(),
        division: a.division.clone(),
        code: a.code.clone(),
        kind: a.kind,
        answer: a.answer,
        limit: a.limit,
        purpose,
    };
    let read_by = match (&a.connect.agency, &a.connect.cert) {
        (Some(agency), _) => agency.clone(),
        (None, Some(cert)) => cert.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
        (None, None) => String::new(),
    };
    let mut c = a.connect.connect().await?;
    let report = gather(&mut c, &read_by, &sel).await?;
    let paths = write(&report, &a.output, a.page_size)?;
    let unexplained = report.rows.iter().filter(|r| r.explanation.is_err()).count();
    eprintln!(
        "{} findings ({} not explained) on {} page(s); first page {}",
        report.rows.len(),
        unexplained,
        paths.len(),
        paths[0].display()
    );
    for n in &report.notes {
        eprintln!("note: {n}");
    }
    Ok(())
}
