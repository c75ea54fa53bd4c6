//! `worker_pool`: the thread-aware demo job that follows resctl's worker-count file.
//!
//! It runs `--tasks N` tasks; each allocates `--task-memory SIZE` (writing every page, so it
//! is really resident), holds it for `--task-time DURATION` while doing light CPU work, then
//! frees it. `--task-memory 8M,36M` makes phases, like a pipeline whose light models come
//! before its heavy ones: the tasks are split in order into as many equal runs as sizes are
//! given (24 tasks: 12 of 8M, then 12 of 36M). `--task-memory 20M..60M` makes the sizes
//! vary instead: task `i` gets a pseudo-random size between the two bounds, skewed to the low
//! end like a long-tailed (lognormal-ish) workload — `low + (high - low) * u * u` for a `u`
//! uniform in [0, 1), so the median is a quarter of the way up and the mean a third — rounded
//! up to whole pages. `u` comes from a fixed seed and the task's index alone (SplitMix64), so
//! every run of the same command gets the same sequence whatever the worker count. At most
//! "the current worker count" tasks run at once:
//!
//! - the count starts as `--workers W`, else `$RESCTL_THREADS`, else 4;
//! - it then follows `$RESCTL_THREADS_FILE` (a decimal number and a newline, replaced
//!   atomically by resctl): the file is re-read before each task starts and at least every
//!   100 ms. A lower count never stops running tasks; no new task starts while as many as the
//!   count are running;
//! - with `--on-signal`, SIGUSR1 makes it re-read the file at once (without the flag no
//!   handler is installed, so SIGUSR1 keeps its default action and kills the process);
//! - with `--ignore-file` the file is never read: the unmanaged baseline.
//!
//! Each change of the count goes to stderr (`worker_pool: workers 4 -> 2 (from
//! RESCTL_THREADS_FILE)`); at the end one line goes to stdout:
//! `worker_pool: done tasks=8 max_concurrency=4 elapsed=1.23s`.
//!
//! ```text
//! worker_pool --tasks N --task-memory SIZE[,SIZE...]|LOW..HIGH --task-time DURATION
//!             [--workers W] [--on-signal] [--ignore-file]
//!
//! cargo run --example worker_pool -- --tasks 8 --task-memory 50M --task-time 200ms
//! cargo run --example worker_pool -- --tasks 40 --task-memory 20M..60M --task-time 1s
//! echo 2 > /tmp/n.tmp && mv /tmp/n.tmp /tmp/n   # while it runs with RESCTL_THREADS_FILE=/tmp/n
//! ```
//!
//! Sizes and durations are read by resctl's own parsers (`resctl::units`): `50M`, `1.5G`
//! (binary units); `200ms`, `1.5s`, `2m30s` (a bare number is seconds). Exit status: 0 when
//! every task ran, 1 when a task could not allocate its memory or a thread could not start,
//! 2 on a usage error.
//!
//! Design: one coordinator (the main thread) holds a counting semaphore made of a Mutex and
//! a Condvar whose permit count is the current worker count; each task runs on its own short
//! thread, so no pool of idle threads sized for the largest possible count is kept around.
//! Only std is used, plus signal-hook for the `--on-signal` handler.

#[path = "support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};
use support::{allocate_touched, duration_argument, format_bytes, size_argument, PAGE_SIZE};

/// Worker count when neither `--workers` nor `$RESCTL_THREADS` gives one.
const DEFAULT_WORKERS: usize = 4;
/// Longest time between two reads of `$RESCTL_THREADS_FILE`.
const FILE_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Smallest address-space reservation per task. glibc serves a request this large with its
/// own mmap and unmaps it on free, so a finished task's memory really leaves the process;
/// smaller blocks come from malloc arenas that keep tens of MiB after a free, and the job's
/// memory would not drop when fewer tasks run. Only the task's own bytes are touched, so the
/// unused rest of the reservation is never resident.
const MIN_RESERVATION_BYTES: usize = 33 * 1024 * 1024;
/// While holding its memory a task computes for this long...
const TASK_WORK_SLICE: Duration = Duration::from_millis(2);
/// ...then rests for this long: about a fifth of a core per task ("light CPU work").
const TASK_REST_SLICE: Duration = Duration::from_millis(8);
/// Environment variable holding the initial worker count (resctl's contract).
const THREADS_VARIABLE: &str = "RESCTL_THREADS";
/// Environment variable naming the worker-count file (resctl's contract).
const THREADS_FILE_VARIABLE: &str = "RESCTL_THREADS_FILE";

