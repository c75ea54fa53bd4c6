//! `resctl run` as a user meets it: exit statuses like a shell, signals,
//! the job's environment, and bad input.

mod common;

use common::{resctl, run_with_pid, stderr, stdout};

fn run_code(args: &[&str]) -> i32 {
    let (output, _) = run_with_pid(resctl().args(["run", "--monitor-only", "--"]).args(args));
    output
        .status
        .code()
        .expect("resctl exits, it is not killed")
}

#[test]
fn exit_status_matrix_follows_the_shell() {
    assert_eq!(run_code(&["true"]), 0);
    assert_eq!(run_code(&["sh", "-c", "exit 7"]), 7);
    assert_eq!(run_code(&["sh", "-c", "exit 255"]), 255);
    assert_eq!(run_code(&["sh", "-c", "kill -TERM $$"]), 128 + 15);
    assert_eq!(run_code(&["sh", "-c", "kill -KILL $$"]), 128 + 9);
    assert_eq!(run_code(&["no-such-command-resctl-test"]), 127);
}

#[test]
fn not_executable_is_126_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    let (output, _) = run_with_pid(resctl().args(["run", "--monitor-only", "--"]).arg(&script));
    assert_eq!(output.status.code(), Some(126));
    assert!(stderr(&output).contains("script.sh"), "{}", stderr(&output));
}

#[test]
fn resctl_failures_before_exec_are_125() {
    let (output, _) = run_with_pid(resctl().args(["run", "--memory-max", "lots", "--", "true"]));
    assert_eq!(output.status.code(), Some(125));
    assert!(
        stderr(&output).contains("--memory-max"),
        "{}",
        stderr(&output)
    );
    let (output, _) = run_with_pid(resctl().args([
        "run",
        "--min-threads",
        "9",
        "--max-threads",
        "2",
        "--",
        "true",
    ]));
    assert_eq!(output.status.code(), Some(125), "{}", stderr(&output));
    let (output, _) = run_with_pid(resctl().args(["run", "--no-such-flag", "--", "true"]));
    assert_eq!(output.status.code(), Some(125));
    let (output, _) = run_with_pid(resctl().args(["run", "--notify-signal", "NOPE", "--", "true"]));
    assert_eq!(output.status.code(), Some(125), "{}", stderr(&output));
}

#[test]
fn the_job_gets_its_thread_channels_and_not_notify_socket() {
    let (output, _) = run_with_pid(
        resctl()
            .env("NOTIFY_SOCKET", "/run/systemd/notify")
            .args(["run", "--monitor-only", "--max-threads", "1", "--"])
            .args(["sh", "-c", "echo threads=$RESCTL_THREADS; cat \"$RESCTL_THREADS_FILE\"; echo notify=${NOTIFY_SOCKET-unset}"]),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "threads=1\n1\nnotify=unset\n");
}

#[test]
fn the_thread_file_is_removed_after_the_run() {
    let (output, _) = run_with_pid(resctl().args(["run", "--monitor-only", "--"]).args([
        "sh",
        "-c",
        "echo $RESCTL_THREADS_FILE",
    ]));
    assert!(output.status.success());
    let path = stdout(&output).trim().to_string();
    assert!(path.ends_with("/threads"), "{path}");
    assert!(!std::path::Path::new(&path).exists(), "{path} left behind");
}

fn signal_is_forwarded(signal: nix::sys::signal::Signal, trap: &str) {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let script = format!(
        "trap 'exit 42' {trap}; touch '{}'; while :; do sleep 0.05; done",
        ready.display()
    );
    let child = resctl()
        .args(["run", "--monitor-only", "--", "sh", "-c", &script])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_for_file(&ready, "the job never started");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(42), "{}", stderr(&output));
    assert!(stderr(&output).contains("forwarded"), "{}", stderr(&output));
}

#[test]
fn sigterm_is_forwarded_and_the_jobs_status_returned() {
    signal_is_forwarded(nix::sys::signal::Signal::SIGTERM, "TERM");
}

#[test]
fn sigint_and_sighup_are_forwarded() {
    signal_is_forwarded(nix::sys::signal::Signal::SIGINT, "INT");
    signal_is_forwarded(nix::sys::signal::Signal::SIGHUP, "HUP");
}

#[test]
fn summary_is_printed_at_the_end() {
    let (output, _) =
        run_with_pid(resctl().args(["run", "--monitor-only", "--", "sh", "-c", "exit 3"]));
    assert_eq!(output.status.code(), Some(3));
    let err = stderr(&output);
    assert!(err.contains("summary: job exited with code 3"), "{err}");
    assert!(err.contains("peak memory"), "{err}");
    assert!(err.contains("threads"), "{err}");
}

#[test]
fn help_exists_for_every_command() {
    for args in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["config", "--help"],
        vec!["config", "check", "--help"],
        vec!["config", "show", "--help"],
        vec!["doctor", "--help"],
        vec!["replay", "--help"],
    ] {
        let output = resctl().args(&args).output().unwrap();
        assert!(output.status.success(), "{args:?}");
        assert!(stdout(&output).contains("Usage"), "{args:?}");
    }
}

