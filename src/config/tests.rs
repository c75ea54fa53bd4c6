//! Unit tests for the configuration: defaults, error positions, legacy mapping, slices,
//! overrides and the YAML round trip.

use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::defaults::MIB;
use super::*;

const GIB: u64 = 1 << 30;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(name)
}

fn parse(yaml: &str) -> Config {
    Config::from_yaml(yaml, "t.yaml").unwrap()
}

fn error(yaml: &str) -> ConfigError {
    match Config::from_yaml(yaml, "t.yaml") {
        Ok(config) => panic!("expected an error for {yaml:?}, got {config:?}"),
        Err(error) => error,
    }
}

/// Asserts the error's position and that its message contains `needle`.
fn assert_error_at(yaml: &str, line: u64, column: u64, needle: &str) -> ConfigError {
    let error = error(yaml);
    let text = error.to_string();
    assert_eq!(error.line_column(), Some((line, column)), "{text}");
    assert!(
        text.starts_with(&format!("t.yaml:{line}:{column}: ")),
        "{text}"
    );
    assert!(text.contains(needle), "{text:?} lacks {needle:?}");
    error
}

#[test]
fn defaults_are_the_originals() {
    let config = Config::default();
    assert_eq!(config.interval, Duration::from_secs(1));
    assert_eq!(
        (config.cpu.moderate, config.cpu.high, config.cpu.critical),
        (70.0, 85.0, 95.0)
    );
    assert_eq!((config.threads.min, config.threads.max), (1, 8));
    assert_eq!(config.threads.initial, None);
    assert_eq!(config.threads.cooldown, Duration::from_secs(30));
    assert_eq!(config.leak.growth, 800 * MIB);
    assert_eq!(config.leak.window, Duration::from_secs(900));
    assert_eq!(config.leak.min_fit, 0.8);
    assert!(config.leak.enabled);
    assert_eq!(config.grace, Duration::from_secs(2));
    assert_eq!(config.hysteresis, 0.05);
    assert_eq!(config.slice, "resctl.slice");
    assert_eq!(config.notify_signal, None);
    assert_eq!(config.limits, LimitsConfig::default());
    assert!(config.slices.is_empty());
    assert_eq!(
        config.psi,
        PsiConfig {
            memory_some: None,
            memory_full: Some(PsiLevels {
                moderate: 10.0,
                high: 25.0,
                critical: 50.0
            }),
            cpu_some: None,
        }
    );
    assert_eq!(
        config.psi.memory_full.map(<[f64; 3]>::from),
        Some([10.0, 25.0, 50.0])
    );
    let original = MemoryLevels {
        moderate: 2000 * MIB,
        high: 3000 * MIB,
        critical: 3500 * MIB,
        cleanup: 2500 * MIB,
    };
    assert_eq!(config.resolve_memory(None), original);
    // Against the original's 4000 MB limit the percentages give the same levels.
    assert_eq!(config.resolve_memory(Some(4000 * MIB)), original);
    assert_eq!(config.priority, 0);
    assert_eq!(config.last_resort, LastResort::Freeze);
    assert_eq!(config.kill_after, Duration::from_secs(30));
    // The default never kills.
    assert_eq!(config.last_resort_kill_after(), None);
    assert_eq!(config.origin(), "built-in defaults");
    config.validate().unwrap();
}

#[test]
fn example_file_equals_the_defaults() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/resctl.yaml");
    let config = Config::load(&path).unwrap();
    assert_eq!(config, Config::default());
    assert!(config.origin().ends_with("config/resctl.yaml"));
}

#[test]
fn empty_and_partial_files_keep_the_defaults() {
    assert_eq!(parse(""), Config::default());
    assert_eq!(parse("# nothing\n"), Config::default());
    let config = parse("threads:\n  max: 4\n");
    assert_eq!(config.threads.max, 4);
    assert_eq!(config.threads.min, 1);
    assert_eq!(config.threads.cooldown, Duration::from_secs(30));
}

