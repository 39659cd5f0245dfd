//! The secrets master key: the start-up check and rotation (SPEC §2.6).
//!
//! Invariants:
//! - the store records the key id of the master key every sealed value is
//!   wrapped with; a process whose key has another id refuses to start
//!   (`check_master_key`) rather than serve undecryptable secrets;
//! - rotation re-wraps every data key from the current master key to the new
//!   one and moves the recorded key id, all in one unit of work: either
//!   every secret is under the new key or none is; the value ciphertexts are
//!   untouched;
//! - [`secret_binding`] is the one place that says what a sealed value is
//!   bound to.

use std::sync::Arc;

use serde::Serialize;

use super::{Actor, AuditWhat, Conman};
use crate::error::Error;
use crate::ids::{AppId, RuntimeProfileId};
use crate::ports::crypto::{check_master_key, SecretBinding, SecretCipher};
use crate::ports::store::{ProfileMutation, SecretOwner, StoredSecret, UnitOfWork};

/// Sealed values read per page during a rotation.
const ROTATION_PAGE: u32 = 1000;

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RotationReport {
    /// Sealed values re-wrapped.
    pub rewrapped: u64,
    /// Key id before.
    pub from_key_id: String,
    /// Key id after.
    pub to_key_id: String,
}

/// What a stored value is bound to: its app, its owner and its key name.
pub fn secret_binding(stored: &StoredSecret) -> SecretBinding {
    binding_of(stored.app_id, stored.owner, &stored.name)
}

/// The binding of secret `name` of `owner` in `app_id`. A changeset's
/// override secrets are bound with the changeset's id in the profile-id
/// slot (ids are UUIDv7, unique across kinds).
pub(super) fn binding_of(app_id: AppId, owner: SecretOwner, name: &str) -> SecretBinding {
    let owner = match owner {
        SecretOwner::Profile(id) => id,
        SecretOwner::Changeset(id) => RuntimeProfileId(id.0),
    };
    SecretBinding::new(app_id, owner, name)
}

impl Conman {
    /// Start-up: refuses a master key other than the one the stored secrets
    /// are wrapped with, and records the key id on a fresh installation.
    pub async fn ensure_secrets_key(&self) -> Result<(), Error> {
        let cipher = self.cipher()?;
        let stored = self.store().secrets_key_id().await?;
        check_master_key(cipher.as_ref(), stored.as_deref())?;
        if stored.is_none() {
            let audit = self.audit_entry(
                None,
                None,
                AuditWhat::new("installation", "secrets", "secrets.key_recorded")
                    .after(serde_json::json!({ "key_id": cipher.key_id() })),
            );
            let unit = UnitOfWork::new()
                .record(ProfileMutation::SetSecretsKeyId { expected: None, key_id: cipher.key_id().to_owned() }, audit);
            if let Err(e) = self.store().commit(unit).await {
                // Another process starting at the same time recorded its
                // key first: ours must be the same one.
                let recorded = self.store().secrets_key_id().await?;
                if recorded.is_none() {
                    return Err(e);
                }
                check_master_key(cipher.as_ref(), recorded.as_deref())?;
            }
        }
        Ok(())
    }

    /// Re-wraps every sealed value under `new` in one unit (operators),
    /// then makes `new` this process's cipher. Values another process
    /// sealed with the old key while the rotation ran are re-wrapped in
    /// follow-up units. Other processes must restart with the new key.
    pub async fn rotate_master_key(&self, actor: &Actor, new: Arc<dyn SecretCipher>) -> Result<RotationReport, Error> {
        actor.require_operator()?;
        let cipher = self.cipher()?;
        let stored = self.store().secrets_key_id().await?;
        check_master_key(cipher.as_ref(), stored.as_deref())?;
        if new.key_id() == cipher.key_id() {
            return Err(Error::invalid("key", "same_key", "the new master key is the current one"));
        }
        let from_key_id = cipher.key_id().to_owned();
        let rewrapped = self.rewrapped_secrets(cipher.as_ref(), new.as_ref(), &from_key_id).await?;
        let mut report =
            RotationReport { rewrapped: rewrapped.len() as u64, from_key_id, to_key_id: new.key_id().to_owned() };
        let audit = self.audit_entry(
            Some(actor),
            None,
            AuditWhat::new("installation", "secrets", "secrets.master_key_rotated").after(&report),
        );
        let unit = UnitOfWork::new().record_all(
            [
                ProfileMutation::RewrapSecrets { from_key_id: report.from_key_id.clone(), secrets: rewrapped },
                ProfileMutation::SetSecretsKeyId { expected: stored, key_id: report.to_key_id.clone() },
            ],
            audit,
        );
        self.store().commit(unit).await?;
        self.set_cipher(Arc::clone(&new));
        for _ in 0..3 {
            let late = self.rewrapped_secrets(cipher.as_ref(), new.as_ref(), &report.from_key_id).await?;
            if late.is_empty() {
                break;
            }
            report.rewrapped += late.len() as u64;
            // Audited like the rotation itself: which key, which secrets.
            let audit = self.audit_entry(
                Some(actor),
                None,
                AuditWhat::new("installation", "secrets", "secrets.late_values_rewrapped").after(serde_json::json!({
                    "from_key_id": report.from_key_id,
                    "to_key_id": report.to_key_id,
                    "secrets": late.iter().map(|s| serde_json::json!({
                        "owner": s.owner, "name": s.name, "revision": s.revision
                    })).collect::<Vec<_>>(),
                })),
            );
            let unit = UnitOfWork::new().record(
                ProfileMutation::RewrapSecrets { from_key_id: report.from_key_id.clone(), secrets: late },
                audit,
            );
            self.store().commit(unit).await?;
        }
        Ok(report)
    }

    /// Every sealed value still wrapped by `from_key_id`, re-wrapped from
    /// `old` to `new`.
    async fn rewrapped_secrets(
        &self,
        old: &dyn SecretCipher,
        new: &dyn SecretCipher,
        from_key_id: &str,
    ) -> Result<Vec<StoredSecret>, Error> {
        let mut rewrapped = Vec::new();
        let mut after = None;
        loop {
            let page = self.store().all_secrets(after.clone(), ROTATION_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some((last.owner, last.name.clone(), last.revision));
            for stored in page.into_iter().filter(|s| s.sealed.key_id == from_key_id) {
                let sealed = old.rewrap(&stored.sealed, &secret_binding(&stored), new)?;
                rewrapped.push(StoredSecret { sealed, ..stored });
            }
        }
        Ok(rewrapped)
    }
}
