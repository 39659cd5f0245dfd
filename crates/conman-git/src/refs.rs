//! Ref names, commit ids and compare-and-swap ref updates.
//!
//! Invariants:
//! - every ref this adapter moves is a full name under `refs/`;
//! - a single ref moves only with libgit2's own compare-and-swap, checked
//!   under the ref's lock (`reference_matching`, with the all-zero id for
//!   "must not exist", or the value-checked `Reference::delete`);
//! - several refs move together only inside a ref transaction that first
//!   locks every ref involved and then checks each still holds the value the
//!   operation was computed from.

use std::time::Duration;

use conman_core::ports::git::Sha;
use conman_core::Error;
use git2::{Commit, Oid, Repository};

use crate::errors::{internal, is_lost_race, is_not_found, ref_moved, OrInternal};

/// How many times a lost race is re-derived before answering `conflict`.
pub(crate) const MAX_ATTEMPTS: u32 = 32;

/// Reflog text for updates made by this adapter (reflogs are off in bare
/// repositories by default; the text matters only if someone enables them).
pub(crate) const REFLOG: &str = "conman";

/// Refuses anything but a well-formed full ref name under `refs/`.
pub(crate) fn check_name(name: &str) -> Result<(), Error> {
    if name.starts_with("refs/") && git2::Reference::is_valid_name(name) {
        Ok(())
    } else {
        Err(Error::invalid("ref", "invalid_name", format!("{name:?} is not a valid ref name")))
    }
}

/// The commit id named by `sha`; malformed or partial ids are unknown commits.
pub(crate) fn oid_of(sha: &Sha) -> Result<Oid, Error> {
    let hex = sha.as_str();
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::NotFound("commit"));
    }
    Oid::from_str(hex).map_err(|_| Error::NotFound("commit"))
}

/// The 40-hex form of `oid`.
pub(crate) fn sha_of(oid: Oid) -> Sha {
    Sha(oid.to_string())
}

/// The commit named by `sha`, or `NotFound("commit")`.
pub(crate) fn find_commit<'r>(repo: &'r Repository, sha: &Sha) -> Result<Commit<'r>, Error> {
    let oid = oid_of(sha)?;
    repo.find_commit(oid).map_err(|e| if is_not_found(&e) { Error::NotFound("commit") } else { internal(e) })
}

/// The object a ref points to directly (symbolic refs followed), if the ref exists.
pub(crate) fn target(repo: &Repository, name: &str) -> Result<Option<Oid>, Error> {
    match repo.refname_to_id(name) {
        Ok(oid) => Ok(Some(oid)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(internal(e)),
    }
}

/// The value a ref holds (symbolic refs followed): a branch's commit, an
/// annotated tag's tag object — what a [`RefMove`](conman_core::ports::git::RefMove)
/// names, so an intent's positions compare like with like; `None` if absent.
pub(crate) fn resolve(repo: &Repository, name: &str) -> Result<Option<Sha>, Error> {
    check_name(name)?;
    Ok(target(repo, name)?.map(sha_of))
}

/// How old a ref lock file must be to be taken for the leftover of a writer
/// that died holding it. libgit2 holds a ref lock for microseconds (write
/// the new value, rename), so a lock this old has no live owner.
pub(crate) const STALE_LOCK_AGE: Duration = Duration::from_secs(2);

/// Waits out another writer's lock on `name`: returns as soon as the lock
/// is gone; a lock that lives to [`STALE_LOCK_AGE`] is the leftover of a
/// crashed process (SIGKILL between lock and rename) and is removed, so a
/// crash never leaves a workspace unwritable. Blocks at most about
/// [`STALE_LOCK_AGE`]; runs on a blocking thread.
pub(crate) fn wait_for_lock(repo: &Repository, name: &str) {
    let path = repo.path().join(format!("{name}.lock"));
    let mut attempt = 0;
    loop {
        let age = match std::fs::metadata(&path).and_then(|m| m.modified()) {
            Ok(modified) => modified.elapsed().unwrap_or_default(),
            Err(_) => return,
        };
        if age >= STALE_LOCK_AGE {
            tracing::warn!(lock = %path.display(), "removing a ref lock left by a crashed writer");
            let _ = std::fs::remove_file(&path);
            return;
        }
        pause(attempt.min(20));
        attempt += 1;
    }
}

/// Waits `100 µs × (attempt + 1)` before the next attempt.
#[expect(
    clippy::disallowed_methods,
    reason = "git work runs on tokio's blocking pool (never on an async worker), where a short sleep is the way to wait out another writer's ref lock"
)]
pub(crate) fn pause(attempt: u32) {
    std::thread::sleep(Duration::from_micros(100 * u64::from(attempt + 1)));
}

/// Moves (`new = Some`) or deletes (`new = None`) one ref by CAS against
/// `expected` (`None` = must not exist); a mismatch is `conflict`.
pub(crate) fn update(repo: &Repository, name: &str, new: Option<&Sha>, expected: Option<&Sha>) -> Result<(), Error> {
    check_name(name)?;
    let new = new.map(oid_of).transpose()?;
    let expected = expected.map(oid_of).transpose()?;
    if let Some(oid) = new {
        repo.find_object(oid, None)
            .map_err(|e| if is_not_found(&e) { Error::NotFound("commit") } else { internal(e) })?;
    }
    // A held lock is transient: give its owner a moment before calling it a conflict.
    for _ in 0..8 {
        let result = match new {
            Some(new) => cas(repo, name, new, expected),
            None => return delete(repo, name, expected),
        };
        match result {
            Ok(()) => return Ok(()),
            Err(e) if e.code() == git2::ErrorCode::Locked => wait_for_lock(repo, name),
            Err(e) if is_lost_race(&e) => return Err(ref_moved(name)),
            Err(e) => return Err(internal(e)),
        }
    }
    Err(ref_moved(name))
}

