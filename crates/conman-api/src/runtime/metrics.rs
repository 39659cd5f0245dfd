//! Metrics: a process-wide Prometheus registry (`prometheus-client`)
//! holding what this process observes — job waits and runs, release
//! composition time and counts, deploy durations by outcome (workers) and
//! deploys refused for drift (the API) — and [`render`], which prints them
//! together with gauges built from store counts at scrape time (jobs by
//! type and state, the release queue depth per app, deployments per
//! environment and state, the same in every process on one store) in the
//! text exposition format (OpenMetrics flavour, ending in `# EOF`; serve
//! it as `application/openmetrics-text; version=1.0.0; charset=utf-8`, see
//! [`CONTENT_TYPE`]).
//!
//! Invariants: the histograms and counters are created once per process
//! ([`std::sync::OnceLock`]) and only ever observed, so every render sees
//! the same series; label values are wire names (job types, states,
//! outcomes) or ids, never free text.

use std::sync::OnceLock;
use std::time::Duration;

use conman_core::domain::job::{JobState, JobType};
use conman_core::ids::AppId;
use conman_core::ports::store::DeploymentCount;
use conman_core::services::Conman;
use conman_core::Error;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A job type label.
type TypeLabel = [(&'static str, &'static str); 1];
/// Histograms under one static label (job type, deploy outcome).
type Labelled = Family<[(&'static str, &'static str); 1], Histogram, fn() -> Histogram>;
/// Histograms labelled by job type.
type ByType = Labelled;

struct JobMetrics {
    queue_wait: ByType,
    run: ByType,
    /// Time release assemblies spent composing.
    composition: Histogram,
    /// Changesets assemblies included.
    composed: Counter,
    /// Changesets assemblies dropped for a conflict.
    conflicted: Counter,
    /// Attempts of `deploy_release` jobs by outcome.
    deploy: Labelled,
    /// Deploys, promotions and rollbacks refused because the environment drifted, per app.
    drift_blocked: Family<[(&'static str, String); 1], Counter>,
}

fn job_metrics() -> &'static JobMetrics {
    static METRICS: OnceLock<JobMetrics> = OnceLock::new();
    METRICS.get_or_init(|| JobMetrics {
        // 1 ms .. ~9 min.
        queue_wait: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 20))),
        // 10 ms .. ~1.5 h.
        run: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.01, 2.0, 20))),
        // 1 ms .. ~9 min.
        composition: Histogram::new(exponential_buckets(0.001, 2.0, 20)),
        composed: Counter::default(),
        conflicted: Counter::default(),
        // 10 ms .. ~1.5 h.
        deploy: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.01, 2.0, 20))),
        drift_blocked: Family::default(),
    })
}

fn type_label(job_type: JobType) -> TypeLabel {
    [("type", job_type.as_str())]
}

/// Records how long a job waited between becoming runnable and its claim.
pub fn observe_queue_wait(job_type: JobType, wait: Duration) {
    job_metrics().queue_wait.get_or_create(&type_label(job_type)).observe(wait.as_secs_f64());
}

/// Records how long one attempt of a job ran.
pub fn observe_run(job_type: JobType, run: Duration) {
    job_metrics().run.get_or_create(&type_label(job_type)).observe(run.as_secs_f64());
}

/// Records what a finished attempt of a `release_assemble` job reported
/// (`compose_ms`, `included`, `dropped` of its result); other jobs and
/// stale assemblies record nothing.
pub fn observe_result(job_type: JobType, result: &serde_json::Value) {
    if job_type != JobType::ReleaseAssemble {
        return;
    }
    let metrics = job_metrics();
    if let Some(ms) = result["compose_ms"].as_f64() {
        metrics.composition.observe(ms / 1000.0);
    }
    if let Some(n) = result["included"].as_u64() {
        metrics.composed.inc_by(n);
    }
    if let Some(n) = result["dropped"].as_u64() {
        metrics.conflicted.inc_by(n);
    }
}

/// Records one ended attempt of a `deploy_release` job: how long it ran,
/// by `outcome` (`succeeded`, `failed`, `timed_out`, `canceled`).
pub fn observe_deploy(outcome: &'static str, ran: Duration) {
    job_metrics().deploy.get_or_create(&[("outcome", outcome)]).observe(ran.as_secs_f64());
}

/// Counts a deploy, promotion or rollback of `app` refused because its
/// environment drifted (the core's `conflict` with reason `drifted`).
pub fn observe_drift_blocked(app: AppId) {
    job_metrics().drift_blocked.get_or_create(&[("app", app.to_string())]).inc();
}

/// What the store counts, read at scrape time.
#[derive(Debug, Clone, Default)]
pub struct StoreCounts {
    /// Jobs by type and state (`Conman::job_counts`).
    pub jobs: Vec<(JobType, JobState, u64)>,
    /// Queued changesets per app (`Conman::queue_depths`).
    pub queue_depths: Vec<(AppId, u64)>,
    /// Deployments per environment and state (`Conman::deployment_counts`).
    pub deployments: Vec<DeploymentCount>,
}

impl StoreCounts {
    /// Reads every count from the store.
    pub async fn read(conman: &Conman) -> Result<StoreCounts, Error> {
        Ok(StoreCounts {
            jobs: conman.job_counts().await?,
            queue_depths: conman.queue_depths().await?,
            deployments: conman.deployment_counts().await?,
        })
    }
}

