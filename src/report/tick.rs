//! The reporter of one job: what each tick says to people and to the record — a level
//! entered or left, a thread count changed, a reclaim asked, a leak suspected, a stage
//! ended, the job's limit changed or its cgroup removed underneath (said once) — one log
//! entry per event, never one per sample; the `--record` trace line of every tick; and,
//! when the job has ended, the summary.

use std::time::Duration;

use crate::exit::JobEnd;
use crate::policy::{Decision, Level, Observation, PolicyConfig};
use crate::report::metrics::{Figures, Target};
use crate::report::metrics_export::MetricsExport;
use crate::report::record::{Recorder, TraceLine};
use crate::report::stages::StageSummary;
use crate::report::summary::{NoticeAction, RunSummary, SummaryBuilder};
use crate::sample::job::JobSample;
use crate::units::format_size;

/// What the actuator did for one decision (see `act::actuator`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Actions {
    /// The thread count changed: `Ok` when it was published, else why the thread file
    /// could not be written (the jobserver and the socket follow regardless).
    pub published: Option<Result<(), String>>,
    /// A reclaim was asked: `Ok(bytes)` when the kernel took the request, else why not.
    pub reclaimed: Option<Result<u64, String>>,
}

/// Everything one tick produced, handed to the reporter last.
pub struct TickRecord<'a> {
    /// The sample.
    pub sample: JobSample,
    /// A read error of the sample, if any (said, the sample degraded).
    pub sampling_error: Option<String>,
    /// What the policy saw.
    pub observation: Observation,
    /// What it decided.
    pub decision: Decision,
    /// What the actuator did about it.
    pub actions: Actions,
    /// The job's memory limit before this tick (the policy follows changes).
    pub limit_before: Option<u64>,
    /// The policy's configuration after this tick.
    pub config: &'a PolicyConfig,
    /// Stages the job ended during this tick.
    pub stages: Vec<StageSummary>,
    /// How long taking the sample took.
    pub sample_duration: Duration,
}

/// Reports one job's ticks and, at the end, its summary.
pub struct TickReporter {
    cgroup_label: String,
    last_level: Level,
    summary: SummaryBuilder,
    recorder: Option<Recorder>,
    /// The job's metrics and their outputs, when asked (`--metrics-listen`/`-textfile`).
    metrics: Option<(MetricsExport, Target)>,
}

impl TickReporter {
    /// A reporter for the job in `cgroup_label` (empty without a cgroup), writing the trace
    /// into `recorder` when recording.
    pub fn new(
        cgroup_label: String,
        initial_threads: u32,
        config: &PolicyConfig,
        recorder: Option<Recorder>,
    ) -> TickReporter {
        TickReporter {
            cgroup_label,
            last_level: Level::Normal,
            summary: SummaryBuilder::new(initial_threads, config),
            recorder,
            metrics: None,
        }
    }

    /// Also exports the job's figures every tick, as `job`.
    pub fn with_metrics(mut self, export: Option<MetricsExport>, job: &str) -> TickReporter {
        self.metrics = export.map(|export| (export, Target::job(job)));
        self
    }

    /// Reports one tick.
    pub fn tick(&mut self, tick: TickRecord<'_>) {
        if let Some(err) = &tick.sampling_error {
            tracing::warn!("sampling: {err}");
        }
        self.kernel_changes(&tick);
        self.decision(&tick.decision, &tick.actions, tick.config);
        self.export_metrics(&tick);
        for stage in tick.stages {
            tracing::info!(
                resctl_cgroup = %self.cgroup_label,
                resctl_level = %stage.highest_level,
                resctl_action = "stage",
                "{}",
                stage.describe()
            );
            self.summary.add_stage(stage);
        }
        if tick.decision.level != self.last_level {
            tracing::info!(
                resctl_cgroup = %self.cgroup_label,
                resctl_level = %tick.decision.level,
                resctl_action = "level",
                "level {} -> {}: {}",
                self.last_level,
                tick.decision.level,
                tick.decision.reason
            );
            self.last_level = tick.decision.level;
        }
        self.summary.add_sample(&tick.sample, &tick.observation);
        self.summary.add_decision(&tick.decision);
        record(
            &mut self.recorder,
            TraceLine::Tick {
                sample: Box::new(tick.sample),
                observation: tick.observation,
                decision: tick.decision,
            },
        );
    }

    /// The tick's figures and actions into the metrics, and the textfile written.
    fn export_metrics(&mut self, tick: &TickRecord<'_>) {
        let Some((export, job)) = &mut self.metrics else {
            return;
        };
        let cgroup = tick.sample.cgroup.as_ref();
        let leak = tick.decision.leak.as_ref();
        let metrics = export.metrics();
        metrics.observe(
            job,
            &Figures {
                memory: tick.observation.memory_bytes,
                peak: cgroup.and_then(|cgroup| cgroup.memory_peak),
                limit: tick
                    .config
                    .memory_limit
                    .filter(|&limit| limit != crate::policy::NO_LIMIT),
                level: tick.decision.level,
                memory_psi: cgroup
                    .and_then(|cgroup| cgroup.memory_pressure.as_ref())
                    .map(|psi| psi.some.avg10),
                threads: Some(tick.decision.threads),
                leak_slope: leak.map(|leak| leak.slope_bytes_per_sec),
                time_to_limit: leak.and_then(|leak| leak.time_to_limit),
                oom_kills: cgroup.and_then(|cgroup| cgroup.events.oom_kill),
            },
        );
        if tick.decision.changed() {
            metrics.count_action(job, "threads");
        }
        if let Some(Ok(_)) = tick.actions.reclaimed {
            metrics.count_action(job, "reclaim");
        }
        if tick.decision.level != self.last_level {
            metrics.count_action(job, "level");
        }
        metrics.own(tick.sample_duration);
        export.publish();
    }

