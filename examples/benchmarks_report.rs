//! `benchmarks_report`: renders `benches/compare.sh`'s raw results as `docs/benchmarks.md`
//! (a table per workload with every contender's cell, and issue #11's goals marked met or
//! not) and `docs/benchmarks.svg` (wall time ÷ the oracle's per contender, grouped by
//! workload, failed runs marked with a red cross and `k/N`).
//!
//! ```text
//! benchmarks_report --results RESULTS.tsv --meta META.tsv --markdown FILE.md --svg FILE.svg
//! ```
//!
//! RESULTS.tsv has a header line, then one line per run, tab-separated: workload, contender,
//! run index, exit code, wall seconds, peak memory bytes, host memory PSI "some" stall
//! microseconds during the run, tasks done, OOM kills, note. `-` is unknown; a contender
//! that could not run has one line with `-` in every figure and the reason in its note.
//! META.tsv has `info KEY VALUE` lines (date, command, mode, runs, kernel, cpus, memory,
//! cgroup, systemd, psi, elapsed), `workload NAME BUDGET MAX STATIC_COMMAND
//! FOLLOW_COMMAND` lines and `skipped NAME REASON` lines. The contenders are `unmanaged-max`,
//! `systemd-memorymax`, `systemd-memoryhigh`, `systemd-oomd`, `static-K`, `resctl-first`
//! and `resctl-second`; the oracle is the `static-K` with the lowest median wall among those
//! that finished (exit 0) in every run.
//!
//! Each cell: completion (k of N runs exited 0), the median wall of the finished runs, that
//! ÷ the oracle's median, work lost (wall seconds of the runs that did not finish), the
//! highest peak memory, OOM kills, the median host-wide PSI stall per run, and the median
//! tasks done. Text from the results (commands, reasons) is escaped for Markdown and SVG.
//! A summary goes to stdout. The parsing and aggregation are unit-tested:
//! `cargo test --example benchmarks_report`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use resctl::job_text::escape;
use resctl::units::format_size;

/// Issue #11's goal for a first run: at most this many times the oracle's wall time.
const FIRST_RUN_GOAL: f64 = 1.10;
/// Issue #11's goal for a second run (starting from the job's history).
const SECOND_RUN_GOAL: f64 = 1.05;
/// Runs of each contender the goals are judged over (issue #11: "0 OOM kills in 10 runs").
const GOAL_RUNS: u32 = 10;
/// Columns of a results line.
const RESULT_COLUMNS: usize = 10;
/// Width and height of the chart, pixels.
const SVG_SIZE: (u32, u32) = (1200, 720);
/// Room right of the chart for its legend, pixels.
const LEGEND_WIDTH: i32 = 330;
/// Bars taller than this (× the oracle) are cut at it and labelled.
const RATIO_CAP: f64 = 4.0;
/// Colour of failed runs' crosses and labels.
const FAILED_COLOR: RGBColor = RGBColor(214, 39, 40);

/// The contenders drawn in the chart and listed first in each table, in that order: name in
/// the results, label in the table, label in the legend, colour.
const CONTENDERS: [(&str, &str, &str, RGBColor); 7] = [
    (
        "unmanaged-max",
        "unmanaged max (MAX workers, OOM killer only)",
        "unmanaged max",
        RGBColor(127, 127, 127),
    ),
    (
        "systemd-memorymax",
        "systemd-run -p MemoryMax=B",
        "systemd-run MemoryMax",
        RGBColor(140, 86, 75),
    ),
    (
        "systemd-memoryhigh",
        "systemd-run -p MemoryHigh=0.9B -p MemoryMax=B",
        "systemd-run MemoryHigh+Max",
        RGBColor(227, 119, 194),
    ),
    (
        "systemd-oomd",
        "systemd-oomd (ManagedOOMMemoryPressure=kill)",
        "systemd-oomd",
        RGBColor(188, 189, 34),
    ),
    (
        ORACLE,
        "oracle (fastest static count that always finished)",
        "oracle",
        RGBColor(44, 160, 44),
    ),
    (
        "resctl-first",
        "resctl, first run (no history)",
        "resctl first run",
        RGBColor(31, 119, 180),
    ),
    (
        "resctl-second",
        "resctl, second run (history of one run)",
        "resctl second run",
        RGBColor(255, 127, 14),
    ),
];
/// The derived contender: the best static count.
const ORACLE: &str = "oracle";

/// One line of the results.
#[derive(Debug, Clone, PartialEq)]
struct RunLine {
    workload: String,
    contender: String,
    /// `None` for a contender that could not run (its note says why).
    run: Option<u32>,
    exit: Option<i32>,
    wall: Option<f64>,
    peak: Option<u64>,
    stall_us: Option<u64>,
    tasks: Option<u64>,
    oom_kills: Option<u64>,
    note: String,
}

/// A workload as the script ran it.
#[derive(Debug, Clone, PartialEq)]
struct Workload {
    name: String,
    budget: String,
    max: String,
    static_command: String,
    follow_command: String,
}

/// META.tsv.
#[derive(Debug, Default, Clone, PartialEq)]
struct Meta {
    info: BTreeMap<String, String>,
    workloads: Vec<Workload>,
    /// Workloads not run, with why.
    skipped: Vec<(String, String)>,
}

impl Meta {
    /// An `info` value, or `?`.
    fn get(&self, key: &str) -> &str {
        self.info.get(key).map_or("?", String::as_str)
    }
}

