//! resctl's configuration: YAML (read with serde-saphyr), defaults from the original,
//! command-line overrides and per-slice overrides.
//!
//! A file holds any subset of the keys below; missing keys take the defaults in
//! [`defaults`]. `config/resctl.yaml` is the documented example.
//!
//! ```yaml
//! interval: 1s            # sampling period, 100ms..=60s
//! grace: 2s               # a level must persist this long before it is entered
//! hysteresis: 0.05        # leave a level only 5 % below its threshold
//! slice: resctl.slice
//! notify_signal: USR1     # optional: signal the job when the thread count changes
//! memory: { moderate: 50%, high: 3000M, critical: ~, cleanup: ~ }   # ~ = default
//! cpu: { moderate: 70, high: 85, critical: 95 }
//! psi: { memory_full: { moderate: 10, high: 25, critical: 50 } }
//! threads: { min: 1, max: 8, initial: ~, cooldown: 30s }
//! leak: { enabled: true, growth: 800M, window: 15min, min_fit: 0.8 }
//! limits: { memory_high: ~, memory_max: 4G }
//! priority: 0             # a job's priority for the daemon (`resctl run --priority` wins)
//! last_resort: freeze     # the daemon's last resort at critical: freeze | kill
//! kill_after: 30s         # with kill: how long a frozen job waits at critical, 3s..=1h
//! slices:
//!   build.slice: { threads: { max: 16 }, memory: { high: 80% } }
//!   batch.slice: { priority: -5, last_resort: kill, kill_after: 1m }
//! ```
//!
//! The original Python project's block (`orchestrator: threading: resource_management:`)
//! is accepted as a whole file and mapped onto [`Config`]; see the `legacy` module.
//!
//! Errors name the file, line and column: `resctl.yaml:7:3: unknown field ...`, and for
//! values that parse but do not fit together, the key:
//! `resctl.yaml:4:3: memory.moderate (3000M) must be below memory.high (2000M)`.

pub mod budget;
pub mod explain;
mod legacy;
pub mod resolve;
mod source;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde::{Deserialize, Deserializer, Serialize};

use crate::policy::{LevelRule, MemoryLevelRules, MemoryLevels};
use crate::units::{self, percent_of, Limit};
use budget::Budget;
use source::{parse_options, KeyTree};

pub use source::{ConfigError, Position, Provenance};
pub use validate::{check_slice_name, parse_signal};

/// The original's defaults and resctl's bounds, each with the reason for its value.
///
/// Every value the policy also has comes from [`crate::policy::defaults`], which keeps the
/// reasons; only what configuration alone needs (sampling interval, percentages of a job's
/// memory limit, bounds for validation, the slice) is defined here.
pub mod defaults {
    use super::PsiLevels;
    use crate::policy::defaults as policy;
    use std::time::Duration;

    pub use policy::{
        COOLDOWN, COOLDOWN_MAX as MAX_COOLDOWN, COOLDOWN_MIN as MIN_COOLDOWN, CPU_CRITICAL,
        CPU_HIGH, CPU_MODERATE, GRACE, HYSTERESIS, LEAK_GROWTH, LEAK_MIN_FIT, LEAK_WINDOW,
        MAX_THREADS, MEMORY_CLEANUP, MEMORY_CRITICAL, MEMORY_HIGH, MEMORY_MODERATE, MIB,
        MIN_THREADS,
    };

    /// The original sampled every second.
    pub const INTERVAL: Duration = Duration::from_secs(1);
    /// The original's lower bound (0.1 s); faster sampling costs more than it tells.
    pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
    /// The original's upper bound (60 s); slower sampling misses a job's memory climb.
    pub const MAX_INTERVAL: Duration = Duration::from_secs(60);

    /// The original's memory limit for parallel execution; the percentages below are its
    /// absolute levels against it (2000/3000/3500/2500 of 4000 MB).
    pub const ORIGINAL_JOB_LIMIT: u64 = 4000 * MIB;
    /// Moderate level when the job has a memory limit: 2000 of the original's 4000 MB.
    pub const MEMORY_MODERATE_PERCENT: f64 = 50.0;
    /// High level when the job has a memory limit: 3000 of 4000 MB.
    pub const MEMORY_HIGH_PERCENT: f64 = 75.0;
    /// Critical level when the job has a memory limit: 3500 of 4000 MB.
    pub const MEMORY_CRITICAL_PERCENT: f64 = 87.5;
    /// Cleanup trigger when the job has a memory limit: 2500 of 4000 MB.
    pub const MEMORY_CLEANUP_PERCENT: f64 = 62.5;

