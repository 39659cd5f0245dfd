//! Best-effort line numbers for key paths: one linear pass over a file's
//! text builds a map from dotted path (spelled by [`super::path`]) to the
//! 1-based line where that key or array element starts.
//!
//! Invariants:
//! - cost is linear in the text (plus one path string per key line); the
//!   index is built at most once per side of a file, and only when a change
//!   needs it, so many changes never rescan the file;
//! - it never panics and never loops on any text, valid or not; a path it
//!   cannot see (flow collections spanning lines, complex YAML keys, merge
//!   keys, tags) is simply absent and the caller falls back to the nearest
//!   ancestor that is present, or to no line;
//! - when a path occurs twice (duplicate keys), the first line wins.
//!
//! YAML is read by indentation (block style: `key:`, `- item`, quoted
//! keys, `---` / `...` document markers, block scalars skipped); JSON by a
//! small tokenizer (keys and array elements); TOML by `[table]` /
//! `[[array]]` headers and `key =` lines (dotted and quoted keys,
//! multi-line strings skipped).

use std::collections::HashMap;

use super::path::{push_doc, push_index, push_key};
use super::FileFormat;

/// Path → 1-based line.
#[derive(Debug, Default)]
pub(super) struct LineIndex {
    lines: HashMap<String, u32>,
}

impl LineIndex {
    /// Builds the index of `text` in `format`; `multi_doc` selects the
    /// `[doc N]` prefix for YAML.
    pub(super) fn build(format: FileFormat, text: &str, multi_doc: bool) -> Self {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut index = LineIndex::default();
        match format {
            FileFormat::Yaml => index.yaml(text, multi_doc),
            FileFormat::Json => index.json(text),
            FileFormat::Toml => index.toml(text),
            FileFormat::Other => {}
        }
        index
    }

    /// The line of `path`, if seen.
    pub(super) fn get(&self, path: &str) -> Option<u32> {
        self.lines.get(path).copied()
    }

    fn record(&mut self, path: &str, line: usize) {
        if path.is_empty() {
            return;
        }
        if !self.lines.contains_key(path) {
            self.lines.insert(path.to_owned(), u32::try_from(line).unwrap_or(u32::MAX));
        }
    }

    fn yaml(&mut self, text: &str, multi_doc: bool) {
        /// An open node: the column of its key or dash, its current index
        /// when it is a sequence, and the path length before its segment.
        struct Frame {
            column: usize,
            seq: Option<usize>,
            base: usize,
        }
        let mut doc = 0usize;
        let mut started = false;
        let mut path = String::new();
        let mut frames: Vec<Frame> = Vec::new();
        let mut block_scalar: Option<usize> = None;
        fn pop_while(frames: &mut Vec<Frame>, path: &mut String, pred: impl Fn(&Frame) -> bool) {
            while let Some(f) = frames.last() {
                if !pred(f) {
                    break;
                }
                path.truncate(f.base);
                frames.pop();
            }
        }
        let reset = |path: &mut String, frames: &mut Vec<Frame>, doc: usize| {
            path.clear();
            frames.clear();
            if multi_doc {
                push_doc(path, doc);
            }
        };
        reset(&mut path, &mut frames, doc);

        for (n, raw) in text.split('\n').enumerate() {
            let line_no = n + 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            let content = line.trim_start_matches(' ');
            let indent = line.len() - content.len();
            if let Some(min) = block_scalar {
                if content.trim().is_empty() || indent > min {
                    continue;
                }
                block_scalar = None;
            }
            let content = content.trim_end();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            if indent == 0 && is_marker(content, "---") {
                if started {
                    doc += 1;
                }
                started = true;
                reset(&mut path, &mut frames, doc);
                continue;
            }
            if indent == 0 && is_marker(content, "...") {
                if started {
                    doc += 1;
                    started = false;
                }
                reset(&mut path, &mut frames, doc);
                continue;
            }
            if indent == 0 && content.starts_with('%') {
                continue;
            }
            started = true;

            let mut column = indent;
            let mut rest = content;
            // Sequence items, possibly nested on one line (`- - a`).
            while rest == "-" || rest.starts_with("- ") || rest.starts_with("-\t") {
                pop_while(&mut frames, &mut path, |f| f.column > column);
                match frames.last_mut() {
                    Some(f) if f.column == column && f.seq.is_some() => {
                        let next = f.seq.map_or(0, |i| i + 1);
                        f.seq = Some(next);
                        path.truncate(f.base);
                        push_index(&mut path, next);
                    }
                    _ => {
                        let base = path.len();
                        push_index(&mut path, 0);
                        frames.push(Frame { column, seq: Some(0), base });
                    }
                }
                self.record(&path, line_no);
                let after = &rest[1..];
                let item = after.trim_start_matches([' ', '\t']);
                column += 1 + (after.len() - item.len());
                rest = item;
            }
            if rest.is_empty() || rest.starts_with('#') {
                continue;
            }
            let Some((key, value)) = yaml_key(rest) else {
                continue;
            };
            pop_while(&mut frames, &mut path, |f| f.column >= column);
            let base = path.len();
            push_key(&mut path, &key);
            frames.push(Frame { column, seq: None, base });
            self.record(&path, line_no);
            let value = value.trim_start();
            let value = skip_yaml_properties(value);
            if value.starts_with('|') || value.starts_with('>') {
                block_scalar = Some(column);
            }
        }
    }

