//! Wakeups: the run loop sleeps until the kernel says something changed, not only until the
//! next tick. [`Waker::wait`] blocks in one `poll(2)` on every notification the kernel
//! offers for the job's cgroup (v1 usage thresholds and OOM events, v2 PSI triggers and
//! `memory.events`, usage polled near a level, the child's exit) and returns as soon as one
//! fires. Every source is optional; a source that fired is muted for [`REPEAT_GAP`], so no
//! storm can make the loop sample more than 1 / [`REPEAT_GAP`] times a second per source.
//! Which source fires when, what each costs, and why: `docs/wakeups.md`.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::reader::CgroupKind;
use super::writer;

/// Set to `1` to make `resctl run` wake on its tick only: the baseline of
/// `benches/reaction.sh`.
pub const ENV_NO_WAKEUP: &str = "RESCTL_NO_WAKEUP";

/// Source name: a v1 usage threshold registered through `cgroup.event_control`.
pub const SOURCE_V1_THRESHOLD: &str = "memory.usage_in_bytes threshold";
/// Source name: the v1 OOM notification (`memory.oom_control`).
pub const SOURCE_V1_OOM: &str = "memory.oom_control";
/// Source name: the v2 PSI trigger on `memory.pressure`.
pub const SOURCE_V2_PSI: &str = "memory.pressure trigger";
/// Source name: the v2 `memory.events` change notification.
pub const SOURCE_V2_EVENTS: &str = "memory.events";
/// Source name: polling `memory.current` near a level (v2).
pub const SOURCE_V2_USAGE_POLL: &str = "memory.current poll";
/// Source name: polling `memory.usage_in_bytes` (v1: near a level only, or everywhere like
/// v2 when the thresholds could not be registered).
pub const SOURCE_V1_USAGE_POLL: &str = "memory.usage_in_bytes poll";
/// Internal name of the v1 guard thresholds (10 % around each level): they only switch the
/// near-level polling on and never wake the loop themselves.
const V1_GUARD: &str = "memory.usage_in_bytes guard";
/// Source name: the job's pidfd, or the exit fd given to [`Waker::watch_exit_fd`].
pub const SOURCE_CHILD: &str = "child exit";

/// Usage within this fraction of a threshold (below the next one up, or above the one
/// below) counts as "near a level" for the adaptive polling.
pub const NEAR_LEVEL_FRACTION: f64 = 0.10;
/// Usage poll period near a level: half the reaction goal of 20 ms, so a crossing is seen
/// within 10 ms (plus the time to sample and decide). About 100 `pread`s a second, only
/// while the job sits near a level.
pub const NEAR_POLL: Duration = Duration::from_millis(10);
/// Usage poll period far from every level: a job allocating 1 GiB/s moves 100 MiB in
/// this time, so a jump over the 10 % band is still seen within 100 ms instead of a tick.
pub const FAR_POLL: Duration = Duration::from_millis(100);
/// Half-width per CPU of the v1 near-level band ([`v1_near_band`]): 2 MiB, twice the
/// 0.75 MiB a CPU can charge without the kernel checking thresholds.
pub const V1_BAND_PER_CPU: u64 = 2 * 1024 * 1024;
/// A source that fired is not reported again for this long (its readiness is kept): at
/// most 20 extra samples a second per source, whatever storm the kernel sends.
pub const REPEAT_GAP: Duration = Duration::from_millis(50);
/// Most thresholds kept (the lowest); on v1 each takes one eventfd plus two for its guards.
/// The policy has four levels (moderate, cleanup, high, critical), exits included eight.
pub const MAX_THRESHOLDS: usize = 16;

/// Why [`Waker::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The timeout passed without a notification: the ordinary tick.
    Tick,
    /// A kernel notification fired; the payload names the source (one of the `SOURCE_*`
    /// constants of this module).
    Kernel(&'static str),
    /// The job exited (its pidfd or exit fd became readable). Stays so: every later call
    /// returns it again at once.
    ChildExited,
}

/// Which stall a PSI trigger counts (the first word of the trigger).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    /// At least one task stalled.
    Some,
    /// All non-idle tasks stalled at once.
    Full,
}

/// A PSI trigger: "notify when tasks stalled for `threshold` within any `window`".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PsiTrigger {
    /// Which stall is counted.
    pub stall: Stall,
    /// Stall time within a window that fires the trigger.
    pub threshold: Duration,
    /// The moving window.
    pub window: Duration,
}

/// Shortest PSI window the kernel accepts (`WINDOW_MIN_US`).
pub const PSI_WINDOW_MIN: Duration = Duration::from_millis(500);
/// Longest PSI window the kernel accepts (`WINDOW_MAX_US`).
pub const PSI_WINDOW_MAX: Duration = Duration::from_secs(10);
/// Without CAP_SYS_RESOURCE the window must be a multiple of this.
pub const PSI_UNPRIVILEGED_WINDOW_STEP: Duration = Duration::from_secs(2);

/// Why the kernel would refuse a PSI trigger (it answers EINVAL without saying why).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    /// The window is outside 500 ms ..= 10 s.
    #[error("PSI trigger window {window:?} is outside the kernel's 500ms..=10s")]
    WindowOutOfRange {
        /// The window asked for.
        window: Duration,
    },
    /// The threshold is zero or longer than the window.
    #[error(
        "PSI trigger threshold {threshold:?} must be above 0 and at most the window {window:?}"
    )]
    ThresholdOutOfRange {
        /// The threshold asked for.
        threshold: Duration,
        /// The window asked for.
        window: Duration,
    },
    /// Unprivileged triggers need a window that is a multiple of 2 s.
    #[error("PSI trigger window {window:?} must be a multiple of 2s without CAP_SYS_RESOURCE")]
    UnprivilegedWindow {
        /// The window asked for.
        window: Duration,
    },
}

impl PsiTrigger {
    /// resctl's trigger: 150 ms of "some" stall within 2 s (7.5 %), the shortest window an
    /// unprivileged process may use, so it works in a delegated subtree too.
    pub const DEFAULT: PsiTrigger = PsiTrigger {
        stall: Stall::Some,
        threshold: Duration::from_millis(150),
        window: Duration::from_secs(2),
    };

