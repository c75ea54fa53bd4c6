//! Benchmark: what one slice costs `resctl daemon` per tick, natively, without a VM.
//!
//! The slice's cgroup is the recorded v2 fixture (`tests/fixtures/cgroup/v2/.../fixture-job`:
//! memory.stat, events, PSI, cpu.stat, the limits) copied to a temporary folder, read the way
//! the daemon reads it (files kept open, re-read with `pread`), through the daemon's own
//! [`SliceWatch`]. Side by side in one criterion group:
//! - `full`: every file, and the observe → policy step (`SliceWatch::assess`),
//!   what each tick cost before the daemon learned to glance, and still costs for a slice
//!   near or in a level, and every 5 s for a quiet one;
//! - `glance`: the charge alone and the decision that it is enough
//!   (`SliceWatch::needs_full_reading`), what a quiet slice costs in the other ticks.
//!
//! Afterwards the two are timed again interleaved (median of [`COMPARISON_ROUNDS`]) and a plain
//! line gives their ratio and what a quiet slice then costs per second at a 1 s interval
//! (four glances and one full reading in five ticks), as a share of one core. Files on a
//! temporary folder are not kernfs: the kernel's side of reading a real cgroup (formatting
//! memory.stat, flushing its counters) is not in these figures; `benches/daemon.sh` measures
//! the whole daemon in the VM.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::Criterion;
use resctl::cgroup::reader::{CgroupDir, CgroupKind};
use resctl::daemon::slice::{SliceWatch, QUIET_FULL_READING_EVERY};
use resctl::policy::PolicyConfig;

/// Rounds of the interleaved comparison after the criterion group.
const COMPARISON_ROUNDS: usize = 2_000;
/// The fixture job's cgroup folder, relative to the package.
const FIXTURE: &str =
    "tests/fixtures/cgroup/v2/sys/fs/cgroup/system.slice/vmtest.service/fixture-job";
/// A limit well above the fixture's memory, so the slice stays quiet.
const LIMIT: u64 = 64 << 30;

/// One slice as the daemon holds it: its open cgroup and its watch.
struct Slice {
    reader: CgroupDir,
    watch: SliceWatch,
    at: Duration,
}

impl Slice {
    fn open(dir: &Path) -> Self {
        let reader = CgroupDir::open_unchecked(dir, CgroupKind::V2).expect("open the fixture copy");
        // The default levels (moderate at 2000 MB) are far above the fixture's memory.
        let config = PolicyConfig {
            memory_limit: Some(LIMIT),
            ..PolicyConfig::default()
        };
        let mut slice = Slice {
            reader,
            watch: SliceWatch::new("bench.slice", config, 2, 100),
            at: Duration::ZERO,
        };
        slice.full();
        slice
    }

    /// A tick that reads everything and assesses it (a full reading that is due anyway
    /// does not read the charge first).
    fn full(&mut self) -> usize {
        self.at += Duration::from_secs(1);
        let sample = self.reader.sample().expect("read the fixture copy");
        self.watch.assess(self.at, Ok(sample), Some(LIMIT)).len()
    }

    /// A tick that reads the charge and finds it enough (the clock stays within the quiet
    /// slice's 5 s, so the answer is the glance's every time).
    fn glance(&mut self) -> bool {
        let reader = &mut self.reader;
        self.watch
            .needs_full_reading(self.at + Duration::from_secs(1), || {
                reader.memory_charge().expect("read memory.current")
            })
    }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn main() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    for entry in std::fs::read_dir(&fixture).expect("the fixture folder") {
        let entry = entry.expect("a fixture entry");
        std::fs::copy(entry.path(), folder.path().join(entry.file_name()))
            .expect("copy a fixture file");
    }
    // The fixture was recorded under memory pressure: the copy gets a calm slice's PSI
    // (the same lines, every average at 0.00), so the watch stays quiet.
    for name in ["memory.pressure", "cpu.pressure", "io.pressure"] {
        let path = folder.path().join(name);
        if let Ok(text) = std::fs::read_to_string(&path) {
            let calm: String = text
                .split_inclusive(' ')
                .map(|word| match word.split_once('=') {
                    Some((key, _)) if key.starts_with("avg") => format!("{key}=0.00 "),
                    _ => word.to_owned(),
                })
                .collect();
            std::fs::write(&path, calm).expect("write a calm pressure file");
        }
    }
    let mut full = Slice::open(folder.path());
    let mut glance = Slice::open(folder.path());
    assert!(
        !glance.glance(),
        "the fixture slice must be quiet and far from its levels"
    );

    let mut criterion = Criterion::default()
        .sample_size(30)
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    {
        let mut group = criterion.benchmark_group("one_slice_one_tick");
        group.bench_function("full", |bencher| bencher.iter(|| black_box(full.full())));
        group.bench_function("glance", |bencher| {
            bencher.iter(|| black_box(glance.glance()))
        });
        group.finish();
    }

    let (mut full_times, mut glance_times) = (Vec::new(), Vec::new());
    for _ in 0..COMPARISON_ROUNDS {
        let started = Instant::now();
        black_box(full.full());
        full_times.push(started.elapsed());
        let started = Instant::now();
        black_box(glance.glance());
        glance_times.push(started.elapsed());
    }
    let (full_tick, glance_tick) = (median(full_times), median(glance_times));
    let ticks = QUIET_FULL_READING_EVERY.as_secs().max(1) as u32;
    let quiet_second = (glance_tick * (ticks - 1) + full_tick) / ticks;
    println!(
        "one slice, one tick (median of {COMPARISON_ROUNDS} interleaved): full {:.1} µs, glance \
         {:.1} µs: glance / full = {:.2}x",
        full_tick.as_secs_f64() * 1e6,
        glance_tick.as_secs_f64() * 1e6,
        glance_tick.as_secs_f64() / full_tick.as_secs_f64()
    );
    println!(
        "a quiet slice at a 1 s interval: {:.1} µs a second = {:.5} % of one core (every tick in \
         full: {:.5} %)",
        quiet_second.as_secs_f64() * 1e6,
        quiet_second.as_secs_f64() * 100.0,
        full_tick.as_secs_f64() * 100.0
    );
}
