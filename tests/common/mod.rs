//! Helpers shared by the integration tests: where the binaries are, running
//! resctl with its pid known, and facts about the host's cgroups.
#![allow(dead_code)]

pub mod render;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The resctl binary (the VM runner points `RESCTL_BIN` at its staged copy).
pub fn resctl_bin() -> PathBuf {
    std::env::var_os("RESCTL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_resctl")))
}

/// An example program built by `cargo test` (`target/<profile>/examples/NAME`),
/// or from `RESCTL_EXAMPLES` in the VM.
pub fn example(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("RESCTL_EXAMPLES") {
        return PathBuf::from(dir).join(name);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --examples` (cargo test builds it)",
        path.display()
    );
    path
}

/// `resctl run` options that watch a job through /proc (no cgroup, so the same on every
/// host) with levels a small test job crosses: moderate 10M, high 11M, critical 12M, and
/// 3 workers at start, so a job of 24M RSS makes the count fall to 1.
pub const SMALL_LEVELS: [&str; 9] = [
    "--monitor-only",
    "--moderate",
    "10M",
    "--high",
    "11M",
    "--critical",
    "12M",
    "--threads",
    "3",
];

/// A resctl command with a clean environment for the job's variables, and no job history
/// (a run's start count must not depend on the runs before it; tests/history.rs turns it on).
pub fn resctl() -> Command {
    let mut command = Command::new(resctl_bin());
    command
        .env_remove("RESCTL_CONFIG")
        .env_remove("RESCTL_LOG")
        .env_remove("RESCTL_HISTORY_DIR")
        .env("RESCTL_NO_HISTORY", "1");
    command
}

/// Runs resctl to completion; returns its output and its pid (to find its cgroup).
pub fn run_with_pid(command: &mut Command) -> (Output, u32) {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn resctl");
    let pid = child.id();
    let output = child.wait_with_output().expect("wait for resctl");
    (output, pid)
}

/// Text of stderr.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Whether the test runs as root; says the test is skipped when not.
pub fn running_as_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("skipped: needs root");
    false
}

/// Text of stdout.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Asks `done` every `every` until it holds or `limit` has passed, and says whether it held.
/// `done` is asked once more after the deadline, so a condition that came true during the
/// last sleep still counts.
pub fn eventually(limit: Duration, every: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(every);
    }
}

/// Waits up to `limit` for `child` to exit and returns its status; kills and reaps it and
/// panics with `what` when it is still running then (a test must not hang on a stuck child).
pub fn wait_for_exit(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let mut status = None;
    eventually(limit, Duration::from_millis(20), || {
        status = child
            .try_wait()
            .unwrap_or_else(|error| panic!("cannot wait for {what}: {error}"));
        status.is_some()
    });
    status.unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{what} still running after {limit:?}");
    })
}

/// Waits up to 20 s for `path` to appear (a file a job writes once it runs); panics with
/// `what` and the path when it does not.
pub fn wait_for_file(path: &Path, what: &str) {
    assert!(
        eventually(Duration::from_secs(20), Duration::from_millis(20), || path
            .exists()),
        "{what}: {} never appeared",
        path.display()
    );
}

/// This process's v1 memory cgroup directory, when the host has a writable
/// v1 memory hierarchy (hybrid hosts like the development machines) and we are root.
pub fn writable_v1_memory_cgroup() -> Option<PathBuf> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let relative = cgroups.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == "memory")
            .then(|| path.to_string())
    })?;
    let dir = Path::new("/sys/fs/cgroup/memory").join(relative.trim_start_matches('/'));
    dir.join("memory.limit_in_bytes").exists().then_some(dir)
}

/// Skips (with a note on stderr) a test that needs the v1 memory hierarchy.
/// The development and CI machines have it, so there these tests always run.
#[macro_export]
macro_rules! require_v1 {
    () => {
        match common::writable_v1_memory_cgroup() {
            Some(dir) => dir,
            None => {
                eprintln!("skipped: needs root and a writable v1 memory cgroup (hybrid host)");
                return;
            }
        }
    };
}

/// The delegated cgroup the VM runner gives tests (`RESCTL_VM_CGROUP`); panics
/// with a clear message outside the VM (VM tests are `#[ignore = "needs VM"]`).
pub fn vm_cgroup() -> PathBuf {
    match std::env::var_os("RESCTL_VM_CGROUP") {
        Some(dir) if std::env::var_os("RESCTL_VM").is_some() => PathBuf::from(dir),
        _ => panic!("skipped: this test needs the VM test bed (run tests/vm/run.sh)"),
    }
}

/// The thread-aware demo pool under a budget where four workers reach the
/// critical level: resctl must drop RESCTL_THREADS_FILE to 1, and the pool
/// must finish. `resctl` is a [`resctl()`] command (its user and environment set),
/// `placement` are resctl's placement options. Returns resctl's output and pid.
pub fn pool_reaching_critical(mut resctl: Command, placement: &[String]) -> (Output, u32) {
    let (output, pid) = run_with_pid(
        resctl
            .args(["run"])
            .args(placement)
            .args(POOL_LIMIT)
            .args(POOL_LEVELS)
            .args(["--threads", "4", "--interval", "200ms", "--"])
            .arg(example("worker_pool"))
            .args(POOL_JOB),
    );
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert!(
        stdout(&output).contains("done tasks=12"),
        "{}",
        stdout(&output)
    );
    assert!(
        err.contains("threads 4 -> 1"),
        "resctl never fell back to 1:\n{err}"
    );
    assert!(
        err.contains("workers 4 -> 1"),
        "the pool never followed the file:\n{err}"
    );
    assert!(err.contains("highest level critical"), "{err}");
    (output, pid)
}

/// The same pool, ignoring resctl with eight workers, under the same budget: the
/// kernel's OOM killer ends it.
pub fn pool_unmanaged(mut resctl: Command, placement: &[String]) -> (Output, u32) {
    let (output, pid) = run_with_pid(
        resctl
            .args(["run"])
            .args(placement)
            .args(POOL_LIMIT)
            .args(POOL_LEVELS)
            .args(["--"])
            .arg(example("worker_pool"))
            .args(POOL_JOB)
            .args(["--workers", "8", "--ignore-file"]),
    );
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(137), "{err}");
    assert!(err.contains("OOM killer"), "{err}");
    (output, pid)
}

/// The pool's 100M hard limit.
const POOL_LIMIT: [&str; 2] = ["--memory-max", "100M"];
/// Levels low enough that four 18M workers are critical (within a 100M limit).
pub const POOL_LEVELS: [&str; 6] = ["--moderate", "50M", "--high", "60M", "--critical", "70M"];
/// Twelve tasks of 18M held for 1.5 s each.
pub const POOL_JOB: [&str; 6] = [
    "--tasks",
    "12",
    "--task-memory",
    "18M",
    "--task-time",
    "1500ms",
];

/// `resctl bench` of the demo pool at 1, 2 and 4 workers of 30M in 100M through `resctl`
/// (a [`resctl()`] command, its environment set; `extra` are more bench options, e.g.
/// `--log-dir`), checked: 1 and 2 succeed, 4 is OOM-killed, 2 is recommended. Returns
/// resctl's output and the JSON report.
pub fn bench_of_the_pool(
    mut resctl: Command,
    extra: &[&std::ffi::OsStr],
) -> (Output, serde_json::Value) {
    let output = resctl
        .args([
            "bench",
            "--threads",
            "1,2,4",
            "--repeat",
            "1",
            "--memory-max",
            "100M",
        ])
        .args(extra)
        .args(["--json", "--"])
        .arg(example("worker_pool"))
        .args([
            "--tasks",
            "8",
            "--task-memory",
            "30M",
            "--task-time",
            "300ms",
        ])
        .args(["--ignore-file", "--workers", "{threads}"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    // 4 × 30M does not fit in 100M: OOM-killed. 2 workers take half the time of 1.
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{report}");
    assert_eq!(results[0]["ok"], true, "{report}");
    assert_eq!(results[1]["ok"], true, "{report}");
    assert_eq!(results[2]["ok"], false, "{report}");
    assert!(
        results[2]["runs"][0]["oom_kills"].as_u64().unwrap() >= 1,
        "{report}"
    );
    assert_eq!(report["recommended"], 2, "{report}");
    (output, report)
}

/// Runs a job that allocates 48M, frees it and sleeps for 2 s, recording a trace: some
/// tick's observation must carry the 48M as the peak since the previous sample while the
/// memory it sampled is under half of that — the peak between samples, from the cgroup's
/// high-water mark. `placement` are resctl's placement options.
pub fn assert_peak_between_samples_observed(placement: &[String]) {
    let trace = std::env::temp_dir().join(format!("resctl-peak-{}.jsonl", std::process::id()));
    let script = format!("'{}' 48M && sleep 2", example("alloc").display());
    let output = resctl()
        .arg("run")
        .args(placement)
        .arg("--record")
        .arg(&trace)
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = std::fs::read_to_string(&trace).unwrap();
    let _ = std::fs::remove_file(&trace);
    let observations: Vec<(u64, u64)> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["kind"] == "tick")
        .map(|line| {
            let observation = &line["observation"];
            (
                observation["memory_bytes"].as_u64().unwrap_or(0) >> 20,
                observation["memory_peak_since_last"].as_u64().unwrap_or(0) >> 20,
            )
        })
        .collect();
    assert!(
        observations
            .iter()
            .any(|&(memory, peak)| peak >= 48 && memory < 24),
        "(memory MiB, peak since the last sample MiB) per tick: {observations:?}"
    );
}

/// Runs a job that writes a file three times its 32M limit: the page cache fills the
/// cgroup up to the limit, and must not count as pressure (no level, no reduction).
/// `placement` are resctl's placement options.
pub fn assert_page_cache_is_not_pressure(placement: &[String]) {
    // The job's own writes are charged to its cgroup; /var/tmp is on disk, not tmpfs.
    let data =
        std::path::Path::new("/var/tmp").join(format!("resctl-cache-{}", std::process::id()));
    // A second writer keeps the disk busy with direct IO (not cached): writeback lags, and
    // reclaim meets dirty pages, which it moves to the active list. Less the inactive list
    // alone, that reads as the job being at its limit.
    let script = format!(
        "dd if=/dev/zero of='{0}.direct' bs=1M count=200 oflag=direct 2>/dev/null & \
         head -c 96M /dev/zero > '{0}' && wait && sleep 1",
        data.display()
    );
    // This test is about the memory level. Memory PSI is a separate, genuine signal: v1's
    // memory cgroup waits on writeback in reclaim (a stall PSI counts), and on v1 the PSI read
    // is the host's, where other tests' stalls count too; on a slow disk it crossed the
    // moderate level and took a worker away. Off here, so only the memory level can act.
    let config = data.with_extension("yaml");
    std::fs::write(&config, "psi:\n  memory_full: ~\n").unwrap();
    let output = resctl()
        .arg("run")
        .args(placement)
        .arg("--config")
        .arg(&config)
        .args([
            "--memory-max",
            "32M",
            "--interval",
            "100ms",
            "--",
            "sh",
            "-c",
        ])
        .arg(&script)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&data);
    let _ = std::fs::remove_file(data.with_extension("direct"));
    let _ = std::fs::remove_file(&config);
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert!(err.contains("highest level normal"), "{err}");
    // Never fewer workers than at the start (a tiny job may grow).
    let counts = err
        .lines()
        .find_map(|line| line.split("summary: threads ").nth(1))
        .unwrap_or_else(|| panic!("no thread summary in {err}"));
    let words: Vec<&str> = counts.split_whitespace().collect();
    assert_eq!(words.first(), words.get(3), "start vs lowest in {counts:?}");
}
