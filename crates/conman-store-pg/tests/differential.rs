//! Differential property test of the three stores: random sequences of
//! units — many of them refused (taken names and branches, stale versions,
//! missing references, a second open changeset, the last-admin guard, ref
//! intents on busy refs and on refs remembered at another value) —
//! applied to the in-memory reference store, SQLite and Postgres give the
//! same result for every unit, the same *full* error values (code, reason,
//! details, message), and the same state and audit chain after the
//! sequence.
//!
//! Every unit is built once and the same value committed to each store, so
//! ids, timestamps and audit entries are identical; any difference is the
//! stores'. Without `CONMAN_TEST_DATABASE_URL` the test compares the
//! reference store and SQLite only, and says so; CI always sets it.

mod common;

use conman_core::conformance::fixtures;
use conman_core::domain::app::App;
use conman_core::domain::changeset::Changeset;
use conman_core::domain::user::User;
use conman_core::domain::workspace::Workspace;
use conman_core::ids::IntentId;
use conman_core::ports::git::{RefMove, Sha};
use conman_core::ports::store::{
    AppMutation, AppStore as _, ChangesetFilter, ChangesetMutation, Intent, IntentMutation, IntentOutcome, Mutation,
    PageRequest, Store, Unaudited, UnitOfWork, UserMutation, WorkspaceMutation,
};
use conman_core::rbac::Role;
use conman_core::reference_store::ReferenceStore;
use conman_store_sqlite::SqliteStore;
use proptest::prelude::*;

/// One step of a unit, as indices into the case's [`Pool`].
#[derive(Debug, Clone)]
enum Op {
    /// Users 0–2; 3 has user 0's email and handle under another id.
    InsertUser(usize),
    /// Apps 0–1; 2 has app 0's name under another id.
    InsertApp(usize),
    /// A role for (app, user).
    PutMembership(usize, usize, Role),
    /// Removes (app, user).
    DeleteMembership(usize, usize),
    /// Renames app `.0`, with its current version (`false`) or a stale one.
    RenameApp(usize, bool),
    /// Workspace (app, owner, slug 0–1).
    InsertWorkspace(usize, usize, usize),
    /// Changeset 0–1 of workspace (app, owner, slug).
    InsertChangeset(usize, usize, usize, usize),
    /// The last-admin guard of an app.
    RequireAdmin(usize),
    /// An intent of app `.0` moving ref `.1` (0–1) from value `.2` to `.3`
    /// (0 = absent, 1–2 two commits).
    RecordIntent(usize, usize, usize, usize),
    /// An adoption of value `.2` for ref `.1` of app `.0`.
    AdoptRef(usize, usize, usize),
    /// Completes the `.0`-th intent built so far (modulo; an unknown id
    /// when none), applied or abandoned.
    CompleteIntent(usize, bool),
}

fn op() -> impl Strategy<Value = Op> {
    let role = prop_oneof![Just(Role::User), Just(Role::Reviewer), Just(Role::ConfigManager), Just(Role::AppAdmin)];
    prop_oneof![
        1 => (0..4usize).prop_map(Op::InsertUser),
        1 => (0..3usize).prop_map(Op::InsertApp),
        3 => (0..2usize, 0..3usize, role).prop_map(|(a, u, r)| Op::PutMembership(a, u, r)),
        2 => (0..2usize, 0..3usize).prop_map(|(a, u)| Op::DeleteMembership(a, u)),
        2 => (0..2usize, any::<bool>()).prop_map(|(a, stale)| Op::RenameApp(a, stale)),
        3 => (0..2usize, 0..3usize, 0..2usize).prop_map(|(a, u, s)| Op::InsertWorkspace(a, u, s)),
        3 => (0..2usize, 0..3usize, 0..2usize, 0..2usize).prop_map(|(a, u, s, c)| Op::InsertChangeset(a, u, s, c)),
        2 => (0..2usize).prop_map(Op::RequireAdmin),
        4 => (0..2usize, 0..2usize, 0..3usize, 0..3usize).prop_map(|(a, r, f, t)| Op::RecordIntent(a, r, f, t)),
        1 => (0..2usize, 0..2usize, 0..3usize).prop_map(|(a, r, v)| Op::AdoptRef(a, r, v)),
        3 => (0..8usize, any::<bool>()).prop_map(|(k, applied)| Op::CompleteIntent(k, applied)),
    ]
}

