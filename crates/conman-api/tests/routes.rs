//! The router and `/api/openapi.json` agree: every documented operation is
//! routed (it is not answered by the router's fallback), every documented
//! path answers exactly its documented methods (any other is `405` with an
//! `Allow` naming the documented ones), and each route outside the document
//! (`conman_api::undocumented_routes`) is routed too.
//!
//! A route in the router that is neither documented nor in that list cannot
//! be found by asking the router (axum does not list its routes); it is
//! excluded by construction instead: documented routes are registered only
//! through utoipa-axum's `routes!`, which adds the operation to the document
//! in the same call, and `server.rs` registers nothing else but that list.

mod common;

use std::collections::BTreeSet;

use axum::http::Method;
use common::{RawRequest, TestServer};
use serde_json::Value;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `template` with every `{param}` filled with a well-formed value.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                if segment == "{key}" {
                    "SOME_KEY".to_owned()
                } else {
                    uuid::Uuid::now_v7().to_string()
                }
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn is_fallback(r: &common::Reply) -> bool {
    r.status.as_u16() == 404 && r.body["error"]["message"] == "route not found"
}

#[tokio::test]
async fn every_documented_operation_is_routed_with_exactly_its_documented_methods() {
    let s = TestServer::start().await;
    let doc: Value = serde_json::from_str(&conman_api::openapi::document_json()).expect("document");
    let paths = doc["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (template, item) in paths {
        let uri = concrete(template);
        let documented: BTreeSet<&str> = METHODS.into_iter().filter(|m| item.get(*m).is_some()).collect();
        assert!(!documented.is_empty(), "{template} has no operation");
        for method in METHODS {
            let r = s.send(RawRequest::new(method.to_uppercase().parse::<Method>().expect("method"), &uri)).await;
            if documented.contains(method) {
                operations += 1;
                assert!(!is_fallback(&r), "{method} {template} is documented but not routed: {}", r.text);
                assert_ne!(r.status.as_u16(), 405, "{method} {template} is documented but not routed: {}", r.text);
            } else {
                r.assert_error(405, "not_found");
                let allow = r.headers.get("allow").and_then(|v| v.to_str().ok()).unwrap_or_default().to_lowercase();
                let allowed: BTreeSet<&str> = allow.split(',').map(str::trim).filter(|m| *m != "head").collect();
                assert_eq!(allowed, documented, "{template}: the router's methods differ from the document's");
            }
        }
    }
    assert_eq!(operations, 88, "the document's operation count changed; update this number on purpose");
}

#[tokio::test]
async fn every_route_outside_the_document_is_routed_and_answers_get() {
    let s = TestServer::start().await;
    let templates: Vec<&str> = conman_api::undocumented_routes().collect();
    assert_eq!(templates, ["/api/metrics", "/api/openapi.json", "/api/docs", "/api/docs/", "/api/docs/{file}"]);
    for template in templates {
        let uri = template.replace("{file}", "swagger-ui.css");
        let r = s.send(RawRequest::new(Method::GET, &uri)).await;
        r.assert_status(200);
        let r = s.send(RawRequest::new(Method::DELETE, &uri)).await;
        r.assert_error(405, "not_found");
    }
}
