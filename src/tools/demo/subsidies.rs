//! The demo's subsidy campaign (issue 18 item 5; docs/subsidies.md): development_reform pushes the price indices of
//! August and September 2022, the hub decides subsidy months 2022-09 and 2022-10 (the letter's Sep–Oct 2022 price
//! subsidies), the counties report what they paid, and the leading group reads the county table; one person's
//! entitlement is explained. Every figure printed is computed by the hub from what the clients pushed.
//!
//! Demo data (documented, not the city's): the national CPI and food CPI year-on-year rises of August 2022 (2.5 %,
//! 6.1 %) and September 2022 (2.8 %, 8.8 %) as the National Bureau of Statistics published them on 2022-09-09 and
//! 2022-10-14; Gansu's or Qingyang's own indices are not in docs/domain. The counties' PRICE_SUBSIDY reports are the
//! hub's own amounts owed, except two planted faults: 华池县 (621023) reports 100.00 yuan less for 2022-09 (MISMATCH)
//! and 宁县 (621026) does not report 2022-10 (MISSING).

use std::fmt::Write as _;

use crate::client::Clients;
use crate::grpc::pb;

/// Index months pushed: (month, CPI, food CPI, published on).
pub const DEMO_INDICES: [(&str, &str, &str, &str); 2] =
    [("2022-08", "2.50", "6.10", "2022-09-09"), ("2022-09", "2.80", "8.80", "2022-10-14")];

/// The subsidy months of the letter's Sep–Oct 2022 price subsidies.
pub const DEMO_MONTHS: [&str; 2] = ["2022-09", "2022-10"];

/// County reporting 100.00 yuan less than owed for 2022-09.
pub const SHORT_PAID: (&str, &str) = ("621023", "2022-09");

/// County not reporting 2022-10.
pub const UNREPORTED: (&str, &str) = ("621026", "2022-10");

/// Index months pushed before 2023Q2 is frozen, so that its subsidy months April–June are decided: (month, CPI, food
/// CPI, published on). Demo data: the national CPI and food CPI year-on-year rises of March, April and May 2023 as the
/// National Bureau of Statistics published them on 2023-04-11, 2023-05-11 and 2023-06-09. Under 621000-1553-2021
/// (thresholds 3.50 and 6.00) none triggers.
pub const QUARTER_INDICES: [(&str, &str, &str, &str); 3] = [
    ("2023-03", "0.70", "2.40", "2023-04-11"),
    ("2023-04", "0.10", "0.40", "2023-05-11"),
    ("2023-05", "0.20", "1.00", "2023-06-09"),
];

fn indices_of(rows: &[(&str, &str, &str, &str)]) -> Vec<pb::PriceIndex> {
    rows.iter()
        .map(|(m, cpi, food, on)| pb::PriceIndex {
            month: (*m).into(),
            cpi_yoy: (*cpi).into(),
            food_cpi_yoy: (*food).into(),
            scpi_yoy: String::new(),
            published_on: (*on).into(),
        })
        .collect()
}

/// development_reform (`dr`) pushes [`QUARTER_INDICES`]; the hub's clock must be past 2023-06-09. Returns the line
/// the demo prints.
///
/// # Errors
/// A refused call.
pub async fn push_quarter_indices(dr: &mut Clients) -> anyhow::Result<String> {
    dr.subsidies.push_price_indices(pb::PushPriceIndicesRequest { indices: indices_of(&QUARTER_INDICES) }).await?;
    let pushed: Vec<String> =
        QUARTER_INDICES.iter().map(|(m, cpi, food, _)| format!("{m} CPI {cpi} % food {food} %")).collect();
    Ok(format!(
        "\ndevelopment_reform pushed the indices of March–May 2023 for 2023Q2's subsidy months (demo data: national \
         figures): {}\n",
        pushed.join("; ")
    ))
}

/// What the demo step computed (through the hub), for its printout and tests.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub decisions: Vec<pb::LinkageDecision>,
    pub summary: pb::SummarizeLinkageResponse,
    /// One entitlement of the first county with one, as listed.
    pub example: Option<pb::SubsidyEntitlement>,
    pub printed: String,
}

