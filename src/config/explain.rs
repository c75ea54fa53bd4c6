//! Says what a run would do, and why: the budget, each memory level and the thread bounds
//! with where each value came from (a file's key, the command line, or a default and what
//! it is a share of). What `resctl config show --resolved` and `resctl doctor` print. Pure:
//! it formats a [`RunPlan`] already resolved from a [`Config`] and the host's facts.

use serde::Serialize;

use super::budget::Budget;
use super::resolve::{HostFacts, RunPlan};
use super::{defaults, Config};
use crate::units::{format_size, Limit};

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
        let initial_threads_source = match config.provenance.source_of("threads.initial") {
            Some(source) => source,
            None if config.threads.initial.is_some() => "the configuration".to_string(),
            None => format!(
                "default: the {} CPUs this process may use, within the bounds",
                host.cpus
            ),
        };
        Explanation {
            budget: plan.budget,
            levels,
            initial_threads: policy.initial_threads,
            initial_threads_source,
            threads: (policy.min_threads, policy.max_threads),
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
        out
    }
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
    }
}
