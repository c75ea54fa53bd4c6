//! The jobserver with real clients: GNU make (4.3 on the test hosts) and cargo
//! follow the pool, shrink when resctl withholds tokens, grow back when it
//! returns them, and no token is created or lost.
//!
//! Each job logs `NAME start NANOS` / `NAME end NANOS` (wall clock, ns since
//! the epoch) to a file; concurrency is measured from those intervals. The
//! tests run one at a time (they measure timing on a 2-core machine).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use resctl::act::jobserver::{AuthForm, Jobserver};

mod common;
use common::eventually;

const JOBS: u32 = 4;

static SERIAL: Mutex<()> = Mutex::new(());

/// True when `tool` runs here. The host (development and CI machines) has make
/// and cargo, so there these tests always run; the VM test bed's minimal image
/// has neither, and the tests say so and return.
fn tool_available(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        eprintln!("skipped: {tool} is not installed here");
    }
    found
}

fn one_at_a_time() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/make")
        .join(name)
}

#[derive(Debug)]
struct Interval {
    name: String,
    start: u64,
    end: u64,
}

/// Pairs the `start`/`end` lines of each job in the log.
fn read_intervals(log: &Path) -> Vec<Interval> {
    let text = std::fs::read_to_string(log).unwrap();
    let mut starts = std::collections::HashMap::new();
    let mut intervals = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields.len(), 3, "bad log line {line:?}");
        let time: u64 = fields[2].parse().unwrap();
        match fields[1] {
            "start" => assert!(starts.insert(fields[0].to_string(), time).is_none()),
            "end" => intervals.push(Interval {
                name: fields[0].to_string(),
                start: starts.remove(fields[0]).unwrap(),
                end: time,
            }),
            other => panic!("bad log line {line:?}: {other}"),
        }
    }
    assert!(starts.is_empty(), "jobs that never ended: {starts:?}");
    intervals
}

