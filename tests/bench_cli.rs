//! `resctl bench`: a sweep of static thread counts, each a `resctl run` in its own cgroup
//! under the same budget, and the recommendation.

mod common;

use common::render::{of_color, render};
use common::{bench_of_the_pool, resctl, stderr};
use resctl::bench::plot::{FAILED_COLOR, RECOMMENDED_COLOR, SIZE};

#[test]
fn recommends_the_fastest_count_that_fits_the_budget_and_saves_it_for_later_runs() {
    let _own = require_v1!();
    let logs = tempfile::tempdir().unwrap();
    let history = tempfile::tempdir().unwrap();
    let mut with_history = resctl();
    with_history.env("RESCTL_HISTORY_DIR", history.path());
    let (output, _) = bench_of_the_pool(
        with_history,
        &[
            "--log-dir".as_ref(),
            logs.path().as_os_str(),
            "--save".as_ref(),
            "--job-key".as_ref(),
            "pool-sweep".as_ref(),
        ],
    );
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
    assert!(err.contains("history: kept"), "{err}");

    // The sweep's record: 2 (recommended) is the fastest, 4 was OOM-killed, one worker
    // costs about its 30M task.
    let shown = resctl()
        .env("RESCTL_HISTORY_DIR", history.path())
        .args(["history", "show", "pool-sweep"])
        .output()
        .unwrap();
    assert!(shown.status.success(), "{}", stderr(&shown));
    let record: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(record["best"][0], 2, "{record}");
    assert_eq!(record["peak_threads"], 4, "{record}");
    assert!(record["oom_kills"].as_u64().unwrap() >= 1, "{record}");
    let per_worker = record["per_worker"].as_u64().unwrap();
    assert!((20 << 20..=60 << 20).contains(&per_worker), "{record}");

    // A run of the job under that key starts at the sweep's count, not the CPUs' (this
    // test's pool is told 3 workers at most, more than 2 CPUs would give on small hosts).
    let run = resctl()
        .env("RESCTL_HISTORY_DIR", history.path())
        .env_remove("RESCTL_NO_HISTORY")
        .args(["run", "--memory-max", "200M", "--max-threads", "3"])
        .args(["--job-key", "pool-sweep", "--"])
        .arg(common::example("worker_pool"))
        .args([
            "--tasks",
            "2",
            "--task-memory",
            "1M",
            "--task-time",
            "100ms",
        ])
        .output()
        .unwrap();
    let err = stderr(&run);
    assert!(run.status.success(), "{err}");
    assert!(
        err.contains("history: starting with 2 threads")
            && err.contains("2 was the fastest count measured"),
        "{err}"
    );
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

#[test]
fn the_report_is_exported_as_json_and_markdown_with_mean_and_spread() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let markdown = dir.path().join("bench.md");
    let output = resctl()
        .args(["bench", "--threads", "1,2", "--repeat", "2", "--log-dir"])
        .arg(dir.path().join("logs"))
        .arg("--export-json")
        .arg(&json)
        .arg("--export-markdown")
        .arg(&markdown)
        .args(["--", "sh", "-c", "sleep 0.{threads}"])
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    // Not a terminal: one log line per run, the later ones with the time left.
    assert!(
        err.contains("bench: run 1/4: 1 threads, repeat 1/2\n"),
        "{err}"
    );
    assert!(
        err.contains("bench: run 4/4: 2 threads, repeat 2/2, about "),
        "{err}"
    );
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.lines().next().unwrap_or("").contains("mean ± σ s"),
        "{table}"
    );

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for result in results {
        let mean = result["mean_secs"].as_f64().unwrap();
        let median = result["median_secs"].as_f64().unwrap();
        assert!(mean > 0.0 && (mean - median).abs() < 0.5, "{result}");
        assert!(result["stddev_secs"].as_f64().unwrap() >= 0.0, "{result}");
    }
    let markdown = std::fs::read_to_string(&markdown).unwrap();
    let lines: Vec<&str> = markdown.lines().collect();
    assert!(
        lines[0].starts_with("| threads | runs | median s | mean ± σ s |"),
        "{markdown}"
    );
    assert!(lines[1].starts_with("|---:|"), "{markdown}");
    assert!(lines[2].starts_with("| 1 | 2 | "), "{markdown}");
    assert!(lines[3].starts_with("| 2 | 2 | "), "{markdown}");
    assert!(markdown.contains("\nrecommended: "), "{markdown}");
}

#[test]
fn the_plot_of_a_sweep_with_a_failed_count_is_drawn_and_renders() {
    let dir = tempfile::tempdir().unwrap();
    let plot = dir.path().join("bench.svg");
    // 1 thread succeeds, 3 threads exits 1.
    let output = resctl()
        .args(["bench", "--threads", "1,3", "--repeat", "1", "--log-dir"])
        .arg(dir.path().join("logs"))
        .arg("--plot")
        .arg(&plot)
        .args(["--", "sh", "-c", "sleep 0.1; exit $(({threads} / 3))"])
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    let svg = std::fs::read_to_string(&plot).unwrap();
    for wanted in [
        "$ sh -c sleep 0.1; exit $(({threads} / 3))",
        "speedup relative to the 1-thread run",
        "recommended: 1 threads",
        "\nexit 1\n",
        " (exit 1)\n",
    ] {
        assert!(svg.contains(wanted), "{wanted:?} not in {svg}");
    }
    let (pixmap, _) = render(&svg);
    assert_eq!((pixmap.width(), pixmap.height()), SIZE);
    assert!(of_color(&pixmap, FAILED_COLOR) >= 100);
    assert!(of_color(&pixmap, RECOMMENDED_COLOR) >= 300);
}

#[test]
fn an_export_into_a_missing_folder_stops_the_bench_before_any_run() {
    for flag in ["--export-json", "--export-markdown", "--plot"] {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let missing = dir.path().join("missing/bench.out");
        let output = resctl()
            .args(["bench", "--threads", "1", "--repeat", "1", flag])
            .arg(&missing)
            .args(["--", "touch"])
            .arg(&marker)
            .output()
            .unwrap();
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(125), "{flag}: {err}");
        assert!(
            err.contains(&format!("{flag}: {}: ", missing.display())),
            "{flag}: {err}"
        );
        assert!(!marker.exists(), "{flag}: a run started");
    }
}
