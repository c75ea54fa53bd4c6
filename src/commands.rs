//! What each subcommand does, once its arguments are parsed. Every command returns an
//! [`Outcome`]: its exit code, or a [`Failure`] whose kind decides the code in one place
//! ([`exit_code`]), which also logs it — failures always go to the log (`resctl: error: …`
//! on stderr, or the journal), results always to stdout.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::act::jobserver::AuthForm;
use crate::bench::plot::{self, PlotCaption};
use crate::bench::progress::Progress;
use crate::bench::runner::{run_all, BenchError, BenchPlan};
use crate::cgroup::detect::detect;
use crate::cli::{
    BenchArgs, ConfigSource, DaemonArgs, DoctorArgs, HistoryCommand, JobserverStyle, MetricsArgs,
    RecommendArgs, ReplayArgs, RunArgs, StatusArgs,
};
use crate::config::explain::Explanation;
use crate::config::resolve::{resolve, RunFlags};
use crate::config::{Config, Overrides};
use crate::control::client::{self, ClientError};
use crate::control::overview;
use crate::control::protocol::Request;
use crate::doctor::DoctorReport;
use crate::exit::RESCTL_FAILED;
use crate::history::store::{default_dir, HistoryStore, JobHistory, Lookup};
use crate::history::{file_name, job_key, JobRecord, SweepCount};
use crate::job_text;
use crate::report::metrics_export::MetricsOptions;
use crate::report::record::read_trace;
use crate::run::setup::facts_for_new_job;
use crate::run::user::JobUser;
use crate::run::{run, RunRequest};
use crate::safe_fs::{Folder, OutputFile};
use crate::units::{format_size, parse_duration, parse_limit, Limit};

/// What a command ended with: its exit code, or why it failed.
pub type Outcome = Result<i32, Failure>;

/// Why a command failed; [`Failure::code`] is the one place its exit code is chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// resctl could not do what was asked before anything ran: bad arguments or
    /// configuration, no cgroup — 125, like `env` and `timeout`.
    #[error("{0}")]
    Usage(String),
    /// The command ran and its answer is no: a configuration that does not check, a trace
    /// that cannot be read, a refused request, no count of a sweep that succeeded — 1.
    #[error("{0}")]
    Failed(String),
    /// A command meant for inside a job ran outside one (`RESCTL_SOCKET` unset) — 2.
    #[error("{0}")]
    NotInRun(String),
}

impl Failure {
    /// The exit code of this kind of failure.
    pub fn code(&self) -> i32 {
        match self {
            Failure::Usage(_) => RESCTL_FAILED,
            Failure::Failed(_) => 1,
            Failure::NotInRun(_) => 2,
        }
    }
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::NotInsideRun => Failure::NotInRun(error.to_string()),
            other => Failure::Failed(other.to_string()),
        }
    }
}

/// The exit code of an outcome; a failure is logged here, once.
pub fn exit_code(outcome: Outcome) -> i32 {
    match outcome {
        Ok(code) => code,
        Err(failure) => {
            tracing::error!("{failure}");
            failure.code()
        }
    }
}

/// The configuration file read when none is named.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/resctl/resctl.yaml";

/// Loads the configuration named by `source`, else the default file if it
/// exists, else the built-in defaults.
pub fn load_config(source: &ConfigSource) -> Result<Config, String> {
    let path = match &source.file {
        Some(path) => Some(path.clone()),
        None => Some(PathBuf::from(DEFAULT_CONFIG_PATH)).filter(|p| p.exists()),
    };
    match path {
        Some(path) => Config::load(&path).map_err(|err| err.to_string()),
        None => Ok(Config::default()),
    }
}

fn flag_limit(flag: &str, value: &Option<String>) -> Result<Option<Limit>, String> {
    value
        .as_deref()
        .map(|v| parse_limit(v).map_err(|err| format!("--{flag} {v}: {err}")))
        .transpose()
}

/// The configuration overrides that `resctl run`'s flags make.
pub fn overrides_from(args: &RunArgs) -> Result<Overrides, String> {
    Ok(Overrides {
        memory_high: flag_limit("memory-high", &args.memory_high)?,
        memory_max: flag_limit("memory-max", &args.memory_max)?,
        moderate: flag_limit("moderate", &args.moderate)?,
        high: flag_limit("high", &args.high)?,
        critical: flag_limit("critical", &args.critical)?,
        interval: args
            .interval
            .as_deref()
            .map(|v| parse_duration(v).map_err(|err| format!("--interval {v}: {err}")))
            .transpose()?,
        min_threads: args.min_threads,
        max_threads: args.max_threads,
        slice: args.slice.clone(),
        notify_signal: args.notify_signal.clone(),
        priority: args.priority,
    })
}

