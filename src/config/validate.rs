//! Semantic checks: values that parse but make no sense (order of thresholds, bounds,
//! signal names, slice names). Each problem names the key, its value and where it is.

use std::time::Duration;

use nix::sys::signal::Signal;

use super::budget::Budget;
use super::defaults;
use super::source::{ConfigError, Provenance};
use super::{Config, PsiLevels};
use crate::units::{format_duration, format_size, Limit};

/// One problem: the keys involved (the one to point at first) and the message.
struct Issue {
    keys: Vec<String>,
    message: String,
}

impl Issue {
    fn new(keys: &[&str], message: String) -> Issue {
        Issue {
            keys: keys.iter().map(|key| key.to_string()).collect(),
            message,
        }
    }

    fn into_error(self, provenance: &Provenance) -> ConfigError {
        let keys: Vec<&str> = self.keys.iter().map(String::as_str).collect();
        let first = keys.first().copied().unwrap_or_default();
        ConfigError::Invalid {
            at: provenance.position(&keys),
            key: provenance.name(first),
            message: self.message,
        }
    }
}

/// Checks everything that can be checked without knowing the job's memory limit,
/// including every slice's merged configuration.
pub(super) fn validate(config: &Config) -> Result<(), ConfigError> {
    check_config(config).map_err(|issue| issue.into_error(&config.provenance))?;
    for name in config.slices.keys() {
        let slice_key = vec!["slices".to_string(), name.clone()];
        if let Err(reason) = check_slice_name(name) {
            return Err(ConfigError::Invalid {
                at: config.provenance.raw_position(&slice_key),
                key: slice_key.join("."),
                message: format!("slice name '{name}' under slices: {reason}"),
            });
        }
        let merged = config.for_slice(name);
        check_slice_parts(&merged).map_err(|issue| issue.into_error(&merged.provenance))?;
    }
    Ok(())
}

/// Checks that the memory thresholds can be resolved against `job_limit` and are in order
/// once resolved.
pub(super) fn validate_for_limit(
    config: &Config,
    job_limit: Option<u64>,
) -> Result<(), ConfigError> {
    check_for_limit(config, job_limit, None).map_err(|issue| issue.into_error(&config.provenance))
}

/// Checks the memory thresholds for a job with `budget`: percentages are taken of it (of
/// the host's budget too, when the job's cgroup has no limit), and once resolved the levels
/// must be below a cgroup limit and in order.
pub(super) fn validate_within(config: &Config, budget: &Budget) -> Result<(), ConfigError> {
    let host_budget = budget.without_limit();
    let job_limit = host_budget.is_none().then_some(budget.bytes);
    check_for_limit(config, job_limit, host_budget)
        .map_err(|issue| issue.into_error(&config.provenance))
}

/// Level keys of the memory section, in ascending order of severity.
const MEMORY_LEVELS: [&str; 3] = ["memory.moderate", "memory.high", "memory.critical"];

fn check_config(config: &Config) -> Result<(), Issue> {
    let name = |key: &str| config.provenance.name(key);
    let interval = config.interval;
    if !(defaults::MIN_INTERVAL..=defaults::MAX_INTERVAL).contains(&interval) {
        return Err(Issue::new(
            &["interval"],
            format!(
                "{} ({}) must be between {} and {}",
                name("interval"),
                format_duration(interval),
                format_duration(defaults::MIN_INTERVAL),
                format_duration(defaults::MAX_INTERVAL)
            ),
        ));
    }
    if config.grace > defaults::MAX_GRACE {
        return Err(Issue::new(
            &["grace"],
            format!(
                "{} ({}) must be at most {}",
                name("grace"),
                format_duration(config.grace),
                format_duration(defaults::MAX_GRACE)
            ),
        ));
    }
    let hysteresis = config.hysteresis;
    if !(hysteresis.is_finite() && (0.0..defaults::MAX_HYSTERESIS).contains(&hysteresis)) {
        return Err(Issue::new(
            &["hysteresis"],
            format!(
                "{} ({hysteresis}) must be a fraction from 0 to below {} (0.05 = 5 % below a threshold)",
                name("hysteresis"),
                defaults::MAX_HYSTERESIS
            ),
        ));
    }
    if let Err(reason) = check_slice_name(&config.slice) {
        return Err(Issue::new(
            &["slice"],
            format!("{} ('{}'): {reason}", name("slice"), config.slice),
        ));
    }
    if let Some(signal) = &config.notify_signal {
        if let Err(reason) = parse_signal(signal) {
            return Err(Issue::new(
                &["notify_signal"],
                format!("{} ('{signal}'): {reason}", name("notify_signal")),
            ));
        }
    }
    check_slice_parts(config)?;
    check_leak(config)
}

