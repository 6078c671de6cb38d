//! Who is calling, and may they call this route: a bearer token or a session cookie (with its
//! CSRF token on writes), checked against the route's [`Need`] from [`ROUTES`].

use crate::Shared;
use crate::api::{Need, need_of};
use crate::error::ApiErr;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use patchward_app::{Actor, AppError};
use patchward_core::access::Permission;
use patchward_proto::ErrorCode;

pub const SESSION_COOKIE: &str = "patchward_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The value of a cookie in the request's `Cookie` headers.
pub fn cookie<'a>(req: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    req.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Who sent the request (not yet whether they may).
async fn authenticate(
    app: &Shared,
    method: &Method,
    headers: &axum::http::HeaderMap,
) -> Result<Actor, AppError> {
    if let Some(h) = headers.get(header::AUTHORIZATION) {
        let text = h.to_str().unwrap_or_default();
        let Some(token) = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
        else {
            return Err(AppError::unauthenticated(
                "the Authorization header must be `Bearer TOKEN`",
            ));
        };
        return app.authenticate_token(token).await;
    }
    let Some(secret) = cookie(headers, SESSION_COOKIE) else {
        return Err(AppError::unauthenticated(
            ErrorCode::Unauthenticated.message(),
        ));
    };
    let (actor, csrf) = app.authenticate_session(secret).await?;
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let sent = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if sent.is_empty() || !constant_time_eq(sent.as_bytes(), csrf.as_bytes()) {
            return Err(AppError::new(
                ErrorCode::CsrfRejected,
                ErrorCode::CsrfRejected.message(),
            ));
        }
    }
    Ok(actor)
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn allowed(actor: &Actor, need: Need) -> Result<(), AppError> {
    let ok = match need {
        Need::Public | Need::Authenticated => true,
        Need::Read => actor.role.allows(Permission::Read),
        Need::Operate => actor.role.allows(Permission::Operate),
        Need::Approve => actor.role.allows(Permission::Approve),
        Need::Administer => actor.role.allows(Permission::Administer),
        Need::ProviderAdmin => actor.role.allows(Permission::Administer) && actor.provider_wide(),
    };
    if ok {
        Ok(())
    } else if need == Need::ProviderAdmin && actor.role.allows(Permission::Administer) {
        Err(AppError::forbidden(
            "only a provider-wide administrator may do this (it concerns every tenant)",
        ))
    } else {
        Err(AppError::forbidden(format!(
            "the {} role does not allow this",
            actor.role
        )))
    }
}

/// The middleware in front of every API route.
pub async fn guard(
    State(app): State<Shared>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiErr> {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let Some(need) = need_of(req.method(), &path) else {
        // The path exists with other methods (a route missing from ROUTES fails the tests).
        return Err(ApiErr(AppError::new(
            ErrorCode::MethodNotAllowed,
            format!("{} is not a method of {path}", req.method()),
        )));
    };
    if need == Need::Public {
        return Ok(next.run(req).await);
    }
    let (method, headers) = (req.method().clone(), req.headers().clone());
    let checked = match authenticate(&app, &method, &headers).await {
        Ok(actor) => allowed(&actor, need).map(|()| actor),
        Err(e) => Err(e),
    };
    match checked {
        Ok(actor) => {
            req.extensions_mut().insert(actor);
            Ok(next.run(req).await)
        }
        Err(e) => {
            let mut resp = ApiErr(e).into_response();
            // The body was not read: the connection cannot carry another request, so say so
            // (a client reusing it would see its next request fail).
            let has_body = headers.contains_key(header::TRANSFER_ENCODING)
                || headers
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v != "0");
            if has_body {
                resp.headers_mut().insert(
                    header::CONNECTION,
                    axum::http::HeaderValue::from_static("close"),
                );
            }
            Ok(resp)
        }
    }
}
