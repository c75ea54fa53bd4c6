//! The original Python project's configuration (`orchestrator: threading:
//! resource_management:`), accepted as a whole file and mapped onto [`Config`].
//!
//! Key names follow the original's pydantic models (`ThreadingSettings`,
//! `ResourceManagerSettings`, `AdaptiveMemorySettings`, `CPUMonitoringSettings`); "MB" is
//! MiB. Unknown keys are errors, like everywhere else.
//!
//! | legacy key (under `resource_management` unless noted) | resctl key |
//! |---|---|
//! | `memory_monitoring.monitoring_interval_seconds` (or `cpu_monitoring.`'s) | `interval` |
//! | `memory_monitoring.thresholds.moderate_mb` / `high_mb` / `critical_mb` | `memory.moderate` / `high` / `critical` |
//! | `memory_monitoring.thresholds.gc_trigger_mb` (alias `gc_threshold_mb`), `cleanup_threshold_mb` | `memory.cleanup` |
//! | `auto_cleanup_enabled: false`, `memory_monitoring.auto_gc_enabled: false` | `memory.cleanup: max` (off) |
//! | `cpu_monitoring.thresholds.moderate_percent` / `high_percent` / `critical_percent` | `cpu.*` |
//! | `min_threads`, `max_threads` | `threads.min`, `threads.max` |
//! | `threading.thread_count` | `threads.initial` |
//! | `adjustment_cooldown_seconds` (alias `cooldown_seconds`) | `threads.cooldown` |
//! | `adaptive_scaling_enabled: false` | threads fixed: min = max = initial = `thread_count` or `max_threads` |
//! | `memory_monitoring.leak_detection_enabled`, `leak_threshold_mb` (alias `growth_threshold_mb`), `leak_window_minutes` | `leak.enabled`, `leak.growth`, `leak.window` |
//!
//! Accepted without effect: `enabled` switches of `threading` and `resource_management`
//! (pointing resctl at the file is the intent), `history_size` (the original's 100-sample
//! buffer, resctl keeps what its windows need), `batch_sizes`, `fallback_trigger_mb`,
//! `fallback_enabled`, `profiling_enabled`, `recommendation_window_minutes`,
//! `min_samples_for_recommendation`, `benchmarking_enabled`, `benchmark_thread_counts`,
//! `threading.mode`, `threading.memory_per_thread_gb`, `threading.parallelization` (its
//! `memory_limit_mb` was advisory; set `limits.memory_max` to enforce a limit).
//! `memory_monitoring.enabled: false` and `cpu_monitoring.enabled: false` are errors:
//! resctl always watches both.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::defaults::MIB;
use super::source::{
    key_path, parse_options, ConfigError, KeyPath, KeyTree, Position, Provenance, SourceKey, Span,
};
use super::Config;
use crate::units::Limit;

/// The top-level key that marks a legacy file.
pub(super) const TOP_LEVEL_KEY: &str = "orchestrator";

/// Prefix of the resource-management block.
const RESOURCE_MANAGEMENT: &str = "orchestrator.threading.resource_management";

/// Native key → legacy keys that set it (full dotted paths, first present wins).
const KEY_MAP: &[(&str, &[&str])] = &[
    (
        "interval",
        &[
            "orchestrator.threading.resource_management.memory_monitoring.monitoring_interval_seconds",
            "orchestrator.threading.resource_management.cpu_monitoring.monitoring_interval_seconds",
        ],
    ),
    (
        "memory.moderate",
        &["orchestrator.threading.resource_management.memory_monitoring.thresholds.moderate_mb"],
    ),
    (
        "memory.high",
        &["orchestrator.threading.resource_management.memory_monitoring.thresholds.high_mb"],
    ),
    (
        "memory.critical",
        &["orchestrator.threading.resource_management.memory_monitoring.thresholds.critical_mb"],
    ),
    (
        "memory.cleanup",
        &[
            "orchestrator.threading.resource_management.memory_monitoring.thresholds.gc_trigger_mb",
            "orchestrator.threading.resource_management.memory_monitoring.thresholds.gc_threshold_mb",
            "orchestrator.threading.resource_management.cleanup_threshold_mb",
        ],
    ),
    (
        "cpu.moderate",
        &["orchestrator.threading.resource_management.cpu_monitoring.thresholds.moderate_percent"],
    ),
    (
        "cpu.high",
        &["orchestrator.threading.resource_management.cpu_monitoring.thresholds.high_percent"],
    ),
    (
        "cpu.critical",
        &["orchestrator.threading.resource_management.cpu_monitoring.thresholds.critical_percent"],
    ),
    (
        "threads.min",
        &["orchestrator.threading.resource_management.min_threads"],
    ),
    (
        "threads.max",
        &["orchestrator.threading.resource_management.max_threads"],
    ),
    ("threads.initial", &["orchestrator.threading.thread_count"]),
    (
        "threads.cooldown",
        &[
            "orchestrator.threading.resource_management.adjustment_cooldown_seconds",
            "orchestrator.threading.resource_management.cooldown_seconds",
        ],
    ),
    (
        "leak.enabled",
        &["orchestrator.threading.resource_management.memory_monitoring.leak_detection_enabled"],
    ),
    (
        "leak.growth",
        &[
            "orchestrator.threading.resource_management.memory_monitoring.leak_threshold_mb",
            "orchestrator.threading.resource_management.memory_monitoring.growth_threshold_mb",
        ],
    ),
    (
        "leak.window",
        &["orchestrator.threading.resource_management.memory_monitoring.leak_window_minutes"],
    ),
];

