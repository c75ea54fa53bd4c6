//! `resctl daemon`: a systemd service that watches every slice of the configuration's
//! `slices:` section with that slice's levels, holds the slice's memory limits through
//! systemd, and logs one journald entry per decision.
//!
//! Each interval: **sample** every slice's cgroup (cgroupfs, [`crate::cgroup::reader`]; a
//! quiet slice far from its levels only by its charge, in full at least every 5 s:
//! [`slice::SliceWatch::needs_full_reading`]) →
//! **assess** and **decide** ([`slice::SliceWatch`], the same policy a job gets) → **act**
//! (`memory.reclaim` at the cleanup level) → **report** (journald fields `RESCTL_SLICE`,
//! `RESCTL_CGROUP`, `RESCTL_LEVEL`, `RESCTL_ACTION`, `RESCTL_REASON`; systemd's `STATUS=`
//! and watchdog, [`crate::report::notify`]). A slice's `limits:` become its `MemoryHigh=`/`MemoryMax=`
//! as runtime properties set over D-Bus ([`limits`]); SIGHUP reloads the configuration
//! (an invalid one is refused with FILE:LINE:COL and the old one keeps running). With
//! `--metrics-listen`/`--metrics-textfile` every slice's figures are exported as metrics
//! ([`crate::report::metrics`]).
//!
//! Every 2 s, and at once after an action, it replaces its status file, which
//! `resctl status` reads ([`crate::control::overview`]).
//!
//! Jobs `resctl run` started in a watched slice register in their run folder
//! ([`job_io`]); when the slice is at high the daemon lowers one job's worker ceiling at a
//! time over its control socket, at critical with nothing left to shrink it freezes the
//! lowest-priority job, and it thaws and raises ceilings again when the pressure is gone
//! ([`jobs`]). It kills only in a slice whose configuration says `last_resort: kill`, a
//! frozen job once critical lasted `kill_after`, and says so at start and on every reload
//! (one entry per such slice, with the file and line that set it); on the way out it thaws
//! and lifts whatever it set.

pub mod job_io;
pub mod jobs;
pub mod limits;
pub mod slice;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cgroup::detect::{HostCgroups, Layout};
use crate::cgroup::reader::{CgroupDir, CgroupKind, LimitChain};
use crate::cgroup::writer;
use crate::config::resolve::{resolve, RunFlags};
use crate::config::Config;
use crate::control::overview::{now_unix_seconds, DaemonStatus, SliceStatus, DAEMON_STATUS_FILE};
use crate::control::protocol::NoticeAction;
use crate::exit::RESCTL_FAILED;
use crate::job_text;
use crate::placement::slice_path;
use crate::policy::Level;
use crate::report::metrics::{Figures, Metrics, Target};
use crate::report::metrics_export::{MetricsExport, MetricsOptions};
use crate::report::notify::Notifier;
use crate::run::setup::{detect_host, facts_for_new_job};
use crate::safe_fs::Folder;
use crate::sample::procfs::clock_ticks_per_second;
use job_io::RegisteredJob;
use jobs::{JobAction, JobState, JobSteering};
use limits::SliceLimits;
use slice::{SliceEvent, SliceWatch};
use std::ffi::OsStr;

/// How often the status file is refreshed when no action happened (`resctl status` calls
/// a file stale only after three intervals and 5 s).
const STATUS_EVERY: Duration = Duration::from_secs(2);

/// The configuration file the service reads by default.
pub const DEFAULT_DAEMON_CONFIG: &str = "/etc/resctl/resctl.yaml";

/// What `resctl daemon` was asked.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// The configuration file.
    pub config: PathBuf,
    /// Where the slices' metrics go (`--metrics-listen`, `--metrics-textfile`).
    pub metrics: MetricsOptions,
}

/// Runs the daemon until SIGTERM or SIGINT; returns its exit code (0 on a clean stop, 125
/// when it could not start: no cgroup v2, an invalid configuration).
pub fn run(options: &DaemonOptions) -> i32 {
    match Daemon::start(options) {
        Ok(daemon) => daemon.serve(),
        Err(message) => {
            tracing::error!("daemon: {message}");
            let _ = Notifier::from_env().failed(&message);
            RESCTL_FAILED
        }
    }
}

