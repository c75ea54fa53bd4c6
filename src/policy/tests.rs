//! Policy rules tested on synthetic traces built in code (and one stored trace).
//!
//! Most traces are *closed loop*: the job's memory depends on the worker count the policy
//! chose, as it would for a real job. [`simulate`] runs such a model tick by tick.

use std::time::Duration;

use proptest::prelude::*;

use super::defaults::MIB;
use super::*;

/// Runs `model(at, threads)` once per second for `seconds` + 1 ticks through a policy.
fn simulate(
    config: PolicyConfig,
    seconds: u64,
    mut model: impl FnMut(Duration, u32) -> Observation,
) -> (Vec<Observation>, Vec<Decision>) {
    let mut policy = Policy::new(config);
    let mut observations = Vec::new();
    let mut decisions = Vec::new();
    for second in 0..=seconds {
        let observation = model(Duration::from_secs(second), policy.threads());
        decisions.push(policy.step(&observation));
        observations.push(observation);
    }
    (observations, decisions)
}

/// An observation with only time and memory.
fn memory_at(at: Duration, memory_bytes: u64) -> Observation {
    Observation {
        at,
        memory_bytes,
        ..Observation::default()
    }
}

/// The thread changes of a run: (second, from, to).
fn changes(decisions: &[Decision]) -> Vec<(u64, u32, u32)> {
    decisions
        .iter()
        .filter(|decision| decision.changed())
        .map(|decision| {
            (
                decision.at.as_secs(),
                decision.previous_threads,
                decision.threads,
            )
        })
        .collect()
}

/// How often `level_of` changes between consecutive decisions.
fn level_changes(decisions: &[Decision], level_of: impl Fn(&Decision) -> Level) -> usize {
    decisions
        .windows(2)
        .filter(|pair| level_of(&pair[0]) != level_of(&pair[1]))
        .count()
}

/// Deterministic noise in -1..1 (xorshift64*), so traces are the same on every run.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let value = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        value as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// Memory levels moderate / high / critical in MiB, without a cleanup level (no reclaim).
fn memory_levels_mib(moderate: u64, high: u64, critical: u64) -> PolicyConfig {
    PolicyConfig {
        memory_moderate: moderate * MIB,
        memory_high: high * MIB,
        memory_critical: critical * MIB,
        memory_cleanup: 0,
        ..PolicyConfig::default()
    }
}

fn mib(value: f64) -> u64 {
    (value * MIB as f64) as u64
}

#[test]
fn steady_growth_falls_to_sequential_at_critical() {
    // 1000 MiB + 10 MiB/s: moderate (2000) at 100 s, high (3000) at 200 s, critical
    // (3500) at 250 s. Moderate only stops growth; high takes two workers per cooldown,
    // critical the rest at once.
    let (_, decisions) = simulate(PolicyConfig::default(), 300, |at, _| {
        memory_at(at, mib(1000.0 + 10.0 * at.as_secs_f64()))
    });
    assert_eq!(
        changes(&decisions),
        vec![(202, 8, 6), (232, 6, 4), (250, 4, 1)]
    );
    assert_eq!(decisions[150].memory_level, Level::Moderate);
    assert!(
        decisions[150]
            .reason
            .starts_with("memory 2.4G ≥ moderate 2G for 50s: holding 8 threads (maximum)"),
        "{}",
        decisions[150].reason
    );
    let critical = &decisions[250];
    assert_eq!(critical.level, Level::Critical);
    assert_eq!(
        critical.reason,
        "memory 3.4G ≥ critical 3.4G: sequential fallback, 4 → 1 threads"
    );
    assert_eq!(decisions[249].memory_level, Level::High);
    assert_eq!(decisions.last().map(|d| d.threads), Some(1));
    assert!(decisions[260]
        .reason
        .contains("holding 1 threads (minimum)"));
    // Levels only rise on a rising signal.
    assert!(decisions
        .windows(2)
        .all(|pair| pair[0].memory_level <= pair[1].memory_level));
}

#[test]
fn high_reduction_reason_has_value_threshold_and_duration() {
    let (_, decisions) = simulate(PolicyConfig::default(), 100, |at, _| {
        memory_at(at, 3200 * MIB)
    });
    assert_eq!(
        decisions[2].reason,
        "memory 3.1G ≥ high 2.9G for 2s: 8 → 6 threads"
    );
    assert_eq!(
        decisions[3].reason,
        "memory 3.1G ≥ high 2.9G for 3s: holding 6 threads, cooldown 29s left"
    );
}

#[test]
fn cooldown_is_respected_between_reductions() {
    let (_, decisions) = simulate(PolicyConfig::default(), 200, |at, _| {
        memory_at(at, 3200 * MIB)
    });
    assert_eq!(
        changes(&decisions),
        vec![(2, 8, 6), (32, 6, 4), (62, 4, 2), (92, 2, 1)]
    );
}

#[test]
fn leak_with_noise_is_suspected_with_the_right_rate() {
    // 60 MiB/min from 500 MiB, ±50 MiB of noise: stays below every level for 20 min.
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let (_, decisions) = simulate(PolicyConfig::default(), 1200, |at, _| {
        let memory = 500.0 + at.as_secs_f64() + 50.0 * noise.next();
        memory_at(at, mib(memory))
    });
    // Less than half of the 15-minute window seen: not yet.
    let early = decisions[400].leak.as_ref().unwrap();
    assert!(!early.suspected, "{}", early.message);
    assert!(early.message.contains("need half"), "{}", early.message);
    let verdict = decisions.last().unwrap().leak.as_ref().unwrap();
    assert!(verdict.suspected, "{}", verdict.message);
    assert!(
        (verdict.mb_per_min - 60.0).abs() <= 6.0,
        "{} MiB/min",
        verdict.mb_per_min
    );
    assert!(verdict.r_squared > 0.9, "r² {}", verdict.r_squared);
    assert_eq!(verdict.window, Duration::from_secs(900));
    assert_eq!(verdict.samples, 901);
    // From ~1700 MiB to the 3500 MiB critical level at 1 MiB/s: about 30 minutes.
    let left = verdict.time_to_limit.unwrap().as_secs_f64();
    assert!((1600.0..2000.0).contains(&left), "{left} s");
    assert!(decisions.last().unwrap().reason.contains("leak suspected"));
    // No pressure level was ever reached: the leak alone changes no thread count.
    assert!(changes(&decisions).is_empty());
}

