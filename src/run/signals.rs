//! Forwarding SIGINT, SIGTERM and SIGHUP to the job, like a shell's `exec`
//! would let them arrive.
//!
//! A signal that the terminal generated (Ctrl-C: the kernel is its sender) has
//! already reached the job, which shares resctl's foreground process group;
//! forwarding it again would deliver it twice (make and many tools treat a
//! second SIGINT as "stop now"). Such signals are forwarded only when the job is
//! in another process group. Signals sent by a process (`kill`, systemd) are
//! always forwarded.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use nix::sys::signal::{kill, Signal};
use nix::unistd::{getpgid, Pid};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::{Handle, SignalsInfo};
use signal_hook::low_level::siginfo::Cause;

/// The signals resctl passes on to the job.
pub const FORWARDED: [i32; 3] = [SIGINT, SIGTERM, SIGHUP];

/// A running forwarder; dropping it (or [`Forwarder::stop`]) ends its thread.
pub struct Forwarder {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
    last: Arc<AtomicI32>,
}

impl Forwarder {
    /// Installs the handlers now (before the job is spawned, so no signal is
    /// lost in between) and forwards to `target` once it is set.
    pub fn install(target: Arc<AtomicI32>) -> std::io::Result<Self> {
        let mut signals = SignalsInfo::<WithOrigin>::new(FORWARDED)?;
        let handle = signals.handle();
        let last = Arc::new(AtomicI32::new(0));
        let last_seen = Arc::clone(&last);
        let thread = std::thread::Builder::new()
            .name("resctl-signals".into())
            .spawn(move || {
                for origin in signals.forever() {
                    last_seen.store(origin.signal, Ordering::SeqCst);
                    let pid = target.load(Ordering::SeqCst);
                    if pid <= 0 {
                        continue;
                    }
                    let from_terminal = origin.cause == Cause::Kernel;
                    if from_terminal && shares_our_process_group(pid) {
                        tracing::debug!(
                            signal = origin.signal,
                            "terminal signal already reached the job"
                        );
                        continue;
                    }
                    if let Ok(signal) = Signal::try_from(origin.signal) {
                        match kill(Pid::from_raw(pid), signal) {
                            Ok(()) => tracing::info!(
                                resctl_action = "forward-signal",
                                "forwarded {} to the job (pid {pid})",
                                signal.as_str()
                            ),
                            Err(err) => tracing::warn!(
                                "could not forward {} to pid {pid}: {err}",
                                signal.as_str()
                            ),
                        }
                    }
                }
            })?;
        Ok(Forwarder {
            handle,
            thread: Some(thread),
            last,
        })
    }

    /// The last forwarded-or-seen signal number, 0 if none.
    pub fn last_signal(&self) -> i32 {
        self.last.load(Ordering::SeqCst)
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

fn shares_our_process_group(pid: i32) -> bool {
    match (getpgid(None), getpgid(Some(Pid::from_raw(pid)))) {
        (Ok(ours), Ok(theirs)) => ours == theirs,
        _ => false,
    }
}
