//! `resctl run`: place the job, start it, and drive the loop
//! **sample → assess → decide → act → report** until it ends; then clean up
//! and return the job's exit status like a shell would.

pub mod command;
pub mod observe;
pub mod protect;
pub mod scope;
pub mod signals;
pub mod user;

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::act::channels::{ThreadChannels, ENV_THREADS, ENV_THREADS_FILE, THREADS_FILE_NAME};
use crate::act::jobserver::{self, AuthForm, Jobserver};
use crate::act::jobserver_form;
use crate::act::pressure_protocol;
use crate::act::runtime_dir::{JobOwner, RuntimeDir};
use crate::cgroup::detect::{detect, HostCgroups, Layout};
use crate::cgroup::reader::{CgroupDir, CgroupKind, LimitChain};
use crate::cgroup::wakeup::{Wake, Waker, ENV_NO_WAKEUP};
use crate::cgroup::writer::{self, PeakReset};
use crate::config::resolve::{resolve, HostFacts, RunFlags};
use crate::config::Config;
use crate::control::protocol::ENV_SOCKET;
use crate::control::server::{ControlServer, StatusSnapshot};
use crate::placement::{Placement, PlacementKind, PlacementRequest};
use crate::policy::{Decision, Level, Policy, PolicyConfig};
use crate::report::record::{Recorder, TraceLine};
use crate::report::summary::{RunSummary, SummaryBuilder};
use crate::safe_fs::OutputFile;
use crate::sample::job::{JobSample, JobSampler, JobScope};
use crate::sample::procfs::ProcReader;
use crate::units::format_size;

use self::command::{resolve_program, JobCommand, StartError};
use self::observe::Observer;
use self::protect::Protection;
use self::signals::Forwarder;
use self::user::JobUser;
use crate::exit::{JobEnd, RESCTL_FAILED, SIGNAL_BASE};

/// The `/proc` resctl reads for the run (readers take it as their root).
const PROC_ROOT: &str = "/proc";

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
    /// facts ([`resolve`]).
    pub flags: RunFlags,
    /// The jobserver's `--jobserver-auth` form; `None`: chosen by the command
    /// ([`jobserver_form::choose`]).
    pub jobserver_form: Option<AuthForm>,
    /// Run the job as this user (`--user`).
    pub user: Option<JobUser>,
    /// Write the end summary as JSON here (`--summary-json`).
    pub summary_json: Option<PathBuf>,
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

/// A failure before the job started: message and exit code.
struct StartFailure {
    message: String,
    code: i32,
}

impl From<StartError> for StartFailure {
    fn from(err: StartError) -> Self {
        StartFailure {
            code: err.exit_code(),
            message: err.to_string(),
        }
    }
}

fn resctl_failure(message: impl Into<String>) -> StartFailure {
    StartFailure {
        message: message.into(),
        code: RESCTL_FAILED,
    }
}

/// A started job and what supervises it.
struct Run {
    config: Config,
    placement: Placement,
    policy: Policy,
    policy_config: PolicyConfig,
    channels: ThreadChannels,
    child: Option<std::process::Child>,
    forwarder: Forwarder,
    sampler: JobSampler,
    recorder: Option<Recorder>,
    jobserver: Option<Jobserver>,
    control: Option<ControlServer>,
    /// What the waiter and wakeup threads tell the loop.
    events: mpsc::Receiver<LoopEvent>,
    /// The waiter thread's end of the channel (moved into it when the loop starts).
    events_tx: Option<mpsc::Sender<LoopEvent>>,
    /// Set once the job has ended: late helper threads stay quiet.
    ending: Arc<AtomicBool>,
    started: Instant,
    /// The job's main process.
    job_pid: Option<i32>,
    /// The job's cgroup was removed underneath resctl.
    cgroup_gone: bool,
    summary_output: Option<OutputFile>,
    /// The job cgroup's high-water mark, restarted after every sample (v1 only).
    peak_reset: Option<PeakReset>,
    _runtime: RuntimeDir,
}