/// The registry's histograms and counters plus, from `store`,
/// `conman_jobs{type,state}`, `conman_release_queue_depth{app}` and
/// `conman_deployments{app,environment,state}`, in the Prometheus text
/// format.
pub fn render(store: &StoreCounts) -> String {
    let metrics = job_metrics();
    let mut registry = Registry::default();
    registry.register_with_unit(
        "conman_job_queue_wait",
        "Time from a job becoming runnable (created or retry due) to its claim by a worker",
        Unit::Seconds,
        metrics.queue_wait.clone(),
    );
    registry.register_with_unit(
        "conman_job_run",
        "Duration of one job attempt in a worker",
        Unit::Seconds,
        metrics.run.clone(),
    );
    registry.register_with_unit(
        "conman_release_composition",
        "Time a release assembly spent composing its selection",
        Unit::Seconds,
        metrics.composition.clone(),
    );
    registry.register(
        "conman_release_changesets_composed",
        "Changesets release assemblies included",
        metrics.composed.clone(),
    );
    registry.register(
        "conman_release_changesets_conflicted",
        "Changesets release assemblies dropped for a textual or profile-override conflict",
        metrics.conflicted.clone(),
    );
    registry.register_with_unit(
        "conman_deploy_duration",
        "Duration of one deploy_release attempt (deploy gate, deploy command, completion) by outcome",
        Unit::Seconds,
        metrics.deploy.clone(),
    );
    registry.register(
        "conman_deploys_drift_blocked",
        "Deploys, promotions and rollbacks refused because the environment drifted, per app id",
        metrics.drift_blocked.clone(),
    );
    let jobs = Family::<[(&'static str, &'static str); 2], Gauge>::default();
    for (job_type, state, count) in &store.jobs {
        let value = i64::try_from(*count).unwrap_or(i64::MAX);
        jobs.get_or_create(&[("type", job_type.as_str()), ("state", state.as_str())]).set(value);
    }
    registry.register("conman_jobs", "Jobs in the store by type and state", jobs);
    let queue = Family::<[(&'static str, String); 1], Gauge>::default();
    for (app, depth) in &store.queue_depths {
        queue.get_or_create(&[("app", app.to_string())]).set(i64::try_from(*depth).unwrap_or(i64::MAX));
    }
    registry.register("conman_release_queue_depth", "Changesets queued for release, per app id", queue);
    let deployments = Family::<[(&'static str, String); 3], Gauge>::default();
    for c in &store.deployments {
        let labels = [
            ("app", c.app_id.to_string()),
            ("environment", c.environment_id.to_string()),
            ("state", c.state.as_str().to_owned()),
        ];
        deployments.get_or_create(&labels).set(i64::try_from(c.count).unwrap_or(i64::MAX));
    }
    registry.register(
        "conman_deployments",
        "Deployments in the store per app id, environment id and state (outcome once ended)",
        deployments,
    );
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_prints_histograms_and_the_count_gauge() {
        observe_queue_wait(JobType::GateSubmit, Duration::from_millis(3));
        observe_run(JobType::GateSubmit, Duration::from_millis(250));
        let app = AppId(uuid::Uuid::nil());
        let jobs = vec![(JobType::GateSubmit, JobState::Succeeded, 7), (JobType::Notify, JobState::Queued, 2)];
        let env = conman_core::ids::EnvironmentId(uuid::Uuid::max());
        let deployments = vec![DeploymentCount {
            app_id: app,
            environment_id: env,
            state: conman_core::domain::deployment::DeploymentState::Failed,
            count: 3,
        }];
        let text = render(&StoreCounts { jobs, queue_depths: vec![(app, 4)], deployments });
        assert!(text.contains("# TYPE conman_job_queue_wait_seconds histogram"), "{text}");
        assert!(text.contains("conman_job_queue_wait_seconds_count{type=\"gate_submit\"}"), "{text}");
        assert!(text.contains("# TYPE conman_job_run_seconds histogram"), "{text}");
        assert!(text.contains("conman_job_run_seconds_bucket{le=\"0.32\",type=\"gate_submit\"}"), "{text}");
        assert!(text.contains("conman_jobs{type=\"gate_submit\",state=\"succeeded\"} 7"), "{text}");
        assert!(text.contains("conman_jobs{type=\"notify\",state=\"queued\"} 2"), "{text}");
        assert!(text.contains("# TYPE conman_release_queue_depth gauge"), "{text}");
        assert!(text.contains(&format!("conman_release_queue_depth{{app=\"{app}\"}} 4")), "{text}");
        let line = format!("conman_deployments{{app=\"{app}\",environment=\"{env}\",state=\"failed\"}} 3");
        assert!(text.contains(&line), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn an_assembly_result_feeds_the_composition_metrics() {
        let result = serde_json::json!({ "compose_ms": 12.5, "included": 3, "dropped": 1, "gates": 1 });
        observe_result(JobType::ReleaseAssemble, &result);
        observe_result(JobType::GateSubmit, &serde_json::json!({ "included": 100 }));
        let text = render(&StoreCounts::default());
        assert!(text.contains("conman_release_composition_seconds_count 1"), "{text}");
        assert!(text.contains("conman_release_changesets_composed_total 3"), "{text}");
        assert!(text.contains("conman_release_changesets_conflicted_total 1"), "{text}");
    }

    #[test]
    fn deploy_attempts_and_drift_refusals_are_counted() {
        observe_deploy("succeeded", Duration::from_millis(40));
        observe_deploy("failed", Duration::from_millis(900));
        let app = AppId(uuid::Uuid::max());
        observe_drift_blocked(app);
        observe_drift_blocked(app);
        let text = render(&StoreCounts::default());
        assert!(text.contains("# TYPE conman_deploy_duration_seconds histogram"), "{text}");
        assert!(text.contains("conman_deploy_duration_seconds_count{outcome=\"succeeded\"} 1"), "{text}");
        assert!(text.contains("conman_deploy_duration_seconds_count{outcome=\"failed\"} 1"), "{text}");
        assert!(text.contains(&format!("conman_deploys_drift_blocked_total{{app=\"{app}\"}} 2")), "{text}");
    }
}
