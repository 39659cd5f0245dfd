//! Copying a whole installation's metadata from one store into another
//! (`conman migrate --from sqlite://... --to postgres://...`), the audit
//! chain included, then proving the copy.
//!
//! Invariant: [`copy_store`] calls only [`Store`] port methods, so it copies
//! between any two stores; it writes nothing unless the target holds no
//! user, no app and no audit record; it refuses a source whose audit chain
//! is broken *before* writing anything (re-chaining it would hide the
//! tampering); and it succeeds only when the target's chain verifies and
//! ends at the source's head hash after the same number of records.
//!
//! The source must be quiescent (no server or worker running on it): pages
//! are read by offset. Rows are copied as they are — versions, timestamps,
//! revoked credentials, accepted invites, delivered messages, and running
//! jobs with their leases (the leases expire and workers reclaim the jobs).
//! The audit entries are appended again in chain order onto the empty
//! target chain, so the target recomputes exactly the source's hashes.
//! Job logs keep their line numbers and truncation mark (see
//! [`copy_job_log`]). Password-reset requests are not listed by the port
//! and are not copied; they expire within an hour anyway.
//!
//! Pending ref intents (decision 0008) are copied, so the new installation's
//! first start settles them; completed ones and the store's memory of each
//! ref's last value are not (history and a cache of git: an unknown value is
//! learnt again at the ref's next move).
//!
//! Git repositories and the master key live in the data directory, not in
//! the store: the new installation uses the same data directory.

use serde::Serialize;

use crate::domain::audit::{verify_segment, AuditRecord, GENESIS_HASH};
use crate::domain::job::{JobState, LogAppend, LogStream, NewLogLine};
use crate::domain::Timestamp;
use crate::error::Error;
use crate::ids::{AppId, ChangesetId, JobId};
use crate::ports::store::{
    AppMutation, ChangesetFilter, ChangesetMutation, IntentMutation, JobFilter, JobMutation, Mutation, OutboxMutation,
    Page, PageRequest, ProfileMutation, SecretOwner, Unaudited, UnitOfWork, UserMutation, WorkspaceMutation,
};
use crate::ports::Store;

/// Rows per unit of work (and per page read).
const UNIT_ROWS: usize = PageRequest::MAX_LIMIT as usize;
/// Audit records per unit of work.
const AUDIT_UNIT: u32 = 500;
/// Job log lines per read and append.
const LOG_PAGE: u32 = 1000;
/// Placeholder lines per append when re-creating a truncated log's gap.
const GAP_CHUNK: i64 = 10_000;

/// What [`copy_store`] copied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CopyReport {
    /// Users.
    pub users: u64,
    /// Sessions and API tokens (revoked ones too).
    pub credentials: u64,
    /// Apps.
    pub apps: u64,
    /// Memberships.
    pub memberships: u64,
    /// Invites (every state).
    pub invites: u64,
    /// Workspaces.
    pub workspaces: u64,
    /// Outbox messages (delivered ones too).
    pub outbox: u64,
    /// Changesets (every state).
    pub changesets: u64,
    /// Their frozen revisions.
    pub revisions: u64,
    /// Their review votes.
    pub reviews: u64,
    /// Their comments (with edit history).
    pub comments: u64,
    /// Runtime profiles.
    pub runtime_profiles: u64,
    /// Their revisions.
    pub profile_revisions: u64,
    /// Sealed secret values (copied sealed: the same master key opens them).
    pub secrets: u64,
    /// Environments.
    pub environments: u64,
    /// Changeset profile-override lists.
    pub changeset_overrides: u64,
    /// Jobs (every state).
    pub jobs: u64,
    /// Of those, jobs that were running: their leases expire and a worker
    /// of the new installation reclaims them.
    pub running_jobs: u64,
    /// Job log lines.
    pub job_log_lines: u64,
    /// Pending ref intents (settled at the new installation's first start).
    pub pending_intents: u64,
    /// Audit records, verified on the target.
    pub audit_records: u64,
    /// Hash of the last audit record, the same on both stores.
    pub audit_head: String,
    /// What was deliberately not copied, and why.
    pub not_copied: Vec<String>,
}

