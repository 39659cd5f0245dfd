//! The semantic (key-level) diff of a changeset (SPEC §2.3 "Diff"): for
//! YAML, JSON and TOML files, the list of keys that were added, modified,
//! removed or moved, with dotted paths, old and new values and, where it
//! can be found, the line; every other file at file level.
//!
//! Invariants and decisions:
//! - pure and total: [`semantic_diff`] never fails and never panics, on any
//!   bytes; a file that cannot be compared by key (binary, not YAML / JSON /
//!   TOML by extension, contents not supplied, not valid UTF-8 or not
//!   parseable on either side, or an exact rename) is one file-level entry
//!   whose `note` says why, e.g. `new side is not valid YAML: <message> at
//!   line 3 column 5`;
//! - files come out in input order; the changes of a file are sorted by
//!   path (segment by segment, array indices numerically) and then by op
//!   (`added` < `modified` < `removed` < `moved`);
//! - format is chosen by the extension of `path` (`.yaml`/`.yml`, `.json`,
//!   `.toml`, case-insensitive); the old side of a rename is parsed by the
//!   extension of `old_path`;
//! - both sides are parsed into JSON trees (see `parse` for the YAML and
//!   TOML conversions) and walked: maps key by key, arrays **by index**
//!   (`list[0]`, extra elements added/removed at the tail — an insertion at
//!   the front therefore shows as modifications plus one added element;
//!   arrays are not aligned by content), anything else that differs is
//!   `modified` with both values, including a change of type; a key present
//!   on one side only is added/removed with its whole value;
//! - paths: keys joined by `.`, indices as `[n]`; a key that is empty, is
//!   `$`, or contains `.`, `[`, `]`, `"` or whitespace is double-quoted with
//!   `"` and `\` backslash-escaped; a change of the whole root (a scalar or
//!   array document, or a type change of the root) has the key `$`;
//! - multi-document YAML: documents are compared pairwise by position; when
//!   either side has more than one document every key is prefixed with
//!   `[doc N].` (0-based; a root change is `[doc N]` alone); with a single
//!   document on both sides there is no prefix;
//! - a `null`/empty document next to a map counts as the empty map, so an
//!   added file lists each of its top-level keys as `added` and a deleted
//!   file each as `removed` (a non-map root is one change at `$`);
//! - `moved`: after the walk, a `removed` and an `added` entry with equal,
//!   non-null values pair into one `moved` (key = new path, `from_key` = old
//!   path, both values set); each entry pairs at most once; candidates are
//!   taken in path order, first those with the same last segment; a value
//!   moved under a key that is itself new is reported as `removed` plus the
//!   new parent `added` (the walk stops at the shallowest difference);
//! - `line`: 1-based, in the new text (the old text for `removed`), from a
//!   linear best-effort index of the text (see `lines`); when the exact
//!   path is not visible there (flow style, merge keys, tags) the nearest
//!   visible ancestor's line is used; `None` when none is found;
//! - the summary counts key changes under `added`/`modified`/`removed`/
//!   `moved` and file-level entries under `file_added`/`file_modified`/
//!   `file_removed`/`file_renamed` (all eight keys always present);
//!   `by_file` maps each path to its number of key changes (1 for a
//!   file-level entry, 0 when only formatting or comments changed).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::budget::{Budget, ParseLimits, TooComplex};
use super::lines::LineIndex;
use super::parse::{self, ParseError, Parsed};
use super::path::{self, Seg};
use super::tree::{self, Raw};
use crate::ports::git::{ChangeStatus, FileChange};

/// The semantic diff of a set of changed files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SemanticDiff {
    /// One entry per changed file, in input order.
    pub files: Vec<SemanticFile>,
    /// Counts over all files.
    pub summary: SemanticSummary,
}

/// The semantic diff of one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SemanticFile {
    /// Path in the new commit (the old path for deletions).
    pub path: String,
    /// Path in the old commit, for renames.
    pub old_path: Option<String>,
    /// How the file changed.
    pub status: ChangeStatus,
    /// Format chosen by the path's extension.
    pub format: FileFormat,
    /// Whether key-level changes are reported.
    pub level: DiffLevel,
    /// Key-level changes, sorted by key then op (empty at file level).
    pub changes: Vec<KeyChange>,
    /// Why the file is reported at file level, or a remark on a key-level
    /// file without changes.
    pub note: Option<String>,
    /// Why the file is reported at file level, as a code (`None` at key level).
    pub reason: Option<FileLevelReason>,
}

/// Why a file is reported at file level rather than key by key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileLevelReason {
    /// Either side is binary.
    Binary,
    /// Not YAML, JSON or TOML by extension.
    NotStructured,
    /// Renamed without a change of contents.
    Renamed,
    /// The contents of a side were not supplied.
    ContentsUnavailable,
    /// A side is not valid UTF-8 or not valid in its format.
    Unparseable,
    /// A side is over a [`ParseLimits`] limit (size, depth, values), or the
    /// diff's budget was spent on earlier files; the note names the limit.
    TooComplex,
}