/// One contender's figures on one workload.
#[derive(Debug, Clone, PartialEq)]
struct Cell {
    contender: String,
    /// Why it did not run here, if it did not.
    unavailable: Option<String>,
    runs: usize,
    finished: usize,
    /// Runs that compare.sh stopped at its run timeout (exit 124): not finished, not killed.
    timed_out: usize,
    /// Median wall of the finished runs.
    median_wall: Option<f64>,
    /// Wall seconds of the runs that did not finish.
    work_lost: f64,
    peak: Option<u64>,
    oom_kills: Option<u64>,
    /// Median host PSI stall per run, microseconds.
    stall_us: Option<u64>,
    tasks: Option<u64>,
}

impl Cell {
    /// Whether every run finished (and there was at least one).
    fn all_finished(&self) -> bool {
        self.runs > 0 && self.finished == self.runs
    }
}

/// One workload's cells and its oracle.
#[derive(Debug, Clone)]
struct WorkloadReport {
    name: String,
    /// Every contender that has lines, static counts included (by count), and the oracle.
    cells: Vec<Cell>,
    /// The oracle's static count and its median wall.
    oracle: Option<(u32, f64)>,
}

impl WorkloadReport {
    /// The cell of `contender` (the oracle's is its static count's, renamed).
    fn cell(&self, contender: &str) -> Option<&Cell> {
        self.cells.iter().find(|cell| cell.contender == contender)
    }

    /// `cell`'s median wall ÷ the oracle's.
    fn ratio(&self, cell: &Cell) -> Option<f64> {
        let (_, oracle) = self.oracle?;
        let wall = cell.median_wall?;
        (oracle > 0.0).then(|| wall / oracle)
    }
}

/// One of issue #11's goals on one workload.
#[derive(Debug, Clone, PartialEq)]
struct Goal {
    what: String,
    figure: String,
    met: bool,
}

/// Parses `field` as `T`, `-` (or empty) as unknown.
fn optional<T: std::str::FromStr>(
    field: &str,
    what: &str,
    line: usize,
) -> Result<Option<T>, String> {
    match field.trim() {
        "" | "-" => Ok(None),
        text => text
            .parse()
            .map(Some)
            .map_err(|_| format!("line {line}: {what} {:?} is not a number", escape(text))),
    }
}

/// Parses RESULTS.tsv (the header line first).
fn parse_results(text: &str) -> Result<Vec<RunLine>, String> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, header)) if header.starts_with("workload\tcontender\t") => {}
        _ => return Err("line 1: expected the header line (workload, contender, ...)".into()),
    }
    let mut runs = Vec::new();
    for (index, line) in lines {
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() != RESULT_COLUMNS {
            return Err(format!(
                "line {number}: {} fields, expected {RESULT_COLUMNS}",
                fields.len()
            ));
        }
        if fields[0].is_empty() || fields[1].is_empty() {
            return Err(format!("line {number}: no workload or contender"));
        }
        runs.push(RunLine {
            workload: fields[0].to_string(),
            contender: fields[1].to_string(),
            run: optional(fields[2], "run", number)?,
            exit: optional(fields[3], "exit code", number)?,
            wall: optional(fields[4], "wall seconds", number)?,
            peak: optional(fields[5], "peak memory", number)?,
            stall_us: optional(fields[6], "PSI stall", number)?,
            tasks: optional(fields[7], "tasks done", number)?,
            oom_kills: optional(fields[8], "OOM kills", number)?,
            note: fields[9].to_string(),
        });
    }
    Ok(runs)
}

/// Parses META.tsv.
fn parse_meta(text: &str) -> Result<Meta, String> {
    let mut meta = Meta::default();
    for (index, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            [] | [""] => {}
            ["info", key, value] => {
                meta.info.insert((*key).to_string(), (*value).to_string());
            }
            ["workload", name, budget, max, static_command, follow_command] => {
                meta.workloads.push(Workload {
                    name: (*name).to_string(),
                    budget: (*budget).to_string(),
                    max: (*max).to_string(),
                    static_command: (*static_command).to_string(),
                    follow_command: (*follow_command).to_string(),
                })
            }
            ["skipped", name, reason] => meta
                .skipped
                .push(((*name).to_string(), (*reason).to_string())),
            _ => {
                return Err(format!(
                    "line {}: not an info, workload or skipped line: {:?}",
                    index + 1,
                    escape(line)
                ))
            }
        }
    }
    Ok(meta)
}

/// The median of `values` (the mean of the middle two for an even count); `None` if empty.
fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[middle]),
        _ => Some((sorted[middle - 1] + sorted[middle]) / 2.0),
    }
}

/// The median of whole numbers (rounded down when it falls between two).
fn median_whole(values: &[u64]) -> Option<u64> {
    let floats: Vec<f64> = values.iter().map(|&v| v as f64).collect();
    median(&floats).map(|m| m as u64)
}

/// The exit status compare.sh gives a run it stopped at its run timeout (as `timeout` does).
const RUN_TIMEOUT_EXIT: i32 = 124;

