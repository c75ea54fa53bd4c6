//! `resctl run`: set the job up ([`setup`]), start it, drive its watch pipeline
//! ([`watch`]: **sample → assess → decide → act → report**) on every tick or kernel wakeup
//! ([`wake`]) until it ends, then clean up and return its exit status like a shell would.

pub mod command;
pub mod observe;
pub mod protect;
pub mod scope;
pub mod setup;
pub mod signals;
pub mod user;
pub mod wake;
pub mod watch;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::act::jobserver::AuthForm;
use crate::act::runtime_dir::RuntimeDir;
use crate::cgroup::wakeup::Waker;
use crate::config::resolve::{RunFlags, RunPlan};
use crate::config::Config;
use crate::control::protocol::{Registration, REGISTRATION_FILE};
use crate::exit::{JobEnd, RESCTL_FAILED};
use crate::history::store::JobHistory;
use crate::history::Learned;
use crate::placement::Placement;
use crate::policy::Policy;
use crate::report::metrics_export::MetricsOptions;
use crate::safe_fs::OutputFile;
use crate::units::format_size;

use crate::report::notify::Notifier;

use self::command::resolve_program;
use self::protect::Protection;
use self::setup::{
    describe_placement, detect_host, enter_scope, place_job, resctl_failure, spawn_job, watch_job,
    Channels, Outputs, Placed, ReportOutputs, StartFailure,
};
use self::signals::Forwarder;
use self::user::JobUser;
use self::wake::{arm_wakeups, notification_thresholds, wait_for_tick, LoopEvent, TickOutcome};
use self::watch::Watch;

/// The `/proc` resctl reads for the run (readers take it as their root).
const PROC_ROOT: &str = crate::sample::procfs::DEFAULT_PROC_ROOT;

/// Everything `resctl run` was asked to do.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// Effective configuration (file, slice overrides and flags merged).
    pub config: Config,
    /// The job: program and arguments.
    pub command: Vec<OsString>,
    /// Write a JSON-lines trace here.
    pub record: Option<PathBuf>,
    /// Put the job's cgroup under this directory.
    pub cgroup_parent: Option<PathBuf>,
    /// Don't create cgroups.
    pub monitor_only: bool,
    /// resctl's own arguments, to re-execute itself in a systemd scope.
    pub reexec_args: Vec<OsString>,
    /// Whether `--slice` was given explicitly (a systemd scope is used then, or
    /// by default on a systemd host).
    pub slice_requested: bool,
    /// `--threads` and `--jobserver`, resolved against the configuration with the host's
    /// facts ([`crate::config::resolve::resolve`]).
    pub flags: RunFlags,
    /// The jobserver's `--jobserver-auth` form; `None`: chosen by the command
    /// ([`crate::act::jobserver_form::choose`]).
    pub jobserver_form: Option<AuthForm>,
    /// Run the job as this user (`--user`).
    pub user: Option<JobUser>,
    /// Write the end summary as JSON here (`--summary-json`).
    pub summary_json: Option<PathBuf>,
    /// Where the job's metrics go (`--metrics-listen`, `--metrics-textfile`).
    pub metrics: MetricsOptions,
    /// The job's name in metrics (`--job-key`, else its program's file name).
    pub job_name: String,
    /// The job's priority for `resctl daemon` (`--priority`, else the configuration's
    /// `priority:` for the slice or at the top level, else 0).
    pub priority: i32,
    /// The job's history: the start count comes from it, and what this run learns goes
    /// to it (`None`: `--no-history`).
    pub history: Option<JobHistory>,
}

/// Runs the job and returns resctl's exit code.
pub fn run(request: RunRequest) -> i32 {
    match Run::start(&request) {
        Ok(run) => run.supervise(),
        Err(failure) => {
            tracing::error!("{}", failure.message);
            failure.code
        }
    }
}

/// A started job and what supervises it.
struct Run {
    watch: Watch,
    placement: Placement,
    child: Child,
    forwarder: Forwarder,
    /// What the waiter and wakeup threads tell the loop.
    events: mpsc::Receiver<LoopEvent>,
    /// The waiter thread's end of the channel.
    events_tx: mpsc::Sender<LoopEvent>,
    /// Set once the job has ended: late helper threads stay quiet.
    ending: Arc<AtomicBool>,
    started: Instant,
    interval: Duration,
    pid: i32,
    after: AfterRun,
    /// systemd's notify protocol, when resctl runs as a `Type=notify` service.
    notifier: Notifier,
    /// Holds the run folder until the end.
    _runtime: RuntimeDir,
}

