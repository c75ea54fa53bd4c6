//! `resctl run` on a real cgroup v2 + systemd + journald host: the VM test bed
//! (`tests/vm/run.sh`). Every test is `#[ignore = "needs VM"]`: plain
//! `cargo test` skips them; the VM runner runs them with `--include-ignored`.

mod common;

use std::path::Path;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use common::{
    assert_page_cache_is_not_pressure, assert_peak_between_samples_observed, bench_of_the_pool,
    example, resctl, run_with_pid, stderr, stdout, vm_cgroup,
};

/// The guest's memory, as the tests of this binary share it: one test puts the whole guest
/// under memory pressure, which must not starve (or be relieved by) the allocations of the
/// others. The VM runner runs one test at a time (`--test-threads=1`); this keeps a run by
/// hand with libtest's default parallel threads correct too.
static GUEST_MEMORY: RwLock<()> = RwLock::new(());

/// A share of the guest for a test that allocates only within its own cgroup.
fn guest_shared() -> RwLockReadGuard<'static, ()> {
    GUEST_MEMORY.read().unwrap_or_else(PoisonError::into_inner)
}

/// The whole guest, for a test that puts the host itself under memory pressure.
fn guest_alone() -> RwLockWriteGuard<'static, ()> {
    GUEST_MEMORY.write().unwrap_or_else(PoisonError::into_inner)
}

/// resctl's placement options for a job under the runner's delegated cgroup.
fn under_test_cgroup() -> Vec<String> {
    vec![
        "--cgroup-parent".to_string(),
        vm_cgroup().display().to_string(),
    ]
}

/// `resctl run OPTIONS -- cat /proc/self/cgroup`, which must succeed: resctl's output and
/// pid, and the job's cgroup v2 path.
fn job_cgroup(options: &[String]) -> (std::process::Output, u32, String) {
    job_cgroup_of(&mut resctl(), options)
}

/// [`job_cgroup`] with a prepared `resctl` command (its environment).
fn job_cgroup_of(
    resctl: &mut std::process::Command,
    options: &[String],
) -> (std::process::Output, u32, String) {
    let (output, pid) =
        run_with_pid(
            resctl
                .arg("run")
                .args(options)
                .args(["--", "cat", "/proc/self/cgroup"]),
        );
    assert!(output.status.success(), "{}", stderr(&output));
    let cgroup_file = stdout(&output);
    let line = cgroup_file
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no v2 line in {cgroup_file}"));
    (output, pid, line)
}

