//! Tests of the semantic diff through its public API: per-format examples,
//! fallbacks to file level, the summary, and two properties — applying the
//! reported changes to the old tree yields the new tree (and they cover
//! exactly the differing leaf paths), and no input bytes ever panic.
//!
//! Invariant: tests only use `semantic_diff` and its types (plus the path
//! reader to apply changes), never the private walk directly.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::{json, Value};

use super::path::{self, OwnedSeg};
use super::*;
use crate::ports::git::{ChangeStatus, FileChange};

fn change(path: &str, status: ChangeStatus, old: Option<&str>, new: Option<&str>) -> FileChange {
    FileChange {
        path: path.to_owned(),
        old_path: None,
        status,
        binary: false,
        additions: 0,
        deletions: 0,
        patch: None,
        patch_truncated: false,
        old_content: old.map(|s| s.as_bytes().to_vec()),
        new_content: new.map(|s| s.as_bytes().to_vec()),
    }
}

fn modified(path: &str, old: &str, new: &str) -> SemanticFile {
    let diff = semantic_diff(&[change(path, ChangeStatus::Modified, Some(old), Some(new))]);
    diff.files.into_iter().next().expect("one file")
}

/// (op, key, from_key, old, new, line) as a compact tuple.
type Row = (KeyOp, String, Option<String>, Option<Value>, Option<Value>, Option<u32>);

fn rows(file: &SemanticFile) -> Vec<Row> {
    file.changes
        .iter()
        .map(|c| (c.op, c.key.clone(), c.from_key.clone(), c.old_value.clone(), c.new_value.clone(), c.line))
        .collect()
}

fn row(op: KeyOp, key: &str, old: Option<Value>, new: Option<Value>, line: Option<u32>) -> Row {
    (op, key.to_owned(), None, old, new, line)
}

#[test]
fn yaml_added_modified_removed_moved_with_paths_and_lines() {
    let old = "\
server:
  host: localhost
  port: 8080
  tls:
    cert: /etc/a.pem
security:
  audit: true
logging:
  level: info
  legacy_flag: true
";
    let new = "\
server:
  host: example.org
  port: 8080
  timeout: 30
security:
  audit: true
  tls:
    cert: /etc/a.pem
logging:
  level: info
";
    let file = modified("config/app.yaml", old, new);
    assert_eq!(file.format, FileFormat::Yaml);
    assert_eq!(file.level, DiffLevel::Key);
    assert_eq!(file.note, None);
    assert_eq!(
        rows(&file),
        vec![
            row(KeyOp::Removed, "logging.legacy_flag", Some(json!(true)), None, Some(10)),
            (
                KeyOp::Moved,
                "security.tls".to_owned(),
                Some("server.tls".to_owned()),
                Some(json!({"cert": "/etc/a.pem"})),
                Some(json!({"cert": "/etc/a.pem"})),
                Some(7),
            ),
            row(KeyOp::Modified, "server.host", Some(json!("localhost")), Some(json!("example.org")), Some(2)),
            row(KeyOp::Added, "server.timeout", None, Some(json!(30)), Some(4)),
        ]
    );
}

#[test]
fn nested_maps_report_the_deepest_difference() {
    let file =
        modified("a.yml", "a:\n  b:\n    c:\n      d: 1\n      e: 2\n", "a:\n  b:\n    c:\n      d: 1\n      e: 3\n");
    assert_eq!(rows(&file), vec![row(KeyOp::Modified, "a.b.c.e", Some(json!(2)), Some(json!(3)), Some(5))]);
}