impl Run {
    fn start(request: &RunRequest) -> Result<Run, StartFailure> {
        let config = &request.config;
        let program = request.command.first().ok_or_else(|| {
            resctl_failure("no command given: resctl run [OPTIONS] -- COMMAND [ARGS...]")
        })?;
        let program_path = resolve_program(program, std::env::var_os("PATH").as_deref())?;
        // Output paths are checked now, so a typo costs nothing, not the figures of a run.
        let prepare = |flag: &str, path: &Option<PathBuf>| {
            path.as_deref()
                .map(OutputFile::prepare)
                .transpose()
                .map_err(|err| resctl_failure(format!("{flag}: {err}")))
        };
        let record_output = prepare("--record", &request.record)?;
        let summary_output = prepare("--summary-json", &request.summary_json)?;

        let host = detect(Path::new("/proc"), Path::new("/")).map_err(|err| {
            resctl_failure(format!("could not inspect this host's cgroups: {err}"))
        })?;
        maybe_reexec_in_scope(&host, request)?;
        // From here on SIGINT, SIGTERM and SIGHUP are caught: before the job runs they stop
        // the start (below), while it starts they are delivered to it once it runs.
        let forwarder = Forwarder::install()
            .map_err(|err| resctl_failure(format!("could not install signal handlers: {err}")))?;
        let protection = Protection::apply(Path::new(PROC_ROOT));
        tracing::debug!("{}", protection.describe());

        let placement = Placement::prepare(
            &host,
            &PlacementRequest {
                cgroup_parent: request.cgroup_parent.clone(),
                monitor_only: request.monitor_only,
                run_id: std::process::id(),
            },
        )
        .map_err(|err| resctl_failure(format!("could not create the job's cgroup: {err}")))?;
        if let PlacementKind::MonitorOnly { reason } = placement.kind() {
            if !request.monitor_only {
                tracing::warn!("monitor-only: {reason}; limits cannot be enforced, the job is watched through /proc");
            }
        }

        // The job's real limit is the tightest on its cgroup and above it; it is re-read
        // every tick, as anyone may change any of them while the job runs. Read now, while
        // the job's own cgroup has no limit yet, it is the enclosing one.
        let mut limit_chain = placement.limit_chain(&host).map_err(|err| {
            resctl_failure(format!("could not read the job's memory limit: {err}"))
        })?;
        let enclosing_limit = limit_chain
            .as_mut()
            .map(LimitChain::read)
            .transpose()
            .map_err(|err| resctl_failure(format!("could not read the job's memory limit: {err}")))?
            .flatten();
        let facts = HostFacts {
            cpus: available_cpus(),
            memory_total: ProcReader::new(Path::new(PROC_ROOT))
                .sample_host()
                .map_or(0, |host| host.mem_total),
            enclosing_limit,
            can_reclaim: placement.cgroup_kind() == Some(CgroupKind::V2),
        };
        let plan = resolve(config, &facts, &request.flags)
            .map_err(|err| resctl_failure(err.to_string()))?;
        placement
            .set_limits(plan.memory_high, plan.memory_max)
            .map_err(|err| {
                resctl_failure(format!("could not set the job's memory limits: {err}"))
            })?;
        if placement.cgroup_kind() == Some(CgroupKind::V1Memory) && plan.memory_high.is_some() {
            tracing::warn!("cgroup v1 has no memory.high: --memory-high is set as memory.soft_limit_in_bytes, which only guides reclaim under host pressure and does not throttle");
        }
        let memory_limit = plan.memory_limit;
        let policy_config = plan.policy;
        let policy = Policy::new(policy_config.clone());
        let initial_threads = policy.threads();

        let job_owner = request.user.as_ref().map(|user| JobOwner {
            uid: user.uid,
            gid: user.gid,
        });
        let runtime = RuntimeDir::create(std::process::id(), job_owner).map_err(|err| {
            resctl_failure(format!("could not create resctl's runtime folder: {err}"))
        })?;
        // Validated with the configuration: a name that is no signal never gets here.
        let notify = config.notify_signal_parsed();
        let threads_file = runtime.shared_file(THREADS_FILE_NAME).map_err(|err| {
            resctl_failure(format!("could not open resctl's runtime folder: {err}"))
        })?;
        let mut channels = ThreadChannels::new(threads_file, notify);
        channels.publish(initial_threads).map_err(|err| {
            resctl_failure(format!(
                "could not write {}: {err}",
                channels.file().display()
            ))
        })?;

        let mut recorder = match &record_output {
            Some(output) => Some(Recorder::new(output.create_stream().map_err(|err| {
                resctl_failure(format!("--record {}: {err}", output.path().display()))
            })?)),
            None => None,
        };
        if let Some(recorder) = recorder.as_mut() {
            let header = TraceLine::Header {
                version: env!("CARGO_PKG_VERSION").to_string(),
                policy: policy_config.clone(),
                cgroup: placement.job_dir().map(|d| d.display().to_string()),
            };
            recorder
                .write(&header)
                .map_err(|err| resctl_failure(format!("--record: {err}")))?;
        }

        let jobserver = match plan.jobserver {
            Some(jobs) => {
                let server = Jobserver::create(jobs, runtime.folder()).map_err(|err| {
                    resctl_failure(format!(
                        "--jobserver: could not create the token pool: {err}"
                    ))
                })?;
                server.set_limit(initial_threads);
                let (form, why) = jobserver_form::choose(request.jobserver_form, program);
                tracing::info!(
                    "jobserver: {jobs} jobs, MAKEFLAGS='{}' ({why})",
                    server.makeflags(form).trim_start()
                );
                if let Some(warning) = jobserver_form::fifo_warning_for_path_make(form) {
                    tracing::warn!("{warning}");
                }
                runtime
                    .give_to_job(jobserver::FIFO_NAME)
                    .map_err(|err| resctl_failure(format!("--user: {err}")))?;
                Some((server, form))
            }
            None => None,
        };
        // The control socket is a convenience: without it the job still has
        // RESCTL_THREADS and the thread file.
        let job_uid = request
            .user
            .as_ref()
            .map_or_else(nix::unistd::getuid, |user| user.uid);
        let control =
            match ControlServer::start(&runtime.file_path("control.sock"), job_uid.as_raw()) {
                Ok(server) => Some(server),
                Err(err) => {
                    tracing::warn!("no control socket for the job (RESCTL_SOCKET unset): {err}");
                    None
                }
            };
        let mut set_env = vec![
            (
                ENV_THREADS.to_string(),
                OsString::from(initial_threads.to_string()),
            ),
            (
                ENV_THREADS_FILE.to_string(),
                channels.file().as_os_str().to_os_string(),
            ),
        ];
        if let Some(user) = &request.user {
            set_env.extend(user.environment());
        }
        let mut remove_env = vec!["NOTIFY_SOCKET".to_string(), scope::ENV_IN_SCOPE.to_string()];
        let pressure_env = match (placement.job_dir(), placement.cgroup_kind()) {
            (Some(dir), Some(CgroupKind::V2)) => pressure_protocol::environment(dir),
            _ => Vec::new(),
        };
        if pressure_env.is_empty() {
            // Inherited variables would point at another cgroup's file.
            remove_env.extend(pressure_protocol::VARIABLES.map(String::from));
        }
        set_env.extend(
            pressure_env
                .into_iter()
                .map(|(k, v)| (k, OsString::from(v))),
        );
        match &control {
            Some(server) => set_env.push((
                ENV_SOCKET.to_string(),
                server.path().as_os_str().to_os_string(),
            )),
            None => remove_env.push(ENV_SOCKET.to_string()),
        }
        if jobserver.is_some() {
            // A parent make's settings would confuse the job's make.
            remove_env.extend(["MFLAGS", "MAKELEVEL"].map(String::from));
        }
        let configure_jobserver = |command: &mut std::process::Command| {
            if let Some((server, form)) = &jobserver {
                server.configure_command(command, *form);
            }
        };
        let job = JobCommand {
            program: program_path,
            args: request.command[1..].to_vec(),
            arg0: program.clone(),
            set_env,
            remove_env,
            cgroup_procs: placement.open_procs().map_err(|err| {
                resctl_failure(format!(
                    "could not open the job cgroup's cgroup.procs: {err}"
                ))
            })?,
            configure: Some(&configure_jobserver),
            user: request.user.as_ref(),
            protection: Some(&protection),
        };
        if let Some(signal) = forwarder.received_before_start() {
            return Err(StartFailure {
                message: format!(
                    "received {} before the job started; not starting it",
                    crate::exit::signal_name(signal)
                ),
                code: SIGNAL_BASE + signal,
            });
        }
        let started = Instant::now();
        let child = job.spawn()?;
        let pid = child.id() as i32;
        forwarder.job_started(pid);
        let (events_tx, events) = mpsc::channel();
        let ending = Arc::new(AtomicBool::new(false));
        arm_wakeups(
            &placement,
            &policy_config,
            config.interval,
            pid,
            &events_tx,
            &ending,
        );
        channels.set_job_pid(pid);

        let scope = match (placement.job_dir(), placement.cgroup_kind(), limit_chain) {
            (Some(dir), Some(kind), Some(limits)) => match CgroupDir::open(dir, kind) {
                Ok(dir) => JobScope::Cgroup {
                    dir,
                    limits,
                    job_pid: pid,
                },
                Err(err) => {
                    tracing::warn!("cannot read the job's cgroup ({err}); watching through /proc");
                    JobScope::Descendants(pid)
                }
            },
            _ => JobScope::Descendants(pid),
        };
        tracing::info!(
            resctl_cgroup = placement.job_dir().map(|d| d.display().to_string()).unwrap_or_default(),
            resctl_threads = initial_threads,
            resctl_action = "start",
            "started {} (pid {pid}{}) in {}; threads {}; levels moderate {} / high {} / critical {}{}",
            crate::job_text::escape(&program.to_string_lossy()),
            request
                .user
                .as_ref()
                .map(|user| format!(", user {}", user.name))
                .unwrap_or_default(),
            describe_placement(&placement),
            initial_threads,
            format_size(policy_config.memory_moderate),
            format_size(policy_config.memory_high),
            format_size(policy_config.memory_critical),
            memory_limit.map(|l| format!(" (limit {})", format_size(l))).unwrap_or_default(),
        );
        // Without it (v2, monitor-only) the peaks between samples come only from a rising
        // memory.peak (see Observer).
        let peak_reset = match (placement.job_dir(), placement.cgroup_kind()) {
            (Some(dir), Some(kind)) => PeakReset::open(dir, kind)
                .map_err(|err| tracing::debug!("memory high-water mark: {err}"))
                .ok(),
            _ => None,
        };
        Ok(Run {
            config: config.clone(),
            placement,
            policy,
            policy_config,
            channels,
            child: Some(child),
            forwarder,
            sampler: JobSampler::new(scope, Path::new(PROC_ROOT)),
            recorder,
            jobserver: jobserver.map(|(server, _)| server),
            control,
            events,
            events_tx: Some(events_tx),
            ending,
            started,
            job_pid: Some(pid),
            cgroup_gone: false,
            summary_output,
            peak_reset,
            _runtime: runtime,
        })
    }

