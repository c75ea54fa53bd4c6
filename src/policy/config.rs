//! The policy's resolved configuration: thresholds in bytes and percent, durations, bounds.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::defaults;
use crate::units::percent_of;

/// Resolved policy settings (sizes in bytes, percentages as 0..=100, durations).
///
/// [`PolicyConfig::default`] gives the original's defaults; [`PolicyConfig::validate`] says
/// what is wrong with a configuration. [`Policy::new`](super::Policy::new) accepts any
/// configuration and clamps what it cannot use (see [`PolicyConfig::normalized`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyConfig {
    /// Memory level "moderate", bytes: reported, and the job's memory is reclaimed at the
    /// cleanup level above it; it does not take workers away.
    pub memory_moderate: u64,
    /// Memory level "high", bytes: −2 workers per cooldown. Growth stops where the peak
    /// memory plus the new workers' would reach it, less the hysteresis margin.
    pub memory_high: u64,
    /// Memory level "critical", bytes; entered at once, without grace.
    pub memory_critical: u64,
    /// Memory whose upward crossing asks for a reclaim, bytes; 0 = never.
    pub memory_cleanup: u64,
    /// The job's hard memory limit in bytes, if any (for the leak's time-to-limit): the
    /// tightest `memory.max` on its cgroup and the cgroups above it. It may change while the
    /// job runs ([`Observation::memory_limit`](super::Observation::memory_limit)).
    pub memory_limit: Option<u64>,
    /// The `memory.high` resctl sets on the job's own cgroup (`--memory-high`), bytes: the
    /// kernel throttles the job above it, so a plan to the limit ends there when it is
    /// below the hard limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_throttle: Option<u64>,
    /// How the memory levels follow the limit when it changes; `None` (traces recorded
    /// before limits were re-read): the levels above stay as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_rules: Option<MemoryLevelRules>,
    /// What the job's history remembers of its memory per worker, if anything: the policy
    /// plans from it until this run has measured two counts of its own, as long as the
    /// count it runs at agrees with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remembered: Option<RememberedWorkers>,
    /// The fewest workers at which the job's earlier runs reached the critical level or
    /// were OOM-killed, from its history (the record's `first_count_reaching`): growth stops
    /// below it in every phase, since a count that came within reach of the OOM killer once
    /// may again when the job's heavy part comes round. `None`: no such count remembered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remembered_critical_count: Option<u32>,
    /// CPU level "moderate", percent of the CPUs the job may use.
    pub cpu_moderate: f64,
    /// CPU level "high", percent; at or above it the thread count does not grow.
    pub cpu_high: f64,
    /// CPU level "critical", percent.
    pub cpu_critical: f64,
    /// Memory PSI "some" avg10 thresholds for moderate/high/critical; `None` = off.
    pub psi_memory_some: Option<[f64; 3]>,
    /// Memory PSI "full" avg10 thresholds; `None` = off.
    pub psi_memory_full: Option<[f64; 3]>,
    /// CPU PSI "some" avg10 thresholds; `None` = off. Above the moderate one the thread
    /// count does not grow.
    pub psi_cpu_some: Option<[f64; 3]>,
    /// A higher level must hold this long before it is entered (memory ≥ critical: at once).
    #[serde(with = "crate::units::serde_secs")]
    pub grace: Duration,
    /// A level is left once the value is below threshold × (1 − hysteresis) ...
    pub hysteresis: f64,
    /// ... for at least this long.
    #[serde(with = "crate::units::serde_secs")]
    pub transition: Duration,
    /// Fewest workers (sequential fallback at critical).
    pub min_threads: u32,
    /// Most workers.
    pub max_threads: u32,
    /// Workers at start.
    pub initial_threads: u32,
    /// Least time before a reduction and between a reduction and the next growth; critical
    /// bypasses it. Growth after growth waits only until the count has settled.
    #[serde(with = "crate::units::serde_secs")]
    pub cooldown: Duration,
    /// Growth over `leak_window` (bytes) that makes a leak suspect.
    pub leak_growth: u64,
    /// Time window of the leak trend.
    #[serde(with = "crate::units::serde_secs")]
    pub leak_window: Duration,
    /// Least r² of the leak trend's fit.
    pub leak_min_fit: f64,
}

