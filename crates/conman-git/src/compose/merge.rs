//! The three-way merge of trees: base, ours and theirs joined entry by
//! entry, in memory.
//!
//! Invariants:
//! - equal ids short-cut before any tree is read (theirs = base or ours =
//!   theirs → ours; ours = base → theirs), at every level;
//! - the entries of the three trees are merge-joined by name (each side is
//!   sorted by name bytes); only entries changed on both sides, differently,
//!   go further: directories (or nothing) on every side recurse, files on
//!   every side get libgit2's line merge, anything else is a conflict;
//! - where one side changed an entry, that side's entry is taken whole (a
//!   subtree by id, never read);
//! - a tree is written (or named) only when its merge changed ours and no
//!   conflict was found.

use conman_core::Error;
use git2::{IndexEntry, IndexTime, Oid, Repository};

use super::trees::{Entries, Entry, Trees, MODE_TREE};
use crate::errors::OrInternal;

/// `theirs` (a change from `base`) merged onto `ours`, trees all: the
/// merged tree's id, or the sorted conflicting paths.
pub(super) fn merge(
    repo: &Repository,
    trees: &mut Trees<'_>,
    base: Oid,
    ours: Oid,
    theirs: Oid,
) -> Result<Result<Oid, Vec<String>>, Error> {
    let mut merge = TreeMerge { repo, trees, conflicts: Vec::new() };
    let merged = merge.trees(&mut String::new(), Some(base), Some(ours), Some(theirs))?;
    let mut conflicts = merge.conflicts;
    if !conflicts.is_empty() {
        conflicts.sort();
        conflicts.dedup();
        return Ok(Err(conflicts));
    }
    Ok(Ok(match merged {
        Some(tree) => tree,
        None => trees.empty()?,
    }))
}

/// What a merge compares of an entry (`None` = absent).
type Key = Option<(Oid, i32)>;

/// One three-way merge of trees, collecting conflicting paths.
struct TreeMerge<'a, 'r> {
    repo: &'a Repository,
    trees: &'a mut Trees<'r>,
    conflicts: Vec<String>,
}

impl TreeMerge<'_, '_> {
    /// The merge of three trees at `path` (`None` = absent): the merged
    /// tree's id, or `None` when it is empty. Conflicts are collected; the
    /// id is meaningless once one was found.
    fn trees(
        &mut self,
        path: &mut String,
        base: Option<Oid>,
        ours: Option<Oid>,
        theirs: Option<Oid>,
    ) -> Result<Option<Oid>, Error> {
        if theirs == base || ours == theirs {
            return Ok(ours);
        }
        if ours == base {
            return Ok(theirs);
        }
        let b = self.side(base, true)?;
        let o = self.side(ours, true)?;
        let t = self.side(theirs, false)?;
        let mut merged: Vec<Entry> = Vec::with_capacity(o.len() + 1);
        let mut changed = false;
        let (mut i, mut j, mut k) = (0, 0, 0);
        loop {
            // The smallest name left on any side, and each side's entry of it.
            let name = [b.get(i), o.get(j), t.get(k)].into_iter().flatten().map(|e| &e.name).min();
            let Some(name) = name.cloned() else { break };
            let (eb, eo, et) = (take(&b, &mut i, &name), take(&o, &mut j, &name), take(&t, &mut k, &name));
            let (kb, ko, kt): (Key, Key, Key) = (eb.map(Entry::key), eo.map(Entry::key), et.map(Entry::key));
            let result = if kt == kb || ko == kt {
                ko
            } else if ko == kb {
                kt
            } else {
                self.entries(path, &name, kb, ko, kt)?
            };
            if result != ko {
                changed = true;
            }
            match (result, eo) {
                (Some(_), Some(eo)) if result == ko => merged.push(eo.clone()),
                (Some((id, mode)), _) => merged.push(Entry { name, id, mode }),
                (None, _) => {}
            }
        }
        if !changed || !self.conflicts.is_empty() {
            return Ok(ours);
        }
        if merged.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.trees.put(merged)?))
    }

    /// The entries of one side (an absent side has none).
    fn side(&mut self, id: Option<Oid>, keep: bool) -> Result<Entries, Error> {
        match id {
            Some(id) => self.trees.get(id, keep),
            None => Ok(Entries::from([])),
        }
    }

    /// The merge of one entry changed on both sides, differently.
    fn entries(&mut self, path: &mut String, name: &[u8], base: Key, ours: Key, theirs: Key) -> Result<Key, Error> {
        let len = path.len();
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(&String::from_utf8_lossy(name));
        let is_tree = |e: Key| e.is_some_and(|(_, mode)| mode == MODE_TREE);
        let is_file = |e: Key| e.is_some_and(|(_, mode)| mode != MODE_TREE);
        let result = match (base, ours, theirs) {
            // Directories (or nothing) on every side: merged file by file,
            // an absent side being an empty directory — deleting a file
            // and adding another in the same directory is no conflict.
            (b, o, t) if [b, o, t].into_iter().all(|e| e.is_none() || is_tree(e)) => {
                let merged = self.trees(path, b.map(|e| e.0), o.map(|e| e.0), t.map(|e| e.0))?;
                merged.map(|id| (id, MODE_TREE))
            }
            (Some(b), Some(o), Some(t)) if is_file(Some(b)) && is_file(Some(o)) && is_file(Some(t)) => {
                self.file(path, b, o, t)?
            }
            // Added on both sides differently, deleted on one and changed
            // on the other, or a file on one side and a directory on the
            // other: git calls each a conflict.
            _ => {
                self.conflicts.push(path.clone());
                None
            }
        };
        path.truncate(len);
        Ok(result)
    }

    /// A file changed on both sides: its contents merged line by line.
    fn file(&mut self, path: &str, base: (Oid, i32), ours: (Oid, i32), theirs: (Oid, i32)) -> Result<Key, Error> {
        let mode = if ours.1 == base.1 { theirs.1 } else { ours.1 };
        if ours.1 != base.1 && theirs.1 != base.1 && ours.1 != theirs.1 {
            self.conflicts.push(path.to_owned());
            return Ok(None);
        }
        if ours.0 == theirs.0 {
            return Ok(Some((ours.0, mode)));
        }
        let entry = |(id, mode): (Oid, i32)| IndexEntry {
            ctime: IndexTime::new(0, 0),
            mtime: IndexTime::new(0, 0),
            dev: 0,
            ino: 0,
            mode: mode as u32,
            uid: 0,
            gid: 0,
            file_size: 0,
            id,
            flags: 0,
            flags_extended: 0,
            path: path.as_bytes().to_vec(),
        };
        let merged = self.repo.merge_file_from_index(&entry(base), &entry(ours), &entry(theirs), None).or_internal()?;
        if !merged.is_automergeable() {
            self.conflicts.push(path.to_owned());
            return Ok(None);
        }
        Ok(Some((self.trees.blob(merged.content())?, mode)))
    }
}

/// `side`'s entry at `*at` if it is named `name` (then `*at` moves past it).
fn take<'e>(side: &'e [Entry], at: &mut usize, name: &[u8]) -> Option<&'e Entry> {
    let entry = side.get(*at).filter(|e| *e.name == *name);
    *at += usize::from(entry.is_some());
    entry
}
