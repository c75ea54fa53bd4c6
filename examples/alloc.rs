//! `alloc`: a managed job that allocates memory and makes every page of it resident.
//!
//! It allocates SIZE bytes, writing to every 4096-byte page so the kernel really has to back
//! it with RAM (an untouched allocation costs nothing), optionally in steps with a pause
//! between them, holds it, then frees it and exits 0. Progress goes to stderr. Under a
//! memory limit smaller than SIZE this is the job the kernel OOM-kills — the demo of what
//! resctl exists to prevent.
//!
//! ```text
//! alloc SIZE [--hold DURATION] [--step SIZE] [--step-every DURATION]
//!
//! cargo run --example alloc -- 256M --hold 5s
//! cargo run --example alloc -- 1.5G --step 256M --step-every 500ms --hold 10s
//! ```
//!
//! Sizes and durations are read by resctl's own parsers (`resctl::units`): sizes are
//! systemd-style binary units (`512K`, `256M`, `1.5G`, `1T`; a bare number is bytes),
//! durations look like `250ms`, `1.5s`, `2m30s` (a bare number is seconds). `--step`
//! defaults to SIZE (all at once), `--step-every` to 1s, `--hold` to 0.
//!
//! Exit status: 0 when done, 1 when an allocation is refused, 2 on a usage error.

#[path = "support/mod.rs"]
mod support;

use std::process::ExitCode;
use std::time::{Duration, Instant};
use support::{allocate_touched, duration_argument, format_bytes, size_argument};

/// Pause between two steps when `--step` is given without `--step-every`.
const DEFAULT_STEP_EVERY: Duration = Duration::from_secs(1);

const USAGE: &str = "usage: alloc SIZE [--hold DURATION] [--step SIZE] [--step-every DURATION]";

/// What the command line asks for.
struct Options {
    total_bytes: usize,
    hold: Duration,
    step_bytes: usize,
    step_every: Duration,
}

fn main() -> ExitCode {
    let options =
        match support::options_or_exit("alloc", USAGE, parse_arguments(std::env::args().skip(1))) {
            Ok(options) => options,
            Err(code) => return code,
        };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("alloc: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Allocates in steps, holds, frees.
fn run(options: &Options) -> Result<(), String> {
    let started = Instant::now();
    let step_count = options
        .total_bytes
        .div_ceil(options.step_bytes.max(1))
        .max(1);
    let mut chunks: Vec<Vec<u8>> = Vec::with_capacity(step_count);
    let mut allocated = 0usize;
    for step in 1..=step_count {
        if step > 1 {
            std::thread::sleep(options.step_every);
        }
        let chunk_bytes = options.step_bytes.min(options.total_bytes - allocated);
        chunks.push(allocate_touched(chunk_bytes, 0)?);
        allocated += chunk_bytes;
        eprintln!(
            "alloc: step {step}/{step_count}: +{} -> {} allocated and touched, {} ({:.2}s)",
            format_bytes(chunk_bytes),
            format_bytes(allocated),
            resident_set_description(),
            started.elapsed().as_secs_f64()
        );
    }
    if !options.hold.is_zero() {
        eprintln!(
            "alloc: holding {} for {:?}",
            format_bytes(allocated),
            options.hold
        );
        std::thread::sleep(options.hold);
    }
    std::hint::black_box(&chunks);
    drop(chunks);
    eprintln!(
        "alloc: done, freed {} after {:.2}s",
        format_bytes(allocated),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// "VmRSS 514.3 MiB" from /proc/self/status, or why it could not be read.
fn resident_set_description() -> String {
    let status = match std::fs::read_to_string("/proc/self/status") {
        Ok(status) => status,
        Err(error) => return format!("VmRSS unknown (/proc/self/status: {error})"),
    };
    let kibibytes = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<usize>()
                .ok()
        });
    match kibibytes {
        Some(kibibytes) => format!("VmRSS {}", format_bytes(kibibytes.saturating_mul(1024))),
        None => "VmRSS unknown (no readable VmRSS line in /proc/self/status)".to_string(),
    }
}

/// Parses the command line; `Ok(None)` means help was asked for.
fn parse_arguments(mut arguments: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut total_bytes = None;
    let mut hold = Duration::ZERO;
    let mut step_bytes = None;
    let mut step_every = DEFAULT_STEP_EVERY;
    while let Some(argument) = arguments.next() {
        let (flag, inline) = support::split_option(&argument);
        let mut value = || support::option_value(&flag, &inline, &mut arguments);
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--hold" => hold = duration_argument(&value()?)?,
            "--step" => step_bytes = Some(size_argument(&value()?)?),
            "--step-every" => step_every = duration_argument(&value()?)?,
            other if other.starts_with('-') => return Err(format!("unknown option {other:?}")),
            _ if total_bytes.is_none() => total_bytes = Some(size_argument(&argument)?),
            _ => return Err(format!("unexpected argument {argument:?}")),
        }
    }
    let total_bytes = total_bytes.ok_or("missing SIZE")?;
    let step_bytes = match step_bytes {
        Some(0) => return Err("--step must be larger than 0".to_string()),
        Some(step) => step,
        None => total_bytes,
    };
    Ok(Some(Options {
        total_bytes,
        hold,
        step_bytes,
        step_every,
    }))
}