    /// The loop; returns the exit code.
    fn supervise(mut self) -> i32 {
        let (Some(mut child), Some(done_tx)) = (self.child.take(), self.events_tx.take()) else {
            return RESCTL_FAILED;
        };
        let waiter = std::thread::Builder::new()
            .name("resctl-wait".into())
            .spawn(move || {
                let status = child.wait();
                let _ = done_tx.send(LoopEvent::Ended(status));
            });
        if let Err(err) = waiter {
            tracing::error!(
                "could not start the waiter thread: {err}; the job keeps running unsupervised"
            );
            return RESCTL_FAILED;
        }
        let cpus = available_cpus();
        let mut observer = Observer::new(cpus, crate::sample::procfs::clock_ticks_per_second());
        let mut summary = SummaryBuilder::new(self.policy.threads(), &self.policy_config);
        let cgroup_label = self
            .placement
            .job_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        let mut last_level = Level::Normal;
        let interval = self.config.interval;

        let mut waker = None;
        let status = loop {
            match wait_for_tick(&mut waker, &self.events, interval, !self.cgroup_gone) {
                TickOutcome::Sample => {}
                TickOutcome::Ended(status) => {
                    self.ending.store(true, Ordering::SeqCst);
                    self.forwarder.job_ended();
                    break status;
                }
            }
            let sample = self.sampler.sample(self.started.elapsed());
            if let Some(err) = self.sampler.take_error() {
                tracing::warn!("sampling: {err}");
            }
            let mut observation = observer.observe(&sample);
            self.reset_peak(&mut observer);
            if let Some(control) = &self.control {
                observation.progress_units = control.progress_units();
            }
            let limit_before = self.policy.config().memory_limit;
            let decision = self.policy.step(&observation);
            self.follow_cgroup_changes(&sample, limit_before, &mut waker, &cgroup_label);
            self.act(&decision, &cgroup_label);
            if let Some(control) = &self.control {
                control.update(StatusSnapshot::new(
                    &decision,
                    &sample,
                    &self.policy_config,
                    observation.cpu_percent,
                ));
                for stage in control.take_finished_stages() {
                    tracing::info!(
                        resctl_cgroup = %cgroup_label,
                        resctl_level = %stage.highest_level,
                        resctl_action = "stage",
                        "{}",
                        stage.describe()
                    );
                    summary.add_stage(stage);
                }
            }
            if decision.level != last_level {
                tracing::info!(
                    resctl_cgroup = %cgroup_label,
                    resctl_level = %decision.level,
                    resctl_action = "level",
                    "level {} -> {}: {}",
                    last_level,
                    decision.level,
                    decision.reason
                );
                last_level = decision.level;
            }
            summary.add_sample(&sample, &observation);
            summary.add_decision(&decision);
            if let Some(recorder) = self.recorder.as_mut() {
                let line = TraceLine::Tick {
                    sample: Box::new(sample),
                    observation,
                    decision,
                };
                if let Err(err) = recorder.write(&line) {
                    tracing::warn!("--record: {err}; recording stopped");
                    self.recorder = None;
                }
            }
        };
        let wall = self.started.elapsed();
        self.forwarder.stop();
        if let Some(jobserver) = self.jobserver.take() {
            jobserver.stop();
        }
        if let Some(control) = self.control.take() {
            let unfinished = control.end_open_stages();
            for stage in control.take_finished_stages().into_iter().chain(unfinished) {
                summary.add_stage(stage);
            }
            control.stop();
        }
        // One last read for the peak and the OOM counters, before the cgroup goes.
        let last = self.sampler.sample(wall);
        summary.add_sample(&last, &observer.observe(&last));

        let end = match status {
            Ok(status) => JobEnd::from_status(status),
            Err(err) => {
                tracing::error!("lost track of the job: {err}");
                JobEnd::Exited(RESCTL_FAILED)
            }
        };
        let cpu = children_cpu_time();
        let placement_text = describe_placement(&self.placement);
        drop(self.sampler);
        let cleanup = self.placement.cleanup();
        for problem in &cleanup.problems {
            tracing::warn!("cleanup: {problem}");
        }
        let limit = self.policy.config().memory_limit;
        let summary = summary.finish(end, wall, cpu, limit, placement_text);
        report_summary(&summary, &cgroup_label);
        if let Some(recorder) = self.recorder.as_mut() {
            let _ = recorder.write(&TraceLine::End {
                summary: Box::new(summary.clone()),
            });
        }
        if let Some(output) = &self.summary_output {
            // The job has ended: a file that cannot be written costs the figures, never
            // the job's exit status.
            let written = serde_json::to_string(&summary)
                .map_err(std::io::Error::other)
                .and_then(|json| output.write((json + "\n").as_bytes()));
            if let Err(err) = written {
                tracing::error!("--summary-json: {err}");
            }
        }
        summary.exit_code
    }