/// Copies every user, credential, app, membership, invite, workspace,
/// outbox message, runtime profile (with its revisions and sealed secrets),
/// environment, job (with its log), changeset (with its revisions, votes,
/// comments and profile overrides) and audit record of `from` into the
/// empty store `to`, then verifies the target's audit chain against the
/// source's. `progress` is told each stage's running count after every unit.
///
/// A failure part-way leaves the target partly filled: copy again into a new,
/// empty database.
pub async fn copy_store(
    from: &dyn Store,
    to: &dyn Store,
    progress: &mut dyn FnMut(&str, u64),
) -> Result<CopyReport, Error> {
    ensure_empty(to).await?;
    // Before any write: a broken source chain is refused, not re-chained.
    let (source_records, source_head) =
        walk_chain(from, "checked audit records", progress).await.map_err(|e| match e {
            ChainError::Store(e) => e,
            ChainError::Broken { seq, reason } => refuse(
                "source_chain_broken",
                format!("the source audit chain is broken at event {seq} ({reason}); nothing was copied"),
            ),
        })?;

    let mut report = CopyReport::default();
    let apps = copy_users_and_apps(from, to, &mut report, progress).await?;
    for &app in &apps {
        copy_members_and_invites(from, to, app, &mut report, progress).await?;
    }
    copy_workspaces_and_outbox(from, to, &mut report, progress).await?;
    let rows =
        from.pending_intents(None).await?.into_iter().map(IntentMutation::RecordIntent).map(Mutation::from).collect();
    commit_rows(to, rows, "pending ref intents", &mut report.pending_intents, progress).await?;
    copy_secrets_key_id(from, to).await?;
    for &app in &apps {
        copy_profiles(from, to, app, &mut report, progress).await?;
        copy_jobs(from, to, app, &mut report, progress).await?;
        copy_changesets(from, to, app, &mut report, progress).await?;
    }
    report.audit_records = copy_audit(from, to, source_records, progress).await?;

    let (records, head) = walk_chain(to, "verified audit records", progress).await.map_err(|e| match e {
        ChainError::Store(e) => e,
        ChainError::Broken { seq, reason } => {
            Error::internal(format!("the copied audit chain is broken at event {seq}: {reason}"))
        }
    })?;
    if records != source_records || head != source_head {
        return Err(Error::internal(format!(
            "the copied audit chain differs from the source: {records} records ending at {head}, \
             expected {source_records} ending at {source_head}"
        )));
    }
    report.audit_head = head;
    check_counts(to, &report).await?;
    report.not_copied.push(
        "password-reset requests: the store does not list them and they expire within an hour; \
         users who asked for one ask again"
            .to_owned(),
    );
    Ok(report)
}

/// A `conflict` with a machine-readable reason.
fn refuse(reason: &str, message: String) -> Error {
    Error::Conflict { message, details: Some(serde_json::json!({ "reason": reason })) }
}

/// Refuses unless `to` has no user, no app and no audit record.
async fn ensure_empty(to: &dyn Store) -> Result<(), Error> {
    let one = PageRequest { page: 1, limit: 1 };
    let users = to.list_users(one).await?.total;
    let apps = to.list_all_apps(one).await?.total;
    let audit = !to.audit_chain(0, 1).await?.is_empty();
    if users > 0 || apps > 0 || audit {
        return Err(refuse(
            "target_not_empty",
            format!(
                "the target store is not empty ({users} users, {apps} apps, {} audit records); \
                 copy into a new, empty database",
                if audit { "some" } else { "no" }
            ),
        ));
    }
    Ok(())
}

/// Offset paging over a listing that reports its total.
struct Pages {
    next: u32,
    seen: u64,
    done: bool,
}

impl Pages {
    fn new() -> Self {
        Pages { next: 1, seen: 0, done: false }
    }

    /// The next page to read, or `None` when every item was seen.
    fn request(&self) -> Option<PageRequest> {
        (!self.done).then_some(PageRequest { page: self.next, limit: PageRequest::MAX_LIMIT })
    }