    fn json(&mut self, text: &str) {
        enum Kind {
            Object { expect_key: bool },
            Array { index: usize, expect_value: bool },
        }
        struct Frame {
            kind: Kind,
            len: usize,
        }
        let bytes = text.as_bytes();
        let mut frames: Vec<Frame> = Vec::new();
        let mut path = String::new();
        let mut line = 1usize;
        let mut i = 0usize;
        while i < bytes.len() {
            let b = bytes[i];
            match b {
                b'\n' => {
                    line += 1;
                    i += 1;
                    continue;
                }
                b' ' | b'\t' | b'\r' | b':' => {
                    i += 1;
                    continue;
                }
                b',' => {
                    match frames.last_mut().map(|f| (&mut f.kind, f.len)) {
                        Some((Kind::Object { expect_key }, _)) => *expect_key = true,
                        Some((Kind::Array { index, expect_value }, _)) => {
                            *index += 1;
                            *expect_value = true;
                        }
                        None => {}
                    }
                    i += 1;
                    continue;
                }
                b'}' | b']' => {
                    if let Some(f) = frames.pop() {
                        path.truncate(f.len);
                    }
                    i += 1;
                    continue;
                }
                _ => {}
            }
            // A key, or the start of a value.
            if let Some(Frame { kind: Kind::Object { expect_key }, len }) = frames.last_mut() {
                if *expect_key && b == b'"' {
                    let end = string_end(bytes, i);
                    let raw = text.get(i..end).unwrap_or_default();
                    let key = serde_json::from_str::<String>(raw).unwrap_or_else(|_| raw.to_owned());
                    *expect_key = false;
                    path.truncate(*len);
                    push_key(&mut path, &key);
                    self.record(&path, line);
                    i = end;
                    continue;
                }
            }
            if let Some(Frame { kind: Kind::Array { index, expect_value }, len }) = frames.last_mut() {
                if *expect_value {
                    *expect_value = false;
                    path.truncate(*len);
                    push_index(&mut path, *index);
                    self.record(&path, line);
                }
            }
            match b {
                b'{' => {
                    frames.push(Frame { kind: Kind::Object { expect_key: true }, len: path.len() });
                    i += 1;
                }
                b'[' => {
                    frames.push(Frame { kind: Kind::Array { index: 0, expect_value: true }, len: path.len() });
                    i += 1;
                }
                b'"' => i = string_end(bytes, i),
                _ => {
                    while i < bytes.len() && !matches!(bytes[i], b',' | b'}' | b']' | b'\n' | b' ' | b'\t' | b'\r') {
                        i += 1;
                    }
                }
            }
        }
    }

    fn toml(&mut self, text: &str) {
        let mut prefix = String::new();
        let mut array_tables: HashMap<String, usize> = HashMap::new();
        let mut multiline: Option<&'static str> = None;
        let mut array_depth = 0usize;
        for (n, raw) in text.split('\n').enumerate() {
            let line_no = n + 1;
            let line = raw.trim();
            if let Some(delim) = multiline {
                if line.contains(delim) {
                    multiline = None;
                }
                continue;
            }
            if array_depth > 0 {
                array_depth = bracket_depth(line, array_depth);
                continue;
            }
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(inner) = line.strip_prefix("[[") {
                let Some((keys, _)) = toml_keys(inner) else { continue };
                prefix = self.toml_table(&keys, true, &mut array_tables, line_no);
            } else if let Some(inner) = line.strip_prefix('[') {
                let Some((keys, _)) = toml_keys(inner) else { continue };
                prefix = self.toml_table(&keys, false, &mut array_tables, line_no);
            } else if let Some((keys, rest)) = toml_keys(line) {
                let Some(value) = rest.trim_start().strip_prefix('=') else { continue };
                let mut path = prefix.clone();
                for key in &keys {
                    push_key(&mut path, key);
                    self.record(&path, line_no);
                }
                let value = value.trim_start();
                if value.starts_with('[') {
                    array_depth = bracket_depth(value, 0);
                }
                for delim in ["\"\"\"", "'''"] {
                    if let Some(after) = value.strip_prefix(delim) {
                        if !after.contains(delim) {
                            multiline = Some(delim);
                        }
                    }
                }
            }
        }
    }

