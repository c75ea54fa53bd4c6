//! The `ceiling` and `notice` requests on a job's control socket (what `resctl daemon`
//! sends to shrink a job of a slice under pressure, and to say it froze, thawed or killed
//! it): from root a ceiling caps the job's worker count with its reason, lifting it lets
//! the job's own policy decide again, and a notice is logged escaped (a kill also in the
//! summary); the job's own user is refused both. Needs root (a skipped test says so).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::Stdio;
use std::time::Duration;

use common::{resctl, running_as_root, stderr};

/// Sends one request line to `socket` and returns the reply line.
fn ask(socket: &str, request: &str) -> String {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream.write_all(format!("{request}\n").as_bytes()).unwrap();
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).unwrap();
    reply
}

/// The line the job wrote to `path` (its socket, and what else it says), waiting up to 20 s
/// for the job to start.
fn said_by_the_job(path: &std::path::Path) -> String {
    let mut text = String::new();
    let said = common::eventually(Duration::from_secs(20), Duration::from_millis(50), || {
        text = std::fs::read_to_string(path).unwrap_or_default();
        text.ends_with('\n')
    });
    assert!(said, "the job never started");
    text.trim().to_owned()
}

#[test]
fn a_ceiling_from_root_caps_the_job_and_lifting_it_gives_the_count_back() {
    if !running_as_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("release");
    let said = dir.path().join("socket");
    // The job says where its socket is, then waits.
    let script = format!(
        "echo \"$RESCTL_SOCKET\" > '{}'; while [ ! -e '{}' ]; do sleep 0.1; done; cat \"$RESCTL_THREADS_FILE\"",
        said.display(),
        release.display()
    );
    let child = resctl()
        .args([
            "run",
            "--monitor-only",
            "--interval",
            "200ms",
            "--threads",
            "4",
        ])
        .args([
            "--min-threads",
            "1",
            "--max-threads",
            "4",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let socket = said_by_the_job(&said);
    let refused = ask(&socket, r#"{"op":"ceiling","threads":0}"#);
    assert!(refused.contains("\"ok\":false"), "{refused}");
    let reply = ask(
        &socket,
        r#"{"op":"ceiling","threads":2,"reason":"slice test.slice at high"}"#,
    );
    assert!(reply.contains("\"ok\":true"), "{reply}");
    let mut capped = String::new();
    let in_time = common::eventually(Duration::from_secs(20), Duration::from_millis(100), || {
        capped = ask(&socket, r#"{"op":"status"}"#);
        capped.contains("\"threads\":2,")
    });
    assert!(in_time, "never capped: {capped}");
    assert!(
        capped.contains("slice test.slice at high: at most 2 threads"),
        "{capped}"
    );
    let lifted = ask(&socket, r#"{"op":"ceiling","threads":null}"#);
    assert!(lifted.contains("\"ok\":true"), "{lifted}");
    std::fs::write(&release, "").unwrap();
    let output = child.wait_with_output().unwrap();
    let err = stderr(&output);
    assert!(output.status.success(), "{err}");
    assert!(
        err.contains("threads 4 -> 2: slice test.slice at high: at most 2 threads"),
        "{err}"
    );
}

#[test]
fn the_jobs_own_user_cannot_set_or_lift_a_ceiling_nor_send_a_notice() {
    if !running_as_root() {
        return;
    }
    // The job runs as nobody and asks its own socket, with Python's socket module (a
    // system Python: one under root's home is not executable by nobody).
    let python = "/usr/bin/python3";
    if !std::path::Path::new(python).exists() {
        eprintln!("skipped: needs {python}");
        return;
    }
    let script = r#"import os, socket
s = socket.socket(socket.AF_UNIX)
s.connect(os.environ["RESCTL_SOCKET"])
s.sendall(b'{"op":"ceiling","threads":null}\n{"op":"notice","action":"kill","reason":"x"}\n')
replies = s.makefile()
print(replies.readline().strip())
print(replies.readline().strip())"#;
    let output = resctl()
        .args(["run", "--monitor-only", "--user", "nobody", "--"])
        .args([python, "-c", script])
        .current_dir("/")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}\n{out}", stderr(&output));
    assert!(
        out.contains("only root (resctl daemon) may set a ceiling")
            && out.contains("only root (resctl daemon) may send a notice"),
        "{out}"
    );
}

#[test]
fn a_notice_from_root_is_logged_escaped_and_a_kill_is_named_in_the_summary() {
    if !running_as_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let said = dir.path().join("socket");
    // The job says where its socket is and its pid, then waits to be killed.
    let script = format!(
        "echo \"$RESCTL_SOCKET $$\" > '{}'; exec sleep 60",
        said.display()
    );
    let child = resctl()
        .args(["run", "--monitor-only", "--interval", "200ms", "--"])
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let said = said_by_the_job(&said);
    let (socket, pid) = said.split_once(' ').unwrap();
    let pid: i32 = pid.parse().unwrap();
    let unknown = ask(socket, r#"{"op":"notice","action":"explode","reason":"x"}"#);
    assert!(unknown.contains("\"ok\":false"), "{unknown}");
    let frozen = ask(
        socket,
        r#"{"op":"notice","action":"freeze","reason":"slice a.slice at critical"}"#,
    );
    assert!(frozen.contains("\"ok\":true"), "{frozen}");
    let kill = ask(
        socket,
        r#"{"op":"notice","action":"kill","reason":"slice a.slice stayed at critical for 30s\n\u001b[2Jforged"}"#,
    );
    assert!(kill.contains("\"ok\":true"), "{kill}");
    // What cgroup.kill does to the job, done by hand: this run has no cgroup.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(137), "{err}");
    assert!(
        err.contains("resctl daemon: freeze: slice a.slice at critical"),
        "{err}"
    );
    assert!(
        err.contains(
            "summary: resctl daemon killed the job: slice a.slice stayed at critical for 30s\\n\\u{1b}[2Jforged"
        ),
        "{err}"
    );
    assert!(
        !err.contains('\u{1b}'),
        "a control character reached the log: {err}"
    );
    assert!(!err.contains("OOM killer"), "{err}");
}
