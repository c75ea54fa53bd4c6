//! The policy engine: **assess** (pressure levels, leak trend) and **decide** (worker count,
//! reclaim), as pure code over [`Observation`]s. No IO and no clock: time comes in the
//! observations, so a recorded trace replays to the same decisions ([`replay`]). Every
//! decision carries its reason. The rules (levels with grace and hysteresis, shrinking,
//! growing one measured step at a time, reclaim, the leak rule), with the measurements
//! behind them: `docs/policy.md`; their constants and reasons: [`defaults`].

pub mod defaults;

mod config;
mod fit;
mod format;
pub(crate) mod leak;
mod level;
pub(crate) mod observation;
mod ramp;
mod workers;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use config::{
    LevelRule, LimitPlan, MemoryLevelRules, MemoryLevels, MemoryThresholds, PolicyConfig,
    PolicyConfigError, RememberedWorkers,
};
pub use level::Level;
pub use observation::{Ceiling, Decision, LeakVerdict, Observation, NO_LIMIT};

use format::{bytes, duration};
pub use leak::{LeakCheck, LeakRule, MemoryTrend};
use leak::{LeakDetector, LeakSettings};
use level::{LevelTracker, Timing, Unit};
use ramp::{ramp_step, RampInputs};
use workers::{MarginalFit, Throughput, WorkerMemory};

/// Growth's ceiling from a job whose memory per worker is predictable (see
/// `Policy::learned_plan`).
struct LearnedPlan {
    /// Bytes growth plans to stay below.
    ceiling: u64,
    /// The ceiling and where it came from, for reasons.
    text: String,
}

/// The levels of one tick.
#[derive(Debug, Clone, Copy)]
struct Levels {
    memory: Level,
    cpu: Level,
    psi: Level,
    /// The level of the signals that say harm is happening now: PSI (and CPU utilisation
    /// when [`defaults::CPU_LEVEL_REDUCES_THREADS`]).
    pressure: Level,
    /// The level that acts on the worker count: memory and `pressure`.
    action: Level,
}

impl Levels {
    fn overall(&self) -> Level {
        self.memory.max(self.cpu).max(self.psi)
    }
}

/// The policy's state across ticks: one per managed job.
#[derive(Debug, Clone)]
pub struct Policy {
    config: PolicyConfig,
    timing: Timing,
    memory: LevelTracker,
    cpu: LevelTracker,
    /// Memory some, memory full, CPU some.
    psi: [LevelTracker; 3],
    threads: u32,
    /// Time of the previous observation (time never runs backwards).
    last_at: Option<Duration>,
    /// When the current worker count took effect (or the first observation).
    count_since: Duration,
    /// Time of the first observation.
    first_at: Duration,
    /// When the worker count last changed.
    last_change: Option<Duration>,
    /// When the worker count last went down.
    last_reduction: Option<Duration>,
    /// Since when memory and PSI have been normal.
    calm_since: Option<Duration>,
    last_memory: Option<u64>,
    /// The highest peak between samples ([`Observation::memory_peak_since_last`]) at the
    /// current count that no recorded sample holds yet.
    unrecorded_peak: Option<u64>,
    last_reclaim: Option<Duration>,
    last_progress: Option<(Duration, u64)>,
    /// Start of the job's current lighter phase, once memory at a count fell well below
    /// its earlier peak there ([`defaults::LIGHTER_PHASE`]); growth plans from it.
    phase_since: Option<Duration>,
    worker_memory: WorkerMemory,
    throughput: Throughput,
    leak: LeakDetector,
}