    /// Records a page read; an empty page or reaching the total ends it.
    fn advance<T>(&mut self, page: &Page<T>) {
        self.seen += page.items.len() as u64;
        self.done = page.items.is_empty() || self.seen >= page.total;
        self.next += 1;
    }
}

/// Commits `mutations` in units of [`UNIT_ROWS`], telling `progress` the
/// stage's running count (starting from `*count`).
async fn commit_rows(
    to: &dyn Store,
    mutations: Vec<Mutation>,
    stage: &str,
    count: &mut u64,
    progress: &mut dyn FnMut(&str, u64),
) -> Result<(), Error> {
    let mut rest = mutations.into_iter().peekable();
    while rest.peek().is_some() {
        let unit =
            rest.by_ref().take(UNIT_ROWS).fold(UnitOfWork::new(), |unit, m| unit.unaudited(m, Unaudited::StoreCopy));
        let n = unit.mutations().len() as u64;
        to.commit(unit).await?;
        *count += n;
        progress(stage, *count);
    }
    Ok(())
}

/// Users with their credentials, then apps; answers the app ids.
async fn copy_users_and_apps(
    from: &dyn Store,
    to: &dyn Store,
    report: &mut CopyReport,
    progress: &mut dyn FnMut(&str, u64),
) -> Result<Vec<AppId>, Error> {
    let mut pages = Pages::new();
    while let Some(request) = pages.request() {
        let page = from.list_users(request).await?;
        pages.advance(&page);
        let mut credentials = Vec::new();
        for user in &page.items {
            credentials.extend(
                from.list_credentials(user.id)
                    .await?
                    .into_iter()
                    .map(UserMutation::InsertCredential)
                    .map(Mutation::from),
            );
        }
        let users = page.items.into_iter().map(UserMutation::InsertUser).map(Mutation::from).collect();
        commit_rows(to, users, "users", &mut report.users, progress).await?;
        commit_rows(to, credentials, "credentials", &mut report.credentials, progress).await?;
    }

    let mut apps = Vec::new();
    let mut pages = Pages::new();
    while let Some(request) = pages.request() {
        let page = from.list_all_apps(request).await?;
        pages.advance(&page);
        apps.extend(page.items.iter().map(|a| a.id));
        let rows = page.items.into_iter().map(AppMutation::InsertApp).map(Mutation::from).collect();
        commit_rows(to, rows, "apps", &mut report.apps, progress).await?;
    }
    Ok(apps)
}

/// The memberships and invites of one app.
async fn copy_members_and_invites(
    from: &dyn Store,
    to: &dyn Store,
    app: AppId,
    report: &mut CopyReport,
    progress: &mut dyn FnMut(&str, u64),
) -> Result<(), Error> {
    let mut pages = Pages::new();
    while let Some(request) = pages.request() {
        let page = from.list_members(app, request).await?;
        pages.advance(&page);
        let rows =
            page.items.into_iter().map(|m| AppMutation::PutMembership(m.membership)).map(Mutation::from).collect();
        commit_rows(to, rows, "memberships", &mut report.memberships, progress).await?;
    }
    let mut pages = Pages::new();
    while let Some(request) = pages.request() {
        let page = from.list_invites(app, request).await?;
        pages.advance(&page);
        let rows = page.items.into_iter().map(AppMutation::InsertInvite).map(Mutation::from).collect();
        commit_rows(to, rows, "invites", &mut report.invites, progress).await?;
    }
    Ok(())
}

/// Every workspace, then the outbox.
async fn copy_workspaces_and_outbox(
    from: &dyn Store,
    to: &dyn Store,
    report: &mut CopyReport,
    progress: &mut dyn FnMut(&str, u64),
) -> Result<(), Error> {
    let rows =
        from.all_workspaces().await?.into_iter().map(WorkspaceMutation::InsertWorkspace).map(Mutation::from).collect();
    commit_rows(to, rows, "workspaces", &mut report.workspaces, progress).await?;
    let mut pages = Pages::new();
    while let Some(request) = pages.request() {
        let page = from.list_outbox(request).await?;
        pages.advance(&page);
        let rows = page.items.into_iter().map(OutboxMutation::InsertOutbox).map(Mutation::from).collect();
        commit_rows(to, rows, "outbox messages", &mut report.outbox, progress).await?;
    }
    Ok(())
}

