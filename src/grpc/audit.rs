//! `doudi.v1.Audit` handlers.

use tonic::{Request, Response, Status};

use super::auth::Authenticator;
use super::pb::{self, audit_server::Audit};
use crate::domain::policy::AccessPolicy;

pub struct AuditService {
    pub policy: std::sync::Arc<AccessPolicy>,
    pub auth: Authenticator,
}

#[tonic::async_trait]
impl Audit for AuditService {
    async fn who_am_i(&self, req: Request<pb::WhoAmIRequest>) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let p = self.auth.principal(&req)?;
        let rules = self.policy.rules(p.agency()).cloned().unwrap_or_default();
        Ok(Response::new(pb::WhoAmIResponse {
            agency: p.agency().to_string(),
            division_code: p.county().map(|c| c.as_str().to_owned()).unwrap_or_default(),
            spiffe_id: p.spiffe_id().to_owned(),
            push_kinds: rules.push.iter().map(|k| k.as_str().to_owned()).collect(),
            read_permissions: rules
                .read
                .iter()
                .map(|(kind, rule)| pb::ReadPermission {
                    kind: kind.as_str().to_owned(),
                    fields: rule.field_list().map(|f| f.to_vec()).unwrap_or_default(),
                    all_fields: rule.field_list().is_none(),
                    condition: rule.condition.map(|c| c.as_str().to_owned()).unwrap_or_default(),
                })
                .collect(),
            read_aggregates: rules.aggregates,
        }))
    }
}
