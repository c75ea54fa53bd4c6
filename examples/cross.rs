//! `cross`: the job side of the reaction benchmark (`benches/reaction.sh`).
//!
//! Run under `resctl run`, it measures how long resctl takes from the job's cgroup crossing
//! a memory level to the new thread count being visible in `$RESCTL_THREADS_FILE`:
//!
//! 1. it allocates (touching every page) until its cgroup's usage reaches `--start`, a size
//!    below every level, so no level is entered before the measurement;
//! 2. it pauses a random time in `[0, --phase-max)`, so the crossing falls at a random point
//!    of resctl's sampling tick (a fixed phase would measure one point of the tick only);
//! 3. it notes the current count, then touches new pages and reads the cgroup's usage
//!    every 16 pages (64 KiB): the first read at or above `--level` is the crossing,
//!    timed with the monotonic clock (`Instant`); it goes on to `--overshoot` past the level
//!    (default 1M) and stops allocating there. The overshoot matters: the usage counter
//!    moves in per-CPU batches of 256 KiB, so a job stopping a few KiB past a level can be
//!    read below it a moment later, and resctl would rightly not see the level at all;
//! 4. it reads `$RESCTL_THREADS_FILE` every 0.2 ms until the count differs, and prints
//!
//! ```text
//! cross: delay_ms=3.412 threads=4->1 usage_at_crossing=125829120 level=125829120 phase_ms=612 crossing_unix_ns=1764259200123456789
//! ```
//!
//! on stdout (`crossing_unix_ns` is CLOCK_REALTIME, to match resctl's log lines). Exit
//! status: 0 measured, 1 the count did not change within `--timeout` (prints
//! `cross: timeout ...`), 2 usage error or nothing to measure with.
//!
//! ```text
//! cross --level SIZE --start SIZE [--overshoot SIZE] [--phase-max DURATION] [--timeout DURATION]
//!       [--usage-file PATH]
//!
//! resctl run --memory-max 256M --moderate 100M --high 110M --critical 120M --threads 4 -- \
//!     target/release/examples/cross --level 120M --start 80M
//! ```
//!
//! The usage file defaults to this process's own cgroup: `memory.usage_in_bytes` of its v1
//! memory cgroup (hybrid and v1 hosts), else `memory.current` of its cgroup2 directory
//! (under `/sys/fs/cgroup`).

#[path = "support/mod.rs"]
mod support;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::{allocate_touched, duration_argument, format_bytes, size_argument, PAGE_SIZE};

/// How often the thread-count file is read while waiting for the change.
const WATCH_PERIOD: Duration = Duration::from_micros(200);
/// Pages touched between two reads of the usage file while crossing (64 KiB): the
/// crossing instant is known to within the time of 16 page faults (a few microseconds).
const PAGES_PER_USAGE_READ: usize = 16;
/// Bytes allocated per step before the pause (step 1).
const APPROACH_STEP: usize = 1024 * 1024;
/// The crossing block: this much beyond what should be needed, as the cgroup also charges
/// page tables and the kernel's own allocations differently from the job's bytes.
const CROSSING_HEADROOM: u64 = 32 * 1024 * 1024;
/// Environment variable naming the thread-count file (resctl's contract).
const THREADS_FILE_VARIABLE: &str = "RESCTL_THREADS_FILE";

const USAGE: &str = "usage: cross --level SIZE --start SIZE [--overshoot SIZE] \
[--phase-max DURATION] [--timeout DURATION] [--usage-file PATH]";

/// What the command line asks for.
struct Options {
    level: u64,
    start: u64,
    overshoot: u64,
    phase_max: Duration,
    timeout: Duration,
    usage_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    let options =
        match support::options_or_exit("cross", USAGE, parse_arguments(std::env::args().skip(1))) {
            Ok(options) => options,
            Err(code) => return code,
        };
    match run(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("cross: {message}");
            ExitCode::from(2)
        }
    }
}

/// The cgroup's usage counter, re-read with `pread`.
struct Usage {
    file: File,
    path: PathBuf,
}

impl Usage {
    fn read(&self) -> Result<u64, String> {
        let mut buffer = [0u8; 32];
        let length = self
            .file
            .read_at(&mut buffer, 0)
            .map_err(|error| format!("reading {}: {error}", self.path.display()))?;
        let text = String::from_utf8_lossy(&buffer[..length]);
        text.trim().parse().map_err(|_| {
            format!(
                "{}: expected a byte count, found {:?}",
                self.path.display(),
                text.trim()
            )
        })
    }
}

