//! Static assets from the binary: content-hashed URLs (cached for a year), gzip when the
//! browser takes it, and SRI hashes for the page's `<script>` and `<link>` tags.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256, Sha384};
use std::io::Write;
use std::sync::OnceLock;

pub struct Asset {
    pub name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    gzip: Vec<u8>,
    /// `name?v=HASH`: changes with the content.
    pub url: String,
    /// `sha384-…` for the `integrity` attribute.
    pub integrity: String,
}

const FILES: &[(&str, &str, &[u8])] = &[
    (
        "htmx.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/htmx.min.js"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/app.css"),
    ),
];

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= c.len() {
                out.push(A[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn all() -> &'static [Asset] {
    static ALL: OnceLock<Vec<Asset>> = OnceLock::new();
    ALL.get_or_init(|| {
        FILES
            .iter()
            .map(|(name, content_type, body)| {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                // Empty when compression failed: the body is then served as it is.
                let gzip = gz
                    .write_all(body)
                    .and_then(|()| gz.finish())
                    .unwrap_or_default();
                let hash = Sha256::digest(body);
                let short: String = hash.iter().take(6).map(|b| format!("{b:02x}")).collect();
                Asset {
                    name,
                    content_type,
                    body,
                    gzip,
                    url: format!("/assets/{name}?v={short}"),
                    integrity: format!("sha384-{}", base64(&Sha384::digest(body))),
                }
            })
            .collect()
    })
}

pub fn get(name: &str) -> Option<&'static Asset> {
    all().iter().find(|a| a.name == name)
}

pub async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(a) = get(&file) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let gzip_ok = !a.gzip.is_empty()
        && headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let mut r = if gzip_ok {
        let mut r = a.gzip.clone().into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        a.body.into_response()
    };
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn every_asset_has_a_hashed_url_and_integrity() {
        for a in all() {
            assert!(a.url.starts_with(&format!("/assets/{}?v=", a.name)));
            assert!(a.integrity.starts_with("sha384-") && a.integrity.len() == 71);
            assert!(!a.gzip.is_empty() && a.gzip.len() < a.body.len());
        }
    }
}
