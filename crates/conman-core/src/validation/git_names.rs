//! Path segments as git and the filesystems it protects against see them
//! (git's `verify_path`, `is_hfs_dotgit`, `is_ntfs_dotgit`).
//!
//! Invariants: [`is_git_reserved`] is true for every spelling of `.git` that
//! git itself refuses in a tree — any ASCII case, HFS+-ignorable code points
//! anywhere, NTFS trailing dots and spaces or an alternate data stream
//! (`.git::$INDEX_ALLOCATION`), and the NTFS 8.3 short name `git~1` — so a
//! repository Conman writes never makes `git fsck` warn `hasDotgit`.
//! [`fold_git_special`] is the one spelling those filesystems treat a
//! segment as, used to match git-special names case-insensitively.

/// Code points HFS+ ignores when it compares names (git's `next_hfs_char`).
const HFS_IGNORABLE: [char; 16] = [
    '\u{200c}', '\u{200d}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}',
    '\u{206a}', '\u{206b}', '\u{206c}', '\u{206d}', '\u{206e}', '\u{206f}', '\u{feff}',
];

/// `segment` as HFS+ and NTFS treat it: HFS+-ignorable code points removed,
/// ASCII letters lowercased, an NTFS alternate data stream (`:...`) and
/// trailing dots and spaces dropped. `.GIT. ` and `.g\u{200c}it` both fold
/// to `.git`; an ordinary name folds to its lowercase self.
pub fn fold_git_special(segment: &str) -> String {
    let mut folded: String =
        segment.chars().filter(|c| !HFS_IGNORABLE.contains(c)).map(|c| c.to_ascii_lowercase()).collect();
    if let Some(stream) = folded.find(':') {
        folded.truncate(stream);
    }
    let kept = folded.trim_end_matches(['.', ' ']).len();
    // A name of dots and spaces only stays as it is ("." and ".." are
    // refused by `RepoPath` on their own terms).
    if kept > 0 {
        folded.truncate(kept);
    }
    folded
}

/// True when git refuses `segment` as a path component: it names the
/// repository's own `.git` on some filesystem git protects.
pub fn is_git_reserved(segment: &str) -> bool {
    matches!(fold_git_special(segment).as_str(), ".git" | "git~1")
}

/// True when `segment` names one of git's special files or directories
/// (`.git`, `.gitignore`, `.github`, `.gitattributes`, ...) in some spelling.
pub(crate) fn is_git_special(segment: &str) -> bool {
    is_git_reserved(segment) || fold_git_special(segment).starts_with(".git")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_spelling_git_refuses_is_reserved() {
        for segment in [
            ".git",
            ".GIT",
            ".Git",
            ".git.",
            ".git ",
            ".git. . ",
            ".git::$INDEX_ALLOCATION",
            ".g\u{200c}it",
            ".git\u{200c}",
            "\u{feff}.git",
            ".gi\u{206f}T",
            "git~1",
            "GIT~1",
            "git~1.",
        ] {
            assert!(is_git_reserved(segment), "{segment:?} must be reserved");
        }
    }

    #[test]
    fn near_misses_are_not_reserved() {
        for segment in [".gitignore", ".github", "git", ".gi", "git~2", "x.git", ".git-x", ".gitx", "..", "."] {
            assert!(!is_git_reserved(segment), "{segment:?} must not be reserved");
        }
    }

    #[test]
    fn git_special_names_fold_to_their_lowercase_spelling() {
        assert_eq!(fold_git_special(".GITHUB"), ".github");
        assert_eq!(fold_git_special(".GitIgnore. "), ".gitignore");
        assert_eq!(fold_git_special(".git\u{200d}ignore"), ".gitignore");
        assert!(is_git_special(".GITATTRIBUTES"));
        assert!(!is_git_special("github"));
        assert_eq!(fold_git_special("Config.YAML"), "config.yaml");
    }

    proptest! {
        /// Inserting HFS+-ignorable code points or changing ASCII case never
        /// hides `.git` from the check.
        #[test]
        fn ignorables_and_case_never_hide_dotgit(
            upper in proptest::collection::vec(any::<bool>(), 4),
            inserts in proptest::collection::vec((0usize..5, 0usize..HFS_IGNORABLE.len()), 0..4),
            trailing in "[. ]{0,3}",
        ) {
            let mut chars: Vec<char> = ".git".chars().zip(&upper)
                .map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c })
                .collect();
            for (at, which) in inserts {
                chars.insert(at.min(chars.len()), HFS_IGNORABLE[which]);
            }
            let segment: String = chars.into_iter().collect::<String>() + &trailing;
            prop_assert!(is_git_reserved(&segment), "{:?}", segment);
        }
    }
}
