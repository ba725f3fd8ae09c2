//! `doudi demo --loop`: the quarterly coordination loop after 2023Q2 is frozen (issue 19; docs/findings.md). The
//! agencies named by 2023Q2's findings answer some of them: IN_PROGRESS, FIXED after pushing the fact version that
//! really fixes the finding (a 2023 medical insurance cover from 2023-07-10, an education aid from 2023-09-01), and
//! DISPUTED with a reason; medical_insurance also answers some medical findings. civil_affairs then freezes 2023Q3,
//! and the demo prints section 11 of 2023Q3's summary ("findings by agency", computed by the hub) beside the answers
//! it sent, with the checks that tie the two together, prints one finding's explanation as `doudi findings explain`
//! prints it, and writes the findings pages of both quarters and the 2023Q3 summary linking to them.
//!
//! Opt-in because a second full freeze costs about 12 s at the default size (the default demo is held to 60 s).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

use crate::client::{ClientIdentity, Clients, connect};
use crate::domain::calendar::Quarter;
use crate::domain::summary::{AgencyFindings, QuarterlySummary};
use crate::grpc::pb;

/// The quarter the loop freezes after the demo's 2023Q2.
pub const NEXT_QUARTER: &str = "2023Q3";
const PURPOSE: &str = "demo: quarterly coordination loop";

/// How many of a rule's 2023Q2 findings its agency answers, in list order (code, person key): first the FIXED ones,
/// then the DISPUTED, then the IN_PROGRESS; the rest stay unanswered.
struct Plan {
    code: &'static str,
    fixed: usize,
    disputed: usize,
    in_progress: usize,
    /// DISPUTED's reason.
    reason: &'static str,
}

/// Only UNINSURED and STUDENT_AID_MISSING are fixed: the demo pushes the fact that fixes them.
const PLANS: [Plan; 6] = [
    Plan {
        code: "UNINSURED",
        fixed: 40,
        disputed: 10,
        in_progress: 20,
        reason: "insured in another city since May 2023; transfer papers filed 已在外地参保",
    },
    Plan { code: "STUDENT_AID_MISSING", fixed: 20, disputed: 0, in_progress: 10, reason: "" },
    Plan {
        code: "PENSION_PREMIUM_NOT_PAID",
        fixed: 0,
        disputed: 5,
        in_progress: 5,
        reason: "the township paid the 2023 premium; its record has not reached the hub 乡镇已代缴",
    },
    Plan { code: "NURSING_SUBSIDY_MISSING", fixed: 0, disputed: 0, in_progress: 10, reason: "" },
    Plan { code: "DISABILITY_LIVING_SUBSIDY_MISSING", fixed: 0, disputed: 0, in_progress: 5, reason: "" },
    Plan {
        code: "BENEFIT_ABOVE_STANDARD",
        fixed: 0,
        disputed: 5,
        in_progress: 5,
        reason: "the amount includes a temporary assistance top-up approved in June 2023 含临时救助",
    },
];

/// medical_insurance's answers to the medical findings of 2023Q2's settlements: this many IN_PROGRESS and this many
/// DISPUTED (no FIXED: the demo's medical findings were raised on its replayed clock, January 2024, so days to fix
/// from them to an answer given now would mean nothing).
const MEDICAL_IN_PROGRESS: usize = 10;
const MEDICAL_DISPUTED: usize = 5;
const MEDICAL_REASON: &str = "the hospital's settlement file was re-sent with the assistance paid 医院已重报";

/// Answers sent, per (kind, agency): [IN_PROGRESS, FIXED, DISPUTED].
pub type Sent = BTreeMap<(&'static str, String), [u64; 3]>;

fn state_index(s: pb::AnswerState) -> usize {
    match s {
        pb::AnswerState::InProgress => 0,
        pb::AnswerState::Fixed => 1,
        _ => 2,
    }
}

/// The identity of an agency's office: (agency, county office or `None` for the city office).
pub type IdentityFn<'a> = dyn Fn(&str, Option<&str>) -> anyhow::Result<ClientIdentity> + Sync + 'a;

/// Connects to the hub at `server` as an agency's office, with the identity `identity` gives for it (the demo reads
/// its certificates directory: [`Connector::certs_dir`]).
pub struct Connector<'a> {
    pub server: &'a str,
    pub identity: &'a IdentityFn<'a>,
}