/// Runs the measurement; `Ok(false)` on timeout.
fn run(options: &Options) -> Result<bool, String> {
    let threads_file = std::env::var_os(THREADS_FILE_VARIABLE)
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| format!("${THREADS_FILE_VARIABLE} is not set: run me under resctl run"))?;
    let usage_path = match &options.usage_file {
        Some(path) => path.clone(),
        None => own_usage_file()?,
    };
    let usage = Usage {
        file: File::open(&usage_path)
            .map_err(|error| format!("opening {}: {error}", usage_path.display()))?,
        path: usage_path,
    };

    // 1. Approach.
    let mut held: Vec<Vec<u8>> = Vec::new();
    while usage.read()? < options.start {
        held.push(allocate_touched(APPROACH_STEP, 0)?);
    }
    let approached = usage.read()?;
    if approached >= options.level {
        return Err(format!(
            "usage {} is already at the level {} after the approach: lower --start",
            format_bytes(approached as usize),
            format_bytes(options.level as usize)
        ));
    }

    // 2. Random phase.
    let phase = options.phase_max.mul_f64(random_fraction());
    std::thread::sleep(phase);

    // 3. Cross.
    let before = read_count(&threads_file)?;
    let (crossed, usage_at_crossing, crossing_wall) =
        cross(&usage, options.level, options.overshoot, &mut held)?;

    // 4. Watch.
    let deadline = crossed + options.timeout;
    loop {
        let now = Instant::now();
        // A read error is at worst a race with resctl's rename: read again next time.
        if let Some(count) = read_count(&threads_file)
            .ok()
            .filter(|&count| count != before)
        {
            let delay = now.duration_since(crossed);
            println!(
                "cross: delay_ms={:.3} threads={before}->{count} usage_at_crossing={usage_at_crossing} \
                 level={} phase_ms={} crossing_unix_ns={crossing_wall}",
                delay.as_secs_f64() * 1000.0,
                options.level,
                phase.as_millis()
            );
            return Ok(true);
        }
        if now >= deadline {
            println!(
                "cross: timeout after {:?}: threads stayed {before} (usage {})",
                options.timeout,
                usage.read().unwrap_or(0)
            );
            return Ok(false);
        }
        std::thread::sleep(WATCH_PERIOD);
    }
}

/// Touches pages of a new block until usage reaches `level + overshoot`; returns the
/// instant, the usage read and the wall-clock nanoseconds of the moment usage first reached
/// `level`. The block is kept in `held`.
fn cross(
    usage: &Usage,
    level: u64,
    overshoot: u64,
    held: &mut Vec<Vec<u8>>,
) -> Result<(Instant, u64, u128), String> {
    let needed = (level + overshoot).saturating_sub(usage.read()?) + CROSSING_HEADROOM;
    let bytes = usize::try_from(needed).map_err(|_| "the level is too large".to_string())?;
    // Zeroed memory comes as fresh, untouched pages (calloc's mmap): nothing is resident
    // until the loop below writes to it.
    let mut block: Vec<u8> = vec![0; bytes];
    let mut crossing = None;
    for (index, page) in block.chunks_mut(PAGE_SIZE).enumerate() {
        page[0] = 0xA5;
        if index % PAGES_PER_USAGE_READ == PAGES_PER_USAGE_READ - 1 {
            let now_usage = usage.read()?;
            if now_usage >= level && crossing.is_none() {
                crossing = Some((Instant::now(), now_usage, unix_nanos()));
            }
            if now_usage >= level + overshoot {
                break;
            }
        }
    }
    held.push(std::hint::black_box(block));
    crossing.ok_or_else(|| {
        format!(
            "touched {} more and usage is still below {}",
            format_bytes(bytes),
            format_bytes(level as usize)
        )
    })
}

/// The current count in resctl's file.
fn read_count(path: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("reading {}: {error}", path.display()))?;
    text.trim()
        .parse()
        .map_err(|_| format!("{}: expected a count, found {:?}", path.display(), text))
}

/// This process's cgroup usage file, from `/proc/self/cgroup`.
fn own_usage_file() -> Result<PathBuf, String> {
    let text = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|error| format!("reading /proc/self/cgroup: {error}"))?;
    let mut v2 = None;
    for line in text.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let relative = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == "memory") {
            let file = Path::new("/sys/fs/cgroup/memory")
                .join(relative)
                .join("memory.usage_in_bytes");
            if file.exists() {
                return Ok(file);
            }
        }
        if controllers.is_empty() {
            v2 = Some(
                Path::new("/sys/fs/cgroup")
                    .join(relative)
                    .join("memory.current"),
            );
        }
    }
    v2.filter(|file| file.exists()).ok_or_else(|| {
        "no memory usage file for this process's cgroup: give --usage-file".to_string()
    })
}

/// A number in [0, 1) that differs from run to run (no `rand` crate: the clock's
/// nanoseconds, mixed by a xorshift step).
fn random_fraction() -> f64 {
    let mut state = (unix_nanos() as u64) ^ u64::from(std::process::id()).rotate_left(32);
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    (state >> 11) as f64 / (1u64 << 53) as f64
}

/// CLOCK_REALTIME in nanoseconds since the epoch (0 if the clock is before it).
fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_nanos())
        .unwrap_or(0)
}

/// Parses the command line; `Ok(None)` means help was asked for.
fn parse_arguments(mut arguments: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut level = None;
    let mut start = None;
    let mut overshoot = 1024 * 1024;
    let mut phase_max = Duration::from_secs(1);
    let mut timeout = Duration::from_secs(5);
    let mut usage_file = None;
    while let Some(argument) = arguments.next() {
        if argument == "-h" || argument == "--help" {
            return Ok(None);
        }
        let (flag, inline) = support::split_option(&argument);
        let mut value = || support::option_value(&flag, &inline, &mut arguments);
        match flag.as_str() {
            "--level" => level = Some(size_argument(&value()?)? as u64),
            "--start" => start = Some(size_argument(&value()?)? as u64),
            "--overshoot" => overshoot = size_argument(&value()?)? as u64,
            "--phase-max" => phase_max = duration_argument(&value()?)?,
            "--timeout" => timeout = duration_argument(&value()?)?,
            "--usage-file" => usage_file = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let level = level.ok_or("--level is required")?;
    let start = start.ok_or("--start is required")?;
    if start >= level {
        return Err(format!("--start ({start}) must be below --level ({level})"));
    }
    Ok(Some(Options {
        level,
        start,
        overshoot,
        phase_max,
        timeout,
        usage_file,
    }))
}
