//! The tree walk of the semantic diff and the pairing of moved values.
//!
//! Invariants:
//! - [`diff_document`] reports each differing position exactly once, at the
//!   shallowest path where the two trees stop being comparable: maps
//!   recurse key by key, arrays index by index (the shorter side's missing
//!   tail is added/removed element by element), anything else that differs
//!   (scalars, or a change of type) is one `modified` with both values;
//!   equal subtrees report nothing;
//! - a `null` or absent document root next to a map root counts as the
//!   empty map, so emptying a file removes its keys one by one;
//! - [`pair_moves`] turns a `removed` and an `added` with equal, non-null
//!   values into one `moved`; each entry pairs at most once; candidates are
//!   taken in path order, first with the same last segment, then any; the
//!   cost is linear in the number and size of the changes (hash maps keyed
//!   by the value's canonical JSON, whose map keys are sorted);
//! - nothing here panics or recurses deeper than the parsed trees (whose
//!   parsers cap nesting).

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::path::{cmp_paths, Seg};
use super::KeyOp;

/// A change before it is written out: structured paths and borrowed values.
#[derive(Debug, Clone)]
pub(super) struct Raw<'a> {
    pub(super) op: KeyOp,
    pub(super) path: Vec<Seg<'a>>,
    pub(super) from: Option<Vec<Seg<'a>>>,
    pub(super) old: Option<&'a Value>,
    pub(super) new: Option<&'a Value>,
}

/// Diffs one document pair (`None` = the document does not exist on that
/// side), appending to `out` under `prefix`.
pub(super) fn diff_document<'a>(
    old: Option<&'a Value>,
    new: Option<&'a Value>,
    prefix: &mut Vec<Seg<'a>>,
    out: &mut Vec<Raw<'a>>,
) {
    let o = old.filter(|v| !v.is_null());
    let n = new.filter(|v| !v.is_null());
    match (o, n) {
        (None, None) => {}
        (Some(Value::Object(a)), None) => walk_maps(Some(a), None, prefix, out),
        (None, Some(Value::Object(b))) => walk_maps(None, Some(b), prefix, out),
        (None, Some(v)) => match old {
            Some(null) => out.push(change(KeyOp::Modified, prefix, Some(null), Some(v))),
            None => out.push(change(KeyOp::Added, prefix, None, Some(v))),
        },
        (Some(v), None) => match new {
            Some(null) => out.push(change(KeyOp::Modified, prefix, Some(v), Some(null))),
            None => out.push(change(KeyOp::Removed, prefix, Some(v), None)),
        },
        (Some(a), Some(b)) => walk(a, b, prefix, out),
    }
}

fn change<'a>(op: KeyOp, path: &[Seg<'a>], old: Option<&'a Value>, new: Option<&'a Value>) -> Raw<'a> {
    Raw { op, path: path.to_vec(), from: None, old, new }
}

fn walk<'a>(old: &'a Value, new: &'a Value, path: &mut Vec<Seg<'a>>, out: &mut Vec<Raw<'a>>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => walk_maps(Some(a), Some(b), path, out),
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                path.push(Seg::Index(i));
                match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) => walk(x, y, path, out),
                    (Some(x), None) => out.push(change(KeyOp::Removed, path, Some(x), None)),
                    (None, Some(y)) => out.push(change(KeyOp::Added, path, None, Some(y))),
                    (None, None) => {}
                }
                path.pop();
            }
        }
        _ if old == new => {}
        _ => out.push(change(KeyOp::Modified, path, Some(old), Some(new))),
    }
}

fn walk_maps<'a>(
    old: Option<&'a Map<String, Value>>,
    new: Option<&'a Map<String, Value>>,
    path: &mut Vec<Seg<'a>>,
    out: &mut Vec<Raw<'a>>,
) {
    if let Some(a) = old {
        for (k, x) in a {
            path.push(Seg::Key(k));
            match new.and_then(|b| b.get(k)) {
                Some(y) => walk(x, y, path, out),
                None => out.push(change(KeyOp::Removed, path, Some(x), None)),
            }
            path.pop();
        }
    }
    if let Some(b) = new {
        for (k, y) in b {
            if old.is_some_and(|a| a.contains_key(k)) {
                continue;
            }
            path.push(Seg::Key(k));
            out.push(change(KeyOp::Added, path, None, Some(y)));
            path.pop();
        }
    }
}