    /// Resolves a table header to its path (array-of-tables elements get
    /// their running index), records it and returns it.
    fn toml_table(
        &mut self,
        keys: &[String],
        array: bool,
        array_tables: &mut HashMap<String, usize>,
        line_no: usize,
    ) -> String {
        let mut path = String::new();
        for (i, key) in keys.iter().enumerate() {
            push_key(&mut path, key);
            let last = i + 1 == keys.len();
            if last && array {
                self.record(&path, line_no);
                let count = array_tables.entry(path.clone()).or_insert(0);
                *count += 1;
                let index = *count - 1;
                push_index(&mut path, index);
            } else if let Some(count) = array_tables.get(&path) {
                push_index(&mut path, count.saturating_sub(1));
            }
            self.record(&path, line_no);
        }
        path
    }
}

/// `line` is the marker alone or followed by whitespace.
fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker).is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

/// Skips a YAML anchor (`&a`) and tag (`!t`) before a value.
fn skip_yaml_properties(mut value: &str) -> &str {
    while value.starts_with(['&', '!']) {
        let end = value.find([' ', '\t']).unwrap_or(value.len());
        value = value[end..].trim_start();
    }
    value
}

/// A block-style YAML key at the start of `rest`: (key, text after `:`).
fn yaml_key(rest: &str) -> Option<(String, &str)> {
    let (key, after) = if let Some(body) = rest.strip_prefix('"') {
        let mut key = String::new();
        let mut chars = body.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => key.push('\n'),
                    't' => key.push('\t'),
                    'r' => key.push('\r'),
                    '0' => key.push('\0'),
                    other => key.push(other),
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                _ => key.push(c),
            }
        }
        (key, &body[end? + 1..])
    } else if let Some(body) = rest.strip_prefix('\'') {
        let mut key = String::new();
        let mut chars = body.char_indices().peekable();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            if c == '\'' {
                if chars.peek().is_some_and(|&(_, n)| n == '\'') {
                    chars.next();
                    key.push('\'');
                } else {
                    end = Some(i);
                    break;
                }
            } else {
                key.push(c);
            }
        }
        (key, &body[end? + 1..])
    } else {
        if rest.starts_with(['[', '{', '#', '&', '*', '!', '|', '>', '%', '@', '`', '?', ',']) {
            return None;
        }
        let bytes = rest.as_bytes();
        let mut colon = None;
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'#' && i > 0 && matches!(bytes[i - 1], b' ' | b'\t') {
                return None;
            }
            if b == b':' && (i + 1 == bytes.len() || matches!(bytes[i + 1], b' ' | b'\t')) {
                colon = Some(i);
                break;
            }
        }
        let colon = colon?;
        let key = rest[..colon].trim_end();
        if key.is_empty() {
            return None;
        }
        return Some((key.to_owned(), &rest[colon + 1..]));
    };
    let after = after.trim_start_matches([' ', '\t']);
    let value = after.strip_prefix(':')?;
    if value.is_empty() || value.starts_with([' ', '\t']) {
        Some((key, value))
    } else {
        None
    }
}

/// The bracket depth after `line`, starting from `depth`: `[` and `]`
/// outside strings and comments (a multi-line TOML array).
fn bracket_depth(line: &str, mut depth: usize) -> usize {
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('"'), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => break,
            (None, '[') => depth += 1,
            (None, ']') => depth = depth.saturating_sub(1),
            (None, _) => {}
        }
    }
    depth
}

