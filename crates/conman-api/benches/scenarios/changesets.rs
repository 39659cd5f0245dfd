//! Scenario 3 of `cargo xtask bench` (changesets issue), on SQLite and the
//! 10,000-file repository of scenario 1:
//! - the raw diff of a submitted 20-file changeset through the core
//!   (authorization, revision lookup, tree diff, patch text), beside
//!   `git diff BASE HEAD` on the same repository (bar: median ≤ 5 ms);
//! - the semantic diff of the same 20 YAML files (each rewritten into a
//!   60-line document: keys added, modified and removed) through the core
//!   (bar: median ≤ 20 ms);
//! - listing 10,000 changesets 20 at a time through the core, page 1 and
//!   page 500 (bar: median ≤ 5 ms per page).
//!
//! Invariant: every figure is a median over repeated calls after a warm-up;
//! the changeset is frozen by the real submit path, so the diff measured is
//! the one the API serves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use conman_core::domain::audit::AuditEntry;
use conman_core::domain::changeset::{Changeset, ChangesetState};
use conman_core::ports::git::{DiffDetail, Sha};
use conman_core::ports::store::{ChangesetFilter, ChangesetMutation, PageRequest, UnitOfWork};
use conman_core::services::{ChangesetDiff, DiffMode, NewChangeset};

use super::{git, ms, row, seeded_app, stats, Bars};

/// A 60-line YAML document for file `n` (the changeset's new content).
fn rich_yaml(n: usize) -> String {
    let mut doc = format!("service: svc{n:03}\nreplicas: 5\nimage: registry/app:{n}.next\nresources:\n");
    doc.push_str("  cpu: 500m\n  memory: 512Mi\nenv:\n");
    for k in 0..50 {
        doc.push_str(&format!("  VAR_{k:02}: value-{n}-{k}\n"));
    }
    doc.push_str("probes:\n  liveness: /healthz\n  readiness: /ready\n");
    doc
}