/// The jobs of one app, a page per unit, each followed by its jobs' logs.
async fn copy_jobs(
    from: &dyn Store,
    to: &dyn Store,
    app: AppId,
    report: &mut CopyReport,
    progress: &mut dyn FnMut(&str, u64),
) -> Result<(), Error> {
    let all = JobFilter::default();
    let mut pages = Pages::new();
    while let Some(request) = pages.request() {
        let page = from.list_jobs(app, &all, request).await?;
        pages.advance(&page);
        let ids: Vec<JobId> = page.items.iter().map(|j| j.id).collect();
        report.running_jobs += page.items.iter().filter(|j| j.state == JobState::Running).count() as u64;
        let rows = page.items.into_iter().map(JobMutation::InsertJob).map(Mutation::from).collect();
        commit_rows(to, rows, "jobs", &mut report.jobs, progress).await?;
        for id in ids {
            report.job_log_lines += copy_job_log(from, to, id).await?;
            progress("job log lines", report.job_log_lines);
        }
    }
    Ok(())
}

/// Copies one job's log with no size bound (the source already kept it
/// within its own), answering the lines copied.
///
/// A truncated source log lost its oldest lines, so its first line's number
/// is above 1. By the port's rule an append adds its lines, then drops the
/// oldest while the log exceeds the bound and marks the log truncated; so
/// appending that many one-byte placeholder lines with a bound of 0 bytes
/// keeps none of them, marks the copy truncated and uses up their numbers,
/// and the copied lines keep the source's numbers. (A log truncated down to
/// nothing keeps its mark; its numbering restarts after one placeholder.)
async fn copy_job_log(from: &dyn Store, to: &dyn Store, id: JobId) -> Result<u64, Error> {
    let (mut after, mut copied) = (0i64, 0u64);
    loop {
        let page = from.job_log(id, after, LOG_PAGE).await?;
        if after == 0 && page.truncated {
            let first = page.lines.first().map_or(2, |l| l.seq);
            let mut gap = (first - 1).max(1);
            while gap > 0 {
                let n = gap.min(GAP_CHUNK);
                let placeholder =
                    |_| NewLogLine { at: Timestamp::UNIX_EPOCH, stream: LogStream::System, text: "-".into() };
                let lines: Vec<NewLogLine> = (0..n).map(placeholder).collect();
                to.append_job_log(id, &LogAppend::plan(lines, 0)).await?;
                gap -= n;
            }
        }
        let Some(last) = page.lines.last() else { break };
        after = last.seq;
        let full = page.lines.len() == LOG_PAGE as usize;
        let lines: Vec<NewLogLine> =
            page.lines.into_iter().map(|l| NewLogLine { at: l.at, stream: l.stream, text: l.text }).collect();
        copied += lines.len() as u64;
        to.append_job_log(id, &LogAppend::plan(lines, u64::MAX)).await?;
        if !full {
            break;
        }
    }
    Ok(copied)
}

/// Appends the source's audit entries onto the empty target chain in chain
/// order, [`AUDIT_UNIT`] per unit, checking each page continues the chain
/// the first walk verified (the source must not change meanwhile).
async fn copy_audit(
    from: &dyn Store,
    to: &dyn Store,
    expected: u64,
    progress: &mut dyn FnMut(&str, u64),
) -> Result<u64, Error> {
    let (mut seq, mut hash, mut copied) = (0i64, GENESIS_HASH.to_owned(), 0u64);
    loop {
        let batch = from.audit_chain(seq, AUDIT_UNIT).await?;
        if batch.is_empty() {
            break;
        }
        (seq, hash) = verify_segment(seq, &hash, &batch).map_err(|b| {
            refuse("source_changed", format!("the source audit chain changed during the copy at event {}", b.seq))
        })?;
        let n = batch.len() as u64;
        let unit = batch.into_iter().fold(UnitOfWork::new(), |unit, r| unit.audit_only(r.entry));
        to.commit(unit).await?;
        copied += n;
        progress("audit records", copied);
    }
    if copied != expected {
        return Err(refuse(
            "source_changed",
            format!("the source audit chain grew during the copy ({expected} records, then {copied})"),
        ));
    }
    Ok(copied)
}