/// The checks that also apply to a slice's merged configuration.
fn check_slice_parts(config: &Config) -> Result<(), Issue> {
    check_memory(config)?;
    check_ascending(
        config,
        "cpu",
        [config.cpu.moderate, config.cpu.high, config.cpu.critical],
    )?;
    for (section, levels) in [
        ("psi.memory_some", &config.psi.memory_some),
        ("psi.memory_full", &config.psi.memory_full),
        ("psi.cpu_some", &config.psi.cpu_some),
    ] {
        if let Some(PsiLevels {
            moderate,
            high,
            critical,
        }) = levels
        {
            check_ascending(config, section, [*moderate, *high, *critical])?;
        }
    }
    check_threads(config)?;
    check_limits(config)?;
    check_duration_range(
        config,
        "kill_after",
        config.kill_after,
        defaults::MIN_KILL_AFTER,
        defaults::MAX_KILL_AFTER,
    )
}

fn check_memory(config: &Config) -> Result<(), Issue> {
    let name = |key: &str| config.provenance.name(key);
    let memory = &config.memory;
    let levels = [memory.moderate, memory.high, memory.critical];
    for (key, level) in MEMORY_LEVELS.iter().zip(levels) {
        if let Some(limit) = level {
            check_threshold_value(config, key, limit)?;
        }
    }
    if let Some(Limit::Bytes(0)) = memory.cleanup {
        return Err(Issue::new(
            &["memory.cleanup"],
            format!(
                "{} must be above 0 (write max to turn cleanup off)",
                name("memory.cleanup")
            ),
        ));
    }
    for pair in [(0, 1), (1, 2)] {
        let (lower_key, upper_key) = (MEMORY_LEVELS[pair.0], MEMORY_LEVELS[pair.1]);
        if let (Some(lower), Some(upper)) = (levels[pair.0], levels[pair.1]) {
            if comparable_not_below(lower, upper) {
                return Err(order_issue(config, lower_key, lower, upper_key, upper));
            }
        }
    }
    check_against_defaults(config)?;
    if let (Some(cleanup), Some(critical)) = (memory.cleanup, memory.critical) {
        if cleanup != Limit::Unlimited && comparable_not_below(cleanup, critical) {
            return Err(order_issue(
                config,
                "memory.cleanup",
                cleanup,
                "memory.critical",
                critical,
            ));
        }
    }
    Ok(())
}

