//! Job metrics: a process-wide Prometheus registry (`prometheus-client`)
//! holding the histograms the workers record (job waits and runs, release
//! composition time and counts), and [`render`], which prints
//! them together with a `conman_jobs{type,state}` gauge built from store
//! counts in the text exposition format (OpenMetrics flavour, ending in
//! `# EOF`; serve it as `application/openmetrics-text; version=1.0.0;
//! charset=utf-8`, see [`CONTENT_TYPE`]).
//!
//! Invariants: the histograms are created once per process
//! ([`std::sync::OnceLock`]) and only ever observed, so every render sees
//! the same series; label values are the wire names of job types and
//! states, never free text.

use std::sync::OnceLock;
use std::time::Duration;

use conman_core::domain::job::{JobState, JobType};
use conman_core::ids::AppId;
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
/// Histograms labelled by job type.
type ByType = Family<TypeLabel, Histogram, fn() -> Histogram>;

struct JobMetrics {
    queue_wait: ByType,
    run: ByType,
    /// Time release assemblies spent composing.
    composition: Histogram,
    /// Changesets assemblies included.
    composed: Counter,
    /// Changesets assemblies dropped for a conflict.
    conflicted: Counter,
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

/// The registry's histograms plus `conman_jobs{type,state}` set from
/// `counts` (as `Conman::job_counts` answers them) and
/// `conman_release_queue_depth{app}` from `depths` (`Conman::queue_depths`),
/// in the Prometheus text format.
pub fn render(counts: &[(JobType, JobState, u64)], depths: &[(AppId, u64)]) -> String {
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
    let jobs = Family::<[(&'static str, &'static str); 2], Gauge>::default();
    for (job_type, state, count) in counts {
        let value = i64::try_from(*count).unwrap_or(i64::MAX);
        jobs.get_or_create(&[("type", job_type.as_str()), ("state", state.as_str())]).set(value);
    }
    registry.register("conman_jobs", "Jobs in the store by type and state", jobs);
    let queue = Family::<[(&'static str, String); 1], Gauge>::default();
    for (app, depth) in depths {
        queue.get_or_create(&[("app", app.to_string())]).set(i64::try_from(*depth).unwrap_or(i64::MAX));
    }
    registry.register("conman_release_queue_depth", "Changesets queued for release, per app id", queue);
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
        let counts = [(JobType::GateSubmit, JobState::Succeeded, 7), (JobType::Notify, JobState::Queued, 2)];
        let text = render(&counts, &[(app, 4)]);
        assert!(text.contains("# TYPE conman_job_queue_wait_seconds histogram"), "{text}");
        assert!(text.contains("conman_job_queue_wait_seconds_count{type=\"gate_submit\"}"), "{text}");
        assert!(text.contains("# TYPE conman_job_run_seconds histogram"), "{text}");
        assert!(text.contains("conman_job_run_seconds_bucket{le=\"0.32\",type=\"gate_submit\"}"), "{text}");
        assert!(text.contains("conman_jobs{type=\"gate_submit\",state=\"succeeded\"} 7"), "{text}");
        assert!(text.contains("conman_jobs{type=\"notify\",state=\"queued\"} 2"), "{text}");
        assert!(text.contains("# TYPE conman_release_queue_depth gauge"), "{text}");
        assert!(text.contains(&format!("conman_release_queue_depth{{app=\"{app}\"}} 4")), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn an_assembly_result_feeds_the_composition_metrics() {
        let result = serde_json::json!({ "compose_ms": 12.5, "included": 3, "dropped": 1, "gates": 1 });
        observe_result(JobType::ReleaseAssemble, &result);
        observe_result(JobType::GateSubmit, &serde_json::json!({ "included": 100 }));
        let text = render(&[], &[]);
        assert!(text.contains("conman_release_composition_seconds_count 1"), "{text}");
        assert!(text.contains("conman_release_changesets_composed_total 3"), "{text}");
        assert!(text.contains("conman_release_changesets_conflicted_total 1"), "{text}");
    }
}
