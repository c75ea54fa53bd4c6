//! Setting a run up, step by step, before the job starts: the outputs checked, the job's
//! cgroup placed with its plan resolved and its limits set, the channels the job talks to
//! resctl through opened, its environment and command assembled. Any failure here is
//! resctl's own, before the job ran (125, or 126/127 for a command that cannot run).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Child;

use crate::act::actuator::Actuator;
use crate::act::channels::{ThreadChannels, ENV_THREADS, ENV_THREADS_FILE, THREADS_FILE_NAME};
use crate::act::jobserver::{self, AuthForm, Jobserver};
use crate::act::jobserver_form;
use crate::act::pressure_protocol;
use crate::act::runtime_dir::{JobOwner, RuntimeDir};
use crate::cgroup::detect::{detect, HostCgroups, Layout};
use crate::cgroup::reader::{CgroupKind, LimitChain};
use crate::config::resolve::{resolve, HostFacts, RunPlan};
use crate::control::protocol::ENV_SOCKET;
use crate::control::server::ControlServer;
use crate::exit::{RESCTL_FAILED, SIGNAL_BASE};
use crate::history::store::JobHistory;
use crate::placement::{parent_for_new_job, Placement, PlacementKind, PlacementRequest};
use crate::policy::Policy;
use crate::report::metrics_export::MetricsExport;
use crate::report::record::{Recorder, TraceLine};
use crate::report::tick::TickReporter;
use crate::safe_fs::OutputFile;
use crate::sample::job::{JobSampler, JobScope};
use crate::sample::procfs::{clock_ticks_per_second, ProcReader};
use crate::systemd::manager::ManagerError;

use super::observe::Observer;
use super::watch::Watch;

use super::command::{JobCommand, StartError};
use super::protect::Protection;
use super::signals::Forwarder;
use super::{scope, RunRequest, PROC_ROOT};
use crate::surroundings::Surroundings;

/// A failure before the job started: message and exit code.
pub struct StartFailure {
    /// What failed, for the log.
    pub message: String,
    /// resctl's exit code.
    pub code: i32,
}

impl From<StartError> for StartFailure {
    fn from(err: StartError) -> Self {
        StartFailure {
            code: err.exit_code(),
            message: err.to_string(),
        }
    }
}

/// A failure of resctl's own before the job ran (exit 125).
pub fn resctl_failure(message: impl Into<String>) -> StartFailure {
    StartFailure {
        message: message.into(),
        code: RESCTL_FAILED,
    }
}

/// The `--record` and `--summary-json` outputs, checked before anything else is done, so a
/// typo costs nothing, not the figures of a run.
pub struct Outputs {
    /// `--record`.
    pub record: Option<OutputFile>,
    /// `--summary-json`.
    pub summary: Option<OutputFile>,
    /// `--metrics-listen` bound, `--metrics-textfile` checked.
    pub metrics: Option<MetricsExport>,
}

impl Outputs {
    /// Opens the folders of the output paths and checks a file can be made there.
    pub fn prepare(request: &RunRequest) -> Result<Outputs, StartFailure> {
        let prepare = |flag: &str, path: &Option<PathBuf>| {
            OutputFile::prepare_for(flag, path.as_deref()).map_err(resctl_failure)
        };
        Ok(Outputs {
            record: prepare("--record", &request.record)?,
            summary: prepare("--summary-json", &request.summary_json)?,
            metrics: MetricsExport::open(&request.metrics).map_err(resctl_failure)?,
        })
    }

    /// The trace recorder, its header written, when recording.
    pub fn recorder(
        &self,
        plan: &RunPlan,
        placement: &Placement,
    ) -> Result<Option<Recorder>, StartFailure> {
        let Some(output) = &self.record else {
            return Ok(None);
        };
        let file = output.create_stream().map_err(|err| {
            resctl_failure(format!("--record {}: {err}", output.path().display()))
        })?;
        let mut recorder = Recorder::new(file);
        recorder
            .write(&TraceLine::Header {
                version: env!("CARGO_PKG_VERSION").to_string(),
                policy: plan.policy.clone(),
                cgroup: placement.job_dir().map(|d| d.display().to_string()),
            })
            .map_err(|err| resctl_failure(format!("--record: {err}")))?;
        Ok(Some(recorder))
    }
}

