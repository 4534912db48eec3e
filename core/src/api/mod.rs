//! The HTTP surface: which endpoint a request names, which dialect it speaks,
//! and the error bodies each dialect expects.

pub mod dashboard;
pub mod dialect;
pub mod endpoint;
pub mod error;
pub mod openrouter;
pub mod response;
pub mod spec;
pub mod upstream_error;

pub use dialect::Dialect;
pub use endpoint::{classify, BatchOp, Endpoint, GeminiMethod, Scope, StoredRoute};
pub use error::{ApiError, ErrorKind};
pub use response::Response;
