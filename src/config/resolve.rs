//! One pure step from a configuration and the facts of the host to what a run does: the
//! limits to put on the job's cgroup, the jobserver's size, and the policy's configuration
//! with its levels resolved against the job's real limit and its thread bounds clamped.
//! The caller reads the [`HostFacts`] once (CPUs, memory, the limits above the job's cgroup);
//! nothing here touches the kernel, so every rule is testable on made-up facts.

use crate::history::JobRecord;
use crate::policy::{PolicyConfig, RememberedWorkers};

use super::budget::Budget;
use super::{Config, ConfigError, Position};

/// What the host says, read once by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostFacts {
    /// CPUs this process may run on (the default starting worker count, at most the maximum).
    pub cpus: usize,
    /// Host memory (MemTotal), bytes: what a percentage in `--memory-max`/`--memory-high`
    /// is taken of, as systemd's `MemoryMax=` does.
    pub memory_total: u64,
    /// Host memory available when the job starts (MemAvailable), bytes: the budget, less a
    /// reserve, of a job without any limit.
    pub memory_available: u64,
    /// The tightest memory limit on the cgroups above the job's (a slice's `MemoryMax=`, a
    /// container's limit), bytes.
    pub enclosing_limit: Option<u64>,
    /// Whether the job's cgroup has `memory.reclaim` (cgroup v2).
    pub can_reclaim: bool,
}

/// What `resctl run`'s flags ask beyond the configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunFlags {
    /// `--threads N`: workers at start.
    pub threads: Option<u32>,
    /// `--jobserver[=N]`: serve a jobserver of N jobs; 0 means the maximum thread count.
    pub jobserver: Option<u32>,
}

/// What a run does, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPlan {
    /// `memory.high` of the job's cgroup, bytes.
    pub memory_high: Option<u64>,
    /// `memory.max` of the job's cgroup, bytes.
    pub memory_max: Option<u64>,
    /// The job's real limit: the tighter of `memory_max` and the enclosing limit.
    pub memory_limit: Option<u64>,
    /// What the memory levels are shares of, and where it came from.
    pub budget: Budget,
    /// The jobserver's size, if one is served.
    pub jobserver: Option<u32>,
    /// The policy's configuration: levels against `memory_limit`, thread bounds clamped.
    pub policy: PolicyConfig,
}

/// Resolves `config` for a run on a host with `host` facts and `flags`.
///
/// # Errors
///
/// Levels given as percentages without any limit to take them of, levels out of order for
/// this limit, or `--threads` outside the thread bounds.
pub fn resolve(
    config: &Config,
    host: &HostFacts,
    flags: &RunFlags,
) -> Result<RunPlan, ConfigError> {
    let limits = config.limits.resolve(host.memory_total);
    let memory_limit = match (limits.memory_max, host.enclosing_limit) {
        (Some(own), Some(above)) => Some(own.min(above)),
        (own, above) => own.or(above),
    };
    let budget = Budget::resolve(
        limits.memory_max,
        host.enclosing_limit,
        host.memory_total,
        host.memory_available,
    );
    config.validate_within(&budget)?;

    // Thread bounds, in one place: a jobserver of N jobs is the most workers; --threads must
    // lie within the bounds; the default start is the CPU count, at most the maximum.
    let jobserver = flags
        .jobserver
        .map(|jobs| if jobs == 0 { config.threads.max } else { jobs });
    let max = jobserver.unwrap_or(config.threads.max);
    let min = config.threads.min.min(max);
    if let Some(threads) = flags.threads {
        if !(min..=max).contains(&threads) {
            return Err(ConfigError::Invalid {
                at: Position::origin_only("command line"),
                key: "threads.initial".to_owned(),
                message: format!(
                    "--threads {threads}: must be between the minimum ({min}) and the maximum ({max}) thread count"
                ),
            });
        }
    }
    let cpus = u32::try_from(host.cpus).unwrap_or(u32::MAX);
    let initial = flags
        .threads
        .or(config.threads.initial)
        .unwrap_or(cpus)
        .clamp(min, max);

    let rules = config.memory_rules_within(budget.without_limit());
    let levels = rules.resolve(memory_limit);
    let mut policy = PolicyConfig {
        memory_moderate: levels.moderate,
        memory_high: levels.high,
        memory_critical: levels.critical,
        memory_cleanup: levels.cleanup,
        memory_limit,
        memory_rules: Some(rules),
        remembered: None,
        remembered_critical_count: None,
        memory_throttle: limits.memory_high,
        cpu_moderate: config.cpu.moderate,
        cpu_high: config.cpu.high,
        cpu_critical: config.cpu.critical,
        psi_memory_some: config.psi.memory_some.map(<[f64; 3]>::from),
        psi_memory_full: config.psi.memory_full.map(<[f64; 3]>::from),
        psi_cpu_some: config.psi.cpu_some.map(<[f64; 3]>::from),
        grace: config.grace,
        hysteresis: config.hysteresis,
        transition: crate::policy::defaults::TRANSITION,
        min_threads: min,
        max_threads: max,
        initial_threads: initial,
        cooldown: config.threads.cooldown,
        // Leak detection off: no growth is ever large enough.
        leak_growth: if config.leak.enabled {
            config.leak.growth
        } else {
            u64::MAX
        },
        leak_window: config.leak.window,
        leak_min_fit: config.leak.min_fit,
    };
    if !host.can_reclaim {
        // Only cgroup v2 has memory.reclaim: elsewhere the policy must not decide (and say
        // it decided) a reclaim that cannot happen.
        policy.disable_reclaim();
    }
    Ok(RunPlan {
        memory_high: limits.memory_high,
        memory_max: limits.memory_max,
        memory_limit,
        budget,
        jobserver,
        policy,
    })
}