    /// The job's cgroup removed underneath, or its limit changed (the levels follow it).
    fn kernel_changes(&self, tick: &TickRecord<'_>) {
        let label = self.cgroup_label.as_str();
        let show = |limit: Option<u64>| limit.map_or_else(|| "none".to_owned(), format_size);
        if tick.sample.cgroup_gone {
            tracing::warn!(
                resctl_cgroup = %label,
                resctl_action = "cgroup-gone",
                "the job's cgroup was removed underneath resctl: its limit ({}) no longer \
                 applies and its figures are gone; the job keeps running and is watched \
                 through /proc from now on",
                show(tick.limit_before)
            );
        }
        if tick.config.memory_limit != tick.limit_before {
            tracing::info!(
                resctl_cgroup = %label,
                resctl_action = "limit",
                "memory limit {} -> {}: levels now moderate {} / high {} / critical {}",
                show(tick.limit_before),
                show(tick.config.memory_limit),
                format_size(tick.config.memory_moderate),
                format_size(tick.config.memory_high),
                format_size(tick.config.memory_critical),
            );
        }
    }

    /// A thread count changed, a reclaim asked, a leak suspected — and what came of it.
    fn decision(&self, decision: &Decision, actions: &Actions, config: &PolicyConfig) {
        let label = self.cgroup_label.as_str();
        if decision.changed() {
            tracing::info!(
                resctl_cgroup = %label,
                resctl_level = %decision.level,
                resctl_action = "threads",
                resctl_threads = decision.threads,
                "threads {} -> {}: {}",
                decision.previous_threads,
                decision.threads,
                decision.reason
            );
        }
        if let Some(Err(err)) = &actions.published {
            tracing::warn!("could not publish the thread count: {err}");
        }
        match &actions.reclaimed {
            Some(Ok(bytes)) => tracing::info!(
                resctl_cgroup = %label,
                resctl_action = "reclaim",
                "asked the kernel to reclaim {} from the job (cleanup level {})",
                format_size(*bytes),
                format_size(config.memory_cleanup)
            ),
            Some(Err(err)) => tracing::debug!("reclaim: {err}"),
            None => {}
        }
        if let Some(leak) = decision.leak.as_ref().filter(|leak| leak.suspected) {
            tracing::warn!(resctl_cgroup = %label, resctl_action = "leak", "{}", leak.message);
        }
    }

    /// What `resctl daemon` said it did to the job (a `notice` on the control socket,
    /// reason escaped): logged at once, and a kill kept for the summary.
    pub fn notice(&mut self, action: NoticeAction, reason: &str) {
        tracing::warn!(
            resctl_cgroup = %self.cgroup_label,
            resctl_action = action.as_str(),
            resctl_reason = %reason,
            "resctl daemon: {}: {reason}",
            action.as_str()
        );
        if action == NoticeAction::Kill {
            self.summary.killed_by_daemon(reason);
        }
    }

    /// The last sample, taken after the job ended (the final peak and OOM counters), and
    /// the stages that ended with it: counted in the summary, not logged one by one.
    pub fn last(
        &mut self,
        sample: &JobSample,
        observation: &Observation,
        stages: Vec<StageSummary>,
    ) {
        self.summary.add_sample(sample, observation);
        for stage in stages {
            self.summary.add_stage(stage);
        }
    }

    /// The job has ended: logs the summary (one entry per line) and records it.
    pub fn finish(
        mut self,
        end: JobEnd,
        wall: Duration,
        cpu: Duration,
        limit: Option<u64>,
        placement: String,
    ) -> RunSummary {
        let summary = self.summary.finish(end, wall, cpu, limit, placement);
        for line in summary.render() {
            tracing::info!(
                resctl_cgroup = %self.cgroup_label,
                resctl_level = %summary.highest_level,
                resctl_action = "summary",
                resctl_threads = summary.threads_final,
                "{line}"
            );
        }
        record(
            &mut self.recorder,
            TraceLine::End {
                summary: Box::new(summary.clone()),
            },
        );
        summary
    }
}

/// Appends a trace line; a failed write stops the recording (said once).
fn record(recorder: &mut Option<Recorder>, line: TraceLine) {
    if let Some(writer) = recorder.as_mut() {
        if let Err(err) = writer.write(&line) {
            tracing::warn!("--record: {err}; recording stopped");
            *recorder = None;
        }
    }
}