fn pool_with_notify_signal(pool_flags: &[&str]) -> std::process::Output {
    let (output, _) = run_with_pid(
        resctl()
            .args([
                "run",
                "--monitor-only",
                "--moderate",
                "50M",
                "--high",
                "60M",
            ])
            .args(["--critical", "70M", "--threads", "4", "--interval", "200ms"])
            .args(["--notify-signal", "USR1", "--"])
            .arg(common::example("worker_pool"))
            .args([
                "--tasks",
                "8",
                "--task-memory",
                "18M",
                "--task-time",
                "1500ms",
            ])
            .args(pool_flags),
    );
    output
}

#[test]
fn notify_signal_reaches_a_job_that_asked_for_it() {
    // A job that handles SIGUSR1 follows the change and finishes.
    let output = pool_with_notify_signal(&["--on-signal"]);
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert!(err.contains("threads 4 -> 1"), "{err}");
    assert!(err.contains("workers 4 -> 1"), "{err}");
    // The signal really is sent: a job without a handler dies of it, which is
    // why it is only sent when asked for.
    let output = pool_with_notify_signal(&[]);
    assert_eq!(output.status.code(), Some(128 + 10), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("killed by SIGUSR1"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_job_talks_to_resctl_through_its_socket() {
    let bin = common::resctl_bin();
    let script = format!(
        "r='{}'; $r stage start load --workers 2 && sleep 1.2 && $r stage end load && \
         $r progress 5 && $r status --json && echo recommend=$($r recommend --current 2)",
        bin.display()
    );
    let (output, _) = run_with_pid(
        resctl()
            .args([
                "run",
                "--monitor-only",
                "--interval",
                "200ms",
                "--",
                "sh",
                "-c",
            ])
            .arg(&script),
    );
    let err = stderr(&output);
    let out = stdout(&output);
    assert!(output.status.success(), "{err}\n{out}");
    assert!(out.contains("stage load"), "{out}");
    // status --json: the snapshot with levels, memory and the thread count.
    for key in ["\"threads\"", "\"level\"", "\"memory_bytes\""] {
        assert!(out.contains(key), "no {key} in\n{out}");
    }
    assert!(out.contains("recommend="), "{out}");
    assert!(err.contains("summary: stage load"), "{err}");
}

#[test]
fn client_commands_outside_a_job_say_so() {
    // `status` outside a job lists what is watched instead (tests/status_cli.rs).
    let output = resctl()
        .env_remove("RESCTL_SOCKET")
        .args(["stage", "start", "load"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("resctl run"),
        "{}",
        stderr(&output)
    );
    let output = resctl()
        .env_remove("RESCTL_SOCKET")
        .args(["recommend", "--max-threads", "3"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let n: u32 = stdout(&output).trim().parse().unwrap();
    assert!((1..=3).contains(&n), "{n}");
}

/// The priority `resctl run -c CONFIG ARGS -- ...` registers for the daemon: the job copies
/// its run folder's job.json (next to its socket) once resctl has written it.
fn registered_priority(config: &str, args: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("resctl.yaml");
    std::fs::write(&file, config).unwrap();
    let copy = dir.path().join("registered.json");
    let script = format!(
        "d=$(dirname \"$RESCTL_SOCKET\"); i=0; \
         while [ ! -s \"$d/job.json\" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; \
         cat \"$d/job.json\" > '{}'",
        copy.display()
    );
    let (output, _) = run_with_pid(
        resctl()
            .args(["run", "--monitor-only", "-c"])
            .arg(&file)
            .args(args)
            .args(["--", "sh", "-c", &script]),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = std::fs::read_to_string(&copy).unwrap_or_default();
    let registration: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("job.json {text:?}: {err}\n{}", stderr(&output)));
    registration["priority"].clone()
}

#[test]
fn the_registered_priority_is_the_flag_else_the_slices_else_the_top_levels_else_0() {
    // The run's slice is the configuration's `slice:` (resctl.slice) without --slice.
    let both =
        "priority: 2\nslices:\n  resctl.slice: { priority: 4 }\n  other.slice: { priority: 8 }\n";
    assert_eq!(registered_priority(both, &["--priority", "-1"]), -1);
    assert_eq!(registered_priority(both, &[]), 4);
    assert_eq!(
        registered_priority(
            "priority: 2\nslices:\n  other.slice: { priority: 8 }\n",
            &[]
        ),
        2
    );
    assert_eq!(registered_priority("interval: 1s\n", &[]), 0);
}

#[test]
fn a_bad_priority_in_the_config_stops_the_run_with_file_line_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("resctl.yaml");
    std::fs::write(&file, "slices:\n  resctl.slice: { priority: high }\n").unwrap();
    let (output, _) = run_with_pid(
        resctl()
            .args(["run", "--monitor-only", "-c"])
            .arg(&file)
            .args(["--", "true"]),
    );
    assert_eq!(output.status.code(), Some(125), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!("{}:2:29: invalid i32", file.display())),
        "{}",
        stderr(&output)
    );
}
