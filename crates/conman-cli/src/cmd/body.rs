//! Request bodies the CLI reads from files, stdin or arguments. Every one is
//! read by `conman_api::dto::parse_body` into the HTTP API's request type
//! (`ChangesRequest`, `CreateProfileRequest`, `PatchProfileRequest`,
//! `PutProfileOverridesRequest`, `ReplaceEnvironmentsRequest`,
//! `SettingsPatchDto`), so the CLI accepts exactly the documents the API
//! accepts and refuses the others with the API's `validation_error` and
//! message. The CLI keeps no copy of the wire parsing.
//!
//! Two conveniences sit in front of the API's reader and change no rule: a
//! file may hold a bare JSON list where the API's body is `{"<key>": [...]}`
//! (the list becomes that one field), and flags (`--set`, `--unset`, a
//! profile's name) are merged into the document before it is read.

use std::io::Read as _;
use std::path::Path;

use conman_api::dto::parse_body;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::output::CoreResult;

/// The bytes of `path` (`-`: stdin).
pub(crate) fn read_bytes(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes)?;
        Ok(bytes)
    } else {
        std::fs::read(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))
    }
}

/// The JSON object in `bytes`, read as the API reads a body (malformed
/// JSON, a non-object and a key given twice are refused). With `list_key`,
/// a bare list is taken as the value of that one field.
pub(crate) fn object(bytes: &[u8], list_key: Option<&str>) -> anyhow::Result<Map<String, Value>> {
    match list_key {
        Some(key) if bytes.trim_ascii_start().starts_with(b"[") => {
            let mut wrapped = format!("{{{}:", Value::from(key)).into_bytes();
            wrapped.extend_from_slice(bytes);
            wrapped.push(b'}');
            parse_body(&wrapped).core()
        }
        _ => parse_body(bytes).core(),
    }
}

/// The API's request type `T` from a body, read exactly as the API reads it.
pub(crate) fn request<T: DeserializeOwned>(body: Map<String, Value>) -> anyhow::Result<T> {
    let bytes = serde_json::to_vec(&Value::Object(body))?;
    parse_body(&bytes).core()
}