#[test]
fn arrays_compare_by_index() {
    let old = "ports:\n  - 80\n  - 443\n  - 8080\nhosts: [a, b]\n";
    let new = "ports:\n  - 80\n  - 444\nhosts: [a, b, c]\n";
    let file = modified("x.yaml", old, new);
    assert_eq!(
        rows(&file),
        vec![
            // Flow sequence: the element is not visible line by line, so the list's line.
            row(KeyOp::Added, "hosts[2]", None, Some(json!("c")), Some(4)),
            row(KeyOp::Modified, "ports[1]", Some(json!(443)), Some(json!(444)), Some(3)),
            row(KeyOp::Removed, "ports[2]", Some(json!(8080)), None, Some(4)),
        ]
    );
    // Indices sort numerically.
    let old = json!({"l": (0..12).collect::<Vec<_>>()}).to_string();
    let new = json!({"l": (0..12).map(|i| i * 10).collect::<Vec<_>>()}).to_string();
    let file = modified("l.json", &old, &new);
    let keys: Vec<&str> = file.changes.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys[..3], ["l[1]", "l[2]", "l[3]"]);
    assert_eq!(keys.last(), Some(&"l[11]"));
}

#[test]
fn json_equivalent() {
    let old = "{\n  \"server\": {\"host\": \"a\", \"port\": 1},\n  \"list\": [1, 2],\n  \"old\": {\"x\": [1]}\n}\n";
    let new = "{\n  \"server\": {\n    \"host\": \"b\",\n    \"port\": 1\n  },\n  \"list\": [1, 2, 3],\n  \"new\": {\"x\": [1]}\n}\n";
    let file = modified("settings.JSON", old, new);
    assert_eq!(file.format, FileFormat::Json);
    assert_eq!(
        rows(&file),
        vec![
            row(KeyOp::Added, "list[2]", None, Some(json!(3)), Some(6)),
            (
                KeyOp::Moved,
                "new".to_owned(),
                Some("old".to_owned()),
                Some(json!({"x": [1]})),
                Some(json!({"x": [1]})),
                Some(7)
            ),
            row(KeyOp::Modified, "server.host", Some(json!("a")), Some(json!("b")), Some(3)),
        ]
    );
}

#[test]
fn toml_equivalent() {
    let old = "title = \"x\"\n[server]\nhost = \"a\"\nport = 1\n[[plugins]]\nname = \"p\"\n";
    let new = "title = \"x\"\n[server]\nhost = \"b\"\n[[plugins]]\nname = \"p\"\n[[plugins]]\nname = \"q\"\n[db]\nurl = \"u\"\n";
    let file = modified("Cargo.toml", old, new);
    assert_eq!(file.format, FileFormat::Toml);
    assert_eq!(
        rows(&file),
        vec![
            row(KeyOp::Added, "db", None, Some(json!({"url": "u"})), Some(8)),
            row(KeyOp::Added, "plugins[1]", None, Some(json!({"name": "q"})), Some(6)),
            row(KeyOp::Modified, "server.host", Some(json!("a")), Some(json!("b")), Some(3)),
            row(KeyOp::Removed, "server.port", Some(json!(1)), None, Some(4)),
        ]
    );
}

#[test]
fn type_change_is_one_modification_with_both_values() {
    let file = modified("t.yaml", "a:\n  b: 1\n", "a: [1, 2]\n");
    assert_eq!(rows(&file), vec![row(KeyOp::Modified, "a", Some(json!({"b": 1})), Some(json!([1, 2])), Some(1))]);
    let file = modified("t.yaml", "a: '1'\n", "a: 1\n");
    assert_eq!(rows(&file), vec![row(KeyOp::Modified, "a", Some(json!("1")), Some(json!(1)), Some(1))]);
    // Root scalar: `$`.
    let file = modified("r.json", "1", "\"one\"");
    assert_eq!(rows(&file), vec![row(KeyOp::Modified, "$", Some(json!(1)), Some(json!("one")), None)]);
}

#[test]
fn invalid_yaml_on_one_side_falls_back_to_file_level() {
    let file = modified("bad.yaml", "a: 1\n", "a: 1\nb: [unclosed\n");
    assert_eq!(file.level, DiffLevel::File);
    assert!(file.changes.is_empty());
    let note = file.note.expect("note");
    assert!(note.starts_with("new side is not valid YAML: "), "{note}");
    assert!(note.contains("line"), "{note}");
    let file = modified("bad.json", "{", "{}");
    assert!(file.note.as_deref().is_some_and(|n| n.starts_with("old side is not valid JSON: ")), "{:?}", file.note);
    let file = modified("bad.toml", "a =", "b = [");
    let note = file.note.unwrap_or_default();
    assert!(
        note.starts_with("old side is not valid TOML: ") && note.contains("; new side is not valid TOML: "),
        "{note}"
    );
}

