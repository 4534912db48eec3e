//! The log of received requests (`GET /_replay/requests`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fault::Fault;

/// One request the replay server received (control requests excluded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// 1-based, in arrival order; not reset by clearing the log.
    pub id: u64,
    pub method: String,
    /// Path with query, as received.
    pub path: String,
    /// Lowercased header names; repeated headers joined with `", "`.
    pub headers: BTreeMap<String, String>,
    /// The body parsed as JSON, else as a (lossy UTF-8) string, else null
    /// when empty.
    pub body: Value,
    /// Name of the transcript replayed, or null.
    pub transcript: Option<String>,
    /// The fault applied, or null.
    pub fault: Option<Fault>,
    /// Milliseconds since server start when the request was fully read.
    pub started_ms: u64,
    /// When the first byte of its (Content-Length) body was read, so a
    /// test can tell a body that streamed in from one sent all at once.
    #[serde(default)]
    pub body_started_ms: Option<u64>,
    /// When the server was done with it: response written, connection cut
    /// by a fault, or the client gone. Null while in progress.
    pub finished_ms: Option<u64>,
    /// The client closed the connection (EOF or reset) before the response
    /// was complete.
    pub client_closed_early: bool,
    /// When that was noticed.
    pub client_closed_ms: Option<u64>,
    /// HTTP status sent (null when none was: `close_without_response`).
    pub status: Option<u16>,
    /// Body bytes written (after dechunking) before the end.
    pub bytes_sent: u64,
}
