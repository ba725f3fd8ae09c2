//! The demo's medical part: a year of synthetic settlements (`synth::settlements`, faults planted at known rates)
//! submitted as medical_insurance; the findings the hub raised, read back by code through `ListFindings`, against
//! what the generator planted; paid vs owed per tier; HIGH_BURDEN warnings; a recheck of the year.
//!
//! [`run`] returns the figures it printed so a test can hold the hub to the generator's counts on a small population.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::client::Clients;
use crate::domain::medical::FindingCode;
use crate::domain::money::Money;
use crate::grpc::medical::{finding_code_out, settlement_out};
use crate::grpc::pb;
use crate::tools::synth::Population;
use crate::tools::synth::settlements::{self, ExpectedFindings, SettlementConfig, TierTotals};

/// Settlements per SubmitSettlements request.
pub const BATCH: usize = 5_000;

/// What the medical demo measured and read back from the hub.
#[derive(Debug, Clone)]
pub struct MedicalReport {
    /// What the generator planted.
    pub expected: ExpectedFindings,
    /// Open findings per code, from `ListFindings.total_size` (every code present).
    pub found: BTreeMap<&'static str, i64>,
    /// Settlements ACCEPTED / DUPLICATE / REJECTED by the hub.
    pub accepted: usize,
    pub duplicate: usize,
    pub rejected: usize,
    /// Sums of the hub's own recomputation (`check` of each accepted settlement): critical illness and assistance
    /// owed.
    pub hub_expected: TierTotals,
    /// HIGH_BURDEN early warnings in the warning workflow (ListWarnings, reason ILLNESS, `MEDICAL-` ids).
    pub high_burden_warnings: usize,
    /// The recheck of the whole year: findings added and resolved (both 0 when nothing changed).
    pub recheck_added: i64,
    pub recheck_resolved: i64,
    /// Submission rate, settlements per second (end to end over mTLS).
    pub per_second: f64,
}

impl MedicalReport {
    /// Codes whose hub count differs from the generator's.
    pub fn mismatches(&self) -> Vec<&'static str> {
        self.expected
            .by_code
            .iter()
            .filter(|(c, n)| self.found.get(*c).copied() != Some(**n as i64))
            .map(|(c, _)| *c)
            .collect()
    }
}

fn sum(a: Money, b: &str) -> Money {
    a.checked_add(b.parse().unwrap_or(Money::ZERO)).unwrap_or(a)
}