/// Runs scenario 3 with `samples` timed calls per figure and prints it.
pub(super) async fn scenario_changesets(bars: &mut Bars, samples: usize) {
    println!("Scenario 3: changeset diffs and listing on a 10,000-file repository (SQLite)");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(conman_store_sqlite::SqliteStore::open(&dir.path().join("conman.db")).expect("store"));
    let (seeded, _) = seeded_app(store.clone(), dir.path()).await;
    let (conman, actor, app, ws) = (&seeded.conman, &seeded.actor, seeded.app, seeded.ws);

    for n in 0..20 {
        let path = format!("svc{:03}/config{:03}.yaml", n * 5, n);
        conman.write_file(actor, app, ws, &path, rich_yaml(n).into_bytes(), None).await.expect("edit");
    }
    let input =
        NewChangeset { workspace_id: ws, title: "Twenty services".into(), description: None, depends_on: vec![] };
    let cs = conman.create_changeset(actor, app, input).await.expect("changeset");
    let submitted = conman.submit_changeset(actor, app, cs.id).await.expect("submit");

    let time = |mode| async move {
        for _ in 0..5 {
            conman.changeset_diff(actor, app, cs.id, mode, None).await.expect("warm-up");
        }
        let mut samples_taken = Vec::with_capacity(samples);
        let mut last = None;
        for _ in 0..samples {
            let t = Instant::now();
            let diff = conman.changeset_diff(actor, app, cs.id, mode, None).await.expect("diff");
            samples_taken.push(t.elapsed());
            last = Some(diff);
        }
        (stats(samples_taken), last.expect("a diff"))
    };
    let (raw, raw_diff) = time(DiffMode::Raw).await;
    let (semantic, semantic_diff) = time(DiffMode::Semantic).await;
    match (&raw_diff, &semantic_diff) {
        (ChangesetDiff::Raw { files, stats, .. }, ChangesetDiff::Semantic { diff, .. }) => {
            assert_eq!(files.len(), 20, "the raw diff shows the 20 files");
            let keys: usize = diff.files.iter().map(|f| f.changes.len()).sum();
            println!(
                "  changeset: 20 files, +{} -{} lines, {keys} key-level changes",
                stats.additions, stats.deletions
            );
        }
        _ => panic!("diff modes answered the wrong shapes"),
    }

    let revision = &submitted.revision;
    let (base, head) = (Sha(revision.base_sha.clone()), Sha(revision.head_sha.clone()));
    let mut taken = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        conman.ports().git.diff(app, &base, &head, DiffDetail::Patch).await.expect("port diff");
        taken.push(t.elapsed());
    }
    let port_raw = stats(taken);
    let repo = dir.path().join("repos").join(format!("{app}.git"));
    let mut cli = Vec::new();
    for _ in 0..samples.min(50) {
        let t = Instant::now();
        git(&repo, &["diff", &revision.base_sha, &revision.head_sha], &[], None);
        cli.push(t.elapsed());
    }
    let cli = stats(cli);

    // 10,000 changesets (released, so none is open on the workspace).
    let author = actor.user.id;
    let base = chrono::Utc::now();
    for chunk in 0..20 {
        let mut rows = Vec::with_capacity(500);
        for i in 0..500 {
            let at = base + chrono::Duration::milliseconds(chunk * 500 + i);
            rows.push(ChangesetMutation::InsertChangeset(Changeset {
                id: conman_core::ids::ChangesetId(uuid::Uuid::now_v7()),
                app_id: app,
                workspace_id: ws,
                author_id: author,
                title: format!("bulk {chunk}-{i}"),
                description: String::new(),
                state: ChangesetState::Released,
                revision: 1,
                head_sha: Some(revision.head_sha.clone()),
                depends_on: vec![],
                gate_job_id: None,
                gate_failure: None,
                queued_at: None,
                last_revalidation: None,
                created_at: at,
                updated_at: at,
                version: 1,
            }));
        }
        let entry = AuditEntry {
            id: conman_core::ids::AuditEventId(uuid::Uuid::now_v7()),
            occurred_at: chrono::Utc::now(),
            actor_id: Some(author),
            app_id: Some(app),
            entity_type: "changeset".into(),
            entity_id: format!("bulk-{chunk}"),
            action: "bench.changesets_loaded".into(),
            before: None,
            after: None,
            git_sha: None,
            request: Default::default(),
        };
        let unit = UnitOfWork::new().record_all(rows, entry);
        conman_core::ports::Store::commit(store.as_ref(), unit).await.expect("bulk insert");
    }
    let page = |n| async move {
        let request = PageRequest { page: n, limit: 20 };
        for _ in 0..5 {
            conman.list_changesets(actor, app, ChangesetFilter::default(), request).await.expect("warm-up");
        }
        let mut taken = Vec::with_capacity(samples);
        for _ in 0..samples {
            let t = Instant::now();
            let listed = conman.list_changesets(actor, app, ChangesetFilter::default(), request).await.expect("list");
            taken.push(t.elapsed());
            assert_eq!(listed.items.len(), 20);
            assert!(listed.total >= 10_000);
        }
        stats(taken)
    };
    let page_first = page(1).await;
    let page_500 = page(500).await;

    row("raw diff, 20 files, via core", &raw);
    row("raw diff via git port (patch detail)", &port_raw);
    row("raw diff via git diff (CLI)", &cli);
    row("semantic diff, 20 YAML files, via core", &semantic);
    row("list 10,000 changesets, page 1 of 20", &page_first);
    row("list 10,000 changesets, page 500 of 20", &page_500);
    println!(
        "  ratio raw diff: core is {:.1}× faster than git diff",
        cli.median.as_secs_f64() / raw.median.as_secs_f64()
    );
    let within = |d: Duration, limit_ms: u64| d <= Duration::from_millis(limit_ms);
    bars.check("raw diff median ≤ 5 ms", within(raw.median, 5));
    bars.check("semantic diff median ≤ 20 ms", within(semantic.median, 20));
    bars.check(
        format!("listing median ≤ 5 ms per page (page 1 {}, page 500 {})", ms(page_first.median), ms(page_500.median)),
        within(page_first.median.max(page_500.median), 5),
    );
}