    /// The text written into a `*.pressure` file: `"some 150000 2000000"` (microseconds).
    pub fn text(&self) -> String {
        let stall = match self.stall {
            Stall::Some => "some",
            Stall::Full => "full",
        };
        format!(
            "{stall} {} {}",
            self.threshold.as_micros(),
            self.window.as_micros()
        )
    }

    /// Checks the kernel's rules (`psi_trigger_create`) so a refusal can be explained.
    /// `privileged`: the writer has CAP_SYS_RESOURCE.
    pub fn check(&self, privileged: bool) -> Result<(), TriggerError> {
        let (threshold, window) = (self.threshold, self.window);
        if !(PSI_WINDOW_MIN..=PSI_WINDOW_MAX).contains(&window) {
            return Err(TriggerError::WindowOutOfRange { window });
        }
        if threshold.is_zero() || threshold > window {
            return Err(TriggerError::ThresholdOutOfRange { threshold, window });
        }
        if !privileged && window.as_micros() % PSI_UNPRIVILEGED_WINDOW_STEP.as_micros() != 0 {
            return Err(TriggerError::UnprivilegedWindow { window });
        }
        Ok(())
    }
}

/// A notification source that could not be set up (the [`Waker`] works without it).
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: could not {action} {}: {error}", path.display())]
pub struct SourceError {
    /// The source (`SOURCE_*`).
    pub source_name: &'static str,
    /// What was being done, e.g. "open", "register through".
    pub action: &'static str,
    /// The file concerned.
    pub path: PathBuf,
    /// The kernel's answer.
    #[source]
    pub error: io::Error,
}

/// How a ready source is consumed.
#[derive(Debug)]
enum Drain {
    /// An eventfd: read its counter (8 bytes) to reset it.
    EventFd,
    /// A PSI trigger: `poll` itself consumes the event; never read.
    PsiTrigger,
    /// A kernfs file (`memory.events`): re-read it to re-arm the notification.
    Kernfs,
}

/// One polled descriptor.
#[derive(Debug)]
struct Source {
    name: &'static str,
    /// A `File` so kernfs files can be re-read with `read_at`; eventfds are read with `read`.
    fd: File,
    drain: Drain,
    path: PathBuf,
    /// Not polled before this instant (it fired recently).
    muted_until: Option<Instant>,
    /// A v1 guard threshold: firing starts the near-level polling, never a wake.
    guard: bool,
}

impl Source {
    fn events(&self) -> PollFlags {
        match self.drain {
            Drain::EventFd => PollFlags::POLLIN,
            Drain::PsiTrigger | Drain::Kernfs => PollFlags::POLLPRI,
        }
    }

    /// Consumes the readiness. `false`: the source is dead (its cgroup was removed) and
    /// must be dropped.
    fn drain(&self, revents: PollFlags) -> bool {
        match self.drain {
            Drain::EventFd => {
                let mut counter = [0u8; 8];
                // EAGAIN (already drained) is fine: the descriptor is non-blocking.
                let _ = nix::unistd::read(&self.fd, &mut counter);
                true
            }
            // A trigger reports POLLERR only once its cgroup is gone.
            Drain::PsiTrigger => !revents.contains(PollFlags::POLLERR),
            Drain::Kernfs => {
                let mut buffer = [0u8; 512];
                self.fd.read_at(&mut buffer, 0).is_ok()
            }
        }
    }
}

/// The cgroup's usage file, read by the adaptive polling.
#[derive(Debug)]
struct UsagePoll {
    name: &'static str,
    file: File,
    path: PathBuf,
    /// How many thresholds were at or below usage when `wait` last returned.
    last_band: usize,
    muted_until: Option<Instant>,
    /// The highest band reported since the mute began: a climb past it is still reported.
    muted_band: usize,
}

