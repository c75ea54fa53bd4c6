//! Benchmark: one sample of a 200-thread process (this benchmark's own process).
//!
//! Three readers side by side in one criterion group:
//! - `resctl`: [`ProcReader::sample_processes`], warm (the reader and its open files are
//!   reused across iterations, as in resctl's one-second loop);
//! - `procfs_naive`: the procfs crate used the usual way, a fresh `Process` each time and
//!   `stat()`, `status()`, `tasks()` + each task's `stat()`;
//! - `sysinfo`: `System::refresh_processes_specifics` for the pid with tasks, CPU and memory.
//!   Note: for `ProcessesToUpdate::Some(&[pid])` sysinfo 0.40 only LISTS the thread ids
//!   (`get_proc_and_tasks` clears the task list before reading), so it reads 2 files where
//!   the others read 203;
//! - `sysinfo_pid_and_tids` (extra, for a like-for-like figure): the same call given the pid
//!   and every thread id, so sysinfo reads per-thread files too (on rayon's thread pool:
//!   its default `multithread` feature spreads the work over all cores).
//!
//! Afterwards the three are timed again interleaved (median of [`COMPARISON_ROUNDS`]) and a
//! plain line with the ratios is printed. Goals: resctl ≤ 0.25× procfs, ≤ 0.1× sysinfo.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::Criterion;
use resctl::sample::procfs::ProcReader;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// Parked threads spawned besides the main thread.
const PARKED_THREADS: usize = 200;
/// Rounds of the interleaved comparison after the criterion group.
const COMPARISON_ROUNDS: usize = 300;
/// Rounds of the separate timing of `sysinfo_pid_and_tids`.
const EXTRA_ROUNDS: usize = 50;

/// Threads that do nothing until told to stop.
struct ParkedThreads {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
}

impl ParkedThreads {
    fn spawn(count: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let handles = (0..count)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::Builder::new()
                    .stack_size(64 * 1024)
                    .spawn(move || {
                        while !stop.load(Ordering::Acquire) {
                            std::thread::park();
                        }
                    })
                    .expect("spawn a parked thread")
            })
            .collect();
        Self { stop, handles }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Release);
        for handle in self.handles {
            handle.thread().unpark();
            handle.join().expect("parked thread ends");
        }
    }
}

/// The three readers, each kept warm where its API allows.
struct Readers {
    pid: i32,
    resctl: ProcReader,
    sysinfo: System,
    sysinfo_with_tids: System,
    pid_and_tids: Vec<Pid>,
}

impl Readers {
    fn new(pid: i32) -> Self {
        Self {
            pid,
            resctl: ProcReader::default(),
            sysinfo: System::new().expect("sysinfo System"),
            sysinfo_with_tids: System::new().expect("sysinfo System"),
            pid_and_tids: std::fs::read_dir(format!("/proc/{pid}/task"))
                .expect("list own tasks")
                .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
                .map(Pid::from_u32)
                .collect(),
        }
    }

    /// Returns the number of threads seen so the work cannot be optimised away.
    fn resctl(&mut self) -> usize {
        let samples = self.resctl.sample_processes(&[self.pid]);
        samples.first().map_or(0, |sample| sample.threads.len())
    }

    fn procfs_naive(&mut self) -> usize {
        let process = procfs::process::Process::new(self.pid).expect("procfs Process");
        black_box(process.stat().expect("procfs stat"));
        black_box(process.status().expect("procfs status"));
        let mut threads = 0;
        for task in process.tasks().expect("procfs tasks").flatten() {
            if let Ok(stat) = task.stat() {
                black_box(stat);
                threads += 1;
            }
        }
        threads
    }

    fn sysinfo(&mut self) -> usize {
        let pid = Pid::from_u32(self.pid as u32);
        self.sysinfo.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            false,
            ProcessRefreshKind::nothing()
                .with_cpu()
                .with_memory()
                .with_tasks(),
        );
        self.sysinfo
            .process(pid)
            .and_then(|process| process.tasks())
            .map_or(0, |tasks| tasks.len())
    }
}