/// `resctl run`.
pub fn run_job(args: Box<RunArgs>, reexec_args: Vec<OsString>) -> Outcome {
    let config = effective_run_config(&args).map_err(Failure::Usage)?;
    let jobserver_form = match args.jobserver_style {
        JobserverStyle::Auto => None,
        JobserverStyle::Pipe => Some(AuthForm::Pipe),
        JobserverStyle::Fifo => Some(AuthForm::Fifo),
    };
    let user = args
        .user
        .as_deref()
        .map(|spec| JobUser::resolve(spec, nix::unistd::geteuid()))
        .transpose()
        .map_err(|error| Failure::Usage(error.to_string()))?;
    let history = (!args.no_history).then(|| {
        JobHistory::open(job_key(
            args.job_key.as_deref(),
            &args.command,
            &working_folder(),
        ))
    });
    // --priority, else the slice's priority:, else the top-level one, else 0.
    let priority = config.priority;
    let job_name = args
        .job_key
        .clone()
        .unwrap_or_else(|| program_name(&args.command));
    Ok(run(RunRequest {
        history,
        flags: RunFlags {
            threads: args.threads,
            jobserver: args.jobserver,
        },
        jobserver_form,
        user,
        config,
        command: args.command,
        record: args.record,
        summary_json: args.summary_json,
        metrics: args.metrics.clone().into(),
        job_name,
        priority,
        cgroup_parent: args.cgroup_parent,
        monitor_only: args.monitor_only,
        reexec_args,
        slice_requested: args.slice.is_some(),
    }))
}

fn effective_run_config(args: &RunArgs) -> Result<Config, String> {
    let overrides = overrides_from(args)?;
    let base = load_config(&args.source)?;
    let slice = overrides
        .slice
        .clone()
        .unwrap_or_else(|| base.slice.clone());
    let mut config = base.for_slice(&slice);
    config.apply(&overrides).map_err(|err| err.to_string())?;
    Ok(config)
}

/// `resctl config check FILE`.
pub fn config_check(file: &Path) -> Outcome {
    Config::load(file).map_err(|err| Failure::Failed(err.to_string()))?;
    print(&format!("{}: ok", file.display()))
}

/// `resctl config show`.
pub fn config_show(source: &ConfigSource, slice: Option<&str>) -> Outcome {
    let config = load_config(source).map_err(Failure::Failed)?;
    let config = match slice {
        Some(slice) => config.for_slice(slice),
        None => config,
    };
    print(config.to_yaml().trim_end())
}

/// `resctl config show --resolved`: the budget, levels and thread bounds a job started here
/// now would get, each with its source.
pub fn config_show_resolved(
    source: &ConfigSource,
    slice: Option<&str>,
    memory_max: Option<&str>,
    cgroup_parent: Option<&Path>,
) -> Outcome {
    let base = load_config(source).map_err(Failure::Failed)?;
    let mut config = base.for_slice(slice.unwrap_or(&base.slice));
    let overrides = Overrides {
        memory_max: flag_limit("memory-max", &memory_max.map(str::to_owned))
            .map_err(Failure::Usage)?,
        ..Overrides::default()
    };
    config
        .apply(&overrides)
        .map_err(|err| Failure::Usage(err.to_string()))?;
    let explanation = explain_new_job(&config, cgroup_parent)
        .map_err(|message| Failure::Failed(format!("config show: {message}")))?;
    print(explanation.render().trim_end())
}

/// What a job started here now with `config` (under `cgroup_parent`) would get: the host's
/// facts read, the run resolved, and each value's source.
fn explain_new_job(config: &Config, cgroup_parent: Option<&Path>) -> Result<Explanation, String> {
    let host = detect(
        Path::new(crate::sample::procfs::DEFAULT_PROC_ROOT),
        Path::new("/"),
    )
    .map_err(|err| err.to_string())?;
    let facts = facts_for_new_job(&host, cgroup_parent, &config.slice)?;
    let plan = resolve(config, &facts, &RunFlags::default()).map_err(|err| err.to_string())?;
    Ok(Explanation::new(config, &plan, &facts))
}