/// Seed of the `LOW..HIGH` task sizes: fixed, so every run gets the same sequence.
const TASK_MEMORY_SEED: u64 = 0x7265_7363_746c_0011;

const USAGE: &str =
    "usage: worker_pool --tasks N --task-memory SIZE[,SIZE...]|LOW..HIGH --task-time DURATION \
[--workers W] [--on-signal] [--ignore-file]";

/// How much memory each task takes.
#[derive(Debug, Clone, PartialEq)]
enum TaskMemory {
    /// One size per phase (never empty): the tasks are split in order into equal runs.
    Phases(Vec<usize>),
    /// Seeded pseudo-random sizes in `low..=high`, skewed to the low end.
    Range { low: usize, high: usize },
}

impl TaskMemory {
    /// Parses `SIZE[,SIZE...]` or `LOW..HIGH`.
    fn parse(text: &str) -> Result<TaskMemory, String> {
        if let Some((low, high)) = text.split_once("..") {
            let (low, high) = (size_argument(low)?, size_argument(high)?);
            if low > high {
                return Err(format!(
                    "--task-memory {text:?}: the low end is larger than the high end"
                ));
            }
            return Ok(TaskMemory::Range { low, high });
        }
        // `split` yields at least one piece, so the list is never empty.
        text.split(',')
            .map(size_argument)
            .collect::<Result<Vec<_>, _>>()
            .map(TaskMemory::Phases)
    }

    /// How the sizes read in the start line: `8M then 36M`, `20M..60M (skewed low)`.
    fn describe(&self) -> String {
        match self {
            TaskMemory::Phases(sizes) => sizes
                .iter()
                .map(|&bytes| format_bytes(bytes))
                .collect::<Vec<_>>()
                .join(" then "),
            TaskMemory::Range { low, high } => format!(
                "{}..{} (seeded, skewed low)",
                format_bytes(*low),
                format_bytes(*high)
            ),
        }
    }
}

