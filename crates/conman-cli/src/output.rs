//! Output: JSON for scripts (`--json`, the same wire types as the HTTP API)
//! or short human lines; errors as the SPEC §7 code and message on stderr,
//! with exit codes by error class; spinners and step bars for waits
//! (indicatif) and ANSI colours, all only on a terminal.

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

/// A one-line spinner on stderr while waiting (indicatif), drawn only when
/// stderr is a terminal: scripts and pipes see nothing.
pub(crate) struct Spinner {
    bar: Option<indicatif::ProgressBar>,
}

impl Spinner {
    /// A spinner that draws if stderr is a terminal.
    pub(crate) fn on_terminal() -> Self {
        Spinner { bar: None }
    }

    /// Shows `label` beside the spinning frame (steady ticks while shown).
    pub(crate) fn tick(&mut self, label: &str) {
        let bar = self.bar.get_or_insert_with(|| {
            let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed:.dim}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(100));
            bar
        });
        bar.set_message(label.to_owned());
    }

    /// Erases the line, before other output or when done.
    pub(crate) fn clear(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.clear();
    }
}

/// A bar of `done / total` steps on stderr (indicatif), drawn only when
/// stderr is a terminal.
pub(crate) struct Steps {
    bar: indicatif::ProgressBar,
}

impl Steps {
    /// A bar of `total` steps named `label`.
    pub(crate) fn new(total: u64, label: &str) -> Self {
        let bar = indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} [{bar:24}] {pos}/{len} {elapsed:.dim}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(label.to_owned());
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
        Steps { bar }
    }

    /// Sets how many steps are done (and the total, which may grow).
    pub(crate) fn set(&self, done: u64, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(done);
    }
}

impl Drop for Steps {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
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
