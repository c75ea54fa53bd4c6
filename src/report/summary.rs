//! The end-of-run summary: wall and CPU time, peak memory, levels reached,
//! thread changes, kernel OOM kills, the leak verdict, and how the job ended.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::exit::JobEnd;
use crate::policy::{Decision, LeakVerdict, Level, MemoryThresholds, Observation, PolicyConfig};
use crate::report::stages::StageSummary;
use crate::sample::job::JobSample;
use crate::units::{format_elapsed, format_size};

/// What `resctl daemon` did to a job's cgroup (the control socket's `notice` request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeAction {
    /// Paused (`cgroup.freeze`).
    Freeze,
    /// Resumed.
    Thaw,
    /// About to be killed (`cgroup.kill`), the configured last resort.
    Kill,
}

impl NoticeAction {
    /// The action's word, as the daemon's journal has it.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeAction::Freeze => "freeze",
            NoticeAction::Thaw => "thaw",
            NoticeAction::Kill => "kill",
        }
    }
}

/// What a run amounted to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSummary {
    /// How the job ended.
    pub end: JobEnd,
    /// The exit code resctl returns.
    pub exit_code: i32,
    /// Wall-clock time of the job.
    #[serde(with = "crate::units::serde_secs")]
    pub wall: Duration,
    /// CPU time (user + system) of the job and its waited-for descendants.
    #[serde(with = "crate::units::serde_secs")]
    pub cpu: Duration,
    /// Peak memory of the job (charge less page cache, [`JobSample::memory_bytes`]): the
    /// highest sample or peak between samples ([`Observation::highest_memory`]).
    pub peak_memory: u64,
    /// The job's hard memory limit, if any.
    pub memory_limit: Option<u64>,
    /// The job's memory levels (bytes). Absent in traces recorded before it existed.
    #[serde(default)]
    pub memory_levels: Option<MemoryThresholds>,
    /// Highest level reached.
    pub highest_level: Level,
    /// Highest level of the job's memory alone (the overall level also counts CPU and PSI).
    /// Absent in traces recorded before it existed.
    #[serde(default)]
    pub highest_memory_level: Level,
    /// Thread count at the start, the lowest, and at the end.
    pub threads_initial: u32,
    /// Lowest thread count recommended.
    pub threads_lowest: u32,
    /// Thread count at the end.
    pub threads_final: u32,
    /// Highest thread count. Absent in traces recorded before it existed.
    #[serde(default)]
    pub threads_highest: u32,
    /// How many times the count changed.
    pub thread_changes: u32,
    /// Processes the kernel's OOM killer killed in the job's cgroup.
    pub oom_kills: u64,
    /// Times the job hit memory.high (v2) — throttled and reclaimed.
    pub high_events: u64,
    /// The last leak verdict, if there were enough samples to fit.
    pub leak: Option<LeakVerdict>,
    /// The configured leak window (a verdict needs half of it covered).
    #[serde(with = "crate::units::serde_secs")]
    pub leak_window: Duration,
    /// Where the job ran.
    pub placement: String,
    /// Stages the job reported through the control socket, in the order they ended.
    #[serde(default)]
    pub stages: Vec<StageSummary>,
    /// Why `resctl daemon` killed the job, where it said it would (its slice's configured
    /// last resort); escaped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub killed_by_daemon: Option<String>,
}

/// Accumulates the summary tick by tick.
#[derive(Debug)]
pub struct SummaryBuilder {
    peak_memory: u64,
    memory_levels: MemoryThresholds,
    highest_level: Level,
    highest_memory_level: Level,
    threads_initial: u32,
    threads_lowest: u32,
    threads_final: u32,
    threads_highest: u32,
    thread_changes: u32,
    oom_kills: u64,
    high_events: u64,
    leak: Option<LeakVerdict>,
    leak_window: Duration,
    stages: Vec<StageSummary>,
    killed_by_daemon: Option<String>,
}

impl SummaryBuilder {
    /// Starts with the initial thread count, and the levels and leak window of `config`.
    pub fn new(threads_initial: u32, config: &PolicyConfig) -> Self {
        SummaryBuilder {
            peak_memory: 0,
            memory_levels: config.memory_thresholds(),
            highest_level: Level::Normal,
            highest_memory_level: Level::Normal,
            threads_initial,
            threads_lowest: threads_initial,
            threads_final: threads_initial,
            threads_highest: threads_initial,
            thread_changes: 0,
            oom_kills: 0,
            high_events: 0,
            leak: None,
            leak_window: config.leak_window,
            stages: Vec::new(),
            killed_by_daemon: None,
        }
    }

    /// Takes in one sample's event counters and its observation's memory (the sample's, and
    /// the peak since the previous one).
    pub fn add_sample(&mut self, sample: &JobSample, observation: &Observation) {
        self.peak_memory = self.peak_memory.max(observation.highest_memory());
        if let Some(cgroup) = &sample.cgroup {
            self.oom_kills = self.oom_kills.max(cgroup.events.oom_kill.unwrap_or(0));
            self.high_events = self.high_events.max(cgroup.events.high.unwrap_or(0));
        }
    }