/// Growth planned to the hard limit ([`PolicyConfig::limit_plan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitPlan {
    /// The hard limit, bytes.
    pub limit: u64,
    /// Bytes kept free below it.
    pub margin: u64,
    /// Bytes growth plans to stay below.
    pub ceiling: u64,
}

/// A job's memory line from its history: `base + workers × per_worker`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RememberedWorkers {
    /// Memory one more worker cost, bytes.
    pub per_worker: u64,
    /// Memory that did not grow with workers, bytes.
    pub base: u64,
    /// How far the earlier run's memory per worker strayed from that line, bytes; `None`
    /// when it was not measured (one count only, or a record from before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread: Option<u64>,
}

impl RememberedWorkers {
    /// The margin a plan to the limit from this line keeps free (one worker's memory, or
    /// three times the remembered spread if more); `None` when the remembered spread says
    /// the job's memory per worker was not predictable, so the line plans nothing beyond
    /// the high level. A line without a remembered spread plans like a predictable one: the
    /// run drops it as soon as its own memory strays from it.
    pub fn limit_margin(&self) -> Option<u64> {
        let spread = self.spread.unwrap_or(0);
        super::workers::predictable(self.per_worker, spread)
            .then(|| super::workers::learned_margin(self.per_worker, spread))
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            memory_moderate: defaults::MEMORY_MODERATE,
            memory_high: defaults::MEMORY_HIGH,
            memory_critical: defaults::MEMORY_CRITICAL,
            memory_cleanup: defaults::MEMORY_CLEANUP,
            memory_limit: None,
            memory_rules: None,
            remembered: None,
            remembered_critical_count: None,
            memory_throttle: None,
            cpu_moderate: defaults::CPU_MODERATE,
            cpu_high: defaults::CPU_HIGH,
            cpu_critical: defaults::CPU_CRITICAL,
            psi_memory_some: defaults::PSI_MEMORY_SOME,
            psi_memory_full: Some(defaults::PSI_MEMORY_FULL),
            psi_cpu_some: defaults::PSI_CPU_SOME,
            grace: defaults::GRACE,
            hysteresis: defaults::HYSTERESIS,
            transition: defaults::TRANSITION,
            min_threads: defaults::MIN_THREADS,
            max_threads: defaults::MAX_THREADS,
            initial_threads: defaults::INITIAL_THREADS,
            cooldown: defaults::COOLDOWN,
            leak_growth: defaults::LEAK_GROWTH,
            leak_window: defaults::LEAK_WINDOW,
            leak_min_fit: defaults::LEAK_MIN_FIT,
        }
    }
}

/// The job's memory thresholds, bytes: what the status reply and the run summary show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryThresholds {
    /// Level "moderate".
    pub moderate: u64,
    /// Level "high": growth plans to stay below it.
    pub high: u64,
    /// Level "critical": sequential fallback.
    pub critical: u64,
}

/// How one memory level is set: a fixed size, or a share of the job's memory limit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LevelRule {
    /// A fixed size in bytes (`u64::MAX`: never reached).
    Bytes(u64),
    /// `percent` of the job's memory limit; `without_limit` bytes when it has none.
    OfLimit {
        /// Share of the limit, percent.
        percent: f64,
        /// The level when no limit applies, bytes.
        without_limit: u64,
    },
}

impl LevelRule {
    /// The level in bytes for a job whose limit is `limit`.
    pub fn resolve(self, limit: Option<u64>) -> u64 {
        match self {
            LevelRule::Bytes(bytes) => bytes,
            LevelRule::OfLimit {
                percent,
                without_limit,
            } => limit.map_or(without_limit, |limit| percent_of(limit, percent)),
        }
    }
}

/// The rules behind the memory levels, so that they follow the job's limit when someone
/// changes it during the run (a slice's MemoryMax lowered, a container resized).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MemoryLevelRules {
    /// Level "moderate".
    pub moderate: LevelRule,
    /// Level "high".
    pub high: LevelRule,
    /// Level "critical".
    pub critical: LevelRule,
    /// The cleanup level; `None`: midway between moderate and high.
    pub cleanup: Option<LevelRule>,
}

/// Memory levels resolved for one limit, bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLevels {
    /// Level "moderate".
    pub moderate: u64,
    /// Level "high".
    pub high: u64,
    /// Level "critical".
    pub critical: u64,
    /// Cleanup level; `u64::MAX` when cleanup is off.
    pub cleanup: u64,
}