#[test]
fn slow_growth_below_the_leak_growth_is_no_leak() {
    // 20 MiB/min × 15 min = 300 MiB < 800 MiB.
    let (_, decisions) = simulate(PolicyConfig::default(), 1000, |at, _| {
        memory_at(at, mib(500.0 + at.as_secs_f64() / 3.0))
    });
    let verdict = decisions.last().unwrap().leak.as_ref().unwrap();
    assert!(!verdict.suspected);
    assert!((verdict.mb_per_min - 20.0).abs() < 0.1);
    assert!(
        verdict.message.contains("growth 300M per 15m < 800M"),
        "{}",
        verdict.message
    );
}

#[test]
fn step_change_is_not_a_leak() {
    // +900 MiB at once, half-way through the window: the slope is large, the fit is not.
    let mut noise = Noise(7);
    let (_, decisions) = simulate(PolicyConfig::default(), 900, |at, _| {
        let base = if at.as_secs() < 450 { 800.0 } else { 1700.0 };
        memory_at(at, mib(base + 10.0 * noise.next()))
    });
    let verdict = decisions.last().unwrap().leak.as_ref().unwrap();
    assert!(!verdict.suspected, "{}", verdict.message);
    assert!(verdict.r_squared <= 0.76, "r² {}", verdict.r_squared);
    assert!(
        verdict.slope_bytes_per_sec * 900.0 >= (800 * MIB) as f64,
        "the growth test alone would have flagged it"
    );
    assert!(verdict.message.contains("fit r²"), "{}", verdict.message);
}

#[test]
fn spike_shorter_than_grace_changes_nothing() {
    let (_, decisions) = simulate(PolicyConfig::default(), 120, |at, _| {
        let spike = matches!(at.as_secs(), 50 | 51);
        memory_at(at, if spike { 3200 * MIB } else { 1000 * MIB })
    });
    assert!(changes(&decisions).is_empty());
    assert!(decisions.iter().all(|d| d.level == Level::Normal));
    assert_eq!(
        decisions[51].reason,
        "memory 3.1G ≥ high 2.9G for 1s of 2s grace: holding 8 threads (maximum)"
    );
    // The spike crossed the cleanup level (2500 MiB) going up: one reclaim to 2250 MiB.
    assert_eq!(decisions[50].reclaim, Some(950 * MIB));
    assert_eq!(decisions.iter().filter(|d| d.reclaim.is_some()).count(), 1);
}

#[test]
fn critical_spike_is_entered_at_once() {
    let (_, decisions) = simulate(PolicyConfig::default(), 80, |at, _| {
        let spike = at.as_secs() == 20;
        memory_at(at, if spike { 3600 * MIB } else { 1000 * MIB })
    });
    assert_eq!(changes(&decisions)[0], (20, 8, 1));
    // Memory is back at 1000 MiB: after a cooldown from the reduction the count ramps back
    // in the steps the headroom allows: the slope of the spike at 8 (3600 MiB) and 1000 MiB
    // at 1 is 371 MiB per worker, 4 of which fit below 2850 MiB; at 5 the slope is lower
    // and the count goes to the maximum.
    assert_eq!(changes(&decisions)[1..], [(50, 1, 5), (57, 5, 8)]);
    assert!(
        decisions[40]
            .reason
            .ends_with("holding 1 threads, cooldown 10s left after the reduction"),
        "{}",
        decisions[40].reason
    );
}

#[test]
fn oscillation_around_a_threshold_does_not_flap() {
    // ±3 % around moderate with a 20 s period: enters once, never leaves (never 5 % below).
    let (_, decisions) = simulate(PolicyConfig::default(), 600, |at, _| {
        let phase = at.as_secs_f64() / 20.0 * std::f64::consts::TAU;
        memory_at(at, mib(2000.0 * (1.0 + 0.03 * phase.sin())))
    });
    assert_eq!(level_changes(&decisions, |d| d.memory_level), 1);
    // Threads only ever go one way.
    assert!(decisions.windows(2).all(|p| p[1].threads <= p[0].threads));

    // ±10 % flipping every tick: never 2 s above, never 10 s below.
    let (_, decisions) = simulate(PolicyConfig::default(), 600, |at, _| {
        let above = at.as_secs() % 2 == 0;
        memory_at(at, mib(2000.0 * if above { 1.1 } else { 0.9 }))
    });
    assert!(level_changes(&decisions, |d| d.memory_level) <= 1);

    // CPU wobbling ±5 % around its high level.
    let (_, decisions) = simulate(PolicyConfig::default(), 600, |at, _| {
        let phase = at.as_secs_f64() / 20.0 * std::f64::consts::TAU;
        Observation {
            cpu_percent: Some(85.0 * (1.0 + 0.05 * phase.sin())),
            ..memory_at(at, 500 * MIB)
        }
    });
    assert!(level_changes(&decisions, |d| d.cpu_level) <= 1);
}

