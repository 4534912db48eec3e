//! What a known key must also be for a request to go on: enabled, not
//! expired, and of the kind the endpoint needs. Management keys only
//! manage (as at OpenRouter); inference keys never manage; any key may
//! read its own record. The master key is not subject to these.

use arouter_core::api::Scope;
use arouter_core::exchange::Rejection;

use crate::store::KeyRecord;

pub fn check(record: &KeyRecord, scope: Scope, now_unix_secs: i64) -> Result<(), Rejection> {
    if record.disabled {
        return Err(Rejection::InvalidKey);
    }
    if record.expired(now_unix_secs) {
        return Err(Rejection::ExpiredKey);
    }
    match scope {
        Scope::Management if !record.management => Err(Rejection::Forbidden),
        Scope::Inference if record.management => Err(Rejection::ManagementOnly),
        Scope::Public | Scope::Key | Scope::Management | Scope::Inference => Ok(()),
    }
}