impl RunPlan {
    /// Starts from what the job's history says fits (`record`), unless `--threads` or
    /// `threads.initial` chose the starting count; returns why, when it applied.
    pub fn start_from_history(
        &mut self,
        record: &JobRecord,
        config: &Config,
        flags: &RunFlags,
    ) -> Option<String> {
        let policy = &mut self.policy;
        let remembered = (record.per_worker > 0).then_some(RememberedWorkers {
            per_worker: record.per_worker,
            base: record.base,
            spread: record.spread,
        });
        policy.remembered = remembered;
        policy.remembered_critical_count = record.first_count_reaching(policy.memory_critical);
        if flags.threads.is_some() || config.threads.initial.is_some() {
            return None;
        }
        // With a hard limit, a predictable remembered line plans like a measured one (one
        // worker's memory, or three times the remembered spread, kept free below the
        // limit); the run drops it if its memory disagrees. A line the last run saw its
        // memory stray from plans nothing beyond the high level.
        let ceiling = remembered
            .and_then(|line| line.limit_margin())
            .and_then(|margin| policy.limit_plan(margin))
            .map_or(policy.growth_ceiling(), |plan| {
                plan.ceiling.max(policy.growth_ceiling())
            });
        let (count, why) = record.start_count(
            ceiling,
            policy.memory_critical,
            policy.min_threads,
            policy.max_threads,
        );
        policy.initial_threads = count;
        Some(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::budget::{host_reserve, BudgetSource};
    use crate::units::{percent_of, Limit};

    const MIB: u64 = 1024 * 1024;

    fn host() -> HostFacts {
        HostFacts {
            cpus: 2,
            memory_total: 24 * 1024 * MIB,
            memory_available: 22 * 1024 * MIB,
            enclosing_limit: None,
            can_reclaim: true,
        }
    }

    #[test]
    fn levels_follow_the_tighter_of_the_own_and_the_enclosing_limit() {
        let mut config = Config::default();
        config.limits.memory_max = Some(Limit::Bytes(200 * MIB));
        let plan = resolve(&config, &host(), &RunFlags::default()).unwrap();
        assert_eq!(plan.memory_max, Some(200 * MIB));
        assert_eq!(plan.memory_limit, Some(200 * MIB));
        assert_eq!(plan.policy.memory_critical, 175 * MIB);
        let tighter = HostFacts {
            enclosing_limit: Some(100 * MIB),
            ..host()
        };
        let plan = resolve(&config, &tighter, &RunFlags::default()).unwrap();
        assert_eq!(
            plan.memory_limit,
            Some(100 * MIB),
            "the slice above decides"
        );
        assert_eq!(plan.policy.memory_high, 75 * MIB);
        // A percentage limit is of the host's memory.
        config.limits.memory_max = Some(Limit::Percent(50.0));
        let plan = resolve(&config, &host(), &RunFlags::default()).unwrap();
        assert_eq!(plan.memory_max, Some(12 * 1024 * MIB));
    }

    #[test]
    fn history_plans_to_the_limit_less_one_remembered_worker() {
        let record = |per_worker: u64| JobRecord {
            version: crate::history::RECORD_VERSION,
            key: "pool".to_owned(),
            runs: 1,
            updated: 0,
            per_worker,
            base: MIB / 2,
            peak_threads: 4,
            peak_memory: 97 * MIB,
            best: None,
            throughput: Default::default(),
            peaks: Default::default(),
            exit_code: 0,
            oom_kills: 0,
            held_threads: None,
            spread: None,
        };
        let mut config = Config::default();
        config.limits.memory_max = Some(Limit::Bytes(128 * MIB));
        // 128M less 24M: 4 workers of 24M fit below 104M (the high level's 91.2M: 3).
        let mut plan = resolve(&config, &host(), &RunFlags::default()).unwrap();
        let why = plan.start_from_history(&record(24 * MIB), &config, &RunFlags::default());
        assert_eq!(plan.policy.initial_threads, 4, "{why:?}");
        assert!(why.is_some_and(|why| why.ends_with("fit below 104M")));
        assert_eq!(
            plan.policy.remembered,
            Some(RememberedWorkers {
                per_worker: 24 * MIB,
                base: MIB / 2,
                spread: None,
            })
        );
        // A remembered spread of 2M keeps 24M free too (3 × 2M is less); one of 9M (more
        // than a quarter of a worker: not predictable) leaves the high level to plan: 3.
        let with_spread = |spread_mib: u64| JobRecord {
            spread: Some(spread_mib * MIB),
            ..record(24 * MIB)
        };
        let mut plan = resolve(&config, &host(), &RunFlags::default()).unwrap();
        plan.start_from_history(&with_spread(2), &config, &RunFlags::default());
        assert_eq!(plan.policy.initial_threads, 4);
        let mut plan = resolve(&config, &host(), &RunFlags::default()).unwrap();
        let why = plan.start_from_history(&with_spread(9), &config, &RunFlags::default());
        assert_eq!(plan.policy.initial_threads, 3, "{why:?}");
        assert!(why.is_some_and(|why| why.ends_with("fit below 91.2M")));
        // Without a hard limit (the host's memory is the budget) the high level plans.
        let mut unlimited = resolve(&Config::default(), &host(), &RunFlags::default()).unwrap();
        let ceiling = unlimited.policy.growth_ceiling();
        unlimited.start_from_history(&record(ceiling / 2), &config, &RunFlags::default());
        assert_eq!(unlimited.policy.initial_threads, 1);
        // An explicit count wins, and the line is still remembered.
        let fixed = RunFlags {
            threads: Some(2),
            jobserver: None,
        };
        let mut plan = resolve(&config, &host(), &fixed).unwrap();
        assert!(plan
            .start_from_history(&record(24 * MIB), &config, &fixed)
            .is_none());
        assert_eq!(plan.policy.initial_threads, 2);
        assert!(plan.policy.remembered.is_some());
        // Growth stops below the count whose remembered peak reached this budget's critical
        // level (112M of 128M), even with an explicit count.
        assert_eq!(plan.policy.remembered_critical_count, None);
        let heavy = JobRecord {
            peaks: [(3, 100 * MIB), (4, 112 * MIB)].into_iter().collect(),
            ..record(24 * MIB)
        };
        plan.start_from_history(&heavy, &config, &fixed);
        assert_eq!(plan.policy.remembered_critical_count, Some(4));
    }

    #[test]
    fn thread_bounds_are_clamped_in_one_place() {
        let config = Config::default(); // threads 1..=8
        let plan = resolve(&config, &host(), &RunFlags::default()).unwrap();
        assert_eq!(plan.policy.initial_threads, 2, "the CPU count");
        let many = HostFacts { cpus: 64, ..host() };
        let plan = resolve(&config, &many, &RunFlags::default()).unwrap();
        assert_eq!(plan.policy.initial_threads, 8, "at most the maximum");
        let jobserver = RunFlags {
            jobserver: Some(3),
            threads: None,
        };
        let plan = resolve(&config, &many, &jobserver).unwrap();
        assert_eq!(
            (
                plan.jobserver,
                plan.policy.max_threads,
                plan.policy.initial_threads
            ),
            (Some(3), 3, 3)
        );
        let default_jobs = RunFlags {
            jobserver: Some(0),
            threads: None,
        };
        assert_eq!(
            resolve(&config, &host(), &default_jobs).unwrap().jobserver,
            Some(8)
        );
        let too_many = RunFlags {
            threads: Some(9),
            jobserver: None,
        };
        let error = resolve(&config, &host(), &too_many)
            .unwrap_err()
            .to_string();
        assert!(error.contains("--threads 9: must be between"), "{error}");
    }

    #[test]
    fn reclaim_is_decided_only_where_it_can_happen() {
        let config = Config::default();
        let plan = resolve(&config, &host(), &RunFlags::default()).unwrap();
        assert!(plan.policy.memory_cleanup < u64::MAX);
        let v1 = HostFacts {
            can_reclaim: false,
            ..host()
        };
        let plan = resolve(&config, &v1, &RunFlags::default()).unwrap();
        assert_eq!(plan.policy.memory_cleanup, u64::MAX);
    }

    #[test]
    fn without_any_limit_the_levels_are_shares_of_the_host_budget() {
        let mut config = Config::default();
        let plan = resolve(&config, &host(), &RunFlags::default()).unwrap();
        let budget = 22 * 1024 * MIB - host_reserve(24 * 1024 * MIB);
        assert_eq!(plan.budget.bytes, budget);
        assert_eq!(plan.memory_limit, None, "no cgroup limit is invented");
        assert_eq!(
            (
                plan.policy.memory_moderate,
                plan.policy.memory_high,
                plan.policy.memory_critical
            ),
            (
                percent_of(budget, 50.0),
                percent_of(budget, 75.0),
                percent_of(budget, 87.5)
            )
        );
        // Four workers of 1.5 GiB (6 GiB) sit below moderate on this host: nothing to shed.
        assert!(plan.policy.memory_moderate > 6 * 1024 * MIB);
        // A percentage in the configuration is of the same budget; a size still wins.
        config.memory.high = Some(Limit::Percent(60.0));
        config.memory.critical = Some(Limit::Bytes(18 * 1024 * MIB));
        let plan = resolve(&config, &host(), &RunFlags::default()).unwrap();
        assert_eq!(plan.policy.memory_high, percent_of(budget, 60.0));
        assert_eq!(plan.policy.memory_critical, 18 * 1024 * MIB);
    }

    #[test]
    fn levels_follow_a_limit_set_during_the_run_and_return_to_the_host_budget() {
        let plan = resolve(&Config::default(), &host(), &RunFlags::default()).unwrap();
        let host_high = plan.policy.memory_high;
        let mut policy = plan.policy;
        assert!(policy.follow_limit(Some(400 * MIB)));
        assert_eq!(policy.memory_high, 300 * MIB);
        assert!(policy.follow_limit(None));
        assert_eq!(policy.memory_high, host_high);
    }

    #[test]
    fn levels_out_of_order_for_the_budget_name_the_budget() {
        let mut config = Config::default();
        config.memory.moderate = Some(Limit::Bytes(20 * 1024 * MIB));
        let error = resolve(&config, &host(), &RunFlags::default())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("against the host's memory budget of 19.6G"),
            "{error}"
        );
        let limited = HostFacts {
            enclosing_limit: Some(400 * MIB),
            ..host()
        };
        let mut config = Config::default();
        config.memory.high = Some(Limit::Percent(75.0));
        let plan = resolve(&config, &limited, &RunFlags::default()).unwrap();
        assert_eq!(plan.policy.memory_high, 300 * MIB);
        assert_eq!(plan.budget.source, BudgetSource::EnclosingLimit);
    }
}