#[test]
fn cpu_saturation_blocks_growth() {
    let config = PolicyConfig {
        initial_threads: 2,
        ..PolicyConfig::default()
    };
    let run = |cpu: f64, throttled: bool, runnable: Option<f64>| {
        simulate(config.clone(), 600, move |at, _| Observation {
            cpu_percent: Some(cpu),
            cpu_throttled: throttled,
            runnable_per_core: runnable,
            ..memory_at(at, 500 * MIB)
        })
        .1
    };
    let saturated = run(97.0, false, None);
    assert!(changes(&saturated).is_empty(), "{:?}", changes(&saturated));
    assert_eq!(
        saturated[100].reason,
        "normal for 1m40s: holding 2 threads: cpu contended (cpu 97.0% ≥ critical 95.0% for 1m40s)"
    );
    // Utilisation alone does not shrink a CPU-bound job.
    assert!(saturated.iter().all(|d| d.threads == 2));
    assert_eq!(saturated[100].cpu_level, Level::Critical);

    let throttled = run(50.0, true, None);
    assert!(changes(&throttled).is_empty());
    assert!(throttled[100]
        .reason
        .ends_with("cpu contended (throttled by the cgroup's CPU quota)"));

    let queued = run(50.0, false, Some(1.5));
    assert!(changes(&queued).is_empty());
    assert!(queued[100]
        .reason
        .ends_with("(run queue 1.50 per core > 1.00)"));

    // Control: the same job with idle CPUs grows to the maximum, each step as far as the
    // run queue allows (3 s to settle — none for the starting count — then 3 s of samples
    // to see that memory no longer rises): one worker per step for the first 30 s, then
    // the rest in one step (memory does not follow the workers: peak ÷ workers is the
    // estimate, and the run queue allows it).
    let idle = run(50.0, false, Some(0.5));
    assert_eq!(
        changes(&idle),
        vec![(4, 2, 3), (11, 3, 4), (18, 4, 5), (25, 5, 6), (32, 6, 8)]
    );
    assert!(
        idle[4]
            .reason
            .ends_with("one at a time until two counts have measured the memory per worker)"),
        "{}",
        idle[4].reason
    );

    // CPU PSI "some", when configured, is contention: at its moderate level it shrinks by
    // one (utilisation alone did not), and nothing grows while it lasts.
    let config = PolicyConfig {
        initial_threads: 2,
        psi_cpu_some: Some(defaults::PSI_CPU_SOME_SUGGESTED),
        ..PolicyConfig::default()
    };
    let (_, pressured) = simulate(config, 300, |at, _| Observation {
        cpu_psi_some_avg10: Some(30.0),
        ..memory_at(at, 500 * MIB)
    });
    assert_eq!(changes(&pressured), vec![(2, 2, 1)]);
    assert_eq!(
        pressured[100].reason,
        "cpu PSI some 30.0% ≥ moderate 25.0% for 1m40s: holding 1 threads (minimum)"
    );
}

#[test]
fn growth_waits_while_the_workers_memory_still_rises() {
    // Each worker's memory ramps from 0 to 100 MiB over the 60 s after a change (tasks that
    // grow slowly, like a dbt model): growth waits until the ramp is over, so the count never
    // overshoots high (1000 MiB).
    let config = PolicyConfig {
        initial_threads: 2,
        ..memory_levels_mib(800, 1000, 1500)
    };
    let mut changed_at = Duration::ZERO;
    let mut previous = 2;
    let (_, decisions) = simulate(config, 600, |at, threads| {
        if threads != previous {
            changed_at = at;
            previous = threads;
        }
        let ramp = (at.saturating_sub(changed_at).as_secs_f64() / 60.0).min(1.0);
        memory_at(at, mib(50.0 + 100.0 * f64::from(threads) * ramp))
    });
    let grown = changes(&decisions);
    assert!(!grown.is_empty());
    assert!(
        grown[0].0 >= 60,
        "the first growth waited for the ramp: {grown:?}"
    );
    assert!(
        decisions.iter().all(|d| d.memory_level < Level::High),
        "{grown:?}"
    );
    assert!(
        decisions[30]
            .reason
            .contains("memory still rising at this count"),
        "{}",
        decisions[30].reason
    );
}

/// 100 MiB + 200 MiB per worker; high at 1000 MiB.
fn per_worker_model(at: Duration, threads: u32) -> Observation {
    memory_at(at, 100 * MIB + 200 * MIB * u64::from(threads))
}

#[test]
fn recovery_grows_by_measured_headroom_below_high() {
    let config = memory_levels_mib(950, 1000, 1500);
    let mut policy = Policy::new(config.clone());
    let (observations, decisions) = simulate(config, 900, per_worker_model);
    // 8 workers = 1700 MiB ≥ critical: sequential at once; a cooldown after the reduction
    // the count grows one worker per measured step while peak + one worker stays below high
    // less 5 % (950 MiB): the 200 MiB slope of the peaks at 8 workers (the first sample,
    // which needs no settling) and at 1 lets 3 more fit in one step (300 + 600 MiB); at 4
    // workers 900 MiB + 200 MiB would not fit.
    assert_eq!(changes(&decisions), vec![(0, 8, 1), (30, 1, 4)]);
    assert!(
        decisions[30].reason.ends_with(
            "1 → 4 threads (peak 300M + 3 × 200M per worker < 950M (high 1000M less 5 %))"
        ),
        "{}",
        decisions[30].reason
    );
    assert!(
        decisions[200].reason.ends_with(
            "holding 4 threads: peak 900M + 200M per worker would reach 950M (high 1000M less 5 %)"
        ),
        "{}",
        decisions[200].reason
    );
    for observation in &observations[..=40] {
        policy.step(observation);
    }
    assert_eq!(policy.marginal_memory_per_worker(), Some(200 * MIB));
    // Five minutes later only the samples at 4 workers are recent: no slope is known.
    for observation in &observations[41..] {
        policy.step(observation);
    }
    assert_eq!(policy.marginal_memory_per_worker(), None);
}

/// 100 MiB + `per_worker` MiB per worker, the per-worker memory changing with the phase
/// the time falls in (`phases`: start second and MiB per worker, in order).
fn phased_model(phases: &'static [(u64, u64)]) -> impl FnMut(Duration, u32) -> Observation {
    move |at, threads| {
        let per_worker = phases
            .iter()
            .rev()
            .find(|&&(start, _)| at.as_secs() >= start)
            .map_or(0, |&(_, per_worker)| per_worker);
        memory_at(at, (100 + per_worker * u64::from(threads)) * MIB)
    }
}