#[test]
fn binary_and_unstructured_and_missing_contents_are_file_level() {
    let mut bin = change("logo.yaml", ChangeStatus::Modified, Some("a: 1"), Some("a: 2"));
    bin.binary = true;
    let text = change("README.md", ChangeStatus::Modified, Some("a"), Some("b"));
    let no_contents = change("c.yaml", ChangeStatus::Modified, None, None);
    let bad_utf8 =
        FileChange { new_content: Some(vec![b'a', b':', 0xff]), ..change("u.yaml", ChangeStatus::Added, None, None) };
    let diff = semantic_diff(&[bin, text, no_contents, bad_utf8]);
    let got: Vec<(DiffLevel, FileFormat, Option<&str>)> =
        diff.files.iter().map(|f| (f.level, f.format, f.note.as_deref())).collect();
    assert_eq!(
        got,
        vec![
            (DiffLevel::File, FileFormat::Yaml, Some("binary file")),
            (DiffLevel::File, FileFormat::Other, Some("not a YAML, JSON or TOML file")),
            (DiffLevel::File, FileFormat::Yaml, Some("contents not available")),
            (DiffLevel::File, FileFormat::Yaml, Some("new side is not valid UTF-8 (at byte 2)")),
        ]
    );
    assert!(diff.files.iter().all(|f| f.changes.is_empty()));
    assert_eq!(diff.summary.by_op["file_modified"], 3);
    assert_eq!(diff.summary.by_op["file_added"], 1);
}

#[test]
fn added_and_deleted_yaml_files_list_their_top_level_keys() {
    let added = change("new.yaml", ChangeStatus::Added, None, Some("b:\n  c: 1\na: x\n"));
    let deleted = change("old.yaml", ChangeStatus::Deleted, Some("z: [1]\n"), None);
    let empty = change("empty.yaml", ChangeStatus::Added, None, Some("# nothing yet\n"));
    let list = change("list.yaml", ChangeStatus::Added, None, Some("- 1\n- 2\n"));
    let diff = semantic_diff(&[added, deleted, empty, list]);
    assert_eq!(
        rows(&diff.files[0]),
        vec![
            row(KeyOp::Added, "a", None, Some(json!("x")), Some(3)),
            row(KeyOp::Added, "b", None, Some(json!({"c": 1})), Some(1))
        ]
    );
    assert_eq!(rows(&diff.files[1]), vec![row(KeyOp::Removed, "z", Some(json!([1])), None, Some(1))]);
    assert_eq!((diff.files[2].level, diff.files[2].note.as_deref()), (DiffLevel::Key, Some("no key-level changes")));
    assert_eq!(rows(&diff.files[3]), vec![row(KeyOp::Added, "$", None, Some(json!([1, 2])), None)]);
    assert_eq!(diff.summary.by_op["added"], 3);
    assert_eq!(diff.summary.by_op["removed"], 1);
    assert_eq!(diff.summary.by_file["empty.yaml"], 0);
}