impl Policy {
    /// A policy starting at `initial_threads`; the configuration is first
    /// [normalized](PolicyConfig::normalized), so any configuration is accepted.
    pub fn new(config: PolicyConfig) -> Self {
        let config = config.normalized();
        let timing = Timing {
            grace: config.grace,
            hysteresis: config.hysteresis,
            transition: config.transition,
        };
        let percent = |thresholds: Option<[f64; 3]>| thresholds.map_or([None; 3], |t| t.map(Some));
        let memory = LevelTracker::new("memory", Unit::Bytes, memory_thresholds(&config), true);
        let cpu = LevelTracker::new(
            "cpu",
            Unit::Percent,
            percent(Some([
                config.cpu_moderate,
                config.cpu_high,
                config.cpu_critical,
            ])),
            false,
        );
        let psi = [
            LevelTracker::new(
                "memory PSI some",
                Unit::Percent,
                percent(config.psi_memory_some),
                false,
            ),
            LevelTracker::new(
                "memory PSI full",
                Unit::Percent,
                percent(config.psi_memory_full),
                false,
            ),
            LevelTracker::new(
                "cpu PSI some",
                Unit::Percent,
                percent(config.psi_cpu_some),
                false,
            ),
        ];
        let leak = LeakDetector::new(LeakSettings {
            rule: LeakRule::from_config(&config),
            limit: leak_limit(&config),
        });
        Self {
            threads: config.initial_threads,
            config,
            timing,
            memory,
            cpu,
            psi,
            last_at: None,
            count_since: Duration::ZERO,
            first_at: Duration::ZERO,
            last_change: None,
            last_reduction: None,
            calm_since: None,
            last_memory: None,
            unrecorded_peak: None,
            last_reclaim: None,
            last_progress: None,
            phase_since: None,
            worker_memory: WorkerMemory::default(),
            throughput: Throughput::default(),
            leak,
        }
    }

    /// Assesses one observation and decides the worker count from now on.
    ///
    /// The observation is attributed to the worker count in force before this call.
    pub fn step(&mut self, observation: &Observation) -> Decision {
        let at = self
            .last_at
            .map_or(observation.at, |last| observation.at.max(last));
        if self.last_at.is_none() {
            self.count_since = at;
            self.first_at = at;
        }
        if let Some(limit) = observation.memory_limit {
            self.follow_limit((limit != NO_LIMIT).then_some(limit));
        }
        let memory = observation.memory_bytes;
        self.assess(at, observation);
        let levels = self.levels();
        self.learn(at, observation);
        self.leak.push(at, memory);
        let leak = self.leak.verdict(memory);
        let reclaim = self.reclaim(at, memory);
        if levels.action == Level::Normal {
            self.calm_since.get_or_insert(at);
        } else {
            self.calm_since = None;
        }

        let previous_threads = self.threads;
        let (threads, mut reason) = self.decide(at, observation, levels);
        let mut threads = threads.clamp(self.config.min_threads, self.config.max_threads);
        if let Some(ceiling) = &observation.ceiling {
            let most = ceiling.threads.max(self.config.min_threads);
            if threads > most {
                reason = format!("{}: at most {most} threads ({reason})", ceiling.reason);
                threads = most;
            }
        }
        if let Some(amount) = reclaim {
            reason = format!(
                "{reason}; reclaim {}: memory {} crossed cleanup {} going up",
                bytes(amount),
                bytes(memory),
                bytes(self.config.memory_cleanup)
            );
        }
        if let Some(verdict) = leak.as_ref().filter(|verdict| verdict.suspected) {
            reason.push_str("; ");
            reason.push_str(&verdict.message);
        }
        if threads != previous_threads {
            self.threads = threads;
            self.last_change = Some(at);
            if threads < previous_threads {
                self.last_reduction = Some(at);
            }
            self.count_since = at;
            self.unrecorded_peak = None;
        }
        self.last_at = Some(at);
        self.last_memory = Some(memory);
        Decision {
            at: observation.at,
            level: levels.overall(),
            memory_level: levels.memory,
            cpu_level: levels.cpu,
            psi_level: levels.psi,
            threads,
            previous_threads,
            reason,
            reclaim,
            leak,
        }
    }

    /// Takes a new configuration (the daemon's reload) and keeps what was observed: the
    /// levels' timers (a level that still holds under the new thresholds stays entered),
    /// the worker count (within the new bounds), the samples and the leak trend. The limit
    /// last observed stays in force until the next observation reads one.
    pub fn reconfigure(&mut self, config: PolicyConfig) {
        let fresh = Policy::new(config);
        let limit = self.config.memory_limit;
        self.cpu.set_thresholds(fresh.cpu.thresholds());
        for (mine, new) in self.psi.iter_mut().zip(&fresh.psi) {
            mine.set_thresholds(new.thresholds());
        }
        self.timing = fresh.timing;
        self.config = fresh.config;
        self.config.memory_limit = None;
        self.config.follow_limit(limit);
        self.memory.set_thresholds(memory_thresholds(&self.config));
        self.leak.set_limit(leak_limit(&self.config));
        self.threads = self
            .threads
            .clamp(self.config.min_threads, self.config.max_threads);
    }

