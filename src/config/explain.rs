//! Says what a run would do, and why: the budget, each memory level, the thread bounds, the
//! job's priority and the daemon's last resort, with where each value came from (a file's
//! key, the command line, or a default and what it is a share of). What `resctl config show
//! --resolved` and `resctl doctor` print. Pure: it formats a [`RunPlan`] already resolved
//! from a [`Config`] and the host's facts.

use serde::Serialize;

use super::budget::Budget;
use super::resolve::{HostFacts, RunPlan};
use super::{defaults, Config, LastResort};
use crate::units::{format_duration, format_size, Limit};

/// One resolved value and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resolved {
    /// What it is (`budget`, `memory.high`, ...).
    pub key: &'static str,
    /// The value, bytes (`u64::MAX`: never reached, or off).
    pub bytes: u64,
    /// Where it came from, in words.
    pub source: String,
}

/// The budget, levels and thread bounds of a run, each with its source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The budget the levels are shares of.
    pub budget: Budget,
    /// `memory.moderate`, `memory.high`, `memory.critical`, `memory.cleanup`.
    pub levels: Vec<Resolved>,
    /// Workers at start.
    pub initial_threads: u32,
    /// Where the starting count came from.
    pub initial_threads_source: String,
    /// The thread bounds.
    pub threads: (u32, u32),
    /// The job's priority for `resctl daemon` (`--priority`, else the configuration's).
    pub priority: i32,
    /// Where the priority came from.
    pub priority_source: String,
    /// What `resctl daemon` does last to the job's slice at critical.
    pub last_resort: LastResort,
    /// With `kill`: seconds at critical after the freeze before the kill.
    pub kill_after_secs: Option<f64>,
    /// Where the last resort came from, and with `kill` what it does and when.
    pub last_resort_source: String,
}

impl Explanation {
    /// Explains `plan`, resolved from `config` on a host with `host` facts.
    pub fn new(config: &Config, plan: &RunPlan, host: &HostFacts) -> Explanation {
        let policy = &plan.policy;
        let memory = &config.memory;
        let levels = [
            (
                "memory.moderate",
                memory.moderate,
                policy.memory_moderate,
                defaults::MEMORY_MODERATE_PERCENT,
            ),
            (
                "memory.high",
                memory.high,
                policy.memory_high,
                defaults::MEMORY_HIGH_PERCENT,
            ),
            (
                "memory.critical",
                memory.critical,
                policy.memory_critical,
                defaults::MEMORY_CRITICAL_PERCENT,
            ),
        ]
        .into_iter()
        .map(|(key, explicit, bytes, default_percent)| Resolved {
            key,
            bytes,
            source: level_source(config, key, explicit, default_percent),
        })
        .chain(std::iter::once(Resolved {
            key: "memory.cleanup",
            bytes: policy.memory_cleanup,
            source: if !host.can_reclaim {
                "off: the job's cgroup has no memory.reclaim (cgroup v2 only)".to_string()
            } else if memory.cleanup.is_some() {
                level_source(config, "memory.cleanup", memory.cleanup, 0.0)
            } else {
                "default: midway between moderate and high".to_string()
            },
        }))
        .collect();
        let initial_threads_source =
            setting_source(config, "threads.initial", config.threads.initial.is_some())
                .unwrap_or_else(|| {
                    format!(
                        "default: the {} CPUs this process may use, within the bounds",
                        host.cpus
                    )
                });
        let priority_source =
            setting_source(config, "priority", config.priority != defaults::PRIORITY)
                .unwrap_or_else(|| "default: no --priority and no priority: key".to_string());
        let last_resort_set = setting_source(
            config,
            "last_resort",
            config.last_resort != LastResort::default(),
        )
        .unwrap_or_else(|| "default".to_string());
        let last_resort_source = match config.last_resort_kill_after() {
            None => format!(
                "{last_resort_set}: at critical, when no job can shrink, the lowest priority is \
                 frozen, never killed"
            ),
            Some(after) => format!(
                "{}: at critical, when no job can shrink, the lowest priority is frozen, and \
                 killed once the slice stayed at critical {} longer ({})",
                last_resort_set,
                format_duration(after),
                setting_source(config, "kill_after", after != defaults::KILL_AFTER)
                    .unwrap_or_else(|| "default kill_after".to_string())
            ),
        };
        Explanation {
            budget: plan.budget,
            levels,
            initial_threads: policy.initial_threads,
            initial_threads_source,
            threads: (policy.min_threads, policy.max_threads),
            priority: config.priority,
            priority_source,
            last_resort: config.last_resort,
            kill_after_secs: config
                .last_resort_kill_after()
                .map(|after| after.as_secs_f64()),
            last_resort_source,
        }
    }

