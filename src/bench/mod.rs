//! `resctl bench`: runs a command at several thread counts, each run in its own cgroup
//! (through `resctl run`), and recommends a count. This module is the pure part: from the
//! runs' summaries to the table and the recommendation; [`runner`] starts the runs.
//!
//! The recommendation is the fewest threads whose median wall time is within `tolerance`
//! of the fastest count, among the counts whose every run succeeded under the budget — not
//! the original's argmax(efficiency), which is almost always one thread.

pub mod plot;
pub mod progress;
pub mod runner;

use std::time::Duration;

use serde::Serialize;

use crate::report::summary::RunSummary;
use crate::units::format_size;

/// One run's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchRun {
    /// Exit status resctl returned for the run (the job's, like a shell's).
    pub exit_code: i32,
    /// Wall-clock time.
    #[serde(with = "crate::units::serde_secs")]
    pub wall: Duration,
    /// CPU time of the job.
    #[serde(with = "crate::units::serde_secs")]
    pub cpu: Duration,
    /// Peak memory of the job, bytes.
    pub peak_memory: u64,
    /// Processes the kernel's OOM killer killed.
    pub oom_kills: u64,
}

impl From<&RunSummary> for BenchRun {
    fn from(summary: &RunSummary) -> Self {
        BenchRun {
            exit_code: summary.exit_code,
            wall: summary.wall,
            cpu: summary.cpu,
            peak_memory: summary.peak_memory,
            oom_kills: summary.oom_kills,
        }
    }
}

/// The runs of one thread count, with their medians.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CountResult {
    /// Thread count.
    pub threads: u32,
    /// Every run, in order.
    pub runs: Vec<BenchRun>,
    /// Whether every run exited 0 with no OOM kill.
    pub ok: bool,
    /// Median wall time of the runs, seconds.
    pub median_secs: f64,
    /// Mean wall time of the runs, seconds.
    pub mean_secs: f64,
    /// Standard deviation of the runs' wall times, seconds (sample σ; 0 for one run).
    pub stddev_secs: f64,
    /// Median CPU time, seconds.
    pub median_cpu_secs: f64,
    /// Highest peak memory of the runs, bytes.
    pub peak_memory: u64,
    /// Median wall time of the smallest count tried ÷ this count's (`None` unless both
    /// succeeded).
    pub speedup: Option<f64>,
    /// Speedup ÷ (this count ÷ the smallest count).
    pub efficiency: Option<f64>,
}

/// The whole benchmark: every count and the recommendation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// Per count, in the order tried.
    pub results: Vec<CountResult>,
    /// The recommended count, if any count succeeded.
    pub recommended: Option<u32>,
    /// Why.
    pub reason: String,
}

/// Median of `values` (the mean of the middle two for an even count); 0 for none.
fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

/// Mean and sample standard deviation of `values` (σ is 0 below two values).
fn mean_and_stddev(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let count = values.len() as f64;
    let mean = values.iter().sum::<f64>() / count;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (count - 1.0);
    (mean, variance.sqrt())
}

