//! How a call ended ([`Finished`]), as the access log and billing read it,
//! and the usage of attempts that failed before it ([`EarlierUsage`]).

use super::super::{Attempts, Outcome};
use crate::api::Dialect;
use crate::usage::Usage;

/// How a call ended, for the access log and billing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Finished {
    pub status: u16,
    pub provider: Option<usize>,
    pub model: Option<String>,
    pub usage: Option<Usage>,
    /// The response reached the client whole (no abort, no cut stream).
    pub complete: bool,
    /// `usage` is the gateway's estimate, not the provider's report.
    pub estimated: bool,
    /// Usage reported by providers of earlier attempts that then failed.
    pub earlier: Vec<EarlierUsage>,
    /// The served attempt's provider status; `None` without a response head.
    pub upstream_status: Option<u16>,
    /// The id the client saw in the answer, if it carried one.
    pub response_id: Option<String>,
    /// The client asked for a stream.
    pub stream: bool,
    /// A proxied answer relayed whole whose usage could not be read: billed
    /// as zero tokens, and shown so (`Outcome::Unrecognized`).
    pub unrecognized: bool,
    /// The answer broke off after its head went out: the client's
    /// connection must close (the body cannot be completed).
    pub abort: bool,
    /// The attempts that went upstream, in order.
    pub attempts: Attempts,
    /// The client's dialect.
    pub dialect: Dialect,
    /// A Responses answer to keep.
    pub keep: Option<Box<super::ToKeep>>,
}

impl Finished {
    /// How billing counts the call: a provider's error status, or an
    /// answer that never reached the client, is a failure, not a completion.
    pub fn outcome(&self) -> Outcome {
        let provider_ok = self
            .upstream_status
            .is_some_and(|s| (200..300).contains(&s));
        if self.estimated {
            Outcome::Estimated
        } else if self.complete && provider_ok && self.unrecognized {
            Outcome::Unrecognized
        } else if self.complete && provider_ok {
            Outcome::Complete
        } else if provider_ok && matches!(self.status, 200 | 499) {
            // The provider answered; the client did not get all of it.
            Outcome::Incomplete
        } else {
            Outcome::Error
        }
    }
}

/// What a failed attempt's provider reported before it failed, or the
/// gateway's estimate when it did work but reported nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EarlierUsage {
    pub provider: usize,
    pub model: String,
    pub usage: Usage,
    /// `usage` is the gateway's estimate; its prompt is counted later (see
    /// `Call::count_prompt`).
    pub estimated: bool,
    pub status: Option<u16>,
}