/// One contender's cell from its lines.
fn aggregate(contender: &str, lines: &[&RunLine]) -> Cell {
    let unavailable = lines
        .iter()
        .find(|line| line.run.is_none())
        .map(|line| line.note.clone());
    let runs: Vec<&&RunLine> = lines.iter().filter(|line| line.run.is_some()).collect();
    let finished: Vec<&&RunLine> = runs.iter().copied().filter(|l| l.exit == Some(0)).collect();
    let walls: Vec<f64> = finished.iter().filter_map(|l| l.wall).collect();
    let work_lost = runs
        .iter()
        .filter(|l| l.exit != Some(0))
        .filter_map(|l| l.wall)
        // A fold from +0.0: the float `sum` of nothing is -0.0.
        .fold(0.0, |sum, wall| sum + wall);
    let known = |values: Vec<Option<u64>>| -> Option<Vec<u64>> {
        let known: Vec<u64> = values.into_iter().flatten().collect();
        (!known.is_empty()).then_some(known)
    };
    Cell {
        contender: contender.to_string(),
        unavailable,
        runs: runs.len(),
        finished: finished.len(),
        timed_out: runs
            .iter()
            .filter(|l| l.exit == Some(RUN_TIMEOUT_EXIT))
            .count(),
        median_wall: median(&walls),
        work_lost,
        peak: known(runs.iter().map(|l| l.peak).collect()).and_then(|v| v.into_iter().max()),
        oom_kills: known(runs.iter().map(|l| l.oom_kills).collect()).map(|v| v.iter().sum()),
        stall_us: known(runs.iter().map(|l| l.stall_us).collect()).and_then(|v| median_whole(&v)),
        tasks: known(runs.iter().map(|l| l.tasks).collect()).and_then(|v| median_whole(&v)),
    }
}

/// The static count of a `static-K` contender.
fn static_count(contender: &str) -> Option<u32> {
    contender.strip_prefix("static-")?.parse().ok()
}

/// Every workload's cells (in META's order, then any others in the results), and its oracle.
fn build_reports(meta: &Meta, lines: &[RunLine]) -> Vec<WorkloadReport> {
    let mut names: Vec<String> = meta.workloads.iter().map(|w| w.name.clone()).collect();
    for line in lines {
        if !names.contains(&line.workload) {
            names.push(line.workload.clone());
        }
    }
    names
        .into_iter()
        .map(|name| {
            let mine: Vec<&RunLine> = lines.iter().filter(|l| l.workload == name).collect();
            let mut contenders: Vec<String> = Vec::new();
            for line in &mine {
                if !contenders.contains(&line.contender) {
                    contenders.push(line.contender.clone());
                }
            }
            let mut cells: Vec<Cell> = contenders
                .iter()
                .map(|contender| {
                    let of: Vec<&RunLine> = mine
                        .iter()
                        .copied()
                        .filter(|l| &l.contender == contender)
                        .collect();
                    aggregate(contender, &of)
                })
                .collect();
            let oracle = cells
                .iter()
                .filter(|cell| cell.all_finished())
                .filter_map(|cell| Some((static_count(&cell.contender)?, cell.median_wall?)))
                .min_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((count, _)) = oracle {
                if let Some(best) = cells
                    .iter()
                    .find(|c| c.contender == format!("static-{count}"))
                {
                    let mut renamed = best.clone();
                    renamed.contender = ORACLE.to_string();
                    cells.push(renamed);
                }
            }
            WorkloadReport {
                name,
                cells,
                oracle,
            }
        })
        .collect()
}

/// Issue #11's goals on one workload, each with its figure.
fn goals(report: &WorkloadReport) -> Vec<Goal> {
    let mut goals = Vec::new();
    for (contender, label, goal) in [
        ("resctl-first", "resctl first run", FIRST_RUN_GOAL),
        ("resctl-second", "resctl second run", SECOND_RUN_GOAL),
    ] {
        let what = format!("{label} ≤ {goal:.2}× the oracle");
        let Some(cell) = report.cell(contender) else {
            goals.push(Goal {
                what,
                figure: "not run".into(),
                met: false,
            });
            continue;
        };
        let (figure, met) = match (report.ratio(cell), report.oracle) {
            (_, None) => (
                "no oracle: no static count finished every run".to_string(),
                false,
            ),
            (None, Some(_)) => (format!("{}/{} finished", cell.finished, cell.runs), false),
            (Some(ratio), Some((count, wall))) => {
                let mut figure = format!(
                    "{ratio:.2}× ({:.2} s vs static {count} {wall:.2} s)",
                    cell.median_wall.unwrap_or(0.0)
                );
                if !cell.all_finished() {
                    figure.push_str(&format!(", only {}/{} finished", cell.finished, cell.runs));
                }
                (figure, ratio <= goal && cell.all_finished())
            }
        };
        goals.push(Goal { what, figure, met });
    }
    let resctl: Vec<&Cell> = ["resctl-first", "resctl-second"]
        .iter()
        .filter_map(|c| report.cell(c))
        .collect();
    let runs: usize = resctl.iter().map(|c| c.runs).sum();
    let kills: Option<u64> = resctl
        .iter()
        .map(|c| c.oom_kills)
        .try_fold(0, |sum, kills| kills.map(|k| sum + k));
    let unfinished: usize = resctl.iter().map(|c| c.runs - c.finished).sum();
    let (figure, met) = match kills {
        _ if runs == 0 => ("not run".to_string(), false),
        None => (
            format!("unknown (no summary), {unfinished} run(s) unfinished"),
            false,
        ),
        Some(kills) => (
            format!("{kills} in {runs} runs ({unfinished} unfinished)"),
            kills == 0 && unfinished == 0,
        ),
    };
    goals.push(Goal {
        what: "resctl: 0 OOM kills (first and second runs)".into(),
        figure,
        met,
    });
    goals
}

