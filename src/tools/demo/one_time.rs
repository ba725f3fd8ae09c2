//! The demo's fixed-amount campaign (issue 18 item 4; docs/subsidies.md "The demo"): the one-time living subsidy of
//! July 2022 (一次性生活补贴, 甘民发〔2022〕101号; the letter: 211,300 persons, 49,460,800 yuan,
//! docs/domain/qingyang-figures.md §4). The system administrator adds it through `Admin.AddFixedCampaign`, the
//! counties report what they paid (ONE_TIME_SUBSIDY fund reports of 2022-07), and the leading group reads
//! `SummarizeCampaign`: the hub decides who was owed what and reconciles, in one aggregate query.
//!
//! **Demo data, not policy.** The amount per group of 甘民发〔2022〕101号 is not in docs/domain, so the campaign is
//! coded `demo-…` and pays every dibao and tekun person the letter's average, 49,460,800 / 211,300 = 234.0785… →
//! 234.08 yuan (half-up to the fen). The counties' reports come from their own books: the synthetic population's
//! dibao and tekun persons whose assistance began by 2022-07-31 ([`county_books`]), × 234.08; one planted fault:
//! 合水县 (621024) reports one person and 234.08 yuan fewer (MISMATCH). Every figure printed is the hub's.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::NaiveDate;
use tonic::transport::Channel;

use crate::client::Clients;
use crate::domain::division::QINGYANG_COUNTIES;
use crate::domain::fact::Program;
use crate::domain::money::Money;
use crate::grpc::pb::{self, admin_client::AdminClient};
use crate::tools::synth::Population;

/// The campaign's code: `demo-` says its amounts are demo data.
pub const CODE: &str = "demo-2022-07-one-time-living";

/// The month paid.
pub const MONTH: &str = "2022-07";

/// Yuan a person, dibao and tekun alike: the letter's 49,460,800 yuan / 211,300 persons = 234.0785… → 234.08.
pub const AMOUNT_FEN: i128 = 23_408;

/// The source recorded with the campaign (Admin `AddFixedCampaign`).
pub const SOURCE: &str = "demo data: 234.08 yuan a person = the letter's 49,460,800 yuan / 211,300 persons \
    (docs/domain/qingyang-figures.md §4); the amounts per group of 甘民发〔2022〕101号 are not in docs/domain";

/// The county reporting one person fewer than its books (合水县).
pub const SHORT_COUNTY: &str = "621024";

/// The campaign as `doudi subsidies campaign add` reads it.
pub fn campaign_json() -> String {
    let amount = Money::from_fen(AMOUNT_FEN).expect("in range").to_string();
    serde_json::json!({
        "code": CODE,
        "name": "一次性生活补贴（演示数据）",
        "month": MONTH,
        "fund_program": "ONE_TIME_SUBSIDY",
        "amounts": [{"group": "DIBAO", "base": amount}, {"group": "TEKUN", "base": amount}],
        "pay_once_at_highest": true,
    })
    .to_string()
}

/// The counties' own books: per county, the dibao and tekun persons of `pop` whose assistance (ACTIVE, open-ended,
/// one fact a person: `synth`) began on or before 2022-07-31, the last day of the campaign's month.
pub fn county_books(pop: &Population) -> BTreeMap<&'static str, u64> {
    let last_day = NaiveDate::from_ymd_opt(2022, 7, 31).expect("valid date");
    let mut books = BTreeMap::new();
    for p in pop.persons() {
        if matches!(p.program(), Program::Dibao | Program::Tekun) && p.assistance_from() <= last_day {
            *books.entry(p.county_code()).or_default() += 1;
        }
    }
    books
}

/// What the step computed (through the hub), for its printout and tests.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub summary: pb::SummarizeCampaignResponse,
    pub printed: String,
}

/// Runs the step: `admin` is the system administrator's Admin client, `civil` civil_affairs' city office (it submits
/// on behalf of the county offices, as in the 2023 reports), `lg` the leading group's.
///
/// # Errors
/// Any refused call.
pub async fn run(
    pop: &Population,
    admin: &mut AdminClient<Channel>,
    civil: &mut Clients,
    lg: &mut Clients,
) -> anyhow::Result<Figures> {
    admin
        .add_fixed_campaign(pb::AddFixedCampaignRequest { campaign_json: campaign_json(), source: SOURCE.into() })
        .await?;
    let books = county_books(pop);
    for (county, _) in QINGYANG_COUNTIES {
        let persons = books.get(county).copied().unwrap_or(0);
        let paid = if county == SHORT_COUNTY { persons.saturating_sub(1) } else { persons };
        if persons == 0 {
            continue;
        }
        civil
            .coordination
            .submit_fund_report(pb::SubmitFundReportRequest {
                county_code: (*county).to_owned(),
                month: MONTH.into(),
                program: pb::FundProgram::OneTimeSubsidy as i32,
                disbursed_on: format!("{MONTH}-28"),
                amount: Money::from_fen(AMOUNT_FEN * i128::from(paid))?.to_string(),
                recipients: i64::try_from(paid).unwrap_or(i64::MAX),
            })
            .await?;
    }
    let t = std::time::Instant::now();
    let summary =
        lg.subsidies.summarize_campaign(pb::SummarizeCampaignRequest { campaign: CODE.into() }).await?.into_inner();
    let secs = t.elapsed().as_secs_f64();

    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nOne-time living subsidy {MONTH} (fixed-amount campaign {CODE}, added by the system administrator through \
         Admin.AddFixedCampaign)"
    );
    if let Some(d) = &summary.campaign {
        let amounts: Vec<String> = d.amounts.iter().map(|a| format!("{} {}", a.group, a.amount)).collect();
        let _ = writeln!(
            out,
            "  month {}, reported as ONE_TIME_SUBSIDY; yuan a person: {}; {}",
            d.month,
            amounts.join(", "),
            if d.pay_once_at_highest { "paid once, at the highest amount" } else { "paid once per group" }
        );
        let _ = writeln!(out, "  source: {}", d.rule_source);
    }
    let _ = writeln!(
        out,
        "By county (SummarizeCampaign in {secs:.1}s, as the leading group; the counties reported from their own \
         books, 合水县 one person short)"
    );
    let as_linkage = pb::SummarizeLinkageResponse {
        months: Vec::new(),
        counties: summary.counties.clone(),
        tolerance: summary.tolerance.clone(),
    };
    out.push_str(&crate::client::subsidies::summary_table(&as_linkage));
    let persons: u64 = summary.counties.iter().map(|c| c.persons).sum();
    let owed = summary.counties.iter().map(|c| c.amount_owed.parse::<Money>()).sum::<Result<Money, _>>()?;
    let _ = writeln!(
        out,
        "city: {persons} persons, {owed} yuan owed (the letter, for the real roster: 211,300 persons, 49,460,800 yuan)"
    );
    Ok(Figures { summary, printed: out })
}
