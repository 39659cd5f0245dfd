//! The files that differ between two commits' trees, for changeset diffs
//! (SPEC §2.3: `raw` patches and stats, `semantic` from both contents).
//!
//! Invariants:
//! - read-only; both commits must exist (`NotFound("commit")`);
//! - the cost follows the change, not the repository size: a walk of the
//!   two trees that skips subtrees with equal object ids finds the changed
//!   paths, and libgit2's tree-to-tree diff (which on its own visits every
//!   entry) is limited to them as a literal path list, so it yields exactly
//!   the deltas of an unlimited diff;
//! - renames are exact only (same blob id on both sides): a move with edits
//!   is a deletion plus an addition;
//! - at most one entry per path; entries sorted by `path` (bytewise); a
//!   path whose kind changes (file ↔ symlink ↔ submodule) is one `Modified`
//!   entry whose patch is the deletion-plus-addition pair `git diff` prints;
//! - `binary` follows git's rule (a NUL byte in the first 8000 bytes of
//!   either side); binaries get no hunks and zero line counts;
//! - patch text is git's unified format (3 lines of context, the indent
//!   heuristic `git diff` uses), at most [`MAX_PATCH_BYTES`], cut after a
//!   newline; line counts always cover the whole patch;
//! - a submodule (gitlink) side reads as git prints it,
//!   `Subproject commit <id>\n`, never as a lookup in this repository.

use std::cmp::Ordering;
use std::collections::HashSet;

use conman_core::ports::git::{ChangeStatus, DiffDetail, FileChange, Sha, MAX_PATCH_BYTES};
use conman_core::Error;
use git2::{
    Delta, DiffDelta, DiffFile, DiffFindOptions, DiffOptions, FileMode, ObjectType, Oid, Patch, Repository, Tree,
    TreeEntry,
};

use crate::errors::OrInternal;
use crate::refs::find_commit;

/// How far into a blob git looks for a NUL byte to call it binary.
const BINARY_CHECK_BYTES: usize = 8000;

/// The changes from commit `from` to commit `to`, sorted by path.
pub(crate) fn diff(repo: &Repository, from: &Sha, to: &Sha, detail: DiffDetail) -> Result<Vec<FileChange>, Error> {
    let old_tree = find_commit(repo, from)?.tree().or_internal()?;
    let new_tree = find_commit(repo, to)?.tree().or_internal()?;
    if old_tree.id() == new_tree.id() {
        return Ok(Vec::new());
    }

    // libgit2's tree diff walks every entry of both trees; handing it the
    // changed paths as a literal path list makes it enter only the
    // directories on the way to them.
    let mut changed = Vec::new();
    changed_paths(repo, &old_tree, &new_tree, &mut Vec::new(), &mut changed)?;
    if changed.is_empty() {
        return Ok(Vec::new());
    }
    let mut options = DiffOptions::new();
    options.context_lines(3).interhunk_lines(0).indent_heuristic(true).disable_pathspec_match(true);
    for path in changed {
        options.pathspec(path);
    }
    let mut diff = repo.diff_tree_to_tree(Some(&old_tree), Some(&new_tree), Some(&mut options)).or_internal()?;
    if may_have_renames(&diff) {
        let mut find = DiffFindOptions::new();
        // Exact matches compare blob ids only, so every deleted/added pair
        // may be tried: a moved directory of any size stays one rename per file.
        find.renames(true).exact_match_only(true).rename_limit(usize::MAX);
        diff.find_similar(Some(&mut find)).or_internal()?;
    }

    let mut changes = Vec::with_capacity(diff.deltas().len());
    for (idx, delta) in diff.deltas().enumerate() {
        let Some(status) = status_of(&delta)? else { continue };
        let (old, new) = (Side::of(delta.old_file()), Side::of(delta.new_file()));
        let path = if status == ChangeStatus::Deleted { &old.path } else { &new.path };
        let mut change = FileChange {
            path: path.clone(),
            old_path: (status == ChangeStatus::Renamed).then(|| old.path.clone()),
            status,
            binary: false,
            additions: 0,
            deletions: 0,
            patch: None,
            patch_truncated: false,
            old_content: None,
            new_content: None,
        };
        // Blobs are read here only where needed: libgit2 reads them itself
        // for the patch and usually settles `binary` on the way.
        let mut contents = match detail {
            DiffDetail::Paths | DiffDetail::Contents => Some((old.content(repo)?, new.content(repo)?)),
            DiffDetail::Patch => None,
        };
        let settled = match detail {
            DiffDetail::Paths => false,
            DiffDetail::Patch | DiffDetail::Contents => add_patch(&diff, idx, &mut change)?,
        };
        if !settled {
            let (old_content, new_content) = match contents.take() {
                Some(both) => both,
                None => (old.content(repo)?, new.content(repo)?),
            };
            change.binary = is_binary(&old_content) || is_binary(&new_content);
            contents = Some((old_content, new_content));
        }
        if change.binary {
            (change.additions, change.deletions) = (0, 0);
        }
        if detail == DiffDetail::Contents {
            (change.old_content, change.new_content) = contents.unwrap_or_default();
        }
        changes.push(change);
    }
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(merge_kind_changes(changes))
}

