//! One table: error code → HTTP status → default message. Every error the API answers is
//! `{code, message, field?}` with one of these codes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No credentials, or credentials that are wrong, expired, revoked or disabled.
    Unauthenticated,
    /// Authenticated, but the role does not allow this.
    Forbidden,
    /// No such record (or one of another tenant: the same answer).
    NotFound,
    /// The request is malformed (body, query, path).
    BadRequest,
    /// One field of the request is invalid; `field` names it.
    InvalidField,
    /// A name that must be unique is taken.
    Conflict,
    /// Too many failed logins: the account is locked for a while.
    LockedOut,
    /// A cookie-authenticated write without the session's CSRF token.
    CsrfRejected,
    /// The path exists, but not with this method.
    MethodNotAllowed,
    /// The request body is larger than the server accepts.
    PayloadTooLarge,
    /// Too many attempts from one address (enrolment): wait and try again.
    RateLimited,
    /// The agent's credential was revoked: it must stop and be enrolled again.
    AgentRevoked,
    /// The server is starting or its database is unreachable.
    NotReady,
    /// Something failed inside the server (logged there; no details leak).
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::BadRequest,
        ErrorCode::InvalidField,
        ErrorCode::Conflict,
        ErrorCode::LockedOut,
        ErrorCode::CsrfRejected,
        ErrorCode::MethodNotAllowed,
        ErrorCode::PayloadTooLarge,
        ErrorCode::RateLimited,
        ErrorCode::AgentRevoked,
        ErrorCode::NotReady,
        ErrorCode::Internal,
    ];

    /// The HTTP status the code is answered with.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::Unauthenticated | ErrorCode::AgentRevoked => 401,
            ErrorCode::RateLimited => 429,
            ErrorCode::Forbidden | ErrorCode::CsrfRejected => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::BadRequest => 400,
            ErrorCode::InvalidField => 422,
            ErrorCode::Conflict => 409,
            ErrorCode::LockedOut => 423,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::NotReady => 503,
            ErrorCode::Internal => 500,
        }
    }

    /// The message used when the caller has nothing more specific to say.
    pub fn message(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => {
                "authentication required: send `Authorization: Bearer TOKEN` or log in"
            }
            ErrorCode::Forbidden => "your role does not allow this",
            ErrorCode::NotFound => "not found",
            ErrorCode::BadRequest => "the request is malformed",
            ErrorCode::InvalidField => "a field of the request is invalid",
            ErrorCode::Conflict => "already exists",
            ErrorCode::LockedOut => "too many failed logins; try again later",
            ErrorCode::CsrfRejected => {
                "missing or wrong X-CSRF-Token header for a cookie-authenticated write"
            }
            ErrorCode::MethodNotAllowed => "the path does not take this method",
            ErrorCode::PayloadTooLarge => "the request body is too large",
            ErrorCode::RateLimited => "too many attempts; wait a minute and try again",
            ErrorCode::AgentRevoked => "this agent was revoked; enrol it again",
            ErrorCode::NotReady => "the server is not ready",
            ErrorCode::Internal => "internal error (see the server log)",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::Conflict => "conflict",
            ErrorCode::LockedOut => "locked_out",
            ErrorCode::CsrfRejected => "csrf_rejected",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::AgentRevoked => "agent_revoked",
            ErrorCode::NotReady => "not_ready",
            ErrorCode::Internal => "internal",
        }
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// The request field at fault, for `invalid_field` (e.g. `role`, `password`, `per_page`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_client_or_server_status_and_a_distinct_name() {
        let mut names = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!((400..600).contains(&c.status()), "{c:?}");
            assert!(!c.message().is_empty());
            let json = serde_json::to_string(&c).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert!(names.insert(c.as_str()));
        }
    }
}
