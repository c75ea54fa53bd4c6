//! `threads`: a managed job with many threads that do almost nothing.
//!
//! It starts N threads, holds for `--hold DURATION` (default 10s), then stops and joins them
//! and exits 0. Most threads park and never wake; one in ten wakes every 100 ms and spins
//! for about 50 µs, so the job has a little CPU time spread over some of its threads. It
//! exists to measure what resctl costs while watching a job with very many threads
//! (sampling every thread's `/proc/PID/task/TID/stat`), e.g. `threads 1000 --hold 60s`.
//!
//! ```text
//! threads N [--hold DURATION]
//!
//! cargo run --release --example threads -- 1000 --hold 30s
//! ```
//!
//! Durations are read by resctl's parser: `500ms`, `30s`, `2m30s` (a bare number is
//! seconds). Threads are named `idle-I` and `spin-I` (visible in `/proc/PID/task/TID/comm`).
//! Exit status: 0 when done, 1 when a thread could not be started (for instance at the
//! cgroup's `pids.max`), 2 on a usage error.

#[path = "support/mod.rs"]
mod support;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use support::duration_argument;

/// Hold time when `--hold` is not given.
const DEFAULT_HOLD: Duration = Duration::from_secs(10);
/// One thread in this many is a spinner; the rest only park.
const SPINNER_EVERY: usize = 10;
/// How often a spinner wakes up.
const SPIN_PERIOD: Duration = Duration::from_millis(100);
/// How long a spinner computes each time it wakes.
const SPIN_TIME: Duration = Duration::from_micros(50);
/// Stack reserved per thread: the threads barely use any, and a thousand default 2 MiB
/// stacks would be 2 GiB of address space for nothing.
const THREAD_STACK_BYTES: usize = 64 * 1024;

const USAGE: &str = "usage: threads N [--hold DURATION]";

fn main() -> ExitCode {
    let (thread_count, hold) = match parse_arguments(std::env::args().skip(1)) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("threads: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::with_capacity(thread_count);
    let mut spawn_error = None;
    for index in 0..thread_count {
        let stop = Arc::clone(&stop);
        let spins = index % SPINNER_EVERY == SPINNER_EVERY - 1;
        let name = if spins {
            format!("spin-{index}")
        } else {
            format!("idle-{index}")
        };
        let spawned = thread::Builder::new()
            .name(name)
            .stack_size(THREAD_STACK_BYTES)
            .spawn(move || {
                if spins {
                    spin_now_and_then(&stop);
                } else {
                    park_until_stopped(&stop);
                }
            });
        match spawned {
            Ok(handle) => handles.push(handle),
            Err(error) => {
                spawn_error = Some(format!(
                    "could not start thread {} of {thread_count}: {error}",
                    index + 1
                ));
                break;
            }
        }
    }
    if spawn_error.is_none() {
        eprintln!(
            "threads: pid {} started {} threads ({} spinning) in {:.3}s, holding {hold:?}",
            std::process::id(),
            handles.len(),
            handles.len() / SPINNER_EVERY,
            started.elapsed().as_secs_f64()
        );
        thread::sleep(hold);
    }
    stop.store(true, Ordering::Release);
    for handle in &handles {
        handle.thread().unpark();
    }
    let joined = handles.len();
    for handle in handles {
        // The thread bodies cannot panic; nothing to report if one did anyway.
        let _ = handle.join();
    }
    match spawn_error {
        Some(message) => {
            eprintln!("threads: {message}; stopped the {joined} already running");
            ExitCode::FAILURE
        }
        None => {
            eprintln!(
                "threads: done, joined {joined} threads after {:.2}s",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
    }
}

/// Sleeps until told to stop (parking may wake spuriously, hence the loop).
fn park_until_stopped(stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        thread::park();
    }
}

/// Every `SPIN_PERIOD`, computes for `SPIN_TIME`, until told to stop.
fn spin_now_and_then(stop: &AtomicBool) {
    let mut accumulator: u64 = 1;
    while !stop.load(Ordering::Acquire) {
        let spin_until = Instant::now() + SPIN_TIME;
        while Instant::now() < spin_until {
            accumulator = std::hint::black_box(
                accumulator
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1),
            );
        }
        thread::park_timeout(SPIN_PERIOD);
    }
}

/// Parses the command line into (thread count, hold); `Ok(None)` means help was asked for.
fn parse_arguments(
    mut arguments: impl Iterator<Item = String>,
) -> Result<Option<(usize, Duration)>, String> {
    let mut thread_count = None;
    let mut hold = DEFAULT_HOLD;
    while let Some(argument) = arguments.next() {
        match argument.as_str() {
            "-h" | "--help" => return Ok(None),
            "--hold" => {
                let value = arguments.next().ok_or("--hold needs a value")?;
                hold = duration_argument(&value)?;
            }
            other if other.starts_with("--hold=") => {
                hold = duration_argument(&other["--hold=".len()..])?
            }
            other if other.starts_with('-') => return Err(format!("unknown option {other:?}")),
            other if thread_count.is_none() => {
                thread_count = Some(
                    other
                        .parse::<usize>()
                        .map_err(|_| format!("N {other:?}: expected a whole number of threads"))?,
                );
            }
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    let thread_count = thread_count.ok_or("missing N")?;
    Ok(Some((thread_count, hold)))
}
