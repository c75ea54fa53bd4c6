//! Policy constants, each with the reason for its value (one place, like
//! systemd-oomd's `oomd.h`).
//!
//! "MiB" below is what the Python original called "MB": psutil's bytes / 1024².

use std::time::Duration;

/// One mebibyte; the original's "MB" and the unit of [`LeakVerdict::mb_per_min`](super::LeakVerdict).
pub const MIB: u64 = 1024 * 1024;

/// Memory "moderate" level: the original's 2000 MB. Reducing by one worker here costs
/// little and often keeps the job out of the high level altogether.
pub const MEMORY_MODERATE: u64 = 2000 * MIB;
/// Memory "high" level: the original's 3000 MB.
pub const MEMORY_HIGH: u64 = 3000 * MIB;
/// Memory "critical" level: the original's 3500 MB, where it fell back to sequential
/// execution at once. Entered without grace: this is the emergency before the OOM kill.
pub const MEMORY_CRITICAL: u64 = 3500 * MIB;
/// Memory level whose upward crossing asks for a reclaim (the original's "GC" trigger,
/// 2500 MB): between moderate and high, so reclaim runs before the thread count must fall far.
pub const MEMORY_CLEANUP: u64 = 2500 * MIB;
/// A reclaim asks to bring memory down to this fraction of the cleanup level: 10 % below it,
/// so the next small growth does not cross the level again at once.
pub const RECLAIM_TARGET_FRACTION: f64 = 0.9;

/// CPU "moderate" level, percent of the CPUs the job may use (the original's 70 %).
pub const CPU_MODERATE: f64 = 70.0;
/// CPU "high" level (the original's 85 %). At or above it the job is not given more workers.
pub const CPU_HIGH: f64 = 85.0;
/// CPU "critical" level (the original's 95 %).
pub const CPU_CRITICAL: f64 = 95.0;
/// Whether CPU *utilisation* levels reduce the thread count. Off: a CPU-bound job that uses
/// 95–100 % of its CPUs is doing its work, not in trouble, and shrinking it to one worker
/// would halve it on two cores and then flap (fewer workers → idle CPUs → grow → saturated
/// → shrink). Utilisation still blocks growth (see [`CPU_HIGH`]); real CPU contention
/// reduces through CPU PSI, which counts time runnable tasks waited.
pub const CPU_LEVEL_REDUCES_THREADS: bool = false;

/// Memory PSI "some" avg10 thresholds (% of time at least one task stalled on memory), off
/// by default: "some" pressure rises with ordinary contention, which the CPU levels already
/// cover, so only "full" pressure shrinks the job unless configured.
/// [`PSI_MEMORY_SOME_SUGGESTED`] is a starting point for those who want it.
pub const PSI_MEMORY_SOME: Option<[f64; 3]> = None;
/// Suggested memory PSI "some" avg10 thresholds for moderate/high/critical when enabled:
/// 10 % is a visible slowdown; systemd-oomd kills at 60 % (full), so critical must act well
/// before that.
pub const PSI_MEMORY_SOME_SUGGESTED: [f64; 3] = [10.0, 25.0, 50.0];
/// Memory PSI "full" avg10 thresholds for moderate/high/critical (% of the last 10 s in which
/// every task of the job stalled on memory at once). systemd-oomd's 60 % is a *kill*
/// threshold; resctl's answer (fewer workers) is gentle and reversible, so it acts much
/// earlier: 10 % (a second in ten lost to reclaim: thrashing begins), 25 %, and 50 % as
/// critical, still below oomd's 60 % so the job is shrunk before oomd would kill it.
pub const PSI_MEMORY_FULL: [f64; 3] = [10.0, 25.0, 50.0];
/// CPU PSI "some" avg10 thresholds, off by default: a job with more runnable workers than
/// cores always shows CPU "some" pressure, which says "do not grow", not "go sequential".
/// [`PSI_CPU_SOME_SUGGESTED`] is a starting point for those who want it.
pub const PSI_CPU_SOME: Option<[f64; 3]> = None;
/// Suggested CPU PSI "some" avg10 thresholds when enabled: a quarter of the time waiting for
/// a CPU is contention; 80 % means nearly every moment some worker waits.
pub const PSI_CPU_SOME_SUGGESTED: [f64; 3] = [25.0, 50.0, 80.0];

/// A higher level must hold this long before it is entered: two consecutive 1 s samples,
/// so a single-sample spike never changes the thread count. Memory ≥ critical ignores it.
pub const GRACE: Duration = Duration::from_secs(2);
/// A level is left only once the value is below threshold × (1 − 5 %): a signal that
/// wobbles by a few percent around a threshold does not flap.
pub const HYSTERESIS: f64 = 0.05;
/// ... and stays below that for this long (the kubelet's eviction-pressure-transition-period,
/// shortened from its 5 min because batch jobs live minutes, not days).
pub const TRANSITION: Duration = Duration::from_secs(10);