#[test]
fn values_accept_units_and_bare_numbers() {
    let config = parse(
        "interval: 1.5\nmemory:\n  moderate: 2147483648\n  high: 3.5G\n  critical: 90%\n  cleanup: max\ncpu:\n  high: 90%\nleak:\n  window: 30min\n",
    );
    assert_eq!(config.interval, Duration::from_millis(1500));
    assert_eq!(config.memory.moderate, Some(Limit::Bytes(2 * GIB)));
    assert_eq!(config.memory.high, Some(Limit::Bytes(3_758_096_384)));
    assert_eq!(config.memory.critical, Some(Limit::Percent(90.0)));
    assert_eq!(config.memory.cleanup, Some(Limit::Unlimited));
    assert_eq!(config.cpu.high, 90.0);
    assert_eq!(config.leak.window, Duration::from_secs(1800));
    assert_eq!(config.resolve_memory(Some(4 * GIB)).cleanup, u64::MAX);
}

#[test]
fn yaml_errors_name_file_line_and_column() {
    let unknown = assert_error_at(
        "interval: 1s\nmemory:\n  moderat: 3G\n",
        3,
        3,
        "unknown field `moderat`, expected one of",
    );
    assert!(matches!(unknown, ConfigError::Yaml { .. }));
    assert_error_at(
        "interval: 1s\ninterval: 2s\n",
        2,
        1,
        "duplicate mapping key",
    );
    assert_error_at("leak:\n  enabled: yes\n", 2, 12, "boolean");
    assert_error_at("memory:\n  high: 3X\n", 2, 9, "invalid limit '3X'");
    assert_error_at("interval: soon\n", 1, 11, "invalid duration 'soon'");
    assert_error_at("threads:\n  max: -1\n", 2, 8, "u32");
    assert_error_at("cpu:\n  high: 120\n", 2, 9, "at most 100");
    assert_error_at("memory: {high: 3G\n", 1, 9, "unclosed");
    assert_error_at("bogus: 1\n", 1, 1, "unknown field `bogus`");
    // A missing field is reported where its mapping ends.
    assert_error_at(
        "psi:\n  memory_full: {moderate: 1, high: 2}\n",
        2,
        30,
        "missing field `critical`",
    );
    // The snippet shows the offending line for a terminal.
    let ConfigError::Yaml { snippet, .. } = error("memory:\n  moderat: 3G\n") else {
        panic!("expected a YAML error");
    };
    assert!(
        snippet.contains("moderat: 3G") && snippet.contains("t.yaml"),
        "{snippet}"
    );
}

