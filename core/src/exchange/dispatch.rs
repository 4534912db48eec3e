//! Dispatching a request once it is read and admitted: answered by the
//! core itself, handed to the host's accounts service (the management
//! hand-off: `Output::Manage` out, `Input::Managed` back), or to an
//! upstream call.

use super::plan::Plan;
use super::rejection::rejection_error;
use super::{
    allowed, health, models, plan, proxy, public_answer, route, Admission, Admit, Caller, Exchange,
    Output, PublicAnswer, State, UsageError,
};
use crate::api::{ApiError, Endpoint, ErrorKind, GeminiMethod, Response};
use crate::http1::encode;
use crate::http1::RequestHead;
use crate::manage::{self, ManageRequest, ManageResult};
use crate::Tick;

pub(super) enum Handled {
    Respond(Response),
    Call(Plan),
    Manage(ManageRequest),
}

impl Exchange {
    /// The host's verdict on the request's credential.
    pub(super) fn admission(&mut self, now: Tick, admission: Admission) -> Result<(), UsageError> {
        let dialect = self.dialect();
        let State::Request { current, .. } = &mut self.state else {
            return Err(UsageError::UnexpectedAdmission);
        };
        if !matches!(current.admit, Admit::Pending) {
            return Err(UsageError::UnexpectedAdmission);
        }
        match admission {
            Admission::Allowed {
                key_id,
                headers,
                models,
                metered,
            } => {
                let expect_continue = current.head.expect_continue && !current.body_done;
                current.admit = Admit::Allowed {
                    key_id,
                    headers,
                    models,
                    metered,
                };
                if expect_continue {
                    encode::write_continue(&mut self.down);
                }
                self.try_dispatch(now);
                // Pipelined requests may be waiting behind this one.
                self.drive(now);
            }
            Admission::Rejected { reason, headers } => {
                let err = rejection_error(dialect, reason);
                let mut response = Response::from(&err);
                response.headers.extend(headers);
                self.respond(now, response, Caller::Anonymous);
                // Pipelined requests may be waiting behind this one.
                self.drive(now);
            }
        }
        Ok(())
    }

    /// Answers the current request once its body is complete and the host
    /// has admitted it, or hands it to an upstream call.
    pub(super) fn try_dispatch(&mut self, now: Tick) {
        let State::Request { current, .. } = &self.state else {
            return;
        };
        if !current.body_done || current.managing {
            return;
        }
        let (caller, headers, models, metered) = match &current.admit {
            Admit::Pending => return,
            Admit::NotNeeded => (Caller::Anonymous, Vec::new(), None, false),
            Admit::Allowed {
                key_id,
                headers,
                models,
                metered,
            } => (
                key_id.map_or(Caller::Master, Caller::Key),
                headers.clone(),
                models.clone(),
                *metered,
            ),
        };
        let mut handled = self.handle(&current.head, &current.body, caller);
        if let (Handled::Call(plan), State::Request { current, .. }) =
            (&mut handled, &mut self.state)
        {
            // The call keeps the parsed request; the raw bytes go now, not
            // when the call ends, so a large body is not held twice. A
            // proxied call sends them as they are: moved, not copied.
            plan.take_body(&mut current.body);
            current.body = Vec::new();
        }
        match handled {
            Handled::Respond(mut response) => {
                response.headers.extend(headers);
                self.respond(now, response, caller);
            }
            Handled::Call(plan) => {
                match allowed::restrict(plan, models.as_deref(), &self.gateway) {
                    Ok(plan) => self.start_call(now, plan, caller, headers, metered),
                    Err(err) => {
                        let mut response = Response::from(&err);
                        response.headers.extend(headers);
                        self.respond(now, response, caller);
                    }
                }
            }
            Handled::Manage(request) => {
                if let State::Request { current, .. } = &mut self.state {
                    current.managing = true;
                    // The body is parsed into the request; drop the bytes.
                    current.body = Vec::new();
                }
                self.outputs.push_back(Output::Manage(request));
            }
        }
    }

