//! The store port: reads by aggregate, and one atomic write path.
//!
//! Writes go through [`Store::commit`] as a [`UnitOfWork`]: a list of
//! [`Mutation`]s plus the audit entries describing them. A store applies a
//! unit in one transaction: all mutations and all audit records, or none.
//! Audit records are appended to one global hash chain (see
//! [`crate::domain::audit::chain_hash`]) in the same transaction.
//!
//! Optimistic concurrency: `Update*` mutations carry the new value whose
//! `version` is the stored version + 1; the store refuses with `conflict`
//! when the stored version is not `version - 1`. Unique-key violations
//! (email, handle, app name, branch) are `conflict` too. Lookups of
//! app-owned entities always take the app id: an id from another app is
//! simply not found.
//!
//! Further rules every store keeps (pinned by the conformance suite):
//! updating, revoking or marking delivered an id that does not exist is
//! `not_found`; revoking a credential or delivering a message twice keeps
//! the first time; `PutMembership` replaces the whole row; "newest first"
//! for audit means descending chain position; `until` is exclusive; a unit
//! holding only audit entries is valid; at most one open (neither released
//! nor rejected) changeset per workspace — inserting or updating into a
//! second is `conflict`; `PutReview` replaces the vote of the same
//! (changeset, revision, reviewer); runtime profile names are unique per
//! app and environment names per app (`conflict`); sealed secrets are never
//! deleted — `RewrapSecrets` replaces a row's sealed value only while it is
//! still wrapped by the expected master key.

use async_trait::async_trait;

use crate::domain::app::App;
use crate::domain::audit::{AuditEntry, AuditRecord};
use crate::domain::changeset::{Changeset, ChangesetRevision, ChangesetState};
use crate::domain::comment::Comment;
use crate::domain::environment::Environment;
use crate::domain::invite::Invite;
use crate::domain::job::{Job, JobLogLine, JobState, JobType, NewLogLine};
use crate::domain::membership::Membership;
use crate::domain::outbox::OutboxMessage;
use crate::domain::review::Review;
use crate::domain::runtime_profile::overrides::ProfileOverride;
use crate::domain::runtime_profile::revision::ProfileRevision;
use crate::domain::runtime_profile::RuntimeProfile;
use crate::domain::user::{Credential, PasswordReset, User};
use crate::domain::workspace::Workspace;
use crate::domain::Timestamp;
use crate::error::Error;
use crate::ids::{
    AppId, ChangesetId, CommentId, CredentialId, InviteId, JobId, OutboxMessageId, PasswordResetId, RuntimeProfileId,
    UserId, WorkspaceId,
};
use crate::validation::Email;

/// A page request: `page` from 1, `limit` 1..=100 (SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Page number, from 1.
    pub page: u32,
    /// Items per page.
    pub limit: u32,
}

impl PageRequest {
    /// Largest page size.
    pub const MAX_LIMIT: u32 = 100;

    /// Validates caller input; absent values take the defaults (1, 20).
    pub fn new(page: Option<u32>, limit: Option<u32>) -> Result<Self, Error> {
        let page = page.unwrap_or(1);
        let limit = limit.unwrap_or(20);
        if page == 0 || page > 1_000_000 {
            return Err(Error::invalid("page", "out_of_range", "page must be 1 or more"));
        }
        if limit == 0 || limit > Self::MAX_LIMIT {
            return Err(Error::invalid("limit", "out_of_range", "limit must be 1-100"));
        }
        Ok(PageRequest { page, limit })
    }

    /// Rows to skip.
    pub fn offset(&self) -> u64 {
        u64::from(self.page.saturating_sub(1)) * u64::from(self.limit)
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest { page: 1, limit: 20 }
    }
}

/// One page of results and the total count.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// Items of this page.
    pub items: Vec<T>,
    /// Total number of items across pages.
    pub total: u64,
}

impl<T> Page<T> {
    /// Maps the items, keeping the total.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), total: self.total }
    }
}

