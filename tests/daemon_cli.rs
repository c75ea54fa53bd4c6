//! `resctl daemon` from the command line, on any host: what it refuses before it starts.

mod common;

use common::{resctl, stderr};

/// `resctl daemon --config FILE` with FILE holding `config`: its output and FILE's path.
fn daemon_with(config: &str) -> (std::process::Output, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resctl.yaml");
    std::fs::write(&path, config).unwrap();
    let output = resctl()
        .args(["daemon", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    (output, path.display().to_string())
}

#[test]
fn an_invalid_config_stops_the_daemon_before_it_starts_with_file_line_column() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("resctl.yaml");
    std::fs::write(
        &config,
        "interval: 1s\nslices:\n  build.slice: { memory: { high: lots } }\n",
    )
    .unwrap();
    let output = resctl()
        .args(["daemon", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(125), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(
        text.contains(&format!("{}:3:", config.display())),
        "no FILE:LINE:COL in {text}"
    );
}

#[test]
fn a_missing_config_is_named() {
    let output = resctl()
        .args(["daemon", "--config", "/nonexistent/resctl.yaml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(125));
    assert!(
        stderr(&output).contains("/nonexistent/resctl.yaml"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn without_cgroup_v2_the_daemon_says_so_instead_of_watching_nothing() {
    // On a pure v2 host (every line of /proc/self/cgroup is `0::`) the daemon runs:
    // tests/vm_daemon.rs covers it there.
    let v2_only = std::fs::read_to_string("/proc/self/cgroup")
        .is_ok_and(|c| c.lines().all(|l| l.starts_with("0::")));
    if v2_only {
        return;
    }
    let (output, _) = daemon_with("slices:\n  build.slice: {}\n");
    assert_eq!(output.status.code(), Some(125), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("the daemon needs cgroup v2"),
        "{}",
        stderr(&output)
    );
}
