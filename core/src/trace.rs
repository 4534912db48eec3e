//! W3C Trace Context (`traceparent`): a client's trace id and parent span
//! are passed to the provider, so a trace spans the gateway. Only a
//! well-formed value crosses; a malformed one is dropped rather than
//! forwarded (the recommendation's rule for a vendor that cannot parse it).

/// `version-traceid-parentid-flags`: `00-` + 32 + `-` + 16 + `-` + 2.
const LEN: usize = 55;

/// `value` when it is a valid `traceparent` header value, else `None`.
///
/// The four fields are lower-case hex of 2, 32, 16 and 2 digits; version
/// `ff` and all-zero trace or parent ids are invalid. A later version may
/// append fields after a `-` (version `00` may not).
pub fn traceparent(value: &str) -> Option<&str> {
    let bytes = value.as_bytes();
    // ASCII only, so the fields below slice on character boundaries.
    if !value.is_ascii() || bytes.len() < LEN || (bytes.len() > LEN && bytes[LEN] != b'-') {
        return None;
    }
    let field = |from: usize, len: usize| {
        let text = &value[from..from + len];
        let hex = text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        hex.then_some(text)
    };
    let dashes = [2, 35, 52].iter().all(|&i| bytes[i] == b'-');
    let version = field(0, 2)?;
    let trace_id = field(3, 32)?;
    let parent_id = field(36, 16)?;
    field(53, 2)?;
    let zero = |id: &str| id.bytes().all(|b| b == b'0');
    let valid = dashes
        && version != "ff"
        && !(version == "00" && bytes.len() != LEN)
        && !zero(trace_id)
        && !zero(parent_id);
    valid.then_some(value)
}

/// The two ids of a valid `traceparent`, for the gateway's own span of
/// the request (OTLP export): the client's trace, and its span as parent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lower-case hex digits.
    pub trace_id: String,
    /// 16 lower-case hex digits: the client's span.
    pub parent_id: String,
}

/// The ids of `value` when it is a valid `traceparent`, else `None`.
pub fn context(value: &str) -> Option<TraceContext> {
    let valid = traceparent(value)?;
    Some(TraceContext {
        trace_id: valid[3..35].to_owned(),
        parent_id: valid[36..52].to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::{context, traceparent};

    #[test]
    fn the_context_holds_the_trace_and_parent_ids() {
        let ids = context(GOOD).expect("valid");
        assert_eq!(ids.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ids.parent_id, "00f067aa0ba902b7");
        assert_eq!(context("00-zz"), None);
    }

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_recommendations_example_is_valid() {
        assert_eq!(traceparent(GOOD), Some(GOOD));
    }

    #[test]
    fn a_later_version_may_carry_more_fields() {
        let later = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what";
        assert_eq!(traceparent(later), Some(later));
        assert_eq!(traceparent(&later[..55]), Some(&later[..55]));
    }

    #[test]
    fn malformed_values_are_refused() {
        let bad = [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            "00-4bf92f3577b34da6a3ce929d0e0e473\u{e9}-00f067aa0ba902b7-01",
        ];
        for value in bad {
            assert_eq!(traceparent(value), None, "{value:?}");
        }
    }
}