/// A member with their user record, for listings.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberRecord {
    /// The membership.
    pub membership: Membership,
    /// The user.
    pub user: User,
}

/// Filter of the audit query (SPEC §2.9, §7).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    /// Only this app's events.
    pub app_id: Option<AppId>,
    /// Only this entity type.
    pub entity_type: Option<String>,
    /// Only this entity id.
    pub entity_id: Option<String>,
    /// Only this actor.
    pub actor_id: Option<UserId>,
    /// At or after.
    pub since: Option<Timestamp>,
    /// Before.
    pub until: Option<Timestamp>,
}

/// Filter of the job listing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobFilter {
    /// Only this type.
    pub job_type: Option<JobType>,
    /// Only this state.
    pub state: Option<JobState>,
}

/// Filter of the changeset listing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangesetFilter {
    /// Only this state.
    pub state: Option<ChangesetState>,
    /// Only this author.
    pub author_id: Option<UserId>,
}

/// Who a sealed secret value belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum SecretOwner {
    /// A runtime profile's secret.
    Profile(RuntimeProfileId),
    /// A secret override carried by a changeset.
    Changeset(ChangesetId),
}

/// One sealed secret value: the value `name` had from `revision` of its
/// owner on (profiles) or the value a changeset override sets.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSecret {
    /// The app.
    pub app_id: AppId,
    /// Whose secret.
    pub owner: SecretOwner,
    /// Key name.
    pub name: String,
    /// The owner's revision that set this value (1 for changeset overrides,
    /// which are replaced whole).
    pub revision: u32,
    /// The sealed value (see `ports::crypto`).
    pub sealed: crate::ports::crypto::SealedSecret,
    /// When it was sealed.
    pub created_at: Timestamp,
}

/// A worker's request for the next job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobClaim {
    /// The worker's id (unique per process and slot).
    pub worker: String,
    /// Now, by the core's clock.
    pub now: Timestamp,
    /// The lease expiry to set.
    pub lease_until: Timestamp,
    /// Only these types (`None`: any).
    pub types: Option<Vec<JobType>>,
    /// `Some(limit_bytes)`: the claim also opens the attempt's log, in the
    /// same write, with the line [`attempt_opening_line`] of the claimed
    /// job's new attempt count (stream `system`, stamped `now`), appended as
    /// [`JobStore::append_job_log`] would with this bound. `None`: the claim
    /// writes no log line.
    ///
    /// [`attempt_opening_line`]: crate::domain::job::attempt_opening_line
    pub opening_line_limit_bytes: Option<u64>,
}

/// A page of a job's log.
#[derive(Debug, Clone, PartialEq)]
pub struct JobLogPage {
    /// Lines with `seq > after`, in order.
    pub lines: Vec<JobLogLine>,
    /// Older lines were dropped to keep the log within its bound.
    pub truncated: bool,
}

/// How a running job ends its attempt (see [`Mutation::FinishJob`]).
#[derive(Debug, Clone, PartialEq)]
pub struct JobFinish {
    /// The job.
    pub id: JobId,
    /// The worker that must still hold the lease.
    pub worker: String,
    /// `succeeded`, `failed`, `canceled`, or `queued` (retry after `run_after`).
    pub state: JobState,
    /// Result payload.
    pub result: Option<serde_json::Value>,
    /// Error text.
    pub error: Option<String>,
    /// Next attempt not before (retries only).
    pub run_after: Option<Timestamp>,
    /// Terminal time (terminal states only).
    pub finished_at: Option<Timestamp>,
}