/// Where the reporter of a job writes besides the log: the trace and the metrics.
pub struct ReportOutputs<'a> {
    /// `--record`, its header written.
    pub recorder: Option<Recorder>,
    /// `--metrics-listen`/`--metrics-textfile`, opened.
    pub metrics: Option<MetricsExport>,
    /// The job's name in the metrics.
    pub job_name: &'a str,
}

/// The job's cgroup, with its plan resolved and its limits set.
pub struct Placed {
    /// Where the job runs.
    pub placement: Placement,
    /// What the run does.
    pub plan: RunPlan,
    /// The limits on the job's cgroup and above it, re-read every tick.
    pub limit_chain: Option<LimitChain>,
}

/// Creates the job's cgroup, reads the host's facts, resolves the plan and sets the limits.
pub fn place_job(entered: &Entered, request: &RunRequest) -> Result<Placed, StartFailure> {
    let host = &entered.host;
    let placement = Placement::prepare(
        host,
        &PlacementRequest {
            cgroup_parent: request.cgroup_parent.clone(),
            monitor_only: request.monitor_only,
            run_id: std::process::id(),
            without_scope: entered.without_scope.clone(),
            read_enclosing: entered.surroundings.enclosed(),
        },
    )
    .map_err(|err| resctl_failure(format!("could not create the job's cgroup: {err}")))?;
    if let PlacementKind::MonitorOnly { reason } = placement.kind() {
        if !request.monitor_only {
            tracing::warn!("monitor-only: {reason}; limits cannot be enforced, the job is watched through /proc");
        }
    }
    // Read now, while the job's own cgroup has no limit yet, the chain gives the enclosing
    // limit; the job's real limit is then the tighter of that and its own.
    let read_error = |err: crate::cgroup::CgroupError| {
        resctl_failure(format!("could not read the job's memory limit: {err}"))
    };
    let mut limit_chain = placement.limit_chain(host).map_err(read_error)?;
    let enclosing_limit = limit_chain
        .as_mut()
        .map(LimitChain::read)
        .transpose()
        .map_err(read_error)?
        .flatten();
    let facts = read_host_facts(
        enclosing_limit,
        placement.cgroup_kind() == Some(CgroupKind::V2),
    )
    .map_err(resctl_failure)?;
    let mut plan = resolve(&request.config, &facts, &request.flags)
        .map_err(|err| resctl_failure(err.to_string()))?;
    if let Some(record) = request.history.as_ref().and_then(JobHistory::previous) {
        if let Some(why) = plan.start_from_history(record, &request.config, &request.flags) {
            tracing::info!(
                "history: starting with {} threads: {why}",
                plan.policy.initial_threads
            );
        }
    }
    placement
        .set_limits(plan.memory_high, plan.memory_max)
        .map_err(|err| resctl_failure(format!("could not set the job's memory limits: {err}")))?;
    if placement.cgroup_kind() == Some(CgroupKind::V1Memory) && plan.memory_high.is_some() {
        tracing::warn!("cgroup v1 has no memory.high: --memory-high is set as memory.soft_limit_in_bytes, which only guides reclaim under host pressure and does not throttle");
    }
    Ok(Placed {
        placement,
        plan,
        limit_chain,
    })
}

/// The host's facts for a job under `enclosing_limit` whose cgroup can (`can_reclaim`) or
/// cannot reclaim: CPUs and memory read now. The host's memory decides the budget of a job
/// without a limit: when it cannot be read no level could be set, so that is an error.
pub fn read_host_facts(
    enclosing_limit: Option<u64>,
    can_reclaim: bool,
) -> Result<HostFacts, String> {
    let memory = ProcReader::new(Path::new(PROC_ROOT))
        .sample_host()
        .map_err(|err| format!("could not read the host's memory: {err}"))?;
    Ok(HostFacts {
        cpus: super::available_cpus(),
        memory_total: memory.mem_total,
        memory_available: memory.mem_available,
        enclosing_limit,
        can_reclaim,
    })
}

