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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(management: bool, disabled: bool, expires_at: Option<i64>) -> KeyRecord {
        KeyRecord {
            id: 1,
            hash: [0; 32],
            prefix: String::new(),
            name: "k".into(),
            management,
            disabled,
            rate_limit: None,
            created_at: 0,
            suffix: String::new(),
            limit_micros: None,
            limit_reset: None,
            include_byok_in_limit: false,
            expires_at,
            allowed_models: None,
            updated_at: None,
        }
    }

    #[test]
    fn each_kind_of_key_on_each_scope() {
        let now = 1_000;
        let user = key(false, false, None);
        let admin = key(true, false, None);
        assert_eq!(check(&user, Scope::Inference, now), Ok(()));
        assert_eq!(check(&user, Scope::Key, now), Ok(()));
        assert_eq!(
            check(&user, Scope::Management, now),
            Err(Rejection::Forbidden)
        );
        assert_eq!(check(&admin, Scope::Management, now), Ok(()));
        assert_eq!(check(&admin, Scope::Key, now), Ok(()));
        assert_eq!(
            check(&admin, Scope::Inference, now),
            Err(Rejection::ManagementOnly)
        );
        assert_eq!(
            check(&key(false, true, None), Scope::Key, now),
            Err(Rejection::InvalidKey)
        );
        // Expiry is inclusive of its second; a later one is fine.
        assert_eq!(
            check(&key(false, false, Some(now)), Scope::Key, now),
            Err(Rejection::ExpiredKey)
        );
        assert_eq!(
            check(&key(false, false, Some(now + 1)), Scope::Inference, now),
            Ok(())
        );
    }
}