/// The slices watched, their cgroups, and what the daemon set on them.
struct Daemon {
    config_path: PathBuf,
    config: Config,
    host: HostCgroups,
    mount: PathBuf,
    slices: BTreeMap<String, WatchedSlice>,
    limits: SliceLimits,
    notifier: Notifier,
    started: Instant,
    signals: Signals,
    metrics: Option<MetricsExport>,
    /// The runtime folder `resctl status` reads the slices from (`None`: not usable).
    status_folder: Option<Folder>,
    /// The status file could not be written (said once until it can).
    status_failing: bool,
    /// When the status file was last written, and the newest action it held.
    status_written: Option<(Instant, f64)>,
    /// Where runs register their jobs (the runtime folder).
    runs_dir: PathBuf,
    /// The ceilings the daemon set, by resctl pid.
    ceilings: HashMap<u32, u32>,
    /// The jobs the daemon froze, by resctl pid, and when (the steering's clock).
    frozen: HashMap<u32, Duration>,
    /// The jobs the daemon killed, by resctl pid, until their run ends.
    killed: HashSet<u32>,
}

/// One slice: its watch and its cgroup, opened when it exists.
struct WatchedSlice {
    watch: SliceWatch,
    dir: PathBuf,
    reader: Option<CgroupDir>,
    limits: Option<LimitChain>,
    /// The last action on the slice, in words, and when (Unix seconds).
    last_action: Option<(String, f64)>,
    /// What is done to the slice's jobs under pressure.
    steering: JobSteering,
}

impl Daemon {
    fn start(options: &DaemonOptions) -> Result<Daemon, String> {
        let config = Config::load(&options.config).map_err(|err| err.to_string())?;
        let host = detect_host()?;
        let mount = match (&host.layout, &host.v2_mount) {
            (Layout::Unified, Some(mount)) => mount.clone(),
            _ => {
                return Err(format!(
                    "the daemon needs cgroup v2 (a unified hierarchy); this host's layout is {:?} \
                     (resctl doctor tells more)",
                    host.layout
                ))
            }
        };
        if config.slices.is_empty() {
            tracing::warn!(
                "{}: no slices: section, nothing to watch (the daemon stays up for a reload)",
                options.config.display()
            );
        }
        let metrics = MetricsExport::open(&options.metrics)?;
        let signals = Signals::install()
            .map_err(|err| format!("could not install signal handlers: {err}"))?;
        let (limits, warning) = SliceLimits::open(&runtime_dir());
        if let Some(warning) = warning {
            tracing::warn!("{warning}");
        }
        let status_folder = limits::open_private(&runtime_dir())
            .map_err(|err| {
                tracing::warn!(
                    "{}: {err}; `resctl status` will not see the slices",
                    runtime_dir().display()
                )
            })
            .ok();
        let mut daemon = Daemon {
            config_path: options.config.clone(),
            config: Config::default(),
            host,
            mount,
            slices: BTreeMap::new(),
            limits,
            notifier: Notifier::from_env(),
            started: Instant::now(),
            signals,
            metrics,
            status_folder,
            status_failing: false,
            status_written: None,
            runs_dir: runtime_dir(),
            ceilings: HashMap::new(),
            frozen: HashMap::new(),
            killed: HashSet::new(),
        };
        daemon.thaw_leftovers();
        daemon.apply(config)?;
        Ok(daemon)
    }

