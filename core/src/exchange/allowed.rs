//! A key's model allowlist applied to a planned call: candidates outside
//! it are dropped (a fallback list keeps its allowed entries); none left
//! is a 403 in the route's dialect, before any upstream is contacted.

use super::plan::Plan;
use crate::api::{ApiError, ErrorKind};
use crate::gateway::Gateway;
use crate::manage::ModelAllowlist;

pub(super) fn restrict(
    mut plan: Plan,
    models: Option<&ModelAllowlist>,
    gateway: &Gateway,
) -> Result<Plan, ApiError> {
    let Some(models) = models else {
        return Ok(plan);
    };
    let provider = |index: usize| {
        gateway
            .providers()
            .get(index)
            .map_or("", |p| p.name.as_str())
    };
    let refused = plan
        .candidates
        .first()
        .map(|c| format!("{}/{}", provider(c.provider), c.model));
    plan.candidates
        .retain(|c| models.allows(provider(c.provider), &c.model));
    if plan.candidates.is_empty() {
        let message = match refused {
            Some(model) => format!("this key may not use the model `{model}`"),
            None => "this key may not use this model".to_string(),
        };
        return Err(
            ApiError::new(plan.dialect, ErrorKind::PermissionDenied, message)
                .with_code("model_not_allowed"),
        );
    }
    Ok(plan)
}