/// A file's structured format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// `.yaml` / `.yml`.
    Yaml,
    /// `.json`.
    Json,
    /// `.toml`.
    Toml,
    /// Anything else.
    Other,
}

/// How detailed a file's entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffLevel {
    /// Key-level changes are listed.
    Key,
    /// Only the file's status is reported.
    File,
}

/// One key-level change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyChange {
    /// What happened.
    pub op: KeyOp,
    /// Dotted key path (the new path for `moved`).
    pub key: String,
    /// The old path (`moved` only).
    pub from_key: Option<String>,
    /// Value before (`modified`, `removed`, `moved`).
    pub old_value: Option<Value>,
    /// Value after (`added`, `modified`, `moved`).
    pub new_value: Option<Value>,
    /// 1-based line in the new file (the old file for `removed`), where
    /// known.
    pub line: Option<u32>,
}

/// Kind of a key-level change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyOp {
    /// Only in the new side.
    Added,
    /// In both, with different values.
    Modified,
    /// Only in the old side.
    Removed,
    /// The same value removed at one path and added at another.
    Moved,
}

/// Counts of a semantic diff.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SemanticSummary {
    /// Key changes by op (`added`, `modified`, `removed`, `moved`) and
    /// file-level entries by status (`file_added`, `file_modified`,
    /// `file_removed`, `file_renamed`); all eight keys are present.
    pub by_op: BTreeMap<String, u32>,
    /// Path → number of key changes (1 for a file-level entry).
    pub by_file: BTreeMap<String, u32>,
}

/// Computes the semantic diff of `changes` (see the module doc) within
/// [`ParseLimits::DEFAULT`].
pub fn semantic_diff(changes: &[FileChange]) -> SemanticDiff {
    semantic_diff_within(changes, &ParseLimits::DEFAULT)
}

/// [`semantic_diff`] within `limits`: a side over a limit, and every file
/// after the diff's node budget is spent, is reported at file level with
/// [`FileLevelReason::TooComplex`].
pub fn semantic_diff_within(changes: &[FileChange], limits: &ParseLimits) -> SemanticDiff {
    let mut diff_nodes_left = limits.max_diff_nodes;
    let files: Vec<SemanticFile> = changes.iter().map(|c| diff_file(c, limits, &mut diff_nodes_left)).collect();
    let summary = summarize(&files);
    SemanticDiff { files, summary }
}

fn op_name(op: KeyOp) -> &'static str {
    match op {
        KeyOp::Added => "added",
        KeyOp::Modified => "modified",
        KeyOp::Removed => "removed",
        KeyOp::Moved => "moved",
    }
}

fn file_op_name(status: ChangeStatus) -> &'static str {
    match status {
        ChangeStatus::Added => "file_added",
        ChangeStatus::Modified => "file_modified",
        ChangeStatus::Deleted => "file_removed",
        ChangeStatus::Renamed => "file_renamed",
    }
}

fn summarize(files: &[SemanticFile]) -> SemanticSummary {
    let mut by_op: BTreeMap<String, u32> =
        ["added", "modified", "removed", "moved", "file_added", "file_modified", "file_removed", "file_renamed"]
            .into_iter()
            .map(|k| (k.to_owned(), 0))
            .collect();
    let mut by_file: BTreeMap<String, u32> = BTreeMap::new();
    for file in files {
        let count = match file.level {
            DiffLevel::File => {
                *by_op.entry(file_op_name(file.status).to_owned()).or_default() += 1;
                1
            }
            DiffLevel::Key => {
                for change in &file.changes {
                    *by_op.entry(op_name(change.op).to_owned()).or_default() += 1;
                }
                u32::try_from(file.changes.len()).unwrap_or(u32::MAX)
            }
        };
        let entry = by_file.entry(file.path.clone()).or_default();
        *entry = entry.saturating_add(count);
    }
    SemanticSummary { by_op, by_file }
}

/// Parses one side within `limits` and what is left of the diff's budget
/// (at most `max_nodes`); whatever it built is spent, even when it fails.
fn parse_side<'a>(
    bytes: &'a [u8],
    format: FileFormat,
    limits: &ParseLimits,
    left: &mut u64,
) -> Result<Parsed<'a>, ParseError> {
    let budget = Budget::new(limits.max_nodes.min(*left), limits.max_depth);
    let parsed = parse::parse(format, bytes, limits, &budget);
    *left -= budget.spent();
    parsed
}