/// Appends to `out` the path (under `prefix`, `/`-separated, no trailing
/// slash) of every entry that differs between `old` and `new`, descending
/// only into directories present on both sides with different ids; an
/// added, removed or retyped entry is listed whole. A merge of the two
/// sorted entry lists: an entry that finds no partner is listed, so even a
/// misordered tree can only add paths, never lose a change.
fn changed_paths(
    repo: &Repository,
    old: &Tree<'_>,
    new: &Tree<'_>,
    prefix: &mut Vec<u8>,
    out: &mut Vec<Vec<u8>>,
) -> Result<(), Error> {
    let (mut olds, mut news) = (old.iter().peekable(), new.iter().peekable());
    loop {
        let order = match (olds.peek(), news.peek()) {
            (None, None) => return Ok(()),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(before), Some(after)) => tree_order(before, after),
        };
        let entry = match order {
            Ordering::Less => olds.next(),
            Ordering::Greater => news.next(),
            Ordering::Equal => {
                let (before, after) = (olds.next().expect("peeked"), news.next().expect("peeked"));
                if before.id() == after.id() && before.filemode_raw() == after.filemode_raw() {
                    continue;
                }
                if is_tree(&before) && is_tree(&after) {
                    let old_sub = repo.find_tree(before.id()).or_internal()?;
                    let new_sub = repo.find_tree(after.id()).or_internal()?;
                    let len = prefix.len();
                    prefix.extend_from_slice(before.name_bytes());
                    prefix.push(b'/');
                    changed_paths(repo, &old_sub, &new_sub, prefix, out)?;
                    prefix.truncate(len);
                    continue;
                }
                Some(after)
            }
        };
        let name = entry.expect("peeked").name_bytes().to_vec();
        out.push([prefix.as_slice(), &name].concat());
    }
}

fn is_tree(entry: &TreeEntry<'_>) -> bool {
    entry.kind() == Some(ObjectType::Tree)
}

/// Git's tree order: names compared bytewise, a directory's as if it
/// ended in `/`.
fn tree_order(a: &TreeEntry<'_>, b: &TreeEntry<'_>) -> Ordering {
    let (an, bn) = (a.name_bytes(), b.name_bytes());
    let len = an.len().min(bn.len());
    let end =
        |name: &[u8], entry: &TreeEntry<'_>| name.get(len).copied().unwrap_or(if is_tree(entry) { b'/' } else { 0 });
    an[..len].cmp(&bn[..len]).then_with(|| end(an, a).cmp(&end(bn, b)))
}

/// True when some added file has the blob id of some deleted file, the only
/// way an exact rename can exist (spares the pairwise search otherwise).
fn may_have_renames(diff: &git2::Diff<'_>) -> bool {
    let deleted: HashSet<Oid> =
        diff.deltas().filter(|d| d.status() == Delta::Deleted).map(|d| d.old_file().id()).collect();
    !deleted.is_empty() && diff.deltas().any(|d| d.status() == Delta::Added && deleted.contains(&d.new_file().id()))
}

/// Joins the deletion and the addition libgit2 (like git) reports for a
/// path whose kind changed into one `Modified` entry; `changes` is sorted,
/// and only such a pair can share a path.
fn merge_kind_changes(changes: Vec<FileChange>) -> Vec<FileChange> {
    let mut merged: Vec<FileChange> = Vec::with_capacity(changes.len());
    for change in changes {
        if merged.last().is_none_or(|last| last.path != change.path) {
            merged.push(change);
            continue;
        }
        let previous = merged.pop().expect("checked above");
        let (deleted, added) =
            if previous.status == ChangeStatus::Deleted { (previous, change) } else { (change, previous) };
        merged.push(kind_change(deleted, added));
    }
    merged
}

/// One `Modified` entry from the two halves of a kind change, with the
/// patch text git prints for it (the deletion first).
fn kind_change(deleted: FileChange, added: FileChange) -> FileChange {
    debug_assert!(deleted.status == ChangeStatus::Deleted && added.status == ChangeStatus::Added);
    let binary = deleted.binary || added.binary;
    let (patch, cut) = match (deleted.patch, added.patch) {
        (Some(old), Some(new)) => {
            let (text, cut) = truncate(old + &new);
            (Some(text), cut)
        }
        (old, new) => (old.or(new), false),
    };
    FileChange {
        path: added.path,
        old_path: None,
        status: ChangeStatus::Modified,
        binary,
        additions: if binary { 0 } else { added.additions },
        deletions: if binary { 0 } else { deleted.deletions },
        patch,
        patch_truncated: deleted.patch_truncated || added.patch_truncated || cut,
        old_content: deleted.old_content,
        new_content: added.new_content,
    }
}