/// Points `name` at `new` if it holds `expected` (`None` = absent), checked
/// under the ref's lock. (Not `reference(.., force = false)`: libgit2 checks
/// absence there before taking the lock, so two creators can both succeed;
/// the all-zero expected id is its atomic "must not exist".)
pub(crate) fn cas(repo: &Repository, name: &str, new: Oid, expected: Option<Oid>) -> Result<(), git2::Error> {
    repo.reference_matching(name, new, true, expected.unwrap_or_else(Oid::zero), REFLOG).map(drop)
}

/// Deletes `name` if it holds `expected`; `expected = None` only checks
/// that the ref is absent.
fn delete(repo: &Repository, name: &str, expected: Option<Oid>) -> Result<(), Error> {
    let mut reference = match repo.find_reference(name) {
        Ok(r) => r,
        Err(e) if is_not_found(&e) => {
            return if expected.is_none() { Ok(()) } else { Err(ref_moved(name)) };
        }
        Err(e) => return Err(internal(e)),
    };
    if expected.is_none() || reference.target() != expected {
        return Err(ref_moved(name));
    }
    // libgit2 re-checks the value under the ref lock.
    reference.delete().map_err(|e| if is_lost_race(&e) { ref_moved(name) } else { internal(e) })
}

/// One ref of a multi-ref update: it must still hold `expected`
/// (`None` = absent) and then holds `new` (`None` = deleted).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RefMove<'a> {
    pub(crate) name: &'a str,
    pub(crate) expected: Option<Oid>,
    pub(crate) new: Option<Oid>,
}

/// A [`RefMove`] that owns its name (what a plan answers).
#[derive(Debug, Clone)]
pub(crate) struct OwnedMove {
    pub(crate) name: String,
    pub(crate) expected: Option<Oid>,
    pub(crate) new: Option<Oid>,
}

impl OwnedMove {
    /// The borrowed moves [`move_together`] takes.
    pub(crate) fn borrowed(moves: &[OwnedMove]) -> Vec<RefMove<'_>> {
        moves.iter().map(|m| RefMove { name: &m.name, expected: m.expected, new: m.new }).collect()
    }

    /// The port's value of this move.
    pub(crate) fn to_port(&self) -> conman_core::ports::git::RefMove {
        conman_core::ports::git::RefMove {
            name: self.name.clone(),
            from: self.expected.map(sha_of),
            to: self.new.map(sha_of),
        }
    }
}

/// Applies the port's `moves` together (see [`move_together`]): a ref that
/// holds something else is `conflict`; a held lock is waited for a few
/// times before it is one.
pub(crate) fn move_refs(repo: &Repository, moves: &[conman_core::ports::git::RefMove]) -> Result<(), Error> {
    let mut owned = Vec::with_capacity(moves.len());
    for m in moves {
        check_name(&m.name)?;
        let new = m.to.as_ref().map(oid_of).transpose()?;
        if let Some(oid) = new {
            repo.find_object(oid, None).map_err(|e| {
                if is_not_found(&e) {
                    Error::NotFound("commit")
                } else {
                    internal(e)
                }
            })?;
        }
        owned.push(OwnedMove { name: m.name.clone(), expected: m.from.as_ref().map(oid_of).transpose()?, new });
    }
    let who = git2::Signature::now("conman", "conman@localhost").or_internal()?;
    let borrowed = OwnedMove::borrowed(&owned);
    for attempt in 0..8 {
        if move_together(repo, &who, &borrowed)? {
            return Ok(());
        }
        let held = borrowed.iter().all(|m| target(repo, m.name).ok() == Some(m.expected));
        if !held {
            return Err(ref_moved(borrowed.iter().map(|m| m.name).next().unwrap_or("ref")));
        }
        pause(attempt);
    }
    Err(ref_moved(borrowed.iter().map(|m| m.name).next().unwrap_or("ref")))
}

/// Applies `moves` together: locks every ref, checks each holds its
/// expected value, then writes them. Answers `Ok(false)`, changing nothing,
/// when a ref is locked by someone else or no longer holds its expected value.
pub(crate) fn move_together(
    repo: &Repository,
    who: &git2::Signature<'_>,
    moves: &[RefMove<'_>],
) -> Result<bool, Error> {
    let mut tx = repo.transaction().or_internal()?;
    for m in moves {
        match tx.lock_ref(m.name) {
            Ok(()) => {}
            Err(e) if e.code() == git2::ErrorCode::Locked => {
                wait_for_lock(repo, m.name);
                return Ok(false);
            }
            Err(e) => return Err(internal(e)),
        }
    }
    for m in moves {
        if target(repo, m.name)? != m.expected {
            return Ok(false);
        }
    }
    for m in moves {
        match m.new {
            _ if m.new == m.expected => {}
            Some(new) => tx.set_target(m.name, new, Some(who), REFLOG).or_internal()?,
            None => tx.remove(m.name).or_internal()?,
        }
    }
    tx.commit().or_internal()?;
    Ok(true)
}
