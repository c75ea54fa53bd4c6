//! Starts the benchmark's runs: this very binary's `resctl run`, once per thread count and
//! repeat, with the count pinned (`--threads N --min-threads N --max-threads N`) so each run
//! is a static count in its own cgroup under the same budget. Each run's output goes to a log
//! file and its figures come back through `--summary-json`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::BenchRun;
use crate::exit::{NOT_EXECUTABLE, NOT_FOUND, RESCTL_FAILED};
use crate::report::summary::RunSummary;
use crate::safe_fs::{read_regular_text, OutputFile};

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchPlan {
    /// Thread counts, in the order to try them.
    pub threads: Vec<u32>,
    /// Runs per count.
    pub repeat: u32,
    /// `--memory-max` for every run, as given.
    pub memory_max: Option<String>,
    /// The command; `{threads}` in an argument becomes the count.
    pub command: Vec<OsString>,
    /// Where each run's log and summary go.
    pub log_dir: PathBuf,
}

/// Why the benchmark stopped early.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// resctl itself could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The resctl binary.
        program: String,
        /// The error.
        source: std::io::Error,
    },
    /// The command could not run at all (not found, not executable, resctl failed before
    /// exec): repeating it would fail the same way.
    #[error(
        "the run at {threads} threads could not start the command (exit {code}); its log: {log}"
    )]
    NotStarted {
        /// The count being tried.
        threads: u32,
        /// resctl's exit status (125, 126 or 127).
        code: i32,
        /// The run's log file.
        log: String,
    },
    /// A run was interrupted (SIGINT/SIGTERM): the user is stopping the benchmark.
    #[error("interrupted at {threads} threads")]
    Interrupted {
        /// The count being tried.
        threads: u32,
        /// The exit status to pass on (130 or 143).
        code: i32,
    },
    /// A log or summary file could not be used.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// `{threads}` in each argument replaced by `threads` (arguments that are not UTF-8 are
/// passed unchanged).
pub fn substitute(command: &[OsString], threads: u32) -> Vec<OsString> {
    command
        .iter()
        .map(|argument| match argument.to_str() {
            Some(text) => OsString::from(text.replace("{threads}", &threads.to_string())),
            None => argument.clone(),
        })
        .collect()
}

/// Largest run summary read back (one is a few KiB; stages make it longer).
const MAX_SUMMARY_BYTES: u64 = 16 * 1024 * 1024;

/// Runs the plan with `resctl` (this binary), calling `progress` before each run; returns
/// the runs per count.
pub fn run_all(
    plan: &BenchPlan,
    resctl: &Path,
    mut progress: impl FnMut(u32, u32),
) -> Result<Vec<(u32, Vec<BenchRun>)>, BenchError> {
    let file_error = |path: &Path| {
        let path = path.display().to_string();
        move |source| BenchError::File { path, source }
    };
    let mut results = Vec::new();
    for &threads in &plan.threads {
        let mut runs = Vec::new();
        for repeat in 1..=plan.repeat {
            progress(threads, repeat);
            let stem = format!("threads-{threads}-run-{repeat}");
            let log_path = plan.log_dir.join(format!("{stem}.log"));
            let summary_path = plan.log_dir.join(format!("{stem}.json"));
            // Through the folder, never by path: a planted symlink is replaced, not followed.
            let log = OutputFile::prepare(&log_path)
                .and_then(|output| output.create_stream())
                .map_err(file_error(&log_path))?;
            let log_err = log.try_clone().map_err(file_error(&log_path))?;
            let count = threads.to_string();
            let mut command = Command::new(resctl);
            // Pinned counts teach the job's history nothing it would start from.
            command
                .arg("run")
                .arg("--no-history")
                .args(["--threads", &count, "--min-threads", &count])
                .args(["--max-threads", &count]);
            if let Some(limit) = &plan.memory_max {
                command.args(["--memory-max", limit]);
            }
            command
                .arg("--summary-json")
                .arg(&summary_path)
                .arg("--")
                .args(substitute(&plan.command, threads))
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_err);
            let status = command.status().map_err(|source| BenchError::Spawn {
                program: resctl.display().to_string(),
                source,
            })?;
            let code = status.code().unwrap_or(RESCTL_FAILED);
            let summary = read_regular_text(&summary_path, MAX_SUMMARY_BYTES)
                .ok()
                .and_then(|text| serde_json::from_str::<RunSummary>(&text).ok());
            match summary {
                Some(summary) => {
                    let run = BenchRun::from(&summary);
                    if matches!(run.exit_code, 130 | 143) {
                        return Err(BenchError::Interrupted {
                            threads,
                            code: run.exit_code,
                        });
                    }
                    runs.push(run);
                }
                None if [RESCTL_FAILED, NOT_EXECUTABLE, NOT_FOUND].contains(&code) => {
                    return Err(BenchError::NotStarted {
                        threads,
                        code,
                        log: log_path.display().to_string(),
                    });
                }
                None => {
                    return Err(BenchError::Interrupted { threads, code });
                }
            }
        }
        results.push((threads, runs));
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_placeholder_is_replaced_in_every_argument() {
        let command: Vec<OsString> = ["make", "-j{threads}", "--x={threads},{threads}", "plain"]
            .map(OsString::from)
            .to_vec();
        assert_eq!(
            substitute(&command, 4),
            ["make", "-j4", "--x=4,4", "plain"]
                .map(OsString::from)
                .to_vec()
        );
    }
}
