//! The subsidy campaigns of a quarter, for its snapshot (issue 18 item 5; docs/subsidies.md "In the quarterly
//! summary"): the figures `SummarizeLinkage` and `SummarizeCampaign` give, computed by the same code
//! ([`Hub::county_figures`]) when the quarter is frozen, and frozen with it as the optional section `campaigns`.

use super::{CountyCampaign, DecisionView};
use crate::domain::calendar::Quarter;
use crate::domain::summary::campaigns::{
    CampaignCounty, CampaignMonth, CampaignSection, IndexComparison, LINKAGE, QuarterCampaign,
};
use crate::hub::{Hub, HubError};

/// The name of the price-subsidy linkage in the section.
const LINKAGE_NAME: &str = "价格临时补贴";

impl Hub {
    /// The campaigns of `quarter` as known now (no rights checked: `CreateSnapshot`'s caller is checked): the
    /// price-subsidy linkage over the quarter's subsidy months the hub can decide (a rule version covers the index
    /// month and the index is stored; a month it cannot decide is left out, as in the monthly report), and every
    /// fixed-amount campaign of a month of the quarter, each with its county figures against the fund reports of its
    /// program. `None` when there is no such month: the snapshot then has no `campaigns` section (format v1).
    ///
    /// One pass over the roster per triggered month (none for a month that did not trigger).
    ///
    /// # Errors
    /// The store's; a stored campaign whose fund program does not parse is `Corrupt`.
    pub(crate) async fn campaign_section(&self, quarter: Quarter) -> Result<Option<CampaignSection>, HubError> {
        let mut linkage = Vec::new();
        for m in quarter.months() {
            match self.linkage_decision(m).await {
                Ok(d) => linkage.push(d),
                Err(HubError::FailedPrecondition(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let fixed: Vec<_> = self
            .store
            .fixed_campaigns()
            .await?
            .into_iter()
            .filter(|c| quarter.months().contains(&c.campaign.month))
            .collect();
        if linkage.is_empty() && fixed.is_empty() {
            return Ok(None);
        }
        let mut campaigns = Vec::new();
        if !linkage.is_empty() {
            campaigns.push(self.quarter_campaign(LINKAGE.to_owned(), LINKAGE_NAME.to_owned(), linkage).await?);
        }
        for c in fixed {
            let d = self.campaign_decision(&c.campaign.code).await?;
            campaigns.push(self.quarter_campaign(c.campaign.code, c.campaign.name, vec![d]).await?);
        }
        Ok(Some(CampaignSection { tolerance: self.limits.fund_report_tolerance, campaigns }))
    }

    /// One campaign of the section: its months and its county figures over them ([`Hub::county_figures`], every
    /// county, those with nothing owed, nothing reported and no finding left out).
    async fn quarter_campaign(
        &self,
        campaign: String,
        name: String,
        decided: Vec<DecisionView>,
    ) -> Result<QuarterCampaign, HubError> {
        let program = decided.first().map(|d| d.fund_program.as_str().to_owned()).unwrap_or_default();
        let months = decided.iter().map(month_of).collect();
        let figures = self.county_figures(None, decided).await?;
        let counties = figures
            .counties
            .into_iter()
            .filter(|c| c.person_times > 0 || c.amount_reported.is_some() || !c.finding.is_empty())
            .map(|c: CountyCampaign| CampaignCounty {
                county_code: c.county_code,
                persons: c.persons,
                person_times: c.person_times,
                amount_owed: c.amount_owed,
                amount_reported: c.amount_reported,
                finding: c.finding,
            })
            .collect();
        Ok(QuarterCampaign { campaign, name, program, months, counties })
    }
}

/// A decided month as the section keeps it.
fn month_of(d: &DecisionView) -> CampaignMonth {
    let linkage = d.index.is_some();
    CampaignMonth {
        month: d.decision.subsidy_month.to_string(),
        rule: d.decision.rule_version.clone(),
        index_month: linkage.then(|| d.decision.index_month.to_string()),
        index_version: linkage.then_some(d.index_version),
        comparisons: d
            .decision
            .comparisons
            .iter()
            .map(|c| IndexComparison {
                index: c.index.as_str().to_owned(),
                rise: c.rise.to_string(),
                threshold: c.threshold.to_string(),
                crossed: c.crossed,
            })
            .collect(),
        triggered: d.decision.triggered,
    }
}