    /// Takes a new memory limit: the levels that are shares of it move with it
    /// ([`PolicyConfig::follow_limit`]), the level timers are kept.
    fn follow_limit(&mut self, limit: Option<u64>) {
        if self.config.follow_limit(limit) {
            self.memory.set_thresholds(memory_thresholds(&self.config));
            self.leak.set_limit(leak_limit(&self.config));
        }
    }

    /// The worker count in force.
    pub fn threads(&self) -> u32 {
        self.threads
    }

    /// Estimated memory one more worker costs, in bytes: the least-squares slope of the
    /// job's memory against its worker count over the settled samples seen at each count.
    /// `None` until two distinct counts were seen, or when the slope is not positive.
    pub fn marginal_memory_per_worker(&self) -> Option<u64> {
        self.worker_memory.marginal()
    }

    /// How far the job's memory per worker strayed over the recent window (the last
    /// [`defaults::WORKER_MEMORY_WINDOW`] up to `at`), bytes: the largest distance of a
    /// count's peak from the line through them, or of a count's peak in a typical (median)
    /// settle time below its highest. `None` until two counts were measured. The job's
    /// history keeps it, so a
    /// later run knows whether the line it starts from can be planned to the limit.
    pub fn memory_spread(&self, at: Duration) -> Option<u64> {
        self.worker_memory
            .window_spread(at.saturating_add(Duration::from_nanos(1)), self.settle())
    }

    /// The highest settled memory seen at each worker count over the whole run, bytes.
    pub fn peaks_per_count(&self) -> std::collections::BTreeMap<u32, u64> {
        self.worker_memory.run_peaks().clone()
    }

    /// Units per second of each worker count measured long enough, for jobs that report
    /// progress.
    pub fn measured_throughput(&self) -> std::collections::BTreeMap<u32, f64> {
        self.throughput.rates(defaults::THROUGHPUT_MIN_SPAN)
    }

    /// The configuration in force (after normalisation).
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// The memory (bytes) under which a quiet policy stays quiet whatever else it reads:
    /// the lowest memory threshold in force, or the cleanup level (where one is set) when
    /// that is lower.
    /// `None` while a level is in force or on its way (memory, CPU or PSI), where every
    /// reading counts.
    pub fn quiet_below(&self) -> Option<u64> {
        let quiet = self.memory.is_quiet()
            && self.cpu.is_quiet()
            && self.psi.iter().all(LevelTracker::is_quiet);
        if !quiet {
            return None;
        }
        let lowest_level = self
            .memory
            .thresholds()
            .into_iter()
            .flatten()
            .fold(f64::INFINITY, f64::min);
        let lowest_level = if lowest_level.is_finite() {
            lowest_level as u64
        } else {
            u64::MAX
        };
        let cleanup = match self.config.memory_cleanup {
            0 => u64::MAX,
            cleanup => cleanup,
        };
        Some(lowest_level.min(cleanup))
    }

    /// Feeds the observation to every level tracker.
    fn assess(&mut self, at: Duration, observation: &Observation) {
        let timing = self.timing;
        // The highest memory since the last tick: a pool whose tasks peak above a level and
        // drop below it between samples is at that level, which is where the OOM kill would
        // come from.
        let memory = observation.highest_memory();
        self.memory.update(at, Some(memory as f64), timing);
        self.cpu.update(at, observation.cpu_percent, timing);
        let psi_values = [
            observation.memory_psi_some_avg10,
            observation.memory_psi_full_avg10,
            observation.cpu_psi_some_avg10,
        ];
        for (tracker, value) in self.psi.iter_mut().zip(psi_values) {
            tracker.update(at, value, timing);
        }
    }

    fn levels(&self) -> Levels {
        let memory = self.memory.level();
        let cpu = self.cpu.level();
        let psi = self
            .psi
            .iter()
            .map(LevelTracker::level)
            .max()
            .unwrap_or_default();
        let pressure = self
            .pressure_trackers()
            .map(LevelTracker::level)
            .max()
            .unwrap_or_default();
        Levels {
            memory,
            cpu,
            psi,
            pressure,
            action: memory.max(pressure),
        }
    }

