//! Parsing one side of a file into `serde_json::Value` documents.
//!
//! Invariants:
//! - never panics and never fails silently: any input yields either the
//!   documents or a one-line, human-readable reason (with the parser's line
//!   and column where it has them);
//! - YAML: every document of the stream is returned in order (an empty
//!   stream is one `null` document); `<<` merge keys are applied when they
//!   can be; a non-string map key becomes its string form (`1`, `true`,
//!   `null`, or compact JSON for a collection key); a tagged value `!T v`
//!   becomes the one-entry map `{"!T": v}` so a change of tag is visible;
//!   `.nan` / `.inf` / `-.inf` become those strings;
//! - JSON: exactly one document; TOML: one document (a table); TOML
//!   datetimes become their text, `nan` / `inf` / `-inf` floats strings;
//! - a leading byte-order mark is ignored for every format;
//! - nesting is capped by the parsers themselves (serde_json and the YAML
//!   deserializer at 128 levels, toml_edit at its recursion limit), so the
//!   recursive conversions and the tree walk cannot overflow the stack;
//!   deeper input is reported as not valid.

use serde::Deserialize;
use serde_json::{Map, Number, Value};

use super::FileFormat;

/// The format a path's extension selects (case-insensitive).
pub(super) fn detect(path: &str) -> FileFormat {
    let name = path.rsplit('/').next().unwrap_or(path);
    let Some((_, ext)) = name.rsplit_once('.') else {
        return FileFormat::Other;
    };
    match ext.to_ascii_lowercase().as_str() {
        "yaml" | "yml" => FileFormat::Yaml,
        "json" => FileFormat::Json,
        "toml" => FileFormat::Toml,
        _ => FileFormat::Other,
    }
}

/// The name used in notes.
pub(super) fn format_name(format: FileFormat) -> &'static str {
    match format {
        FileFormat::Yaml => "YAML",
        FileFormat::Json => "JSON",
        FileFormat::Toml => "TOML",
        FileFormat::Other => "a structured format",
    }
}

/// A parsed side: its text (for line lookups) and its documents.
pub(super) struct Parsed<'a> {
    pub(super) text: &'a str,
    pub(super) docs: Vec<Value>,
}

/// Parses one side; `Err` is the reason, without the side's name.
pub(super) fn parse(format: FileFormat, bytes: &[u8]) -> Result<Parsed<'_>, String> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => return Err(format!("not valid UTF-8 (at byte {})", e.valid_up_to())),
    };
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    let docs = match format {
        FileFormat::Yaml => parse_yaml(body),
        FileFormat::Json => parse_json(body).map(|v| vec![v]),
        FileFormat::Toml => parse_toml(body).map(|v| vec![v]),
        FileFormat::Other => Err("not a structured format".to_owned()),
    }
    .map_err(|e| format!("not valid {}: {e}", format_name(format)))?;
    Ok(Parsed { text: body, docs })
}

fn parse_yaml(text: &str) -> Result<Vec<Value>, String> {
    let mut docs = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let mut value = serde_yaml_ng::Value::deserialize(doc).map_err(|e| one_line(&e.to_string()))?;
        if text.contains("<<") {
            let mut merged = value.clone();
            if merged.apply_merge().is_ok() {
                value = merged;
            }
        }
        docs.push(yaml_to_json(value));
    }
    if docs.is_empty() {
        docs.push(Value::Null);
    }
    Ok(docs)
}

fn parse_json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| one_line(&e.to_string()))
}

