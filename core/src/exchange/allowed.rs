//! A key's model allowlist applied to a planned call: candidates outside
//! it are dropped (a fallback list keeps its allowed entries); none left
//! is a 403 in the route's dialect, before any upstream is contacted.
//!
//! A proxied read (GET, DELETE, HEAD…) that names no model (listing a
//! provider's models, fetching a file) uses none, so the list has nothing
//! to say about it; a body-carrying proxied call naming no model is held
//! to the list as the model `provider/` (only `provider/*`-like patterns
//! allow it), since what it would generate cannot be told.

use super::call::CallRequest;
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
    if let CallRequest::Proxy(request) = &plan.request {
        let names_none = plan.candidates.iter().all(|c| c.model.is_empty());
        if names_none && !request.unmetered("") {
            return Ok(plan);
        }
    }
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

#[cfg(test)]
mod tests {
    use crate::manage::ModelAllowlist;

    #[test]
    fn a_nameless_call_is_allowed_only_by_a_whole_provider_pattern() {
        // What `restrict` asks for a body-carrying proxied call naming no model.
        let whole = ModelAllowlist::new(vec!["openai/*".into()]).unwrap();
        assert!(whole.allows("openai", ""));
        let some = ModelAllowlist::new(vec!["openai/gpt-4o".into()]).unwrap();
        assert!(!some.allows("openai", ""));
        assert!(!whole.allows("gemini", ""));
    }
}