    /// Takes `config`: watches its slices (keeping what was learned of slices it keeps),
    /// sets their limits, gives removed slices their own values back.
    fn apply(&mut self, config: Config) -> Result<(), String> {
        let mut plans = BTreeMap::new();
        let mut slice_configs = BTreeMap::new();
        for name in config.slices.keys() {
            let slice_config = config.for_slice(name);
            let facts = facts_for_new_job(&self.host, None, name)?;
            let plan = resolve(&slice_config, &facts, &RunFlags::default())
                .map_err(|err| format!("slice {name}: {err}"))?;
            plans.insert(name.clone(), plan);
            slice_configs.insert(name.clone(), slice_config);
        }
        let (cpus, ticks) = (crate::run::available_cpus(), clock_ticks_per_second());
        let metrics = &mut self.metrics;
        self.slices.retain(|name, _| {
            let kept = plans.contains_key(name);
            if let (false, Some(export)) = (kept, metrics.as_mut()) {
                export.metrics().forget(&Target::slice(name));
            }
            kept
        });
        for (name, plan) in &plans {
            let slice_config = &slice_configs[name];
            let kill_after = slice_config.last_resort_kill_after();
            let before = self
                .slices
                .get(name)
                .and_then(|watched| watched.steering.kill_after());
            say_last_resort(name, slice_config, before);
            match self.slices.get_mut(name) {
                Some(watched) => {
                    watched.watch.reconfigure(plan.policy.clone());
                    watched.steering.set_kill_after(kill_after);
                }
                None => {
                    let dir = self.mount.join(slice_path(name));
                    self.slices.insert(
                        name.clone(),
                        WatchedSlice {
                            watch: SliceWatch::new(name, plan.policy.clone(), cpus, ticks),
                            dir,
                            reader: None,
                            limits: None,
                            last_action: None,
                            steering: JobSteering::new(kill_after),
                        },
                    );
                }
            }
        }
        let wanted = plans
            .iter()
            .map(|(name, plan)| (name.clone(), (plan.memory_high, plan.memory_max)))
            .collect();
        for outcome in self.limits.apply(&wanted) {
            let (outcome, refused) = match outcome {
                Ok(done) => (done, false),
                Err(problem) => (problem, true),
            };
            let slice = &outcome.slice;
            if let Some(watched) = self.slices.get_mut(slice) {
                watched.last_action =
                    Some((format!("limits: {}", outcome.what), now_unix_seconds()));
            }
            if let Some(export) = &mut self.metrics {
                export
                    .metrics()
                    .count_action(&Target::slice(slice), "limits");
            }
            if refused {
                tracing::warn!(resctl_slice = %slice, resctl_action = "limits", "{slice}: {}", outcome.what);
            } else {
                tracing::info!(resctl_slice = %slice, resctl_action = "limits", "{slice}: {}", outcome.what);
            }
        }
        self.config = config;
        Ok(())
    }

    fn serve(mut self) -> i32 {
        let interval = self.config.interval;
        tracing::info!(
            resctl_action = "start",
            "daemon: watching {} slice(s) from {} every {}",
            self.slices.len(),
            self.config_path.display(),
            crate::units::format_duration(interval)
        );
        if let Some(watchdog) = self.notifier.watchdog() {
            if watchdog < interval * 2 {
                tracing::warn!(
                    "the watchdog ({}) is shorter than two sampling intervals ({}): systemd may \
                     stop the daemon; raise WatchdogSec= or lower interval:",
                    crate::units::format_duration(watchdog),
                    crate::units::format_duration(interval)
                );
            }
        }
        let mut ready = false;
        while !self.signals.stopping() {
            if self.signals.take_reload() {
                self.reload_config();
            }
            self.tick(self.started.elapsed());
            if self.notifier.active() {
                let status = self.status_line();
                if ready {
                    self.notifier.alive(&status);
                } else {
                    self.notifier.ready(&status);
                }
            }
            ready = true;
            self.signals.sleep(self.config.interval);
        }
        self.notifier.stopping();
        self.release_jobs();
        if let Some(folder) = &self.status_folder {
            // Gone with the daemon: `resctl status` then says it is not running.
            let _ = folder.remove(OsStr::new(DAEMON_STATUS_FILE));
        }
        tracing::info!(resctl_action = "stop", "daemon: stopped");
        0
    }

    fn reload_config(&mut self) {
        self.notifier.reloading();
        let applied = Config::load(&self.config_path)
            .map_err(|err| err.to_string())
            .and_then(|config| self.apply(config));
        match applied {
            Ok(()) => tracing::info!(
                resctl_action = "reload",
                "daemon: reloaded {}: {} slice(s)",
                self.config_path.display(),
                self.slices.len()
            ),
            Err(message) => tracing::error!(
                resctl_action = "reload-refused",
                "daemon: reload refused, the configuration in force stays: {message}"
            ),
        }
        self.notifier.reloaded();
    }