/// A level left unset is its default share of the budget, so a percentage set against it
/// is out of order for every budget (`high: 99%` with critical's default 87.5 %): said at
/// load, not only when a job resolves its levels.
fn check_against_defaults(config: &Config) -> Result<(), Issue> {
    let memory = &config.memory;
    let levels = [
        (
            "memory.moderate",
            memory.moderate,
            defaults::MEMORY_MODERATE_PERCENT,
        ),
        ("memory.high", memory.high, defaults::MEMORY_HIGH_PERCENT),
        (
            "memory.critical",
            memory.critical,
            defaults::MEMORY_CRITICAL_PERCENT,
        ),
    ];
    let cleanup = (
        "memory.cleanup",
        memory.cleanup,
        defaults::MEMORY_CLEANUP_PERCENT,
    );
    let pairs = [
        (levels[0], levels[1]),
        (levels[1], levels[2]),
        (levels[0], levels[2]),
        (cleanup, levels[2]),
    ];
    for ((lower_key, lower, lower_default), (upper_key, upper, upper_default)) in pairs {
        let (lower_percent, upper_percent, set_key, lower_shown, upper_shown) = match (lower, upper)
        {
            (Some(Limit::Percent(lower)), None) => (
                lower,
                upper_default,
                lower_key,
                format!("{lower}%"),
                format!("default {upper_default}%"),
            ),
            (None, Some(Limit::Percent(upper))) if lower_key != "memory.cleanup" => (
                lower_default,
                upper,
                upper_key,
                format!("default {lower_default}%"),
                format!("{upper}%"),
            ),
            _ => continue,
        };
        if lower_percent >= upper_percent {
            return Err(Issue::new(
                &[set_key],
                format!(
                    "{} ({lower_shown}) must be below {} ({upper_shown})",
                    config.provenance.name(lower_key),
                    config.provenance.name(upper_key)
                ),
            ));
        }
    }
    Ok(())
}

/// A level threshold must be a positive size or a percentage.
fn check_threshold_value(config: &Config, key: &str, limit: Limit) -> Result<(), Issue> {
    let problem = match limit {
        Limit::Unlimited => {
            "needs a size (e.g. 2000M) or a percentage of the job's limit (e.g. 50%), not max"
        }
        Limit::Bytes(0) => "must be above 0",
        _ => return Ok(()),
    };
    Err(Issue::new(
        &[key],
        format!("{} {problem}", config.provenance.name(key)),
    ))
}

/// Whether `lower` is not below `upper`, when both are of the same kind (sizes or
/// percentages); mixed kinds are compared by `validate_for_limit`.
fn comparable_not_below(lower: Limit, upper: Limit) -> bool {
    match (lower, upper) {
        (Limit::Bytes(lower), Limit::Bytes(upper)) => lower >= upper,
        (Limit::Percent(lower), Limit::Percent(upper)) => lower >= upper,
        _ => false,
    }
}

fn order_issue(
    config: &Config,
    lower_key: &str,
    lower: Limit,
    upper_key: &str,
    upper: Limit,
) -> Issue {
    let name = |key: &str| config.provenance.name(key);
    Issue::new(
        &[lower_key, upper_key],
        format!(
            "{} ({lower}) must be below {} ({upper})",
            name(lower_key),
            name(upper_key)
        ),
    )
}

/// moderate < high < critical for a section of percentages.
fn check_ascending(config: &Config, section: &str, values: [f64; 3]) -> Result<(), Issue> {
    let keys = ["moderate", "high", "critical"].map(|level| format!("{section}.{level}"));
    for pair in [(0, 1), (1, 2)] {
        if values[pair.0] >= values[pair.1] {
            let (lower_key, upper_key) = (&keys[pair.0], &keys[pair.1]);
            return Err(Issue::new(
                &[lower_key, upper_key],
                format!(
                    "{} ({}%) must be below {} ({}%)",
                    config.provenance.name(lower_key),
                    values[pair.0],
                    config.provenance.name(upper_key),
                    values[pair.1]
                ),
            ));
        }
    }
    Ok(())
}

fn check_threads(config: &Config) -> Result<(), Issue> {
    let name = |key: &str| config.provenance.name(key);
    let threads = &config.threads;
    if threads.min < 1 {
        return Err(Issue::new(
            &["threads.min"],
            format!(
                "{} ({}) must be at least 1",
                name("threads.min"),
                threads.min
            ),
        ));
    }
    if threads.max > defaults::THREADS_CAP {
        return Err(Issue::new(
            &["threads.max"],
            format!(
                "{} ({}) must be at most {}",
                name("threads.max"),
                threads.max,
                defaults::THREADS_CAP
            ),
        ));
    }
    if threads.min > threads.max {
        return Err(Issue::new(
            &["threads.min", "threads.max"],
            format!(
                "{} ({}) must not exceed {} ({})",
                name("threads.min"),
                threads.min,
                name("threads.max"),
                threads.max
            ),
        ));
    }
    if let Some(initial) = threads.initial {
        if !(threads.min..=threads.max).contains(&initial) {
            return Err(Issue::new(
                &["threads.initial", "threads.min", "threads.max"],
                format!(
                    "{} ({initial}) must be between {} ({}) and {} ({})",
                    name("threads.initial"),
                    name("threads.min"),
                    threads.min,
                    name("threads.max"),
                    threads.max
                ),
            ));
        }
    }
    check_duration_range(
        config,
        "threads.cooldown",
        threads.cooldown,
        defaults::MIN_COOLDOWN,
        defaults::MAX_COOLDOWN,
    )
}