/// The host's facts for a job that `resctl run` would start now under `cgroup_parent` (or
/// in `slice`): the limits above where its cgroup would be, read before any cgroup exists
/// (`resctl config show --resolved`, `resctl doctor`).
pub fn facts_for_new_job(
    host: &HostCgroups,
    cgroup_parent: Option<&Path>,
    slice: &str,
) -> Result<HostFacts, String> {
    let parent = parent_for_new_job(host, cgroup_parent, slice, scope::systemd_running());
    let enclosing_limit = match &parent {
        Some((dir, kind, mount)) => LimitChain::open_enclosing(dir, *kind, mount)
            .read()
            .map_err(|err| format!("could not read the limits above the job: {err}"))?,
        None => None,
    };
    let can_reclaim = parent.is_some_and(|(_, kind, _)| kind == CgroupKind::V2);
    read_host_facts(enclosing_limit, can_reclaim)
}

/// What the job talks to resctl through, in its run folder.
pub struct Channels {
    /// The run folder.
    pub runtime: RuntimeDir,
    /// The thread file (and signal).
    pub threads: ThreadChannels,
    /// The jobserver and how it is announced, when served.
    pub jobserver: Option<(Jobserver, AuthForm)>,
    /// The control socket (a convenience: without it the job still has the thread file).
    pub control: Option<ControlServer>,
}

impl Channels {
    /// Creates the run folder and opens every channel; the thread file holds `threads`.
    pub fn open(
        request: &RunRequest,
        plan: &RunPlan,
        threads: u32,
        program: &OsStr,
    ) -> Result<Channels, StartFailure> {
        let owner = request.user.as_ref().map(|user| JobOwner {
            uid: user.uid,
            gid: user.gid,
        });
        let runtime = RuntimeDir::create(std::process::id(), owner).map_err(|err| {
            resctl_failure(format!("could not create resctl's runtime folder: {err}"))
        })?;
        let file = runtime.shared_file(THREADS_FILE_NAME).map_err(|err| {
            resctl_failure(format!("could not open resctl's runtime folder: {err}"))
        })?;
        // Validated with the configuration: a name that is no signal never gets here.
        let thread_channels = ThreadChannels::new(file, request.config.notify_signal_parsed());
        thread_channels.publish(threads).map_err(|err| {
            resctl_failure(format!(
                "could not write {}: {err}",
                thread_channels.file().display()
            ))
        })?;
        let jobserver = match plan.jobserver {
            Some(jobs) => Some(open_jobserver(request, &runtime, jobs, threads, program)?),
            None => None,
        };
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
        Ok(Channels {
            runtime,
            threads: thread_channels,
            jobserver,
            control,
        })
    }

    /// The job's environment: the variables it gets, and those it must not inherit.
    pub fn environment(
        &self,
        request: &RunRequest,
        placement: &Placement,
        threads: u32,
    ) -> (Vec<(String, OsString)>, Vec<String>) {
        let mut set = vec![
            (ENV_THREADS.to_string(), OsString::from(threads.to_string())),
            (
                ENV_THREADS_FILE.to_string(),
                self.threads.file().into_os_string(),
            ),
        ];
        if let Some(user) = &request.user {
            set.extend(user.environment());
        }
        let mut remove = vec!["NOTIFY_SOCKET".to_string(), scope::ENV_IN_SCOPE.to_string()];
        let pressure = match (placement.job_dir(), placement.cgroup_kind()) {
            (Some(dir), Some(CgroupKind::V2)) => pressure_protocol::environment(dir),
            // Hybrid hosts: the job's cgroup2 leaf has its own memory.pressure.
            _ => placement
                .pressure_cgroup()
                .map(pressure_protocol::environment)
                .unwrap_or_default(),
        };
        if pressure.is_empty() {
            // Inherited variables would point at another cgroup's file.
            remove.extend(pressure_protocol::VARIABLES.map(String::from));
        }
        set.extend(pressure.into_iter().map(|(k, v)| (k, OsString::from(v))));
        match &self.control {
            Some(server) => set.push((
                ENV_SOCKET.to_string(),
                server.path().as_os_str().to_os_string(),
            )),
            None => remove.push(ENV_SOCKET.to_string()),
        }
        if self.jobserver.is_some() {
            // A parent make's settings would confuse the job's make.
            remove.extend(["MFLAGS", "MAKELEVEL"].map(String::from));
        }
        (set, remove)
    }
}