#[test]
fn a_short_light_phase_does_not_ramp_into_a_heavy_one() {
    // 8 MiB tasks for 12 s, then 36 MiB, from one worker, in the 128 MiB budget. Jumping by
    // the light slope (2 → 8 at 10 s) would hold 8 heavy tasks (288 MiB) two seconds later;
    // one worker per step for the phase's first 30 s holds 3 (108.5 MiB), below the limit.
    let config = PolicyConfig {
        initial_threads: 1,
        ..budget_128m(Some(128 * MIB))
    };
    let light_then_heavy = |second: u64| if second < 12 { 8.0 } else { 36.0 };
    let (observations, decisions) = simulate(config, 120, pool_model(light_then_heavy));
    let highest = observations
        .iter()
        .map(|o| o.memory_bytes)
        .max()
        .unwrap_or(0);
    assert!(
        highest < 128 * MIB,
        "{} {:?}",
        highest / MIB,
        changes(&decisions)
    );
    let second_step = decisions
        .iter()
        .filter(|decision| decision.changed())
        .nth(1)
        .unwrap_or_else(|| panic!("{:?}", changes(&decisions)));
    assert_eq!(
        (second_step.previous_threads, second_step.threads),
        (2, 3),
        "{:?}",
        changes(&decisions)
    );
    assert!(
        second_step
            .reason
            .contains("one at a time for the first 30s of the job's phase"),
        "{}",
        second_step.reason
    );
}

#[test]
fn a_heavier_phase_is_replanned_in_one_step() {
    // Light tasks (50 MiB) let 8 workers run; at 60 s they turn heavy (150 MiB): 1300 MiB
    // at 8 is above high (1000) but below critical (2000). The count whose memory fits
    // below 950 MiB, scaled by workers, is 5 (8 × 950 / 1300 = 5.8): one step 8 → 5, not
    // the usual 8 → 6 and another 2 a cooldown later.
    let config = PolicyConfig {
        initial_threads: 2,
        ..memory_levels_mib(500, 1000, 2000)
    };
    let (_, decisions) = simulate(config, 200, phased_model(&[(0, 50), (60, 150)]));
    let changes = changes(&decisions);
    let heavy: Vec<_> = changes.iter().filter(|change| change.0 >= 60).collect();
    assert_eq!(heavy.len(), 1, "{changes:?}");
    assert_eq!((heavy[0].1, heavy[0].2), (8, 5), "{changes:?}");
    let reason = &decisions[heavy[0].0 as usize].reason;
    assert!(
        reason.ends_with("8 → 5 threads (162M per worker: 5 fit below 950M)"),
        "{reason}"
    );
    // 5 workers of 150 MiB stay below the high level: no further change.
    assert!(
        decisions[150..]
            .iter()
            .all(|decision| decision.threads == 5 && decision.memory_level < Level::High),
        "{changes:?}"
    );
}

#[test]
fn a_lighter_phase_grows_without_waiting_out_the_heavy_peak() {
    // Heavy tasks (300 MiB) at first: 8 workers are critical, sequential at once, then 2
    // fit. At 40 s the tasks turn light (50 MiB): once memory at 2 workers has stayed
    // below 75 % of its heavy peak for 10 s, growth plans from the light phase alone,
    // without waiting for the heavy peak to leave the 30 s window.
    let config = memory_levels_mib(950, 1000, 1500);
    let (_, decisions) = simulate(config, 200, phased_model(&[(0, 300), (40, 50)]));
    // Then 2 → 3 at once (one worker: the phase has one count measured), one worker per
    // step for the phase's first 30 s, then the rest in one step. The heavy peak alone
    // would hold 2 until 70 s.
    assert_eq!(
        changes(&decisions),
        vec![
            (0, 8, 1),
            (30, 1, 2),
            (50, 2, 3),
            (57, 3, 4),
            (64, 4, 5),
            (71, 5, 8)
        ]
    );
    let reason = &decisions[50].reason;
    assert!(
        reason.ends_with("a lighter phase for 10s: its peak, not the cooldown's)"),
        "{reason}"
    );
    // The light phase ends at the maximum, below the high level.
    assert_eq!(decisions[200].threads, 8);
    assert!(decisions[100..]
        .iter()
        .all(|decision| decision.memory_level < Level::High));
}

/// The goodput bench's budget: levels 64 / 96 / 112 MiB of a 128 MiB limit, 2 workers at start.
fn budget_128m(limit: Option<u64>) -> PolicyConfig {
    PolicyConfig {
        memory_limit: limit,
        initial_threads: 2,
        ..memory_levels_mib(64, 96, 112)
    }
}

/// Half a MiB of base and `per_worker(at)` MiB per worker.
fn pool_model(per_worker: impl Fn(u64) -> f64) -> impl FnMut(Duration, u32) -> Observation {
    move |at, threads| memory_at(at, mib(0.5 + per_worker(at.as_secs()) * f64::from(threads)))
}

#[test]
fn a_predictable_job_plans_to_the_limit_less_a_learned_margin() {
    // 24 MiB per worker, always: after 2 and 3 workers the line is exact, so growth plans
    // for 128 MiB less one worker (104 MiB), not for the high level less 5 % (91.2 MiB):
    // 4 workers (96.5 MiB) run at the high level, held there by the plan.
    let (_, decisions) = simulate(budget_128m(Some(128 * MIB)), 120, pool_model(|_| 24.0));
    assert_eq!(changes(&decisions), vec![(4, 2, 3), (11, 3, 4)]);
    assert!(
        decisions[11].reason.ends_with(
            "3 → 4 threads (peak 72.5M + 24M per worker < 104M (limit 128M less a learned margin of 24M: 24M per worker over 2 counts, spread 0B))"
        ),
        "{}",
        decisions[11].reason
    );
    assert_eq!(decisions[60].memory_level, Level::High);
    assert!(
        decisions[60]
            .reason
            .contains("holding 4 threads, within the learned plan below 104M"),
        "{}",
        decisions[60].reason
    );
    // Without a hard limit there is nothing to plan to: the high level plans, 3 workers.
    let (_, unlimited) = simulate(budget_128m(None), 120, pool_model(|_| 24.0));
    assert_eq!(changes(&unlimited), vec![(4, 2, 3)]);
    assert!(unlimited[60]
        .reason
        .ends_with("would reach 91.2M (high 96M less 5 %)"));
}

