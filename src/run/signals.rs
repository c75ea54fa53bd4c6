//! Forwarding SIGINT, SIGTERM and SIGHUP to the job, like a shell's `exec`
//! would let them arrive.
//!
//! A signal that the terminal generated (Ctrl-C: the kernel is its sender) has
//! already reached the job, which shares resctl's foreground process group;
//! forwarding it again would deliver it twice (make and many tools treat a
//! second SIGINT as "stop now"). Such signals are forwarded only when the job is
//! in another process group. Signals sent by a process (`kill`, systemd) are
//! always forwarded.

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use nix::sys::signal::Signal;
use nix::unistd::{getpgid, Pid};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::{Handle, SignalsInfo};
use signal_hook::low_level::siginfo::Cause;

use crate::pidfd::PidFd;

/// The signals resctl passes on to the job.
pub const FORWARDED: [i32; 3] = [SIGINT, SIGTERM, SIGHUP];

/// Where forwarded signals go, as the run goes on.
#[derive(Debug)]
enum Target {
    /// The job has not been started yet: signals received so far, in order.
    Starting(Vec<i32>),
    /// The job runs: signals go to it, through its pidfd where the kernel has them.
    Running {
        pid: i32,
        pidfd: Option<PidFd>,
        /// Signals that arrived while it was being started, not yet delivered.
        pending: Vec<i32>,
    },
    /// The job has been reaped: nothing is forwarded any more (its pid may be reused).
    Ended,
}

/// What the signal thread and the run share: one lock, so a signal is either queued
/// before the job is marked started or forwarded after, never lost in between.
#[derive(Debug)]
struct Shared {
    target: Mutex<Target>,
}

/// A running forwarder; dropping it (or [`Forwarder::stop`]) ends its thread.
pub struct Forwarder {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl Forwarder {
    /// Installs the handlers now. Signals that arrive before the job is started are kept
    /// ([`Forwarder::received_before_start`]) and, when they arrive while it is being
    /// started, delivered the moment it runs ([`Forwarder::job_started`]); none is lost,
    /// and none is sent after the job was reaped ([`Forwarder::job_ended`]).
    pub fn install() -> std::io::Result<Self> {
        let mut signals = SignalsInfo::<WithOrigin>::new(FORWARDED)?;
        let handle = signals.handle();
        let shared = Arc::new(Shared {
            target: Mutex::new(Target::Starting(Vec::new())),
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("resctl-signals".into())
            .spawn(move || {
                for origin in signals.forever() {
                    thread_shared.receive(origin.signal, origin.cause == Cause::Kernel);
                }
            })?;
        Ok(Forwarder {
            handle,
            thread: Some(thread),
            shared,
        })
    }

    /// The first forwarded signal that arrived before the job was started, if any: the run
    /// should then not start the job at all and exit 128+N, like a shell that was
    /// interrupted before it ran the command.
    pub fn received_before_start(&self) -> Option<i32> {
        match &*lock(&self.shared.target) {
            Target::Starting(received) => received.first().copied(),
            Target::Running { .. } | Target::Ended => None,
        }
    }

    /// The job runs as `pid` (not yet reaped). Signals that arrived while it was being
    /// started are delivered now, in order.
    pub fn job_started(&self, pid: i32) {
        let pidfd = PidFd::open(pid)
            .map_err(|err| tracing::debug!("pidfd for signals: {err}; using kill(2)"))
            .ok();
        let mut target = lock(&self.shared.target);
        let pending = match &mut *target {
            Target::Starting(received) => std::mem::take(received),
            Target::Running { .. } | Target::Ended => Vec::new(),
        };
        *target = Target::Running {
            pid,
            pidfd,
            pending,
        };
        deliver_pending(&mut target);
    }

    /// The job has been reaped: later signals are not forwarded.
    pub fn job_ended(&self) {
        *lock(&self.shared.target) = Target::Ended;
    }

    /// Stops forwarding and waits for the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Shared {
    /// One signal resctl received; `from_kernel`: the terminal generated it.
    fn receive(&self, signal: i32, from_kernel: bool) {
        let mut target = lock(&self.target);
        match &mut *target {
            Target::Starting(received) => {
                received.push(signal);
                tracing::info!(
                    resctl_action = "signal",
                    "received {} while starting the job",
                    crate::exit::signal_name(signal)
                );
            }
            Target::Running { pid, pidfd, .. } => {
                // A signal the terminal generated has already reached a job in our
                // process group; sending it again would deliver it twice.
                if from_kernel && shares_our_process_group(*pid) {
                    tracing::debug!(signal, "terminal signal already reached the job");
                    return;
                }
                forward(signal, *pid, pidfd.as_ref());
            }
            Target::Ended => {
                tracing::debug!(signal, "the job has ended; not forwarded");
            }
        }
    }
}

/// Sends the signals queued during the start to the now running job.
fn deliver_pending(target: &mut Target) {
    if let Target::Running {
        pid,
        pidfd,
        pending,
    } = target
    {
        for signal in std::mem::take(pending) {
            forward(signal, *pid, pidfd.as_ref());
        }
    }
}

/// Sends `signal` to the job: through its pidfd when there is one (it can never reach a
/// process that reused the pid), else with kill(2).
fn forward(signal: i32, pid: i32, pidfd: Option<&PidFd>) {
    let Ok(signal) = Signal::try_from(signal) else {
        return;
    };
    let sent = match pidfd {
        Some(pidfd) => pidfd.send_signal(signal),
        None => nix::sys::signal::kill(Pid::from_raw(pid), signal).map_err(std::io::Error::from),
    };
    match sent {
        Ok(()) => tracing::info!(
            resctl_action = "forward-signal",
            "forwarded {} to the job (pid {pid})",
            signal.as_str()
        ),
        Err(err) => tracing::warn!("could not forward {} to pid {pid}: {err}", signal.as_str()),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn shares_our_process_group(pid: i32) -> bool {
    match (getpgid(None), getpgid(Some(Pid::from_raw(pid)))) {
        (Ok(ours), Ok(theirs)) => ours == theirs,
        _ => false,
    }
}
