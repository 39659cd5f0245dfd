//! `/api/docs` is the bundled Swagger UI: the page loads only assets the
//! binary embeds (no other host is named anywhere in it), each asset is
//! served byte for byte as vendored in `assets/`, with its content type,
//! cache headers and a Content-Security-Policy of the server itself, and
//! Swagger UI is pointed at `/api/openapi.json`.

mod common;

use std::path::Path;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use common::TestServer;
use tower::ServiceExt;

/// Every embedded asset: its name under `/api/docs/`, its file in the
/// crate, its content type.
const ASSETS: &[(&str, &str, &str)] = &[
    ("swagger-ui-bundle.js", "assets/swagger-ui/swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    ("swagger-ui.css", "assets/swagger-ui/swagger-ui.css", "text/css; charset=utf-8"),
    ("swagger-initializer.js", "assets/docs/swagger-initializer.js", "text/javascript; charset=utf-8"),
    ("favicon-32x32.png", "assets/swagger-ui/favicon-32x32.png", "image/png"),
    ("favicon-16x16.png", "assets/swagger-ui/favicon-16x16.png", "image/png"),
    ("LICENSE", "assets/swagger-ui/LICENSE", "text/plain; charset=utf-8"),
    ("NOTICE", "assets/swagger-ui/NOTICE", "text/plain; charset=utf-8"),
    (
        "swagger-ui-bundle.js.LICENSE.txt",
        "assets/swagger-ui/swagger-ui-bundle.js.LICENSE.txt",
        "text/plain; charset=utf-8",
    ),
];

const CSP: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

struct Raw {
    status: StatusCode,
    headers: HeaderMap,
    bytes: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    fn text(&self) -> String {
        String::from_utf8(self.bytes.clone()).expect("UTF-8 body")
    }
}

/// A GET through the router, keeping the body's bytes; the answer is
/// checked against the contract like every other answer of the tests.
async fn get(s: &TestServer, uri: &str) -> Raw {
    let request = Request::builder().uri(uri).body(Body::empty()).expect("request");
    let response = s.router.clone().oneshot(request).await.expect("infallible router");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body").to_vec();
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    common::contract::check("GET", uri, status.as_u16(), content_type, &String::from_utf8_lossy(&bytes));
    Raw { status, headers, bytes }
}

fn vendored(file: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).expect("vendored file")
}

/// The `v` the page puts on its asset URLs.
fn digest_of(page: &str) -> String {
    let at = page.find("/api/docs/swagger-ui-bundle.js?v=").expect("bundle link")
        + "/api/docs/swagger-ui-bundle.js?v=".len();
    page[at..].chars().take_while(char::is_ascii_hexdigit).collect()
}

#[tokio::test]
async fn the_page_starts_swagger_ui_from_the_bundled_assets_only() {
    let s = TestServer::start().await;
    for uri in ["/api/docs", "/api/docs/"] {
        let r = get(&s, uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert_eq!(r.header("content-type"), "text/html; charset=utf-8", "{uri}");
        assert_eq!(r.header("cache-control"), "no-cache", "{uri}");
        assert_eq!(r.header("content-security-policy"), CSP, "{uri}");
        assert_eq!(r.header("x-content-type-options"), "nosniff", "{uri}");
        let page = r.text();
        let v = digest_of(&page);
        assert_eq!(v.len(), 16, "digest in {page}");
        for (tag, name) in [
            ("<link rel=\"stylesheet\" href=", "swagger-ui.css"),
            ("<script src=", "swagger-ui-bundle.js"),
            ("<script src=", "swagger-initializer.js"),
        ] {
            let wanted = format!("{tag}\"/api/docs/{name}?v={v}\"");
            assert!(page.contains(&wanted), "{uri}: {wanted} missing from\n{page}");
        }
        assert!(page.contains("<div id=\"swagger-ui\"></div>"), "{page}");
        assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("//cdn"), "{page}");
        assert!(!page.contains("<script>") && !page.contains("style="), "inline code the CSP would block: {page}");
    }
    let init = String::from_utf8(vendored("assets/docs/swagger-initializer.js")).expect("UTF-8");
    assert!(init.contains("url: \"/api/openapi.json\""), "{init}");
    assert!(init.contains("validatorUrl: \"none\""), "no online validator: {init}");
    assert!(!init.contains("http://") && !init.contains("https://"), "{init}");
}

#[tokio::test]
async fn every_asset_is_served_byte_identical_with_its_content_type_and_caching() {
    let s = TestServer::start().await;
    let v = digest_of(&get(&s, "/api/docs").await.text());
    for (name, file, content_type) in ASSETS {
        let expected = vendored(file);
        let r = get(&s, &format!("/api/docs/{name}?v={v}")).await;
        assert_eq!(r.status, StatusCode::OK, "{name}");
        assert_eq!(r.header("content-type"), *content_type, "{name}");
        assert_eq!(r.header("cache-control"), "public, max-age=31536000, immutable", "{name}");
        assert_eq!(r.header("content-security-policy"), CSP, "{name}");
        assert_eq!(r.header("x-content-type-options"), "nosniff", "{name}");
        assert!(
            r.bytes == expected,
            "{name}: {} bytes served, {} vendored, or different",
            r.bytes.len(),
            expected.len()
        );
        // Without the current digest the browser must revalidate.
        for stale in [format!("/api/docs/{name}"), format!("/api/docs/{name}?v=0000000000000000")] {
            let r = get(&s, &stale).await;
            assert_eq!(r.status, StatusCode::OK, "{stale}");
            assert_eq!(r.header("cache-control"), "no-cache", "{stale}");
            assert!(r.bytes == expected, "{stale}");
        }
    }
}

#[tokio::test]
async fn a_name_that_is_not_an_embedded_asset_is_the_404_envelope() {
    let s = TestServer::start().await;
    for uri in [
        "/api/docs/nope.js",
        "/api/docs/swagger-ui-bundle.js.map",
        "/api/docs/index.html",
        "/api/docs/..%2FCargo.toml",
        "/api/docs/%2e%2e/Cargo.toml",
        "/api/docs/assets/swagger-ui/LICENSE",
    ] {
        let r = get(&s, uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
        let body: serde_json::Value = serde_json::from_slice(&r.bytes).expect("envelope");
        assert_eq!(body["error"]["code"], "not_found", "{uri}: {body}");
    }
}
