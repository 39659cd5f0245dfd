//! Input validation: every value that crosses into the core from a caller is
//! turned into a type that is valid by construction (a [`RepoPath`], an
//! [`Email`], ...), so nothing downstream checks it again.

mod blocked;
mod email;
mod git_names;
mod names;
mod password;
mod path;

pub use blocked::{BlockedPaths, GlobList};
pub use email::Email;
pub use git_names::{fold_git_special, is_git_reserved};
pub use names::{validate_app_name, validate_branch_name, validate_display_name, validate_title, Handle, Slug};
pub use password::{validate_password, MIN_PASSWORD_LEN};
pub use path::{RepoPath, MAX_PATH_BYTES};

/// Default limit on a single file's content (SPEC §2.1: 5 MiB).
pub const DEFAULT_FILE_SIZE_LIMIT: u64 = 5 * 1024 * 1024;

/// Maximum number of operations in one batch of file changes.
pub const MAX_BATCH_OPS: usize = 1000;