#[test]
fn semantic_errors_point_at_the_key() {
    let error = assert_error_at(
        "interval: 1s\nmemory:\n  moderate: 3000M\n  high: 2000M\n",
        3,
        3,
        "",
    );
    assert_eq!(
        error.to_string(),
        "t.yaml:3:3: memory.moderate (3000M) must be below memory.high (2000M)"
    );
    assert_eq!(error.key(), Some("memory.moderate"));
    // A flow mapping: the key's own column.
    assert_error_at(
        "memory: {moderate: 3000M, high: 2000M}\n",
        1,
        10,
        "memory.moderate (3000M) must be below memory.high (2000M)",
    );
    // Only the second key is in the file: point at it.
    assert_error_at(
        "cpu:\n  high: 60\n",
        2,
        3,
        "cpu.moderate (70%) must be below cpu.high (60%)",
    );
    assert_error_at(
        "threads:\n  min: 9\n",
        2,
        3,
        "threads.min (9) must not exceed threads.max (8)",
    );
    assert_error_at(
        "threads:\n  initial: 12\n",
        2,
        3,
        "threads.initial (12) must be between threads.min (1) and threads.max (8)",
    );
    assert_error_at(
        "threads: {min: 0}\n",
        1,
        11,
        "threads.min (0) must be at least 1",
    );
    assert_error_at(
        "threads:\n  cooldown: 1s\n",
        2,
        3,
        "threads.cooldown (1s) must be between 5s and 5m",
    );
    assert_error_at(
        "interval: 50ms\n",
        1,
        1,
        "interval (50ms) must be between 100ms and 1m",
    );
    assert_error_at("hysteresis: 0.7\n", 1, 1, "hysteresis (0.7)");
    assert_error_at(
        "notify_signal: FOO\n",
        1,
        1,
        "notify_signal ('FOO'): not a signal name",
    );
    assert_error_at("notify_signal: KILL\n", 1, 1, "cannot be caught");
    assert_error_at(
        "slice: build\n",
        1,
        1,
        "slice ('build'): must end in .slice",
    );
    assert_error_at(
        "slices:\n  build: {}\n",
        2,
        3,
        "slice name 'build' under slices",
    );
    assert_error_at("memory:\n  high: max\n", 2, 3, "memory.high needs a size");
    assert_error_at(
        "memory:\n  cleanup: 3600M\n  critical: 3500M\n",
        2,
        3,
        "memory.cleanup (3600M) must be below memory.critical (3500M)",
    );
    assert_error_at(
        "limits:\n  memory_high: 5G\n  memory_max: 4G\n",
        2,
        3,
        "limits.memory_high (5G) must not exceed limits.memory_max (4G)",
    );
    assert_error_at(
        "leak:\n  window: 5s\n",
        2,
        3,
        "leak.window (5s) must be between 1m and 24h",
    );
    assert_error_at("leak:\n  min_fit: 1.5\n", 2, 3, "leak.min_fit (1.5)");
    // Inside a slice section: the slice's key, named with its path.
    assert_error_at(
        "slices:\n  a.slice:\n    psi:\n      memory_full: {moderate: 30, high: 20, critical: 50}\n",
        4,
        21,
        "slices.a.slice.psi.memory_full.moderate (30%) must be below slices.a.slice.psi.memory_full.high (20%)",
    );
    // A slice override that clashes with a global value.
    assert_error_at(
        "threads:\n  max: 4\nslices:\n  a.slice:\n    threads: { min: 6 }\n",
        5,
        16,
        "slices.a.slice.threads.min (6) must not exceed threads.max (4)",
    );
}

#[test]
fn default_cleanup_follows_moderate_and_high() {
    // The original's 2500M between 2000M and 3000M; 62.5 % between 50 % and 75 %.
    assert_eq!(Config::default().resolve_memory(None).cleanup, 2500 * MIB);
    assert_eq!(
        Config::default().resolve_memory(Some(4 * GIB)).cleanup,
        2560 * MIB
    );
    // Small explicit levels without a limit: cleanup follows them and stays valid.
    let config = parse("memory:\n  moderate: 50M\n  high: 60M\n  critical: 70M\n");
    assert_eq!(config.resolve_memory(None).cleanup, 55 * MIB);
    config.validate_for_limit(None).unwrap();
}