impl Run {
    /// Sets the job up and starts it; nothing of it has run when this fails.
    fn start(request: &RunRequest) -> Result<Run, StartFailure> {
        let program = request.command.first().ok_or_else(|| {
            resctl_failure("no command given: resctl run [OPTIONS] -- COMMAND [ARGS...]")
        })?;
        let program_path = resolve_program(program, std::env::var_os("PATH").as_deref())?;
        let mut outputs = Outputs::prepare(request)?;
        let host = detect_host().map_err(resctl_failure)?;
        let entered = enter_scope(host, request)?;
        // From here on SIGINT, SIGTERM and SIGHUP are caught: before the job runs they stop
        // the start (below), while it starts they are delivered to it once it runs.
        let forwarder = Forwarder::install()
            .map_err(|err| resctl_failure(format!("could not install signal handlers: {err}")))?;
        let protection = Protection::apply(Path::new(PROC_ROOT));
        tracing::debug!("{}", protection.describe());
        let Placed {
            mut placement,
            plan,
            limit_chain,
        } = place_job(&entered, request)?;
        let policy = Policy::new(plan.policy.clone());
        let threads = policy.threads();
        let channels = Channels::open(request, &plan, threads, program)?;
        let recorder = outputs.recorder(&plan, &placement)?;
        let metrics = outputs.metrics.take();
        let started = Instant::now();
        let child = spawn_job(
            request,
            program_path,
            &mut placement,
            &channels,
            &protection,
            &forwarder,
            threads,
        )?;
        let pid = child.id() as i32;
        let (events_tx, events) = mpsc::channel();
        let ending = Arc::new(AtomicBool::new(false));
        let cgroup = placement.job_cgroup();
        let interval = request.config.interval;
        arm_wakeups(
            cgroup.clone(),
            placement.pressure_cgroup().map(Path::to_path_buf),
            &plan.policy,
            interval,
            pid,
            &events_tx,
            &ending,
        );
        log_start(request, &placement, &plan, threads, pid);
        let mut notifier = Notifier::from_env();
        notifier.ready(&format!(
            "running {} (pid {pid}), {threads} threads",
            crate::job_text::escape(&program.to_string_lossy())
        ));
        let (watch, runtime) = watch_job(
            pid,
            &placement,
            limit_chain,
            policy,
            channels,
            ReportOutputs {
                recorder,
                metrics,
                job_name: &request.job_name,
            },
            &plan,
        );
        register(&runtime, request, &placement, pid);
        Ok(Run {
            watch,
            placement,
            child,
            forwarder,
            events,
            events_tx,
            ending,
            started,
            interval,
            pid,
            after: AfterRun {
                summary: outputs.summary,
                history: request.history.clone(),
            },
            notifier,
            _runtime: runtime,
        })
    }

    /// The loop: a tick of the watch pipeline at every wakeup until the job ends; returns
    /// the exit code.
    fn supervise(mut self) -> i32 {
        let done = self.events_tx.clone();
        let mut child = self.child;
        let waiter = std::thread::Builder::new()
            .name("resctl-wait".into())
            .spawn(move || {
                let _ = done.send(LoopEvent::Ended(child.wait()));
            });
        drop(self.events_tx);
        if let Err(err) = waiter {
            tracing::error!(
                "could not start the waiter thread: {err}; the job keeps running unsupervised"
            );
            return RESCTL_FAILED;
        }
        let mut waker: Option<Waker> = None;
        let status = loop {
            let accept_wakers = !self.watch.cgroup_gone();
            match wait_for_tick(&mut waker, &self.events, self.interval, accept_wakers) {
                TickOutcome::Sample => {}
                TickOutcome::Ended(status) => break status,
            }
            let gone_before = self.watch.cgroup_gone();
            self.watch.tick(self.started.elapsed());
            if self.notifier.active() {
                self.notifier.alive(&self.watch.status_line());
            }
            follow_the_levels(&mut waker, &self.watch, gone_before, self.pid);
        };
        self.notifier.stopping();
        self.ending.store(true, Ordering::SeqCst);
        self.forwarder.job_ended();
        finish(
            self.watch,
            self.placement,
            self.forwarder,
            self.started,
            status,
            self.after,
        )
    }
}

/// Keeps the wakeups in step with the pipeline: they follow the levels, which follow the
/// job's limit (also for a waker that arrived after they moved; unchanged, this costs
/// nothing); once the job's cgroup is gone, only ticks and the job's exit wake the loop.
fn follow_the_levels(waker: &mut Option<Waker>, watch: &Watch, gone_before: bool, pid: i32) {
    if watch.cgroup_gone() {
        if !gone_before {
            let mut ticks_only = Waker::ticks_only();
            if let Err(err) = ticks_only.watch_child(pid) {
                tracing::debug!("wakeups: {err}");
            }
            *waker = Some(ticks_only);
        }
        return;
    }
    if let Some(armed) = waker.as_mut() {
        if let Err(err) = armed.set_thresholds(&notification_thresholds(watch.config())) {
            tracing::debug!("wakeups: {err}");
        }
    }
}

