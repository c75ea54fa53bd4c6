//! What each subcommand does, once its arguments are parsed. Returns exit codes.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::act::jobserver::AuthForm;
use crate::bench::runner::{run_all, BenchError, BenchPlan};
use crate::cli::{
    BenchArgs, ConfigSource, DoctorArgs, JobserverStyle, RecommendArgs, ReplayArgs, RunArgs,
};
use crate::config::resolve::RunFlags;
use crate::config::{Config, Overrides};
use crate::control::client::{self, ClientError};
use crate::control::protocol::{Request, StatusReply};
use crate::doctor::DoctorReport;
use crate::exit::RESCTL_FAILED;
use crate::report::record::read_trace;
use crate::run::user::JobUser;
use crate::run::{run, RunRequest};
use crate::units::{parse_duration, parse_limit, Limit};

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
    })
}

/// `resctl run`.
pub fn run_job(args: Box<RunArgs>, reexec_args: Vec<OsString>) -> i32 {
    let config = match effective_run_config(&args) {
        Ok(config) => config,
        Err(message) => {
            tracing::error!("{message}");
            return RESCTL_FAILED;
        }
    };
    let jobserver_form = match args.jobserver_style {
        JobserverStyle::Auto => None,
        JobserverStyle::Pipe => Some(AuthForm::Pipe),
        JobserverStyle::Fifo => Some(AuthForm::Fifo),
    };
    let user = match args.user.as_deref() {
        Some(spec) => match JobUser::resolve(spec, nix::unistd::geteuid()) {
            Ok(user) => Some(user),
            Err(error) => {
                tracing::error!("{error}");
                return RESCTL_FAILED;
            }
        },
        None => None,
    };
    run(RunRequest {
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
        cgroup_parent: args.cgroup_parent,
        monitor_only: args.monitor_only,
        reexec_args,
        slice_requested: args.slice.is_some(),
    })
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
pub fn config_check(file: &Path) -> i32 {
    match Config::load(file) {
        Ok(_) => {
            println!("{}: ok", file.display());
            0
        }
        Err(err) => {
            eprintln!("resctl: {err}");
            1
        }
    }
}

/// `resctl config show`.
pub fn config_show(source: &ConfigSource, slice: Option<&str>) -> i32 {
    match load_config(source) {
        Ok(config) => {
            let config = match slice {
                Some(slice) => config.for_slice(slice),
                None => config,
            };
            print!("{}", config.to_yaml());
            0
        }
        Err(message) => {
            eprintln!("resctl: {message}");
            1
        }
    }
}

/// `resctl doctor`.
pub fn doctor(args: &DoctorArgs) -> i32 {
    match DoctorReport::gather(
        Path::new(crate::sample::procfs::DEFAULT_PROC_ROOT),
        Path::new("/"),
    ) {
        Ok(report) => {
            if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(text) => println!("{text}"),
                    Err(err) => {
                        eprintln!("resctl: {err}");
                        return 1;
                    }
                }
            } else {
                print!("{}", report.render());
            }
            0
        }
        Err(message) => {
            eprintln!("resctl: doctor: {message}");
            1
        }
    }
}

/// `resctl replay TRACE`.
pub fn replay(args: &ReplayArgs) -> i32 {
    let (config, observations) = match read_trace(&args.trace) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("resctl: replay: {message}");
            return 1;
        }
    };
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
    println!("{} ticks, {} thread changes", decisions.len(), changes);
    0
}

/// `resctl recommend`.
pub fn recommend(args: &RecommendArgs) -> i32 {
    let per_worker = match crate::units::parse_size(&args.per_worker) {
        Ok(bytes) => bytes,
        Err(err) => {
            eprintln!("resctl: --per-worker {}: {err}", args.per_worker);
            return RESCTL_FAILED;
        }
    };
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
pub fn bench(args: &BenchArgs) -> i32 {
    let usage = |message: String| {
        tracing::error!("{message}");
        RESCTL_FAILED
    };
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
    let log_dir = args.log_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("resctl-bench-{}", std::process::id()))
    });
    if let Err(err) = std::fs::create_dir_all(&log_dir) {
        return usage(format!("--log-dir {}: {err}", log_dir.display()));
    }
    let plan = BenchPlan {
        threads: args.threads.clone(),
        repeat: args.repeat,
        memory_max: args.memory_max.clone(),
        command: args.command.clone(),
        log_dir: log_dir.clone(),
    };
    let total = plan.threads.len() * plan.repeat as usize;
    let mut done = 0;
    let runs = run_all(&plan, &resctl, |threads, repeat| {
        done += 1;
        tracing::info!(
            "bench: run {done}/{total}: {threads} threads, repeat {repeat}/{}",
            plan.repeat
        );
    });
    let runs = match runs {
        Ok(runs) => runs,
        Err(BenchError::Interrupted { code, .. }) => {
            tracing::warn!("bench: interrupted; logs in {}", log_dir.display());
            return code;
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
    if report.recommended.is_some() {
        0
    } else {
        1
    }
}

/// `resctl stage start|end NAME [--workers N]`: start prints the worker count to use
/// (so `N=$(resctl stage start load --workers 8)` works), end prints the stage's figures.
pub fn stage(start: bool, name: &str, workers: Option<u32>) -> i32 {
    match client::connect_from_env()
        .and_then(|mut control| client::stage(&mut control, start, name, workers))
    {
        Ok(text) => print(&text),
        Err(error) => fail(&error),
    }
}

/// `resctl status [--json]`: the job's state as a table for people, or the JSON object.
pub fn status(json: bool) -> i32 {
    let result = client::connect_from_env()
        .and_then(|mut client| client.request_as::<StatusReply>(&Request::Status));
    match result {
        Ok(reply) if json => match serde_json::to_string_pretty(&reply.status) {
            Ok(text) => print(&text),
            Err(error) => {
                eprintln!("resctl: cannot encode the status: {error}");
                client::EXIT_FAILED
            }
        },
        Ok(reply) => print(&client::render_status(&reply.status)),
        Err(error) => fail(&error),
    }
}

/// `resctl progress UNITS`: reports cumulative work units done.
pub fn progress(units: u64) -> i32 {
    match client::connect_from_env()
        .and_then(|mut client| client.request(&Request::Progress { units }))
    {
        Ok(_) => client::EXIT_OK,
        Err(error) => fail(&error),
    }
}

/// Prints a failure and returns its exit code.
fn fail(error: &ClientError) -> i32 {
    eprintln!("resctl: {error}");
    match error {
        ClientError::NotInsideRun => client::EXIT_NOT_IN_RUN,
        _ => client::EXIT_FAILED,
    }
}

/// Prints `text` on stdout (a newline added) and returns [`client::EXIT_OK`]; a closed stdout is
/// a failure.
fn print(text: &str) -> i32 {
    let mut stdout = io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Ok(()) => client::EXIT_OK,
        Err(error) => {
            eprintln!("resctl: cannot write to stdout: {error}");
            client::EXIT_FAILED
        }
    }
}
