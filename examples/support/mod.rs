//! Helpers shared by the example jobs (`alloc`, `worker_pool`, `threads`): touching memory
//! so it is really resident, and reading sizes and durations the way resctl does.
//!
//! Each example includes this file with `#[path = "support/mod.rs"] mod support;`. It lives
//! in a folder without a `main.rs`, so cargo does not take it for an example of its own.

// Every example compiles its own copy of this module and uses only part of it (`threads`
// needs only `duration_argument`), so the items one example leaves unused are not dead code.
#![allow(dead_code)]

use resctl::units::{format_size, parse_duration, parse_size};
use std::time::Duration;

/// The usual page size: memory is touched a page at a time.
pub const PAGE_SIZE: usize = 4096;
/// What a page of allocated memory is filled with (non-zero, so it cannot stay a shared
/// zero page).
static TOUCH_PATTERN: [u8; PAGE_SIZE] = [0xA5; PAGE_SIZE];

/// Allocates `bytes` and writes to every page, so all of it is resident (anonymous memory
/// that has never been written is not backed by RAM). Fails cleanly if the allocator
/// refuses, instead of aborting.
///
/// The buffer reserves at least `min_reservation_bytes` of address space (0: exactly
/// `bytes`); only its first `bytes` are touched, so the unused rest is never resident.
pub fn allocate_touched(bytes: usize, min_reservation_bytes: usize) -> Result<Vec<u8>, String> {
    let mut buffer = Vec::new();
    buffer
        .try_reserve_exact(bytes.max(min_reservation_bytes))
        .map_err(|error| format!("cannot allocate {}: {error}", format_bytes(bytes)))?;
    // Filled a page at a time with a non-zero pattern: every page is written, so faulted in
    // (no lazy zero page), and the copy stays fast even in a debug build.
    while buffer.len() < bytes {
        let chunk = (bytes - buffer.len()).min(PAGE_SIZE);
        buffer.extend_from_slice(&TOUCH_PATTERN[..chunk]);
    }
    Ok(std::hint::black_box(buffer))
}

/// Reads a size the way resctl does (binary units: `512K`, `50M`, `1.5G`; a bare number is
/// bytes) as a byte count this machine can address.
pub fn size_argument(text: &str) -> Result<usize, String> {
    let bytes = parse_size(text).map_err(|error| error.to_string())?;
    usize::try_from(bytes)
        .map_err(|_| format!("size '{text}' does not fit in this machine's memory"))
}

/// Reads a duration the way resctl does (`200ms`, `1.5s`, `2m30s`; a bare number is seconds).
pub fn duration_argument(text: &str) -> Result<Duration, String> {
    parse_duration(text).map_err(|error| error.to_string())
}

/// Formats a byte count for people, as resctl's logs do: `50M`, `1.5G`.
pub fn format_bytes(bytes: usize) -> String {
    format_size(u64::try_from(bytes).unwrap_or(u64::MAX))
}

/// Writes one line to stderr in a single write(2), so it is not interleaved with
/// resctl's lines on the same stderr (`eprintln!` writes piece by piece).
pub fn say(line: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

/// The parsed options; or, after printing the usage (`--help`: exit 0) or the
/// error and the usage (exit 2), the exit code to return from `main`.
pub fn options_or_exit<T>(
    program: &str,
    usage: &str,
    parsed: Result<Option<T>, String>,
) -> Result<T, std::process::ExitCode> {
    match parsed {
        Ok(Some(options)) => Ok(options),
        Ok(None) => {
            println!("{usage}");
            Err(std::process::ExitCode::SUCCESS)
        }
        Err(message) => {
            eprintln!("{program}: {message}\n{usage}");
            Err(std::process::ExitCode::from(2))
        }
    }
}

/// One command-line argument, split for option parsing: `--flag=value` gives the flag and its
/// inline value; anything else is returned whole, with no inline value.
pub fn split_option(argument: &str) -> (String, Option<String>) {
    match argument.split_once('=') {
        Some((flag, value)) if flag.starts_with("--") => {
            (flag.to_string(), Some(value.to_string()))
        }
        _ => (argument.to_string(), None),
    }
}

/// The value of option `flag`: its inline value (`--flag=value`), else the next argument.
pub fn option_value(
    flag: &str,
    inline: &Option<String>,
    rest: &mut impl Iterator<Item = String>,
) -> Result<String, String> {
    inline
        .clone()
        .or_else(|| rest.next())
        .ok_or_else(|| format!("{flag} needs a value"))
}