#[test]
fn a_remembered_line_plans_from_the_first_count() {
    // A second run starts at the 3 workers its history gave it. Its memory there (72.5 MiB)
    // lies on the remembered line (0.5 MiB + 24 MiB per worker), so the plan to the limit
    // holds at once: 3 → 4 after the first measurement, not one count later.
    let remembered = |per_worker_mib: u64| PolicyConfig {
        initial_threads: 3,
        remembered: Some(RememberedWorkers {
            per_worker: per_worker_mib * MIB,
            base: MIB / 2,
            spread: None,
        }),
        ..budget_128m(Some(128 * MIB))
    };
    let (_, decisions) = simulate(remembered(24), 60, pool_model(|_| 24.0));
    assert_eq!(changes(&decisions), vec![(4, 3, 4)]);
    assert!(
        decisions[4]
            .reason
            .contains("< 104M (limit 128M less a learned margin of 24M: 24M per worker remembered, spread 0B))"),
        "{}",
        decisions[4].reason
    );
    // A line the last run saw its memory stray from by 9 MiB (more than a quarter of a
    // worker) is not planned to the limit, though this run lies on it: 3 workers stay.
    let straying = PolicyConfig {
        remembered: Some(RememberedWorkers {
            per_worker: 24 * MIB,
            base: MIB / 2,
            spread: Some(9 * MIB),
        }),
        ..remembered(24)
    };
    let (_, decisions) = simulate(straying, 60, pool_model(|_| 24.0));
    assert_eq!(changes(&decisions), vec![]);
    assert!(decisions
        .iter()
        .all(|decision| !decision.reason.contains("remembered")));
    // A line the job no longer follows (10 MiB per worker remembered) is not used: the
    // high level plans, and 3 workers stay.
    let (_, decisions) = simulate(remembered(10), 60, pool_model(|_| 24.0));
    assert_eq!(changes(&decisions), vec![]);
    assert!(decisions
        .iter()
        .all(|decision| !decision.reason.contains("remembered")));
}

#[test]
fn the_spread_handed_to_the_history_tells_steady_memory_from_straying_memory() {
    // (the spread, the marginal memory per worker) after 300 s.
    let spread_after = |per_worker: fn(u64) -> f64| {
        let mut policy = Policy::new(budget_128m(Some(128 * MIB)));
        let mut model = pool_model(per_worker);
        for second in 0..=300 {
            let observation = model(Duration::from_secs(second), policy.threads());
            policy.step(&observation);
        }
        (
            policy.memory_spread(Duration::from_secs(300)),
            policy.marginal_memory_per_worker(),
        )
    };
    // 24 MiB per worker at every count: on the line, and steady.
    let (steady, _) = spread_after(|_| 24.0);
    assert!(steady.is_some_and(|spread| spread < 1024), "{steady:?}");
    // Tasks of 8–20 MiB, a new size each second (a fixed pseudo-random sequence): the
    // peak of a typical 3 s window lies more than a quarter of a worker below the highest.
    let (straying, marginal) = spread_after(|second| {
        let draw = second
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1)
            >> 33;
        8.0 + (draw % 13) as f64
    });
    let (Some(spread), Some(marginal)) = (straying, marginal) else {
        panic!("no line: {straying:?} {marginal:?}");
    };
    assert!(spread * 4 > marginal, "{spread} of {marginal}");
    // One count only (the starting one, never grown from): no line, no spread.
    let mut policy = Policy::new(PolicyConfig {
        max_threads: 2,
        ..budget_128m(Some(128 * MIB))
    });
    for second in 0..=60 {
        policy.step(&memory_at(Duration::from_secs(second), 50 * MIB));
    }
    assert_eq!(policy.memory_spread(Duration::from_secs(60)), None);
}

#[test]
fn an_unpredictable_job_keeps_the_level_plan() {
    // Tasks of 24 MiB for 5 s, then 16 MiB for 5 s: the peak at a count moves by a third of
    // a worker between settle times, so growth plans for the high level, as without a limit.
    let alternating = |second: u64| if second % 10 < 5 { 24.0 } else { 16.0 };
    let (_, decisions) = simulate(budget_128m(Some(128 * MIB)), 300, pool_model(alternating));
    assert!(
        decisions
            .iter()
            .all(|decision| !decision.reason.contains("learned")),
        "{:?}",
        changes(&decisions)
    );
    assert!(decisions.iter().all(|decision| decision.threads <= 3));
}

#[test]
fn memory_above_the_learned_plan_is_reduced() {
    // As above, until the tasks grow to 27 MiB at 100 s: 108.5 MiB at 4 workers is above
    // the 104 MiB plan (and the peaks no longer lie on one line): 4 → 2, never critical.
    let growing = |second: u64| if second < 100 { 24.0 } else { 27.0 };
    let (_, decisions) = simulate(budget_128m(Some(128 * MIB)), 200, pool_model(growing));
    let changes = changes(&decisions);
    assert_eq!(&changes[..2], &[(4, 2, 3), (11, 3, 4)], "{changes:?}");
    let reduction = changes.iter().find(|change| change.0 >= 100);
    assert!(
        reduction.is_some_and(|&(at, from, to)| at <= 104 && from == 4 && to == 2),
        "{changes:?}"
    );
    assert!(decisions
        .iter()
        .all(|decision| decision.memory_level < Level::Critical));
}

#[test]
fn peaks_between_samples_count_through_the_kernel_high_water_mark() {
    // Workers in step with the sampling interval: every sample sees 100 MiB + 150 MiB per
    // worker while the real peak, which only the cgroup's high-water mark (reset every tick)
    // shows, is 100 MiB + 200 MiB per worker. High at 1000 MiB.
    let config = PolicyConfig {
        initial_threads: 2,
        ..memory_levels_mib(950, 1000, 1500)
    };
    let final_count = |with_peaks: bool| {
        let (_, decisions) = simulate(config.clone(), 300, |at, threads| {
            let workers = u64::from(threads);
            Observation {
                memory_peak_since_last: with_peaks.then_some(100 * MIB + 200 * MIB * workers),
                ..memory_at(at, 100 * MIB + 150 * MIB * workers)
            }
        });
        decisions.last().map(|d| d.threads)
    };
    // Samples alone: 100 + 150 × 5 + 150 = 1000 ≥ 950 stops it at 5, whose real peak
    // (1100 MiB) is past high.
    assert_eq!(final_count(false), Some(5));
    // With the peaks between samples, 4 workers (900 MiB) + 200 MiB would reach 950 MiB.
    assert_eq!(final_count(true), Some(4));
}

