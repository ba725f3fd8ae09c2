//! `doudi.v1.Reference` handlers: reference data in force.

use tonic::{Request, Response, Status};

use super::auth::Authenticator;
use super::pb::{self, reference_server::Reference};
use crate::hub::Hub;

pub struct ReferenceService {
    pub hub: Hub,
    pub auth: Authenticator,
}

#[tonic::async_trait]
impl Reference for ReferenceService {
    async fn list_standards(
        &self,
        req: Request<pb::ListStandardsRequest>,
    ) -> Result<Response<pb::ListStandardsResponse>, Status> {
        self.auth.principal(&req)?;
        let year = req.into_inner().year;
        let rows = self.hub.list_standards(if year == 0 { None } else { Some(i64::from(year)) }).await?;
        let standards = rows
            .into_iter()
            .map(|r| pb::Standard {
                year: r.year as u32,
                division_code: r.division_code,
                item: r.item,
                name: r.name,
                amount: r.amount,
                unit: match r.unit.as_str() {
                    "PER_PERSON_MONTH" => pb::StandardUnit::PerPersonMonth as i32,
                    "PER_PERSON_YEAR" => pb::StandardUnit::PerPersonYear as i32,
                    _ => pb::StandardUnit::Unspecified as i32,
                },
                effective_from: r.effective_from,
                source: r.source,
            })
            .collect();
        Ok(Response::new(pb::ListStandardsResponse { standards }))
    }

    async fn list_divisions(
        &self,
        req: Request<pb::ListDivisionsRequest>,
    ) -> Result<Response<pb::ListDivisionsResponse>, Status> {
        self.auth.principal(&req)?;
        let rows = self.hub.list_divisions().await?;
        let divisions = rows
            .into_iter()
            .map(|r| pb::Division {
                code: r.code,
                name: r.name,
                level: r.level,
                parent_code: r.parent_code.unwrap_or_default(),
            })
            .collect();
        Ok(Response::new(pb::ListDivisionsResponse { divisions }))
    }

    async fn get_policy(&self, req: Request<pb::GetPolicyRequest>) -> Result<Response<pb::GetPolicyResponse>, Status> {
        self.auth.principal(&req)?;
        let r = req.into_inner();
        let as_of = super::convert::date_in(&r.as_of, "as_of", self.hub.today())
            .map_err(|e| super::status::invalid(&e.field, e.reason))?;
        let medical_policies = self
            .hub
            .policies_in_force(as_of, &r.pooling_area)
            .await?
            .iter()
            .map(|(p, next)| super::medical::policy_out(p, *next))
            .collect();
        Ok(Response::new(pb::GetPolicyResponse { as_of: as_of.to_string(), medical_policies }))
    }
}