/// One change to the store.
#[derive(Debug, Clone, PartialEq)]
pub enum Mutation {
    /// Insert a user (email and handle unique).
    InsertUser(User),
    /// Update a user (CAS on version).
    UpdateUser(User),
    /// Insert a session or API token.
    InsertCredential(Credential),
    /// Revoke a credential (no-op if already revoked).
    RevokeCredential {
        /// Which.
        id: CredentialId,
        /// When.
        at: Timestamp,
    },
    /// Revoke every credential of a user (after a password reset).
    RevokeUserCredentials {
        /// Whose.
        user_id: UserId,
        /// When.
        at: Timestamp,
    },
    /// Insert a password-reset request.
    InsertPasswordReset(PasswordReset),
    /// Mark a reset used; `conflict` if it already was.
    UsePasswordReset {
        /// Which.
        id: PasswordResetId,
        /// When.
        at: Timestamp,
    },
    /// Insert an app (name unique).
    InsertApp(App),
    /// Update an app (CAS on version).
    UpdateApp(App),
    /// Insert or replace a membership.
    PutMembership(Membership),
    /// Remove a membership (`not_found` if absent).
    DeleteMembership {
        /// App.
        app_id: AppId,
        /// Member.
        user_id: UserId,
    },
    /// Insert an invite.
    InsertInvite(Invite),
    /// Update an invite (CAS on version).
    UpdateInvite(Invite),
    /// Insert a workspace (branch unique per app).
    InsertWorkspace(Workspace),
    /// Update a workspace (CAS on version).
    UpdateWorkspace(Workspace),
    /// Queue a message in the outbox.
    InsertOutbox(OutboxMessage),
    /// Enqueue a job.
    InsertJob(Job),
    /// End a running attempt: only while `worker` still holds the lease and
    /// the job is running (else `conflict`, changing nothing — so the effects
    /// committed in the same unit apply at most once). Clears the lease.
    FinishJob(JobFinish),
    /// Append lines to a job's log inside the unit, exactly as
    /// [`JobStore::append_job_log`] does on its own (the oldest lines dropped
    /// while the log exceeds `limit_bytes`, marked truncated; an unknown job
    /// is `not_found`). A worker ends an attempt with its last buffered lines
    /// and the `FinishJob` in one unit: one commit instead of two.
    AppendJobLog {
        /// Which job.
        id: JobId,
        /// The lines, in order.
        lines: Vec<NewLogLine>,
        /// The log's bound, bytes.
        limit_bytes: u64,
    },
    /// Cancel a queued job (`conflict` unless it is queued).
    CancelQueuedJob {
        /// Which.
        id: JobId,
        /// When.
        at: Timestamp,
    },
    /// Ask a running job to stop (`conflict` unless it is running).
    RequestJobCancel {
        /// Which.
        id: JobId,
    },
    /// Give a running job back to the queue without using up its attempt
    /// (graceful shutdown); only while `worker` holds the lease.
    ReleaseJob {
        /// Which.
        id: JobId,
        /// The worker holding it.
        worker: String,
    },
    /// Insert a changeset (`conflict` when its workspace already has an
    /// open one).
    InsertChangeset(Changeset),
    /// Update a changeset (CAS on version; `conflict` when it would reopen a
    /// second open changeset on its workspace).
    UpdateChangeset(Changeset),
    /// Insert a frozen revision (`conflict` if that number exists).
    InsertRevision(ChangesetRevision),
    /// Record a vote, replacing the same reviewer's vote on the same revision.
    PutReview(Review),
    /// Insert a comment.
    InsertComment(Comment),
    /// Update a comment (CAS on version).
    UpdateComment(Comment),
    /// Insert a runtime profile (name unique per app).
    InsertRuntimeProfile(RuntimeProfile),
    /// Update a runtime profile (CAS on version).
    UpdateRuntimeProfile(RuntimeProfile),
    /// Append a profile revision (`conflict` if that number exists).
    InsertProfileRevision(ProfileRevision),
    /// Insert a sealed secret (`conflict` if (owner, name, revision) exists).
    InsertSecret(StoredSecret),
    /// Delete every sealed secret of a changeset (its overrides are replaced).
    DeleteChangesetSecrets {
        /// The changeset.
        changeset_id: ChangesetId,
    },
    /// Replace the sealed values of existing secrets after a master-key
    /// rotation: each row (by owner, name, revision) must exist (`not_found`)
    /// and still be wrapped by `from_key_id` (`conflict` otherwise).
    RewrapSecrets {
        /// Key id the rows must carry now.
        from_key_id: String,
        /// The rewrapped rows.
        secrets: Vec<StoredSecret>,
    },
    /// Record the key id of the master key every secret is wrapped with,
    /// compare-and-set against `expected` (`conflict` on mismatch).
    SetSecretsKeyId {
        /// The key id stored now (`None`: none yet).
        expected: Option<String>,
        /// The new key id.
        key_id: String,
    },
    /// Replace an app's environment list (names unique; ids kept).
    ReplaceEnvironments {
        /// The app.
        app_id: AppId,
        /// The whole new list.
        environments: Vec<Environment>,
    },
    /// Replace a changeset's profile overrides.
    PutChangesetOverrides {
        /// The changeset.
        changeset_id: ChangesetId,
        /// The whole new list, in order.
        overrides: Vec<ProfileOverride>,
    },
    /// Mark an outbox message delivered.
    MarkOutboxDelivered {
        /// Which.
        id: OutboxMessageId,
        /// When.
        at: Timestamp,
    },
}