/// `resctl history list|show|forget`.
pub fn history(command: &HistoryCommand) -> Outcome {
    let dir = default_dir().map_err(|message| Failure::Failed(format!("history: {message}")))?;
    let store = HistoryStore::new(dir);
    let failed = |err: std::io::Error| Failure::Failed(format!("history: {err}"));
    match command {
        HistoryCommand::List => {
            let (records, problems) = store.list().map_err(failed)?;
            for problem in problems {
                tracing::warn!("history: ignored: {problem}");
            }
            if records.is_empty() {
                return print(&format!("no job remembered in {}", store.dir().display()));
            }
            let lines: Vec<String> = records.iter().map(describe_record).collect();
            print(&lines.join("\n"))
        }
        HistoryCommand::Show { key } => {
            let record = find_record(&store, key)?;
            let json = serde_json::to_string_pretty(&record)
                .map_err(|err| Failure::Failed(format!("history: {err}")))?;
            print(&json)
        }
        HistoryCommand::Forget { key } => {
            let key = find_record(&store, key)?.key;
            store.forget(&key).map_err(failed)?;
            print(&format!("forgot {}", job_text::escape(&key)))
        }
    }
}

/// The working folder, for a job's default key (empty if it is gone).
fn working_folder() -> PathBuf {
    std::env::current_dir().unwrap_or_default()
}

/// One line of `resctl history list`.
fn describe_record(record: &JobRecord) -> String {
    let best = record
        .best
        .map(|(count, rate)| format!(", fastest {count} ({rate:.1} units/s)"))
        .unwrap_or_default();
    let spread = record
        .spread
        .map(|spread| format!(" (spread {})", format_size(spread)))
        .unwrap_or_default();
    format!(
        "{}  {} run(s), {} per worker{spread}, base {}, peak {} at {} workers{best}  {}",
        &file_name(&record.key)[..16],
        record.runs,
        format_size(record.per_worker),
        format_size(record.base),
        format_size(record.peak_memory),
        record.peak_threads,
        job_text::escape(&record.key)
    )
}

/// The record of `key`: a job key, or the 16 hex digits `resctl history list` shows.
fn find_record(store: &HistoryStore, key: &str) -> Result<JobRecord, Failure> {
    match store.load(key) {
        Lookup::Found(record) => return Ok(record),
        Lookup::Ignored(why) => return Err(Failure::Failed(format!("history: {why}"))),
        Lookup::Missing => {}
    }
    let id = key.trim_end_matches(".json");
    if id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit()) {
        let (records, _) = store
            .list()
            .map_err(|err| Failure::Failed(format!("history: {err}")))?;
        if let Some(record) = records
            .into_iter()
            .find(|record| file_name(&record.key).starts_with(id))
        {
            return Ok(record);
        }
    }
    Err(Failure::Failed(format!(
        "history: no job '{}' in {} (resctl history list shows them)",
        job_text::escape(key),
        store.dir().display()
    )))
}

/// `resctl completions SHELL`: the completion script, from the command line's definition.
pub fn completions(shell: clap_complete::Shell) -> Outcome {
    let mut command = <crate::cli::Cli as clap::CommandFactory>::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "resctl", &mut script);
    write_stdout(&script)
}

/// `resctl man`: the man page (roff), from the command line's definition.
pub fn man_page() -> Outcome {
    let command = <crate::cli::Cli as clap::CommandFactory>::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut page)
        .map_err(|err| Failure::Failed(format!("man: {err}")))?;
    write_stdout(&page)
}

/// Writes generated text to standard output; a closed pipe (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) -> Outcome {
    use std::io::Write;
    match std::io::stdout().lock().write_all(bytes) {
        Ok(()) => Ok(0),
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(err) => Err(Failure::Failed(format!("standard output: {err}"))),
    }
}

/// `resctl daemon`: runs until SIGTERM; its own exit code (0, or 125 when it cannot start).
pub fn daemon(args: &DaemonArgs) -> Outcome {
    Ok(crate::daemon::run(&crate::daemon::DaemonOptions {
        config: args.config.clone(),
        metrics: args.metrics.clone().into(),
    }))
}

impl From<MetricsArgs> for MetricsOptions {
    fn from(args: MetricsArgs) -> MetricsOptions {
        MetricsOptions {
            listen: args.metrics_listen,
            textfile: args.metrics_textfile,
        }
    }
}

/// The job's name in metrics without `--job-key`: its program's file name.
fn program_name(command: &[std::ffi::OsString]) -> String {
    command
        .first()
        .map(std::path::Path::new)
        .and_then(std::path::Path::file_name)
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "job".to_owned())
}