    /// The trackers that say harm is happening now: PSI, and CPU utilisation when it
    /// reduces the count.
    fn pressure_trackers(&self) -> impl Iterator<Item = &LevelTracker> {
        let cpu = defaults::CPU_LEVEL_REDUCES_THREADS.then_some(&self.cpu);
        self.psi.iter().chain(cpu)
    }

    /// The trackers that can shrink the worker count, memory first.
    fn action_trackers(&self) -> impl Iterator<Item = &LevelTracker> {
        std::iter::once(&self.memory).chain(self.pressure_trackers())
    }

    /// Describes the tracker that put the action level at `level` (a pressure tracker
    /// when `pressure_only`).
    fn cause(&self, at: Duration, level: Level, pressure_only: bool) -> String {
        self.action_trackers()
            .skip(usize::from(pressure_only))
            .find(|tracker| tracker.level() == level)
            .map_or_else(
                || format!("{level} pressure"),
                |tracker| tracker.describe(at, self.timing),
            )
    }

    /// Records what this tick says about the worker count in force, once it has settled.
    fn learn(&mut self, at: Duration, observation: &Observation) {
        // The starting count has no previous count whose tasks must finish first.
        let settle = if self.last_change.is_some() {
            self.settle()
        } else {
            Duration::ZERO
        };
        let settled_from = self.count_since.saturating_add(settle);
        // The peak since the last tick is this count's, and the samples alone may miss it
        // (workers in step with the sampling interval show the same phase at every tick).
        // While a grown count settles it is kept for the first settled record (more
        // workers only add memory); right after a reduction it may still be the previous,
        // larger count's, so it is dropped.
        let after_reduction = self.last_change.is_some() && self.last_change == self.last_reduction;
        if at >= settled_from {
            let held = self.unrecorded_peak.take().unwrap_or(0);
            self.worker_memory
                .record(at, self.threads, observation.highest_memory().max(held));
        } else if !after_reduction {
            self.unrecorded_peak = self.unrecorded_peak.max(observation.memory_peak_since_last);
        }
        self.detect_lighter_phase(at);
        if let Some(units) = observation.progress_units {
            if let Some((previous_at, previous_units)) = self.last_progress {
                if units >= previous_units && at > previous_at && previous_at >= settled_from {
                    self.throughput
                        .record(self.threads, units - previous_units, at - previous_at);
                }
            }
            self.last_progress = Some((at, units));
        }
    }

    /// Notes the start of a lighter phase: the peak at this count over the last
    /// [`defaults::LIGHTER_PHASE_WINDOW`] (all of it at this count, settled) stayed below
    /// [`defaults::LIGHTER_PHASE`] of its peak earlier in the cooldown and in this phase.
    fn detect_lighter_phase(&mut self, at: Duration) {
        let window = defaults::LIGHTER_PHASE_WINDOW.min(self.config.cooldown / 2);
        let recent_from = at.saturating_sub(window);
        if self.count_since.saturating_add(self.settle()) > recent_from {
            return;
        }
        let from = self.phase_start(at);
        let threads = self.threads;
        let (Some(earlier), Some(recent)) = (
            self.worker_memory.peak(threads, from, recent_from),
            self.worker_memory.peak(threads, recent_from, Duration::MAX),
        ) else {
            return;
        };
        if (recent as f64) < earlier as f64 * defaults::LIGHTER_PHASE {
            self.phase_since = Some(recent_from);
        }
    }