    /// The host carried out the management request: answer it.
    pub(super) fn managed(&mut self, now: Tick, result: ManageResult) -> Result<(), UsageError> {
        let State::Request { current, .. } = &mut self.state else {
            return Err(UsageError::UnexpectedManaged);
        };
        if !current.managing {
            return Err(UsageError::UnexpectedManaged);
        }
        current.managing = false;
        let caller = current.admit.caller();
        let mut response = manage::render(result);
        if let Admit::Allowed { headers, .. } = &current.admit {
            response.headers.extend(headers.iter().cloned());
        }
        self.respond(now, response, caller);
        // Pipelined requests may be waiting behind this one.
        self.drive(now);
        Ok(())
    }

    /// The endpoints: answered by the core itself, by the host's accounts
    /// service, or by a provider.
    fn handle(&self, head: &RequestHead, body: &[u8], caller: Caller) -> Handled {
        let endpoint = match route(head, &self.gateway) {
            Ok(endpoint) => endpoint,
            Err(err) => return Handled::Respond(Response::from(&err)),
        };
        if let Endpoint::MessageBatches(op) = &endpoint {
            let max_cost = |params: &[u8]| plan::batch_request_max_cost(&self.gateway, params);
            return match crate::batch::parse(op, head, body, caller, max_cost) {
                Ok(call) => Handled::Manage(ManageRequest::Batch(call)),
                Err(err) => Handled::Respond(Response::from(&err)),
            };
        }
        match manage::parse(&endpoint, head.query(), body, caller) {
            Ok(Some(request)) => return Handled::Manage(request),
            Ok(None) => {}
            Err(err) => return Handled::Respond(Response::from(&err)),
        }
        let gateway = &self.gateway;
        let result = match endpoint {
            Endpoint::Health | Endpoint::OpenApi | Endpoint::Dashboard(_) => {
                let answer = public_answer(&endpoint).map_or_else(health, PublicAnswer::response);
                return Handled::Respond(answer);
            }
            Endpoint::ListModels(dialect) => {
                models::list(gateway, dialect, head.query()).map(Handled::Respond)
            }
            Endpoint::OpenRouterModels => {
                models::openrouter::list(gateway, head.query()).map(Handled::Respond)
            }
            Endpoint::OpenRouterModelCount => Ok(Handled::Respond(models::openrouter::count(
                gateway,
                head.query(),
            ))),
            Endpoint::GetModel { dialect, model } => {
                models::get(gateway, dialect, &model).map(Handled::Respond)
            }
            Endpoint::ChatCompletions => plan::openai_chat(gateway, body).map(Handled::Call),
            Endpoint::Embeddings => plan::openai_embeddings(gateway, body).map(Handled::Call),
            Endpoint::Responses => plan::openai_responses(gateway, body).map(Handled::Call),
            Endpoint::Messages => plan::anthropic_messages(gateway, head, body).map(Handled::Call),
            Endpoint::Gemini {
                model,
                method:
                    method @ (GeminiMethod::GenerateContent | GeminiMethod::StreamGenerateContent),
                ..
            } => plan::gemini_generate(gateway, head, &model, method, body).map(Handled::Call),
            Endpoint::CountTokens => {
                plan::anthropic_count_tokens(gateway, head, body).map(Handled::Call)
            }
            Endpoint::Gemini {
                model,
                method: GeminiMethod::CountTokens,
                ..
            } => plan::gemini_count_tokens(gateway, &model, body).map(Handled::Call),
            Endpoint::Gemini {
                model,
                method: method @ (GeminiMethod::EmbedContent | GeminiMethod::BatchEmbedContents),
                ..
            } => plan::gemini_embed(gateway, &model, method, body).map(Handled::Call),
            Endpoint::ProviderProxy {
                provider,
                rest,
                dialect,
            } => proxy::plan(gateway, head, provider, rest, dialect, body).map(Handled::Call),
            other => Err(ApiError::new(
                other.dialect(),
                ErrorKind::NotImplemented,
                format!(
                    "endpoint `{}` is not available in this build yet",
                    other.name()
                ),
            )),
        };
        result
            .and_then(|handled| match handled {
                Handled::Call(plan) => plan.priced_only(gateway).map(Handled::Call),
                other => Ok(other),
            })
            .unwrap_or_else(|err| Handled::Respond(Response::from(&err)))
    }
}