#[test]
fn percent_thresholds_resolve_against_the_job_limit() {
    let config = parse("memory:\n  moderate: 40%\n  high: 3G\n");
    let resolved = config.resolve_memory(Some(4 * GIB));
    assert_eq!(resolved.moderate, 1638 * MIB + 409 * 1024 + 614); // 40 % of 4 GiB, rounded
    assert_eq!(resolved.moderate, (4.0 * GIB as f64 * 0.4).round() as u64);
    assert_eq!(resolved.high, 3 * GIB);
    assert_eq!(resolved.critical, 3 * GIB + 512 * MIB); // 87.5 % default
                                                        // Unset cleanup sits midway between moderate and high (2.3 GiB here).
    assert_eq!(resolved.cleanup, resolved.moderate / 2 + resolved.high / 2);
    assert_eq!(resolved.cleanup, 2_469_606_195);
    config.validate_for_limit(Some(4 * GIB)).unwrap();

    // A percentage needs a limit.
    let error = config.validate_for_limit(None).unwrap_err();
    assert_eq!(error.line_column(), Some((2, 3)));
    assert!(
        error.to_string().contains(
            "memory.moderate is 40% of the job's memory limit, but the job has no memory limit"
        ),
        "{error}"
    );

    // Mixed kinds are ordered once resolved.
    let mixed = parse("memory:\n  moderate: 3G\n  high: 50%\n");
    let error = mixed.validate_for_limit(Some(4 * GIB)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "t.yaml:2:3: memory.moderate (3G) must be below memory.high (50% = 2G) against the job's memory limit of 4G"
    );
    // An explicit level at or above the limit is never reached before the kernel acts.
    let error = parse("memory:\n  critical: 3500M\n")
        .validate_for_limit(Some(2 * GIB))
        .unwrap_err();
    assert!(
        error.to_string().starts_with(
            "t.yaml:2:3: memory.critical (3500M) is not below the job's memory limit (2G)"
        ),
        "{error}"
    );
}

#[test]
fn levels_are_ordered_against_their_defaults() {
    // Valid on its own (the defaults depend on the limit) ...
    let config = parse("memory:\n  cleanup: 3600M\n");
    // ... but without a limit the default critical level is 3500M.
    let error = config.validate_for_limit(None).unwrap_err();
    assert_eq!(
        error.to_string(),
        "t.yaml:2:3: memory.cleanup (3600M) must be below memory.critical (default 3.4G) without a memory limit for the job"
    );
    // With an 8G limit the default critical level is 7G: fine.
    config.validate_for_limit(Some(8 * GIB)).unwrap();
}

#[test]
fn cgroup_limits_resolve_against_host_memory() {
    let config = parse("limits:\n  memory_high: 50%\n  memory_max: max\n");
    assert_eq!(
        config.limits.resolve(16 * GIB),
        ResolvedLimits {
            memory_high: Some(8 * GIB),
            memory_max: None
        }
    );
}

#[test]
fn legacy_story_block_maps_onto_the_defaults() {
    let config = Config::load(&fixture("legacy-story.yaml")).unwrap();
    let expected = Config {
        memory: MemoryConfig {
            moderate: Some(Limit::Bytes(2000 * MIB)),
            high: Some(Limit::Bytes(3000 * MIB)),
            critical: Some(Limit::Bytes(3500 * MIB)),
            cleanup: None,
        },
        ..Config::default()
    };
    assert_eq!(config, expected);
    assert_eq!(
        config.resolve_memory(None),
        Config::default().resolve_memory(None)
    );
}

#[test]
fn legacy_knobs_map_onto_config() {
    let config = Config::load(&fixture("legacy-full.yaml")).unwrap();
    assert_eq!(config.interval, Duration::from_millis(500));
    assert_eq!(config.memory.moderate, Some(Limit::Bytes(1000 * MIB)));
    assert_eq!(config.memory.high, Some(Limit::Bytes(1500 * MIB)));
    assert_eq!(config.memory.critical, Some(Limit::Bytes(1_835_532_288))); // 1750.5 MiB
    assert_eq!(config.memory.cleanup, Some(Limit::Bytes(1200 * MIB)));
    assert_eq!(
        (config.cpu.moderate, config.cpu.high, config.cpu.critical),
        (60.0, 80.0, 90.0)
    );
    assert_eq!((config.threads.min, config.threads.max), (2, 6));
    assert_eq!(config.threads.initial, Some(3));
    assert_eq!(config.threads.cooldown, Duration::from_secs(10));
    assert!(config.leak.enabled);
    assert_eq!(config.leak.growth, 400 * MIB);
    assert_eq!(config.leak.window, Duration::from_secs(600));
    // Everything else keeps resctl's defaults.
    assert_eq!(config.psi, PsiConfig::default());
    assert_eq!(config.slice, "resctl.slice");
}