    /// Growth's ceiling when the job's memory per worker — `fit`, from
    /// [`worker_fit`](Self::worker_fit) — is predictable ([`defaults::PREDICTABLE_SPREAD`]:
    /// the counts' peaks on a line, the current count's peak the same from one settle time
    /// to the next) and a hard limit is known: the limit less a margin learned from the
    /// job — at least one worker's memory, [`defaults::MARGIN_SPREADS`] times the spread,
    /// and the hysteresis share of the limit — and never above critical less the
    /// hysteresis ([`PolicyConfig::limit_plan`]). `None` (the high level plans) otherwise,
    /// or when that would be lower than the high level's plan.
    fn learned_plan(&self, at: Duration, fit: Option<MarginalFit>) -> Option<LearnedPlan> {
        let fit = fit?;
        // How far the peak at this count moves from one settle time to the next, once two
        // are measured (right after growth only the counts before it are).
        let moved = self
            .worker_memory
            .peak_spread(
                self.threads,
                self.phase_start(at),
                at.saturating_add(Duration::from_nanos(1)),
                self.settle(),
            )
            .unwrap_or(0);
        let spread = fit.residual.max(moved);
        if !fit.predictable_with(spread) {
            return None;
        }
        let plan = self
            .config
            .limit_plan(workers::learned_margin(fit.slope, spread))?;
        (plan.ceiling > self.config.growth_ceiling()).then(|| LearnedPlan {
            ceiling: plan.ceiling,
            text: format!(
                "{} (limit {} less a learned margin of {}: {} per worker {}, spread {})",
                bytes(plan.ceiling),
                bytes(plan.limit),
                bytes(plan.margin),
                bytes(fit.slope),
                match fit.counts {
                    0 => "remembered".to_owned(),
                    counts => format!("over {counts} counts"),
                },
                bytes(spread)
            ),
        })
    }

    /// The line of memory against workers growth plans from: this phase's own fit over two
    /// counts or more; else, before any phase change, the job's remembered line
    /// ([`PolicyConfig::remembered`], `counts` 0) with the distance of this count's peak
    /// from it as its residual.
    fn worker_fit(&self, at: Duration) -> Option<MarginalFit> {
        let phase_since = self.phase_since.unwrap_or(Duration::ZERO);
        if let Some(fit) = self.worker_memory.fit_since(phase_since) {
            return Some(fit);
        }
        let remembered = self
            .config
            .remembered
            .filter(|remembered| self.phase_since.is_none() && remembered.per_worker > 0)?;
        let threads = self.threads;
        let peak = self
            .worker_memory
            .peak(threads, self.phase_start(at), Duration::MAX)?;
        let line = remembered
            .base
            .saturating_add(remembered.per_worker.saturating_mul(u64::from(threads)));
        // The run's own distance from the line, and the spread the earlier run saw around it.
        Some(MarginalFit {
            slope: remembered.per_worker,
            residual: peak.abs_diff(line).max(remembered.spread.unwrap_or(0)),
            counts: 0,
        })
    }

    /// Start of the samples growth plans from: the last cooldown, or the current lighter
    /// phase if that began later.
    fn phase_start(&self, at: Duration) -> Duration {
        at.saturating_sub(self.config.cooldown)
            .max(self.phase_since.unwrap_or(Duration::ZERO))
    }

    /// Bytes to reclaim when memory crossed the cleanup level going up, once per cooldown.
    fn reclaim(&mut self, at: Duration, memory: u64) -> Option<u64> {
        let cleanup = self.config.memory_cleanup;
        let crossed = cleanup > 0
            && memory >= cleanup
            && self.last_memory.is_none_or(|previous| previous < cleanup);
        let cooled = self
            .last_reclaim
            .is_none_or(|last| at.saturating_sub(last) >= self.config.cooldown);
        if !(crossed && cooled) {
            return None;
        }
        self.last_reclaim = Some(at);
        let target = (cleanup as f64 * defaults::RECLAIM_TARGET_FRACTION) as u64;
        Some(memory.saturating_sub(target))
    }

    /// Time left before the worker count may change again (critical excepted).
    fn cooldown_left(&self, at: Duration) -> Option<Duration> {
        let elapsed = at.saturating_sub(self.last_change?);
        (elapsed < self.config.cooldown).then(|| self.config.cooldown - elapsed)
    }

