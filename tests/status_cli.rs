//! `resctl status` outside a job: the running jobs from their control sockets (and, in
//! the VM suite, the daemon's slices). Runs on any host.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{resctl, stderr, stdout};

/// `resctl status ARGS` outside any job, with `runtime` as the runtime folder.
fn status(runtime: &std::path::Path, args: &[&str]) -> std::process::Output {
    resctl()
        .arg("status")
        .args(args)
        .env_remove("RESCTL_SOCKET")
        .env("XDG_RUNTIME_DIR", runtime)
        .output()
        .unwrap()
}

#[test]
fn status_outside_a_job_lists_the_running_jobs_with_their_figures() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("runtime");
    std::fs::create_dir(&runtime).unwrap();
    std::fs::set_permissions(
        &runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let release = dir.path().join("release");
    let script = format!("while [ ! -e '{}' ]; do sleep 0.1; done", release.display());
    let run = resctl()
        .args([
            "run",
            "--interval",
            "200ms",
            "--threads",
            "3",
            "--priority",
            "-2",
            "--",
        ])
        .args(["sh", "-c", &script])
        .env("XDG_RUNTIME_DIR", &runtime)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let resctl_pid = run.id() as u64;
    // A job never listed within 20 s leaves `listed` null and fails the assertions below.
    let mut listed = serde_json::Value::Null;
    common::eventually(Duration::from_secs(20), Duration::from_millis(100), || {
        let output = status(&runtime, &["--json"]);
        assert!(output.status.success(), "{}", stderr(&output));
        let overview: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
        let job = overview["jobs"]
            .as_array()
            .and_then(|jobs| jobs.iter().find(|job| job["pid"] == resctl_pid))
            .cloned();
        match job.filter(|job| !job["status"].is_null()) {
            Some(job) => {
                listed = job;
                true
            }
            None => false,
        }
    });
    let table = status(&runtime, &[]);
    // The run registered its job for the daemon in the same folder as its socket.
    let socket = std::path::PathBuf::from(listed["socket"].as_str().unwrap_or(""));
    let registration: serde_json::Value = serde_json::from_slice(
        &std::fs::read(socket.with_file_name("job.json")).unwrap_or_default(),
    )
    .unwrap_or_default();
    std::fs::write(&release, "").unwrap();
    let ended = run.wait_with_output().unwrap();
    assert!(ended.status.success(), "{}", stderr(&ended));
    assert_eq!(listed["command"], script_command(&script), "{listed}");
    assert_eq!(listed["status"]["threads"], 3, "{listed}");
    assert_eq!(registration["priority"], -2, "{registration}");
    assert_eq!(registration["name"], "sh", "{registration}");
    assert!(registration["pid"]
        .as_u64()
        .is_some_and(|pid| pid != resctl_pid));
    assert!(
        listed["status"]["memory_bytes"].as_u64().unwrap() > 0,
        "{listed}"
    );
    let table = stdout(&table);
    let header = table.lines().next().unwrap_or("");
    assert!(header.starts_with("PID "), "{table}");
    assert!(
        table
            .lines()
            .any(|line| line.starts_with(&format!("{resctl_pid} ")) && line.contains("sh -c")),
        "{table}"
    );
    // Once the run has ended, it is not listed.
    let after = status(&runtime, &["--json"]);
    let overview: serde_json::Value = serde_json::from_str(&stdout(&after)).unwrap();
    assert!(
        !overview["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|job| job["pid"] == resctl_pid),
        "{overview}"
    );
}

fn script_command(script: &str) -> String {
    format!("sh -c {script}")
}

#[test]
fn status_watch_redraws_and_a_bad_period_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = status(dir.path(), &["--watch", "--every", "0s"]);
    assert_eq!(output.status.code(), Some(125));
    assert!(
        stderr(&output).contains("--every 0s"),
        "{}",
        stderr(&output)
    );
    let output = status(dir.path(), &["--every", "1s"]);
    assert_eq!(output.status.code(), Some(125), "--every needs --watch");
    assert!(stderr(&output).contains("--watch"), "{}", stderr(&output));
    // Redrawn JSON, one object per line; ended by SIGTERM after a few redraws.
    let child = resctl()
        .args(["status", "--json", "--watch", "--every", "100ms"])
        .env_remove("RESCTL_SOCKET")
        .env("XDG_RUNTIME_DIR", dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let output = child.wait_with_output().unwrap();
    let lines: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(lines.len() >= 2, "{lines:?}");
    assert!(lines.iter().all(|line| line["jobs"].is_array()));
}
