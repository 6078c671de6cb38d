//! Errors of the use cases, each with its code from the API's error table.

use patchward_proto::ErrorCode;
use patchward_store::StoreError;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
    /// The input field at fault.
    pub field: Option<String>,
}

pub type Result<T> = std::result::Result<T, AppError>;

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> AppError {
        AppError {
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn not_found(what: impl std::fmt::Display) -> AppError {
        AppError::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn forbidden(why: impl Into<String>) -> AppError {
        AppError::new(ErrorCode::Forbidden, why)
    }

    pub fn unauthenticated(why: impl Into<String>) -> AppError {
        AppError::new(ErrorCode::Unauthenticated, why)
    }

    pub fn field(field: &str, message: impl Into<String>) -> AppError {
        AppError {
            code: ErrorCode::InvalidField,
            message: message.into(),
            field: Some(field.to_string()),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> AppError {
        AppError::new(ErrorCode::BadRequest, message)
    }

    pub fn internal(message: impl Into<String>) -> AppError {
        AppError::new(ErrorCode::Internal, message)
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> AppError {
        match e {
            StoreError::Conflict(what) => {
                AppError::new(ErrorCode::Conflict, format!("{what} already exists"))
            }
            StoreError::Invalid(m) => AppError::bad_request(m),
            other => AppError::internal(other.to_string()),
        }
    }
}