#[test]
fn keys_with_dots_and_spaces_are_quoted() {
    let old = "labels:\n  app.kubernetes.io/name: web\n  \"with space\": 1\n";
    let new = "labels:\n  app.kubernetes.io/name: api\n  \"with space\": 2\n  \"\": e\n";
    let file = modified("k.yaml", old, new);
    let keys: Vec<(&str, Option<u32>)> = file.changes.iter().map(|c| (c.key.as_str(), c.line)).collect();
    assert_eq!(
        keys,
        vec![
            (r#"labels."""#, Some(4)),
            (r#"labels."app.kubernetes.io/name""#, Some(2)),
            (r#"labels."with space""#, Some(3))
        ]
    );
    let file = modified("q.json", r#"{"a\"b": 1}"#, r#"{"a\"b": 2}"#);
    assert_eq!(file.changes[0].key, r#""a\"b""#);
    assert_eq!(file.changes[0].line, Some(1));
}

#[test]
fn multi_document_yaml_prefixes_documents() {
    let old = "kind: A\nname: a\n---\nkind: B\nname: b\n";
    let new = "kind: A\nname: a2\n---\nkind: B\nname: b\n---\nkind: C\n";
    let file = modified("m.yaml", old, new);
    assert_eq!(
        rows(&file),
        vec![
            row(KeyOp::Modified, "[doc 0].name", Some(json!("a")), Some(json!("a2")), Some(2)),
            row(KeyOp::Added, "[doc 2].kind", None, Some(json!("C")), Some(7)),
        ]
    );
    let file = modified("s.yaml", "---\na: 1\n", "---\na: 2\n");
    assert_eq!(file.changes[0].key, "a");
}

#[test]
fn exact_rename_is_file_level_and_summary_counts() {
    let mut renamed = change("b.yaml", ChangeStatus::Renamed, Some("a: 1"), Some("a: 1"));
    renamed.old_path = Some("a.yaml".to_owned());
    let edited = change("c.yaml", ChangeStatus::Modified, Some("a: 1\nb: 2\n"), Some("a: 2\n"));
    let diff = semantic_diff(&[renamed, edited]);
    assert_eq!(diff.files[0].level, DiffLevel::File);
    assert_eq!(diff.files[0].note.as_deref(), Some("renamed without content changes"));
    assert_eq!(diff.files[0].old_path.as_deref(), Some("a.yaml"));
    let by_op: Vec<(&str, u32)> = diff.summary.by_op.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        by_op,
        vec![
            ("added", 0),
            ("file_added", 0),
            ("file_modified", 0),
            ("file_removed", 0),
            ("file_renamed", 1),
            ("modified", 1),
            ("moved", 0),
            ("removed", 1),
        ]
    );
    assert_eq!(diff.summary.by_file.get("b.yaml"), Some(&1));
    assert_eq!(diff.summary.by_file.get("c.yaml"), Some(&2));
}

#[test]
fn output_keeps_input_order_and_serializes_snake_case() {
    let diff = semantic_diff(&[
        change("z.json", ChangeStatus::Modified, Some("{\"a\":1}"), Some("{\"a\":2}")),
        change("a.json", ChangeStatus::Deleted, Some("{}"), None),
    ]);
    assert_eq!(diff.files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["z.json", "a.json"]);
    let value = serde_json::to_value(&diff).unwrap_or_default();
    assert_eq!(value["files"][0]["format"], "json");
    assert_eq!(value["files"][0]["level"], "key");
    assert_eq!(value["files"][0]["status"], "modified");
    assert_eq!(value["files"][0]["changes"][0]["op"], "modified");
    assert_eq!(value["files"][1]["status"], "deleted");
    let back: SemanticDiff = serde_json::from_value(value).expect("round trip");
    assert_eq!(back, diff);
}

#[test]
fn same_value_moves_pair_once_and_prefer_the_same_last_segment() {
    let old = json!({"a": {"replicas": 3}, "b": {"count": 3}}).to_string();
    let new = json!({"c": {"count": 3}, "d": {"replicas": 3}, "e": {"other": 3}}).to_string();
    let file = modified("p.json", &old, &new);
    let got: Vec<(KeyOp, &str, Option<&str>)> =
        file.changes.iter().map(|c| (c.op, c.key.as_str(), c.from_key.as_deref())).collect();
    // The maps differ ({replicas: 3} vs {count: 3}), so pairing is by value: a→d, b→c; e stays added.
    assert_eq!(got, vec![(KeyOp::Moved, "c", Some("b")), (KeyOp::Moved, "d", Some("a")), (KeyOp::Added, "e", None)]);
    let old = json!({"x": {"port": 80}, "y": {"port": 80}}).to_string();
    let new = json!({"x": {"p": 80, "port2": 80}, "z": {"port": 80}, "y": {"port": 81}}).to_string();
    let file = modified("p.json", &old, &new);
    let got: Vec<(KeyOp, &str, Option<&str>)> =
        file.changes.iter().map(|c| (c.op, c.key.as_str(), c.from_key.as_deref())).collect();
    // Removed x.port; y.port modified; added x.p, x.port2, z: x.port pairs with x.p (only equal scalar, first in order).
    assert_eq!(
        got,
        vec![
            (KeyOp::Moved, "x.p", Some("x.port")),
            (KeyOp::Added, "x.port2", None),
            (KeyOp::Modified, "y.port", None),
            (KeyOp::Added, "z", None),
        ]
    );
}

/// The shape `cargo xtask bench` times (scenario 3): twenty 50-line files.
#[test]
fn twenty_yaml_files_each_report_their_one_modified_key() {
    let mut changes = Vec::new();
    for f in 0..20 {
        let mut old = String::new();
        let mut new = String::new();
        for s in 0..10 {
            for (target, bump) in [(&mut old, 0), (&mut new, 1)] {
                target.push_str(&format!("section{s}:\n"));
                for k in 0..4 {
                    let v = if s == f % 10 && k == 1 { bump } else { 0 };
                    target.push_str(&format!("  key{k}: value-{s}-{k}-{v}\n"));
                }
            }
        }
        changes.push(change(&format!("f{f}.yaml"), ChangeStatus::Modified, Some(&old), Some(&new)));
    }
    let diff = semantic_diff(&changes);
    assert_eq!(diff.summary.by_op["modified"], 20);
    assert!(diff.files.iter().all(|f| f.changes.len() == 1 && f.changes[0].key.ends_with(".key1")));
}

// ---- properties ----

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..20).prop_map(Value::from),
        "[a-c]{0,2}".prop_map(Value::String),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-e]",
        1 => prop_oneof![Just("a.b"), Just(""), Just("x y"), Just("q\"\\"), Just("$"), Just("[0]"), Just("1")]
            .prop_map(str::to_owned),
    ]
}