/// Most jobs running at one instant within `[from, until)`.
fn max_concurrency(intervals: &[Interval], from: u64, until: u64) -> usize {
    std::iter::once(from)
        .chain(intervals.iter().map(|interval| interval.start))
        .filter(|instant| (from..until).contains(instant))
        .map(|instant| {
            intervals
                .iter()
                .filter(|interval| interval.start <= instant && instant < interval.end)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// Waits until the jobserver holds back `count` tokens and returns that instant: from then
/// on make has none of them, so no more jobs run than the tokens left allow. Read from the
/// jobserver, not from the jobs' log: a job logs its start some time after make took its
/// token (long, under software emulation), so a job that looks as if it started after a
/// shrink may hold a token taken before it.
fn settled_when_withheld(jobserver: &Jobserver, count: u32) -> u64 {
    let withheld = eventually(Duration::from_secs(30), POLL, || {
        jobserver.withheld() >= count
    });
    assert!(
        withheld,
        "{} of {count} tokens withheld after 30 s",
        jobserver.withheld()
    );
    now_ns()
}

/// How often the tests look at the jobserver (its keeper moves tokens on its own thread).
const POLL: Duration = Duration::from_millis(10);

/// `make -f FIXTURE VARS…` as a pipe-form client of `jobserver`, with no -j
/// on its command line and no jobserver inherited from the test's caller.
fn make(jobserver: &Jobserver, makefile: &str, dir: &Path, vars: &[String]) -> Command {
    let mut command = Command::new("make");
    command
        .arg("-f")
        .arg(fixture(makefile))
        .args(vars)
        .current_dir(dir)
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL")
        .stdin(Stdio::null());
    jobserver.configure_command(&mut command, AuthForm::Pipe);
    command
}

/// What each make test starts with: make installed, the tests serialised, and a folder
/// holding a pool of `JOBS` and a log path. Fields drop in order: the pool before its folder.
struct MakePool {
    jobserver: Jobserver,
    log: PathBuf,
    dir: tempfile::TempDir,
    _serial: MutexGuard<'static, ()>,
}

impl MakePool {
    /// `None` (after saying so) when make is not installed.
    fn new() -> Option<MakePool> {
        if !tool_available("make") {
            return None;
        }
        let serial = one_at_a_time();
        let dir = tempfile::tempdir().unwrap();
        Some(MakePool {
            jobserver: Jobserver::create(JOBS, &resctl::safe_fs::Folder::open(dir.path()).unwrap())
                .unwrap(),
            log: dir.path().join("log"),
            dir,
            _serial: serial,
        })
    }

    /// `make -f sleep.mk` of `count` sleeps of `seconds`, each logged to `self.log`.
    fn sleeps(&self, count: u32, seconds: f64) -> Command {
        make(
            &self.jobserver,
            "sleep.mk",
            self.dir.path(),
            &sleep_vars(&self.log, count, seconds),
        )
    }
}

fn sleep_vars(log: &Path, count: u32, seconds: f64) -> Vec<String> {
    vec![
        format!("LOG={}", log.display()),
        format!("N={count}"),
        format!("SLEEP={seconds}"),
    ]
}

fn wait_success(mut child: Child) {
    let status = child.wait().unwrap();
    assert!(status.success(), "make failed: {status}");
}

/// No client is running: every token is free in the pool or held by resctl.
fn assert_tokens_conserved(jobserver: &Jobserver) {
    // The keeper may still be moving the last returned tokens.
    let conserved = eventually(Duration::from_secs(2), POLL, || {
        jobserver.available().unwrap() + jobserver.withheld() == JOBS - 1
    });
    assert!(
        conserved,
        "available {} + withheld {} (of {})",
        jobserver.available().unwrap(),
        jobserver.withheld(),
        JOBS - 1
    );
}

#[test]
fn make_runs_as_many_jobs_as_the_pool_allows() {
    let Some(pool) = MakePool::new() else {
        return;
    };

    let started = now_ns();
    wait_success(pool.sleeps(8, 0.3).spawn().unwrap());
    let elapsed = Duration::from_nanos(now_ns() - started);

    let intervals = read_intervals(&pool.log);
    let mut names: Vec<&str> = intervals.iter().map(|i| i.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["job1", "job2", "job3", "job4", "job5", "job6", "job7", "job8"]
    );
    let concurrency = max_concurrency(&intervals, 0, u64::MAX);
    eprintln!("make, pool of {JOBS}: max concurrency {concurrency}, 8 x 0.3 s in {elapsed:?}");
    assert_eq!(concurrency, JOBS as usize);
    // Two waves of four at least, never eight at once (the concurrency above
    // shows it was not one at a time; no upper bound on a shared machine).
    assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
    assert_tokens_conserved(&pool.jobserver);
    assert_eq!(pool.jobserver.available().unwrap(), JOBS - 1);
}

#[test]
fn make_shrinks_to_one_job_when_tokens_are_withheld() {
    let Some(pool) = MakePool::new() else {
        return;
    };

    let child = pool.sleeps(8, 1.0).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let shrunk_at = now_ns();
    pool.jobserver.set_limit(1);
    assert_eq!(pool.jobserver.limit(), 1);
    // All tokens are with make's running jobs: none can be taken yet.
    assert_eq!(pool.jobserver.withheld(), 0);
    let settled = settled_when_withheld(&pool.jobserver, JOBS - 1);
    wait_success(child);

    let intervals = read_intervals(&pool.log);
    assert_eq!(intervals.len(), 8);
    let before = max_concurrency(&intervals, 0, shrunk_at);
    let after = max_concurrency(&intervals, settled, u64::MAX);
    let later_jobs = intervals.iter().filter(|i| i.start >= settled).count();
    eprintln!(
        "make shrink 4 -> 1: concurrency {before} before, {after} after the tokens were back \
         ({later_jobs} jobs started after)"
    );
    assert_eq!(before, JOBS as usize);
    // One, not none: a job ran after the shrink took effect. How many started after it
    // depends on whether make's implicit job or the jobserver got back the last tokens
    // first, so it is only printed.
    assert_eq!(after, 1);
    assert_eq!(pool.jobserver.withheld(), JOBS - 1);
    assert_tokens_conserved(&pool.jobserver);
}

#[test]
fn make_grows_back_when_tokens_are_returned() {
    let Some(pool) = MakePool::new() else {
        return;
    };

    let child = pool.sleeps(12, 0.6).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    pool.jobserver.set_limit(1);
    let settled = settled_when_withheld(&pool.jobserver, JOBS - 1);
    std::thread::sleep(Duration::from_millis(1200));
    let grown_at = now_ns();
    assert_eq!(pool.jobserver.withheld(), JOBS - 1);
    pool.jobserver.set_limit(JOBS);
    assert_eq!(pool.jobserver.withheld(), 0);
    wait_success(child);

    let intervals = read_intervals(&pool.log);
    assert_eq!(intervals.len(), 12);
    let shrunk = max_concurrency(&intervals, settled, grown_at);
    let grown = max_concurrency(&intervals, grown_at, u64::MAX);
    eprintln!("make 4 -> 1 -> 4: concurrency {shrunk} while shrunk, {grown} after growing back");
    assert_eq!(shrunk, 1);
    assert_eq!(grown, JOBS as usize);
    assert_eq!(pool.jobserver.available().unwrap(), JOBS - 1);
    assert_tokens_conserved(&pool.jobserver);
}

#[test]
fn tokens_of_a_killed_make_are_lost_until_restored() {
    let Some(pool) = MakePool::new() else {
        return;
    };

    let mut child = pool.sleeps(8, 2.0).process_group(0).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(pool.jobserver.available().unwrap(), 0);
    let group = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(100));

    // make died holding three tokens (four jobs ran: its implicit one + 3).
    assert_eq!(
        pool.jobserver.available().unwrap() + pool.jobserver.withheld(),
        0
    );
    assert_eq!(pool.jobserver.restore_lost().unwrap(), JOBS - 1);
    assert_eq!(pool.jobserver.available().unwrap(), JOBS - 1);
    assert_tokens_conserved(&pool.jobserver);
}

#[test]
fn memory_demo_makefile_runs_alloc_per_target() {
    let Some(pool) = MakePool::new() else {
        return;
    };
    let output = make(
        &pool.jobserver,
        "memory.mk",
        pool.dir.path(),
        &["-n".to_string(), "ALLOC=/opt/alloc".to_string()],
    )
    .output()
    .unwrap();
    assert!(output.status.success(), "{output:?}");
    let commands = String::from_utf8(output.stdout).unwrap();
    assert_eq!(commands.lines().count(), 8, "{commands}");
    assert!(
        commands
            .lines()
            .all(|line| line == "/opt/alloc 40M --hold 1s"),
        "{commands}"
    );
}

const CRATES: usize = 4;

/// A workspace of `CRATES` crates without dependencies whose build scripts
/// log their start and end to `$JOBSERVER_TEST_LOG` and sleep 0.6 s between.
fn write_workspace(root: &Path) {
    let members: Vec<String> = (1..=CRATES).map(|n| format!("\"c{n}\"")).collect();
    std::fs::write(
        root.join("Cargo.toml"),
        format!(
            "[workspace]\nmembers = [{}]\nresolver = \"2\"\n",
            members.join(", ")
        ),
    )
    .unwrap();
    for n in 1..=CRATES {
        let crate_dir = root.join(format!("c{n}"));
        std::fs::create_dir_all(crate_dir.join("src")).unwrap();
        std::fs::write(
            crate_dir.join("Cargo.toml"),
            format!("[package]\nname = \"c{n}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
        )
        .unwrap();
        std::fs::write(
            crate_dir.join("src/lib.rs"),
            "pub fn answer() -> u32 { 42 }\n",
        )
        .unwrap();
        std::fs::write(crate_dir.join("build.rs"), BUILD_SCRIPT).unwrap();
    }
}

const BUILD_SCRIPT: &str = r#"use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn stamp(log: &str, what: &str) {
    let name = std::env::var("CARGO_PKG_NAME").unwrap();
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    file.write_all(format!("{name} {what} {nanos}\n").as_bytes()).unwrap();
}

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let log = std::env::var("JOBSERVER_TEST_LOG").unwrap();
    stamp(&log, "start");
    std::thread::sleep(Duration::from_millis(600));
    stamp(&log, "end");
}
"#;

/// `cargo build --offline` of the workspace under `jobserver` at `limit`, announced in
/// `form`; returns the build scripts' max concurrency.
fn cargo_build_concurrency(workspace: &Path, limit: u32, form: AuthForm) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let jobserver =
        Jobserver::create(JOBS, &resctl::safe_fs::Folder::open(dir.path()).unwrap()).unwrap();
    jobserver.set_limit(limit);
    assert_eq!(jobserver.withheld(), JOBS - limit);
    let log = dir.path().join("log");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--offline", "--quiet"])
        .current_dir(workspace)
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .env("JOBSERVER_TEST_LOG", &log)
        .env_remove("CARGO_BUILD_JOBS")
        .env_remove("MFLAGS")
        .stdin(Stdio::null());
    jobserver.configure_command(&mut command, form);
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "cargo build failed: {stderr}");
    assert!(
        !stderr.contains("jobserver"),
        "cargo did not accept the jobserver: {stderr}"
    );
    let intervals = read_intervals(&log);
    assert_eq!(intervals.len(), CRATES, "{intervals:?}");
    assert_tokens_conserved(&jobserver);
    assert_eq!(jobserver.withheld(), JOBS - limit);
    max_concurrency(&intervals, 0, u64::MAX)
}

#[test]
fn cargo_follows_the_pool() {
    if !tool_available("cargo") {
        return;
    }
    let _serial = one_at_a_time();
    let workspace = tempfile::tempdir().unwrap();
    write_workspace(workspace.path());

    for form in [AuthForm::Pipe, AuthForm::Fifo] {
        let limited = cargo_build_concurrency(workspace.path(), 1, form);
        let full = cargo_build_concurrency(workspace.path(), JOBS, form);
        eprintln!(
            "cargo, {CRATES} build scripts x 0.6 s, {form:?} form: concurrency {limited} at \
             limit 1, {full} at limit {JOBS}"
        );
        assert_eq!(limited, 1, "{form:?}");
        // The measurement can see overlap: with the whole pool they do overlap.
        assert!(full >= 2, "{form:?}: {full}");
    }
}