/// `text` from the results made safe inside Markdown text (and a table cell).
fn md_text(text: &str) -> String {
    let mut shown = String::new();
    for ch in escape(text).chars() {
        match ch {
            '&' => shown.push_str("&amp;"),
            '<' => shown.push_str("&lt;"),
            '>' => shown.push_str("&gt;"),
            '|' | '*' | '_' | '`' | '[' | ']' | '\\' | '#' => {
                shown.push('\\');
                shown.push(ch);
            }
            _ => shown.push(ch),
        }
    }
    shown
}

/// `text` from the results as a Markdown code span (safe in a table cell).
fn md_code(text: &str) -> String {
    let shown = escape(text).replace('|', "\\|").replace('`', "'");
    format!("`{shown}`")
}

/// Seconds with two decimals.
fn seconds(value: f64) -> String {
    format!("{value:.2} s")
}

/// A cell's table row: label then the figures.
fn table_row(report: &WorkloadReport, label: &str, cell: Option<&Cell>) -> String {
    let Some(cell) = cell else {
        return format!("| {label} | not run | - | - | - | - | - | - | - |");
    };
    if let Some(why) = &cell.unavailable {
        return format!("| {label} | {} | - | - | - | - | - | - | - |", md_text(why));
    }
    let mut completion = if cell.all_finished() {
        format!("{}/{}", cell.finished, cell.runs)
    } else {
        format!("**{}/{}**", cell.finished, cell.runs)
    };
    if cell.timed_out > 0 {
        completion.push_str(&format!(" ({} stopped at the run timeout)", cell.timed_out));
    }
    let ratio = match report.ratio(cell) {
        Some(ratio) => format!("{ratio:.2}×"),
        None => "-".into(),
    };
    format!(
        "| {label} | {completion} | {} | {ratio} | {} | {} | {} | {} | {} |",
        cell.median_wall.map_or("-".into(), seconds),
        seconds(cell.work_lost),
        cell.peak.map_or("-".into(), format_size),
        cell.oom_kills.map_or("-".into(), |k| k.to_string()),
        cell.stall_us
            .map_or("-".into(), |us| seconds(us as f64 / 1e6)),
        cell.tasks.map_or("-".into(), |t| t.to_string()),
    )
}

/// docs/benchmarks.md, whose chart is the file `chart` beside it.
fn markdown(meta: &Meta, reports: &[WorkloadReport], chart: &str) -> String {
    let mut md = String::new();
    let quick = meta.get("mode") == "quick";
    md.push_str("# Benchmarks: resctl side by side with what users would do instead\n\n");
    md.push_str(
        "Generated by `benches/compare.sh` (issue #11 item 5); do not edit by hand, run it again.\n\n",
    );
    if quick {
        md.push_str(
            "> **Quick run (`--quick`)**: small task counts and times, to try the script. \
             These figures are not the benchmark; run `benches/compare.sh` without `--quick`.\n\n",
        );
    }
    if let Some(runs) = meta
        .get("runs")
        .parse::<u32>()
        .ok()
        .filter(|&runs| !quick && runs < GOAL_RUNS)
    {
        md.push_str(&format!(
            "> **{runs} run(s) per contender, not the {GOAL_RUNS} the goals ask for**: the \
             completion figures say what these runs did, not what {GOAL_RUNS} would.\n\n"
        ));
    }
    md.push_str(&format!(
        "- date: {}\n- command: {}\n- runs per contender: {}\n- run timeout: {} (a run \
         stopped by it counts as not finished)\n- machine: Linux {}, {} CPUs, \
         {} memory, {}, systemd {}\n- host memory PSI: {} (\"some\" stall during each run, \
         **host-wide**: anything else running on the host counts too)\n- elapsed: {}\n\n",
        md_text(meta.get("date")),
        md_code(meta.get("command")),
        md_text(meta.get("runs")),
        md_text(meta.get("run timeout")),
        md_text(meta.get("kernel")),
        md_text(meta.get("cpus")),
        md_text(meta.get("memory")),
        md_text(meta.get("cgroup")),
        md_text(meta.get("systemd")),
        md_text(meta.get("psi")),
        md_text(meta.get("elapsed")),
    ));
    md.push_str(
        "Every contender runs the same job on the same memory budget B. The oracle is the \
         static worker count with the fastest median among those that finished every run \
         (found by trying each, as `resctl bench` does). Columns: finished runs (exit 0) of \
         all runs; median wall time of the finished runs; that ÷ the oracle's; work lost (wall \
         seconds of the runs that did not finish); highest peak memory of the job's cgroup \
         (resctl's summary; for systemd-run the scope's memory.peak at the job's end, or its \
         last reading, 0.2 s apart, where systemd stopped the scope after an OOM kill); OOM \
         kills (for systemd-run the kernel log's count for the scope); median host \
         PSI stall per run; median tasks done (pools: the pool's own count; make: recipes \
         finished).\n\n",
    );
    md.push_str("## Goals (issue #11)\n\n| workload | goal | figure | |\n|---|---|---|---|\n");
    for report in reports {
        for goal in goals(report) {
            md.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                md_text(&report.name),
                goal.what,
                md_text(&goal.figure),
                if goal.met { "met" } else { "**NOT met**" }
            ));
        }
    }
    for (name, reason) in &meta.skipped {
        md.push_str(&format!(
            "| {} | - | not run: {} | - |\n",
            md_text(name),
            md_text(reason)
        ));
    }
    md.push('\n');
    for report in reports {
        md.push_str(&format!("## {}\n\n", md_text(&report.name)));
        if let Some(workload) = meta.workloads.iter().find(|w| w.name == report.name) {
            md.push_str(&format!(
                "Budget B = {}, MAX = {} workers. Unsteered at MAX: {}. Following resctl: {}.\n\n",
                md_text(&workload.budget),
                md_text(&workload.max),
                md_code(&workload.static_command),
                md_code(&workload.follow_command),
            ));
        }
        md.push_str(
            "| contender | finished | median wall | ÷ oracle | work lost | peak memory | OOM kills | host PSI stall | tasks done |\n\
             |---|---|---|---|---|---|---|---|---|\n",
        );
        for (contender, label, _, _) in CONTENDERS {
            let label = match (contender, report.oracle) {
                (ORACLE, Some((count, _))) => format!("oracle = static {count}"),
                (ORACLE, None) => "oracle: no static count finished every run".into(),
                _ => label.to_string(),
            };
            md.push_str(&table_row(report, &label, report.cell(contender)));
            md.push('\n');
        }
        let mut statics: Vec<(u32, &Cell)> = report
            .cells
            .iter()
            .filter_map(|c| Some((static_count(&c.contender)?, c)))
            .collect();
        statics.sort_by_key(|(count, _)| *count);
        for (count, cell) in statics {
            md.push_str(&table_row(report, &format!("static {count}"), Some(cell)));
            md.push('\n');
        }
        md.push('\n');
    }
    for (name, reason) in &meta.skipped {
        md.push_str(&format!(
            "## {}\n\nNot run: {}.\n\n",
            md_text(name),
            md_text(reason)
        ));
    }
    md.push_str(&format!(
        "![wall time ÷ the oracle's, per workload and contender]({})\n",
        md_text(chart)
    ));
    md
}