#[test]
fn legacy_aliases_and_switches() {
    let config = parse(
        "orchestrator:\n  threading:\n    thread_count: 4\n    resource_management:\n      adaptive_scaling_enabled: false\n      cooldown_seconds: 60\n      auto_cleanup_enabled: false\n      memory_monitoring:\n        growth_threshold_mb: 100\n        leak_detection_enabled: false\n        thresholds: { gc_threshold_mb: 2200 }\n",
    );
    assert_eq!(
        (
            config.threads.min,
            config.threads.max,
            config.threads.initial
        ),
        (4, 4, Some(4))
    );
    assert_eq!(config.threads.cooldown, Duration::from_secs(60));
    assert_eq!(config.memory.cleanup, Some(Limit::Unlimited));
    assert_eq!(config.leak.growth, 100 * MIB);
    assert!(!config.leak.enabled);
    let config = parse(
        "orchestrator:\n  threading:\n    resource_management:\n      memory_monitoring:\n        thresholds: { gc_threshold_mb: 2200 }\n",
    );
    assert_eq!(config.memory.cleanup, Some(Limit::Bytes(2200 * MIB)));
}

#[test]
fn legacy_errors_name_legacy_keys() {
    let prefix = "orchestrator:\n  threading:\n    resource_management:\n";
    assert_error_at(
        &format!("{prefix}      bogus: 1\n"),
        4,
        7,
        "unknown field `bogus`",
    );
    assert_error_at(
        "orchestrator: {}\nsimulation: {}\n",
        2,
        1,
        "unknown field `simulation`",
    );
    assert_error_at(
        &format!("{prefix}      memory_monitoring:\n        thresholds:\n          moderate_mb: 3000\n          high_mb: 2000\n"),
        6,
        11,
        "memory_monitoring.thresholds.moderate_mb (3000M) must be below memory_monitoring.thresholds.high_mb (2000M)",
    );
    assert_error_at(
        &format!("{prefix}      min_threads: 9\n"),
        4,
        7,
        "min_threads (9) must not exceed threads.max (8)",
    );
    assert_error_at(
        &format!("{prefix}      cpu_monitoring:\n        enabled: false\n"),
        5,
        9,
        "cpu_monitoring.enabled: false has no resctl equivalent",
    );
    assert_error_at(
        &format!("{prefix}      adjustment_cooldown_seconds: 1\n"),
        4,
        7,
        "adjustment_cooldown_seconds (1s) must be between 5s and 5m",
    );
    assert_error_at(
        &format!("{prefix}      cleanup_threshold_mb: 2000\n      memory_monitoring:\n        thresholds: {{ gc_trigger_mb: 2500 }}\n"),
        4,
        7,
        "cleanup_threshold_mb (2000) differs from memory_monitoring.thresholds.gc_trigger_mb (2500)",
    );
    assert_error_at(
        &format!("{prefix}      memory_monitoring:\n        monitoring_interval_seconds: 1\n      cpu_monitoring:\n        monitoring_interval_seconds: 2\n"),
        7,
        9,
        "resctl samples memory and CPU at one interval",
    );
    assert_error_at(
        &format!("{prefix}      memory_monitoring:\n        thresholds: {{ high_mb: -5 }}\n"),
        5,
        23,
        "must be a non-negative number of MB",
    );
}

