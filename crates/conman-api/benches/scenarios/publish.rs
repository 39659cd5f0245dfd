//! Scenario 7 of `cargo xtask bench` (issue 13: publishing a release), on
//! the [`Lab`] installation (SQLite, a worker in this process, no gate
//! commands) whose app repository holds 10,000 files (100 dirs × 100 YAML
//! files):
//! - each round takes 100 one-file changesets through the whole flow to the
//!   queue (submit, submit gate, approval, queue), selects them all in one
//!   release and assembles it (composition and release gate, until
//!   `validated`) — none of that is timed — then times
//!   `Conman::publish_release` alone: the changesets' `released` states,
//!   their audit entries and notifications, the revalidation job, the
//!   annotated tag and the recorded intent moving the integration branch
//!   and creating the tag ref;
//! - beside it, in the same round on the same repository, the git CLI doing
//!   the equivalent ref work: `git update-ref` moving a branch from the
//!   round's base to its composed commit (compare-and-swap), then `git tag
//!   -a` writing an annotated tag of the same message on that commit.
//!
//! Bar: publish median ≤ 50 ms (median and p90 over rounds printed, and the
//! ratio to the CLI pair).
//!
//! Invariant: a publish is timed only once the worker is idle (the
//! assembly's jobs and the previous round's revalidation have finished), and
//! its outcome is checked (published, tagged, the integration branch on the
//! composed commit), so a fast wrong answer fails; one untimed warm-up round
//! comes first.

use std::time::{Duration, Instant};

use conman_core::domain::release::{Release, ReleaseState};

use super::git_port_scenario::put_files;
use super::lab::Lab;
use super::{git, row, stats, Bars};

/// Changesets a published release is composed of.
const CHANGESETS: usize = 100;

/// The bar.
const PUBLISH_BAR: Duration = Duration::from_millis(50);

/// Seeds the lab app's `main` with the 10,000 files.
async fn seed(lab: &Lab) {
    let git = conman_git::GitRepos::new(lab.dir.path().join("repos")).expect("repos");
    for d in 0..100 {
        let files = (0..100)
            .map(|f| {
                let content = format!("service: svc{d:03}\nindex: {f}\nreplicas: 3\nimage: registry/app:{d}.{f}\n");
                (format!("svc{d:03}/config{f:03}.yaml"), content)
            })
            .collect();
        put_files(&git, lab.app, "refs/heads/main", "refs/heads/main", files).await;
    }
}

/// The message Conman writes on a release's tag: title, one line per
/// included changeset, the release id (`releases.rs`).
fn tag_message(release: &Release) -> String {
    let mut message = format!("{}\n\n", release.title);
    for item in release.included() {
        message.push_str(&format!("changeset {} revision {}\n", item.changeset_id, item.revision));
    }
    message.push_str(&format!("release {}\n", release.id));
    message
}

/// One round: a validated release of 100 fresh changesets, then the timed
/// publish and the timed CLI pair; answers both times.
async fn round(lab: &Lab, n: usize) -> (Duration, Duration) {
    let files = (0..CHANGESETS)
        .map(|i| (format!("svc{i:03}/config{:03}.yaml", n % 100), format!("service: svc{i:03}\nround: {n}\n")))
        .collect();
    let ids = lab.queued(&format!("r{n}"), files).await;
    let release = lab.validated(&format!("Publish round {n}"), &ids).await;
    lab.idle().await;

    let t = Instant::now();
    let published = lab.conman.publish_release(&lab.actor, lab.app, release.id).await.expect("publish");
    let ours = t.elapsed();
    assert_eq!(published.state, ReleaseState::Published);
    let tag = published.tag.clone().expect("a published release has a tag");
    let (base, composed) = (release.base_sha.clone().expect("base"), release.composed_sha.clone().expect("composed"));
    let git_port = lab.conman.ports().git.clone();
    let head = git_port.resolve_ref(lab.app, "refs/heads/main").await.expect("resolve").expect("main");
    assert_eq!(head.as_str(), composed, "the integration branch is on the composed commit");
    let tagged = git_port.resolve_ref(lab.app, &format!("refs/tags/{tag}")).await.expect("resolve");
    assert!(tagged.is_some(), "the tag ref {tag} exists");

    // The CLI pair on the same repository, from the same base.
    let repo = lab.repo();
    let branch = "refs/heads/cli-publish";
    git(&repo, &["update-ref", branch, &base], &[], None);
    let message = tag_message(&published);
    let t = Instant::now();
    git(&repo, &["update-ref", branch, &composed, &base], &[], None);
    git(&repo, &["tag", "-a", &format!("cli-{n}"), "-m", &message, &composed], &[], None);
    let cli = t.elapsed();
    (ours, cli)
}

/// Runs scenario 7 with `rounds` timed rounds (after one warm-up round).
pub(super) async fn scenario_publish(bars: &mut Bars, rounds: usize) {
    println!("Scenario 7: publishing a release of {CHANGESETS} queued changesets (10,000-file repository, SQLite)");
    let mut lab = Lab::open("publish").await;
    seed(&lab).await;
    let setup = Instant::now();
    round(&lab, 0).await;
    println!(
        "  one round's setup and publish (100 changesets to the queue, assembly): {:.1} s",
        setup.elapsed().as_secs_f64()
    );
    let (mut ours, mut cli) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for n in 1..=rounds {
        let (o, c) = round(&lab, n).await;
        ours.push(o);
        cli.push(c);
    }
    lab.idle().await;
    lab.stop_worker().await;
    let (ours, cli) = (stats(ours), stats(cli));
    row(&format!("publish, {CHANGESETS} changesets, via core"), &ours);
    row("  git update-ref + git tag -a (CLI)", &cli);
    let ratio = ours.median.as_secs_f64() / cli.median.as_secs_f64();
    println!("  ratio publish: the core's publish takes {ratio:.1}× the time of the git CLI pair");
    bars.check("publish of 100 changesets median ≤ 50 ms", ours.median <= PUBLISH_BAR);
}
