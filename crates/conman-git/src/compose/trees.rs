//! The trees a composition or a check works on, parsed once: a store of
//! tree entries by id, read from the object database on first use, and the
//! writer of the objects a merge makes (trees, merged blobs, commits).
//!
//! Invariants:
//! - entries are held sorted by name bytes (the order the merge joins in);
//!   they are written in git's tree order (a directory sorts as if its
//!   name ended in `/`), so ids are git's;
//! - a tree read as a base or ours side, or written by a composition, is
//!   parsed once per store and never read back; a theirs side is read each
//!   time (nothing else uses it);
//! - [`Sink::Hash`] writes nothing: objects only get their ids;
//!   [`Sink::Pack`] lists them with their data, so the caller packs exactly
//!   those (see [`Trees::mark`], [`Trees::written_since`]), and writes the
//!   merged blobs to the repository's object database too (which the
//!   caller has sent to a mempack), as a later line merge reads them —
//!   trees and commits are never read back, so they skip the odb (whose
//!   every write first searches all backends for the object);
//! - a loose object is read as a stream (libgit2 does not re-hash it, as
//!   git does not either; `odb.read` would, and that was a third of a
//!   check), anything else through the odb; a missing object is `None`.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::io::Read;
use std::rc::Rc;

use conman_core::Error;
use git2::{ErrorCode, ObjectType, Odb, Oid, Repository, Signature};

use crate::errors::OrInternal;

/// File mode of a subtree entry.
pub(super) const MODE_TREE: i32 = 0o040000;

/// An entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) name: Rc<[u8]>,
    pub(super) id: Oid,
    pub(super) mode: i32,
}

impl Entry {
    /// What a merge compares of an entry: its id and mode.
    pub(super) fn key(&self) -> (Oid, i32) {
        (self.id, self.mode)
    }

    pub(super) fn is_tree(&self) -> bool {
        self.mode == MODE_TREE
    }
}

/// A tree's entries, sorted by name bytes.
pub(super) type Entries = Rc<[Entry]>;

/// Where the objects a merge makes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sink {
    /// Nowhere: only their ids are computed (the queue check).
    Hash,
    /// One pack at the end (a composition), merged blobs also the odb.
    Pack,
}

/// Parsed trees by id, and the writer of new objects.
pub(super) struct Trees<'r> {
    odb: Odb<'r>,
    sink: Sink,
    parsed: HashMap<Oid, Entries>,
    /// Commits read, by id: their trees.
    commits: HashMap<Oid, Oid>,
    /// Every object written ([`Sink::Pack`]), in order, with its data.
    written: Vec<(Oid, ObjectType, Vec<u8>)>,
    /// Scratch buffer for serialising objects.
    buf: Vec<u8>,
}

impl<'r> Trees<'r> {
    pub(super) fn new(repo: &'r Repository, sink: Sink) -> Result<Self, Error> {
        let odb = repo.odb().or_internal()?;
        Ok(Trees { odb, sink, parsed: HashMap::new(), commits: HashMap::new(), written: Vec::new(), buf: Vec::new() })
    }