/// docs/benchmarks.svg: per workload a group of bars, wall ÷ oracle per contender.
fn svg(meta: &Meta, reports: &[WorkloadReport]) -> Result<String, String> {
    let draw = |error: &dyn std::fmt::Display| error.to_string();
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, SVG_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw(&e))?;
        let title = ("sans-serif", 20)
            .into_font()
            .style(FontStyle::Bold)
            .color(&BLACK);
        let plain = ("sans-serif", 14).into_font().color(&BLACK);
        let mut header = vec![(
            "resctl side by side: median wall time ÷ the oracle's (lower is better)".to_string(),
            title,
        )];
        header.push((
            format!(
                "{}{}; {} run(s) per contender; $ {}",
                if meta.get("mode") == "quick" {
                    "QUICK RUN (not the benchmark), "
                } else {
                    ""
                },
                escape(meta.get("date")),
                escape(meta.get("runs")),
                escape(meta.get("command")),
            ),
            plain.clone(),
        ));
        header.push((
            format!(
                "Linux {}, {} CPUs, {} memory, {}, systemd {}",
                escape(meta.get("kernel")),
                escape(meta.get("cpus")),
                escape(meta.get("memory")),
                escape(meta.get("cgroup")),
                escape(meta.get("systemd")),
            ),
            plain.clone(),
        ));
        header.push((
            "red cross: runs that did not finish (k/N finished); n/a: not available on this host"
                .to_string(),
            plain,
        ));
        for (index, (line, style)) in header.iter().enumerate() {
            let y = 12 + 22 * i32::try_from(index).unwrap_or(0);
            root.draw(&Text::new(line.as_str(), (16, y), style.clone()))
                .map_err(|e| draw(&e))?;
        }
        let (_, body) = root.split_vertically(112);
        let groups = reports.len().max(1) as f64;
        let highest = reports
            .iter()
            .flat_map(|r| r.cells.iter().filter_map(|c| r.ratio(c)))
            .fold(1.2_f64, f64::max)
            .min(RATIO_CAP);
        let y_max = highest * 1.15;
        let mut chart = ChartBuilder::on(&body)
            .margin_left(12)
            .margin_right(LEGEND_WIDTH)
            .margin_top(8)
            .margin_bottom(8)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..groups, 0.0..y_max)
            .map_err(|e| draw(&e))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc("median wall ÷ oracle's")
            .y_label_formatter(&|value: &f64| format!("{value:.1}×"))
            .light_line_style(WHITE.mix(0.0))
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 14))
            .draw()
            .map_err(|e| draw(&e))?;
        for (reference, color) in [
            (1.0, BLACK.mix(0.6)),
            (FIRST_RUN_GOAL, FAILED_COLOR.mix(0.5)),
        ] {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(0.0, reference), (groups, reference)],
                    6,
                    4,
                    color.stroke_width(1),
                ))
                .map_err(|e| draw(&e))?;
        }
        let slot = 1.0 / (CONTENDERS.len() as f64 + 1.0);
        let small = ("sans-serif", 11).into_font().color(&BLACK);
        let failed = ("sans-serif", 11).into_font().color(&FAILED_COLOR);
        let name_style = ("sans-serif", 15)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Top));
        for (group, report) in reports.iter().enumerate() {
            let base = group as f64;
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((base + 0.5, 0.0))
                        + Text::new(escape(&report.name), (0, 10), name_style.clone()),
                ))
                .map_err(|e| draw(&e))?;
            for (index, (contender, _, _, color)) in CONTENDERS.iter().enumerate() {
                let left = base + slot * (index as f64 + 0.5);
                let centre = left + slot / 2.0;
                let cell = report.cell(contender);
                let label_at = |value: f64| EmptyElement::at((centre, value));
                match cell {
                    None => {}
                    Some(cell) if cell.unavailable.is_some() => {
                        chart
                            .draw_series(std::iter::once(
                                label_at(0.0) + Text::new("n/a", (-8, -16), small.clone()),
                            ))
                            .map_err(|e| draw(&e))?;
                    }
                    Some(cell) => {
                        let ratio = report.ratio(cell);
                        let height = ratio.unwrap_or(0.0).min(highest);
                        if ratio.is_some() {
                            chart
                                .draw_series(std::iter::once(Rectangle::new(
                                    [(left + slot * 0.08, 0.0), (left + slot * 0.92, height)],
                                    color.filled(),
                                )))
                                .map_err(|e| draw(&e))?;
                            let shown = ratio.map_or(String::new(), |r| format!("{r:.2}"));
                            chart
                                .draw_series(std::iter::once(
                                    label_at(height) + Text::new(shown, (-12, -14), small.clone()),
                                ))
                                .map_err(|e| draw(&e))?;
                        }
                        if !cell.all_finished() {
                            let mark = format!("{}/{}", cell.finished, cell.runs);
                            let at = if ratio.is_some() { height } else { 0.0 };
                            chart
                                .draw_series(std::iter::once(
                                    label_at(at)
                                        + Cross::new((0, -30), 6, FAILED_COLOR.stroke_width(3))
                                        + Text::new(mark, (-10, -48), failed.clone()),
                                ))
                                .map_err(|e| draw(&e))?;
                        }
                    }
                }
            }
        }
        let width = i32::try_from(SVG_SIZE.0).unwrap_or(0);
        let left = width - LEGEND_WIDTH + 24;
        let legend = ("sans-serif", 13)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        for (index, (_, _, short, color)) in CONTENDERS.iter().enumerate() {
            let y = 140 + 24 * i32::try_from(index).unwrap_or(0);
            root.draw(&Rectangle::new(
                [(left, y - 7), (left + 20, y + 7)],
                color.filled(),
            ))
            .map_err(|e| draw(&e))?;
            root.draw(&Text::new(*short, (left + 30, y), legend.clone()))
                .map_err(|e| draw(&e))?;
        }
        let y = 140 + 24 * i32::try_from(CONTENDERS.len()).unwrap_or(0);
        root.draw(&Text::new(
            format!("dashed: 1.00× and the first run's goal {FIRST_RUN_GOAL:.2}×"),
            (left, y),
            legend.clone(),
        ))
        .map_err(|e| draw(&e))?;
        for (index, (name, _)) in meta.skipped.iter().enumerate() {
            root.draw(&Text::new(
                format!("{}: not run", escape(name)),
                (left, y + 24 * (1 + i32::try_from(index).unwrap_or(0))),
                legend.clone(),
            ))
            .map_err(|e| draw(&e))?;
        }
        root.present().map_err(|e| draw(&e))?;
    }
    Ok(text)
}