    /// Says what changed in the kernel's view of the job this tick, once: a new memory limit
    /// (the levels follow it, and so do the wakeups), or the job's cgroup removed underneath
    /// (nothing more is done to it: no reclaim, no peak restarts, no cgroup wakeups).
    fn follow_cgroup_changes(
        &mut self,
        sample: &JobSample,
        limit_before: Option<u64>,
        waker: &mut Option<Waker>,
        cgroup_label: &str,
    ) {
        let show = |limit: Option<u64>| limit.map_or_else(|| "none".to_owned(), format_size);
        if sample.cgroup_gone {
            self.cgroup_gone = true;
            self.peak_reset = None;
            if let Some(pid) = self.job_pid {
                let mut ticks_only = Waker::ticks_only();
                if let Err(err) = ticks_only.watch_child(pid) {
                    tracing::debug!("wakeups: {err}");
                }
                *waker = Some(ticks_only);
            }
            tracing::warn!(
                resctl_cgroup = %cgroup_label,
                resctl_action = "cgroup-gone",
                "the job's cgroup was removed underneath resctl: its limit ({}) no longer \
                 applies and its figures are gone; the job keeps running and is watched \
                 through /proc from now on",
                show(limit_before)
            );
        }
        let config = self.policy.config();
        if config.memory_limit != limit_before {
            tracing::info!(
                resctl_cgroup = %cgroup_label,
                resctl_action = "limit",
                "memory limit {} -> {}: levels now moderate {} / high {} / critical {}",
                show(limit_before),
                show(config.memory_limit),
                format_size(config.memory_moderate),
                format_size(config.memory_high),
                format_size(config.memory_critical),
            );
        }
        // Also a waker armed after the levels moved (it arrives from its own thread) is
        // brought up to date; unchanged thresholds cost nothing.
        if let Some(waker) = waker.as_mut().filter(|_| !self.cgroup_gone) {
            if let Err(err) = waker.set_thresholds(&notification_thresholds(config)) {
                tracing::debug!("wakeups: {err}");
            }
        }
    }

