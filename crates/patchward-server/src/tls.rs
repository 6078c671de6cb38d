//! TLS by default: the operator's certificate and key, or a self-signed pair generated on
//! first start, kept (so clients can pin it) and identified by its SHA-256 fingerprint.

use crate::ServeError;
use axum_server::tls_rustls::RustlsConfig;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The certificate and key in `dir`, generated (self-signed, for localhost and `host`) if
/// missing. Returns the files and the certificate's SHA-256 fingerprint.
pub fn self_signed(dir: &Path, hosts: &[String]) -> Result<(TlsFiles, String), ServeError> {
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    if !(files.cert.exists() && files.key.exists()) {
        std::fs::create_dir_all(dir)?;
        let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        names.extend(hosts.iter().cloned());
        let cert = rcgen::generate_simple_self_signed(names)
            .map_err(|e| ServeError::Tls(format!("cannot generate a certificate: {e}")))?;
        write_private(&files.key, cert.signing_key.serialize_pem().as_bytes())?;
        std::fs::write(&files.cert, cert.cert.pem())?;
    }
    let fp = fingerprint(&files.cert)?;
    Ok((files, fp))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(bytes)
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, bytes)
    }
}

/// SHA-256 of the first certificate's DER, as colon-separated hex.
pub fn fingerprint(cert: &Path) -> Result<String, ServeError> {
    let text = std::fs::read_to_string(cert)
        .map_err(|e| ServeError::Tls(format!("{}: {e}", cert.display())))?;
    let b64: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let der = decode_base64(&b64)
        .ok_or_else(|| ServeError::Tls(format!("{}: no PEM certificate", cert.display())))?;
    let digest = Sha256::digest(&der);
    Ok(digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":"))
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    if bytes.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        let take = chunk.len().saturating_sub(1);
        for i in 0..take {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

pub async fn rustls_config(files: &TlsFiles) -> Result<RustlsConfig, ServeError> {
    // One process-wide provider (ring); a second install is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    RustlsConfig::from_pem_file(&files.cert, &files.key)
        .await
        .map_err(|e| {
            ServeError::Tls(format!(
                "{} / {}: {e}",
                files.cert.display(),
                files.key.display()
            ))
        })
}