fn tree() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..5).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn root() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(key(), tree(), 0..6).prop_map(|m| Value::Object(m.into_iter().collect()))
}

#[derive(Debug, Clone)]
enum Edit {
    Replace(Value),
    Insert(String, Value),
    RemoveChild(usize),
    Push(Value),
}

fn edit() -> impl Strategy<Value = (usize, Edit)> {
    let e = prop_oneof![
        tree().prop_map(Edit::Replace),
        (key(), tree()).prop_map(|(k, v)| Edit::Insert(k, v)),
        (0usize..8).prop_map(Edit::RemoveChild),
        tree().prop_map(Edit::Push),
    ];
    (0usize..40, e)
}

/// Applies `e` to the `sel`-th node in preorder; true once applied.
fn apply_edit(v: &mut Value, sel: &mut usize, e: &Edit) -> bool {
    if *sel == 0 {
        match (e, &mut *v) {
            (Edit::Replace(x), _) => *v = x.clone(),
            (Edit::Insert(k, x), Value::Object(m)) => {
                m.insert(k.clone(), x.clone());
            }
            (Edit::RemoveChild(i), Value::Object(m)) if !m.is_empty() => {
                let k = m.keys().nth(i % m.len()).cloned().unwrap_or_default();
                m.remove(&k);
            }
            (Edit::RemoveChild(i), Value::Array(a)) if !a.is_empty() => {
                let i = i % a.len();
                a.remove(i);
            }
            (Edit::Push(x), Value::Array(a)) => a.push(x.clone()),
            _ => {}
        }
        return true;
    }
    *sel -= 1;
    match v {
        Value::Object(m) => m.values_mut().any(|c| apply_edit(c, sel, e)),
        Value::Array(a) => a.iter_mut().any(|c| apply_edit(c, sel, e)),
        _ => false,
    }
}