fn check_duration_range(
    config: &Config,
    key: &str,
    value: Duration,
    min: Duration,
    max: Duration,
) -> Result<(), Issue> {
    if (min..=max).contains(&value) {
        return Ok(());
    }
    Err(Issue::new(
        &[key],
        format!(
            "{} ({}) must be between {} and {}",
            config.provenance.name(key),
            format_duration(value),
            format_duration(min),
            format_duration(max)
        ),
    ))
}

fn check_leak(config: &Config) -> Result<(), Issue> {
    let name = |key: &str| config.provenance.name(key);
    let leak = &config.leak;
    if leak.growth == 0 {
        return Err(Issue::new(
            &["leak.growth"],
            format!("{} must be above 0", name("leak.growth")),
        ));
    }
    let shortest = (config.interval * defaults::LEAK_MIN_SAMPLES).max(defaults::MIN_LEAK_WINDOW);
    check_duration_range(
        config,
        "leak.window",
        leak.window,
        shortest,
        defaults::MAX_LEAK_WINDOW,
    )?;
    if !(leak.min_fit.is_finite() && (0.0..=1.0).contains(&leak.min_fit)) {
        return Err(Issue::new(
            &["leak.min_fit"],
            format!(
                "{} ({}) must be a goodness of fit (r²) from 0 to 1",
                name("leak.min_fit"),
                leak.min_fit
            ),
        ));
    }
    Ok(())
}

fn check_limits(config: &Config) -> Result<(), Issue> {
    let name = |key: &str| config.provenance.name(key);
    for (key, value) in [
        ("limits.memory_high", config.limits.memory_high),
        ("limits.memory_max", config.limits.memory_max),
    ] {
        if value == Some(Limit::Bytes(0)) {
            return Err(Issue::new(
                &[key],
                format!("{} must be above 0 (write max for no limit)", name(key)),
            ));
        }
    }
    if let (Some(high), Some(max)) = (config.limits.memory_high, config.limits.memory_max) {
        let out_of_order = match (high, max) {
            (Limit::Bytes(high), Limit::Bytes(max)) => high > max,
            (Limit::Percent(high), Limit::Percent(max)) => high > max,
            _ => false,
        };
        if out_of_order {
            return Err(Issue::new(
                &["limits.memory_high", "limits.memory_max"],
                format!(
                    "{} ({high}) must not exceed {} ({max})",
                    name("limits.memory_high"),
                    name("limits.memory_max")
                ),
            ));
        }
    }
    Ok(())
}