/// `resctl doctor`.
pub fn doctor(args: &DoctorArgs) -> Outcome {
    let report = DoctorReport::gather(
        Path::new(crate::sample::procfs::DEFAULT_PROC_ROOT),
        Path::new("/"),
    )
    .map_err(|message| Failure::Failed(format!("doctor: {message}")))?;
    let budget = load_config(&ConfigSource { file: None })
        .and_then(|config| explain_new_job(&config.for_slice(&config.slice), None));
    let report = report.with_budget(budget);
    if args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|err| Failure::Failed(format!("doctor: {err}")))?;
        print(&text)
    } else {
        print(report.render().trim_end())
    }
}

/// `resctl replay TRACE`.
pub fn replay(args: &ReplayArgs) -> Outcome {
    let (config, observations) =
        read_trace(&args.trace).map_err(|message| Failure::Failed(format!("replay: {message}")))?;
    let decisions = crate::policy::replay(config, &observations);
    let mut changes = 0;
    for decision in &decisions {
        let changed = decision.threads != decision.previous_threads;
        changes += usize::from(changed);
        if changed || args.all {
            println!(
                "{:>8.1}s  {:<8}  threads {:>2} -> {:>2}  {}",
                decision.at.as_secs_f64(),
                decision.level.to_string(),
                decision.previous_threads,
                decision.threads,
                decision.reason
            );
        }
    }
    print(&format!(
        "{} ticks, {} thread changes",
        decisions.len(),
        changes
    ))
}

/// `resctl recommend`.
pub fn recommend(args: &RecommendArgs) -> Outcome {
    let per_worker = crate::units::parse_size(&args.per_worker)
        .map_err(|err| Failure::Usage(format!("--per-worker {}: {err}", args.per_worker)))?;
    let (threads, reason) = client::recommend_text(
        args.current,
        args.context.as_deref(),
        args.max_threads,
        per_worker,
    );
    tracing::debug!("recommend: {reason}");
    print(&threads.to_string())
}

/// `resctl bench`.
pub fn bench(args: &BenchArgs) -> Outcome {
    let usage = |message: String| Err(Failure::Usage(message));
    if args.threads.is_empty() || args.threads.contains(&0) {
        return usage("--threads: give counts of at least 1, e.g. 1,2,4".to_owned());
    }
    if args.repeat == 0 {
        return usage("--repeat: at least 1".to_owned());
    }
    let tolerance = match crate::units::parse_percent(&args.tolerance) {
        Ok(percent) => percent / 100.0,
        Err(err) => return usage(format!("--tolerance {}: {err}", args.tolerance)),
    };
    if let Some(limit) = &args.memory_max {
        if let Err(err) = parse_limit(limit) {
            return usage(format!("--memory-max {limit}: {err}"));
        }
    }
    let resctl = match std::env::current_exe() {
        Ok(path) => path,
        Err(err) => return usage(format!("cannot find resctl's own binary: {err}")),
    };
    // Outputs are checked before the first run, so a typo costs nothing.
    let export = |flag: &str, path: &Option<std::path::PathBuf>| {
        OutputFile::prepare_for(flag, path.as_deref()).map_err(Failure::Usage)
    };
    let export_json = export("--export-json", &args.export_json)?;
    let export_markdown = export("--export-markdown", &args.export_markdown)?;
    let plot = export("--plot", &args.plot)?;
    // The default is a new folder of an unguessable name, private to resctl's user: never a
    // predictable path in a shared temporary folder that someone else could plant first.
    let log_dir = match &args.log_dir {
        Some(dir) => {
            if let Err(err) = std::fs::create_dir_all(dir) {
                return usage(format!("--log-dir {}: {err}", dir.display()));
            }
            dir.clone()
        }
        None => match Folder::open(&std::env::temp_dir())
            .and_then(|temp| temp.create_unique_dir("resctl-bench-", 0o700))
        {
            Ok(folder) => folder.path().to_path_buf(),
            Err(err) => return usage(format!("cannot create a folder for the runs' logs: {err}")),
        },
    };
    let plan = BenchPlan {
        threads: args.threads.clone(),
        repeat: args.repeat,
        memory_max: args.memory_max.clone(),
        command: args.command.clone(),
        log_dir: log_dir.clone(),
    };
    let measured_at = std::time::SystemTime::now();
    let mut progress = Progress::new(plan.threads.len() * plan.repeat as usize, plan.repeat);
    let runs = run_all(&plan, &resctl, |threads, repeat| {
        progress.next(threads, repeat)
    });
    progress.finish();
    let runs = match runs {
        Ok(runs) => runs,
        Err(BenchError::Interrupted { code, .. }) => {
            tracing::warn!("bench: interrupted; logs in {}", log_dir.display());
            return Ok(code);
        }
        Err(err) => return usage(format!("bench: {err}")),
    };
    let report = crate::bench::report(runs, tolerance);
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(err) => return usage(format!("bench: {err}")),
        }
    } else {
        for line in report.render() {
            println!("{line}");
        }
    }
    tracing::info!(
        "bench: each run's log and summary are in {}",
        log_dir.display()
    );
    write_export(export_json, || {
        serde_json::to_string_pretty(&report)
            .map(|json| json + "\n")
            .map_err(|err| err.to_string())
    })?;
    write_export(export_markdown, || Ok(report.markdown()))?;
    write_export(plot, || {
        let caption = PlotCaption {
            command: &args.command,
            measured_at,
        };
        plot::svg(&report, &caption).map_err(|err| format!("cannot draw the plot: {err}"))
    })?;
    if args.save {
        let counts: Vec<SweepCount> = report
            .results
            .iter()
            .map(|count| SweepCount {
                threads: count.threads,
                ok: count.ok,
                peak_memory: count.peak_memory,
                oom_kills: count.runs.iter().map(|run| run.oom_kills).sum(),
                median_secs: count.median_secs,
            })
            .collect();
        let key = job_key(args.job_key.as_deref(), &args.command, &working_folder());
        JobHistory::open(key).remember_sweep(&counts, report.recommended);
    }
    if report.recommended.is_some() {
        Ok(0)
    } else {
        Ok(1)
    }
}

