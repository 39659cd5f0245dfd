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
//!   deeper input is reported as not valid;
//! - every side is parsed within [`ParseLimits`] (size, depth, nodes with
//!   aliases expanded, counted while YAML is read — see `budget`); over a
//!   limit is [`ParseError::TooComplex`], never an error of the diff.

use serde::de::DeserializeSeed;
use serde_json::{Map, Number, Value};

use super::budget::{check_tree, Budget, BudgetedYaml, ParseLimits, TooComplex};
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

/// Why a side could not be parsed by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ParseError {
    /// Not valid in its format: the reason, without the side's name.
    Invalid(String),
    /// Over a limit of [`ParseLimits`].
    TooComplex(TooComplex),
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::Invalid(reason) => f.write_str(reason),
            ParseError::TooComplex(limit) => write!(f, "too complex to compare by key: {limit}"),
        }
    }
}

/// Parses one side within `limits`, spending nodes from `budget`.
pub(super) fn parse<'a>(
    format: FileFormat,
    bytes: &'a [u8],
    limits: &ParseLimits,
    budget: &Budget,
) -> Result<Parsed<'a>, ParseError> {
    if bytes.len() > limits.max_bytes {
        return Err(ParseError::TooComplex(TooComplex::bytes(limits.max_bytes)));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => return Err(ParseError::Invalid(format!("not valid UTF-8 (at byte {})", e.valid_up_to()))),
    };
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    let invalid = |e: String| ParseError::Invalid(format!("not valid {}: {e}", format_name(format)));
    let docs = match format {
        FileFormat::Yaml => parse_yaml(body, budget).map_err(|e| match e {
            ParseError::Invalid(reason) => invalid(reason),
            too_complex => too_complex,
        })?,
        FileFormat::Json => vec![parse_json(body).map_err(invalid)?],
        FileFormat::Toml => vec![parse_toml(body).map_err(invalid)?],
        FileFormat::Other => return Err(invalid("not a structured format".to_owned())),
    };
    if format != FileFormat::Yaml {
        // YAML spent its budget while it parsed; JSON and TOML built no more
        // nodes than their size allows and are counted now.
        for doc in &docs {
            check_tree(doc, budget).map_err(ParseError::TooComplex)?;
        }
    }
    Ok(Parsed { text: body, docs })
}

fn parse_yaml(text: &str, budget: &Budget) -> Result<Vec<Value>, ParseError> {
    let mut docs = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let mut value = BudgetedYaml(budget).deserialize(doc).map_err(|e| {
            let message = e.to_string();
            match Budget::over_budget(&message) {
                Some(limit) => ParseError::TooComplex(limit),
                None => ParseError::Invalid(one_line(&message)),
            }
        })?;
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

    /// Parses within the default limits; the error as its text.
    fn parse(format: FileFormat, bytes: &[u8]) -> Result<Parsed<'_>, String> {
        let limits = ParseLimits::DEFAULT;
        super::parse(format, bytes, &limits, &Budget::new(limits.max_nodes, limits.max_depth))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn an_alias_bomb_stops_at_the_node_budget() {
        let bomb = "a: &a [1,2,3,4,5,6,7,8,9,10]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n\
                    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n";
        let budget = Budget::new(50_000, 64);
        let e = super::parse(FileFormat::Yaml, bomb.as_bytes(), &ParseLimits::DEFAULT, &budget).err().unwrap();
        assert_eq!(e, ParseError::TooComplex(TooComplex::nodes(50_000)));
        assert_eq!(budget.spent(), 50_000, "the parse stopped where the budget ran out");
        // Within the budget the same aliases expand as before.
        let small = "a: &a [1, 2]\nb: [*a, *a]\n";
        assert_eq!(
            parse(FileFormat::Yaml, small.as_bytes()).unwrap().docs,
            vec![json!({"a": [1, 2], "b": [[1, 2], [1, 2]]})]
        );
    }

    #[test]
    fn depth_and_size_limits_apply_to_every_format() {
        let limits = ParseLimits { max_depth: 8, ..ParseLimits::DEFAULT };
        let deep_yaml = format!("a: {}1{}\n", "[".repeat(9), "]".repeat(9));
        let deep_json = format!("{}1{}", "[".repeat(9), "]".repeat(9));
        let deep_toml = format!("a = {}1{}\n", "[".repeat(9), "]".repeat(9));
        for (format, text) in
            [(FileFormat::Yaml, deep_yaml), (FileFormat::Json, deep_json), (FileFormat::Toml, deep_toml)]
        {
            let e = super::parse(format, text.as_bytes(), &limits, &Budget::new(1000, 8)).err().unwrap();
            assert_eq!(e, ParseError::TooComplex(TooComplex::depth(8)), "{format:?}");
        }
        let small = ParseLimits { max_bytes: 4, ..ParseLimits::DEFAULT };
        let e = super::parse(FileFormat::Json, b"[1, 2]", &small, &Budget::new(1000, 8)).err().unwrap();
        assert_eq!(e, ParseError::TooComplex(TooComplex::bytes(4)));
    }

    #[test]
    fn budgeted_yaml_reads_like_serde_yaml_ng() {
        for text in
            ["a: 1\nb: [x, {c: !T 3}]\n", "k: &x {y: 1}\nm:\n  <<: *x\n", "? [1, 2]\n: v\n", "~\n", "- 1.5\n- .nan\n"]
        {
            let ours: Vec<serde_yaml_ng::Value> = serde_yaml_ng::Deserializer::from_str(text)
                .map(|doc| BudgetedYaml(&Budget::new(1000, 64)).deserialize(doc).unwrap())
                .collect();
            let theirs: Vec<serde_yaml_ng::Value> = serde_yaml_ng::Deserializer::from_str(text)
                .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
                .collect();
            assert_eq!(format!("{ours:?}"), format!("{theirs:?}"), "{text}");
        }
        let dup = parse(FileFormat::Yaml, b"a: 1\na: 2\n").err().unwrap();
        assert!(dup.starts_with("not valid YAML: duplicate entry with key \"a\""), "{dup}");
    }

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