/// The entities a case draws from, built once per case.
struct Pool {
    users: Vec<User>,
    apps: Vec<App>,
    /// `[app][owner][slug]`.
    workspaces: Vec<Vec<Vec<Workspace>>>,
    /// `[app][owner][slug][n]`.
    changesets: Vec<Vec<Vec<Vec<Changeset>>>>,
    /// The refs intents move, and the values they move between.
    refs: [&'static str; 2],
    values: [Option<Sha>; 3],
    /// Every intent built so far (recorded or refused).
    intents: std::cell::RefCell<Vec<IntentId>>,
}

impl Pool {
    fn new() -> Pool {
        let mut users: Vec<User> = ["ada", "bob", "cy"].map(fixtures::user).into();
        let mut twin = fixtures::user("twin");
        (twin.email, twin.handle) = (users[0].email.clone(), users[0].handle.clone());
        users.push(twin);
        let mut apps: Vec<App> = vec![fixtures::app("billing", &users[0]), fixtures::app("search", &users[1])];
        let mut twin_app = fixtures::app("other", &users[1]);
        twin_app.name = apps[0].name.clone();
        apps.push(twin_app);
        let workspaces: Vec<Vec<Vec<Workspace>>> = apps[..2]
            .iter()
            .map(|app| {
                users[..3].iter().map(|u| ["default", "w2"].map(|s| fixtures::workspace(app, u, s)).into()).collect()
            })
            .collect();
        let changesets = workspaces
            .iter()
            .map(|by_owner| {
                by_owner
                    .iter()
                    .map(|by_slug| {
                        by_slug
                            .iter()
                            .map(|ws| {
                                let author = users.iter().find(|u| u.id == ws.owner_id).unwrap();
                                ["first", "second"].map(|t| fixtures::changeset(ws, author, t)).into()
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let values = [None, Some(Sha(fixtures::sha())), Some(Sha(fixtures::sha()))];
        let refs = ["refs/heads/ws/ada/default", "refs/conman/wip/1"];
        Pool { users, apps, workspaces, changesets, refs, values, intents: Default::default() }
    }

    /// A new intent of app `a` moving ref `r` from value `from` to `to`.
    fn intent(&self, a: usize, r: usize, from: usize, to: usize, operation: &str) -> Intent {
        let mut built = self.intents.borrow_mut();
        let id = IntentId(uuid::Uuid::now_v7());
        built.push(id);
        Intent {
            id,
            app_id: self.apps[a].id,
            operation: operation.into(),
            owner_type: "workspace".into(),
            owner_id: self.workspaces[a][0][0].id.to_string(),
            moves: vec![RefMove {
                name: self.refs[r].into(),
                from: self.values[from].clone(),
                to: self.values[to].clone(),
            }],
            created_at: fixtures::later(fixtures::now(), built.len() as i64),
        }
    }

    /// The unit of `ops`, against the reference store's current state (for
    /// versions); the same value is committed to every store.
    async fn unit(&self, ops: &[Op], reference: &ReferenceStore) -> UnitOfWork {
        let mut unit = UnitOfWork::new();
        for (i, op) in ops.iter().enumerate() {
            let entry = fixtures::audit_entry("test.mutation", "test", &i.to_string());
            let mutation: Mutation = match op {
                Op::InsertUser(u) => UserMutation::InsertUser(self.users[*u].clone()).into(),
                Op::InsertApp(a) => AppMutation::InsertApp(self.apps[*a].clone()).into(),
                Op::PutMembership(a, u, role) => {
                    AppMutation::PutMembership(fixtures::membership(&self.apps[*a], &self.users[*u], *role)).into()
                }
                Op::DeleteMembership(a, u) => {
                    AppMutation::DeleteMembership { app_id: self.apps[*a].id, user_id: self.users[*u].id }.into()
                }
                Op::RenameApp(a, stale) => {
                    let current =
                        reference.app(self.apps[*a].id).await.unwrap().unwrap_or_else(|| self.apps[*a].clone());
                    let version = if *stale { current.version } else { current.version + 1 };
                    let name = format!("{}-{}", self.apps[*a].name, current.version + 1);
                    AppMutation::UpdateApp(App { name, version, ..current }).into()
                }
                Op::InsertWorkspace(a, u, s) => {
                    WorkspaceMutation::InsertWorkspace(self.workspaces[*a][*u][*s].clone()).into()
                }
                Op::InsertChangeset(a, u, s, n) => {
                    ChangesetMutation::InsertChangeset(self.changesets[*a][*u][*s][*n].clone()).into()
                }
                Op::RequireAdmin(a) => {
                    unit = unit.unaudited(AppMutation::RequireAppAdmin { app_id: self.apps[*a].id }, Unaudited::Guard);
                    continue;
                }
                Op::RecordIntent(a, r, from, to) => {
                    let intent = self.intent(*a, *r, *from, *to, "workspace.files_changed");
                    unit = unit.unaudited(IntentMutation::RecordIntent(intent), Unaudited::RefIntent);
                    continue;
                }
                Op::AdoptRef(a, r, v) => IntentMutation::AdoptRefs(self.intent(*a, *r, *v, *v, "ref.adopted")).into(),
                Op::CompleteIntent(k, applied) => {
                    let built = self.intents.borrow();
                    let id = if built.is_empty() { IntentId(uuid::Uuid::now_v7()) } else { built[k % built.len()] };
                    let outcome = if *applied { IntentOutcome::Applied } else { IntentOutcome::Abandoned };
                    let done = IntentMutation::CompleteIntent { id, outcome, at: fixtures::now() };
                    unit = unit.unaudited(done, Unaudited::RefIntent);
                    continue;
                }
            };
            unit = unit.record(mutation, entry);
        }
        unit
    }
}

/// Everything the pool's entities read back as, from one store.
async fn view<S: Store + ?Sized>(store: &S, pool: &Pool) -> String {
    let page = PageRequest { page: 1, limit: PageRequest::MAX_LIMIT };
    let mut out = String::new();
    for u in &pool.users {
        out += &format!("user {:?}\n", store.user(u.id).await.unwrap());
    }
    out += &format!("apps {:?}\n", store.list_all_apps(page).await.unwrap());
    for a in &pool.apps {
        out += &format!("members {:?}\n", store.list_members(a.id, page).await.unwrap());
        out += &format!("workspaces {:?}\n", store.list_workspaces(a.id, None, page).await.unwrap());
        out += &format!(
            "changesets {:?}\n",
            store.list_changesets(a.id, &ChangesetFilter::default(), page).await.unwrap()
        );
    }
    out += &format!("pending intents {:?}\n", store.pending_intents(None).await.unwrap());
    for a in &pool.apps {
        for r in pool.refs {
            out += &format!("claim {r} {:?}\n", store.pending_intent_on_ref(a.id, r).await.unwrap());
        }
    }
    let intents: Vec<_> = pool.intents.borrow().clone();
    for id in &intents {
        out += &format!("outcome {id} {:?}\n", store.intent_outcome(*id).await);
    }
    out += &format!("audit {:?}\n", store.audit_chain(0, 10_000).await.unwrap());
    out
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_three_stores_agree_on_every_unit_and_every_refusal(
        units in proptest::collection::vec(proptest::collection::vec(op(), 1..=3), 1..=32),
    ) {
        runtime().block_on(async {
            let pool = Pool::new();
            let reference = ReferenceStore::new();
            let dir = tempfile::tempdir().unwrap();
            let sqlite = SqliteStore::open(&dir.path().join("conman.db")).unwrap();
            let pg = common::fresh_store().await;
            // Users 0-2 and apps 0-1 exist from the start (each app with its
            // creator as app_admin), so most units reach the rules past the
            // missing references.
            let mut seed = vec![Op::InsertUser(0), Op::InsertUser(1), Op::InsertUser(2), Op::InsertApp(0), Op::InsertApp(1)];
            seed.extend([Op::PutMembership(0, 0, Role::AppAdmin), Op::PutMembership(1, 1, Role::AppAdmin)]);
            let mut refused = 0;
            for ops in std::iter::once(&seed).chain(&units) {
                let unit = pool.unit(ops, &reference).await;
                let expected = reference.commit(unit.clone()).await;
                refused += usize::from(expected.is_err());
                let on_sqlite = sqlite.commit(unit.clone()).await;
                let on_pg = match &pg {
                    Some((pg, _scratch)) => Some(pg.commit(unit).await),
                    None => None,
                };
                let agree = on_sqlite == expected && on_pg.as_ref().is_none_or(|r| *r == expected);
                assert!(
                    agree,
                    "the stores differ on {ops:?}\n reference: {expected:?}\n    SQLite: {on_sqlite:?}\n  Postgres: {on_pg:?}"
                );
            }
            let reference_view = view(&reference, &pool).await;
            assert_eq!(view(&sqlite, &pool).await, reference_view, "SQLite's state differs");
            if let Some((pg, _scratch)) = &pg {
                assert_eq!(view(pg, &pool).await, reference_view, "Postgres's state differs");
            }
            let stores = if pg.is_some() { "3 stores" } else { "2 stores (Postgres skipped: CONMAN_TEST_DATABASE_URL not set)" };
            eprintln!("{} units ({refused} refused) agreed on {stores}", units.len() + 1);
        });
    }
}
