//! `doudi.v1.Subsidies` handlers (issue 18; docs/subsidies.md): glue between the wire and `hub::subsidy`.

use tonic::{Request, Response, Status};

use super::auth::Authenticator;
use super::pb::{self, subsidies_server::Subsidies};
use super::snapshot::month_in;
use super::status::{Refusal, invalid};
use crate::domain::division::DivisionCode;
use crate::domain::fact::Residence;
use crate::domain::subsidy::{GroupAmount, LinkageDecision, Payment, PriceIndexInput};
use crate::domain::versioning::Decision;
use crate::hub::Hub;
use crate::hub::subsidy::{CampaignRef, DecisionView};

pub struct SubsidiesService {
    pub hub: Hub,
    pub auth: Authenticator,
}

fn residence_out(r: Option<Residence>) -> i32 {
    match r {
        None => pb::Residence::Unspecified as i32,
        Some(Residence::Urban) => pb::Residence::Urban as i32,
        Some(Residence::Rural) => pb::Residence::Rural as i32,
    }
}

fn amount_out(a: &GroupAmount) -> pb::GroupAmount {
    pb::GroupAmount {
        group: a.group.as_str().to_owned(),
        residence: residence_out(a.residence),
        base: a.base.to_string(),
        amount: a.amount.to_string(),
    }
}

/// A decided month on the wire.
pub fn decision_out(v: &DecisionView) -> pb::LinkageDecision {
    let d: &LinkageDecision = &v.decision;
    pb::LinkageDecision {
        month: d.subsidy_month.to_string(),
        index_month: d.index_month.to_string(),
        index_version: u32::try_from(v.index_version).unwrap_or(u32::MAX),
        index_published_on: v.index.as_ref().map(|i| i.published_on.to_string()).unwrap_or_default(),
        rule_version: d.rule_version.clone(),
        rule_source: v.rule_source.clone(),
        comparisons: d
            .comparisons
            .iter()
            .map(|c| pb::IndexComparison {
                index: c.index.as_str().to_owned(),
                rise: c.rise.to_string(),
                threshold: c.threshold.to_string(),
                crossed: c.crossed,
            })
            .collect(),
        triggered: d.triggered,
        applied_index: d.applied.map(|c| c.index.as_str().to_owned()).unwrap_or_default(),
        amounts: d.amounts.iter().map(amount_out).collect(),
        pay_once_at_highest: d.pay_once_at_highest,
        fund_program: super::coordination::fund_program_out(Some(v.fund_program)),
    }
}

fn county_out(c: &crate::hub::subsidy::CountyCampaign) -> pb::CountyLinkage {
    pb::CountyLinkage {
        county_code: c.county_code.clone(),
        persons: c.persons,
        person_times: c.person_times,
        amount_owed: c.amount_owed.to_string(),
        amount_reported: c.amount_reported.map(|m| m.to_string()).unwrap_or_default(),
        finding: c.finding.clone(),
    }
}

fn payment_out(p: &Payment, fact: &str) -> pb::SubsidyPayment {
    pb::SubsidyPayment {
        group: p.group.as_str().to_owned(),
        residence: residence_out(p.residence),
        amount: p.amount.to_string(),
        basis: p.basis.clone(),
        fact: fact.to_owned(),
    }
}

/// A campaign code: 1–64 characters, no control character.
fn campaign_in(s: &str) -> Result<String, Status> {
    if s.is_empty() || s.chars().count() > 64 || s.chars().any(char::is_control) {
        return Err(invalid("campaign", "must be a campaign code of 1-64 printable characters"));
    }
    Ok(s.to_owned())
}

fn outcome_out(d: Decision) -> i32 {
    match d {
        Decision::Accepted => pb::IndexOutcome::Accepted as i32,
        Decision::NewVersion => pb::IndexOutcome::NewVersion as i32,
        Decision::Duplicate => pb::IndexOutcome::Duplicate as i32,
        Decision::Stale => pb::IndexOutcome::Unspecified as i32,
    }
}