/// Byte offset just past the JSON string starting at `start` (a `"`).
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            b'\n' => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// A TOML dotted key at the start of `text`: (segments, rest). Stops at
/// `=` or `]` (the caller checks which).
fn toml_keys(text: &str) -> Option<(Vec<String>, &str)> {
    let mut keys = Vec::new();
    let mut rest = text.trim_start();
    loop {
        if let Some(body) = rest.strip_prefix('"') {
            let mut key = String::new();
            let mut chars = body.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next()?.1 {
                        'n' => key.push('\n'),
                        't' => key.push('\t'),
                        'r' => key.push('\r'),
                        'b' => key.push('\u{8}'),
                        'f' => key.push('\u{c}'),
                        'u' | 'U' => return None,
                        other => key.push(other),
                    },
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    _ => key.push(c),
                }
            }
            keys.push(key);
            rest = &body[end? + 1..];
        } else if let Some(body) = rest.strip_prefix('\'') {
            let end = body.find('\'')?;
            keys.push(body[..end].to_owned());
            rest = &body[end + 1..];
        } else {
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).unwrap_or(rest.len());
            if end == 0 {
                return None;
            }
            keys.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
        rest = rest.trim_start();
        match rest.strip_prefix('.') {
            Some(after) => rest = after.trim_start(),
            None => return Some((keys, rest)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_lines() {
        let text = "\
# comment
server:
  host: a   # trailing
  ports:
    - 80
    - name: https
      port: 443
  script: |
    not: a key
    - nor an item
  \"quoted.key\": 1
list:
- x
- y
after: 2
";
        let idx = LineIndex::build(FileFormat::Yaml, text, false);
        assert_eq!(idx.get("server"), Some(2));
        assert_eq!(idx.get("server.host"), Some(3));
        assert_eq!(idx.get("server.ports[0]"), Some(5));
        assert_eq!(idx.get("server.ports[1]"), Some(6));
        assert_eq!(idx.get("server.ports[1].name"), Some(6));
        assert_eq!(idx.get("server.ports[1].port"), Some(7));
        assert_eq!(idx.get("server.script"), Some(8));
        assert_eq!(idx.get("server.not"), None);
        assert_eq!(idx.get("server.\"quoted.key\""), Some(11));
        assert_eq!(idx.get("list[1]"), Some(14));
        assert_eq!(idx.get("after"), Some(15));
    }

    #[test]
    fn yaml_nested_sequences() {
        let text = "a:\n- b: 1\n  c: 2\n- - x\n  - y\n-\n  d: 3\n";
        let idx = LineIndex::build(FileFormat::Yaml, text, false);
        assert_eq!(idx.get("a[0].b"), Some(2));
        assert_eq!(idx.get("a[0].c"), Some(3));
        assert_eq!(idx.get("a[1]"), Some(4));
        assert_eq!(idx.get("a[1][0]"), Some(4));
        assert_eq!(idx.get("a[1][1]"), Some(5));
        assert_eq!(idx.get("a[2]"), Some(6));
        assert_eq!(idx.get("a[2].d"), Some(7));
    }

    #[test]
    fn yaml_documents() {
        let text = "a: 1\n---\nb: 2\n...\n---\nc: 3\n";
        let idx = LineIndex::build(FileFormat::Yaml, text, true);
        assert_eq!(idx.get("[doc 0].a"), Some(1));
        assert_eq!(idx.get("[doc 1].b"), Some(3));
        assert_eq!(idx.get("[doc 2].c"), Some(6));
        let idx = LineIndex::build(FileFormat::Yaml, "---\na: 1\n", false);
        assert_eq!(idx.get("a"), Some(2));
    }

    #[test]
    fn json_lines() {
        let text = "{\n  \"a\": {\n    \"b\": [1,\n      {\"c\": \"x,]}\"}]\n  },\n  \"d.e\": null\n}\n";
        let idx = LineIndex::build(FileFormat::Json, text, false);
        assert_eq!(idx.get("a"), Some(2));
        assert_eq!(idx.get("a.b"), Some(3));
        assert_eq!(idx.get("a.b[0]"), Some(3));
        assert_eq!(idx.get("a.b[1]"), Some(4));
        assert_eq!(idx.get("a.b[1].c"), Some(4));
        assert_eq!(idx.get("\"d.e\""), Some(6));
    }

    #[test]
    fn toml_lines() {
        let text = "\
title = \"x\"
[server]
host = \"a\"
tls.cert = \"\"\"
not = a key
\"\"\"
[[plugins]]
name = \"a\"
[[plugins]]
name = \"b\"
[plugins.opts]
k = 1
[\"a.b\"]
c = 1
matrix = [
  [1, \"]\"],
  [2],
]
d = 2
";
        let idx = LineIndex::build(FileFormat::Toml, text, false);
        assert_eq!(idx.get("title"), Some(1));
        assert_eq!(idx.get("server"), Some(2));
        assert_eq!(idx.get("server.host"), Some(3));
        assert_eq!(idx.get("server.tls.cert"), Some(4));
        assert_eq!(idx.get("server.not"), None);
        assert_eq!(idx.get("plugins"), Some(7));
        assert_eq!(idx.get("plugins[0].name"), Some(8));
        assert_eq!(idx.get("plugins[1]"), Some(9));
        assert_eq!(idx.get("plugins[1].name"), Some(10));
        assert_eq!(idx.get("plugins[1].opts.k"), Some(12));
        assert_eq!(idx.get("\"a.b\".c"), Some(14));
        assert_eq!(idx.get("\"a.b\".matrix"), Some(15));
        assert_eq!(idx.get("\"a.b\".d"), Some(19));
    }
}
