//! Per-stage accounting for pipelines that tell resctl where their stages begin and end
//! (the original's `monitor_execution`: pre-stage check, per-stage monitoring, post-stage
//! analysis). Pure code: time, memory, level and CPU time come in as arguments.
//!
//! A stage is known by its name; stages with different names may nest or overlap. Every
//! open stage sees every tick ([`StageTracker::observe`]): its peak memory, its highest
//! level and a least-squares line through its memory samples (MiB per minute, with r²) —
//! the policy's own [`MemoryTrend`], so a stage that runs for hours keeps O(1) state. A leak
//! is suspected for a stage by the policy's one [`LeakRule`]: the trend extrapolated over
//! the leak window reaches the leak growth, the fit is good enough, there are enough
//! samples and they cover at least half the window (a short stage that loads data always
//! "grows fast"; that is not a leak).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::job_text::JobText;
use crate::policy::defaults::MIB;
use crate::policy::{LeakRule, Level, MemoryTrend};
use crate::units::{format_elapsed, format_size};

/// Most stages open at once (protects the server from a client that only opens stages).
pub const MAX_OPEN_STAGES: usize = 256;
/// Longest stage name, bytes.
pub const MAX_STAGE_NAME_BYTES: usize = 256;

/// Why a stage could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StageError {
    /// A stage of that name is already open.
    #[error("stage {0:?} is already open")]
    AlreadyOpen(JobText),
    /// The name is empty.
    #[error("stage name is empty")]
    EmptyName,
    /// The name is longer than [`MAX_STAGE_NAME_BYTES`].
    #[error("stage name is {0} bytes long, at most {MAX_STAGE_NAME_BYTES} allowed")]
    NameTooLong(usize),
    /// [`MAX_OPEN_STAGES`] stages are open already.
    #[error("{MAX_OPEN_STAGES} stages are open already; end some first")]
    TooMany,
}

/// What one stage amounted to (the original's post-stage analysis).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageSummary {
    /// The stage's name, as the job sent it (shown escaped).
    pub name: JobText,
    /// Wall time from start to end, seconds.
    pub duration_secs: f64,
    /// Highest job memory seen while the stage was open (including the value in force
    /// when it started), bytes.
    pub peak_memory: u64,
    /// CPU time the job used while the stage was open, seconds.
    pub cpu_secs: f64,
    /// Highest overall level seen while the stage was open.
    pub highest_level: Level,
    /// Least-squares slope of the job's memory during the stage, MiB per minute; `None`
    /// with fewer than two samples spread over time.
    pub trend_mb_per_min: Option<f64>,
    /// r² of that fit (0..=1); `None` when there is no trend.
    pub trend_fit: Option<f64>,
    /// The trend meets the [`LeakRule`].
    pub leak_suspected: bool,
    /// Worker count the stage was told to use when it started.
    pub workers: u32,
    /// Memory samples taken while the stage was open.
    pub samples: usize,
    /// The job ended while the stage was still open: its figures run to the job's end.
    #[serde(default)]
    pub unfinished: bool,
}

impl StageSummary {
    /// One line for people: "stage models: 2m5s, 4 workers, peak 3.1G, CPU 250.0s, highest
    /// high, memory +1.2 MiB/min (r² 0.93)".
    pub fn describe(&self) -> String {
        let duration = Duration::try_from_secs_f64(self.duration_secs).unwrap_or_default();
        let mut line = format!(
            "stage {}: {}, {} worker{}, peak {}, CPU {:.1}s, highest level {}",
            self.name,
            format_elapsed(duration),
            self.workers,
            if self.workers == 1 { "" } else { "s" },
            format_size(self.peak_memory),
            self.cpu_secs,
            self.highest_level
        );
        if let (Some(trend), Some(fit)) = (self.trend_mb_per_min, self.trend_fit) {
            line.push_str(&format!(", memory {trend:+.1} MiB/min (r² {fit:.2})"));
        }
        if self.leak_suspected {
            line.push_str(", leak suspected");
        }
        if self.unfinished {
            line.push_str(", still open when the job ended");
        }
        line
    }
}