/// Fewest workers: 1 is the sequential fallback.
pub const MIN_THREADS: u32 = 1;
/// Most workers: the original's default of 8.
pub const MAX_THREADS: u32 = 8;
/// Workers at start of a policy built from [`PolicyConfig::default`](super::PolicyConfig):
/// the most it may use. (`resctl run` starts at min(CPUs, maximum) unless configured: a job
/// whose memory is unknown starts small and grows by measured headroom.)
pub const INITIAL_THREADS: u32 = MAX_THREADS;
/// Time before a reduction, and before growth after a reduction (the original's 30 s):
/// long enough for the job's memory to follow a change, so the next decision sees its
/// effect, and a count that was too many is not tried again at once. Critical bypasses it.
/// Growth after growth waits only until the count has [settled](SETTLE): each step is
/// sized by measured headroom, so a job does not spend its first minutes at two workers.
pub const COOLDOWN: Duration = Duration::from_secs(30);
/// Shortest cooldown a configuration may ask for (the original allowed 5–300 s).
pub const COOLDOWN_MIN: Duration = Duration::from_secs(5);
/// Longest cooldown a configuration may ask for.
pub const COOLDOWN_MAX: Duration = Duration::from_secs(300);
/// After a thread-count change, samples this recent are not attributed to the new count
/// (workers finish their current task first); capped at half the cooldown.
pub const SETTLE: Duration = Duration::from_secs(3);
/// Growth waits while the latest settle time's peak at a count exceeds the earlier peak at
/// that count by more than this: the workers' memory is still rising (tasks that grow over
/// minutes), so the count's real cost is not known yet. 5 % is the hysteresis margin.
pub const RISING_TOLERANCE: f64 = 0.05;
/// A lighter phase: the peak at a count over the last two settle times below this share of
/// its peak earlier in the cooldown (a pool past its heavy tasks). Growth then plans from
/// the phase's own peak and slope at once, instead of waiting out the heavy peak's cooldown.
pub const LIGHTER_PHASE: f64 = 0.75;
/// How long memory must have stayed below [`LIGHTER_PHASE`] of the earlier peak before a
/// lighter phase is believed (capped at half the cooldown): long enough that a pool of
/// mixed task sizes whose large tasks are merely rarer is not mistaken for one.
pub const LIGHTER_PHASE_WINDOW: Duration = Duration::from_secs(10);
/// A job's memory per worker is predictable when its counts' peaks lie within this share of
/// one worker's memory of the line through them, and the peak at the current count moved
/// no more than that between the last two settle times: growth then plans to the limit
/// less a learned margin instead of to the high level.
pub const PREDICTABLE_SPREAD: f64 = 0.25;
/// The learned margin is at least this many times the spread (and at least one worker's
/// memory, and the hysteresis share of the limit).
pub const MARGIN_SPREADS: u64 = 3;
/// Samples older than this do not count for the marginal memory per worker: a job's tasks
/// change (light models first, heavy ones later) and what a worker costs now is what counts.
pub const WORKER_MEMORY_WINDOW: Duration = Duration::from_secs(5 * 60);
/// Samples at one count closer together than this share one entry (their highest memory):
/// ticks are 1 s apart, but wakeups near a level come every 10 ms.
pub const WORKER_MEMORY_RESOLUTION: Duration = Duration::from_millis(250);
/// Safety cap on the entries kept for the marginal memory per worker (5 min at the
/// resolution is 1,200).
pub const WORKER_MEMORY_MAX_SAMPLES: usize = 2_048;

/// Growth over the leak window that makes a leak suspect: the original's 800 MB.
pub const LEAK_GROWTH: u64 = 800 * MIB;
/// Leak window: the original's 15 minutes, this time really kept (by time, not by count).
pub const LEAK_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Least goodness of fit (r²) for a leak. A single step change fits a straight line with
/// r² = 3p(1 − p) ≤ 0.75 (p = where in the window it happens), so 0.8 rejects steps; a
/// steady leak with moderate noise fits above 0.9.
pub const LEAK_MIN_FIT: f64 = 0.8;
/// Fewest samples before a leak verdict is reported at all.
pub const LEAK_MIN_SAMPLES: usize = 10;
/// Safety cap on samples kept for the leak fit (15 min at 1 kHz): bounds memory and keeps
/// the exact integer sums far from overflow whatever the sampling rate.
pub const LEAK_MAX_SAMPLES: usize = 1 << 20;

/// Host run queue per core above which the CPUs count as contended: more runnable tasks
/// than cores means someone is already waiting.
pub const RUNNABLE_PER_CORE_CONTENDED: f64 = 1.0;
/// Settled time a thread count needs before its throughput counts as measured: ten 1 s
/// samples average out per-task jitter.
pub const THROUGHPUT_MIN_SPAN: Duration = Duration::from_secs(10);
