//! `resctl daemon` as the systemd service `systemd/resctl.service` on a real cgroup v2 +
//! systemd + journald host: the VM test bed (`tests/vm/run.sh`). Every test is
//! `#[ignore = "needs VM"]`; the VM runner runs them with `--include-ignored`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{example, resctl_bin, stdout, vm_cgroup};

const SLICE: &str = "resctl-vmd.slice";
const CONFIG: &str = "/run/resctl-vmd/resctl.yaml";
const UNIT_DIR: &str = "/run/systemd/system";

/// A configuration whose one slice has a 300M budget and its levels in bytes.
fn good_config() -> String {
    format!(
        "interval: 500ms\ngrace: 1s\nslices:\n  {SLICE}:\n    limits: {{ memory_max: 300M }}\n    \
         memory: {{ moderate: 40M, high: 60M, critical: 250M }}\n"
    )
}

fn systemctl(args: &[&str]) -> std::process::Output {
    Command::new("systemctl").args(args).output().unwrap()
}

fn show(unit: &str, property: &str) -> String {
    let output = systemctl(&["show", "-P", property, unit]);
    stdout(&output).trim().to_owned()
}

/// Installs the shipped unit under /run with a drop-in that runs the binary under test
/// with the test's configuration (and a short watchdog), and starts it.
fn start_daemon(config: &str) {
    start_daemon_with(config, "", "");
}

/// [`start_daemon`] with more daemon arguments and more `[Service]` lines in the drop-in.
fn start_daemon_with(config: &str, arguments: &str, service: &str) {
    std::fs::create_dir_all(Path::new(CONFIG).parent().unwrap()).unwrap();
    std::fs::write(CONFIG, config).unwrap();
    let unit = include_str!("../systemd/resctl.service");
    std::fs::write(Path::new(UNIT_DIR).join("resctl.service"), unit).unwrap();
    let dropin = Path::new(UNIT_DIR).join("resctl.service.d");
    std::fs::create_dir_all(&dropin).unwrap();
    std::fs::write(
        dropin.join("test.conf"),
        format!(
            "[Service]\nExecStart=\nExecStart={} daemon --config {CONFIG} {arguments}\n\
             WatchdogSec=4s\nRestart=no\n{service}",
            resctl_bin().display()
        ),
    )
    .unwrap();
    assert!(systemctl(&["daemon-reload"]).status.success());
    let started = systemctl(&["start", "resctl.service"]);
    assert!(
        started.status.success(),
        "systemctl start: {}\n{}",
        String::from_utf8_lossy(&started.stderr),
        daemon_log()
    );
}

fn stop_daemon() {
    let _ = systemctl(&["stop", "resctl.service"]);
    let _ = systemctl(&["reset-failed", "resctl.service"]);
}

/// Asks journald to write out what it holds (it may lag seconds behind under load), so a
/// read that follows sees every entry sent before.
fn journal_sync() {
    let _ = Command::new("journalctl").arg("--sync").status();
}

/// `journalctl -u UNIT -o FORMAT`, after [`journal_sync`].
fn unit_journal(unit: &str, format: &str) -> String {
    journal_sync();
    let output = Command::new("journalctl")
        .args(["--no-pager", "-o", format, "-u", unit])
        .output()
        .unwrap();
    stdout(&output)
}

fn daemon_log() -> String {
    unit_journal("resctl.service", "cat")
}