    /// Restarts the job cgroup's memory high-water mark, so the next sample's is the peak
    /// between the two (v1; see [`PeakReset`]). A failed write (the cgroup went away) ends
    /// the restarts for the rest of the run.
    fn reset_peak(&mut self, observer: &mut Observer) {
        let Some(peak_reset) = &self.peak_reset else {
            return;
        };
        match peak_reset.reset() {
            Ok(()) => observer.note_peak_reset(),
            Err(err) => {
                tracing::debug!("memory high-water mark: {err}");
                self.peak_reset = None;
            }
        }
    }

    /// Applies a decision: thread channels, reclaim.
    fn act(&mut self, decision: &Decision, cgroup_label: &str) {
        if decision.threads != decision.previous_threads {
            tracing::info!(
                resctl_cgroup = %cgroup_label,
                resctl_level = %decision.level,
                resctl_action = "threads",
                resctl_threads = decision.threads,
                "threads {} -> {}: {}",
                decision.previous_threads,
                decision.threads,
                decision.reason
            );
            if let Err(err) = self.channels.publish(decision.threads) {
                tracing::warn!("could not publish the thread count: {err}");
            }
            if let Some(jobserver) = &self.jobserver {
                jobserver.set_limit(decision.threads);
            }
            if let Some(control) = &self.control {
                control.publish_threads(
                    decision.threads,
                    decision.previous_threads,
                    &decision.reason,
                );
            }
        }
        if let Some(bytes) = decision.reclaim.filter(|_| !self.cgroup_gone) {
            if let (Some(dir), Some(kind)) =
                (self.placement.job_dir(), self.placement.cgroup_kind())
            {
                match writer::reclaim(dir, kind, bytes) {
                    Ok(()) => tracing::info!(
                        resctl_cgroup = %cgroup_label,
                        resctl_action = "reclaim",
                        "asked the kernel to reclaim {} from the job (cleanup level {})",
                        format_size(bytes),
                        format_size(self.policy_config.memory_cleanup)
                    ),
                    Err(err) => tracing::debug!("reclaim {}: {err}", format_size(bytes)),
                }
            }
        }
        if let Some(leak) = &decision.leak {
            if leak.suspected {
                tracing::warn!(resctl_cgroup = %cgroup_label, resctl_action = "leak", "{}", leak.message);
            }
        }
    }
}

