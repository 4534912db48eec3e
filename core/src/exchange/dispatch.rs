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
use crate::manage::{self, ManageRequest, ManageResult, ModelAllowlist};
use crate::stored::{Recall, Recalled, StoredError, Unavailable};
use crate::Tick;

pub(super) enum Handled {
    Respond(Response),
    Call(Plan),
    Manage(ManageRequest),
    /// A Responses request that refers to stored state: the host looks it
    /// up first (`Output::Recall`).
    Recall(Recall),
}

/// Who the request is from, as admission established it, and what goes
/// with that.
struct Admitted {
    caller: Caller,
    headers: Vec<(&'static str, String)>,
    models: Option<std::sync::Arc<ModelAllowlist>>,
    metered: bool,
}

impl Admit {
    /// `None` while admission is pending.
    fn admitted(&self) -> Option<Admitted> {
        Some(match self {
            Admit::Pending => return None,
            Admit::NotNeeded => Admitted {
                caller: Caller::Anonymous,
                headers: Vec::new(),
                models: None,
                metered: false,
            },
            Admit::Allowed {
                key_id,
                headers,
                models,
                metered,
            } => Admitted {
                caller: key_id.map_or(Caller::Master, Caller::Key),
                headers: headers.clone(),
                models: models.clone(),
                metered: *metered,
            },
        })
    }
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
    /// has admitted it, or hands it to an upstream call; a proxied call
    /// whose body is longer than it holds starts with what it has.
    pub(super) fn try_dispatch(&mut self, now: Tick) {
        let State::Request { current, .. } = &self.state else {
            return;
        };
        let ready = current.body_done || current.streams_from_here(self.gateway.limits());
        if !ready || current.managing || current.recalling {
            return;
        }
        let complete = current.body_done;
        let Some(admitted) = current.admit.admitted() else {
            return;
        };
        let mut handled = self.handle(&current.head, &current.body, complete, admitted.caller);
        if let (Handled::Call(plan), State::Request { current, .. }) =
            (&mut handled, &mut self.state)
        {
            // The call keeps the parsed request; the raw bytes go now, not
            // when the call ends, so a large body is not held twice. A
            // proxied call sends them as they are: moved, not copied.
            plan.take_body(&mut current.body);
            current.body = Vec::new();
        }
        self.carry_out(now, handled, admitted);
    }

    fn carry_out(&mut self, now: Tick, handled: Handled, admitted: Admitted) {
        let Admitted {
            caller,
            headers,
            models,
            metered,
        } = admitted;
        match handled {
            Handled::Respond(mut response) => {
                response.headers.extend(headers);
                self.respond(now, response, caller);
            }
            Handled::Call(mut plan) => {
                // A streamed body's model is known at its end: the call
                // applies the list then.
                let models = match plan.defer_allowlist(models) {
                    Ok(()) => None,
                    Err(models) => models,
                };
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
            Handled::Recall(recall) => {
                if let State::Request { current, .. } = &mut self.state {
                    // The body stays: the call is planned from it again
                    // once the host has answered.
                    current.recalling = true;
                }
                self.outputs.push_back(Output::Recall(recall));
            }
        }
    }

    /// The host looked up what the Responses request refers to: plan the
    /// call with it.
    pub(super) fn recalled(
        &mut self,
        now: Tick,
        result: Result<Recalled, Unavailable>,
    ) -> Result<(), UsageError> {
        let State::Request { current, .. } = &mut self.state else {
            return Err(UsageError::UnexpectedRecalled);
        };
        if !current.recalling {
            return Err(UsageError::UnexpectedRecalled);
        }
        current.recalling = false;
        let body = std::mem::take(&mut current.body);
        let Some(admitted) = current.admit.admitted() else {
            return Err(UsageError::UnexpectedRecalled);
        };
        let gateway = &self.gateway;
        let handled = match result {
            Err(Unavailable) => Err(crate::stored::render_error(StoredError::Unavailable)),
            Ok(recalled) => {
                plan::openai_responses(gateway, &body, Some(recalled), admitted.caller).and_then(
                    |planned| match planned {
                        plan::Responses::Ready(plan) => plan.priced_only(gateway),
                        // Never asked twice: the recalled state is in.
                        plan::Responses::Recall(_) => Err(ApiError::new(
                            crate::api::Dialect::Responses,
                            ErrorKind::Internal,
                            "the stored state could not be read",
                        )),
                    },
                )
            }
        };
        let handled =
            handled.map_or_else(|err| Handled::Respond(Response::from(&err)), Handled::Call);
        self.carry_out(now, handled, admitted);
        // Pipelined requests may be waiting behind this one.
        self.drive(now);
        Ok(())
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
    fn handle(&self, head: &RequestHead, body: &[u8], complete: bool, caller: Caller) -> Handled {
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
        if let Endpoint::StoredResponse(route) = &endpoint {
            return match crate::stored::parse(route, head.query(), caller) {
                Ok(call) => Handled::Manage(ManageRequest::Stored(call)),
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
            Endpoint::Responses => {
                plan::openai_responses(gateway, body, None, caller).map(|planned| match planned {
                    plan::Responses::Ready(plan) => Handled::Call(plan),
                    plan::Responses::Recall(recall) => Handled::Recall(recall),
                })
            }
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
            } => proxy::plan(gateway, head, provider, rest, dialect, body, complete)
                .map(Handled::Call),
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