fn diff_file(change: &FileChange, limits: &ParseLimits, diff_nodes_left: &mut u64) -> SemanticFile {
    let format = parse::detect(&change.path);
    let old_format = change.old_path.as_deref().map_or(format, parse::detect);
    let mut file = SemanticFile {
        path: change.path.clone(),
        old_path: change.old_path.clone(),
        status: change.status,
        format,
        level: DiffLevel::File,
        changes: Vec::new(),
        note: None,
        reason: None,
    };
    let at_file_level = |mut file: SemanticFile, reason: FileLevelReason, note: String| {
        file.reason = Some(reason);
        file.note = Some(note);
        file
    };
    if change.binary {
        return at_file_level(file, FileLevelReason::Binary, "binary file".to_owned());
    }
    if format == FileFormat::Other || old_format == FileFormat::Other {
        return at_file_level(file, FileLevelReason::NotStructured, "not a YAML, JSON or TOML file".to_owned());
    }
    let (old_bytes, new_bytes) = match change.status {
        ChangeStatus::Added => (None, change.new_content.as_deref()),
        ChangeStatus::Deleted => (change.old_content.as_deref(), None),
        ChangeStatus::Modified | ChangeStatus::Renamed => {
            (change.old_content.as_deref(), change.new_content.as_deref())
        }
    };
    if change.status == ChangeStatus::Renamed && (old_bytes == new_bytes || old_bytes.is_none() || new_bytes.is_none())
    {
        return at_file_level(file, FileLevelReason::Renamed, "renamed without content changes".to_owned());
    }
    let needs_old = change.status != ChangeStatus::Added;
    let needs_new = change.status != ChangeStatus::Deleted;
    if (needs_old && old_bytes.is_none()) || (needs_new && new_bytes.is_none()) {
        return at_file_level(file, FileLevelReason::ContentsUnavailable, "contents not available".to_owned());
    }
    if *diff_nodes_left == 0 {
        let note = TooComplex::diff_budget(limits.max_diff_nodes).to_string();
        return at_file_level(file, FileLevelReason::TooComplex, note);
    }
    let old = old_bytes.map(|b| parse_side(b, old_format, limits, diff_nodes_left));
    let new = new_bytes.map(|b| parse_side(b, format, limits, diff_nodes_left));
    let mut errors = Vec::new();
    let mut reason = FileLevelReason::Unparseable;
    for (name, result) in [("old", &old), ("new", &new)] {
        match result {
            Some(Err(e @ ParseError::TooComplex(_))) => {
                reason = FileLevelReason::TooComplex;
                errors.push(format!("{name} side is {e}"));
            }
            Some(Err(e)) => errors.push(format!("{name} side is {e}")),
            _ => {}
        }
    }
    if !errors.is_empty() {
        return at_file_level(file, reason, errors.join("; "));
    }
    let old = old.and_then(Result::ok);
    let new = new.and_then(Result::ok);
    file.level = DiffLevel::Key;
    file.changes = key_changes(old.as_ref(), old_format, new.as_ref(), format);
    if file.changes.is_empty() {
        file.note = Some("no key-level changes".to_owned());
    }
    file
}

fn key_changes(
    old: Option<&Parsed<'_>>,
    old_format: FileFormat,
    new: Option<&Parsed<'_>>,
    format: FileFormat,
) -> Vec<KeyChange> {
    let old_docs = old.map_or(&[][..], |p| &p.docs[..]);
    let new_docs = new.map_or(&[][..], |p| &p.docs[..]);
    let count = old_docs.len().max(new_docs.len());
    let multi_doc = count > 1;
    let mut raw: Vec<Raw<'_>> = Vec::new();
    let mut prefix: Vec<Seg<'_>> = Vec::new();
    for doc in 0..count {
        prefix.clear();
        if multi_doc {
            prefix.push(Seg::Doc(doc));
        }
        tree::diff_document(old_docs.get(doc), new_docs.get(doc), &mut prefix, &mut raw);
    }
    tree::sort(&mut raw);
    let mut raw = tree::pair_moves(raw);
    tree::sort(&mut raw);

    let mut old_index: Option<LineIndex> = None;
    let mut new_index: Option<LineIndex> = None;
    raw.into_iter()
        .map(|c| {
            let (side, index, side_format) = match c.op {
                KeyOp::Removed => (old, &mut old_index, old_format),
                _ => (new, &mut new_index, format),
            };
            let line = side.and_then(|p| {
                let index = index.get_or_insert_with(|| LineIndex::build(side_format, p.text, multi_doc));
                find_line(index, &c.path)
            });
            KeyChange {
                op: c.op,
                key: path::write(&c.path),
                from_key: c.from.as_deref().map(path::write),
                old_value: c.old.cloned(),
                new_value: c.new.cloned(),
                line,
            }
        })
        .collect()
}

/// The line of `path`, or of its nearest ancestor seen in the text.
fn find_line(index: &LineIndex, segs: &[Seg<'_>]) -> Option<u32> {
    (1..=segs.len()).rev().find_map(|len| index.get(&path::write_raw(&segs[..len])))
}