#[test]
fn slice_overrides_merge_over_the_globals() {
    let config = Config::load(&fixture("slices.yaml")).unwrap();
    let build = config.for_slice("build.slice");
    assert_eq!(build.slice, "build.slice");
    assert_eq!(build.interval, Duration::from_secs(2));
    assert_eq!((build.threads.min, build.threads.max), (1, 16));
    assert_eq!(build.threads.cooldown, Duration::from_secs(10));
    assert_eq!(build.memory.moderate, Some(Limit::Percent(40.0)));
    assert_eq!(build.memory.high, Some(Limit::Percent(80.0)));
    assert_eq!(build.memory.critical, None);
    assert_eq!(build.limits.memory_max, Some(Limit::Bytes(12 * GIB)));
    assert_eq!(build.cpu, CpuConfig::default());
    let resolved = build.resolve_memory(Some(12 * GIB));
    assert_eq!(resolved.high, (12.0 * GIB as f64 * 0.8).round() as u64);
    assert_eq!(resolved.critical, 10 * GIB + 512 * MIB);

    let etl = config.for_slice("etl.slice");
    assert_eq!((etl.cpu.moderate, etl.cpu.critical), (70.0, 99.0));
    assert_eq!(etl.psi.memory_full, None);
    assert_eq!(
        etl.psi.cpu_some,
        Some(PsiLevels {
            moderate: 20.0,
            high: 40.0,
            critical: 80.0
        })
    );
    assert_eq!(etl.memory.high, Some(Limit::Bytes(3 * GIB)));
    assert_eq!(etl.threads, config.threads);

    let mut other = config.for_slice("other.slice");
    assert_eq!(other.slice, "other.slice");
    other.slice = config.slice.clone();
    assert_eq!(other, config);
}

/// Reads `config.to_yaml()` back: it must resolve to the same levels for every budget and
/// equal `config` in everything else (default levels come back as their default shares).
fn assert_round_trips(config: &Config) -> Config {
    let mut back = parse(&config.to_yaml());
    for budget in [None, Some(19 * GIB)] {
        assert_eq!(
            back.memory_rules_within(budget),
            config.memory_rules_within(budget)
        );
    }
    back.memory = config.memory;
    assert_eq!(&back, config);
    back
}

#[test]
fn to_yaml_round_trips() {
    let defaults = Config::default();
    let yaml = defaults.to_yaml();
    assert!(yaml.contains("interval: 1s\n"), "{yaml}");
    assert!(yaml.contains("  window: 15m\n"), "{yaml}");
    assert!(
        yaml.contains("  high: 75%\n"),
        "defaults shown, not null: {yaml}"
    );
    assert_round_trips(&defaults);

    let slices = Config::load(&fixture("slices.yaml")).unwrap();
    assert_round_trips(&slices);
    let legacy = Config::load(&fixture("legacy-full.yaml")).unwrap();
    assert_round_trips(&legacy);

    let unusual = parse(
        "interval: 1.25s\ngrace: 0s\nhysteresis: 0.1\nslice: a-b.slice\nnotify_signal: USR2\n\
         memory: {moderate: 37.5%, high: 3000000000, critical: 90%, cleanup: max}\n\
         cpu: {moderate: 50.5, high: 60, critical: 100}\n\
         psi: {memory_some: {moderate: 5, high: 10, critical: 20}, memory_full: ~}\n\
         threads: {min: 2, max: 32, initial: 3, cooldown: 2m30s}\n\
         leak: {enabled: false, growth: 1.5G, window: 1h30m, min_fit: 0.95}\n\
         limits: {memory_high: 90%, memory_max: max}\n\
         priority: -3\nlast_resort: kill\nkill_after: 1m30s\n\
         slices:\n  x.slice:\n    psi: {cpu_some: ~}\n    cpu: {high: 61}\n\
         \x20   priority: 7\n    last_resort: freeze\n    kill_after: 5s\n",
    );
    let yaml = unusual.to_yaml();
    assert!(yaml.contains("high: 3000000000B"), "{yaml}");
    assert!(
        yaml.contains("priority: -3\nlast_resort: kill\nkill_after: 1m30s\n"),
        "{yaml}"
    );
    assert!(
        yaml.contains("    priority: 7\n    last_resort: freeze\n    kill_after: 5s\n"),
        "{yaml}"
    );
    // A slice that overrides nothing of the daemon's writes none of its keys.
    assert!(
        !slices.to_yaml().contains("    priority:"),
        "{}",
        slices.to_yaml()
    );
    assert_eq!(assert_round_trips(&unusual), unusual);
    assert_eq!(unusual.for_slice("x.slice").psi.cpu_some, None);
}

