//! `resctl run` on this hybrid host's real v1 memory controller (the
//! development and CI machines): the kernel enforces the limit, resctl keeps a
//! thread-aware job inside it, and no cgroup is left behind.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{
    assert_page_cache_is_not_pressure, assert_peak_between_samples_observed, example, resctl,
    run_with_pid, stderr, stdout,
};

/// Neither the v1 memory cgroup nor the cgroup2 leaf for the job's pressure is left.
fn assert_no_cgroup_left(own: &Path, resctl_pid: u32) {
    let name = format!("resctl-{resctl_pid}");
    for dir in std::iter::once(own.join(&name)).chain(unified_own_with_psi().map(|u| u.join(&name)))
    {
        assert!(!dir.exists(), "{} was left behind", dir.display());
    }
}

#[test]
fn the_job_runs_in_its_own_v1_memory_cgroup_and_it_is_removed() {
    let own = require_v1!();
    let (output, pid) = run_with_pid(resctl().args(["run", "--", "cat", "/proc/self/cgroup"]));
    assert!(output.status.success(), "{}", stderr(&output));
    let memory_line = stdout(&output)
        .lines()
        .find(|l| {
            l.split(':')
                .nth(1)
                .is_some_and(|c| c.split(',').any(|c| c == "memory"))
        })
        .map(str::to_string)
        .expect("a memory line in /proc/self/cgroup");
    assert!(
        memory_line.ends_with(&format!("/resctl-{pid}/job")),
        "job ran in {memory_line}"
    );
    assert_no_cgroup_left(&own, pid);
}

/// This process's cgroup2 group on a hybrid host (`/sys/fs/cgroup/unified/...`), when it
/// keeps pressure files; `None` elsewhere.
fn unified_own_with_psi() -> Option<std::path::PathBuf> {
    let mount = Path::new("/sys/fs/cgroup/unified");
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = own.lines().find_map(|line| line.strip_prefix("0::"))?;
    let dir = mount.join(path.trim_start_matches('/'));
    dir.join("memory.pressure").is_file().then_some(dir)
}

#[test]
fn on_a_hybrid_host_the_job_gets_a_cgroup2_leaf_for_its_own_pressure() {
    require_v1!();
    let Some(unified) = unified_own_with_psi() else {
        eprintln!("skipped: no cgroup2 hierarchy with PSI beside the v1 memory controller");
        return;
    };
    // A leaf that a SIGKILLed resctl left is removed, like its v1 cgroup.
    let stale = unified.join("resctl-99999999");
    let _ = std::fs::create_dir(&stale);
    let _ = std::fs::create_dir(stale.join("job"));
    let trace = std::env::temp_dir().join(format!("resctl-leaf-{}.jsonl", std::process::id()));
    let (output, pid) = run_with_pid(
        resctl()
            .args(["run", "--interval", "100ms", "--record"])
            .arg(&trace)
            .args([
                "--",
                "sh",
                "-c",
                "grep '^0::' /proc/self/cgroup; echo \"watch=$MEMORY_PRESSURE_WATCH\"; sleep 0.6",
            ]),
    );
    let text = std::fs::read_to_string(&trace).unwrap_or_default();
    let _ = std::fs::remove_file(&trace);
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    let out = stdout(&output);
    let leaf = unified.join(format!("resctl-{pid}/job"));
    assert!(
        out.lines()
            .next()
            .is_some_and(|line| line.ends_with(&format!("/resctl-{pid}/job"))),
        "the job's cgroup2 group: {out}"
    );
    assert!(
        out.contains(&format!("watch={}", leaf.join("memory.pressure").display())),
        "the memory pressure protocol names the leaf's file: {out}"
    );
    assert!(
        err.contains(&format!(
            "its pressure from the cgroup2 leaf {}",
            leaf.display()
        )),
        "{err}"
    );
    // The v1 memory cgroup keeps no pressure files: a tick's figures come from the leaf.
    let ticks_with_own_pressure = text
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["kind"] == "tick")
        .filter(|line| line["sample"]["cgroup"]["memory_pressure"].is_object())
        .count();
    assert!(
        ticks_with_own_pressure > 0,
        "no tick read the leaf:\n{text}"
    );
    assert!(!stale.exists(), "stale {} not removed", stale.display());
    assert!(
        !unified.join(format!("resctl-{pid}")).exists(),
        "the leaf was left behind"
    );
}

/// The host's memory PSI "full" avg10, percent.
fn host_memory_full_avg10() -> f64 {
    std::fs::read_to_string("/proc/pressure/memory")
        .ok()
        .and_then(|text| {
            let full = text.lines().find(|line| line.starts_with("full "))?;
            let avg10 = full
                .split_whitespace()
                .find_map(|f| f.strip_prefix("avg10="))?;
            avg10.parse().ok()
        })
        .unwrap_or(0.0)
}