#[test]
fn peaks_between_samples_enter_the_level_they_reach() {
    // Tasks shorter than a tick: every sample sees 800 MiB, while the memory peaks at
    // 1100 MiB between samples. High is 1000 MiB: the job is at high, and sheds two workers
    // after the grace period, though no sample was ever at high.
    let config = PolicyConfig {
        initial_threads: 4,
        ..memory_levels_mib(900, 1000, 1500)
    };
    let run = |peaks: bool| {
        let (_, decisions) = simulate(config.clone(), 5, |at, _| Observation {
            memory_peak_since_last: peaks.then_some(1100 * MIB),
            ..memory_at(at, 800 * MIB)
        });
        decisions
    };
    assert_eq!(changes(&run(true)), vec![(2, 4, 2)]);
    assert!(run(false).iter().all(|d| d.memory_level == Level::Normal));
}

#[test]
fn growth_stops_short_of_the_count_earlier_runs_took_to_critical() {
    // As in recovery_grows_by_measured_headroom_below_high (8 → 1 at critical, then 1 → 4 in
    // one step), but the job's history says 3 workers reached the critical level (or an
    // OOM kill): the step ends at 2, which stays for the rest of the run. Where it says 2,
    // one worker stays: the light spell now says nothing about the heavy part to come.
    let capped = |count| PolicyConfig {
        remembered_critical_count: Some(count),
        ..memory_levels_mib(950, 1000, 1500)
    };
    let (_, decisions) = simulate(capped(3), 900, per_worker_model);
    assert_eq!(changes(&decisions), vec![(0, 8, 1), (30, 1, 2)]);
    assert!(
        decisions[30].reason.ends_with(
            "1 → 2 threads (peak 300M + 200M per worker < 950M (high 1000M less 5 %); no more: \
             earlier runs reached the critical level or an OOM kill at 3 threads)"
        ),
        "{}",
        decisions[30].reason
    );
    assert!(decisions[60].reason.ends_with(
        "holding 2 threads: earlier runs reached the critical level or an OOM kill at 3 threads"
    ));
    let (_, decisions) = simulate(capped(2), 900, per_worker_model);
    assert_eq!(changes(&decisions), vec![(0, 8, 1)]);
    assert!(
        decisions[30].reason.ends_with(
            "holding 1 threads: earlier runs reached the critical level or an OOM kill at 2 threads"
        ),
        "{}",
        decisions[30].reason
    );
}

#[test]
fn growth_into_moderate_stays_there_without_flapping() {
    // With high at 1000 MiB and moderate at 800 MiB, 4 workers (900 MiB) enter moderate,
    // which only stops growth: the count stays at 4 for the next half hour.
    let config = memory_levels_mib(800, 1000, 1500);
    let (_, decisions) = simulate(config, 1800, per_worker_model);
    assert_eq!(changes(&decisions), vec![(0, 8, 1), (30, 1, 4)]);
    assert!(decisions[50..]
        .iter()
        .all(|d| d.memory_level == Level::Moderate && d.threads == 4));
}

#[test]
fn throughput_prefers_the_fastest_count() {
    // Units per second by worker count: 3 is the fastest.
    let rate = |threads: u32| match threads {
        1 => 100,
        2 => 190,
        3 => 260,
        4 => 250,
        _ => 200,
    };
    let config = PolicyConfig {
        initial_threads: 1,
        ..PolicyConfig::default()
    };
    let mut done = 0;
    let (_, decisions) = simulate(config, 600, |at, threads| {
        let observation = Observation {
            progress_units: Some(done),
            ..memory_at(at, 500 * MIB)
        };
        done += rate(threads);
        observation
    });
    // One count at a time, each measured for 10 s (after settling 3 s, except the starting
    // count); 4 is slower, so a
    // cooldown after growing to it the count steps back to 3 and stays.
    assert_eq!(
        changes(&decisions),
        vec![(10, 1, 2), (23, 2, 3), (36, 3, 4), (66, 4, 3)]
    );
    assert!(decisions[66].reason.ends_with(
        "4 threads measured slower (250.0 units/s) than 3 (260.0 units/s): 4 → 3 threads"
    ));
    assert!(decisions[400].reason.ends_with(
        "holding 3 threads: 4 threads measured slower (250.0 units/s) than 3 (260.0 units/s)"
    ));
}

#[test]
fn bounds_are_respected() {
    let config = PolicyConfig {
        min_threads: 2,
        max_threads: 5,
        initial_threads: 9,
        ..PolicyConfig::default()
    };
    let mut policy = Policy::new(config.clone());
    assert_eq!(policy.threads(), 5);
    // Critical falls to the minimum, not to 1 ...
    let critical = policy.step(&memory_at(Duration::ZERO, 4000 * MIB));
    assert_eq!((critical.previous_threads, critical.threads), (5, 2));
    // ... and growth stops at the maximum.
    let config = PolicyConfig {
        initial_threads: 3,
        ..config
    };
    let (_, decisions) = simulate(config, 300, |at, _| memory_at(at, 100 * MIB));
    assert_eq!(changes(&decisions), vec![(4, 3, 4), (11, 4, 5)]);
    assert!(decisions[300]
        .reason
        .ends_with("holding 5 threads (maximum)"));
}

#[test]
fn memory_psi_shrinks_like_memory() {
    // Memory PSI "some" is off by default; enabled with the suggested 10/25/50 %.
    let config = PolicyConfig {
        psi_memory_some: Some(defaults::PSI_MEMORY_SOME_SUGGESTED),
        ..PolicyConfig::default()
    };
    let (_, decisions) = simulate(config, 40, |at, _| Observation {
        memory_psi_some_avg10: Some(30.0),
        ..memory_at(at, 500 * MIB)
    });
    assert_eq!(changes(&decisions), vec![(2, 8, 6), (32, 6, 4)]);
    assert_eq!(decisions[2].psi_level, Level::High);
    assert_eq!(
        decisions[2].reason,
        "memory PSI some 30.0% ≥ high 25.0% for 2s: 8 → 6 threads"
    );
}