    /// One round over every slice: sample, assess, act, report.
    fn tick(&mut self, at: Duration) {
        let started = Instant::now();
        for (name, watched) in &mut self.slices {
            // A quiet slice far from its levels is only glanced at (its charge).
            let Some((reading, limit)) = watched.read(&self.mount, at) else {
                continue;
            };
            let events = watched.watch.assess(at, reading, limit);
            if let Some(export) = &mut self.metrics {
                export_slice(export.metrics(), &watched.watch, &events);
            }
            if let Some(event) = events.last() {
                watched.last_action = Some((event.summary(), now_unix_seconds()));
            }
            for event in events {
                report(name, &watched.dir, &event);
                if let SliceEvent::Reclaim { bytes, .. } = event {
                    if let Err(err) = writer::reclaim(&watched.dir, CgroupKind::V2, bytes) {
                        tracing::debug!("{name}: memory.reclaim: {err}");
                    }
                }
            }
        }
        if let Some(export) = &mut self.metrics {
            export.metrics().own(started.elapsed());
            export.publish();
        }
        self.steer_jobs(at);
        self.write_status();
    }

    /// Jobs left frozen by a daemon that did not stop cleanly are thawed at start: a job
    /// must never stay paused because resctl went away.
    fn thaw_leftovers(&self) {
        for job in job_io::registered_jobs(&self.runs_dir) {
            if job.frozen() {
                match job.set_frozen(false) {
                    Ok(()) => tracing::warn!(
                        resctl_action = "thaw",
                        "thawed {} (resctl pid {}), left frozen when the daemon last stopped",
                        job_text::escape(&job.registration.name),
                        job.resctl_pid
                    ),
                    Err(err) => tracing::error!(
                        "cannot thaw {} (resctl pid {}): {err}",
                        job_text::escape(&job.registration.name),
                        job.resctl_pid
                    ),
                }
            }
        }
    }