impl UsagePoll {
    fn read(&self) -> Option<u64> {
        let mut buffer = [0u8; 32];
        let length = self.file.read_at(&mut buffer, 0).ok()?;
        std::str::from_utf8(&buffer[..length])
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

/// Waits for the tick, a kernel notification about the job's cgroup, or the job's exit.
/// See the module documentation for the sources.
#[derive(Debug)]
pub struct Waker {
    cgroup: Option<(PathBuf, CgroupKind)>,
    /// Sorted, deduplicated, without 0 and `u64::MAX`.
    thresholds: Vec<u64>,
    /// v1: one eventfd per entry of `thresholds`, then the guards; empty when any of them
    /// could not be registered (the usage polling then covers every level).
    threshold_sources: Vec<Source>,
    /// v1 OOM, v2 PSI trigger and memory.events.
    other_sources: Vec<Source>,
    /// Polling of usage (with thresholds only): near v1 levels when they are armed in the
    /// kernel, adaptive ([`usage_poll_period`]) otherwise.
    usage: Option<UsagePoll>,
    child: Option<OwnedFd>,
    child_exited: bool,
    problems: Vec<SourceError>,
    /// CPUs this process may run on: sizes the v1 near-level band.
    cpus: usize,
    /// v1: register the thresholds in the kernel (false: [`Waker::polling`]).
    register_v1_thresholds: bool,
}

impl Waker {
    /// Builds the notification sources for the job's cgroup (see the module documentation);
    /// `None` (no cgroup: monitor-only) gives a waker that only ticks and watches the child.
    /// A source that cannot be set up is left out and recorded in [`Waker::problems`]; only
    /// a cgroup directory that does not exist is an error.
    pub fn new(cgroup: Option<(&Path, CgroupKind)>, thresholds: &[u64]) -> io::Result<Waker> {
        Self::build(cgroup, thresholds, true)
    }

    /// Like [`Waker::new`], but on v1 the thresholds are not registered in the kernel: usage
    /// is read every [`NEAR_POLL`] instead, near a level or not (about 100 reads a second).
    /// Cheap to build — each v1 registration costs the kernel a grace period (8–16 ms) — so
    /// it serves for the first fraction of a second, until a full waker is built in the
    /// background.
    pub fn polling(cgroup: Option<(&Path, CgroupKind)>, thresholds: &[u64]) -> io::Result<Waker> {
        Self::build(cgroup, thresholds, false)
    }

    fn build(
        cgroup: Option<(&Path, CgroupKind)>,
        thresholds: &[u64],
        register_v1_thresholds: bool,
    ) -> io::Result<Waker> {
        let mut waker = Waker {
            cgroup: cgroup.map(|(path, kind)| (path.to_path_buf(), kind)),
            register_v1_thresholds,
            ..Waker::ticks_only()
        };
        let Some((dir, kind)) = cgroup else {
            // Kept for `thresholds()`; nothing to register or poll.
            let _ = waker.set_thresholds(thresholds);
            return Ok(waker);
        };
        if !dir.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "the job's cgroup {} is not a directory: no wakeups",
                    dir.display()
                ),
            ));
        }
        match kind {
            CgroupKind::V1Memory => {
                let oom = register_v1_event(dir, SOURCE_V1_OOM, "memory.oom_control", None);
                waker.keep(oom);
                waker.usage = open_usage(dir, SOURCE_V1_USAGE_POLL, "memory.usage_in_bytes")
                    .map_err(|problem| waker.problems.push(problem))
                    .ok();
            }
            CgroupKind::V2 => {
                let psi = open_psi_trigger(&dir.join("memory.pressure"), &PsiTrigger::DEFAULT);
                waker.keep(psi);
                let events = open_kernfs_notify(&dir.join("memory.events"), SOURCE_V2_EVENTS);
                waker.keep(events);
                waker.usage = open_usage(dir, SOURCE_V2_USAGE_POLL, "memory.current")
                    .map_err(|problem| waker.problems.push(problem))
                    .ok();
            }
        }
        // Errors are recorded in `problems`; the usage polling covers what is missing.
        let _ = waker.set_thresholds(thresholds);
        // The loop has seen nothing yet: a job already past a level is reported by the
        // first `wait` at once.
        if let Some(usage) = waker.usage.as_mut() {
            usage.last_band = 0;
        }
        Ok(waker)
    }

    /// A waker without a cgroup: it sleeps the tick and watches the child only (what
    /// `new(None, &[])` gives, without a `Result`). For monitor-only runs and
    /// [`ENV_NO_WAKEUP`].
    pub fn ticks_only() -> Waker {
        Waker {
            cgroup: None,
            thresholds: Vec::new(),
            threshold_sources: Vec::new(),
            other_sources: Vec::new(),
            usage: None,
            child: None,
            child_exited: false,
            problems: Vec::new(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            register_v1_thresholds: true,
        }
    }

    fn keep(&mut self, source: Result<Source, SourceError>) {
        match source {
            Ok(source) => self.other_sources.push(source),
            Err(problem) => self.problems.push(problem),
        }
    }

    /// Sets the memory thresholds (bytes) whose crossing wakes the loop: the policy's
    /// levels, and if wanted the points where they are left. Values are sorted and
    /// deduplicated; 0 and `u64::MAX` are ignored; at most [`MAX_THRESHOLDS`] are kept.
    /// On v1 the previous registrations are dropped (closing an eventfd unregisters it) and
    /// the new ones registered; an error means at least one could not be, and the usage
    /// polling then covers all of them. On v2 they are used by the usage polling only.
    pub fn set_thresholds(&mut self, thresholds: &[u64]) -> io::Result<()> {
        let mut wanted: Vec<u64> = thresholds
            .iter()
            .copied()
            .filter(|&t| t != 0 && t != u64::MAX)
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        if wanted.len() > MAX_THRESHOLDS {
            wanted.truncate(MAX_THRESHOLDS);
        }
        if wanted == self.thresholds && !self.thresholds.is_empty() {
            return Ok(());
        }
        self.thresholds = wanted;
        self.threshold_sources.clear();
        let mut first_error = None;
        let registered = self.register_v1_thresholds;
        if let Some((dir, CgroupKind::V1Memory)) = self.cgroup.as_ref().filter(|_| registered) {
            let levels = self.thresholds.iter().map(|&t| (t, false));
            let guards = guard_thresholds(&self.thresholds, self.cpus)
                .into_iter()
                .map(|t| (t, true));
            for (threshold, guard) in levels.chain(guards) {
                let name = if guard { V1_GUARD } else { SOURCE_V1_THRESHOLD };
                match register_v1_event(dir, name, "memory.usage_in_bytes", Some(threshold)) {
                    Ok(mut source) => {
                        source.guard = guard;
                        self.threshold_sources.push(source);
                    }
                    Err(problem) => {
                        if first_error.is_none() {
                            first_error =
                                Some(io::Error::new(problem.error.kind(), problem.to_string()));
                        }
                        self.problems.push(problem);
                    }
                }
            }
            if first_error.is_some() {
                // Partly armed would hide the missing ones: poll usage for all of them.
                self.threshold_sources.clear();
            }
        }
        let band = self
            .usage
            .as_ref()
            .and_then(UsagePoll::read)
            .map(|usage| level_band(usage, &self.thresholds));
        if let (Some(usage), Some(band)) = (self.usage.as_mut(), band) {
            usage.last_band = band;
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Watches the job's process through a pidfd (`pidfd_open`, Linux ≥ 5.3): [`Wake::ChildExited`]
    /// once it has exited, whoever reaps it. Call it right after spawning and before anything
    /// can reap the child (the waiter thread), so the pid cannot have been reused. A child
    /// already reaped (ESRCH) counts as exited.
    pub fn watch_child(&mut self, pid: i32) -> io::Result<()> {
        match crate::pidfd::PidFd::open(pid) {
            Ok(fd) => {
                self.child = Some(fd.into_fd());
                Ok(())
            }
            Err(error) if error.raw_os_error() == Some(Errno::ESRCH as i32) => {
                self.child_exited = true;
                Ok(())
            }
            Err(error) => Err(io::Error::new(
                error.kind(),
                format!("pidfd_open({pid}): {error}"),
            )),
        }
    }

    /// Watches any descriptor that becomes readable when the job has ended — for kernels
    /// without pidfds: e.g. an eventfd or a pipe the waiter thread writes to after `wait`.
    pub fn watch_exit_fd(&mut self, fd: OwnedFd) {
        self.child = Some(fd);
    }

    /// Also wakes on the PSI trigger of `leaf`, a hybrid host's cgroup2 leaf holding the
    /// job (its v1 memory cgroup keeps no pressure file): the same trigger as on v2. A
    /// trigger that cannot be armed is recorded in [`Waker::problems`].
    pub fn watch_pressure(&mut self, leaf: &Path) {
        let psi = open_psi_trigger(&leaf.join("memory.pressure"), &PsiTrigger::DEFAULT);
        self.keep(psi);
    }

    /// The sources that are active, e.g. `["memory.oom_control", "memory.usage_in_bytes
    /// threshold", "child exit"]` (each name once).
    pub fn sources(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        let polled = self
            .other_sources
            .iter()
            .chain(&self.threshold_sources)
            .filter(|source| !source.guard)
            .map(|source| source.name);
        let usage = self
            .usage_poll_active()
            .then(|| self.usage.as_ref().map(|u| u.name));
        let child = self.child.as_ref().map(|_| SOURCE_CHILD);
        for name in polled.chain(usage.flatten()).chain(child) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// One line for the log: the sources, with the armed thresholds.
    pub fn describe(&self) -> String {
        let sources = self.sources();
        if sources.is_empty() {
            return "ticks only (no kernel notification available)".to_string();
        }
        let thresholds: Vec<String> = self
            .thresholds
            .iter()
            .map(|&t| crate::units::format_size(t))
            .collect();
        if thresholds.is_empty() {
            sources.join(", ")
        } else {
            format!("{} (levels {})", sources.join(", "), thresholds.join(", "))
        }
    }

    /// Sources that could not be set up, with the file and the kernel's answer.
    pub fn problems(&self) -> &[SourceError] {
        &self.problems
    }

    /// The thresholds in use (sorted).
    pub fn thresholds(&self) -> &[u64] {
        &self.thresholds
    }

    fn usage_poll_active(&self) -> bool {
        self.usage.is_some() && !self.thresholds.is_empty()
    }

    /// v1 with every threshold armed in the kernel: usage is polled only near a level, to
    /// catch what the kernel's rate-limited threshold check misses.
    fn polls_near_levels_only(&self) -> bool {
        !self.threshold_sources.is_empty()
    }

    /// Waits up to `timeout` for a kernel notification or the job's exit. Kernel
    /// notifications are reported before the exit (so the last crossing is sampled); all
    /// sources ready at once are consumed together and the first is named. Interrupted
    /// system calls (signals being forwarded) are retried until the timeout.
    pub fn wait(&mut self, timeout: Duration) -> Wake {
        let deadline = Instant::now() + timeout;
        let wake = self.wait_until(deadline);
        // The loop samples now: later crossings are measured from what it sees.
        let polling = self.usage_poll_active();
        if let Some(usage) = self.usage.as_mut().filter(|_| polling) {
            if let Some(bytes) = usage.read() {
                usage.last_band = level_band(bytes, &self.thresholds);
            }
        }
        wake
    }

    fn wait_until(&mut self, deadline: Instant) -> Wake {
        loop {
            let now = Instant::now();
            if self.child_exited {
                return Wake::ChildExited;
            }
            let mut poll_until = deadline;
            if self.usage_poll_active() {
                match self.check_usage(now) {
                    UsageCheck::Crossed(name) => return Wake::Kernel(name),
                    UsageCheck::NextReadAt(at) => poll_until = poll_until.min(at),
                    UsageCheck::Idle | UsageCheck::Unreadable => {}
                }
            }
            let all = self.threshold_sources.iter().chain(&self.other_sources);
            for source in all {
                if let Some(until) = source.muted_until {
                    if until > now {
                        poll_until = poll_until.min(until);
                    }
                }
            }

            let mut polled: Vec<usize> = Vec::new();
            let mut fds: Vec<PollFd> = Vec::new();
            for (index, source) in self
                .threshold_sources
                .iter()
                .chain(&self.other_sources)
                .enumerate()
            {
                if source.muted_until.is_none_or(|until| until <= now) {
                    fds.push(PollFd::new(source.fd.as_fd(), source.events()));
                    polled.push(index);
                }
            }
            let child_index = self.child.as_ref().map(|child| {
                fds.push(PollFd::new(child.as_fd(), PollFlags::POLLIN));
                fds.len() - 1
            });

            let timeout = poll_timeout(poll_until.saturating_duration_since(now));
            let ready = match poll(&mut fds, timeout) {
                Ok(ready) => ready,
                Err(Errno::EINTR) => 0,
                Err(error) => {
                    tracing::debug!("wakeup poll failed ({error}); sleeping instead");
                    std::thread::sleep(
                        poll_until
                            .saturating_duration_since(Instant::now())
                            .min(NEAR_POLL),
                    );
                    0
                }
            };
            if ready == 0 {
                if Instant::now() >= deadline {
                    return Wake::Tick;
                }
                continue;
            }
            let child_ready = child_index
                .and_then(|index| fds[index].revents())
                .is_some_and(|revents| !revents.is_empty());
            let ready_sources: Vec<(usize, PollFlags)> = polled
                .iter()
                .zip(&fds)
                .filter_map(|(&index, fd)| {
                    fd.revents()
                        .filter(|revents| !revents.is_empty())
                        .map(|revents| (index, revents))
                })
                .collect();
            drop(fds);
            if let Some(name) = self.consume(&ready_sources) {
                return Wake::Kernel(name);
            }
            if child_ready {
                self.child_exited = true;
                return Wake::ChildExited;
            }
        }
    }

    /// Drains the ready sources, mutes them for [`REPEAT_GAP`], drops dead ones, and
    /// returns the name of the first (OOM and thresholds before pressure and events).
    fn consume(&mut self, ready: &[(usize, PollFlags)]) -> Option<&'static str> {
        let now = Instant::now();
        let thresholds = self.threshold_sources.len();
        let mut first: Option<&'static str> = None;
        let mut dead: Vec<usize> = Vec::new();
        for &(index, revents) in ready {
            let source = if index < thresholds {
                &mut self.threshold_sources[index]
            } else {
                &mut self.other_sources[index - thresholds]
            };
            if source.drain(revents) {
                source.muted_until = Some(now + REPEAT_GAP);
                if source.guard {
                    // Near a level now: the next round polls usage.
                    continue;
                }
            } else if index >= thresholds {
                tracing::debug!(
                    "{} ({}) stopped working: its cgroup is gone",
                    source.name,
                    source.path.display()
                );
                dead.push(index - thresholds);
            }
            if first.is_none() || source.name == SOURCE_V1_OOM {
                first = Some(source.name);
            }
        }
        for index in dead.into_iter().rev() {
            self.other_sources.remove(index);
        }
        first
    }

    /// Adaptive polling: reads usage (unless muted) and compares its band with the one
    /// when `wait` last returned.
    fn check_usage(&mut self, now: Instant) -> UsageCheck {
        let near_only = self.polls_near_levels_only();
        let Some(usage) = self.usage.as_mut() else {
            return UsageCheck::Unreadable;
        };
        let muted = usage.muted_until.filter(|&until| until > now);
        let Some(bytes) = usage.read() else {
            return UsageCheck::Unreadable;
        };
        let band = level_band(bytes, &self.thresholds);
        if let Some(until) = muted {
            // Muted against a storm around one threshold — but a job that charges through
            // several levels at once climbs to a band not reported yet: that is news.
            if band > usage.muted_band {
                usage.last_band = band;
                usage.muted_band = band;
                return UsageCheck::Crossed(usage.name);
            }
            return UsageCheck::NextReadAt(until.min(now + NEAR_POLL));
        }
        if band != usage.last_band {
            usage.last_band = band;
            usage.muted_until = Some(now + REPEAT_GAP);
            usage.muted_band = band;
            return UsageCheck::Crossed(usage.name);
        }
        if near_only {
            let cpus = self.cpus;
            return if near_v1_level(bytes, &self.thresholds, cpus) {
                UsageCheck::NextReadAt(now + NEAR_POLL)
            } else {
                UsageCheck::Idle
            };
        }
        if self.polls_everywhere_fast() {
            return UsageCheck::NextReadAt(now + NEAR_POLL);
        }
        UsageCheck::NextReadAt(now + usage_poll_period(bytes, &self.thresholds))
    }

    /// A v1 waker whose thresholds are not registered ([`Waker::polling`]): it stands in for
    /// the kernel's immediate notifications, so it reads usage at the near-level rate
    /// everywhere.
    fn polls_everywhere_fast(&self) -> bool {
        !self.register_v1_thresholds && matches!(self.cgroup, Some((_, CgroupKind::V1Memory)))
    }
}

/// What one read of the usage file says.
#[derive(Debug, PartialEq, Eq)]
enum UsageCheck {
    /// Usage is in another band: wake, naming the source.
    Crossed(&'static str),
    /// No crossing; read again at this instant.
    NextReadAt(Instant),
    /// No crossing, and far from every level: the kernel's thresholds will say more.
    Idle,
    /// The file could not be read (cgroup removed): nothing to schedule.
    Unreadable,
}

/// How many of `thresholds` (sorted ascending) are at or below `usage`: the "band" usage is
/// in. A crossing is a change of band.
pub fn level_band(usage: u64, thresholds: &[u64]) -> usize {
    thresholds.partition_point(|&threshold| threshold <= usage)
}

/// How long until usage is read again: [`NEAR_POLL`] when it is within
/// [`NEAR_LEVEL_FRACTION`] below the next threshold up or above the one below, else
/// [`FAR_POLL`].
pub fn usage_poll_period(usage: u64, thresholds: &[u64]) -> Duration {
    let band = level_band(usage, thresholds);
    let near_next = thresholds
        .get(band)
        .is_some_and(|&next| usage as f64 >= next as f64 * (1.0 - NEAR_LEVEL_FRACTION));
    let near_previous = band
        .checked_sub(1)
        .and_then(|index| thresholds.get(index))
        .is_some_and(|&below| usage as f64 <= below as f64 * (1.0 + NEAR_LEVEL_FRACTION));
    if near_next || near_previous {
        NEAR_POLL
    } else {
        FAR_POLL
    }
}

/// Half-width of the band around a v1 level in which usage is polled: what the kernel's
/// threshold check can skip — up to 127 page events on each CPU between two checks, plus
/// the 64-page charge batch each CPU keeps (0.75 MiB per CPU) — doubled for margin:
/// [`V1_BAND_PER_CPU`] per CPU, and never more than [`NEAR_LEVEL_FRACTION`] of the level.
/// Narrow on purpose: polling every 10 ms costs about 0.8 % of a core on the development
/// VM, so it should only run while a crossing could really be missed.
pub fn v1_near_band(level: u64, cpus: usize) -> u64 {
    let per_cpu = V1_BAND_PER_CPU.saturating_mul(cpus.max(1) as u64);
    per_cpu.min((level as f64 * NEAR_LEVEL_FRACTION) as u64)
}

/// Whether v1 usage is within [`v1_near_band`] of a threshold (either side).
pub fn near_v1_level(usage: u64, thresholds: &[u64], cpus: usize) -> bool {
    thresholds
        .iter()
        .any(|&level| usage.abs_diff(level) <= v1_near_band(level, cpus))
}

/// v1 guard thresholds: [`v1_near_band`] below and above each threshold, except where a
/// threshold already is. When usage enters the band around a level the kernel wakes the
/// waker through a guard, and it reads usage every [`NEAR_POLL`] while usage stays in the
/// band: the band is wider than what the kernel's rate-limited check can skip, so a guard
/// fires before the level can be crossed unseen.
pub fn guard_thresholds(thresholds: &[u64], cpus: usize) -> Vec<u64> {
    let mut guards: Vec<u64> = thresholds
        .iter()
        .flat_map(|&level| {
            let band = v1_near_band(level, cpus);
            [level.saturating_sub(band), level.saturating_add(band)]
        })
        .filter(|guard| *guard != 0 && *guard != u64::MAX && !thresholds.contains(guard))
        .collect();
    guards.sort_unstable();
    guards.dedup();
    guards
}

/// `poll`'s timeout in whole milliseconds, rounded up (a 0.3 ms rest must not become a busy
/// `poll(0)` loop), capped at `i32::MAX` ms.
fn poll_timeout(duration: Duration) -> PollTimeout {
    let millis = duration.as_nanos().div_ceil(1_000_000);
    PollTimeout::try_from(millis.min(i32::MAX as u128)).unwrap_or(PollTimeout::MAX)
}

/// Registers a v1 memory cgroup event: a new eventfd and `target` (a file of `dir`),
/// written into `dir/cgroup.event_control` with `argument` (a threshold) if any.
fn register_v1_event(
    dir: &Path,
    name: &'static str,
    target: &str,
    argument: Option<u64>,
) -> Result<Source, SourceError> {
    let target_path = dir.join(target);
    let control_path = dir.join("cgroup.event_control");
    let problem = |action, path: &Path, error: io::Error| SourceError {
        source_name: name,
        action,
        path: path.to_path_buf(),
        error,
    };
    let target_file =
        File::open(&target_path).map_err(|error| problem("open", &target_path, error))?;
    let event = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
        .map_err(|errno| problem("create an eventfd for", &target_path, errno.into()))?;
    writer::register_v1_event(dir, event.as_fd(), &target_file, argument)
        .map_err(|error| problem("register through", &control_path, error))?;
    // The kernel holds its own references now; the target file may be closed.
    Ok(Source {
        name,
        fd: File::from(OwnedFd::from(event)),
        drain: Drain::EventFd,
        path: target_path,
        muted_until: None,
        guard: false,
    })
}

/// Opens `path` (a `*.pressure` file, e.g. a cgroup's `memory.pressure` or
/// `/proc/pressure/memory`) read-write and writes the trigger into it, NUL-terminated as the
/// kernel's documentation does. The returned descriptor holds the trigger until it is
/// closed; `poll` it for `POLLPRI`. An EINVAL is explained with [`PsiTrigger::check`].
pub fn arm_psi_trigger(path: &Path, trigger: &PsiTrigger) -> Result<OwnedFd, SourceError> {
    let problem = |action, error: io::Error| SourceError {
        source_name: SOURCE_V2_PSI,
        action,
        path: path.to_path_buf(),
        error,
    };
    let text = trigger.text();
    let file = writer::arm_psi_trigger(path, &text).map_err(|error| {
        let explanation = match trigger.check(false) {
            Err(rule) if error.raw_os_error() == Some(Errno::EINVAL as i32) => {
                format!(" ({rule})")
            }
            _ => String::new(),
        };
        problem(
            "write a trigger into",
            io::Error::new(
                error.kind(),
                format!("writing \"{text}\": {error}{explanation}"),
            ),
        )
    })?;
    Ok(OwnedFd::from(file))
}

fn open_psi_trigger(path: &Path, trigger: &PsiTrigger) -> Result<Source, SourceError> {
    Ok(Source {
        name: SOURCE_V2_PSI,
        fd: File::from(arm_psi_trigger(path, trigger)?),
        drain: Drain::PsiTrigger,
        path: path.to_path_buf(),
        muted_until: None,
        guard: false,
    })
}

/// Opens a kernfs file whose changes the kernel signals with `POLLPRI|POLLERR` and reads it
/// once to arm the notification.
fn open_kernfs_notify(path: &Path, name: &'static str) -> Result<Source, SourceError> {
    let problem = |error: io::Error| SourceError {
        source_name: name,
        action: "open",
        path: path.to_path_buf(),
        error,
    };
    let file = File::open(path).map_err(problem)?;
    let mut buffer = [0u8; 512];
    file.read_at(&mut buffer, 0).map_err(problem)?;
    Ok(Source {
        name,
        fd: file,
        drain: Drain::Kernfs,
        path: path.to_path_buf(),
        muted_until: None,
        guard: false,
    })
}

/// Opens the usage file for the adaptive polling and checks it reads as a number.
fn open_usage(dir: &Path, name: &'static str, file_name: &str) -> Result<UsagePoll, SourceError> {
    let path = dir.join(file_name);
    let problem = |error: io::Error| SourceError {
        source_name: name,
        action: "read",
        path: path.clone(),
        error,
    };
    let file = File::open(&path).map_err(problem)?;
    let poll = UsagePoll {
        name,
        file,
        path: path.clone(),
        last_band: 0,
        muted_until: None,
        muted_band: 0,
    };
    if poll.read().is_none() {
        return Err(problem(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} does not hold a byte count", poll.path.display()),
        )));
    }
    Ok(poll)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    use crate::test_support::wakeup_fixture_copy as fixture_copy;

    #[test]
    fn psi_trigger_text_in_microseconds() {
        assert_eq!(PsiTrigger::DEFAULT.text(), "some 150000 2000000");
        let full = PsiTrigger {
            stall: Stall::Full,
            threshold: Duration::from_millis(500),
            window: Duration::from_secs(4),
        };
        assert_eq!(full.text(), "full 500000 4000000");
        assert_eq!(PsiTrigger::DEFAULT.check(false), Ok(()));
    }

    #[test]
    fn psi_trigger_rules_of_the_kernel() {
        let trigger = |threshold_ms, window_ms| PsiTrigger {
            stall: Stall::Some,
            threshold: Duration::from_millis(threshold_ms),
            window: Duration::from_millis(window_ms),
        };
        let one_second = trigger(150, 1000);
        assert_eq!(
            one_second.check(false),
            Err(TriggerError::UnprivilegedWindow {
                window: Duration::from_secs(1)
            })
        );
        assert_eq!(one_second.check(true), Ok(()));
        assert!(matches!(
            trigger(100, 400).check(true),
            Err(TriggerError::WindowOutOfRange { .. })
        ));
        assert!(matches!(
            trigger(100, 12_000).check(true),
            Err(TriggerError::WindowOutOfRange { .. })
        ));
        assert!(matches!(
            trigger(0, 2000).check(true),
            Err(TriggerError::ThresholdOutOfRange { .. })
        ));
        let too_long = trigger(2500, 2000).check(false).unwrap_err();
        assert!(too_long.to_string().contains("2.5s"), "{too_long}");
        assert_eq!(trigger(2000, 2000).check(false), Ok(()));
    }

    #[test]
    fn bands_count_thresholds_at_or_below_usage() {
        let thresholds = [100, 200, 300];
        assert_eq!(level_band(0, &thresholds), 0);
        assert_eq!(level_band(99, &thresholds), 0);
        assert_eq!(level_band(100, &thresholds), 1);
        assert_eq!(level_band(299, &thresholds), 2);
        assert_eq!(level_band(u64::MAX, &thresholds), 3);
        assert_eq!(level_band(5, &[]), 0);
    }

    #[test]
    fn usage_is_polled_fast_only_near_a_level() {
        let thresholds = [100 * MIB, 200 * MIB];
        assert_eq!(usage_poll_period(50 * MIB, &thresholds), FAR_POLL);
        assert_eq!(usage_poll_period(89 * MIB, &thresholds), FAR_POLL);
        assert_eq!(usage_poll_period(90 * MIB, &thresholds), NEAR_POLL);
        assert_eq!(usage_poll_period(105 * MIB, &thresholds), NEAR_POLL);
        assert_eq!(usage_poll_period(150 * MIB, &thresholds), FAR_POLL);
        assert_eq!(usage_poll_period(181 * MIB, &thresholds), NEAR_POLL);
        assert_eq!(usage_poll_period(219 * MIB, &thresholds), NEAR_POLL);
        assert_eq!(usage_poll_period(500 * MIB, &thresholds), FAR_POLL);
        assert_eq!(usage_poll_period(500 * MIB, &[]), FAR_POLL);
    }

    #[test]
    fn guards_ten_percent_around_each_level() {
        // 2 MiB per CPU...
        assert_eq!(
            guard_thresholds(&[100 * MIB, 200 * MIB], 2),
            [96 * MIB, 104 * MIB, 196 * MIB, 204 * MIB]
        );
        // ... at most 10 % of the level.
        assert_eq!(guard_thresholds(&[20 * MIB], 64), [18 * MIB, 22 * MIB]);
        // A guard that falls on a level is the level itself; shared guards once.
        assert_eq!(guard_thresholds(&[100, 110], 1), [90, 99, 121]);
        assert_eq!(guard_thresholds(&[100, 100], 1), [90, 110]);
        assert!(guard_thresholds(&[], 4).is_empty());
    }

    #[test]
    fn v1_polls_only_within_the_band() {
        let levels = [100 * MIB];
        assert_eq!(v1_near_band(100 * MIB, 2), 4 * MIB);
        assert_eq!(v1_near_band(100 * MIB, 0), 2 * MIB);
        assert!(near_v1_level(96 * MIB, &levels, 2));
        assert!(near_v1_level(104 * MIB, &levels, 2));
        assert!(!near_v1_level(95 * MIB, &levels, 2));
        assert!(!near_v1_level(105 * MIB, &levels, 2));
        assert!(!near_v1_level(96 * MIB, &[], 2));
    }

    #[test]
    fn poll_timeout_rounds_up_to_milliseconds() {
        assert_eq!(poll_timeout(Duration::ZERO), PollTimeout::ZERO);
        assert_eq!(
            poll_timeout(Duration::from_micros(300)).as_millis(),
            Some(1)
        );
        assert_eq!(
            poll_timeout(Duration::from_micros(1500)).as_millis(),
            Some(2)
        );
        assert_eq!(poll_timeout(Duration::from_secs(1)).as_millis(), Some(1000));
        assert_eq!(poll_timeout(Duration::MAX), PollTimeout::MAX);
    }

    #[test]
    fn thresholds_sorted_deduplicated_and_capped() {
        let mut waker = Waker::new(None, &[300, 100, 0, u64::MAX, 100]).unwrap();
        assert_eq!(waker.thresholds(), [100, 300]);
        let many: Vec<u64> = (1..=40).rev().collect();
        waker.set_thresholds(&many).unwrap();
        assert_eq!(waker.thresholds().len(), MAX_THRESHOLDS);
        assert_eq!(waker.thresholds()[0], 1);
    }

    #[test]
    fn no_cgroup_means_ticks_only() {
        let mut waker = Waker::new(None, &[MIB]).unwrap();
        assert!(waker.sources().is_empty());
        assert!(
            waker.describe().contains("ticks only"),
            "{}",
            waker.describe()
        );
        let started = Instant::now();
        assert_eq!(waker.wait(Duration::from_millis(30)), Wake::Tick);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(30), "{waited:?}");
    }

    #[test]
    fn missing_cgroup_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("resctl-gone");
        let err = Waker::new(Some((&gone, CgroupKind::V2)), &[]).unwrap_err();
        assert!(err.to_string().contains("resctl-gone"), "{err}");
    }

    #[test]
    fn v2_fixture_sources_and_the_trigger_written() {
        let job = fixture_copy("v2-job");
        let waker = Waker::new(Some((job.path(), CgroupKind::V2)), &[50 * MIB]).unwrap();
        assert_eq!(
            waker.sources(),
            [SOURCE_V2_PSI, SOURCE_V2_EVENTS, SOURCE_V2_USAGE_POLL]
        );
        assert!(waker.problems().is_empty(), "{:?}", waker.problems());
        let pressure = std::fs::read(job.path().join("memory.pressure")).unwrap();
        assert!(
            pressure.starts_with(b"some 150000 2000000\0"),
            "{:?}",
            String::from_utf8_lossy(&pressure)
        );
        assert_eq!(
            waker.describe(),
            "memory.pressure trigger, memory.events, memory.current poll (levels 50M)"
        );
    }

    #[test]
    fn a_hybrid_jobs_leaf_adds_its_psi_trigger_to_the_v1_sources() {
        let job = fixture_copy("v2-job");
        let mut waker = Waker::ticks_only();
        assert!(!waker.sources().contains(&SOURCE_V2_PSI));
        waker.watch_pressure(job.path());
        assert!(
            waker.sources().contains(&SOURCE_V2_PSI),
            "{:?}",
            waker.sources()
        );
        assert!(waker.problems().is_empty(), "{:?}", waker.problems());
        let pressure = std::fs::read(job.path().join("memory.pressure")).unwrap();
        assert!(pressure.starts_with(b"some 150000 2000000\0"));
        let gone = job.path().join("gone");
        waker.watch_pressure(&gone);
        assert_eq!(
            waker.problems().len(),
            1,
            "a leaf that is gone is a problem, not an error"
        );
    }

    #[test]
    fn v2_usage_poll_wakes_on_a_crossing_in_either_direction() {
        let job = fixture_copy("v2-job");
        let current = job.path().join("memory.current");
        // The fixture's usage is 46030848 (43.9 MiB): below 50M, within 10 % of it.
        let mut waker = Waker::new(Some((job.path(), CgroupKind::V2)), &[50 * MIB]).unwrap();
        assert_eq!(waker.wait(Duration::from_millis(30)), Wake::Tick);

        let writer = {
            let current = current.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                std::fs::write(current, format!("{}\n", 60 * MIB)).unwrap();
                Instant::now()
            })
        };
        let wake = waker.wait(Duration::from_secs(5));
        let woke = Instant::now();
        let written = writer.join().unwrap();
        assert_eq!(wake, Wake::Kernel(SOURCE_V2_USAGE_POLL));
        let delay = woke.saturating_duration_since(written);
        // The wake reason shows it was the poll, not the 5 s timeout; no
        // tighter bound on a shared machine (benches/reaction.sh measures it).
        assert!(delay < Duration::from_secs(4), "{delay:?}");

        // Still above: nothing to report.
        assert_eq!(waker.wait(Duration::from_millis(80)), Wake::Tick);
        std::fs::write(&current, format!("{}\n", 40 * MIB)).unwrap();
        assert_eq!(
            waker.wait(Duration::from_secs(5)),
            Wake::Kernel(SOURCE_V2_USAGE_POLL)
        );
    }

    #[test]
    fn v2_crossing_between_two_waits_is_not_lost() {
        let job = fixture_copy("v2-job");
        let mut waker = Waker::new(Some((job.path(), CgroupKind::V2)), &[50 * MIB]).unwrap();
        assert_eq!(waker.wait(Duration::from_millis(1)), Wake::Tick);
        // Crossed while the loop was sampling, before it waits again.
        std::fs::write(job.path().join("memory.current"), "60000000\n").unwrap();
        let started = Instant::now();
        assert_eq!(
            waker.wait(Duration::from_secs(5)),
            Wake::Kernel(SOURCE_V2_USAGE_POLL)
        );
        // At once, not after the 5 s timeout.
        assert!(started.elapsed() < Duration::from_secs(4));
    }

    #[test]
    fn v1_without_event_control_falls_back_to_polling_usage() {
        let job = fixture_copy("v1-job");
        let mut waker =
            Waker::new(Some((job.path(), CgroupKind::V1Memory)), &[MIB, 2 * MIB]).unwrap();
        assert_eq!(waker.sources(), [SOURCE_V1_USAGE_POLL]);
        let problems: Vec<String> = waker.problems().iter().map(|p| p.to_string()).collect();
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with(SOURCE_V1_OOM) && p.contains("cgroup.event_control")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with(SOURCE_V1_THRESHOLD) && p.contains("cgroup.event_control")),
            "{problems:?}"
        );
        let err = waker.set_thresholds(&[3 * MIB]).unwrap_err();
        assert!(err.to_string().contains("cgroup.event_control"), "{err}");
        // usage 335872 < 3M; move it past.
        std::fs::write(job.path().join("memory.usage_in_bytes"), "4000000\n").unwrap();
        assert_eq!(
            waker.wait(Duration::from_secs(5)),
            Wake::Kernel(SOURCE_V1_USAGE_POLL)
        );
    }

    #[test]
    fn a_polling_v1_waker_registers_no_thresholds_and_polls_fast_everywhere() {
        let job = fixture_copy("v1-job");
        let mut waker =
            Waker::polling(Some((job.path(), CgroupKind::V1Memory)), &[100 * MIB]).unwrap();
        let problems: Vec<String> = waker.problems().iter().map(|p| p.to_string()).collect();
        assert!(
            !problems.iter().any(|p| p.starts_with(SOURCE_V1_THRESHOLD)),
            "no threshold registration was tried: {problems:?}"
        );
        assert!(waker.sources().contains(&SOURCE_V1_USAGE_POLL));
        assert_eq!(waker.thresholds(), [100 * MIB]);
        // Far from the level, the next read is still NEAR_POLL away (not FAR_POLL).
        let now = Instant::now();
        assert_eq!(
            waker.check_usage(now),
            UsageCheck::NextReadAt(now + NEAR_POLL)
        );
        std::fs::write(job.path().join("memory.usage_in_bytes"), "110000000\n").unwrap();
        assert_eq!(
            waker.wait(Duration::from_secs(5)),
            Wake::Kernel(SOURCE_V1_USAGE_POLL)
        );
    }

    #[test]
    fn a_climb_through_several_levels_is_reported_level_by_level_despite_the_mute() {
        let job = fixture_copy("v1-job");
        let usage = job.path().join("memory.usage_in_bytes");
        let levels = [100 * MIB, 110 * MIB, 120 * MIB];
        let mut waker = Waker::polling(Some((job.path(), CgroupKind::V1Memory)), &levels).unwrap();
        let now = Instant::now();
        std::fs::write(&usage, format!("{}\n", 105 * MIB)).unwrap();
        assert_eq!(
            waker.check_usage(now),
            UsageCheck::Crossed(SOURCE_V1_USAGE_POLL)
        );
        // Muted now: the same band again, or a fall, waits for the gap ...
        assert_eq!(
            waker.check_usage(now),
            UsageCheck::NextReadAt(now + NEAR_POLL)
        );
        std::fs::write(&usage, format!("{}\n", 95 * MIB)).unwrap();
        assert!(matches!(waker.check_usage(now), UsageCheck::NextReadAt(_)));
        // ... but a climb into a band not reported in this gap is reported at once.
        std::fs::write(&usage, format!("{}\n", 121 * MIB)).unwrap();
        assert_eq!(
            waker.check_usage(now),
            UsageCheck::Crossed(SOURCE_V1_USAGE_POLL)
        );
        assert!(matches!(waker.check_usage(now), UsageCheck::NextReadAt(_)));
    }

    #[test]
    fn exit_fd_wakes_and_stays_ready() {
        let (reader, writer) = nix::unistd::pipe().unwrap();
        let mut waker = Waker::new(None, &[]).unwrap();
        waker.watch_exit_fd(reader);
        assert_eq!(waker.sources(), [SOURCE_CHILD]);
        assert_eq!(waker.wait(Duration::from_millis(10)), Wake::Tick);
        nix::unistd::write(&writer, b"x").unwrap();
        assert_eq!(waker.wait(Duration::from_secs(5)), Wake::ChildExited);
        let started = Instant::now();
        assert_eq!(waker.wait(Duration::from_secs(5)), Wake::ChildExited);
        // At once, not after the 5 s timeout.
        assert!(started.elapsed() < Duration::from_secs(4));
    }
}