    /// Takes in that `resctl daemon` is killing the job, and why (escaped).
    pub fn killed_by_daemon(&mut self, reason: &str) {
        self.killed_by_daemon = Some(reason.to_owned());
    }

    /// Takes in a stage the job ended.
    pub fn add_stage(&mut self, stage: StageSummary) {
        self.stages.push(stage);
    }

    /// Takes in one decision.
    pub fn add_decision(&mut self, decision: &Decision) {
        self.highest_level = self.highest_level.max(decision.level);
        self.highest_memory_level = self.highest_memory_level.max(decision.memory_level);
        if decision.threads != decision.previous_threads {
            self.thread_changes += 1;
        }
        self.threads_lowest = self.threads_lowest.min(decision.threads);
        self.threads_final = decision.threads;
        self.threads_highest = self.threads_highest.max(decision.threads);
        if let Some(leak) = &decision.leak {
            self.leak = Some(leak.clone());
        }
    }

    /// The finished summary.
    pub fn finish(
        self,
        end: JobEnd,
        wall: Duration,
        cpu: Duration,
        memory_limit: Option<u64>,
        placement: String,
    ) -> RunSummary {
        RunSummary {
            end,
            exit_code: end.shell_code(),
            wall,
            cpu,
            peak_memory: self.peak_memory,
            memory_limit,
            memory_levels: Some(self.memory_levels),
            highest_level: self.highest_level,
            highest_memory_level: self.highest_memory_level,
            threads_initial: self.threads_initial,
            threads_lowest: self.threads_lowest,
            threads_final: self.threads_final,
            threads_highest: self.threads_highest,
            thread_changes: self.thread_changes,
            oom_kills: self.oom_kills,
            high_events: self.high_events,
            leak: self.leak,
            leak_window: self.leak_window,
            placement,
            stages: self.stages,
            killed_by_daemon: self.killed_by_daemon,
        }
    }
}

impl RunSummary {
    /// True when the kernel's OOM killer ended the job.
    pub fn killed_by_oom(&self) -> bool {
        self.oom_kills > 0 && self.end == JobEnd::Signaled(nix::libc::SIGKILL)
    }

    /// The summary as lines for a person.
    pub fn render(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let limit = self
            .memory_limit
            .map(|l| format!(" of {} limit", format_size(l)))
            .unwrap_or_default();
        lines.push(format!(
            "summary: job {} after {} (exit status {})",
            self.end.describe(),
            format_elapsed(self.wall),
            self.exit_code
        ));
        let by_daemon = self
            .killed_by_daemon
            .as_ref()
            .filter(|_| self.end == JobEnd::Signaled(nix::libc::SIGKILL));
        if let Some(reason) = by_daemon {
            lines.push(format!("summary: resctl daemon killed the job: {reason}"));
        }
        if self.killed_by_oom() {
            lines.push(format!(
                "summary: the kernel's OOM killer killed the job: it needed more than its memory limit{} ({} OOM kill{})",
                self.memory_limit.map(|l| format!(" of {}", format_size(l))).unwrap_or_default(),
                self.oom_kills,
                if self.oom_kills == 1 { "" } else { "s" }
            ));
        } else if self.oom_kills > 0 {
            lines.push(format!(
                "summary: the kernel's OOM killer killed {} process(es) inside the job",
                self.oom_kills
            ));
        }
        let memory_level = if self.highest_memory_level == self.highest_level {
            String::new()
        } else {
            format!(" (memory {})", self.highest_memory_level)
        };
        lines.push(format!(
            "summary: cpu {}, peak memory {}{}, highest level {}{memory_level}",
            format_elapsed(self.cpu),
            format_size(self.peak_memory),
            limit,
            self.highest_level
        ));
        lines.push(format!(
            "summary: threads {} at start, {} lowest, {} at end, {} change{}",
            self.threads_initial,
            self.threads_lowest,
            self.threads_final,
            self.thread_changes,
            if self.thread_changes == 1 { "" } else { "s" }
        ));
        if self.high_events > 0 {
            lines.push(format!(
                "summary: throttled at memory.high {} time{}",
                self.high_events,
                if self.high_events == 1 { "" } else { "s" }
            ));
        }
        match &self.leak {
            Some(leak) if leak.suspected || leak.window * 2 >= self.leak_window => {
                lines.push(format!("summary: leak check: {}", leak.message))
            }
            _ => lines.push(format!(
                "summary: leak check: run too short to judge (a verdict needs half of the {} window)",
                format_elapsed(self.leak_window)
            )),
        }
        for stage in &self.stages {
            lines.push(format!("summary: {}", stage.describe()));
        }
        lines.push(format!("summary: placement: {}", self.placement));
        lines
    }
}