    /// The explanation as aligned lines of text.
    pub fn render(&self) -> String {
        let mut out = format!(
            "budget            {:<8} {}\n",
            format_size(self.budget.bytes),
            self.budget.source
        );
        for level in &self.levels {
            let value = if level.bytes == u64::MAX {
                "never".to_string()
            } else {
                format_size(level.bytes)
            };
            out.push_str(&format!("{:<17} {value:<8} {}\n", level.key, level.source));
        }
        out.push_str(&format!(
            "threads.initial   {:<8} {}\n",
            self.initial_threads, self.initial_threads_source
        ));
        out.push_str(&format!(
            "threads           {}..{}\n",
            self.threads.0, self.threads.1
        ));
        out.push_str(&format!(
            "priority          {:<8} {}\n",
            self.priority, self.priority_source
        ));
        out.push_str(&format!(
            "last_resort       {:<8} {}\n",
            self.last_resort.to_string(),
            self.last_resort_source
        ));
        out
    }
}

/// Where the setting `key` came from: the command line or its key in the file; `the
/// configuration` when it is `set` (not its default) without a known key; `None` for the
/// default.
fn setting_source(config: &Config, key: &str, set: bool) -> Option<String> {
    config
        .provenance
        .source_of(key)
        .or_else(|| set.then(|| "the configuration".to_string()))
}

/// Where a memory level came from: the key that set it (with a percentage's base), or the
/// default share of the budget.
fn level_source(
    config: &Config,
    key: &str,
    explicit: Option<Limit>,
    default_percent: f64,
) -> String {
    let set_at = config
        .provenance
        .source_of(key)
        .unwrap_or_else(|| "the configuration".to_string());
    match explicit {
        Some(Limit::Percent(percent)) => format!("{set_at}: {percent}% of the budget"),
        Some(limit) => format!("{set_at}: {limit}"),
        None => format!("default: {default_percent}% of the budget"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::resolve::{resolve, RunFlags};

    const MIB: u64 = 1024 * 1024;

    fn host() -> HostFacts {
        HostFacts {
            cpus: 2,
            memory_total: 24 * 1024 * MIB,
            memory_available: 22 * 1024 * MIB,
            enclosing_limit: None,
            can_reclaim: false,
        }
    }

    #[test]
    fn every_value_says_where_it_came_from() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("resctl.yaml");
        std::fs::write(&file, "memory:\n  high: 60%\n  critical: 18G\n").unwrap();
        let config = Config::load(&file).unwrap();
        let plan = resolve(&config, &host(), &RunFlags::default()).unwrap();
        let text = Explanation::new(&config, &plan, &host()).render();
        assert!(
            text.contains(
                "budget            19.6G    the host's 22G available at start less a 2.4G reserve"
            ),
            "{text}"
        );
        assert!(
            text.contains("memory.moderate   9.8G     default: 50% of the budget"),
            "{text}"
        );
        assert!(
            text.contains("memory.high       11.8G    ")
                && text.contains(":2:3 (memory.high): 60% of the budget"),
            "{text}"
        );
        assert!(
            text.contains("memory.critical   18G      ")
                && text.contains(":3:3 (memory.critical): 18G"),
            "{text}"
        );
        assert!(
            text.contains("memory.cleanup    never    off: the job's cgroup has no memory.reclaim"),
            "{text}"
        );
        assert!(
            text.contains("threads.initial   2        default: the 2 CPUs"),
            "{text}"
        );
        assert!(
            text.contains("priority          0        default: no --priority and no priority: key"),
            "{text}"
        );
        assert!(
            text.contains(
                "last_resort       freeze   default: at critical, when no job can shrink, the \
                 lowest priority is frozen, never killed"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_priority_and_a_kill_say_where_they_came_from() {
        let origin = "/etc/resctl/resctl.yaml";
        let config = Config::from_yaml(
            "priority: 3\nkill_after: 45s\nslices:\n  batch.slice:\n    last_resort: kill\n",
            origin,
        )
        .unwrap()
        .for_slice("batch.slice");
        let plan = resolve(&config, &host(), &RunFlags::default()).unwrap();
        let explanation = Explanation::new(&config, &plan, &host());
        assert_eq!(explanation.kill_after_secs, Some(45.0));
        let text = explanation.render();
        assert!(
            text.contains(&format!(
                "priority          3        {origin}:1:1 (priority)\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "last_resort       kill     {origin}:5:5 (slices.batch.slice.last_resort): at \
                 critical, when no job can shrink, the lowest priority is frozen, and killed once \
                 the slice stayed at critical 45s longer ({origin}:2:1 (kill_after))\n"
            )),
            "{text}"
        );
        // A --priority wins and says so.
        let flagged = config
            .with_overrides(&crate::config::Overrides {
                priority: Some(-1),
                ..crate::config::Overrides::default()
            })
            .unwrap();
        let text = Explanation::new(&flagged, &plan, &host()).render();
        assert!(
            text.contains("priority          -1       command line\n"),
            "{text}"
        );
    }
}