/// Runs the step: `dr` is development_reform's client, `civil` civil_affairs' city office, `lg` the leading group's.
/// The hub's clock is set to 2022-11-20 (Asia/Shanghai morning) so the indices and reports are not in the future.
///
/// # Errors
/// Any refused call.
pub async fn run(
    dr: &mut Clients,
    civil: &mut Clients,
    lg: &mut Clients,
    clock: &crate::hub::Clock,
) -> anyhow::Result<Figures> {
    clock.set(Some(chrono::DateTime::parse_from_rfc3339("2022-11-20T02:00:00Z")?.to_utc()));
    dr.subsidies.push_price_indices(pb::PushPriceIndicesRequest { indices: indices_of(&DEMO_INDICES) }).await?;

    let mut out = String::new();
    let _ = writeln!(out, "\nPrice subsidies Sep–Oct 2022 (DecideLinkage, indices pushed by development_reform)");
    let mut decisions = Vec::new();
    for m in DEMO_MONTHS {
        let d = lg
            .subsidies
            .decide_linkage(pb::DecideLinkageRequest { month: m.into() })
            .await?
            .into_inner()
            .decision
            .unwrap_or_default();
        out.push_str(&crate::client::subsidies::decision_table(&d));
        decisions.push(d);
    }

    // The counties report what the hub says they owe, month by month, with the two planted faults.
    for m in DEMO_MONTHS {
        let one = lg
            .subsidies
            .summarize_linkage(pb::SummarizeLinkageRequest { from_month: m.into(), to_month: m.into() })
            .await?
            .into_inner();
        for c in one.counties.iter().filter(|c| c.persons > 0) {
            if (c.county_code.as_str(), m) == UNREPORTED {
                continue;
            }
            let owed: crate::domain::money::Money = c.amount_owed.parse()?;
            let paid = if (c.county_code.as_str(), m) == SHORT_PAID {
                owed.checked_sub(crate::domain::money::Money::from_fen(10_000)?).unwrap_or_default()
            } else {
                owed
            };
            civil
                .coordination
                .submit_fund_report(pb::SubmitFundReportRequest {
                    county_code: c.county_code.clone(),
                    month: m.into(),
                    program: pb::FundProgram::PriceSubsidy as i32,
                    disbursed_on: format!("{m}-25"),
                    amount: paid.to_string(),
                    recipients: i64::try_from(c.persons).unwrap_or(i64::MAX),
                })
                .await?;
        }
    }

    let summary = lg
        .subsidies
        .summarize_linkage(pb::SummarizeLinkageRequest {
            from_month: DEMO_MONTHS[0].into(),
            to_month: DEMO_MONTHS[1].into(),
        })
        .await?
        .into_inner();
    let _ = writeln!(out, "\nBy county, subsidy months 2022-09..2022-10 (SummarizeLinkage, as the leading group)");
    out.push_str(&crate::client::subsidies::summary_table(&summary));
    let times: u64 = summary.counties.iter().map(|c| c.person_times).sum();
    let owed = summary
        .counties
        .iter()
        .map(|c| c.amount_owed.parse::<crate::domain::money::Money>())
        .sum::<Result<crate::domain::money::Money, _>>()?;
    let _ = writeln!(
        out,
        "city: {times} person-times, {owed} yuan owed (the letter, for the real roster: 508,300 person-times, \
         10,660,000 yuan)"
    );

    // One person's entitlement, explained: the first owed in the first county with anyone owed.
    let mut example = None;
    if let Some(county) = summary.counties.iter().find(|c| c.persons > 0) {
        let r = civil
            .subsidies
            .list_entitlements(pb::ListEntitlementsRequest {
                month: DEMO_MONTHS[0].into(),
                division_code: county.county_code.clone(),
                page_size: 50,
                purpose: "demo: one entitlement explained".into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        example = r.entitlements.into_iter().next();
    }
    if let Some(e) = &example {
        let masked =
            crate::domain::id_number::IdNumber::parse(&e.id_number).map(|i| i.masked()).unwrap_or_else(|_| "?".into());
        let _ = writeln!(out, "\nOne entitlement explained (ListEntitlements {}, {masked}):", DEMO_MONTHS[0]);
        for p in &e.considered {
            let _ = writeln!(out, "  eligible as {} ({}): {} yuan", p.basis, p.fact, p.amount);
        }
        for p in &e.payments {
            let _ = writeln!(out, "  paid once, at the highest: {} {} yuan", p.group, p.amount);
        }
    }
    Ok(Figures { decisions, summary, example, printed: out })
}
