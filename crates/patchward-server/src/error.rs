//! Every error answer is `{code, message, field?}` with the status from the error table;
//! internal details are logged, never sent.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use patchward_app::AppError;
use patchward_proto::{ApiError, ErrorCode};

pub struct ApiErr(pub AppError);

impl From<AppError> for ApiErr {
    fn from(e: AppError) -> ApiErr {
        ApiErr(e)
    }
}

impl IntoResponse for ApiErr {
    fn into_response(self) -> Response {
        let e = self.0;
        let message = if e.code == ErrorCode::Internal {
            tracing::error!(error = %e.message, "internal error");
            ErrorCode::Internal.message().to_string()
        } else {
            e.message
        };
        let status =
            StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            Json(ApiError {
                code: e.code,
                message,
                field: e.field,
            }),
        )
            .into_response()
    }
}

/// The field a serde error is about: `name: invalid type ...` or ``missing field `name` ``.
fn field_of(text: &str) -> Option<String> {
    if let Some(i) = text.find("missing field `") {
        let rest = &text[i + 15..];
        return rest.find('`').map(|j| rest[..j].to_string());
    }
    if let Some(i) = text.find("unknown field `") {
        let rest = &text[i + 15..];
        return rest.find('`').map(|j| rest[..j].to_string());
    }
    let (path, _) = text.split_once(": ")?;
    let ok = !path.is_empty()
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'));
    ok.then(|| path.to_string())
}

pub(crate) fn from_serde(detail: &str, what: &str) -> AppError {
    // axum prefixes "Failed to deserialize ...: "; the rest is serde's path and message.
    let inner = detail.split_once(": ").map_or(detail, |(_, r)| r);
    match field_of(inner) {
        Some(f) => AppError::field(&f, format!("{what}: {inner}")),
        None => AppError::bad_request(format!("{what}: {inner}")),
    }
}

impl From<JsonRejection> for ApiErr {
    fn from(r: JsonRejection) -> ApiErr {
        ApiErr(match &r {
            JsonRejection::JsonDataError(_) => from_serde(&r.body_text(), "body"),
            JsonRejection::MissingJsonContentType(_) => {
                AppError::bad_request("send the body as JSON (Content-Type: application/json)")
            }
            _ => AppError::bad_request(format!("body: {}", r.body_text())),
        })
    }
}

impl From<QueryRejection> for ApiErr {
    fn from(r: QueryRejection) -> ApiErr {
        ApiErr(from_serde(&r.body_text(), "query"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_name_their_field() {
        assert_eq!(
            field_of("missing field `password` at line 1 column 20").as_deref(),
            Some("password")
        );
        assert_eq!(
            field_of("per_page: invalid digit found in string").as_deref(),
            Some("per_page")
        );
        assert_eq!(field_of("expected value at line 1 column 1"), None);
    }
}
