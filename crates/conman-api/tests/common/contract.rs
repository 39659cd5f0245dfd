//! Response validation against the generated OpenAPI document: every
//! answer the HTTP tests receive goes through [`check`], which finds the
//! operation (path template and method) in `conman_api::openapi::document`,
//! the response documented for the status, and validates the body against
//! its JSON schema (draft 2020-12, `$ref`s resolved against the document's
//! `components`). A mismatch fails the test that made the request.
//!
//! Invariants checked:
//! - a path outside the document is answered only by the non-JSON
//!   endpoints of `conman_api::undocumented_routes` or by an error envelope;
//! - a documented path answers a method it does not document only with
//!   `405` in the error envelope;
//! - a documented operation answers only documented statuses, and a JSON
//!   body matches the documented schema of that status.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde_json::{json, Value};

/// Whether `path` is one of the routes outside the document (the document
/// itself, its browsable reference and its assets, the Prometheus text):
/// the router's own list, `conman_api::undocumented_routes`.
fn undocumented(path: &str) -> bool {
    conman_api::undocumented_routes().any(|template| params_if_matches(template, path).is_some())
}

fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::from_str(&conman_api::openapi::document_json()).expect("document is JSON"))
}

/// The path template of the document that `path` (without query) matches;
/// literal segments win over `{param}` ones.
fn template_for(path: &str) -> Option<&'static str> {
    let paths = document()["paths"].as_object().expect("paths");
    paths
        .keys()
        .filter_map(|template| Some((params_if_matches(template, path)?, template.as_str())))
        .min_by_key(|(params, _)| *params)
        .map(|(_, t)| t)
}

/// How many `{param}` segments of `template` `path` fills, if it matches.
fn params_if_matches(template: &str, path: &str) -> Option<usize> {
    let wanted: Vec<&str> = path.split('/').collect();
    let segments: Vec<&str> = template.split('/').collect();
    if segments.len() != wanted.len() {
        return None;
    }
    let mut params = 0;
    for (t, w) in segments.iter().zip(&wanted) {
        if t.starts_with('{') && t.ends_with('}') {
            if w.is_empty() {
                return None;
            }
            params += 1;
        } else if t != w {
            return None;
        }
    }
    Some(params)
}

/// A draft 2020-12 validator of `schema`, whose `#/components/...`
/// references resolve against the document.
fn validator(key: String, schema: &Value) -> std::sync::Arc<jsonschema::Validator> {
    static CACHE: OnceLock<Mutex<HashMap<String, std::sync::Arc<jsonschema::Validator>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(v) = cache.lock().expect("validator cache").get(&key) {
        return v.clone();
    }
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "allOf": [schema],
        "components": document()["components"],
    });
    let built = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("schema of {key} does not compile: {e}"));
    let built = std::sync::Arc::new(built);
    cache.lock().expect("validator cache").insert(key, built.clone());
    built
}

fn validate(what: &str, schema: &Value, body: &Value) -> Result<(), String> {
    let v = validator(what.to_owned(), schema);
    let errors: Vec<String> =
        v.iter_errors(body).map(|e| format!("  at {}: {}", e.instance_path(), e)).take(8).collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("{what}: body does not match its schema:\n{}\nbody: {body}", errors.join("\n")))
    }
}

fn error_envelope() -> Value {
    json!({ "$ref": "#/components/schemas/ErrorEnvelope" })
}

/// Validates one answer; `Err` says what does not match.
pub fn verify(method: &str, uri: &str, status: u16, content_type: &str, text: &str) -> Result<(), String> {
    let path = uri.split('?').next().unwrap_or(uri);
    let is_json = content_type.starts_with("application/json");
    let body: Option<Value> = if is_json {
        Some(serde_json::from_str(text).map_err(|e| format!("{method} {uri}: invalid JSON body: {e}"))?)
    } else {
        None
    };
    let Some(template) = template_for(path) else {
        if undocumented(path) && status < 400 {
            return Ok(());
        }
        return match body {
            Some(body) if status >= 400 => validate(&format!("{method} {uri} {status}"), &error_envelope(), &body),
            _ => Err(format!("{method} {uri}: {status} answered on a path outside the document")),
        };
    };
    let what = format!("{} {template} {status}", method.to_uppercase());
    let Some(operation) = document()["paths"][template].get(method.to_lowercase()) else {
        if status != 405 {
            return Err(format!("{what}: undocumented method answered {status}, not 405"));
        }
        return match body {
            Some(body) => validate(&what, &error_envelope(), &body),
            None => Err(format!("{what}: 405 without the error envelope")),
        };
    };
    let Some(response) = operation["responses"].get(status.to_string()) else {
        return Err(format!("{what}: status {status} is not documented; body: {text}"));
    };
    match (response["content"].get("application/json"), body) {
        (Some(media), Some(body)) => validate(&what, &media["schema"], &body),
        (Some(_), None) => Err(format!("{what}: documented as JSON, answered {content_type:?}")),
        (None, Some(body)) if body.is_null() || text.is_empty() => Ok(()),
        (None, Some(body)) => Err(format!("{what}: answered a JSON body where none is documented: {body}")),
        (None, None) => Ok(()),
    }
}

/// Validates one answer, failing the calling test on a mismatch.
#[track_caller]
pub fn check(method: &str, uri: &str, status: u16, content_type: &str, text: &str) {
    if let Err(e) = verify(method, uri, status, content_type, text) {
        panic!("response does not match /api/openapi.json: {e}");
    }
}
