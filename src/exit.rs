//! Exit statuses like a shell's: the child's code, 128+N when killed by signal N,
//! 126 when the command cannot be executed, 127 when it is not found, 125 when
//! resctl itself fails before the job starts.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// resctl failed before the job started (like `env`, `nice`, `timeout`).
pub const RESCTL_FAILED: i32 = 125;
/// The command exists but cannot be executed (permission, format).
pub const NOT_EXECUTABLE: i32 = 126;
/// The command was not found.
pub const NOT_FOUND: i32 = 127;
/// Added to a signal number when the job was killed by that signal.
pub const SIGNAL_BASE: i32 = 128;

/// How the job ended, in the terms a person reads in the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobEnd {
    /// The job exited with this code.
    Exited(i32),
    /// The job was killed by this signal number.
    Signaled(i32),
}

impl JobEnd {
    /// Classifies a wait status.
    pub fn from_status(status: ExitStatus) -> Self {
        match (status.code(), status.signal()) {
            (Some(code), _) => JobEnd::Exited(code),
            (None, Some(signal)) => JobEnd::Signaled(signal),
            // Neither a code nor a signal: stopped/continued states are never
            // returned by a blocking wait; treat as a failure of resctl's.
            (None, None) => JobEnd::Exited(RESCTL_FAILED),
        }
    }

    /// The exit code a shell would report for this end.
    pub fn shell_code(self) -> i32 {
        match self {
            JobEnd::Exited(code) => code,
            JobEnd::Signaled(signal) => SIGNAL_BASE + signal,
        }
    }

    /// A short description: `exited with code 3`, `killed by SIGKILL`.
    pub fn describe(self) -> String {
        match self {
            JobEnd::Exited(code) => format!("exited with code {code}"),
            JobEnd::Signaled(signal) => format!("killed by {}", signal_name(signal)),
        }
    }
}

/// The conventional name of a signal number (`SIGKILL`), or `signal N`.
pub fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {signal}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_codes_follow_the_shell() {
        assert_eq!(
            JobEnd::from_status(ExitStatus::from_raw(7 << 8)).shell_code(),
            7
        );
        assert_eq!(
            JobEnd::from_status(ExitStatus::from_raw(255 << 8)).shell_code(),
            255
        );
        assert_eq!(
            JobEnd::from_status(ExitStatus::from_raw(9)).shell_code(),
            137
        );
        assert_eq!(
            JobEnd::from_status(ExitStatus::from_raw(15)).shell_code(),
            143
        );
        assert_eq!(JobEnd::Signaled(9).describe(), "killed by SIGKILL");
        assert_eq!(JobEnd::Exited(0).describe(), "exited with code 0");
    }
}