/// Writes one of bench's exports, if it was asked for, with the text `make` makes; a
/// failure names the file (exit 1: the sweep itself ran).
fn write_export(
    output: Option<OutputFile>,
    make: impl FnOnce() -> Result<String, String>,
) -> Result<(), Failure> {
    let Some(output) = output else {
        return Ok(());
    };
    make()
        .map_err(std::io::Error::other)
        .and_then(|text| output.write(text.as_bytes()))
        .map_err(|err| Failure::Failed(format!("bench: {}: {err}", output.path().display())))
}

/// `resctl stage start|end NAME [--workers N]`: start prints the worker count to use
/// (so `N=$(resctl stage start load --workers 8)` works), end prints the stage's figures.
pub fn stage(start: bool, name: &str, workers: Option<u32>) -> Outcome {
    let text = client::connect_from_env()
        .and_then(|mut control| client::stage(&mut control, start, name, workers))?;
    print(&text)
}

/// `resctl status [--json]`: the job's state as a table for people, or the JSON object.
pub fn status(args: &StatusArgs) -> Outcome {
    let every = crate::units::parse_duration(&args.every)
        .ok()
        .filter(|every| !every.is_zero())
        .ok_or_else(|| {
            Failure::Usage(format!(
                "--every {}: not a duration above zero (like 2s or 500ms)",
                args.every
            ))
        })?;
    let inside_job = std::env::var_os(crate::control::protocol::ENV_SOCKET)
        .is_some_and(|socket| !socket.is_empty());
    let show = || -> Result<String, Failure> {
        if inside_job {
            let status = client::connect_from_env().and_then(|mut client| client.status())?;
            return if args.json {
                json_text(&status, args.watch)
            } else {
                Ok(client::render_status(&status))
            };
        }
        let now = std::time::SystemTime::now();
        let overview = overview::gather(&overview::Places::of_this_host(), now);
        if args.json {
            json_text(&overview, args.watch)
        } else {
            Ok(overview::render(&overview, now))
        }
    };
    if !args.watch {
        return print(&show()?);
    }
    let clear = std::io::IsTerminal::is_terminal(&io::stdout()) && !args.json;
    loop {
        let text = show()?;
        if clear {
            // Home and clear the screen, then the table.
            print(&format!("\x1b[H\x1b[2J{text}"))?;
        } else {
            print(&text)?;
        }
        std::thread::sleep(every);
    }
}

/// `value` as JSON: pretty, or one line per object when redrawn (`--watch`).
fn json_text<T: serde::Serialize>(value: &T, one_line: bool) -> Result<String, Failure> {
    let encoded = if one_line {
        serde_json::to_string(value)
    } else {
        serde_json::to_string_pretty(value)
    };
    encoded.map_err(|error| Failure::Failed(format!("cannot encode the status: {error}")))
}

/// `resctl progress UNITS`: reports cumulative work units done.
pub fn progress(units: u64) -> Outcome {
    client::connect_from_env()
        .and_then(|mut client| client.request(&Request::Progress { units }))?;
    Ok(0)
}

/// Prints `text` on stdout (a newline added); a closed stdout is a failure.
fn print(text: &str) -> Outcome {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .map_err(|error| Failure::Failed(format!("cannot write to stdout: {error}")))?;
    Ok(0)
}