impl MemoryLevelRules {
    /// The levels for a job whose limit is `limit`.
    pub fn resolve(&self, limit: Option<u64>) -> MemoryLevels {
        let moderate = self.moderate.resolve(limit);
        let high = self.high.resolve(limit);
        MemoryLevels {
            moderate,
            high,
            critical: self.critical.resolve(limit),
            cleanup: self
                .cleanup
                .map_or(moderate / 2 + high / 2, |rule| rule.resolve(limit)),
        }
    }
}

/// What is wrong with a [`PolicyConfig`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyConfigError {
    /// Memory thresholds must not decrease from moderate to critical.
    #[error("memory thresholds must rise: moderate {moderate} ≤ high {high} ≤ critical {critical} bytes")]
    MemoryOrder {
        /// The moderate threshold, bytes.
        moderate: u64,
        /// The high threshold, bytes.
        high: u64,
        /// The critical threshold, bytes.
        critical: u64,
    },
    /// Percent thresholds (CPU or a PSI signal) must be finite, within 0..=100 and rising.
    #[error("{signal} thresholds must be within 0..=100 % and rise, got {thresholds:?}")]
    PercentOrder {
        /// Which signal: "cpu", "memory PSI some", ...
        signal: &'static str,
        /// The offending thresholds.
        thresholds: [f64; 3],
    },
    /// Thread bounds must satisfy 1 ≤ min ≤ initial ≤ max.
    #[error("threads must satisfy 1 ≤ min ({min}) ≤ initial ({initial}) ≤ max ({max})")]
    ThreadBounds {
        /// Fewest workers.
        min: u32,
        /// Workers at start.
        initial: u32,
        /// Most workers.
        max: u32,
    },
    /// Hysteresis must be a fraction in 0..1.
    #[error("hysteresis must be within 0 ≤ h < 1, got {0}")]
    Hysteresis(f64),
    /// Cooldown must be within the range the original allowed.
    #[error("cooldown must be within {min:?}..={max:?}, got {got:?}")]
    Cooldown {
        /// The configured cooldown.
        got: Duration,
        /// Shortest allowed.
        min: Duration,
        /// Longest allowed.
        max: Duration,
    },
    /// The leak window must be longer than zero.
    #[error("leak window must be longer than zero")]
    LeakWindow,
    /// The leak fit threshold must be within 0..=1.
    #[error("leak minimum fit (r²) must be within 0..=1, got {0}")]
    LeakMinFit(f64),
}

impl PolicyConfig {
    /// Takes `limit` as the job's memory limit and, when the configuration has
    /// [`MemoryLevelRules`], re-resolves the memory levels for it. Levels that a new limit
    /// would put out of order (a fixed critical below a share of a raised limit) are raised
    /// to keep moderate ≤ high ≤ critical. Returns whether anything changed.
    pub fn follow_limit(&mut self, limit: Option<u64>) -> bool {
        if self.memory_limit == limit {
            return false;
        }
        self.memory_limit = limit;
        if let Some(rules) = self.memory_rules {
            let levels = rules.resolve(limit);
            self.memory_moderate = levels.moderate;
            self.memory_high = levels.high.max(levels.moderate);
            self.memory_critical = levels.critical.max(self.memory_high);
            self.memory_cleanup = levels.cleanup;
        }
        true
    }

    /// Turns the cleanup level off (no reclaim is ever decided), also for levels re-resolved
    /// later: for jobs whose cgroup has no `memory.reclaim` (v1, monitor-only).
    pub fn disable_reclaim(&mut self) {
        self.memory_cleanup = u64::MAX;
        if let Some(rules) = self.memory_rules.as_mut() {
            rules.cleanup = Some(LevelRule::Bytes(u64::MAX));
        }
    }

    /// Memory that growth plans to stay below, bytes: the high level (at most critical)
    /// less the hysteresis margin.
    pub fn growth_ceiling(&self) -> u64 {
        let high = self.memory_high.min(self.memory_critical);
        (high as f64 * (1.0 - self.hysteresis)) as u64
    }