#[test]
#[ignore = "needs VM"]
fn doctor_reports_v2_systemd_and_journald() {
    let _guest = guest_shared();
    vm_cgroup();
    let output = resctl().args(["doctor", "--json"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["layout"], "v2", "{report}");
    assert_eq!(report["systemd"], true, "{report}");
    assert_eq!(report["journald"], true, "{report}");
    assert_eq!(report["psi"], true, "{report}");
    assert!(
        report["plan"].as_str().unwrap().contains("systemd"),
        "{report}"
    );
}

#[test]
#[ignore = "needs VM"]
fn the_job_runs_in_its_own_cgroup_which_is_removed_afterwards() {
    let _guest = guest_shared();
    let parent = vm_cgroup();
    let (_, pid, line) = job_cgroup(&under_test_cgroup());
    assert!(
        line.ends_with(&format!("/tests/resctl-{pid}/job")),
        "job ran in {line}"
    );
    assert!(
        !parent.join(format!("resctl-{pid}")).exists(),
        "cgroup left behind"
    );
}

#[test]
#[ignore = "needs VM"]
fn by_default_the_job_gets_a_delegated_scope_in_resctl_slice() {
    let _guest = guest_shared();
    vm_cgroup();
    let (output, pid, line) = job_cgroup(&[]);
    assert_eq!(
        line,
        format!("/resctl.slice/resctl-{pid}.scope/resctl-{pid}/job"),
        "{}",
        stderr(&output)
    );
    let scope = Path::new("/sys/fs/cgroup/resctl.slice").join(format!("resctl-{pid}.scope"));
    let collected = common::eventually(Duration::from_secs(10), Duration::from_millis(100), || {
        !scope.exists()
    });
    assert!(collected, "systemd did not collect {}", scope.display());
}

#[test]
#[ignore = "needs VM"]
fn the_scope_is_asked_for_over_dbus_and_systemd_run_is_the_fallback_without_a_bus() {
    let _guest = guest_shared();
    vm_cgroup();
    let scope_of = |pid: u32| format!("/resctl.slice/resctl-{pid}.scope/resctl-{pid}/job");
    let (output, pid, line) = job_cgroup_of(resctl().env("RESCTL_LOG", "resctl=debug"), &[]);
    assert_eq!(line, scope_of(pid), "{}", stderr(&output));
    assert!(
        !stderr(&output).contains("systemd-run"),
        "the bus was there, yet: {}",
        stderr(&output)
    );
    let (output, pid, line) = job_cgroup_of(
        resctl()
            .env("RESCTL_LOG", "resctl=debug")
            .env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus"),
        &[],
    );
    assert_eq!(line, scope_of(pid), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("creating the scope with systemd-run"),
        "{}",
        stderr(&output)
    );
}

#[test]
#[ignore = "needs VM"]
fn slice_puts_the_scope_under_that_slice() {
    let _guest = guest_shared();
    vm_cgroup();
    let (_, pid, line) = job_cgroup(&["--slice".to_string(), "resctl-vmtest.slice".to_string()]);
    assert!(
        line.starts_with(&format!(
            "/resctl.slice/resctl-vmtest.slice/resctl-{pid}.scope/"
        )) || line.starts_with(&format!("/resctl-vmtest.slice/resctl-{pid}.scope/")),
        "{line}"
    );
}

#[test]
#[ignore = "needs VM"]
fn memory_max_makes_the_kernel_oom_kill_and_the_summary_says_so() {
    let _guest = guest_shared();
    let parent = vm_cgroup();
    let (output, pid) = run_with_pid(
        resctl()
            .arg("run")
            .args(under_test_cgroup())
            .args(["--memory-max", "32M", "--"])
            .arg(example("alloc"))
            .arg("96M"),
    );
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(137), "{err}");
    assert!(err.contains("OOM killer"), "{err}");
    assert!(err.contains("32M"), "{err}");
    assert!(!parent.join(format!("resctl-{pid}")).exists());
}

