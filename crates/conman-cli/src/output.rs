//! Output: JSON for scripts (`--json`, the same wire types as the HTTP API)
//! or short human lines; errors as the SPEC §7 code and message on stderr,
//! with exit codes by error class; a spinner for waits and ANSI colours,
//! both only on a terminal.

use conman_core::{Error, ErrorCode};
use serde::Serialize;

/// How to print.
pub(crate) struct Output {
    pub(crate) json: bool,
}

impl Output {
    /// Prints `value` as JSON, or the human text from `human`.
    pub(crate) fn show<T: Serialize>(&self, value: &T, human: impl FnOnce(&T) -> String) {
        let text = if self.json {
            serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into())
        } else {
            human(value)
        };
        if !text.is_empty() {
            use std::io::Write as _;
            // A closed pipe (`conman ... | head`) is not an error.
            let _ = writeln!(std::io::stdout().lock(), "{text}");
        }
    }
}

/// Whether to colour stdout: it is a terminal, `--no-color` was not given
/// and `NO_COLOR` is unset or empty (<https://no-color.org>).
pub(crate) fn colors_on_stdout(no_color: bool) -> bool {
    use std::io::IsTerminal as _;
    !no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// A one-line spinner on stderr while waiting, drawn only when stderr is a
/// terminal (scripts and pipes see nothing).
pub(crate) struct Spinner {
    terminal: bool,
    frame: usize,
    shown: bool,
}

impl Spinner {
    const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

    /// A spinner that draws if stderr is a terminal.
    pub(crate) fn on_terminal() -> Self {
        use std::io::IsTerminal as _;
        Spinner { terminal: std::io::stderr().is_terminal(), frame: 0, shown: false }
    }

    /// Draws the next frame with `label`.
    pub(crate) fn tick(&mut self, label: &str) {
        if self.terminal {
            let frame = Self::FRAMES[self.frame % Self::FRAMES.len()];
            eprint!("\r{frame} {label}\x1b[K");
            self.frame += 1;
            self.shown = true;
        }
    }

    /// Erases the line, before other output or when done.
    pub(crate) fn clear(&mut self) {
        if self.shown {
            eprint!("\r\x1b[K");
            self.shown = false;
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.clear();
    }
}

/// A core error carried through anyhow.
#[derive(Debug)]
pub(crate) struct CoreError(pub(crate) Error);

impl std::fmt::Display for CoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0.code().as_str(), self.0)?;
        if let Some(d) = self.0.details() {
            write!(f, " {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CoreError {}

/// Converts core results for `?` in commands.
pub(crate) trait CoreResult<T> {
    fn core(self) -> anyhow::Result<T>;
}

impl<T> CoreResult<T> for Result<T, Error> {
    fn core(self) -> anyhow::Result<T> {
        self.map_err(|e| anyhow::Error::new(CoreError(e)))
    }
}

/// Prints the error and returns the exit code: 2 bad input, 3 auth,
/// 4 not found, 5 conflict, 1 anything else.
pub(crate) fn report_error(e: &anyhow::Error) -> i32 {
    eprintln!("error: {e:#}");
    match e.downcast_ref::<CoreError>().map(|c| c.0.code()) {
        Some(ErrorCode::Validation | ErrorCode::PayloadTooLarge) => 2,
        Some(ErrorCode::Unauthorized | ErrorCode::Forbidden | ErrorCode::RateLimited) => 3,
        Some(ErrorCode::NotFound) => 4,
        Some(ErrorCode::Conflict | ErrorCode::InvalidTransition) => 5,
        _ => 1,
    }
}
