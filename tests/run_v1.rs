//! `resctl run` on this hybrid host's real v1 memory controller (the
//! development and CI machines): the kernel enforces the limit, resctl keeps a
//! thread-aware job inside it, and no cgroup is left behind.

mod common;

use std::path::Path;

use common::{
    assert_page_cache_is_not_pressure, assert_peak_between_samples_observed, example, resctl,
    run_with_pid, stderr, stdout,
};

fn assert_no_cgroup_left(own: &Path, resctl_pid: u32) {
    let dir = own.join(format!("resctl-{resctl_pid}"));
    assert!(!dir.exists(), "{} was left behind", dir.display());
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