#[test]
fn command_line_overrides_apply_and_are_named() {
    let config = parse("threads:\n  max: 4\n");
    let applied = config
        .clone()
        .with_overrides(&Overrides {
            moderate: Some(Limit::Percent(60.0)),
            memory_max: Some(Limit::Bytes(8 * GIB)),
            interval: Some(Duration::from_millis(500)),
            max_threads: Some(6),
            slice: Some("job.slice".to_string()),
            notify_signal: Some("SIGUSR1".to_string()),
            ..Overrides::default()
        })
        .unwrap();
    assert_eq!(applied.memory.moderate, Some(Limit::Percent(60.0)));
    assert_eq!(applied.limits.memory_max, Some(Limit::Bytes(8 * GIB)));
    assert_eq!(applied.interval, Duration::from_millis(500));
    assert_eq!(applied.threads.max, 6);
    assert_eq!(applied.slice, "job.slice");
    assert_eq!(applied.notify_signal_parsed(), Some(Signal::SIGUSR1));

    let error = config
        .clone()
        .with_overrides(&Overrides {
            min_threads: Some(6),
            ..Overrides::default()
        })
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "command line: threads.min (6) must not exceed threads.max (4)"
    );
    let mut bad_signal = config;
    assert!(bad_signal
        .apply(&Overrides {
            notify_signal: Some("NOPE".to_string()),
            ..Overrides::default()
        })
        .unwrap_err()
        .to_string()
        .starts_with("command line: notify_signal ('NOPE')"));
}

#[test]
fn signals_and_slice_names() {
    assert_eq!(parse_signal("usr1"), Ok(Signal::SIGUSR1));
    assert_eq!(parse_signal("SIGHUP"), Ok(Signal::SIGHUP));
    assert!(parse_signal("STOP").is_err());
    assert!(check_slice_name("a-b.slice").is_ok());
    assert!(check_slice_name(".slice").is_err());
    assert!(check_slice_name("a--b.slice").is_err());
    assert!(check_slice_name("a/b.slice").is_err());
}

#[test]
fn read_errors_name_the_path() {
    let error = Config::load(&fixture("missing.yaml")).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("missing.yaml: cannot read the configuration"),
        "{text}"
    );
}

/// Found by fuzzing (config_yaml): `high: 99%` with critical left to its default loaded,
/// and `config show` then wrote a file that did not load.
#[test]
fn a_percentage_out_of_order_with_a_defaulted_level_is_refused_at_load() {
    assert_error_at(
        "memory: { moderate: 80%, high: 99% }\n",
        1,
        26,
        "memory.high (99%) must be below memory.critical (default 87.5%)",
    );
    assert_error_at(
        "memory:\n  high: 40%\n",
        2,
        3,
        "memory.moderate (default 50%) must be below memory.high (40%)",
    );
    assert_error_at(
        "memory:\n  cleanup: 90%\n",
        2,
        3,
        "memory.cleanup (90%) must be below memory.critical (default 87.5%)",
    );
    assert_error_at(
        "slices:\n  build.slice:\n    memory: { high: 99% }\n",
        3,
        15,
        "slices.build.slice.memory.high (99%) must be below memory.critical (default 87.5%)",
    );
    // Sizes are compared against the budget's shares only when a job resolves its levels.
    assert!(Config::from_yaml("memory:\n  high: 3G\n", "t.yaml").is_ok());
    // And what `config show` writes for a valid file loads again.
    let config = Config::from_yaml("memory: { high: 80% }\n", "t.yaml").unwrap();
    assert!(Config::from_yaml(&config.to_yaml(), "again").is_ok());
}

