//! `resctl bench`: a sweep of static thread counts, each a `resctl run` in its own cgroup
//! under the same budget, and the recommendation.

mod common;

use common::{bench_of_the_pool, resctl, stderr};

#[test]
fn recommends_the_fastest_count_that_fits_the_budget() {
    let _own = require_v1!();
    let logs = tempfile::tempdir().unwrap();
    let (output, _) = bench_of_the_pool(&["--log-dir".as_ref(), logs.path().as_os_str()]);
    // Every run left its log and summary.
    for threads in [1, 2, 4] {
        assert!(logs
            .path()
            .join(format!("threads-{threads}-run-1.log"))
            .exists());
        assert!(logs
            .path()
            .join(format!("threads-{threads}-run-1.json"))
            .exists());
    }
    let err = stderr(&output);
    assert!(err.contains("bench: run 3/3: 4 threads"), "{err}");
}

#[test]
fn a_command_that_cannot_run_stops_the_bench() {
    let logs = tempfile::tempdir().unwrap();
    let output = resctl()
        .args(["bench", "--threads", "1,2", "--repeat", "3", "--log-dir"])
        .arg(logs.path())
        .args(["--", "no-such-command-resctl"])
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(125), "{err}");
    assert!(
        err.contains("the run at 1 threads could not start the command (exit 127)"),
        "{err}"
    );
    let log = std::fs::read_to_string(logs.path().join("threads-1-run-1.log")).unwrap();
    assert!(log.contains("command not found"), "{log}");
    assert!(
        !logs.path().join("threads-1-run-2.log").exists(),
        "stopped at once"
    );
}

#[test]
fn bad_arguments_are_usage_errors() {
    for (args, message) in [
        (
            &["--threads", "0,2"][..],
            "--threads: give counts of at least 1",
        ),
        (&["--repeat", "0"][..], "--repeat: at least 1"),
        (&["--tolerance", "lots"][..], "--tolerance lots"),
        (&["--memory-max", "12Q"][..], "--memory-max 12Q"),
    ] {
        let output = resctl()
            .arg("bench")
            .args(args)
            .args(["--", "true"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(125), "{args:?}");
        assert!(
            stderr(&output).contains(message),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}