/// Generate, submit, read back and print. `medical` must be a medical_insurance client, `civil` a civil_affairs one.
pub async fn run(
    pop: &Population,
    config: &SettlementConfig,
    medical: &mut Clients,
    civil: &mut Clients,
) -> anyhow::Result<MedicalReport> {
    let t = Instant::now();
    let set = settlements::generate(pop, config);
    let gen_secs = t.elapsed().as_secs_f64();
    let expected = set.expected.clone();
    println!(
        "\nMedical settlements {}: {} settlements of {} persons ({:.0}% of the population) generated in {gen_secs:.1}s",
        pop.reference_date().format("%Y"),
        expected.settlements,
        expected.persons,
        config.share * 100.0
    );
    println!("faults planted (rates in synth/settlements.rs):");
    for (kind, n) in &expected.planted {
        println!("  {kind:<30}{n:>8}");
    }

    let t = Instant::now();
    let (mut accepted, mut duplicate, mut rejected) = (0, 0, 0);
    let mut hub_expected = TierTotals::default();
    let wire: Vec<pb::Settlement> =
        set.settlements.iter().map(|s| settlement_out(&s.id_number, &s.settlement)).collect();
    for chunk in wire.chunks(BATCH) {
        let r = medical
            .medical
            .submit_settlements(pb::SubmitSettlementsRequest { settlements: chunk.to_vec() })
            .await?
            .into_inner();
        for res in r.results {
            match pb::SettlementOutcome::try_from(res.outcome) {
                Ok(pb::SettlementOutcome::Accepted) => {
                    accepted += 1;
                    if let Some(c) = res.check {
                        hub_expected.critical_illness =
                            sum(hub_expected.critical_illness, &c.expected_critical_illness);
                        hub_expected.medical_assistance =
                            sum(hub_expected.medical_assistance, &c.expected_medical_assistance);
                    }
                }
                Ok(pb::SettlementOutcome::Duplicate) => duplicate += 1,
                _ => {
                    rejected += 1;
                    if rejected <= 3 {
                        println!("  rejected {}: {}: {}", res.settlement_id, res.field, res.reason);
                    }
                }
            }
        }
    }
    hub_expected.basic = expected.paid.basic;
    let secs = t.elapsed().as_secs_f64();
    let per_second = wire.len() as f64 / secs;
    println!(
        "medical_insurance submitted them in {secs:.1}s ({per_second:.0} settlements/s, SubmitSettlements batches of \
         {BATCH}): {accepted} accepted, {duplicate} duplicate, {rejected} rejected"
    );

    let mut found = BTreeMap::new();
    for code in FindingCode::ALL {
        let r = civil
            .medical
            .list_findings(pb::ListFindingsRequest {
                code: finding_code_out(code),
                page_size: 1,
                purpose: "demo: findings by code".into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        found.insert(code.as_str(), r.total_size);
    }
    println!("\nFindings by code (ListFindings.total_size) against the faults the generator planted");
    println!("{:<30}{:>10}{:>10}  agency to act", "code", "hub", "planted");
    for code in FindingCode::ALL {
        let c = code.as_str();
        let hub = found[c];
        let planted = expected.by_code.get(c).copied().unwrap_or(0);
        let mark = if hub == planted as i64 { "" } else { "  ← DIFFERS" };
        println!("{c:<30}{hub:>10}{planted:>10}  {}{mark}", code.agency_to_act());
    }

    println!("\nPaid vs owed by tier, yuan (owed: the hub's recomputation, SubmitSettlements `check`)");
    println!("{:<22}{:>18}{:>18}{:>18}", "tier", "paid", "owed (hub)", "owed (generator)");
    for (name, paid, hub, gen_) in [
        ("basic insurance", expected.paid.basic, hub_expected.basic, expected.expected.basic),
        (
            "critical illness",
            expected.paid.critical_illness,
            hub_expected.critical_illness,
            expected.expected.critical_illness,
        ),
        (
            "medical assistance",
            expected.paid.medical_assistance,
            hub_expected.medical_assistance,
            expected.expected.medical_assistance,
        ),
    ] {
        println!("{name:<22}{:>18}{:>18}{:>18}", paid.to_string(), hub.to_string(), gen_.to_string());
    }
    println!(
        "{:<22}{:>18}   (total cost {}; basic is not recomputed by docs/spec/medical.md)",
        "left to patients",
        expected.out_of_pocket.to_string(),
        expected.total_cost
    );

    // HIGH_BURDEN raised early warnings for civil_affairs.
    let mut high_burden_warnings = 0;
    let mut token = String::new();
    loop {
        let r = civil
            .coordination
            .list_warnings(pb::ListWarningsRequest {
                page_size: 1000,
                page_token: token.clone(),
                purpose: "demo: warnings raised by HIGH_BURDEN".into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        high_burden_warnings += r
            .warnings
            .iter()
            .filter(|w| w.warning_id.starts_with("MEDICAL-") && w.reason == pb::WarningReason::Illness as i32)
            .count();
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    println!("HIGH_BURDEN raised {high_burden_warnings} early warnings (reason ILLNESS) in civil_affairs' workflow");

    let year = pop.reference_date().format("%Y").to_string();
    let t = Instant::now();
    let r = medical
        .medical
        .recheck_period(pb::RecheckPeriodRequest {
            from_date: format!("{year}-01-01"),
            to_date: format!("{year}-12-31"),
            purpose: "demo: recheck of the year".into(),
        })
        .await?
        .into_inner();
    println!(
        "RecheckPeriod {year}: {} persons, {} settlements rechecked in {:.1}s: {} findings added, {} resolved \
         (nothing changed since arrival)",
        r.persons_checked,
        r.settlements_checked,
        t.elapsed().as_secs_f64(),
        r.findings_added,
        r.findings_resolved
    );

    let report = MedicalReport {
        expected,
        found,
        accepted,
        duplicate,
        rejected,
        hub_expected,
        high_burden_warnings,
        recheck_added: r.findings_added,
        recheck_resolved: r.findings_resolved,
        per_second,
    };
    let mismatches = report.mismatches();
    println!(
        "check: findings {} the planted faults ({} codes differ)",
        if mismatches.is_empty() { "match" } else { "DIFFER FROM" },
        mismatches.len()
    );
    Ok(report)
}