/// Where a run's results go once the job has ended.
struct AfterRun {
    /// `--summary-json`.
    summary: Option<OutputFile>,
    /// The job's history (`None`: `--no-history`).
    history: Option<JobHistory>,
}

/// The job has ended: the last sample, the cgroup removed, the summary logged and written,
/// what the run learned kept in the job's history; returns the exit code.
fn finish(
    watch: Watch,
    mut placement: Placement,
    forwarder: Forwarder,
    started: Instant,
    status: std::io::Result<std::process::ExitStatus>,
    after: AfterRun,
) -> i32 {
    let wall = started.elapsed();
    forwarder.stop();
    let (reporter, limit, learning) = watch.finish(wall);
    let end = match status {
        Ok(status) => JobEnd::from_status(status),
        Err(err) => {
            tracing::error!("lost track of the job: {err}");
            JobEnd::Exited(RESCTL_FAILED)
        }
    };
    let placement_text = describe_placement(&placement);
    for problem in placement.cleanup().problems {
        tracing::warn!("cleanup: {problem}");
    }
    let summary = reporter.finish(end, wall, children_cpu_time(), limit, placement_text);
    if let Some(history) = &after.history {
        history.remember(&Learned {
            marginal: learning.marginal,
            spread: learning.spread,
            peaks: learning.peaks,
            peak_memory: summary.peak_memory,
            peak_threads: summary.threads_highest,
            throughput: learning.throughput,
            exit_code: summary.exit_code,
            oom_kills: summary.oom_kills,
            final_threads: summary.threads_final,
        });
    }
    if let Some(output) = &after.summary {
        // The job has ended: a file that cannot be written costs the figures, never the
        // job's exit status.
        let written = serde_json::to_string(&summary)
            .map_err(std::io::Error::other)
            .and_then(|json| output.write((json + "\n").as_bytes()));
        if let Err(err) = written {
            tracing::error!("--summary-json: {err}");
        }
    }
    summary.exit_code
}

/// The start line: what runs where, as whom, with which levels.
/// Tells `resctl daemon` about the job: [`REGISTRATION_FILE`] in the run folder. A run
/// the daemon cannot see is still a run: a failure is said, not fatal.
fn register(runtime: &RuntimeDir, request: &RunRequest, placement: &Placement, pid: i32) {
    let registration = Registration {
        pid: pid.unsigned_abs(),
        cgroup: placement.job_dir().map(|dir| dir.display().to_string()),
        priority: request.priority,
        name: request.job_name.clone(),
    };
    let written = serde_json::to_vec(&registration)
        .map_err(std::io::Error::other)
        .and_then(|bytes| {
            runtime
                .folder()
                .replace(std::ffi::OsStr::new(REGISTRATION_FILE), &bytes, 0o600, None)
        });
    if let Err(err) = written {
        tracing::warn!("resctl daemon will not see this job: {REGISTRATION_FILE}: {err}");
    }
}

fn log_start(request: &RunRequest, placement: &Placement, plan: &RunPlan, threads: u32, pid: i32) {
    let program = request
        .command
        .first()
        .map(|p| p.to_string_lossy())
        .unwrap_or_default();
    let config = &plan.policy;
    tracing::info!(
        resctl_cgroup = placement.job_dir().map(|d| d.display().to_string()).unwrap_or_default(),
        resctl_threads = threads,
        resctl_action = "start",
        "started {} (pid {pid}{}) in {}; threads {threads}; levels moderate {} / high {} / critical {} of a {} budget: {}",
        crate::job_text::escape(&program),
        request.user.as_ref().map(|user| format!(", user {}", user.name)).unwrap_or_default(),
        describe_placement(placement),
        format_size(config.memory_moderate),
        format_size(config.memory_high),
        format_size(config.memory_critical),
        format_size(plan.budget.bytes),
        plan.budget.source,
    );
}

/// CPUs this process may run on.
pub fn available_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn children_cpu_time() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    match getrusage(UsageWho::RUSAGE_CHILDREN) {
        Ok(usage) => {
            let to_duration = |tv: nix::sys::time::TimeVal| {
                Duration::from_secs(tv.tv_sec().max(0) as u64)
                    + Duration::from_micros(tv.tv_usec().max(0) as u64)
            };
            to_duration(usage.user_time()) + to_duration(usage.system_time())
        }
        Err(_) => Duration::ZERO,
    }
}
