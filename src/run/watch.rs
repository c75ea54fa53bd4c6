//! The watch pipeline of one job, one tick at a time: **sample → assess → decide → act →
//! report** — the [`JobSampler`] reads the kernel, the [`Observer`] turns samples into
//! observations, the [`Policy`] (pure) decides, the [`Actuator`] changes what the decision
//! says, the [`TickReporter`] logs and records it. `resctl run` drives one; the daemon runs
//! a slice's samples through the same observer and policy (`daemon::slice`).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::act::actuator::Actuator;
use crate::control::protocol::StatusSnapshot;
use crate::policy::{Policy, PolicyConfig};
use crate::report::tick::{TickRecord, TickReporter};
use crate::sample::job::JobSampler;

use super::observe::Observer;

/// The pipeline of one job.
pub struct Watch {
    sampler: JobSampler,
    observer: Observer,
    policy: Policy,
    actuator: Actuator,
    reporter: TickReporter,
    cgroup_gone: bool,
    /// The last tick's worker count, memory and level, for [`Watch::status_line`].
    last: Option<(u32, u64, crate::policy::Level)>,
}

impl Watch {
    /// A pipeline from its five stages.
    pub fn new(
        sampler: JobSampler,
        observer: Observer,
        policy: Policy,
        actuator: Actuator,
        reporter: TickReporter,
    ) -> Watch {
        Watch {
            sampler,
            observer,
            policy,
            actuator,
            reporter,
            cgroup_gone: false,
            last: None,
        }
    }

    /// One tick at `at` (time since the job started).
    pub fn tick(&mut self, at: Duration) {
        let sampling_started = std::time::Instant::now();
        let sample = self.sampler.sample(at);
        let sample_duration = sampling_started.elapsed();
        let sampling_error = self.sampler.take_error();
        let mut observation = self.observer.observe(&sample);
        if self.actuator.restart_peak() {
            self.observer.note_peak_reset();
        }
        observation.progress_units = self.actuator.progress_units();
        observation.ceiling = self.actuator.ceiling();
        self.take_notices();
        let limit_before = self.policy.config().memory_limit;
        let decision = self.policy.step(&observation);
        if sample.cgroup_gone {
            self.cgroup_gone = true;
            self.actuator.cgroup_gone();
        }
        let actions = self.actuator.act(&decision);
        self.actuator.publish_status(StatusSnapshot::new(
            &decision,
            &sample,
            self.policy.config(),
            observation.cpu_percent,
            self.observer.cpu_seconds(&sample),
        ));
        self.last = Some((decision.threads, observation.memory_bytes, decision.level));
        let stages = self.actuator.finished_stages();
        self.reporter.tick(TickRecord {
            sample,
            sampling_error,
            observation,
            decision,
            actions,
            limit_before,
            config: self.policy.config(),
            stages,
            sample_duration,
        });
    }

    /// Logs what `resctl daemon` said it did to the job since the last tick.
    fn take_notices(&mut self) {
        for (action, reason) in self.actuator.take_notices() {
            self.reporter.notice(action, &reason);
        }
    }

    /// One line on the last tick (`3 threads, memory 1.2G of 4G, normal`), for systemd's
    /// STATUS=; empty before the first tick. Made when asked, not every tick.
    pub fn status_line(&self) -> String {
        let Some((threads, memory, level)) = self.last else {
            return String::new();
        };
        let limit = self
            .policy
            .config()
            .memory_limit
            .filter(|&limit| limit != crate::policy::NO_LIMIT)
            .map(|limit| format!(" of {}", crate::units::format_size(limit)))
            .unwrap_or_default();
        format!(
            "{threads} threads, memory {}{limit}, {level}",
            crate::units::format_size(memory)
        )
    }

    /// The policy's configuration in force (its levels follow the job's limit).
    pub fn config(&self) -> &PolicyConfig {
        self.policy.config()
    }

    /// Whether the job's cgroup was removed underneath.
    pub fn cgroup_gone(&self) -> bool {
        self.cgroup_gone
    }

    /// The job has ended: stops the actuator's servers, takes a last sample (the final peak
    /// and OOM counters) and hands back the reporter for the summary, with the limit in
    /// force. The pipeline's files are closed on return.
    pub fn finish(mut self, at: Duration) -> (TickReporter, Option<u64>, Learning) {
        // A kill said just before the job died has had no tick to be logged in.
        self.take_notices();
        let stages = self.actuator.finish();
        let last = self.sampler.sample(at);
        let observation = self.observer.observe(&last);
        self.reporter.last(&last, &observation, stages);
        let learning = Learning {
            marginal: self.policy.marginal_memory_per_worker(),
            spread: self.policy.memory_spread(at),
            peaks: self.policy.peaks_per_count(),
            throughput: self.policy.measured_throughput(),
        };
        (self.reporter, self.policy.config().memory_limit, learning)
    }
}

/// What the policy learned about the job by its end, for the job's history.
#[derive(Debug, Clone, Default)]
pub struct Learning {
    /// Memory one more worker costs, bytes, when two counts were measured.
    pub marginal: Option<u64>,
    /// How far the memory per worker strayed from that line, bytes (with `marginal`).
    pub spread: Option<u64>,
    /// The highest settled memory at each worker count over the run, bytes.
    pub peaks: BTreeMap<u32, u64>,
    /// Units per second per worker count measured (jobs that report progress).
    pub throughput: BTreeMap<u32, f64>,
}