impl Connector<'_> {
    /// The identity of `agency` (`county`: its county office) from `<dir>/ca.pem`, `<dir>/<agency>[-<county>].pem`
    /// and `.key`, as `doudi certs init` writes them.
    pub fn certs_dir(dir: &Path) -> impl Fn(&str, Option<&str>) -> anyhow::Result<ClientIdentity> + Sync + '_ {
        move |agency, county| match county {
            Some(c) => ClientIdentity::from_dir(dir, &format!("{agency}-{c}")),
            None => ClientIdentity::from_dir(dir, agency),
        }
    }

    async fn client_in(&self, agency: &str, county: Option<&str>) -> anyhow::Result<Clients> {
        let id = (self.identity)(agency, county)?;
        Ok(Clients::new(connect(self.server, "localhost", &id).await?, 64 * 1024 * 1024))
    }

    async fn client(&self, agency: &str) -> anyhow::Result<Clients> {
        self.client_in(agency, None).await
    }
}

/// What the loop did and found, for the demo's printout and its test.
#[derive(Debug, Clone)]
pub struct LoopReport {
    /// Answers sent per (kind `coverage` / `medical`, agency): [IN_PROGRESS, FIXED, DISPUTED].
    pub sent: BTreeMap<(&'static str, String), [u64; 3]>,
    /// The 2023Q3 summary read back (section 11 in `findings_by_agency`, `medical_findings_by_agency`).
    pub summary: QuarterlySummary,
    /// Where section 11 differs from the answers sent and the two quarters' lists, described; empty = it matches.
    pub differences: Vec<String>,
    /// The explanation printed (of the first medical finding disputed), as `doudi findings explain` prints it.
    pub explanation: Option<String>,
    /// The findings pages written: per quarter, (first page, findings, pages, explanations that disagree with the
    /// stored finding).
    pub pages: Vec<(std::path::PathBuf, usize, usize, usize)>,
    /// The 2023Q3 summary files written (md, html, xlsx, json).
    pub summary_files: Vec<std::path::PathBuf>,
}

/// Every coverage finding of `quarter` as civil_affairs (the coordinator) reads them, in list order.
async fn coverage_findings(civil: &mut Clients, quarter: &str) -> anyhow::Result<Vec<pb::CoverageFinding>> {
    let mut req = pb::ListCoverageFindingsRequest {
        quarter: quarter.into(),
        page_size: 1_000,
        purpose: PURPOSE.into(),
        ..Default::default()
    };
    let mut out = Vec::new();
    loop {
        let page = civil.coordination.list_coverage_findings(req.clone()).await?.into_inner();
        out.extend(page.findings);
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        req.page_token = page.next_page_token;
    }
}

/// The fact that fixes `f` (UNINSURED: a 2023 cover from 2023-07-10 with the premium fully subsidized;
/// STUDENT_AID_MISSING: an education aid from 2023-09-01), pushed by the agency to act, as `fact_id` version 1.
fn fix_fact(f: &pb::CoverageFinding, fact_id: String) -> Option<pb::Fact> {
    let (valid_from, payload) = match f.code.as_str() {
        "UNINSURED" => (
            "2023-07-10",
            pb::fact::Payload::MedicalInsurance(pb::MedicalInsurance {
                scheme: pb::Scheme::Resident as i32,
                year: 2023,
                premium_subsidy: pb::PremiumSubsidy::Full as i32,
                subsidy_amount: "380.00".into(),
            }),
        ),
        "STUDENT_AID_MISSING" => (
            "2023-09-01",
            pb::fact::Payload::EducationAid(pb::EducationAid {
                aid_type: pb::AidType::LivingAllowance as i32,
                annual_amount: "1000.00".into(),
            }),
        ),
        _ => return None,
    };
    Some(pb::Fact {
        fact_id,
        source_version: 1,
        id_number: f.id_number.clone(),
        division_code: f.county_code.clone(),
        valid_from: valid_from.into(),
        payload: Some(payload),
        ..Default::default()
    })
}

fn answer_req(finding_id: &str, state: pb::AnswerState, reason: &str) -> pb::AnswerFindingRequest {
    pb::AnswerFindingRequest {
        finding_id: finding_id.into(),
        state: state as i32,
        fixed_by: None,
        reason: reason.into(),
        purpose: PURPOSE.into(),
    }
}

/// The coverage answers of [`PLANS`]: the fixes pushed first, then every answer. Returns the answers sent.
async fn answer_coverage(
    connector: &Connector<'_>,
    findings: &[pb::CoverageFinding],
    sent: &mut Sent,
) -> anyhow::Result<()> {
    let mut clients: BTreeMap<String, Clients> = BTreeMap::new();
    for plan in PLANS {
        let of_rule: Vec<&pb::CoverageFinding> = findings.iter().filter(|f| f.code == plan.code).collect();
        let Some(first) = of_rule.first() else { continue };
        let agency = first.agency_to_act.clone();
        if !clients.contains_key(&agency) {
            clients.insert(agency.clone(), connector.client(&agency).await?);
        }
        let c = clients.get_mut(&agency).expect("inserted above");
        let fixed = plan.fixed.min(of_rule.len());
        let disputed = plan.disputed.min(of_rule.len() - fixed);
        let in_progress = plan.in_progress.min(of_rule.len() - fixed - disputed);
        // The fixes, in one push by the agency to act.
        let mut fixes = Vec::new();
        for (i, f) in of_rule[..fixed].iter().enumerate() {
            let fact_id = format!("LOOP-{}-{:05}", plan.code, i + 1);
            fixes.push((f, fact_id.clone(), fix_fact(f, fact_id).expect("only rules with a fix have FIXED")));
        }
        if !fixes.is_empty() {
            let r = c
                .exchange
                .push_facts(pb::PushFactsRequest { facts: fixes.iter().map(|(_, _, f)| f.clone()).collect() })
                .await?
                .into_inner();
            let rejected: Vec<_> = r.results.iter().filter(|x| x.outcome != pb::FactOutcome::Accepted as i32).collect();
            anyhow::ensure!(rejected.is_empty(), "the fixes of {} were refused: {rejected:?}", plan.code);
        }
        for (f, fact_id, _) in &fixes {
            let fix = pb::FindingFix {
                fix: Some(pb::finding_fix::Fix::FactVersion(pb::FactVersionRef {
                    agency: agency.clone(),
                    fact_id: fact_id.clone(),
                    source_version: 1,
                })),
            };
            let req = pb::AnswerFindingRequest {
                fixed_by: Some(fix),
                ..answer_req(&f.finding_id, pb::AnswerState::Fixed, "")
            };
            c.medical.answer_finding(req).await?;
        }
        let rest = &of_rule[fixed..];
        for f in &rest[..disputed] {
            c.medical.answer_finding(answer_req(&f.finding_id, pb::AnswerState::Disputed, plan.reason)).await?;
        }
        for f in &rest[disputed..disputed + in_progress] {
            c.medical.answer_finding(answer_req(&f.finding_id, pb::AnswerState::InProgress, "")).await?;
        }
        let counts = sent.entry(("coverage", agency)).or_default();
        counts[state_index(pb::AnswerState::InProgress)] += in_progress as u64;
        counts[state_index(pb::AnswerState::Fixed)] += fixed as u64;
        counts[state_index(pb::AnswerState::Disputed)] += disputed as u64;
    }
    Ok(())
}

/// medical_insurance's answers to the medical findings of 2023Q2's settlements that name it: DISPUTED for the first
/// ASSISTANCE_MISSED ones (assistance owed and nothing paid: the insurer says the hospital re-sent the file), then
/// IN_PROGRESS for the first others in list order. Returns the first finding it disputed (the one whose explanation
/// the demo prints), if any.
async fn answer_medical(mi: &mut Clients, q2: Quarter, sent: &mut Sent) -> anyhow::Result<Option<String>> {
    let list = |code: pb::FindingCode, page_size: i32| pb::ListFindingsRequest {
        from_date: q2.first_day().to_string(),
        to_date: q2.last_day().to_string(),
        code: code as i32,
        page_size,
        purpose: PURPOSE.into(),
        ..Default::default()
    };
    let missed = mi.medical.list_findings(list(pb::FindingCode::AssistanceMissed, 100)).await?.into_inner().findings;
    let disputed: Vec<&pb::Finding> = missed.iter().take(MEDICAL_DISPUTED).collect();
    let others = mi.medical.list_findings(list(pb::FindingCode::Unspecified, 200)).await?.into_inner().findings;
    let in_progress: Vec<&pb::Finding> = others
        .iter()
        .filter(|f| f.agency_to_act == "medical_insurance" && f.code != pb::FindingCode::AssistanceMissed as i32)
        .take(MEDICAL_IN_PROGRESS)
        .collect();
    for f in &disputed {
        mi.medical.answer_finding(answer_req(&f.finding_id, pb::AnswerState::Disputed, MEDICAL_REASON)).await?;
    }
    for f in &in_progress {
        mi.medical.answer_finding(answer_req(&f.finding_id, pb::AnswerState::InProgress, "")).await?;
    }
    let counts = sent.entry(("medical", "medical_insurance".into())).or_default();
    counts[state_index(pb::AnswerState::InProgress)] += in_progress.len() as u64;
    counts[state_index(pb::AnswerState::Disputed)] += disputed.len() as u64;
    Ok(disputed.first().map(|f| f.finding_id.clone()))
}

/// One line of section 11 checked against the answers sent: fixed, disputed and in progress equal what was sent,
/// unanswered = findings − answered. Returns the differences found, described.
fn check_line(kind: &'static str, line: &AgencyFindings, sent: &Sent) -> Vec<String> {
    let [in_progress, fixed, disputed] = sent.get(&(kind, line.agency.clone())).copied().unwrap_or_default();
    let mut differ = Vec::new();
    for (what, hub, want) in [
        ("fixed", line.fixed, fixed),
        ("disputed", line.disputed, disputed),
        ("in_progress", line.in_progress, in_progress),
        ("unanswered", line.unanswered, line.findings.saturating_sub(in_progress + fixed + disputed)),
    ] {
        if hub != want {
            differ.push(format!("{kind} {} {what}: hub {hub}, sent {want}", line.agency));
        }
    }
    differ
}

/// The loop, after 2023Q2 is frozen: answers, fixes, the 2023Q3 freeze, section 11 and its checks, one explanation,
/// the findings pages and the 2023Q3 summary files in `dir`.
pub async fn run(
    connector: &Connector<'_>,
    civil: &mut Clients,
    leading_group: &mut Clients,
    dir: &Path,
) -> anyhow::Result<LoopReport> {
    let q2: Quarter = super::snapshot::QUARTER.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let q3: Quarter = NEXT_QUARTER.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let t = Instant::now();
    let q2_findings = coverage_findings(civil, &q2.to_string()).await?;
    let mut sent = Sent::new();
    answer_coverage(connector, &q2_findings, &mut sent).await?;
    let mut mi = connector.client("medical_insurance").await?;
    let explained = answer_medical(&mut mi, q2, &mut sent).await?;
    let mut findings_by_agency: BTreeMap<(&str, String), u64> = BTreeMap::new();
    for f in &q2_findings {
        *findings_by_agency.entry(("coverage", f.agency_to_act.clone())).or_default() += 1;
    }
    println!(
        "\nThe quarterly loop (doudi demo --loop): answers to {q2}'s findings (AnswerFinding), by the agency to act"
    );
    println!("{:<10}{:<24}{:>10}{:>13}{:>8}{:>10}", "kind", "agency", "findings", "IN_PROGRESS", "FIXED", "DISPUTED");
    for ((kind, agency), [in_progress, fixed, disputed]) in &sent {
        let n = findings_by_agency.get(&(kind, agency.clone())).map(|n| n.to_string()).unwrap_or_else(|| "—".into());
        println!("{kind:<10}{agency:<24}{n:>10}{in_progress:>13}{fixed:>8}{disputed:>10}");
    }
    let fixes: u64 = sent.values().map(|c| c[1]).sum();
    println!(
        "each FIXED names the fact version the agency pushed first ({fixes} in all: 2023 covers from 2023-07-10, \
         education aids from 2023-09-01); the hub checked each claim; sent in {:.1}s",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let snap =
        civil.coordination.create_snapshot(pb::CreateSnapshotRequest { quarter: q3.to_string() }).await?.into_inner();
    println!(
        "\nSnapshot {q3} frozen by civil_affairs in {:.1}s: as of {}, content_hash {}, previous {}",
        t.elapsed().as_secs_f64(),
        snap.as_of,
        snap.content_hash,
        snap.previous_quarter
    );
    let s = leading_group
        .coordination
        .get_quarterly_summary(pb::GetQuarterlySummaryRequest { quarter: q3.to_string() })
        .await?
        .into_inner();
    let summary: QuarterlySummary =
        serde_json::from_value(crate::grpc::snapshot::struct_to_json(s.summary.unwrap_or_default()))?;
    println!("\nSection 11 of the {q3} summary (GetQuarterlySummary, read by the leading group):\n");
    match crate::report::render_quarterly_section_md(&summary, "findings_by_agency") {
        Some(md) => println!("{md}"),
        None => println!("(no section 11: the summary has no previous quarter)"),
    }

    // The checks: section 11's answer counts equal the answers sent; every fix is confirmed by 2023Q3 (not raised
    // again); still open = 2023Q2's findings that 2023Q3 raises again, counted from the two quarters' lists.
    let q3_findings = coverage_findings(civil, &q3.to_string()).await?;
    let again: BTreeSet<(&str, &str)> = q3_findings.iter().map(|f| (f.code.as_str(), f.person_key.as_str())).collect();
    let mut raised_again: BTreeMap<&str, u64> = BTreeMap::new();
    for f in &q2_findings {
        if again.contains(&(f.code.as_str(), f.person_key.as_str())) {
            *raised_again.entry(f.agency_to_act.as_str()).or_default() += 1;
        }
    }
    let mut differ = Vec::new();
    for line in &summary.findings_by_agency {
        differ.extend(check_line("coverage", line, &sent));
        let [_, fixed, _] = sent.get(&("coverage", line.agency.clone())).copied().unwrap_or_default();
        if line.confirmed_fixed != fixed {
            differ.push(format!(
                "coverage {} confirmed_fixed: hub {}, fixes pushed {fixed}",
                line.agency, line.confirmed_fixed
            ));
        }
        let want = raised_again.get(line.agency.as_str()).copied().unwrap_or(0);
        if line.still_open != want {
            differ.push(format!(
                "coverage {} still_open: hub {}, raised again in {q3} {want}",
                line.agency, line.still_open
            ));
        }
        if findings_by_agency.get(&("coverage", line.agency.clone())).copied().unwrap_or(0) != line.findings {
            differ.push(format!("coverage {} findings: hub {}, listed for {q2}", line.agency, line.findings));
        }
    }
    for line in &summary.medical_findings_by_agency {
        differ.extend(check_line("medical", line, &sent));
    }
    let gone: u64 = summary.findings_by_agency.iter().map(|l| l.findings - l.still_open).sum();
    println!(
        "check: section 11 against the answers sent — fixed, disputed and in progress equal the answers sent, \
         unanswered = findings − answered, confirmed fixed = the fixes pushed ({fixes}), still open = {q2}'s \
         findings {q3} raises again ({gone} not raised again: {fixes} fixed, {} for other reasons, e.g. a person \
         reaching 60 or an enrolment ending in {q3}): {}",
        gone.saturating_sub(fixes),
        if differ.is_empty() { "match".to_owned() } else { format!("DIFFER: {}", differ.join("; ")) }
    );

    let mut explanation = None;
    if let Some(id) = explained {
        let e = mi
            .medical
            .explain_finding(pb::ExplainFindingRequest { finding_id: id.clone(), purpose: PURPOSE.into() })
            .await?
            .into_inner();
        let text = crate::report::explanation::text(&crate::grpc::medical::explanation_in(&e));
        println!("\nOne finding medical_insurance disputed, as `doudi findings explain {id}` prints it:\n");
        print!("{text}");
        explanation = Some(text);
    }

    // The findings pages of both quarters, read by civil_affairs' office of Huan county (the hub limits it to the
    // county: every agency's findings there; about an eighth of the city's, ~8 KB of HTML each), and the 2023Q3
    // summary linking to them.
    let t = Instant::now();
    let mut pages = Vec::new();
    let mut page_sets = Vec::new();
    let reader = format!("civil_affairs-{PAGES_COUNTY}");
    let mut county_office = connector.client_in("civil_affairs", Some(PAGES_COUNTY)).await?;
    for q in [q2, q3] {
        let sel = crate::client::findings_page::Selection::quarter(q, PURPOSE);
        let report = crate::client::findings_page::gather(&mut county_office, &reader, &sel).await?;
        let unexplained = report.rows.iter().filter(|r| r.explanation.is_err()).count();
        let disagree = report.rows.iter().filter(|r| r.explanation.as_ref().is_ok_and(|e| !e.matches_stored)).count();
        let written = crate::client::findings_page::write(&report, dir, PAGE_SIZE)?;
        pages.push(format!(
            "{} ({} findings on {} page(s); {unexplained} not explained; {disagree} whose explanation disagrees with \
             the stored finding)",
            written[0].display(),
            report.rows.len(),
            written.len()
        ));
        page_sets.push((written[0].clone(), report.rows.len(), written.len(), disagree));
    }
    let mut written = Vec::new();
    for f in [
        crate::report::Format::Md,
        crate::report::Format::Html,
        crate::report::Format::Xlsx,
        crate::report::Format::Json,
    ] {
        let path = dir.join(format!("summary-{q3}.{}", f.extension()));
        let bytes = if f == crate::report::Format::Html {
            crate::report::render_quarterly_html(&summary, &crate::report::FindingsLinks::beside(&summary))?
        } else {
            crate::report::render_quarterly(&summary, f)?
        };
        std::fs::write(&path, bytes)?;
        written.push(path);
    }
    println!(
        "\nfindings pages of county {PAGES_COUNTY}, read by {reader} (each row linked to its explanation; written in \
         {:.1}s):\n  {}\n(an explanation is recomputed \
         from the facts held now: a medical finding raised before a fix was pushed, e.g. NOT_INSURED of a settlement \
         after a cover pushed above, disagrees until a recheck (RecheckPeriod) resolves it)\n{q3} summary (the HTML \
         links to them):\n  {}",
        t.elapsed().as_secs_f64(),
        pages.join("\n  "),
        written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join("\n  ")
    );
    Ok(LoopReport { sent, summary, differences: differ, explanation, pages: page_sets, summary_files: written })
}

/// Findings per page of the demo's findings pages.
const PAGE_SIZE: usize = 200;
/// The county whose civil_affairs office reads the demo's findings pages (Huan county: the demo's PKI issues that
/// county office a certificate). The whole city's pages of both quarters would be ~29,000 findings, ~240 MB of HTML
/// at the default size: `doudi findings page` as civil_affairs writes them when wanted.
pub const PAGES_COUNTY: &str = "621022";