    /// Memory "full" PSI avg10 levels: [`policy::PSI_MEMORY_FULL`] (10/25/50 %, see there
    /// why). "some" pressure and CPU pressure are off by default
    /// ([`policy::PSI_MEMORY_SOME`], [`policy::PSI_CPU_SOME`]).
    pub const PSI_MEMORY_FULL: PsiLevels = PsiLevels {
        moderate: policy::PSI_MEMORY_FULL[0],
        high: policy::PSI_MEMORY_FULL[1],
        critical: policy::PSI_MEMORY_FULL[2],
    };

    /// A sanity bound on threads.max (the original allowed 16), catching typos such as
    /// 80000.
    pub const THREADS_CAP: u32 = 1024;

    /// A fit needs at least this many samples in the window: [`policy::LEAK_MIN_SAMPLES`]
    /// as a `u32`, the type durations are multiplied by.
    pub const LEAK_MIN_SAMPLES: u32 = policy::LEAK_MIN_SAMPLES as u32;
    // The cast above must not truncate.
    const _: () = assert!(LEAK_MIN_SAMPLES as usize == policy::LEAK_MIN_SAMPLES);
    /// Shortest leak window: under a minute, growth is a workload phase, not a leak.
    pub const MIN_LEAK_WINDOW: Duration = Duration::from_secs(60);
    /// Longest leak window (the samples are held in memory).
    pub const MAX_LEAK_WINDOW: Duration = Duration::from_secs(24 * 3600);

    /// Longest grace: beyond that the kernel acts before resctl does.
    pub const MAX_GRACE: Duration = Duration::from_secs(300);
    /// Hysteresis must stay below one half, or levels would never be left.
    pub const MAX_HYSTERESIS: f64 = 0.5;
    /// The systemd slice jobs run in by default.
    pub const SLICE: &str = "resctl.slice";

    /// A job's priority for `resctl daemon` when neither `--priority` nor the
    /// configuration gives one: all jobs matter alike, the largest is frozen first.
    pub const PRIORITY: i32 = 0;
    /// With `last_resort: kill`: a frozen job is killed once its slice stayed at critical
    /// this long. Half a minute gives the slice's other jobs time to finish or shrink and
    /// the kernel time to reclaim, which freezing alone does not free.
    pub const KILL_AFTER: Duration = Duration::from_secs(30);
    /// Shortest `kill_after`: the daemon acts on a slice's jobs once every 3 s, so a
    /// shorter wait would still come 3 s after the freeze.
    pub const MIN_KILL_AFTER: Duration = Duration::from_secs(3);
    /// Longest `kill_after`: a job frozen longer at critical holds its memory for nothing.
    pub const MAX_KILL_AFTER: Duration = Duration::from_secs(3600);
}

/// What `resctl daemon` does last to a slice at critical when no job can shrink further.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LastResort {
    /// Freeze the lowest-priority job (`cgroup.freeze`) until memory returns; never kill.
    #[default]
    Freeze,
    /// Freeze it as with `freeze`, and kill it (`cgroup.kill`) once the slice stayed at
    /// critical for `kill_after` since.
    Kill,
}

impl std::fmt::Display for LastResort {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            LastResort::Freeze => "freeze",
            LastResort::Kill => "kill",
        })
    }
}

/// The whole configuration. Fields are in the order `to_yaml` writes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Sampling period (default 1 s, allowed 100ms..=60s).
    #[serde(with = "units::serde_duration")]
    pub interval: Duration,
    /// Time a level must persist before it is entered (default 2 s).
    #[serde(with = "units::serde_duration")]
    pub grace: Duration,
    /// Fraction below a threshold before a level is left (default 0.05 = 5 %).
    pub hysteresis: f64,
    /// The systemd slice the job runs in (default `resctl.slice`).
    pub slice: String,
    /// Signal sent to the job when its thread count changes, e.g. `USR1`; off by default
    /// because an unaware process would die of it.
    pub notify_signal: Option<String>,
    /// Memory levels.
    pub memory: MemoryConfig,
    /// CPU levels (percent).
    pub cpu: CpuConfig,
    /// Pressure-stall (PSI) levels.
    pub psi: PsiConfig,
    /// Thread-count range and pacing.
    pub threads: ThreadsConfig,
    /// Leak detection.
    pub leak: LeakConfig,
    /// Memory limits put on the job's cgroup.
    pub limits: LimitsConfig,
    /// How much a job matters to `resctl daemon` (default 0; `resctl run --priority` wins):
    /// at critical the lowest is frozen (or killed) first.
    pub priority: i32,
    /// The daemon's last resort for a slice at critical (default `freeze`: never kill).
    pub last_resort: LastResort,
    /// With `last_resort: kill`: how long the slice must stay at critical after the job was
    /// frozen before it is killed (default 30 s, allowed 3s..=1h).
    #[serde(with = "units::serde_duration")]
    pub kill_after: Duration,
    /// Per-slice overrides; keys are slice names ending in `.slice`.
    pub slices: BTreeMap<String, SliceOverrides>,
    /// Where the values came from (for error messages); ignored by `==`.
    #[serde(skip)]
    pub provenance: Provenance,
}