/// The summary printed to stdout: one line per drawn contender and the goals.
fn summary(meta: &Meta, reports: &[WorkloadReport]) -> String {
    let mut out = String::new();
    for report in reports {
        let oracle = match report.oracle {
            Some((count, wall)) => format!("oracle static {count}: {wall:.2} s"),
            None => "no oracle".into(),
        };
        out.push_str(&format!("{} ({oracle})\n", escape(&report.name)));
        for (contender, _, short, _) in CONTENDERS {
            let line = match report.cell(contender) {
                None => "not run".to_string(),
                Some(cell) => match &cell.unavailable {
                    Some(why) => escape(why),
                    None => format!(
                        "{}/{} finished, median {}, {} the oracle, work lost {}, peak {}, OOM kills {}",
                        cell.finished,
                        cell.runs,
                        cell.median_wall.map_or("-".into(), seconds),
                        report.ratio(cell).map_or("-".into(), |r| format!("{r:.2}×")),
                        seconds(cell.work_lost),
                        cell.peak.map_or("-".into(), format_size),
                        cell.oom_kills.map_or("-".into(), |k| k.to_string()),
                    ),
                },
            };
            out.push_str(&format!("  {short:<28} {line}\n"));
        }
        for goal in goals(report) {
            let verdict = if goal.met { "met" } else { "NOT met" };
            out.push_str(&format!(
                "  goal: {} — {verdict}: {}\n",
                goal.what, goal.figure
            ));
        }
    }
    for (name, reason) in &meta.skipped {
        out.push_str(&format!("{} not run: {}\n", escape(name), escape(reason)));
    }
    out
}

/// The command line's four files.
struct Arguments {
    results: String,
    meta: String,
    markdown: String,
    svg: String,
}