    /// A plan to the hard limit — or to the job's own `memory.high` where that is lower —
    /// that keeps `margin` bytes free (at least the hysteresis share of the limit), its
    /// ceiling never above critical less the hysteresis; `None` without a hard limit.
    pub fn limit_plan(&self, margin: u64) -> Option<LimitPlan> {
        let limit = self
            .memory_limit
            .filter(|&limit| limit != crate::units::NO_LIMIT)?;
        let limit = self
            .memory_throttle
            .filter(|&throttle| throttle > 0)
            .map_or(limit, |throttle| throttle.min(limit));
        let margin = margin.max((limit as f64 * self.hysteresis) as u64);
        let critical = (self.memory_critical as f64 * (1.0 - self.hysteresis)) as u64;
        Some(LimitPlan {
            limit,
            margin,
            ceiling: limit.saturating_sub(margin).min(critical),
        })
    }

    /// The memory thresholds of this configuration.
    pub fn memory_thresholds(&self) -> MemoryThresholds {
        MemoryThresholds {
            moderate: self.memory_moderate,
            high: self.memory_high,
            critical: self.memory_critical,
        }
    }

    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// The first problem found: thresholds out of order or range, thread bounds not
    /// 1 ≤ min ≤ initial ≤ max, hysteresis outside 0..1, cooldown outside 5–300 s, an empty
    /// leak window, or a leak fit outside 0..=1.
    pub fn validate(&self) -> Result<(), PolicyConfigError> {
        if !(self.memory_moderate <= self.memory_high && self.memory_high <= self.memory_critical) {
            return Err(PolicyConfigError::MemoryOrder {
                moderate: self.memory_moderate,
                high: self.memory_high,
                critical: self.memory_critical,
            });
        }
        let percent_signals = [
            (
                "cpu",
                Some([self.cpu_moderate, self.cpu_high, self.cpu_critical]),
            ),
            ("memory PSI some", self.psi_memory_some),
            ("memory PSI full", self.psi_memory_full),
            ("cpu PSI some", self.psi_cpu_some),
        ];
        for (signal, thresholds) in percent_signals {
            let Some(thresholds) = thresholds else {
                continue;
            };
            let in_range = thresholds.iter().all(|value| (0.0..=100.0).contains(value));
            let rising = thresholds[0] <= thresholds[1] && thresholds[1] <= thresholds[2];
            if !(in_range && rising) {
                return Err(PolicyConfigError::PercentOrder { signal, thresholds });
            }
        }
        if !(1 <= self.min_threads
            && self.min_threads <= self.initial_threads
            && self.initial_threads <= self.max_threads)
        {
            return Err(PolicyConfigError::ThreadBounds {
                min: self.min_threads,
                initial: self.initial_threads,
                max: self.max_threads,
            });
        }
        if !(0.0..1.0).contains(&self.hysteresis) {
            return Err(PolicyConfigError::Hysteresis(self.hysteresis));
        }
        if !(defaults::COOLDOWN_MIN..=defaults::COOLDOWN_MAX).contains(&self.cooldown) {
            return Err(PolicyConfigError::Cooldown {
                got: self.cooldown,
                min: defaults::COOLDOWN_MIN,
                max: defaults::COOLDOWN_MAX,
            });
        }
        if self.leak_window.is_zero() {
            return Err(PolicyConfigError::LeakWindow);
        }
        if !(0.0..=1.0).contains(&self.leak_min_fit) {
            return Err(PolicyConfigError::LeakMinFit(self.leak_min_fit));
        }
        Ok(())
    }