impl Readers {
    fn sysinfo_pid_and_tids(&mut self) -> usize {
        self.sysinfo_with_tids.refresh_processes_specifics(
            ProcessesToUpdate::Some(&self.pid_and_tids),
            false,
            ProcessRefreshKind::nothing()
                .with_cpu()
                .with_memory()
                .with_tasks(),
        )
    }
}

fn median_micros(mut durations: Vec<Duration>) -> f64 {
    durations.sort_unstable();
    durations[durations.len() / 2].as_secs_f64() * 1e6
}

fn main() {
    let parked = ParkedThreads::spawn(PARKED_THREADS);
    let pid = std::process::id() as i32;
    let mut readers = Readers::new(pid);
    let (resctl_threads, procfs_threads, sysinfo_threads, sysinfo_updated) = (
        readers.resctl(),
        readers.procfs_naive(),
        readers.sysinfo(),
        readers.sysinfo_pid_and_tids(),
    );
    println!(
        "threads seen: resctl {resctl_threads}, procfs {procfs_threads}, \
         sysinfo {sysinfo_threads} (ids only); sysinfo given pid+tids updated {sysinfo_updated}"
    );
    assert!(
        resctl_threads > PARKED_THREADS,
        "resctl saw {resctl_threads} threads"
    );

    let mut criterion = Criterion::default()
        .sample_size(30)
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    {
        let mut group = criterion.benchmark_group("sample_process_with_200_threads");
        group.bench_function("resctl", |bencher| {
            bencher.iter(|| black_box(readers.resctl()))
        });
        group.bench_function("procfs_naive", |bencher| {
            bencher.iter(|| black_box(readers.procfs_naive()))
        });
        group.bench_function("sysinfo", |bencher| {
            bencher.iter(|| black_box(readers.sysinfo()))
        });
        group.bench_function("sysinfo_pid_and_tids", |bencher| {
            bencher.iter(|| black_box(readers.sysinfo_pid_and_tids()))
        });
        group.finish();
    }
    criterion.final_summary();

    // The three readers of the brief, interleaved so that load changes hit all alike.
    let mut timings: [Vec<Duration>; 3] = Default::default();
    for _ in 0..COMPARISON_ROUNDS {
        let start = Instant::now();
        black_box(readers.resctl());
        timings[0].push(start.elapsed());
        let start = Instant::now();
        black_box(readers.procfs_naive());
        timings[1].push(start.elapsed());
        let start = Instant::now();
        black_box(readers.sysinfo());
        timings[2].push(start.elapsed());
    }
    let [resctl, procfs, sysinfo] = timings.map(median_micros);
    println!(
        "comparison (median of {COMPARISON_ROUNDS} interleaved rounds, {} threads): \
         resctl {resctl:.0} us, procfs naive {procfs:.0} us, sysinfo {sysinfo:.0} us; \
         resctl/procfs = {:.3} (goal <= 0.25), resctl/sysinfo = {:.3} (goal <= 0.10)",
        PARKED_THREADS + 1,
        resctl / procfs,
        resctl / sysinfo,
    );

    // Kept out of the interleaved loop: rayon's workers spin after each call and would
    // steal the CPU from whichever reader runs next on a small machine.
    let with_tids = (0..EXTRA_ROUNDS)
        .map(|_| {
            let start = Instant::now();
            black_box(readers.sysinfo_pid_and_tids());
            start.elapsed()
        })
        .collect();
    let with_tids = median_micros(with_tids);
    println!(
        "extra (median of {EXTRA_ROUNDS}): sysinfo given pid+tids (reads per-thread files) \
         {with_tids:.0} us; resctl/that = {:.3}",
        resctl / with_tids,
    );
    parked.stop();
}
