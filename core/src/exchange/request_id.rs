//! Request ids: the client's `X-Request-Id` when it is safe to echo and to
//! log, else one the gateway makes. The id goes back on every response and
//! into the access log and the usage row, so one id ties them together.

/// Longest client id echoed; longer ones are replaced.
pub const MAX_LEN: usize = 128;

/// Whether a client's id may be echoed and logged as it is: short, and
/// only characters that cannot split a log line or a header.
pub fn is_valid(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A request id, kept inline: made, copied into the response head, the
/// access log and the usage record without allocating.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RequestId {
    len: u8,
    bytes: [u8; MAX_LEN],
}

impl RequestId {
    /// `None` unless `id` is valid.
    pub fn new(id: &str) -> Option<RequestId> {
        if !is_valid(id) {
            return None;
        }
        let mut bytes = [0u8; MAX_LEN];
        bytes.get_mut(..id.len())?.copy_from_slice(id.as_bytes());
        Some(RequestId {
            len: u8::try_from(id.len()).ok()?,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        // Only valid (ASCII) ids are ever stored.
        std::str::from_utf8(self.bytes.get(..usize::from(self.len)).unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Default for RequestId {
    /// The empty id, until a request's own is set.
    fn default() -> RequestId {
        RequestId {
            len: 0,
            bytes: [0; MAX_LEN],
        }
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Makes ids `{prefix}{n}` for one connection. The driver gives each
/// connection a prefix unique to the process (and the process start), so
/// ids are unique without the core owning a clock or a random source.
#[derive(Debug)]
pub(crate) struct RequestIds {
    prefix: RequestId,
    next: u64,
}

/// Room left after a prefix for the counter (16 hex digits).
const COUNTER_ROOM: usize = 16;

impl RequestIds {
    /// `prefix` must be a valid id short enough to leave room for the
    /// counter; otherwise `req-` is used.
    pub(crate) fn new(prefix: &str) -> RequestIds {
        let prefix = RequestId::new(prefix)
            .filter(|p| usize::from(p.len) + COUNTER_ROOM <= MAX_LEN)
            .or_else(|| RequestId::new("req-"))
            .unwrap_or_default();
        RequestIds { prefix, next: 1 }
    }

    /// The client's id if it is valid, else a new one.
    pub(crate) fn for_request(&mut self, client: Option<&str>) -> RequestId {
        client
            .and_then(RequestId::new)
            .unwrap_or_else(|| self.make())
    }

    pub(crate) fn make(&mut self) -> RequestId {
        let mut id = self.prefix;
        let mut n = self.next;
        self.next = self.next.wrapping_add(1);
        let mut digits = [0u8; COUNTER_ROOM];
        let mut count = 0;
        loop {
            digits[count] = b"0123456789abcdef"[(n & 15) as usize];
            count += 1;
            n >>= 4;
            if n == 0 {
                break;
            }
        }
        for &d in digits[..count].iter().rev() {
            id.bytes[usize::from(id.len)] = d;
            id.len += 1;
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_safe_ids_and_replaces_the_rest() {
        let mut ids = RequestIds::new("req-7-");
        let mut ids = |client: Option<&str>| ids.for_request(client).as_str().to_string();
        assert_eq!(ids(Some("abc-1.2_3:4")), "abc-1.2_3:4");
        assert_eq!(ids(None), "req-7-1");
        assert_eq!(ids(Some("a b")), "req-7-2");
        assert_eq!(ids(Some("")), "req-7-3");
        assert_eq!(ids(Some(&"x".repeat(MAX_LEN + 1))), "req-7-4");
        assert_eq!(ids(Some(&"x".repeat(MAX_LEN))).len(), MAX_LEN);
        assert_eq!(ids(Some("a\"b")), "req-7-5");
        for _ in 6..=16 {
            ids(None);
        }
        assert_eq!(ids(None), "req-7-11");
    }

    #[test]
    fn a_prefix_too_long_for_the_counter_falls_back() {
        let mut ids = RequestIds::new(&"p".repeat(MAX_LEN - 3));
        assert_eq!(ids.make().as_str(), "req-1");
        let mut ids = RequestIds::new(&"p".repeat(MAX_LEN - COUNTER_ROOM));
        ids.next = u64::MAX;
        assert_eq!(ids.make().as_str().len(), MAX_LEN);
    }
}
