//! Diffs of changesets beyond git's own: the semantic (key-level) diff of
//! YAML, JSON and TOML files. Pure: it works on the contents the git port
//! hands over and never fails — a file that does not parse is reported at
//! file level with a note.

mod semantic;

pub use semantic::*;