    /// The registered jobs of each slice under pressure (or still capped or frozen): at
    /// most one action per slice, as [`jobs::JobSteering`] decides.
    fn steer_jobs(&mut self, at: Duration) {
        let pressed = self.slices.values().any(|watched| {
            watched
                .watch
                .figures()
                .is_some_and(|figures| figures.level >= Level::High)
        });
        // Calm slices and no job held: nothing to read (the steering still counts the calm).
        // Killed jobs are read until their runs end, so a reused pid is not taken for one.
        let held_any = !self.ceilings.is_empty() || !self.frozen.is_empty();
        let registered = if pressed || held_any || !self.killed.is_empty() {
            job_io::registered_jobs(&self.runs_dir)
        } else {
            Vec::new()
        };
        let alive: HashSet<u32> = registered.iter().map(|job| job.resctl_pid).collect();
        self.ceilings.retain(|pid, _| alive.contains(pid));
        self.frozen.retain(|pid, _| alive.contains(pid));
        self.killed.retain(|pid| alive.contains(pid));
        for (name, watched) in &mut self.slices {
            let Some(figures) = watched.watch.figures() else {
                continue;
            };
            let members: Vec<&RegisteredJob> = registered
                .iter()
                .filter(|job| job.inside(&watched.dir))
                .collect();
            let held = members.iter().any(|job| {
                self.ceilings.contains_key(&job.resctl_pid)
                    || self.frozen.contains_key(&job.resctl_pid)
            });
            // Nothing to ask the jobs while the slice is calm and none is held.
            if members.is_empty() || (figures.level < Level::High && !held) {
                watched.steering.plan(at, name, figures.level, &[]);
                continue;
            }
            // A killed job is ending: nothing more to ask of it, nor to count on.
            let states: Vec<JobState> = members
                .iter()
                .filter(|job| !self.killed.contains(&job.resctl_pid))
                .filter_map(|job| {
                    let status = job.status().ok()?;
                    Some(JobState {
                        pid: job.resctl_pid,
                        name: job_text::escape(&job.registration.name),
                        memory: status.memory_bytes,
                        slope: status.leak.as_ref().map(|leak| leak.slope_bytes_per_sec),
                        threads: status.threads,
                        min_threads: status.min_threads,
                        max_threads: status.max_threads,
                        priority: job.registration.priority,
                        frozen_at: self.frozen.get(&job.resctl_pid).copied(),
                        ceiling: self.ceilings.get(&job.resctl_pid).copied(),
                    })
                })
                .collect();
            let Some(action) = watched.steering.plan(at, name, figures.level, &states) else {
                continue;
            };
            let Some(job) = members.iter().find(|job| job.resctl_pid == action.pid()) else {
                continue;
            };
            let done = match &action {
                JobAction::Ceiling {
                    threads, reason, ..
                } => job.set_ceiling(*threads, reason).map(|()| {
                    match threads {
                        Some(threads) => self.ceilings.insert(job.resctl_pid, *threads),
                        None => self.ceilings.remove(&job.resctl_pid),
                    };
                }),
                JobAction::Freeze { reason, .. } => job.set_frozen(true).map(|()| {
                    self.frozen.insert(job.resctl_pid, at);
                    tell(job, NoticeAction::Freeze, reason);
                }),
                JobAction::Thaw { reason, .. } => job.set_frozen(false).map(|()| {
                    self.frozen.remove(&job.resctl_pid);
                    tell(job, NoticeAction::Thaw, reason);
                }),
                JobAction::Kill { reason, .. } => {
                    // Said first: once killed, the job's resctl reports the end at once.
                    tell(job, NoticeAction::Kill, reason);
                    job.kill().map(|()| {
                        self.frozen.remove(&job.resctl_pid);
                        self.killed.insert(job.resctl_pid);
                    })
                }
            };
            let cgroup = job.registration.cgroup.clone().unwrap_or_default();
            let reason = job_text::escape(action.reason());
            let threads = match &action {
                JobAction::Ceiling { threads, .. } => threads.map(|t| t.to_string()),
                _ => None,
            }
            .unwrap_or_default();
            match done {
                Ok(()) => {
                    tracing::info!(
                        resctl_slice = %name,
                        resctl_cgroup = %cgroup,
                        resctl_level = %figures.level,
                        resctl_action = action.name(),
                        resctl_threads = %threads,
                        resctl_reason = %reason,
                        "{name}: {} (resctl pid {}): {reason}",
                        action.name(),
                        job.resctl_pid
                    );
                    watched.last_action = Some((
                        format!(
                            "{} {}",
                            action.name(),
                            job_text::escape(&job.registration.name)
                        ),
                        now_unix_seconds(),
                    ));
                    if let Some(export) = &mut self.metrics {
                        export
                            .metrics()
                            .count_action(&Target::slice(name), action.name());
                    }
                }
                Err(err) => tracing::warn!(
                    resctl_slice = %name,
                    resctl_cgroup = %cgroup,
                    resctl_action = action.name(),
                    "{name}: could not {} resctl pid {}: {}",
                    action.name(),
                    job.resctl_pid,
                    job_text::escape(&err)
                ),
            }
        }
    }

    /// On the way out: no job stays frozen or capped by a daemon that is gone.
    fn release_jobs(&mut self) {
        for job in job_io::registered_jobs(&self.runs_dir) {
            if self.frozen.remove(&job.resctl_pid).is_some() {
                if let Err(err) = job.set_frozen(false) {
                    tracing::error!("cannot thaw resctl pid {}: {err}", job.resctl_pid);
                }
            }
            if self.ceilings.remove(&job.resctl_pid).is_some() {
                let _ = job.set_ceiling(None, "resctl daemon stopped");
            }
        }
    }