    /// The worker count from now on, and why.
    fn decide(&self, at: Duration, observation: &Observation, levels: Levels) -> (u32, String) {
        let threads = self.threads;
        let min = self.config.min_threads;
        match levels.action {
            Level::Critical => {
                let cause = self.cause(at, Level::Critical, false);
                if threads > min {
                    (
                        min,
                        format!("{cause}: sequential fallback, {threads} → {min} threads"),
                    )
                } else {
                    (
                        threads,
                        format!("{cause}: holding {threads} threads (minimum)"),
                    )
                }
            }
            Level::High => {
                let within_plan = levels.pressure < Level::High && levels.memory == Level::High;
                if let Some(plan) = self
                    .learned_plan(at, self.worker_fit(at))
                    .filter(|plan| within_plan && observation.highest_memory() < plan.ceiling)
                {
                    let cause = self.cause(at, Level::High, false);
                    return (
                        threads,
                        format!(
                            "{cause}: holding {threads} threads, within the learned plan below {}",
                            plan.text
                        ),
                    );
                }
                let (step, why) = self.high_memory_step(observation, levels);
                let (reduced, reason) = self.reduce(at, Level::High, step, false);
                let why = if reduced < threads {
                    why
                } else {
                    String::new()
                };
                (reduced, format!("{reason}{why}"))
            }
            Level::Moderate if levels.pressure == Level::Moderate => {
                self.reduce(at, Level::Moderate, 1, true)
            }
            Level::Moderate | Level::Normal => self.decide_growth(at, observation, levels),
        }
    }

    /// Workers a reduction at the high level takes away, and why when more than the usual
    /// two: when memory is at high, as many as bring the job's memory, scaled by workers,
    /// below the growth ceiling (a heavier phase is re-planned in one step, not two workers
    /// per cooldown).
    fn high_memory_step(&self, observation: &Observation, levels: Levels) -> (u32, String) {
        const USUAL: u32 = 2;
        let memory = observation.highest_memory();
        let threads = self.threads;
        if levels.memory < Level::High || memory == 0 {
            return (USUAL, String::new());
        }
        let ceiling = self.config.growth_ceiling();
        let fitting = (u128::from(threads) * u128::from(ceiling) / u128::from(memory))
            .min(u128::from(u32::MAX)) as u32;
        let step = threads.saturating_sub(fitting);
        if step <= USUAL {
            return (USUAL, String::new());
        }
        (
            step,
            format!(
                " ({} per worker: {fitting} fit below {})",
                bytes(memory / u64::from(threads.max(1))),
                bytes(ceiling)
            ),
        )
    }

    /// Takes `step` workers away because of `level`, unless at the minimum or cooling down.
    fn reduce(&self, at: Duration, level: Level, step: u32, pressure_only: bool) -> (u32, String) {
        let threads = self.threads;
        let min = self.config.min_threads;
        let cause = self.cause(at, level, pressure_only);
        if threads <= min {
            (
                threads,
                format!("{cause}: holding {threads} threads (minimum)"),
            )
        } else if let Some(left) = self.cooldown_left(at) {
            (
                threads,
                format!(
                    "{cause}: holding {threads} threads, cooldown {} left",
                    duration(left)
                ),
            )
        } else {
            let reduced = threads.saturating_sub(step).max(min);
            (reduced, format!("{cause}: {threads} → {reduced} threads"))
        }
    }

