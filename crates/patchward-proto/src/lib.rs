//! Wire types of Patchward's REST API (`/api/v1`), its error-code table, and the agent
//! protocol (`/agent/v1`, module [`agent`]).
//!
//! These are what clients see; core structs are neither the API nor the stored JSON, so either
//! side can change without breaking the other. Instants are RFC 3339 strings (UTC), dates
//! `YYYY-MM-DD`.

pub mod agent;
mod error;
mod types;
mod workflow;

pub use error::{ApiError, ErrorCode};
pub use types::*;
pub use workflow::*;

/// The API version in every path (`/api/v1/...`).
pub const API_VERSION: &str = "v1";