/// Memory levels: sizes, percentages of the job's memory limit, or absent for the
/// default (a percentage when the job has a limit, else the original's size); see
/// [`Config::resolve_memory`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryConfig {
    /// Moderate level: shed a worker (default 50 % of the limit, else 2000M).
    pub moderate: Option<Limit>,
    /// High level: shed more (default 75 %, else 3000M).
    pub high: Option<Limit>,
    /// Critical level: fall back to one worker (default 87.5 %, else 3500M).
    pub critical: Option<Limit>,
    /// Cleanup level: ask the kernel to reclaim (default 62.5 %, else 2500M; `max` = off).
    pub cleanup: Option<Limit>,
}

impl MemoryConfig {
    /// Whether no level is set.
    pub fn is_empty(&self) -> bool {
        *self == MemoryConfig::default()
    }
}

/// CPU levels in percent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CpuConfig {
    /// Moderate level (default 70).
    #[serde(with = "units::serde_percent")]
    pub moderate: f64,
    /// High level (default 85).
    #[serde(with = "units::serde_percent")]
    pub high: f64,
    /// Critical level (default 95).
    #[serde(with = "units::serde_percent")]
    pub critical: f64,
}

impl Default for CpuConfig {
    fn default() -> Self {
        CpuConfig {
            moderate: defaults::CPU_MODERATE,
            high: defaults::CPU_HIGH,
            critical: defaults::CPU_CRITICAL,
        }
    }
}

/// Three avg10 levels (percent) for one pressure-stall measure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PsiLevels {
    /// Moderate level.
    #[serde(with = "units::serde_percent")]
    pub moderate: f64,
    /// High level.
    #[serde(with = "units::serde_percent")]
    pub high: f64,
    /// Critical level.
    #[serde(with = "units::serde_percent")]
    pub critical: f64,
}

impl PsiLevels {
    /// The levels as `[moderate, high, critical]`.
    pub fn as_array(&self) -> [f64; 3] {
        [self.moderate, self.high, self.critical]
    }
}

impl From<PsiLevels> for [f64; 3] {
    fn from(levels: PsiLevels) -> Self {
        levels.as_array()
    }
}

/// Pressure-stall levels; `None` (`~` in YAML) turns a measure off.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PsiConfig {
    /// Memory "some" avg10 (off by default).
    pub memory_some: Option<PsiLevels>,
    /// Memory "full" avg10 (default 10/25/50, see [`defaults::PSI_MEMORY_FULL`]).
    pub memory_full: Option<PsiLevels>,
    /// CPU "some" avg10 (off by default).
    pub cpu_some: Option<PsiLevels>,
}

impl Default for PsiConfig {
    fn default() -> Self {
        PsiConfig {
            memory_some: None,
            memory_full: Some(defaults::PSI_MEMORY_FULL),
            cpu_some: None,
        }
    }
}

/// Thread-count range and pacing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThreadsConfig {
    /// Fewest workers (default 1).
    pub min: u32,
    /// Most workers (default 8).
    pub max: u32,
    /// Workers at start; `None` lets resctl choose.
    pub initial: Option<u32>,
    /// Least time before a reduction and between a reduction and the next growth (default
    /// 30 s, allowed 5s..=300s); growth after growth waits only until the count settled.
    #[serde(with = "units::serde_duration")]
    pub cooldown: Duration,
}