    /// Decision when neither PSI nor memory ≥ high calls for fewer workers: grow by as many
    /// as the measured headroom below the high level allows, if everything else allows it.
    fn decide_growth(
        &self,
        at: Duration,
        observation: &Observation,
        levels: Levels,
    ) -> (u32, String) {
        let threads = self.threads;
        let pressure_pending = self
            .pressure_trackers()
            .find_map(|tracker| tracker.describe_pending(at, self.timing));
        let prefix = match (&pressure_pending, levels.memory) {
            (Some(pending), _) => pending.clone(),
            (None, Level::Moderate) => self.memory.describe(at, self.timing),
            (None, _) => self
                .memory
                .describe_pending(at, self.timing)
                .unwrap_or_else(|| {
                    let calm = self
                        .calm_since
                        .map_or(Duration::ZERO, |since| at.saturating_sub(since));
                    format!("normal for {}", duration(calm))
                }),
        };
        let hold = |why: String| (threads, format!("{prefix}: holding {threads} threads{why}"));
        let min_span = defaults::THROUGHPUT_MIN_SPAN;
        if let (Some(current), Some(best)) = (
            self.throughput.rate(threads, min_span),
            self.throughput.best(min_span),
        ) {
            if best.threads < threads && current.units_per_sec < best.units_per_sec {
                if let Some(left) = self.cooldown_left(at) {
                    return hold(format!(", cooldown {} left", duration(left)));
                }
                let fewer = threads - 1;
                return (
                    fewer,
                    format!(
                        "{prefix}: {threads} threads measured slower ({:.1} units/s) than {} ({:.1} units/s): {threads} → {fewer} threads",
                        current.units_per_sec, best.threads, best.units_per_sec
                    ),
                );
            }
        }
        if threads >= self.config.max_threads {
            return hold(" (maximum)".to_owned());
        }
        if pressure_pending.is_some() {
            return hold(" while pressure is pending".to_owned());
        }
        let critical_count = self.config.remembered_critical_count;
        if let Some(count) = critical_count.filter(|&count| count <= threads.saturating_add(1)) {
            return hold(format!(": {}", remembered_critical_text(count)));
        }
        if let Some(contention) = self.cpu_contention(at, observation, levels) {
            return hold(format!(": cpu contended ({contention})"));
        }
        // The peak at this count over the last cooldown, in two parts: before and during
        // the last settle time. Growth needs both, and memory no longer rising between them
        // (a job whose tasks grow slowly has not shown its peak yet). Only settled samples
        // are recorded, and this tick's is among them, so an earlier peak means at least
        // two samples at this count, all from its current spell: a count is only returned
        // to through a reduction, after which growth waits a cooldown.
        let settle = self.settle();
        let latest_from = at.saturating_sub(settle);
        let earlier = self
            .worker_memory
            .peak(threads, self.phase_start(at), latest_from);
        let latest = self.worker_memory.peak(threads, latest_from, Duration::MAX);
        let Some(earlier) = earlier else {
            return hold(format!(
                " until their memory has been measured for {}",
                duration(settle.saturating_mul(2))
            ));
        };
        let latest = latest.unwrap_or(earlier);
        let rising_limit = (earlier as f64 * (1.0 + defaults::RISING_TOLERANCE)) as u64;
        if latest > rising_limit {
            return hold(format!(
                ": memory still rising at this count ({} in the last {} > {} before, + {:.0} %)",
                bytes(latest),
                duration(settle),
                bytes(earlier),
                defaults::RISING_TOLERANCE * 100.0
            ));
        }
        let peak = earlier.max(latest);
        // A lighter phase that began after the reduction re-plans at once: the memory that
        // caused the reduction is gone.
        let phase_since = self.phase_since.unwrap_or(Duration::ZERO);
        if let Some(since) = self.last_reduction.filter(|&since| since >= phase_since) {
            let elapsed = at.saturating_sub(since);
            if elapsed < self.config.cooldown {
                return hold(format!(
                    ", cooldown {} left after the reduction",
                    duration(self.config.cooldown - elapsed)
                ));
            }
        }
        // A job that reports progress has each count measured before the next, so the
        // fastest count is found.
        if self.last_progress.is_some() && self.throughput.rate(threads, min_span).is_none() {
            return hold(format!(
                " until their throughput is measured ({})",
                duration(min_span)
            ));
        }
        // A remembered line counts only while this count's peak agrees with it.
        let fit = self
            .worker_fit(at)
            .filter(|fit| fit.counts > 0 || fit.predictable_with(fit.residual));
        let marginal = fit.map(|fit| fit.slope);
        let (per_worker, basis) = match marginal {
            Some(marginal) => (marginal, "per worker"),
            None => (
                peak / u64::from(threads.max(1)),
                "per worker (peak ÷ workers; no marginal estimate yet)",
            ),
        };
        // A fit left out above would not be predictable to the plan either (its spread is
        // at least its residual).
        let (ceiling, ceiling_text) = match self.learned_plan(at, fit) {
            Some(plan) => (plan.ceiling, plan.text),
            None => (self.config.growth_ceiling(), self.level_plan_text()),
        };
        let projected = peak.saturating_add(per_worker);
        if projected >= ceiling {
            return hold(format!(
                ": peak {} + {} {basis} would reach {ceiling_text}",
                bytes(peak),
                bytes(per_worker)
            ));
        }
        let ramp = ramp_step(RampInputs {
            threads,
            max_threads: self.config.max_threads,
            room: ceiling - peak,
            per_worker,
            measured_counts: match fit {
                Some(fit) if fit.counts == 0 => 2,
                _ => self.worker_memory.counts_since(phase_since),
            },
            phase_age: at.saturating_sub(self.first_at.max(phase_since)),
            settled_phase: self.config.cooldown,
            measures_each_count: self.last_progress.is_some(),
            runnable_per_core: observation.runnable_per_core,
        });
        // Short of the count earlier runs took to the critical level (checked above: at
        // least one worker more fits below it).
        let (step, capped) = match critical_count {
            Some(count) if threads + ramp.step >= count => (
                count - 1 - threads,
                format!("; no more: {}", remembered_critical_text(count)),
            ),
            _ => (ramp.step, String::new()),
        };
        let target = threads + step;
        if let Some((slower, best)) = self.throughput.slower_on_the_way(target, min_span) {
            return hold(format!(
                ": {} threads measured slower ({:.1} units/s) than {} ({:.1} units/s)",
                slower.threads, slower.units_per_sec, best.threads, best.units_per_sec
            ));
        }
        let phase = match self.phase_since {
            Some(since) if since > at.saturating_sub(self.config.cooldown) => format!(
                "; a lighter phase for {}: its peak, not the cooldown's",
                duration(at.saturating_sub(since))
            ),
            _ => String::new(),
        };
        let added = match step {
            1 => bytes(per_worker),
            step => format!("{step} × {}", bytes(per_worker)),
        };
        (
            target,
            format!(
                "{prefix}: {threads} → {target} threads (peak {} + {added} {basis} < {ceiling_text}{}{capped}{phase})",
                bytes(peak),
                ramp.limited_by
            ),
        )
    }

