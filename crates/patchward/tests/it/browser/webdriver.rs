//! A small W3C WebDriver client over reqwest, driving headless Chromium through a `chromedriver`
//! that it starts on a free loopback port and stops again when dropped.
//!
//! Every method panics with what it was doing, the page it was on and (for lookups and waits) a
//! screenshot and the page source written beside the step screenshots: a browser test fails
//! with a message that says where, never with a bare WebDriver error.

use reqwest::{Client, Method};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The key under which W3C WebDriver passes an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long `find`, `click` and `wait_for` keep trying (`PATCHWARD_BROWSER_WAIT_SECS` overrides).
fn patience() -> Duration {
    let secs = std::env::var("PATCHWARD_BROWSER_WAIT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    Duration::from_secs(secs)
}

const POLL: Duration = Duration::from_millis(100);

/// An element of the current page, with the selector that found it (for messages).
#[derive(Clone, Debug)]
pub struct Element {
    id: String,
    css: String,
}

impl Element {
    /// The element as an argument of [`Browser::execute`] (`arguments[i]` in the script).
    pub fn arg(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }
}

/// A WebDriver error response: the W3C error code and chromedriver's message.
#[derive(Debug)]
struct WdError {
    status: u16,
    error: String,
    message: String,
}

impl std::fmt::Display for WdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // chromedriver appends a session-info line and a stack of addresses: keep the first line.
        let first = self.message.lines().next().unwrap_or("");
        write!(f, "{} ({}): {first}", self.error, self.status)
    }
}

/// One headless Chromium session and the chromedriver serving it.
pub struct Browser {
    http: Client,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
    driver: Child,
    /// Chromium's own process id (chromedriver reports it), killed if the session cannot be
    /// deleted.
    chromium_pid: Option<u64>,
    artifacts: PathBuf,
    step: AtomicU32,
}