/// The whole legacy file: only `orchestrator`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyFile {
    orchestrator: Orchestrator,
}

/// `orchestrator:` (the original's `OrchestratorSettings`).
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Orchestrator {
    threading: Threading,
}

/// `threading:` (the original's `ThreadingSettings`).
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
#[allow(dead_code)] // fields without a resctl meaning are accepted and not read
struct Threading {
    enabled: Option<bool>,
    thread_count: Option<u32>,
    mode: Option<String>,
    memory_per_thread_gb: Option<f64>,
    parallelization: Option<Parallelization>,
    resource_management: ResourceManagement,
}

/// `threading.parallelization:` (accepted, no resctl meaning).
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
#[allow(dead_code)]
struct Parallelization {
    enabled: Option<bool>,
    max_workers: Option<u32>,
    memory_limit_mb: Option<f64>,
    enable_conditional_parallelization: Option<bool>,
    deterministic_execution: Option<bool>,
    resource_monitoring: Option<bool>,
    safety: Option<Safety>,
}

/// `threading.parallelization.safety:` (accepted, no resctl meaning).
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
#[allow(dead_code)]
struct Safety {
    fallback_on_resource_pressure: Option<bool>,
    validate_execution_safety: Option<bool>,
    abort_on_dependency_conflict: Option<bool>,
    max_retries_per_model: Option<u32>,
}

/// `resource_management:` (the original's `ResourceManagerSettings`).
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
#[allow(dead_code)]
struct ResourceManagement {
    enabled: Option<bool>,
    memory_monitoring: MemoryMonitoring,
    cpu_monitoring: CpuMonitoring,
    adaptive_scaling_enabled: Option<bool>,
    min_threads: Option<u32>,
    max_threads: Option<u32>,
    #[serde(alias = "cooldown_seconds")]
    adjustment_cooldown_seconds: Option<f64>,
    benchmarking_enabled: Option<bool>,
    benchmark_thread_counts: Option<Vec<u32>>,
    auto_cleanup_enabled: Option<bool>,
    cleanup_threshold_mb: Option<f64>,
}

/// `memory_monitoring:` (the original's `AdaptiveMemorySettings`).
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
#[allow(dead_code)]
struct MemoryMonitoring {
    enabled: Option<bool>,
    monitoring_interval_seconds: Option<f64>,
    history_size: Option<u32>,
    thresholds: MemoryThresholds,
    batch_sizes: Option<BatchSizes>,
    auto_gc_enabled: Option<bool>,
    fallback_enabled: Option<bool>,
    profiling_enabled: Option<bool>,
    recommendation_window_minutes: Option<f64>,
    min_samples_for_recommendation: Option<u32>,
    leak_detection_enabled: Option<bool>,
    #[serde(alias = "growth_threshold_mb")]
    leak_threshold_mb: Option<f64>,
    leak_window_minutes: Option<f64>,
}

/// `memory_monitoring.thresholds:` in MB (= MiB).
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
#[allow(dead_code)]
struct MemoryThresholds {
    moderate_mb: Option<f64>,
    high_mb: Option<f64>,
    critical_mb: Option<f64>,
    #[serde(alias = "gc_threshold_mb")]
    gc_trigger_mb: Option<f64>,
    fallback_trigger_mb: Option<f64>,
}

/// `memory_monitoring.batch_sizes:` (accepted, no resctl meaning).
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
#[allow(dead_code)]
struct BatchSizes {
    low: Option<u32>,
    medium: Option<u32>,
    high: Option<u32>,
    fallback: Option<u32>,
}

/// `cpu_monitoring:` (the original's `CPUMonitoringSettings`).
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
#[allow(dead_code)]
struct CpuMonitoring {
    enabled: Option<bool>,
    monitoring_interval_seconds: Option<f64>,
    history_size: Option<u32>,
    thresholds: CpuThresholds,
}

/// `cpu_monitoring.thresholds:` in percent.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct CpuThresholds {
    moderate_percent: Option<f64>,
    high_percent: Option<f64>,
    critical_percent: Option<f64>,
}

