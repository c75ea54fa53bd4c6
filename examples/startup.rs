//! `startup`: the start-up cost of `resctl run -- true` against plain `true`, side by side in
//! one run, with the kernel's (and systemd's) own floor for putting a job in a cgroup of its
//! own on this host. Run by `benches/startup.sh` on the host and by
//! `tests/vm/run.sh --bench startup` in the VM; it only prints figures.
//!
//! ```text
//! startup [ROUNDS] [--resctl PATH] [--cgroup-parent DIR]
//! ```
//!
//! Each round runs every command once, in turn, so drift hits all alike. The commands:
//!
//! - `true`;
//! - the kernel floor, when a cgroup parent is known (`--cgroup-parent`, else the VM test
//!   bed's `RESCTL_VM_CGROUP`, else this process's v1 memory cgroup on a hybrid host): mkdir
//!   a child cgroup, fork, move the child in
//!   (write "0" to `cgroup.procs` between fork and exec, as resctl does), exec `true`, wait,
//!   rmdir — what any tool must pay, without resctl;
//! - `systemd-run --scope --quiet true` where systemd runs (resctl asks systemd for such a
//!   scope over D-Bus on v2 hosts with systemd);
//! - `resctl run --monitor-only -- true` and `resctl run -- true`;
//! - where systemd runs, `resctl run -- true` without a reachable system bus, so that it
//!   falls back to re-executing itself under `systemd-run --scope` (the way before D-Bus);
//! - where systemd runs and a cgroup parent is known, `resctl run --cgroup-parent P -- true`,
//!   which places the job without re-executing in a systemd scope.
//!
//! "over floor" compares each resctl command with what it must pay anyway: plain `true` for
//! `--monitor-only`, the kernel floor under `--cgroup-parent`, systemd's scope (where systemd
//! runs, else the kernel floor) for the default placement.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

/// One command to time.
struct Entry {
    name: String,
    run: Box<dyn Fn() -> Result<(), String>>,
    millis: Vec<f64>,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("startup: {message}");
            ExitCode::from(1)
        }
    }
}

fn run() -> Result<(), String> {
    let mut rounds = 40usize;
    let mut resctl = std::env::var_os("RESCTL_BIN").map(PathBuf::from);
    let mut parent = None;
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        match argument.as_str() {
            "--resctl" => resctl = arguments.next().map(PathBuf::from),
            "--cgroup-parent" => parent = arguments.next().map(PathBuf::from),
            number => {
                rounds = number.parse().map_err(|_| {
                    format!(
                    "usage: startup [ROUNDS] [--resctl PATH] [--cgroup-parent DIR] (got {number})"
                )
                })?
            }
        }
    }
    let resctl = resctl
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.join("resctl"))
        })
        .ok_or("cannot find resctl: give --resctl PATH")?;
    let parent = parent
        .or_else(|| std::env::var_os("RESCTL_VM_CGROUP").map(PathBuf::from))
        .or_else(own_v1_memory_cgroup);

    let mut entries = vec![entry("true", command(&["/bin/true"]))];
    if let Some(parent) = &parent {
        let parent = parent.clone();
        entries.push(entry(
            "kernel floor (mkdir, move, exec, rmdir)",
            Box::new(move || kernel_floor(&parent)),
        ));
    }
    let systemd_runs = Path::new("/run/systemd/system").exists();
    if systemd_runs {
        entries.push(entry(
            "systemd-run --scope true",
            command(&["systemd-run", "--scope", "--quiet", "/bin/true"]),
        ));
    }
    let resctl_text = resctl.display().to_string();
    entries.push(entry(
        "resctl run --monitor-only -- true",
        command(&[&resctl_text, "run", "--monitor-only", "--", "/bin/true"]),
    ));
    entries.push(entry(
        "resctl run -- true",
        command(&[&resctl_text, "run", "--", "/bin/true"]),
    ));
    if systemd_runs {
        entries.push(entry(
            "resctl run -- true (no bus: systemd-run)",
            command_with_env(
                &[("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus")],
                &[&resctl_text, "run", "--", "/bin/true"],
            ),
        ));
    }
    if let Some(parent) = parent.as_ref().filter(|_| systemd_runs) {
        // Where systemd runs, `resctl run` is moved into a scope; under an explicit
        // parent it does not: the difference is the scope's cost, the rest is resctl's own.
        let parent_text = parent.display().to_string();
        entries.push(entry(
            "resctl run --cgroup-parent P -- true (no scope)",
            command(&[
                &resctl_text,
                "run",
                "--cgroup-parent",
                &parent_text,
                "--",
                "/bin/true",
            ]),
        ));
    }

    for _ in 0..rounds {
        for entry in &mut entries {
            let started = Instant::now();
            (entry.run)().map_err(|err| format!("{}: {err}", entry.name))?;
            entry.millis.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    report(&mut entries, rounds, parent.as_deref());
    Ok(())
}

fn entry(name: &str, run: Box<dyn Fn() -> Result<(), String>>) -> Entry {
    Entry {
        name: name.to_owned(),
        run,
        millis: Vec::new(),
    }
}

/// Runs `argv` to completion; an exit status other than 0 is an error.
fn command(argv: &[&str]) -> Box<dyn Fn() -> Result<(), String>> {
    command_with_env(&[], argv)
}

/// [`command`] with extra environment variables.
fn command_with_env(env: &[(&str, &str)], argv: &[&str]) -> Box<dyn Fn() -> Result<(), String>> {
    let argv: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Box::new(move || {
        let status = Command::new(&argv[0])
            .args(&argv[1..])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|err| err.to_string())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("{status}"))
        }
    })
}