#[test]
fn reclaim_once_per_cooldown_on_upward_crossings() {
    // Crossing 2500 MiB at 1 s, 3 s and 41 s; the second is within the cooldown.
    let memory = |second: u64| match second {
        1 | 3 | 41 => 2600 * MIB,
        _ => 2400 * MIB,
    };
    let (_, decisions) = simulate(PolicyConfig::default(), 60, |at, _| {
        memory_at(at, memory(at.as_secs()))
    });
    let reclaims: Vec<(u64, u64)> = decisions
        .iter()
        .filter_map(|d| d.reclaim.map(|bytes| (d.at.as_secs(), bytes)))
        .collect();
    assert_eq!(reclaims, vec![(1, 350 * MIB), (41, 350 * MIB)]);
    assert!(decisions[1]
        .reason
        .ends_with("; reclaim 350M: memory 2.5G crossed cleanup 2.4G going up"));
}

#[test]
fn replay_is_deterministic_and_matches_the_live_run() {
    let mut noise = Noise(42);
    let (observations, live) = simulate(PolicyConfig::default(), 400, |at, threads| {
        let memory = 1500.0 + 300.0 * f64::from(threads) + 100.0 * noise.next();
        Observation {
            cpu_percent: Some(60.0 + 30.0 * noise.next()),
            ..memory_at(at, mib(memory))
        }
    });
    let first = replay(PolicyConfig::default(), &observations);
    let second = replay(PolicyConfig::default(), &observations);
    assert_eq!(first, live);
    assert_eq!(first, second);
    assert!(
        !changes(&live).is_empty(),
        "the trace should exercise decisions"
    );
}

#[test]
fn time_running_backwards_is_treated_as_simultaneous() {
    let mut policy = Policy::new(PolicyConfig::default());
    for second in 0..3 {
        policy.step(&memory_at(Duration::from_secs(10 + second), 3200 * MIB));
    }
    assert_eq!(policy.threads(), 6);
    let decision = policy.step(&memory_at(Duration::from_secs(1), 3200 * MIB));
    assert_eq!(decision.at, Duration::from_secs(1));
    assert!(
        decision.reason.contains("cooldown 30s left"),
        "{}",
        decision.reason
    );
}

#[test]
fn stored_trace_replays_to_sequential_fallback() {
    let text = include_str!("../../tests/fixtures/traces/growth-to-critical.jsonl");
    let observations: Vec<Observation> = text
        .lines()
        .enumerate()
        .map(|(index, line)| {
            serde_json::from_str(line).unwrap_or_else(|error| panic!("line {}: {error}", index + 1))
        })
        .collect();
    assert_eq!(observations.len(), 301);
    let decisions = replay(PolicyConfig::default(), &observations);
    assert_eq!(
        changes(&decisions),
        vec![(202, 8, 6), (232, 6, 4), (250, 4, 1)]
    );
    let json = serde_json::to_string(&decisions[250]).unwrap();
    let back: Decision = serde_json::from_str(&json).unwrap();
    assert_eq!(back, decisions[250]);
}

/// Random observation fields: (dt ms, memory MiB, cpu %, memory PSI some, throttled,
/// run queue per core, progress delta).
type RandomTick = (
    u64,
    u64,
    Option<f64>,
    Option<f64>,
    bool,
    Option<f64>,
    Option<u64>,
);

fn observation_parts() -> impl Strategy<Value = RandomTick> {
    (
        0u64..5000,
        0u64..5000,
        proptest::option::of(0.0f64..150.0),
        proptest::option::of(0.0f64..100.0),
        any::<bool>(),
        proptest::option::of(0.0f64..4.0),
        proptest::option::of(0u64..1000),
    )
}

fn config_strategy() -> impl Strategy<Value = PolicyConfig> {
    (
        0u32..4,
        0u32..12,
        0u32..16,
        0u64..60,
        0u64..5,
        0u64..20,
        0.0f64..0.5,
    )
        .prop_map(
            |(min, max, initial, cooldown, grace, transition, hysteresis)| PolicyConfig {
                min_threads: min,
                max_threads: max,
                initial_threads: initial,
                cooldown: Duration::from_secs(cooldown),
                grace: Duration::from_secs(grace),
                transition: Duration::from_secs(transition),
                hysteresis,
                leak_window: Duration::from_secs(60),
                // The traces carry memory PSI "some", which is off by default.
                psi_memory_some: Some(defaults::PSI_MEMORY_SOME_SUGGESTED),
                psi_cpu_some: Some(defaults::PSI_CPU_SOME_SUGGESTED),
                ..PolicyConfig::default()
            },
        )
}