#[test]
fn priority_and_last_resort_merge_per_slice_over_the_top_level() {
    let config = parse(
        "priority: 2\nlast_resort: kill\nkill_after: 1m\nslices:\n  \
         batch.slice: { priority: -5, kill_after: 10s }\n  \
         web.slice: { last_resort: freeze }\n  \
         build.slice: {}\n",
    );
    let batch = config.for_slice("batch.slice");
    assert_eq!(batch.priority, -5);
    assert_eq!(
        batch.last_resort_kill_after(),
        Some(Duration::from_secs(10))
    );
    let web = config.for_slice("web.slice");
    assert_eq!(web.priority, 2);
    assert_eq!(web.last_resort, LastResort::Freeze);
    assert_eq!(web.last_resort_kill_after(), None);
    let build = config.for_slice("build.slice");
    assert_eq!(build.priority, 2);
    assert_eq!(
        build.last_resort_kill_after(),
        Some(Duration::from_secs(60))
    );
    // A slice not in the file takes the top level's.
    assert_eq!(config.for_slice("other.slice").priority, 2);
    // Where each came from: the slice's own key, else the top level's.
    assert_eq!(
        batch.provenance.source_of("priority").as_deref(),
        Some("t.yaml:5:18 (slices.batch.slice.priority)")
    );
    assert_eq!(
        build.provenance.source_of("priority").as_deref(),
        Some("t.yaml:1:1 (priority)")
    );
    assert_eq!(
        web.provenance.source_of("last_resort").as_deref(),
        Some("t.yaml:6:16 (slices.web.slice.last_resort)")
    );
    // The whole of an i32, as --priority takes.
    assert_eq!(parse("priority: -2147483648\n").priority, i32::MIN);
    assert_eq!(parse("priority: 2147483647\n").priority, i32::MAX);
    assert_round_trips(&config);
}

#[test]
fn priority_on_the_command_line_wins_and_is_named() {
    let config = parse("priority: 2\nslices:\n  batch.slice: { priority: -5 }\n");
    let applied = config
        .for_slice("batch.slice")
        .with_overrides(&Overrides {
            priority: Some(9),
            ..Overrides::default()
        })
        .unwrap();
    assert_eq!(applied.priority, 9);
    assert_eq!(
        applied.provenance.source_of("priority").as_deref(),
        Some("command line")
    );
    // Without the flag, the slice's.
    let kept = config
        .for_slice("batch.slice")
        .with_overrides(&Overrides::default())
        .unwrap();
    assert_eq!(kept.priority, -5);
}

#[test]
fn bad_priority_last_resort_and_kill_after_name_file_line_and_column() {
    for (yaml, line, column, needle) in [
        ("priority: high\n", 1, 11, "i32"),
        ("priority: 1.5\n", 1, 11, "i32"),
        // Beyond what --priority takes.
        ("priority: 2147483648\n", 1, 11, "i32"),
        ("slices:\n  batch.slice: { priority: x }\n", 2, 28, "i32"),
        (
            "last_resort: murder\n",
            1,
            14,
            "unknown variant `murder`, expected one of freeze, kill",
        ),
        (
            "slices:\n  batch.slice:\n    last_resort: KILL\n",
            3,
            18,
            "unknown variant `KILL`",
        ),
        (
            "kill_after: 1s\n",
            1,
            1,
            "kill_after (1s) must be between 3s and 1h",
        ),
        (
            "last_resort: kill\nkill_after: 2h\n",
            2,
            1,
            "kill_after (2h) must be between 3s and 1h",
        ),
        (
            "slices:\n  batch.slice:\n    last_resort: kill\n    kill_after: 500ms\n",
            4,
            5,
            "slices.batch.slice.kill_after (500ms) must be between 3s and 1h",
        ),
        ("kill_after: soon\n", 1, 13, "invalid duration 'soon'"),
    ] {
        assert_error_at(yaml, line, column, needle);
    }
    // The bounds themselves are allowed.
    parse("kill_after: 3s\n");
    parse("kill_after: 1h\n");
}