fn cmp_owned(a: &[OwnedSeg], b: &[OwnedSeg]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = match (x, y) {
            (OwnedSeg::Key(p), OwnedSeg::Key(q)) => p.cmp(q),
            (OwnedSeg::Index(p), OwnedSeg::Index(q)) | (OwnedSeg::Doc(p), OwnedSeg::Doc(q)) => p.cmp(q),
            _ => Ordering::Equal,
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

fn get<'a>(v: &'a Value, segs: &[OwnedSeg]) -> Option<&'a Value> {
    segs.iter().try_fold(v, |v, s| match s {
        OwnedSeg::Key(k) => v.get(k),
        OwnedSeg::Index(i) => v.get(i),
        OwnedSeg::Doc(_) => None,
    })
}

fn parent_mut<'a>(v: &'a mut Value, segs: &[OwnedSeg]) -> &'a mut Value {
    let mut cur = v;
    for s in &segs[..segs.len() - 1] {
        cur = match s {
            OwnedSeg::Key(k) => cur.get_mut(k).expect("parent key exists"),
            OwnedSeg::Index(i) => cur.get_mut(*i).expect("parent index exists"),
            OwnedSeg::Doc(_) => panic!("no documents here"),
        };
    }
    cur
}

/// Applies changes (moves expanded into remove + add) to `old`.
fn apply_changes(old: &Value, changes: &[KeyChange]) -> Value {
    let mut edits: Vec<(KeyOp, Vec<OwnedSeg>, Option<Value>)> = Vec::new();
    for c in changes {
        let key = path::parse(&c.key).expect("key parses");
        match c.op {
            KeyOp::Moved => {
                let from = path::parse(c.from_key.as_deref().expect("from_key")).expect("from parses");
                edits.push((KeyOp::Removed, from, None));
                edits.push((KeyOp::Added, key, c.new_value.clone()));
            }
            KeyOp::Modified | KeyOp::Added => edits.push((c.op, key, c.new_value.clone())),
            KeyOp::Removed => edits.push((c.op, key, None)),
        }
    }
    let mut v = old.clone();
    for (_, segs, value) in edits.iter().filter(|e| e.0 == KeyOp::Modified) {
        let value = value.clone().expect("new value");
        if segs.is_empty() {
            v = value;
        } else {
            let last = segs.last().cloned();
            let parent = parent_mut(&mut v, segs);
            match last {
                Some(OwnedSeg::Key(k)) => parent[k.as_str()] = value,
                Some(OwnedSeg::Index(i)) => parent[i] = value,
                _ => unreachable!(),
            }
        }
    }
    let mut removed: Vec<&Vec<OwnedSeg>> = edits.iter().filter(|e| e.0 == KeyOp::Removed).map(|e| &e.1).collect();
    removed.sort_by(|a, b| cmp_owned(b, a));
    for segs in removed {
        let last = segs.last().cloned();
        let parent = parent_mut(&mut v, segs);
        match (last, parent) {
            (Some(OwnedSeg::Key(k)), Value::Object(m)) => assert!(m.remove(&k).is_some(), "removed key existed"),
            (Some(OwnedSeg::Index(i)), Value::Array(a)) => {
                assert_eq!(i + 1, a.len(), "only the tail is removed");
                a.pop();
            }
            other => panic!("bad removal {other:?}"),
        }
    }
    let mut added: Vec<(&Vec<OwnedSeg>, &Option<Value>)> =
        edits.iter().filter(|e| e.0 == KeyOp::Added).map(|e| (&e.1, &e.2)).collect();
    added.sort_by(|a, b| cmp_owned(a.0, b.0));
    for (segs, value) in added {
        let value = value.clone().expect("new value");
        if segs.is_empty() {
            v = value;
            continue;
        }
        let last = segs.last().cloned();
        let parent = parent_mut(&mut v, segs);
        match (last, parent) {
            (Some(OwnedSeg::Key(k)), Value::Object(m)) => assert!(m.insert(k, value).is_none(), "added key was new"),
            (Some(OwnedSeg::Index(i)), Value::Array(a)) => {
                assert_eq!(i, a.len(), "only the tail is added");
                a.push(value);
            }
            other => panic!("bad addition {other:?}"),
        }
    }
    v
}