impl Default for ThreadsConfig {
    fn default() -> Self {
        ThreadsConfig {
            min: defaults::MIN_THREADS,
            max: defaults::MAX_THREADS,
            initial: None,
            cooldown: defaults::COOLDOWN,
        }
    }
}

/// Leak detection: a steady climb (least-squares slope with a good fit) over a window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeakConfig {
    /// Whether leaks are looked for (default true).
    pub enabled: bool,
    /// Growth over the window that counts as a leak (default 800M).
    #[serde(with = "units::serde_size")]
    pub growth: u64,
    /// Window of the trend (default 15 min).
    #[serde(with = "units::serde_duration")]
    pub window: Duration,
    /// Goodness of fit (r²) the trend needs (default 0.8).
    pub min_fit: f64,
}

impl Default for LeakConfig {
    fn default() -> Self {
        LeakConfig {
            enabled: true,
            growth: defaults::LEAK_GROWTH,
            window: defaults::LEAK_WINDOW,
            min_fit: defaults::LEAK_MIN_FIT,
        }
    }
}

/// Memory limits for the job's cgroup. A percentage is of the host's memory (systemd's
/// convention for MemoryHigh=/MemoryMax=); `max` means no limit; absent leaves the
/// cgroup's limit as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// memory.high: throttle and reclaim above this.
    pub memory_high: Option<Limit>,
    /// memory.max: the hard stop.
    pub memory_max: Option<Limit>,
}

/// [`LimitsConfig`] in bytes; `None` is "no limit" (or not configured).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResolvedLimits {
    /// memory.high in bytes.
    pub memory_high: Option<u64>,
    /// memory.max in bytes.
    pub memory_max: Option<u64>,
}

impl LimitsConfig {
    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        *self == LimitsConfig::default()
    }

    /// The limits in bytes, percentages taken of `host_memory` (MemTotal).
    pub fn resolve(&self, host_memory: u64) -> ResolvedLimits {
        ResolvedLimits {
            memory_high: self
                .memory_high
                .and_then(|limit| limit.resolve(Some(host_memory))),
            memory_max: self
                .memory_max
                .and_then(|limit| limit.resolve(Some(host_memory))),
        }
    }
}

/// CPU levels a slice overrides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CpuOverrides {
    /// Moderate level.
    #[serde(
        with = "units::serde_opt_percent",
        skip_serializing_if = "Option::is_none"
    )]
    pub moderate: Option<f64>,
    /// High level.
    #[serde(
        with = "units::serde_opt_percent",
        skip_serializing_if = "Option::is_none"
    )]
    pub high: Option<f64>,
    /// Critical level.
    #[serde(
        with = "units::serde_opt_percent",
        skip_serializing_if = "Option::is_none"
    )]
    pub critical: Option<f64>,
}

impl CpuOverrides {
    /// Whether nothing is overridden.
    pub fn is_empty(&self) -> bool {
        *self == CpuOverrides::default()
    }
}

/// Thread settings a slice overrides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThreadsOverrides {
    /// Fewest workers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<u32>,
    /// Most workers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    /// Workers at start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial: Option<u32>,
    /// Cooldown (see [`ThreadsConfig::cooldown`]).
    #[serde(
        with = "units::serde_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub cooldown: Option<Duration>,
}

impl ThreadsOverrides {
    /// Whether nothing is overridden.
    pub fn is_empty(&self) -> bool {
        *self == ThreadsOverrides::default()
    }
}

/// PSI levels a slice overrides: absent keeps the global setting, `~` turns the measure
/// off for the slice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PsiOverrides {
    /// Memory "some" avg10.
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub memory_some: Option<Option<PsiLevels>>,
    /// Memory "full" avg10.
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub memory_full: Option<Option<PsiLevels>>,
    /// CPU "some" avg10.
    #[serde(deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub cpu_some: Option<Option<PsiLevels>>,
}

impl PsiOverrides {
    /// Whether nothing is overridden.
    pub fn is_empty(&self) -> bool {
        *self == PsiOverrides::default()
    }
}

