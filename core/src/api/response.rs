//! A complete (non-streamed) response the core writes itself.

use super::ApiError;

/// Status, extra headers and body of a response the gateway produces.
/// `Content-Length` and `Connection` are added by the HTTP encoder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", "application/json".to_string())],
            body,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }
}

impl From<&ApiError> for Response {
    fn from(err: &ApiError) -> Response {
        let response = Response::json(err.status(), err.body());
        match err.allow {
            Some(allow) => response.header("Allow", allow),
            None => response,
        }
    }
}