/// Mutations and their audit entries, applied atomically.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UnitOfWork {
    /// Changes, applied in order.
    pub mutations: Vec<Mutation>,
    /// Audit entries, appended to the chain in order.
    pub audit: Vec<AuditEntry>,
}

impl UnitOfWork {
    /// An empty unit.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a mutation.
    pub fn mutate(mut self, m: Mutation) -> Self {
        self.mutations.push(m);
        self
    }

    /// Adds an audit entry.
    pub fn audit(mut self, e: AuditEntry) -> Self {
        self.audit.push(e);
        self
    }
}

/// Users, credentials and password resets.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// A user by id.
    async fn user(&self, id: UserId) -> Result<Option<User>, Error>;
    /// A user by (normalised) email.
    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, Error>;
    /// A user by handle.
    async fn user_by_handle(&self, handle: &str) -> Result<Option<User>, Error>;
    /// All users, by email.
    async fn list_users(&self, page: PageRequest) -> Result<Page<User>, Error>;
    /// A credential by token hash (usable or not).
    async fn credential_by_hash(&self, token_hash: &str) -> Result<Option<Credential>, Error>;
    /// A user's credentials of every kind, newest first.
    async fn list_credentials(&self, user_id: UserId) -> Result<Vec<Credential>, Error>;
    /// A password reset by token hash.
    async fn password_reset_by_hash(&self, token_hash: &str) -> Result<Option<PasswordReset>, Error>;
}

/// Apps, memberships and invites.
#[async_trait]
pub trait AppStore: Send + Sync {
    /// An app by id.
    async fn app(&self, id: AppId) -> Result<Option<App>, Error>;
    /// An app by name.
    async fn app_by_name(&self, name: &str) -> Result<Option<App>, Error>;
    /// Apps `user_id` is a member of, by name.
    async fn list_apps_for_user(&self, user_id: UserId, page: PageRequest) -> Result<Page<App>, Error>;
    /// Every app, by name (for operators).
    async fn list_all_apps(&self, page: PageRequest) -> Result<Page<App>, Error>;
    /// A membership.
    async fn membership(&self, app_id: AppId, user_id: UserId) -> Result<Option<Membership>, Error>;
    /// Members of an app, by email.
    async fn list_members(&self, app_id: AppId, page: PageRequest) -> Result<Page<MemberRecord>, Error>;
    /// Every membership of a user.
    async fn memberships_of(&self, user_id: UserId) -> Result<Vec<Membership>, Error>;
    /// An invite of an app.
    async fn invite(&self, app_id: AppId, id: InviteId) -> Result<Option<Invite>, Error>;
    /// An invite by token hash.
    async fn invite_by_hash(&self, token_hash: &str) -> Result<Option<Invite>, Error>;
    /// Invites of an app, newest first.
    async fn list_invites(&self, app_id: AppId, page: PageRequest) -> Result<Page<Invite>, Error>;
}

