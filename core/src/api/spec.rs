//! The OpenAPI description of this build, served at `GET /openapi.yaml`.

use super::Response;

/// `spec/openapi.yaml`, byte for byte, as it was when this binary was built.
pub const OPENAPI_YAML: &[u8] =
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../spec/openapi.yaml"));

/// The spec, public like `/healthz`. Swagger UI and Postman fetch it from a
/// browser page on another origin, which needs the CORS header; the
/// document is public, so any origin may read it.
pub fn openapi_response() -> Response {
    Response {
        status: 200,
        headers: vec![
            ("Content-Type", "application/yaml".to_string()),
            ("Access-Control-Allow-Origin", "*".to_string()),
        ],
        body: OPENAPI_YAML.to_vec(),
    }
}