    /// Replaces the status file `resctl status` reads (mode 0644: figures, no secrets).
    fn write_status(&mut self) {
        let Some(folder) = &self.status_folder else {
            return;
        };
        // Figures alone are refreshed every STATUS_EVERY; a new action at once.
        let newest_action = self
            .slices
            .values()
            .filter_map(|watched| watched.last_action.as_ref().map(|&(_, at)| at))
            .fold(0.0, f64::max);
        if let Some((written, action)) = self.status_written {
            if written.elapsed() < STATUS_EVERY && newest_action <= action {
                return;
            }
        }
        self.status_written = Some((Instant::now(), newest_action));
        let status = DaemonStatus {
            pid: std::process::id(),
            written_at: now_unix_seconds(),
            interval_secs: self.config.interval.as_secs_f64(),
            config: self.config_path.display().to_string(),
            slices: self
                .slices
                .iter()
                .map(|(name, watched)| watched.status(name))
                .collect(),
        };
        let written = serde_json::to_vec(&status)
            .map_err(std::io::Error::other)
            .and_then(|bytes| folder.replace(OsStr::new(DAEMON_STATUS_FILE), &bytes, 0o644, None));
        match written {
            Ok(()) => self.status_failing = false,
            Err(err) => {
                if !std::mem::replace(&mut self.status_failing, true) {
                    tracing::warn!(
                        "{}/{DAEMON_STATUS_FILE}: {err}; `resctl status` will not see the slices",
                        folder.path().display()
                    );
                }
            }
        }
    }