/// Workspaces.
#[async_trait]
pub trait WorkspaceStore: Send + Sync {
    /// A workspace of an app.
    async fn workspace(&self, app_id: AppId, id: WorkspaceId) -> Result<Option<Workspace>, Error>;
    /// The owner's default workspace of an app.
    async fn default_workspace(&self, app_id: AppId, owner_id: UserId) -> Result<Option<Workspace>, Error>;
    /// A workspace by branch name.
    async fn workspace_by_branch(&self, app_id: AppId, branch: &str) -> Result<Option<Workspace>, Error>;
    /// Workspaces of an app, optionally of one owner, oldest first.
    async fn list_workspaces(
        &self,
        app_id: AppId,
        owner_id: Option<UserId>,
        page: PageRequest,
    ) -> Result<Page<Workspace>, Error>;
    /// Every workspace of every app (for crash reconciliation at start).
    async fn all_workspaces(&self) -> Result<Vec<Workspace>, Error>;
}

/// Changesets, their revisions, votes and comments.
#[async_trait]
pub trait ChangesetStore: Send + Sync {
    /// A changeset of an app.
    async fn changeset(&self, app_id: AppId, id: ChangesetId) -> Result<Option<Changeset>, Error>;
    /// Changesets of an app matching `filter`, newest first (creation time,
    /// then id, descending).
    async fn list_changesets(
        &self,
        app_id: AppId,
        filter: &ChangesetFilter,
        page: PageRequest,
    ) -> Result<Page<Changeset>, Error>;
    /// The open changeset of a workspace, if any.
    async fn open_changeset_of_workspace(&self, app_id: AppId, ws_id: WorkspaceId) -> Result<Option<Changeset>, Error>;
    /// Revisions of a changeset, by number.
    async fn changeset_revisions(&self, id: ChangesetId) -> Result<Vec<ChangesetRevision>, Error>;
    /// Every vote on a changeset, by revision then time.
    async fn changeset_reviews(&self, id: ChangesetId) -> Result<Vec<Review>, Error>;
    /// A comment of a changeset.
    async fn comment(&self, changeset_id: ChangesetId, id: CommentId) -> Result<Option<Comment>, Error>;
    /// Comments of a changeset, oldest first (creation time, then id).
    async fn list_comments(&self, changeset_id: ChangesetId, page: PageRequest) -> Result<Page<Comment>, Error>;
}

/// Runtime profiles, their revisions and sealed secrets, environments,
/// and changesets' profile overrides.
#[async_trait]
pub trait ProfileStore: Send + Sync {
    /// A runtime profile of an app.
    async fn runtime_profile(&self, app_id: AppId, id: RuntimeProfileId) -> Result<Option<RuntimeProfile>, Error>;
    /// A runtime profile by name.
    async fn runtime_profile_by_name(&self, app_id: AppId, name: &str) -> Result<Option<RuntimeProfile>, Error>;
    /// Runtime profiles of an app, by name.
    async fn list_runtime_profiles(&self, app_id: AppId, page: PageRequest) -> Result<Page<RuntimeProfile>, Error>;
    /// Revisions of a profile, newest (highest number) first.
    async fn profile_revisions(&self, id: RuntimeProfileId, page: PageRequest) -> Result<Page<ProfileRevision>, Error>;
    /// One revision of a profile.
    async fn profile_revision(&self, id: RuntimeProfileId, number: u32) -> Result<Option<ProfileRevision>, Error>;
    /// One sealed secret value.
    async fn secret(&self, owner: SecretOwner, name: &str, revision: u32) -> Result<Option<StoredSecret>, Error>;
    /// Every sealed value of an owner, by name then revision.
    async fn secrets_of(&self, owner: SecretOwner) -> Result<Vec<StoredSecret>, Error>;
    /// Up to `limit` sealed values of the whole installation after `after`,
    /// ordered by (owner kind as text — `changeset` before `profile` —,
    /// owner id, name, revision) — keyset paging for key rotation.
    async fn all_secrets(
        &self,
        after: Option<(SecretOwner, String, u32)>,
        limit: u32,
    ) -> Result<Vec<StoredSecret>, Error>;
    /// The key id recorded by `SetSecretsKeyId`, if any.
    async fn secrets_key_id(&self) -> Result<Option<String>, Error>;
    /// An app's environments, by position.
    async fn environments(&self, app_id: AppId) -> Result<Vec<Environment>, Error>;
    /// A changeset's profile overrides, in order.
    async fn changeset_overrides(&self, changeset_id: ChangesetId) -> Result<Vec<ProfileOverride>, Error>;
}