/// Why a chain walk stopped.
enum ChainError {
    Store(Error),
    Broken { seq: i64, reason: String },
}

/// The key id the sealed secrets are wrapped with (they are copied sealed).
async fn copy_secrets_key_id(from: &dyn Store, to: &dyn Store) -> Result<(), Error> {
    if let Some(key_id) = from.secrets_key_id().await? {
        to.commit(
            UnitOfWork::new()
                .unaudited(ProfileMutation::SetSecretsKeyId { expected: None, key_id }, Unaudited::StoreCopy),
        )
        .await?;
    }
    Ok(())
}

/// The runtime profiles of one app with their revisions and sealed
/// secrets, then its environments (which refer to the profiles).
async fn copy_profiles(
    from: &dyn Store,
    to: &dyn Store,
    app: AppId,
    report: &mut CopyReport,
    progress: &mut dyn FnMut(&str, u64),
) -> Result<(), Error> {
    let mut pages = Pages::new();
    while let Some(request) = pages.request() {
        let page = from.list_runtime_profiles(app, request).await?;
        pages.advance(&page);
        let ids: Vec<_> = page.items.iter().map(|p| p.id).collect();
        let rows = page.items.into_iter().map(ProfileMutation::InsertRuntimeProfile).map(Mutation::from).collect();
        commit_rows(to, rows, "runtime profiles", &mut report.runtime_profiles, progress).await?;
        for id in ids {
            let mut revision_pages = Pages::new();
            while let Some(request) = revision_pages.request() {
                let revisions = from.profile_revisions(id, request).await?;
                revision_pages.advance(&revisions);
                let rows = revisions
                    .items
                    .into_iter()
                    .map(ProfileMutation::InsertProfileRevision)
                    .map(Mutation::from)
                    .collect();
                commit_rows(to, rows, "profile revisions", &mut report.profile_revisions, progress).await?;
            }
            let secrets = from
                .secrets_of(SecretOwner::Profile(id))
                .await?
                .into_iter()
                .map(ProfileMutation::InsertSecret)
                .map(Mutation::from)
                .collect();
            commit_rows(to, secrets, "secrets", &mut report.secrets, progress).await?;
        }
    }
    let environments = from.environments(app).await?;
    if !environments.is_empty() {
        report.environments += environments.len() as u64;
        let copy = ProfileMutation::ReplaceEnvironments { app_id: app, environments };
        to.commit(UnitOfWork::new().unaudited(copy, Unaudited::StoreCopy)).await?;
        progress("environments", report.environments);
    }
    Ok(())
}