    /// The high level's growth ceiling, described.
    fn level_plan_text(&self) -> String {
        format!(
            "{} (high {} less {:.0} %)",
            bytes(self.config.growth_ceiling()),
            bytes(self.config.memory_high.min(self.config.memory_critical)),
            self.config.hysteresis * 100.0
        )
    }

    /// How long after a change samples still belong to the previous count.
    fn settle(&self) -> Duration {
        defaults::SETTLE.min(self.config.cooldown / 2)
    }

    /// Why the CPUs count as contended, if they do.
    fn cpu_contention(
        &self,
        at: Duration,
        observation: &Observation,
        levels: Levels,
    ) -> Option<String> {
        if levels.cpu >= Level::High {
            return Some(self.cpu.describe(at, self.timing));
        }
        if let (Some(pressure), Some(thresholds)) =
            (observation.cpu_psi_some_avg10, self.config.psi_cpu_some)
        {
            if pressure > thresholds[0] {
                return Some(format!(
                    "cpu PSI some {pressure:.1}% > moderate {:.1}%",
                    thresholds[0]
                ));
            }
        }
        if observation.cpu_throttled {
            return Some("throttled by the cgroup's CPU quota".to_owned());
        }
        match observation.runnable_per_core {
            Some(runnable) if runnable > defaults::RUNNABLE_PER_CORE_CONTENDED => Some(format!(
                "run queue {runnable:.2} per core > {:.2}",
                defaults::RUNNABLE_PER_CORE_CONTENDED
            )),
            _ => None,
        }
    }
}

/// The memory tracker's thresholds: moderate, high, critical.
fn memory_thresholds(config: &PolicyConfig) -> [Option<f64>; 3] {
    [
        config.memory_moderate,
        config.memory_high,
        config.memory_critical,
    ]
    .map(|bytes| Some(bytes as f64))
}

/// The memory level a leak's time-to-limit runs to: the limit, else critical.
fn leak_limit(config: &PolicyConfig) -> u64 {
    config.memory_limit.unwrap_or(config.memory_critical)
}

/// Runs a whole trace through a fresh policy; used by `resctl replay` and the tests.
#[must_use]
pub fn replay(config: PolicyConfig, observations: &[Observation]) -> Vec<Decision> {
    let mut policy = Policy::new(config);
    observations
        .iter()
        .map(|observation| policy.step(observation))
        .collect()
}

/// Why growth stops short of `count` workers: earlier runs of the job reached the critical
/// level (or an OOM kill) there.
fn remembered_critical_text(count: u32) -> String {
    format!("earlier runs reached the critical level or an OOM kill at {count} threads")
}