/// A stage still running, as shown in the status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenStage {
    /// The stage's name, as the job sent it (shown escaped).
    pub name: JobText,
    /// Worker count the stage was told to use.
    pub workers: u32,
    /// Time since it started, seconds.
    pub elapsed_secs: f64,
}

/// One open stage.
#[derive(Debug, Clone)]
struct Running {
    name: JobText,
    workers: u32,
    started: Duration,
    cpu_at_start: Duration,
    peak_memory: u64,
    highest_level: Level,
    trend: MemoryTrend,
    /// Time of the first and the latest memory sample, since the stage started.
    sampled: Option<(Duration, Duration)>,
}

/// The open stages and the latest reading (to seed stages that start between ticks).
#[derive(Debug, Clone, Default)]
pub struct StageTracker {
    open: Vec<Running>,
    latest: Option<(u64, Level)>,
    rule: LeakRule,
}

impl StageTracker {
    /// A tracker with no open stage, judging leaks by `rule`.
    pub fn new(rule: LeakRule) -> Self {
        Self {
            open: Vec::new(),
            latest: None,
            rule,
        }
    }

    /// Replaces the leak rule (the configuration may arrive after the first stage).
    pub fn set_leak_rule(&mut self, rule: LeakRule) {
        self.rule = rule;
    }

    /// Opens stage `name` at `at`, told to use `workers` workers, with the job's cumulative
    /// CPU time `cpu_time`. Its peak memory and highest level start from the latest
    /// observation, if any.
    ///
    /// # Errors
    ///
    /// An empty or too long name, a name already open, or too many open stages.
    pub fn start(
        &mut self,
        name: &str,
        workers: u32,
        at: Duration,
        cpu_time: Duration,
    ) -> Result<(), StageError> {
        if name.is_empty() {
            return Err(StageError::EmptyName);
        }
        if name.len() > MAX_STAGE_NAME_BYTES {
            return Err(StageError::NameTooLong(name.len()));
        }
        if self.is_open(name) {
            return Err(StageError::AlreadyOpen(JobText::from(name)));
        }
        if self.open.len() >= MAX_OPEN_STAGES {
            return Err(StageError::TooMany);
        }
        let (peak_memory, highest_level) = self.latest.unwrap_or((0, Level::Normal));
        self.open.push(Running {
            name: JobText::from(name),
            workers,
            started: at,
            cpu_at_start: cpu_time,
            peak_memory,
            highest_level,
            trend: MemoryTrend::default(),
            sampled: None,
        });
        Ok(())
    }

    /// Feeds one tick (the job's memory and overall level at `at`) to every open stage.
    /// CPU time is read only at a stage's start and end.
    pub fn observe(&mut self, at: Duration, memory_bytes: u64, level: Level) {
        self.latest = Some((memory_bytes, level));
        for stage in &mut self.open {
            stage.peak_memory = stage.peak_memory.max(memory_bytes);
            stage.highest_level = stage.highest_level.max(level);
            let since_start = at.saturating_sub(stage.started);
            stage.trend.add(since_start, memory_bytes);
            let first = stage.sampled.map_or(since_start, |(first, _)| first);
            stage.sampled = Some((first, since_start));
        }
    }

    /// Closes stage `name` at `at` and sums it up; `None` if no stage of that name is open.
    pub fn end(&mut self, name: &str, at: Duration, cpu_time: Duration) -> Option<StageSummary> {
        let index = self.open.iter().position(|stage| stage.name == name)?;
        let stage = self.open.remove(index);
        Some(self.sum_up(stage, at, cpu_time, false))
    }