/// Aggregates the runs per count and picks the recommendation: the fewest threads within
/// `tolerance` (a fraction, 0.05 = 5 %) of the fastest successful count.
pub fn report(per_count: Vec<(u32, Vec<BenchRun>)>, tolerance: f64) -> BenchReport {
    let mut results: Vec<CountResult> = per_count
        .into_iter()
        .map(|(threads, runs)| {
            let ok = !runs.is_empty() && runs.iter().all(|r| r.exit_code == 0 && r.oom_kills == 0);
            let mut walls: Vec<f64> = runs.iter().map(|r| r.wall.as_secs_f64()).collect();
            let mut cpus: Vec<f64> = runs.iter().map(|r| r.cpu.as_secs_f64()).collect();
            let (mean_secs, stddev_secs) = mean_and_stddev(&walls);
            CountResult {
                threads,
                ok,
                mean_secs,
                stddev_secs,
                median_secs: median(&mut walls),
                median_cpu_secs: median(&mut cpus),
                peak_memory: runs.iter().map(|r| r.peak_memory).max().unwrap_or(0),
                runs,
                speedup: None,
                efficiency: None,
            }
        })
        .collect();
    let baseline = results
        .iter()
        .filter(|r| r.ok && r.median_secs > 0.0)
        .min_by_key(|r| r.threads)
        .map(|r| (r.threads, r.median_secs));
    if let Some((base_threads, base_secs)) = baseline {
        for result in results.iter_mut().filter(|r| r.ok && r.median_secs > 0.0) {
            let speedup = base_secs / result.median_secs;
            result.speedup = Some(speedup);
            result.efficiency =
                Some(speedup / (f64::from(result.threads) / f64::from(base_threads.max(1))));
        }
    }
    let fastest = results
        .iter()
        .filter(|r| r.ok)
        .min_by(|a, b| a.median_secs.total_cmp(&b.median_secs));
    let (recommended, reason) = match fastest {
        None => (
            None,
            "no thread count succeeded in every run (see the table)".to_owned(),
        ),
        Some(fastest) => {
            let limit = fastest.median_secs * (1.0 + tolerance);
            let chosen = results
                .iter()
                .filter(|r| r.ok && r.median_secs <= limit)
                .min_by_key(|r| r.threads)
                .unwrap_or(fastest);
            let reason = if chosen.threads == fastest.threads {
                format!(
                    "{} threads: the fastest ({:.2} s median)",
                    chosen.threads, chosen.median_secs
                )
            } else {
                format!(
                    "{} threads: {:.2} s median, within {:.0} % of the fastest ({} threads, {:.2} s) with fewer threads",
                    chosen.threads,
                    chosen.median_secs,
                    tolerance * 100.0,
                    fastest.threads,
                    fastest.median_secs
                )
            };
            (Some(chosen.threads), reason)
        }
    };
    BenchReport {
        results,
        recommended,
        reason,
    }
}

/// The table's column titles; the last one, the outcome, is not padded.
const HEADER: [&str; 11] = [
    "threads",
    "runs",
    "median s",
    "mean ± σ s",
    "min s",
    "max s",
    "cpu s",
    "peak",
    "speedup",
    "efficiency",
    "outcome",
];
/// Widths of the padded columns of the table for people.
const COLUMN_WIDTHS: [usize; 10] = [7, 4, 10, 15, 8, 8, 8, 9, 8, 10];

/// One count's row, every cell as text; speedups end in `times` (`x`, `×`).
fn cells(result: &CountResult, times: &str) -> [String; 11] {
    let (min, max) = wall_range(result);
    [
        result.threads.to_string(),
        result.runs.len().to_string(),
        format!("{:.2}", result.median_secs),
        format!("{:.2} ± {:.2}", result.mean_secs, result.stddev_secs),
        format!("{min:.2}"),
        format!("{max:.2}"),
        format!("{:.2}", result.median_cpu_secs),
        format_size(result.peak_memory),
        optional(result.speedup, times),
        optional(result.efficiency, ""),
        outcome(result),
    ]
}

/// The shortest and longest wall time of a count's runs, seconds (0 for none).
fn wall_range(result: &CountResult) -> (f64, f64) {
    let walls = result.runs.iter().map(|r| r.wall.as_secs_f64());
    let min = walls.clone().fold(f64::INFINITY, f64::min);
    let max = walls.fold(0.0, f64::max);
    (if min.is_finite() { min } else { 0.0 }, max)
}

/// `value` with two decimals and `suffix`, or `-`.
fn optional(value: Option<f64>, suffix: &str) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}{suffix}"))
}

/// Why a count failed, for the table: "ok", "2× OOM", "exit 1", ...
fn outcome(result: &CountResult) -> String {
    if result.ok {
        return "ok".to_owned();
    }
    let oom = result.runs.iter().filter(|r| r.oom_kills > 0).count();
    let mut codes: Vec<i32> = result
        .runs
        .iter()
        .filter(|r| r.oom_kills == 0 && r.exit_code != 0)
        .map(|r| r.exit_code)
        .collect();
    codes.sort_unstable();
    codes.dedup();
    let mut parts = Vec::new();
    if oom > 0 {
        parts.push(format!("{oom}× OOM"));
    }
    if !codes.is_empty() {
        let codes: Vec<String> = codes.iter().map(i32::to_string).collect();
        parts.push(format!("exit {}", codes.join(",")));
    }
    parts.join(", ")
}

impl BenchReport {
    /// The count the speedups are relative to: the smallest that succeeded (`None` when
    /// none did).
    pub fn baseline(&self) -> Option<u32> {
        self.results
            .iter()
            .filter(|r| r.speedup.is_some())
            .map(|r| r.threads)
            .min()
    }

