//! `/api/docs`: the API reference, Swagger UI rendering the server's own
//! `/api/openapi.json`, with its schemas and "try it out".
//!
//! Invariants:
//! - Every byte served here is in the binary: the files of the npm package
//!   `swagger-ui-dist` vendored unchanged in `assets/swagger-ui/` (see its
//!   README for the version and licenses) and Conman's page and initializer
//!   in `assets/docs/`, embedded with `include_bytes!`. Nothing is fetched
//!   at build time or at run time; the page loads nothing from elsewhere.
//! - Every answer carries a Content-Security-Policy that allows the server
//!   itself only (and `data:` images, which Swagger UI's stylesheet embeds),
//!   so no inline script runs, and `X-Content-Type-Options: nosniff`.
//! - Caching: the page is revalidated on every load (`no-cache`); it names
//!   each asset with `?v=<digest of every embedded file>`, and an asset
//!   requested with the current digest is cached for a year (`immutable`),
//!   any other request of it is revalidated. A new build with changed files
//!   has a new digest, so a browser never keeps stale assets.

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{header, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};

/// Where the assets are served; the page links them by absolute path.
const PREFIX: &str = "/api/docs/";

const CSP: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

const PAGE: &str = include_str!("../assets/docs/index.html");

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

const ASSETS: &[Asset] = &[
    Asset {
        name: "swagger-ui-bundle.js",
        content_type: JS,
        bytes: include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js"),
    },
    Asset {
        name: "swagger-ui.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/swagger-ui/swagger-ui.css"),
    },
    Asset {
        name: "swagger-initializer.js",
        content_type: JS,
        bytes: include_bytes!("../assets/docs/swagger-initializer.js"),
    },
    Asset {
        name: "favicon-32x32.png",
        content_type: "image/png",
        bytes: include_bytes!("../assets/swagger-ui/favicon-32x32.png"),
    },
    Asset {
        name: "favicon-16x16.png",
        content_type: "image/png",
        bytes: include_bytes!("../assets/swagger-ui/favicon-16x16.png"),
    },
    Asset { name: "LICENSE", content_type: TEXT, bytes: include_bytes!("../assets/swagger-ui/LICENSE") },
    Asset { name: "NOTICE", content_type: TEXT, bytes: include_bytes!("../assets/swagger-ui/NOTICE") },
    Asset {
        name: "swagger-ui-bundle.js.LICENSE.txt",
        content_type: TEXT,
        bytes: include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js.LICENSE.txt"),
    },
];

/// A digest of every embedded file (64-bit FNV-1a, hex): the `v` the page
/// puts on each asset URL. Not a security measure, a cache key.
fn digest() -> &'static str {
    static DIGEST: OnceLock<String> = OnceLock::new();
    DIGEST.get_or_init(|| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let files = ASSETS.iter().map(|a| a.bytes).chain([PAGE.as_bytes()]);
        for bytes in files {
            for &b in bytes.iter().chain(&[0xff]) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        format!("{h:016x}")
    })
}

fn respond(content_type: &'static str, cache: &'static str, body: Body) -> Response {
    let mut r = Response::new(body);
    let headers = r.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}

/// `GET /api/docs` (and `/api/docs/`): the page that starts Swagger UI.
pub(crate) async fn index() -> Response {
    static HTML: OnceLock<String> = OnceLock::new();
    let html = HTML.get_or_init(|| PAGE.replace("{{v}}", digest()));
    respond("text/html; charset=utf-8", "no-cache", Body::from(html.as_str()))
}

/// `GET /api/docs/{file}`: one embedded asset, or the 404 envelope. Reads
/// the name from the raw path, so no extractor can refuse the request.
pub(crate) async fn asset(uri: Uri) -> Response {
    let name = uri.path().strip_prefix(PREFIX).unwrap_or_default();
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return crate::request_id::not_found().await;
    };
    let current = uri.query().and_then(|q| q.strip_prefix("v=")) == Some(digest());
    let cache = if current { "public, max-age=31536000, immutable" } else { "no-cache" };
    respond(asset.content_type, cache, Body::from(asset.bytes)).into_response()
}
