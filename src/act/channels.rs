//! The thread-count channels to the job (names are a contract, see the README):
//! `RESCTL_THREADS` (initial count, in the environment), `RESCTL_THREADS_FILE`
//! (the current count as a decimal and a newline, replaced atomically with
//! write + rename), and an opt-in signal on change.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Environment variable: the recommended worker count when the job starts.
pub const ENV_THREADS: &str = "RESCTL_THREADS";
/// Environment variable: path of the file holding the current recommendation.
pub const ENV_THREADS_FILE: &str = "RESCTL_THREADS_FILE";

/// Where the current thread count is published.
#[derive(Debug)]
pub struct ThreadChannels {
    file: PathBuf,
    notify: Option<Signal>,
    job_pid: Option<i32>,
}

impl ThreadChannels {
    /// Channels writing to `file`; `notify` is sent to the job on every change
    /// (only when the user asked: an unaware process dies of SIGUSR1).
    pub fn new(file: PathBuf, notify: Option<Signal>) -> Self {
        ThreadChannels {
            file,
            notify,
            job_pid: None,
        }
    }

    /// The thread file's path.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Sets the process that receives the change signal.
    pub fn set_job_pid(&mut self, pid: i32) {
        self.job_pid = Some(pid);
    }

    /// Writes the count atomically and, if configured, signals the job.
    pub fn publish(&self, threads: u32) -> io::Result<()> {
        write_atomically(&self.file, format!("{threads}\n").as_bytes())?;
        if let (Some(signal), Some(pid)) = (self.notify, self.job_pid) {
            kill(Pid::from_raw(pid), signal).map_err(io::Error::from)?;
        }
        Ok(())
    }
}

/// Writes `contents` to a temporary file beside `path` and renames it over
/// `path`, so a reader sees the old or the new contents, never a mix.
pub fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(".tmp");
    let temp = path.with_file_name(temp_name);
    {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(contents)?;
    }
    std::fs::rename(&temp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishes_decimal_and_newline_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let channels = ThreadChannels::new(dir.path().join("threads"), None);
        channels.publish(4).unwrap();
        assert_eq!(std::fs::read_to_string(channels.file()).unwrap(), "4\n");
        channels.publish(12).unwrap();
        assert_eq!(std::fs::read_to_string(channels.file()).unwrap(), "12\n");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }
}
