//! Application health probes (PRODUCT.md "Verification"), run on the server the agent is on
//! once it is back from its reboot: an HTTP status (and body), a TCP port, a Windows service.
//! Applications start after Windows does, so a failing probe is retried every few seconds
//! for the offer's grace before it counts as failed.

use crate::host::Host;
use patchward_proto::agent::{Probe, ProbeResult};
use std::time::{Duration, Instant};

/// How long one attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between attempts at a failing probe.
pub const RETRY_EVERY: Duration = Duration::from_secs(5);
/// Most of a body read to look for `body_contains`.
const MAX_BODY: usize = 1024 * 1024;

/// Runs probes; one HTTP client for all of them.
pub struct Prober {
    http: reqwest::Client,
    retry_every: Duration,
}

impl Prober {
    pub fn new() -> Result<Prober, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .connect_timeout(ATTEMPT_TIMEOUT)
            // A probe checks the server itself: a proxy would check something else.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::limited(5))
            .user_agent(concat!(
                "patchward-agent/",
                env!("CARGO_PKG_VERSION"),
                " probe"
            ))
            .build()
            .map_err(|e| format!("cannot build the probes' HTTP client: {e}"))?;
        Ok(Prober {
            http,
            retry_every: RETRY_EVERY,
        })
    }

    /// Retry failing probes this often instead of every [`RETRY_EVERY`].
    pub fn with_retry_every(mut self, every: Duration) -> Prober {
        self.retry_every = every;
        self
    }

    /// Run every probe, retrying the failing ones until they pass or `grace` has passed since
    /// the first attempt; one result per probe, in order.
    pub async fn run(
        &self,
        probes: &[Probe],
        grace: Duration,
        host: &mut dyn Host,
    ) -> Vec<ProbeResult> {
        let started = Instant::now();
        let mut results: Vec<Option<ProbeResult>> = vec![None; probes.len()];
        loop {
            for (i, probe) in probes.iter().enumerate() {
                if results[i].as_ref().is_some_and(|r| r.passed) {
                    continue;
                }
                let (passed, detail) = self.once(probe, host).await;
                results[i] = Some(ProbeResult {
                    probe: probe.clone(),
                    passed,
                    detail,
                });
            }
            let failing = results
                .iter()
                .any(|r| r.as_ref().is_some_and(|r| !r.passed));
            if !failing || started.elapsed() + self.retry_every > grace {
                break;
            }
            tokio::time::sleep(self.retry_every).await;
        }
        results.into_iter().flatten().collect()
    }

    /// One attempt: whether it passed, and what was seen.
    pub async fn once(&self, probe: &Probe, host: &mut dyn Host) -> (bool, String) {
        match probe {
            Probe::Http {
                url,
                status,
                body_contains,
            } => self.http(url, *status, body_contains.as_deref()).await,
            Probe::Tcp { host: h, port } => tcp(h, *port).await,
            Probe::WindowsService { name } => match host.service_state(name) {
                Ok(Some(state)) if state.eq_ignore_ascii_case("running") => {
                    (true, "running".into())
                }
                Ok(Some(state)) => (false, state),
                Ok(None) => (false, "no such service on this server".into()),
                Err(e) => (false, format!("cannot read its state: {e}")),
            },
        }
    }

    async fn http(&self, url: &str, want: u16, body_contains: Option<&str>) -> (bool, String) {
        let mut resp = match self.http.get(url).send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return (
                    false,
                    format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs()),
                );
            }
            Err(e) => return (false, error_chain(&e.without_url())),
        };
        let status = resp.status();
        let seen = format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .trim_end()
        .to_string();
        if status.as_u16() != want {
            return (false, format!("{seen}, expected {want}"));
        }
        let Some(needle) = body_contains else {
            return (true, seen);
        };
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    body.extend_from_slice(&c);
                    if body.len() >= MAX_BODY {
                        body.truncate(MAX_BODY);
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => return (false, format!("{seen}, body: {}", error_chain(&e))),
            }
        }
        if String::from_utf8_lossy(&body).contains(needle) {
            (true, format!("{seen}, body contains {needle:?}"))
        } else {
            (
                false,
                format!("{seen}, but the body does not contain {needle:?}"),
            )
        }
    }
}

