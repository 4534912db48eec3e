//! Integers in client requests. JSON has one number type, and JSON Schema's
//! `integer` is any number without a fraction: `310.0` is an integer there,
//! and clients that hold every number as a float send integers that way.

use serde_json::Value;

/// A non-negative integer that fits in `u32`: `310` or `310.0`.
pub fn as_u32(v: &Value) -> Option<u32> {
    as_i64(v).and_then(|n| u32::try_from(n).ok())
}

/// An integer that fits in `i64`: `-1`, `167` or `167.0`.
pub fn as_i64(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && (-9.0e18..=9.0e18).contains(f))
            // In range and without a fraction: the conversion is exact.
            .map(|f| f as i64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integral_floats_are_integers_and_others_are_not() {
        assert_eq!(as_u32(&json!(310)), Some(310));
        assert_eq!(as_u32(&json!(310.0)), Some(310));
        assert_eq!(as_u32(&json!(1.5)), None);
        assert_eq!(as_u32(&json!(-1)), None);
        assert_eq!(as_u32(&json!(4_294_967_296u64)), None);
        assert_eq!(as_u32(&json!("3")), None);
        assert_eq!(as_i64(&json!(-1.0)), Some(-1));
        assert_eq!(as_i64(&json!(1e300)), None);
        assert_eq!(as_i64(&json!(f64::MIN_POSITIVE)), None);
    }
}
