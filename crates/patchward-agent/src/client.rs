//! The agent's HTTP client for `/agent/v1`: JSON over HTTPS (rustls with ring), the server's
//! certificate trusted from the platform store or pinned by its SHA-256 fingerprint (what
//! `patchward serve` prints for its self-signed certificate).

use patchward_proto::ApiError;
use patchward_proto::agent::{
    CheckIn, CheckInReply, EnrolBatchReply, EnrolBatchRequest, EnrolReply, EnrolRequest,
    InventoryReport, StepReply, StepReport,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::Digest;
use std::sync::Arc;
use std::time::Duration;

/// How the agent trusts the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// Certificates from the platform's trust store.
    Platform,
    /// Exactly the certificate with this SHA-256 (32 bytes).
    Pinned([u8; 32]),
}

impl Tls {
    /// A fingerprint as `patchward serve` prints it (`AB:CD:...`), colons and case optional.
    pub fn pinned(fingerprint: &str) -> Result<Tls, String> {
        let hex: String = fingerprint
            .chars()
            .filter(|c| *c != ':' && !c.is_whitespace())
            .collect();
        let bad = || {
            format!(
                "not a SHA-256 fingerprint (64 hex digits, colons allowed): {:?}",
                fingerprint.chars().take(100).collect::<String>()
            )
        };
        if hex.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
                .map_err(|_| bad())?;
        }
        Ok(Tls::Pinned(out))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached or answered garbage (retry later).
    #[error("{0}")]
    Transport(String),
    /// The server answered with an error (`code` from the API's error table).
    #[error("{}: {}", .0.code.as_str(), .0.message)]
    Refused(ApiError),
}

impl ClientError {
    pub fn code(&self) -> Option<patchward_proto::ErrorCode> {
        match self {
            ClientError::Refused(e) => Some(e.code),
            ClientError::Transport(_) => None,
        }
    }
}

/// A client of one control plane.
#[derive(Clone)]
pub struct AgentClient {
    http: reqwest::Client,
    base: String,
}

impl AgentClient {
    pub fn new(server_url: &str, tls: &Tls) -> Result<AgentClient, ClientError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(15))
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("patchward-agent/", env!("CARGO_PKG_VERSION")));
        let builder = match tls {
            Tls::Platform => builder,
            Tls::Pinned(fp) => builder.tls_backend_preconfigured(pinned_config(*fp)?),
        };
        let http = builder
            .build()
            .map_err(|e| ClientError::Transport(format!("cannot build the HTTP client: {e}")))?;
        Ok(AgentClient {
            http,
            base: server_url.trim_end_matches('/').to_string(),
        })
    }

    pub fn server_url(&self) -> &str {
        &self.base
    }

    pub async fn enrol(&self, req: &EnrolRequest) -> Result<EnrolReply, ClientError> {
        self.post("/agent/v1/enrol", None, req).await
    }

    /// Enrol several hosts with one use of the token (see `EnrolBatchRequest`).
    pub async fn enrol_batch(
        &self,
        req: &EnrolBatchRequest,
    ) -> Result<EnrolBatchReply, ClientError> {
        self.post("/agent/v1/enrol-batch", None, req).await
    }

    pub async fn check_in(
        &self,
        credential: &str,
        req: &CheckIn,
    ) -> Result<CheckInReply, ClientError> {
        self.post("/agent/v1/check-in", Some(credential), req).await
    }

    pub async fn inventory(
        &self,
        credential: &str,
        report: &InventoryReport,
    ) -> Result<(), ClientError> {
        self.post::<_, serde_json::Value>("/agent/v1/inventory", Some(credential), report)
            .await
            .map(|_| ())
    }

    pub async fn step(
        &self,
        credential: &str,
        job: i64,
        report: &StepReport,
    ) -> Result<StepReply, ClientError> {
        self.post(
            &format!("/agent/v1/jobs/{job}/steps"),
            Some(credential),
            report,
        )
        .await
    }

    async fn post<B: serde::Serialize, R: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        credential: Option<&str>,
        body: &B,
    ) -> Result<R, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.post(&url).json(body);
        if let Some(c) = credential {
            req = req.bearer_auth(c);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ClientError::Transport(format!("POST {url}: {}", chain(&e))))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ClientError::Transport(format!("POST {url}: {}", chain(&e))))?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ApiError>(&bytes) {
                Ok(e) => ClientError::Refused(e),
                Err(_) => ClientError::Transport(format!(
                    "POST {url}: HTTP {status}: {}",
                    String::from_utf8_lossy(&bytes)
                        .chars()
                        .take(200)
                        .collect::<String>()
                )),
            });
        }
        // 204 carries no body: read it as JSON null.
        let bytes: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
        serde_json::from_slice(bytes)
            .map_err(|e| ClientError::Transport(format!("POST {url}: unexpected answer: {e}")))
    }
}

/// An error with its causes, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn pinned_config(fp: [u8; 32]) -> Result<rustls::ClientConfig, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Pinned {
        fingerprint: fp,
        provider: provider.clone(),
    };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Transport(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// Trusts exactly one certificate, by its SHA-256; the handshake's signatures are still
/// checked, so only the holder of that certificate's key passes.
#[derive(Debug)]
struct Pinned {
    fingerprint: [u8; 32],
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got: [u8; 32] = sha2::Sha256::digest(end_entity.as_ref()).into();
        if got == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the server's certificate does not match the pinned fingerprint".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
