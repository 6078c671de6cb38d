//! `feeds sync`: download the public feeds into a folder, then import that folder.
//! Fails with a clear message when the network does not allow it; air-gapped sites copy the
//! same files over and use `import feeds`.

use super::{import, open};
use anyhow::{Context, Result, bail};
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const MSRC_BASE: &str = "https://api.msrc.microsoft.com/cvrf/v3.0";
pub const KEV_URL: &str =
    "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json";
pub const EPSS_URL: &str = "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz";

#[derive(Args)]
pub struct SyncArgs {
    /// Folder to download into (kept, so the same files can be imported elsewhere).
    #[arg(long, default_value = "feeds")]
    pub dir: PathBuf,
    /// How many of the newest MSRC months to fetch (documents are edited for years).
    #[arg(long, default_value_t = 24)]
    pub months: usize,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// MSRC CVRF API base (a mirror may be given); `/updates` and `/cvrf/<ID>` are appended.
    #[arg(long, default_value = MSRC_BASE)]
    pub msrc_url: String,
    /// CISA KEV JSON URL.
    #[arg(long, default_value = KEV_URL)]
    pub kev_url: String,
    /// FIRST EPSS daily CSV (gzip) URL.
    #[arg(long, default_value = EPSS_URL)]
    pub epss_url: String,
}

fn client(timeout: u64) -> Result<reqwest::Client> {
    // rustls with the ring provider; certificates from the platform store.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(timeout))
        .connect_timeout(Duration::from_secs(15))
        .user_agent(concat!("patchward/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build the HTTP client")
}

async fn get(c: &reqwest::Client, url: &str, accept: &str) -> Result<Vec<u8>> {
    let host = url.split('/').nth(2).unwrap_or(url);
    let resp = c.get(url).header("Accept", accept).send().await.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach {host} ({e}); no network here? Download the feeds elsewhere and use `patchward import feeds FOLDER`"
        )
    })?;
    let status = resp.status();
    if !status.is_success() {
        bail!("{url}: HTTP {status}");
    }
    let body = resp
        .bytes()
        .await
        .with_context(|| format!("{url}: download interrupted"))?;
    if body.is_empty() {
        bail!("{url}: empty response");
    }
    Ok(body.to_vec())
}

pub async fn run(db: &Path, a: SyncArgs) -> Result<()> {
    let c = client(a.timeout)?;
    std::fs::create_dir_all(&a.dir)
        .with_context(|| format!("cannot create {}", a.dir.display()))?;
    let write = |name: &str, bytes: &[u8]| -> Result<()> {
        let p = a.dir.join(name);
        std::fs::write(&p, bytes).with_context(|| format!("cannot write {}", p.display()))
    };

    let base = a.msrc_url.trim_end_matches('/');
    let index = get(&c, &format!("{base}/updates"), "application/json").await?;
    let v: serde_json::Value =
        serde_json::from_slice(&index).context("MSRC updates index is not JSON")?;
    let mut ids: Vec<(String, String)> = v
        .get("value")
        .and_then(|x| x.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|d| {
                    let id = d.get("ID")?.as_str()?.to_string();
                    let date = d.get("InitialReleaseDate")?.as_str()?.to_string();
                    // Mariner release notes carry fake 1999–2001 ids.
                    let year: u32 = id.get(..4)?.parse().ok()?;
                    (year >= 2016).then_some((date, id))
                })
                .collect()
        })
        .unwrap_or_default();
    if ids.is_empty() {
        bail!("MSRC updates index lists no documents (empty or changed response)");
    }
    ids.sort();
    ids.reverse();
    for (_, id) in ids.iter().take(a.months) {
        eprintln!("fetching MSRC {id}");
        let doc = get(&c, &format!("{base}/cvrf/{id}"), "application/xml").await?;
        write(&format!("msrc-{id}.xml"), &doc)?;
    }
    eprintln!("fetching CISA KEV");
    write(
        "known_exploited_vulnerabilities.json",
        &get(&c, &a.kev_url, "application/json").await?,
    )?;
    eprintln!("fetching FIRST EPSS");
    write(
        "epss_scores-current.csv.gz",
        &get(&c, &a.epss_url, "*/*").await?,
    )?;

    let store = open(db).await?;
    let summary = import::import_feeds(&store, std::slice::from_ref(&a.dir), true).await?;
    import::report_feeds(&summary);
    if !summary.errors.is_empty() {
        bail!(
            "{} downloaded file(s) could not be imported",
            summary.errors.len()
        );
    }
    Ok(())
}