    /// The table and the recommendation, for people.
    pub fn render(&self) -> Vec<String> {
        let padded = |cells: &[String]| {
            let columns: Vec<String> = cells[..COLUMN_WIDTHS.len()]
                .iter()
                .zip(COLUMN_WIDTHS)
                .map(|(cell, width)| format!("{cell:>width$}"))
                .collect();
            format!("{}  {}", columns.join(" "), cells[COLUMN_WIDTHS.len()])
        };
        let mut lines = vec![padded(&HEADER.map(str::to_owned))];
        lines.extend(
            self.results
                .iter()
                .map(|result| padded(&cells(result, "x"))),
        );
        lines.push(self.verdict());
        lines
    }

    /// The recommendation in one line.
    fn verdict(&self) -> String {
        match self.recommended {
            Some(_) => format!("recommended: {}", self.reason),
            None => format!("no recommendation: {}", self.reason),
        }
    }

    /// The table as Markdown (`--export-markdown`), the recommendation below it.
    pub fn markdown(&self) -> String {
        let row = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        let mut markdown_header = HEADER.map(str::to_owned);
        markdown_header[7] = "peak memory".to_owned();
        let mut out = row(&markdown_header);
        out.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
        for result in &self.results {
            out.push_str(&row(&cells(result, "×")));
        }
        out.push('\n');
        out.push_str(&self.verdict());
        out.push('\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(secs: f64, exit_code: i32, oom_kills: u64) -> BenchRun {
        BenchRun {
            exit_code,
            wall: Duration::from_secs_f64(secs),
            cpu: Duration::from_secs_f64(secs / 2.0),
            peak_memory: 10 << 20,
            oom_kills,
        }
    }

    #[test]
    fn recommends_the_fewest_threads_near_the_fastest() {
        let report = report(
            vec![
                (1, vec![run(8.0, 0, 0), run(8.2, 0, 0), run(7.9, 0, 0)]),
                (2, vec![run(4.1, 0, 0), run(4.0, 0, 0), run(4.3, 0, 0)]),
                (4, vec![run(3.95, 0, 0), run(4.0, 0, 0), run(3.9, 0, 0)]),
                (8, vec![run(1.0, 137, 1), run(3.0, 0, 0), run(3.0, 0, 0)]),
            ],
            0.05,
        );
        assert_eq!(report.results[0].median_secs, 8.0);
        assert_eq!(report.results[1].median_secs, 4.1);
        // 2 threads (4.1 s) is within 5 % of 4 threads (3.95 s); 8 failed once.
        assert_eq!(report.recommended, Some(2));
        assert!(
            report
                .reason
                .contains("within 5 % of the fastest (4 threads, 3.95 s)"),
            "{}",
            report.reason
        );
        assert!(!report.results[3].ok);
        let speedup = report.results[1].speedup.unwrap();
        assert!((speedup - 8.0 / 4.1).abs() < 1e-9);
        let efficiency = report.results[2].efficiency.unwrap();
        assert!((efficiency - 8.0 / 3.95 / 4.0).abs() < 1e-9);
        assert_eq!(report.results[3].speedup, None);
        let table = report.render();
        assert!(table[4].ends_with("1× OOM"), "{}", table[4]);
        assert!(table.last().unwrap().starts_with("recommended: 2 threads"));
    }

    #[test]
    fn with_a_tolerance_of_zero_the_fastest_wins() {
        let report = report(
            vec![(1, vec![run(2.0, 0, 0)]), (2, vec![run(1.9, 0, 0)])],
            0.0,
        );
        assert_eq!(report.recommended, Some(2));
        assert_eq!(report.reason, "2 threads: the fastest (1.90 s median)");
    }

    #[test]
    fn nothing_succeeded_means_no_recommendation() {
        let report = report(
            vec![
                (4, vec![run(0.3, 137, 1)]),
                (8, vec![run(0.2, 1, 0)]),
                (16, vec![]),
            ],
            0.05,
        );
        assert_eq!(report.recommended, None);
        let table = report.render();
        assert!(table[1].ends_with("1× OOM"));
        assert!(table[2].ends_with("exit 1"));
        assert!(table.last().unwrap().starts_with("no recommendation"));
    }

    #[test]
    fn medians_of_even_and_odd_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }
}
