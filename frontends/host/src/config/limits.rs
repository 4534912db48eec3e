//! The `[limits]` table and its flags: merging flag over file, applying
//! them to the core's `Limits`, and refusing values that would make the
//! gateway useless.

use arouter_core::Limits;

use super::ConfigError;
use crate::cli::LimitArgs;

const DAY_MS: u64 = 24 * 3600 * 1000;

/// Limits out of range would make the gateway useless or spin (a zero
/// keep-alive interval fires at once, forever), so they are refused at start.
pub(super) fn validate_limits(l: &Limits) -> Result<(), ConfigError> {
    let sizes = [
        ("max_head_bytes", l.max_head_bytes, 1024),
        ("max_headers", l.max_headers, 8),
        ("max_body_bytes", l.max_body_bytes, 1024),
        ("max_inflight_body_bytes", l.max_inflight_body_bytes, 1024),
        ("proxy_buffer_bytes", l.proxy_buffer_bytes, 1024),
        ("max_sse_line_bytes", l.max_sse_line_bytes, 1024),
    ];
    for (name, value, min) in sizes {
        if value < min {
            return Err(ConfigError::LimitTooSmall {
                name,
                min: min as u64,
                got: value as u64,
            });
        }
    }
    let times = [
        ("header_timeout_ms", l.header_timeout_ms, 100),
        ("idle_timeout_ms", l.idle_timeout_ms, 100),
        ("body_timeout_ms", l.body_timeout_ms, 100),
        (
            "upstream_connect_timeout_ms",
            l.upstream_connect_timeout_ms,
            100,
        ),
        (
            "upstream_first_byte_timeout_ms",
            l.upstream_first_byte_timeout_ms,
            100,
        ),
        ("upstream_idle_timeout_ms", l.upstream_idle_timeout_ms, 100),
        ("stream_keepalive_ms", l.stream_keepalive_ms, 100),
        ("upstream_pool_idle_ms", l.upstream_pool_idle_ms, 100),
    ];
    for (name, value, min) in times {
        in_range(name, value, min, DAY_MS)?;
    }
    Ok(())
}

/// The driver's own settings: a stall timeout of zero would fail every
/// write that has to wait; a linger of a day would hold closed connections.
pub(super) fn validate_serving(l: &LimitArgs) -> Result<(), ConfigError> {
    if l.max_connections == Some(0) {
        return Err(ConfigError::LimitTooSmall {
            name: "max_connections",
            min: 1,
            got: 0,
        });
    }
    if let Some(ms) = l.write_stall_timeout_ms {
        in_range("write_stall_timeout_ms", ms, 100, DAY_MS)?;
    }
    // No linger at all would let unread request bytes reset the answer.
    if let Some(ms) = l.linger_ms {
        in_range("linger_ms", ms, 1, 60_000)?;
    }
    Ok(())
}

fn in_range(name: &'static str, got: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if (min..=max).contains(&got) {
        Ok(())
    } else {
        Err(ConfigError::LimitOutOfRange {
            name,
            min,
            max,
            got,
        })
    }
}

impl LimitArgs {
    /// Each limit set here, else in `other`.
    pub(super) fn or(self, other: LimitArgs) -> LimitArgs {
        LimitArgs {
            max_body_bytes: self.max_body_bytes.or(other.max_body_bytes),
            max_inflight_body_bytes: self
                .max_inflight_body_bytes
                .or(other.max_inflight_body_bytes),
            proxy_buffer_bytes: self.proxy_buffer_bytes.or(other.proxy_buffer_bytes),
            max_head_bytes: self.max_head_bytes.or(other.max_head_bytes),
            max_headers: self.max_headers.or(other.max_headers),
            max_sse_line_bytes: self.max_sse_line_bytes.or(other.max_sse_line_bytes),
            header_timeout_ms: self.header_timeout_ms.or(other.header_timeout_ms),
            idle_timeout_ms: self.idle_timeout_ms.or(other.idle_timeout_ms),
            body_timeout_ms: self.body_timeout_ms.or(other.body_timeout_ms),
            upstream_connect_timeout_ms: self
                .upstream_connect_timeout_ms
                .or(other.upstream_connect_timeout_ms),
            upstream_first_byte_timeout_ms: self
                .upstream_first_byte_timeout_ms
                .or(other.upstream_first_byte_timeout_ms),
            upstream_idle_timeout_ms: self
                .upstream_idle_timeout_ms
                .or(other.upstream_idle_timeout_ms),
            upstream_pool_idle_ms: self.upstream_pool_idle_ms.or(other.upstream_pool_idle_ms),
            stream_keepalive_ms: self.stream_keepalive_ms.or(other.stream_keepalive_ms),
            max_connections: self.max_connections.or(other.max_connections),
            write_stall_timeout_ms: self.write_stall_timeout_ms.or(other.write_stall_timeout_ms),
            linger_ms: self.linger_ms.or(other.linger_ms),
            upstream_pool_max_idle: self.upstream_pool_max_idle.or(other.upstream_pool_max_idle),
        }
    }

    /// `limits` with every limit set here replaced.
    pub(super) fn apply(&self, mut limits: Limits) -> Limits {
        let l = &mut limits;
        for (slot, value) in [
            (&mut l.max_body_bytes, self.max_body_bytes),
            (&mut l.max_inflight_body_bytes, self.max_inflight_body_bytes),
            (&mut l.proxy_buffer_bytes, self.proxy_buffer_bytes),
            (&mut l.max_head_bytes, self.max_head_bytes),
            (&mut l.max_headers, self.max_headers),
            (&mut l.max_sse_line_bytes, self.max_sse_line_bytes),
        ] {
            *slot = value.unwrap_or(*slot);
        }
        for (slot, value) in [
            (&mut l.header_timeout_ms, self.header_timeout_ms),
            (&mut l.idle_timeout_ms, self.idle_timeout_ms),
            (&mut l.body_timeout_ms, self.body_timeout_ms),
            (
                &mut l.upstream_connect_timeout_ms,
                self.upstream_connect_timeout_ms,
            ),
            (
                &mut l.upstream_first_byte_timeout_ms,
                self.upstream_first_byte_timeout_ms,
            ),
            (
                &mut l.upstream_idle_timeout_ms,
                self.upstream_idle_timeout_ms,
            ),
            (&mut l.upstream_pool_idle_ms, self.upstream_pool_idle_ms),
            (&mut l.stream_keepalive_ms, self.stream_keepalive_ms),
        ] {
            *slot = value.unwrap_or(*slot);
        }
        limits
    }
}