/// The audit log and the outbox.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Events matching `filter`, newest first.
    async fn list_audit(&self, filter: &AuditFilter, page: PageRequest) -> Result<Page<AuditRecord>, Error>;
    /// Up to `limit` records with `seq > after_seq`, in chain order.
    async fn audit_chain(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditRecord>, Error>;
    /// True when some audit record carries `git_sha`.
    async fn audit_has_sha(&self, app_id: AppId, git_sha: &str) -> Result<bool, Error>;
    /// Outbox messages, newest first.
    async fn list_outbox(&self, page: PageRequest) -> Result<Page<OutboxMessage>, Error>;
}

/// Jobs, their leases and logs (SPEC §6.2).
#[async_trait]
pub trait JobStore: Send + Sync {
    /// A job of an app.
    async fn job(&self, app_id: AppId, id: JobId) -> Result<Option<Job>, Error>;
    /// Jobs of an app, newest first.
    async fn list_jobs(&self, app_id: AppId, filter: &JobFilter, page: PageRequest) -> Result<Page<Job>, Error>;
    /// Atomically claims the oldest runnable job — queued with
    /// `run_after <= now`, or running with `lease_expires_at < now` (its
    /// worker died) — ordered by `run_after` then id. The claimed job is
    /// running, leased to `claim.worker` until `claim.lease_until`, its
    /// `attempts` + 1 and `started_at` set if unset, and its log opened as
    /// `claim.opening_line_limit_bytes` says. Two claimers never get the
    /// same job. `None` when nothing is runnable.
    async fn claim_job(&self, claim: &JobClaim) -> Result<Option<Job>, Error>;
    /// Extends the lease while `worker` holds it and the job runs; answers
    /// the job's cancel flag, or `None` when the lease is lost.
    async fn renew_job_lease(&self, id: JobId, worker: &str, until: Timestamp) -> Result<Option<bool>, Error>;
    /// Appends log lines, then drops the oldest lines while the job's log
    /// exceeds `limit_bytes` (sum of the lines' UTF-8 byte lengths), marking
    /// it truncated. An unknown job is `not_found`.
    async fn append_job_log(&self, id: JobId, lines: &[NewLogLine], limit_bytes: u64) -> Result<(), Error>;
    /// Up to `limit` lines with `seq > after` (an unknown job is `not_found`).
    async fn job_log(&self, id: JobId, after: i64, limit: u32) -> Result<JobLogPage, Error>;
    /// Count of jobs per (type, state), for metrics; zero rows omitted.
    async fn job_counts(&self) -> Result<Vec<(JobType, JobState, u64)>, Error>;
}

/// The whole store: every aggregate's reads plus the atomic write path.
#[async_trait]
pub trait Store: UserStore + AppStore + WorkspaceStore + ChangesetStore + ProfileStore + AuditStore + JobStore {
    /// Applies `unit` atomically (see the module docs).
    async fn commit(&self, unit: UnitOfWork) -> Result<(), Error>;
}
