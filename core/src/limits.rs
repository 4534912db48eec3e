//! Every bound the core enforces, in one place so a deployment can tune them
//! from config and tests can shrink them.

/// Hard limits for one connection. Exceeding one is a typed error that the
/// core turns into the matching HTTP status, never an unbounded allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Request line plus headers, in bytes (431 beyond).
    pub max_head_bytes: usize,
    /// Number of request header fields (431 beyond).
    pub max_headers: usize,
    /// Decoded request body, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Request body bytes held in memory at once across all connections;
    /// a request whose body does not fit is answered 503 with
    /// `Retry-After` before its body is read.
    pub max_inflight_body_bytes: usize,
    /// A provider-proxy request body is held up to this many bytes, to plan
    /// the call from it whole; a longer one streams to the provider as it
    /// arrives (read on the side for its model and output cap).
    pub proxy_buffer_bytes: usize,
    /// Upstream response head, in bytes.
    pub max_upstream_head_bytes: usize,
    /// Buffered (non-streamed) upstream response body, in bytes.
    pub max_upstream_body_bytes: usize,
    /// One SSE line (and one SSE event's data), in bytes.
    pub max_sse_line_bytes: usize,
    /// Time allowed for a client to send a complete request head, in ms:
    /// from accept for a connection's first request (a client that
    /// connects and sends nothing is dropped after it), from the first
    /// byte for later requests on a keep-alive connection.
    pub header_timeout_ms: u64,
    /// Time a keep-alive connection may sit idle between requests (after an
    /// answer, before the next request's first byte), in ms; also bounds
    /// the gap between body bytes of a slow client.
    pub idle_timeout_ms: u64,
    /// Total time allowed for a request body, from the end of its head, in
    /// ms (408 beyond): a client trickling bytes cannot hold a connection.
    pub body_timeout_ms: u64,
    /// Time to open a connection to a provider, in ms (enforced by the
    /// frontend, which owns sockets).
    pub upstream_connect_timeout_ms: u64,
    /// Time from sending a request upstream to the first byte of its
    /// response head, in ms. Non-stream answers arrive whole, so this is
    /// generous.
    pub upstream_first_byte_timeout_ms: u64,
    /// Longest silence from a provider mid-response, in ms.
    pub upstream_idle_timeout_ms: u64,
    /// While a stream waits for its first token, a `: keep-alive` comment
    /// goes to the client this often, in ms.
    pub stream_keepalive_ms: u64,
    /// A pooled idle provider connection is closed after this long, in ms
    /// (enforced by the frontend, which owns the pool).
    pub upstream_pool_idle_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 64 * 1024,
            max_headers: 100,
            max_body_bytes: 32 * 1024 * 1024,
            max_inflight_body_bytes: 256 * 1024 * 1024,
            proxy_buffer_bytes: 64 * 1024,
            max_upstream_head_bytes: 64 * 1024,
            max_upstream_body_bytes: 64 * 1024 * 1024,
            max_sse_line_bytes: 1024 * 1024,
            header_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            body_timeout_ms: 120_000,
            upstream_connect_timeout_ms: 10_000,
            upstream_first_byte_timeout_ms: 600_000,
            upstream_idle_timeout_ms: 120_000,
            stream_keepalive_ms: 15_000,
            upstream_pool_idle_ms: 30_000,
        }
    }
}