fn daemon_entries() -> Vec<serde_json::Value> {
    unit_journal("resctl.service", "json")
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// Waits up to `seconds` for `check`, asking every 200 ms (each ask may start systemctl).
fn wait_for(seconds: u64, check: impl FnMut() -> bool) -> bool {
    common::eventually(
        Duration::from_secs(seconds),
        Duration::from_millis(200),
        check,
    )
}

#[test]
#[ignore = "needs VM"]
fn the_daemon_is_ready_through_notify_holds_the_slice_budget_and_logs_levels() {
    vm_cgroup();
    stop_daemon();
    start_daemon(&good_config());
    assert_eq!(show("resctl.service", "ActiveState"), "active");
    let status = show("resctl.service", "StatusText");
    assert!(status.contains(SLICE), "STATUS= {status:?}");
    // The slice's budget is held through systemd: a runtime MemoryMax=.
    assert!(
        wait_for(10, || show(SLICE, "MemoryMax")
            == (300u64 << 20).to_string()),
        "MemoryMax={} {}",
        show(SLICE, "MemoryMax"),
        daemon_log()
    );
    // A pool of 3 × 30M in the slice passes its high level (60M): one entry with the fields.
    let pool = Command::new("systemd-run")
        .args(["--scope", "--quiet", &format!("--slice={SLICE}")])
        .arg(example("worker_pool"))
        .args([
            "--tasks",
            "12",
            "--task-memory",
            "30M",
            "--task-time",
            "1s",
            "--workers",
            "3",
            "--ignore-file",
        ])
        .output()
        .unwrap();
    assert!(pool.status.success(), "{pool:?}");
    let high = wait_for(30, || {
        daemon_entries().iter().any(|entry| {
            entry["RESCTL_SLICE"] == SLICE
                && entry["RESCTL_ACTION"] == "level"
                && entry["RESCTL_LEVEL"] == "high"
                && entry["RESCTL_CGROUP"]
                    .as_str()
                    .is_some_and(|c| c.ends_with(SLICE))
                && entry["RESCTL_REASON"]
                    .as_str()
                    .is_some_and(|r| r.contains("of the 300M limit"))
        })
    });
    assert!(high, "no 'high' entry for {SLICE}:\n{}", daemon_log());
    // One entry per decision, not per sample: far fewer level entries than samples.
    let levels = daemon_entries()
        .iter()
        .filter(|entry| entry["RESCTL_ACTION"] == "level" && entry["RESCTL_SLICE"] == SLICE)
        .count();
    assert!((1..=6).contains(&levels), "{levels} level entries");
    stop_daemon();
}

#[test]
#[ignore = "needs VM"]
fn sighup_refuses_an_invalid_config_with_its_position_and_gives_removed_slices_their_values() {
    vm_cgroup();
    stop_daemon();
    start_daemon(&good_config());
    assert!(wait_for(10, || show(SLICE, "MemoryMax")
        == (300u64 << 20).to_string()));
    let pid = show("resctl.service", "MainPID");
    // An invalid file: the daemon stays up on the old one and says where.
    std::fs::write(CONFIG, "interval: 500ms\nslices:\n  bad: [\n").unwrap();
    assert!(systemctl(&["reload", "resctl.service"]).status.success());
    assert!(
        wait_for(10, || daemon_log().contains("reload refused")),
        "{}",
        daemon_log()
    );
    let log = daemon_log();
    assert!(
        log.contains(&format!("{CONFIG}:")),
        "no FILE:LINE:COL in {log}"
    );
    assert_eq!(show("resctl.service", "ActiveState"), "active");
    assert_eq!(
        show("resctl.service", "MainPID"),
        pid,
        "the daemon restarted"
    );
    assert_eq!(show(SLICE, "MemoryMax"), (300u64 << 20).to_string());
    // The slice leaves the configuration: its own value (infinity) comes back.
    std::fs::write(CONFIG, "interval: 500ms\n").unwrap();
    assert!(systemctl(&["reload", "resctl.service"]).status.success());
    assert!(
        wait_for(10, || show(SLICE, "MemoryMax") == "infinity"),
        "MemoryMax={}\n{}",
        show(SLICE, "MemoryMax"),
        daemon_log()
    );
    assert!(
        daemon_log().contains("given back its own"),
        "{}",
        daemon_log()
    );
    stop_daemon();
}

#[test]
#[ignore = "needs VM"]
fn a_stopped_sampling_loop_is_caught_by_systemds_watchdog() {
    vm_cgroup();
    stop_daemon();
    start_daemon(&good_config());
    let pid = show("resctl.service", "MainPID");
    let stopped = Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    assert!(stopped.success());
    // WatchdogSec=4s in the test's drop-in: systemd kills the service (SIGABRT) once the
    // pings stop.
    let caught = wait_for(20, || {
        show("resctl.service", "Result") == "watchdog" || daemon_journal_has("Watchdog timeout")
    });
    assert!(caught, "Result={}", show("resctl.service", "Result"));
    stop_daemon();
}

fn daemon_journal_has(text: &str) -> bool {
    daemon_log().contains(text)
}

#[test]
#[ignore = "needs VM"]
fn the_units_verify_and_the_service_is_hardened() {
    vm_cgroup();
    let scratch = PathBuf::from("/run/resctl-vmd/verify");
    std::fs::create_dir_all(&scratch).unwrap();
    // The shipped ExecStart= points at the installed binary; verify the units as installed,
    // with the binary under test in its place.
    for (name, text) in [
        ("resctl.service", include_str!("../systemd/resctl.service")),
        ("resctl.slice", include_str!("../systemd/resctl.slice")),
        (
            "pipelines.slice",
            include_str!("../systemd/pipelines.slice"),
        ),
    ] {
        let text = text.replace("/usr/bin/resctl", &resctl_bin().display().to_string());
        std::fs::write(scratch.join(name), text).unwrap();
    }
    for name in ["resctl.service", "resctl.slice", "pipelines.slice"] {
        let verify = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(scratch.join(name))
            .output()
            .unwrap();
        let complaints = String::from_utf8_lossy(&verify.stderr);
        assert!(
            verify.status.success() && !complaints.contains(name),
            "systemd-analyze verify {name}: {complaints}"
        );
    }
    let security = Command::new("systemd-analyze")
        .args(["security", "--no-pager", "--offline=yes"])
        .arg(scratch.join("resctl.service"))
        .output()
        .unwrap();
    let text = stdout(&security);
    let exposure = text
        .lines()
        .find_map(|line| line.split("Overall exposure level for ").nth(1))
        .and_then(|rest| rest.split(':').nth(1))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|value| value.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no exposure level in {text}"));
    // The figure goes back with the run's results (share/results/) for the closing note.
    if let Some(share) = std::env::var_os("RESCTL_SHARE") {
        let _ = std::fs::write(
            PathBuf::from(share).join("results/systemd-analyze-security.txt"),
            &text,
        );
    }
    assert!(exposure <= 2.5, "exposure {exposure}:\n{text}");
}

/// Removes a file or folder the test created when the test ends, passed or not, so that the
/// test binaries after it (vm_package installs /etc/resctl as a package's conffile) find the
/// image as it was.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if self.0.is_dir() {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[test]
#[ignore = "needs VM"]
fn the_job_unit_runs_resctl_and_the_job_without_root_and_is_active_once_the_job_runs() {
    vm_cgroup();
    let unit = "resctl-job@vmtest.service";
    let _ = systemctl(&["stop", unit]);
    let created_etc = !Path::new("/etc/resctl").exists();
    let _cleanup = RemoveOnDrop(if created_etc {
        PathBuf::from("/etc/resctl")
    } else {
        PathBuf::from("/etc/resctl/jobs/vmtest")
    });
    std::fs::create_dir_all("/etc/resctl/jobs").unwrap();
    let script = Path::new("/etc/resctl/jobs/vmtest");
    std::fs::write(
        script,
        "#!/bin/sh\necho \"job uid $(id -u) in $(cat /proc/self/cgroup) at $(pwd)\"\nsleep 4\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(script, std::fs::Permissions::from_mode(0o755)).unwrap();
    if !Path::new("/etc/resctl/resctl.yaml").exists() {
        std::fs::write("/etc/resctl/resctl.yaml", "interval: 500ms\n").unwrap();
    }
    std::fs::write(
        Path::new(UNIT_DIR).join("resctl-job@.service"),
        include_str!("../systemd/resctl-job@.service"),
    )
    .unwrap();
    let dropin = Path::new(UNIT_DIR).join("resctl-job@.service.d");
    std::fs::create_dir_all(&dropin).unwrap();
    std::fs::write(
        dropin.join("test.conf"),
        format!(
            "[Service]\nExecStart=\nExecStart={} run --config /etc/resctl/resctl.yaml -- \
             /etc/resctl/jobs/%i\n",
            resctl_bin().display()
        ),
    )
    .unwrap();
    assert!(systemctl(&["daemon-reload"]).status.success());
    // Type=notify: `systemctl start` returns once resctl said READY=1, with the job running.
    let started = systemctl(&["start", unit]);
    let log = || unit_journal(unit, "cat");
    assert!(
        started.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&started.stderr),
        log()
    );
    assert_eq!(show(unit, "ActiveState"), "active", "{}", log());
    assert!(
        wait_for(5, || show(unit, "StatusText").contains(" threads, memory ")),
        "StatusText={:?}",
        show(unit, "StatusText")
    );
    assert!(
        wait_for(30, || show(unit, "ActiveState") == "inactive"),
        "{}",
        log()
    );
    assert_eq!(show(unit, "Result"), "success", "{}", log());
    let text = log();
    let line = text
        .lines()
        .find(|line| line.starts_with("job uid "))
        .unwrap_or_else(|| panic!("no job output in {text}"));
    let uid: u32 = line
        .split_whitespace()
        .nth(2)
        .and_then(|uid| uid.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert_ne!(uid, 0, "the job ran as root: {line}");
    assert!(
        line.contains("/resctl.slice/resctl-job@vmtest.service/resctl-")
            && line.contains("/job at /var/lib/")
            && line.ends_with("resctl-job/vmtest"),
        "{line}"
    );
    // The unit's exposure, reported with the service's (an instance: a template is not
    // analysed).
    let scratch = PathBuf::from("/run/resctl-vmd/verify");
    std::fs::create_dir_all(&scratch).unwrap();
    let instance = scratch.join("resctl-job@vmtest.service");
    std::fs::write(
        &instance,
        include_str!("../systemd/resctl-job@.service")
            .replace("/usr/bin/resctl", &resctl_bin().display().to_string()),
    )
    .unwrap();
    let security = Command::new("systemd-analyze")
        .args(["security", "--no-pager", "--offline=yes"])
        .arg(&instance)
        .output()
        .unwrap();
    if let Some(share) = std::env::var_os("RESCTL_SHARE") {
        let _ = std::fs::write(
            PathBuf::from(share).join("results/systemd-analyze-security-job.txt"),
            &security.stdout,
        );
    }
}

/// `GET /metrics` from `address`: the whole reply.
fn scrape(address: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(address) else {
        return String::new();
    };
    let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply
}

#[test]
#[ignore = "needs VM"]
fn the_slices_figures_are_served_and_written_as_openmetrics_through_the_documented_drop_in() {
    vm_cgroup();
    stop_daemon();
    let address = "127.0.0.1:9477";
    let textfile = "/run/resctl/resctl.prom";
    // What the unit file's comment says a metrics drop-in needs.
    start_daemon_with(
        &good_config(),
        &format!("--metrics-listen {address} --metrics-textfile {textfile}"),
        "PrivateNetwork=no\nRestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\nIPAddressDeny=\n\
         IPAddressAllow=localhost\n",
    );
    // 50M in the slice: its cgroup exists, and it passes moderate (40M) but not high (60M).
    let started = Command::new("systemd-run")
        .args([
            "--quiet",
            "--unit=resctl-vmd-holder",
            &format!("--slice={SLICE}"),
        ])
        .arg(example("alloc"))
        .args(["50M", "--hold", "60s"])
        .output()
        .unwrap();
    assert!(started.status.success(), "{started:?}");
    let limit_line = format!(
        "resctl_memory_limit_bytes{{kind=\"slice\",name=\"{SLICE}\"}} {}",
        300u64 << 20
    );
    let moderate = format!("resctl_level{{kind=\"slice\",name=\"{SLICE}\"}} 1");
    let served = wait_for(30, || {
        let reply = scrape(address);
        reply.contains(&limit_line) && reply.contains(&moderate)
    });
    let reply = scrape(address);
    // `resctl status` lists the slice from the daemon's status file.
    let listed = Command::new(resctl_bin())
        .args(["status", "--json"])
        .env_remove("RESCTL_SOCKET")
        .output()
        .unwrap();
    let table = Command::new(resctl_bin())
        .arg("status")
        .env_remove("RESCTL_SOCKET")
        .output()
        .unwrap();
    let _ = systemctl(&["stop", "resctl-vmd-holder.service"]);
    assert!(served, "no {limit_line:?} in:\n{reply}\n{}", daemon_log());
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    assert!(reply.contains("application/openmetrics-text"), "{reply}");
    for series in [
        format!("resctl_actions_total{{kind=\"slice\",name=\"{SLICE}\",action=\"level\"}} 1"),
        "resctl_cpu_seconds_total ".to_owned(),
        "resctl_sample_duration_seconds ".to_owned(),
    ] {
        assert!(reply.contains(&series), "no {series:?} in:\n{reply}");
    }
    assert!(reply.contains(&format!(
        "resctl_memory_bytes{{kind=\"slice\",name=\"{SLICE}\"}} "
    )));
    let written = std::fs::read_to_string(textfile).unwrap_or_default();
    assert!(written.contains(&limit_line), "{textfile}:\n{written}");
    assert!(written.ends_with("# EOF\n"), "{written}");
    let overview: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let slice = &overview["daemon"]["slices"][0];
    assert_eq!(slice["name"], SLICE, "{overview}");
    assert_eq!(slice["active"], true, "{overview}");
    assert_eq!(slice["level"], "moderate", "{overview}");
    assert_eq!(slice["limit"], 300u64 << 20, "{overview}");
    assert_eq!(overview["daemon"]["stale"], false, "{overview}");
    // The last action is the level change, or the reclaim that moderate starts when the
    // daemon got to it before the table was drawn.
    let table = stdout(&table);
    assert!(
        table.lines().any(|line| line.starts_with(SLICE)
            && line.contains("moderate")
            && line.contains("300M")
            && (line.contains("level normal -> moderate") || line.contains(" reclaim "))),
        "{table}"
    );
    stop_daemon();
    // Stopped: its status file is gone, and `resctl status` says so.
    let after = Command::new(resctl_bin())
        .arg("status")
        .env_remove("RESCTL_SOCKET")
        .output()
        .unwrap();
    assert!(
        stdout(&after).contains("resctl daemon is not running here"),
        "{}",
        stdout(&after)
    );
}

const JOBS_SLICE: &str = "resctl-vmj.slice";

/// A slice for registered jobs: levels in bytes, a hard limit far above them (the kernel
/// never has to kill), a short interval.
fn jobs_config() -> String {
    jobs_config_with("")
}

/// [`jobs_config`] with more lines (indented by four) in the slice's section.
fn jobs_config_with(slice_lines: &str) -> String {
    format!(
        "interval: 500ms\ngrace: 1s\nslices:\n  {JOBS_SLICE}:\n    limits: {{ memory_max: 700M }}\n    \
         memory: {{ moderate: 100M, high: 130M, critical: 200M }}\n{slice_lines}"
    )
}

/// `resctl run --slice JOBS_SLICE ARGS -- COMMAND...`, started in the background.
fn run_in_jobs_slice(args: &[&str], command: &[String]) -> std::process::Child {
    Command::new(resctl_bin())
        .args(["run", "--slice", JOBS_SLICE, "--interval", "500ms"])
        .args(args)
        .arg("--")
        .args(command)
        .env("RESCTL_NO_HISTORY", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// The running daemon's journal entries for JOBS_SLICE with this RESCTL_ACTION (its own
/// `_PID`: not those of the daemons earlier tests started in the same boot).
fn job_actions(action: &str) -> Vec<serde_json::Value> {
    let pid = show("resctl.service", "MainPID");
    daemon_entries()
        .into_iter()
        .filter(|entry| {
            entry["_PID"] == pid.as_str()
                && entry["RESCTL_SLICE"] == JOBS_SLICE
                && entry["RESCTL_ACTION"] == action
        })
        .collect()
}

#[test]
#[ignore = "needs VM"]
fn a_slice_at_high_shrinks_its_largest_job_and_lets_it_grow_back_when_calm() {
    vm_cgroup();
    stop_daemon();
    start_daemon(&jobs_config());
    // 4 workers of 40M: 160M, over the slice's high level (130M); the job's own levels
    // (shares of the slice's 700M) never see it.
    let pool: Vec<String> = [
        example("worker_pool").display().to_string(),
        "--tasks".into(),
        "70".into(),
        "--task-memory".into(),
        "40M".into(),
        "--task-time".into(),
        "1s".into(),
    ]
    .into();
    let job = run_in_jobs_slice(
        &[
            "--threads",
            "4",
            "--min-threads",
            "1",
            "--max-threads",
            "4",
            "--job-key",
            "pool",
        ],
        &pool,
    );
    let output = job.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{err}");
    let shrunk = job_actions("ceiling");
    let first = shrunk.first().unwrap_or_else(|| {
        panic!(
            "no ceiling entry for {JOBS_SLICE}:\n{}\n{err}",
            daemon_log()
        )
    });
    let reason = first["RESCTL_REASON"].as_str().unwrap_or("");
    assert!(
        reason.contains("at high")
            && (reason.contains("pool is the largest job")
                || reason.contains("pool is the fastest-growing job")),
        "{first}"
    );
    assert!(
        first["RESCTL_CGROUP"]
            .as_str()
            .is_some_and(|cgroup| cgroup.contains(JOBS_SLICE)),
        "{first}"
    );
    // The job's own resctl took the ceiling, with the daemon's reason.
    assert!(
        err.contains(&format!(
            "threads 4 -> 3: slice {JOBS_SLICE} at high: pool is the"
        )),
        "{err}"
    );
    // Grown back once the slice was calm: a ceiling raised or lifted.
    let grew = shrunk.iter().any(|entry| {
        entry["RESCTL_REASON"]
            .as_str()
            .is_some_and(|reason| reason.contains("normal for 10s"))
    }) || !job_actions("ceiling-lifted").is_empty();
    assert!(grew, "never grown back:\n{}\n{err}", daemon_log());
    stop_daemon();
}

/// Two jobs of 100M at one worker in JOBS_SLICE: `low` (priority 0) holding its memory for
/// `low_hold`, `high` (priority 5) for `high_hold`. With their resctls they are over
/// critical (200M), and neither can shrink below 1 worker. Their outputs, low's first.
fn low_and_high_priority_jobs(
    low_hold: &str,
    high_hold: &str,
) -> (std::process::Output, std::process::Output) {
    let alloc = |hold: &str| -> Vec<String> {
        vec![
            example("alloc").display().to_string(),
            "100M".into(),
            "--hold".into(),
            hold.into(),
        ]
    };
    let sequential = ["--threads", "1", "--max-threads", "1"];
    let low = run_in_jobs_slice(
        &[&sequential[..], &["--priority", "0", "--job-key", "low"]].concat(),
        &alloc(low_hold),
    );
    let high = run_in_jobs_slice(
        &[&sequential[..], &["--priority", "5", "--job-key", "high"]].concat(),
        &alloc(high_hold),
    );
    let high = high.wait_with_output().unwrap();
    let low = low.wait_with_output().unwrap();
    (low, high)
}

#[test]
#[ignore = "needs VM"]
fn at_critical_with_no_job_left_to_shrink_the_lowest_priority_job_is_frozen_and_thawed_later() {
    vm_cgroup();
    stop_daemon();
    start_daemon(&jobs_config());
    // Once the high one ends, the frozen one and its resctl are well below high.
    let (low, high) = low_and_high_priority_jobs("25s", "10s");
    assert!(
        high.status.success(),
        "{}",
        String::from_utf8_lossy(&high.stderr)
    );
    assert!(
        low.status.success(),
        "{}",
        String::from_utf8_lossy(&low.stderr)
    );
    let frozen = job_actions("freeze");
    assert_eq!(frozen.len(), 1, "{frozen:?}\n{}", daemon_log());
    let reason = frozen[0]["RESCTL_REASON"].as_str().unwrap_or("");
    assert!(
        reason.contains("at critical") && reason.contains("low (priority 0"),
        "{reason}"
    );
    // The high-priority job ended; the slice fell below high; the frozen one resumed.
    let thawed = job_actions("thaw");
    assert_eq!(thawed.len(), 1, "{thawed:?}\n{}", daemon_log());
    assert_eq!(thawed[0]["RESCTL_CGROUP"], frozen[0]["RESCTL_CGROUP"]);
    // The job's own resctl was told, and said so in its log.
    let low_err = String::from_utf8_lossy(&low.stderr);
    assert!(
        low_err.contains("resctl daemon: freeze: ") && low_err.contains("resctl daemon: thaw: "),
        "{low_err}"
    );
    // The default last resort: nothing killed, nothing said about killing.
    assert!(job_actions("kill").is_empty(), "{}", daemon_log());
    assert!(job_actions("last-resort").is_empty(), "{}", daemon_log());
    stop_daemon();
}

/// journald's receive time of an entry, microseconds.
fn entry_time(entry: &serde_json::Value) -> u64 {
    entry["__REALTIME_TIMESTAMP"]
        .as_str()
        .and_then(|micros| micros.parse().ok())
        .unwrap_or_else(|| panic!("no __REALTIME_TIMESTAMP in {entry}"))
}

#[test]
#[ignore = "needs VM"]
fn with_last_resort_kill_the_frozen_job_is_killed_once_critical_lasted_kill_after_and_said_so() {
    vm_cgroup();
    stop_daemon();
    let textfile = "/run/resctl/resctl-kill.prom";
    start_daemon_with(
        &jobs_config_with("    last_resort: kill\n    kill_after: 5s\n"),
        &format!("--metrics-textfile {textfile}"),
        "",
    );
    // Said at start, with where the file says so.
    let said = job_actions("last-resort");
    assert_eq!(said.len(), 1, "{said:?}\n{}", daemon_log());
    let message = said[0]["MESSAGE"].as_str().unwrap_or("");
    assert!(
        message.contains(&format!("last resort is kill, configured at {CONFIG}:7:5"))
            && message.contains(&format!(
                "5s longer (kill_after: configured at {CONFIG}:8:5"
            )),
        "{message}"
    );
    // As in the freeze test, but the slice stays at critical well past kill_after: the
    // high-priority job holds its 100M for 30 s, the low one would for 60 s.
    let (low, high) = low_and_high_priority_jobs("60s", "30s");
    let low_err = String::from_utf8_lossy(&low.stderr).into_owned();
    assert!(
        high.status.success(),
        "{}",
        String::from_utf8_lossy(&high.stderr)
    );
    // The low one was killed (SIGKILL: 128 + 9, as a shell says), not left to its end.
    assert_eq!(low.status.code(), Some(137), "{low_err}\n{}", daemon_log());
    let frozen = job_actions("freeze");
    assert_eq!(frozen.len(), 1, "{frozen:?}\n{}", daemon_log());
    let killed = job_actions("kill");
    assert_eq!(killed.len(), 1, "{killed:?}\n{}", daemon_log());
    let kill = &killed[0];
    assert_eq!(kill["RESCTL_CGROUP"], frozen[0]["RESCTL_CGROUP"]);
    assert_eq!(kill["RESCTL_LEVEL"], "critical", "{kill}");
    let reason = kill["RESCTL_REASON"].as_str().unwrap_or("");
    assert!(
        reason.contains("stayed at critical for")
            && reason.contains("low (priority 0")
            && reason.contains("(last_resort: kill)"),
        "{reason}"
    );
    // Not before the slice had been at critical kill_after with the job frozen: by the
    // daemon's own clock (ticks), as the reason states it, and by the journal's, where the
    // two entries are written at different points of their ticks (the freeze after the
    // jobs' sockets answered): less one interval (500ms) for that.
    let stayed = reason
        .split("stayed at critical for ")
        .nth(1)
        .and_then(|rest| rest.split(" with ").next())
        .and_then(|text| resctl::units::parse_duration(text).ok())
        .unwrap_or_else(|| panic!("no duration in {reason}"));
    assert!(stayed >= Duration::from_secs(5), "{reason}");
    let waited = entry_time(kill) - entry_time(&frozen[0]);
    assert!(
        waited >= 4_500_000,
        "killed {waited} µs after the freeze\n{}",
        daemon_log()
    );
    // The job's resctl was told before the kill, and its summary says who killed it and why.
    assert!(
        low_err.contains("summary: resctl daemon killed the job: slice ")
            && low_err.contains("(last_resort: kill)")
            && !low_err.contains("OOM killer killed the job"),
        "{low_err}"
    );
    // Killed, not thawed; counted in the metrics.
    assert!(job_actions("thaw").is_empty(), "{}", daemon_log());
    let written = std::fs::read_to_string(textfile).unwrap_or_default();
    let counted =
        format!("resctl_actions_total{{kind=\"slice\",name=\"{JOBS_SLICE}\",action=\"kill\"}} 1");
    assert!(written.contains(&counted), "no {counted:?} in\n{written}");
    stop_daemon();
}