/// Positions of the legacy keys, for errors raised while mapping.
struct LegacyKeys<'a> {
    origin: &'a str,
    index: BTreeMap<KeyPath, Span>,
}

impl LegacyKeys<'_> {
    /// The first of the legacy keys `candidates` (relative to `resource_management`
    /// unless they start with `orchestrator.`) that the file holds.
    fn find(&self, candidates: &[&str]) -> Option<(String, Span)> {
        candidates.iter().find_map(|candidate| {
            let full = full_path(candidate);
            self.index
                .get(&key_path(&full))
                .map(|span| (short_name(&full), *span))
        })
    }

    /// An error about the legacy key `key` (see [`LegacyKeys::find`]).
    fn error(&self, key: &str, message: impl FnOnce(&str) -> String) -> ConfigError {
        let full = full_path(key);
        let name = short_name(&full);
        let at = match self.index.get(&key_path(&full)) {
            Some(span) => Position::at(self.origin, span.line, span.column),
            None => Position::origin_only(self.origin),
        };
        ConfigError::Invalid {
            message: message(&name),
            at,
            key: name,
        }
    }

    /// MB (MiB) → bytes, refusing negative and non-finite values.
    fn mebibytes(&self, key: &str, megabytes: f64) -> Result<u64, ConfigError> {
        if megabytes.is_finite() && megabytes >= 0.0 {
            Ok((megabytes * MIB as f64).round() as u64)
        } else {
            Err(self.error(key, |name| {
                format!("{name} ({megabytes}) must be a non-negative number of MB")
            }))
        }
    }

    /// Seconds → duration, refusing negative and non-finite values.
    fn seconds(&self, key: &str, seconds: f64) -> Result<Duration, ConfigError> {
        Duration::try_from_secs_f64(seconds).map_err(|_| {
            self.error(key, |name| {
                format!("{name} ({seconds}) must be a non-negative number of seconds")
            })
        })
    }

    /// A monitoring switch resctl cannot turn off.
    fn require_enabled(
        &self,
        key: &str,
        value: Option<bool>,
        what: &str,
    ) -> Result<(), ConfigError> {
        if value == Some(false) {
            return Err(self.error(key, |name| {
                format!("{name}: false has no resctl equivalent: resctl always watches {what}; remove the key or set it to true")
            }));
        }
        Ok(())
    }
}

/// A legacy key relative to `resource_management` made absolute.
fn full_path(key: &str) -> String {
    if key.starts_with("orchestrator.") {
        key.to_string()
    } else {
        format!("{RESOURCE_MANAGEMENT}.{key}")
    }
}

/// How to call a legacy key in messages: relative to `resource_management`, or to
/// `orchestrator` for keys outside it.
fn short_name(full: &str) -> String {
    full.strip_prefix(&format!("{RESOURCE_MANAGEMENT}."))
        .or_else(|| full.strip_prefix("orchestrator."))
        .unwrap_or(full)
        .to_string()
}

/// Reads a legacy file (whose key tree is `tree`) into a [`Config`]; validation is left to
/// the caller.
pub(super) fn from_yaml(text: &str, origin: &str, tree: &KeyTree) -> Result<Config, ConfigError> {
    let file: LegacyFile = serde_saphyr::from_str_with_options(text, parse_options())
        .map_err(|error| ConfigError::from_yaml(&error, origin))?;
    let keys = LegacyKeys {
        origin,
        index: tree.index(),
    };
    let mut config = map(file, &keys)?;
    config.provenance = provenance(&keys);
    Ok(config)
}

/// Native key positions for validation messages, named in the legacy vocabulary.
fn provenance(keys: &LegacyKeys<'_>) -> Provenance {
    let mut native = BTreeMap::new();
    for (native_key, candidates) in KEY_MAP {
        if let Some((name, span)) = keys.find(candidates) {
            native.insert(key_path(native_key), SourceKey { span, name });
        }
    }
    Provenance::from_file(keys.origin, native)
}

