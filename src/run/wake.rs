//! What wakes the run loop: the job's end (the waiter thread), the kernel's notifications
//! on the job's cgroup (armed after the job started, on their own thread), or the tick.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::cgroup::reader::CgroupKind;
use crate::cgroup::wakeup::{Wake, Waker, ENV_NO_WAKEUP};
use crate::policy::PolicyConfig;

/// Arms the kernel notifications that wake the loop between ticks (memory crossing a level,
/// PSI, memory events, the child's exit), so the reaction to a crossing takes milliseconds
/// instead of up to one interval. They are armed on a thread of their own after the job has
/// started: the job never waits for them. On v1 each threshold registration takes 8–16 ms
/// in the kernel (a grace period), a dozen of them ~150 ms, and their asynchronous removal
/// at exit slows cgroup moves and removals that follow; so there a polling waker
/// ([`Waker::polling`], as on v2) comes at once and the thresholds are registered only once
/// the job has run for `V1_ARM_DELAY` (200 ms): a job that ends sooner never pays for them. Each
/// waker reaches the loop as [`LoopEvent::WakerReady`] and replaces the one before.
/// `RESCTL_NO_WAKEUP=1` turns them off (ticks only, for comparison).
pub fn arm_wakeups(
    cgroup: Option<(PathBuf, CgroupKind)>,
    pressure: Option<PathBuf>,
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
                    if let Some(leaf) = &pressure {
                        waker.watch_pressure(leaf);
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
pub fn notification_thresholds(config: &PolicyConfig) -> Vec<u64> {
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
pub enum LoopEvent {
    /// The job was reaped with this status (the waiter thread).
    Ended(std::io::Result<std::process::ExitStatus>),
    /// The kernel wakeups are armed ([`arm_wakeups`]).
    WakerReady(Box<Waker>),
}

/// What the loop does next.
pub enum TickOutcome {
    /// Take a sample now.
    Sample,
    /// The job ended with this wait status.
    Ended(std::io::Result<std::process::ExitStatus>),
}

/// Waits for the next tick, a kernel notification, or the job's end. A waker that arrives
/// ([`LoopEvent::WakerReady`]) replaces the one in `waker`, unless `accept_wakers` is false
/// (the job's cgroup is gone: its wakers would watch nothing).
pub fn wait_for_tick(
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
