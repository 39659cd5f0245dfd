//! Diffs of changesets beyond git's own: the semantic (key-level) diff of
//! YAML, JSON and TOML files. Pure: it works on the contents the git port
//! hands over and never fails — a file that does not parse is reported at
//! file level with a note.
//!
//! Invariants: only the types of `semantic`, [`semantic_diff`] and the
//! [`ParseLimits`] every parse of user content runs within are public;
//! the helpers (`path` spelling, `parse` into JSON trees, `tree` walk and
//! move pairing, `lines` index) are private and free of I/O.

mod budget;
mod lines;
mod parse;
mod path;
mod semantic;
mod tree;

#[cfg(test)]
mod tests;

pub use budget::ParseLimits;
pub use semantic::*;