/// Leaf paths (empty containers are leaves) with their values.
fn flatten(v: &Value, base: &str, out: &mut std::collections::BTreeMap<String, Value>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, c) in m {
                let mut p = base.to_owned();
                path::push_key(&mut p, k);
                flatten(c, &p, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, c) in a.iter().enumerate() {
                let mut p = base.to_owned();
                path::push_index(&mut p, i);
                flatten(c, &p, out);
            }
        }
        _ => {
            out.insert(base.to_owned(), v.clone());
        }
    }
}

fn check_roundtrip(old: &Value, new: &Value, file: &SemanticFile) -> Result<(), TestCaseError> {
    prop_assert_eq!(file.level, DiffLevel::Key, "{:?}", file.note);
    // Normalize: a null root next to a map counts as the empty map.
    let expected = if new.is_null() { json!({}) } else { new.clone() };
    prop_assert_eq!(&apply_changes(old, &file.changes), &expected);

    // Values reported match the trees at their paths.
    for c in &file.changes {
        let at = path::parse(&c.key).expect("parses");
        match c.op {
            KeyOp::Added => prop_assert!(get(old, &at).is_none()),
            KeyOp::Removed => prop_assert_eq!(get(old, &at), c.old_value.as_ref()),
            KeyOp::Modified => {
                prop_assert_eq!(get(old, &at), c.old_value.as_ref());
                prop_assert_ne!(&c.old_value, &c.new_value);
            }
            KeyOp::Moved => {
                let from = path::parse(c.from_key.as_deref().unwrap_or_default()).expect("parses");
                prop_assert_eq!(get(old, &from), c.old_value.as_ref());
                prop_assert_eq!(&c.old_value, &c.new_value);
                prop_assert!(c.new_value.as_ref().is_some_and(|v| !v.is_null()));
            }
        }
        if c.op != KeyOp::Removed && !expected.is_null() {
            prop_assert_eq!(get(&expected, &at), c.new_value.as_ref());
        }
    }

    // The changes cover exactly the differing leaf paths.
    let (mut lo, mut ln) = (Default::default(), Default::default());
    flatten(old, "", &mut lo);
    flatten(&expected, "", &mut ln);
    // An empty container that stands where the other side has children is
    // not a leaf of the difference: its descendants are.
    let all: BTreeSet<&String> = lo.keys().chain(ln.keys()).collect();
    let is_ancestor = |p: &str| {
        all.iter().any(|q| {
            q.len() > p.len() && q.starts_with(p) && (p.is_empty() || matches!(q.as_bytes()[p.len()], b'.' | b'['))
        })
    };
    let differing: BTreeSet<String> =
        all.iter().filter(|k| lo.get(**k) != ln.get(**k) && !is_ancestor(k)).map(|k| (*k).clone()).collect();
    let mut covered = BTreeSet::new();
    for c in &file.changes {
        let mut spots: Vec<(&str, Option<&Value>)> = vec![(c.key.as_str(), c.new_value.as_ref())];
        match c.op {
            KeyOp::Moved => spots.push((c.from_key.as_deref().unwrap_or_default(), c.old_value.as_ref())),
            _ => spots.push((c.key.as_str(), c.old_value.as_ref())),
        }
        for (key, value) in spots {
            if let Some(value) = value {
                let base = if key == "$" { "" } else { key };
                let mut leaves = Default::default();
                flatten(value, base, &mut leaves);
                covered.extend(leaves.into_keys());
            }
        }
    }
    covered.retain(|p: &String| !is_ancestor(p));
    prop_assert_eq!(covered, differing);
    Ok(())
}