/// The changesets of one app, a page per unit, each page followed by its
/// changesets' revisions, votes and comments.
async fn copy_changesets(
    from: &dyn Store,
    to: &dyn Store,
    app: AppId,
    report: &mut CopyReport,
    progress: &mut dyn FnMut(&str, u64),
) -> Result<(), Error> {
    let all = ChangesetFilter::default();
    let mut pages = Pages::new();
    while let Some(request) = pages.request() {
        let page = from.list_changesets(app, &all, request).await?;
        pages.advance(&page);
        let ids: Vec<ChangesetId> = page.items.iter().map(|c| c.id).collect();
        let rows = page.items.into_iter().map(ChangesetMutation::InsertChangeset).map(Mutation::from).collect();
        commit_rows(to, rows, "changesets", &mut report.changesets, progress).await?;
        for id in ids {
            let overrides = from.changeset_overrides(id).await?;
            if !overrides.is_empty() {
                let rows = vec![ProfileMutation::PutChangesetOverrides { changeset_id: id, overrides }.into()];
                commit_rows(to, rows, "changeset overrides", &mut report.changeset_overrides, progress).await?;
            }
            let secrets = from
                .secrets_of(SecretOwner::Changeset(id))
                .await?
                .into_iter()
                .map(ProfileMutation::InsertSecret)
                .map(Mutation::from)
                .collect();
            commit_rows(to, secrets, "secrets", &mut report.secrets, progress).await?;
            let revisions = from
                .changeset_revisions(id)
                .await?
                .into_iter()
                .map(ChangesetMutation::InsertRevision)
                .map(Mutation::from)
                .collect();
            commit_rows(to, revisions, "revisions", &mut report.revisions, progress).await?;
            let reviews = from
                .changeset_reviews(id)
                .await?
                .into_iter()
                .map(ChangesetMutation::PutReview)
                .map(Mutation::from)
                .collect();
            commit_rows(to, reviews, "reviews", &mut report.reviews, progress).await?;
            let mut comment_pages = Pages::new();
            while let Some(request) = comment_pages.request() {
                let comments = from.list_comments(id, request).await?;
                comment_pages.advance(&comments);
                let rows =
                    comments.items.into_iter().map(ChangesetMutation::InsertComment).map(Mutation::from).collect();
                commit_rows(to, rows, "comments", &mut report.comments, progress).await?;
            }
        }
    }
    Ok(())
}

/// Walks `store`'s whole chain, answering its record count and head hash.
async fn walk_chain(
    store: &dyn Store,
    stage: &str,
    progress: &mut dyn FnMut(&str, u64),
) -> Result<(u64, String), ChainError> {
    let (mut seq, mut hash, mut records) = (0i64, GENESIS_HASH.to_owned(), 0u64);
    loop {
        let batch: Vec<AuditRecord> = store.audit_chain(seq, 1000).await.map_err(ChainError::Store)?;
        if batch.is_empty() {
            return Ok((records, hash));
        }
        (seq, hash) =
            verify_segment(seq, &hash, &batch).map_err(|b| ChainError::Broken { seq: b.seq, reason: b.reason })?;
        records += batch.len() as u64;
        progress(stage, records);
    }
}

/// The target holds as many users, apps, workspaces, messages and jobs as
/// were copied (a store that silently skipped a row would show here).
async fn check_counts(to: &dyn Store, report: &CopyReport) -> Result<(), Error> {
    let one = PageRequest { page: 1, limit: 1 };
    let jobs: u64 = to.job_counts().await?.iter().map(|(_, _, n)| n).sum();
    let mut changesets = 0;
    let mut pages = Pages::new();
    while let Some(request) = pages.request() {
        let page = to.list_all_apps(request).await?;
        pages.advance(&page);
        for app in &page.items {
            changesets += to.list_changesets(app.id, &ChangesetFilter::default(), one).await?.total;
        }
    }
    let found = [
        ("users", to.list_users(one).await?.total, report.users),
        ("apps", to.list_all_apps(one).await?.total, report.apps),
        ("workspaces", to.all_workspaces().await?.len() as u64, report.workspaces),
        ("outbox messages", to.list_outbox(one).await?.total, report.outbox),
        ("jobs", jobs, report.jobs),
        ("changesets", changesets, report.changesets),
    ];
    for (what, stored, copied) in found {
        if stored != copied {
            return Err(Error::internal(format!("the target holds {stored} {what} after copying {copied}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(n: usize, total: u64) -> Page<u8> {
        Page { items: vec![0; n], total }
    }

    #[test]
    fn paging_stops_at_the_total_or_an_empty_page() {
        let mut pages = Pages::new();
        assert_eq!(pages.request(), Some(PageRequest { page: 1, limit: 100 }));
        pages.advance(&page(100, 150));
        assert_eq!(pages.request(), Some(PageRequest { page: 2, limit: 100 }));
        pages.advance(&page(50, 150));
        assert_eq!(pages.request(), None);

        let mut shrunk = Pages::new();
        shrunk.advance(&page(0, 10));
        assert_eq!(shrunk.request(), None);
    }
}
