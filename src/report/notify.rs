//! resctl's side of systemd's notify protocol (the `sd-notify` crate), for the daemon and
//! for `resctl run` as a `Type=notify` service (`resctl-job@.service`): READY=1 once
//! started (the daemon: after its first round of samples; a run: once the job runs),
//! STATUS= with a one-line summary, WATCHDOG=1 from the sampling loop (so a stuck loop is
//! what the watchdog sees), RELOADING=1 around a reload, STOPPING=1. Outside a
//! `Type=notify` service (no `NOTIFY_SOCKET`) every call does nothing.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// Longest STATUS= sent, bytes (a summary line, not a report).
const MAX_STATUS_BYTES: usize = 1024;

/// Sends resctl's state to systemd: STATUS= only when it changed, WATCHDOG=1 every quarter
/// of the watchdog's period at most (a loop that wakes every 10 ms near a level does not
/// send 100 messages a second).
#[derive(Debug)]
pub struct Notifier {
    /// Whether systemd listens (`NOTIFY_SOCKET` is set).
    active: bool,
    watchdog: Option<Duration>,
    last_status: String,
    last_ping: Option<Instant>,
}

impl Notifier {
    /// Reads `WATCHDOG_USEC`/`WATCHDOG_PID` from the environment.
    pub fn from_env() -> Self {
        Notifier {
            active: std::env::var_os("NOTIFY_SOCKET").is_some(),
            watchdog: sd_notify::watchdog_enabled(),
            last_status: String::new(),
            last_ping: None,
        }
    }

    /// Whether systemd listens: without it there is no status worth making.
    pub fn active(&self) -> bool {
        self.active
    }

    /// The watchdog's period when systemd set one.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Start-up is done.
    pub fn ready(&mut self, status: &str) {
        self.send(&[NotifyState::Ready]);
        self.alive(status);
    }

    /// One loop round is done: the status when it changed, and the watchdog's ping when due.
    pub fn alive(&mut self, status: &str) {
        let status = bounded(status);
        let ping_due = self.watchdog.is_some_and(|period| {
            self.last_ping
                .is_none_or(|last| last.elapsed() >= period / 4)
        });
        let changed = status != self.last_status;
        let mut states = Vec::with_capacity(2);
        if ping_due {
            self.last_ping = Some(Instant::now());
            states.push(NotifyState::Watchdog);
        }
        if changed {
            states.push(NotifyState::Status(&status));
        }
        if !states.is_empty() {
            self.send(&states);
        }
        if changed {
            self.last_status = status;
        }
    }

    /// A reload begins.
    pub fn reloading(&self) {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[NotifyState::Reloading, now]),
            Err(_) => self.send(&[NotifyState::Reloading]),
        }
    }

    /// The reload is over (whether the new configuration was taken or refused).
    pub fn reloaded(&self) {
        self.send(&[NotifyState::Ready]);
    }

    /// The daemon is stopping.
    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping]);
    }

    /// The daemon could not start: the reason goes to `systemctl status`.
    pub fn failed(&self, message: &str) -> std::io::Result<()> {
        sd_notify::notify(&[NotifyState::Status(&bounded(message))])
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        if let Err(err) = sd_notify::notify(states) {
            tracing::debug!("sd_notify: {err}");
        }
    }
}

/// `text` on one line, cut to [`MAX_STATUS_BYTES`] at a character boundary.
fn bounded(text: &str) -> String {
    let line: String = text.replace(['\n', '\r'], " ");
    if line.len() <= MAX_STATUS_BYTES {
        return line;
    }
    let mut end = MAX_STATUS_BYTES;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_one_bounded_line() {
        assert_eq!(bounded("a\nb"), "a b");
        let long = "é".repeat(2000);
        let cut = bounded(&long);
        assert!(cut.len() <= MAX_STATUS_BYTES + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }
}