fn check_for_limit(
    config: &Config,
    job_limit: Option<u64>,
    host_budget: Option<u64>,
) -> Result<(), Issue> {
    let name = |key: &str| config.provenance.name(key);
    let memory = &config.memory;
    let explicit = [
        memory.moderate,
        memory.high,
        memory.critical,
        memory.cleanup,
    ];
    let keys = [
        "memory.moderate",
        "memory.high",
        "memory.critical",
        "memory.cleanup",
    ];
    if job_limit.is_none() && host_budget.is_none() {
        let percent = keys
            .iter()
            .zip(explicit)
            .find(|(_, value)| value.is_some_and(|limit| limit.is_percent()));
        if let Some((key, Some(value))) = percent {
            return Err(Issue::new(
                &[key],
                format!(
                    "{} is {value} of the job's memory limit, but the job has no memory limit; \
                     give a size (e.g. 2000M) or set limits.memory_max",
                    name(key)
                ),
            ));
        }
    }
    let resolved = config.memory_rules_within(host_budget).resolve(job_limit);
    let values = [
        resolved.moderate,
        resolved.high,
        resolved.critical,
        resolved.cleanup,
    ];
    let shown = |index: usize| describe_level(explicit[index], values[index]);
    if let Some(limit) = job_limit {
        for index in 0..3 {
            if values[index] >= limit {
                return Err(Issue::new(
                    &[keys[index]],
                    format!(
                        "{} ({}) is not below the job's memory limit ({}): the kernel would act first",
                        name(keys[index]),
                        shown(index),
                        format_size(limit)
                    ),
                ));
            }
        }
    }
    let against = match (job_limit, host_budget) {
        (Some(limit), _) => format!("against the job's memory limit of {}", format_size(limit)),
        (None, Some(budget)) => format!(
            "against the host's memory budget of {} (no limit on the job)",
            format_size(budget)
        ),
        (None, None) => "without a memory limit for the job".to_string(),
    };
    // moderate < high, high < critical, cleanup < critical (unless cleanup is off).
    for (lower, upper) in [(0, 1), (1, 2), (3, 2)] {
        if values[lower] == u64::MAX && lower == 3 {
            continue;
        }
        if values[lower] >= values[upper] {
            return Err(Issue::new(
                &[keys[lower], keys[upper]],
                format!(
                    "{} ({}) must be below {} ({}) {against}",
                    name(keys[lower]),
                    shown(lower),
                    name(keys[upper]),
                    shown(upper)
                ),
            ));
        }
    }
    Ok(())
}

/// A resolved memory level as a message shows it: the size as written, a percentage with
/// what it comes to, or the default's value.
fn describe_level(explicit: Option<Limit>, resolved: u64) -> String {
    match explicit {
        Some(Limit::Bytes(bytes)) => Limit::Bytes(bytes).to_string(),
        Some(Limit::Percent(percent)) => format!("{percent}% = {}", format_size(resolved)),
        Some(Limit::Unlimited) => "max".to_string(),
        None => format!("default {}", format_size(resolved)),
    }
}

/// Checks a systemd slice unit name: `NAME.slice` with NAME made of `[A-Za-z0-9:_.\-]`,
/// dashes marking hierarchy (`a-b.slice` lies in `a.slice`), so no leading, trailing or
/// doubled dash. Returns why the name is not acceptable.
pub fn check_slice_name(name: &str) -> Result<(), String> {
    let Some(stem) = name.strip_suffix(".slice") else {
        return Err("must end in .slice (e.g. resctl.slice)".to_string());
    };
    if stem.is_empty() {
        return Err("needs a name before .slice".to_string());
    }
    if name.len() > 255 {
        return Err("is longer than 255 characters".to_string());
    }
    if let Some(bad) = stem
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '.' | '-' | '\\')))
    {
        return Err(format!(
            "contains '{bad}'; a unit name may hold only letters, digits and : _ . - \\"
        ));
    }
    if stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
        return Err(
            "has a leading, trailing or doubled '-' (dashes separate parent slices)".to_string(),
        );
    }
    Ok(())
}

/// Reads a signal name as systemd does: `USR1`, `SIGUSR1`, any case. Refuses KILL and
/// STOP, which a process cannot catch, so they would end or freeze the job.
pub fn parse_signal(name: &str) -> Result<Signal, String> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    let signal: Signal = full
        .parse()
        .map_err(|_| "not a signal name; use e.g. USR1, USR2, HUP or WINCH".to_string())?;
    if matches!(signal, Signal::SIGKILL | Signal::SIGSTOP) {
        return Err(format!(
            "{full} cannot be caught, so the job would be killed or stopped; use e.g. USR1"
        ));
    }
    Ok(signal)
}
