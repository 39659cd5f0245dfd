//! The secret mask of job logs (docs/decisions/0013-job-log-secrets.md):
//! [`MaskedLog`], the [`LogSink`] every job handler writes through, and
//! [`Conman::job_secret_mask`], the values it hides.
//!
//! Invariants:
//! - every line a handler produces — command output and Conman's own notes,
//!   of every job type — passes through a [`MaskedLog`] before it reaches
//!   the worker's sink, so it is masked before it is stored or streamed;
//! - the app-wide mask holds every stored revision of every secret of every
//!   runtime profile of the job's app, read when the attempt starts; a
//!   handler that hands a process more values (a gate's changeset
//!   overrides, a value set after the attempt started) wraps its own sink
//!   in a second [`MaskedLog`] of exactly those values;
//! - each stream keeps the (unmasked) end of its previous line, so a value
//!   split across a line break is masked on both sides.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::secrets_key::secret_binding;
use super::Conman;
use crate::domain::job::LogStream;
use crate::domain::log_mask::SecretMask;
use crate::error::Error;
use crate::ids::AppId;
use crate::ports::runner::LogSink;
use crate::ports::store::{collect_pages, SecretOwner};

/// A sink that masks secret values before passing lines on.
pub(crate) struct MaskedLog<'a> {
    inner: &'a dyn LogSink,
    mask: SecretMask,
    /// The unmasked end of each stream's previous line.
    previous: Mutex<HashMap<LogStream, Vec<u8>>>,
}

impl<'a> MaskedLog<'a> {
    /// Masks `mask`'s values in every line sent on to `inner`.
    pub(crate) fn new(inner: &'a dyn LogSink, mask: SecretMask) -> Self {
        MaskedLog { inner, mask, previous: Mutex::new(HashMap::new()) }
    }
}

#[async_trait]
impl LogSink for MaskedLog<'_> {
    async fn line(&self, stream: LogStream, text: String) {
        if self.mask.is_empty() {
            return self.inner.line(stream, text).await;
        }
        let masked = {
            let mut previous = self.previous.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let before = previous.entry(stream).or_default();
            let masked = self.mask.mask_line(before, &text);
            let keep = self.mask.carry_len().min(text.len());
            before.clear();
            before.extend_from_slice(&text.as_bytes()[text.len() - keep..]);
            masked
        };
        self.inner.line(stream, masked).await;
    }
}

impl Conman {
    /// The mask of every secret value a job of `app_id` could print: every
    /// stored revision of every secret of the app's runtime profiles.
    pub(super) async fn job_secret_mask(&self, app_id: AppId) -> Result<SecretMask, Error> {
        let profiles = collect_pages(|page| self.store().list_runtime_profiles(app_id, page)).await?;
        let mut sealed = Vec::new();
        for profile in profiles.iter().filter(|p| !p.secrets.is_empty()) {
            sealed.extend(self.store().secrets_of(SecretOwner::Profile(profile.id)).await?);
        }
        if sealed.is_empty() {
            return Ok(SecretMask::none());
        }
        let cipher = self.cipher()?;
        let values =
            sealed.iter().map(|s| cipher.open(&s.sealed, &secret_binding(s))).collect::<Result<Vec<_>, _>>()?;
        SecretMask::new(values.iter().map(|v| v.expose()))
    }
}
