//! The demo's last part: civil_affairs freezes 2023Q2, verifies it, and the quarterly summary is read back as the
//! leading group reads it; coverage findings are compared with the gaps the generator planted.

use std::path::Path;
use std::time::Instant;

use crate::client::Clients;
use crate::domain::summary::{Count, QuarterlySummary};
use crate::grpc::pb;
use crate::tools::synth::{GAP_RULES, Population};

/// Quarter the demo freezes (the population's reference date is its last day).
pub const QUARTER: &str = "2023Q2";

/// Freeze, verify, read the summary back; print the headline and the coverage check; write the report files into
/// `dir`. Returns the summary.
pub async fn run(
    pop: &Population,
    civil: &mut Clients,
    leading_group: &mut Clients,
    dir: &Path,
) -> anyhow::Result<QuarterlySummary> {
    let t = Instant::now();
    let snap =
        civil.coordination.create_snapshot(pb::CreateSnapshotRequest { quarter: QUARTER.into() }).await?.into_inner();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "\nSnapshot {QUARTER} frozen by civil_affairs in {secs:.1}s: as of {}, content_hash {}",
        snap.as_of, snap.content_hash
    );
    let v = leading_group
        .coordination
        .verify_snapshot(pb::VerifySnapshotRequest { quarter: QUARTER.into() })
        .await?
        .into_inner();
    println!(
        "VerifySnapshot: {} (recomputed {})",
        if v.valid { "valid" } else { "DIFFERS" },
        &v.recomputed_content_hash[..16]
    );
    let s = leading_group
        .coordination
        .get_quarterly_summary(pb::GetQuarterlySummaryRequest { quarter: QUARTER.into() })
        .await?
        .into_inner();
    let summary: QuarterlySummary =
        serde_json::from_value(crate::grpc::snapshot::struct_to_json(s.summary.unwrap_or_default()))?;

    let h = &summary.headline;
    println!(
        "Quarterly summary {QUARTER} (GetQuarterlySummary, read by the leading group): {} dibao and tekun persons \
         ({} dibao in {} households, {} tekun), {} yuan a month; {} coverage findings; {} medical findings; fund \
         reports {} on time, {} late, {} missing; {} warnings received",
        h.dibao_tekun_persons,
        h.dibao_persons,
        h.dibao_households,
        h.tekun_persons,
        h.monthly_benefit_total,
        h.coverage_findings,
        h.medical_findings,
        h.fund_reports_on_time,
        h.fund_reports_late,
        h.fund_reports_missing,
        h.warnings_received
    );
    print!("{}", campaign_lines(&summary));
    let expected = pop.expected();
    println!("\nCoverage findings {QUARTER} (snapshot) against the gaps the generator planted");
    println!("{:<36}{:<24}{:>8}{:>10}", "rule", "agency to act", "hub", "planted");
    let mut differ = 0;
    for rule in GAP_RULES {
        let found: u64 = summary.coverage.iter().filter(|c| c.code == rule).map(|c| c.count).sum();
        let planted = expected.gaps.get(rule).copied().unwrap_or(0) as u64;
        differ += usize::from(found != planted);
        let agency = crate::domain::coverage::agency_to_act(rule).unwrap_or_default();
        println!("{rule:<36}{agency:<24}{found:>8}{planted:>10}{}", if found == planted { "" } else { "  ← DIFFERS" });
    }
    println!(
        "check: coverage findings {} the planted gaps ({differ} rules differ)",
        if differ == 0 { "match" } else { "DIFFER FROM" }
    );
    let hiv: Vec<&Count> =
        summary.by_county_program.iter().filter(|r| r.program == "HIV_AFFECTED_CHILD").map(|r| &r.persons).collect();
    println!(
        "HIV-affected children: {} county cells, {} suppressed (< 5)",
        hiv.len(),
        hiv.iter().filter(|c| ***c == Count::Suppressed).count()
    );
    let md = crate::report::render_quarterly(&summary, crate::report::Format::Md)?;
    println!("\n{}", String::from_utf8_lossy(&md));
    let mut written = Vec::new();
    for f in [
        crate::report::Format::Md,
        crate::report::Format::Html,
        crate::report::Format::Xlsx,
        crate::report::Format::Json,
    ] {
        let path = dir.join(format!("summary-{QUARTER}.{}", f.extension()));
        std::fs::write(&path, crate::report::render_quarterly(&summary, f)?)?;
        written.push(path.display().to_string());
    }
    println!("quarterly summary written to:\n  {}", written.join("\n  "));
    Ok(summary)
}

/// Section 12 in a few lines: each campaign's months (triggered or not, on which index against which threshold) and
/// how many counties were owed; or why the quarter has none.
pub fn campaign_lines(summary: &QuarterlySummary) -> String {
    let Some(section) = &summary.campaigns else {
        return format!(
            "Subsidy campaigns {}: none (no subsidy month decided, no fixed-amount campaign)\n",
            summary.quarter
        );
    };
    let mut out = format!("Subsidy campaigns {} (section 12, decided when the quarter was frozen):\n", summary.quarter);
    for c in &section.campaigns {
        let months: Vec<String> = c
            .months
            .iter()
            .map(|m| {
                let against: Vec<String> =
                    m.comparisons.iter().map(|x| format!("{} {} / {}", x.index, x.rise, x.threshold)).collect();
                let why = if against.is_empty() { String::new() } else { format!(" ({})", against.join(", ")) };
                format!("{} {}{why}", m.month, if m.triggered { "triggered" } else { "not triggered" })
            })
            .collect();
        let owed: u64 = c.counties.iter().map(|r| r.person_times).sum();
        out.push_str(&format!(
            "  {} {} [{}]: {}; {} person-times owed in {} counties\n",
            c.campaign,
            c.name,
            c.program,
            months.join("; "),
            owed,
            c.counties.iter().filter(|r| r.person_times > 0).count()
        ));
    }
    out
}