async fn tcp(host: &str, port: u16) -> (bool, String) {
    match tokio::time::timeout(
        ATTEMPT_TIMEOUT,
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    {
        Ok(Ok(_)) => (true, "accepted".into()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            (false, "connection refused".into())
        }
        Ok(Err(e)) => (false, e.to_string()),
        Err(_) => (
            false,
            format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs()),
        ),
    }
}

/// An error and its causes, one line (reqwest's own message says only "error sending
/// request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s.chars().take(300).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::simulated::{SimulatedHost, Streams};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn host() -> SimulatedHost {
        let now = "2026-11-20T12:00:00Z".parse().unwrap();
        SimulatedHost::generate(&Streams::bundled().unwrap(), 7, 1, now).unwrap()
    }

    /// A loopback HTTP server whose n-th answer (from 0) is `answer(n)`.
    async fn serve(answer: fn(usize) -> (u16, &'static str)) -> (String, Arc<AtomicUsize>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/health", l.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                let n = h.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let (code, body) = answer(n);
                let reply = format!(
                    "HTTP/1.1 {code} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(reply.as_bytes()).await;
            }
        });
        (url, hits)
    }

    fn http(url: &str, status: u16, body: Option<&str>) -> Probe {
        Probe::Http {
            url: url.into(),
            status,
            body_contains: body.map(String::from),
        }
    }

    #[tokio::test]
    async fn http_probes_check_the_status_and_the_body() {
        let (url, _) = serve(|_| (200, "{\"status\":\"Healthy\"}")).await;
        let (down, _) = serve(|_| (503, "warming up")).await;
        let p = Prober::new().unwrap();
        let mut h = host();
        let r = p
            .run(
                &[
                    http(&url, 200, Some("Healthy")),
                    http(&url, 200, Some("Degraded")),
                    http(&down, 200, None),
                    http(&down, 503, None),
                ],
                Duration::ZERO,
                &mut h,
            )
            .await;
        let got: Vec<(bool, &str)> = r.iter().map(|r| (r.passed, r.detail.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (true, "200 OK, body contains \"Healthy\""),
                (false, "200 OK, but the body does not contain \"Degraded\""),
                (false, "503 Service Unavailable, expected 200"),
                (true, "503 Service Unavailable"),
            ]
        );
    }

    #[tokio::test]
    async fn a_failing_probe_is_retried_within_its_grace_and_no_longer() {
        // Fails twice, then answers: an application that starts after Windows does.
        let (url, hits) = serve(|n| if n < 2 { (503, "") } else { (200, "ok") }).await;
        let p = Prober::new()
            .unwrap()
            .with_retry_every(Duration::from_millis(50));
        let mut h = host();
        let r = p
            .run(&[http(&url, 200, None)], Duration::from_secs(5), &mut h)
            .await;
        assert!(r[0].passed, "{r:?}");
        assert_eq!(hits.load(Ordering::SeqCst), 3);

        // Without grace it is tried once.
        let (url, hits) = serve(|n| if n < 2 { (503, "") } else { (200, "ok") }).await;
        let r = p
            .run(&[http(&url, 200, None)], Duration::ZERO, &mut h)
            .await;
        assert!(!r[0].passed);
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn tcp_and_service_probes_see_the_real_port_and_the_host_state() {
        let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = open.local_addr().unwrap().port();
        // A port that was open and is closed now refuses.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut h = host();
        let running = h.services[1..]
            .iter()
            .find(|s| s.state == "running")
            .unwrap()
            .name
            .clone();
        h.services[0].state = "stopped".into();
        let stopped = h.services[0].name.clone();
        let p = Prober::new().unwrap();
        let tcp = |port| Probe::Tcp {
            host: "127.0.0.1".into(),
            port,
        };
        let svc = |n: &str| Probe::WindowsService { name: n.into() };
        let r = p
            .run(
                &[
                    tcp(port),
                    tcp(closed),
                    svc(&running.to_lowercase()),
                    svc(&stopped),
                    svc("NoSuchSvc"),
                ],
                Duration::ZERO,
                &mut h,
            )
            .await;
        let got: Vec<(bool, &str)> = r.iter().map(|r| (r.passed, r.detail.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (true, "accepted"),
                (false, "connection refused"),
                (true, "running"),
                (false, "stopped"),
                (false, "no such service on this server"),
            ]
        );
        drop(open);
    }
}