    /// Closes every stage still open — the job ended without ending them — oldest first,
    /// each marked [`StageSummary::unfinished`], so no stage is missing from the summary.
    pub fn end_all(&mut self, at: Duration, cpu_time: Duration) -> Vec<StageSummary> {
        std::mem::take(&mut self.open)
            .into_iter()
            .map(|stage| self.sum_up(stage, at, cpu_time, true))
            .collect()
    }

    fn sum_up(
        &self,
        stage: Running,
        at: Duration,
        cpu_time: Duration,
        unfinished: bool,
    ) -> StageSummary {
        let line = stage.trend.line();
        let samples = stage.trend.samples();
        let span = stage
            .sampled
            .map_or(Duration::ZERO, |(first, last)| last.saturating_sub(first));
        let leak_suspected = line.is_some_and(|(slope, r_squared)| {
            self.rule.check(slope, r_squared, span, samples).suspected()
        });
        let fit = line.map(|(slope, r_squared)| (slope * 60.0 / MIB as f64, r_squared));
        StageSummary {
            name: stage.name,
            duration_secs: at.saturating_sub(stage.started).as_secs_f64(),
            peak_memory: stage.peak_memory,
            cpu_secs: cpu_time.saturating_sub(stage.cpu_at_start).as_secs_f64(),
            highest_level: stage.highest_level,
            trend_mb_per_min: fit.map(|(slope, _)| slope),
            trend_fit: fit.map(|(_, r_squared)| r_squared),
            leak_suspected,
            workers: stage.workers,
            samples,
            unfinished,
        }
    }

    /// Whether a stage of that name is open.
    pub fn is_open(&self, name: &str) -> bool {
        self.open.iter().any(|stage| stage.name == name)
    }