/// SplitMix64's output function: a well-mixed 64-bit value for each input.
fn split_mix64(mut state: u64) -> u64 {
    state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    state = (state ^ (state >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    state = (state ^ (state >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    state ^ (state >> 31)
}

/// Size of task `index` in `low..=high`: `low + (high - low) * u * u` for the task's own
/// uniform `u`, rounded up to a whole page (and clamped to `high`).
fn skewed_size(low: usize, high: usize, index: usize) -> usize {
    let bits = split_mix64(TASK_MEMORY_SEED ^ (index as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93));
    // The top 53 bits as a fraction in [0, 1).
    let unit = (bits >> 11) as f64 / (1u64 << 53) as f64;
    let span = (high - low) as f64;
    let bytes = low + (span * unit * unit) as usize;
    bytes
        .div_ceil(PAGE_SIZE)
        .saturating_mul(PAGE_SIZE)
        .min(high)
}

/// What the command line asks for.
struct Options {
    tasks: usize,
    /// Memory per task: phases or a seeded range.
    task_memory: TaskMemory,
    task_time: Duration,
    workers: Option<usize>,
    on_signal: bool,
    ignore_file: bool,
}

impl Options {
    /// Memory of task `index` (0-based): the phases split the tasks in order; a range gives
    /// each task its seeded size.
    fn memory_of(&self, index: usize) -> usize {
        match &self.task_memory {
            TaskMemory::Phases(sizes) => {
                let phases = sizes.len();
                let phase = index * phases / self.tasks.max(1);
                sizes[phase.min(phases - 1)]
            }
            TaskMemory::Range { low, high } => skewed_size(*low, *high, index),
        }
    }
}

/// State shared by the coordinator, the task threads and the signal thread.
#[derive(Default)]
struct PoolState {
    /// Tasks started and not yet finished.
    running: usize,
    /// Tasks finished, successfully or not.
    finished: usize,
    /// Tasks that failed: memory refused, or a panic.
    failed: usize,
    /// Set by SIGUSR1 (with `--on-signal`): re-read the file now.
    reread_requested: bool,
}

/// The semaphore: state behind a mutex, and a condition variable signalled whenever a task
/// finishes or a re-read is requested.
#[derive(Default)]
struct Pool {
    state: Mutex<PoolState>,
    changed: Condvar,
}

impl Pool {
    /// Locks the shared state.
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // A task thread never panics while holding the lock, but if one did the counters
        // would still be consistent: keep going rather than abort.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Releases a task's permit when the task thread ends, even if the task panicked, so the
/// coordinator can never wait forever on a permit that is gone.
struct Permit {
    pool: Arc<Pool>,
    /// Counts the task as failed unless it clears this on success (a panic leaves it set).
    failed: bool,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut state = self.pool.lock();
        state.running -= 1;
        state.finished += 1;
        if self.failed {
            state.failed += 1;
        }
        self.pool.changed.notify_all();
    }
}

/// Reads `$RESCTL_THREADS_FILE`, reporting each distinct problem once.
struct CountFile {
    path: PathBuf,
    last_problem: Option<String>,
}

impl CountFile {
    /// Returns the count the file holds, or `None` (after saying why, once) if it cannot be
    /// read or parsed; the caller then keeps its current count.
    fn read(&mut self, current: usize) -> Option<usize> {
        let outcome = std::fs::read_to_string(&self.path)
            .map_err(|error| error.to_string())
            .and_then(|contents| parse_count(&contents));
        match outcome {
            Ok(0) => {
                // The pool must keep making progress, and 1 is the most careful setting.
                let problem = "it says 0 workers; running 1".to_string();
                if self.last_problem.as_ref() != Some(&problem) {
                    eprintln!(
                        "worker_pool: {THREADS_FILE_VARIABLE} {}: {problem}",
                        self.path.display()
                    );
                    self.last_problem = Some(problem);
                }
                Some(1)
            }
            Ok(count) => {
                if self.last_problem.take().is_some() {
                    eprintln!("worker_pool: {} readable again", self.path.display());
                }
                Some(count)
            }
            Err(problem) => {
                if self.last_problem.as_ref() != Some(&problem) {
                    eprintln!(
                        "worker_pool: ignoring {THREADS_FILE_VARIABLE} {}: {problem}; \
                         keeping {current} workers",
                        self.path.display()
                    );
                    self.last_problem = Some(problem);
                }
                None
            }
        }
    }
}

/// Parses the file's contents: a decimal count and a newline.
fn parse_count(contents: &str) -> Result<usize, String> {
    match contents.trim().parse::<usize>() {
        Ok(count) => Ok(count),
        Err(_) => {
            let excerpt: String = contents.chars().take(40).collect();
            Err(format!(
                "expected a decimal worker count, found {excerpt:?}"
            ))
        }
    }
}

fn main() -> ExitCode {
    let options = match support::options_or_exit(
        "worker_pool",
        USAGE,
        parse_arguments(std::env::args().skip(1)),
    ) {
        Ok(options) => options,
        Err(code) => return code,
    };
    match run(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("worker_pool: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs every task under the semaphore; `Ok(true)` if all of them succeeded.
fn run(options: &Options) -> Result<bool, String> {
    let started = Instant::now();
    let (mut workers, source) = initial_workers(options);
    let mut count_file = if options.ignore_file {
        None
    } else {
        std::env::var_os(THREADS_FILE_VARIABLE)
            .filter(|path| !path.is_empty())
            .map(|path| CountFile {
                path: PathBuf::from(path),
                last_problem: None,
            })
    };
    eprintln!(
        "worker_pool: {} tasks of {} for {:?}, workers {workers} (from {source}), {}",
        options.tasks,
        options.task_memory.describe(),
        options.task_time,
        match (&count_file, options.ignore_file) {
            (Some(file), _) => format!("following {}", file.path.display()),
            (None, true) => format!("ignoring {THREADS_FILE_VARIABLE} (--ignore-file)"),
            (None, false) => format!("{THREADS_FILE_VARIABLE} not set"),
        }
    );

    let pool = Arc::new(Pool::default());
    if options.on_signal {
        install_reread_on_sigusr1(&pool)?;
    }

    let mut next_task = 0;
    let mut max_concurrency = 0;
    let mut next_poll = Instant::now();
    let mut state = pool.lock();
    while state.finished < options.tasks {
        let signalled = std::mem::take(&mut state.reread_requested);
        let wants_to_start = next_task < options.tasks && state.running < workers;
        if let Some(file) = count_file.as_mut() {
            if signalled || wants_to_start || Instant::now() >= next_poll {
                drop(state);
                if let Some(count) = file.read(workers) {
                    if count != workers {
                        let reason = if signalled { " after SIGUSR1" } else { "" };
                        support::say(&format!(
                            "worker_pool: workers {workers} -> {count} \
                             (from {THREADS_FILE_VARIABLE}{reason})"
                        ));
                        workers = count;
                    }
                }
                next_poll = Instant::now() + FILE_POLL_INTERVAL;
                state = pool.lock();
            }
        }
        if next_task < options.tasks && state.running < workers {
            state.running += 1;
            max_concurrency = max_concurrency.max(state.running);
            let permit = Permit {
                pool: Arc::clone(&pool),
                failed: true,
            };
            let (memory, time) = (options.memory_of(next_task), options.task_time);
            // Unlocked while spawning: if the spawn fails, dropping the permit takes the lock.
            drop(state);
            let spawned = thread::Builder::new()
                .name(format!("task-{next_task}"))
                .spawn(move || run_task(permit, memory, time));
            state = pool.lock();
            match spawned {
                // Detached when the handle drops: the finished counter says when a task is
                // done, and holding handles to join later would keep every exited thread's
                // stack mapped until the end of the run.
                Ok(_detached) => {}
                Err(error) => {
                    // The failed spawn dropped the closure and its permit, which counted this
                    // task as finished and failed; wait for the tasks still running.
                    eprintln!("worker_pool: cannot start a thread for task {next_task}: {error}");
                    return finish_after_failed_spawn(&pool, state);
                }
            }
            next_task += 1;
            continue;
        }
        state = if count_file.is_some() {
            let timeout = next_poll.saturating_duration_since(Instant::now());
            pool.changed
                .wait_timeout(state, timeout)
                .unwrap_or_else(PoisonError::into_inner)
                .0
        } else {
            pool.changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner)
        };
    }
    let failed = state.failed;
    drop(state);
    if failed > 0 {
        eprintln!("worker_pool: {failed} of {} tasks failed", options.tasks);
    }
    println!(
        "worker_pool: done tasks={} max_concurrency={max_concurrency} elapsed={:.2}s",
        options.tasks - failed,
        started.elapsed().as_secs_f64()
    );
    Ok(failed == 0)
}

/// Waits for the tasks already running after a thread could not be started, then reports.
fn finish_after_failed_spawn(
    pool: &Pool,
    mut state: MutexGuard<'_, PoolState>,
) -> Result<bool, String> {
    while state.running > 0 {
        state = pool
            .changed
            .wait(state)
            .unwrap_or_else(PoisonError::into_inner);
    }
    Err("stopped early: not every task could be started".to_string())
}

/// The starting worker count and where it came from. A malformed `$RESCTL_THREADS` is
/// reported and replaced by the default rather than stopping the job.
fn initial_workers(options: &Options) -> (usize, &'static str) {
    if let Some(workers) = options.workers {
        return (workers, "--workers");
    }
    match std::env::var(THREADS_VARIABLE) {
        Ok(value) if !value.trim().is_empty() => match value.trim().parse::<usize>() {
            Ok(workers) if workers > 0 => (workers, THREADS_VARIABLE),
            _ => {
                eprintln!(
                    "worker_pool: ignoring {THREADS_VARIABLE}={value:?}: \
                     not a positive worker count"
                );
                (DEFAULT_WORKERS, "default")
            }
        },
        _ => (DEFAULT_WORKERS, "default"),
    }
}

/// Starts a thread that turns each SIGUSR1 into "re-read the file now".
fn install_reread_on_sigusr1(pool: &Arc<Pool>) -> Result<(), String> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGUSR1])
        .map_err(|error| format!("cannot install a SIGUSR1 handler: {error}"))?;
    let pool = Arc::clone(pool);
    thread::Builder::new()
        .name("sigusr1".to_string())
        .spawn(move || {
            for _signal in signals.forever() {
                pool.lock().reread_requested = true;
                pool.changed.notify_all();
            }
        })
        .map_err(|error| format!("cannot start the SIGUSR1 thread: {error}"))?;
    Ok(())
}

/// One task: allocate and touch `memory` bytes, hold them for `time` while computing a
/// little, free them. The permit is released when this returns (or unwinds).
fn run_task(mut permit: Permit, memory: usize, time: Duration) {
    let mut buffer = match allocate_touched(memory, MIN_RESERVATION_BYTES) {
        Ok(buffer) => buffer,
        Err(message) => {
            eprintln!("worker_pool: {message}");
            return;
        }
    };
    let deadline = Instant::now() + time;
    let mut checksum: u64 = 0;
    let mut page = 0;
    let page_count = memory.div_ceil(PAGE_SIZE);
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        // Short tasks keep the same one-in-five duty cycle instead of one solid slice.
        let work_until = now + TASK_WORK_SLICE.min((deadline - now) / 5);
        while Instant::now() < work_until {
            for _ in 0..256 {
                if page_count > 0 {
                    let offset = page * PAGE_SIZE;
                    checksum = checksum
                        .wrapping_mul(31)
                        .wrapping_add(u64::from(buffer[offset]));
                    buffer[offset] = checksum as u8;
                    page = (page + 1) % page_count;
                } else {
                    checksum = checksum.wrapping_mul(31).wrapping_add(1);
                }
            }
        }
        thread::sleep(TASK_REST_SLICE.min(deadline.saturating_duration_since(Instant::now())));
    }
    std::hint::black_box((checksum, &buffer));
    // Freed before the permit is released, so the next task never overlaps this memory.
    drop(buffer);
    permit.failed = false;
}

/// Parses the command line; `Ok(None)` means help was asked for.
fn parse_arguments(mut arguments: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut tasks = None;
    let mut task_memory = None;
    let mut task_time = None;
    let mut workers = None;
    let mut on_signal = false;
    let mut ignore_file = false;
    while let Some(argument) = arguments.next() {
        let (flag, inline) = support::split_option(&argument);
        let mut value = || support::option_value(&flag, &inline, &mut arguments);
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--tasks" => tasks = Some(parse_count_argument("--tasks", &value()?)?),
            "--task-memory" => task_memory = Some(TaskMemory::parse(&value()?)?),
            "--task-time" => task_time = Some(duration_argument(&value()?)?),
            "--workers" => workers = Some(parse_count_argument("--workers", &value()?)?),
            "--on-signal" => on_signal = true,
            "--ignore-file" => ignore_file = true,
            _ => return Err(format!("unexpected argument {argument:?}")),
        }
    }
    if workers == Some(0) {
        return Err("--workers must be at least 1".to_string());
    }
    Ok(Some(Options {
        tasks: tasks.ok_or("missing --tasks N")?,
        task_memory: task_memory.ok_or("missing --task-memory SIZE")?,
        task_time: task_time.ok_or("missing --task-time DURATION")?,
        workers,
        on_signal,
        ignore_file,
    }))
}

/// Parses a non-negative integer given to `flag`.
fn parse_count_argument(flag: &str, text: &str) -> Result<usize, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{flag} {text:?}: expected a whole number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(arguments: &[&str]) -> Options {
        match parse_arguments(arguments.iter().map(|a| a.to_string())) {
            Ok(Some(options)) => options,
            other => panic!("{arguments:?} did not parse: {:?}", other.err()),
        }
    }

    #[test]
    fn phases_split_the_tasks_in_order() {
        let options = options(&[
            "--tasks",
            "6",
            "--task-memory",
            "8M,36M,8M",
            "--task-time",
            "1s",
        ]);
        let mib = 1 << 20;
        let sizes: Vec<usize> = (0..6).map(|i| options.memory_of(i)).collect();
        assert_eq!(
            sizes,
            [8 * mib, 8 * mib, 36 * mib, 36 * mib, 8 * mib, 8 * mib]
        );
    }

    #[test]
    fn a_range_is_seeded_within_bounds_and_skewed_low() {
        let options = options(&[
            "--tasks",
            "1000",
            "--task-memory",
            "20M..60M",
            "--task-time",
            "1s",
        ]);
        let (low, high) = (20usize << 20, 60usize << 20);
        let sizes: Vec<usize> = (0..1000).map(|i| options.memory_of(i)).collect();
        assert!(sizes
            .iter()
            .all(|&s| (low..=high).contains(&s) && s % PAGE_SIZE == 0));
        // The same sequence every time.
        assert_eq!(
            sizes,
            (0..1000).map(|i| options.memory_of(i)).collect::<Vec<_>>()
        );
        // Skewed to the low end: more than half below the midpoint, a mean near a third up.
        let below_middle = sizes.iter().filter(|&&s| s < (low + high) / 2).count();
        assert!(
            below_middle > 600,
            "{below_middle} of 1000 below the middle"
        );
        let mean = sizes.iter().sum::<usize>() as f64 / 1000.0;
        let third = low as f64 + (high - low) as f64 / 3.0;
        assert!((mean - third).abs() < 2.0 * (1 << 20) as f64, "mean {mean}");
        // Not all alike.
        assert!(sizes.iter().max() > sizes.iter().min());
    }

    #[test]
    fn bad_ranges_are_refused() {
        for text in ["60M..20M", "20M..", "..60M", "20M..x"] {
            let parsed = parse_arguments(
                ["--tasks", "4", "--task-memory", text, "--task-time", "1s"]
                    .iter()
                    .map(|a| a.to_string()),
            );
            assert!(parsed.is_err(), "{text} was accepted");
        }
    }

    #[test]
    fn an_equal_range_is_one_size() {
        let options = options(&[
            "--tasks",
            "4",
            "--task-memory",
            "24M..24M",
            "--task-time",
            "1s",
        ]);
        assert!((0..4).all(|i| options.memory_of(i) == 24 << 20));
    }
}