#[tonic::async_trait]
impl Subsidies for SubsidiesService {
    async fn push_price_indices(
        &self,
        req: Request<pb::PushPriceIndicesRequest>,
    ) -> Result<Response<pb::PushPriceIndicesResponse>, Status> {
        let principal = self.auth.principal(&req)?;
        self.hub.may_push_price_indices(&principal)?;
        let inputs: Vec<PriceIndexInput> = req
            .into_inner()
            .indices
            .into_iter()
            .map(|p| PriceIndexInput {
                month: p.month,
                cpi_yoy: p.cpi_yoy,
                food_cpi_yoy: p.food_cpi_yoy,
                scpi_yoy: p.scpi_yoy,
                published_on: p.published_on,
            })
            .collect();
        let rows = self.hub.check_price_indices(&inputs).map_err(|v| Status::from(Refusal::invalid_fields(v)))?;
        let outcomes = self.hub.push_price_indices(&principal, &rows).await?;
        Ok(Response::new(pb::PushPriceIndicesResponse { outcomes: outcomes.into_iter().map(outcome_out).collect() }))
    }

    async fn decide_linkage(
        &self,
        req: Request<pb::DecideLinkageRequest>,
    ) -> Result<Response<pb::DecideLinkageResponse>, Status> {
        let principal = self.auth.principal(&req)?;
        let month = month_in(&req.get_ref().month, "month")?;
        let v = self.hub.decide_linkage(&principal, month).await?;
        Ok(Response::new(pb::DecideLinkageResponse { decision: Some(decision_out(&v)) }))
    }

    async fn list_entitlements(
        &self,
        req: Request<pb::ListEntitlementsRequest>,
    ) -> Result<Response<pb::ListEntitlementsResponse>, Status> {
        let principal = self.auth.principal(&req)?;
        let r = req.into_inner();
        let which = match (r.month.is_empty(), r.campaign.is_empty()) {
            (_, true) => CampaignRef::Linkage(month_in(&r.month, "month")?),
            (true, false) => CampaignRef::Fixed(campaign_in(&r.campaign)?),
            (false, false) => return Err(invalid("campaign", "give month or campaign, not both")),
        };
        let division = if r.division_code.is_empty() {
            None
        } else {
            Some(r.division_code.parse::<DivisionCode>().map_err(|e| invalid("division_code", e))?)
        };
        let page = self
            .hub
            .list_entitlements(&principal, &which, division, r.page_size as usize, &r.page_token, &r.purpose)
            .await?;
        let entitlements = page
            .entitlements
            .iter()
            .map(|e| {
                let fact_of = |p: &Payment| {
                    e.entitlement
                        .considered
                        .iter()
                        .position(|c| c == p)
                        .and_then(|i| e.facts.get(i))
                        .cloned()
                        .unwrap_or_default()
                };
                pb::SubsidyEntitlement {
                    id_number: e.id_number.as_str().to_owned(),
                    county_code: e.county_code.clone(),
                    total: e.entitlement.total().to_string(),
                    payments: e.entitlement.payments.iter().map(|p| payment_out(p, &fact_of(p))).collect(),
                    considered: e.entitlement.considered.iter().map(|p| payment_out(p, &fact_of(p))).collect(),
                }
            })
            .collect();
        Ok(Response::new(pb::ListEntitlementsResponse {
            decision: Some(decision_out(&page.decision)),
            entitlements,
            next_page_token: page.next_page_token,
        }))
    }

    async fn summarize_linkage(
        &self,
        req: Request<pb::SummarizeLinkageRequest>,
    ) -> Result<Response<pb::SummarizeLinkageResponse>, Status> {
        let principal = self.auth.principal(&req)?;
        let r = req.get_ref();
        let from = month_in(&r.from_month, "from_month")?;
        let to = month_in(&r.to_month, "to_month")?;
        let s = self.hub.summarize_linkage(&principal, from, to).await?;
        Ok(Response::new(pb::SummarizeLinkageResponse {
            months: s.months.iter().map(decision_out).collect(),
            counties: s.counties.iter().map(county_out).collect(),
            tolerance: s.tolerance.to_string(),
        }))
    }

    async fn summarize_campaign(
        &self,
        req: Request<pb::SummarizeCampaignRequest>,
    ) -> Result<Response<pb::SummarizeCampaignResponse>, Status> {
        let principal = self.auth.principal(&req)?;
        let code = campaign_in(&req.get_ref().campaign)?;
        let s = self.hub.summarize_campaign(&principal, &code).await?;
        Ok(Response::new(pb::SummarizeCampaignResponse {
            campaign: s.months.first().map(decision_out),
            counties: s.counties.iter().map(county_out).collect(),
            tolerance: s.tolerance.to_string(),
        }))
    }
}