/// The port's status for a delta; `None` for an unchanged entry (never
/// reported by a tree diff, skipped to be safe).
fn status_of(delta: &DiffDelta<'_>) -> Result<Option<ChangeStatus>, Error> {
    Ok(Some(match delta.status() {
        Delta::Added => ChangeStatus::Added,
        Delta::Deleted => ChangeStatus::Deleted,
        Delta::Modified => ChangeStatus::Modified,
        Delta::Renamed => ChangeStatus::Renamed,
        Delta::Unmodified => return Ok(None),
        other => return Err(Error::internal(format_args!("git: unexpected tree diff status {other:?}"))),
    }))
}

/// One side of a delta, copied out of libgit2's structures.
struct Side {
    path: String,
    id: Oid,
    mode: FileMode,
}

impl Side {
    fn of(file: DiffFile<'_>) -> Side {
        let path = file.path_bytes().map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_default();
        Side { path, id: file.id(), mode: file.mode() }
    }

    /// The bytes on this side; `None` where the file does not exist.
    fn content(&self, repo: &Repository) -> Result<Option<Vec<u8>>, Error> {
        match self.mode {
            FileMode::Unreadable => Ok(None),
            _ if self.id.is_zero() => Ok(None),
            FileMode::Commit => Ok(Some(format!("Subproject commit {}\n", self.id).into_bytes())),
            _ => Ok(Some(repo.find_blob(self.id).or_internal()?.content().to_vec())),
        }
    }
}

/// Git's binary rule: a NUL byte near the start.
fn is_binary(content: &Option<Vec<u8>>) -> bool {
    content.as_deref().is_some_and(|bytes| bytes[..bytes.len().min(BINARY_CHECK_BYTES)].contains(&0))
}

/// Fills the patch text, line counts and binary flag of delta `idx`;
/// true when libgit2 looked at the content and settled `binary` (it does
/// not when both sides are the same blob, as in an exact rename).
fn add_patch(diff: &git2::Diff<'_>, idx: usize, change: &mut FileChange) -> Result<bool, Error> {
    let Some(mut patch) = Patch::from_diff(diff, idx).or_internal()? else { return Ok(false) };
    let flags = patch.delta().flags();
    change.binary = flags.is_binary();
    let (_, additions, deletions) = patch.line_stats().or_internal()?;
    change.additions = u32::try_from(additions).unwrap_or(u32::MAX);
    change.deletions = u32::try_from(deletions).unwrap_or(u32::MAX);
    let buf = patch.to_buf().or_internal()?;
    let (text, truncated) = truncate(String::from_utf8_lossy(&buf).into_owned());
    change.patch = Some(text);
    change.patch_truncated = truncated;
    Ok(flags.is_binary() || flags.is_not_binary())
}

/// Cuts `text` after the last newline within [`MAX_PATCH_BYTES`]; true if cut.
fn truncate(mut text: String) -> (String, bool) {
    if text.len() <= MAX_PATCH_BYTES {
        return (text, false);
    }
    let cut = match text.as_bytes()[..MAX_PATCH_BYTES].iter().rposition(|&b| b == b'\n') {
        Some(newline) => newline + 1,
        // One line longer than the limit: cut at a character boundary.
        None => (0..=MAX_PATCH_BYTES).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0),
    };
    text.truncate(cut);
    (text, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept_whole() {
        assert_eq!(truncate("a\nb\n".into()), ("a\nb\n".into(), false));
        let exact = "x".repeat(MAX_PATCH_BYTES - 1) + "\n";
        assert_eq!(truncate(exact.clone()), (exact, false));
    }

    #[test]
    fn long_text_is_cut_after_the_last_newline_that_fits() {
        let line = "y".repeat(99) + "\n";
        let text = line.repeat(MAX_PATCH_BYTES / 100 + 5);
        let (cut, truncated) = truncate(text);
        assert!(truncated);
        assert!(cut.len() <= MAX_PATCH_BYTES && cut.len() > MAX_PATCH_BYTES - 100);
        assert!(cut.ends_with('\n') && cut.len() % 100 == 0);
    }

    #[test]
    fn a_single_overlong_line_is_cut_at_a_character_boundary() {
        let text = "é".repeat(MAX_PATCH_BYTES);
        let (cut, truncated) = truncate(text);
        assert!(truncated);
        assert_eq!(cut.len(), MAX_PATCH_BYTES);
    }

    #[test]
    fn binary_is_a_nul_within_the_first_8000_bytes() {
        assert!(!is_binary(&None));
        assert!(!is_binary(&Some(b"plain text\n".to_vec())));
        assert!(is_binary(&Some(b"a\0b".to_vec())));
        let mut late = vec![b'a'; BINARY_CHECK_BYTES];
        late.push(0);
        assert!(!is_binary(&Some(late)));
    }
}