fn parse_toml(text: &str) -> Result<Value, String> {
    match text.parse::<toml::Table>() {
        Ok(table) => Ok(toml_table_to_json(table)),
        Err(e) => {
            let mut message = one_line(e.message());
            if let Some(span) = e.span() {
                let (line, column) = line_column(text, span.start);
                message.push_str(&format!(" at line {line} column {column}"));
            }
            Err(message)
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Collapses a possibly multi-line message into one trimmed line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn float(f: f64, nan: &str, inf: &str, neg_inf: &str) -> Value {
    match Number::from_f64(f) {
        Some(n) => Value::Number(n),
        None if f.is_nan() => Value::String(nan.to_owned()),
        None if f > 0.0 => Value::String(inf.to_owned()),
        None => Value::String(neg_inf.to_owned()),
    }
}

fn yaml_to_json(value: serde_yaml_ng::Value) -> Value {
    use serde_yaml_ng::Value as Y;
    match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                float(n.as_f64().unwrap_or(f64::NAN), ".nan", ".inf", "-.inf")
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(seq) => Value::Array(seq.into_iter().map(yaml_to_json).collect()),
        Y::Mapping(mapping) => {
            let mut map = Map::new();
            for (k, v) in mapping {
                map.insert(yaml_key(k), yaml_to_json(v));
            }
            Value::Object(map)
        }
        Y::Tagged(tagged) => {
            let tagged = *tagged;
            let mut map = Map::new();
            map.insert(tagged.tag.to_string(), yaml_to_json(tagged.value));
            Value::Object(map)
        }
    }
}

fn yaml_key(key: serde_yaml_ng::Value) -> String {
    use serde_yaml_ng::Value as Y;
    match key {
        Y::String(s) => s,
        Y::Null => "null".to_owned(),
        Y::Bool(b) => b.to_string(),
        Y::Number(n) => n.to_string(),
        other => yaml_to_json(other).to_string(),
    }
}

fn toml_table_to_json(table: toml::Table) -> Value {
    Value::Object(table.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
}

fn toml_to_json(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => float(f, "nan", "inf", "-inf"),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => toml_table_to_json(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn detects_formats_by_extension() {
        assert_eq!(detect("a/b.yaml"), FileFormat::Yaml);
        assert_eq!(detect("B.YML"), FileFormat::Yaml);
        assert_eq!(detect("x.Json"), FileFormat::Json);
        assert_eq!(detect("Cargo.toml"), FileFormat::Toml);
        assert_eq!(detect("README.md"), FileFormat::Other);
        assert_eq!(detect("yaml"), FileFormat::Other);
        assert_eq!(detect("dir.yaml/file"), FileFormat::Other);
    }

    #[test]
    fn yaml_conversions() {
        let p = parse(FileFormat::Yaml, b"1: a\ntrue: b\nn: .nan\nt: !Ref x\nbase: &b {k: 1}\nm:\n  <<: *b\n  j: 2\n")
            .map_err(|e| e.to_string())
            .unwrap();
        assert_eq!(
            p.docs,
            vec![
                json!({"1": "a", "true": "b", "n": ".nan", "t": {"!Ref": "x"}, "base": {"k": 1}, "m": {"k": 1, "j": 2}})
            ]
        );
        let p = parse(FileFormat::Yaml, b"a: 1\n---\nb: 2\n").unwrap();
        assert_eq!(p.docs, vec![json!({"a": 1}), json!({"b": 2})]);
        let p = parse(FileFormat::Yaml, b"# only a comment\n").unwrap();
        assert_eq!(p.docs, vec![Value::Null]);
    }

    #[test]
    fn toml_conversions_and_errors() {
        let p = parse(FileFormat::Toml, b"a = 1979-05-27T07:32:00Z\nb = inf\n[t]\nc = [1, 2]\n").unwrap();
        assert_eq!(p.docs, vec![json!({"a": "1979-05-27T07:32:00Z", "b": "inf", "t": {"c": [1, 2]}})]);
        let e = parse(FileFormat::Toml, b"a = 1\nb = \n").err().unwrap();
        assert!(e.starts_with("not valid TOML: ") && e.contains("line 2"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn json_and_utf8_errors() {
        let e = parse(FileFormat::Json, b"{\"a\": }").err().unwrap();
        assert!(e.starts_with("not valid JSON: ") && e.contains("line 1"), "{e}");
        let e = parse(FileFormat::Json, b"\xff\xfe").err().unwrap();
        assert_eq!(e, "not valid UTF-8 (at byte 0)");
        assert_eq!(parse(FileFormat::Json, "\u{feff}{}".as_bytes()).unwrap().docs, vec![json!({})]);
    }
}