#[test]
#[ignore = "needs VM"]
fn memory_high_throttles_instead_of_killing() {
    let _guest = guest_shared();
    let parent = vm_cgroup();
    // Page cache over memory.high is reclaimed (and the job throttled) rather than
    // killed. The job writes and reads a file larger than the limit itself, so the
    // pages are charged to its cgroup.
    // /var/tmp: on disk (never tmpfs), so the pages are reclaimable page cache.
    let data = std::path::Path::new("/var/tmp").join(format!("resctl-high-{}", std::process::id()));
    let (output, pid) = run_with_pid(
        resctl()
            .arg("run")
            .args(under_test_cgroup())
            .args(["--memory-high", "16M", "--interval", "200ms", "--"])
            .args(["sh", "-c"])
            .arg(format!(
                "dd if=/dev/zero of='{0}' bs=1M count=48 2>/dev/null && sync && cat '{0}' > /dev/null && \
                 grep high \"/sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup)/memory.events\"",
                data.display()
            )),
    );
    let _ = std::fs::remove_file(&data);
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    let high_events: u64 = stdout(&output)
        .lines()
        .find_map(|l| l.strip_prefix("high "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no high line in {}", stdout(&output)));
    assert!(high_events > 0, "memory.events high = 0\n{err}");
    assert!(!parent.join(format!("resctl-{pid}")).exists());
}

#[test]
#[ignore = "needs VM"]
fn critical_drops_the_thread_file_to_one_and_the_pool_finishes() {
    let _guest = guest_shared();
    let parent = vm_cgroup();
    let placement = under_test_cgroup();
    let (_, pid) = common::pool_unmanaged(common::resctl(), &placement);
    assert!(!parent.join(format!("resctl-{pid}")).exists());
    let (_, pid) = common::pool_reaching_critical(common::resctl(), &placement);
    assert!(!parent.join(format!("resctl-{pid}")).exists());
}

#[test]
#[ignore = "needs VM"]
fn journald_gets_the_runs_messages_with_resctl_fields() {
    let _guest = guest_shared();
    vm_cgroup();
    let unit = format!("resctl-journal-{}", std::process::id());
    let status = std::process::Command::new("systemd-run")
        .args(["--wait", "--collect", "--quiet", "--unit", &unit])
        .args([
            "--property=StandardError=journal",
            "--setenv=RESCTL_NO_HISTORY=1",
            "--",
        ])
        .arg(common::resctl_bin())
        .args(["run", "--monitor-only", "--", "true"])
        .status()
        .unwrap();
    assert!(status.success());
    let mut text = String::new();
    let mut entries: Vec<serde_json::Value> = Vec::new();
    let logged = common::eventually(Duration::from_secs(20), Duration::from_millis(500), || {
        let output = std::process::Command::new("journalctl")
            .args(["--no-pager", "-o", "json", "-t", "resctl"])
            .arg(format!("_SYSTEMD_UNIT={unit}.service"))
            .output()
            .unwrap();
        text = stdout(&output);
        entries = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let has = |action: &str| entries.iter().any(|e| e["RESCTL_ACTION"] == action);
        has("start") && has("summary")
    });
    assert!(
        logged,
        "no resctl start/summary entries for {unit}:\n{text}"
    );
    let find = |action: &str| entries.iter().find(|e| e["RESCTL_ACTION"] == action);
    let start = find("start").expect("found above");
    let summary = find("summary").expect("found above");
    assert_eq!(
        start["RESCTL_THREADS"]
            .as_str()
            .map(|t| t.parse::<u32>().is_ok()),
        Some(true),
        "{start}"
    );
    assert!(start.get("RESCTL_CGROUP").is_some(), "{start}");
    assert_eq!(summary["RESCTL_LEVEL"], "normal", "{summary}");
    assert_eq!(start["SYSLOG_IDENTIFIER"], "resctl");
}

#[test]
#[ignore = "needs VM"]
fn bench_sweeps_static_counts_in_their_own_scopes_and_recommends_what_fits() {
    let _guest = guest_shared();
    vm_cgroup();
    bench_of_the_pool(resctl(), &[]);
}

#[test]
#[ignore = "needs VM"]
fn peaks_between_samples_are_observed_through_memory_peak() {
    let _guest = guest_shared();
    assert_peak_between_samples_observed(&under_test_cgroup());
}

#[test]
#[ignore = "needs VM"]
fn page_cache_alone_does_not_raise_the_level() {
    let _guest = guest_shared();
    assert_page_cache_is_not_pressure(&under_test_cgroup());
}

/// The resctl entries of a unit in the journal (JSON objects).
fn journal_entries(unit: &str) -> Vec<serde_json::Value> {
    let output = std::process::Command::new("journalctl")
        .args(["--no-pager", "-o", "json", "-t", "resctl"])
        .arg(format!("_SYSTEMD_UNIT={unit}.service"))
        .output()
        .unwrap();
    stdout(&output)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
#[ignore = "needs VM"]
fn journald_stopped_and_restarted_during_a_run_costs_neither_the_run_nor_later_entries() {
    let _guest = guest_shared();
    vm_cgroup();
    let unit = format!("resctl-journal-restart-{}", std::process::id());
    let script = format!(
        "sleep 4; '{}' 24M --hold 2s 2>/dev/null; exit 5",
        example("alloc").display()
    );
    let mut run = std::process::Command::new("systemd-run")
        .args(["--wait", "--collect", "--quiet", "--unit", &unit])
        .args([
            "--property=StandardError=journal",
            "--setenv=RESCTL_NO_HISTORY=1",
            "--",
        ])
        .arg(common::resctl_bin())
        .arg("run")
        .args(common::SMALL_LEVELS)
        .args(["--interval", "500ms"])
        .args(["--", "sh", "-c"])
        .arg(&script)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let systemctl = |args: &[&str]| {
        let status = std::process::Command::new("systemctl")
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "systemctl {args:?}");
    };
    // Down (sockets included, so nothing re-activates it) while resctl logs on, then back.
    systemctl(&[
        "stop",
        "systemd-journald.service",
        "systemd-journald.socket",
        "systemd-journald-dev-log.socket",
    ]);
    std::thread::sleep(Duration::from_secs(2));
    systemctl(&[
        "start",
        "systemd-journald.socket",
        "systemd-journald-dev-log.socket",
        "systemd-journald.service",
    ]);
    let status = run.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(5),
        "the job's exit status passed through"
    );
    let mut entries = Vec::new();
    let logged = common::eventually(Duration::from_secs(20), Duration::from_millis(500), || {
        entries = journal_entries(&unit);
        let decided = entries.iter().any(|e| e["RESCTL_ACTION"] == "threads");
        let summary = entries.iter().any(|e| e["RESCTL_ACTION"] == "summary");
        decided && summary
    });
    assert!(
        logged,
        "entries after journald came back are missing: {entries:?}"
    );
}

#[test]
#[ignore = "needs VM"]
fn under_host_wide_memory_pressure_resctl_still_decides_within_two_intervals() {
    let _guest = guest_alone();
    let parent = vm_cgroup();
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.jsonl");
    // A hog outside resctl takes most of the guest's memory, so the kernel reclaims
    // everything it can (resctl's own pages are locked); meanwhile the job crosses critical.
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let available_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let hog_mib = available_kib / 1024 * 85 / 100 - 200;
    let hog_cgroup = parent.join(format!("hog-{}", std::process::id()));
    std::fs::create_dir(&hog_cgroup).unwrap();
    let mut hog = std::process::Command::new(example("alloc"))
        .arg(format!("{hog_mib}M"))
        .args(["--hold", "25s"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::fs::write(hog_cgroup.join("cgroup.procs"), hog.id().to_string()).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let script = format!(
        "sleep 3; '{}' 200M --hold 3s 2>/dev/null",
        example("alloc").display()
    );
    let (output, _) = run_with_pid(
        resctl()
            .arg("run")
            .args(under_test_cgroup())
            .args(["--memory-max", "220M", "--threads", "4", "--interval", "1s"])
            .arg("--record")
            .arg(&trace)
            .args(["--", "sh", "-c"])
            .arg(&script),
    );
    let _ = hog.kill();
    let _ = hog.wait();
    let _ = std::fs::remove_dir(&hog_cgroup);
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    // The count may step down at high first when the allocation is slowed by the host's
    // reclaim; what matters is that critical was acted on: sequential, whatever came before.
    assert!(
        err.lines()
            .any(|line| line.contains(" -> 1: ") && line.contains("sequential fallback")),
        "critical was acted on: {err}"
    );
    let ticks: Vec<f64> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["kind"] == "tick")
        .filter_map(|line| line["observation"]["at"].as_f64())
        .collect();
    let gaps: Vec<f64> = ticks.windows(2).map(|pair| pair[1] - pair[0]).collect();
    let longest = gaps.iter().copied().fold(0.0, f64::max);
    assert!(
        longest <= 2.0,
        "a decision came more than two intervals after the one before ({longest:.2} s): {ticks:?}"
    );
}