/// mkdir a cgroup under `parent`, run `true` moved into it between fork and exec, rmdir.
fn kernel_floor(parent: &Path) -> Result<(), String> {
    let dir = parent.join(format!("startup-floor-{}", std::process::id()));
    std::fs::create_dir(&dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    let procs = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.procs"))
        .map_err(|err| format!("{}: {err}", dir.display()))?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&procs);
    let mut child = Command::new("/bin/true");
    // SAFETY: write(2) on a descriptor the parent keeps open; async-signal-safe.
    unsafe {
        child.pre_exec(move || {
            if nix::libc::write(fd, b"0".as_ptr().cast(), 1) == 1 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let status = child.status().map_err(|err| err.to_string());
    drop(procs);
    std::fs::remove_dir(&dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    if status?.success() {
        Ok(())
    } else {
        Err("true failed".to_owned())
    }
}

/// This process's v1 memory cgroup on a hybrid host.
fn own_v1_memory_cgroup() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let relative = text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == "memory")
            .then(|| path.to_owned())
    })?;
    let dir = Path::new("/sys/fs/cgroup/memory").join(relative.trim_start_matches('/'));
    dir.join("memory.limit_in_bytes").exists().then_some(dir)
}

fn median(sorted: &[f64]) -> f64 {
    let middle = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    }
}

fn report(entries: &mut [Entry], rounds: usize, parent: Option<&Path>) {
    let uname = Command::new("uname")
        .arg("-r")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "start-up, {rounds} rounds, {cpus} CPUs, kernel {uname}, floor cgroup parent {}",
        parent.map_or_else(|| "-".to_owned(), |p| p.display().to_string())
    );
    for entry in entries.iter_mut() {
        entry.millis.sort_by(f64::total_cmp);
    }
    let base = median(&entries[0].millis);
    let median_of = |prefix: &str| {
        entries
            .iter()
            .find(|e| e.name.starts_with(prefix))
            .map(|e| median(&e.millis))
    };
    let kernel_floor = median_of("kernel floor");
    let scope_floor = median_of("systemd-run");
    // Each resctl command against what it must pay anyway: nothing for --monitor-only (no
    // cgroup), the kernel's floor under an explicit parent, systemd's scope (else the
    // kernel's floor) for the default placement.
    let floor_of = |name: &str| {
        if name.contains("--monitor-only") {
            Some(base)
        } else if name.contains("--cgroup-parent") {
            kernel_floor
        } else {
            scope_floor.or(kernel_floor)
        }
    };
    println!(
        "{:<48} {:>9} {:>9} {:>11} {:>12}",
        "command", "median", "p90", "over true", "over floor"
    );
    for entry in entries.iter() {
        let median = median(&entry.millis);
        let p90 = entry.millis[(entry.millis.len() - 1) * 9 / 10];
        let over_floor = match floor_of(&entry.name) {
            Some(floor) if entry.name.starts_with("resctl") => {
                format!("{:+9.1} ms", median - floor)
            }
            _ => String::new(),
        };
        println!(
            "{:<48} {:>7.1}ms {:>7.1}ms {:>+8.1} ms {:>12}",
            entry.name,
            median,
            p90,
            median - base,
            over_floor
        );
    }
    if let Some(resctl) = entries.iter().find(|e| e.name == "resctl run -- true") {
        let median = median(&resctl.millis);
        let over = median - base;
        println!(
            "resctl run -- true over plain true: {over:.1} ms (goal <= 15 ms: {:.2}x of the goal)",
            over / 15.0
        );
        if let Some(floor) = floor_of(&resctl.name) {
            println!(
                "resctl run -- true over its floor: {:.1} ms (goal <= 15 ms: {:.2}x of the goal)",
                median - floor,
                (median - floor) / 15.0
            );
        }
    }
}