/// A key that is present yields `Some`, even when its value is `~` (then `Some(None)`).
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// What one slice changes; every field is optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SliceOverrides {
    /// Memory levels.
    #[serde(skip_serializing_if = "MemoryConfig::is_empty")]
    pub memory: MemoryConfig,
    /// CPU levels.
    #[serde(skip_serializing_if = "CpuOverrides::is_empty")]
    pub cpu: CpuOverrides,
    /// Thread settings.
    #[serde(skip_serializing_if = "ThreadsOverrides::is_empty")]
    pub threads: ThreadsOverrides,
    /// cgroup memory limits.
    #[serde(skip_serializing_if = "LimitsConfig::is_empty")]
    pub limits: LimitsConfig,
    /// PSI levels.
    #[serde(skip_serializing_if = "PsiOverrides::is_empty")]
    pub psi: PsiOverrides,
    /// The priority of the slice's jobs (see [`Config::priority`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// The daemon's last resort for the slice (see [`Config::last_resort`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_resort: Option<LastResort>,
    /// See [`Config::kill_after`].
    #[serde(
        with = "units::serde_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub kill_after: Option<Duration>,
}

/// Values given on the command line; each replaces the configuration's value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// `limits.memory_high`.
    pub memory_high: Option<Limit>,
    /// `limits.memory_max`.
    pub memory_max: Option<Limit>,
    /// `memory.moderate`.
    pub moderate: Option<Limit>,
    /// `memory.high`.
    pub high: Option<Limit>,
    /// `memory.critical`.
    pub critical: Option<Limit>,
    /// `interval`.
    pub interval: Option<Duration>,
    /// `threads.min`.
    pub min_threads: Option<u32>,
    /// `threads.max`.
    pub max_threads: Option<u32>,
    /// `slice`.
    pub slice: Option<String>,
    /// `notify_signal`.
    pub notify_signal: Option<String>,
    /// `priority` (`--priority`).
    pub priority: Option<i32>,
}

impl Default for Config {
    /// The original's defaults (see [`defaults`]).
    fn default() -> Self {
        Config {
            interval: defaults::INTERVAL,
            grace: defaults::GRACE,
            hysteresis: defaults::HYSTERESIS,
            slice: defaults::SLICE.to_string(),
            notify_signal: None,
            memory: MemoryConfig::default(),
            cpu: CpuConfig::default(),
            psi: PsiConfig::default(),
            threads: ThreadsConfig::default(),
            leak: LeakConfig::default(),
            limits: LimitsConfig::default(),
            priority: defaults::PRIORITY,
            last_resort: LastResort::default(),
            kill_after: defaults::KILL_AFTER,
            slices: BTreeMap::new(),
            provenance: Provenance::default(),
        }
    }
}

/// Sets `target` to `value` when the override holds one.
fn merge<T: Copy>(target: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *target = value;
    }
}

/// Sets an optional `target` when the override holds a value.
fn merge_option<T: Copy>(target: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *target = value;
    }
}

/// Largest configuration file read: a full configuration with many slices is a few KiB.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