/// Parses `--results FILE --meta FILE --markdown FILE --svg FILE`.
fn parse_arguments(mut arguments: impl Iterator<Item = String>) -> Result<Arguments, String> {
    let mut files: BTreeMap<&str, String> = BTreeMap::new();
    while let Some(flag) = arguments.next() {
        let key = match flag.as_str() {
            "--results" => "results",
            "--meta" => "meta",
            "--markdown" => "markdown",
            "--svg" => "svg",
            _ => return Err(format!("unexpected argument {:?}", escape(&flag))),
        };
        let value = arguments.next().ok_or(format!("{flag} needs a file"))?;
        files.insert(key, value);
    }
    let mut take = |key: &str| files.remove(key).ok_or(format!("missing --{key} FILE"));
    Ok(Arguments {
        results: take("results")?,
        meta: take("meta")?,
        markdown: take("markdown")?,
        svg: take("svg")?,
    })
}

/// Reads, renders, writes; the summary to stdout.
fn run(arguments: &Arguments) -> Result<(), String> {
    let read = |path: &str| {
        std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", escape(path)))
    };
    let lines = parse_results(&read(&arguments.results)?)
        .map_err(|error| format!("{}: {error}", escape(&arguments.results)))?;
    let meta = parse_meta(&read(&arguments.meta)?)
        .map_err(|error| format!("{}: {error}", escape(&arguments.meta)))?;
    let reports = build_reports(&meta, &lines);
    let write = |path: &str, text: &str| {
        std::fs::write(path, text).map_err(|error| format!("{}: {error}", escape(path)))
    };
    // The chart is named from the markdown's folder: the two are written side by side.
    let chart = std::path::Path::new(&arguments.svg)
        .file_name()
        .map_or_else(
            || arguments.svg.clone(),
            |name| name.to_string_lossy().into_owned(),
        );
    write(&arguments.markdown, &markdown(&meta, &reports, &chart))?;
    write(&arguments.svg, &svg(&meta, &reports)?)?;
    print!("{}", summary(&meta, &reports));
    println!(
        "wrote {} and {}",
        escape(&arguments.markdown),
        escape(&arguments.svg)
    );
    Ok(())
}