    /// The tree of commit `id`, or `NotFound("commit")`.
    pub(super) fn commit_tree(&mut self, id: Oid) -> Result<Oid, Error> {
        if let Some(tree) = self.commits.get(&id) {
            return Ok(*tree);
        }
        let data = self.raw(id, ObjectType::Commit)?.ok_or(Error::NotFound("commit"))?;
        let tree = data
            .strip_prefix(b"tree ")
            .and_then(|rest| rest.get(..40))
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| Oid::from_str(hex).ok())
            .ok_or_else(|| Error::internal(format_args!("git: commit {id} is corrupt")))?;
        self.commits.insert(id, tree);
        Ok(tree)
    }

    /// A point in the list of written objects.
    pub(super) fn mark(&self) -> usize {
        self.written.len()
    }

    /// Forgets the objects written since `mark` (a dropped item's).
    pub(super) fn forget_since(&mut self, mark: usize) {
        self.written.truncate(mark);
    }

    /// The objects written since `mark`.
    pub(super) fn written_since(&self, mark: usize) -> &[(Oid, ObjectType, Vec<u8>)] {
        &self.written[mark..]
    }

    /// The raw data of object `id` of kind `kind`; `None` if it is missing
    /// (another kind is corrupt).
    fn raw(&self, id: Oid, kind: ObjectType) -> Result<Option<Vec<u8>>, Error> {
        let (data, found) = match self.odb.reader(id) {
            Ok((mut reader, len, found)) => {
                let mut data = Vec::with_capacity(len);
                reader.read_to_end(&mut data).map_err(|e| Error::internal(format_args!("git: read {id}: {e}")))?;
                if data.len() != len {
                    return Err(Error::internal(format_args!("git: object {id} is truncated")));
                }
                (data, found)
            }
            // Not loose: packed, in the mempack, or missing.
            Err(_) => match self.odb.read(id) {
                Ok(object) => (object.data().to_vec(), object.kind()),
                Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
                Err(e) => return Err(e).or_internal(),
            },
        };
        if found != kind {
            return Err(Error::internal(format_args!("git: {id} is not a {kind}")));
        }
        Ok(Some(data))
    }

    /// The entries of tree `id`; `keep` holds them for later calls.
    pub(super) fn get(&mut self, id: Oid, keep: bool) -> Result<Entries, Error> {
        if let Some(entries) = self.parsed.get(&id) {
            return Ok(Rc::clone(entries));
        }
        let data = self.raw(id, ObjectType::Tree)?.ok_or_else(|| Error::internal(format_args!("git: no tree {id}")))?;
        let entries: Entries = parse(id, &data)?.into();
        if keep {
            self.parsed.insert(id, Rc::clone(&entries));
        }
        Ok(entries)
    }

    /// Writes (or, for [`Sink::Hash`], only names) the tree of `entries`,
    /// sorted by name bytes and not empty; a composition keeps them, as the
    /// tree is what the next item composes onto.
    pub(super) fn put(&mut self, entries: Vec<Entry>) -> Result<Oid, Error> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        if entries.windows(2).all(|w| git_order(&w[0], &w[1]) == Ordering::Less) {
            entries.iter().for_each(|e| serialise(&mut buf, e));
        } else {
            let mut sorted: Vec<&Entry> = entries.iter().collect();
            sorted.sort_by(|a, b| git_order(a, b));
            sorted.into_iter().for_each(|e| serialise(&mut buf, e));
        }
        let id = self.object(ObjectType::Tree, &buf);
        self.buf = buf;
        let id = id?;
        if self.sink == Sink::Pack {
            self.parsed.insert(id, entries.into());
        }
        Ok(id)
    }

    /// Writes (or names) a blob of `content`.
    pub(super) fn blob(&mut self, content: &[u8]) -> Result<Oid, Error> {
        self.object(ObjectType::Blob, content)
    }

    /// The empty tree's id (written when the sink writes).
    pub(super) fn empty(&mut self) -> Result<Oid, Error> {
        self.object(ObjectType::Tree, &[])
    }

    /// Writes the commit of `tree` with `parents`, `who` as author and
    /// committer: byte for byte what libgit2's `git_commit_create` writes.
    pub(super) fn commit(
        &mut self,
        tree: Oid,
        parents: &[Oid],
        who: &Signature<'_>,
        message: &str,
    ) -> Result<Oid, Error> {
        if message.contains('\0') {
            return Err(Error::internal("git: a commit message holds a NUL byte"));
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.extend_from_slice(format!("tree {tree}\n").as_bytes());
        for parent in parents {
            buf.extend_from_slice(format!("parent {parent}\n").as_bytes());
        }
        for header in ["author ", "committer "] {
            buf.extend_from_slice(header.as_bytes());
            signature_line(&mut buf, who);
        }
        buf.push(b'\n');
        buf.extend_from_slice(message.as_bytes());
        let id = self.object(ObjectType::Commit, &buf);
        self.buf = buf;
        id
    }

    fn object(&mut self, kind: ObjectType, data: &[u8]) -> Result<Oid, Error> {
        match self.sink {
            Sink::Hash => Oid::hash_object(kind, data).or_internal(),
            Sink::Pack => {
                let id = match kind {
                    ObjectType::Blob => self.odb.write(kind, data),
                    _ => Oid::hash_object(kind, data),
                }
                .or_internal()?;
                self.written.push((id, kind, data.to_vec()));
                Ok(id)
            }
        }
    }
}