impl Config {
    /// Reads and validates the file at `path` (native or legacy format); it must be a
    /// regular file of at most [`MAX_CONFIG_BYTES`].
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = crate::safe_fs::read_regular_text(path, MAX_CONFIG_BYTES).map_err(|source| {
            ConfigError::Read {
                path: path.display().to_string(),
                source,
            }
        })?;
        Config::from_yaml(&text, &path.display().to_string())
    }

    /// Parses and validates `text`; `origin` (usually the file name) prefixes every error.
    /// A file whose top level has `orchestrator` is read as the original's legacy block.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let tree = KeyTree::parse(text, origin)?;
        let config = if tree.has_top_level(legacy::TOP_LEVEL_KEY) {
            legacy::from_yaml(text, origin, &tree)?
        } else {
            let mut config: Config = serde_saphyr::from_str_with_options(text, parse_options())
                .map_err(|error| ConfigError::from_yaml(&error, origin))?;
            config.provenance = Provenance::from_native(origin, tree.index());
            config
        };
        config.validate()?;
        Ok(config)
    }

    /// The effective configuration as YAML, defaults filled in; [`Config::from_yaml`]
    /// reads it back to a configuration that resolves to the same run. Memory levels left
    /// to their defaults are written as their default shares of the budget (`50%`).
    pub fn to_yaml(&self) -> String {
        let mut shown = self.clone();
        let memory = &mut shown.memory;
        for (level, percent) in [
            (&mut memory.moderate, defaults::MEMORY_MODERATE_PERCENT),
            (&mut memory.high, defaults::MEMORY_HIGH_PERCENT),
            (&mut memory.critical, defaults::MEMORY_CRITICAL_PERCENT),
        ] {
            level.get_or_insert(Limit::Percent(percent));
        }
        match serde_saphyr::to_string(&shown) {
            Ok(yaml) => format!(
                "# resctl effective configuration\n\
                 # memory levels in % are shares of the job's budget (its limit, else the tightest\n\
                 # limit above it, else the host's available memory less a reserve); cleanup null:\n\
                 # midway between moderate and high. `resctl config show --resolved` gives figures.\n{yaml}"
            ),
            Err(error) => format!("# cannot write the configuration as YAML: {error}\n"),
        }
    }

    /// Checks values that parse but do not fit together (thresholds out of order, bounds,
    /// signal and slice names), including every slice's merged configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate::validate(self)
    }

    /// Checks the memory levels against the job's memory limit: a percentage needs a
    /// limit, and once resolved the levels must be below the limit and in order. Call it
    /// on the configuration in effect (after [`Config::for_slice`]).
    pub fn validate_for_limit(&self, job_limit: Option<u64>) -> Result<(), ConfigError> {
        validate::validate_for_limit(self, job_limit)
    }

    /// Checks the memory levels for a job with `budget`: like
    /// [`Config::validate_for_limit`], but percentages are taken of the host's budget when
    /// the job's cgroup has no limit. Call it on the configuration in effect.
    pub fn validate_within(&self, budget: &Budget) -> Result<(), ConfigError> {
        validate::validate_within(self, budget)
    }

    /// The rules of the memory levels: explicit values win (a size, or a percentage of the
    /// job's limit); missing ones are 50 / 75 / 87.5 % of the limit, or without a limit the
    /// original's 2000M / 3000M / 3500M. Cleanup, unset, sits midway between moderate and
    /// high, as the original's 2500M did between 2000M and 3000M (62.5 % between 50 % and
    /// 75 % of a limit). A percentage without a limit falls back to the default size (and is
    /// reported by [`Config::validate_for_limit`]); `max` gives `u64::MAX` (never).
    pub fn memory_rules(&self) -> MemoryLevelRules {
        self.memory_rules_within(None)
    }

    /// [`Config::memory_rules`] for a job whose budget, while its cgroup has no limit, is
    /// `host_budget` bytes ([`Budget::without_limit`]): percentages (the defaults' too) are
    /// then taken of it instead of falling back to the original's fixed sizes.
    pub fn memory_rules_within(&self, host_budget: Option<u64>) -> MemoryLevelRules {
        let rule = |explicit: Option<Limit>, default_percent: f64, fixed: u64| {
            let of_limit = |percent: f64| LevelRule::OfLimit {
                percent,
                without_limit: host_budget.map_or(fixed, |budget| percent_of(budget, percent)),
            };
            match explicit {
                Some(Limit::Bytes(value)) => LevelRule::Bytes(value),
                Some(Limit::Unlimited) => LevelRule::Bytes(u64::MAX),
                Some(Limit::Percent(percent)) => of_limit(percent),
                None => of_limit(default_percent),
            }
        };
        MemoryLevelRules {
            moderate: rule(
                self.memory.moderate,
                defaults::MEMORY_MODERATE_PERCENT,
                defaults::MEMORY_MODERATE,
            ),
            high: rule(
                self.memory.high,
                defaults::MEMORY_HIGH_PERCENT,
                defaults::MEMORY_HIGH,
            ),
            critical: rule(
                self.memory.critical,
                defaults::MEMORY_CRITICAL_PERCENT,
                defaults::MEMORY_CRITICAL,
            ),
            cleanup: self.memory.cleanup.map(|cleanup| {
                rule(
                    Some(cleanup),
                    defaults::MEMORY_CLEANUP_PERCENT,
                    defaults::MEMORY_CLEANUP,
                )
            }),
        }
    }

    /// The memory levels in bytes for a job whose memory limit is `job_limit`, by
    /// [`Config::memory_rules`].
    pub fn resolve_memory(&self, job_limit: Option<u64>) -> MemoryLevels {
        self.memory_rules().resolve(job_limit)
    }

    /// The memory levels in bytes for a job with `budget`, by [`Config::memory_rules_within`].
    pub fn resolve_memory_within(&self, budget: &Budget) -> MemoryLevels {
        let limit = budget.without_limit().is_none().then_some(budget.bytes);
        self.memory_rules_within(budget.without_limit())
            .resolve(limit)
    }

    /// The configuration for jobs in `slice`: its overrides (if any) merged over the
    /// global values, and `slice` set to it. Apply command-line [`Overrides`] to the
    /// result (not before), so that they win over the slice's values.
    pub fn for_slice(&self, slice: &str) -> Config {
        let mut config = self.clone();
        config.slice = slice.to_string();
        config.provenance.set_scope(slice);
        let Some(overrides) = self.slices.get(slice) else {
            return config;
        };
        let memory = &mut config.memory;
        merge_option(&mut memory.moderate, overrides.memory.moderate);
        merge_option(&mut memory.high, overrides.memory.high);
        merge_option(&mut memory.critical, overrides.memory.critical);
        merge_option(&mut memory.cleanup, overrides.memory.cleanup);
        merge(&mut config.cpu.moderate, overrides.cpu.moderate);
        merge(&mut config.cpu.high, overrides.cpu.high);
        merge(&mut config.cpu.critical, overrides.cpu.critical);
        merge(&mut config.threads.min, overrides.threads.min);
        merge(&mut config.threads.max, overrides.threads.max);
        merge_option(&mut config.threads.initial, overrides.threads.initial);
        merge(&mut config.threads.cooldown, overrides.threads.cooldown);
        merge_option(&mut config.limits.memory_high, overrides.limits.memory_high);
        merge_option(&mut config.limits.memory_max, overrides.limits.memory_max);
        merge(&mut config.psi.memory_some, overrides.psi.memory_some);
        merge(&mut config.psi.memory_full, overrides.psi.memory_full);
        merge(&mut config.psi.cpu_some, overrides.psi.cpu_some);
        merge(&mut config.priority, overrides.priority);
        merge(&mut config.last_resort, overrides.last_resort);
        merge(&mut config.kill_after, overrides.kill_after);
        config
    }

    /// Applies command-line values over the file's, then validates; errors caused by an
    /// override name the command line (`command line: threads.min (6) must not exceed
    /// threads.max (4)`). On error the values stay applied.
    pub fn apply(&mut self, overrides: &Overrides) -> Result<(), ConfigError> {
        let mut applied = Vec::new();
        let mut set_limit =
            |target: &mut Option<Limit>, value: Option<Limit>, key: &'static str| {
                if value.is_some() {
                    *target = value;
                    applied.push(key);
                }
            };
        set_limit(
            &mut self.limits.memory_high,
            overrides.memory_high,
            "limits.memory_high",
        );
        set_limit(
            &mut self.limits.memory_max,
            overrides.memory_max,
            "limits.memory_max",
        );
        set_limit(
            &mut self.memory.moderate,
            overrides.moderate,
            "memory.moderate",
        );
        set_limit(&mut self.memory.high, overrides.high, "memory.high");
        set_limit(
            &mut self.memory.critical,
            overrides.critical,
            "memory.critical",
        );
        if let Some(interval) = overrides.interval {
            self.interval = interval;
            applied.push("interval");
        }
        if let Some(min) = overrides.min_threads {
            self.threads.min = min;
            applied.push("threads.min");
        }
        if let Some(max) = overrides.max_threads {
            self.threads.max = max;
            applied.push("threads.max");
        }
        if let Some(slice) = &overrides.slice {
            self.slice = slice.clone();
            applied.push("slice");
        }
        if let Some(signal) = &overrides.notify_signal {
            self.notify_signal = Some(signal.clone());
            applied.push("notify_signal");
        }
        if let Some(priority) = overrides.priority {
            self.priority = priority;
            applied.push("priority");
        }
        for key in applied {
            self.provenance.mark_command_line(key);
        }
        self.validate()
    }

    /// [`Config::apply`] by value: the configuration with `overrides` applied, validated.
    pub fn with_overrides(mut self, overrides: &Overrides) -> Result<Config, ConfigError> {
        self.apply(overrides)?;
        Ok(self)
    }

    /// The notify signal, when one is set and valid (validation reports invalid names).
    pub fn notify_signal_parsed(&self) -> Option<Signal> {
        self.notify_signal
            .as_deref()
            .and_then(|name| parse_signal(name).ok())
    }

    /// How long a frozen job waits at critical before the daemon kills it: `None` unless
    /// `last_resort` is `kill` (the daemon then never kills).
    pub fn last_resort_kill_after(&self) -> Option<Duration> {
        (self.last_resort == LastResort::Kill).then_some(self.kill_after)
    }

    /// The file name this configuration was read from, or `built-in defaults`.
    pub fn origin(&self) -> &str {
        self.provenance.origin()
    }
}