fn edited(old: &Value, edits: &[(usize, Edit)]) -> Value {
    let mut new = old.clone();
    for (sel, e) in edits {
        let mut sel = *sel;
        apply_edit(&mut new, &mut sel, e);
    }
    new
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn applying_json_changes_reproduces_the_new_tree(old in root(), edits in prop::collection::vec(edit(), 0..6)) {
        let new = edited(&old, &edits);
        let file = modified("p.json", &serde_json::to_string_pretty(&old).unwrap_or_default(),
            &serde_json::to_string(&new).unwrap_or_default());
        check_roundtrip(&old, &new, &file)?;
    }

    #[test]
    fn applying_yaml_changes_reproduces_the_new_tree(old in root(), edits in prop::collection::vec(edit(), 0..6)) {
        let new = edited(&old, &edits);
        let old_text = serde_yaml_ng::to_string(&old).unwrap_or_default();
        let new_text = serde_yaml_ng::to_string(&new).unwrap_or_default();
        let file = modified("p.yaml", &old_text, &new_text);
        check_roundtrip(&old, &new, &file)?;
        for c in &file.changes {
            if let Some(line) = c.line {
                let text = if c.op == KeyOp::Removed { &old_text } else { &new_text };
                prop_assert!(line >= 1 && line as usize <= text.lines().count().max(1));
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        old in prop::option::of(prop::collection::vec(any::<u8>(), 0..200)),
        new in prop::option::of(prop::collection::vec(any::<u8>(), 0..200)),
        ext in prop::sample::select(vec!["yaml", "yml", "json", "toml", "txt"]),
        status in prop::sample::select(vec![ChangeStatus::Added, ChangeStatus::Modified, ChangeStatus::Deleted, ChangeStatus::Renamed]),
        binary in any::<bool>(),
    ) {
        let fc = FileChange { binary, old_content: old, new_content: new, ..change(&format!("f.{ext}"), status, None, None) };
        let diff = semantic_diff(std::slice::from_ref(&fc));
        let file = &diff.files[0];
        prop_assert!(file.level == DiffLevel::Key || file.changes.is_empty());
        prop_assert!(file.level == DiffLevel::Key || file.note.is_some());
    }

    #[test]
    fn config_like_text_never_panics(
        old in "[a-c:\\-\\[\\]{}\"' \n\t#|>.,0-9=&*!]{0,160}",
        new in "[a-c:\\-\\[\\]{}\"' \n\t#|>.,0-9=&*!]{0,160}",
        ext in prop::sample::select(vec!["yaml", "json", "toml"]),
    ) {
        let file = modified(&format!("f.{ext}"), &old, &new);
        prop_assert!(file.level == DiffLevel::Key || (file.changes.is_empty() && file.note.is_some()));
        for c in &file.changes {
            let text = if c.op == KeyOp::Removed { &old } else { &new };
            prop_assert!(c.line.is_none_or(|l| l as usize <= text.split('\n').count()));
        }
    }
}

#[test]
fn deeply_nested_inputs_fall_back_to_file_level_without_overflow() {
    let depth = 20_000;
    // The parsers' own recursion limits (128) refuse JSON and TOML as not
    // valid; YAML is read through the budget, whose depth limit (64) comes first.
    let cases = [
        ("d.toml", "a = 1", format!("{} = 1\n", vec!["a"; depth].join(".")), FileLevelReason::Unparseable),
        ("d.json", "{}", format!("{}{}", "[".repeat(depth), "]".repeat(depth)), FileLevelReason::Unparseable),
        ("d.yaml", "{}", format!("{}{}", "[".repeat(depth), "]".repeat(depth)), FileLevelReason::TooComplex),
    ];
    for (path, old, new, reason) in cases {
        let file = modified(path, old, &new);
        assert_eq!(file.level, DiffLevel::File, "{path}");
        assert_eq!(file.reason, Some(reason), "{path}: {:?}", file.note);
        let prefix = match reason {
            FileLevelReason::TooComplex => "new side is too complex to compare by key: nested deeper than 64 levels",
            _ => "new side is not valid",
        };
        assert!(file.note.as_deref().is_some_and(|n| n.starts_with(prefix)), "{:?}", file.note);
    }
}