/// `name <email> time ±hhmm\n`, as libgit2's `git_signature__writebuf`
/// (which prints the time as a C `unsigned`).
fn signature_line(buf: &mut Vec<u8>, who: &Signature<'_>) {
    let when = who.when();
    let offset = when.offset_minutes();
    let sign = if offset < 0 || when.sign() == '-' { '-' } else { '+' };
    let offset = offset.unsigned_abs();
    buf.extend_from_slice(who.name_bytes());
    buf.extend_from_slice(b" <");
    buf.extend_from_slice(who.email_bytes());
    let tail = format!("> {} {sign}{:02}{:02}\n", when.seconds() as u32, offset / 60, offset % 60);
    buf.extend_from_slice(tail.as_bytes());
}

/// Git's order of tree entries: by name, a directory as if followed by `/`.
fn git_order(a: &Entry, b: &Entry) -> Ordering {
    let len = a.name.len().min(b.name.len());
    a.name[..len].cmp(&b.name[..len]).then_with(|| {
        let next = |e: &Entry| e.name.get(len).copied().unwrap_or(if e.is_tree() { b'/' } else { 0 });
        next(a).cmp(&next(b))
    })
}

fn serialise(buf: &mut Vec<u8>, entry: &Entry) {
    buf.extend_from_slice(format!("{:o} ", entry.mode).as_bytes());
    buf.extend_from_slice(&entry.name);
    buf.push(0);
    buf.extend_from_slice(entry.id.as_bytes());
}

/// The entries of the raw tree `data`, sorted by name bytes.
fn parse(id: Oid, mut data: &[u8]) -> Result<Vec<Entry>, Error> {
    let corrupt = || Error::internal(format_args!("git: tree {id} is corrupt"));
    let mut entries = Vec::new();
    while !data.is_empty() {
        let space = data.iter().position(|&b| b == b' ').ok_or_else(corrupt)?;
        let mut mode = 0i32;
        for &digit in &data[..space] {
            if !(b'0'..=b'7').contains(&digit) || mode > 0o7777777 {
                return Err(corrupt());
            }
            mode = mode * 8 + i32::from(digit - b'0');
        }
        let rest = &data[space + 1..];
        let nul = rest.iter().position(|&b| b == 0).ok_or_else(corrupt)?;
        let oid = rest.get(nul + 1..nul + 21).ok_or_else(corrupt)?;
        entries.push(Entry { name: rest[..nul].into(), id: Oid::from_bytes(oid).or_internal()?, mode });
        data = &rest[nul + 21..];
    }
    if !entries.windows(2).all(|w| w[0].name < w[1].name) {
        entries.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, mode: i32) -> Entry {
        Entry { name: name.as_bytes().into(), id: Oid::zero(), mode }
    }

    #[test]
    fn a_directory_sorts_as_if_its_name_ended_in_a_slash() {
        let (dir, file) = (entry("a", MODE_TREE), entry("a-b", 0o100644));
        assert_eq!(git_order(&dir, &file), Ordering::Greater);
        assert_eq!(git_order(&entry("a", 0o100644), &file), Ordering::Less);
        assert_eq!(git_order(&entry("a", MODE_TREE), &entry("a0", 0o100644)), Ordering::Less);
    }
}