proptest! {
    #[test]
    fn any_trace_keeps_the_invariants(
        config in config_strategy(),
        parts in proptest::collection::vec(observation_parts(), 1..300),
    ) {
        let mut at = Duration::ZERO;
        let mut progress = 0u64;
        let observations: Vec<Observation> = parts
            .into_iter()
            .map(|(dt, memory, cpu, psi, throttled, runnable, units)| {
                at += Duration::from_millis(dt);
                progress += units.unwrap_or(0);
                Observation {
                    at,
                    memory_bytes: memory * MIB,
                    cpu_percent: cpu,
                    memory_psi_some_avg10: psi,
                    cpu_throttled: throttled,
                    runnable_per_core: runnable,
                    progress_units: units.map(|_| progress),
                    ..Observation::default()
                }
            })
            .collect();
        let effective = config.clone().normalized();
        let decisions = replay(config, &observations);
        let mut threads = effective.initial_threads;
        let mut last_change: Option<Duration> = None;
        let mut last_reduction: Option<Duration> = None;
        for decision in &decisions {
            prop_assert!(!decision.reason.is_empty());
            prop_assert!((effective.min_threads..=effective.max_threads).contains(&decision.threads));
            prop_assert_eq!(decision.previous_threads, threads);
            if decision.changed() {
                let critical = decision.memory_level.max(decision.psi_level) == Level::Critical;
                if !critical && decision.threads < threads {
                    if let Some(last) = last_change {
                        prop_assert!(decision.at - last >= effective.cooldown,
                            "change at {:?} only {:?} after the previous", decision.at, decision.at - last);
                    }
                }
                if decision.threads > threads {
                    prop_assert_eq!(decision.threads, threads + 1, "growth is one at a time");
                    if let Some(last) = last_reduction {
                        prop_assert!(decision.at - last >= effective.cooldown,
                            "growth at {:?} only {:?} after a reduction", decision.at, decision.at - last);
                    }
                } else {
                    last_reduction = Some(decision.at);
                }
                last_change = Some(decision.at);
            }
            threads = decision.threads;
        }
    }

    #[test]
    fn growth_paths_keep_the_invariants(
        config in config_strategy(),
        parts in proptest::collection::vec(
            (0u64..3000, 0u64..1500, 0.0f64..80.0, 0u64..400), 1..400),
    ) {
        // Little memory, idle CPUs, varying progress: the growth and throughput rules run.
        let mut progress = 0u64;
        let observations: Vec<Observation> = parts
            .into_iter()
            .enumerate()
            .map(|(index, (dt, memory, cpu, units))| {
                progress += units;
                Observation {
                    at: Duration::from_millis(index as u64 * 1000 + dt % 1000),
                    memory_bytes: memory * MIB,
                    cpu_percent: Some(cpu),
                    progress_units: Some(progress),
                    ..Observation::default()
                }
            })
            .collect();
        let effective = config.clone().normalized();
        for decision in replay(config, &observations) {
            prop_assert!(!decision.reason.is_empty());
            prop_assert!((effective.min_threads..=effective.max_threads).contains(&decision.threads));
        }
    }

    #[test]
    fn hostile_input_never_panics(
        config in config_strategy(),
        parts in proptest::collection::vec(
            (any::<u64>(), any::<u64>(), any::<f64>(), any::<Option<u64>>()), 1..100),
    ) {
        let observations: Vec<Observation> = parts
            .into_iter()
            .map(|(at, memory, value, units)| Observation {
                at: Duration::from_millis(at),
                memory_bytes: memory,
                cpu_percent: Some(value),
                memory_psi_some_avg10: Some(value),
                memory_psi_full_avg10: Some(-value),
                cpu_psi_some_avg10: Some(value),
                runnable_per_core: Some(value),
                progress_units: units,
                ..Observation::default()
            })
            .collect();
        for decision in replay(config, &observations) {
            prop_assert!(!decision.reason.is_empty());
        }
    }
}

#[test]
fn levels_follow_the_limit_read_each_tick_and_replay_the_same() {
    let share = |percent| LevelRule::OfLimit {
        percent,
        without_limit: 3000 * MIB,
    };
    let config = PolicyConfig {
        memory_limit: Some(200 * MIB),
        memory_moderate: 100 * MIB,
        memory_high: 150 * MIB,
        memory_critical: 175 * MIB,
        memory_cleanup: u64::MAX,
        memory_rules: Some(MemoryLevelRules {
            moderate: share(50.0),
            high: share(75.0),
            critical: share(87.5),
            cleanup: Some(LevelRule::Bytes(u64::MAX)),
        }),
        initial_threads: 4,
        ..PolicyConfig::default()
    };
    let observation = |second: u64, memory_mib: u64, limit_mib: Option<u64>| Observation {
        memory_limit: limit_mib.map(|mib| if mib == NO_LIMIT { NO_LIMIT } else { mib * MIB }),
        ..memory_at(Duration::from_secs(second), memory_mib * MIB)
    };
    let trace = [
        observation(0, 55, Some(200)),
        observation(1, 55, None), // not read this tick: unchanged
        observation(2, 55, Some(60)),
        observation(3, 20, Some(NO_LIMIT)),
    ];
    let decisions = replay(config.clone(), &trace);
    assert_eq!(decisions[1].level, Level::Normal, "55M of a 200M limit");
    assert_eq!(decisions[2].level, Level::Critical, "55M ≥ 87.5 % of 60M");
    assert_eq!(decisions[2].threads, 1, "{}", decisions[2].reason);
    assert!(
        decisions[2].reason.contains("critical 52.5M"),
        "{}",
        decisions[2].reason
    );
    let mut policy = Policy::new(config.clone());
    for observation in &trace {
        policy.step(observation);
    }
    assert_eq!(
        policy.config().memory_limit,
        None,
        "no limit applies any more"
    );
    assert_eq!(
        policy.config().memory_critical,
        3000 * MIB,
        "the level without a limit"
    );
    assert_eq!(
        replay(config, &trace),
        decisions,
        "replays decision for decision"
    );
}

#[test]
fn a_ceiling_from_outside_caps_the_count_with_its_reason_and_lifting_it_lets_it_grow() {
    let config = PolicyConfig {
        initial_threads: 4,
        min_threads: 2,
        max_threads: 8,
        ..PolicyConfig::default()
    };
    let mut policy = Policy::new(config);
    let calm = |second: u64| memory_at(Duration::from_secs(second), 10 << 20);
    assert_eq!(policy.step(&calm(0)).threads, 4);
    let capped = |second: u64, threads: u32| Observation {
        ceiling: Some(Ceiling {
            threads,
            reason: "slice etl.slice at high".to_owned(),
        }),
        ..calm(second)
    };
    let decision = policy.step(&capped(1, 3));
    assert_eq!((decision.previous_threads, decision.threads), (4, 3));
    assert!(
        decision
            .reason
            .starts_with("slice etl.slice at high: at most 3 threads ("),
        "{}",
        decision.reason
    );
    // Below the job's minimum, the minimum holds.
    assert_eq!(policy.step(&capped(2, 1)).threads, 2);
    for second in 3..60 {
        assert_eq!(
            policy.step(&capped(second, 1)).threads,
            2,
            "held at {second}s"
        );
    }
    // Lifted: the job's own policy grows it again.
    let grown = (60..200)
        .map(|second| policy.step(&calm(second)).threads)
        .max();
    assert!(grown.is_some_and(|most| most > 2), "{grown:?}");
}