impl Browser {
    /// Start chromedriver and a headless Chromium session (window 1280×900, certificate errors
    /// accepted: the server's default certificate is self-signed).
    ///
    /// `None`, with the reason printed, when Chromium or chromedriver is not installed; but
    /// with `CI=true` a missing browser is a failure, never a skip. Screenshots go to
    /// `target/browser-artifacts/<test name>/` (emptied first), named after the running test.
    pub async fn start() -> Option<Browser> {
        let (chromium, driver) = match (chromium_binary(), chromedriver_binary()) {
            (Some(c), Some(d)) => (c, d),
            (c, d) => {
                let missing: Vec<&str> = [
                    c.is_none().then_some("chromium (or PATCHWARD_CHROMIUM)"),
                    d.is_none()
                        .then_some("chromedriver (or PATCHWARD_CHROMEDRIVER)"),
                ]
                .into_iter()
                .flatten()
                .collect();
                let why = format!(
                    "{} not found; install Debian's chromium and chromium-driver (.ci/chromium does)",
                    missing.join(" and ")
                );
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!(
                        "CI=true and a browser test cannot run: {why}. It must never skip in CI."
                    );
                }
                eprintln!("skipping browser test: {why}");
                return None;
            }
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();

        let artifacts = artifacts_dir(&test_name());
        let _ = std::fs::remove_dir_all(&artifacts);
        std::fs::create_dir_all(&artifacts)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", artifacts.display()));

        let port = free_port();
        let mut child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                artifacts.join("chromedriver.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
        let base = format!("http://127.0.0.1:{port}");
        wait_until_ready(&http, &base, &mut child).await;

        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "pageLoadStrategy": "normal",
            "timeouts": { "implicit": 0, "pageLoad": 30_000, "script": 10_000 },
            "goog:chromeOptions": {
                "binary": chromium.to_string_lossy(),
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,900",
                    "--ignore-certificate-errors",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                ],
            },
        }}});
        let created = match send(&http, Method::POST, &format!("{base}/session"), Some(caps)).await
        {
            Ok(v) => v,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "chromedriver could not start {}: {e} (log: {})",
                    chromium.display(),
                    artifacts.join("chromedriver.log").display()
                );
            }
        };
        let id = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in {created}"));
        Some(Browser {
            http,
            session: format!("{base}/session/{id}"),
            driver: child,
            chromium_pid: created["capabilities"]["goog:processID"].as_u64(),
            artifacts,
            step: AtomicU32::new(0),
        })
    }

    /// The folder this test's screenshots go to.
    pub fn artifacts(&self) -> &Path {
        &self.artifacts
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WdError> {
        send(&self.http, method, &format!("{}{path}", self.session), body).await
    }

    /// A command that must succeed; `doing` says what for in the panic message.
    async fn must(&self, method: Method, path: &str, body: Option<Value>, doing: &str) -> Value {
        match self.call(method, path, body).await {
            Ok(v) => v,
            Err(e) => panic!("{doing} failed: {e} (on {})", self.url_or_unknown().await),
        }
    }

    async fn url_or_unknown(&self) -> String {
        match self.call(Method::GET, "/url", None).await {
            Ok(Value::String(u)) => u,
            _ => "an unknown page".to_string(),
        }
    }

    /// Navigate and wait for the page to load.
    pub async fn goto(&self, url: &str) {
        self.must(
            Method::POST,
            "/url",
            Some(json!({ "url": url })),
            &format!("opening {url}"),
        )
        .await;
    }

    pub async fn current_url(&self) -> String {
        str_of(
            self.must(Method::GET, "/url", None, "reading the URL")
                .await,
        )
    }

    pub async fn title(&self) -> String {
        str_of(
            self.must(Method::GET, "/title", None, "reading the title")
                .await,
        )
    }

    pub async fn page_source(&self) -> String {
        str_of(
            self.must(Method::GET, "/source", None, "reading the page source")
                .await,
        )
    }

    /// The first element matching `css`, waiting for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        self.find_from("", css).await
    }

    /// The first element matching `css` inside `within`, waiting for it to appear.
    pub async fn find_in(&self, within: &Element, css: &str) -> Element {
        self.find_from(&format!("/element/{}", within.id), css)
            .await
    }

    async fn find_from(&self, scope: &str, css: &str) -> Element {
        let deadline = Instant::now() + patience();
        let query = json!({ "using": "css selector", "value": css });
        loop {
            match self
                .call(
                    Method::POST,
                    &format!("{scope}/element"),
                    Some(query.clone()),
                )
                .await
            {
                Ok(v) => return element_of(&v, css),
                Err(e) if e.error == "no such element" && Instant::now() < deadline => {}
                Err(e) => {
                    let evidence = self.evidence("not-found").await;
                    panic!(
                        "no element matches `{css}` after {:?} on {}: {e}\n{evidence}",
                        patience(),
                        self.url_or_unknown().await
                    );
                }
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Every element matching `css` now (no waiting: an empty list is an answer).
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self
            .must(
                Method::POST,
                "/elements",
                Some(json!({ "using": "css selector", "value": css })),
                &format!("finding all `{css}`"),
            )
            .await;
        found
            .as_array()
            .map(|a| a.iter().map(|v| element_of(v, css)).collect())
            .unwrap_or_default()
    }

    /// Its rendered text (what a user sees: hidden parts excluded).
    pub async fn text(&self, el: &Element) -> String {
        str_of(
            self.must(
                Method::GET,
                &format!("/element/{}/text", el.id),
                None,
                &format!("reading the text of `{}`", el.css),
            )
            .await,
        )
    }

    /// An attribute as written in the markup (`None` when absent); what an input holds now is
    /// its `value` property: [`Browser::property`].
    pub async fn attr(&self, el: &Element, name: &str) -> Option<String> {
        let v = self
            .must(
                Method::GET,
                &format!("/element/{}/attribute/{name}", el.id),
                None,
                &format!("reading attribute {name} of `{}`", el.css),
            )
            .await;
        v.as_str().map(str::to_string)
    }

    /// A DOM property (`value`, `checked`, `disabled` …): its live state, as JSON.
    pub async fn property(&self, el: &Element, name: &str) -> Value {
        self.must(
            Method::GET,
            &format!("/element/{}/property/{name}", el.id),
            None,
            &format!("reading property {name} of `{}`", el.css),
        )
        .await
    }

    /// Click it, retrying while it is not yet clickable (covered, or still hidden by a swap).
    pub async fn click(&self, el: &Element) {
        let deadline = Instant::now() + patience();
        let path = format!("/element/{}/click", el.id);
        loop {
            match self.call(Method::POST, &path, Some(json!({}))).await {
                Ok(_) => return,
                Err(e)
                    if (e.error == "element not interactable"
                        || e.error == "element click intercepted")
                        && Instant::now() < deadline => {}
                Err(e) => {
                    let evidence = self.evidence("click-failed").await;
                    panic!(
                        "clicking `{}` failed: {e} (on {})\n{evidence}",
                        el.css,
                        self.url_or_unknown().await
                    );
                }
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Type text into it (appended to what is there; see [`Browser::clear`]).
    pub async fn type_into(&self, el: &Element, text: &str) {
        self.must(
            Method::POST,
            &format!("/element/{}/value", el.id),
            Some(json!({ "text": text })),
            &format!("typing into `{}`", el.css),
        )
        .await;
    }

    /// Empty an input or textarea.
    pub async fn clear(&self, el: &Element) {
        self.must(
            Method::POST,
            &format!("/element/{}/clear", el.id),
            Some(json!({})),
            &format!("clearing `{}`", el.css),
        )
        .await;
    }

    /// Run a script in the page (`arguments[i]` are `args`) and return what it returns.
    pub async fn execute(&self, script: &str, args: &[Value]) -> Value {
        self.must(
            Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
            &format!("running script {:?}", first_line(script)),
        )
        .await
    }

    /// Poll `condition` every 100 ms until it holds; `what` names it in the timeout panic.
    pub async fn wait_for(&self, mut condition: impl AsyncFnMut() -> bool, what: &str) {
        let deadline = Instant::now() + patience();
        while !condition().await {
            if Instant::now() >= deadline {
                let evidence = self.evidence("wait-timed-out").await;
                panic!(
                    "timed out after {:?} waiting for {what} (on {})\n{evidence}",
                    patience(),
                    self.url_or_unknown().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Resize the window, e.g. to a phone's width. The viewport gets the whole width but not
    /// the whole height: headless Chromium still reserves its toolbar's height (1280×900 shows
    /// a 1280×757 viewport).
    pub async fn set_window_size(&self, width: u32, height: u32) {
        self.must(
            Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
            &format!("resizing the window to {width}×{height}"),
        )
        .await;
    }

    /// Save a PNG of the viewport as `NN-<step>.png` in this test's artifacts folder.
    pub async fn screenshot(&self, step: &str) -> PathBuf {
        let n = self.step.fetch_add(1, Ordering::Relaxed) + 1;
        let path = self
            .artifacts
            .join(format!("{n:02}-{}.png", file_safe(step)));
        let b64 = str_of(
            self.must(Method::GET, "/screenshot", None, "taking a screenshot")
                .await,
        );
        let png = base64_decode(&b64).unwrap_or_else(|e| panic!("screenshot: {e}"));
        std::fs::write(&path, png)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }

    /// Bytes the page cost: the document plus every resource it loaded (transferred size, or
    /// the encoded body size when it came from the cache).
    pub async fn page_weight(&self) -> u64 {
        let v = self
            .execute(
                "return performance.getEntriesByType('navigation')\
                    .concat(performance.getEntriesByType('resource'))\
                    .reduce((sum, e) => sum + (e.transferSize || e.encodedBodySize || 0), 0);",
                &[],
            )
            .await;
        v.as_f64()
            .map(|f| f as u64)
            .unwrap_or_else(|| panic!("page weight: not a number: {v}"))
    }

    /// URLs of the resources the page requested (loaded or failed) outside `origin` (any URL
    /// of the origin will do, e.g. the server's). The UI must not contact any other origin.
    pub async fn foreign_requests(&self, origin: &str) -> Vec<String> {
        let v = self
            .execute(
                "const origin = new URL(arguments[0]).origin;\
                 return performance.getEntriesByType('resource').map(e => e.name)\
                    .filter(n => !n.startsWith('data:') && new URL(n).origin !== origin);",
                &[json!(origin)],
            )
            .await;
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_else(|| panic!("foreign requests: not a list: {v}"))
    }

    /// A screenshot and the page source for a failure message (best effort: the session may
    /// be what failed).
    async fn evidence(&self, step: &str) -> String {
        let n = self.step.fetch_add(1, Ordering::Relaxed) + 1;
        let base = self.artifacts.join(format!("{n:02}-{step}"));
        let mut notes = Vec::new();
        if let Ok(Value::String(b64)) = self.call(Method::GET, "/screenshot", None).await
            && let Ok(png) = base64_decode(&b64)
            && std::fs::write(base.with_extension("png"), png).is_ok()
        {
            notes.push(format!(
                "screenshot: {}",
                base.with_extension("png").display()
            ));
        }
        if let Ok(Value::String(html)) = self.call(Method::GET, "/source", None).await
            && std::fs::write(base.with_extension("html"), html).is_ok()
        {
            notes.push(format!(
                "page source: {}",
                base.with_extension("html").display()
            ));
        }
        notes.join("\n")
    }
}

impl Drop for Browser {
    /// Delete the session (Chromium quits) and stop chromedriver. Runs on its own thread and
    /// runtime: a `Drop` cannot await, and may run inside the test's runtime.
    fn drop(&mut self) {
        let http = self.http.clone();
        let session = self.session.clone();
        let deleted = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(send(&http, Method::DELETE, &session, None))
                .ok()
        })
        .join()
        .ok()
        .flatten()
        .is_some();
        if !deleted && let Some(pid) = self.chromium_pid {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// One WebDriver request: the `value` of a success, or the error it names.
async fn send(
    http: &Client,
    method: Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value, WdError> {
    let mut req = http.request(method.clone(), url);
    if let Some(b) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    let transport = |e: String| WdError {
        status: 0,
        error: "transport".to_string(),
        message: format!("{method} {url}: {e}"),
    };
    let resp = req.send().await.map_err(|e| transport(e.to_string()))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| transport(e.to_string()))?;
    let mut v: Value =
        serde_json::from_str(&text).map_err(|e| transport(format!("{e} in {text:?}")))?;
    let value = v["value"].take();
    if status == 200 {
        return Ok(value);
    }
    Err(WdError {
        status,
        error: value["error"]
            .as_str()
            .unwrap_or("unknown error")
            .to_string(),
        message: value["message"].as_str().unwrap_or(&text).to_string(),
    })
}

async fn wait_until_ready(http: &Client, base: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("chromedriver exited at start: {status}");
        }
        if let Ok(v) = send(http, Method::GET, &format!("{base}/status"), None).await
            && v["ready"] == json!(true)
        {
            return;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromedriver at {base} not ready after 20 s");
        }
        tokio::time::sleep(POLL).await;
    }
}

fn element_of(v: &Value, css: &str) -> Element {
    let id = v[ELEMENT_KEY]
        .as_str()
        .unwrap_or_else(|| panic!("`{css}`: not an element reference: {v}"));
    Element {
        id: id.to_string(),
        css: css.to_string(),
    }
}

fn str_of(v: Value) -> String {
    match v {
        Value::String(s) => s,
        other => panic!("expected a string from WebDriver, got {other}"),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// A free loopback port (the listener is dropped before chromedriver binds it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// `PATCHWARD_CHROMIUM`, else Debian's real binary (`/usr/bin/chromium` is a shell wrapper that
/// adds flags from /etc/chromium.d, among them `--enable-remote-extensions`, which turns its
/// `--disable-background-networking` off), else `chromium` on the PATH.
fn chromium_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PATCHWARD_CHROMIUM") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let debian = PathBuf::from("/usr/lib/chromium/chromium");
    if debian.is_file() {
        return Some(debian);
    }
    on_path("chromium").or_else(|| on_path("chromium-browser"))
}

fn chromedriver_binary() -> Option<PathBuf> {
    match std::env::var_os("PATCHWARD_CHROMEDRIVER") {
        Some(p) => Some(PathBuf::from(p)).filter(|p| p.is_file()),
        None => on_path("chromedriver"),
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The running test's name: libtest names each test's thread after it (and a
/// `#[tokio::test]` body runs on that thread).
fn test_name() -> String {
    match std::thread::current().name() {
        Some(n) if n != "main" => n.replace("::", "."),
        _ => format!("unnamed-{}", std::process::id()),
    }
}

/// `<target>/browser-artifacts/<test>`: the target folder is `CARGO_TARGET_DIR` when it is an
/// absolute path, else the one this test binary was built in (`<target>/<profile>/deps/it-…`),
/// else the workspace's `target`.
fn artifacts_dir(test: &str) -> PathBuf {
    let from_env = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let from_exe = || {
        let exe = std::env::current_exe().ok()?;
        let deps = exe.parent()?;
        if deps.file_name()? != "deps" {
            return None;
        }
        Some(deps.parent()?.parent()?.to_path_buf())
    };
    let target = from_env
        .or_else(from_exe)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("browser-artifacts").join(file_safe(test))
}

fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Standard base64 (RFC 4648 §4) as chromedriver sends screenshots; padding optional.
fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for (i, c) in s.bytes().enumerate() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b'\r' | b'\n' => continue,
            _ => return Err(format!("byte {c:#04x} at offset {i} is not base64")),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

#[test]
fn base64_decodes_the_rfc_4648_vectors() {
    for (enc, dec) in [
        ("", ""),
        ("Zg==", "f"),
        ("Zm8=", "fo"),
        ("Zm9v", "foo"),
        ("Zm9vYg==", "foob"),
        ("Zm9vYmE=", "fooba"),
        ("Zm9vYmFy", "foobar"),
        ("Zm9vYmFy\n", "foobar"),
    ] {
        assert_eq!(base64_decode(enc).unwrap(), dec.as_bytes(), "{enc:?}");
    }
    assert_eq!(
        base64_decode("AAECAwQFBgcICQ==").unwrap(),
        (0u8..10).collect::<Vec<_>>()
    );
    assert_eq!(base64_decode("/+8=").unwrap(), [0xff, 0xef]);
    let err = base64_decode("Zm9v!").unwrap_err();
    assert!(err.contains("offset 4"), "{err}");
}