/// A jobserver of `jobs` tokens, `threads` of them handed out, announced in the form the
/// command calls for.
fn open_jobserver(
    request: &RunRequest,
    runtime: &RuntimeDir,
    jobs: u32,
    threads: u32,
    program: &OsStr,
) -> Result<(Jobserver, AuthForm), StartFailure> {
    let server = Jobserver::create(jobs, runtime.folder()).map_err(|err| {
        resctl_failure(format!(
            "--jobserver: could not create the token pool: {err}"
        ))
    })?;
    server.set_limit(threads);
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
    Ok((server, form))
}

/// Starts the job with its environment, moved into its cgroup before it execs — unless a
/// forwarded signal arrived before: then nothing starts and resctl exits 128+N. Signals that
/// arrive while it starts are delivered the moment it runs.
pub fn spawn_job(
    request: &RunRequest,
    program: PathBuf,
    placement: &mut Placement,
    channels: &Channels,
    protection: &Protection,
    forwarder: &Forwarder,
    threads: u32,
) -> Result<Child, StartFailure> {
    let (set_env, remove_env) = channels.environment(request, placement, threads);
    let jobserver = channels.jobserver.as_ref();
    let configure = |command: &mut std::process::Command| {
        if let Some((server, form)) = jobserver {
            server.configure_command(command, *form);
        }
    };
    let arg0 = request.command.first().cloned().unwrap_or_default();
    let job = JobCommand {
        program,
        args: request.command.get(1..).unwrap_or_default().to_vec(),
        arg0,
        set_env,
        remove_env,
        cgroup_procs: placement.open_procs().map_err(|err| {
            resctl_failure(format!(
                "could not open the job cgroup's cgroup.procs: {err}"
            ))
        })?,
        pressure_procs: placement.open_pressure_procs(),
        configure: Some(&configure),
        user: request.user.as_ref(),
        protection: Some(protection),
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
    let child = job.spawn()?;
    forwarder.job_started(child.id() as i32);
    placement.confirm_pressure_cgroup(Path::new(PROC_ROOT), child.id() as i32);
    Ok(child)
}

/// The job's watch pipeline, from the pieces set up for it; also hands back the run folder,
/// which must live as long as the run.
pub fn watch_job(
    pid: i32,
    placement: &Placement,
    limit_chain: Option<LimitChain>,
    policy: Policy,
    channels: Channels,
    outputs: ReportOutputs<'_>,
    plan: &RunPlan,
) -> (Watch, RuntimeDir) {
    let Channels {
        runtime,
        mut threads,
        jobserver,
        control,
    } = channels;
    threads.set_job_pid(pid);
    let cgroup = placement.job_cgroup();
    let label = placement
        .job_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let initial_threads = policy.threads();
    let watch = Watch::new(
        JobSampler::new(
            JobScope::for_job(
                placement.watched_cgroup(),
                limit_chain,
                placement.pressure_cgroup(),
                pid,
            ),
            Path::new(PROC_ROOT),
        ),
        Observer::new(super::available_cpus(), clock_ticks_per_second()),
        policy,
        Actuator::new(
            threads,
            jobserver.map(|(server, _)| server),
            control,
            cgroup,
        ),
        TickReporter::new(label, initial_threads, &plan.policy, outputs.recorder)
            .with_metrics(outputs.metrics, outputs.job_name),
    );
    (watch, runtime)
}

/// This host's cgroups as this process sees them, or why they could not be inspected.
pub fn detect_host() -> Result<HostCgroups, String> {
    detect(Path::new(PROC_ROOT), Path::new("/"))
        .map_err(|err| format!("could not inspect this host's cgroups: {err}"))
}

/// The host's cgroups once resctl is where it will stay, and why it has no scope of its own
/// where it asked for one and got none.
pub struct Entered {
    /// The host's cgroups as seen from resctl's (possibly new) cgroup.
    pub host: HostCgroups,
    /// Why no scope could be had (no systemd user manager, the manager said no): the
    /// reason a monitor-only run gives.
    pub without_scope: Option<String>,
    /// Inside a container or a scheduler's job, or on a host of its own.
    pub surroundings: Surroundings,
}

/// On a systemd host, moves resctl into a delegated scope of its own — from the system
/// manager for root, from the user's own manager otherwise — and returns the host's cgroups
/// as seen from there; elsewhere, or when already placed, returns `host` as it is. Where
/// no bus reaches the manager it re-executes resctl under `systemd-run [--user] --scope`
/// (and only returns on failure). Without root, a user with no manager to ask, or whose
/// manager says no, gets `host` back with the reason: the job then runs monitor-only.
pub fn enter_scope(host: HostCgroups, request: &RunRequest) -> Result<Entered, StartFailure> {
    // Inside a container or a scheduler's job, resctl stays in the cgroup it was given: a
    // scope elsewhere would take the job out of the budget it is accounted to.
    let surroundings = Surroundings::gather(Path::new("/"), &host);
    let enclosed = surroundings.enclosed();
    let as_is = |host: HostCgroups| Entered {
        host,
        without_scope: None,
        surroundings: surroundings.clone(),
    };
    let delegated = host.v2_own.as_deref().is_some_and(scope::is_delegated);
    let wants_scope = request.cgroup_parent.is_none()
        && !request.monitor_only
        && !scope::inside_own_scope()
        && !delegated
        && !enclosed;
    if !wants_scope || host.layout != Layout::Unified || !scope::systemd_running() {
        if request.slice_requested
            && !scope::inside_own_scope()
            && request.cgroup_parent.is_none()
            && !delegated
            && !enclosed
        {
            tracing::warn!(
                "--slice {} ignored: systemd does not manage this host's cgroups",
                request.config.slice
            );
        }
        return Ok(as_is(host));
    }
    let manager = match scope::Manager::for_this_process() {
        Ok(manager) => manager,
        Err(reason) => {
            return Ok(Entered {
                without_scope: Some(reason),
                ..as_is(host)
            })
        }
    };
    let slice = &request.config.slice;
    match scope::enter(&manager, slice) {
        Ok(()) => detect_host()
            .map(as_is)
            .map_err(|err| resctl_failure(format!("in the new scope, {err}"))),
        Err(ManagerError::Unreachable(reason)) => {
            tracing::debug!("{reason}; creating the scope with systemd-run");
            Err(resctl_failure(scope::reexec_in_scope(
                &manager,
                slice,
                &request.reexec_args,
            )))
        }
        Err(err) if manager != scope::Manager::System => Ok(Entered {
            without_scope: Some(format!(
                "your systemd user manager did not create a scope in {slice}: {err}"
            )),
            ..as_is(host)
        }),
        Err(err) => Err(resctl_failure(format!(
            "could not create a scope in {slice}: {err}"
        ))),
    }
}

/// Where the job runs, in words.
pub fn describe_placement(placement: &Placement) -> String {
    match (placement.kind(), placement.job_dir()) {
        (PlacementKind::V2, Some(dir)) => format!("cgroup v2 {}", dir.display()),
        (PlacementKind::V1Memory, Some(dir)) => match placement.pressure_cgroup() {
            Some(leaf) => format!(
                "cgroup v1 memory {} (its pressure from the cgroup2 leaf {})",
                dir.display(),
                leaf.display()
            ),
            None => format!(
                "cgroup v1 memory {} (the host's PSI stands in for its own)",
                dir.display()
            ),
        },
        (PlacementKind::MonitorOnly { reason }, _) => match placement.enclosing_cgroup() {
            Some(dir) => format!(
                "no cgroup of its own (monitor-only: {reason}); the enclosing cgroup {} is read \
                 for its limit and figures",
                dir.display()
            ),
            None => format!("no cgroup (monitor-only: {reason})"),
        },
        (_, None) => "no cgroup".to_string(),
    }
}