    /// The configuration the policy really runs with: `min_threads` at least 1,
    /// `max_threads` at least `min_threads`, `initial_threads` clamped into them, hysteresis
    /// clamped to 0..=0.99 (NaN: the default), leak fit NaN: the default.
    #[must_use]
    pub fn normalized(mut self) -> Self {
        self.min_threads = self.min_threads.max(1);
        self.max_threads = self.max_threads.max(self.min_threads);
        self.initial_threads = self
            .initial_threads
            .clamp(self.min_threads, self.max_threads);
        self.hysteresis = if self.hysteresis.is_nan() {
            defaults::HYSTERESIS
        } else {
            self.hysteresis.clamp(0.0, 0.99)
        };
        if self.leak_min_fit.is_nan() {
            self.leak_min_fit = defaults::LEAK_MIN_FIT;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_originals_and_valid() {
        let config = PolicyConfig::default();
        assert_eq!(config.memory_moderate, 2000 * 1024 * 1024);
        assert_eq!(config.memory_critical, 3500 * 1024 * 1024);
        assert_eq!(config.cooldown, Duration::from_secs(30));
        assert_eq!(config.leak_window, Duration::from_secs(900));
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn validate_names_the_problem() {
        let config = PolicyConfig {
            memory_high: 1,
            ..PolicyConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(PolicyConfigError::MemoryOrder { high: 1, .. })
        ));
        let config = PolicyConfig {
            psi_memory_full: Some([30.0, 20.0, 10.0]),
            ..PolicyConfig::default()
        };
        let error = config.validate().unwrap_err().to_string();
        assert!(error.starts_with("memory PSI full thresholds"), "{error}");
        let config = PolicyConfig {
            min_threads: 4,
            initial_threads: 2,
            ..PolicyConfig::default()
        };
        assert_eq!(
            config.validate(),
            Err(PolicyConfigError::ThreadBounds {
                min: 4,
                initial: 2,
                max: 8
            })
        );
        let config = PolicyConfig {
            cooldown: Duration::from_secs(1),
            ..PolicyConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(PolicyConfigError::Cooldown { .. })
        ));
    }

    #[test]
    fn normalized_clamps_bounds() {
        let config = PolicyConfig {
            min_threads: 0,
            max_threads: 0,
            initial_threads: 9,
            hysteresis: f64::NAN,
            ..PolicyConfig::default()
        }
        .normalized();
        assert_eq!(
            (
                config.min_threads,
                config.max_threads,
                config.initial_threads
            ),
            (1, 1, 1)
        );
        assert_eq!(config.hysteresis, defaults::HYSTERESIS);
    }

    #[test]
    fn levels_follow_a_changed_limit_by_their_rules() {
        let of_limit = |percent| LevelRule::OfLimit {
            percent,
            without_limit: 2000,
        };
        let mut config = PolicyConfig {
            memory_limit: Some(200),
            memory_moderate: 100,
            memory_high: 150,
            memory_critical: 175,
            memory_cleanup: 125,
            memory_rules: Some(MemoryLevelRules {
                moderate: of_limit(50.0),
                high: of_limit(75.0),
                critical: LevelRule::Bytes(170),
                cleanup: None,
            }),
            ..PolicyConfig::default()
        };
        assert!(!config.follow_limit(Some(200)), "unchanged");
        assert!(config.follow_limit(Some(60)));
        let levels = (
            config.memory_moderate,
            config.memory_high,
            config.memory_critical,
            config.memory_cleanup,
        );
        assert_eq!(levels, (30, 45, 170, 37));
        // Raised: a fixed critical below the new high is raised to keep the order.
        assert!(config.follow_limit(Some(400)));
        assert_eq!((config.memory_high, config.memory_critical), (300, 300));
        assert!(config.follow_limit(None));
        assert_eq!((config.memory_moderate, config.memory_limit), (2000, None));
        // Without rules only the limit moves.
        let mut fixed = PolicyConfig::default();
        assert!(fixed.follow_limit(Some(1)));
        assert_eq!(fixed.memory_moderate, defaults::MEMORY_MODERATE);
    }

    #[test]
    fn the_limit_plan_ends_at_the_jobs_own_memory_high_when_that_is_lower() {
        let config = PolicyConfig {
            memory_limit: Some(1000),
            memory_moderate: 500,
            memory_high: 750,
            memory_critical: 1000,
            hysteresis: 0.05,
            ..PolicyConfig::default()
        };
        let plan = config.limit_plan(100).unwrap();
        assert_eq!((plan.limit, plan.ceiling), (1000, 900));
        let throttled = PolicyConfig {
            memory_throttle: Some(600),
            ..config.clone()
        };
        let plan = throttled.limit_plan(100).unwrap();
        assert_eq!((plan.limit, plan.ceiling), (600, 500));
        // A memory.high above the hard limit changes nothing; no hard limit, no plan.
        let loose = PolicyConfig {
            memory_throttle: Some(5000),
            ..config.clone()
        };
        assert_eq!(loose.limit_plan(100).unwrap().limit, 1000);
        let unlimited = PolicyConfig {
            memory_limit: None,
            ..throttled
        };
        assert_eq!(unlimited.limit_plan(100), None);
    }

    #[test]
    fn config_round_trips_through_json() {
        let config = PolicyConfig::default();
        let text = serde_json::to_string(&config).unwrap();
        assert!(text.contains(r#""cooldown":30.0"#), "{text}");
        let back: PolicyConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(back, config);
    }
}