    fn status_line(&self) -> String {
        if self.slices.is_empty() {
            return "no slices configured".to_owned();
        }
        self.slices
            .values()
            .map(|watched| watched.watch.status())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl WatchedSlice {
    /// The slice as `resctl status` shows it.
    fn status(&self, name: &str) -> SliceStatus {
        let figures = self.watch.figures();
        SliceStatus {
            name: name.to_owned(),
            cgroup: self.dir.display().to_string(),
            active: self.reader.is_some(),
            level: figures.map(|f| f.level).unwrap_or_default(),
            memory: figures.map(|f| f.memory),
            peak: figures.and_then(|f| f.peak),
            limit: figures.and_then(|f| f.limit),
            memory_psi: figures.and_then(|f| f.memory_psi),
            leak_slope: figures.and_then(|f| f.leak_slope),
            time_to_limit_secs: figures
                .and_then(|f| f.time_to_limit)
                .map(|eta| eta.as_secs_f64()),
            last_action: self.last_action.as_ref().map(|(what, _)| what.clone()),
            last_action_at: self.last_action.as_ref().map(|&(_, at)| at),
            kill_after_secs: self.steering.kill_after().map(|after| after.as_secs_f64()),
        }
    }

    /// Reads the slice's cgroup at `at`, opening it when it appeared; a cgroup that cannot
    /// be read is closed, to be opened again next time. Its limit chain is opened apart,
    /// and again every tick until it opens: systemd creates a slice's cgroup before it
    /// enables the memory controller there, so `memory.max` may come a moment after the
    /// folder. `None`: only the charge was read, and the slice stays quiet
    /// ([`SliceWatch::needs_full_reading`]): nothing to assess this tick.
    fn read(
        &mut self,
        mount: &Path,
        at: Duration,
    ) -> Option<(
        Result<crate::cgroup::stats::CgroupSample, String>,
        Option<u64>,
    )> {
        let reader = match &mut self.reader {
            Some(reader) => reader,
            None => match CgroupDir::open(&self.dir, CgroupKind::V2) {
                Ok(reader) => self.reader.insert(reader),
                Err(err) => return Some((Err(format!("{err} (the slice is not active)")), None)),
            },
        };
        // A charge that cannot be read now asks for the full reading, which says why.
        if !self
            .watch
            .needs_full_reading(at, || reader.memory_charge().ok().flatten())
        {
            return None;
        }
        let sample = match reader.sample() {
            Ok(sample) => sample,
            Err(err) => {
                self.reader = None;
                self.limits = None;
                return Some((Err(err.to_string()), None));
            }
        };
        if self.limits.is_none() {
            self.limits = LimitChain::open(&self.dir, CgroupKind::V2, mount).ok();
        }
        // As a job's sample has it: NO_LIMIT when none applies, None when not read now.
        let limit = match self.limits.as_mut().map(LimitChain::read) {
            Some(Ok(limit)) => Some(limit.unwrap_or(crate::policy::NO_LIMIT)),
            Some(Err(_)) => {
                self.limits = None;
                None
            }
            None => None,
        };
        Some((Ok(sample), limit))
    }
}

/// Tells a job's resctl what the daemon did to it; one that does not answer (its run is
/// ending) is only noted in the debug log: the action stands either way.
fn tell(job: &RegisteredJob, action: NoticeAction, reason: &str) {
    if let Err(err) = job.tell(action, reason) {
        tracing::debug!(
            "could not tell resctl pid {} of the {}: {}",
            job.resctl_pid,
            action.as_str(),
            job_text::escape(&err)
        );
    }
}

/// Says, for the slice `name` of `slice_config`, that its last resort is to kill (where the
/// file sets it), or that it no longer is (`before`: the kill_after in force until now).
fn say_last_resort(name: &str, slice_config: &Config, before: Option<Duration>) {
    if let Some(notice) = last_resort_notice(name, slice_config, before) {
        tracing::info!(resctl_slice = %name, resctl_action = "last-resort", "{notice}");
    }
}

/// What [`say_last_resort`] logs: `None` for a slice that freezes and did before.
fn last_resort_notice(
    name: &str,
    slice_config: &Config,
    before: Option<Duration>,
) -> Option<String> {
    let source = |key: &str| {
        slice_config
            .provenance
            .source_of(key)
            .map(|at| format!("configured at {at}"))
            .unwrap_or_else(|| format!("the default, not set in {}", slice_config.origin()))
    };
    match slice_config.last_resort_kill_after() {
        Some(after) => Some(format!(
            "{name}: last resort is kill, {}: at critical, when no job can shrink further, the \
             lowest-priority job is frozen, and killed (cgroup.kill) once the slice stayed at \
             critical {} longer (kill_after: {}); never the last job running",
            source("last_resort"),
            crate::units::format_duration(after),
            source("kill_after")
        )),
        None if before.is_some() => Some(format!(
            "{name}: last resort is freeze again, {}: no job is killed",
            source("last_resort")
        )),
        None => None,
    }
}

/// A slice's last figures and its events into the metrics.
fn export_slice(metrics: &mut Metrics, watch: &SliceWatch, events: &[SliceEvent]) {
    let target = Target::slice(watch.name());
    if let Some(figures) = watch.figures() {
        metrics.observe(
            &target,
            &Figures {
                memory: figures.memory,
                peak: figures.peak,
                limit: figures.limit,
                level: figures.level,
                memory_psi: figures.memory_psi,
                threads: None,
                leak_slope: figures.leak_slope,
                time_to_limit: figures.time_to_limit,
                oom_kills: figures.oom_kills,
            },
        );
    }
    for event in events {
        metrics.count_action(&target, event.action());
    }
}

/// One journal entry for one event, with the structured fields.
fn report(slice: &str, dir: &Path, event: &SliceEvent) {
    let cgroup = dir.display().to_string();
    let action = event.action();
    match event {
        SliceEvent::Level { from, to, reason } => {
            let reason = job_text::escape(reason);
            tracing::info!(
                resctl_slice = %slice,
                resctl_cgroup = %cgroup,
                resctl_level = %to,
                resctl_action = action,
                resctl_reason = %reason,
                "{slice}: {from} -> {to}: {reason}"
            );
        }
        SliceEvent::Reclaim { bytes, reason } => tracing::info!(
            resctl_slice = %slice,
            resctl_cgroup = %cgroup,
            resctl_action = action,
            resctl_reason = %reason,
            "{slice}: reclaim {}: {reason}",
            crate::units::format_size(*bytes)
        ),
        SliceEvent::Unreadable { reason } => {
            let reason = job_text::escape(reason);
            tracing::info!(
                resctl_slice = %slice,
                resctl_cgroup = %cgroup,
                resctl_action = action,
                resctl_reason = %reason,
                "{slice}: not watched until its cgroup can be read: {reason}"
            );
        }
        SliceEvent::Readable => tracing::info!(
            resctl_slice = %slice,
            resctl_cgroup = %cgroup,
            resctl_action = action,
            "{slice}: watched again"
        ),
    }
}

/// The daemon's runtime folder: systemd's `$RUNTIME_DIRECTORY` (`RuntimeDirectory=resctl`),
/// else `/run/resctl`.
fn runtime_dir() -> PathBuf {
    std::env::var_os("RUNTIME_DIRECTORY")
        .and_then(|dirs| {
            std::env::split_paths(&dirs)
                .next()
                .filter(|dir| dir.is_absolute())
        })
        .unwrap_or_else(|| PathBuf::from("/run/resctl"))
}

/// The daemon's signals: SIGTERM/SIGINT set `stop`, SIGHUP sets `reload`, and each also
/// writes a byte to a pipe that [`Signals::sleep`] waits on, so the loop sleeps a whole
/// interval in one `poll` and still answers a signal at once.
struct Signals {
    stop: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
    wake: std::os::unix::net::UnixStream,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        let (wake, ring) = std::os::unix::net::UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let reload = Arc::new(AtomicBool::new(false));
        for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register(signal, Arc::clone(&stop))?;
            signal_hook::low_level::pipe::register(signal, ring.try_clone()?)?;
        }
        signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))?;
        signal_hook::low_level::pipe::register(signal_hook::consts::SIGHUP, ring)?;
        Ok(Signals { stop, reload, wake })
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn take_reload(&self) -> bool {
        self.reload.swap(false, Ordering::Relaxed)
    }

    /// Sleeps `interval`, or until a signal comes.
    fn sleep(&self, interval: Duration) {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::io::Read;
        use std::os::fd::AsFd;
        if self.stopping() || self.reload.load(Ordering::Relaxed) {
            return;
        }
        let millis = u16::try_from(interval.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.wake.as_fd(), PollFlags::POLLIN)];
        // EINTR (a signal) or a byte: either way the loop looks at the flags next.
        let _ = poll(&mut fds, PollTimeout::from(millis));
        let mut drain = [0u8; 64];
        while matches!((&self.wake).read(&mut drain), Ok(n) if n > 0) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slice_that_kills_is_said_with_where_the_file_says_so_and_the_default_says_nothing() {
        let config = Config::from_yaml(
            "kill_after: 45s\nslices:\n  batch.slice:\n    last_resort: kill\n  web.slice: {}\n",
            "/etc/resctl/resctl.yaml",
        )
        .unwrap();
        let batch = config.for_slice("batch.slice");
        assert_eq!(
            last_resort_notice("batch.slice", &batch, None).as_deref(),
            Some(
                "batch.slice: last resort is kill, configured at \
                 /etc/resctl/resctl.yaml:4:5 (slices.batch.slice.last_resort): at critical, \
                 when no job can shrink further, the lowest-priority job is frozen, and killed \
                 (cgroup.kill) once the slice stayed at critical 45s longer (kill_after: \
                 configured at /etc/resctl/resctl.yaml:1:1 (kill_after)); never the last job \
                 running"
            )
        );
        // Said again on every reload while it holds.
        assert!(last_resort_notice("batch.slice", &batch, Some(Duration::from_secs(45))).is_some());
        // The default freezes and says nothing, unless the slice killed until this reload.
        let web = config.for_slice("web.slice");
        assert_eq!(last_resort_notice("web.slice", &web, None), None);
        assert_eq!(
            last_resort_notice("web.slice", &web, Some(Duration::from_secs(30))).as_deref(),
            Some(
                "web.slice: last resort is freeze again, the default, not set in \
                 /etc/resctl/resctl.yaml: no job is killed"
            )
        );
        // kill_after left to its default is named as such.
        let only_kill =
            Config::from_yaml("last_resort: kill\nslices:\n  a.slice: {}\n", "f.yaml").unwrap();
        let notice = last_resort_notice("a.slice", &only_kill.for_slice("a.slice"), None);
        assert!(
            notice.as_deref().is_some_and(|text| text
                .contains("kill, configured at f.yaml:1:1 (last_resort):")
                && text.contains("30s longer (kill_after: the default, not set in f.yaml)")),
            "{notice:?}"
        );
    }
}