    /// The open stages in the order they started, with their age at `at`.
    pub fn open_stages(&self, at: Duration) -> Vec<OpenStage> {
        self.open
            .iter()
            .map(|stage| OpenStage {
                name: stage.name.clone(),
                workers: stage.workers,
                elapsed_secs: at.saturating_sub(stage.started).as_secs_f64(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyConfig;

    const GIB: u64 = 1024 * MIB;

    fn secs(value: u64) -> Duration {
        Duration::from_secs(value)
    }

    #[test]
    fn peak_level_cpu_and_duration_of_one_stage() {
        let mut tracker = StageTracker::default();
        tracker.observe(secs(9), GIB, Level::Normal);
        tracker.start("models", 4, secs(10), secs(5)).unwrap();
        tracker.observe(secs(11), 3 * GIB, Level::High);
        tracker.observe(secs(12), 2 * GIB, Level::Moderate);
        let summary = tracker.end("models", secs(13), secs(11)).unwrap();
        assert_eq!(summary.name, "models");
        assert_eq!(summary.duration_secs, 3.0);
        assert_eq!(summary.peak_memory, 3 * GIB);
        assert_eq!(summary.highest_level, Level::High);
        assert_eq!(summary.cpu_secs, 6.0);
        assert_eq!(summary.workers, 4);
        assert_eq!(summary.samples, 2);
        // 3 GiB → 2 GiB in one second: −61440 MiB/min, a perfect line.
        let trend = summary.trend_mb_per_min.unwrap();
        assert!((trend + 61440.0).abs() < 1e-6, "{trend}");
        assert!((summary.trend_fit.unwrap() - 1.0).abs() < 1e-12);
        assert!(!summary.leak_suspected);
        assert!(!tracker.is_open("models"));
    }

    #[test]
    fn stage_started_between_ticks_inherits_the_state_in_force() {
        let mut tracker = StageTracker::default();
        tracker.observe(secs(1), 5 * GIB, Level::Critical);
        tracker.start("seed", 1, secs(2), secs(0)).unwrap();
        let summary = tracker.end("seed", secs(2), secs(0)).unwrap();
        assert_eq!(summary.peak_memory, 5 * GIB);
        assert_eq!(summary.highest_level, Level::Critical);
        assert_eq!(summary.trend_mb_per_min, None);
        assert_eq!(summary.samples, 0);
    }

    #[test]
    fn overlapping_stages_see_only_their_own_ticks() {
        let mut tracker = StageTracker::default();
        tracker.start("outer", 8, secs(0), secs(0)).unwrap();
        tracker.observe(secs(1), GIB, Level::Normal);
        tracker.start("inner", 2, secs(1), secs(1)).unwrap();
        tracker.observe(secs(2), 4 * GIB, Level::Critical);
        let inner = tracker.end("inner", secs(3), secs(4)).unwrap();
        tracker.observe(secs(4), 2 * GIB, Level::Moderate);
        assert_eq!(
            tracker.open_stages(secs(5)),
            vec![OpenStage {
                name: "outer".into(),
                workers: 8,
                elapsed_secs: 5.0
            }]
        );
        let outer = tracker.end("outer", secs(5), secs(8)).unwrap();
        assert_eq!(inner.peak_memory, 4 * GIB);
        assert_eq!(inner.cpu_secs, 3.0);
        assert_eq!(inner.samples, 1);
        assert_eq!(outer.peak_memory, 4 * GIB);
        assert_eq!(outer.highest_level, Level::Critical);
        assert_eq!(outer.samples, 3);
        assert_eq!(outer.cpu_secs, 8.0);
    }

    #[test]
    fn stages_still_open_at_the_end_are_summed_up_as_unfinished() {
        let mut tracker = StageTracker::default();
        tracker.start("done", 2, secs(0), secs(0)).unwrap();
        tracker.start("outer", 4, secs(1), secs(1)).unwrap();
        tracker.start("inner", 1, secs(2), secs(1)).unwrap();
        let done = tracker.end("done", secs(3), secs(2)).unwrap();
        assert!(!done.unfinished);
        assert!(!done.describe().contains("still open"));
        let rest = tracker.end_all(secs(10), secs(5));
        let names: Vec<&str> = rest.iter().map(|stage| stage.name.as_str()).collect();
        assert_eq!(names, ["outer", "inner"], "oldest first");
        assert!(rest.iter().all(|stage| stage.unfinished));
        assert_eq!(rest[0].duration_secs, 9.0);
        assert_eq!(rest[0].cpu_secs, 4.0);
        assert!(rest[1]
            .describe()
            .ends_with(", still open when the job ended"));
        assert!(tracker.open_stages(secs(10)).is_empty());
    }

    #[test]
    fn same_name_twice_unknown_end_and_bad_names_are_refused() {
        let mut tracker = StageTracker::default();
        tracker.start("a", 1, secs(0), secs(0)).unwrap();
        assert_eq!(
            tracker.start("a", 1, secs(1), secs(0)),
            Err(StageError::AlreadyOpen("a".into()))
        );
        assert_eq!(
            tracker.start("", 1, secs(1), secs(0)),
            Err(StageError::EmptyName)
        );
        let long = "x".repeat(MAX_STAGE_NAME_BYTES + 1);
        assert_eq!(
            tracker.start(&long, 1, secs(1), secs(0)),
            Err(StageError::NameTooLong(MAX_STAGE_NAME_BYTES + 1))
        );
        assert!(tracker.end("b", secs(1), secs(0)).is_none());
        assert!(tracker.end("a", secs(1), secs(0)).is_some());
        assert!(tracker.end("a", secs(2), secs(0)).is_none());
    }

    #[test]
    fn open_stages_are_capped() {
        let mut tracker = StageTracker::default();
        for index in 0..MAX_OPEN_STAGES {
            tracker
                .start(&index.to_string(), 1, secs(0), secs(0))
                .unwrap();
        }
        assert_eq!(
            tracker.start("one more", 1, secs(0), secs(0)),
            Err(StageError::TooMany)
        );
    }

    /// Feeds `minutes` of one sample per second growing by `mib_per_min`, plus a wobble.
    fn steady_growth(mib_per_min: f64, minutes: u64, wobble_mib: f64) -> StageSummary {
        let mut tracker = StageTracker::default();
        tracker.start("grow", 4, secs(0), secs(0)).unwrap();
        for second in 0..=minutes * 60 {
            let wobble = if second % 2 == 0 {
                wobble_mib
            } else {
                -wobble_mib
            };
            let mib = 1024.0 + mib_per_min * second as f64 / 60.0 + wobble;
            let bytes = (mib * MIB as f64) as u64;
            tracker.observe(secs(second), bytes, Level::Normal);
        }
        tracker
            .end("grow", secs(minutes * 60), secs(minutes * 60))
            .unwrap()
    }

    #[test]
    fn steady_growth_over_half_the_window_is_a_leak() {
        // 60 MiB/min × 15 min = 900 MiB ≥ 800 MiB, over 8 minutes, r² ≈ 1.
        let summary = steady_growth(60.0, 8, 0.0);
        let trend = summary.trend_mb_per_min.unwrap();
        assert!((trend - 60.0).abs() < 1e-6, "{trend}");
        assert!(summary.trend_fit.unwrap() > 0.999);
        assert!(summary.leak_suspected);
        assert_eq!(summary.samples, 481);
    }

    #[test]
    fn slow_growth_short_stage_or_noise_is_no_leak() {
        // 50 MiB/min × 15 = 750 MiB < 800 MiB.
        assert!(!steady_growth(50.0, 8, 0.0).leak_suspected);
        // Fast growth, but only 5 minutes of a 15-minute window.
        assert!(!steady_growth(100.0, 5, 0.0).leak_suspected);
        // Fast growth buried in ±2 GiB of noise: r² far below 0.8.
        let noisy = steady_growth(60.0, 8, 2048.0);
        assert!(noisy.trend_fit.unwrap() < 0.8, "{noisy:?}");
        assert!(!noisy.leak_suspected);
    }

    #[test]
    fn leak_rule_comes_from_the_config() {
        let config = PolicyConfig {
            leak_growth: 100 * MIB,
            leak_window: Duration::from_secs(60),
            ..PolicyConfig::default()
        };
        let mut tracker = StageTracker::new(LeakRule::from_config(&config));
        tracker.start("s", 1, secs(0), secs(0)).unwrap();
        // 120 MiB/min for 40 s: 120 MiB per 60-s window, more than half of it covered.
        for second in 0..=40 {
            tracker.observe(secs(second), GIB + second * 2 * MIB, Level::Normal);
        }
        let summary = tracker.end("s", secs(40), secs(0)).unwrap();
        assert!(summary.leak_suspected, "{summary:?}");
    }

    #[test]
    fn long_stage_keeps_precision() {
        // Ten hours at 4 GiB flat with a 1 MiB step each minute: slope exactly 1 MiB/min.
        let mut tracker = StageTracker::default();
        tracker.start("long", 1, secs(0), secs(0)).unwrap();
        for minute in 0..600u64 {
            tracker.observe(secs(minute * 60), 4 * GIB + minute * MIB, Level::Normal);
        }
        let summary = tracker.end("long", secs(36_000), secs(0)).unwrap();
        let trend = summary.trend_mb_per_min.unwrap();
        assert!((trend - 1.0).abs() < 1e-9, "{trend}");
        assert!((summary.trend_fit.unwrap() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn describe_names_the_figures() {
        let summary = StageSummary {
            name: "models".into(),
            duration_secs: 125.0,
            peak_memory: 3 * GIB,
            cpu_secs: 250.0,
            highest_level: Level::High,
            trend_mb_per_min: Some(1.25),
            trend_fit: Some(0.93),
            leak_suspected: false,
            workers: 4,
            samples: 125,
            unfinished: false,
        };
        assert_eq!(
            summary.describe(),
            "stage models: 2m5s, 4 workers, peak 3G, CPU 250.0s, highest level high, \
             memory +1.2 MiB/min (r² 0.93)"
        );
    }
}