/// Maps the legacy settings onto resctl's defaults.
fn map(file: LegacyFile, keys: &LegacyKeys<'_>) -> Result<Config, ConfigError> {
    let threading = file.orchestrator.threading;
    let manager = threading.resource_management;
    let memory = manager.memory_monitoring;
    let cpu = manager.cpu_monitoring;
    let mut config = Config::default();

    keys.require_enabled("memory_monitoring.enabled", memory.enabled, "memory")?;
    keys.require_enabled("cpu_monitoring.enabled", cpu.enabled, "CPU")?;

    let memory_interval = memory
        .monitoring_interval_seconds
        .map(|seconds| keys.seconds("memory_monitoring.monitoring_interval_seconds", seconds))
        .transpose()?;
    let cpu_interval = cpu
        .monitoring_interval_seconds
        .map(|seconds| keys.seconds("cpu_monitoring.monitoring_interval_seconds", seconds))
        .transpose()?;
    if let (Some(memory_every), Some(cpu_every)) = (memory_interval, cpu_interval) {
        if memory_every != cpu_every {
            return Err(keys.error("cpu_monitoring.monitoring_interval_seconds", |name| {
                format!(
                    "{name} ({}s) differs from memory_monitoring.monitoring_interval_seconds ({}s); \
                     resctl samples memory and CPU at one interval",
                    cpu_every.as_secs_f64(),
                    memory_every.as_secs_f64()
                )
            }));
        }
    }
    if let Some(interval) = memory_interval.or(cpu_interval) {
        config.interval = interval;
    }

    let thresholds = memory.thresholds;
    for (key, value, target) in [
        (
            "memory_monitoring.thresholds.moderate_mb",
            thresholds.moderate_mb,
            &mut config.memory.moderate,
        ),
        (
            "memory_monitoring.thresholds.high_mb",
            thresholds.high_mb,
            &mut config.memory.high,
        ),
        (
            "memory_monitoring.thresholds.critical_mb",
            thresholds.critical_mb,
            &mut config.memory.critical,
        ),
    ] {
        if let Some(megabytes) = value {
            *target = Some(Limit::Bytes(keys.mebibytes(key, megabytes)?));
        }
    }
    config.memory.cleanup = cleanup(
        keys,
        thresholds.gc_trigger_mb,
        manager.cleanup_threshold_mb,
        manager.auto_cleanup_enabled == Some(false) || memory.auto_gc_enabled == Some(false),
    )?;

    let cpu_levels = cpu.thresholds;
    if let Some(value) = cpu_levels.moderate_percent {
        config.cpu.moderate = value;
    }
    if let Some(value) = cpu_levels.high_percent {
        config.cpu.high = value;
    }
    if let Some(value) = cpu_levels.critical_percent {
        config.cpu.critical = value;
    }

    if let Some(min) = manager.min_threads {
        config.threads.min = min;
    }
    if let Some(max) = manager.max_threads {
        config.threads.max = max;
    }
    config.threads.initial = threading.thread_count;
    if let Some(seconds) = manager.adjustment_cooldown_seconds {
        config.threads.cooldown = keys.seconds("adjustment_cooldown_seconds", seconds)?;
    }
    if manager.adaptive_scaling_enabled == Some(false) {
        let fixed = threading.thread_count.unwrap_or(config.threads.max);
        config.threads.min = fixed;
        config.threads.max = fixed;
        config.threads.initial = Some(fixed);
    }

    if let Some(enabled) = memory.leak_detection_enabled {
        config.leak.enabled = enabled;
    }
    if let Some(megabytes) = memory.leak_threshold_mb {
        config.leak.growth = keys.mebibytes("memory_monitoring.leak_threshold_mb", megabytes)?;
    }
    if let Some(minutes) = memory.leak_window_minutes {
        config.leak.window =
            keys.seconds("memory_monitoring.leak_window_minutes", minutes * 60.0)?;
    }
    Ok(config)
}

/// The cleanup level from the original's two triggers (the memory monitor's GC trigger
/// and the resource manager's cleanup threshold, 2500 MB each by default) and their
/// switches: either switch off turns cleanup off; two different triggers are an error.
fn cleanup(
    keys: &LegacyKeys<'_>,
    gc_trigger_mb: Option<f64>,
    cleanup_threshold_mb: Option<f64>,
    switched_off: bool,
) -> Result<Option<Limit>, ConfigError> {
    if switched_off {
        return Ok(Some(Limit::Unlimited));
    }
    // The GC trigger under whichever spelling the file uses.
    let gc_key = keys
        .find(&[
            "memory_monitoring.thresholds.gc_trigger_mb",
            "memory_monitoring.thresholds.gc_threshold_mb",
        ])
        .map(|(name, _)| name)
        .unwrap_or_else(|| "memory_monitoring.thresholds.gc_trigger_mb".to_string());
    let gc = gc_trigger_mb
        .map(|megabytes| keys.mebibytes(&gc_key, megabytes))
        .transpose()?;
    let manager_cleanup = cleanup_threshold_mb
        .map(|megabytes| keys.mebibytes("cleanup_threshold_mb", megabytes))
        .transpose()?;
    match (gc, manager_cleanup) {
        (Some(gc), Some(other)) if gc != other => Err(keys.error("cleanup_threshold_mb", |name| {
            format!(
                "{name} ({}) differs from {gc_key} ({}); resctl has one cleanup level, give one of them",
                cleanup_threshold_mb.unwrap_or_default(),
                gc_trigger_mb.unwrap_or_default()
            )
        })),
        (gc, other) => Ok(gc.or(other).map(Limit::Bytes)),
    }
}
