//! `resctl run --user USER`: the job runs as another user (resctl stays root) and still
//! reaches every channel resctl gives it. Needs root: skipped with a note otherwise.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{resctl, resctl_bin, run_with_pid, running_as_root, stderr};

#[test]
fn the_job_runs_as_the_user_and_reaches_its_channels() {
    if !running_as_root() {
        return;
    }
    // A copy of resctl that `nobody` can run, for `resctl status` from inside the job.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let client = dir.path().join("resctl");
    std::fs::copy(resctl_bin(), &client).unwrap();
    let script = format!(
        "id -u; id -g; echo \"$USER $LOGNAME $HOME\"; cat \"$RESCTL_THREADS_FILE\"; \
         {} status --json",
        client.display()
    );
    let (output, _) = run_with_pid(
        resctl()
            .current_dir("/")
            .args([
                "run",
                "--user",
                "nobody",
                "--threads",
                "3",
                "--",
                "sh",
                "-c",
            ])
            .arg(&script),
    );
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert!(err.contains(", user nobody)"), "{err}");
    let out = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "65534", "{out}");
    assert_eq!(lines[2], "nobody nobody /nonexistent", "{out}");
    assert_eq!(lines[3], "3", "the thread file is readable: {out}");
    let status: serde_json::Value = serde_json::from_str(&lines[4..].join("\n"))
        .unwrap_or_else(|error| panic!("the socket let the job's user in? {error}: {out}"));
    assert_eq!(status["threads"], 3, "{out}");
}

#[test]
fn a_numeric_uid_works_and_the_fifo_is_the_users() {
    if !running_as_root() {
        return;
    }
    let (output, _) = run_with_pid(
        resctl()
            .current_dir("/")
            .args(["run", "--monitor-only", "--user", "65534", "--jobserver=2"])
            .args(["--jobserver-style=fifo", "--", "sh", "-c"])
            .arg("id -u; fifo=${MAKEFLAGS##*fifo:}; test -r \"$fifo\" && test -w \"$fifo\" && echo usable"),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "65534\nusable\n");
}

#[test]
fn an_unknown_user_stops_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let output = resctl()
        .args(["run", "--user", "no-such-user-resctl", "--", "touch"])
        .arg(&marker)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(125));
    assert!(
        stderr(&output).contains("--user no-such-user-resctl: no such user"),
        "{}",
        stderr(&output)
    );
    assert!(!marker.exists());
}