fn main() -> ExitCode {
    let outcome = parse_arguments(std::env::args().skip(1)).and_then(|a| run(&a));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!(
                "benchmarks_report: {message}\nusage: benchmarks_report --results FILE \
                 --meta FILE --markdown FILE --svg FILE"
            );
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "workload\tcontender\trun\texit\twall_s\tpeak_bytes\thost_psi_some_us\ttasks_done\toom_kills\tnote\n";

    fn line(workload: &str, contender: &str, run: u32, exit: i32, wall: f64) -> String {
        format!(
            "{workload}\t{contender}\t{run}\t{exit}\t{wall}\t1048576\t100\t8\t{}\t\n",
            u8::from(exit == 137)
        )
    }

    fn results(lines: &[String]) -> Vec<RunLine> {
        let text = format!("{HEADER}{}", lines.concat());
        match parse_results(&text) {
            Ok(lines) => lines,
            Err(error) => panic!("{error}"),
        }
    }

    #[test]
    fn unknown_figures_and_unavailable_contenders_parse() {
        let text = format!(
            "{HEADER}w\tsystemd-oomd\t-\t-\t-\t-\t-\t-\t-\tnot available here: no systemd\n\
             w\tstatic-1\t1\t0\t2.5\t-\t-\t-\t-\t\n"
        );
        let lines = parse_results(&text).unwrap_or_default();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].run, None);
        assert_eq!(lines[0].note, "not available here: no systemd");
        assert_eq!(lines[1].wall, Some(2.5));
        assert_eq!(lines[1].peak, None);
    }

    #[test]
    fn malformed_results_are_errors_with_the_line() {
        assert!(parse_results("nope\n").is_err());
        let short = parse_results(&format!("{HEADER}w\tc\t1\n"));
        assert!(matches!(short, Err(e) if e.starts_with("line 2:")));
        let bad = parse_results(&format!("{HEADER}w\tc\t1\t0\tfast\t-\t-\t-\t-\t\n"));
        assert!(matches!(bad, Err(e) if e.contains("wall seconds")));
    }

    #[test]
    fn meta_lines_parse_and_unknown_ones_are_refused() {
        let meta = parse_meta(
            "info\tdate\t2026-12-02\nworkload\tmake\t200M\t8\tmake -j8\t--jobserver=8 -- make\n\
             skipped\tcargo\tno registry\n",
        );
        let meta = meta.unwrap_or_default();
        assert_eq!(meta.get("date"), "2026-12-02");
        assert_eq!(meta.get("nothing"), "?");
        assert_eq!(meta.workloads[0].budget, "200M");
        assert_eq!(
            meta.skipped,
            [("cargo".to_string(), "no registry".to_string())]
        );
        assert!(parse_meta("bogus\tline\n").is_err());
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median_whole(&[1, 2]), Some(1));
    }

    #[test]
    fn the_oracle_is_the_fastest_count_that_always_finished() {
        let lines = results(&[
            line("w", "static-1", 1, 0, 40.0),
            line("w", "static-1", 2, 0, 42.0),
            line("w", "static-2", 1, 0, 20.0),
            line("w", "static-2", 2, 0, 22.0),
            // Faster, but OOM-killed once: not the oracle.
            line("w", "static-3", 1, 0, 15.0),
            line("w", "static-3", 2, 137, 5.0),
            line("w", "resctl-first", 1, 0, 23.1),
            line("w", "resctl-first", 2, 0, 23.1),
            line("w", "resctl-second", 1, 0, 21.0),
            line("w", "resctl-second", 2, 0, 21.0),
        ]);
        let reports = build_reports(&Meta::default(), &lines);
        let report = &reports[0];
        assert_eq!(report.oracle, Some((2, 21.0)));
        let static3 = report.cell("static-3").map(Clone::clone);
        let static3 = static3.unwrap_or_else(|| panic!("no static-3"));
        assert_eq!((static3.finished, static3.runs), (1, 2));
        assert_eq!(static3.work_lost, 5.0);
        assert_eq!(static3.oom_kills, Some(1));
        assert_eq!(static3.median_wall, Some(15.0));
        let oracle = report.cell(ORACLE).map(|c| c.median_wall);
        assert_eq!(oracle, Some(Some(21.0)));
        let goals = goals(report);
        assert_eq!(goals.len(), 3);
        // 23.1 / 21 = 1.10: met; 21 / 21 = 1.00: met; no OOM kill.
        assert!(goals.iter().all(|g| g.met), "{goals:?}");
        assert!(goals[0].figure.starts_with("1.10×"), "{}", goals[0].figure);
    }

    #[test]
    fn goals_are_not_met_by_slow_or_killed_runs() {
        let lines = results(&[
            line("w", "static-1", 1, 0, 10.0),
            line("w", "resctl-first", 1, 0, 12.0),
            line("w", "resctl-second", 1, 137, 3.0),
        ]);
        let report = &build_reports(&Meta::default(), &lines)[0];
        let goals = goals(report);
        assert!(!goals[0].met && goals[0].figure.starts_with("1.20×"));
        assert!(
            !goals[1].met && goals[1].figure == "0/1 finished",
            "{:?}",
            goals[1]
        );
        assert!(!goals[2].met && goals[2].figure.starts_with("1 in 2 runs"));
    }

    #[test]
    fn no_oracle_no_ratio() {
        let lines = results(&[
            line("w", "static-1", 1, 137, 1.0),
            line("w", "resctl-first", 1, 0, 9.0),
        ]);
        let report = &build_reports(&Meta::default(), &lines)[0];
        assert_eq!(report.oracle, None);
        assert!(report
            .cell("resctl-first")
            .is_some_and(|c| report.ratio(c).is_none()));
        assert!(!goals(report)[0].met);
    }

    #[test]
    fn job_text_is_escaped_in_markdown() {
        assert_eq!(md_text("a|b<c>*_`"), "a\\|b&lt;c&gt;\\*\\_\\`");
        assert_eq!(md_text("line\nbreak"), "line\\\\nbreak");
        assert_eq!(md_code("make `x` | y"), "`make 'x' \\| y`");
    }

    #[test]
    fn every_cell_is_filled_and_the_chart_draws() {
        let lines = results(&[
            line("w", "static-1", 1, 0, 10.0),
            line("w", "unmanaged-max", 1, 137, 2.0),
            line("w", "resctl-first", 1, 0, 11.0),
        ]);
        let mut meta = Meta::default();
        meta.skipped
            .push(("cargo".into(), "offline <build> impossible".into()));
        let reports = build_reports(&meta, &lines);
        let md = markdown(&meta, &reports, "benchmarks.svg");
        for row in md
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| contender"))
        {
            assert!(
                !row.contains("||") && !row.contains("|  |"),
                "empty cell: {row}"
            );
        }
        assert!(md.contains("not run: offline &lt;build&gt; impossible"));
        assert!(md.contains("| oracle = static 1 | 1/1 |"));
        let picture = svg(&meta, &reports).unwrap_or_else(|e| panic!("{e}"));
        assert!(picture.contains("0/1"));
        assert!(picture.contains("offline &lt;build&gt;") || picture.contains("cargo: not run"));
    }

    #[test]
    fn fewer_runs_than_the_goals_ask_for_are_flagged() {
        let lines = results(&[line("w", "static-1", 1, 0, 10.0)]);
        let banner = |mode: &str, runs: &str| {
            let mut meta = Meta::default();
            meta.info.insert("mode".into(), mode.into());
            meta.info.insert("runs".into(), runs.into());
            markdown(&meta, &build_reports(&meta, &lines), "b.svg")
                .contains("not the 10 the goals ask for")
        };
        assert!(banner("full", "3"));
        assert!(!banner("full", "10"));
        assert!(!banner("quick", "2"), "a quick run has its own banner");
    }

    #[test]
    fn runs_stopped_at_the_run_timeout_are_counted_apart_from_kills() {
        let lines = results(&[
            line("w", "static-1", 1, 0, 10.0),
            line("w", "systemd-memoryhigh", 1, RUN_TIMEOUT_EXIT, 60.0),
            line("w", "systemd-memoryhigh", 2, 143, 20.0),
        ]);
        let meta = Meta::default();
        let reports = build_reports(&meta, &lines);
        let text = markdown(&meta, &reports, "b.svg");
        assert!(
            text.contains("**0/2** (1 stopped at the run timeout)"),
            "{text}"
        );
        assert_eq!(text.matches("stopped at the run timeout").count(), 1);
    }

    #[test]
    fn arguments_need_all_four_files() {
        let parse = |list: &[&str]| parse_arguments(list.iter().map(|s| s.to_string()));
        assert!(parse(&["--results", "r", "--meta", "m", "--markdown", "x"]).is_err());
        assert!(parse(&[
            "--results",
            "r",
            "--meta",
            "m",
            "--markdown",
            "x",
            "--svg",
            "y"
        ])
        .is_ok());
        assert!(parse(&["--bogus"]).is_err());
    }
}