/// Arms the kernel notifications that wake the loop between ticks (memory crossing a level,
/// PSI, memory events, the child's exit), so the reaction to a crossing takes milliseconds
/// instead of up to one interval. They are armed on a thread of their own after the job has
/// started: the job never waits for them. On v1 each threshold registration takes 8–16 ms
/// in the kernel (a grace period), a dozen of them ~150 ms, and their asynchronous removal
/// at exit slows cgroup moves and removals that follow; so there a polling waker
/// ([`Waker::polling`], as on v2) comes at once and the thresholds are registered only once
/// the job has run for [`V1_ARM_DELAY`]: a job that ends sooner never pays for them. Each
/// waker reaches the loop as [`LoopEvent::WakerReady`] and replaces the one before.
/// `RESCTL_NO_WAKEUP=1` turns them off (ticks only, for comparison).
fn arm_wakeups(
    placement: &Placement,
    config: &PolicyConfig,
    interval: Duration,
    pid: i32,
    events: &mpsc::Sender<LoopEvent>,
    ending: &Arc<AtomicBool>,
) {
    if std::env::var_os(ENV_NO_WAKEUP).is_some_and(|v| v == "1") {
        return;
    }
    // Opened now, before anything can reap the job, so the pid cannot name another process.
    let pidfd = crate::pidfd::PidFd::open(pid)
        .map_err(|err| tracing::debug!("wakeups: pidfd_open({pid}): {err}"))
        .ok()
        .map(crate::pidfd::PidFd::into_fd);
    let cgroup = placement
        .job_dir()
        .map(Path::to_path_buf)
        .zip(placement.cgroup_kind());
    let thresholds = notification_thresholds(config);
    let events = events.clone();
    let pending = Arc::clone(ending);
    let armed = std::thread::Builder::new()
        .name("resctl-wakeups".into())
        .spawn(move || {
            let cgroup = cgroup.as_ref().map(|(dir, kind)| (dir.as_path(), *kind));
            let send = |waker: io::Result<Waker>| match waker {
                Ok(mut waker) => {
                    if let Some(fd) = pidfd.as_ref().and_then(|fd| fd.try_clone().ok()) {
                        waker.watch_exit_fd(fd);
                    }
                    tracing::debug!("wakeups: {}", waker.describe());
                    let _ = events.send(LoopEvent::WakerReady(Box::new(waker)));
                }
                // A job that ended before they were armed took its cgroup with it.
                Err(err) if pending.load(Ordering::SeqCst) => tracing::debug!("wakeups: {err}"),
                Err(err) => tracing::warn!(
                    "no kernel wakeups, sampling every {}: {err}",
                    crate::units::format_elapsed(interval)
                ),
            };
            if !matches!(cgroup, Some((_, CgroupKind::V1Memory))) {
                send(Waker::new(cgroup, &thresholds));
                return;
            }
            // v1: poll usage at once, register the thresholds once the job has lived a while.
            send(Waker::polling(cgroup, &thresholds));
            let deadline = Instant::now() + V1_ARM_DELAY;
            while Instant::now() < deadline {
                if pending.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if !pending.load(Ordering::SeqCst) {
                send(Waker::new(cgroup, &thresholds));
            }
        });
    if let Err(err) = armed {
        tracing::warn!("no kernel wakeups (thread: {err})");
    }
}

/// How long a job runs on a v1 host before its memory thresholds are registered: short jobs
/// (a `make` recipe, a test) end first and cost nothing; a long one is ticked in the meantime.
const V1_ARM_DELAY: Duration = Duration::from_millis(200);

/// The memory levels the kernel should wake the loop at.
fn notification_thresholds(config: &PolicyConfig) -> Vec<u64> {
    [
        config.memory_moderate,
        config.memory_cleanup,
        config.memory_high,
        config.memory_critical,
    ]
    .into_iter()
    .filter(|bytes| *bytes > 0 && *bytes < u64::MAX)
    .collect()
}

/// What the run's helper threads tell the loop.
enum LoopEvent {
    /// The job was reaped with this status (the waiter thread).
    Ended(std::io::Result<std::process::ExitStatus>),
    /// The kernel wakeups are armed ([`arm_wakeups`]).
    WakerReady(Box<Waker>),
}

/// What the loop does next.
enum TickOutcome {
    /// Take a sample now.
    Sample,
    /// The job ended with this wait status.
    Ended(std::io::Result<std::process::ExitStatus>),
}

/// Waits for the next tick, a kernel notification, or the job's end. A waker that arrives
/// ([`LoopEvent::WakerReady`]) replaces the one in `waker`, unless `accept_wakers` is false
/// (the job's cgroup is gone: its wakers would watch nothing).
fn wait_for_tick(
    waker: &mut Option<Waker>,
    events: &mpsc::Receiver<LoopEvent>,
    interval: Duration,
    accept_wakers: bool,
) -> TickOutcome {
    let lost = || {
        TickOutcome::Ended(Err(std::io::Error::other(
            "the waiter thread ended without a status",
        )))
    };
    let wake = waker.as_mut().map(|armed| armed.wait(interval));
    let mut take = |new: Box<Waker>| {
        if accept_wakers {
            *waker = Some(*new);
        }
        TickOutcome::Sample
    };
    match wake {
        // The job has exited: its status follows from the waiter thread.
        Some(Wake::ChildExited) => loop {
            match events.recv() {
                Ok(LoopEvent::Ended(status)) => return TickOutcome::Ended(status),
                Ok(LoopEvent::WakerReady(_)) => {}
                Err(mpsc::RecvError) => return lost(),
            }
        },
        Some(Wake::Tick | Wake::Kernel(_)) => match events.try_recv() {
            Ok(LoopEvent::Ended(status)) => TickOutcome::Ended(status),
            Ok(LoopEvent::WakerReady(new)) => take(new),
            Err(mpsc::TryRecvError::Empty) => TickOutcome::Sample,
            Err(mpsc::TryRecvError::Disconnected) => lost(),
        },
        None => match events.recv_timeout(interval) {
            Ok(LoopEvent::Ended(status)) => TickOutcome::Ended(status),
            Ok(LoopEvent::WakerReady(new)) => take(new),
            Err(mpsc::RecvTimeoutError::Timeout) => TickOutcome::Sample,
            Err(mpsc::RecvTimeoutError::Disconnected) => lost(),
        },
    }
}

fn maybe_reexec_in_scope(host: &HostCgroups, request: &RunRequest) -> Result<(), StartFailure> {
    let delegated = host.v2_own.as_deref().is_some_and(scope::is_delegated);
    let wants_scope = request.cgroup_parent.is_none()
        && !request.monitor_only
        && !scope::inside_own_scope()
        && !delegated;
    if !wants_scope || host.layout != Layout::Unified || !scope::systemd_running() {
        if request.slice_requested
            && !scope::inside_own_scope()
            && request.cgroup_parent.is_none()
            && !delegated
        {
            tracing::warn!(
                "--slice {} ignored: systemd does not manage this host's cgroups",
                request.config.slice
            );
        }
        return Ok(());
    }
    Err(resctl_failure(scope::reexec_in_scope(
        &request.config.slice,
        &request.reexec_args,
    )))
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

fn describe_placement(placement: &Placement) -> String {
    match (placement.kind(), placement.job_dir()) {
        (PlacementKind::V2, Some(dir)) => format!("cgroup v2 {}", dir.display()),
        (PlacementKind::V1Memory, Some(dir)) => format!("cgroup v1 memory {}", dir.display()),
        (PlacementKind::MonitorOnly { reason }, _) => format!("no cgroup (monitor-only: {reason})"),
        (_, None) => "no cgroup".to_string(),
    }
}

fn report_summary(summary: &RunSummary, cgroup_label: &str) {
    for line in summary.render() {
        tracing::info!(
            resctl_cgroup = %cgroup_label,
            resctl_level = %summary.highest_level,
            resctl_action = "summary",
            resctl_threads = summary.threads_final,
            "{line}"
        );
    }
}