#[test]
fn a_neighbours_memory_stalls_do_not_take_the_jobs_workers() {
    use std::os::unix::process::CommandExt;
    let own = require_v1!();
    if unified_own_with_psi().is_none() {
        eprintln!("skipped: no cgroup2 hierarchy with PSI beside the v1 memory controller");
        return;
    }
    // The neighbour writes a file ten times its 16M limit, over and over: v1 reclaim waits
    // on the writeback of its dirty pages, a stall the host's PSI counts.
    let neighbour = own.join(format!("neighbour-{}", std::process::id()));
    std::fs::create_dir(&neighbour).unwrap();
    std::fs::write(neighbour.join("memory.limit_in_bytes"), "16M").unwrap();
    let data =
        std::path::PathBuf::from(format!("/var/tmp/resctl-neighbour-{}", std::process::id()));
    let script = format!(
        "echo $$ > '{}/cgroup.procs' && while :; do head -c 160M /dev/zero > '{}'; done",
        neighbour.display(),
        data.display()
    );
    let mut writer = std::process::Command::new("sh")
        .args(["-c", &script])
        .process_group(0)
        .spawn()
        .unwrap();
    let stalled = common::eventually(Duration::from_secs(30), Duration::from_millis(250), || {
        host_memory_full_avg10() >= 15.0
    });
    let output = stalled.then(|| {
        resctl()
            .args([
                "run",
                "--threads",
                "2",
                "--interval",
                "200ms",
                "--",
                "sleep",
                "5",
            ])
            .output()
            .unwrap()
    });
    let during = host_memory_full_avg10();
    let group = nix::unistd::Pid::from_raw(writer.id() as i32);
    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    let _ = writer.wait();
    let _ = std::fs::remove_file(&data);
    let _ = common::eventually(Duration::from_secs(5), Duration::from_millis(50), || {
        std::fs::remove_dir(&neighbour).is_ok()
    });
    let Some(output) = output else {
        eprintln!("skipped: the neighbour never took the host's memory PSI full to 15 %");
        return;
    };
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    // The job sleeps: its own PSI is 0 while the host's stood at the moderate level or more.
    assert!(
        err.contains("highest level normal") && err.contains("threads 2 at start, 2 lowest"),
        "host memory PSI full avg10 {during}% at the end:\n{err}"
    );
}

#[test]
fn memory_max_is_enforced_and_the_oom_kill_reported() {
    let own = require_v1!();
    let (output, pid) = run_with_pid(
        resctl()
            .args(["run", "--memory-max", "64M", "--"])
            .arg(example("alloc"))
            .arg("256M"),
    );
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(137), "{err}");
    assert!(err.contains("OOM killer"), "{err}");
    assert!(err.contains("64M"), "{err}");
    assert_no_cgroup_left(&own, pid);
}

#[test]
fn a_thread_aware_pool_finishes_where_the_unmanaged_one_is_killed() {
    let own = require_v1!();
    let (_, pid) = common::pool_unmanaged(common::resctl(), &[]);
    assert_no_cgroup_left(&own, pid);
    let (_, pid) = common::pool_reaching_critical(common::resctl(), &[]);
    assert_no_cgroup_left(&own, pid);
}

#[test]
fn stale_cgroups_of_a_killed_resctl_are_removed_at_the_next_run() {
    let own = require_v1!();
    // pid_max is at most 2^22: this pid cannot be alive.
    let stale = own.join("resctl-99999999");
    let _ = std::fs::create_dir(&stale);
    let _ = std::fs::create_dir(stale.join("job"));
    assert!(stale.is_dir());
    let (output, pid) = run_with_pid(resctl().args(["run", "--", "true"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stale.exists(), "stale {} not removed", stale.display());
    assert_no_cgroup_left(&own, pid);
}

#[test]
fn sigterm_to_resctl_still_removes_the_cgroup() {
    let own = require_v1!();
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let script = format!("touch '{}'; exec sleep 30", ready.display());
    let child = resctl()
        .args(["run", "--", "sh", "-c", &script])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_for_file(&ready, "job never started");
    let pid = child.id();
    assert!(own.join(format!("resctl-{pid}/job")).is_dir());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(128 + 15), "{}", stderr(&output));
    assert_no_cgroup_left(&own, pid);
}

#[test]
fn peaks_between_samples_are_observed_through_the_reset_high_water_mark() {
    require_v1!();
    assert_peak_between_samples_observed(&[]);
}

#[test]
fn page_cache_alone_does_not_raise_the_level() {
    require_v1!();
    assert_page_cache_is_not_pressure(&[]);
}
