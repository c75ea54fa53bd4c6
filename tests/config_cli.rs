//! `resctl config check|show` and `resctl doctor` as a user meets them.

mod common;

use common::{resctl, stderr, stdout};

fn check(yaml: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, yaml).unwrap();
    let output = resctl()
        .args(["config", "check"])
        .arg(&path)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        stdout(&output),
        stderr(&output),
    )
}

#[test]
fn the_shipped_example_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/resctl.yaml");
    let output = resctl().args(["config", "check", path]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("ok"));
}

#[test]
fn unknown_keys_are_errors_with_line_and_column() {
    let (code, _, err) = check("interval: 1s\nmemory:\n  moderat: 2G\n");
    assert_eq!(code, 1);
    assert!(err.contains("bad.yaml:3:"), "{err}");
    assert!(err.contains("moderat"), "{err}");
}

#[test]
fn wrong_types_are_errors_with_line_and_column() {
    let (code, _, err) = check("threads:\n  min: lots\n");
    assert_eq!(code, 1);
    assert!(err.contains("bad.yaml:2:"), "{err}");
}

#[test]
fn duplicate_keys_are_errors() {
    let (code, _, err) = check("interval: 1s\ninterval: 2s\n");
    assert_eq!(code, 1);
    assert!(err.contains("bad.yaml:2:"), "{err}");
}

#[test]
fn thresholds_out_of_order_are_errors_naming_the_keys() {
    let (code, _, err) = check("memory:\n  moderate: 3G\n  high: 2G\n");
    assert_eq!(code, 1);
    assert!(err.contains("bad.yaml"), "{err}");
    assert!(err.contains("moderate") && err.contains("high"), "{err}");
}

#[test]
fn the_originals_config_block_is_accepted() {
    let yaml = "orchestrator:\n  threading:\n    resource_management:\n      enabled: true\n      memory_monitoring:\n        enabled: true\n        monitoring_interval_seconds: 1.0\n        thresholds:\n          moderate_mb: 2000.0\n          high_mb: 3000.0\n          critical_mb: 3500.0\n      min_threads: 1\n      max_threads: 8\n";
    let (code, out, err) = check(yaml);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ok"));
}

#[test]
fn show_prints_the_effective_defaults() {
    let output = resctl()
        .args(["config", "show"])
        .env("RESCTL_CONFIG", "/dev/null/none")
        .output()
        .unwrap();
    // A named file that does not exist is an error, not silently the defaults.
    assert_eq!(output.status.code(), Some(1));
    let output = resctl().args(["config", "show"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    for expected in ["interval", "moderate", "critical", "cooldown", "slice"] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
}

#[test]
fn doctor_reports_the_layout_this_host_has() {
    let output = resctl().args(["doctor", "--json"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let has_v2 = mountinfo.lines().any(|l| l.contains(" - cgroup2 "));
    let has_v1_memory = mountinfo.lines().any(|l| {
        l.contains(" - cgroup ")
            && l.split_whitespace()
                .last()
                .is_some_and(|o| o.split(',').any(|x| x == "memory"))
    });
    let expected = match (has_v2, has_v1_memory) {
        (true, true) => "hybrid",
        (false, true) => "v1",
        (true, false) => "v2",
        (false, false) => "none",
    };
    assert_eq!(report["layout"], expected, "{report}");
    assert!(report["plan"].as_str().is_some_and(|p| !p.is_empty()));
    let text = resctl().arg("doctor").output().unwrap();
    assert!(
        stdout(&text).contains(&format!("cgroup layout:      {expected}")),
        "{}",
        stdout(&text)
    );
}
