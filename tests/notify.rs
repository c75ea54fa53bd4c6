//! `resctl run` as a `Type=notify` service: what it tells systemd through `NOTIFY_SOCKET`
//! (a datagram socket this test binds in systemd's place), and that the job never sees it.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use common::{resctl, stderr, stdout};

#[test]
fn run_says_ready_once_the_job_runs_then_its_status_then_stopping_and_hides_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let output = resctl()
        .env("NOTIFY_SOCKET", &path)
        .args(["run", "--interval", "200ms", "--"])
        .args([
            "sh",
            "-c",
            "echo \"job sees ${NOTIFY_SOCKET:-no socket}\"; sleep 1",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).trim(), "job sees no socket");
    let mut messages = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(length) = socket.recv(&mut buffer) {
        messages.push(String::from_utf8_lossy(&buffer[..length]).into_owned());
    }
    let all = messages.join("\n---\n");
    let position = |needle: &str| {
        messages
            .iter()
            .position(|m| m.lines().any(|l| l.starts_with(needle)))
            .unwrap_or_else(|| panic!("no {needle} in:\n{all}"))
    };
    let ticking = messages
        .iter()
        .position(|m| m.starts_with("STATUS=") && m.contains(" threads, memory "))
        .unwrap_or_else(|| panic!("no tick's STATUS= in:\n{all}"));
    let (ready, running, stopping) = (
        position("READY=1"),
        position("STATUS=running sh (pid "),
        position("STOPPING=1"),
    );
    assert!(ready <= running && running < stopping, "{all}");
    assert!(ticking < stopping, "{all}");
    // STATUS= only when it changed: far fewer messages than the 5 ticks' worth.
    assert!(messages.len() <= 12, "{} messages:\n{all}", messages.len());
}
