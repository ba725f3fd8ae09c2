//! Section 12 of the quarterly summary: the subsidy campaigns of the quarter (issue 18 item 5; docs/subsidies.md
//! "In the quarterly summary"). Frozen into the snapshot as its optional JSON section `campaigns`
//! (docs/snapshot-format.md "Format v2") when the quarter has a campaign month, and read back by the summary as it
//! was frozen. These are the section's own types (not `domain::subsidy`'s), so that the frozen text keeps reading
//! whatever becomes of the live service's types.
//!
//! Money is [`Money`] (yuan, a decimal string "1234.56"); rises are the percent strings of `domain::subsidy::Rise`
//! ("6.10"); months `YYYY-MM`.

use serde::{Deserialize, Serialize};

use crate::money::Money;

/// The `campaign` of the price-subsidy linkage (价格临时补贴) in [`QuarterCampaign`]: its months may fall under
/// several rule versions, named per month.
pub const LINKAGE: &str = "PRICE_SUBSIDY_LINKAGE";

/// Section 12: the campaigns with a month in the quarter, as the hub decided them when the quarter was frozen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignSection {
    /// The MISMATCH tolerance per county and month (`fund_report_tolerance` when frozen), yuan.
    pub tolerance: Money,
    /// The price-subsidy linkage first (when a subsidy month of the quarter was decided), then each fixed-amount
    /// campaign of the quarter by month and code.
    pub campaigns: Vec<QuarterCampaign>,
}

/// One campaign over its months of the quarter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarterCampaign {
    /// [`LINKAGE`] for the price subsidies linked to prices, else the fixed-amount campaign's code.
    pub campaign: String,
    /// "价格临时补贴" or the fixed-amount campaign's name.
    pub name: String,
    /// The fund-report program reconciled against: PRICE_SUBSIDY, ONE_TIME_SUBSIDY, WINTER_WARMTH or OTHER.
    pub program: String,
    /// The campaign's months of the quarter, in order: for the linkage every subsidy month the hub could decide (a
    /// rule version covers its index month and development_reform had pushed the index), triggered or not.
    pub months: Vec<CampaignMonth>,
    /// Per county over `months`: the figures `SummarizeLinkage` (over those months) or `SummarizeCampaign` give.
    /// Counties with no person owed, no report and no finding are left out, so a quarter whose months did not
    /// trigger has none.
    pub counties: Vec<CampaignCounty>,
}

/// One subsidy month of a campaign, decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignMonth {
    /// The subsidy month (the month paid for), `YYYY-MM`.
    pub month: String,
    /// The linkage rule version that decided it, or the fixed-amount campaign's code.
    pub rule: String,
    /// The linkage's index month (the month before) and the index version used; absent for a fixed-amount campaign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_month: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_version: Option<i64>,
    /// Each index against its threshold, CPI first (the linkage only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comparisons: Vec<IndexComparison>,
    /// Whether the month triggered (always, for a fixed-amount campaign).
    pub triggered: bool,
}

/// One index of a linkage month against the rule version's threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexComparison {
    /// "CPI" or "FOOD_CPI".
    pub index: String,
    /// The year-on-year rise, percent ("2.50").
    pub rise: String,
    /// The threshold, percent ("3.0").
    pub threshold: String,
    /// `rise ≥ threshold`.
    pub crossed: bool,
}

/// One county's figures of a campaign over its months of the quarter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignCounty {
    /// GB/T 2260 county code (the county of the fact each payment rests on).
    pub county_code: String,
    /// Distinct persons owed in at least one month.
    pub persons: u64,
    /// Persons owed, summed over the months.
    pub person_times: u64,
    /// Amount owed over the months, yuan.
    pub amount_owed: Money,
    /// The county's latest report of the program for each month, summed; `None` when no month was reported.
    pub amount_reported: Option<Money>,
    /// `MISSING` (a month owed money and has no report), `MISMATCH` (a month's report differs from the amount owed
    /// by more than the tolerance) or empty.
    pub finding: String,
}