/// Sorts changes by path (natural order), then op.
pub(super) fn sort(changes: &mut [Raw<'_>]) {
    changes.sort_by(|a, b| cmp_paths(&a.path, &b.path).then(a.op.cmp(&b.op)));
}

/// Writes `v` as JSON with map keys sorted, so equal values (whatever the
/// map's iteration order) have equal text.
pub(super) fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A queue of candidate indices with a cursor past the used ones.
#[derive(Default)]
struct Queue {
    items: Vec<usize>,
    next: usize,
}

impl Queue {
    fn take(&mut self, used: &[bool]) -> Option<usize> {
        while let Some(&i) = self.items.get(self.next) {
            if !used[i] {
                return Some(i);
            }
            self.next += 1;
        }
        None
    }
}

/// Pairs removed and added entries with equal non-null values into moves.
/// Expects `changes` sorted (see [`sort`]); the result is not re-sorted.
pub(super) fn pair_moves(changes: Vec<Raw<'_>>) -> Vec<Raw<'_>> {
    let canon: Vec<Option<String>> = changes
        .iter()
        .map(|c| {
            let value = match c.op {
                KeyOp::Added => c.new,
                KeyOp::Removed => c.old,
                _ => None,
            };
            value.filter(|v| !v.is_null()).map(|v| {
                let mut s = String::new();
                canonical(v, &mut s);
                s
            })
        })
        .collect();
    let mut partner: Vec<Option<usize>> = vec![None; changes.len()];
    {
        let mut by_value: HashMap<&str, Queue> = HashMap::new();
        let mut by_value_last: HashMap<(&str, Option<&Seg<'_>>), Queue> = HashMap::new();
        for (i, c) in changes.iter().enumerate() {
            if let (KeyOp::Removed, Some(text)) = (c.op, canon[i].as_deref()) {
                by_value.entry(text).or_default().items.push(i);
                by_value_last.entry((text, c.path.last())).or_default().items.push(i);
            }
        }
        if by_value.is_empty() {
            return changes;
        }
        let mut used = vec![false; changes.len()];
        for same_last in [true, false] {
            for (j, c) in changes.iter().enumerate() {
                let (KeyOp::Added, Some(text), None) = (c.op, canon[j].as_deref(), partner[j]) else {
                    continue;
                };
                let queue =
                    if same_last { by_value_last.get_mut(&(text, c.path.last())) } else { by_value.get_mut(text) };
                if let Some(i) = queue.and_then(|q| q.take(&used)) {
                    used[i] = true;
                    partner[j] = Some(i);
                }
            }
        }
    }
    let mut slots: Vec<Option<Raw<'_>>> = changes.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(slots.len());
    for j in 0..slots.len() {
        if let Some(i) = partner[j] {
            let removed = slots[i].take();
            if let (Some(added), Some(removed)) = (slots[j].take(), removed) {
                out.push(Raw {
                    op: KeyOp::Moved,
                    path: added.path,
                    from: Some(removed.path),
                    old: removed.old,
                    new: added.new,
                });
            }
        }
    }
    out.extend(slots.into_iter().flatten());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(old: &Value, new: &Value) -> Vec<(KeyOp, String)> {
        let mut out = Vec::new();
        diff_document(Some(old), Some(new), &mut Vec::new(), &mut out);
        sort(&mut out);
        let mut out = pair_moves(out);
        sort(&mut out);
        out.iter().map(|c| (c.op, super::super::path::write(&c.path))).collect()
    }

    #[test]
    fn walk_reports_shallowest_differences() {
        let old = json!({"a": {"b": 1, "c": [1, 2, 3]}, "t": {"x": 1}, "gone": {"deep": true}});
        let new = json!({"a": {"b": 2, "c": [1, 5]}, "t": [1], "new": null});
        assert_eq!(
            run(&old, &new),
            vec![
                (KeyOp::Modified, "a.b".to_owned()),
                (KeyOp::Modified, "a.c[1]".to_owned()),
                (KeyOp::Removed, "a.c[2]".to_owned()),
                (KeyOp::Removed, "gone".to_owned()),
                (KeyOp::Added, "new".to_owned()),
                (KeyOp::Modified, "t".to_owned()),
            ]
        );
    }

    #[test]
    fn moves_prefer_same_last_segment_and_pair_once() {
        let old = json!({"a": {"port": 80}, "b": {"x": 80}, "c": null});
        let new = json!({"z": {"port": 80}, "y": {"other": 80, "x2": 80}, "d": null});
        let mut out = Vec::new();
        diff_document(Some(&old), Some(&new), &mut Vec::new(), &mut out);
        sort(&mut out);
        let mut out = pair_moves(out);
        sort(&mut out);
        let summary: Vec<String> = out
            .iter()
            .map(|c| {
                let from = c.from.as_deref().map(super::super::path::write).unwrap_or_default();
                format!("{:?} {} {}", c.op, super::super::path::write(&c.path), from)
            })
            .collect();
        // `a`/`b` are maps that were removed whole; `z`/`y` added whole:
        // `a` ({port: 80}) equals `z`'s value, so they pair; `b` differs from `y`.
        assert_eq!(summary, vec!["Removed b ", "Removed c ", "Added d ", "Added y ", "Moved z a"]);
    }

    #[test]
    fn null_root_counts_as_empty_map() {
        let mut out = Vec::new();
        let new = json!({"a": 1});
        diff_document(Some(&Value::Null), Some(&new), &mut Vec::new(), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].op, KeyOp::Added);
        let mut out = Vec::new();
        let scalar = json!(3);
        diff_document(Some(&Value::Null), Some(&scalar), &mut Vec::new(), &mut out);
        assert_eq!((out[0].op, out[0].path.is_empty()), (KeyOp::Modified, true));
    }

    #[test]
    fn canonical_sorts_keys() {
        let mut a = String::new();
        canonical(&json!({"b": [1, {"d": 1, "c": "x"}], "a": null}), &mut a);
        assert_eq!(a, r#"{"a":null,"b":[1,{"c":"x","d":1}]}"#);
    }
}
