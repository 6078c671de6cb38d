//! Real-browser tests: headless Chromium driven over W3C WebDriver ([`webdriver`]) against the
//! real server. Each step's screenshot is written as a test artifact to
//! `target/browser-artifacts/<test>/NN-step.png`. Without Chromium they skip, except with
//! `CI=true`, where a missing browser fails them.

mod ui;
pub mod webdriver;

pub use webdriver::Browser;

use crate::api::start;
use crate::tmpdir;
use serde_json::json;
use std::path::Path;
use std::time::Instant;

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The width in pixels of a PNG file (its IHDR chunk comes first).
fn png_width(path: &Path) -> u32 {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.starts_with(PNG_MAGIC),
        "{} is not a PNG: {:?}",
        path.display(),
        &bytes[..bytes.len().min(8)]
    );
    assert_eq!(&bytes[12..16], b"IHDR", "{}", path.display());
    u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]])
}

/// Every method of the harness, on the page the server has today without the web UI: Swagger
/// UI, served from the binary, which builds its page with script from the OpenAPI document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_drives_a_real_page() {
    let began = Instant::now();
    let dir = tmpdir("browser-harness");
    let server = start(&dir.join("browser.db"), &[]);
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let Some(b) = Browser::start().await else {
        return;
    };
    let docs = format!("{}/api/v1/docs/", server.url);
    b.goto(&docs).await;
    assert_eq!(b.title().await, "Swagger UI");
    assert_eq!(b.current_url().await, docs);
    // Rendered by script once the OpenAPI document has loaded: `find` waits for it.
    let title = b.find(".info .title").await;
    let text = b.text(&title).await;
    assert!(text.starts_with("Patchward API"), "{text:?}");
    let wide = b.screenshot("docs").await;

    // One block per operation, each naming its path; opening one shows its details.
    let ops = b.find_all(".opblock").await;
    assert!(ops.len() > 20, "{} operations", ops.len());
    let path = b.find_in(&ops[0], ".opblock-summary-path").await;
    let p = b.attr(&path, "data-path").await.unwrap_or_default();
    assert!(p.starts_with("/api/v1/"), "{p:?}");
    assert_eq!(b.attr(&path, "data-no-such-attribute").await, None);
    assert!(b.find_all(".opblock.is-open").await.is_empty());
    b.click(&b.find_in(&ops[0], ".opblock-summary-control").await)
        .await;
    b.wait_for(
        async || b.find_all(".opblock.is-open .opblock-body").await.len() == 1,
        "the first operation to open",
    )
    .await;
    b.screenshot("operation-open").await;

    // Typing: the bearer token field of the Authorize dialog.
    b.click(&b.find("button.authorize").await).await;
    let field = b.find(".modal-ux input").await;
    b.type_into(&field, "pwt_example").await;
    assert_eq!(b.property(&field, "value").await, json!("pwt_example"));
    assert_eq!(
        b.attr(&field, "value").await,
        None,
        "typing sets no attribute"
    );
    b.screenshot("authorize").await;
    b.clear(&field).await;
    assert_eq!(
        b.execute("return arguments[0].value;", &[field.arg()])
            .await,
        json!("")
    );

    assert_eq!(
        b.execute("return arguments[0] + 1;", &[json!(41)]).await,
        json!(42)
    );
    assert!(b.page_source().await.contains("swagger-ui"));

    // Nothing from another origin; the weight is Swagger UI's bundle, so well above zero.
    assert_eq!(b.foreign_requests(&server.url).await, Vec::<String>::new());
    let weight = b.page_weight().await;
    assert!((100_000..10_000_000).contains(&weight), "{weight} bytes");

    // A phone's width.
    b.set_window_size(390, 844).await;
    b.wait_for(
        async || b.execute("return window.innerWidth;", &[]).await == json!(390),
        "a 390 px wide viewport",
    )
    .await;
    let phone = b.screenshot("phone").await;

    // The check can fail: a request to another origin (localhost is not 127.0.0.1) is named.
    let other = format!("{}/healthz", server.url.replace("127.0.0.1", "localhost"));
    b.execute(
        "const i = new Image(); i.src = arguments[0]; document.body.append(i);",
        &[json!(other)],
    )
    .await;
    b.wait_for(
        async || !b.foreign_requests(&server.url).await.is_empty(),
        "the request to localhost to be listed",
    )
    .await;
    assert_eq!(b.foreign_requests(&server.url).await, [other]);

    assert_eq!(png_width(&wide), 1280);
    assert_eq!(png_width(&phone), 390);
    assert!(wide.starts_with(b.artifacts()) && wide.ends_with("01-docs.png"));
    println!(
        "browser smoke test: {:.1} s, page weight {weight} bytes, screenshots in {}",
        began.elapsed().as_secs_f64(),
        b.artifacts().display()
    );
}
